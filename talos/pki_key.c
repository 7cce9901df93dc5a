/* Private keys with OpenSSL 3: generation, PEM in and out (the block types Talos reads
 * and writes), base64. */
#include "internal.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *talos_pki_key_generate(enum pki_key_type type, struct bd_err *err)
{
    EVP_PKEY *k = NULL;
    switch (type) {
    case PKI_KEY_ED25519:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case PKI_KEY_EC_P256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case PKI_KEY_RSA_4096:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    }
    if (!k)
        bd_err_openssl(err, "generating a key");
    return k;
}

enum pki_key_type talos_pki_key_type_of(const EVP_PKEY *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_ED25519:
        return PKI_KEY_ED25519;
    case EVP_PKEY_RSA:
        return PKI_KEY_RSA_4096;
    default:
        return PKI_KEY_EC_P256;
    }
}

const char *talos_pki_key_type_name(const EVP_PKEY *k)
{
    if (!k)
        return "unreadable";
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_ED25519:
        return "Ed25519";
    case EVP_PKEY_RSA:
        return "RSA";
    case EVP_PKEY_EC:
        return "ECDSA";
    default:
        return "an unsupported algorithm";
    }
}

/* The PEM block types siderolabs/crypto reads (x509/key.go): anything else, an
 * encrypted key included, Talos refuses too. */
static const char *const key_blocks[] = {"ED25519 PRIVATE KEY", "EC PRIVATE KEY",
                                         "RSA PRIVATE KEY", "PRIVATE KEY", NULL};

EVP_PKEY *talos_pki_key_parse(const char *pem, const char *what, struct bd_err *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    EVP_PKEY *k = NULL;
    if (!PEM_read_bio(bio, &name, &header, &der, &len)) {
        ERR_clear_error();
        bd_err_set(err, "%s: no PEM block", what);
        goto out;
    }
    bool known = false;
    for (int i = 0; key_blocks[i]; i++)
        known |= !strcmp(name, key_blocks[i]);
    if (!known) {
        bd_err_set(err,
                    "%s: a PEM \"%s\" block; Talos reads ED25519 PRIVATE KEY, EC PRIVATE KEY, "
                    "RSA PRIVATE KEY or PRIVATE KEY",
                    what, name);
        goto out;
    }
    /* PKCS#8 (both PRIVATE KEY and Talos's ED25519 PRIVATE KEY), SEC1 and PKCS#1 */
    const unsigned char *p = der;
    k = d2i_AutoPrivateKey(NULL, &p, len);
    if (!k)
        bd_err_openssl(err, what);
    else if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519 && EVP_PKEY_get_base_id(k) != EVP_PKEY_EC &&
             EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        bd_err_set(err, "%s: not an Ed25519, ECDSA or RSA key", what);
        EVP_PKEY_free(k);
        k = NULL;
    }
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    return k;
}

static char *bio_text(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    return bd_xstrndup(data, (size_t)n);
}

int talos_pki_key_pem(EVP_PKEY *k, char **out, struct bd_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int ok;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
        /* talosctl's layout: a PKCS#8 body under its own block type */
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
        unsigned char *der = NULL;
        int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
        ok = len > 0 && PEM_write_bio(bio, "ED25519 PRIVATE KEY", "", der, len) > 0;
        OPENSSL_free(der);
        PKCS8_PRIV_KEY_INFO_free(p8);
    } else {
        /* SEC1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY", as talosctl writes them */
        ok = PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL) == 1;
    }
    if (ok)
        *out = bio_text(bio);
    BIO_free(bio);
    return ok ? 0 : bd_err_openssl(err, "writing a key");
}

char *talos_pki_b64(const void *data, size_t len)
{
    char *out = bd_xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

unsigned char *talos_pki_unb64(const char *s, size_t *len)
{
    size_t slen = strlen(s);
    while (slen && (s[slen - 1] == '\n' || s[slen - 1] == ' '))
        slen--;
    if (slen % 4)
        return NULL;
    for (size_t i = 0; i < slen; i++) {
        char c = s[i];
        bool pad_ok = c == '=' && i >= slen - 2 && (i == slen - 1 || s[slen - 1] == '=');
        if (!(c == '+' || c == '/' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || pad_ok))
            return NULL;
    }
    unsigned char *out = bd_xmalloc(slen / 4 * 3 + 1);
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)slen);
    if (n < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding as zero bytes */
    n -= (slen && s[slen - 1] == '=') + (slen > 1 && s[slen - 2] == '=');
    out[n] = 0;
    *len = (size_t)n;
    return out;
}
