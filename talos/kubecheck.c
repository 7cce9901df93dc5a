/* The kubeconfig Talos hands out (Kubeconfig call) next to the one bootd mints from the
 * lab (talos_kubeconfig): both come from the cluster's Kubernetes CA, so they should
 * name the same context, cluster and API server and trust the same CA; only the client
 * certificates differ, and Talos's must be signed by the lab's CA. A difference means
 * the cluster was made from another secrets bundle or lab.yaml has moved on. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a kubeconfig's current context points at. */
struct kc_view {
    const char *context, *cluster, *user, *server, *ca, *crt;
};

static const struct bd_node *named(const struct bd_node *root, const char *list, const char *name,
                                   const char *inner)
{
    const struct bd_node *seq = bd_node_get(root, list);
    if (!name || !seq || seq->kind != BD_NODE_SEQ)
        return NULL;
    for (size_t i = 0; i < seq->n; i++) {
        const struct bd_node *n = bd_node_get(seq->kids[i], "name");
        if (n && n->kind == BD_NODE_SCALAR && !strcmp(n->str, name))
            return bd_node_get(seq->kids[i], inner);
    }
    return NULL;
}

static const char *str(const struct bd_node *map, const char *key)
{
    const struct bd_node *n = map ? bd_node_get(map, key) : NULL;
    return n && n->kind == BD_NODE_SCALAR ? n->str : NULL;
}

static void view(const struct bd_node *root, struct kc_view *v)
{
    memset(v, 0, sizeof *v);
    v->context = str(root, "current-context");
    const struct bd_node *ctx = named(root, "contexts", v->context, "context");
    v->cluster = str(ctx, "cluster");
    v->user = str(ctx, "user");
    const struct bd_node *cl = named(root, "clusters", v->cluster, "cluster");
    v->server = str(cl, "server");
    v->ca = str(cl, "certificate-authority-data");
    v->crt = str(named(root, "users", v->user, "user"), "client-certificate-data");
}

static void check_str(struct talos_kube_check *c, const char *what, const char *talos,
                      const char *bootd)
{
    c->what = what;
    c->same = talos && bootd && !strcmp(talos, bootd);
    snprintf(c->talos, sizeof c->talos, "%s", talos ? talos : "(missing)");
    snprintf(c->bootd, sizeof c->bootd, "%s", bootd ? bootd : "(missing)");
}

/* Talos lists the CAs it accepts, the issuing one last: bootd's must be among them. */
static void check_ca(struct talos_kube_check *c, const char *talos_b64, const char *bootd_b64)
{
    c->what = "cluster CA";
    size_t n;
    char *talos = talos_b64 ? (char *)talos_pki_unb64(talos_b64, &n) : NULL;
    char *bootd = bootd_b64 ? (char *)talos_pki_unb64(bootd_b64, &n) : NULL;
    size_t blen = bootd ? strlen(bootd) : 0;
    while (blen && bootd[blen - 1] == '\n')
        bootd[--blen] = 0;
    c->same = talos && bootd && blen && strstr(talos, bootd);
    snprintf(c->talos, sizeof c->talos, "%s",
             !talos ? "(missing)" : c->same ? "includes the lab's Kubernetes CA"
                                            : "does not include the lab's Kubernetes CA");
    snprintf(c->bootd, sizeof c->bootd, "the lab's Kubernetes CA (secrets.yaml certs.k8s)");
    free(talos);
    free(bootd);
}

static void check_client_cert(struct talos_kube_check *c, const char *crt_b64,
                              const struct talos_secrets *s)
{
    c->what = "client certificate";
    c->same = false;
    snprintf(c->bootd, sizeof c->bootd, "signed by the lab's Kubernetes CA");
    size_t n;
    char *pem = crt_b64 ? (char *)talos_pki_unb64(crt_b64, &n) : NULL;
    size_t ca_n;
    char *ca_pem = (char *)talos_pki_unb64(s->k8s.crt, &ca_n);
    struct bd_err e;
    X509 *crt = pem ? talos_pki_cert_parse(pem, "client certificate", &e) : NULL;
    X509 *ca = ca_pem ? talos_pki_cert_parse(ca_pem, "Kubernetes CA", &e) : NULL;
    if (!crt) {
        snprintf(c->talos, sizeof c->talos, "(missing or unreadable)");
    } else if (!ca) {
        snprintf(c->talos, sizeof c->talos, "(the lab's Kubernetes CA is unreadable)");
    } else {
        char subject[120];
        X509_NAME_oneline(X509_get_subject_name(crt), subject, sizeof subject);
        c->same = talos_pki_cert_verify(crt, ca, &e) == 0;
        int w = snprintf(c->talos, sizeof c->talos, "%s", subject);
        snprintf(c->talos + w, sizeof c->talos - (size_t)w, ", %s",
                 c->same ? "signed by the lab's Kubernetes CA"
                         : "NOT signed by the lab's Kubernetes CA (or expired)");
    }
    X509_free(crt);
    X509_free(ca);
    free(pem);
    free(ca_pem);
}

int talos_kubeconfig_compare(const struct lab *lab, const struct talos_secrets *s,
                             const char *text, size_t len,
                             struct talos_kube_check out[TALOS_KUBE_CHECKS], struct bd_err *err)
{
    struct bd_yaml_doc theirs, ours;
    if (bd_yaml_parse(text, len, "kubeconfig from Talos", &theirs, err) < 0)
        return -1;
    struct bd_buf mint;
    bd_buf_init(&mint);
    if (talos_kubeconfig(lab, s, &mint, err) < 0 ||
        bd_yaml_parse(mint.data, mint.len, "bootd's kubeconfig", &ours, err) < 0) {
        bd_buf_free(&mint);
        bd_yaml_doc_free(&theirs);
        return -1;
    }
    bd_buf_free(&mint);
    int rc = 0;
    if (theirs.ndocs != 1 || theirs.docs[0]->kind != BD_NODE_MAP) {
        rc = bd_err_set(err, "the kubeconfig from Talos is not one YAML mapping");
    } else {
        struct kc_view t, b;
        view(theirs.docs[0], &t);
        view(ours.docs[0], &b);
        check_str(&out[0], "context", t.context, b.context);
        check_str(&out[1], "cluster", t.cluster, b.cluster);
        check_str(&out[2], "server", t.server, b.server);
        check_ca(&out[3], t.ca, b.ca);
        check_client_cert(&out[4], t.crt, s);
    }
    bd_yaml_doc_free(&theirs);
    bd_yaml_doc_free(&ours);
    return rc;
}
