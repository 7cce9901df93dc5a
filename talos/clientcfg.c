/* Credentials made from the secrets bundle: a talosconfig (Talos API), an admin
 * kubeconfig, and server certificates for the test stand-ins of both APIs. Each gets a
 * fresh key of its CA's kind, as Talos's own NewKeyPair picks it (Ed25519 under an
 * Ed25519 CA, else ECDSA P-256), and a certificate signed by the bundle's CA. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ONE_YEAR_S (365LL * 24 * 3600) /* talosctl's and Talos's admin certificate lifetime */

/* A new key and a certificate for it, signed by ca. PEM texts (caller frees). */
static int issue(const struct secrets_ca *ca, const char *ca_name, const struct pki_cert_spec *spec,
                 char **crt_pem, char **key_pem, struct bd_err *err)
{
    X509 *ca_crt;
    EVP_PKEY *ca_key;
    if (talos_secrets_ca_open(ca, ca_name, &ca_crt, &ca_key, err) < 0)
        return -1;
    enum pki_key_type type =
        talos_pki_key_type_of(ca_key) == PKI_KEY_ED25519 ? PKI_KEY_ED25519 : PKI_KEY_EC_P256;
    EVP_PKEY *key = talos_pki_key_generate(type, err);
    int rc = -1;
    if (key) {
        rc = talos_pki_cert_issue(spec, key, ca_crt, ca_key, crt_pem, err);
        if (rc == 0 && (rc = talos_pki_key_pem(key, key_pem, err)) < 0)
            free(*crt_pem);
        EVP_PKEY_free(key);
    }
    X509_free(ca_crt);
    EVP_PKEY_free(ca_key);
    return rc;
}

static void endpoints(const struct lab *lab, struct bd_node *seq)
{
    char ip[16];
    for (size_t i = 0; i < lab->nmachines; i++)
        if (lab->machines[i].role == LAB_ROLE_CONTROLPLANE && lab->machines[i].has_ip) {
            bd_ipv4_format(lab->machines[i].ip, ip);
            bd_node_seq_push(seq, bd_node_scalar(ip, false));
        }
    if (seq->n)
        return;
    /* no addresses in lab.yaml: the Kubernetes endpoint's host, where apid listens too */
    const char *host = strstr(lab->cluster.endpoint, "://") + 3;
    char *h = bd_xstrndup(host, strcspn(host, ":/"));
    bd_node_seq_push(seq, bd_node_scalar(h, false));
    free(h);
}

static int need_endpoint(const struct lab *lab, struct bd_err *err)
{
    if (!lab->cluster.endpoint)
        return bd_err_set(err, "%s: cluster.endpoint: not set, and neither cluster.vip nor a "
                               "control plane's ip gives one",
                          lab->path);
    return 0;
}

/* A fresh os:admin client certificate and key (PEM; caller frees both). */
static int os_admin_cert(const struct talos_secrets *s, char **crt, char **key, struct bd_err *err)
{
    int64_t now = time(NULL);
    struct pki_cert_spec spec = {
        .subject = "O=os:admin", /* the role apid reads from the organization */
        .key_usage = PKI_KU_DIGITAL_SIGNATURE,
        .eku = PKI_EKU_CLIENT, /* exactly clientAuth: apid refuses anything else */
        .not_before = now - 10, /* Talos allows for this much clock skew */
        .not_after = now + ONE_YEAR_S,
    };
    return issue(&s->os, "os", &spec, crt, key, err);
}

int talos_talosconfig(const struct lab *lab, const struct talos_secrets *s, struct bd_buf *out,
                      struct bd_err *err)
{
    if (need_endpoint(lab, err) < 0)
        return -1;
    char *crt_pem, *key_pem;
    if (os_admin_cert(s, &crt_pem, &key_pem, err) < 0)
        return -1;
    char *crt = talos_pki_b64(crt_pem, strlen(crt_pem)), *key = talos_pki_b64(key_pem, strlen(key_pem));
    free(crt_pem);
    free(key_pem);
    struct bd_node *root = bd_node_new(BD_NODE_MAP);
    talos_tree_str(root, "context", lab->cluster.name);
    struct bd_node *ctx = talos_tree_map(talos_tree_map(root, "contexts"), lab->cluster.name);
    endpoints(lab, talos_tree_seq(ctx, "endpoints"));
    talos_tree_str(ctx, "ca", s->os.crt);
    talos_tree_str(ctx, "crt", crt);
    talos_tree_str(ctx, "key", key);
    bd_yaml_emit(out, root);
    bd_node_free(root);
    free(crt);
    free(key);
    return 0;
}

