/* gitops/: health rules, kubeconfig, rendering (plain YAML, the built-in kustomize, an
 * external tool), inventory ids and the store's GitOps tables. */
#include "helpers.h"

#include "../../gitops/internal.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define assert_has(msg, needle) cr_assert(strstr((msg), (needle)), "\"%s\" not in: %s", needle, msg)

/* ---- health ---- */

static enum gitops_health health(const char *json, char *msg)
{
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "bad test JSON: %s", json);
    enum gitops_health h = gitops_health_of(j, msg, 256);
    cJSON_Delete(j);
    return h;
}

Test(gitops_health, deployment)
{
    char msg[256];
    const char *head = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                       "\"metadata\":{\"generation\":2},\"spec\":{\"replicas\":3},";
    char *fresh = bd_xasprintf("%s\"status\":{}}", head);
    cr_assert_eq(health(fresh, msg), GITOPS_IN_PROGRESS);
    assert_has(msg, "updated: 0/3");
    char *old_gen = bd_xasprintf("%s\"status\":{\"observedGeneration\":1,\"updatedReplicas\":3,"
                                 "\"replicas\":3,\"readyReplicas\":3,\"availableReplicas\":3}}",
                                 head);
    cr_assert_eq(health(old_gen, msg), GITOPS_IN_PROGRESS);
    assert_has(msg, "generation 2 not observed yet");
    char *ready = bd_xasprintf(
        "%s\"status\":{\"observedGeneration\":2,\"updatedReplicas\":3,\"replicas\":3,"
        "\"readyReplicas\":3,\"availableReplicas\":3,\"conditions\":[{\"type\":\"Available\","
        "\"status\":\"True\"}]}}",
        head);
    cr_assert_eq(health(ready, msg), GITOPS_CURRENT, "%s", msg);
    char *surge = bd_xasprintf("%s\"status\":{\"observedGeneration\":2,\"updatedReplicas\":3,"
                               "\"replicas\":4,\"readyReplicas\":3,\"availableReplicas\":3}}",
                               head);
    cr_assert_eq(health(surge, msg), GITOPS_IN_PROGRESS);
    assert_has(msg, "pending termination: 1");
    char *dead = bd_xasprintf("%s\"status\":{\"conditions\":[{\"type\":\"Progressing\","
                              "\"status\":\"False\",\"reason\":\"ProgressDeadlineExceeded\"}]}}",
                              head);
    cr_assert_eq(health(dead, msg), GITOPS_FAILED);
    cr_assert_eq(health("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{},"
                        "\"spec\":{\"replicas\":0}}",
                        msg),
                 GITOPS_CURRENT, "zero replicas are trivially there: %s", msg);
    free(fresh);
    free(old_gen);
    free(ready);
    free(surge);
    free(dead);
}

