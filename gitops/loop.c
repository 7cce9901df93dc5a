/* The sync loop: a thread that syncs every interval, at once when triggered, and after a
 * failure again after a backoff (5 s doubling up to the interval). It needs a
 * configuration (lab.yaml's gitops section) and a target (the Kubernetes API); until it
 * has both it waits and says for what. */
#include "gitops.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_FIRST_MS 5000

struct gitops_loop {
    struct state_db *store;
    struct bd_worker worker; /* its mu guards everything below */
    bool syncing;
    struct gitops_cfg *cfg;
    const struct gitops_cfg *running_cfg; /* the one a sync in flight uses */
    struct kube_target *target;
    char *waiting_for;
    int64_t next_ms;
    int failures;
    /* metrics */
    uint64_t syncs_ok, syncs_failed, applied_total, pruned_total;
    struct gitops_result last; /* detail and error not kept */
    bool have_last;
};

struct gitops_loop *gitops_loop_new(struct state_db *st)
{
    struct gitops_loop *l = bd_xcalloc(1, sizeof *l);
    l->store = st;
    bd_worker_init(&l->worker);
    return l;
}

static int64_t backoff_ms(int failures, int64_t interval_s)
{
    int64_t ms = BACKOFF_FIRST_MS;
    for (int i = 1; i < failures && ms < interval_s * 1000; i++)
        ms *= 2;
    return ms < interval_s * 1000 ? ms : interval_s * 1000;
}

static void run_once(struct gitops_loop *l)
{
    struct gitops_cfg *cfg = l->cfg;
    struct kube_target t;
    kube_target_copy(&t, l->target);
    l->cfg = NULL; /* the loop owns this copy while it syncs; configure swaps in a new one */
    l->running_cfg = cfg;
    l->syncing = true;
    pthread_mutex_unlock(&l->worker.mu);

    bd_info("gitops: sync of %s (%s) to %s", cfg->repo, cfg->ref, t.server);
    struct gitops_result res;
    int rc = gitops_sync(cfg, &t, l->store, &l->worker.cancel, &res);
    if (rc == 0)
        bd_info("gitops: synced %.12s: %lld applied, %lld unchanged, %lld pruned in %lld ms",
                res.revision, (long long)res.applied, (long long)res.unchanged,
                (long long)res.pruned, (long long)(res.finished_ms - res.started_ms));
    else
        bd_warn("gitops: sync failed: %s", res.error ? res.error : "cancelled");
    kube_target_free(&t);

    pthread_mutex_lock(&l->worker.mu);
    l->syncing = false;
    l->running_cfg = NULL;
    if (!l->cfg)
        l->cfg = cfg; /* no reconfigure happened meanwhile */
    else
        gitops_cfg_free(cfg);
    l->failures = rc == 0 ? 0 : l->failures + 1;
    if (rc == 0)
        l->syncs_ok++;
    else
        l->syncs_failed++;
    l->applied_total += (uint64_t)res.applied;
    l->pruned_total += (uint64_t)res.pruned;
    gitops_result_free(&l->last);
    l->last = res;
    l->last.error = NULL;
    l->last.detail = NULL;
    l->have_last = true;
    gitops_result_free(&res);
    int64_t interval = l->cfg ? l->cfg->interval_s : 300;
    l->next_ms = bd_mono_ms() + (rc == 0 ? interval * 1000 : backoff_ms(l->failures, interval));
}

static void *loop_main(void *arg)
{
    struct gitops_loop *l = arg;
    pthread_mutex_lock(&l->worker.mu);
    while (!l->worker.stop) {
        bool ready = l->cfg && l->target;
        if (ready && (l->worker.wake || bd_mono_ms() >= l->next_ms)) {
            l->worker.wake = false;
            run_once(l);
            continue;
        }
        bd_worker_wait(&l->worker, ready ? l->next_ms : -1);
        if (!ready)
            l->worker.wake = false; /* a trigger without a target waits for one */
    }
    pthread_mutex_unlock(&l->worker.mu);
    return NULL;
}

