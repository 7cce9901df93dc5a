/* X.509 certificates with OpenSSL 3: CAs as Talos makes them, the client and server
 * certificates bootd hands out, reading and checking them. OpenSSL writes the
 * AlgorithmIdentifier the way RFC 5758 3.2 asks (ecdsa-with-SHA256 with no parameters)
 * and signs with Ed25519, talosctl's os CA algorithm. */
#include "internal.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "O=system:masters,CN=admin" -> a name; "" -> the empty name (Talos's aggregator CA). */
static X509_NAME *parse_dn(const char *dn, struct bd_err *err)
{
    X509_NAME *name = X509_NAME_new();
    char *copy = bd_xstrdup(dn), *save = NULL;
    for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '=');
        if (eq)
            *eq = 0;
        if (!eq || !X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8,
                                               (const unsigned char *)eq + 1, -1, -1, 0)) {
            bd_err_set(err, "bad subject \"%s\"", dn);
            X509_NAME_free(name);
            free(copy);
            return NULL;
        }
    }
    free(copy);
    return name;
}

/* A random positive 128-bit serial, as Go's x509 tooling makes them. */
static int random_serial(X509 *x)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[0] &= 0x7f;
    b[0] |= 0x01; /* never zero, never negative */
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static char *key_usage_text(unsigned ku)
{
    struct bd_buf b;
    bd_buf_init(&b);
    /* critical, as Go's x509 writes it */
    bd_buf_puts(&b, "critical");
    if (ku & PKI_KU_DIGITAL_SIGNATURE)
        bd_buf_puts(&b, ",digitalSignature");
    if (ku & PKI_KU_KEY_ENCIPHERMENT)
        bd_buf_puts(&b, ",keyEncipherment");
    if (ku & PKI_KU_CERT_SIGN)
        bd_buf_puts(&b, ",keyCertSign");
    return bd_buf_steal(&b);
}

static int san_text(const char *const *sans, size_t n, struct bd_buf *b, struct bd_err *err)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t ip;
        const char *name = sans[i];
        bool is_ip = bd_ipv4_parse(name, &ip) == 0;
        if (!is_ip && !bd_dns_name_ok(name) &&
            !(name[0] == '*' && name[1] == '.' && bd_dns_name_ok(name + 2)))
            return bd_err_set(err,
                              "subject alternative name \"%s\" is neither an IPv4 address nor a "
                              "DNS name",
                              name);
        bd_buf_printf(b, "%s%s:%s", i ? "," : "", is_ip ? "IP" : "DNS", name);
    }
    return 0;
}

static int add_extensions(X509 *x, const struct pki_cert_spec *spec, X509 *issuer,
                          struct bd_err *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    char *ku = key_usage_text(spec->key_usage);
    int rc = add_ext(x, &ctx, NID_key_usage, ku);
    free(ku);
    if (rc == 0 && spec->eku) {
        const char *eku = spec->eku == (PKI_EKU_SERVER | PKI_EKU_CLIENT) ? "serverAuth,clientAuth"
                          : spec->eku == PKI_EKU_SERVER                   ? "serverAuth"
                                                                          : "clientAuth";
        rc = add_ext(x, &ctx, NID_ext_key_usage, eku);
    }
    if (rc == 0 && spec->ca)
        rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (rc == 0 && issuer)
        rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (rc < 0)
        return bd_err_openssl(err, "adding certificate extensions");
    if (spec->nsans) {
        struct bd_buf b;
        bd_buf_init(&b);
        rc = san_text(spec->sans, spec->nsans, &b, err);
        /* critical only when the subject is empty (RFC 5280 4.2.1.6) */
        if (rc == 0 && spec->subject[0] == 0)
            bd_buf_puts(&b, ",critical");
        if (rc == 0 && add_ext(x, &ctx, NID_subject_alt_name, b.data) < 0)
            rc = bd_err_openssl(err, "adding subject alternative names");
        bd_buf_free(&b);
    }
    return rc;
}

char *talos_pki_cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = bd_xstrndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

int talos_pki_cert_issue(const struct pki_cert_spec *spec, EVP_PKEY *subject_key, X509 *issuer,
                   EVP_PKEY *issuer_key, char **pem, struct bd_err *err)
{
    X509 *x = X509_new();
    X509_NAME *subject = parse_dn(spec->subject, err);
    int rc = -1;
    if (!subject)
        goto out;
    EVP_PKEY *signer = issuer ? issuer_key : subject_key;
    if (!X509_set_version(x, 2) || random_serial(x) < 0 ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)spec->not_after) ||
        !X509_set_subject_name(x, subject) ||
        /* the issuer's subject as it is encoded: Go chains by the raw bytes */
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) ||
        !X509_set_pubkey(x, subject_key)) {
        bd_err_openssl(err, "issuing a certificate");
        goto out;
    }
    if (add_extensions(x, spec, issuer, err) < 0)
        goto out;
    /* Ed25519 hashes internally (no digest); ECDSA and RSA sign SHA-256 */
    const EVP_MD *md = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    if (X509_sign(x, signer, md) <= 0) {
        bd_err_openssl(err, "signing a certificate");
        goto out;
    }
    *pem = talos_pki_cert_pem(x);
    rc = 0;
out:
    if (rc < 0)
        bd_err_prefix(err, "%s", spec->subject[0] ? spec->subject : "a certificate");
    X509_NAME_free(subject);
    X509_free(x);
    return rc;
}

X509 *talos_pki_cert_parse(const char *pem, const char *what, struct bd_err *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!x)
        bd_err_openssl(err, what);
    return x;
}

int talos_pki_cert_verify(X509 *crt, X509 *ca, struct bd_err *err)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;
    if (store && ctx && X509_STORE_add_cert(store, ca) && X509_STORE_CTX_init(ctx, store, crt, NULL)) {
        if (X509_verify_cert(ctx) == 1)
            rc = 0;
        else
            bd_err_set(err, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    } else {
        bd_err_openssl(err, "verifying a certificate");
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}
