/* The reconciler's decisions, driven round by round with a fake clock, a fake Talos API
 * and a fake Kubernetes API over a real state.db: Bootstrap exactly once per cluster
 * (also across a restart), back-off while Talos says not yet, AlreadyExists taken as
 * done, machines moving to ready and joined. */
#include "helpers.h"

#include "../../cluster/cluster.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CP_MAC "52:54:00:00:00:11"
#define WK_MAC "52:54:00:00:00:21"

struct fake {
    struct lab *lab;
    struct state_db *store;
    struct talos_creds creds;
    struct talos_kube_admin kube;
    int64_t now;
    /* Talos */
    bool cp_up, wk_up;
    int bootstrap_code; /* what the next Bootstrap answers */
    int bootstrap_calls, version_calls, cp_version_calls;
    int64_t bootstrap_at[16];
    /* Kubernetes */
    bool api_up;
    const char *nodes_json;
    int kube_ready_calls;
};

static void lab_get(void *ud, struct cluster_lab *out)
{
    struct fake *f = ud;
    *out = (struct cluster_lab){.lab = f->lab, .creds = &f->creds, .cluster_id = "cluster-1",
                                .kube = &f->kube};
}

static void lab_put(void *ud, struct cluster_lab *l)
{
    (void)ud;
    (void)l;
}

static int64_t fake_now(void *ud)
{
    return ((struct fake *)ud)->now;
}

static int fake_version(void *ud, const struct talos_node *n, struct talos_version *out, int *code,
                        struct bd_err *err)
{
    struct fake *f = ud;
    f->version_calls++;
    bool cp = !strcmp(n->host, "192.0.2.11");
    f->cp_version_calls += cp;
    bool up = cp ? f->cp_up : f->wk_up;
    cr_assert_eq(n->creds, &f->creds, "calls carry the lab's credentials");
    if (!up) {
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "%s: connection refused", n->host);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->tag, sizeof out->tag, "v1.13.9");
    snprintf(out->platform, sizeof out->platform, "metal");
    *code = TALOS_OK;
    return 0;
}

static int fake_bootstrap(void *ud, const struct talos_node *n, int *code, struct bd_err *err)
{
    struct fake *f = ud;
    cr_assert_str_eq(n->host, "192.0.2.11", "Bootstrap goes to the bootstrap node");
    if (f->bootstrap_calls < 16)
        f->bootstrap_at[f->bootstrap_calls] = f->now;
    f->bootstrap_calls++;
    *code = f->bootstrap_code;
    if (*code == TALOS_OK)
        return 0;
    return bd_err_set(err, "Bootstrap: %s", talos_code_name(*code));
}

static void answer(struct kube_call *c, long status, const char *body)
{
    c->status = status;
    bd_buf_puts(&c->resp, body);
}

static void fake_kube_run(void *ud, const struct kube_target *t, const atomic_bool *cancel,
                          struct kube_call *calls, size_t n)
{
    struct fake *f = ud;
    (void)cancel;
    cr_assert_str_eq(t->server, f->kube.server);
    for (size_t i = 0; i < n; i++) {
        if (!f->api_up) {
            snprintf(calls[i].err, sizeof calls[i].err, "connection refused");
            continue;
        }
        if (!strcmp(calls[i].path, "/readyz"))
            answer(&calls[i], 200, "ok");
        else if (!strcmp(calls[i].path, "/api/v1/nodes"))
            answer(&calls[i], 200, f->nodes_json ? f->nodes_json : "{\"items\":[]}");
        else
            answer(&calls[i], 404, "{\"kind\":\"Status\",\"message\":\"not found\"}");
    }
}

static void fake_kube_ready(void *ud, const struct kube_target *t)
{
    struct fake *f = ud;
    cr_assert_str_eq(t->server, f->kube.server);
    f->kube_ready_calls++;
}

static char *dir;

static void fake_init(struct fake *f, const char *bootstrap_mode)
{
    memset(f, 0, sizeof *f);
    dir = tmpdir_new();
    /* lab_head starts with "cluster:\n": the bootstrap mode goes right under it */
    char *text = bd_xasprintf("cluster:\n  bootstrap: %s\n%s"
                              "machines:\n"
                              "  - {name: cp-1, mac: \"" CP_MAC "\", role: controlplane, "
                              "ip: 192.0.2.11}\n"
                              "  - {name: wk-1, mac: \"" WK_MAC "\", role: worker, "
                              "ip: 192.0.2.21}\n",
                              bootstrap_mode, lab_head + strlen("cluster:\n"));
    free(write_file(dir, "lab.yaml", text));
    free(text);
    struct bd_err err;
    f->lab = load_lab(dir, &err);
    cr_assert_not_null(f->lab, "%s", err.msg);
    cr_assert_eq(state_open(dir, &f->store, &err), 0, "%s", err.msg);
    f->kube.server = "https://192.0.2.11:6443";
    f->now = 1000000;
}

