/* Credentials for the Proxmox CSI plugin, as the reference homelab's
 * bootstrap/proxmox-csi-plugin module made them: a role CSI, a user kubernetes-csi@pve
 * with that role on /, and a token without privilege separation. Each step is made
 * idempotent: what exists is kept (the role's privileges are set again), and the token's
 * secret, which PVE shows only once, is kept in a 0600 file; a token whose secret is
 * lost is replaced. */
#include "internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const CSI_PRIVS =
    "VM.Audit,VM.Config.Disk,Datastore.Allocate,Datastore.AllocateSpace,Datastore.Audit";

static bool missing(const struct proxmox_resp *r)
{
    const char *m = proxmox_message(r);
    return r->status == 404 ||
           (r->status == 500 && (strstr(m, "does not exist") || strstr(m, "no such")));
}

/* GET path: 1 = there, 0 = missing, -1 = error. */
static int exists(struct proxmox *px, const char *path, const char *what, struct bd_err *err)
{
    struct proxmox_resp r;
    int ret = proxmox_call(px, "GET", path, NULL, what, "read", &r, err);
    if (ret < 0 && r.status && missing(&r))
        ret = 0;
    else if (ret == 0)
        ret = 1;
    proxmox_resp_free(&r);
    return ret;
}

static int ensure_role(struct proxmox *px, const char *role, struct bd_err *err)
{
    char *path = bd_xasprintf("/access/roles/%s", role);
    char *what = bd_xasprintf("role %s", role);
    int there = exists(px, path, what, err);
    struct proxmox_params p = {0};
    struct proxmox_resp r = {0};
    int ret = -1;
    if (there >= 0) {
        if (!there)
            proxmox_params_add(&p, "roleid", "%s", role);
        proxmox_params_add(&p, "privs", "%s", CSI_PRIVS);
        ret = proxmox_call(px, there ? "PUT" : "POST", there ? path : "/access/roles", &p, what,
                   there ? "set privileges" : "create", &r, err);
    }
    proxmox_resp_free(&r);
    proxmox_params_free(&p);
    free(path);
    free(what);
    return ret;
}

static int ensure_user(struct proxmox *px, const char *user, const char *role, struct bd_err *err)
{
    char *esc = curl_easy_escape(px->curl, user, 0);
    char *path = bd_xasprintf("/access/users/%s", esc);
    char *what = bd_xasprintf("user %s", user);
    curl_free(esc);
    int there = exists(px, path, what, err);
    struct proxmox_resp r = {0};
    int ret = there < 0 ? -1 : 0;
    if (there == 0) {
        struct proxmox_params p = {0};
        proxmox_params_add(&p, "userid", "%s", user);
        proxmox_params_add(&p, "comment", "Proxmox CSI plugin (managed by bootd)");
        ret = proxmox_call(px, "POST", "/access/users", &p, what, "create", &r, err);
        proxmox_params_free(&p);
        proxmox_resp_free(&r);
    }
    if (ret == 0) { /* PUT /access/acl adds; the same entry twice is one entry */
        struct proxmox_params p = {0};
        proxmox_params_add(&p, "path", "/");
        proxmox_params_add(&p, "roles", "%s", role);
        proxmox_params_add(&p, "users", "%s", user);
        ret = proxmox_call(px, "PUT", "/access/acl", &p, what, "grant role", &r, err);
        proxmox_params_free(&p);
        proxmox_resp_free(&r);
    }
    free(path);
    free(what);
    return ret;
}

/* The secret file holds USER@REALM!TOKENID=SECRET, like proxmox.token_file. */
static char *read_secret(const char *file, const char *full_id)
{
    char *text;
    size_t len;
    struct bd_err ignored;
    if (access(file, F_OK) != 0 || bd_file_check_private(file, &ignored) < 0 ||
        bd_file_read(file, &text, &len, &ignored) < 0)
        return NULL;
    text[strcspn(text, "\r\n")] = '\0';
    size_t n = strlen(full_id);
    char *secret = NULL;
    if (!strncmp(text, full_id, n) && text[n] == '=' && text[n + 1])
        secret = bd_xstrdup(text + n + 1);
    explicit_bzero(text, len);
    free(text);
    return secret;
}

