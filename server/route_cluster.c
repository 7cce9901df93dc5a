/* /api/v1/cluster/...: asking for bootstrap, and what only a control plane's Talos API
 * hands out: the admin kubeconfig (with how it compares to the one bootd mints) and an
 * etcd snapshot. Both go through bootd's own os:admin credentials, so bootctl needs no
 * secrets bundle, only the admin token. */
#include "server.h"

#include "../cluster/cluster.h"
#include "../talos/talos.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALL_CONNECT_TIMEOUT_MS 5000

static enum MHD_Result bootstrap(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct bd_err err;
    int rc = cluster_request_bootstrap(s->cluster, &err);
    if (rc < 0)
        return server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s", err.msg);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "already_done", rc == 1);
    cJSON_AddItemToObject(o, "cluster_state", cluster_status(s->cluster));
    return server_reply_json(c, r, rc == 1 ? MHD_HTTP_OK : MHD_HTTP_ACCEPTED, o);
}

/* The control plane a call goes to: ?node=NAME, else the bootstrap node. Fills *m, ip
 * and n (which points at ip); on failure replies and returns false. */
static bool pick_node(struct server *s, struct MHD_Connection *c, struct req *r,
                      const struct lab_snap *snap, const struct lab_machine **m, char ip[16],
                      struct talos_node *n, enum MHD_Result *res)
{
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "node");
    if (!name)
        name = snap->lab->cluster.bootstrap_node;
    *m = name ? lab_machine_by_name(snap->lab, name) : NULL;
    if (!snap->creds)
        *res = server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "bootd cannot call the Talos API: %s",
                                snap->creds_error);
    else if (!*m)
        *res = server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "no machine named \"%s\" in the lab",
                                name ? name : "");
    else if ((*m)->role != LAB_ROLE_CONTROLPLANE)
        *res = server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST,
                                "%s is a worker; only control planes answer this", name);
    else if (!cluster_machine_addr(s->store, *m, ip))
        *res = server_reply_error_json(c, r, MHD_HTTP_CONFLICT,
                                "no address known for %s (no ip in lab.yaml, not seen booting)",
                                name);
    else {
        memset(n, 0, sizeof *n);
        n->host = ip;
        n->port = s->opts.talos_port ? s->opts.talos_port : TALOS_API_PORT;
        n->creds = snap->creds;
        n->connect_timeout_ms = CALL_CONNECT_TIMEOUT_MS;
        return true;
    }
    return false;
}

static enum MHD_Result kubeconfig(struct MHD_Connection *c, struct req *r,
                                  const struct lab_snap *snap, const struct lab_machine *m,
                                  const struct talos_node *n)
{
    char *text;
    size_t len;
    int code;
    struct bd_err err;
    if (talos_api_kubeconfig(n, &text, &len, &code, &err) < 0)
        return server_reply_error_json(c, r, MHD_HTTP_BAD_GATEWAY, "%s: %s", m->name, err.msg);
    struct talos_kube_check checks[TALOS_KUBE_CHECKS];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "node", m->name);
    cJSON_AddStringToObject(o, "kubeconfig", text);
    if (talos_kubeconfig_compare(snap->lab, talos_cluster_secrets(snap->talos, NULL), text, len, checks,
                                 &err) < 0) {
        cJSON_AddBoolToObject(o, "same", false);
        cJSON_AddStringToObject(o, "compare_error", err.msg);
    } else {
        bool same = true;
        cJSON *arr = cJSON_AddArrayToObject(o, "checks");
        for (size_t i = 0; i < TALOS_KUBE_CHECKS; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "what", checks[i].what);
            cJSON_AddBoolToObject(e, "same", checks[i].same);
            cJSON_AddStringToObject(e, "talos", checks[i].talos);
            cJSON_AddStringToObject(e, "bootd", checks[i].bootd);
            cJSON_AddItemToArray(arr, e);
            same &= checks[i].same;
        }
        cJSON_AddBoolToObject(o, "same", same);
    }
    free(text);
    return server_reply_json(c, r, MHD_HTTP_OK, o);
}

/* The snapshot is fetched and checked in full before anything is sent, so a client
 * gets either all of a good snapshot or an error. It waits in an unlinked file under
 * the state dir, which goes away with the response. */
