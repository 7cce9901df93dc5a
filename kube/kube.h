/* kube/ — bootd's Kubernetes API client: where the API is and how to prove who we are
 * (a kubeconfig's server, CA, client certificate or token), calls over libcurl with TLS
 * (several at once over reused connections), and discovery (apiVersion/kind to resource
 * path). gitops/ applies through it and cluster/ watches readiness through it. */
#ifndef KUBE_H
#define KUBE_H

#include "../lib/bd.h"

#include <stdatomic.h>

struct kube_target {
    char *server;           /* https://host:6443 */
    char *ca_pem;           /* CA bundle that signed the server's certificate */
    char *cert_pem, *key_pem; /* client certificate and key, or NULL with token */
    char *token;            /* bearer token, or NULL */
};
void kube_target_free(struct kube_target *t);
void kube_target_copy(struct kube_target *dst, const struct kube_target *src);
/* Reads a kubeconfig: the current context's cluster (server, certificate-authority-data
 * or certificate-authority) and user (client-certificate/key -data or files, or token). */
int kube_kubeconfig_load(const char *path, struct kube_target *out, struct bd_err *err) BD_MUST_CHECK;

struct kube;
struct kube *kube_new(const struct kube_target *t);
/* When *cancel turns true, kube_run stops within a second; unfinished calls get status 0
 * and err "cancelled". */
void kube_set_cancel(struct kube *k, const atomic_bool *cancel);
void kube_free(struct kube *k);

struct kube_call {
    const char *method;       /* GET, PATCH, DELETE */
    char *path;               /* owned: /api/v1/... with query */
    const char *content_type; /* with a body */
    char *body;               /* owned */
    size_t body_len;
    void *ud;
    /* out */
    long status;              /* 0: no HTTP answer, see err */
    struct bd_buf resp;
    char err[256];
};
/* Runs the calls, several at once over reused connections; each gets its own answer. */
void kube_run(struct kube *k, struct kube_call *calls, size_t n);
void kube_call_clear(struct kube_call *c);
/* "HTTP 409: <the Status message>" or the transport error (into buf). */
const char *kube_call_error(const struct kube_call *c, char *buf, size_t n);

/* apiVersion/kind -> resource, from the API server's discovery documents. */
struct kube_resource {
    char *kind, *plural;
    bool namespaced;
};
struct kube_discovery;
struct kube_discovery *kube_discovery_new(void);
void kube_discovery_free(struct kube_discovery *d);
/* Fetches the discovery documents of these apiVersions that are not cached yet. */
void kube_discovery_load(struct kube_discovery *d, struct kube *k, const char *const *api_versions,
                    size_t n);
/* NULL with why filled when the API server does not serve the kind. */
const struct kube_resource *kube_discovery_find(struct kube_discovery *d, const char *api_version,
                                           const char *kind, char *why, size_t n);
/* Drops cached documents of an API group (after its CRDs changed). */
void kube_discovery_forget_group(struct kube_discovery *d, const char *group);

/* API path of an object of res with this apiVersion, namespace (NULL if cluster-wide)
 * and name; caller frees. */
char *kube_object_path(const char *api_version, const struct kube_resource *res, const char *ns,
                       const char *name);

#endif
