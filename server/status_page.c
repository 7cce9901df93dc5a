/* The status page: its files at / and /ui/ (built in, no data in them), the overview it
 * reads (/api/v1/overview) and the long-poll that tells it something changed
 * (/api/v1/watch?since=VERSION). Everything with lab data sits behind the API's token. */
#include "server.h"
#include "ui_assets.h"

#include "../gitops/gitops.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_POLL_MS 250   /* how often a watched lab is looked at: changes show in < 2 s */
#define WATCH_HOLD_MS 25000 /* a long-poll answers at the latest after this (proxies) */
#define WATCH_MAX 64        /* open pages at once; more get 503 and retry */
#define AUDIT_SHOWN 30

static const char *const PAGE_HEADERS[][2] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
};

enum MHD_Result server_route_ui(struct server *s, struct MHD_Connection *c, struct req *r,
                         const char *url, const char *method)
{
    (void)s;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return server_reply_text(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                          "use GET\n", 8);
    const struct ui_asset *a = NULL;
    for (size_t i = 0; i < server_ui_nassets && !a; i++)
        if (!strcmp(url, server_ui_assets[i].path) || (!strcmp(url, "/index.html") && !strcmp(server_ui_assets[i].path, "/")))
            a = &server_ui_assets[i];
    if (!a)
        return server_reply_text(c, r, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n", 10);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    /* a new bootd may bring a new page: never mix an old script with a new API */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    for (size_t i = 0; i < sizeof PAGE_HEADERS / sizeof PAGE_HEADERS[0]; i++)
        MHD_add_response_header(resp, PAGE_HEADERS[i][0], PAGE_HEADERS[i][1]);
    r->bytes = a->len;
    return server_reply(c, r, MHD_HTTP_OK, resp);
}

/* ---- the overview and its version ---- */

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Everything the page shows but a machine's own timeline and log, and a version that
 * changes when any of it (or any machine's kernel log) does. */
static cJSON *overview(struct server *s, uint64_t *version)
{
    struct lab_snap *snap = server_lab(s);
    cJSON *o = cJSON_CreateObject();
    struct bd_err err;
    cJSON_AddItemToObject(o, "status", server_api_status_json(s, snap->lab));
    cJSON *machines = server_api_machines_json(s, snap->lab, &err);
    if (machines)
        cJSON_AddItemToObject(o, "machines", machines);
    else
        cJSON_AddStringToObject(o, "machines_error", err.msg);
    cJSON *next_sync = NULL;
    if (snap->lab->gitops.set && s->gitops) {
        cJSON *g = gitops_loop_status(s->gitops);
        /* computed from the clock at every call: kept out of the version */
        next_sync = cJSON_DetachItemFromObjectCaseSensitive(g, "next_sync");
        cJSON_AddItemToObject(o, "gitops", g);
    } else {
        cJSON_AddNullToObject(o, "gitops");
    }
    cJSON *audit = server_api_audit_json(s, AUDIT_SHOWN, &err);
    if (audit)
        cJSON_AddItemToObject(o, "events", audit);
    server_lab_put(s, snap);

    char *text = cJSON_PrintUnformatted(o);
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, text ? text : "", text ? strlen(text) : 0);
    free(text);
    uint64_t lines = server_logsink_total(s);
    *version = fnv1a(h, (const char *)&lines, sizeof lines);
    if (next_sync)
        cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(o, "gitops"), "next_sync", next_sync);
    cJSON_AddStringToObject(o, "bootd", BD_VERSION);
    return o;
}

static void version_hex(uint64_t v, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, v);
}

enum MHD_Result server_route_overview(struct server *s, struct MHD_Connection *c, struct req *r)
{
    uint64_t v;
    cJSON *o = overview(s, &v);
    char hex[17];
    version_hex(v, hex);
    cJSON_AddStringToObject(o, "version", hex);
    return server_reply_json(c, r, MHD_HTTP_OK, o);
}

/* ---- long-poll ---- */

struct watch_waiter {
    struct watch_waiter *next;
    struct MHD_Connection *conn;
    uint64_t since;
    int64_t deadline_ms;
    bool done;
    uint64_t version;
};

struct status_watch {
    pthread_t thread;
    bool started, stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct watch_waiter *waiting; /* suspended connections */
    struct watch_waiter *woken;   /* resumed, to be answered by their handler */
    size_t n;
    size_t answering; /* woken and not yet sent: stop waits for them (MHD drops unsent) */
};

