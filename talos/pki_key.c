/* Private keys: generation, PEM in and out, base64. */
#include "internal.h"

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/rsa.h>
#include <stdlib.h>
#include <string.h>

int talos_pki_rng(void *unused, unsigned char *buf, size_t len)
{
    (void)unused;
    struct bd_err err;
    return bd_random(buf, len, &err) < 0 ? MBEDTLS_ERR_ERROR_GENERIC_ERROR : 0;
}

static int mbed_fail(struct bd_err *err, int rc, const char *what)
{
    char msg[200];
    mbedtls_strerror(rc, msg, sizeof msg);
    return bd_err_set(err, "%s: %s", what, msg);
}

int talos_pki_key_generate(mbedtls_pk_context *pk, enum pki_key_type type, struct bd_err *err)
{
    mbedtls_pk_init(pk);
    int rc;
    if (type == PKI_KEY_EC_P256) {
        rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
        if (rc == 0)
            rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), talos_pki_rng, NULL);
    } else {
        rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
        if (rc == 0)
            rc = mbedtls_rsa_gen_key(mbedtls_pk_rsa(*pk), talos_pki_rng, NULL, 4096, 65537);
    }
    if (rc != 0) {
        mbedtls_pk_free(pk);
        return mbed_fail(err, rc, "generating a key");
    }
    return 0;
}

/* A generic PKCS#8 "PRIVATE KEY" block whose algorithm is Ed25519. */
static bool pkcs8_is_ed25519(const char *pem)
{
    mbedtls_pem_context ctx;
    mbedtls_pem_init(&ctx);
    size_t used;
    bool ed = false;
    if (mbedtls_pem_read_buffer(&ctx, "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
                                (const unsigned char *)pem, NULL, 0, &used) == 0) {
        /* id-Ed25519 is 1.3.101.112: 06 03 2b 65 70 right after the version */
        static const unsigned char oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
        for (size_t i = 0; i + sizeof oid <= ctx.buflen && i < 16; i++)
            if (!memcmp(ctx.buf + i, oid, sizeof oid))
                ed = true;
    }
    mbedtls_pem_free(&ctx);
    return ed;
}

bool talos_pki_key_is_ed25519(const char *pem)
{
    return strstr(pem, "-----BEGIN ED25519 PRIVATE KEY-----") || pkcs8_is_ed25519(pem);
}

int talos_pki_key_parse(const char *pem, mbedtls_pk_context *pk, const char *what, struct bd_err *err)
{
    mbedtls_pk_init(pk);
    if (talos_pki_key_is_ed25519(pem))
        return bd_err_set(err,
                          "%s is an Ed25519 key, which mbedTLS 2.28 cannot sign with; bootd needs "
                          "an ECDSA or RSA key here",
                          what);
    int rc = mbedtls_pk_parse_key(pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0);
    if (rc != 0) {
        mbedtls_pk_free(pk);
        return mbed_fail(err, rc, what);
    }
    return 0;
}

int talos_pki_key_pem(mbedtls_pk_context *pk, char **out, struct bd_err *err)
{
    size_t cap = 16384; /* an RSA-4096 key takes about 3.3 KB */
    unsigned char *buf = bd_xmalloc(cap);
    int rc = mbedtls_pk_write_key_pem(pk, buf, cap);
    if (rc != 0) {
        free(buf);
        return mbed_fail(err, rc, "writing a key");
    }
    *out = (char *)buf;
    return 0;
}

char *talos_pki_b64(const void *data, size_t len)
{
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, data, len);
    unsigned char *out = bd_xmalloc(olen + 1);
    mbedtls_base64_encode(out, olen + 1, &olen, data, len);
    out[olen] = 0;
    return (char *)out;
}

unsigned char *talos_pki_unb64(const char *s, size_t *len)
{
    size_t slen = strlen(s), olen = 0;
    if (mbedtls_base64_decode(NULL, 0, &olen, (const unsigned char *)s, slen) ==
        MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return NULL;
    unsigned char *out = bd_xmalloc(olen + 1);
    if (mbedtls_base64_decode(out, olen + 1, &olen, (const unsigned char *)s, slen) != 0) {
        free(out);
        return NULL;
    }
    out[olen] = 0;
    *len = olen;
    return out;
}
