/* The Talos API client's parts that need no server: protobuf fields, the Kubeconfig
 * archive, the etcd snapshot check, the kubeconfig comparison and the credentials. */
#include <criterion/criterion.h>
#include <openssl/x509v3.h>
#include <mbedtls/sha256.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "talos_fixture.h"

/* ---- protobuf ---- */

Test(talos_api, protobuf_fields_in_order_unknown_ones_skipped)
{
    /* 1: varint 150, 7: fixed64, 9: fixed32, 2: "hi", 3: {1: "x"} */
    static const uint8_t msg[] = {0x08, 0x96, 0x01, 0x39, 1, 2, 3, 4, 5, 6, 7, 8, 0x4d, 1, 2,
                                  3,    4,    0x12, 2,    'h', 'i', 0x1a, 3, 0x0a, 1, 'x'};
    struct pb_reader r = {msg, msg + sizeof msg};
    struct pb_field f;
    uint32_t nums[8];
    size_t n = 0;
    char str[8] = "", inner[8] = "";
    uint64_t v = 0;
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0) {
        nums[n++] = f.num;
        if (f.num == 1)
            v = f.varint;
        if (f.num == 2)
            talos_pb_copy_string(&f, str, sizeof str);
        if (f.num == 3) {
            struct pb_reader sub = talos_pb_sub(&f);
            struct pb_field g;
            cr_assert_eq(talos_pb_next(&sub, &g), 1);
            talos_pb_copy_string(&g, inner, sizeof inner);
        }
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(nums[1], 7);
    cr_assert_eq(nums[2], 9);
    cr_assert_eq(v, 150);
    cr_assert_str_eq(str, "hi");
    cr_assert_str_eq(inner, "x");
}

Test(talos_api, malformed_protobuf_is_refused)
{
    static const uint8_t truncated_len[] = {0x12, 5, 'a'};
    static const uint8_t group[] = {0x0b};            /* field 1, wire type 3 */
    static const uint8_t field_zero[] = {0x00, 0x01};
    static const uint8_t endless_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t short_fixed[] = {0x0d, 1, 2};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{truncated_len, sizeof truncated_len}, {group, sizeof group},
               {field_zero, sizeof field_zero},       {endless_varint, sizeof endless_varint},
               {short_fixed, sizeof short_fixed}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pb_reader r = {bad[i].p, bad[i].p + bad[i].n};
        struct pb_field f;
        cr_assert_eq(talos_pb_next(&r, &f), -1, "case %zu", i);
    }
}

Test(talos_api, proto3_leaves_false_out)
{
    struct bd_buf b;
    bd_buf_init(&b);
    talos_pb_put_bool(&b, 1, false);
    cr_assert_eq(b.len, 0);
    talos_pb_put_bool(&b, 2, true);
    cr_assert_eq(b.len, 2);
    cr_assert_eq((uint8_t)b.data[0], 0x10);
    cr_assert_eq((uint8_t)b.data[1], 1);
    bd_buf_free(&b);
}

/* ---- the Kubeconfig archive ---- */

static char *entry_of(const char *fixture, const char *name, size_t max, struct bd_err *err)
{
    char *gz;
    size_t n, len;
    cr_assert_eq(bd_file_read(fixture, &gz, &n, err), 0, "%s", err->msg);
    char *out = NULL;
    if (talos_targz_entry(gz, n, name, max, &out, &len, err) == 0)
        cr_assert_eq(strlen(out), len);
    free(gz);
    return out;
}

