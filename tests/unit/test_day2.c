/* Day 2 (bootctl plan): what a config shows once redacted, the diff between two, and
 * how Talos's answers read. */
#include "talos_fixture.h"

#include "../../cluster/cluster.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t KEY[32] = {1, 2, 3};

static char *redact(const char *text, const uint8_t *key)
{
    char *out;
    struct bd_err err;
    cr_assert_eq(talos_config_redact(text, strlen(text), key, &out, &err), 0, "%s", err.msg);
    return out;
}

/* Every secret of the fixture bundle: no line of a redacted config holds one. */
Test(day2, a_generated_config_keeps_no_secret)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    const struct talos_secrets *s = talos_cluster_secrets(tc, NULL);
    uint8_t key[32];
    talos_redact_key_of(tc, lab->cluster.name, key);
    for (int i = 0; i < 2; i++) {
        char *cfg = fixture_render(tc, lab, i ? "w-1" : "cp-1"), *red = redact(cfg, key);
        const char *secrets[] = {s->cluster_secret, s->bootstrap_token, s->trustd_token,
                                 s->secretbox_secret, s->os.key, s->etcd.key, s->k8s.key,
                                 s->k8s_aggregator.key, s->service_account_key};
        for (size_t j = 0; j < sizeof secrets / sizeof *secrets; j++)
            if (secrets[j] && *secrets[j]) {
                if (!i) /* a control plane's config holds every one */
                    cr_assert(strstr(cfg, secrets[j]), "the config holds secret %zu", j);
                cr_assert_null(strstr(red, secrets[j]), "secret %zu left in:\n%s", j, red);
            }
        assert_has(red, "token: <redacted:");
        assert_has(red, "    id: "); /* cluster.id is no secret */
        if (!i) {
            assert_has(red, "secretboxEncryptionSecret: <redacted:");
            assert_has(red, "key: <redacted:");
            assert_has(red, "crt: "); /* certificates stay: they are public */
        }
        free(cfg);
        free(red);
    }
    fixture_done(tc, lab, dir);
}

Test(day2, markers_tell_changes_without_telling_values)
{
    char *a = redact("machine:\n  token: abc\n  ca:\n    crt: Zm9v\n    key: c2VjcmV0\n", KEY);
    char *b = redact("machine:\n  token: abc\n  ca:\n    crt: Zm9v\n    key: b3RoZXI=\n", KEY);
    char *c = redact("machine:\n  token: abc\n", (const uint8_t[32]){9});
    const char *ta = strstr(a, "token: <redacted:"), *tb = strstr(b, "token: <redacted:");
    cr_assert(ta && tb);
    cr_assert_eq(strncmp(ta, tb, 26), 0, "the same secret, the same marker:\n%s\n%s", a, b);
    const char *ka = strstr(a, "key: <redacted:"), *kb = strstr(b, "key: <redacted:");
    cr_assert(ka && kb);
    cr_assert_neq(strncmp(ka, kb, 24), 0, "another secret, another marker");
    cr_assert_neq(strncmp(strstr(c, "<redacted:"), ta + 7, 19), 0,
                  "another cluster's key, other markers");
    assert_has(a, "crt: Zm9v");
    cr_assert_null(strstr(a, "c2VjcmV0"));
    cr_assert_null(strstr(a, "abc"));
    free(a);
    free(b);
    free(c);
}

Test(day2, credentials_and_secret_manifests_are_redacted)
{
    char *r = redact("machine:\n"
                     "  registries:\n"
                     "    config:\n"
                     "      reg.lan:\n"
                     "        auth: {username: me, password: hunter2, identityToken: tok9}\n"
                     "cluster:\n"
                     "  inlineManifests:\n"
                     "    - name: creds\n"
                     "      contents: |\n"
                     "        kind: Secret\n"
                     "        data: {x: czNjcjN0}\n"
                     "    - name: cm\n"
                     "      contents: |\n"
                     "        kind: ConfigMap\n"
                     "---\n"
                     "apiVersion: v1alpha1\n"
                     "kind: WireguardConfig\n"
                     "privateKey: wgkey=\n",
                     KEY);
    cr_assert_null(strstr(r, "hunter2"), "%s", r);
    cr_assert_null(strstr(r, "tok9"), "%s", r);
    cr_assert_null(strstr(r, "czNjcjN0"), "%s", r);
    cr_assert_null(strstr(r, "wgkey"), "%s", r);
    assert_has(r, "username: me");
    assert_has(r, "kind: ConfigMap");
    assert_has(r, "kind: WireguardConfig");
    free(r);
}

