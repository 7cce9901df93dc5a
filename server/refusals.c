/* Refusals (config tokens, claims) come in floods when someone probes bootd: each kind of
 * refusal is logged and made an event once per window, and the next one after the window
 * says how many were left out. Keys name the kind and at most a lab machine, never what
 * the requester chose, so the table stays small; two keys sharing a slot are only logged
 * more often. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256
#define WINDOW_MS 60000

struct slot {
    uint64_t key;
    int64_t logged_ms;
    unsigned suppressed;
};

struct refusals {
    pthread_mutex_t mu;
    struct slot slots[SLOTS];
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}

struct refusals *server_refusals_new(void)
{
    struct refusals *r = bd_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void server_refusals_free(struct refusals *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

bool server_refusal_log_now(struct refusals *r, const char *key, unsigned *suppressed)
{
    uint64_t h = fnv1a(key);
    int64_t now = bd_now_ms();
    pthread_mutex_lock(&r->mu);
    struct slot *sl = &r->slots[h % SLOTS];
    bool log = sl->key != h || now - sl->logged_ms >= WINDOW_MS;
    if (log) {
        *suppressed = sl->key == h ? sl->suppressed : 0;
        sl->key = h;
        sl->logged_ms = now;
        sl->suppressed = 0;
    } else {
        sl->suppressed++;
    }
    pthread_mutex_unlock(&r->mu);
    return log;
}

void server_refusal(struct server *s, const char *mac, const char *why, const char *msg)
{
    char key[64];
    snprintf(key, sizeof key, "%s %s", why, mac ? mac : "");
    unsigned more;
    if (!server_refusal_log_now(s->refusals, key, &more))
        return;
    char line[640];
    if (more)
        snprintf(line, sizeof line, "%s (and %u more refused like it since the last report)", msg,
                 more);
    else
        snprintf(line, sizeof line, "%s", msg);
    struct bd_err err;
    if (state_event_add(s->store, mac, "http", "audit", line, &err) < 0)
        bd_error("refused: %s", err.msg);
    bd_warn("refused: %s", line);
}
