/* secrets.yaml in the layout `talosctl gen secrets` writes: reading, checking and
 * writing it. Values are kept as the file has them (base64 of PEM for certificates and
 * keys), so a bundle made by talosctl reaches machine configs byte for byte. */
#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(m) offsetof(struct talos_secrets, m)

/* Every key of the file, in the order talosctl writes them. */
static const struct field {
    const char *path;
    size_t off;
    bool required;
} fields[] = {
    {"cluster.id", S(cluster_id), true},
    {"cluster.secret", S(cluster_secret), true},
    {"secrets.bootstraptoken", S(bootstrap_token), true},
    {"secrets.aescbcencryptionsecret", S(aescbc_secret), false},
    {"secrets.secretboxencryptionsecret", S(secretbox_secret), false},
    {"trustdinfo.token", S(trustd_token), true},
    {"certs.etcd.crt", S(etcd.crt), true},
    {"certs.etcd.key", S(etcd.key), true},
    {"certs.k8s.crt", S(k8s.crt), true},
    {"certs.k8s.key", S(k8s.key), true},
    {"certs.k8saggregator.crt", S(k8s_aggregator.crt), true},
    {"certs.k8saggregator.key", S(k8s_aggregator.key), true},
    {"certs.k8sserviceaccount.key", S(service_account_key), true},
    {"certs.os.crt", S(os.crt), true},
    {"certs.os.key", S(os.key), true},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static char **member(struct talos_secrets *s, const struct field *f)
{
    return (char **)((char *)s + f->off);
}

void talos_secrets_free(struct talos_secrets *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NFIELDS; i++)
        free(*member(s, &fields[i]));
    free(s);
}

const char *talos_secrets_cluster_id(const struct talos_secrets *s)
{
    return s->cluster_id;
}

void talos_secrets_emit(const struct talos_secrets *s, struct bd_buf *out)
{
    struct bd_node *root = bd_node_new(BD_NODE_MAP);
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *v = *member((struct talos_secrets *)s, &fields[i]);
        if (!v)
            continue;
        /* walk/create the parent maps of "a.b.c" */
        struct bd_node *map = root;
        char *path = bd_xstrdup(fields[i].path), *key = path, *dot;
        while ((dot = strchr(key, '.'))) {
            *dot = 0;
            struct bd_node *next = bd_node_get(map, key);
            map = next ? next : talos_tree_map(map, key);
            key = dot + 1;
        }
        talos_tree_str(map, key, v);
        free(path);
    }
    bd_yaml_emit(out, root);
    bd_node_free(root);
}

/* ---- reading ---- */

struct reader {
    const char *file;
    struct bd_err *err;
};

static int fail_at(const struct reader *r, const struct bd_node *n, const char *path,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(const struct reader *r, const struct bd_node *n, const char *path,
                   const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n && n->line)
        return bd_err_set(r->err, "%s:%d:%d: %s: %s", r->file, n->line, n->col, path, msg);
    return bd_err_set(r->err, "%s: %s: %s", r->file, path, msg);
}

/* Unknown keys are refused: a misspelt key would otherwise read as a missing one. */
static int check_keys(const struct reader *r, const struct bd_node *map, const char *prefix)
{
    if (map->kind != BD_NODE_MAP)
        return fail_at(r, map, *prefix ? prefix : "(top)", "expected a mapping, got %s",
                       bd_node_kind_name(map));
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < map->n; i++) {
        const struct bd_node *k = map->kids[2 * i], *v = map->kids[2 * i + 1];
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", prefix, plen ? "." : "", k->str);
        size_t len = strlen(path);
        bool leaf = false, inner = false;
        for (size_t f = 0; f < NFIELDS; f++) {
            leaf |= !strcmp(fields[f].path, path);
            inner |= !strncmp(fields[f].path, path, len) && fields[f].path[len] == '.';
        }
        if (!leaf && !inner)
            return fail_at(r, k, path, "unknown key in a Talos secrets bundle");
        if (inner && check_keys(r, v, path) < 0)
            return -1;
        if (leaf && (v->kind != BD_NODE_SCALAR || bd_node_is_null(v)))
            return fail_at(r, v, path, "expected a string, got %s", bd_node_kind_name(v));
    }
    return 0;
}

static const struct bd_node *lookup(const struct bd_node *root, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const struct bd_node *n = root;
    for (char *key = strtok(buf, "."); key && n; key = strtok(NULL, "."))
        n = bd_node_get(n, key);
    return n;
}

