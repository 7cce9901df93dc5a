/* The reconciler's look at Kubernetes once etcd is bootstrapped: is the API server ready
 * (/readyz), which Nodes are Ready (their machines become joined), and is Cilium's
 * DaemonSet rolled out. It talks through kube/'s client with an admin certificate
 * minted from the cluster CA; when the API first answers it writes that kubeconfig to
 * <state-dir>/kubeconfig (if none is there) and hands the API on (env.kube_ready). */
#include "internal.h"

#include "../gitops/gitops.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CILIUM_PATH "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium"

void cluster_kube_view_clear(struct kube_view *v)
{
    free(v->nodes);
    memset(v, 0, sizeof *v);
}

static void target_of(const struct talos_kube_admin *a, struct kube_target *t)
{
    memset(t, 0, sizeof *t);
    t->server = a->server;
    t->ca_pem = a->ca_pem;
    t->cert_pem = a->crt_pem;
    t->key_pem = a->key_pem;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A Node is Ready when its Ready condition says True (kubelet's heartbeat). */
static void read_node(const cJSON *item, struct kube_node *n)
{
    memset(n, 0, sizeof *n);
    const char *name = str_at(item, "metadata", "name");
    snprintf(n->name, sizeof n->name, "%s", name ? name : "");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(item, "status");
    const char *kubelet = str_at(status, "nodeInfo", "kubeletVersion");
    snprintf(n->kubelet, sizeof n->kubelet, "%s", kubelet ? kubelet : "");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
    {
        const char *type = str_at(c, "type", NULL), *st = str_at(c, "status", NULL);
        if (type && st && !strcmp(type, "Ready")) {
            n->ready = !strcmp(st, "True");
            const char *reason = str_at(c, "reason", NULL), *msg = str_at(c, "message", NULL);
            snprintf(n->ready_why, sizeof n->ready_why, "%s%s%s", reason ? reason : st,
                     msg && *msg ? ": " : "", msg ? msg : "");
        }
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "addresses"))
    {
        const char *type = str_at(c, "type", NULL), *addr = str_at(c, "address", NULL);
        if (type && addr && !strcmp(type, "InternalIP") && !n->ip[0])
            snprintf(n->ip, sizeof n->ip, "%s", addr);
    }
}

static void read_nodes(const struct kube_call *c, struct kube_view *v)
{
    cJSON *j = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    size_t n = (size_t)cJSON_GetArraySize(items);
    v->nodes = bd_xcalloc(n + 1, sizeof *v->nodes);
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
        read_node(it, &v->nodes[v->nnodes++]);
    cJSON_Delete(j);
}

/* Cilium's DaemonSet by kstatus rules: every scheduled pod updated and available. */
static void read_cilium(const struct kube_call *c, struct kube_view *v)
{
    char why[256];
    if (c->status == 404) {
        snprintf(v->cilium, sizeof v->cilium, "no DaemonSet kube-system/cilium (yet)");
        return;
    }
    if (c->status != 200) {
        snprintf(v->cilium, sizeof v->cilium, "%s", kube_call_error(c, why, sizeof why));
        return;
    }
    cJSON *j = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
    v->cilium_found = true;
    char msg[200] = "";
    v->cilium_ready = gitops_health_of(j, msg, sizeof msg) == GITOPS_CURRENT;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(st, "desiredNumberScheduled");
    const cJSON *ready = cJSON_GetObjectItemCaseSensitive(st, "numberReady");
    snprintf(v->cilium, sizeof v->cilium, "%d/%d pods ready%s%s",
             cJSON_IsNumber(ready) ? ready->valueint : 0, cJSON_IsNumber(want) ? want->valueint : 0,
             v->cilium_ready || !msg[0] ? "" : ": ", v->cilium_ready ? "" : msg);
    cJSON_Delete(j);
}

const struct kube_node *cluster_kube_node_of(const struct kube_view *v,
                                             const struct lab_machine *m)
{
    char ip[16] = "";
    if (m->has_ip)
        bd_ipv4_format(m->ip, ip);
    for (size_t i = 0; i < v->nnodes; i++)
        if (!strcmp(v->nodes[i].name, m->hostname) || (ip[0] && !strcmp(v->nodes[i].ip, ip)))
            return &v->nodes[i];
    return NULL;
}

/* Machines whose Node is Ready are joined; returns how many of the lab's are. */
static size_t mark_joined(struct cluster *c, const struct lab *lab, const struct kube_view *v)
{
    size_t joined = 0;
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        const struct kube_node *n = cluster_kube_node_of(v, m);
        if (!n || !n->ready)
            continue;
        joined++;
        char mac[18], msg[160];
        bd_mac_format(&m->mac, mac);
        struct state_machine sm;
        struct bd_err err;
        if (state_machine_get(c->env.store, mac, &sm, &err) == 1 && sm.state >= STATE_JOINED)
            continue;
        snprintf(msg, sizeof msg, "Kubernetes node %s is Ready", n->name);
        if (state_machine_set_state(c->env.store, mac, STATE_JOINED, "kube", msg, &err) < 0)
            bd_warn("reconcile: %s: %s", m->name, err.msg);
    }
    return joined;
}

