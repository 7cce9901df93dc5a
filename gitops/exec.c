/* Running an external tool (kustomize, kubectl, helm): stdin from /dev/null, stdout
 * collected, the start of stderr kept for the error, a deadline after which the whole
 * process group is killed (kustomize runs helm, helm runs plugins). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Drains the two pipes until both close or the deadline passes; false on timeout. */
static bool collect(int outfd, int errfd, struct bd_buf *out, struct bd_buf *errb, int64_t deadline)
{
    struct pollfd p[2] = {{.fd = outfd, .events = POLLIN}, {.fd = errfd, .events = POLLIN}};
    struct bd_buf *dst[2] = {out, errb};
    int open_fds = 2;
    char buf[65536];
    while (open_fds) {
        int64_t left = deadline - bd_mono_ms();
        if (left <= 0)
            return false;
        int r = poll(p, 2, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno != EINTR)
            return false;
        for (int i = 0; i < 2 && r > 0; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n > 0) {
                if (i == 0 || dst[i]->len < 16384) /* stderr: the start says enough */
                    bd_buf_append(dst[i], buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    return true;
}

/* environ plus extra ("NAME=value" entries override the same names); caller frees the
 * array, not the strings. */
static char **merged_env(char *const extra[])
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (extra && extra[k])
        k++;
    char **env = bd_xcalloc(n + k + 1, sizeof *env);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < k && !replaced; j++) {
            size_t len = strcspn(extra[j], "=");
            replaced = !strncmp(environ[i], extra[j], len) && environ[i][len] == '=';
        }
        if (!replaced)
            env[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        env[m++] = extra[j];
    return env;
}

char *gitops_find_program(const char *name)
{
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        char *cand = bd_xasprintf("%.*s/%s", (int)n, p, name);
        if (n && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

int gitops_exec(char *const argv[], char *const extra_env[], int64_t timeout_s, struct bd_buf *out,
                struct bd_err *err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return bd_err_set(err, "pipe: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return bd_err_set(err, "pipe: %s", strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0); /* its own group, so a timeout kills helpers too */
    char **env = merged_env(extra_env);
    pid_t pid;
    int src = posix_spawnp(&pid, argv[0], &fa, &at, argv, env);
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    struct bd_buf errb;
    bd_buf_init(&errb);
    int rc = 0;
    if (src != 0) {
        rc = bd_err_set(err, "cannot run %s: %s", argv[0], strerror(src));
    } else {
        bool done = collect(po[0], pe[0], out, &errb, bd_mono_ms() + timeout_s * 1000);
        if (!done)
            kill(-pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        size_t n = errb.len;
        while (n && (errb.data[n - 1] == '\n' || errb.data[n - 1] == ' '))
            errb.data[--n] = 0;
        if (!done)
            rc = bd_err_set(err, "%s %s timed out after %llds", argv[0], argv[1] ? argv[1] : "",
                            (long long)timeout_s);
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = bd_err_set(err, "%s %s failed (exit %d): %s", argv[0], argv[1] ? argv[1] : "",
                            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                            errb.len ? errb.data : "no message");
    }
    close(po[0]);
    close(pe[0]);
    bd_buf_free(&errb);
    return rc;
}
