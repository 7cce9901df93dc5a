/* The Kubernetes API target from a kubeconfig file (what `talosctl kubeconfig` and
 * bootctl write): the current context's cluster and user. */
#include "kube.h"

#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>

void kube_target_free(struct kube_target *t)
{
    if (!t)
        return;
    free(t->server);
    free(t->ca_pem);
    free(t->cert_pem);
    free(t->key_pem);
    free(t->token);
    memset(t, 0, sizeof *t);
}

static char *dup_or_null(const char *s)
{
    return s ? bd_xstrdup(s) : NULL;
}

void kube_target_copy(struct kube_target *dst, const struct kube_target *src)
{
    dst->server = dup_or_null(src->server);
    dst->ca_pem = dup_or_null(src->ca_pem);
    dst->cert_pem = dup_or_null(src->cert_pem);
    dst->key_pem = dup_or_null(src->key_pem);
    dst->token = dup_or_null(src->token);
}

static const char *scalar(const struct bd_node *map, const char *key)
{
    const struct bd_node *v = bd_node_get(map, key);
    return v && v->kind == BD_NODE_SCALAR && *v->str ? v->str : NULL;
}

/* The entry named name in a list of {name, <what>: {...}}. */
static const struct bd_node *named(const struct bd_node *root, const char *list, const char *what,
                                   const char *name)
{
    const struct bd_node *seq = bd_node_get(root, list);
    for (size_t i = 0; seq && seq->kind == BD_NODE_SEQ && i < seq->n; i++) {
        const char *n = scalar(seq->kids[i], "name");
        if (n && !strcmp(n, name))
            return bd_node_get(seq->kids[i], what);
    }
    return NULL;
}

/* key-data (base64) or key (a file, relative to the kubeconfig's directory). */
static int pem_field(const char *path, const struct bd_node *map, const char *key, char **out,
                     struct bd_err *err)
{
    char *data_key = bd_xasprintf("%s-data", key);
    const char *b64 = scalar(map, data_key), *file = scalar(map, key);
    int rc = 0;
    if (b64) {
        size_t len = 0, n = strlen(b64);
        mbedtls_base64_decode(NULL, 0, &len, (const unsigned char *)b64, n);
        *out = bd_xmalloc(len + 1);
        if (mbedtls_base64_decode((unsigned char *)*out, len, &len, (const unsigned char *)b64,
                                  n) != 0) {
            free(*out);
            *out = NULL;
            rc = bd_err_set(err, "%s: %s is not valid base64", path, data_key);
        } else {
            (*out)[len] = 0;
        }
    } else if (file) {
        char *dir = bd_path_dir(path);
        char *full = bd_path_join(dir, file);
        rc = bd_file_read(full, out, NULL, err);
        free(full);
        free(dir);
    }
    free(data_key);
    return rc;
}

int kube_kubeconfig_load(const char *path, struct kube_target *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    struct bd_yaml_doc doc;
    /* it holds the cluster-admin key */
    if (bd_file_check_private(path, err) < 0 || bd_yaml_parse_file(path, &doc, err) < 0)
        return -1;
    const struct bd_node *root = doc.ndocs ? doc.docs[0] : NULL;
    int rc = 0;
    const char *ctx_name = root ? scalar(root, "current-context") : NULL;
    const struct bd_node *ctx = NULL, *cluster = NULL, *user = NULL;
    if (!root || root->kind != BD_NODE_MAP) {
        rc = bd_err_set(err, "%s: not a kubeconfig (expected a mapping)", path);
    } else if (!ctx_name) {
        const struct bd_node *ctxs = bd_node_get(root, "contexts");
        if (ctxs && ctxs->kind == BD_NODE_SEQ && ctxs->n == 1)
            ctx = bd_node_get(ctxs->kids[0], "context");
        else
            rc = bd_err_set(err, "%s: current-context is not set", path);
    } else if (!(ctx = named(root, "contexts", "context", ctx_name))) {
        rc = bd_err_set(err, "%s: current-context \"%s\" is not among contexts", path, ctx_name);
    }
    const char *cname = ctx ? scalar(ctx, "cluster") : NULL;
    const char *uname = ctx ? scalar(ctx, "user") : NULL;
    if (rc == 0 && (!cname || !(cluster = named(root, "clusters", "cluster", cname))))
        rc = bd_err_set(err, "%s: the context's cluster \"%s\" is not among clusters", path,
                        cname ? cname : "");
    if (rc == 0 && (!uname || !(user = named(root, "users", "user", uname))))
        rc = bd_err_set(err, "%s: the context's user \"%s\" is not among users", path,
                        uname ? uname : "");
    if (rc == 0) {
        const char *server = scalar(cluster, "server");
        if (!server || strncmp(server, "https://", 8))
            rc = bd_err_set(err, "%s: cluster \"%s\": server must be an https:// URL", path,
                            cname);
        else
            out->server = bd_xstrdup(server);
    }
    if (rc == 0)
        rc = pem_field(path, cluster, "certificate-authority", &out->ca_pem, err);
    if (rc == 0 && !out->ca_pem)
        rc = bd_err_set(err, "%s: cluster \"%s\" has no certificate-authority(-data); bootd "
                             "verifies the API server",
                        path, cname);
    if (rc == 0)
        rc = pem_field(path, user, "client-certificate", &out->cert_pem, err);
    if (rc == 0)
        rc = pem_field(path, user, "client-key", &out->key_pem, err);
    if (rc == 0 && scalar(user, "token"))
        out->token = bd_xstrdup(scalar(user, "token"));
    if (rc == 0 && !out->token && (!out->cert_pem || !out->key_pem))
        rc = bd_err_set(err, "%s: user \"%s\" has neither a client certificate and key nor a "
                             "token",
                        path, uname);
    bd_yaml_doc_free(&doc);
    if (rc < 0)
        kube_target_free(out);
    return rc;
}
