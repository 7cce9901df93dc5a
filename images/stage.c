/* Staging: files enter the cache as ".<name>.part" in their image directory, are
 * checked against images.lock, and land by rename. The image directory's ".lock" is
 * held (flock) meanwhile, so two pulls of one image, in one process or two, never
 * download it twice: the second waits and then finds the files in place. */
#include "images.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_POLL_MS 50

void images_stage_part(const char *name, char *out)
{
    snprintf(out, IMAGES_NAME_MAX + 8, ".%s.part", name);
}

static int open_dir(int parent, const char *name, const char *what, struct bd_err *err)
{
    if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
        return bd_err_set(err, "%s: cannot create directory: %s", what, strerror(errno));
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return bd_err_set(err, "%s: %s", what, strerror(errno));
    return fd;
}

/* flock that gives up when *cancel turns true; waiting() is told once. */
static int lock_wait(int fd, const atomic_bool *cancel, void (*waiting)(void *), void *ud)
{
    bool told = false;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (cancel && atomic_load(cancel)) {
            errno = ECANCELED;
            return -1;
        }
        if (!told && waiting)
            waiting(ud);
        told = true;
        nanosleep(&(struct timespec){.tv_nsec = WAIT_POLL_MS * 1000000L}, NULL);
    }
    return 0;
}

int images_stage_open(struct images_stage *st, int cache_fd, const char *schematic,
                      const char *version, const atomic_bool *cancel,
                      void (*waiting)(void *ud), void *ud, struct bd_err *err)
{
    memset(st, 0, sizeof *st);
    st->cache_fd = cache_fd;
    st->dir_fd = st->lock_fd = -1;
    if (!images_component_ok(schematic) || !images_component_ok(version))
        return bd_err_set(err, "invalid image \"%s/%s\"", schematic, version);
    snprintf(st->dir, sizeof st->dir, "%s/%s", schematic, version);
    int top = open_dir(cache_fd, schematic, schematic, err);
    if (top < 0)
        return -1;
    st->dir_fd = open_dir(top, version, st->dir, err);
    close(top);
    if (st->dir_fd < 0)
        return -1;
    st->lock_fd = openat(st->dir_fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (st->lock_fd < 0 || lock_wait(st->lock_fd, cancel, waiting, ud) < 0) {
        bd_err_set(err, "%s/.lock: %s", st->dir,
                   errno == ECANCELED ? "cancelled while another download of this image ran"
                                      : strerror(errno));
        images_stage_close(st);
        return -1;
    }
    return 0;
}

struct images_stage_file *images_stage_add(struct images_stage *st, const char *name,
                                           const char *sha256, uint64_t size, bool staged)
{
    struct images_stage_file *f = &st->files[st->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    memcpy(f->sha256, sha256, 65);
    f->size = size;
    f->staged = staged;
    return f;
}

/* Under the cache-wide lock: refuse mismatches, record new hashes. */
static int check_and_record(struct images_stage *st, const char *lock_file, struct bd_err *err)
{
    struct images_lock lock;
    if (images_lock_read(lock_file, &lock, err) < 0)
        return -1;
    int rc = 0;
    bool changed = false;
    for (size_t i = 0; i < st->n && rc == 0; i++) {
        struct images_stage_file *f = &st->files[i];
        char path[256];
        snprintf(path, sizeof path, "%s/%s", st->dir, f->name);
        const char *pinned = images_lock_find(&lock, path);
        if (pinned && strcmp(pinned, f->sha256)) {
            rc = bd_err_set(err,
                            "%s: sha256 %s does not match %s pinned in %s; refused, the "
                            "cached files are unchanged",
                            path, f->sha256, pinned, lock_file);
            if (f->staged) {
                char part[IMAGES_NAME_MAX + 8];
                images_stage_part(f->name, part);
                unlinkat(st->dir_fd, part, 0); /* wrong bytes: nothing to resume */
            }
        } else if (!pinned) {
            images_lock_set(&lock, path, f->sha256);
            f->recorded = changed = true;
        }
    }
    if (rc == 0 && changed)
        rc = images_lock_write(lock_file, &lock, err);
    images_lock_free(&lock);
    return rc;
}

int images_stage_commit(struct images_stage *st, const char *lock_file, struct bd_err *err)
{
    int root = openat(st->cache_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 || flock(root, LOCK_EX) < 0) {
        if (root >= 0)
            close(root);
        return bd_err_set(err, "image cache: cannot lock: %s", strerror(errno));
    }
    int rc = check_and_record(st, lock_file, err);
    for (size_t i = 0; i < st->n && rc == 0; i++) {
        struct images_stage_file *f = &st->files[i];
        if (!f->staged)
            continue;
        char part[IMAGES_NAME_MAX + 8];
        images_stage_part(f->name, part);
        if (renameat(st->dir_fd, part, st->dir_fd, f->name) < 0)
            rc = bd_err_set(err, "%s/%s: cannot move into place: %s", st->dir, f->name,
                            strerror(errno));
        else
            f->staged = false;
    }
    if (rc == 0 && fsync(st->dir_fd) < 0)
        rc = bd_err_set(err, "%s: fsync: %s", st->dir, strerror(errno));
    close(root); /* releases the cache-wide lock */
    return rc;
}

void images_stage_close(struct images_stage *st)
{
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the image lock */
    if (st->dir_fd >= 0)
        close(st->dir_fd);
    st->lock_fd = st->dir_fd = -1;
}
