/* Unified Kernel Images: the systemd EFI stub with .linux, .initrd and .cmdline sections
 * added, laid out so that one image serves every boot of an architecture. The big
 * sections come from the image cache as they are; only the stub's headers and the
 * per-boot .cmdline (and signature) are bytes bootd makes. .cmdline comes last in the
 * file, so the PE checksum and the Authenticode hash of everything before it are
 * computed once per image and finished per boot over a few kilobytes. */
#include "boot.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PE/COFF field offsets (Microsoft PE Format, "Optional Header (Image Only)") */
#define DOS_LFANEW 0x3c
#define COFF_NSECTIONS 2
#define COFF_OPT_SIZE 16
#define OPT_MAGIC 0
#define OPT_SECTION_ALIGN 32
#define OPT_FILE_ALIGN 36
#define OPT_SIZE_OF_IMAGE 56
#define OPT_SIZE_OF_HEADERS 60
#define OPT_CHECKSUM 64
#define OPT_NDIRS 108
#define OPT_DIRS 112
#define DIR_SECURITY 4
#define PE32PLUS 0x20b
#define SEC_SIZE 40
#define SEC_VSIZE 8
#define SEC_VADDR 12
#define SEC_RAWSIZE 16
#define SEC_RAWPTR 20
#define SEC_FLAGS 36
#define SCN_INITIALIZED_DATA 0x00000040u
#define SCN_MEM_READ 0x40000000u
/* Section addresses of the added sections are page aligned, as ukify lays them out:
 * the stub maps them where they are, and the kernel prefers page-aligned images. */
#define PAGE 4096u

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static bool pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

static void add_section(uint8_t *sh, const char *name, uint32_t vsize, uint64_t vaddr,
                        uint64_t rawsize, uint64_t rawptr)
{
    memset(sh, 0, SEC_SIZE);
    memcpy(sh, name, strlen(name));
    put32(sh + SEC_VSIZE, vsize);
    put32(sh + SEC_VADDR, (uint32_t)vaddr);
    put32(sh + SEC_RAWSIZE, (uint32_t)rawsize);
    put32(sh + SEC_RAWPTR, (uint32_t)rawptr);
    put32(sh + SEC_FLAGS, SCN_INITIALIZED_DATA | SCN_MEM_READ);
}

