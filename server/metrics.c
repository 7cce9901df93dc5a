/* /metrics in the Prometheus text format. Counters are atomics updated at request
 * completion; machine counts come from state.db at scrape time. */
#include "server.h"

#include "../cluster/cluster.h"

#include <stdio.h>
#include <string.h>

static const char *const route_names[R_COUNT] = {
    "boot", "ipxe", "assets", "config", "healthz", "metrics", "api", "other",
};

static const unsigned statuses[METRIC_STATUSES - 1] = {
    200, 201, 202, 206, 304, 400, 401, 403, 404, 405, 409, 413, 414, 416, 422, 500,
};

static const double bucket_s[METRIC_BUCKETS - 1] = {
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5,
};

const char *server_route_name(enum route r)
{
    return route_names[r];
}

void server_metrics_observe(struct metrics *m, enum route r, unsigned status, uint64_t bytes,
                     uint64_t duration_us)
{
    size_t si = METRIC_STATUSES - 1;
    for (size_t i = 0; i < METRIC_STATUSES - 1; i++)
        if (statuses[i] == status)
            si = i;
    atomic_fetch_add_explicit(&m->requests[r][si], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes[r], bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->duration_sum_us[r], duration_us, memory_order_relaxed);
    size_t b = METRIC_BUCKETS - 1;
    for (size_t i = 0; i < METRIC_BUCKETS - 1; i++)
        if ((double)duration_us / 1e6 <= bucket_s[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m->duration_bucket[r][b], 1, memory_order_relaxed);
}

enum MHD_Result server_route_metrics(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct metrics *m = &s->metrics;
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_puts(&b, "# HELP bootd_http_requests_total HTTP requests by route and status.\n"
                    "# TYPE bootd_http_requests_total counter\n");
    for (int rt = 0; rt < R_COUNT; rt++)
        for (int i = 0; i < METRIC_STATUSES; i++) {
            unsigned long long v = atomic_load(&m->requests[rt][i]);
            if (!v)
                continue;
            if (i < METRIC_STATUSES - 1)
                bd_buf_printf(&b, "bootd_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                              route_names[rt], statuses[i], v);
            else
                bd_buf_printf(&b, "bootd_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                              route_names[rt], v);
        }
    bd_buf_puts(&b, "# HELP bootd_http_response_bytes_total Body bytes sent by route.\n"
                    "# TYPE bootd_http_response_bytes_total counter\n");
    for (int rt = 0; rt < R_COUNT; rt++)
        bd_buf_printf(&b, "bootd_http_response_bytes_total{route=\"%s\"} %llu\n", route_names[rt],
                      (unsigned long long)atomic_load(&m->bytes[rt]));
    bd_buf_puts(&b, "# HELP bootd_http_request_duration_seconds Time from request line to "
                    "response sent.\n"
                    "# TYPE bootd_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < R_COUNT; rt++) {
        unsigned long long cum = 0;
        for (int i = 0; i < METRIC_BUCKETS; i++) {
            cum += atomic_load(&m->duration_bucket[rt][i]);
            if (i < METRIC_BUCKETS - 1)
                bd_buf_printf(&b,
                              "bootd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                              "%llu\n",
                              route_names[rt], bucket_s[i], cum);
            else
                bd_buf_printf(&b,
                              "bootd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                              "%llu\n",
                              route_names[rt], cum);
        }
        bd_buf_printf(&b, "bootd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                      route_names[rt], (double)atomic_load(&m->duration_sum_us[rt]) / 1e6);
        bd_buf_printf(&b, "bootd_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                      route_names[rt], cum);
    }
    static const char *const cfg_names[CFG_COUNT] = {"served", "denied", "error"};
    bd_buf_puts(&b, "# HELP bootd_config_downloads_total Machine config requests by outcome.\n"
                    "# TYPE bootd_config_downloads_total counter\n");
    for (int i = 0; i < CFG_COUNT; i++)
        bd_buf_printf(&b, "bootd_config_downloads_total{result=\"%s\"} %llu\n", cfg_names[i],
                      (unsigned long long)atomic_load(&m->config[i]));
    bd_buf_printf(&b,
                  "# HELP bootd_lab_reloads_total lab.yaml loads by outcome.\n"
                  "# TYPE bootd_lab_reloads_total counter\n"
                  "bootd_lab_reloads_total{result=\"ok\"} %llu\n"
                  "bootd_lab_reloads_total{result=\"failed\"} %llu\n",
                  (unsigned long long)atomic_load(&m->reloads_ok),
                  (unsigned long long)atomic_load(&m->reloads_failed));
    server_bootwatch_metrics(s, &b);
    pthread_mutex_lock(&s->mu);
    bool reload_failing = s->reload_error[0] != 0;
    pthread_mutex_unlock(&s->mu);
    bd_buf_printf(&b,
                  "# HELP bootd_lab_reload_failing 1 while the last reload failed and the "
                  "previous lab is still served.\n"
                  "# TYPE bootd_lab_reload_failing gauge\n"
                  "bootd_lab_reload_failing %d\n",
                  reload_failing);
    int64_t counts[STATE_COUNT];
    struct bd_err err;
    if (state_machine_counts(s->store, counts, &err) == 0) {
        bd_buf_puts(&b, "# HELP bootd_machines Machines by lifecycle state.\n"
                        "# TYPE bootd_machines gauge\n");
        for (int i = 0; i < STATE_COUNT; i++)
            bd_buf_printf(&b, "bootd_machines{state=\"%s\"} %lld\n", state_lifecycle_name((enum state_lifecycle)i),
                          (long long)counts[i]);
    }
    if (s->cluster) {
        struct cluster_backup_status bs;
        cluster_backup_status(s->cluster, &bs);
        bd_buf_printf(&b,
                      "# HELP bootd_etcd_snapshot_last_success_timestamp_seconds When the last "
                      "scheduled etcd snapshot was written (0: never).\n"
                      "# TYPE bootd_etcd_snapshot_last_success_timestamp_seconds gauge\n"
                      "bootd_etcd_snapshot_last_success_timestamp_seconds %lld\n"
                      "# HELP bootd_etcd_snapshot_failures_total Scheduled etcd snapshots that "
                      "failed.\n"
                      "# TYPE bootd_etcd_snapshot_failures_total counter\n"
                      "bootd_etcd_snapshot_failures_total %llu\n",
                      (long long)bs.last_success_s, (unsigned long long)bs.failures);
        struct cluster_day2_counters d;
        cluster_day2_counters(s->cluster, &d);
        bd_buf_printf(&b,
                      "# HELP bootd_day2_jobs_total Day-2 jobs started (bootctl apply, upgrade).\n"
                      "# TYPE bootd_day2_jobs_total counter\n"
                      "bootd_day2_jobs_total %llu\n"
                      "# HELP bootd_day2_configs_applied_total Configs applied through the Talos "
                      "API.\n"
                      "# TYPE bootd_day2_configs_applied_total counter\n"
                      "bootd_day2_configs_applied_total %llu\n"
                      "# HELP bootd_day2_upgrades_total Talos upgrades asked of machines.\n"
                      "# TYPE bootd_day2_upgrades_total counter\n"
                      "bootd_day2_upgrades_total %llu\n"
                      "# HELP bootd_day2_failures_total Day-2 jobs stopped by a failure.\n"
                      "# TYPE bootd_day2_failures_total counter\n"
                      "bootd_day2_failures_total %llu\n"
                      "# HELP bootd_day2_kubelet_upgrades_total Machines whose Node reached the "
                      "kubelet of bootctl upgrade kubernetes.\n"
                      "# TYPE bootd_day2_kubelet_upgrades_total counter\n"
                      "bootd_day2_kubelet_upgrades_total %llu\n",
                      (unsigned long long)d.jobs, (unsigned long long)d.applied,
                      (unsigned long long)d.upgrades, (unsigned long long)d.failures,
                      (unsigned long long)d.kubelets);
    }
    server_gitops_metrics(s, &b);
    enum MHD_Result rc =
        server_reply_text(c, r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    bd_buf_free(&b);
    return rc;
}
