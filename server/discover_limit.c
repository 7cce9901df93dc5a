/* Machines outside lab.yaml are recorded when they PXE-boot (bootctl machines lists them
 * for adoption), which lets any host on the LAN add rows by inventing MACs. Each source
 * address gets a small budget of sightings (a real machine asks again every hold_retry,
 * well within it), and the number of discovered machines has a ceiling. Over either,
 * the machine still gets its script; it is only not recorded. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>

#define SLOTS 1024
#define BURST 20.0
#define PER_S 0.5 /* one sighting every 2 s, sustained */
#define COUNT_REFRESH_MS 1000

struct bucket {
    uint32_t addr;
    double tokens;
    int64_t at_ms;
};

struct discover_limit {
    pthread_mutex_t mu;
    struct bucket b[SLOTS];
    int64_t discovered, counted_ms;
};

struct discover_limit *server_discover_limit_new(void)
{
    struct discover_limit *d = bd_xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->counted_ms = -COUNT_REFRESH_MS;
    return d;
}

void server_discover_limit_free(struct discover_limit *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* An address sharing a slot with another takes over its bucket: a flood from many
 * addresses then meets fresh buckets, and the ceiling below is what holds. */
static bool take(struct discover_limit *d, uint32_t addr, int64_t now)
{
    struct bucket *b = &d->b[(addr * 2654435761u) % SLOTS];
    if (b->addr != addr || !b->at_ms) {
        b->addr = addr;
        b->tokens = BURST;
    } else {
        b->tokens += (double)(now - b->at_ms) / 1000.0 * PER_S;
        if (b->tokens > BURST)
            b->tokens = BURST;
    }
    b->at_ms = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

bool server_discovery_allowed(struct server *s, uint32_t addr, const char *ip)
{
    struct discover_limit *d = s->discover;
    int64_t now = bd_now_ms();
    /* counted outside the lock: no state.db call with it held */
    pthread_mutex_lock(&d->mu);
    bool recount = now - d->counted_ms >= COUNT_REFRESH_MS;
    if (recount)
        d->counted_ms = now;
    pthread_mutex_unlock(&d->mu);
    int64_t counts[STATE_COUNT];
    struct bd_err err;
    bool counted = recount && state_machine_counts(s->store, counts, &err) == 0;
    pthread_mutex_lock(&d->mu);
    if (counted)
        d->discovered = counts[STATE_DISCOVERED];
    const char *why = NULL;
    if (d->discovered >= s->opts.discovered_max)
        why = "discovered machines are at --discovered-max";
    else if (!take(d, addr, now))
        why = "too many unknown machines from this address";
    if (!why)
        d->discovered++; /* counted as if new until the next count */
    pthread_mutex_unlock(&d->mu);
    if (why) {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown machine from %s not recorded: %s", ip, why);
        server_refusal(s, NULL, "discover", msg);
    }
    return !why;
}
