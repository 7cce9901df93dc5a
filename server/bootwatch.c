/* Failed UKI boots. A firmware that refuses an image (Secure Boot: not signed with a key
 * in its db) tells nobody, and neither does a kernel that dies before its network is up.
 * What bootd does see: the image went out complete, and then either the boot's config
 * was never asked for within the window, or the same machine came back for a boot image
 * (a new /uki or /ipxe request) or its firmware asked DHCP again. Each of those is one
 * failed-boot event on the machine's timeline, with the likely cause, and a metric.
 * Kept in memory: a restart forgets the boots it was waiting on. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A firmware's DHCP this soon after the image went out may be the exchange that
 * preceded the download, reported late by dnsmasq's lease script. */
#define DHCP_AFTER_MS 2000

struct watch {
    struct watch *next;
    char mac[18];
    char token[33]; /* the last boot whose image was answered */
    bool fetched;   /* its config was asked for (maybe before the send was reported done) */
    bool waiting;   /* its image went out complete; its config not asked for yet */
    char signer[128];
    int64_t sent_ms; /* monotonic */
    bool kernel_seen; /* its kernel log reached bootd */
    bool reported;    /* the window passed: already recorded as failed */
    char failed[320]; /* the last failure, until a config is fetched */
    int64_t failed_at; /* wall clock */
};

struct bootwatch {
    struct server *s;
    struct bd_worker worker; /* its mu guards everything below */
    int64_t window_ms;
    struct watch *list;
    atomic_ullong failed[SERVER_BOOT_FAILED_COUNT];
};

static const char *const cause_names[SERVER_BOOT_FAILED_COUNT] = {
    "no-config", "boot-again", "dhcp-again",
};

static struct watch *find(struct bootwatch *w, const char *mac, bool make)
{
    for (struct watch *e = w->list; e; e = e->next)
        if (!strcmp(e->mac, mac))
            return e;
    if (!make)
        return NULL;
    struct watch *e = bd_xcalloc(1, sizeof *e);
    snprintf(e->mac, sizeof e->mac, "%s", mac);
    e->next = w->list;
    w->list = e;
    return e;
}

/* With mu held: e's boot failed; fills msg (recorded once mu is released). */
static void fail(struct bootwatch *w, struct watch *e, enum server_boot_failed cause,
                 const char *seen, char *msg, size_t n)
{
    long ago = (long)((bd_mono_ms() - e->sent_ms + 500) / 1000);
    const char *image = e->signer[0] ? e->signer : "unsigned";
    if (cause == SERVER_BOOT_FAILED_NO_CONFIG && e->kernel_seen)
        snprintf(msg, n,
                 "UKI (%s) sent %ld s ago and its kernel log reached bootd, but config never "
                 "fetched: the kernel runs but cannot reach its talos.config URL",
                 image, ago);
    else
        snprintf(msg, n,
                 "UKI (%s) sent %ld s ago, config never fetched%s: the firmware refused the "
                 "image (Secure Boot: not signed with a key in its db?) or the kernel failed",
                 image, ago, seen);
    snprintf(e->failed, sizeof e->failed, "%s", msg);
    e->failed_at = bd_now_ms();
    atomic_fetch_add(&w->failed[cause], 1);
}

static void record(struct server *s, const char *mac, const char *msg)
{
    bd_warn("boot: %s: %s", mac, msg);
    state_event_note(s->store, mac, "bootd", "boot-failed", msg);
}

static void *watch_main(void *arg)
{
    struct bootwatch *w = arg;
    pthread_mutex_lock(&w->worker.mu);
    while (!w->worker.stop) {
        int64_t now = bd_mono_ms(), next = -1;
        struct watch *due = NULL;
        for (struct watch *e = w->list; e; e = e->next) {
            if (!e->waiting || e->reported)
                continue;
            int64_t at = e->sent_ms + w->window_ms;
            if (at <= now) {
                due = e;
                break;
            }
            if (next < 0 || at < next)
                next = at;
        }
        if (due) {
            char mac[18], msg[320];
            due->reported = true;
            fail(w, due, SERVER_BOOT_FAILED_NO_CONFIG, "", msg, sizeof msg);
            snprintf(mac, sizeof mac, "%s", due->mac);
            pthread_mutex_unlock(&w->worker.mu);
            record(w->s, mac, msg);
            pthread_mutex_lock(&w->worker.mu);
            continue;
        }
        w->worker.wake = false;
        bd_worker_wait(&w->worker, next);
    }
    pthread_mutex_unlock(&w->worker.mu);
    return NULL;
}

int server_bootwatch_start(struct server *s, int64_t window_ms, struct bd_err *err)
{
    struct bootwatch *w = bd_xcalloc(1, sizeof *w);
    w->s = s;
    w->window_ms = window_ms;
    bd_worker_init(&w->worker);
    if (bd_worker_start(&w->worker, watch_main, w, "bootwatch", err) < 0) {
        bd_worker_clear(&w->worker);
        free(w);
        return -1;
    }
    s->bootwatch = w;
    return 0;
}

