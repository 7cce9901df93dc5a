/* The reconciler as an object: its environment (with the real Talos and Kubernetes
 * clients and clock where the caller gave none), its thread, and what it tells the
 * admin API. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t real_now_ms(void *ud)
{
    (void)ud;
    return bd_mono_ms();
}

static int real_talos_version(void *ud, const struct talos_node *n, struct talos_version *out,
                              int *code, struct bd_err *err)
{
    (void)ud;
    return talos_api_version(n, out, code, err);
}

static int real_talos_bootstrap(void *ud, const struct talos_node *n, int *code,
                                struct bd_err *err)
{
    (void)ud;
    return talos_api_bootstrap(n, code, err);
}

static int real_talos_etcd_snapshot(void *ud, const struct talos_node *n, int fd,
                                    struct talos_snapshot_info *info, int *code,
                                    struct bd_err *err)
{
    (void)ud;
    return talos_api_etcd_snapshot(n, fd, info, code, err);
}

static int real_talos_etcd_recover(void *ud, const struct talos_node *n, int fd, int *code,
                                   struct bd_err *err)
{
    (void)ud;
    return talos_api_etcd_recover(n, fd, code, err);
}

static int real_talos_bootstrap_recover(void *ud, const struct talos_node *n, bool skip_hash,
                                        int *code, struct bd_err *err)
{
    (void)ud;
    return talos_api_bootstrap_recover(n, skip_hash, code, err);
}

static int real_talos_etcd_members(void *ud, const struct talos_node *n, bool local,
                                   struct talos_etcd_member **out, size_t *count, int *code,
                                   struct bd_err *err)
{
    (void)ud;
    return talos_api_etcd_members(n, local, out, count, code, err);
}

static int real_talos_etcd_remove_member(void *ud, const struct talos_node *n, uint64_t id,
                                         int *code, struct bd_err *err)
{
    (void)ud;
    return talos_api_etcd_remove_member(n, id, code, err);
}

static int real_talos_apply_config(void *ud, const struct talos_node *n, const char *data,
                                   size_t len, enum talos_apply_mode mode, bool dry_run,
                                   int64_t try_timeout_s, struct talos_apply_result *out,
                                   int *code, struct bd_err *err)
{
    (void)ud;
    return talos_api_apply_config(n, data, len, mode, dry_run, try_timeout_s, out, code, err);
}

static int real_talos_upgrade(void *ud, const struct talos_node *n, const char *image, int *code,
                              struct bd_err *err)
{
    (void)ud;
    return talos_api_upgrade(n, image, code, err);
}

static void real_kube_run(void *ud, const struct kube_target *t, const atomic_bool *cancel,
                          struct kube_call *calls, size_t n)
{
    (void)ud;
    struct kube *k = kube_new(t);
    kube_set_cancel(k, cancel);
    kube_run(k, calls, n);
    kube_free(k);
}

struct cluster *cluster_new(const struct cluster_env *env)
{
    struct cluster *c = bd_xcalloc(1, sizeof *c);
    c->env = *env;
    if (!c->env.now_ms)
        c->env.now_ms = real_now_ms;
    if (!c->env.talos_version)
        c->env.talos_version = real_talos_version;
    if (!c->env.talos_bootstrap)
        c->env.talos_bootstrap = real_talos_bootstrap;
    if (!c->env.talos_etcd_snapshot)
        c->env.talos_etcd_snapshot = real_talos_etcd_snapshot;
    if (!c->env.talos_etcd_recover)
        c->env.talos_etcd_recover = real_talos_etcd_recover;
    if (!c->env.talos_bootstrap_recover)
        c->env.talos_bootstrap_recover = real_talos_bootstrap_recover;
    if (!c->env.talos_etcd_members)
        c->env.talos_etcd_members = real_talos_etcd_members;
    if (!c->env.talos_etcd_remove_member)
        c->env.talos_etcd_remove_member = real_talos_etcd_remove_member;
    if (!c->env.kube_run)
        c->env.kube_run = real_kube_run;
    if (!c->env.talos_apply_config)
        c->env.talos_apply_config = real_talos_apply_config;
    if (!c->env.talos_upgrade)
        c->env.talos_upgrade = real_talos_upgrade;
    bd_worker_init(&c->worker);
    snprintf(c->phase, sizeof c->phase, "starting");
    c->phase_since_ms = bd_now_ms();
    return c;
}

static void *reconcile_main(void *arg)
{
    struct cluster *c = arg;
    pthread_mutex_lock(&c->worker.mu);
    while (!c->worker.stop) {
        c->worker.wake = false;
        pthread_mutex_unlock(&c->worker.mu);
        int64_t next = cluster_round(c);
        pthread_mutex_lock(&c->worker.mu);
        /* the thread sleeps on the monotonic clock; rounds are timed by env's */
        int64_t deadline = bd_mono_ms() + (next - c->env.now_ms(c->env.ud));
        while (!c->worker.stop && !c->worker.wake && bd_mono_ms() < deadline)
            bd_worker_wait(&c->worker, deadline);
    }
    pthread_mutex_unlock(&c->worker.mu);
    return NULL;
}

int cluster_start(struct cluster *c, struct bd_err *err)
{
    return bd_worker_start(&c->worker, reconcile_main, c, "reconcile", err);
}

void cluster_free(struct cluster *c)
{
    if (!c)
        return;
    bd_worker_stop(&c->worker);
    bd_worker_clear(&c->worker);
    free(c->watch);
    cluster_kube_view_clear(&c->kube);
    free(c);
}

