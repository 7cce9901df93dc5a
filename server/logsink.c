/* The kernel-log sink: Talos streams kernel and [talos] log lines as JSON, one per
 * line, to talos.logging.kernel=tcp://HOST:PORT/. A connection's lines belong to the
 * machine that the connecting address proves to be (claim.c: its reservation, or its
 * link-layer address), are kept in a bounded ring per machine, and move a lab machine
 * whose config was served to installing. Anyone on the LAN can connect, so everything is
 * capped: connections per address and in all (the longest idle one makes room), idle
 * time, and rings (one per lab machine, a few for others, least recently written out
 * first). One thread, epoll over the listener and its clients. */
#include "server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_LINES 500
#define LINE_MAX_LEN 1024
#define MAX_CLIENTS 1024
#define MAX_PER_ADDR 4   /* Talos keeps one stream; a reconnect may overlap the old one */
#define IDLE_MS (10 * 60 * 1000)
#define SWEEP_MS 10000
#define OTHER_RINGS 16   /* machines not in lab.yaml */

struct ring {
    char mac[18];
    bool in_lab;
    int64_t last_ms;
    size_t head, count;
    struct log_line lines[RING_LINES];
};

struct client {
    struct client *prev, *next;
    int fd;
    uint32_t addr;
    char mac[18]; /* "" until attributed */
    bool attributed, in_lab, installing;
    int64_t last_active_ms;
    int64_t last_state_check_ms;
    size_t len;
    char buf[LINE_MAX_LEN + 1];
};

struct logsink {
    struct server *s;
    int listen_fd, epoll_fd, stop_fd;
    pthread_t thread;
    pthread_mutex_t mu; /* guards rings */
    struct ring **rings;
    size_t nrings;
    struct client *clients; /* only the sink thread touches the list */
    size_t nclients;
    int64_t swept_ms;
    atomic_ullong total; /* lines ever kept: the status page's watch looks at it */
};

static void ring_free(struct ring *r)
{
    for (size_t k = 0; k < RING_LINES; k++)
        free(r->lines[k].msg);
    free(r);
}

/* A ring for a machine outside lab.yaml replaces the least recently written of theirs
 * once there are OTHER_RINGS. */
static struct ring *ring_for(struct logsink *ls, const char *mac, bool in_lab)
{
    size_t others = 0, oldest = SIZE_MAX;
    for (size_t i = 0; i < ls->nrings; i++) {
        struct ring *r = ls->rings[i];
        if (!strcmp(r->mac, mac)) {
            r->in_lab = r->in_lab || in_lab;
            return r;
        }
        if (!r->in_lab) {
            others++;
            if (oldest == SIZE_MAX || r->last_ms < ls->rings[oldest]->last_ms)
                oldest = i;
        }
    }
    if (!in_lab && others >= OTHER_RINGS) {
        ring_free(ls->rings[oldest]);
        ls->rings[oldest] = ls->rings[--ls->nrings];
    }
    ls->rings = bd_xrealloc(ls->rings, (ls->nrings + 1) * sizeof *ls->rings);
    struct ring *r = bd_xcalloc(1, sizeof *r);
    snprintf(r->mac, sizeof r->mac, "%s", mac);
    r->in_lab = in_lab;
    ls->rings[ls->nrings++] = r;
    return r;
}

static void ring_push(struct logsink *ls, const char *mac, bool in_lab, const char *msg)
{
    atomic_fetch_add(&ls->total, 1);
    pthread_mutex_lock(&ls->mu);
    struct ring *r = ring_for(ls, mac, in_lab);
    r->last_ms = bd_now_ms();
    struct log_line *slot = &r->lines[(r->head + r->count) % RING_LINES];
    if (r->count == RING_LINES) {
        slot = &r->lines[r->head];
        r->head = (r->head + 1) % RING_LINES;
    } else {
        r->count++;
    }
    free(slot->msg);
    slot->msg = bd_xstrdup(msg);
    slot->ts_ms = bd_now_ms();
    pthread_mutex_unlock(&ls->mu);
}

int server_logsink_lines(struct server *s, const char *mac, struct log_line **out, size_t *n)
{
    struct logsink *ls = s->logsink;
    *out = NULL;
    *n = 0;
    if (!ls)
        return 0;
    pthread_mutex_lock(&ls->mu);
    for (size_t i = 0; i < ls->nrings; i++) {
        struct ring *r = ls->rings[i];
        if (strcmp(r->mac, mac))
            continue;
        *out = bd_xcalloc(r->count + 1, sizeof **out);
        for (size_t k = 0; k < r->count; k++) {
            const struct log_line *l = &r->lines[(r->head + k) % RING_LINES];
            (*out)[k].ts_ms = l->ts_ms;
            (*out)[k].msg = bd_xstrdup(l->msg);
        }
        *n = r->count;
    }
    pthread_mutex_unlock(&ls->mu);
    return 0;
}

