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

int bd_file_atomic_begin(struct bd_file_atomic *f, const char *path, mode_t mode,
                         struct bd_err *err)
{
    f->path = bd_xstrdup(path);
    /* A dot-name would be nicer, but the temp must sit in the same directory to make
     * rename atomic; readers of machines.d only take *.yaml, so *.tmp-* is ignored. */
    f->tmp = bd_xasprintf("%s.tmp-XXXXXX", path);
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        bd_err_set(err, "%s: cannot create temporary file: %s", path, strerror(e));
        free(f->path);
        f->path = NULL;
        return -1;
    }
    if (fchmod(f->fd, mode) < 0) {
        bd_err_set(err, "%s: chmod: %s", f->tmp, strerror(errno));
        bd_file_atomic_abort(f);
        return -1;
    }
    return 0;
}

int bd_file_atomic_write(struct bd_file_atomic *f, const void *data, size_t len,
                         struct bd_err *err)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return bd_err_set(err, "%s: write: %s", f->path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void bd_file_atomic_abort(struct bd_file_atomic *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    f->tmp = f->path = NULL;
}

int bd_file_atomic_commit(struct bd_file_atomic *f, struct bd_err *err)
{
    if (fsync(f->fd) < 0) {
        bd_err_set(err, "%s: fsync: %s", f->path, strerror(errno));
        bd_file_atomic_abort(f);
        return -1;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) < 0) {
        bd_err_set(err, "%s: close: %s", f->path, strerror(errno));
        bd_file_atomic_abort(f);
        return -1;
    }
    if (rename(f->tmp, f->path) < 0) {
        bd_err_set(err, "%s: rename: %s", f->path, strerror(errno));
        bd_file_atomic_abort(f);
        return -1;
    }
    int rc = 0;
    if (fsync_dir(f->path) < 0) /* the new file is in place; only its durability is in doubt */
        rc = bd_err_set(err, "%s: fsync of directory: %s", f->path, strerror(errno));
    free(f->tmp);
    free(f->path);
    f->tmp = f->path = NULL;
    return rc;
}

int bd_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct bd_err *err)
{
    struct bd_file_atomic f;
    if (bd_file_atomic_begin(&f, path, mode, err) < 0)
        return -1;
    if (bd_file_atomic_write(&f, data, len, err) < 0) {
        bd_file_atomic_abort(&f);
        return -1;
    }
    return bd_file_atomic_commit(&f, err);
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
