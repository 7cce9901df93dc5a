/* bootctl image import looks inside: a kernel for its arch, a compressed initramfs, a
 * text command line. */
#include "helpers.h"

#include "../../images/images.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Checks bytes as the file called name; returns 0 or -1 with err. */
static int check(const char *name, const void *data, size_t n, struct bd_err *err)
{
    char *dir = tmpdir_new();
    char *path = bd_path_join(dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    int rc = images_check_magic(fd, name, path, err);
    close(fd);
    tmpdir_remove(dir);
    free(path);
    free(dir);
    return rc;
}

static void at(unsigned char *buf, size_t off, const char *magic, size_t len)
{
    memcpy(buf + off, magic, len);
}

Test(images_magic, kernels_by_arch)
{
    unsigned char k[1024];
    struct bd_err err;
    memset(k, 0, sizeof k);
    at(k, 0x202, "HdrS", 4);
    cr_expect_eq(check("kernel-amd64", k, sizeof k, &err), 0, "%s", err.msg);
    cr_expect_eq(check("kernel-arm64", k, sizeof k, &err), -1, "an x86 kernel is not arm64's");
    cr_expect(strstr(err.msg, "not an arm64 Linux kernel"), "%s", err.msg);
    cr_expect(strstr(err.msg, "is it the file Image Factory names kernel-arm64?"), "%s", err.msg);

    memset(k, 0, sizeof k);
    at(k, 0x38, "ARM\x64", 4);
    cr_expect_eq(check("kernel-arm64", k, sizeof k, &err), 0, "%s", err.msg);
    cr_expect_eq(check("kernel-amd64", k, sizeof k, &err), -1);
    cr_expect(strstr(err.msg, "not an x86 Linux kernel"), "%s", err.msg);

    memset(k, 0, sizeof k);
    at(k, 0, "MZ", 2);
    at(k, 4, "zimg", 4);
    cr_expect_eq(check("kernel-arm64", k, sizeof k, &err), 0, "EFI zboot: %s", err.msg);

    /* a kernel cut short before its header, and an HTML error page saved as a kernel */
    cr_expect_eq(check("kernel-amd64", k, 0x100, &err), -1);
    const char *html = "<html><body>404 Not Found</body></html>\n";
    cr_expect_eq(check("kernel-amd64", html, strlen(html), &err), -1);
}

Test(images_magic, initramfs_formats)
{
    static const struct {
        const char *magic;
        size_t len;
    } ok[] = {{"\xfd" "7zXZ\0", 6}, {"\x28\xb5\x2f\xfd", 4}, {"\x1f\x8b\x08", 3},
              {"\x02\x21\x4c\x18", 4}, {"070701", 6}};
    struct bd_err err;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        unsigned char buf[64] = {0};
        at(buf, 0, ok[i].magic, ok[i].len);
        cr_expect_eq(check("initramfs-amd64.xz", buf, sizeof buf, &err), 0, "%zu: %s", i, err.msg);
    }
    const char *text = "initramfs stand-in\n";
    cr_expect_eq(check("initramfs-arm64.xz", text, strlen(text), &err), -1);
    cr_expect(strstr(err.msg, "not an initramfs"), "%s", err.msg);
}

Test(images_magic, cmdline_is_text)
{
    struct bd_err err;
    const char *line = "talos.platform=metal console=tty0 slab_nomerge\n";
    cr_expect_eq(check("cmdline-metal-amd64", line, strlen(line), &err), 0, "%s", err.msg);
    unsigned char bin[16] = {0x1f, 0x8b, 0x08, 0};
    cr_expect_eq(check("cmdline-metal-amd64", bin, sizeof bin, &err), -1);
    cr_expect(strstr(err.msg, "not a kernel command line"), "%s", err.msg);
}
