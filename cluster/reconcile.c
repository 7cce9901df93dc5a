/* The reconciler's rounds. Each round asks every machine that is not ready yet for its
 * Talos version (an answer through mutual TLS with the cluster's os CA means its Talos
 * API is up: the machine is ready), and, once the bootstrap node answers, calls
 * Bootstrap on it until Talos says it is done. The outcome is kept in state.db, so
 * Bootstrap is never called again for that cluster, also not after a restart. After
 * that it watches Kubernetes (kube_watch.c) until every machine has joined.
 *
 * Each machine, the bootstrap call and the Kubernetes API back off from 0.5 s to 30 s
 * (60 s for machines) while they fail; a round returns when the next one is due, and the
 * thread sleeps until then, a lab reload or bootctl bootstrap. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 500
#define BOOT_BACKOFF_MAX_MS 30000
#define MACHINE_BACKOFF_MAX_MS 60000
#define IDLE_MS 60000
#define KUBE_BACKOFF_MAX_MS 30000 /* the API server is not up */
#define KUBE_JOIN_MAX_MS 10000    /* it is, nodes or Cilium are still coming */
#define CONNECT_TIMEOUT_MS 3000

static int64_t backoff_next(int64_t *backoff, int64_t max)
{
    int64_t b = *backoff ? *backoff : BACKOFF_MIN_MS;
    *backoff = b * 2 > max ? max : b * 2;
    return b;
}

static int64_t now_ms(struct cluster *c)
{
    return c->env.now_ms(c->env.ud);
}

