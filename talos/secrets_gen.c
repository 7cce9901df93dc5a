/* A new secrets bundle, made the way `talosctl gen secrets` makes one for Talos v1.13:
 * an Ed25519 os CA, ECDSA P-256 etcd, Kubernetes and aggregator CAs, an RSA-4096
 * service-account key. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CA_VALIDITY_S (87600LL * 3600) /* Talos's CAValidityTime, 10 years */

/* 6.16 characters of [0-9a-z], the Kubernetes bootstrap token shape; rejection
 * sampling keeps every character equally likely. */
static int make_token(char out[24], struct bd_err *err)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 23;) {
        unsigned char b[32];
        if (bd_random(b, sizeof b, err) < 0)
            return -1;
        for (size_t j = 0; j < sizeof b && i < 23; j++) {
            if (i == 6) {
                out[i++] = '.';
                continue;
            }
            if (b[j] < 252) /* 252 = 7 * 36 */
                out[i++] = alphabet[b[j] % 36];
        }
    }
    out[23] = 0;
    return 0;
}

static char *random_b64(bool url, struct bd_err *err)
{
    unsigned char b[32];
    if (bd_random(b, sizeof b, err) < 0)
        return NULL;
    char *s = talos_pki_b64(b, sizeof b);
    for (char *p = s; url && *p; p++) /* Go's base64.URLEncoding, still padded */
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return s;
}

/* A self-signed CA as Talos makes them: key usage digitalSignature + keyCertSign,
 * extended key usage serverAuth + clientAuth, CA:TRUE. */
static int make_ca(const char *subject, enum pki_key_type type, struct secrets_ca *out,
                   struct bd_err *err)
{
    EVP_PKEY *key = talos_pki_key_generate(type, err);
    if (!key)
        return -1;
    int64_t now = time(NULL);
    struct pki_cert_spec spec = {
        .subject = subject,
        .ca = true,
        .key_usage = PKI_KU_DIGITAL_SIGNATURE | PKI_KU_CERT_SIGN,
        .eku = PKI_EKU_SERVER | PKI_EKU_CLIENT,
        .not_before = now,
        .not_after = now + CA_VALIDITY_S,
    };
    char *crt = NULL, *pem = NULL;
    int rc = talos_pki_cert_issue(&spec, key, NULL, NULL, &crt, err);
    if (rc == 0)
        rc = talos_pki_key_pem(key, &pem, err);
    EVP_PKEY_free(key);
    if (rc < 0) {
        free(crt);
        return -1;
    }
    out->crt = talos_pki_b64(crt, strlen(crt));
    out->key = talos_pki_b64(pem, strlen(pem));
    free(crt);
    free(pem);
    return 0;
}

int talos_secrets_generate(struct talos_secrets **out, struct bd_err *err)
{
    return talos_secrets_generate_os(out, TALOS_OS_CA_ED25519, err);
}

int talos_secrets_generate_os(struct talos_secrets **out, enum talos_os_ca os_ca,
                              struct bd_err *err)
{
    struct talos_secrets *s = bd_xcalloc(1, sizeof *s);
    char token[24];
    int rc = -1;
    if (!(s->cluster_id = random_b64(true, err)) || !(s->cluster_secret = random_b64(false, err)) ||
        !(s->secretbox_secret = random_b64(false, err)))
        goto out;
    if (make_token(token, err) < 0)
        goto out;
    s->bootstrap_token = bd_xstrdup(token);
    if (make_token(token, err) < 0)
        goto out;
    s->trustd_token = bd_xstrdup(token);
    /* The aggregator CA gets the CN Talos asks for (its CA builder drops it). */
    enum pki_key_type os_type = os_ca == TALOS_OS_CA_ECDSA ? PKI_KEY_EC_P256 : PKI_KEY_ED25519;
    if (make_ca("O=etcd", PKI_KEY_EC_P256, &s->etcd, err) < 0 ||
        make_ca("O=kubernetes", PKI_KEY_EC_P256, &s->k8s, err) < 0 ||
        make_ca("CN=front-proxy", PKI_KEY_EC_P256, &s->k8s_aggregator, err) < 0 ||
        make_ca("O=talos", os_type, &s->os, err) < 0)
        goto out;
    s->os_ed25519 = os_type == PKI_KEY_ED25519;
    /* kube-apiserver signs service-account tokens with this; RSA-4096 in PKCS#1 is
     * what talosctl makes since Talos 1.7. */
    EVP_PKEY *sa = talos_pki_key_generate(PKI_KEY_RSA_4096, err);
    if (!sa)
        goto out;
    char *pem;
    int pem_rc = talos_pki_key_pem(sa, &pem, err);
    EVP_PKEY_free(sa);
    if (pem_rc < 0)
        goto out;
    s->service_account_key = talos_pki_b64(pem, strlen(pem));
    free(pem);
    rc = 0;
out:
    if (rc < 0) {
        talos_secrets_free(s);
        return -1;
    }
    *out = s;
    return 0;
}
