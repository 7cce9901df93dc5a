/* cluster.bootstrap_secrets: Secrets that must exist before GitOps starts and cannot come
 * from Git in the clear — above all the sealed-secrets controller's key pair, without
 * which every SealedSecret in the repository is undecryptable after a fresh rebuild.
 * They are applied (server-side apply, fieldManager bootd) as soon as the Kubernetes API
 * answers, their namespaces first, and only then is the API handed to the GitOps loop;
 * while they fail the hand-over waits and the failure is an event. */
#include "internal.h"

#include "../proxmox/proxmox.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLY "?fieldManager=bootd&force=true"
#define APPLY_TYPE "application/apply-patch+yaml" /* JSON is YAML */

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int cluster_secret_doc_check(const struct bd_node *doc, const char *file, struct bd_err *err)
{
    cJSON *j = bd_node_to_json(doc);
    const char *kind = str_at(j, "kind", NULL), *av = str_at(j, "apiVersion", NULL);
    const char *name = str_at(j, "metadata", "name"), *ns = str_at(j, "metadata", "namespace");
    int rc = 0;
    if (!kind || strcmp(kind, "Secret") || !av || strcmp(av, "v1"))
        rc = bd_err_set(err, "%s:%d:%d: a bootstrap secrets file holds only v1 Secrets, not %s %s",
                        file, doc->line, doc->col, av ? av : "(no apiVersion)",
                        kind ? kind : "(no kind)");
    else if (!name || !ns)
        rc = bd_err_set(err, "%s:%d:%d: the Secret needs metadata.name and metadata.namespace",
                        file, doc->line, doc->col);
    cJSON_Delete(j);
    return rc;
}