Test(day2, diff_is_unified_and_empty_when_same)
{
    char *d;
    struct bd_err err;
    cr_assert_eq(talos_text_diff("a\nb\nc\n", "a\nb\nc\n", "cp-1", &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(d, "");
    free(d);
    cr_assert_eq(talos_text_diff("a\nb\nc\n", "a\nB\nc\n", "cp-1", &d, &err), 0, "%s", err.msg);
    assert_has(d, "--- a/cp-1\n+++ b/cp-1\n");
    assert_has(d, "\n-b\n+B\n");
    assert_has(d, " a\n");
    free(d);
}

Test(day2, talos_answers_read_as_verdicts)
{
    cr_assert_str_eq(cluster_verdict(0, TALOS_OK, TALOS_APPLY_NO_REBOOT), "live");
    cr_assert_str_eq(cluster_verdict(0, TALOS_OK, TALOS_APPLY_REBOOT), "reboot");
    cr_assert_str_eq(cluster_verdict(-1, TALOS_INVALID_ARGUMENT, TALOS_APPLY_REBOOT), "refused");
    cr_assert_str_eq(cluster_verdict(-1, TALOS_CALL_FAILED, TALOS_APPLY_REBOOT), "unknown");
    cr_assert_str_eq(cluster_verdict(-1, TALOS_UNAVAILABLE, TALOS_APPLY_NO_REBOOT), "unknown");
}

Test(day2, apply_modes_by_name)
{
    const char *names[] = {"reboot", "auto", "no-reboot", "staged", "try"};
    for (int i = 0; i < 5; i++) {
        enum talos_apply_mode m;
        cr_assert_eq(talos_apply_mode_parse(names[i], &m), 0);
        cr_assert_eq((int)m, i, "%s is mode %d in machine.proto", names[i], i);
        cr_assert_str_eq(talos_apply_mode_name(m), names[i]);
    }
    enum talos_apply_mode m;
    cr_assert_eq(talos_apply_mode_parse("REBOOT", &m), -1);
}

/* ---- day-2 jobs, driven step by step against a fake Talos API ---- */

#include "../../cluster/internal.h"

#include <cjson/cJSON.h>

#define NODES 3
struct job_fake {
    struct lab *lab;
    struct talos_cluster *tc;
    struct state_db *store;
    struct talos_creds creds;
    const char *host[NODES];
    char tag[NODES][16];
    int away[NODES];       /* Version calls it still fails */
    bool rolls_back[NODES];
    bool etcd_bad;
    char order[128];       /* hosts in the order they were upgraded */
    int upgrades;
    struct talos_kube_admin kube;
    int not_ready[NODES];  /* Node lists that still show it NotReady */
    int kube_calls;
    char kubelet[NODES][16]; /* kubeletVersion its Node reports */
    int applies;
    int new_disk;          /* applied configs that install to the reloaded lab's disk */
    /* a reload that lands on the next lab_get: that call still gets the old lab, then
     * the lab is swapped for this one and an apply job started (cluster.apply: auto) */
    struct lab *reload_lab;
    struct talos_cluster *reload_tc;
    struct cluster *c;
};

static int node_of(struct job_fake *f, const char *host)
{
    for (int i = 0; i < NODES; i++)
        if (!strcmp(f->host[i], host))
            return i;
    cr_assert_fail("a call to %s", host);
    return -1;
}

static void jf_reload(struct job_fake *f)
{
    struct lab *lab = f->lab;
    struct talos_cluster *tc = f->tc;
    f->lab = f->reload_lab;
    f->tc = f->reload_tc;
    f->reload_lab = lab; /* the old one, freed at the end */
    f->reload_tc = tc;
    struct cluster *c = f->c;
    f->c = NULL;
    struct bd_err err;
    cJSON *st = cluster_day2_start(c, "apply", "auto", NULL, 0, 60, &err);
    cr_assert_not_null(st, "%s", err.msg);
    cJSON_Delete(st);
}

static void jf_lab_get(void *ud, struct cluster_lab *out)
{
    struct job_fake *f = ud;
    *out = (struct cluster_lab){.lab = f->lab, .talos = f->tc, .creds = &f->creds,
                                .kube = f->kube.server ? &f->kube : NULL};
    if (f->c)
        jf_reload(f);
}

static void jf_lab_put(void *ud, struct cluster_lab *l)
{
    (void)ud;
    (void)l;
}

static int jf_version(void *ud, const struct talos_node *n, struct talos_version *out, int *code,
                      struct bd_err *err)
{
    struct job_fake *f = ud;
    int i = node_of(f, n->host);
    memset(out, 0, sizeof *out);
    if (f->away[i] > 0) {
        f->away[i]--;
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "%s: connection refused", n->host);
    }
    snprintf(out->tag, sizeof out->tag, "%s", f->tag[i]);
    *code = TALOS_OK;
    return 0;
}

static int jf_members(void *ud, const struct talos_node *n, bool local,
                      struct talos_etcd_member **out, size_t *count, int *code, struct bd_err *err)
{
    struct job_fake *f = ud;
    int i = node_of(f, n->host);
    cr_assert(local, "health is asked of each member itself");
    if (f->etcd_bad || f->away[i] > 0) {
        *code = TALOS_UNAVAILABLE;
        return bd_err_set(err, "etcd: not running");
    }
    *out = bd_xcalloc(2, sizeof **out);
    *count = 2;
    *code = TALOS_OK;
    return 0;
}

static int jf_upgrade(void *ud, const struct talos_node *n, const char *image, int *code,
                      struct bd_err *err)
{
    struct job_fake *f = ud;
    (void)err;
    int i = node_of(f, n->host);
    cr_assert(strstr(image, "installer/" VANILLA ":v1.14.0"), "%s", image);
    size_t len = strlen(f->order);
    snprintf(f->order + len, sizeof f->order - len, "%s%s", len ? " " : "", n->host);
    f->upgrades++;
    for (int k = 0; k < NODES; k++)
        cr_assert(k == i || f->not_ready[k] == 0, "%s went while %s's Node was not Ready",
                  n->host, f->host[k]);
    f->away[i] = 2;
    if (!f->rolls_back[i])
        snprintf(f->tag[i], sizeof f->tag[i], "v1.14.0");
    *code = TALOS_OK;
    return 0;
}

static void jf_kube_run(void *ud, const struct kube_target *t, const atomic_bool *cancel,
                        struct kube_call *calls, size_t n)
{
    struct job_fake *f = ud;
    (void)t;
    (void)cancel;
    cr_assert_eq(n, 1);
    cr_assert_str_eq(calls[0].path, "/api/v1/nodes");
    f->kube_calls++;
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_puts(&b, "{\"items\": [");
    for (int i = 0; i < NODES; i++) {
        bool ready = f->away[i] == 0 && f->not_ready[i] == 0;
        if (f->not_ready[i] > 0 && f->away[i] == 0)
            f->not_ready[i]--;
        bd_buf_printf(&b, "%s{\"metadata\": {\"name\": \"n%d\"}, \"status\": {"
                          "\"conditions\": [{\"type\": \"Ready\", \"status\": \"%s\"}],"
                          "\"addresses\": [{\"type\": \"InternalIP\", \"address\": \"%s\"}],"
                          "\"nodeInfo\": {\"kubeletVersion\": \"%s\"}}}",
                      i ? "," : "", i, ready ? "True" : "False", f->host[i], f->kubelet[i]);
    }
    bd_buf_puts(&b, "]}");
    calls[0].status = 200;
    bd_buf_append(&calls[0].resp, b.data, b.len);
    bd_buf_free(&b);
}

/* ApplyConfiguration as Talos answers a change of component images: live; kubelet
 * restarts with the config's image and is NotReady for a while. */
static int jf_apply(void *ud, const struct talos_node *n, const char *data, size_t len,
                    enum talos_apply_mode mode, bool dry_run, int64_t try_s,
                    struct talos_apply_result *out, int *code, struct bd_err *err)
{
    struct job_fake *f = ud;
    (void)err;
    (void)try_s;
    int i = node_of(f, n->host);
    cr_assert_eq(mode, TALOS_APPLY_AUTO);
    memset(out, 0, sizeof *out);
    out->mode = TALOS_APPLY_NO_REBOOT;
    *code = TALOS_OK;
    if (dry_run)
        return 0;
    cr_assert(memmem(data, len, "kubelet:v1.28.0", 15), "the config names the new kubelet");
    for (int k = 0; k < NODES; k++)
        cr_assert(k == i || (f->not_ready[k] == 0), "%s changed while %s's Node was not Ready",
                  n->host, f->host[k]);
    size_t at = strlen(f->order);
    snprintf(f->order + at, sizeof f->order - at, "%s%s", at ? " " : "", n->host);
    f->applies++;
    f->new_disk += memmem(data, len, "disk: /dev/vdb", 14) != NULL;
    snprintf(f->kubelet[i], sizeof f->kubelet[i], "v1.28.0");
    if (f->kube.server) /* the kubelet restarts */
        f->not_ready[i] = 2;
    return 0;
}

static struct cluster *job_cluster(struct job_fake *f)
{
    struct cluster_env env = {
        .store = f->store, .ud = f, .lab_get = jf_lab_get, .lab_put = jf_lab_put,
        .talos_version = jf_version, .talos_etcd_members = jf_members,
        .talos_upgrade = jf_upgrade, .kube_run = jf_kube_run, .talos_apply_config = jf_apply,
    };
    return cluster_new(&env);
}

/* the worker first in lab.yaml: jobs take control planes first all the same */
static const char JOB_MACHINES[] =
    "machines:\n"
    "  - {name: w-1, mac: \"52:54:00:00:00:02\", role: worker, ip: 192.0.2.12}\n"
    "  - {name: cp-1, mac: \"52:54:00:00:00:01\", role: controlplane, ip: 192.0.2.11}\n"
    "  - {name: cp-2, mac: \"52:54:00:00:00:03\", role: controlplane, ip: 192.0.2.13}\n";

static char *job_init(struct job_fake *f)
{
    memset(f, 0, sizeof *f);
    char *dir = fixture_lab(NULL, JOB_MACHINES);
    f->tc = fixture_cluster(dir, &f->lab);
    struct bd_err err;
    cr_assert_eq(state_open(dir, &f->store, &err), 0, "%s", err.msg);
    const char *hosts[NODES] = {"192.0.2.11", "192.0.2.13", "192.0.2.12"};
    for (int i = 0; i < NODES; i++) {
        f->host[i] = hosts[i];
        snprintf(f->tag[i], sizeof f->tag[i], "v1.13.9");
        snprintf(f->kubelet[i], sizeof f->kubelet[i], "v1.35.0");
    }
    return dir;
}

static void job_done(struct job_fake *f, char *dir)
{
    state_close(f->store);
    fixture_done(f->tc, f->lab, dir);
}

/* Steps until the job is done or failed (or 200 steps); its final state. */
static void run_job(struct cluster *c, struct job_fake *f, struct state_day2 *j)
{
    struct bd_err err;
    for (int i = 0; i < 200; i++) {
        int64_t next = INT64_MAX;
        cluster_day2_step(c, &next);
        cr_assert_eq(state_day2_get(f->store, j, &err), 1);
        if (!strcmp(j->phase, "done") || !strcmp(j->phase, "failed"))
            return;
    }
    cr_assert_fail("the job never finished: %s at %lld", j->phase, (long long)j->pos);
}

Test(day2, upgrade_takes_control_planes_first_one_at_a_time)
{
    struct job_fake f;
    char *dir = job_init(&f);
    struct cluster *c = job_cluster(&f);
    struct bd_err err;
    cJSON *st = cluster_day2_start(c, "upgrade-talos", "v1.14.0", NULL, 0, 60, &err);
    cr_assert_not_null(st, "%s", err.msg);
    char *order = cJSON_PrintUnformatted(cJSON_GetObjectItem(st, "machines"));
    cr_assert_str_eq(order, "[\"cp-1\",\"cp-2\",\"w-1\"]");
    free(order);
    cJSON_Delete(st);
    cr_assert_null(cluster_day2_start(c, "apply", "auto", NULL, 0, 60, &err),
                   "one job at a time");
    struct state_day2 j;
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "done", "%s", j.error);
    cr_assert_str_eq(f.order, "192.0.2.11 192.0.2.13 192.0.2.12");
    for (int i = 0; i < NODES; i++)
        cr_assert_str_eq(f.tag[i], "v1.14.0");
    cluster_free(c);
    job_done(&f, dir);
}