int gitops_loop_start(struct gitops_loop *l, struct bd_err *err)
{
    return bd_worker_start(&l->worker, loop_main, l, "gitops", err);
}

void gitops_loop_configure(struct gitops_loop *l, struct gitops_cfg *cfg)
{
    pthread_mutex_lock(&l->worker.mu);
    gitops_cfg_free(l->cfg);
    l->cfg = cfg;
    l->next_ms = 0; /* a new configuration syncs at once */
    pthread_cond_signal(&l->worker.cv);
    pthread_mutex_unlock(&l->worker.mu);
}

void gitops_loop_set_target(struct gitops_loop *l, const struct kube_target *t)
{
    struct kube_target *copy = bd_xcalloc(1, sizeof *copy);
    kube_target_copy(copy, t);
    pthread_mutex_lock(&l->worker.mu);
    if (l->target)
        kube_target_free(l->target);
    free(l->target);
    l->target = copy;
    free(l->waiting_for);
    l->waiting_for = NULL;
    l->next_ms = 0;
    pthread_cond_signal(&l->worker.cv);
    pthread_mutex_unlock(&l->worker.mu);
}

bool gitops_loop_has_target(struct gitops_loop *l)
{
    pthread_mutex_lock(&l->worker.mu);
    bool yes = l->target != NULL;
    pthread_mutex_unlock(&l->worker.mu);
    return yes;
}

void gitops_loop_waiting_for(struct gitops_loop *l, const char *what)
{
    pthread_mutex_lock(&l->worker.mu);
    free(l->waiting_for);
    l->waiting_for = what ? bd_xstrdup(what) : NULL;
    pthread_mutex_unlock(&l->worker.mu);
}

void gitops_loop_trigger(struct gitops_loop *l)
{
    bd_worker_wake(&l->worker);
}

void gitops_loop_free(struct gitops_loop *l)
{
    if (!l)
        return;
    bd_worker_stop(&l->worker);
    gitops_cfg_free(l->cfg);
    if (l->target)
        kube_target_free(l->target);
    free(l->target);
    free(l->waiting_for);
    gitops_result_free(&l->last);
    bd_worker_clear(&l->worker);
    free(l);
}

/* ---- status and metrics ---- */

static void add_str(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *sync_json(const struct state_gitops_sync *y)
{
    cJSON *o = cJSON_CreateObject();
    bd_json_add_time(o, "started", y->started_ms);
    bd_json_add_time(o, "finished", y->finished_ms);
    cJSON_AddNumberToObject(o, "duration_ms", (double)(y->finished_ms - y->started_ms));
    add_str(o, "revision", y->revision);
    cJSON_AddBoolToObject(o, "ok", y->ok);
    cJSON_AddNumberToObject(o, "applied", (double)y->applied);
    cJSON_AddNumberToObject(o, "unchanged", (double)y->unchanged);
    cJSON_AddNumberToObject(o, "pruned", (double)y->pruned);
    cJSON_AddNumberToObject(o, "failed", (double)y->failed);
    cJSON_AddNumberToObject(o, "unhealthy", (double)y->unhealthy);
    add_str(o, "error", y->error);
    cJSON *detail = y->detail ? cJSON_Parse(y->detail) : NULL;
    cJSON_AddItemToObject(o, "detail", detail ? detail : cJSON_CreateObject());
    return o;
}

struct cJSON *gitops_loop_status(struct gitops_loop *l)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&l->worker.mu);
    const struct gitops_cfg *cfg = l->cfg ? l->cfg : l->running_cfg;
    const char *state = l->syncing ? "syncing" : (cfg && l->target) ? "idle" : "waiting";
    cJSON_AddStringToObject(o, "state", state);
    add_str(o, "waiting_for", l->target ? NULL : l->waiting_for);
    add_str(o, "server", l->target ? l->target->server : NULL);
    if (cfg) {
        cJSON_AddStringToObject(o, "repo", cfg->repo);
        cJSON_AddStringToObject(o, "ref", cfg->ref);
        cJSON_AddNumberToObject(o, "interval_s", (double)cfg->interval_s);
    }
    cJSON_AddNumberToObject(o, "consecutive_failures", l->failures);
    if (!l->syncing && cfg && l->target) {
        int64_t in = l->next_ms - bd_mono_ms();
        bd_json_add_time(o, "next_sync", bd_now_ms() + (in > 0 ? in : 0));
    } else {
        cJSON_AddNullToObject(o, "next_sync");
    }
    pthread_mutex_unlock(&l->worker.mu);
    struct state_gitops_sync last, good;
    struct bd_err err;
    int have = state_gitops_last_sync(l->store, false, &last, &err);
    int have_good = have > 0 ? state_gitops_last_sync(l->store, true, &good, &err) : 0;
    add_str(o, "revision", have > 0 ? last.revision : NULL);
    add_str(o, "applied_revision", have_good > 0 ? good.revision : NULL);
    add_str(o, "last_error", have > 0 ? last.error : NULL);
    if (have > 0)
        cJSON_AddItemToObject(o, "last_sync", sync_json(&last));
    else
        cJSON_AddNullToObject(o, "last_sync");
    if (have > 0)
        state_gitops_sync_free(&last);
    if (have_good > 0)
        state_gitops_sync_free(&good);
    return o;
}

