#include "helpers.h"

#include "../../boot/boot.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUB "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

struct image {
    uint8_t *data;
    size_t len;
};

/* The whole file, assembled through boot_uki_piece the way bootd streams it, with the
 * kernel and initramfs given as memory. */
static struct image assemble(const struct boot_uki *u, const struct boot_uki_boot *b,
                             const uint8_t *kernel, const uint8_t *initrd, size_t chunk)
{
    struct image im = {bd_xmalloc(b->size), b->size};
    uint64_t pos = 0;
    struct boot_uki_piece p;
    while (boot_uki_piece(u, b, pos, im.data + pos, chunk, &p)) {
        if (p.kind == BOOT_UKI_LINUX)
            memcpy(im.data + pos, kernel + p.file_off, p.len);
        else if (p.kind == BOOT_UKI_INITRD)
            memcpy(im.data + pos, initrd + p.file_off, p.len);
        cr_assert_gt(p.len, 0);
        pos += p.len;
    }
    cr_assert_eq(pos, b->size);
    return im;
}

static uint8_t *pattern(size_t n, uint8_t seed)
{
    uint8_t *p = bd_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed);
    return p;
}

struct fixture {
    char *stub;
    size_t stub_len;
    uint8_t *kernel, *initrd;
    size_t kernel_len, initrd_len;
    struct boot_uki u;
    struct boot_uki_sum prefix;
};

/* Lays out the real stub with a kernel and initramfs of odd sizes and sums the prefix
 * in chunks of the given size (odd chunks exercise the word carry). */
static void fixture_init(struct fixture *f, bool hash, size_t chunk)
{
    struct bd_err err;
    cr_assert_eq(bd_file_read(STUB, &f->stub, &f->stub_len, &err), 0, "%s", err.msg);
    f->kernel_len = 100001;
    f->initrd_len = 54321;
    f->kernel = pattern(f->kernel_len, 3);
    f->initrd = pattern(f->initrd_len, 11);
    cr_assert_eq(boot_uki_layout(&f->u, f->stub, f->stub_len, f->kernel_len, f->initrd_len, &err),
                 0, "%s", err.msg);
    boot_uki_sum_init(&f->prefix, hash);
    struct boot_uki_boot none = {.size = f->u.cmdline_off};
    struct image im = assemble(&f->u, &none, f->kernel, f->initrd, 65536);
    for (size_t off = 0; off < im.len; off += chunk)
        boot_uki_sum_update(&f->u, &f->prefix, im.data + off,
                            im.len - off < chunk ? im.len - off : chunk);
    free(im.data);
}

static void fixture_free(struct fixture *f)
{
    boot_uki_sum_free(&f->prefix);
    boot_uki_free(&f->u);
    free(f->stub);
    free(f->kernel);
    free(f->initrd);
}

/* The PE checksum computed the plain way: every 16-bit word but the field itself. */
static uint32_t plain_checksum(const struct image *im, size_t checksum_off)
{
    uint64_t sum = 0;
    for (size_t i = 0; i + 1 < im->len; i += 2) {
        if (i == checksum_off || i == checksum_off + 2)
            continue;
        sum += rd16(im->data + i);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint32_t)(sum + im->len);
}

struct pe {
    const uint8_t *opt, *table;
    unsigned nsec;
};

static struct pe parse(const struct image *im)
{
    uint32_t lfanew = rd32(im->data + 0x3c);
    cr_assert(!memcmp(im->data + lfanew, "PE\0\0", 4));
    const uint8_t *coff = im->data + lfanew + 4;
    struct pe pe = {coff + 20, coff + 20 + rd16(coff + 16), rd16(coff + 2)};
    return pe;
}

static const uint8_t *section(const struct pe *pe, const char *name)
{
    for (unsigned i = 0; i < pe->nsec; i++)
        if (!strncmp((const char *)pe->table + 40 * i, name, 8))
            return pe->table + 40 * i;
    return NULL;
}