static void set_phase(struct cluster *c, const char *phase, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_phase(struct cluster *c, const char *phase, const char *fmt, ...)
{
    pthread_mutex_lock(&c->worker.mu);
    if (strcmp(c->phase, phase)) {
        snprintf(c->phase, sizeof c->phase, "%s", phase);
        c->phase_since_ms = bd_now_ms();
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&c->worker.mu);
}

bool cluster_machine_addr(struct state_db *st, const struct lab_machine *m, char ip[16])
{
    if (m->has_ip) {
        bd_ipv4_format(m->ip, ip);
        return true;
    }
    char mac[18];
    bd_mac_format(&m->mac, mac);
    struct state_machine sm;
    struct bd_err err;
    if (state_machine_get(st, mac, &sm, &err) == 1 && sm.ip[0]) {
        snprintf(ip, 16, "%s", sm.ip);
        return true;
    }
    return false;
}

/* The reconciler's calls give up sooner on a silent machine, and when bootd stops. */
struct talos_node cluster_node_at(struct cluster *c, const struct cluster_lab *l, const char *ip)
{
    struct talos_node n = {
        .host = ip,
        .port = c->env.talos_port ? c->env.talos_port : TALOS_API_PORT,
        .creds = l->creds,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .cancel = &c->worker.cancel,
    };
    return n;
}

static int cmp_watch(const void *a, const void *b)
{
    return strcmp(((const struct machine_watch *)a)->name, ((const struct machine_watch *)b)->name);
}

/* The watch entries follow the lab's machines (by name) across reloads. Under mu. */
static void sync_watch(struct cluster *c, const struct lab *lab)
{
    bool same = c->nwatch == lab->nmachines;
    for (size_t i = 0; same && i < lab->nmachines; i++)
        same = !strcmp(c->watch[i].name, lab->machines[i].name);
    if (same)
        return;
    /* the old entries sorted by name: a 10,000-machine lab is matched in milliseconds */
    if (c->nwatch)
        qsort(c->watch, c->nwatch, sizeof *c->watch, cmp_watch);
    struct machine_watch *w = bd_xcalloc(lab->nmachines + 1, sizeof *w);
    for (size_t i = 0; i < lab->nmachines; i++) {
        snprintf(w[i].name, sizeof w[i].name, "%s", lab->machines[i].name);
        const struct machine_watch *old =
            c->nwatch ? bsearch(&w[i], c->watch, c->nwatch, sizeof *c->watch, cmp_watch) : NULL;
        if (old)
            w[i] = *old;
    }
    free(c->watch);
    c->watch = w;
    c->nwatch = lab->nmachines;
}

void cluster_event(struct cluster *c, const char *source, const struct lab_machine *m,
                   const char *kind, const char *msg)
{
    char mac[18] = "";
    if (m)
        bd_mac_format(&m->mac, mac);
    state_event_note(c->env.store, m ? mac : NULL, source, kind, msg);
    bd_info("reconcile: %s%s%s", m ? m->name : "", m ? ": " : "", msg);
}

enum state_lifecycle cluster_stored_state(struct cluster *c, const struct lab_machine *m)
{
    char mac[18];
    bd_mac_format(&m->mac, mac);
    struct state_machine sm;
    struct bd_err err;
    return state_machine_get(c->env.store, mac, &sm, &err) == 1 ? sm.state : STATE_ASSIGNED;
}

/* Asks one machine for its version; a machine that answers is ready. The watch entry
 * is updated under mu; the call itself runs without it. */
static void ask_version(struct cluster *c, const struct cluster_lab *l,
                        const struct lab_machine *m, size_t wi)
{
    char ip[16];
    char talos[1024];
    bool up = false;
    if (!cluster_machine_addr(c->env.store, m, ip)) {
        snprintf(talos, sizeof talos, "no address known yet (no ip in lab.yaml, not seen)");
    } else {
        struct talos_node n = cluster_node_at(c, l, ip);
        struct talos_version v;
        int code;
        struct bd_err err;
        up = c->env.talos_version(c->env.ud, &n, &v, &code, &err) == 0;
        if (up)
            snprintf(talos, sizeof talos, "%s (%s)", v.tag[0] ? v.tag : "unknown version",
                     v.platform[0] ? v.platform : "unknown platform");
        else
            snprintf(talos, sizeof talos, "%.1000s", err.msg);
    }
    int64_t now = now_ms(c);
    pthread_mutex_lock(&c->worker.mu);
    struct machine_watch *w = &c->watch[wi];
    bool was_up = w->up;
    w->up = up;
    snprintf(w->talos, sizeof w->talos, "%s", talos);
    if (up)
        w->backoff_ms = 0;
    w->next_ms = now + (up ? IDLE_MS : backoff_next(&w->backoff_ms, MACHINE_BACKOFF_MAX_MS));
    pthread_mutex_unlock(&c->worker.mu);
    if (!up || was_up)
        return;
    char mac[18], msg[1100];
    bd_mac_format(&m->mac, mac);
    snprintf(msg, sizeof msg, "Talos API answers at %s: %s", ip, talos);
    struct bd_err err;
    if (cluster_stored_state(c, m) < STATE_READY &&
        state_machine_set_state(c->env.store, mac, STATE_READY, "talos", msg, &err) < 0)
        bd_warn("reconcile: %s: %s", m->name, err.msg);
}

/* Every machine that is not ready yet (and the bootstrap node while bootstrap waits for
 * it) is asked when its turn comes; so is a ready one whose Talos API has not answered
 * bootd since it started (its Node can be Ready before bootd's next look): until it
 * does, so that status shows what it answers and not the last error. */
static void step_machines(struct cluster *c, const struct cluster_lab *l, bool bootstrap_pending,
                          int64_t *next)
{
    const struct lab *lab = l->lab;
    for (size_t i = 0; i < lab->nmachines && !atomic_load(&c->worker.cancel); i++) {
        const struct lab_machine *m = &lab->machines[i];
        bool is_boot_node = lab->cluster.bootstrap_node &&
                            !strcmp(m->name, lab->cluster.bootstrap_node);
        pthread_mutex_lock(&c->worker.mu);
        int64_t due = c->watch[i].next_ms;
        bool answered = c->watch[i].up;
        bool boot_due = bootstrap_pending && is_boot_node && !answered;
        pthread_mutex_unlock(&c->worker.mu);
        if (!boot_due && answered && cluster_stored_state(c, m) >= STATE_READY)
            continue;
        if (now_ms(c) >= due) {
            ask_version(c, l, m, i);
            pthread_mutex_lock(&c->worker.mu);
            due = c->watch[i].next_ms;
            pthread_mutex_unlock(&c->worker.mu);
        }
        if (due < *next)
            *next = due;
    }
}

/* An event for a bootstrap step, unless it only repeats the last one. */
static void boot_event(struct cluster *c, const struct lab_machine *m, const char *kind,
                       const char *msg)
{
    if (!strcmp(c->boot_event, msg))
        return;
    snprintf(c->boot_event, sizeof c->boot_event, "%s", msg);
    cluster_event(c, "talos", m, kind, msg);
}

static void phase_done(struct cluster *c, const char *node, const char *outcome)
{
    if (!strcmp(outcome, "recovered"))
        set_phase(c, "bootstrapped", "etcd restored from a snapshot on %s", node);
    else if (!strcmp(outcome, "bootstrapped"))
        set_phase(c, "bootstrapped", "etcd bootstrapped on %s", node);
    else
        set_phase(c, "bootstrapped", "%s said etcd was bootstrapped before (AlreadyExists)", node);
}

static void bootstrap_done(struct cluster *c, const struct cluster_lab *l,
                           const struct lab_machine *m, const char *outcome, const char *msg)
{
    struct bd_err err;
    if (state_bootstrap_attempt(c->env.store, l->cluster_id, l->lab->cluster.name, m->name,
                                outcome, NULL, &err) < 0)
        bd_error("reconcile: bootstrap of %s worked but could not be recorded (%s); the next "
                 "attempt will hear AlreadyExists",
                 m->name, err.msg);
    boot_event(c, m, "bootstrap", msg);
    c->boot_backoff_ms = 0;
    phase_done(c, m->name, outcome);
}

/* One Bootstrap call on the bootstrap node, once it answers and its turn has come.
 * true when Talos says it is done. */
static bool call_bootstrap(struct cluster *c, const struct cluster_lab *l,
                           const struct lab_machine *m, int64_t *next)
{
    char ip[16];
    if (!cluster_machine_addr(c->env.store, m, ip))
        return false;
    struct talos_node n = cluster_node_at(c, l, ip);
    int code;
    struct bd_err err;
    struct state_rebuild r;
    bool rebuild = cluster_rebuild_active(c, l->cluster_id, &r);
    bool restore = rebuild && r.snapshot[0];
    int ok = restore ? cluster_recover_call(c, &n, &r, &code, &err)
                     : c->env.talos_bootstrap(c->env.ud, &n, &code, &err);
    char msg[1200];
    if (ok == 0 || (code == TALOS_ALREADY_EXISTS && !restore)) {
        if (restore)
            snprintf(msg, sizeof msg, "etcd restored on %s (%s) from %s", m->name, ip,
                     r.snapshot);
        else if (ok == 0)
            snprintf(msg, sizeof msg, "etcd bootstrapped on %s (%s)", m->name, ip);
        else
            snprintf(msg, sizeof msg,
                     "%s says etcd was bootstrapped before (AlreadyExists): nothing to do",
                     m->name);
        bootstrap_done(c, l, m, restore ? "recovered" : ok == 0 ? "bootstrapped" : "already-bootstrapped",
                       msg);
        if (rebuild && state_rebuild_progress(c->env.store, l->cluster_id, "recovered", m->name,
                                              NULL, &err) < 0)
            bd_warn("reconcile: %s", err.msg);
        *next = now_ms(c);
        return true;
    }
    if (rebuild) {
        struct bd_err rerr;
        if (state_rebuild_progress(c->env.store, l->cluster_id, "recovering", m->name, err.msg,
                                   &rerr) < 0)
            bd_warn("reconcile: %s", rerr.msg);
    }
    struct bd_err serr;
    if (state_bootstrap_attempt(c->env.store, l->cluster_id, l->lab->cluster.name, m->name, NULL,
                                err.msg, &serr) < 0)
        bd_warn("reconcile: %s", serr.msg);
    int64_t wait = backoff_next(&c->boot_backoff_ms, BOOT_BACKOFF_MAX_MS);
    c->boot_next_ms = now_ms(c) + wait;
    if (c->boot_next_ms < *next)
        *next = c->boot_next_ms;
    if (code == TALOS_FAILED_PRECONDITION) {
        snprintf(msg, sizeof msg, "%s is not ready to bootstrap yet; retrying: %s", m->name,
                 err.msg);
        set_phase(c, "bootstrapping", "%s", msg);
        boot_event(c, m, "bootstrap-wait", msg);
        return false;
    }
    if (code == TALOS_CALL_FAILED) { /* it stopped answering: wait for Version again */
        pthread_mutex_lock(&c->worker.mu);
        for (size_t i = 0; i < c->nwatch; i++)
            if (!strcmp(c->watch[i].name, m->name))
                c->watch[i].up = false;
        pthread_mutex_unlock(&c->worker.mu);
    }
    snprintf(msg, sizeof msg, "bootstrap of %s failed; retrying: %s", m->name, err.msg);
    set_phase(c, "bootstrap-failed", "%s", msg);
    boot_event(c, m, "bootstrap-error", msg);
    return false;
}

/* A rebuild restores on any control plane: the bootstrap node while its Talos API
 * answers, else the first one that does (the bootstrap node died mid-recovery). */
static const struct lab_machine *recovery_node(struct cluster *c, const struct lab *lab,
                                               const struct lab_machine *boot)
{
    const struct lab_machine *pick = boot;
    pthread_mutex_lock(&c->worker.mu);
    if (!c->watch[boot - lab->machines].up)
        for (size_t i = 0; i < lab->nmachines && i < c->nwatch; i++)
            if (lab->machines[i].role == LAB_ROLE_CONTROLPLANE && c->watch[i].up) {
                pick = &lab->machines[i];
                break;
            }
    pthread_mutex_unlock(&c->worker.mu);
    return pick;
}

/* Where bootstrap stands; calls Bootstrap when its time has come. Returns true while
 * it is still to be done. */
static bool step_bootstrap(struct cluster *c, const struct cluster_lab *l, int64_t *next)
{
    const struct lab *lab = l->lab;
    struct state_bootstrap b;
    struct bd_err err;
    int have = state_bootstrap_get(c->env.store, l->cluster_id, &b, &err);
    if (have < 0) {
        set_phase(c, "error", "%s", err.msg);
        return false;
    }
    if (have && b.done) {
        if (!c->kube_next_ms) /* Kubernetes has not been looked at: its phase says more */
            phase_done(c, b.node, b.outcome);
        return false;
    }
    char backups[600];
    if (!(have && b.requested) && cluster_backups_block_bootstrap(c, l, backups, sizeof backups)) {
        set_phase(c, "waiting-for-rebuild", "%s", backups);
        return false;
    }
    if (lab->cluster.bootstrap == LAB_BOOTSTRAP_MANUAL && !(have && b.requested)) {
        set_phase(c, "manual", "cluster.bootstrap is manual: waiting for `bootctl bootstrap`");
        return false;
    }
    const struct lab_machine *m =
        lab->cluster.bootstrap_node ? lab_machine_by_name(lab, lab->cluster.bootstrap_node) : NULL;
    struct state_rebuild r;
    if (m && cluster_rebuild_active(c, l->cluster_id, &r))
        m = recovery_node(c, lab, m);
    if (!m) {
        set_phase(c, "waiting", "the lab has no control plane to bootstrap");
        return false;
    }
    size_t wi = (size_t)(m - lab->machines);
    pthread_mutex_lock(&c->worker.mu);
    bool up = c->watch[wi].up;
    char talos[1024];
    snprintf(talos, sizeof talos, "%s", c->watch[wi].talos);
    pthread_mutex_unlock(&c->worker.mu);
    if (!up) {
        char msg[1200];
        snprintf(msg, sizeof msg, "waiting for %s's Talos API: %s", m->name,
                 talos[0] ? talos : "not asked yet");
        set_phase(c, "waiting-for-talos", "%s", msg);
        return true;
    }
    if (now_ms(c) < c->boot_next_ms) {
        if (c->boot_next_ms < *next)
            *next = c->boot_next_ms;
        return true;
    }
    return !call_bootstrap(c, l, m, next);
}

static bool bootstrapped(struct cluster *c, const struct cluster_lab *l)
{
    struct state_bootstrap b;
    struct bd_err err;
    return state_bootstrap_get(c->env.store, l->cluster_id, &b, &err) == 1 && b.done;
}

/* Kubernetes after bootstrap: the API, then every machine joined, then now and then. */
static void step_kube(struct cluster *c, const struct cluster_lab *l, int64_t *next)
{
    if (now_ms(c) < c->kube_next_ms) {
        if (c->kube_next_ms < *next)
            *next = c->kube_next_ms;
        return;
    }
    pthread_mutex_lock(&c->worker.mu);
    struct kube_view prev = c->kube;
    prev.nodes = NULL; /* only the flags are compared */
    pthread_mutex_unlock(&c->worker.mu);
    struct kube_view v;
    cluster_kube_look(c, l, &prev, &v);
    size_t want = l->lab->nmachines;
    int64_t wait;
    if (!v.api_ready) {
        set_phase(c, "waiting-for-kubernetes", "%s", v.api);
        wait = backoff_next(&c->kube_backoff_ms, KUBE_BACKOFF_MAX_MS);
    } else if (v.joined < want) {
        set_phase(c, "kubernetes-ready", "%zu of %zu machines joined; cilium: %s", v.joined, want,
                  v.cilium);
        if (v.joined > prev.joined)
            c->kube_backoff_ms = 0;
        wait = backoff_next(&c->kube_backoff_ms, KUBE_JOIN_MAX_MS);
    } else {
        set_phase(c, "ready", "all %zu machines joined; cilium: %s", want, v.cilium);
        c->kube_backoff_ms = 0;
        wait = v.cilium_found && !v.cilium_ready ? KUBE_JOIN_MAX_MS : IDLE_MS;
    }
    c->kube_next_ms = now_ms(c) + wait;
    if (c->kube_next_ms < *next)
        *next = c->kube_next_ms;
    pthread_mutex_lock(&c->worker.mu);
    cluster_kube_view_clear(&c->kube);
    c->kube = v;
    pthread_mutex_unlock(&c->worker.mu);
}

int64_t cluster_round(struct cluster *c)
{
    pthread_mutex_lock(&c->worker.mu);
    if (c->reset) {
        c->reset = false;
        c->boot_next_ms = c->boot_backoff_ms = 0;
        c->kube_next_ms = c->kube_backoff_ms = 0;
        c->backup_next_ms = c->backup_retry_ms = 0; /* the dir may have changed */
        for (size_t i = 0; i < c->nwatch; i++)
            c->watch[i].next_ms = c->watch[i].backoff_ms = 0;
    }
    pthread_mutex_unlock(&c->worker.mu);
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    int64_t next = now_ms(c) + IDLE_MS;
    pthread_mutex_lock(&c->worker.mu);
    sync_watch(c, l.lab);
    pthread_mutex_unlock(&c->worker.mu);
    if (!l.creds) {
        set_phase(c, "no-credentials", "%s", l.creds_error ? l.creds_error : "none");
        c->env.lab_put(c->env.ud, &l);
        return next;
    }
    cluster_rebuild_vms_step(c, &l, &next);
    /* twice: a bootstrap node that starts answering is bootstrapped in the same round */
    bool pending = step_bootstrap(c, &l, &next);
    step_machines(c, &l, pending, &next);
    if (pending && !atomic_load(&c->worker.cancel))
        pending = step_bootstrap(c, &l, &next);
    if (!atomic_load(&c->worker.cancel))
        cluster_day2_step(c, &next);
    if (!pending && !atomic_load(&c->worker.cancel) && bootstrapped(c, &l)) {
        step_kube(c, &l, &next);
        if (!atomic_load(&c->worker.cancel))
            cluster_backup_step(c, &l, &next);
    }
    c->env.lab_put(c->env.ud, &l);
    return next;
}
