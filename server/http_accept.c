/* The acceptor: one listening socket, one thread accepting from it, and every new
 * connection handed to the HTTP loop (a single-threaded libmicrohttpd daemon) that holds
 * the fewest connections right now.
 *
 * Why not libmicrohttpd's own thread pool: in 0.9.75 every pool thread has the shared
 * listening socket in its epoll set and the one that wins the wake-up accepts up to ten
 * connections in a row. A boot storm arrives as such a burst, so one thread ends up with
 * most of the machines; a connection never moves, and once the lighter thread has sent
 * its few files it idles while the others wait their turn on the crowded one. That is
 * the tail. Counting here keeps the loops within one connection of each other.
 *
 * Each daemon only sees its share, so the per-address cap is kept here for all of them,
 * and so is the connection cap: a loop that is full is never handed a connection, as
 * libmicrohttpd 0.9.75 leaves a mutex locked when it refuses an added connection at
 * its limit (new_connection_process_), which stops that loop for good. When every loop
 * is full, new connections wait in the listen backlog, as they did with MHD's listener. */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct per_addr {
    uint32_t ip;
    unsigned n;
};

struct http_acceptor {
    int fd;
    pthread_t thread;
    atomic_bool stop;
    struct MHD_Daemon **loops;
    atomic_uint *open; /* connections per loop */
    unsigned nloops;
    unsigned per_addr_limit;
    unsigned per_loop_limit;
    pthread_mutex_t mu; /* guards addrs */
    struct per_addr *addrs;
    size_t naddrs, cap;
};

static struct per_addr *addr_find(struct http_acceptor *a, uint32_t ip)
{
    for (size_t i = 0; i < a->naddrs; i++)
        if (a->addrs[i].ip == ip)
            return &a->addrs[i];
    return NULL;
}

/* Counts a new connection from ip; false when that address is at its limit. */
static bool addr_take(struct http_acceptor *a, uint32_t ip)
{
    pthread_mutex_lock(&a->mu);
    struct per_addr *p = addr_find(a, ip);
    bool ok = !p || p->n < a->per_addr_limit;
    if (ok && p) {
        p->n++;
    } else if (ok) {
        if (a->naddrs == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 64;
            a->addrs = bd_xrealloc(a->addrs, a->cap * sizeof *a->addrs);
        }
        a->addrs[a->naddrs++] = (struct per_addr){.ip = ip, .n = 1};
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

static void addr_release(struct http_acceptor *a, uint32_t ip)
{
    pthread_mutex_lock(&a->mu);
    struct per_addr *p = addr_find(a, ip);
    if (p && --p->n == 0)
        *p = a->addrs[--a->naddrs];
    pthread_mutex_unlock(&a->mu);
}

static unsigned least_loaded(struct http_acceptor *a)
{
    unsigned best = 0;
    for (unsigned i = 1; i < a->nloops; i++)
        if (atomic_load(&a->open[i]) < atomic_load(&a->open[best]))
            best = i;
    return best;
}

static void *accept_loop(void *arg)
{
    struct http_acceptor *a = arg;
    while (!atomic_load(&a->stop)) {
        if (atomic_load(&a->open[least_loaded(a)]) >= a->per_loop_limit) {
            usleep(10 * 1000); /* full: until a connection closes */
            continue;
        }
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept4(a->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                continue;
            if (atomic_load(&a->stop))
                break;
            /* out of descriptors or memory: let connections close, then try again */
            bd_warn("http: accept: %s", strerror(errno));
            usleep(100 * 1000);
            continue;
        }
        uint32_t ip = ntohl(peer.sin_addr.s_addr);
        if (!addr_take(a, ip)) {
            close(fd); /* what libmicrohttpd's own limit does too */
            continue;
        }
        unsigned i = least_loaded(a);
        /* counted before MHD sees it, so the next accept already knows */
        atomic_fetch_add(&a->open[i], 1);
        if (MHD_add_connection(a->loops[i], fd, (struct sockaddr *)&peer, len) != MHD_YES) {
            /* MHD closed fd; its close notification never comes */
            atomic_fetch_sub(&a->open[i], 1);
            addr_release(a, ip);
        }
    }
    return NULL;
}

int server_http_acceptor_start(struct http_acceptor **slot, int listen_fd,
                               struct MHD_Daemon **loops, unsigned nloops,
                               unsigned per_loop_limit, unsigned per_addr_limit)
{
    struct http_acceptor *a = bd_xcalloc(1, sizeof *a);
    a->fd = listen_fd;
    a->loops = loops;
    a->nloops = nloops;
    a->open = bd_xcalloc(nloops, sizeof *a->open);
    a->per_addr_limit = per_addr_limit;
    a->per_loop_limit = per_loop_limit;
    pthread_mutex_init(&a->mu, NULL);
    /* in place before the first connection can close and be counted out */
    *slot = a;
    if (pthread_create(&a->thread, NULL, accept_loop, a) != 0) {
        *slot = NULL;
        pthread_mutex_destroy(&a->mu);
        free(a->open);
        free(a);
        return -1;
    }
    return 0;
}

void server_http_acceptor_closed(struct http_acceptor *a, struct MHD_Connection *c)
{
    if (!a)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
    for (unsigned i = 0; ci && i < a->nloops; i++)
        if (a->loops[i] == ci->daemon) { /* not the admin API's listener */
            atomic_fetch_sub(&a->open[i], 1);
            addr_release(a, server_client_ipv4(c));
        }
}

void server_http_acceptor_stop(struct http_acceptor *a)
{
    if (!a || a->fd < 0)
        return;
    atomic_store(&a->stop, true);
    shutdown(a->fd, SHUT_RDWR); /* wakes the blocked accept() */
    pthread_join(a->thread, NULL);
    close(a->fd);
    a->fd = -1;
}

/* After the loops have stopped: their close notifications come here until then. */
void server_http_acceptor_free(struct http_acceptor *a)
{
    if (!a)
        return;
    server_http_acceptor_stop(a);
    pthread_mutex_destroy(&a->mu);
    free(a->addrs);
    free(a->open);
    free(a);
}