Test(uki, sections_follow_the_stub_aligned_and_in_order)
{
    struct fixture f;
    fixture_init(&f, false, 4096);
    struct boot_uki_boot b;
    struct bd_err err;
    cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, "console=ttyS0 talos.config=http://x/1", NULL,
                                 &b, &err),
                 0, "%s", err.msg);
    struct image im = assemble(&f.u, &b, f.kernel, f.initrd, 1000);
    struct pe pe = parse(&im);
    cr_assert_eq(pe.nsec, 8 + 3, "the stub's 8 sections and 3 more");
    uint32_t salign = rd32(pe.opt + 32), falign = rd32(pe.opt + 36);
    const char *names[] = {".linux", ".initrd", ".cmdline"};
    const size_t sizes[] = {f.kernel_len, f.initrd_len, BOOT_UKI_CMDLINE_MAX};
    uint32_t prev_va_end = 0, prev_raw_end = 0;
    for (unsigned i = 0; i < pe.nsec; i++) {
        const uint8_t *sh = pe.table + 40 * i;
        uint32_t va = rd32(sh + 12), vs = rd32(sh + 8), raw = rd32(sh + 16), ptr = rd32(sh + 20);
        cr_assert_geq(va, prev_va_end, "section %u overlaps the one before", i);
        cr_assert_eq(ptr, prev_raw_end ? prev_raw_end : rd32(pe.opt + 60), "section %u gap", i);
        if (i >= 8) /* the stub's own .sdmagic is not section-aligned */
            cr_assert_eq(va % salign, 0);
        cr_assert_eq(ptr % falign, 0);
        cr_assert_eq(raw % falign, 0);
        cr_assert_geq(raw, vs);
        prev_va_end = va + vs;
        prev_raw_end = ptr + raw;
    }
    for (int i = 0; i < 3; i++) {
        const uint8_t *sh = section(&pe, names[i]);
        cr_assert_not_null(sh, "%s missing", names[i]);
        cr_assert_eq(rd32(sh + 8), sizes[i], "%s virtual size", names[i]);
        cr_assert_eq(rd32(sh + 12) % 4096, 0, "%s not page aligned", names[i]);
        cr_assert_eq(rd32(sh + 36), 0x40000040u, "%s: initialised, read-only data", names[i]);
    }
    const uint8_t *k = section(&pe, ".linux"), *r = section(&pe, ".initrd");
    cr_assert(!memcmp(im.data + rd32(k + 20), f.kernel, f.kernel_len), ".linux is the kernel");
    cr_assert(!memcmp(im.data + rd32(r + 20), f.initrd, f.initrd_len), ".initrd is the initramfs");
    for (uint32_t i = (uint32_t)f.kernel_len; i < rd32(k + 16); i++)
        cr_assert_eq(im.data[rd32(k + 20) + i], 0, "padding is zeros");
    const uint8_t *c = section(&pe, ".cmdline");
    cr_assert(!memcmp(im.data + rd32(c + 20), "console=ttyS0 talos.config=http://x/1   ", 40));
    uint32_t last_va_end = rd32(c + 12) + rd32(c + 8);
    cr_assert_eq(rd32(pe.opt + 56), (last_va_end + 4095) / 4096 * 4096, "SizeOfImage");
    cr_assert_eq(prev_raw_end, im.len, "nothing after the last section when unsigned");
    cr_assert_eq(rd32(pe.opt + 112 + 32), 0, "no security directory when unsigned");
    boot_uki_boot_free(&b);
    free(im.data);
    fixture_free(&f);
}

Test(uki, checksum_matches_the_whole_file_sum)
{
    /* odd chunk sizes: the prefix sum carries a byte between updates */
    size_t chunks[] = {4096, 333, 1};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct fixture f;
        fixture_init(&f, false, chunks[i]);
        struct boot_uki_boot b;
        struct bd_err err;
        cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, "a=b", NULL, &b, &err), 0, "%s", err.msg);
        struct image im = assemble(&f.u, &b, f.kernel, f.initrd, 777);
        uint32_t want = plain_checksum(&im, f.u.checksum_off);
        cr_assert_eq(rd32(im.data + f.u.checksum_off), want, "chunk %zu: checksum %08x, want %08x",
                     chunks[i], rd32(im.data + f.u.checksum_off), want);
        cr_assert_neq(want, 0);
        boot_uki_boot_free(&b);
        free(im.data);
        fixture_free(&f);
    }
}

