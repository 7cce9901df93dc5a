/* The state dir belongs to one bootd, and only to it: it holds state.db (config tokens'
 * digests, events), the admin token and dnsmasq's files. A second bootd on the same dir
 * would interleave writes with the first, so an exclusive lock is taken for the life of
 * the process; group or world access is taken away at start (or bootd refuses, saying
 * what to run, when it cannot). */
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* An atomic write that was killed leaves name.tmp-XXXXXX behind (bd_file_write_atomic). */
static bool stale_tmp(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    return t && strlen(t) == 11;
}

static int make_private(const char *path, const struct stat *st, mode_t want, struct bd_err *err)
{
    if (!(st->st_mode & 077))
        return 0;
    if (st->st_uid != geteuid() || chmod(path, want) < 0)
        return bd_err_set(err,
                          "%s is readable by others (mode %04o) and bootd cannot change that;"
                          " run: chmod %s %s",
                          path, (unsigned)(st->st_mode & 07777),
                          S_ISDIR(st->st_mode) ? "700" : "600", path);
    bd_warn("state: %s was mode %04o; made private", path, (unsigned)(st->st_mode & 07777));
    return 0;
}

/* The dir and every regular file directly in it: private. Subdirectories (the image cache,
 * which machines download from anyway) keep their modes. */
static int privatise(const char *dir, struct bd_err *err)
{
    struct stat st;
    if (lstat(dir, &st) < 0)
        return bd_err_set(err, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return bd_err_set(err, "%s: not a directory", dir);
    if (make_private(dir, &st, 0700, err) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return bd_err_set(err, "%s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        char *p = bd_path_join(dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (stale_tmp(e->d_name)) {
                if (unlink(p) == 0)
                    bd_info("state: removed %s, left by an interrupted write", p);
            } else {
                rc = make_private(p, &st, 0600, err);
            }
        }
        free(p);
    }
    closedir(d);
    return rc;
}

int server_state_dir_claim(const char *dir, int *lock_fd, struct bd_err *err)
{
    *lock_fd = -1;
    if (bd_mkdir_p(dir, 0700, err) < 0)
        return -1;
    char *path = bd_path_join(dir, "bootd.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        bd_err_set(err, "%s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        bd_err_set(err, "state dir %s is in use by another bootd (pid %s); one bootd per state dir",
                   dir, pid[0] ? pid : "unknown");
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        bd_warn("state: cannot write the pid into bootd.lock");
    if (privatise(dir, err) < 0) {
        close(fd);
        return -1;
    }
    *lock_fd = fd;
    return 0;
}