static struct cluster *new_cluster(struct fake *f)
{
    struct cluster_env env = {
        .store = f->store,
        .ud = f,
        .lab_get = lab_get,
        .lab_put = lab_put,
        .kube_ready = fake_kube_ready,
        .now_ms = fake_now,
        .talos_version = fake_version,
        .talos_bootstrap = fake_bootstrap,
        .kube_run = fake_kube_run,
    };
    return cluster_new(&env);
}

static void fake_fini(struct fake *f)
{
    state_close(f->store);
    lab_free(f->lab);
    tmpdir_remove(dir);
    free(dir);
}

static enum state_lifecycle state_of(struct fake *f, const char *mac)
{
    struct state_machine m;
    struct bd_err err;
    cr_assert_eq(state_machine_get(f->store, mac, &m, &err), 1, "%s", mac);
    return m.state;
}

/* Rounds until the clock reaches until, jumping to each round's next deadline. */
static void run_until(struct cluster *c, struct fake *f, int64_t until)
{
    for (int i = 0; i < 1000 && f->now <= until; i++) {
        int64_t next = cluster_round(c);
        cr_assert_gt(next, f->now - 1, "a round never asks to be run in the past");
        f->now = next > f->now ? next : f->now + 1;
    }
}

Test(cluster, bootstraps_exactly_once_also_after_a_restart)
{
    struct fake f;
    fake_init(&f, "auto");
    f.cp_up = true;
    f.bootstrap_code = TALOS_OK;
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 10 * 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 1);
    struct state_bootstrap b;
    struct bd_err err;
    cr_assert_eq(state_bootstrap_get(f.store, "cluster-1", &b, &err), 1);
    cr_assert(b.done);
    cr_assert_str_eq(b.outcome, "bootstrapped");
    cr_assert_str_eq(b.node, "cp-1");
    cluster_free(c);

    c = new_cluster(&f); /* bootd restarted on the same state.db */
    cluster_kick(c);
    run_until(c, &f, f.now + 10 * 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 1, "a restart must not bootstrap again");
    cluster_free(c);
    fake_fini(&f);
}

Test(cluster, backs_off_while_talos_says_not_yet)
{
    struct fake f;
    fake_init(&f, "auto");
    f.cp_up = true;
    f.bootstrap_code = TALOS_FAILED_PRECONDITION;
    struct cluster *c = new_cluster(&f);
    int64_t start = f.now;
    run_until(c, &f, start + 2 * 60 * 1000);
    cr_assert_geq(f.bootstrap_calls, 5);
    /* the gaps double from 0.5 s and stop growing at 30 s */
    int64_t gaps[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (int i = 1; i < f.bootstrap_calls && i <= 8; i++)
        cr_assert_eq(f.bootstrap_at[i] - f.bootstrap_at[i - 1], gaps[i - 1], "gap %d", i);
    cr_assert_lt(f.bootstrap_calls, 13, "no tighter than the back-off");
    struct state_bootstrap b;
    struct bd_err err;
    cr_assert_eq(state_bootstrap_get(f.store, "cluster-1", &b, &err), 1);
    cr_assert_not(b.done);
    cr_assert_eq(b.attempts, f.bootstrap_calls);
    cr_assert(strstr(b.last_error, "FailedPrecondition"), "%s", b.last_error);
    cluster_free(c);

    /* restart mid-bootstrap: bootd goes on where it was, and finishes once */
    f.bootstrap_code = TALOS_OK;
    int before = f.bootstrap_calls;
    c = new_cluster(&f);
    run_until(c, &f, f.now + 5 * 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, before + 1);
    cr_assert_eq(state_bootstrap_get(f.store, "cluster-1", &b, &err), 1);
    cr_assert(b.done);
    cr_assert_eq(b.attempts, before + 1);
    cluster_free(c);
    fake_fini(&f);
}

Test(cluster, already_exists_is_done)
{
    struct fake f;
    fake_init(&f, "auto");
    f.cp_up = true;
    f.bootstrap_code = TALOS_ALREADY_EXISTS;
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 5 * 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 1);
    struct state_bootstrap b;
    struct bd_err err;
    cr_assert_eq(state_bootstrap_get(f.store, "cluster-1", &b, &err), 1);
    cr_assert(b.done);
    cr_assert_str_eq(b.outcome, "already-bootstrapped");
    cluster_free(c);
    fake_fini(&f);
}