void server_bootwatch_stop(struct server *s)
{
    struct bootwatch *w = s->bootwatch;
    if (!w)
        return;
    bd_worker_stop(&w->worker);
    bd_worker_clear(&w->worker);
    while (w->list) {
        struct watch *e = w->list;
        w->list = e->next;
        free(e);
    }
    free(w);
    s->bootwatch = NULL;
}

void server_bootwatch_answer(struct server *s, const char *mac, const char *token,
                             const char *signer)
{
    struct bootwatch *w = s->bootwatch;
    if (!w)
        return;
    pthread_mutex_lock(&w->worker.mu);
    struct watch *e = find(w, mac, true);
    snprintf(e->token, sizeof e->token, "%s", token);
    snprintf(e->signer, sizeof e->signer, "%s", signer ? signer : "");
    e->fetched = e->waiting = e->kernel_seen = e->reported = false;
    pthread_mutex_unlock(&w->worker.mu);
}

void server_bootwatch_sent(struct server *s, const char *mac, const char *token)
{
    struct bootwatch *w = s->bootwatch;
    if (!w)
        return;
    pthread_mutex_lock(&w->worker.mu);
    struct watch *e = find(w, mac, false);
    /* the client has every byte before MHD says so: its config may be asked for first */
    bool arm = e && !strcmp(e->token, token) && !e->fetched;
    if (arm) {
        e->sent_ms = bd_mono_ms();
        e->waiting = true;
    }
    pthread_mutex_unlock(&w->worker.mu);
    if (arm)
        bd_worker_wake(&w->worker);
}

void server_bootwatch_config(struct server *s, const char *token)
{
    struct bootwatch *w = s->bootwatch;
    if (!w || !token || !*token)
        return;
    char mac[18] = "", msg[200] = "";
    pthread_mutex_lock(&w->worker.mu);
    for (struct watch *e = w->list; e; e = e->next)
        if (!strcmp(e->token, token)) {
            /* a verdict already recorded for this boot was wrong: say so */
            if (e->failed[0] && (e->reported || !e->waiting))
                snprintf(msg, sizeof msg,
                         "config fetched %ld s after the UKI was sent: that boot was slow, "
                         "not failed",
                         (long)((bd_mono_ms() - e->sent_ms + 500) / 1000));
            snprintf(mac, sizeof mac, "%s", e->mac);
            e->fetched = true;
            e->waiting = false;
            e->failed[0] = 0;
            break;
        }
    pthread_mutex_unlock(&w->worker.mu);
    if (msg[0])
        state_event_note(s->store, mac, "bootd", "boot-late", msg);
}

void server_bootwatch_again(struct server *s, const char *mac, enum server_boot_failed cause,
                            const char *what)
{
    struct bootwatch *w = s->bootwatch;
    if (!w)
        return;
    char msg[320] = "";
    pthread_mutex_lock(&w->worker.mu);
    struct watch *e = find(w, mac, false);
    if (e && e->waiting &&
        !(cause == SERVER_BOOT_FAILED_DHCP_AGAIN && bd_mono_ms() - e->sent_ms < DHCP_AFTER_MS)) {
        if (!e->reported) {
            char seen[160];
            snprintf(seen, sizeof seen, ", and the machine %s", what);
            fail(w, e, cause, seen, msg, sizeof msg);
        }
        e->waiting = false; /* that boot is over either way */
    }
    pthread_mutex_unlock(&w->worker.mu);
    if (msg[0])
        record(s, mac, msg);
}

void server_bootwatch_kernel(struct server *s, const char *mac)
{
    struct bootwatch *w = s->bootwatch;
    if (!w || !mac || !*mac)
        return;
    pthread_mutex_lock(&w->worker.mu);
    struct watch *e = find(w, mac, false);
    if (e && e->waiting)
        e->kernel_seen = true;
    pthread_mutex_unlock(&w->worker.mu);
}

bool server_bootwatch_failed(struct server *s, const char *mac, char *msg, size_t n,
                             int64_t *at_ms)
{
    struct bootwatch *w = s->bootwatch;
    if (!w)
        return false;
    pthread_mutex_lock(&w->worker.mu);
    struct watch *e = find(w, mac, false);
    bool failed = e && e->failed[0];
    if (failed) {
        snprintf(msg, n, "%s", e->failed);
        *at_ms = e->failed_at;
    }
    pthread_mutex_unlock(&w->worker.mu);
    return failed;
}

void server_bootwatch_metrics(struct server *s, struct bd_buf *b)
{
    struct bootwatch *w = s->bootwatch;
    bd_buf_puts(b, "# HELP bootd_boots_failed_total UKI boots sent complete whose config was "
                   "never fetched, by what showed it.\n"
                   "# TYPE bootd_boots_failed_total counter\n");
    for (int i = 0; i < SERVER_BOOT_FAILED_COUNT; i++)
        bd_buf_printf(b, "bootd_boots_failed_total{cause=\"%s\"} %llu\n", cause_names[i],
                      w ? (unsigned long long)atomic_load(&w->failed[i]) : 0ULL);
}