Test(day2, a_rollback_stops_the_job_there)
{
    struct job_fake f;
    char *dir = job_init(&f);
    f.rolls_back[0] = true; /* cp-1 */
    struct cluster *c = job_cluster(&f);
    struct bd_err err;
    cJSON_Delete(cluster_day2_start(c, "upgrade-talos", "v1.14.0", NULL, 0, 60, &err));
    struct state_day2 j;
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "failed");
    assert_has(j.error, "cp-1 came back on v1.13.9, not v1.14.0");
    cr_assert_eq(f.upgrades, 1, "nothing after cp-1 was touched");
    cluster_free(c);
    job_done(&f, dir);
}

Test(day2, no_control_plane_goes_while_etcd_is_unhealthy)
{
    struct job_fake f;
    char *dir = job_init(&f);
    f.etcd_bad = true;
    struct cluster *c = job_cluster(&f);
    struct bd_err err;
    cJSON_Delete(cluster_day2_start(c, "upgrade-talos", "v1.14.0", NULL, 0, 1, &err));
    int64_t next = INT64_MAX;
    for (int i = 0; i < 5; i++)
        cluster_day2_step(c, &next);
    cr_assert_eq(f.upgrades, 0, "etcd first");
    struct state_day2 j;
    cr_assert_eq(state_day2_get(f.store, &j, &err), 1);
    cr_assert_str_eq(j.phase, "call");
    /* past the step's timeout (1 s) it gives up with the reason */
    j.step_started_ms -= 5000;
    cr_assert_eq(state_day2_set(f.store, &j, &err), 0);
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "failed");
    assert_has(j.error, "etcd not healthy");
    cr_assert_eq(f.upgrades, 0);
    cluster_free(c);
    job_done(&f, dir);
}

