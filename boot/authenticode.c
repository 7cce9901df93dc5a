/* Authenticode signatures for the UKIs bootd serves, with OpenSSL's PKCS#7 (already
 * linked for hashing; it is also what sbsigntool and the firmware's own verifier use).
 * The structure follows Microsoft's "Windows Authenticode Portable Executable Signature
 * Format": a SignedData whose content is an SpcIndirectDataContent holding the image's
 * digest, with the contentType and messageDigest signed attributes. */
#include "boot.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define SPC_INDIRECT_DATA "1.3.6.1.4.1.311.2.1.4"
#define SPC_PE_IMAGE_DATA "1.3.6.1.4.1.311.2.1.15"

struct boot_signer {
    X509 *cert;
    EVP_PKEY *key;
};

int boot_signer_new(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                    struct boot_signer **out, struct bd_err *err)
{
    struct boot_signer *s = bd_xcalloc(1, sizeof *s);
    BIO *b = BIO_new_mem_buf(cert_pem, (int)cert_len);
    s->cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!s->cert) {
        boot_signer_free(s);
        return bd_err_openssl(err, "signing certificate: not a PEM X.509 certificate");
    }
    b = BIO_new_mem_buf(key_pem, (int)key_len);
    s->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!s->key) {
        boot_signer_free(s);
        return bd_err_openssl(err, "signing key: not an unencrypted PEM private key");
    }
    /* UEFI firmware verifies RSA signatures only (EDK2's Authenticode support) */
    if (EVP_PKEY_base_id(s->key) != EVP_PKEY_RSA) {
        boot_signer_free(s);
        return bd_err_set(err, "signing key: firmware checks RSA signatures only");
    }
    if (X509_check_private_key(s->cert, s->key) != 1) {
        boot_signer_free(s);
        return bd_err_openssl(err, "signing key does not belong to the signing certificate");
    }
    *out = s;
    return 0;
}

void boot_signer_free(struct boot_signer *s)
{
    if (!s)
        return;
    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    free(s);
}

char *boot_signer_subject(const struct boot_signer *s)
{
    char buf[256];
    X509_NAME_oneline(X509_get_subject_name(s->cert), buf, sizeof buf);
    return bd_xstrdup(buf);
}

/* DER: tag and length (OpenSSL's encoder) around content already encoded. */
static void der_wrap(struct bd_buf *out, int constructed, int tag, int xclass,
                     const struct bd_buf *content)
{
    int n = ASN1_object_size(constructed, (int)content->len, tag);
    unsigned char *hdr = bd_xmalloc((size_t)n), *p = hdr;
    ASN1_put_object(&p, constructed, (int)content->len, tag, xclass);
    bd_buf_append(out, hdr, (size_t)(p - hdr));
    bd_buf_append(out, content->data, content->len);
    free(hdr);
}

static void der_object(struct bd_buf *out, const char *oid)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    unsigned char *der = NULL;
    int n = i2d_ASN1_OBJECT(o, &der);
    bd_buf_append(out, der, (size_t)n);
    OPENSSL_free(der);
    ASN1_OBJECT_free(o);
}

/* SpcIndirectDataContent ::= SEQUENCE {
 *   data SpcAttributeTypeAndOptionalValue ::= SEQUENCE {
 *     type SPC_PE_IMAGE_DATA_OBJID, value SpcPeImageData ::= SEQUENCE {
 *       flags BIT STRING {}, file [0] SpcLink { file [2] SpcString { unicode [0] "" } } } },
 *   messageDigest DigestInfo ::= SEQUENCE { AlgorithmIdentifier sha256, OCTET STRING } } */