Test(uki, refuses_what_it_cannot_carry)
{
    struct fixture f;
    fixture_init(&f, false, 4096);
    struct boot_uki_boot b;
    struct bd_err err;
    char *longline = bd_xmalloc(BOOT_UKI_CMDLINE_MAX + 2);
    memset(longline, 'x', BOOT_UKI_CMDLINE_MAX + 1);
    longline[BOOT_UKI_CMDLINE_MAX + 1] = 0;
    cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, longline, NULL, &b, &err), -1);
    cr_assert(strstr(err.msg, "longer than"), "%s", err.msg);
    longline[BOOT_UKI_CMDLINE_MAX] = 0;
    cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, longline, NULL, &b, &err), 0, "%s", err.msg);
    boot_uki_boot_free(&b);
    free(longline);
    struct boot_uki u;
    cr_assert_eq(boot_uki_layout(&u, "MZ", 2, 1, 1, &err), -1);
    char *notpe = bd_xcalloc(1, 4096);
    memcpy(notpe, "MZ", 2);
    cr_assert_eq(boot_uki_layout(&u, notpe, 4096, 1, 1, &err), -1);
    cr_assert(strstr(err.msg, "PE signature"), "%s", err.msg);
    free(notpe);
    cr_assert_eq(boot_uki_layout(&u, f.stub, f.stub_len, 0, 1, &err), -1);
    fixture_free(&f);
}

/* ---------- signatures ---------- */

static void make_signer(const char *cn, struct boot_signer **out, char **cert_pem)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    cr_assert_not_null(key);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    cr_assert(X509_sign(x, key, EVP_sha256()));
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, x);
    PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL);
    char *c, *k;
    long cn_len = BIO_get_mem_data(cb, &c), kn_len = BIO_get_mem_data(kb, &k);
    struct bd_err err;
    cr_assert_eq(boot_signer_new(c, (size_t)cn_len, k, (size_t)kn_len, out, &err), 0, "%s",
                 err.msg);
    *cert_pem = bd_xstrndup(c, (size_t)cn_len);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* The Authenticode digest the plain way: the file up to the certificate table, less the
 * checksum field and the security directory entry. */
static void plain_digest(const struct image *im, const struct boot_uki *u, uint64_t end,
                         uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, im->data, u->checksum_off);
    EVP_DigestUpdate(c, im->data + u->checksum_off + 4, u->secdir_off - u->checksum_off - 4);
    EVP_DigestUpdate(c, im->data + u->secdir_off + 8, end - u->secdir_off - 8);
    EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}

static void write_image(const char *path, const struct image *im)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(im->data, 1, im->len, f), im->len);
    fclose(f);
}

Test(uki, signed_image_carries_an_authenticode_signature_sbverify_accepts)
{
    struct fixture f;
    fixture_init(&f, true, 4093);
    struct boot_signer *s, *other;
    char *cert, *other_cert;
    make_signer("bootd test lab db", &s, &cert);
    make_signer("someone else", &other, &other_cert);
    struct boot_uki_boot b;
    struct bd_err err;
    cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, "talos.config=http://192.0.2.1/config/x", s, &b,
                                 &err),
                 0, "%s", err.msg);
    struct image im = assemble(&f.u, &b, f.kernel, f.initrd, 4096);
    struct pe pe = parse(&im);
    /* the security directory points at a WIN_CERTIFICATE table at the end, 8-aligned */
    uint32_t at = rd32(pe.opt + 112 + 32), size = rd32(pe.opt + 112 + 36);
    cr_assert_eq(at, f.u.size);
    cr_assert_eq(at + size, im.len);
    cr_assert_eq(at % 8, 0);
    cr_assert_eq(size % 8, 0);
    cr_assert_eq(rd32(im.data + at), size, "dwLength");
    cr_assert_eq(rd16(im.data + at + 4), 0x0200, "wRevision");
    cr_assert_eq(rd16(im.data + at + 6), 0x0002, "WIN_CERT_TYPE_PKCS_SIGNED_DATA");
    cr_assert_eq(rd32(im.data + f.u.checksum_off), plain_checksum(&im, f.u.checksum_off));

    /* the PKCS#7 content is an SpcIndirectDataContent ending in the image's digest */
    const unsigned char *p = im.data + at + 8;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, size - 8);
    cr_assert_not_null(p7);
    cr_assert(PKCS7_type_is_signed(p7));
    char oid[64];
    OBJ_obj2txt(oid, sizeof oid, p7->d.sign->contents->type, 1);
    cr_assert_str_eq(oid, "1.3.6.1.4.1.311.2.1.4");
    ASN1_STRING *idc = p7->d.sign->contents->d.other->value.sequence;
    uint8_t want[32];
    plain_digest(&im, &f.u, f.u.size, want);
    cr_assert(!memcmp(ASN1_STRING_get0_data(idc) + ASN1_STRING_length(idc) - 32, want, 32),
              "the signed digest is the image's Authenticode digest");
    PKCS7_free(p7);

    /* sbsigntool, the reference, accepts it with our certificate and not another */
    char *dir = tmpdir_new();
    char *img = bd_xasprintf("%s/uki.efi", dir);
    write_image(img, &im);
    char *good = write_file(dir, "db.crt", cert), *bad = write_file(dir, "other.crt", other_cert);
    char *cmd = bd_xasprintf("sbverify --cert %s %s >/dev/null 2>&1", good, img);
    cr_assert_eq(system(cmd), 0, "sbverify refused: %s", cmd);
    free(cmd);
    cmd = bd_xasprintf("sbverify --cert %s %s >/dev/null 2>&1", bad, img);
    cr_assert_neq(system(cmd), 0, "sbverify accepted another key");
    free(cmd);
    /* one flipped byte in the kernel and the signature no longer holds */
    im.data[f.u.linux_off + 5000] ^= 1;
    write_image(img, &im);
    cmd = bd_xasprintf("sbverify --cert %s %s >/dev/null 2>&1", good, img);
    cr_assert_neq(system(cmd), 0, "sbverify accepted a tampered image");
    free(cmd);
    tmpdir_remove(dir);
    free(good);
    free(bad);
    free(img);
    free(dir);
    free(cert);
    free(other_cert);
    boot_signer_free(s);
    boot_signer_free(other);
    boot_uki_boot_free(&b);
    free(im.data);
    fixture_free(&f);
}