void server_log_lines_free(struct log_line *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].msg);
    free(v);
}

/* Which machine addr proves to be, by the rules a boot request follows (claim.c). With
 * lan.routed nothing can be proved: where bootd last saw a machine is all there is. */
static const struct lab_machine *machine_at(const struct lab *lab, uint32_t addr,
                                            struct bd_mac *seen, bool *have_seen)
{
    char why[256];
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        if (lab->lan.dhcp == LAB_DHCP_FULL && m->has_ip && m->ip == addr)
            return m;
    }
    *have_seen = !lab->lan.routed && server_neigh_lookup(addr, lab->lan.interface, seen);
    if (*have_seen) {
        const struct lab_machine *m = lab_machine_by_mac(lab, seen);
        return m && server_claim_ok(lab, m, addr, why, sizeof why) ? m : NULL;
    }
    return NULL;
}

static bool attribute(struct logsink *ls, struct client *c)
{
    char ip[16];
    bd_ipv4_format(c->addr, ip);
    struct lab_snap *snap = server_lab(ls->s);
    struct bd_mac seen;
    bool have_seen = false;
    const struct lab_machine *m = machine_at(snap->lab, c->addr, &seen, &have_seen);
    bool routed = snap->lab->lan.routed;
    if (m) {
        bd_mac_format(&m->mac, c->mac);
        c->in_lab = true;
    } else if (have_seen) {
        bd_mac_format(&seen, c->mac);
    }
    server_lab_put(ls->s, snap);
    if (!c->mac[0] && routed) {
        struct state_machine sm;
        struct bd_err err;
        if (state_machine_by_ip(ls->s->store, ip, &sm, &err) == 1) {
            snprintf(c->mac, sizeof c->mac, "%s", sm.mac);
            c->in_lab = true;
        }
    }
    if (!c->mac[0]) {
        unsigned more;
        if (server_refusal_log_now(ls->s->refusals, "logsink unknown", &more))
            bd_warn("logs: kernel log from %s matches no machine; its lines are dropped"
                    " (%u more like it since the last report)", ip, more);
    }
    c->attributed = true;
    if (c->in_lab)
        server_bootwatch_kernel(ls->s, c->mac);
    return c->mac[0] != 0;
}

/* Once a machine has its config, its log stream means Talos is running from it. */
static void maybe_installing(struct logsink *ls, struct client *c, const char *msg)
{
    int64_t now = bd_now_ms();
    if (c->installing || now - c->last_state_check_ms < 1000)
        return;
    c->last_state_check_ms = now;
    if (!c->in_lab)
        return;
    struct state_machine sm;
    struct bd_err err;
    if (state_machine_get(ls->s->store, c->mac, &sm, &err) != 1)
        return;
    if (sm.state >= STATE_INSTALLING) {
        c->installing = true;
    } else if (sm.state == STATE_CONFIG_SERVED) {
        char event[300];
        snprintf(event, sizeof event, "kernel log: %.250s", msg);
        if (state_machine_set_state(ls->s->store, c->mac, STATE_INSTALLING, "log", event, &err) >= 0)
            c->installing = true;
    }
}

static void handle_line(struct logsink *ls, struct client *c, char *line)
{
    if (!*line)
        return;
    if (!c->attributed && !attribute(ls, c))
        return;
    if (!c->mac[0])
        return;
    char *text = server_log_message(line);
    ring_push(ls, c->mac, c->in_lab, text);
    maybe_installing(ls, c, text);
    free(text);
}

static void close_client(struct logsink *ls, struct client *c)
{
    epoll_ctl(ls->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        ls->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ls->nclients--;
    free(c);
}

struct line_to {
    struct logsink *ls;
    struct client *c;
};

static void on_line(void *ud, char *line)
{
    struct line_to *t = ud;
    handle_line(t->ls, t->c, line);
}

static void read_client(struct logsink *ls, struct client *c)
{
    ssize_t n = read(c->fd, c->buf + c->len, LINE_MAX_LEN - c->len);
    c->last_active_ms = bd_mono_ms();
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        c->buf[c->len] = 0;
        handle_line(ls, c, c->buf); /* a last line without its newline */
        close_client(ls, c);
        return;
    }
    struct line_to line_to = {ls, c};
    c->len = server_log_split(c->buf, c->len + (size_t)n, LINE_MAX_LEN, on_line, &line_to);
}

