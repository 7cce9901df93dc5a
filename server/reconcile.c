/* The reconciler: one thread that takes the lab from "machines have their configs" to a
 * bootstrapped cluster. Each round it asks every machine that is not ready yet for its
 * Talos version (an answer through mutual TLS with the cluster's os CA means its
 * Talos API is up: the machine is ready), and, once the bootstrap node answers, calls
 * Bootstrap on it until Talos says it is done. The outcome is kept in state.db, so
 * Bootstrap is never called again for that cluster, also not after a restart.
 *
 * After that it watches Kubernetes (reconcile_kube.c) until every machine has joined.
 *
 * Waiting is on a condition variable with a deadline: each machine, the bootstrap call
 * and the Kubernetes API back off from 0.5 s to 30 s (60 s for machines) while they
 * fail, and a round with nothing due sleeps until the next deadline, a lab reload or
 * bootctl bootstrap. */
#include "server.h"

#include "../talos/talos.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 500
#define BOOT_BACKOFF_MAX_MS 30000
#define MACHINE_BACKOFF_MAX_MS 60000
#define IDLE_MS 60000
#define KUBE_BACKOFF_MAX_MS 30000 /* the API server is not up */
#define KUBE_JOIN_MAX_MS 10000    /* it is, nodes or Cilium are still coming */
#define CONNECT_TIMEOUT_MS 3000

/* What the reconciler knows of one machine's Talos API. */
struct machine_watch {
    char name[64];
    int64_t next_ms, backoff_ms; /* monotonic; when to ask again */
    bool up;                     /* the last Version call answered */
    char talos[1024];            /* "v1.13.9 (metal)" or why it did not answer */
};