Test(uki, signature_size_is_the_same_for_every_boot)
{
    /* HEAD answers the size before the boot's signature exists */
    struct fixture f;
    fixture_init(&f, true, 65536);
    struct boot_signer *s;
    char *cert;
    make_signer("bootd test lab db", &s, &cert);
    struct bd_err err;
    struct boot_uki_boot a, b;
    cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, "x=1", s, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(boot_uki_finish(&f.u, &f.prefix, "talos.config=http://192.0.2.1:8080/config/"
                                                  "0123456789abcdef0123456789abcdef",
                                 s, &b, &err),
                 0, "%s", err.msg);
    cr_assert_eq(a.size, b.size);
    cr_assert(memcmp(a.checksum, b.checksum, 4));
    boot_uki_boot_free(&a);
    boot_uki_boot_free(&b);
    boot_signer_free(s);
    free(cert);
    fixture_free(&f);
}

/* ---------- Secure Boot material ---------- */

static const struct boot_sb_file *sb_file(const struct boot_sb_material *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->files[i].name, name))
            return &m->files[i];
    cr_assert_fail("%s not generated", name);
    return NULL;
}

static X509 *sb_cert(const struct boot_sb_material *m, const char *var)
{
    char name[16];
    snprintf(name, sizeof name, "%s.cer", var);
    const struct boot_sb_file *f = sb_file(m, name);
    const unsigned char *p = f->data;
    X509 *x = d2i_X509(NULL, &p, (long)f->len);
    cr_assert_not_null(x);
    return x;
}

/* The update's PKCS#7 verifies, with signer's certificate as the only trust, over
 * name || vendor GUID || attributes || timestamp || ESL (UEFI §8.2.2). */