static bool token_ok(const char *t)
{
    /* [a-z0-9]{6}.[a-z0-9]{16}: the Kubernetes bootstrap token format */
    if (strlen(t) != 23 || t[6] != '.')
        return false;
    for (int i = 0; i < 23; i++)
        if (i != 6 && !((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
            return false;
    return true;
}

static bool b64_32(const char *s)
{
    size_t len;
    unsigned char *d = talos_pki_unb64(s, &len);
    free(d);
    return d && len == 32;
}

/* A certificate's base64 PEM: decodes to a CERTIFICATE block, parsed into crt when
 * mbedTLS can (crt->raw.p stays NULL when it cannot). */
static int check_cert(const struct reader *r, const struct bd_node *root, const char *path,
                      const char *b64, mbedtls_x509_crt *crt)
{
    const struct bd_node *n = lookup(root, path);
    size_t len;
    char *pem = (char *)talos_pki_unb64(b64, &len);
    if (!pem)
        return fail_at(r, n, path, "not base64 (talosctl writes the PEM text base64-encoded)");
    int rc = 0;
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
        rc = fail_at(r, n, path, "does not hold a PEM CERTIFICATE");
    else if (mbedtls_x509_crt_parse(crt, (unsigned char *)pem, len + 1) != 0)
        mbedtls_x509_crt_free(crt);
    free(pem);
    return rc;
}

static int check_key(const struct reader *r, const struct bd_node *root, const char *path,
                     const char *b64, mbedtls_pk_context *key, bool *ed25519)
{
    const struct bd_node *n = lookup(root, path);
    size_t len;
    char *pem = (char *)talos_pki_unb64(b64, &len);
    if (!pem)
        return fail_at(r, n, path, "not base64 (talosctl writes the PEM text base64-encoded)");
    *ed25519 = talos_pki_key_is_ed25519(pem);
    struct bd_err e;
    int rc = 0;
    if (!*ed25519 && talos_pki_key_parse(pem, key, "the key", &e) < 0)
        rc = fail_at(r, n, path, "%s", e.msg);
    free(pem);
    return rc;
}

/* A CA: certificate and key parse and belong together. talosctl's own bundles hold two
 * CAs mbedTLS 2.28 cannot read: the os CA is Ed25519, and the aggregator CA has an
 * empty subject. bootd never signs with the aggregator CA and signs with the os CA only
 * for talosconfig, so both are carried as they are. */
static int check_ca(const struct reader *r, const struct bd_node *root, const char *name,
                    const struct secrets_ca *ca, bool *ed25519)
{
    char cpath[64], kpath[64];
    snprintf(cpath, sizeof cpath, "certs.%s.crt", name);
    snprintf(kpath, sizeof kpath, "certs.%s.key", name);
    bool may_be_opaque = !strcmp(name, "os") || !strcmp(name, "k8saggregator");
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    bool ed = false;
    int rc = check_cert(r, root, cpath, ca->crt, &crt);
    if (rc == 0)
        rc = check_key(r, root, kpath, ca->key, &key, &ed);
    bool parsed = crt.raw.p != NULL;
    if (rc == 0 && ed && strcmp(name, "os"))
        rc = fail_at(r, lookup(root, kpath), kpath,
                     "an Ed25519 key; bootd needs ECDSA or RSA for this CA");
    else if (rc == 0 && !parsed && !may_be_opaque)
        rc = fail_at(r, lookup(root, cpath), cpath, "the certificate does not parse");
    else if (rc == 0 && parsed && ed)
        rc = fail_at(r, lookup(root, kpath), kpath, "an Ed25519 key for a non-Ed25519 certificate");
    else if (rc == 0 && parsed && mbedtls_pk_check_pair(&crt.pk, &key) != 0)
        rc = fail_at(r, lookup(root, kpath), kpath, "does not belong to %s", cpath);
    else if (rc == 0 && parsed && !crt.ca_istrue)
        rc = fail_at(r, lookup(root, cpath), cpath, "not a CA certificate (basicConstraints CA:FALSE)");
    *ed25519 = ed;
    mbedtls_x509_crt_free(&crt);
    mbedtls_pk_free(&key);
    return rc;
}

static int check_bundle(const struct reader *r, const struct bd_node *root, struct talos_secrets *s)
{
    if (!token_ok(s->bootstrap_token))
        return fail_at(r, lookup(root, "secrets.bootstraptoken"), "secrets.bootstraptoken",
                       "\"%s\" is not a token like abcdef.0123456789abcdef", s->bootstrap_token);
    if (!b64_32(s->cluster_secret))
        return fail_at(r, lookup(root, "cluster.secret"), "cluster.secret",
                       "must be base64 of 32 bytes (the discovery service's AES key)");
    if (!s->secretbox_secret == !s->aescbc_secret)
        return fail_at(r, lookup(root, "secrets"), "secrets",
                       "needs exactly one of secretboxencryptionsecret and aescbcencryptionsecret");
    const char *enc = s->secretbox_secret ? s->secretbox_secret : s->aescbc_secret;
    if (!b64_32(enc))
        return fail_at(r, NULL,
                       s->secretbox_secret ? "secrets.secretboxencryptionsecret"
                                           : "secrets.aescbcencryptionsecret",
                       "must be base64 of 32 bytes");
    bool ed;
    if (check_ca(r, root, "etcd", &s->etcd, &ed) < 0 || check_ca(r, root, "k8s", &s->k8s, &ed) < 0 ||
        check_ca(r, root, "k8saggregator", &s->k8s_aggregator, &ed) < 0 ||
        check_ca(r, root, "os", &s->os, &s->os_ed25519) < 0)
        return -1;
    mbedtls_pk_context sa;
    mbedtls_pk_init(&sa);
    if (check_key(r, root, "certs.k8sserviceaccount.key", s->service_account_key, &sa, &ed) < 0)
        return -1; /* check_key frees what it could not parse */
    mbedtls_pk_free(&sa);
    if (ed)
        return fail_at(r, lookup(root, "certs.k8sserviceaccount.key"), "certs.k8sserviceaccount.key",
                       "an Ed25519 key; kube-apiserver signs service-account tokens with RSA or "
                       "ECDSA only");
    return 0;
}

int talos_secrets_parse(const char *text, size_t len, const char *file, struct talos_secrets **out,
                        struct bd_err *err)
{
    struct reader r = {.file = file, .err = err};
    struct bd_yaml_doc doc;
    if (bd_yaml_parse(text, len, file, &doc, err) < 0)
        return -1;
    if (doc.ndocs != 1) {
        bd_yaml_doc_free(&doc);
        return bd_err_set(err, "%s: expected one YAML document, found %zu", file, doc.ndocs);
    }
    const struct bd_node *root = doc.docs[0];
    struct talos_secrets *s = bd_xcalloc(1, sizeof *s);
    int rc = check_keys(&r, root, "");
    for (size_t i = 0; rc == 0 && i < NFIELDS; i++) {
        const struct bd_node *n = lookup(root, fields[i].path);
        if (n && n->str[0])
            *member(s, &fields[i]) = bd_xstrdup(n->str);
        else if (fields[i].required)
            rc = fail_at(&r, n, fields[i].path, "missing; is this a `talosctl gen secrets` bundle?");
    }
    if (rc == 0)
        rc = check_bundle(&r, root, s);
    bd_yaml_doc_free(&doc);
    if (rc < 0) {
        talos_secrets_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int talos_secrets_load(const char *path, struct talos_secrets **out, struct bd_err *err)
{
    char *text;
    size_t len;
    if (bd_file_check_private(path, err) < 0 || bd_file_read(path, &text, &len, err) < 0)
        return -1;
    int rc = talos_secrets_parse(text, len, path, out, err);
    free(text);
    return rc;
}

int talos_secrets_ca_open(const struct secrets_ca *ca, const char *name, mbedtls_x509_crt *crt,
                    mbedtls_pk_context *key, struct bd_err *err)
{
    mbedtls_x509_crt_init(crt);
    mbedtls_pk_init(key);
    char what[64];
    snprintf(what, sizeof what, "the %s CA key in the secrets bundle", name);
    size_t len;
    char *key_pem = (char *)talos_pki_unb64(ca->key, &len);
    if (!key_pem || talos_pki_key_parse(key_pem, key, what, err) < 0) {
        if (!key_pem)
            bd_err_set(err, "%s is not base64", what);
        free(key_pem);
        return -1;
    }
    free(key_pem);
    char *crt_pem = (char *)talos_pki_unb64(ca->crt, &len);
    int rc = crt_pem ? mbedtls_x509_crt_parse(crt, (unsigned char *)crt_pem, len + 1) : -1;
    free(crt_pem);
    if (rc != 0) {
        mbedtls_pk_free(key);
        mbedtls_x509_crt_free(crt);
        return bd_err_set(err, "the %s CA certificate in the secrets bundle cannot be read by mbedTLS",
                          name);
    }
    return 0;
}