Test(talos_api, kubeconfig_archives_as_talos_writes_them_and_complete_ones)
{
    /* machined's: no padding after the file, no end-of-archive blocks; and a complete
     * tar with pax records, another file first and record blocking */
    static const char *const fixtures[] = {FIXTURES "kubeconfig-talos.tar.gz",
                                           FIXTURES "kubeconfig-pax.tar.gz"};
    struct bd_err err;
    for (size_t i = 0; i < 2; i++) {
        char *kc = entry_of(fixtures[i], "kubeconfig", 4096, &err);
        cr_assert(kc, "%s: %s", fixtures[i], err.msg);
        cr_assert_str_eq(kc, "apiVersion: v1\nkind: Config\ncurrent-context: admin@base\n");
        free(kc);
    }
    cr_assert_null(entry_of(fixtures[1], "talosconfig", 4096, &err));
    assert_has(err.msg, "no entry \"talosconfig\"");
    cr_assert_null(entry_of(fixtures[0], "kubeconfig", 10, &err));
    assert_has(err.msg, "over 10 bytes");
}

Test(talos_api, damaged_archives_are_refused)
{
    char *gz;
    size_t n, len;
    struct bd_err err;
    cr_assert_eq(bd_file_read(FIXTURES "kubeconfig-talos.tar.gz", &gz, &n, &err), 0);
    char *out = NULL;
    cr_assert_eq(talos_targz_entry(gz, n - 12, "kubeconfig", 4096, &out, &len, &err), -1);
    assert_has(err.msg, "not complete gzip data");
    cr_assert_eq(talos_targz_entry("plain text", 10, "kubeconfig", 4096, &out, &len, &err), -1);
    free(gz);

    /* a header whose checksum does not add up */
    char tar[512 + 16];
    memset(tar, 0, sizeof tar);
    memcpy(tar, "kubeconfig", 10);
    memcpy(tar + 124, "00000000020", 11);
    memcpy(tar + 148, "0000001", 7); /* wrong */
    tar[156] = '0';
    uLongf zlen = compressBound(sizeof tar) + 32;
    unsigned char *z = malloc(zlen);
    z_stream s = {0};
    deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    s.next_in = (Bytef *)tar;
    s.avail_in = sizeof tar;
    s.next_out = z;
    s.avail_out = (uInt)zlen;
    cr_assert_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
    cr_assert_eq(talos_targz_entry(z, s.total_out, "kubeconfig", 4096, &out, &len, &err), -1);
    assert_has(err.msg, "damaged tar header");
    deflateEnd(&s);
    free(z);
}

/* ---- etcd snapshot check ---- */

/* A stand-in database of pages 4 KiB pages followed by its SHA-256, as etcd sends. */
static uint8_t *snapshot(size_t pages, size_t *n)
{
    *n = pages * 4096 + 32;
    uint8_t *b = malloc(*n);
    for (size_t i = 0; i < pages * 4096; i++)
        b[i] = (uint8_t)(i * 7 + i / 4096);
    mbedtls_sha256_ret(b, pages * 4096, b + pages * 4096, 0);
    return b;
}

static int check_in_pieces(const uint8_t *b, size_t n, size_t piece,
                           struct talos_snapshot_info *info, struct bd_err *err)
{
    struct talos_etcd_check *c = talos_etcd_check_new();
    for (size_t off = 0; off < n; off += piece)
        talos_etcd_check_update(c, b + off, n - off < piece ? n - off : piece);
    int rc = talos_etcd_check_finish(c, info, err);
    talos_etcd_check_free(c);
    return rc;
}

Test(talos_api, etcd_snapshot_checked_whatever_the_chunk_sizes)
{
    size_t n;
    uint8_t *b = snapshot(3, &n);
    char want[65];
    bd_sha256_hex(b, n, want);
    static const size_t pieces[] = {1, 7, 31, 32, 33, 1024, 5000, 1u << 20};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        struct talos_snapshot_info info;
        struct bd_err err;
        cr_assert_eq(check_in_pieces(b, n, pieces[i], &info, &err), 0, "piece %zu: %s", pieces[i],
                     err.msg);
        cr_assert_eq(info.size, n);
        cr_assert_str_eq(info.sha256, want);
    }
    free(b);
}

