/* Pinning the Proxmox node's certificate by the SHA-256 of its leaf, as PVE's own client
 * does (pve-apiclient verify_cert_callback). CURLOPT_PINNEDPUBLICKEY cannot do this: it
 * pins the public key's hash, not the certificate fingerprint that PVE shows. The check
 * runs inside the handshake, so a wrong certificate never sees the API token. */
#include "internal.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

int proxmox_fingerprint_normalise(const char *in, char out[96])
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ':' || *p == ' ')
            continue;
        if (!isxdigit((unsigned char)*p) || n == 64)
            return -1;
        if (n && n % 2 == 0)
            *out++ = ':';
        *out++ = (char)toupper((unsigned char)*p);
        n++;
    }
    *out = '\0';
    return n == 64 ? 0 : -1;
}

static void fingerprint_of(X509 *cert, char out[96])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = '\0';
    if (!X509_digest(cert, EVP_sha256(), md, &len))
        return;
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 3 * i, 4, i + 1 < len ? "%02X:" : "%02X", md[i]);
}

/* Replaces OpenSSL's chain verification: the leaf's fingerprint decides alone. */
static int verify_leaf(X509_STORE_CTX *store, void *arg)
{
    struct proxmox *px = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    px->seen_fp[0] = '\0';
    if (leaf)
        fingerprint_of(leaf, px->seen_fp);
    if (leaf && px->seen_fp[0] && strcmp(px->seen_fp, px->fingerprint) == 0)
        return 1;
    px->pin_failed = true;
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
}

CURLcode proxmox_tls_pin_ctx(CURL *curl, void *sslctx, void *ud)
{
    (void)curl;
    SSL_CTX *ctx = sslctx;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_leaf, ud);
    return CURLE_OK;
}