/* false: addr has its share of connections. Otherwise, when all are taken, the longest
 * idle connection goes: idle connections cannot lock machines out. */
static bool make_room(struct logsink *ls, uint32_t addr)
{
    size_t same = 0;
    struct client *idlest = NULL;
    for (struct client *c = ls->clients; c; c = c->next) {
        same += c->addr == addr;
        if (!idlest || c->last_active_ms < idlest->last_active_ms)
            idlest = c;
    }
    if (same >= MAX_PER_ADDR)
        return false;
    if (ls->nclients >= MAX_CLIENTS && idlest)
        close_client(ls, idlest);
    return true;
}

static void close_idle(struct logsink *ls)
{
    int64_t now = bd_mono_ms();
    for (struct client *c = ls->clients, *next; c; c = next) {
        next = c->next;
        if (now - c->last_active_ms > IDLE_MS)
            close_client(ls, c);
    }
}

static void accept_clients(struct logsink *ls)
{
    for (;;) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(ls->listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uint32_t addr = ntohl(sa.sin_addr.s_addr);
        if (!make_room(ls, addr)) {
            close(fd);
            continue;
        }
        struct client *c = bd_xcalloc(1, sizeof *c);
        c->fd = fd;
        c->addr = addr;
        c->last_active_ms = bd_mono_ms();
        c->next = ls->clients;
        if (c->next)
            c->next->prev = c;
        ls->clients = c;
        ls->nclients++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(ls->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void *run(void *arg)
{
    struct logsink *ls = arg;
    for (;;) {
        struct epoll_event evs[32];
        int n = epoll_wait(ls->epoll_fd, evs, 32, SWEEP_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (bd_mono_ms() - ls->swept_ms >= SWEEP_MS) {
            ls->swept_ms = bd_mono_ms();
            close_idle(ls);
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &ls->stop_fd)
                return NULL;
            if (evs[i].data.ptr == &ls->listen_fd)
                accept_clients(ls);
            else
                read_client(ls, evs[i].data.ptr);
        }
    }
    return NULL;
}

int server_logsink_start(struct server *s, const char *listen_addr, int port, struct bd_err *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, listen_addr ? listen_addr : "0.0.0.0", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return bd_err_set(err, "lan.log_port: cannot listen on port %d: %s", port, strerror(e));
    }
    struct logsink *ls = bd_xcalloc(1, sizeof *ls);
    ls->s = s;
    ls->listen_fd = fd;
    ls->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    ls->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_mutex_init(&ls->mu, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ls->listen_fd};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &ls->stop_fd};
    const char *failed = NULL;
    if (ls->epoll_fd < 0)
        failed = "epoll_create1";
    else if (ls->stop_fd < 0)
        failed = "eventfd";
    else if (epoll_ctl(ls->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ||
             epoll_ctl(ls->epoll_fd, EPOLL_CTL_ADD, ls->stop_fd, &sev) < 0)
        failed = "epoll_ctl";
    else if ((errno = pthread_create(&ls->thread, NULL, run, ls)) != 0)
        failed = "pthread_create";
    if (failed) {
        int e = errno;
        close(fd);
        if (ls->epoll_fd >= 0)
            close(ls->epoll_fd);
        if (ls->stop_fd >= 0)
            close(ls->stop_fd);
        pthread_mutex_destroy(&ls->mu);
        free(ls);
        return bd_err_set(err, "logs: cannot start the kernel-log sink: %s: %s", failed,
                          strerror(e));
    }
    s->logsink = ls;
    bd_info("logs: kernel-log sink listening on port %d", port);
    return 0;
}

void server_logsink_stop(struct server *s)
{
    struct logsink *ls = s->logsink;
    if (!ls)
        return;
    uint64_t one = 1;
    if (write(ls->stop_fd, &one, sizeof one) != sizeof one)
        bd_error("logs: cannot stop the sink thread");
    pthread_join(ls->thread, NULL);
    while (ls->clients)
        close_client(ls, ls->clients);
    close(ls->listen_fd);
    close(ls->epoll_fd);
    close(ls->stop_fd);
    for (size_t i = 0; i < ls->nrings; i++)
        ring_free(ls->rings[i]);
    free(ls->rings);
    pthread_mutex_destroy(&ls->mu);
    free(ls);
    s->logsink = NULL;
}

uint64_t server_logsink_total(struct server *s)
{
    return s->logsink ? atomic_load(&s->logsink->total) : 0;
}