int proxmox_csi_ensure(struct proxmox *px, const struct proxmox_csi_cfg *cfg, char **token_id,
                       char **secret, struct bd_err *err)
{
    *token_id = *secret = NULL;
    if (ensure_role(px, cfg->role, err) < 0 || ensure_user(px, cfg->user, cfg->role, err) < 0)
        return -1;
    char *full = bd_xasprintf("%s!%s", cfg->user, cfg->token);
    char *esc = curl_easy_escape(px->curl, cfg->user, 0);
    char *path = bd_xasprintf("/access/users/%s/token/%s", esc, cfg->token);
    curl_free(esc);
    char *what = bd_xasprintf("token %s", full);
    char *kept = read_secret(cfg->secret_file, full);
    int there = exists(px, path, what, err);
    int ret = there < 0 ? -1 : 0;
    struct proxmox_resp r = {0};
    if (ret == 0 && there && kept) {
        *secret = kept;
        kept = NULL;
    } else if (ret == 0) {
        if (there) /* its secret is lost: only a new token gives one */
            ret = proxmox_call(px, "DELETE", path, NULL, what, "replace", &r, err);
        proxmox_resp_free(&r);
        struct proxmox_params p = {0};
        proxmox_params_add(&p, "privsep", "0");
        proxmox_params_add(&p, "comment", "Proxmox CSI plugin (managed by bootd)");
        if (ret == 0)
            ret = proxmox_call(px, "POST", path, &p, what, "create", &r, err);
        proxmox_params_free(&p);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r.data, "value");
        if (ret == 0 && !cJSON_IsString(v))
            ret = bd_err_set(err, "%s: create: the answer carries no token value", what);
        if (ret == 0) {
            char *line = bd_xasprintf("%s=%s\n", full, v->valuestring);
            ret = bd_file_write_atomic(cfg->secret_file, line, strlen(line), 0600, err);
            explicit_bzero(line, strlen(line));
            free(line);
            if (ret < 0)
                bd_err_prefix(err, "proxmox.csi.token_file (the new token %s is unusable until "
                                   "this is fixed and bootd runs again)", full);
            else
                *secret = bd_xstrdup(v->valuestring);
        }
        proxmox_resp_free(&r);
    }
    if (ret == 0)
        *token_id = bd_xstrdup(full);
    if (kept) {
        explicit_bzero(kept, strlen(kept));
        free(kept);
    }
    free(full);
    free(path);
    free(what);
    return ret;
}

/* The plugin's config.yaml (its docs/config.md): one cluster, the token without privilege
 * separation. */
static char *config_yaml(const char *api, const char *region, const char *token_id,
                         const char *secret, bool insecure, const char *indent)
{
    return bd_xasprintf("%sclusters:\n"
                        "%s  - url: \"%s/api2/json\"\n"
                        "%s    insecure: %s\n"
                        "%s    token_id: \"%s\"\n"
                        "%s    token_secret: \"%s\"\n"
                        "%s    region: \"%s\"\n",
                        indent, indent, api, indent, insecure ? "true" : "false", indent,
                        token_id, indent, secret, indent, region);
}

char *proxmox_csi_secret_yaml(const char *ns, const char *name, const char *api,
                              const char *region, const char *token_id, const char *secret,
                              bool insecure)
{
    char *cfg = config_yaml(api, region, token_id, secret, insecure, "    ");
    char *doc = bd_xasprintf("apiVersion: v1\n"
                             "kind: Secret\n"
                             "metadata:\n"
                             "  name: %s\n"
                             "  namespace: %s\n"
                             "type: Opaque\n"
                             "stringData:\n"
                             "  config.yaml: |\n%s",
                             name, ns, cfg);
    explicit_bzero(cfg, strlen(cfg));
    free(cfg);
    return doc;
}

cJSON *proxmox_csi_secret_json(const char *ns, const char *name, const char *api,
                               const char *region, const char *token_id, const char *secret,
                               bool insecure)
{
    /* data, not stringData: a server-side apply of stringData owns a field the API server
     * never stores, so the same apply would not read as unchanged */
    char *cfg = config_yaml(api, region, token_id, secret, insecure, "");
    size_t len = strlen(cfg);
    char *b64 = bd_xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cfg, (int)len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Secret");
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", ns);
    cJSON_AddStringToObject(o, "type", "Opaque");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "data"), "config.yaml", b64);
    explicit_bzero(cfg, len);
    explicit_bzero(b64, strlen(b64));
    free(cfg);
    free(b64);
    return o;
}

int proxmox_csi_from_lab(struct proxmox *px, const struct lab *lab, struct proxmox_csi_creds *out,
                         struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    const struct lab_proxmox *p = &lab->proxmox;
    struct proxmox_csi_cfg cfg = {
        .role = "CSI", .user = "kubernetes-csi@pve", .token = "csi",
        .secret_file = p->csi.token_file,
    };
    if (proxmox_csi_ensure(px, &cfg, &out->token_id, &out->secret, err) < 0)
        return -1;
    out->ns = p->csi.namespace_;
    out->name = p->csi.secret;
    out->api = p->api;
    /* the nodes' topology.kubernetes.io/region: the Proxmox cluster's name when given */
    out->region = p->cluster ? p->cluster : lab->cluster.name;
    out->insecure = !p->verify_tls;
    return 0;
}

void proxmox_csi_creds_free(struct proxmox_csi_creds *c)
{
    if (c->secret)
        explicit_bzero(c->secret, strlen(c->secret));
    free(c->secret);
    free(c->token_id);
    memset(c, 0, sizeof *c);
}

int proxmox_csi_volume(const char *handle, char **zone, char **volid)
{
    *zone = *volid = NULL;
    /* the plugin's volume.go: exactly four parts split at "/", except that a disk of a
     * file-backed storage ("<vmid>/vm-<vmid>-<name>.<fmt>") carries one more */
    const char *p[3], *s = handle ? handle : "";
    for (int i = 0; i < 3; i++) {
        p[i] = s;
        s = strchr(s, '/');
        if (!s)
            return -1;
        s++;
    }
    size_t zlen = (size_t)(p[2] - p[1]) - 1, slen = (size_t)(s - p[2]) - 1;
    if (!slen || !*s)
        return -1;
    *zone = bd_xstrndup(p[1], zlen);
    *volid = bd_xasprintf("%.*s:%s", (int)slen, p[2], s);
    return 0;
}