static bool auth_verifies(const struct boot_sb_material *m, const char *var, const char *signer,
                          const uint8_t vendor[16])
{
    char name[16];
    snprintf(name, sizeof name, "%s.auth", var);
    const struct boot_sb_file *a = sb_file(m, name);
    snprintf(name, sizeof name, "%s.esl", var);
    const struct boot_sb_file *esl = sb_file(m, name);
    uint32_t dw = rd32(a->data + 16);
    cr_assert_eq(rd16(a->data + 22), 0x0ef1, "WIN_CERT_TYPE_EFI_GUID");
    cr_assert_eq(a->len, 16 + dw + esl->len, "timestamp, certificate, then the ESL");
    cr_assert(!memcmp(a->data + 16 + dw, esl->data, esl->len));
    struct bd_buf msg;
    bd_buf_init(&msg);
    for (const char *p = var; *p; p++)
        bd_buf_append(&msg, (char[2]){*p, 0}, 2);
    bd_buf_append(&msg, vendor, 16);
    bd_buf_append(&msg, "\x27\0\0\0", 4);
    bd_buf_append(&msg, a->data, 16);
    bd_buf_append(&msg, esl->data, esl->len);
    const unsigned char *p = a->data + 16 + 24;
    /* a bare SignedData with SHA-256's OID where EDK2 looks for it (offset 13) */
    static const uint8_t sha256_oid[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
    cr_assert(!memcmp(p + 13, sha256_oid, sizeof sha256_oid), "SHA-256 OID not at offset 13");
    PKCS7_SIGNED *sd = d2i_PKCS7_SIGNED(NULL, &p, dw - 24);
    cr_assert_not_null(sd);
    PKCS7 *p7 = PKCS7_new();
    p7->type = OBJ_nid2obj(NID_pkcs7_signed);
    p7->d.sign = sd;
    X509_STORE *store = X509_STORE_new();
    X509 *trust = sb_cert(m, signer);
    X509_STORE_add_cert(store, trust);
    BIO *in = BIO_new_mem_buf(msg.data, (int)msg.len);
    int ok = PKCS7_verify(p7, NULL, store, in, NULL, PKCS7_BINARY | PKCS7_NOVERIFY) == 1;
    /* NOVERIFY skips chain purpose checks; the signer must still be the trusted cert */
    STACK_OF(X509) *signers = PKCS7_get0_signers(p7, NULL, 0);
    ok = ok && sk_X509_num(signers) == 1 && !X509_cmp(sk_X509_value(signers, 0), trust);
    sk_X509_free(signers);
    BIO_free(in);
    X509_free(trust);
    X509_STORE_free(store);
    PKCS7_free(p7);
    bd_buf_free(&msg);
    return ok;
}

Test(uki, secureboot_material_is_a_signed_chain)
{
    struct boot_sb_material m;
    struct bd_err err;
    cr_assert_eq(boot_secureboot_generate("e2e", 1764547200, &m, &err), 0, "%s", err.msg);
    const char *vars[] = {"PK", "KEK", "db"}, *exts[] = {"key", "crt", "cer", "esl", "auth"};
    for (int v = 0; v < 3; v++)
        for (int e = 0; e < 5; e++) {
            char name[16];
            snprintf(name, sizeof name, "%s.%s", vars[v], exts[e]);
            cr_assert_eq(sb_file(&m, name)->secret, e == 0, "%s", name);
        }
    static const uint8_t global[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                       0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
    static const uint8_t imagedb[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                        0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};
    cr_assert(auth_verifies(&m, "PK", "PK", global), "PK is self-signed");
    cr_assert(auth_verifies(&m, "KEK", "PK", global), "KEK is signed by PK");
    cr_assert(auth_verifies(&m, "db", "KEK", imagedb), "db is signed by KEK");
    cr_assert(!auth_verifies(&m, "db", "PK", imagedb), "db is not PK's");
    /* the ESL is what efitools reads back as the certificate */
    char *dir = tmpdir_new();
    char *esl = bd_xasprintf("%s/db.esl", dir);
    FILE *f = fopen(esl, "wb");
    fwrite(sb_file(&m, "db.esl")->data, 1, sb_file(&m, "db.esl")->len, f);
    fclose(f);
    char *cmd = bd_xasprintf("cd %s && sig-list-to-certs db.esl out >/dev/null", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *back = bd_xasprintf("%s/out-0.der", dir);
    char *der;
    size_t len;
    cr_assert_eq(bd_file_read(back, &der, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(len, sb_file(&m, "db.cer")->len);
    cr_assert(!memcmp(der, sb_file(&m, "db.cer")->data, len));
    /* and bootd can sign with the db pair */
    struct boot_signer *s;
    cr_assert_eq(boot_signer_new((char *)sb_file(&m, "db.crt")->data, sb_file(&m, "db.crt")->len,
                                 (char *)sb_file(&m, "db.key")->data, sb_file(&m, "db.key")->len,
                                 &s, &err),
                 0, "%s", err.msg);
    boot_signer_free(s);
    free(der);
    free(back);
    free(cmd);
    free(esl);
    tmpdir_remove(dir);
    free(dir);
    boot_secureboot_free(&m);
}