/* The API answers: bootd's kubeconfig goes where users and the GitOps loop look for
 * one, unless lab.yaml names another. */
static void hand_over(struct cluster *c, const struct cluster_lab *l)
{
    if (!l->lab->gitops.kubeconfig && c->env.state_dir) {
        char *path = bd_path_join(c->env.state_dir, "kubeconfig");
        struct bd_err err;
        if (access(path, F_OK) < 0) {
            struct bd_buf kc;
            bd_buf_init(&kc);
            if (talos_kubeconfig(l->lab, talos_cluster_secrets(l->talos, NULL), &kc, &err) < 0 ||
                bd_file_write_atomic(path, kc.data, kc.len, 0600, &err) < 0)
                bd_warn("reconcile: cannot write %s: %s", path, err.msg);
            else
                bd_info("reconcile: wrote the admin kubeconfig %s", path);
            bd_buf_free(&kc);
        }
        free(path);
    }
    if (c->env.kube_ready) {
        struct kube_target t;
        target_of(l->kube, &t);
        c->env.kube_ready(c->env.ud, &t);
    }
}

void cluster_kube_look(struct cluster *c, const struct cluster_lab *l,
                       const struct kube_view *prev, struct kube_view *v)
{
    memset(v, 0, sizeof *v);
    if (!l->kube) {
        snprintf(v->api, sizeof v->api, "%s", l->kube_error ? l->kube_error : "?");
        return;
    }
    struct kube_target t;
    target_of(l->kube, &t);
    struct kube_call calls[3] = {
        {.method = "GET", .path = bd_xstrdup("/readyz")},
        {.method = "GET", .path = bd_xstrdup("/api/v1/nodes")},
        {.method = "GET", .path = bd_xstrdup(CILIUM_PATH)},
    };
    c->env.kube_run(c->env.ud, &t, &c->worker.cancel, calls, 3);
    char why[300];
    v->api_ready = calls[0].status == 200;
    snprintf(v->api, sizeof v->api, "%s: %s", l->kube->server,
             v->api_ready ? "ready" : kube_call_error(&calls[0], why, sizeof why));
    if (v->api_ready && calls[1].status == 200)
        read_nodes(&calls[1], v);
    if (v->api_ready)
        read_cilium(&calls[2], v);
    for (size_t i = 0; i < 3; i++)
        kube_call_clear(&calls[i]);

    v->joined = mark_joined(c, l->lab, v);
    char msg[700];
    if (v->api_ready && !prev->api_ready) {
        snprintf(msg, sizeof msg, "Kubernetes API ready at %s", l->kube->server);
        cluster_event(c, "kube", NULL, "kubernetes-ready", msg);
        c->secrets_pending = true;
    }
    if (v->api_ready && c->secrets_pending &&
        cluster_bootstrap_secrets_apply(c, l, &t) == 0) { /* GitOps only after them */
        c->secrets_pending = false;
        hand_over(c, l);
    }
    if (v->cilium_ready && !prev->cilium_ready) {
        snprintf(msg, sizeof msg, "Cilium ready: %s", v->cilium);
        cluster_event(c, "kube", NULL, "cilium-ready", msg);
    }
    if (v->joined == l->lab->nmachines && prev->joined != v->joined) {
        snprintf(msg, sizeof msg, "all %zu machines joined the cluster", v->joined);
        cluster_event(c, "kube", NULL, "cluster-ready", msg);
    }
}

int cluster_kube_node_ready(struct cluster *c, const struct cluster_lab *l,
                            const struct lab_machine *m, const char *kubelet, char *why,
                            size_t n)
{
    pthread_mutex_lock(&c->worker.mu);
    bool seen = c->kube.api_ready;
    pthread_mutex_unlock(&c->worker.mu);
    if (!seen || !l->kube)
        return -1; /* no Kubernetes yet: nothing to wait for */
    struct kube_target t;
    target_of(l->kube, &t);
    struct kube_call call = {.method = "GET", .path = bd_xstrdup("/api/v1/nodes")};
    c->env.kube_run(c->env.ud, &t, &c->worker.cancel, &call, 1);
    struct kube_view v = {0};
    int rc = 0;
    char e[300];
    if (call.status != 200) {
        snprintf(why, n, "Kubernetes: %s", kube_call_error(&call, e, sizeof e));
    } else {
        read_nodes(&call, &v);
        const struct kube_node *node = cluster_kube_node_of(&v, m);
        bool at = !kubelet || (node && !strcmp(node->kubelet, kubelet));
        rc = node && node->ready && at;
        if (!node)
            snprintf(why, n, "its Node is not registered");
        else if (!at)
            snprintf(why, n, "its Node %s reports kubelet %s", node->name,
                     node->kubelet[0] ? node->kubelet : "(none)");
        else if (!node->ready)
            snprintf(why, n, "its Node %s is not Ready (%s)", node->name, node->ready_why);
        else
            snprintf(why, n, "its Node %s is Ready", node->name);
    }
    kube_call_clear(&call);
    cluster_kube_view_clear(&v);
    return rc;
}