Test(day2, a_new_cluster_object_carries_on_with_the_stored_job)
{
    struct job_fake f;
    char *dir = job_init(&f);
    struct cluster *c = job_cluster(&f);
    struct bd_err err;
    cJSON_Delete(cluster_day2_start(c, "upgrade-talos", "v1.14.0", NULL, 0, 60, &err));
    int64_t next = INT64_MAX;
    cluster_day2_step(c, &next); /* cp-1 asked to upgrade, away */
    cr_assert_eq(f.upgrades, 1);
    cluster_free(c); /* bootd stops */
    c = job_cluster(&f);
    struct state_day2 j;
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "done", "%s", j.error);
    cr_assert_eq(f.upgrades, 3, "cp-1 not asked again");
    cluster_free(c);
    job_done(&f, dir);
}

Test(day2, with_kubernetes_up_a_machine_is_back_when_its_node_is_ready)
{
    struct job_fake f;
    char *dir = job_init(&f);
    f.kube.server = "https://192.0.2.11:6443";
    struct cluster *c = job_cluster(&f);
    c->kube.api_ready = true; /* the reconciler has seen the API answer */
    struct bd_err err;
    cJSON_Delete(cluster_day2_start(c, "upgrade-talos", "v1.14.0", NULL, 0, 60, &err));
    int64_t next = INT64_MAX;
    cluster_day2_step(c, &next); /* cp-1 goes */
    f.not_ready[0] = 3;              /* its kubelet takes a while once it is back */
    struct state_day2 j;
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "done", "%s", j.error);
    cr_assert_eq(f.not_ready[0], 0);
    cr_assert_geq(f.kube_calls, 6, "asked after each machine, and again while NotReady");
    cluster_free(c);
    job_done(&f, dir);
}