static enum MHD_Result etcd_snapshot(struct server *s, struct MHD_Connection *c, struct req *r,
                                     const struct lab_machine *m, const struct talos_node *n)
{
    char *tmp = bd_path_join(s->opts.state_dir, "etcd-snapshot.tmp-XXXXXX");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "cannot make a temporary file in %s: %s", s->opts.state_dir,
                                strerror(e));
    }
    unlink(tmp);
    free(tmp);
    struct talos_snapshot_info info;
    int code;
    struct bd_err err;
    if (talos_api_etcd_snapshot(n, fd, &info, &code, &err) < 0) {
        close(fd);
        return server_reply_error_json(c, r, MHD_HTTP_BAD_GATEWAY, "%s: %s", m->name, err.msg);
    }
    char mac[18], msg[256];
    bd_mac_format(&m->mac, mac);
    snprintf(msg, sizeof msg, "etcd snapshot taken through the admin API: %llu bytes, sha256 %s",
             (unsigned long long)info.size, info.sha256);
    state_event_note(s->store, mac, "talos", "etcd-snapshot", msg);
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)info.size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Etcd-Snapshot-Node", m->name);
    MHD_add_response_header(resp, "X-Etcd-Snapshot-Sha256", info.sha256);
    r->bytes = info.size;
    return server_reply(c, r, MHD_HTTP_OK, resp);
}

/* POST /api/v1/cluster/rebuild {"snapshot": "latest"|"/path"|null, "skip_hash_check",
 * "dry_run", "force"}: the plan, and unless dry_run the rebuild started. */
static enum MHD_Result rebuild(struct server *s, struct MHD_Connection *c, struct req *r)
{
    cJSON *in = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : cJSON_CreateObject();
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "the body is not a JSON object");
    }
    const cJSON *snap = cJSON_GetObjectItemCaseSensitive(in, "snapshot");
    if (snap && !cJSON_IsNull(snap) && !cJSON_IsString(snap)) {
        cJSON_Delete(in);
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST,
                                       "snapshot: a path, \"latest\" or null");
    }
    struct bd_err err;
    cJSON *plan = cluster_rebuild(s->cluster, cJSON_IsString(snap) ? snap->valuestring : NULL,
                                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "skip_hash_check")),
                                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "dry_run")),
                                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "force")), &err);
    cJSON_Delete(in);
    if (!plan)
        return server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s", err.msg);
    return server_reply_json(c, r, MHD_HTTP_OK, plan);
}

/* GET /api/v1/cluster/secret?namespace=NS&name=NAME: a live Secret, cleaned for
 * cluster.bootstrap_secrets (bootctl secrets export). */
static enum MHD_Result secret_export(struct server *s, struct MHD_Connection *c, struct req *r)
{
    const char *ns = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "namespace");
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
    if (!ns || !name || !bd_dns_label_ok(ns) || !bd_dns_name_ok(name))
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST,
                                       "namespace and name: DNS names, e.g. kube-system and "
                                       "sealed-secrets-key");
    struct lab_snap *snap = server_lab(s);
    enum MHD_Result rc;
    if (!snap->kube) {
        rc = server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "bootd cannot reach Kubernetes: %s",
                                     snap->kube_error);
    } else {
        struct kube_target t = {.server = snap->kube->server, .ca_pem = snap->kube->ca_pem,
                                .cert_pem = snap->kube->crt_pem, .key_pem = snap->kube->key_pem};
        struct kube *k = kube_new(&t);
        struct kube_call call = {.method = "GET",
                                 .path = bd_xasprintf("/api/v1/namespaces/%s/secrets/%s", ns, name)};
        kube_run(k, &call, 1);
        kube_free(k);
        char why[300];
        if (call.status != 200) {
            rc = server_reply_error_json(c, r, call.status == 404 ? MHD_HTTP_NOT_FOUND
                                                                  : MHD_HTTP_BAD_GATEWAY,
                                         "Secret %s/%s: %s", ns, name,
                                         kube_call_error(&call, why, sizeof why));
        } else {
            cJSON *live = cJSON_ParseWithLength(call.resp.data, call.resp.len);
            cJSON *o = cluster_secret_clean(live);
            cJSON_Delete(live);
            rc = server_reply_json(c, r, MHD_HTTP_OK, o);
        }
        kube_call_clear(&call);
    }
    server_lab_put(s, snap);
    return rc;
}

/* GET /api/v1/cluster/plan[?machine=NAME...]: bootctl plan. */
static enum MHD_Result config_plan(struct server *s, struct MHD_Connection *c, struct req *r)
{
    const char *names[64];
    size_t n = 0;
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "machine");
    char *copy = arg ? bd_xstrdup(arg) : NULL, *save = NULL;
    for (char *p = copy ? strtok_r(copy, ",", &save) : NULL; p && n < 64;
         p = strtok_r(NULL, ",", &save))
        names[n++] = p;
    struct bd_err err;
    cJSON *o = cluster_plan(s->cluster, names, n, &err);
    free(copy);
    return o ? server_reply_json(c, r, MHD_HTTP_OK, o)
             : server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "%s", err.msg);
}