void gitops_loop_metrics(struct gitops_loop *l, struct bd_buf *b)
{
    pthread_mutex_lock(&l->worker.mu);
    bd_buf_printf(b,
                  "# HELP bootd_gitops_syncs_total GitOps syncs by outcome.\n"
                  "# TYPE bootd_gitops_syncs_total counter\n"
                  "bootd_gitops_syncs_total{result=\"ok\"} %llu\n"
                  "bootd_gitops_syncs_total{result=\"failed\"} %llu\n"
                  "# HELP bootd_gitops_objects_applied_total Objects sent with server-side apply.\n"
                  "# TYPE bootd_gitops_objects_applied_total counter\n"
                  "bootd_gitops_objects_applied_total %llu\n"
                  "# HELP bootd_gitops_objects_pruned_total Objects deleted because they left "
                  "Git.\n"
                  "# TYPE bootd_gitops_objects_pruned_total counter\n"
                  "bootd_gitops_objects_pruned_total %llu\n",
                  (unsigned long long)l->syncs_ok, (unsigned long long)l->syncs_failed,
                  (unsigned long long)l->applied_total, (unsigned long long)l->pruned_total);
    if (l->have_last)
        bd_buf_printf(b,
                      "# HELP bootd_gitops_last_sync_ok 1 when the last sync succeeded.\n"
                      "# TYPE bootd_gitops_last_sync_ok gauge\n"
                      "bootd_gitops_last_sync_ok %d\n"
                      "# HELP bootd_gitops_last_sync_timestamp_seconds When the last sync "
                      "ended.\n"
                      "# TYPE bootd_gitops_last_sync_timestamp_seconds gauge\n"
                      "bootd_gitops_last_sync_timestamp_seconds %.3f\n"
                      "# HELP bootd_gitops_last_sync_duration_seconds How long it took.\n"
                      "# TYPE bootd_gitops_last_sync_duration_seconds gauge\n"
                      "bootd_gitops_last_sync_duration_seconds %.3f\n"
                      "# HELP bootd_gitops_objects Objects of the last sync by outcome.\n"
                      "# TYPE bootd_gitops_objects gauge\n"
                      "bootd_gitops_objects{state=\"rendered\"} %lld\n"
                      "bootd_gitops_objects{state=\"failed\"} %lld\n"
                      "bootd_gitops_objects{state=\"unhealthy\"} %lld\n",
                      l->last.ok, (double)l->last.finished_ms / 1e3,
                      (double)(l->last.finished_ms - l->last.started_ms) / 1e3,
                      (long long)l->last.objects, (long long)l->last.failed,
                      (long long)l->last.unhealthy);
    pthread_mutex_unlock(&l->worker.mu);
}
