/* A request's head (request line and headers) must arrive within HEAD_DEADLINE_MS of the
 * connection opening or of the previous response: libmicrohttpd 0.9.75 only times out
 * idle connections, so a client sending a byte every few seconds would hold its
 * connection for ever, and enough of them (from many addresses) would hold them all. A
 * thread shuts such connections down; MHD then closes them as it would any broken one.
 *
 * The same holds for a body trickled in, or an answer read a few bytes at a time (a
 * kernel of 70 MB at 1 byte a second): while the client is what the transfer waits on
 * (a body still arriving, or the answer's bytes queued in the socket), it must move at
 * least MIN_RATE bytes a second over each RATE_WINDOW_MS, or it is shut down. The
 * kernel counts the bytes (TCP_INFO): nothing is added to the data path. Firmware on the
 * slowest LAN moves megabytes a second; waiting on bootd itself (a boot script held
 * until the image is cached, a status watch) is never counted against the client. */
#include "server.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define HEAD_DEADLINE_MS 10000
#define SWEEP_MS 1000
#define MIN_RATE 4096 /* bytes a second */
#define RATE_WINDOW_MS 10000

struct watched {
    struct watched *prev, *next;
    int fd;
    enum server_conn_phase phase;
    int64_t waiting_since_ms; /* when the phase began */
    int64_t window_ms;        /* the rate window's start, 0 when none runs */
    uint64_t window_bytes;    /* the byte count at its start */
    bool shut;
};

/* Is the client what this transfer waits on, and how many bytes has it moved? */
static bool client_bound(const struct watched *w, uint64_t *bytes)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(w->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return false;
    if (w->phase == CONN_BODY) {
        *bytes = ti.tcpi_bytes_received;
        return true;
    }
    int queued = 0;
    *bytes = ti.tcpi_bytes_acked;
    return ioctl(w->fd, SIOCOUTQ, &queued) == 0 && queued > 0;
}

/* MHD sees the connection fail and closes it as it would any broken one. */
static void cut(struct watched *w)
{
    shutdown(w->fd, SHUT_RDWR);
    w->shut = true;
}

static void check(struct watched *w, int64_t now)
{
    if (w->phase == CONN_WAITING) {
        if (now - w->waiting_since_ms > HEAD_DEADLINE_MS)
            cut(w);
        return;
    }
    uint64_t bytes = 0;
    if (!client_bound(w, &bytes) || !w->window_ms) {
        w->window_ms = now;
        w->window_bytes = bytes;
        return;
    }
    if (now - w->window_ms < RATE_WINDOW_MS)
        return;
    if ((bytes - w->window_bytes) * 1000 < (uint64_t)MIN_RATE * (uint64_t)(now - w->window_ms)) {
        cut(w);
        return;
    }
    w->window_ms = now;
    w->window_bytes = bytes;
}

struct http_deadline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop;
    struct watched *head;
};

static void *sweeper(void *arg)
{
    struct http_deadline *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SWEEP_MS / 1000;
        pthread_cond_timedwait(&d->cv, &d->mu, &until);
        int64_t now = bd_mono_ms();
        for (struct watched *w = d->head; w; w = w->next)
            if (!w->shut)
                check(w, now);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

struct http_deadline *server_http_deadline_start(void)
{
    struct http_deadline *d = bd_xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, sweeper, d) != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return NULL;
    }
    return d;
}

void server_http_deadline_stop(struct http_deadline *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    while (d->head) {
        struct watched *w = d->head;
        d->head = w->next;
        free(w);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* MHD_OPTION_NOTIFY_CONNECTION: a connection opens or closes (MHD closes its socket only
 * after this returns, so a watched fd is never another connection's). */
void server_http_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_deadline *d = cls;
    if (!d)
        return;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
            return;
        struct watched *w = bd_xcalloc(1, sizeof *w);
        w->fd = ci->connect_fd;
        w->waiting_since_ms = bd_mono_ms();
        pthread_mutex_lock(&d->mu);
        w->next = d->head;
        if (w->next)
            w->next->prev = w;
        d->head = w;
        pthread_mutex_unlock(&d->mu);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct watched *w = *socket_context;
        pthread_mutex_lock(&d->mu);
        if (w->prev)
            w->prev->next = w->next;
        else
            d->head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&d->mu);
        free(w);
        *socket_context = NULL;
    }
}

void server_http_deadline_mark(struct http_deadline *d, struct MHD_Connection *c,
                               enum server_conn_phase phase)
{
    if (!d)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watched *w = ci ? ci->socket_context : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&d->mu);
    if (w->phase != phase) {
        w->phase = phase;
        w->waiting_since_ms = bd_mono_ms();
        w->window_ms = 0;
    }
    pthread_mutex_unlock(&d->mu);
}
