/* Issuing X.509 certificates with mbedTLS: CAs as Talos makes them and the client
 * certificates bootd hands to users. */
#include "internal.h"

#include <mbedtls/asn1.h>
#include <mbedtls/bignum.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void x509_time(int64_t t, char out[15])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}

/* A random positive 128-bit serial, as Go's x509 tooling makes them. */
static int random_serial(mbedtls_mpi *serial)
{
    unsigned char b[16];
    if (talos_pki_rng(NULL, b, sizeof b) != 0)
        return -1;
    b[0] &= 0x7f;
    b[0] |= 0x01; /* never zero, never negative */
    return mbedtls_mpi_read_binary(serial, b, sizeof b);
}

/* Copies the issuer's subject, string types and all, into the writer's issuer list:
 * Go matches a certificate to its parent by the raw bytes of the names, and mbedTLS
 * would otherwise re-encode "O=talos" as a UTF8String where Go wrote a
 * PrintableString. The writer emits its list last to first, so the copy is reversed. */
static void copy_issuer(mbedtls_x509write_cert *w, const mbedtls_x509_name *subject)
{
    mbedtls_asn1_free_named_data_list(&w->issuer);
    for (const mbedtls_x509_name *n = subject; n && n->oid.p; n = n->next) {
        mbedtls_asn1_named_data *c = mbedtls_calloc(1, sizeof *c);
        if (!c)
            abort();
        c->oid.tag = n->oid.tag;
        c->oid.len = n->oid.len;
        c->oid.p = mbedtls_calloc(1, n->oid.len);
        c->val.p = mbedtls_calloc(1, n->val.len + 1);
        if (!c->oid.p || !c->val.p)
            abort(); /* as bd_xmalloc does: bootd cannot go on without memory */
        memcpy(c->oid.p, n->oid.p, n->oid.len);
        c->val.tag = n->val.tag;
        c->val.len = n->val.len;
        memcpy(c->val.p, n->val.p, n->val.len);
        c->next = w->issuer;
        w->issuer = c;
    }
}

static int fail(struct bd_err *err, int rc, const char *what)
{
    char msg[200];
    mbedtls_strerror(rc, msg, sizeof msg);
    return bd_err_set(err, "issuing %s: %s", what, msg);
}

int talos_pki_cert_issue(const struct pki_cert_spec *spec, mbedtls_pk_context *subject_key,
                   const mbedtls_x509_crt *issuer, mbedtls_pk_context *issuer_key, char **pem,
                   struct bd_err *err)
{
    mbedtls_x509write_cert w;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    unsigned char ext[1024], *der;
    size_t der_len;
    char nb[15], na[15];
    x509_time(spec->not_before, nb);
    x509_time(spec->not_after, na);
    int rc;

    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, subject_key);
    mbedtls_x509write_crt_set_issuer_key(&w, issuer ? issuer_key : subject_key);
    if ((rc = random_serial(&serial)) != 0 || (rc = mbedtls_x509write_crt_set_serial(&w, &serial)) != 0 ||
        (rc = mbedtls_x509write_crt_set_validity(&w, nb, na)) != 0 ||
        (rc = mbedtls_x509write_crt_set_subject_name(&w, spec->subject)) != 0)
        goto mbed_error;
    if (issuer)
        copy_issuer(&w, &issuer->subject);
    else if ((rc = mbedtls_x509write_crt_set_issuer_name(&w, spec->subject)) != 0)
        goto mbed_error;
    if ((rc = mbedtls_x509write_crt_set_key_usage(&w, spec->key_usage)) != 0)
        goto mbed_error;
    if (spec->eku) {
        if ((rc = talos_pki_ext_eku(spec->eku, ext, sizeof ext, &der, &der_len)) < 0 ||
            (rc = mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                      0, der, der_len)) != 0)
            goto mbed_error;
    }
    if (spec->ca && (rc = mbedtls_x509write_crt_set_basic_constraints(&w, 1, -1)) != 0)
        goto mbed_error;
    if ((rc = mbedtls_x509write_crt_set_subject_key_identifier(&w)) != 0)
        goto mbed_error;
    if (issuer && (rc = mbedtls_x509write_crt_set_authority_key_identifier(&w)) != 0)
        goto mbed_error;
    if (spec->nsans) {
        if (talos_pki_ext_san(spec->sans, spec->nsans, ext, sizeof ext, &der, &der_len, err) < 0)
            goto out_error;
        /* critical only when the subject is empty (RFC 5280 4.2.1.6) */
        if ((rc = mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                      spec->subject[0] == 0, der, der_len)) != 0)
            goto mbed_error;
    }
    unsigned char *buf = bd_xmalloc(8192);
    if ((rc = mbedtls_x509write_crt_pem(&w, buf, 8192, talos_pki_rng, NULL)) != 0) {
        free(buf);
        goto mbed_error;
    }
    *pem = (char *)buf;
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    return 0;

mbed_error:
    fail(err, rc, spec->subject[0] ? spec->subject : "a certificate");
out_error:
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    return -1;
}
