/* secrets.yaml in the layout `talosctl gen secrets` writes, or the Terraform
 * provider's talos_machine_secrets as yamlencode() writes it: reading, checking, and
 * writing it (always talosctl's layout). Values are kept as the file has them (base64 of PEM for certificates and
 * keys), so a bundle made by talosctl reaches machine configs byte for byte. */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
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
    bool terraform; /* the file is the Terraform provider's talos_machine_secrets */
    struct bd_err *err;
};

/* The Terraform provider's talos_machine_secrets (yamlencoded) holds the same values
 * under other key names; these are all the differences, key by key. */
static const char *const tf_keys[][2] = {
    {"bootstraptoken", "bootstrap_token"},
    {"secretboxencryptionsecret", "secretbox_encryption_secret"},
    {"aescbcencryptionsecret", "aescbc_encryption_secret"},
    {"k8saggregator", "k8s_aggregator"},
    {"k8sserviceaccount", "k8s_serviceaccount"},
    {"crt", "cert"},
};
#define NTF (sizeof tf_keys / sizeof tf_keys[0])

/* A dotted path as the file spells it. */
static void file_path(const struct reader *r, const char *path, char *out, size_t size)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    size_t o = 0;
    out[0] = 0;
    char *save = NULL;
    for (char *key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save)) {
        const char *name = key;
        for (size_t i = 0; r->terraform && i < NTF; i++)
            if (!strcmp(key, tf_keys[i][0]))
                name = tf_keys[i][1];
        o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", o ? "." : "", name);
    }
}

/* Renames a Terraform-layout tree's keys to talosctl's (positions stay) and drops the
 * null values Terraform writes for unset attributes. True when anything was renamed. */
static bool from_terraform(struct bd_node *map)
{
    bool renamed = false;
    if (map->kind != BD_NODE_MAP)
        return false;
    for (size_t i = 0; i < map->n; i++) {
        struct bd_node *k = map->kids[2 * i], *v = map->kids[2 * i + 1];
        for (size_t t = 0; t < NTF; t++)
            if (k->kind == BD_NODE_SCALAR && !strcmp(k->str, tf_keys[t][1])) {
                free(k->str);
                k->str = bd_xstrdup(tf_keys[t][0]);
                renamed = true;
            }
        renamed |= from_terraform(v);
    }
    return renamed;
}

static void drop_nulls(struct bd_node *map)
{
    if (map->kind != BD_NODE_MAP)
        return;
    size_t keep = 0;
    for (size_t i = 0; i < map->n; i++) {
        struct bd_node *k = map->kids[2 * i], *v = map->kids[2 * i + 1];
        if (bd_node_is_null(v)) {
            bd_node_free(k);
            bd_node_free(v);
            continue;
        }
        drop_nulls(v);
        map->kids[2 * keep] = k;
        map->kids[2 * keep + 1] = v;
        keep++;
    }
    map->n = keep;
}

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
    char where[160];
    file_path(r, path, where, sizeof where);
    if (n && n->line)
        return bd_err_set(r->err, "%s:%d:%d: %s: %s", r->file, n->line, n->col, where, msg);
    return bd_err_set(r->err, "%s: %s: %s", r->file, where, msg);
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

/* A certificate's base64 PEM: decodes to a CERTIFICATE that parses (*crt, caller
 * frees). */
static int check_cert(const struct reader *r, const struct bd_node *root, const char *path,
                      const char *b64, X509 **crt)
{
    const struct bd_node *n = lookup(root, path);
    size_t len;
    char *pem = (char *)talos_pki_unb64(b64, &len);
    if (!pem)
        return fail_at(r, n, path, "not base64 (talosctl writes the PEM text base64-encoded)");
    int rc = 0;
    struct bd_err e;
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
        rc = fail_at(r, n, path, "does not hold a PEM CERTIFICATE");
    else if (!(*crt = talos_pki_cert_parse(pem, "the certificate does not parse", &e)))
        rc = fail_at(r, n, path, "%s", e.msg);
    free(pem);
    return rc;
}

static int check_key(const struct reader *r, const struct bd_node *root, const char *path,
                     const char *b64, EVP_PKEY **key)
{
    const struct bd_node *n = lookup(root, path);
    size_t len;
    char *pem = (char *)talos_pki_unb64(b64, &len);
    if (!pem)
        return fail_at(r, n, path, "not base64 (talosctl writes the PEM text base64-encoded)");
    struct bd_err e;
    int rc = 0;
    if (!(*key = talos_pki_key_parse(pem, "the key", &e)))
        rc = fail_at(r, n, path, "%s", e.msg);
    free(pem);
    return rc;
}