Test(talos_api, etcd_snapshot_corrupted_or_cut_is_refused)
{
    size_t n;
    uint8_t *b = snapshot(2, &n);
    struct talos_snapshot_info info;
    struct bd_err err;
    b[5000] ^= 0x20;
    cr_assert_eq(check_in_pieces(b, n, 1024, &info, &err), -1);
    assert_has(err.msg, "does not match its own SHA-256");
    b[5000] ^= 0x20;
    cr_assert_eq(check_in_pieces(b, n - 100, 1024, &info, &err), -1);
    assert_has(err.msg, "has no SHA-256 trailer");
    cr_assert_eq(check_in_pieces(b, 0, 1, &info, &err), -1);
    free(b);
}

/* ---- kubeconfig comparison ---- */

Test(talos_api, kubeconfig_minted_for_the_lab_is_the_same)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    const struct talos_secrets *s = talos_cluster_secrets(tc, NULL);
    struct bd_buf kc;
    bd_buf_init(&kc);
    struct bd_err err;
    cr_assert_eq(talos_kubeconfig(lab, s, &kc, &err), 0, "%s", err.msg);
    struct talos_kube_check ch[TALOS_KUBE_CHECKS];
    cr_assert_eq(talos_kubeconfig_compare(lab, s, kc.data, kc.len, ch, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < TALOS_KUBE_CHECKS; i++)
        cr_assert(ch[i].same, "%s: talos %s, bootd %s", ch[i].what, ch[i].talos, ch[i].bootd);
    cr_assert_str_eq(ch[2].what, "server");
    cr_assert_str_eq(ch[2].talos, "https://base:6443");

    /* another endpoint and a client certificate from another CA (the etcd one) */
    char *moved = bd_xstrdup(kc.data);
    char *host = strstr(moved, "https://base:6443");
    memcpy(host, "https://bass", 12);
    X509 *etcd_crt;
    EVP_PKEY *etcd_key, *key;
    cr_assert_eq(talos_secrets_ca_open(&s->etcd, "etcd", &etcd_crt, &etcd_key, &err), 0);
    cr_assert_not_null(key = talos_pki_key_generate(PKI_KEY_EC_P256, &err));
    struct pki_cert_spec spec = {.subject = "O=system:masters,CN=admin",
                                 .key_usage = PKI_KU_DIGITAL_SIGNATURE,
                                 .eku = PKI_EKU_CLIENT,
                                 .not_before = 0,
                                 .not_after = 4102444800};
    char *pem;
    cr_assert_eq(talos_pki_cert_issue(&spec, key, etcd_crt, etcd_key, &pem, &err), 0, "%s", err.msg);
    char *b64 = talos_pki_b64(pem, strlen(pem));
    const char *k = "client-certificate-data: ";
    char *at = strstr(moved, k) + strlen(k);
    char *eol = strchr(at, '\n');
    char *swapped = bd_xasprintf("%.*s%s%s", (int)(at - moved), moved, b64, eol);
    cr_assert_eq(talos_kubeconfig_compare(lab, s, swapped, strlen(swapped), ch, &err), 0, "%s",
                 err.msg);
    cr_assert(ch[0].same && ch[1].same && ch[3].same);
    cr_assert_not(ch[2].same);
    cr_assert_str_eq(ch[2].talos, "https://bass:6443");
    cr_assert_not(ch[4].same);
    assert_has(ch[4].talos, "NOT signed by the lab's Kubernetes CA");

    /* a kubeconfig without users: nothing to vouch for */
    memset(ch, 0x5a, sizeof ch);
    const char *bare = "apiVersion: v1\nkind: Config\ncurrent-context: x\n";
    cr_assert_eq(talos_kubeconfig_compare(lab, s, bare, strlen(bare), ch, &err), 0);
    for (size_t i = 0; i < TALOS_KUBE_CHECKS; i++)
        cr_assert_not(ch[i].same, "%s", ch[i].what);

    cr_assert_eq(talos_kubeconfig_compare(lab, s, "- a\n- list\n", 11, ch, &err), -1);
    assert_has(err.msg, "not one YAML mapping");

    free(swapped);
    free(b64);
    free(pem);
    free(moved);
    EVP_PKEY_free(key);
    EVP_PKEY_free(etcd_key);
    X509_free(etcd_crt);
    bd_buf_free(&kc);
    fixture_done(tc, lab, dir);
}