/* A version as a job takes it: v1.14.0 (Talos tags have the v; Kubernetes versions are
 * written with or without it). It goes into image references and messages: digits first,
 * then only [0-9a-z.-]. */
static bool version_ok(const char *a, bool v_required)
{
    if (*a == 'v')
        a++;
    else if (v_required)
        return false;
    size_t n = strlen(a);
    return n > 0 && n <= 40 && isdigit((unsigned char)a[0]) &&
           strspn(a, "0123456789.-abcdefghijklmnopqrstuvwxyz") == n;
}

/* POST /api/v1/cluster/day2 {"kind": "apply"|"upgrade-talos"|"upgrade-kubernetes",
 * "arg": mode or version,
 * "machines": [names], "timeout_s": N}: starts a day-2 job. GET: where it stands. */
static enum MHD_Result day2(struct server *s, struct MHD_Connection *c, struct req *r, bool get)
{
    if (get)
        return server_reply_json(c, r, MHD_HTTP_OK, cluster_day2_status(s->cluster));
    cJSON *in = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(in, "kind");
    const cJSON *arg = cJSON_GetObjectItemCaseSensitive(in, "arg");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(in, "machines");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(in, "timeout_s");
    enum talos_apply_mode mode;
    const char *bad = NULL;
    if (!cJSON_IsObject(in))
        bad = "the body is not a JSON object";
    else if (!cJSON_IsString(kind) ||
             (strcmp(kind->valuestring, "apply") && strcmp(kind->valuestring, "upgrade-talos") &&
              strcmp(kind->valuestring, "upgrade-kubernetes")))
        bad = "kind: apply, upgrade-talos or upgrade-kubernetes";
    else if (!cJSON_IsString(arg) ||
             (!strcmp(kind->valuestring, "apply")
                  ? talos_apply_mode_parse(arg->valuestring, &mode) < 0
                  : !version_ok(arg->valuestring, strcmp(kind->valuestring, "upgrade-kubernetes"))))
        bad = "arg: an apply mode (auto, no-reboot, reboot, staged, try) or a version (v1.14.0)";
    else if (ms && (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) > 64))
        bad = "machines: a list of names";
    else if (to && !cJSON_IsNumber(to))
        bad = "timeout_s: seconds";
    if (bad) {
        cJSON_Delete(in);
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "%s", bad);
    }
    const char *names[64];
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ms)
    {
        if (!cJSON_IsString(e)) {
            cJSON_Delete(in);
            return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "machines: names");
        }
        names[n++] = e->valuestring;
    }
    struct bd_err err;
    cJSON *o = cluster_day2_start(s->cluster, kind->valuestring, arg->valuestring, names, n,
                                  to ? (int64_t)to->valuedouble : 0, &err);
    cJSON_Delete(in);
    return o ? server_reply_json(c, r, MHD_HTTP_ACCEPTED, o)
             : server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s", err.msg);
}

enum MHD_Result server_route_cluster(struct server *s, struct MHD_Connection *c, struct req *r,
                              const char *url, const char *method)
{
    bool get = !strcmp(method, "GET");
    if (!strcmp(url, "bootstrap"))
        return !strcmp(method, "POST") ? bootstrap(s, c, r)
                                       : server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
                                                          "use POST");
    if (!strcmp(url, "secret") && get)
        return secret_export(s, c, r);
    if (!strcmp(url, "plan") && get)
        return config_plan(s, c, r);
    if (!strcmp(url, "day2") && (get || !strcmp(method, "POST")))
        return day2(s, c, r, get);
    if (!strcmp(url, "etcd-members") && get) {
        struct bd_err err;
        cJSON *o = cluster_etcd_members(s->cluster, &err);
        return o ? server_reply_json(c, r, MHD_HTTP_OK, o)
                 : server_reply_error_json(c, r, MHD_HTTP_BAD_GATEWAY, "%s", err.msg);
    }
    if (!strcmp(url, "rebuild"))
        return !strcmp(method, "POST") ? rebuild(s, c, r)
                                       : server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
                                                                 "use POST");
    if (strcmp(url, "kubeconfig") && strcmp(url, "etcd-snapshot"))
        return server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "no such API route");
    if (!get)
        return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
    struct lab_snap *snap = server_lab(s);
    const struct lab_machine *m;
    char ip[16];
    struct talos_node n;
    enum MHD_Result rc;
    if (pick_node(s, c, r, snap, &m, ip, &n, &rc))
        rc = !strcmp(url, "kubeconfig") ? kubeconfig(c, r, snap, m, &n)
                                        : etcd_snapshot(s, c, r, m, &n);
    server_lab_put(s, snap);
    return rc;
}