struct reconciler {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, wake, reset; /* under mu; reset: forget backoffs (a new lab, a request) */
    atomic_bool cancel;
    /* under mu: what the status shows */
    char phase[32];
    char message[1300];
    int64_t phase_since_ms;
    size_t nwatch;
    struct machine_watch *watch;
    struct kube_view kube;
    /* the thread's own */
    int64_t boot_next_ms, boot_backoff_ms;
    int64_t kube_next_ms, kube_backoff_ms;
    char boot_event[1200]; /* the last bootstrap event, not repeated while it holds */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t backoff_next(int64_t *backoff, int64_t max)
{
    int64_t b = *backoff ? *backoff : BACKOFF_MIN_MS;
    *backoff = b * 2 > max ? max : b * 2;
    return b;
}

static void set_phase(struct reconciler *rc, const char *phase, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_phase(struct reconciler *rc, const char *phase, const char *fmt, ...)
{
    pthread_mutex_lock(&rc->mu);
    if (strcmp(rc->phase, phase)) {
        snprintf(rc->phase, sizeof rc->phase, "%s", phase);
        rc->phase_since_ms = bd_now_ms();
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rc->message, sizeof rc->message, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&rc->mu);
}

bool machine_talos_addr(struct server *s, const struct lab_machine *m, char ip[16])
{
    if (m->has_ip) {
        bd_ipv4_format(m->ip, ip);
        return true;
    }
    char mac[18];
    bd_mac_format(&m->mac, mac);
    struct store_machine sm;
    struct bd_err err;
    if (store_machine_get(s->store, mac, &sm, &err) == 1 && sm.ip[0]) {
        snprintf(ip, 16, "%s", sm.ip);
        return true;
    }
    return false;
}

void machine_talos_node(struct server *s, const struct lab_snap *snap, const char *ip,
                        struct talos_node *n)
{
    memset(n, 0, sizeof *n);
    n->host = ip;
    n->port = s->opts.talos_port ? s->opts.talos_port : TALOS_API_PORT;
    n->creds = snap->creds;
}

/* The reconciler's calls give up sooner on a silent machine, and when bootd stops. */
static struct talos_node node_at(struct server *s, const struct lab_snap *snap, const char *ip)
{
    struct talos_node n;
    machine_talos_node(s, snap, ip, &n);
    n.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    n.cancel = &s->reconciler->cancel;
    return n;
}

/* The watch entries follow the lab's machines (by name) across reloads. Under mu. */
static void sync_watch(struct reconciler *rc, const struct lab *lab)
{
    bool same = rc->nwatch == lab->nmachines;
    for (size_t i = 0; same && i < lab->nmachines; i++)
        same = !strcmp(rc->watch[i].name, lab->machines[i].name);
    if (same)
        return;
    struct machine_watch *w = bd_xcalloc(lab->nmachines + 1, sizeof *w);
    for (size_t i = 0; i < lab->nmachines; i++) {
        snprintf(w[i].name, sizeof w[i].name, "%s", lab->machines[i].name);
        for (size_t j = 0; j < rc->nwatch; j++)
            if (!strcmp(rc->watch[j].name, w[i].name))
                w[i] = rc->watch[j];
    }
    free(rc->watch);
    rc->watch = w;
    rc->nwatch = lab->nmachines;
}

static void event(struct server *s, const struct lab_machine *m, const char *kind, const char *msg)
{
    char mac[18];
    struct bd_err err;
    if (m)
        bd_mac_format(&m->mac, mac);
    if (store_event_add(s->store, m ? mac : NULL, "talos", kind, msg, &err) < 0)
        bd_warn("reconcile: %s", err.msg);
    bd_info("reconcile: %s%s%s", m ? m->name : "", m ? ": " : "", msg);
}

static enum bd_state stored_state(struct server *s, const struct lab_machine *m)
{
    char mac[18];
    bd_mac_format(&m->mac, mac);
    struct store_machine sm;
    struct bd_err err;
    return store_machine_get(s->store, mac, &sm, &err) == 1 ? sm.state : BD_STATE_ASSIGNED;
}

/* Asks one machine for its version; a machine that answers is ready. The watch entry
 * is updated under mu; the call itself runs without it. */
static void ask_version(struct server *s, const struct lab_snap *snap, const struct lab_machine *m,
                        size_t wi, int64_t now)
{
    struct reconciler *rc = s->reconciler;
    char ip[16];
    char talos[1024];
    bool up = false;
    if (!machine_talos_addr(s, m, ip)) {
        snprintf(talos, sizeof talos, "no address known yet (no ip in lab.yaml, not seen)");
    } else {
        struct talos_node n = node_at(s, snap, ip);
        struct talos_version v;
        int code;
        struct bd_err err;
        up = talos_api_version(&n, &v, &code, &err) == 0;
        if (up)
            snprintf(talos, sizeof talos, "%s (%s)", v.tag[0] ? v.tag : "unknown version",
                     v.platform[0] ? v.platform : "unknown platform");
        else
            snprintf(talos, sizeof talos, "%.1000s", err.msg);
    }
    pthread_mutex_lock(&rc->mu);
    struct machine_watch *w = &rc->watch[wi];
    bool was_up = w->up;
    w->up = up;
    snprintf(w->talos, sizeof w->talos, "%s", talos);
    if (up)
        w->backoff_ms = 0;
    w->next_ms = now + (up ? IDLE_MS : backoff_next(&w->backoff_ms, MACHINE_BACKOFF_MAX_MS));
    pthread_mutex_unlock(&rc->mu);
    if (!up || was_up)
        return;
    char mac[18], msg[1100];
    bd_mac_format(&m->mac, mac);
    snprintf(msg, sizeof msg, "Talos API answers at %s: %s", ip, talos);
    struct bd_err err;
    if (stored_state(s, m) < BD_STATE_READY &&
        store_machine_set_state(s->store, mac, BD_STATE_READY, "talos", msg, &err) < 0)
        bd_warn("reconcile: %s: %s", m->name, err.msg);
}

static bool bootstrap_node_due(struct server *s, const struct lab_snap *snap, size_t i,
                               bool bootstrap_pending)
{
    return bootstrap_pending && !strcmp(snap->lab->machines[i].name, snap->lab->cluster.bootstrap_node) &&
           !s->reconciler->watch[i].up;
}

/* Every machine that is not ready yet (and the bootstrap node while bootstrap waits for
 * it) is asked when its turn comes. */
static void step_machines(struct server *s, const struct lab_snap *snap, bool bootstrap_pending,
                          int64_t *next)
{
    struct reconciler *rc = s->reconciler;
    for (size_t i = 0; i < snap->lab->nmachines && !atomic_load(&rc->cancel); i++) {
        const struct lab_machine *m = &snap->lab->machines[i];
        pthread_mutex_lock(&rc->mu);
        int64_t due = rc->watch[i].next_ms;
        bool boot_due = bootstrap_node_due(s, snap, i, bootstrap_pending);
        pthread_mutex_unlock(&rc->mu);
        if (!boot_due && stored_state(s, m) >= BD_STATE_READY)
            continue;
        int64_t now = mono_ms();
        if (now >= due) {
            ask_version(s, snap, m, i, now);
            pthread_mutex_lock(&rc->mu);
            due = rc->watch[i].next_ms;
            pthread_mutex_unlock(&rc->mu);
        }
        if (due < *next)
            *next = due;
    }
}

/* An event for a bootstrap step, unless it only repeats the last one. */
static void boot_event(struct server *s, const struct lab_machine *m, const char *kind,
                       const char *msg)
{
    struct reconciler *rc = s->reconciler;
    if (!strcmp(rc->boot_event, msg))
        return;
    snprintf(rc->boot_event, sizeof rc->boot_event, "%s", msg);
    event(s, m, kind, msg);
}

static void phase_done(struct reconciler *rc, const char *node, const char *outcome)
{
    if (!strcmp(outcome, "bootstrapped"))
        set_phase(rc, "bootstrapped", "etcd bootstrapped on %s", node);
    else
        set_phase(rc, "bootstrapped", "%s said etcd was bootstrapped before (AlreadyExists)", node);
}

static void bootstrap_done(struct server *s, const struct lab_snap *snap,
                           const struct lab_machine *m, const char *outcome, const char *msg)
{
    struct bd_err err;
    if (store_bootstrap_attempt(s->store, snap->cluster_id, snap->lab->cluster.name, m->name,
                                outcome, NULL, &err) < 0)
        bd_error("reconcile: bootstrap of %s worked but could not be recorded (%s); the next "
                 "attempt will hear AlreadyExists",
                 m->name, err.msg);
    boot_event(s, m, "bootstrap", msg);
    s->reconciler->boot_backoff_ms = 0;
    phase_done(s->reconciler, m->name, outcome);
}

/* One Bootstrap call on the bootstrap node, once it answers and its turn has come.
 * true when Talos says it is done. */
static bool call_bootstrap(struct server *s, const struct lab_snap *snap,
                           const struct lab_machine *m, int64_t *next)
{
    struct reconciler *rc = s->reconciler;
    char ip[16];
    if (!machine_talos_addr(s, m, ip))
        return false;
    struct talos_node n = node_at(s, snap, ip);
    int code;
    struct bd_err err;
    int ok = talos_api_bootstrap(&n, &code, &err);
    char msg[1200];
    if (ok == 0) {
        snprintf(msg, sizeof msg, "etcd bootstrapped on %s (%s)", m->name, ip);
        bootstrap_done(s, snap, m, "bootstrapped", msg);
        *next = mono_ms();
        return true;
    }
    if (code == TALOS_ALREADY_EXISTS) {
        snprintf(msg, sizeof msg,
                 "%s says etcd was bootstrapped before (AlreadyExists): nothing to do", m->name);
        bootstrap_done(s, snap, m, "already-bootstrapped", msg);
        *next = mono_ms();
        return true;
    }
    struct bd_err serr;
    if (store_bootstrap_attempt(s->store, snap->cluster_id, snap->lab->cluster.name, m->name,
                                NULL, err.msg, &serr) < 0)
        bd_warn("reconcile: %s", serr.msg);
    int64_t wait = backoff_next(&rc->boot_backoff_ms, BOOT_BACKOFF_MAX_MS);
    rc->boot_next_ms = mono_ms() + wait;
    if (rc->boot_next_ms < *next)
        *next = rc->boot_next_ms;
    if (code == TALOS_FAILED_PRECONDITION) {
        snprintf(msg, sizeof msg, "%s is not ready to bootstrap yet; retrying: %s", m->name, err.msg);
        set_phase(rc, "bootstrapping", "%s", msg);
        boot_event(s, m, "bootstrap-wait", msg);
        return false;
    }
    if (code == TALOS_CALL_FAILED) { /* it stopped answering: wait for Version again */
        pthread_mutex_lock(&rc->mu);
        for (size_t i = 0; i < rc->nwatch; i++)
            if (!strcmp(rc->watch[i].name, m->name))
                rc->watch[i].up = false;
        pthread_mutex_unlock(&rc->mu);
    }
    snprintf(msg, sizeof msg, "bootstrap of %s failed; retrying: %s", m->name, err.msg);
    set_phase(rc, "bootstrap-failed", "%s", msg);
    boot_event(s, m, "bootstrap-error", msg);
    return false;
}

/* Where bootstrap stands; calls Bootstrap when its time has come. Returns true while
 * it is still to be done. */
static bool step_bootstrap(struct server *s, const struct lab_snap *snap, int64_t *next)
{
    struct reconciler *rc = s->reconciler;
    const struct lab *lab = snap->lab;
    struct store_bootstrap b;
    struct bd_err err;
    int have = store_bootstrap_get(s->store, snap->cluster_id, &b, &err);
    if (have < 0) {
        set_phase(rc, "error", "%s", err.msg);
        return false;
    }
    if (have && b.done) {
        if (!rc->kube_next_ms) /* Kubernetes has not been looked at: its phase says more */
            phase_done(rc, b.node, b.outcome);
        return false;
    }
    if (lab->cluster.bootstrap == LAB_BOOTSTRAP_MANUAL && !(have && b.requested)) {
        set_phase(rc, "manual", "cluster.bootstrap is manual: waiting for `bootctl bootstrap`");
        return false;
    }
    const struct lab_machine *m =
        lab->cluster.bootstrap_node ? lab_machine_by_name(lab, lab->cluster.bootstrap_node) : NULL;
    if (!m) {
        set_phase(rc, "waiting", "the lab has no control plane to bootstrap");
        return false;
    }
    size_t wi = (size_t)(m - lab->machines);
    pthread_mutex_lock(&rc->mu);
    bool up = rc->watch[wi].up;
    char talos[1024];
    snprintf(talos, sizeof talos, "%s", rc->watch[wi].talos);
    pthread_mutex_unlock(&rc->mu);
    if (!up) {
        char msg[1200];
        snprintf(msg, sizeof msg, "waiting for %s's Talos API: %s", m->name,
                 talos[0] ? talos : "not asked yet");
        set_phase(rc, "waiting-for-talos", "%s", msg);
        return true;
    }
    int64_t now = mono_ms();
    if (now < rc->boot_next_ms) {
        if (rc->boot_next_ms < *next)
            *next = rc->boot_next_ms;
        return true;
    }
    return !call_bootstrap(s, snap, m, next);
}

static bool bootstrapped(struct server *s, const struct lab_snap *snap)
{
    struct store_bootstrap b;
    struct bd_err err;
    return store_bootstrap_get(s->store, snap->cluster_id, &b, &err) == 1 && b.done;
}

/* Kubernetes after bootstrap: the API, then every machine joined, then now and then. */
static void step_kube(struct server *s, const struct lab_snap *snap, int64_t *next)
{
    struct reconciler *rc = s->reconciler;
    int64_t now = mono_ms();
    if (now < rc->kube_next_ms) {
        if (rc->kube_next_ms < *next)
            *next = rc->kube_next_ms;
        return;
    }
    pthread_mutex_lock(&rc->mu);
    struct kube_view prev = rc->kube;
    prev.nodes = NULL; /* only the flags are compared */
    pthread_mutex_unlock(&rc->mu);
    struct kube_view v;
    kube_look(s, snap, &prev, &rc->cancel, &v);
    size_t want = snap->lab->nmachines;
    int64_t wait;
    if (!v.api_ready) {
        set_phase(rc, "waiting-for-kubernetes", "%s", v.api);
        wait = backoff_next(&rc->kube_backoff_ms, KUBE_BACKOFF_MAX_MS);
    } else if (v.joined < want) {
        set_phase(rc, "kubernetes-ready", "%zu of %zu machines joined; cilium: %s", v.joined, want,
                  v.cilium);
        if (v.joined > prev.joined)
            rc->kube_backoff_ms = 0;
        wait = backoff_next(&rc->kube_backoff_ms, KUBE_JOIN_MAX_MS);
    } else {
        set_phase(rc, "ready", "all %zu machines joined; cilium: %s", want, v.cilium);
        rc->kube_backoff_ms = 0;
        wait = v.cilium_found && !v.cilium_ready ? KUBE_JOIN_MAX_MS : IDLE_MS;
    }
    rc->kube_next_ms = mono_ms() + wait;
    if (rc->kube_next_ms < *next)
        *next = rc->kube_next_ms;
    pthread_mutex_lock(&rc->mu);
    kube_view_free(&rc->kube);
    rc->kube = v;
    pthread_mutex_unlock(&rc->mu);
}

/* One pass over the lab; returns when the next one is due (monotonic ms). */
static int64_t reconcile_round(struct server *s)
{
    struct reconciler *rc = s->reconciler;
    struct lab_snap *snap = server_lab(s);
    int64_t next = mono_ms() + IDLE_MS;
    pthread_mutex_lock(&rc->mu);
    sync_watch(rc, snap->lab);
    pthread_mutex_unlock(&rc->mu);
    if (!snap->creds) {
        set_phase(rc, "no-credentials", "%s", snap->creds_error);
        server_lab_put(s, snap);
        return next;
    }
    /* twice: a bootstrap node that starts answering is bootstrapped in the same round */
    bool pending = step_bootstrap(s, snap, &next);
    step_machines(s, snap, pending, &next);
    if (pending && !atomic_load(&rc->cancel))
        pending = step_bootstrap(s, snap, &next);
    if (!pending && !atomic_load(&rc->cancel) && bootstrapped(s, snap))
        step_kube(s, snap, &next);
    server_lab_put(s, snap);
    return next;
}

static void *run(void *arg)
{
    struct server *s = arg;
    struct reconciler *rc = s->reconciler;
    pthread_mutex_lock(&rc->mu);
    while (!rc->stop) {
        rc->wake = false;
        if (rc->reset) {
            rc->reset = false;
            rc->boot_next_ms = rc->boot_backoff_ms = 0;
            rc->kube_next_ms = rc->kube_backoff_ms = 0;
            for (size_t i = 0; i < rc->nwatch; i++)
                rc->watch[i].next_ms = rc->watch[i].backoff_ms = 0;
        }
        pthread_mutex_unlock(&rc->mu);
        int64_t next = reconcile_round(s);
        pthread_mutex_lock(&rc->mu);
        while (!rc->stop && !rc->wake && mono_ms() < next) {
            struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
            pthread_cond_timedwait(&rc->cv, &rc->mu, &ts);
        }
    }
    pthread_mutex_unlock(&rc->mu);
    return NULL;
}

int reconcile_start(struct server *s, struct bd_err *err)
{
    struct reconciler *rc = bd_xcalloc(1, sizeof *rc);
    pthread_mutex_init(&rc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rc->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&rc->cancel, false);
    snprintf(rc->phase, sizeof rc->phase, "starting");
    rc->phase_since_ms = bd_now_ms();
    s->reconciler = rc;
    if (pthread_create(&rc->thread, NULL, run, s) != 0)
        return bd_err_set(err, "reconcile: cannot start its thread");
    rc->started = true;
    return 0;
}

void reconcile_stop(struct server *s)
{
    struct reconciler *rc = s->reconciler;
    if (!rc)
        return;
    if (rc->started) {
        atomic_store(&rc->cancel, true);
        pthread_mutex_lock(&rc->mu);
        rc->stop = true;
        pthread_cond_signal(&rc->cv);
        pthread_mutex_unlock(&rc->mu);
        pthread_join(rc->thread, NULL);
    }
    pthread_cond_destroy(&rc->cv);
    pthread_mutex_destroy(&rc->mu);
    free(rc->watch);
    kube_view_free(&rc->kube);
    free(rc);
    s->reconciler = NULL;
}

void reconcile_kick(struct server *s)
{
    struct reconciler *rc = s->reconciler;
    pthread_mutex_lock(&rc->mu);
    rc->wake = rc->reset = true;
    pthread_cond_signal(&rc->cv);
    pthread_mutex_unlock(&rc->mu);
}

int reconcile_request_bootstrap(struct server *s, struct bd_err *err)
{
    struct lab_snap *snap = server_lab(s);
    int rc = -1;
    struct store_bootstrap b;
    if (!snap->creds) {
        bd_err_set(err, "bootd cannot call the Talos API: %s", snap->creds_error);
    } else if (store_bootstrap_get(s->store, snap->cluster_id, &b, err) >= 0) {
        if (b.done) {
            rc = 1;
        } else if (store_bootstrap_request(s->store, snap->cluster_id, snap->lab->cluster.name,
                                           err) == 0) {
            event(s, NULL, "bootstrap-requested", "bootstrap asked for through the admin API");
            reconcile_kick(s);
            rc = 0;
        }
    }
    server_lab_put(s, snap);
    return rc;
}

static cJSON *bootstrap_json(struct server *s, const struct lab_snap *snap)
{
    cJSON *o = cJSON_CreateObject();
    const struct lab *lab = snap->lab;
    cJSON_AddStringToObject(o, "mode", lab->cluster.bootstrap == LAB_BOOTSTRAP_MANUAL ? "manual"
                                                                                      : "auto");
    json_add_str_or_null(o, "node", lab->cluster.bootstrap_node);
    struct store_bootstrap b;
    struct bd_err err;
    if (!snap->cluster_id || store_bootstrap_get(s->store, snap->cluster_id, &b, &err) != 1)
        memset(&b, 0, sizeof b);
    cJSON_AddBoolToObject(o, "done", b.done);
    json_add_str_or_null(o, "outcome", b.outcome);
    json_add_str_or_null(o, "called_on", b.node);
    cJSON_AddBoolToObject(o, "requested", b.requested);
    cJSON_AddNumberToObject(o, "attempts", (double)b.attempts);
    json_add_str_or_null(o, "last_error", b.last_error);
    bd_json_add_time(o, "first_attempt", b.first_attempt_ms);
    bd_json_add_time(o, "done_at", b.done_ms);
    return o;
}

struct cJSON *reconcile_status(struct server *s)
{
    struct reconciler *rc = s->reconciler;
    struct lab_snap *snap = server_lab(s);
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&rc->mu);
    cJSON_AddStringToObject(o, "phase", rc->phase);
    cJSON_AddStringToObject(o, "message", rc->message);
    bd_json_add_time(o, "since", rc->phase_since_ms);
    cJSON *machines = cJSON_CreateArray();
    for (size_t i = 0; i < snap->lab->nmachines; i++) {
        const struct lab_machine *m = &snap->lab->machines[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", m->name);
        cJSON_AddStringToObject(e, "role", lab_role_name(m->role));
        const struct machine_watch *w = NULL;
        for (size_t j = 0; j < rc->nwatch; j++)
            if (!strcmp(rc->watch[j].name, m->name))
                w = &rc->watch[j];
        json_add_str_or_null(e, "talos", w ? w->talos : NULL);
        const struct kube_node *n = kube_node_of(&rc->kube, m);
        json_add_str_or_null(e, "node", !n ? NULL : n->ready ? "Ready" : "NotReady");
        cJSON_AddItemToArray(machines, e);
    }
    cJSON *kube = cJSON_CreateObject();
    cJSON_AddBoolToObject(kube, "ready", rc->kube.api_ready);
    json_add_str_or_null(kube, "api", rc->kube.api);
    cJSON_AddNumberToObject(kube, "nodes", (double)rc->kube.nnodes);
    cJSON_AddNumberToObject(kube, "joined", (double)rc->kube.joined);
    cJSON *cilium = cJSON_AddObjectToObject(kube, "cilium");
    cJSON_AddBoolToObject(cilium, "found", rc->kube.cilium_found);
    cJSON_AddBoolToObject(cilium, "ready", rc->kube.cilium_ready);
    json_add_str_or_null(cilium, "status", rc->kube.cilium);
    pthread_mutex_unlock(&rc->mu);
    /* states from the store, outside the reconciler's lock */
    cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, machines)
    {
        enum bd_state st = stored_state(s, &snap->lab->machines[i++]);
        cJSON_AddStringToObject(e, "state", bd_state_name(st));
    }
    cJSON_AddItemToObject(o, "bootstrap", bootstrap_json(s, snap));
    cJSON_AddItemToObject(o, "kubernetes", kube);
    cJSON_AddItemToObject(o, "machines", machines);
    server_lab_put(s, snap);
    return o;
}