void cluster_kick(struct cluster *c)
{
    pthread_mutex_lock(&c->worker.mu);
    c->reset = true;
    pthread_mutex_unlock(&c->worker.mu);
    bd_worker_wake(&c->worker);
}

int cluster_request_bootstrap(struct cluster *c, struct bd_err *err)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    int rc = -1;
    struct state_bootstrap b;
    if (!l.creds) {
        bd_err_set(err, "bootd cannot call the Talos API: %s", l.creds_error);
    } else if (state_bootstrap_get(c->env.store, l.cluster_id, &b, err) >= 0) {
        if (b.done) {
            rc = 1;
        } else if (state_bootstrap_request(c->env.store, l.cluster_id, l.lab->cluster.name,
                                           err) == 0) {
            cluster_event(c, "talos", NULL, "bootstrap-requested",
                          "bootstrap asked for through the admin API");
            cluster_kick(c);
            rc = 0;
        }
    }
    c->env.lab_put(c->env.ud, &l);
    return rc;
}

static cJSON *bootstrap_json(struct cluster *c, const struct cluster_lab *l)
{
    cJSON *o = cJSON_CreateObject();
    const struct lab *lab = l->lab;
    cJSON_AddStringToObject(o, "mode", lab->cluster.bootstrap == LAB_BOOTSTRAP_MANUAL ? "manual"
                                                                                      : "auto");
    bd_json_add_str_or_null(o, "node", lab->cluster.bootstrap_node);
    struct state_bootstrap b;
    struct bd_err err;
    if (!l->cluster_id || state_bootstrap_get(c->env.store, l->cluster_id, &b, &err) != 1)
        memset(&b, 0, sizeof b);
    cJSON_AddBoolToObject(o, "done", b.done);
    bd_json_add_str_or_null(o, "outcome", b.outcome);
    bd_json_add_str_or_null(o, "called_on", b.node);
    cJSON_AddBoolToObject(o, "requested", b.requested);
    cJSON_AddNumberToObject(o, "attempts", (double)b.attempts);
    bd_json_add_str_or_null(o, "last_error", b.last_error);
    bd_json_add_time(o, "first_attempt", b.first_attempt_ms);
    bd_json_add_time(o, "done_at", b.done_ms);
    return o;
}

static cJSON *kube_json(const struct kube_view *v)
{
    cJSON *kube = cJSON_CreateObject();
    cJSON_AddBoolToObject(kube, "ready", v->api_ready);
    bd_json_add_str_or_null(kube, "api", v->api);
    cJSON_AddNumberToObject(kube, "nodes", (double)v->nnodes);
    cJSON_AddNumberToObject(kube, "joined", (double)v->joined);
    cJSON *cilium = cJSON_AddObjectToObject(kube, "cilium");
    cJSON_AddBoolToObject(cilium, "found", v->cilium_found);
    cJSON_AddBoolToObject(cilium, "ready", v->cilium_ready);
    bd_json_add_str_or_null(cilium, "status", v->cilium);
    return kube;
}

struct cJSON *cluster_status(struct cluster *c)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&c->worker.mu);
    cJSON_AddStringToObject(o, "phase", c->phase);
    cJSON_AddStringToObject(o, "message", c->message);
    bd_json_add_time(o, "since", c->phase_since_ms);
    cJSON *machines = cJSON_CreateArray();
    for (size_t i = 0; i < l.lab->nmachines; i++) {
        const struct lab_machine *m = &l.lab->machines[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", m->name);
        cJSON_AddStringToObject(e, "role", lab_role_name(m->role));
        /* the watch is in the lab's order (sync_watch); search only while a reload
         * has not reached the reconciler yet */
        const struct machine_watch *w = NULL;
        if (i < c->nwatch && !strcmp(c->watch[i].name, m->name))
            w = &c->watch[i];
        for (size_t j = 0; !w && j < c->nwatch; j++)
            if (!strcmp(c->watch[j].name, m->name))
                w = &c->watch[j];
        bd_json_add_str_or_null(e, "talos", w ? w->talos : NULL);
        const struct kube_node *n = cluster_kube_node_of(&c->kube, m);
        bd_json_add_str_or_null(e, "node", !n ? NULL : n->ready ? "Ready" : "NotReady");
        cJSON_AddItemToArray(machines, e);
    }
    cJSON *kube = kube_json(&c->kube);
    pthread_mutex_unlock(&c->worker.mu);
    /* states from the store, outside the reconciler's lock */
    cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, machines)
    {
        enum state_lifecycle st = cluster_stored_state(c, &l.lab->machines[i++]);
        cJSON_AddStringToObject(e, "state", state_lifecycle_name(st));
    }
    cJSON_AddItemToObject(o, "bootstrap", bootstrap_json(c, &l));
    cJSON_AddItemToObject(o, "rebuild", cluster_rebuild_json(c, l.cluster_id));
    cJSON_AddItemToObject(o, "kubernetes", kube);
    cJSON_AddItemToObject(o, "machines", machines);
    c->env.lab_put(c->env.ud, &l);
    return o;
}

void cluster_day2_counters(struct cluster *c, struct cluster_day2_counters *out)
{
    out->jobs = atomic_load(&c->day2_jobs);
    out->applied = atomic_load(&c->day2_applied);
    out->upgrades = atomic_load(&c->day2_upgrades);
    out->failures = atomic_load(&c->day2_failures);
    out->kubelets = atomic_load(&c->day2_kubelets);
}
