/* The dnsmasq child: one supervisor thread starts it in the foreground, forwards its
 * log lines, restarts it with backoff when it dies, and passes on reload and restart
 * requests. dnsmasq gets SIGTERM if bootd itself dies (PR_SET_PDEATHSIG), so a
 * restarted bootd never finds an orphan holding the DHCP port. */
#include "netsvc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MAX_S 60
#define STABLE_S 30 /* running this long resets the backoff */

struct dnsmasq {
    char *binary, *conf;
    pthread_t thread;
    pthread_mutex_t mu; /* guards pid and status */
    int ctl[2];         /* commands to the supervisor: 'h' reload, 'r' restart, 'q' quit */
    pid_t pid;
    char status[512];
};

static void set_status(struct dnsmasq *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_status(struct dnsmasq *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&d->mu);
    vsnprintf(d->status, sizeof d->status, fmt, ap);
    pthread_mutex_unlock(&d->mu);
    va_end(ap);
}

static pid_t spawn(struct dnsmasq *d, int *out_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* bootd blocks HUP/TERM/INT in its threads */
        signal(SIGPIPE, SIG_DFL);
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        char conf_arg[4096];
        size_t n = strlen(d->conf);
        if (n + 13 >= sizeof conf_arg)
            _exit(127);
        memcpy(conf_arg, "--conf-file=", 12);
        memcpy(conf_arg + 12, d->conf, n + 1);
        execlp(d->binary, "dnsmasq", "--keep-in-foreground", "--log-facility=-", conf_arg,
               (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *out_fd = p[0];
    return pid;
}

/* Stops a process that is not our child: SIGTERM, then SIGKILL if it lingers. */
static void stop_child_any(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 50 && kill(pid, 0) == 0; i++)
        usleep(100000);
    kill(pid, SIGKILL);
}

/* Stops the child: SIGTERM, then SIGKILL if it lingers. Returns its wait status. */
static int stop_child(pid_t pid)
{
    int status = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

struct reader {
    char buf[4096];
    size_t len;
    char last[400]; /* dnsmasq's last line: the reason when it exits */
};

/* Forwards complete lines; false at end of file. */
static bool forward_lines(int fd, struct reader *r)
{
    ssize_t n = read(fd, r->buf + r->len, sizeof r->buf - r->len - 1);
    if (n <= 0)
        return n < 0 && errno == EINTR;
    r->len += (size_t)n;
    r->buf[r->len] = 0;
    char *start = r->buf, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        /* "dnsmasq-dhcp[123]: msg" is logged as "dnsmasq: dhcp: msg" */
        const char *line = start, *tag = "";
        if (!strncmp(line, "dnsmasq", 7)) {
            const char *bracket = strchr(line, '[');
            const char *colon = strstr(line, ": ");
            if (colon && bracket && bracket < colon) {
                tag = line[7] == '-' ? line + 8 : "";
                *(char *)bracket = 0;
                line = colon + 2;
            } else if (colon) {
                line = colon + 2;
            }
        }
        if (*line) {
            bd_info("dnsmasq: %s%s%s", tag, *tag ? ": " : "", line);
            snprintf(r->last, sizeof r->last, "%s", line);
        }
        start = nl + 1;
    }
    r->len = strlen(start);
    memmove(r->buf, start, r->len);
    if (r->len == sizeof r->buf - 1) /* a line longer than the buffer: flush it */
        r->len = 0;
    return true;
}

static void describe_exit(char *out, size_t n, int status)
{
    if (WIFEXITED(status))
        snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, n, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, n, "stopped");
}

