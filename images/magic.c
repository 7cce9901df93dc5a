/* What an imported file must look like inside, so that a renamed or truncated download
 * is refused at import instead of failing in the machine's firmware: the formats come
 * from the kernel's boot protocols (Documentation/arch/x86/boot.rst,
 * Documentation/arch/arm64/booting.rst) and the compressors' own magic numbers. */
#include "images.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HEAD 0x240 /* enough for every header checked below */

static bool at(const unsigned char *h, size_t n, size_t off, const void *magic, size_t len)
{
    return off + len <= n && !memcmp(h + off, magic, len);
}

static const char *kernel_problem(const char *arch, const unsigned char *h, size_t n)
{
    if (!strcmp(arch, "amd64"))
        return at(h, n, 0x202, "HdrS", 4) ? NULL
                                          : "not an x86 Linux kernel (no boot header \"HdrS\" "
                                            "at offset 0x202)";
    /* an arm64 Image, or one wrapped for EFI zboot */
    if (at(h, n, 0x38, "ARM\x64", 4) || (at(h, n, 0, "MZ", 2) && at(h, n, 4, "zimg", 4)))
        return NULL;
    return "not an arm64 Linux kernel (no Image magic \"ARM\\x64\" at offset 0x38, no EFI zboot "
           "header)";
}

static const char *initramfs_problem(const unsigned char *h, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
    } formats[] = {
        {"\xfd" "7zXZ\0", 6},     /* xz */
        {"\x28\xb5\x2f\xfd", 4},  /* zstd */
        {"\x1f\x8b", 2},          /* gzip */
        {"\x02\x21\x4c\x18", 4},  /* lz4 legacy, as the kernel reads it */
        {"070701", 6},            /* uncompressed cpio (newc) */
        {"070702", 6},
    };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (at(h, n, 0, formats[i].magic, formats[i].len))
            return NULL;
    return "not an initramfs (neither xz, zstd, gzip, lz4 nor cpio)";
}

static const char *cmdline_problem(const unsigned char *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h[i] == 0 || (h[i] < 0x20 && h[i] != '\n' && h[i] != '\t' && h[i] != '\r'))
            return "not a kernel command line (binary bytes in it)";
    return NULL;
}

int images_check_magic(int fd, const char *name, const char *src, struct bd_err *err)
{
    unsigned char h[HEAD];
    ssize_t got = pread(fd, h, sizeof h, 0);
    if (got < 0)
        return bd_err_set(err, "%s: %s", src, strerror(errno));
    size_t n = (size_t)got;
    const char *arch = images_file_arch(name);
    const char *problem = NULL;
    if (!strncmp(name, "kernel-", 7))
        problem = kernel_problem(arch, h, n);
    else if (!strncmp(name, "initramfs-", 10))
        problem = initramfs_problem(h, n);
    else
        problem = cmdline_problem(h, n);
    if (problem)
        return bd_err_set(err, "%s: %s; is it the file Image Factory names %s?", src, problem, name);
    return 0;
}