/* upgrade kubernetes: control planes first, each Node on the new kubelet and Ready before
 * the next, carried on by a new reconciler; a second run skips them all; another version
 * than lab.yaml's is refused. */
Test(day2, kubernetes_upgrade_follows_each_node_to_the_new_kubelet)
{
    struct job_fake f;
    char *dir = job_init(&f);
    f.kube.server = "https://192.0.2.11:6443";
    struct cluster *c = job_cluster(&f);
    c->kube.api_ready = true;
    struct bd_err err;
    for (size_t i = 0; i < f.lab->nmachines; i++) /* installed, on an older config */
        cr_assert_eq(cluster_applied_record(f.store, f.tc, f.lab, &f.lab->machines[i], "a: 1\n",
                                            5, "pxe", &err), 0, "%s", err.msg);
    cr_assert_null(cluster_day2_start(c, "upgrade-kubernetes", "v1.37.0", NULL, 0, 60, &err));
    assert_has(err.msg, "lab.yaml:5: cluster.kubernetes_version is 1.28.0, not 1.37.0");
    assert_has(err.msg, "bootctl reload");
    cJSON *st = cluster_day2_start(c, "upgrade-kubernetes", "1.28.0", NULL, 0, 60, &err);
    cr_assert_not_null(st, "%s", err.msg);
    cr_assert_str_eq(cJSON_GetObjectItem(st, "arg")->valuestring, "v1.28.0");
    cJSON_Delete(st);
    int64_t next = INT64_MAX;
    cluster_day2_step(c, &next); /* cp-1's config applied, its kubelet restarting */
    cr_assert_eq(f.applies, 1);
    cluster_free(c); /* bootd stops; a new one carries on without applying it again */
    c = job_cluster(&f);
    c->kube.api_ready = true;
    struct state_day2 j;
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "done", "%s", j.error);
    cr_assert_str_eq(f.order, "192.0.2.11 192.0.2.13 192.0.2.12");
    for (int i = 0; i < NODES; i++)
        cr_assert_eq(f.not_ready[i], 0, "each Node Ready before the job went on");
    cJSON_Delete(cluster_day2_start(c, "upgrade-kubernetes", "v1.28.0", NULL, 0, 60, &err));
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "done", "%s", j.error);
    cr_assert_eq(f.applies, 3, "nothing applied again");
    cluster_free(c);
    job_done(&f, dir);
}