static void *supervise(void *arg)
{
    struct dnsmasq *d = arg;
    int out = -1, failures = 0;
    int64_t next_start = 0, started = 0;
    pid_t pid = 0;
    struct reader r = {0};
    for (;;) {
        if (!pid && (bd_mono_ms() / 1000) >= next_start) {
            r.len = 0;
            r.last[0] = 0;
            pid = spawn(d, &out);
            if (pid < 0) {
                pid = 0;
                set_status(d, "cannot start %s: %s", d->binary, strerror(errno));
                bd_error("dnsmasq: cannot start %s: %s", d->binary, strerror(errno));
                next_start = (bd_mono_ms() / 1000) + BACKOFF_MAX_S;
            } else {
                started = (bd_mono_ms() / 1000);
                pthread_mutex_lock(&d->mu);
                d->pid = pid;
                snprintf(d->status, sizeof d->status, "running (pid %d)", (int)pid);
                pthread_mutex_unlock(&d->mu);
            }
        }
        struct pollfd pf[2] = {{.fd = d->ctl[0], .events = POLLIN}, {.fd = out, .events = POLLIN}};
        int timeout = -1; /* running: wait for output or a command */
        if (!pid) {       /* waiting out the backoff */
            int64_t wait = next_start - (bd_mono_ms() / 1000);
            timeout = wait > 0 ? (int)(wait * 1000) : 0;
        }
        if (poll(pf, pid ? 2 : 1, timeout) < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN) {
            char cmd = 'q';
            if (read(d->ctl[0], &cmd, 1) != 1)
                cmd = 'q';
            if (cmd == 'h' && pid) {
                kill(pid, SIGHUP);
            } else if (cmd == 'r' || cmd == 'q') {
                if (pid) {
                    stop_child(pid);
                    close(out);
                    pid = 0;
                    pthread_mutex_lock(&d->mu);
                    d->pid = 0;
                    pthread_mutex_unlock(&d->mu);
                }
                if (cmd == 'q')
                    break;
                failures = 0;
                next_start = 0;
                bd_info("dnsmasq: restarting for a new configuration");
            }
        }
        if (pid && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) && !forward_lines(out, &r)) {
            int status;
            waitpid(pid, &status, 0);
            close(out);
            pid = 0;
            failures = (bd_mono_ms() / 1000) - started >= STABLE_S ? 1 : failures + 1;
            int backoff = 1 << (failures < 6 ? failures : 6);
            if (backoff > BACKOFF_MAX_S)
                backoff = BACKOFF_MAX_S;
            next_start = (bd_mono_ms() / 1000) + backoff;
            char how[64];
            describe_exit(how, sizeof how, status);
            pthread_mutex_lock(&d->mu);
            d->pid = 0;
            snprintf(d->status, sizeof d->status, "%s%s%s; restarting in %d s", how,
                     r.last[0] ? ": " : "", r.last, backoff);
            bd_error("dnsmasq: %s", d->status);
            pthread_mutex_unlock(&d->mu);
        }
    }
    return NULL;
}

/* A dnsmasq left from a bootd that was killed holds the DHCP port; stop it if the pid
 * file names one that runs our config. */
static void stop_leftover(const char *pid_file, const char *conf)
{
    char *text;
    struct bd_err err;
    if (!pid_file || bd_file_read(pid_file, &text, NULL, &err) < 0)
        return;
    int pid = atoi(text);
    free(text);
    char path[64], cmdline[4096] = "";
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = pid > 1 ? fopen(path, "r") : NULL;
    if (!f)
        return;
    size_t n = fread(cmdline, 1, sizeof cmdline - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!cmdline[i])
            cmdline[i] = ' ';
    cmdline[n] = 0;
    if (strstr(cmdline, "dnsmasq") && strstr(cmdline, conf)) {
        bd_warn("dnsmasq: stopping pid %d, left running by an earlier bootd", pid);
        stop_child_any(pid);
    }
}

int netsvc_dnsmasq_start(const char *binary, const char *conf, const char *pid_file, struct dnsmasq **out,
                  struct bd_err *err)
{
    stop_leftover(pid_file, conf);
    struct dnsmasq *d = bd_xcalloc(1, sizeof *d);
    d->binary = bd_xstrdup(binary ? binary : "dnsmasq");
    d->conf = bd_xstrdup(conf);
    pthread_mutex_init(&d->mu, NULL);
    if (pipe2(d->ctl, O_CLOEXEC) < 0 || pthread_create(&d->thread, NULL, supervise, d) != 0) {
        bd_err_set(err, "cannot start the dnsmasq supervisor: %s", strerror(errno));
        free(d->binary);
        free(d->conf);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

static void command(struct dnsmasq *d, char c)
{
    if (d && write(d->ctl[1], &c, 1) != 1)
        bd_error("dnsmasq: cannot reach the supervisor: %s", strerror(errno));
}

void netsvc_dnsmasq_reload(struct dnsmasq *d)
{
    command(d, 'h');
}

void netsvc_dnsmasq_restart(struct dnsmasq *d)
{
    command(d, 'r');
}

void netsvc_dnsmasq_stop(struct dnsmasq *d)
{
    if (!d)
        return;
    command(d, 'q');
    pthread_join(d->thread, NULL);
    close(d->ctl[0]);
    close(d->ctl[1]);
    pthread_mutex_destroy(&d->mu);
    free(d->binary);
    free(d->conf);
    free(d);
}

void netsvc_dnsmasq_status(struct dnsmasq *d, char *buf, size_t n)
{
    pthread_mutex_lock(&d->mu);
    snprintf(buf, n, "%s", d->status[0] ? d->status : "starting");
    pthread_mutex_unlock(&d->mu);
}

int netsvc_dnsmasq_pid(struct dnsmasq *d)
{
    pthread_mutex_lock(&d->mu);
    int pid = d->pid;
    pthread_mutex_unlock(&d->mu);
    return pid;
}