static void spc_indirect_data(struct bd_buf *out, const uint8_t digest[32])
{
    struct bd_buf a, b, c;
    bd_buf_init(&a);
    bd_buf_init(&b);
    bd_buf_init(&c);
    /* file [0] { [2] { [0] IMPLICIT BMPString (empty) } } */
    der_wrap(&a, 0, 0, V_ASN1_CONTEXT_SPECIFIC, &c);
    der_wrap(&b, 1, 2, V_ASN1_CONTEXT_SPECIFIC, &a);
    bd_buf_reset(&a);
    der_wrap(&a, 1, 0, V_ASN1_CONTEXT_SPECIFIC, &b);
    bd_buf_reset(&b);
    bd_buf_append(&b, "\x03\x01\x00", 3); /* flags: an empty BIT STRING */
    bd_buf_append(&b, a.data, a.len);
    bd_buf_reset(&a);
    der_object(&a, SPC_PE_IMAGE_DATA);
    der_wrap(&a, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &b);
    bd_buf_reset(&b);
    der_wrap(&b, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &a); /* data */

    X509_ALGOR *alg = X509_ALGOR_new();
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL);
    unsigned char *der = NULL;
    int n = i2d_X509_ALGOR(alg, &der);
    X509_ALGOR_free(alg);
    bd_buf_reset(&a);
    bd_buf_append(&a, der, (size_t)n);
    OPENSSL_free(der);
    bd_buf_reset(&c);
    bd_buf_append(&c, digest, 32);
    der_wrap(&a, 0, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, &c);
    der_wrap(&b, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &a); /* messageDigest */
    der_wrap(out, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &b);
    bd_buf_free(&a);
    bd_buf_free(&b);
    bd_buf_free(&c);
}

/* Length of the tag and length octets in front of a DER value. */
static size_t der_header_len(const struct bd_buf *v)
{
    const unsigned char *p = (const unsigned char *)v->data;
    long len;
    int tag, xclass;
    ASN1_get_object(&p, &len, &tag, &xclass, (long)v->len);
    return (size_t)(p - (const unsigned char *)v->data);
}

int boot_authenticode_sign(const struct boot_signer *s, const uint8_t digest[32], uint8_t **der,
                           size_t *len, struct bd_err *err)
{
    struct bd_buf idc;
    bd_buf_init(&idc);
    spc_indirect_data(&idc, digest);
    int rc = -1;
    BIO *bio = NULL;
    PKCS7 *p7 = PKCS7_new();
    PKCS7_SIGNER_INFO *si;
    if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
        !(si = PKCS7_add_signature(p7, s->cert, s->key, EVP_sha256())) ||
        !PKCS7_add_certificate(p7, s->cert) ||
        !PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                    OBJ_txt2obj(SPC_INDIRECT_DATA, 1)) ||
        !PKCS7_content_new(p7, NID_pkcs7_data)) {
        bd_err_openssl(err, "Authenticode: building the signature");
        goto out;
    }
    /* The messageDigest attribute covers the SpcIndirectDataContent's value without its
     * own tag and length (Authenticode's rule); PKCS7_dataFinal computes it and signs. */
    size_t skip = der_header_len(&idc);
    if (!(bio = PKCS7_dataInit(p7, NULL)) ||
        BIO_write(bio, idc.data + skip, (int)(idc.len - skip)) != (int)(idc.len - skip) ||
        !PKCS7_dataFinal(p7, bio)) {
        bd_err_openssl(err, "Authenticode: signing");
        goto out;
    }
    /* Then the content becomes the SpcIndirectDataContent itself, typed as such. */
    PKCS7 *content = p7->d.sign->contents;
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    ASN1_TYPE *other = ASN1_TYPE_new();
    if (!seq || !other || !ASN1_STRING_set(seq, idc.data, (int)idc.len)) {
        ASN1_STRING_free(seq);
        ASN1_TYPE_free(other);
        bd_err_openssl(err, "Authenticode: content");
        goto out;
    }
    ASN1_TYPE_set(other, V_ASN1_SEQUENCE, seq);
    ASN1_OCTET_STRING_free(content->d.data);
    ASN1_OBJECT_free(content->type);
    content->type = OBJ_txt2obj(SPC_INDIRECT_DATA, 1);
    content->d.other = other;
    unsigned char *out = NULL;
    int n = i2d_PKCS7(p7, &out);
    if (n <= 0) {
        bd_err_openssl(err, "Authenticode: encoding");
        goto out;
    }
    *der = bd_xmalloc((size_t)n);
    memcpy(*der, out, (size_t)n);
    OPENSSL_free(out);
    *len = (size_t)n;
    rc = 0;
out:
    BIO_free_all(bio);
    PKCS7_free(p7);
    bd_buf_free(&idc);
    return rc;
}
