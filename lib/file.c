/* Whole-file reads and atomic writes. */
#include "bd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bd_file_read(const char *path, char **out, size_t *len, struct bd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bd_err_set(err, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return bd_err_set(err, "%s: not a regular file", path);
    }
    struct bd_buf b;
    bd_buf_init(&b);
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            bd_buf_free(&b);
            return bd_err_set(err, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        bd_buf_append(&b, chunk, (size_t)r);
    }
    close(fd);
    if (len)
        *len = b.len;
    *out = bd_buf_steal(&b);
    return 0;
}

static int fsync_dir(const char *path)
{
    char *dir = bd_path_dir(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int bd_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct bd_err *err)
{
    char *tmp = bd_xasprintf("%s.tmp-XXXXXX", path);
    /* A dot-name would be nicer, but the temp must sit in the same directory to make
     * rename atomic; readers of machines.d only take *.yaml, so *.tmp-* is ignored. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return bd_err_set(err, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    int rc = -1;
    if (fchmod(fd, mode) < 0) {
        bd_err_set(err, "%s: chmod: %s", tmp, strerror(errno));
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            bd_err_set(err, "%s: write: %s", path, strerror(errno));
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) < 0) {
        bd_err_set(err, "%s: fsync: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        bd_err_set(err, "%s: close: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        bd_err_set(err, "%s: rename: %s", path, strerror(errno));
        goto out;
    }
    if (fsync_dir(path) < 0) {
        bd_err_set(err, "%s: fsync of directory: %s", path, strerror(errno));
        free(tmp);
        return -1; /* the new file is in place; only its durability is in doubt */
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int bd_file_check_private(const char *path, struct bd_err *err)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return bd_err_set(err, "%s: %s", path, strerror(errno));
    if (sb.st_mode & 077)
        return bd_err_set(err, "%s: readable by group or others (mode %04o); run: chmod 600 %s",
                          path, (unsigned)(sb.st_mode & 07777), path);
    return 0;
}

int bd_mkdir_p(const char *path, mode_t mode, struct bd_err *err)
{
    char *p = bd_xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            bd_err_set(err, "%s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        rc = bd_err_set(err, "%s: %s", p, strerror(errno));
    free(p);
    return rc;
}

char *bd_path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0)
        return bd_xstrdup(rel);
    return bd_xasprintf("%s/%s", dir, rel);
}

char *bd_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return bd_xstrdup(".");
    if (slash == path)
        return bd_xstrdup("/");
    return bd_xstrndup(path, (size_t)(slash - path));
}