/* A reload that lands while a round is under way: the job it starts (cluster.apply:
 * auto) renders the reloaded lab, not the one the round began with. */
Test(day2, a_job_renders_the_lab_of_the_reload_it_follows)
{
    struct job_fake f;
    char *dir = job_init(&f);
    struct cluster *c = job_cluster(&f);
    struct bd_err err;
    for (size_t i = 0; i < f.lab->nmachines; i++) { /* installed from the old lab */
        char *cfg = fixture_render(f.tc, f.lab, f.lab->machines[i].name);
        cr_assert_eq(cluster_applied_record(f.store, f.tc, f.lab, &f.lab->machines[i], cfg,
                                            strlen(cfg), "pxe", &err), 0, "%s", err.msg);
        free(cfg);
    }
    char *dir2 = fixture_lab("  install_disk: /dev/vdb\n", JOB_MACHINES);
    f.reload_tc = fixture_cluster(dir2, &f.reload_lab);
    f.c = c; /* the reload lands on the next lab_get */
    int64_t next = INT64_MAX;
    cluster_day2_step(c, &next);
    if (f.c) /* the step took no lab while there was no job: the reload lands now */
        jf_reload(&f);
    struct state_day2 j;
    run_job(c, &f, &j);
    cr_assert_str_eq(j.phase, "done", "%s", j.error);
    cr_assert_eq(f.applies, 3, "every machine got the reloaded lab's config");
    cr_assert_eq(f.new_disk, 3);
    cluster_free(c);
    job_done(&f, dir);                                /* the reloaded lab */
    fixture_done(f.reload_tc, f.reload_lab, dir2);    /* the old one */
}