Test(gitops_health, statefulset_daemonset_job_crd)
{
    char msg[256];
    cr_assert_eq(health("{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{},"
                        "\"spec\":{\"replicas\":2},\"status\":{\"readyReplicas\":2,"
                        "\"currentReplicas\":2,\"replicas\":2,\"currentRevision\":\"a\","
                        "\"updateRevision\":\"b\"}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    assert_has(msg, "rolling update");
    cr_assert_eq(health("{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{},"
                        "\"spec\":{\"updateStrategy\":{\"type\":\"OnDelete\"}}}",
                        msg),
                 GITOPS_CURRENT);
    cr_assert_eq(health("{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{}}", msg),
                 GITOPS_IN_PROGRESS);
    cr_assert_eq(health("{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{},"
                        "\"status\":{\"desiredNumberScheduled\":3,\"currentNumberScheduled\":3,"
                        "\"updatedNumberScheduled\":3,\"numberAvailable\":2,\"numberReady\":3}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    assert_has(msg, "numberAvailable: 2/3");
    cr_assert_eq(health("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{},"
                        "\"status\":{\"conditions\":[{\"type\":\"Failed\",\"status\":\"True\","
                        "\"message\":\"BackoffLimitExceeded\"}]}}",
                        msg),
                 GITOPS_FAILED);
    assert_has(msg, "BackoffLimitExceeded");
    cr_assert_eq(health("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{},"
                        "\"status\":{}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    cr_assert_eq(health("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{},"
                        "\"status\":{\"startTime\":\"2026-01-01T00:00:00Z\"}}",
                        msg),
                 GITOPS_CURRENT, "kstatus: a started job is current");
    cr_assert_eq(health("{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":"
                        "\"CustomResourceDefinition\",\"metadata\":{}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    cr_assert_eq(health("{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":"
                        "\"CustomResourceDefinition\",\"metadata\":{},\"status\":{\"conditions\":"
                        "[{\"type\":\"Established\",\"status\":\"True\"}]}}",
                        msg),
                 GITOPS_CURRENT);
    cr_assert_eq(health("{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":"
                        "\"CustomResourceDefinition\",\"metadata\":{},\"status\":{\"conditions\":"
                        "[{\"type\":\"NamesAccepted\",\"status\":\"False\"}]}}",
                        msg),
                 GITOPS_FAILED);
}

Test(gitops_health, generic_conditions)
{
    char msg[256];
    cr_assert_eq(health("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{}}", msg),
                 GITOPS_CURRENT);
    cr_assert_eq(health("{\"apiVersion\":\"x/v1\",\"kind\":\"Thing\",\"metadata\":{},\"status\":"
                        "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"message\":"
                        "\"waiting for db\"}]}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    assert_has(msg, "waiting for db");
    cr_assert_eq(health("{\"apiVersion\":\"x/v1\",\"kind\":\"Thing\",\"metadata\":{},\"status\":"
                        "{\"conditions\":[{\"type\":\"Stalled\",\"status\":\"True\"}]}}",
                        msg),
                 GITOPS_FAILED);
    cr_assert_eq(health("{\"apiVersion\":\"x/v1\",\"kind\":\"Thing\",\"metadata\":{},\"status\":"
                        "{\"conditions\":[{\"type\":\"Reconciling\",\"status\":\"True\"}]}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    cr_assert_eq(health("{\"apiVersion\":\"x/v1\",\"kind\":\"Thing\",\"metadata\":"
                        "{\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"}}",
                        msg),
                 GITOPS_IN_PROGRESS);
    assert_has(msg, "being deleted");
}

/* ---- kubeconfig ---- */

static const char kubeconfig_text[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "clusters:\n"
    "- name: lab\n"
    "  cluster:\n"
    "    server: https://192.0.2.10:6443\n"
    "    certificate-authority-data: Q0EgUEVN\n" /* "CA PEM" */
    "users:\n"
    "- name: admin\n"
    "  user:\n"
    "    client-certificate: cert.pem\n"
    "    client-key-data: S0VZ\n" /* "KEY" */
    "contexts:\n"
    "- name: admin@lab\n"
    "  context: {cluster: lab, user: admin}\n"
    "current-context: admin@lab\n";

Test(gitops_kubeconfig, reads_the_current_context)
{
    char *dir = tmpdir_new();
    free(write_file(dir, "cert.pem", "CERT PEM"));
    char *path = write_file(dir, "kubeconfig", kubeconfig_text);
    chmod(path, 0600);
    struct kube_target t;
    struct bd_err err;
    cr_assert_eq(kube_kubeconfig_load(path, &t, &err), 0, "%s", err.msg);
    cr_assert_str_eq(t.server, "https://192.0.2.10:6443");
    cr_assert_str_eq(t.ca_pem, "CA PEM");
    cr_assert_str_eq(t.cert_pem, "CERT PEM");
    cr_assert_str_eq(t.key_pem, "KEY");
    cr_assert_null(t.token);
    kube_target_free(&t);
    chmod(path, 0644);
    cr_assert_eq(kube_kubeconfig_load(path, &t, &err), -1);
    assert_has(err.msg, "chmod 600");
    free(path);
    free(dir);
}

Test(gitops_kubeconfig, says_what_is_missing)
{
    char *dir = tmpdir_new();
    struct bd_err err;
    struct kube_target t;
    struct {
        const char *from, *to, *want;
    } cases[] = {
        {"    certificate-authority-data: Q0EgUEVN\n", "", "no certificate-authority"},
        {"current-context: admin@lab", "current-context: nope", "\"nope\" is not among contexts"},
        {"https://192.0.2.10", "http://192.0.2.10", "must be an https:// URL"},
        {"    client-key-data: S0VZ\n", "", "neither a client certificate and key nor a token"},
        {"Q0EgUEVN", "not$base64", "certificate-authority-data is not valid base64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = bd_xstrdup(kubeconfig_text);
        char *at = strstr(text, cases[i].from);
        cr_assert_not_null(at);
        char *edited = bd_xasprintf("%.*s%s%s", (int)(at - text), text, cases[i].to,
                                    at + strlen(cases[i].from));
        free(write_file(dir, "cert.pem", "CERT"));
        char *path = write_file(dir, "kubeconfig", edited);
        chmod(path, 0600);
        cr_assert_eq(kube_kubeconfig_load(path, &t, &err), -1, "case %zu", i);
        assert_has(err.msg, cases[i].want);
        free(path);
        free(edited);
        free(text);
    }
    free(dir);
}

/* ---- rendering ---- */

static int render(const char *root, const char *rel, const char *tool, struct gitops_objs *out,
                  struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    struct gitops_render_opts o = {.kustomize = tool, .timeout_s = 1};
    return gitops_render_path(root, rel, 0, &o, out, err);
}

Test(gitops_render, plain_directories_recursive_in_stable_order)
{
    char *dir = tmpdir_new();
    free(write_file(dir, "m/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
                                     "---\n---\n# only a comment\n---\n"
                                     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b2}\n"));
    free(write_file(dir, "m/a/z.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: az}\n"));
    free(write_file(dir, "m/a.json", "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", "
                                     "\"metadata\": {\"name\": \"aj\"}}"));
    free(write_file(dir, "m/README.md", "not yaml: [\n"));
    free(write_file(dir, "m/.hidden/x.yaml", "broken: [\n"));
    free(write_file(dir, "m/list.yaml", "apiVersion: v1\nkind: List\nitems:\n"
                                        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: l1}}\n"
                                        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: l2}}\n"));
    struct gitops_objs objs;
    struct bd_err err;
    cr_assert_eq(render(dir, "m", "builtin", &objs, &err), 0, "%s", err.msg);
    const char *want[] = {"az", "aj", "b", "b2", "l1", "l2"};
    cr_assert_eq(objs.n, 6, "got %zu objects", objs.n);
    for (size_t i = 0; i < 6; i++)
        cr_assert_str_eq(objs.v[i].name, want[i]);
    assert_has(objs.v[3].src, "m/b.yaml:8");
    cr_assert_null(objs.v[0].ns);
    gitops_objs_free(&objs);
    free(dir);
}

Test(gitops_render, bad_manifests_name_file_and_line)
{
    char *dir = tmpdir_new();
    struct gitops_objs objs;
    struct bd_err err;
    free(write_file(dir, "a/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
                                     "data: {a: [1, 2}\n"));
    cr_assert_eq(render(dir, "a", "builtin", &objs, &err), -1);
    assert_has(err.msg, "a/x.yaml:5:");
    gitops_objs_free(&objs);
    free(write_file(dir, "b/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n"
                                     "---\napiVersion: v1\nmetadata: {name: nokind}\n"));
    cr_assert_eq(render(dir, "b", "builtin", &objs, &err), -1);
    assert_has(err.msg, "b/x.yaml:5: object has no kind");
    gitops_objs_free(&objs);
    free(write_file(dir, "c/x.yaml", "- just\n- a list\n"));
    cr_assert_eq(render(dir, "c", "builtin", &objs, &err), -1);
    assert_has(err.msg, "c/x.yaml:1: expected a Kubernetes object (a mapping), got a list");
    gitops_objs_free(&objs);
    free(write_file(dir, "d/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a/b}\n"));
    cr_assert_eq(render(dir, "d", "builtin", &objs, &err), -1);
    assert_has(err.msg, "metadata.name is not a valid object name");
    gitops_objs_free(&objs);
    cr_assert_eq(render(dir, "missing", "builtin", &objs, &err), -1);
    assert_has(err.msg, "missing: No such file or directory");
    gitops_objs_free(&objs);
    free(dir);
}

Test(gitops_render, symlinks_stay_inside_the_repository)
{
    char *dir = tmpdir_new();
    char *outside = tmpdir_new();
    char *secret = write_file(outside, "s.yaml", "apiVersion: v1\nkind: Secret\n"
                                                 "metadata: {name: stolen}\n");
    char *repo = bd_path_join(dir, "repo");
    char *link = bd_path_join(repo, "m/link.yaml");
    free(write_file(repo, "m/ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n"));
    cr_assert_eq(symlink(secret, link), 0);
    struct gitops_objs objs;
    struct bd_err err;
    cr_assert_eq(render(repo, "m", "builtin", &objs, &err), -1);
    assert_has(err.msg, "leads outside the repository");
    gitops_objs_free(&objs);
    free(link);
    free(repo);
    free(secret);
    free(outside);
    free(dir);
}

Test(gitops_render, builtin_kustomize_refuses_what_it_cannot_do)
{
    char *dir = tmpdir_new();
    struct gitops_objs objs;
    struct bd_err err;
    free(write_file(dir, "k/kustomization.yaml", "resources: [a.yaml]\n"
                                                 "replacements: [{path: r.yaml}]\n"));
    free(write_file(dir, "k/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"));
    cr_assert_eq(render(dir, "k", "builtin", &objs, &err), -1);
    assert_has(err.msg, "k/kustomization.yaml:2: replacements: the built-in renderer does not "
                        "handle this field");
    gitops_objs_free(&objs);
    free(write_file(dir, "r/kustomization.yaml",
                    "resources:\n- a.yaml\n- https://example.com/x.yaml\n"));
    free(write_file(dir, "r/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"));
    cr_assert_eq(render(dir, "r", "builtin", &objs, &err), -1);
    assert_has(err.msg, "r/kustomization.yaml:3: resources[1]: \"https://example.com/x.yaml\" is "
                        "remote");
    gitops_objs_free(&objs);
    free(write_file(dir, "o/inner/kustomization.yaml", "resources: [../secret.yaml]\n"));
    free(write_file(dir, "o/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"));
    cr_assert_eq(render(dir, "o/inner", "builtin", &objs, &err), -1);
    assert_has(err.msg, "resources[0]: ../secret.yaml is not in or below");
    gitops_objs_free(&objs);
    free(write_file(dir, "d/kustomization.yaml", "resources: [a.yaml, b.yaml]\n"));
    free(write_file(dir, "d/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"));
    free(write_file(dir, "d/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"));
    cr_assert_eq(render(dir, "d", "builtin", &objs, &err), -1);
    assert_has(err.msg, "ConfigMap a appears twice");
    gitops_objs_free(&objs);
    free(write_file(dir, "n/kustomization.yaml", "namespace: x\nresources: [a.yaml]\n"));
    free(write_file(dir, "n/a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
                                     "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"));
    cr_assert_eq(render(dir, "n", "builtin", &objs, &err), -1);
    assert_has(err.msg, "two Namespace objects");
    gitops_objs_free(&objs);
    free(dir);
}

Test(gitops_render, builtin_kustomize_sets_the_namespace)
{
    char *dir = tmpdir_new();
    free(write_file(dir, "k/kustomization.yaml", "namespace: apps\nresources: [a.yaml, sub]\n"));
    free(write_file(dir, "k/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, "
                                     "namespace: other}\ndata: {day: 2026-03-04}\n---\n"
                                     "apiVersion: rbac.authorization.k8s.io/v1\n"
                                     "kind: ClusterRole\nmetadata: {name: cr}\n"));
    free(write_file(dir, "k/sub/kustomization.yaml", "resources: [b.yaml]\n"));
    free(write_file(dir, "k/sub/b.yaml", "apiVersion: example.com/v1\nkind: Widget\n"
                                         "metadata: {name: w}\n"));
    struct gitops_objs objs;
    struct bd_err err;
    cr_assert_eq(render(dir, "k", "builtin", &objs, &err), 0, "%s", err.msg);
    cr_assert_eq(objs.n, 3);
    cr_assert_str_eq(objs.v[0].ns, "apps");
    cr_assert_null(objs.v[1].ns, "ClusterRole is cluster-wide");
    cr_assert_str_eq(objs.v[2].ns, "apps", "custom kinds get the namespace");
    const cJSON *day = cJSON_GetObjectItem(cJSON_GetObjectItem(objs.v[0].json, "data"), "day");
    cr_assert_str_eq(day->valuestring, "2026-03-04T00:00:00Z", "a date reads as a timestamp");
    gitops_objs_free(&objs);
    free(dir);
}

Test(gitops_render, external_tool_output_errors_and_timeout)
{
    char *dir = tmpdir_new();
    char *tool = write_file(dir, "bin/kustomize",
                            "#!/bin/sh\n"
                            "test \"$1 $2\" = \"build --enable-helm\" || exit 9\n"
                            "case \"$3\" in\n"
                            "*/ok) printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: "
                            "from-tool}\\n' ;;\n"
                            "*/bad) echo 'Error: accumulating resources: boom' >&2; exit 1 ;;\n"
                            "*) sleep 5 ;;\n"
                            "esac\n");
    chmod(tool, 0755);
    free(write_file(dir, "ok/kustomization.yaml", "helmCharts: [{name: x}]\n"));
    free(write_file(dir, "bad/kustomization.yaml", "resources: []\n"));
    free(write_file(dir, "slow/kustomization.yaml", "resources: []\n"));
    struct gitops_objs objs;
    struct bd_err err;
    cr_assert_eq(render(dir, "ok", tool, &objs, &err), 0, "%s", err.msg);
    cr_assert_eq(objs.n, 1);
    cr_assert_str_eq(objs.v[0].name, "from-tool");
    assert_has(objs.v[0].src, "ok (kustomize build output):1");
    gitops_objs_free(&objs);
    cr_assert_eq(render(dir, "bad", tool, &objs, &err), -1);
    assert_has(err.msg, "build failed (exit 1): Error: accumulating resources: boom");
    gitops_objs_free(&objs);
    cr_assert_eq(render(dir, "slow", tool, &objs, &err), -1);
    assert_has(err.msg, "timed out after 1s");
    gitops_objs_free(&objs);
    char *missing = bd_path_join(dir, "bin/none");
    cr_assert_eq(render(dir, "ok", missing, &objs, &err), -1);
    assert_has(err.msg, "cannot run");
    gitops_objs_free(&objs);
    free(missing);
    free(tool);
    free(dir);
}

/* ---- drift ---- */

static bool drift(const char *want, const char *live, char *why)
{
    cJSON *w = cJSON_Parse(want), *l = cJSON_Parse(live);
    cr_assert(w && l, "bad test JSON");
    bool d = gitops_drifted(w, l, "bootd", why, 256);
    cJSON_Delete(w);
    cJSON_Delete(l);
    return d;
}

Test(gitops_drift, fields_values_and_owners)
{
    char why[256];
    const char *want = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                       "\"labels\":{\"a\":\"1\"}},\"data\":{\"k\":\"v\"},\"list\":[{\"x\":1}]}";
    const char *mf = "\"managedFields\":[{\"manager\":\"bootd\",\"operation\":\"Apply\","
                     "\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\"f:a\":{}}},\"f:data\":{\"f:k\":{}},"
                     "\"f:list\":{}}}]";
    char *same = bd_xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                              "\"c\",\"uid\":\"u\",\"labels\":{\"a\":\"1\",\"extra\":\"e\"},%s},"
                              "\"data\":{\"k\":\"v\",\"other\":\"o\"},\"list\":[{\"x\":1,\"d\":2}]}",
                              mf);
    cr_assert_not(drift(want, same, why), "extra fields are not drift: %s", why);
    char *changed = bd_xasprintf("{\"metadata\":{%s,\"labels\":{\"a\":\"1\"}},"
                                 "\"data\":{\"k\":\"w\"},\"list\":[{\"x\":1}]}", mf);
    cr_assert(drift(want, changed, why));
    assert_has(why, "data.k is \"w\" in the cluster, \"v\" in Git");
    char *shorter = bd_xasprintf("{\"metadata\":{%s,\"labels\":{\"a\":\"1\"}},"
                                 "\"data\":{\"k\":\"v\"},\"list\":[]}", mf);
    cr_assert(drift(want, shorter, why));
    assert_has(why, "list is [] in the cluster, a list of 1 in Git");
    const char *taken = "{\"metadata\":{\"managedFields\":[{\"manager\":\"bootd\",\"operation\":"
                        "\"Apply\",\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\"f:a\":{}}},"
                        "\"f:list\":{}}}],\"labels\":{\"a\":\"1\"}},\"data\":{\"k\":\"v\"},"
                        "\"list\":[{\"x\":1}]}";
    cr_assert(drift(want, taken, why));
    assert_has(why, "data is no longer managed by bootd");
    cr_assert(drift(want, "{\"metadata\":{}}", why));
    assert_has(why, "no field of it is managed by bootd");
    free(same);
    free(changed);
    free(shorter);
}

Test(gitops_drift, quantities_compare_by_value_where_the_api_server_canonicalises_them)
{
    cr_assert(gitops_quantity_equal("1000m", "1"));
    cr_assert(gitops_quantity_equal("0.5", "500m"));
    cr_assert(gitops_quantity_equal("1.5Gi", "1536Mi"));
    cr_assert(gitops_quantity_equal("1e3", "1k"));
    cr_assert(gitops_quantity_equal("1E", "1000P"), "E alone is exa, not an exponent");
    cr_assert(gitops_quantity_equal("-0", "0m"));
    cr_assert(gitops_quantity_equal("+2", "2"));
    cr_assert_not(gitops_quantity_equal("1Gi", "1G"));
    cr_assert_not(gitops_quantity_equal("100m", "1"));
    cr_assert_not(gitops_quantity_equal("1", "-1"));
    cr_assert_not(gitops_quantity_equal("1x", "1x"), "not a quantity");
    cr_assert_not(gitops_quantity_equal(".", "0"));
    cr_assert_not(gitops_quantity_equal("1Ki", "1.0001Ki"));

    char why[256];
    const char *mf = "\"managedFields\":[{\"manager\":\"bootd\",\"operation\":\"Apply\","
                     "\"fieldsV1\":{\"f:spec\":{\"f:resources\":{\"f:limits\":{\"f:cpu\":{},"
                     "\"f:memory\":{}}},\"f:name\":{}}}}]";
    const char *want = "{\"kind\":\"X\",\"spec\":{\"resources\":{\"limits\":"
                       "{\"cpu\":\"1000m\",\"memory\":1073741824}},\"name\":\"1000m\"}}";
    char *live = bd_xasprintf("{\"metadata\":{%s},\"spec\":{\"resources\":{\"limits\":"
                              "{\"cpu\":\"1\",\"memory\":\"1Gi\"}},\"name\":\"1000m\"}}", mf);
    cr_assert_not(drift(want, live, why), "canonical quantities are not drift: %s", why);
    free(live);
    live = bd_xasprintf("{\"metadata\":{%s},\"spec\":{\"resources\":{\"limits\":"
                        "{\"cpu\":\"2\",\"memory\":\"1Gi\"}},\"name\":\"1000m\"}}", mf);
    cr_assert(drift(want, live, why));
    assert_has(why, "spec.resources.limits.cpu is \"2\" in the cluster");
    free(live);
    live = bd_xasprintf("{\"metadata\":{%s},\"spec\":{\"resources\":{\"limits\":"
                        "{\"cpu\":\"1\",\"memory\":\"1Gi\"}},\"name\":\"1\"}}", mf);
    cr_assert(drift(want, live, why), "outside quantity fields, text is compared as text");
    assert_has(why, "spec.name");
    free(live);
}

/* ---- ids, paths, store ---- */

Test(gitops_ids, ids_and_paths)
{
    char *id = gitops_object_id("apps/v1", "Deployment", "web", "site");
    cr_assert_str_eq(id, "apps/Deployment/web/site");
    free(id);
    id = gitops_object_id("v1", "Namespace", NULL, "web");
    cr_assert_str_eq(id, "/Namespace//web");
    free(id);
    struct kube_resource ns_res = {.kind = "ConfigMap", .plural = "configmaps", .namespaced = true};
    struct kube_resource cl_res = {.kind = "ClusterRole", .plural = "clusterroles"};
    char *p = kube_object_path("v1", &ns_res, "a", "b");
    cr_assert_str_eq(p, "/api/v1/namespaces/a/configmaps/b");
    free(p);
    p = kube_object_path("rbac.authorization.k8s.io/v1", &cl_res, NULL, "x");
    cr_assert_str_eq(p, "/apis/rbac.authorization.k8s.io/v1/clusterroles/x");
    free(p);
}

Test(gitops_store, inventory_and_history)
{
    char *dir = tmpdir_new();
    struct state_db *st;
    struct bd_err err;
    cr_assert_eq(state_open(dir, &st, &err), 0, "%s", err.msg);
    struct state_gitops_item inv[2] = {{.id = "/ConfigMap/a/b", .api_version = "v1"},
                                       {.id = "apps/Deployment/a/d", .api_version = "apps/v1"}};
    strcpy(inv[0].hash, "h1");
    strcpy(inv[1].hash, "h2");
    struct state_gitops_sync ok = {.started_ms = 1, .finished_ms = 2, .revision = "abc", .ok = true,
                                   .applied = 2};
    cr_assert_eq(state_gitops_record(st, &ok, inv, 2, true, &err), 0, "%s", err.msg);
    struct state_gitops_sync bad = {.started_ms = 3, .finished_ms = 4, .revision = "def",
                                    .error = "render failed", .detail = "{}"};
    cr_assert_eq(state_gitops_record(st, &bad, NULL, 0, false, &err), 0, "%s", err.msg);
    struct state_gitops_item *got;
    size_t n;
    cr_assert_eq(state_gitops_inventory(st, &got, &n, &err), 0);
    cr_assert_eq(n, 2, "a failed sync keeps the inventory");
    cr_assert_str_eq(got[1].api_version, "apps/v1");
    cr_assert_str_eq(got[1].hash, "h2");
    state_gitops_items_free(got, n);
    struct state_gitops_sync last;
    cr_assert_eq(state_gitops_last_sync(st, false, &last, &err), 1);
    cr_assert_str_eq(last.revision, "def");
    cr_assert_str_eq(last.error, "render failed");
    cr_assert(!last.ok);
    state_gitops_sync_free(&last);
    cr_assert_eq(state_gitops_last_sync(st, true, &last, &err), 1);
    cr_assert_str_eq(last.revision, "abc");
    cr_assert_eq(last.applied, 2);
    state_gitops_sync_free(&last);
    for (int i = 0; i < 120; i++)
        cr_assert_eq(state_gitops_record(st, &bad, NULL, 0, false, &err), 0);
    cr_assert_eq(state_gitops_last_sync(st, true, &last, &err), 0, "history is bounded");
    state_close(st);
    free(dir);
}

Test(gitops_lab, fields_and_defaults)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%s"
                              "gitops:\n"
                              "  repo: https://git.example.org/lab.git\n"
                              "  kubeconfig: secrets/kubeconfig\n"
                              "  kustomize: tools/kubectl\n"
                              "  groups: [{name: base, paths: [k8s/base]}]\n",
                              lab_head);
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    char *want = bd_xasprintf("%s/secrets/kubeconfig", dir);
    cr_assert_str_eq(lab->gitops.kubeconfig, want);
    cr_assert_eq(lab->gitops.kustomize_timeout_s, 120);
    struct gitops_cfg *cfg = gitops_cfg_from_lab(lab, "/var/lib/bootd");
    cr_assert_str_eq(cfg->checkout_dir, "/var/lib/bootd/gitops");
    char *tool = bd_xasprintf("%s/tools/kubectl", dir);
    cr_assert_str_eq(cfg->kustomize, tool);
    cr_assert_str_eq(cfg->ref, "main");
    cr_assert_str_eq(cfg->groups[0].paths[0], "k8s/base");
    gitops_cfg_free(cfg);
    free(tool);
    free(want);
    lab_free(lab);
    free(text);
    free(dir);
}
