/* Secure Boot keys for a lab: a platform key (PK), a key-exchange key (KEK) and the
 * signature database key (db) bootd signs UKIs with. Each certificate comes as PEM, as
 * DER (what a firmware setup menu enrolls from a disk) and as an EFI signature list, and
 * each list as a signed time-based authenticated update (UEFI 2.10 §8.2.2, §32.4): PK
 * signed by PK, KEK by PK, db by KEK — what efi-updatevar or an OS writes to enroll. */
#include "boot.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* GUIDs in their in-memory (little-endian first three fields) byte order */
static const uint8_t guid_cert_x509[16] = {0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a,
                                           0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72};
static const uint8_t guid_global[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                        0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
static const uint8_t guid_image_db[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                          0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};
static const uint8_t guid_pkcs7[16] = {0x9d, 0xd2, 0xaf, 0x4a, 0xdf, 0x68, 0xee, 0x49,
                                       0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7};

/* EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS |
 * TIME_BASED_AUTHENTICATED_WRITE_ACCESS */
#define SB_VAR_ATTRS 0x27u

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_file(struct boot_sb_material *m, const char *var, const char *ext,
                     const void *data, size_t len, bool secret)
{
    struct boot_sb_file *f = &m->files[m->n++];
    snprintf(f->name, sizeof f->name, "%s.%s", var, ext);
    f->data = bd_xmalloc(len ? len : 1);
    memcpy(f->data, data, len);
    f->len = len;
    f->secret = secret;
}

static int make_cert(const char *cn, int64_t now_s, EVP_PKEY **key, X509 **cert,
                     struct bd_err *err)
{
    *key = EVP_RSA_gen(2048);
    *cert = X509_new();
    if (!*key || !*cert)
        return bd_err_openssl(err, "Secure Boot: key generation");
    uint8_t serial[16];
    if (bd_random(serial, sizeof serial, err) < 0)
        return -1;
    serial[0] &= 0x7f; /* a positive INTEGER */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, NULL);
    X509_set_serialNumber(*cert, sn);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    X509_set_version(*cert, 2);
    ASN1_TIME_set(X509_getm_notBefore(*cert), (time_t)(now_s - 3600));
    /* firmware has no revocation: a lab rotates by enrolling new keys, not by expiry */
    ASN1_TIME_set(X509_getm_notAfter(*cert), (time_t)(now_s + 20LL * 365 * 86400));
    X509_set_pubkey(*cert, *key);
    X509_NAME *name = X509_get_subject_name(*cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(*cert, name);
    if (!X509_sign(*cert, *key, EVP_sha256()))
        return bd_err_openssl(err, "Secure Boot: self-signing a certificate");
    return 0;
}

/* EFI_SIGNATURE_LIST with one EFI_CERT_X509 entry owned by owner. */
static void make_esl(const uint8_t owner[16], X509 *cert, struct bd_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    uint8_t hdr[28];
    memcpy(hdr, guid_cert_x509, 16);
    le32(hdr + 16, (uint32_t)(28 + 16 + n)); /* SignatureListSize */
    le32(hdr + 20, 0);                       /* SignatureHeaderSize */
    le32(hdr + 24, (uint32_t)(16 + n));      /* SignatureSize */
    bd_buf_append(out, hdr, sizeof hdr);
    bd_buf_append(out, owner, 16);
    bd_buf_append(out, der, (size_t)n);
    OPENSSL_free(der);
}

/* EFI_TIME for a timestamp (UTC; nanoseconds, zone and daylight zero as §8.2.1 asks). */
static void efi_time(int64_t now_s, uint8_t t[16])
{
    time_t tt = (time_t)now_s;
    struct tm tm;
    gmtime_r(&tt, &tm);
    memset(t, 0, 16);
    t[0] = (uint8_t)(tm.tm_year + 1900);
    t[1] = (uint8_t)((tm.tm_year + 1900) >> 8);
    t[2] = (uint8_t)(tm.tm_mon + 1);
    t[3] = (uint8_t)tm.tm_mday;
    t[4] = (uint8_t)tm.tm_hour;
    t[5] = (uint8_t)tm.tm_min;
    t[6] = (uint8_t)tm.tm_sec;
}

/* EFI_VARIABLE_AUTHENTICATION_2 followed by the new value: the signature covers the
 * variable's name (UCS-2, no NUL), vendor GUID, attributes, timestamp and value. */
static int make_auth(const char *var, const uint8_t vendor[16], int64_t now_s,
                     const struct bd_buf *esl, X509 *signer, EVP_PKEY *key, struct bd_buf *out,
                     struct bd_err *err)
{
    uint8_t ts[16], attrs[4];
    efi_time(now_s, ts);
    le32(attrs, SB_VAR_ATTRS);
    struct bd_buf msg;
    bd_buf_init(&msg);
    for (const char *p = var; *p; p++)
        bd_buf_append(&msg, (uint8_t[2]){(uint8_t)*p, 0}, 2);
    bd_buf_append(&msg, vendor, 16);
    bd_buf_append(&msg, attrs, 4);
    bd_buf_append(&msg, ts, 16);
    bd_buf_append(&msg, esl->data, esl->len);
    BIO *in = BIO_new_mem_buf(msg.data, (int)msg.len);
    /* detached, no signed attributes: the form efitools' sign-efi-sig-list makes and
     * EDK2's authenticated variable service verifies */
    PKCS7 *p7 = in ? PKCS7_sign(signer, key, NULL, in,
                                PKCS7_BINARY | PKCS7_DETACHED | PKCS7_NOATTR | PKCS7_NOSMIMECAP)
                   : NULL;
    BIO_free(in);
    bd_buf_free(&msg);
    if (!p7)
        return bd_err_openssl(err, "Secure Boot: signing an authenticated variable");
    /* CertData is the SignedData itself, not wrapped in a ContentInfo: EDK2 looks for
     * the SHA-256 OID at a fixed offset in it and refuses anything else */
    unsigned char *der = NULL;
    int n = i2d_PKCS7_SIGNED(p7->d.sign, &der);
    PKCS7_free(p7);
    if (n <= 0)
        return bd_err_openssl(err, "Secure Boot: encoding an authenticated variable");
    uint8_t hdr[16 + 24];
    memcpy(hdr, ts, 16);
    le32(hdr + 16, (uint32_t)(24 + n)); /* WIN_CERTIFICATE.dwLength */
    hdr[20] = 0x00;                     /* wRevision 0x0200 */
    hdr[21] = 0x02;
    hdr[22] = 0xf1; /* WIN_CERT_TYPE_EFI_GUID 0x0EF1 */
    hdr[23] = 0x0e;
    memcpy(hdr + 24, guid_pkcs7, 16);
    bd_buf_append(out, hdr, sizeof hdr);
    bd_buf_append(out, der, (size_t)n);
    bd_buf_append(out, esl->data, esl->len);
    OPENSSL_free(der);
    return 0;
}

static void put_pem(struct boot_sb_material *m, const char *var, X509 *cert, EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    long n = BIO_get_mem_data(b, &p);
    put_file(m, var, "key", p, (size_t)n, true);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, cert);
    n = BIO_get_mem_data(b, &p);
    put_file(m, var, "crt", p, (size_t)n, false);
    BIO_free(b);
    unsigned char *der = NULL;
    int dn = i2d_X509(cert, &der);
    put_file(m, var, "cer", der, (size_t)dn, false);
    OPENSSL_free(der);
}