Test(cluster, waits_for_the_node_and_for_a_manual_request)
{
    struct fake f;
    fake_init(&f, "manual");
    f.bootstrap_code = TALOS_OK;
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 0, "manual: nothing until asked");
    struct bd_err err;
    cr_assert_eq(cluster_request_bootstrap(c, &err), 0, "%s", err.msg);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 0, "not before the node's Talos API answers");
    cr_assert_gt(f.version_calls, 0);
    int64_t asked = f.version_calls;
    f.cp_up = true;
    run_until(c, &f, f.now + 2 * 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 1);
    cr_assert_lt(f.version_calls - asked, 10, "machines are asked with back-off, not in a loop");
    cr_assert_eq(cluster_request_bootstrap(c, &err), 1, "asking again: already done");
    cluster_free(c);
    fake_fini(&f);
}

/* Both machines in state.db, the control plane's API up and Bootstrap answering OK. */
static void fake_init_bootstrapping(struct fake *f)
{
    fake_init(f, "auto");
    struct bd_err err;
    struct state_lab_entry e[] = {{CP_MAC, "cp-1", "controlplane"}, {WK_MAC, "wk-1", "worker"}};
    cr_assert_eq(state_lab_sync(f->store, e, 2, &err), 0, "%s", err.msg);
    f->cp_up = true;
    f->bootstrap_code = TALOS_OK;
}

/* The talos field of a machine's status from a cluster_status() text (caller frees). */
static char *status_talos_of(struct cluster *c, const char *name)
{
    cJSON *st = cluster_status(c);
    const cJSON *m;
    char *out = NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(st, "machines"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "talos");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            out = bd_xstrdup(cJSON_IsString(t) ? t->valuestring : "(null)");
    }
    cJSON_Delete(st);
    cr_assert_not_null(out, "%s in the status", name);
    return out;
}

/* Kubernetes can see a Node Ready before bootd's next look at its Talos API: the machine
 * is joined, and still asked until its API answers, so status does not keep the last
 * error it saw. */
Test(cluster, a_machine_joined_before_its_api_answered_is_still_asked)
{
    struct fake f;
    fake_init_bootstrapping(&f);
    f.api_up = true;
    f.nodes_json = "{\"items\":[{\"metadata\":{\"name\":\"wk-1\"},\"status\":{"
                   "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}]}";
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(state_of(&f, WK_MAC), STATE_JOINED, "its Node is Ready");
    char *t = status_talos_of(c, "wk-1");
    cr_assert(strstr(t, "connection refused"), "%s", t);
    free(t);

    f.wk_up = true;
    run_until(c, &f, f.now + 2 * 60 * 1000);
    t = status_talos_of(c, "wk-1");
    cr_assert_str_eq(t, "v1.13.9 (metal)", "the status shows what the API answers now");
    free(t);
    int calls = f.version_calls;
    run_until(c, &f, f.now + 10 * 60 * 1000);
    cr_assert_eq(f.version_calls, calls, "once it has answered, a joined machine is not asked again");
    cluster_free(c);
    fake_fini(&f);
}

Test(cluster, machines_become_ready_then_joined)
{
    struct fake f;
    fake_init_bootstrapping(&f);
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(state_of(&f, CP_MAC), STATE_READY);
    cr_assert_eq(state_of(&f, WK_MAC), STATE_ASSIGNED, "the worker never answered");
    cr_assert_eq(f.kube_ready_calls, 0, "the API is not up yet");
    int cp_calls = f.cp_version_calls;
    run_until(c, &f, f.now + 10 * 60 * 1000);
    cr_assert_eq(f.cp_version_calls, cp_calls, "a ready machine is not asked again");

    f.wk_up = true;
    f.api_up = true;
    f.nodes_json = "{\"items\":[{\"metadata\":{\"name\":\"cp-1\"},\"status\":{"
                   "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
                   "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.0.2.11\"}]}},"
                   "{\"metadata\":{\"name\":\"other\"},\"status\":{"
                   "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],"
                   "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.0.2.21\"}]}}]}";
    run_until(c, &f, f.now + 2 * 60 * 1000);
    cr_assert_eq(state_of(&f, CP_MAC), STATE_JOINED);
    cr_assert_eq(state_of(&f, WK_MAC), STATE_READY, "its Node (found by address) is not Ready");
    cr_assert_eq(f.kube_ready_calls, 1, "the API is handed on once");
    cJSON *st = cluster_status(c);
    char *text = cJSON_PrintUnformatted(st);
    cr_assert(strstr(text, "\"phase\":\"kubernetes-ready\""), "%s", text);
    cr_assert(strstr(text, "\"joined\":1"), "%s", text);
    free(text);
    cJSON_Delete(st);
    cluster_free(c);
    fake_fini(&f);
}
