/* The admin API over TLS on its own port (--admin-port): the admin token, kubeconfigs and
 * etcd snapshots must not cross the LAN in clear text, while the boot routes stay plain
 * HTTP (iPXE as Debian builds it has no HTTPS). The certificate is bootd's own, made on
 * first start (ECDSA P-256, self-signed); bootctl trusts it by pinning its public key,
 * which bootd logs and keeps in STATE/admin.pin in curl's format (sha256//BASE64). The
 * user may bring their own certificate and key instead (--admin-tls-cert, --admin-tls-key):
 * they are checked here, before anything listens, and pinned the same way. */
#include "server.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ssl_fail(struct bd_err *err, const char *what)
{
    return bd_err_set(err, "admin TLS: cannot %s", what);
}

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    return bd_xstrndup(p, (size_t)n);
}

/* A fresh key and a self-signed certificate naming the addresses bootctl may use. */
static int make_cert(const char *ip, char **cert_pem, char **key_pem, struct bd_err *err)
{
    int rc = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    unsigned char serial[16];
    if (!key || !x || !cb || !kb || RAND_bytes(serial, sizeof serial) != 1) {
        ssl_fail(err, "make a key");
        goto out;
    }
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bootd admin",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    char san[64];
    snprintf(san, sizeof san, "IP:127.0.0.1%s%s", ip ? ",IP:" : "", ip ? ip : "");
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
    if (!ext || !X509_add_ext(x, ext, -1) || !X509_sign(x, key, EVP_sha256()) ||
        !PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL)) {
        X509_EXTENSION_free(ext);
        ssl_fail(err, "make a certificate");
        goto out;
    }
    X509_EXTENSION_free(ext);
    *cert_pem = bio_text(cb);
    *key_pem = bio_text(kb);
    rc = 0;
out:
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* sha256//BASE64 of the certificate's SubjectPublicKeyInfo: what curl pins. */
static int pin_of(const char *cert_pem, char *pin, size_t n, struct bd_err *err)
{
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    unsigned char *der = NULL;
    int len = x ? i2d_PUBKEY(X509_get0_pubkey(x), &der) : -1;
    X509_free(x);
    if (len <= 0)
        return ssl_fail(err, "read the certificate's public key");
    uint8_t digest[32];
    bd_sha256(der, (size_t)len, digest);
    OPENSSL_free(der);
    unsigned char b64[48];
    EVP_EncodeBlock(b64, digest, sizeof digest);
    snprintf(pin, n, "sha256//%s", b64);
    return 0;
}

/* STATE/admin.pin, for bootctl on this host and for the admin to copy. */
static int write_pin(const char *state_dir, const char *cert_pem, char *pin, size_t pin_len,
                     struct bd_err *err)
{
    if (pin_of(cert_pem, pin, pin_len, err) < 0)
        return -1;
    char *pin_path = bd_path_join(state_dir, "admin.pin");
    char line[128];
    snprintf(line, sizeof line, "%s\n", pin);
    int rc = bd_file_write_atomic(pin_path, line, strlen(line), 0600, err);
    free(pin_path);
    return rc;
}

int server_admin_tls_material(const char *state_dir, const char *ip, char **cert_pem, char **key_pem,
                       char *pin, size_t pin_len, struct bd_err *err)
{
    char *cert_path = bd_path_join(state_dir, "admin-tls.crt");
    char *key_path = bd_path_join(state_dir, "admin-tls.key");
    int rc = -1;
    *cert_pem = *key_pem = NULL;
    if (access(cert_path, F_OK) < 0 || access(key_path, F_OK) < 0) {
        if (make_cert(ip, cert_pem, key_pem, err) < 0 ||
            bd_file_write_atomic(key_path, *key_pem, strlen(*key_pem), 0600, err) < 0 ||
            bd_file_write_atomic(cert_path, *cert_pem, strlen(*cert_pem), 0600, err) < 0)
            goto out;
        bd_info("admin: made a TLS certificate for the admin API in %s", cert_path);
    } else if (bd_file_check_private(key_path, err) < 0 ||
               bd_file_read(cert_path, cert_pem, NULL, err) < 0 ||
               bd_file_read(key_path, key_pem, NULL, err) < 0) {
        goto out;
    }
    rc = write_pin(state_dir, *cert_pem, pin, pin_len, err);
out:
    if (rc < 0) {
        free(*cert_pem);
        free(*key_pem);
        *cert_pem = *key_pem = NULL;
    }
    free(cert_path);
    free(key_path);
    return rc;
}

/* An encrypted key would make OpenSSL ask for a passphrase on the terminal: never. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The user's certificate and key: PEM, the key the certificate's, the certificate in date. */
static int check_pair(const char *cert_path, const char *cert_pem, const char *key_path,
                      const char *key_pem, struct bd_err *err)
{
    int rc = -1;
    BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    if (!x)
        bd_err_set(err, "--admin-tls-cert %s: not a PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
                   cert_path);
    else if (!key)
        bd_err_set(err, "--admin-tls-key %s: not an unencrypted PEM private key (an encrypted"
                        " one needs its passphrase, which bootd never asks for: openssl pkey"
                        " -in %s -out NEW.key)", key_path, key_path);
    else if (X509_check_private_key(x, key) != 1)
        bd_err_set(err, "--admin-tls-key %s is not the key of --admin-tls-cert %s (their public"
                        " keys differ)", key_path, cert_path);
    else if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        bd_err_set(err, "--admin-tls-cert %s: expired", cert_path);
    else
        rc = 0;
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

int server_admin_tls_user(const char *state_dir, const char *cert_path, const char *key_path,
                          char **cert_pem, char **key_pem, char *pin, size_t pin_len,
                          struct bd_err *err)
{
    *cert_pem = *key_pem = NULL;
    if (bd_file_read(cert_path, cert_pem, NULL, err) < 0) {
        bd_err_prefix(err, "--admin-tls-cert");
        goto fail;
    }
    if (bd_file_check_private(key_path, err) < 0 || bd_file_read(key_path, key_pem, NULL, err) < 0) {
        bd_err_prefix(err, "--admin-tls-key");
        goto fail;
    }
    if (check_pair(cert_path, *cert_pem, key_path, *key_pem, err) < 0 ||
        write_pin(state_dir, *cert_pem, pin, pin_len, err) < 0)
        goto fail;
    return 0;
fail:
    free(*cert_pem);
    free(*key_pem);
    *cert_pem = *key_pem = NULL;
    return -1;
}