int boot_secureboot_generate(const char *label, int64_t now_s, struct boot_sb_material *m,
                             struct bd_err *err)
{
    memset(m, 0, sizeof *m);
    static const char *const vars[3] = {"PK", "KEK", "db"};
    EVP_PKEY *key[3] = {0};
    X509 *cert[3] = {0};
    uint8_t owner[16];
    int rc = -1;
    if (bd_random(owner, sizeof owner, err) < 0)
        return -1;
    owner[7] = (uint8_t)((owner[7] & 0x0f) | 0x40); /* a version 4 GUID */
    owner[8] = (uint8_t)((owner[8] & 0x3f) | 0x80);
    for (int i = 0; i < 3; i++) {
        char *cn = bd_xasprintf("%s bootd Secure Boot %s", label, vars[i]);
        int r = make_cert(cn, now_s, &key[i], &cert[i], err);
        free(cn);
        if (r < 0)
            goto out;
    }
    for (int i = 0; i < 3; i++) {
        struct bd_buf esl, auth;
        bd_buf_init(&esl);
        bd_buf_init(&auth);
        make_esl(owner, cert[i], &esl);
        int by = i == 2 ? 1 : 0; /* db is signed by KEK, KEK and PK by PK */
        int r = make_auth(vars[i], i == 2 ? guid_image_db : guid_global, now_s, &esl, cert[by],
                          key[by], &auth, err);
        if (r == 0) {
            put_pem(m, vars[i], cert[i], key[i]);
            put_file(m, vars[i], "esl", esl.data, esl.len, false);
            put_file(m, vars[i], "auth", auth.data, auth.len, false);
        }
        bd_buf_free(&esl);
        bd_buf_free(&auth);
        if (r < 0)
            goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < 3; i++) {
        EVP_PKEY_free(key[i]);
        X509_free(cert[i]);
    }
    if (rc < 0)
        boot_secureboot_free(m);
    return rc;
}

void boot_secureboot_free(struct boot_sb_material *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->files[i].data);
    m->n = 0;
}