/* A Secret's namespace and the Secret itself, as two server-side applies appended to v. */
static void add_pair(struct kube_call **v, size_t *n, size_t *cap, const cJSON *secret)
{
    const char *ns = str_at(secret, "metadata", "namespace"), *name = str_at(secret, "metadata", "name");
    if (*n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = bd_xrealloc(*v, *cap * sizeof **v);
    }
    cJSON *nsobj = cJSON_CreateObject();
    cJSON_AddStringToObject(nsobj, "apiVersion", "v1");
    cJSON_AddStringToObject(nsobj, "kind", "Namespace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(nsobj, "metadata"), "name", ns);
    struct kube_call nc = {.method = "PATCH",
                           .path = bd_xasprintf("/api/v1/namespaces/%s" APPLY, ns),
                           .content_type = APPLY_TYPE,
                           .body = cJSON_PrintUnformatted(nsobj)};
    nc.body_len = strlen(nc.body);
    struct kube_call sc = {.method = "PATCH",
                           .path = bd_xasprintf("/api/v1/namespaces/%s/secrets/%s" APPLY, ns, name),
                           .content_type = APPLY_TYPE,
                           .body = cJSON_PrintUnformatted(secret)};
    sc.body_len = strlen(sc.body);
    (*v)[(*n)++] = nc;
    (*v)[(*n)++] = sc;
    cJSON_Delete(nsobj);
}

/* proxmox.csi: the Proxmox CSI plugin's credentials, made on Proxmox when missing, as the
 * Secret its chart reads. */
static int csi_calls(struct cluster *c, const struct cluster_lab *l, struct kube_call **v,
                     size_t *n, size_t *cap, struct bd_err *err)
{
    struct proxmox_lab pl;
    struct proxmox *px = NULL;
    struct proxmox_csi_creds cr = {0};
    int rc = proxmox_lab_load(l->lab, &pl, err);
    if (rc == 0) {
        pl.cfg.cancel = &c->worker.cancel;
        rc = proxmox_open(&pl.cfg, &px, err);
    }
    if (rc == 0)
        rc = proxmox_csi_from_lab(px, l->lab, &cr, err);
    if (rc == 0) {
        cJSON *secret = proxmox_csi_secret_json(cr.ns, cr.name, cr.api, cr.region, cr.token_id,
                                                cr.secret, cr.insecure);
        add_pair(v, n, cap, secret);
        /* the request body keeps its copy until the call is cleared */
        cJSON_Delete(secret);
    }
    proxmox_csi_creds_free(&cr);
    proxmox_close(px);
    proxmox_lab_free(&pl);
    return rc < 0 ? bd_err_prefix(err, "proxmox.csi") : 0;
}

/* The calls for one file's Secrets (and their namespaces) appended to v. */
static int calls_of(const char *file, struct kube_call **v, size_t *n, size_t *cap,
                    size_t *nsecrets, struct bd_err *err)
{
    struct bd_yaml_doc d;
    if (bd_file_check_private(file, err) < 0 || bd_yaml_parse_file(file, &d, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < d.ndocs && rc == 0; i++) {
        if ((rc = cluster_secret_doc_check(d.docs[i], file, err)) < 0)
            break;
        cJSON *j = bd_node_to_json(d.docs[i]);
        add_pair(v, n, cap, j);
        (*nsecrets)++;
        cJSON_Delete(j);
    }
    bd_yaml_doc_free(&d);
    return rc;
}

int cluster_bootstrap_secrets_apply(struct cluster *c, const struct cluster_lab *l,
                                    const struct kube_target *t)
{
    const struct lab_strlist *files = &l->lab->cluster.bootstrap_secrets;
    bool csi = l->lab->proxmox.set && l->lab->proxmox.csi.set;
    if (!files->n && !csi)
        return 0;
    struct kube_call *v = NULL;
    size_t n = 0, cap = 0, nsecrets = 0;
    struct bd_err err;
    char msg[1400] = "";
    int rc = 0;
    for (size_t i = 0; i < files->n && rc == 0; i++)
        rc = calls_of(files->v[i], &v, &n, &cap, &nsecrets, &err);
    if (rc == 0 && csi && (rc = csi_calls(c, l, &v, &n, &cap, &err)) == 0)
        nsecrets++;
    if (rc < 0) {
        snprintf(msg, sizeof msg, "bootstrap secrets not applied: %s", err.msg);
    } else {
        /* namespaces before the Secrets in them: two rounds */
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
            size_t k = 0;
            struct kube_call *round = bd_xcalloc(n / 2 + 1, sizeof *round);
            for (size_t i = (size_t)pass; i < n; i += 2)
                round[k++] = v[i];
            c->env.kube_run(c->env.ud, t, &c->worker.cancel, round, k);
            for (size_t i = 0, j = (size_t)pass; i < k; i++, j += 2) {
                v[j] = round[i];
                char why[300];
                if (rc == 0 && (v[j].status < 200 || v[j].status >= 300)) {
                    snprintf(msg, sizeof msg, "bootstrap secrets not applied: PATCH %s: %s",
                             v[j].path, kube_call_error(&v[j], why, sizeof why));
                    rc = -1;
                }
            }
            free(round);
        }
    }
    for (size_t i = 0; i < n; i++)
        kube_call_clear(&v[i]);
    free(v);
    if (rc == 0)
        snprintf(msg, sizeof msg, "%zu bootstrap secret%s applied before GitOps starts", nsecrets,
                 nsecrets == 1 ? "" : "s");
    if (strcmp(c->secrets_event, msg)) { /* not once per retry */
        snprintf(c->secrets_event, sizeof c->secrets_event, "%s", msg);
        cluster_event(c, "kube", NULL, rc == 0 ? "secrets-applied" : "secrets-failed",
                      msg);
    }
    return rc;
}

/* What `bootctl secrets export` saves of a live Secret: enough to apply it again on a
 * new cluster, none of the server's bookkeeping (uid, resourceVersion, managedFields,
 * the last-applied annotation). */
struct cJSON *cluster_secret_clean(const struct cJSON *live)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Secret");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    const cJSON *lmd = cJSON_GetObjectItemCaseSensitive(live, "metadata");
    static const char *const keep_md[] = {"name", "namespace", "labels"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(lmd, keep_md[i]);
        if (v)
            cJSON_AddItemToObject(md, keep_md[i], cJSON_Duplicate(v, true));
    }
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(lmd, "annotations"), *a;
    cJSON *anns = NULL;
    cJSON_ArrayForEach(a, ann)
    {
        if (!strcmp(a->string, "kubectl.kubernetes.io/last-applied-configuration"))
            continue;
        if (!anns)
            anns = cJSON_AddObjectToObject(md, "annotations");
        cJSON_AddItemToObject(anns, a->string, cJSON_Duplicate(a, true));
    }
    static const char *const keep[] = {"type", "immutable", "data"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(live, keep[i]);
        if (v)
            cJSON_AddItemToObject(o, keep[i], cJSON_Duplicate(v, true));
    }
    return o;
}