int boot_uki_layout(struct boot_uki *u, const void *stub_bytes, size_t stub_len,
                    uint64_t linux_size, uint64_t initrd_size, struct bd_err *err)
{
    const uint8_t *stub = stub_bytes;
    memset(u, 0, sizeof *u);
    if (stub_len < 0x40 || stub[0] != 'M' || stub[1] != 'Z')
        return bd_err_set(err, "EFI stub: not a PE image (no MZ header)");
    uint32_t pe = get32(stub + DOS_LFANEW);
    if ((uint64_t)pe + 24 + OPT_DIRS > stub_len || memcmp(stub + pe, "PE\0\0", 4))
        return bd_err_set(err, "EFI stub: no PE signature");
    const uint8_t *coff = stub + pe + 4, *opt = coff + 20;
    if (get16(opt + OPT_MAGIC) != PE32PLUS)
        return bd_err_set(err, "EFI stub: not a PE32+ image");
    if (get32(opt + OPT_NDIRS) <= DIR_SECURITY)
        return bd_err_set(err, "EFI stub: no room for a security directory");
    if (get32(opt + OPT_DIRS + 8 * DIR_SECURITY + 4))
        return bd_err_set(err, "EFI stub: already signed; bootd needs the unsigned stub");
    uint32_t nsec = get16(coff + COFF_NSECTIONS);
    uint32_t salign = get32(opt + OPT_SECTION_ALIGN), falign = get32(opt + OPT_FILE_ALIGN);
    uint32_t hdrs = get32(opt + OPT_SIZE_OF_HEADERS);
    if (!pow2(salign) || !pow2(falign) || falign < 512 || salign < falign)
        return bd_err_set(err, "EFI stub: unusual section or file alignment (%u, %u)", salign,
                          falign);
    size_t table = (size_t)(opt - stub) + get16(coff + COFF_OPT_SIZE);
    if (table + (size_t)(nsec + BOOT_UKI_NADDED) * SEC_SIZE > hdrs || hdrs > stub_len)
        return bd_err_set(err, "EFI stub: no room in its headers for %d more sections",
                          BOOT_UKI_NADDED);
    /* The stub's sections must follow the headers back to back in file order: then the
     * whole file, in order, is what Authenticode hashes (no gaps or overlaps to skip). */
    uint64_t file_end = hdrs, va_end = 0;
    for (uint32_t i = 0; i < nsec; i++) {
        const uint8_t *sh = stub + table + (size_t)i * SEC_SIZE;
        uint32_t raw = get32(sh + SEC_RAWSIZE), ptr = get32(sh + SEC_RAWPTR);
        uint64_t vend = (uint64_t)get32(sh + SEC_VADDR) + get32(sh + SEC_VSIZE);
        if (raw && ptr != file_end)
            return bd_err_set(err, "EFI stub: section %u is not where the previous one ends", i);
        file_end += raw;
        if (vend > va_end)
            va_end = vend;
    }
    if (file_end > stub_len)
        return bd_err_set(err, "EFI stub: sections run past the end of the file");
    if (file_end % falign)
        return bd_err_set(err, "EFI stub: its last section is not file-aligned");

    u->file_align = falign;
    u->head_len = (size_t)file_end;
    u->head = bd_xmalloc(u->head_len);
    memcpy(u->head, stub, u->head_len);
    uint8_t *h = u->head, *hopt = h + (opt - stub);
    uint64_t va = align_up(va_end, salign > PAGE ? salign : PAGE);
    uint64_t off = file_end;
    const struct {
        const char *name;
        uint64_t size;
    } add[BOOT_UKI_NADDED] = {
        {".linux", linux_size},
        {".initrd", initrd_size},
        {".cmdline", BOOT_UKI_CMDLINE_MAX},
    };
    uint64_t offs[BOOT_UKI_NADDED];
    for (int i = 0; i < BOOT_UKI_NADDED; i++) {
        uint64_t raw = align_up(add[i].size, falign);
        if (add[i].size == 0 || add[i].size > UINT32_MAX || va + add[i].size > UINT32_MAX) {
            free(u->head);
            u->head = NULL;
            return bd_err_set(err, "%s: size %llu does not fit a PE image", add[i].name,
                              (unsigned long long)add[i].size);
        }
        add_section(h + table + (size_t)(nsec + (uint32_t)i) * SEC_SIZE, add[i].name,
                    (uint32_t)add[i].size, va, raw, off);
        offs[i] = off;
        off += raw;
        va = align_up(va + add[i].size, salign > PAGE ? salign : PAGE);
    }
    put16(h + (coff - stub) + COFF_NSECTIONS, (uint16_t)(nsec + BOOT_UKI_NADDED));
    put32(hopt + OPT_SIZE_OF_IMAGE, (uint32_t)va);
    put32(hopt + OPT_CHECKSUM, 0);
    u->checksum_off = (size_t)(hopt - h) + OPT_CHECKSUM;
    u->secdir_off = (size_t)(hopt - h) + OPT_DIRS + 8 * DIR_SECURITY;
    u->linux_off = offs[0];
    u->linux_size = linux_size;
    u->initrd_off = offs[1];
    u->initrd_size = initrd_size;
    u->cmdline_off = offs[2];
    u->size = off;
    return 0;
}

void boot_uki_free(struct boot_uki *u)
{
    free(u->head);
    u->head = NULL;
}

/* ---------- PE checksum and Authenticode hash, in file order ---------- */

void boot_uki_sum_init(struct boot_uki_sum *s, bool hash)
{
    memset(s, 0, sizeof *s);
    if (hash) {
        s->sha = EVP_MD_CTX_new();
        if (!s->sha || !EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL)) {
            fprintf(stderr, "bootd: cannot set up SHA-256\n");
            abort();
        }
    }
}