static void wake(struct status_watch *w, struct watch_waiter *x, uint64_t version)
{
    x->done = true;
    x->version = version;
    x->next = w->woken;
    w->woken = x;
    w->answering++;
    MHD_resume_connection(x->conn);
}

static void *watch_main(void *arg)
{
    struct server *s = arg;
    struct status_watch *w = s->watch;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        if (!w->waiting) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        uint64_t v;
        cJSON_Delete(overview(s, &v));
        pthread_mutex_lock(&w->mu);
        int64_t now = bd_mono_ms();
        for (struct watch_waiter **pp = &w->waiting; *pp;) {
            struct watch_waiter *x = *pp;
            if (x->since != v || now >= x->deadline_ms || w->stopping) {
                *pp = x->next;
                wake(w, x, v);
            } else {
                pp = &x->next;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_POLL_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int server_status_watch_start(struct server *s, struct bd_err *err)
{
    struct status_watch *w = bd_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    s->watch = w;
    if (pthread_create(&w->thread, NULL, watch_main, s) != 0)
        return bd_err_set(err, "cannot start the status page's watcher thread");
    w->started = true;
    return 0;
}

/* Before HTTP stops: every suspended page is resumed (MHD needs that) and answered. */
void server_status_watch_stop(struct server *s)
{
    struct status_watch *w = s->watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    while (w->waiting) {
        struct watch_waiter *x = w->waiting;
        w->waiting = x->next;
        wake(w, x, x->since);
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
    /* the answers are queued on running HTTP loops; stopping those first would close the
     * connections unanswered. Bounded: a client that does not read is not waited for. */
    int64_t until = bd_mono_ms() + 2000;
    pthread_mutex_lock(&w->mu);
    while (w->answering && bd_mono_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
}

void server_status_watch_free(struct server *s)
{
    struct status_watch *w = s->watch;
    if (!w)
        return;
    while (w->woken) {
        struct watch_waiter *x = w->woken;
        w->woken = x->next;
        free(x);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    s->watch = NULL;
}

/* A resumed connection whose client went away is never answered: forget its waiter. */
void server_status_watch_forget(struct server *s, const struct MHD_Connection *c, bool answered)
{
    struct status_watch *w = s->watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    bool done = answered;
    for (struct watch_waiter **pp = &w->woken; *pp; pp = &(*pp)->next)
        if ((*pp)->conn == c) {
            struct watch_waiter *x = *pp;
            *pp = x->next;
            w->n--;
            free(x);
            done = true;
            break;
        }
    if (done && w->answering) {
        w->answering--;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

static enum MHD_Result answer(struct MHD_Connection *c, struct req *r, uint64_t v)
{
    char hex[17];
    version_hex(v, hex);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", hex);
    return server_reply_json(c, r, MHD_HTTP_OK, o);
}

enum MHD_Result server_route_watch(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct status_watch *w = s->watch;
    /* back from suspension: the watcher left the answer */
    pthread_mutex_lock(&w->mu);
    for (struct watch_waiter **pp = &w->woken; *pp; pp = &(*pp)->next)
        if ((*pp)->conn == c) {
            struct watch_waiter *x = *pp;
            *pp = x->next;
            w->n--;
            pthread_mutex_unlock(&w->mu);
            uint64_t v = x->version;
            free(x);
            r->watch_answered = true;
            return answer(c, r, v);
        }
    bool stopping = w->stopping;
    pthread_mutex_unlock(&w->mu);
    if (stopping)
        return server_reply_error_json(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "bootd is stopping");

    const char *since_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    char *end = NULL;
    uint64_t since = since_s && *since_s ? strtoull(since_s, &end, 16) : 0;
    if (since_s && *since_s && (*end || strlen(since_s) != 16))
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "since: want the 16 hex digits of a version");
    uint64_t v;
    cJSON_Delete(overview(s, &v));
    if (!since_s || !*since_s || v != since)
        return answer(c, r, v);

    pthread_mutex_lock(&w->mu);
    if (w->stopping || w->n >= WATCH_MAX) {
        pthread_mutex_unlock(&w->mu);
        return server_reply_error_json(c, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "too many open status pages (%d); try again", WATCH_MAX);
    }
    struct watch_waiter *x = bd_xcalloc(1, sizeof *x);
    x->conn = c;
    x->since = since;
    x->deadline_ms = bd_mono_ms() + WATCH_HOLD_MS;
    x->next = w->waiting;
    w->waiting = x;
    w->n++;
    /* suspended under the lock: the watcher cannot resume it before it is suspended */
    MHD_suspend_connection(c);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return MHD_YES;
}