/* A CA: certificate and key parse and belong together, and the certificate is a CA.
 * Only the os CA may be Ed25519: Talos makes the others ECDSA, and Kubernetes and etcd
 * clients (bootd's own among them) are not expected to meet Ed25519 there. */
static int check_ca(const struct reader *r, const struct bd_node *root, const char *name,
                    const struct secrets_ca *ca, bool *ed25519)
{
    char cpath[64], kpath[64];
    snprintf(cpath, sizeof cpath, "certs.%s.crt", name);
    snprintf(kpath, sizeof kpath, "certs.%s.key", name);
    X509 *crt = NULL;
    EVP_PKEY *key = NULL;
    int rc = check_cert(r, root, cpath, ca->crt, &crt);
    if (rc == 0)
        rc = check_key(r, root, kpath, ca->key, &key);
    bool ed = key && talos_pki_key_type_of(key) == PKI_KEY_ED25519;
    if (rc == 0 && ed && strcmp(name, "os"))
        rc = fail_at(r, lookup(root, kpath), kpath,
                     "an Ed25519 key; Talos makes this CA ECDSA P-256, and bootd reads ECDSA or RSA "
                     "here");
    else if (rc == 0 && !X509_get0_pubkey(crt))
        /* e.g. an EC point off its curve: OpenSSL parses the certificate, not its key */
        rc = fail_at(r, lookup(root, cpath), cpath, "its public key cannot be read (a damaged "
                     "certificate, or an algorithm bootd does not know)");
    else if (rc == 0 && X509_check_private_key(crt, key) != 1)
        rc = fail_at(r, lookup(root, kpath), kpath, "does not belong to %s (a %s key, a %s "
                     "certificate)", cpath, talos_pki_key_type_name(key),
                     talos_pki_key_type_name(X509_get0_pubkey(crt)));
    else if (rc == 0 && X509_check_ca(crt) == 0)
        rc = fail_at(r, lookup(root, cpath), cpath, "not a CA certificate (basicConstraints CA:FALSE)");
    ERR_clear_error();
    *ed25519 = ed;
    X509_free(crt);
    EVP_PKEY_free(key);
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
    if (!s->secretbox_secret == !s->aescbc_secret) {
        char a[64], b[64];
        file_path(r, "secretboxencryptionsecret", a, sizeof a);
        file_path(r, "aescbcencryptionsecret", b, sizeof b);
        return fail_at(r, lookup(root, "secrets"), "secrets", "needs exactly one of %s and %s", a, b);
    }
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
    EVP_PKEY *sa = NULL;
    if (check_key(r, root, "certs.k8sserviceaccount.key", s->service_account_key, &sa) < 0)
        return -1;
    ed = talos_pki_key_type_of(sa) == PKI_KEY_ED25519;
    EVP_PKEY_free(sa);
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
    struct bd_node *root = doc.docs[0];
    if (from_terraform(root)) {
        r.terraform = true;
        drop_nulls(root);
    }
    struct talos_secrets *s = bd_xcalloc(1, sizeof *s);
    int rc = check_keys(&r, root, "");
    for (size_t i = 0; rc == 0 && i < NFIELDS; i++) {
        const struct bd_node *n = lookup(root, fields[i].path);
        if (n && n->str[0])
            *member(s, &fields[i]) = bd_xstrdup(n->str);
        else if (fields[i].required)
            rc = fail_at(&r, n, fields[i].path,
                         "missing; is this a `talosctl gen secrets` bundle or the Terraform "
                         "provider's talos_machine_secrets?");
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

int talos_secrets_ca_open(const struct secrets_ca *ca, const char *name, X509 **crt, EVP_PKEY **key,
                    struct bd_err *err)
{
    char what[80];
    snprintf(what, sizeof what, "the %s CA key in the secrets bundle", name);
    size_t len;
    char *pem = (char *)talos_pki_unb64(ca->key, &len);
    if (!pem)
        return bd_err_set(err, "%s is not base64", what);
    *key = talos_pki_key_parse(pem, what, err);
    free(pem);
    if (!*key)
        return -1;
    snprintf(what, sizeof what, "the %s CA certificate in the secrets bundle", name);
    if (!(pem = (char *)talos_pki_unb64(ca->crt, &len))) {
        bd_err_set(err, "%s is not base64", what);
        *crt = NULL;
    } else {
        *crt = talos_pki_cert_parse(pem, what, err);
        free(pem);
    }
    if (!*crt) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return -1;
    }
    return 0;
}