void boot_uki_sum_copy(struct boot_uki_sum *dst, const struct boot_uki_sum *src)
{
    *dst = *src;
    if (src->sha) {
        dst->sha = EVP_MD_CTX_new();
        if (!dst->sha || !EVP_MD_CTX_copy_ex(dst->sha, src->sha)) {
            fprintf(stderr, "bootd: cannot copy a SHA-256 state\n");
            abort();
        }
    }
}

void boot_uki_sum_free(struct boot_uki_sum *s)
{
    EVP_MD_CTX_free(s->sha);
    s->sha = NULL;
}

/* Feeds the hash what Authenticode covers of [pos, pos + n): everything but the checksum
 * field and the security directory entry (the certificate table is never fed). */
static void hash_fed(const struct boot_uki *u, struct boot_uki_sum *s, const uint8_t *p, size_t n)
{
    const uint64_t skip[2][2] = {{u->checksum_off, 4}, {u->secdir_off, 8}};
    uint64_t at = s->pos, end = s->pos + n;
    for (int i = 0; i < 2 && at < end; i++) {
        uint64_t a = skip[i][0], b = a + skip[i][1];
        if (b <= at || a >= end)
            continue;
        if (a > at)
            EVP_DigestUpdate(s->sha, p + (at - s->pos), (size_t)(a - at));
        at = b < end ? b : end;
    }
    if (at < end)
        EVP_DigestUpdate(s->sha, p + (at - s->pos), (size_t)(end - at));
}

void boot_uki_sum_update(const struct boot_uki *u, struct boot_uki_sum *s, const void *data,
                         size_t n)
{
    const uint8_t *p = data;
    if (s->sha)
        hash_fed(u, s, p, n);
    size_t i = 0;
    if (s->odd && n) {
        s->words += (uint64_t)s->odd_byte | (uint64_t)p[0] << 8;
        s->odd = false;
        i = 1;
    }
    for (; i + 1 < n; i += 2)
        s->words += (uint64_t)p[i] | (uint64_t)p[i + 1] << 8;
    if (i < n) {
        s->odd = true;
        s->odd_byte = p[i];
    }
    s->pos += n;
}

uint32_t boot_uki_checksum_of(uint64_t words, uint64_t file_size)
{
    while (words >> 16)
        words = (words & 0xffff) + (words >> 16);
    return (uint32_t)(words + file_size);
}

/* ---------- one boot ---------- */

int boot_uki_finish(const struct boot_uki *u, const struct boot_uki_sum *prefix,
                    const char *cmdline, const struct boot_signer *signer, struct boot_uki_boot *b,
                    struct bd_err *err)
{
    memset(b, 0, sizeof *b);
    size_t n = strlen(cmdline);
    if (n > BOOT_UKI_CMDLINE_MAX)
        return bd_err_set(err, "kernel command line of %zu bytes is longer than the %d a UKI carries",
                          n, BOOT_UKI_CMDLINE_MAX);
    if (prefix->pos != u->cmdline_off || prefix->odd)
        return bd_err_set(err, "UKI: the image prefix was not summed whole");
    if (signer && !prefix->sha)
        return bd_err_set(err, "UKI: the image prefix was summed without its hash");
    /* Spaces, not NULs, fill the section: the kernel ignores trailing blanks, and the
     * section's size stays the same for every boot, so its headers do too. */
    memcpy(b->cmdline, cmdline, n);
    memset(b->cmdline + n, ' ', sizeof b->cmdline - n);
    struct boot_uki_sum s;
    boot_uki_sum_copy(&s, prefix);
    boot_uki_sum_update(u, &s, b->cmdline, sizeof b->cmdline);
    b->size = u->size;
    if (signer) {
        uint8_t digest[32];
        unsigned dn = 0;
        EVP_DigestFinal_ex(s.sha, digest, &dn);
        uint8_t *der;
        size_t der_len;
        if (boot_authenticode_sign(signer, digest, &der, &der_len, err) < 0) {
            boot_uki_sum_free(&s);
            return -1;
        }
        /* WIN_CERTIFICATE: dwLength, wRevision 2.0, WIN_CERT_TYPE_PKCS_SIGNED_DATA; the
         * table is padded to 8 bytes, as the PE format asks */
        b->certs_len = (size_t)align_up(8 + der_len, 8);
        b->certs = bd_xcalloc(1, b->certs_len);
        put32(b->certs, (uint32_t)b->certs_len);
        put16(b->certs + 4, 0x0200);
        put16(b->certs + 6, 0x0002);
        memcpy(b->certs + 8, der, der_len);
        free(der);
        put32(b->secdir, (uint32_t)u->size);
        put32(b->secdir + 4, (uint32_t)b->certs_len);
        b->size += b->certs_len;
        /* the certificate table and the directory entry count in the checksum */
        for (size_t i = 0; i + 1 < b->certs_len; i += 2)
            s.words += get16(b->certs + i);
        s.words += get16(b->secdir) + get16(b->secdir + 2) + get16(b->secdir + 4) +
                   get16(b->secdir + 6);
    }
    put32(b->checksum, boot_uki_checksum_of(s.words, b->size));
    boot_uki_sum_free(&s);
    return 0;
}

