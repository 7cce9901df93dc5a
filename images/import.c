/* Importing local files for labs without Internet access: the same checks as a
 * download (images.lock), the same atomic landing. */
#include "images.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* Copies src into name's partial file in the kernel (sendfile), then hashes what landed. */
static int copy_in(struct images_stage *st, const char *src, const char *name, struct bd_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return bd_err_set(err, "%s: %s", src, strerror(errno));
    char part[IMAGES_NAME_MAX + 8];
    images_stage_part(name, part);
    int out = openat(st->dir_fd, part, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return bd_err_set(err, "%s/%s: %s", st->dir, part, strerror(errno));
    }
    int rc = 0;
    ssize_t n;
    while ((n = sendfile(out, in, NULL, 1 << 30)) != 0)
        if (n < 0 && errno != EINTR) {
            rc = bd_err_set(err, "copying %s to %s/%s: %s", src, st->dir, part, strerror(errno));
            break;
        }
    struct images_hash *h = images_hash_new();
    uint64_t size = 0;
    if (rc == 0)
        rc = images_hash_fd(out, part, h, &size, err);
    if (rc == 0 && size == 0)
        rc = bd_err_set(err, "%s: empty file", src);
    if (rc == 0)
        rc = images_check_magic(out, name, src, err);
    if (rc == 0 && fsync(out) < 0)
        rc = bd_err_set(err, "%s/%s: fsync: %s", st->dir, part, strerror(errno));
    if (rc == 0) {
        char sha[65];
        images_hash_final(h, sha);
        images_stage_add(st, name, sha, size, true);
    } else {
        unlinkat(st->dir_fd, part, 0);
    }
    images_hash_free(h);
    close(out);
    close(in);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int images_import(int cache_fd, const char *lock_file, const char *schematic,
                  const char *version, char *const *paths, size_t npaths,
                  struct images_stage_file *out, struct bd_err *err)
{
    if (npaths == 0 || npaths > 2 * IMAGES_NFILES)
        return bd_err_set(err, "import takes 1 to %d files", 2 * IMAGES_NFILES);
    for (size_t i = 0; i < npaths; i++) {
        const char *name = base_name(paths[i]);
        if (!images_file_arch(name))
            return bd_err_set(err,
                              "%s: not a name Image Factory gives an image file (kernel-ARCH, "
                              "initramfs-ARCH.xz, cmdline-metal-ARCH; ARCH amd64 or arm64)",
                              paths[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(name, base_name(paths[j])))
                return bd_err_set(err, "%s: %s is given twice", paths[i], name);
    }
    struct images_stage st;
    if (images_stage_open(&st, cache_fd, schematic, version, NULL, NULL, NULL, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < npaths && rc == 0; i++)
        rc = copy_in(&st, paths[i], base_name(paths[i]), err);
    if (rc == 0)
        rc = images_stage_commit(&st, lock_file, err);
    for (size_t i = 0; i < st.n; i++) {
        if (st.files[i].staged) { /* did not land: an import leaves nothing to resume */
            char part[IMAGES_NAME_MAX + 8];
            images_stage_part(st.files[i].name, part);
            unlinkat(st.dir_fd, part, 0);
        }
        out[i] = st.files[i];
    }
    images_stage_close(&st);
    return rc;
}