/* ---- credentials ---- */

/* The client certificate apid judges: signed by the os CA, O=os:admin, extended key
 * usage exactly clientAuth, a key of the CA's kind. */
static void assert_os_admin(const struct talos_creds *cr, int key_type)
{
    struct bd_err err;
    X509 *crt = talos_pki_cert_parse(cr->crt_pem, "crt", &err), *ca = talos_pki_cert_parse(cr->ca_pem, "ca", &err);
    cr_assert(crt && ca);
    cr_assert_eq(talos_pki_cert_verify(crt, ca, &err), 0, "%s", err.msg);
    char dn[128];
    X509_NAME_oneline(X509_get_subject_name(crt), dn, sizeof dn);
    cr_assert_str_eq(dn, "/O=os:admin");
    cr_assert_eq(X509_get_extended_key_usage(crt), XKU_SSL_CLIENT, "clientAuth only");
    cr_assert_eq(EVP_PKEY_get_base_id(X509_get0_pubkey(crt)), key_type);
    EVP_PKEY *key = talos_pki_key_parse(cr->key_pem, "key", &err);
    cr_assert_not_null(key, "%s", err.msg);
    cr_assert_eq(X509_check_private_key(crt, key), 1);
    EVP_PKEY_free(key);
    X509_free(crt);
    X509_free(ca);
}

Test(talos_api, credentials_from_an_ed25519_os_ca)
{
    char *dir = fixture_lab(NULL, NULL); /* Talos's own test bundle: Ed25519 os CA */
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    struct talos_creds cr;
    struct bd_err err;
    cr_assert_eq(talos_api_creds(lab, talos_cluster_secrets(tc, NULL), &cr, &err), 0, "%s",
                 err.msg);
    assert_os_admin(&cr, EVP_PKEY_ED25519);
    /* PKCS#8 as OpenSSL's PEM reader (libcurl's) names it */
    assert_has(cr.key_pem, "-----BEGIN PRIVATE KEY-----\n");
    talos_creds_free(&cr);
    fixture_done(tc, lab, dir);
}

Test(talos_api, credentials_from_an_ecdsa_os_ca)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_load(lab->cluster.secrets_file, &s, &err), 0, "%s", err.msg);
    /* the fixture's os CA is Ed25519: stand its ECDSA etcd CA in for it */
    free(s->os.crt);
    free(s->os.key);
    s->os.crt = bd_xstrdup(s->etcd.crt);
    s->os.key = bd_xstrdup(s->etcd.key);
    s->os_ed25519 = false;
    struct talos_creds cr;
    cr_assert_eq(talos_api_creds(lab, s, &cr, &err), 0, "%s", err.msg);
    assert_os_admin(&cr, EVP_PKEY_EC);
    assert_has(cr.key_pem, "-----BEGIN EC PRIVATE KEY-----\n");
    talos_creds_free(&cr);
    talos_secrets_free(s);
    fixture_done(tc, lab, dir);
}

Test(talos_api, code_names)
{
    cr_assert_str_eq(talos_code_name(TALOS_FAILED_PRECONDITION), "FailedPrecondition");
    cr_assert_str_eq(talos_code_name(TALOS_ALREADY_EXISTS), "AlreadyExists");
    cr_assert_str_eq(talos_code_name(16), "Unauthenticated");
    cr_assert_str_eq(talos_code_name(TALOS_CALL_FAILED), "no answer");
    cr_assert_str_eq(talos_code_name(99), "unknown code");
}
