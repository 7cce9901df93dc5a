/* Credentials for the Proxmox CSI plugin, as the reference homelab's
 * bootstrap/proxmox-csi-plugin module made them: a role CSI, a user kubernetes-csi@pve
 * with that role on /, and a token without privilege separation. Each step is made
 * idempotent: what exists is kept (the role's privileges are set again), and the token's
 * secret, which PVE shows only once, is kept in a 0600 file; a token whose secret is
 * lost is replaced. */
#include "internal.h"

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

char *proxmox_csi_secret_yaml(const char *api, const char *region, const char *token_id,
                              const char *secret, bool insecure)
{
    /* what the plugin reads: namespace csi-proxmox, secret proxmox-csi-plugin, config.yaml */
    return bd_xasprintf("apiVersion: v1\n"
                        "kind: Secret\n"
                        "metadata:\n"
                        "  name: proxmox-csi-plugin\n"
                        "  namespace: csi-proxmox\n"
                        "type: Opaque\n"
                        "stringData:\n"
                        "  config.yaml: |\n"
                        "    clusters:\n"
                        "      - url: \"%s/api2/json\"\n"
                        "        insecure: %s\n"
                        "        token_id: \"%s\"\n"
                        "        token_secret: \"%s\"\n"
                        "        region: \"%s\"\n",
                        api, insecure ? "true" : "false", token_id, secret, region);
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