int talos_api_creds(const struct lab *lab, const struct talos_secrets *s, struct talos_creds *out,
                    struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    size_t n;
    out->ca_pem = (char *)talos_pki_unb64(s->os.crt, &n);
    if (!out->ca_pem)
        return bd_err_set(err, "%s: certs.os.crt is not base64", lab->cluster.secrets_file);
    if (os_admin_cert(s, &out->crt_pem, &out->key_pem, err) < 0) {
        talos_creds_free(out);
        return -1;
    }
    /* libcurl hands the key to OpenSSL's PEM reader, which knows PKCS#8 as "PRIVATE KEY"
     * but not talosctl's name for the same body */
    static const char ed[] = "ED25519 PRIVATE KEY";
    for (char *at; (at = strstr(out->key_pem, ed));)
        memmove(at, at + 8, strlen(at + 8) + 1);
    return 0;
}

void talos_creds_free(struct talos_creds *c)
{
    free(c->ca_pem);
    free(c->crt_pem);
    free(c->key_pem);
    memset(c, 0, sizeof *c);
}

int talos_kube_admin(const struct lab *lab, const struct talos_secrets *s,
                     struct talos_kube_admin *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    if (need_endpoint(lab, err) < 0)
        return -1;
    int64_t now = time(NULL);
    struct pki_cert_spec spec = {
        .subject = "O=system:masters,CN=admin",
        .key_usage = PKI_KU_DIGITAL_SIGNATURE | PKI_KU_KEY_ENCIPHERMENT,
        .eku = PKI_EKU_CLIENT,
        .not_before = now - 10, /* Talos allows for this much clock skew */
        .not_after = now + ONE_YEAR_S,
    };
    size_t n;
    out->ca_pem = (char *)talos_pki_unb64(s->k8s.crt, &n);
    if (!out->ca_pem)
        return bd_err_set(err, "%s: certs.k8s.crt is not base64", lab->cluster.secrets_file);
    if (issue(&s->k8s, "k8s", &spec, &out->crt_pem, &out->key_pem, err) < 0) {
        talos_kube_admin_free(out);
        return -1;
    }
    out->server = bd_xstrdup(lab->cluster.endpoint);
    return 0;
}

void talos_kube_admin_free(struct talos_kube_admin *a)
{
    free(a->server);
    free(a->ca_pem);
    free(a->crt_pem);
    free(a->key_pem);
    memset(a, 0, sizeof *a);
}

int talos_kubeconfig(const struct lab *lab, const struct talos_secrets *s, struct bd_buf *out,
                     struct bd_err *err)
{
    struct talos_kube_admin a;
    if (talos_kube_admin(lab, s, &a, err) < 0)
        return -1;
    char *crt = talos_pki_b64(a.crt_pem, strlen(a.crt_pem)), *key = talos_pki_b64(a.key_pem, strlen(a.key_pem));
    const char *name = lab->cluster.name;
    char *user = bd_xasprintf("admin@%s", name);
    /* keys in the order kubectl writes them */
    struct bd_node *root = bd_node_new(BD_NODE_MAP);
    talos_tree_str(root, "apiVersion", "v1");
    struct bd_node *cluster = talos_tree_item(talos_tree_seq(root, "clusters"));
    struct bd_node *c = talos_tree_map(cluster, "cluster");
    talos_tree_str(c, "certificate-authority-data", s->k8s.crt);
    talos_tree_str(c, "server", a.server);
    talos_tree_str(cluster, "name", name);
    struct bd_node *context = talos_tree_item(talos_tree_seq(root, "contexts"));
    struct bd_node *cc = talos_tree_map(context, "context");
    talos_tree_str(cc, "cluster", name);
    talos_tree_str(cc, "namespace", "default");
    talos_tree_str(cc, "user", user);
    talos_tree_str(context, "name", user);
    talos_tree_str(root, "current-context", user);
    talos_tree_str(root, "kind", "Config");
    talos_tree_map(root, "preferences");
    struct bd_node *u = talos_tree_item(talos_tree_seq(root, "users"));
    talos_tree_str(u, "name", user);
    struct bd_node *uu = talos_tree_map(u, "user");
    talos_tree_str(uu, "client-certificate-data", crt);
    talos_tree_str(uu, "client-key-data", key);
    bd_yaml_emit(out, root);
    bd_node_free(root);
    free(user);
    free(crt);
    free(key);
    talos_kube_admin_free(&a);
    return 0;
}

int talos_server_cert(const struct talos_secrets *s, bool k8s, const char *common_name,
                      const char *const *sans, size_t nsans, char **crt_pem, char **key_pem,
                      struct bd_err *err)
{
    int64_t now = time(NULL);
    char *subject = bd_xasprintf("CN=%s", common_name);
    struct pki_cert_spec spec = {
        .subject = subject,
        .key_usage = PKI_KU_DIGITAL_SIGNATURE | PKI_KU_KEY_ENCIPHERMENT,
        .eku = PKI_EKU_SERVER,
        .sans = sans,
        .nsans = nsans,
        .not_before = now - 10,
        .not_after = now + ONE_YEAR_S,
    };
    int rc = issue(k8s ? &s->k8s : &s->os, k8s ? "k8s" : "os", &spec, crt_pem, key_pem, err);
    free(subject);
    return rc;
}
