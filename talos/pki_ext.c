/* DER for the X.509 extensions mbedTLS 2.28 has no writer for: extended key usage
 * (RFC 5280 4.2.1.12) and subject alternative names (4.2.1.6). asn1write works
 * backwards from the end of the buffer, so items are written last to first. */
#include "internal.h"

#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <string.h>

/* Wraps the len bytes already written before *p in a SEQUENCE. */
static int wrap_sequence(unsigned char **p, unsigned char *start, size_t len)
{
    int rc = mbedtls_asn1_write_len(p, start, len);
    if (rc < 0)
        return rc;
    int rc2 = mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
    return rc2 < 0 ? rc2 : (int)len + rc + rc2;
}

int talos_pki_ext_eku(unsigned eku, unsigned char *buf, size_t size, unsigned char **der, size_t *len)
{
    /* ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId */
    unsigned char *p = buf + size;
    size_t n = 0;
    int rc;
    if (eku & PKI_EKU_CLIENT) {
        if ((rc = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                         MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH))) < 0)
            return rc;
        n += (size_t)rc;
    }
    if (eku & PKI_EKU_SERVER) {
        if ((rc = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                         MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))) < 0)
            return rc;
        n += (size_t)rc;
    }
    if ((rc = wrap_sequence(&p, buf, n)) < 0)
        return rc;
    *der = p;
    *len = (size_t)rc;
    return 0;
}

static bool san_ok(const char *name)
{
    uint32_t ip;
    return bd_ipv4_parse(name, &ip) == 0 || bd_dns_name_ok(name) ||
           (name[0] == '*' && name[1] == '.' && bd_dns_name_ok(name + 2));
}

static int write_general_name(unsigned char **p, unsigned char *start, const char *name)
{
    /* GeneralName ::= CHOICE { dNSName [2] IA5String, iPAddress [7] OCTET STRING, ... },
     * implicitly tagged: the context tag replaces the string tag. */
    uint32_t ip;
    const unsigned char *val = (const unsigned char *)name;
    size_t vlen = strlen(name);
    unsigned char tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2;
    unsigned char octets[4];
    if (bd_ipv4_parse(name, &ip) == 0) {
        octets[0] = (unsigned char)(ip >> 24);
        octets[1] = (unsigned char)(ip >> 16);
        octets[2] = (unsigned char)(ip >> 8);
        octets[3] = (unsigned char)ip;
        val = octets;
        vlen = 4;
        tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
    }
    int rc = mbedtls_asn1_write_raw_buffer(p, start, val, vlen);
    if (rc < 0)
        return rc;
    int rl = mbedtls_asn1_write_len(p, start, vlen);
    if (rl < 0)
        return rl;
    int rt = mbedtls_asn1_write_tag(p, start, tag);
    return rt < 0 ? rt : rc + rl + rt;
}

int talos_pki_ext_san(const char *const *sans, size_t n, unsigned char *buf, size_t size,
                unsigned char **der, size_t *len, struct bd_err *err)
{
    /* SubjectAltName ::= GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName */
    for (size_t i = 0; i < n; i++)
        if (!san_ok(sans[i]))
            return bd_err_set(err,
                              "subject alternative name \"%s\" is neither an IPv4 address nor a "
                              "DNS name",
                              sans[i]);
    unsigned char *p = buf + size;
    size_t total = 0;
    for (size_t i = n; i-- > 0;) {
        int rc = write_general_name(&p, buf, sans[i]);
        if (rc < 0)
            return bd_err_set(err, "subject alternative names do not fit");
        total += (size_t)rc;
    }
    int rc = wrap_sequence(&p, buf, total);
    if (rc < 0)
        return bd_err_set(err, "subject alternative names do not fit");
    *der = p;
    *len = (size_t)rc;
    return 0;
}