void boot_uki_boot_free(struct boot_uki_boot *b)
{
    free(b->certs);
    b->certs = NULL;
}

/* Overlays the per-boot header fields on a copy of the shared headers. */
static size_t head_bytes(const struct boot_uki *u, const struct boot_uki_boot *b, uint64_t pos,
                         uint8_t *out, size_t max)
{
    size_t n = (size_t)(u->head_len - pos);
    if (n > max)
        n = max;
    memcpy(out, u->head + pos, n);
    const struct {
        size_t off;
        const uint8_t *v;
        size_t len;
    } patch[] = {{u->checksum_off, b->checksum, 4}, {u->secdir_off, b->secdir, 8}};
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < patch[i].len; k++) {
            uint64_t at = patch[i].off + k;
            if (at >= pos && at < pos + n)
                out[at - pos] = patch[i].v[k];
        }
    return n;
}

int boot_uki_piece(const struct boot_uki *u, const struct boot_uki_boot *b, uint64_t pos,
                   uint8_t *buf, size_t max, struct boot_uki_piece *p)
{
    memset(p, 0, sizeof *p);
    if (pos >= b->size || max == 0)
        return 0;
    if (pos < u->head_len) {
        p->kind = BOOT_UKI_BYTES;
        p->len = head_bytes(u, b, pos, buf, max);
        return 1;
    }
    const struct {
        uint64_t off, size;
        int which;
    } files[] = {{u->linux_off, u->linux_size, BOOT_UKI_LINUX},
                 {u->initrd_off, u->initrd_size, BOOT_UKI_INITRD}};
    for (size_t i = 0; i < 2; i++) {
        uint64_t raw_end = files[i].off + align_up(files[i].size, u->file_align);
        if (pos >= raw_end)
            continue;
        uint64_t data_end = files[i].off + files[i].size;
        if (pos < data_end) {
            p->kind = files[i].which;
            p->file_off = pos - files[i].off;
            p->len = (size_t)(data_end - pos < max ? data_end - pos : max);
        } else {
            p->kind = BOOT_UKI_BYTES;
            p->len = (size_t)(raw_end - pos < max ? raw_end - pos : max);
            memset(buf, 0, p->len);
        }
        return 1;
    }
    const uint8_t *src;
    uint64_t rel;
    size_t avail;
    if (pos < u->size) {
        rel = pos - u->cmdline_off;
        src = b->cmdline;
        avail = sizeof b->cmdline;
    } else {
        rel = pos - u->size;
        src = b->certs;
        avail = b->certs_len;
    }
    p->kind = BOOT_UKI_BYTES;
    p->len = (size_t)(avail - rel < max ? avail - rel : max);
    memcpy(buf, src + rel, p->len);
    return 1;
}
