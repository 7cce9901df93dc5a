/* The HTTP front: libmicrohttpd with a thread pool of epoll loops, request contexts,
 * routing and response helpers. */
#include "server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (64 * 1024)
#define PER_ADDR_LIMIT 64u
#define CONNECTION_LIMIT 4096u

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req *r = bd_xcalloc(1, sizeof *r);
    r->start_us = bd_mono_us();
    r->raw_uri = bd_xstrdup(uri);
    r->raw_at = uri;
    r->route = R_OTHER;
    bd_buf_init(&r->body);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    server_http_deadline_mark(s->deadline, c, CONN_WAITING);
    if (r->status)
        server_metrics_observe(&s->metrics, r->route, r->status, ok ? r->bytes : 0,
                        (uint64_t)(bd_mono_us() - r->start_us));
    if (ok && r->config_token[0])
        server_route_config_completed(s, r);
    if (ok && r->uki_token[0])
        server_bootwatch_sent(s, r->uki_mac, r->uki_token);
    if (r->route == R_API)
        server_status_watch_forget(s, c, r->watch_answered);
    server_boot_job_free(s, r->job);
    free(r->reload);
    bd_buf_free(&r->body);
    free(r->raw_uri);
    free(r);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    bd_warn("http: %s", msg);
}

uint32_t server_client_ipv4(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    if (ci->client_addr->sa_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)ci->client_addr)->sin_addr.s_addr);
    return 0;
}

enum MHD_Result server_reply(struct MHD_Connection *c, struct req *r, unsigned status,
                      struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    r->status = status;
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result server_reply_text(struct MHD_Connection *c, struct req *r, unsigned status,
                           const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->bytes = len;
    return server_reply(c, r, status, resp);
}

enum MHD_Result server_reply_json(struct MHD_Connection *c, struct req *r, unsigned status,
                           struct cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    /* A large answer (a JSON object per machine) came from a large short-lived tree;
     * give that memory back now instead of keeping it in malloc's arenas. */
    if (n > 64 * 1024)
        malloc_trim(0);
    text = bd_xrealloc(text, n + 2);
    text[n++] = '\n';
    text[n] = 0;
    /* handed to MHD without a copy: machine lists can be large */
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->bytes = n;
    return server_reply(c, r, status, resp);
}

enum MHD_Result server_reply_error_json(struct MHD_Connection *c, struct req *r, unsigned status,
                                 const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    return server_reply_json(c, r, status, j);
}

static enum MHD_Result plain(struct MHD_Connection *c, struct req *r, unsigned status,
                             const char *msg)
{
    return server_reply_text(c, r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* A raw NUL in the request line cuts the target short, and MHD hands on what is left:
 * "/healthz\0/../x" reads as "/healthz". MHD 0.9.75 splits the line in place, the target
 * from after the method up to the last space before the version, so the target's true
 * length is the distance from where it starts to the version. */
static bool target_has_nul(const struct req *r, const char *version)
{
    if (!version || version <= r->raw_at || version - r->raw_at > 65536)
        return false; /* not the layout described above: nothing to compare */
    return strlen(r->raw_uri) + 1 < (size_t)(version - r->raw_at);
}

static struct MHD_Daemon *connection_daemon(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
    return ci ? ci->daemon : NULL;
}

/* A client on this host: loopback, or the very address it connected to. */
static bool from_this_host(struct MHD_Connection *c)
{
    uint32_t from = server_client_ipv4(c);
    if (from >> 24 == 127)
        return true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_in local;
    socklen_t len = sizeof local;
    if (!ci || getsockname(ci->connect_fd, (struct sockaddr *)&local, &len) < 0 ||
        local.sin_family != AF_INET)
        return false;
    return ntohl(local.sin_addr.s_addr) == from;
}

static bool is_get(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}

/* The status page's files (its data comes from /api/v1). */
static bool is_ui_path(const char *url)
{
    return !strcmp(url, "/") || !strcmp(url, "/index.html") || !strncmp(url, "/ui/", 4);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct server *s = cls;
    struct req *r = *con_cls;
    if (!r)
        return MHD_NO;
    /* The first call only announces the request: libmicrohttpd 0.9.75 closes the
     * connection after a response queued that early, losing keep-alive. Bodies (admin
     * API POSTs) then arrive in pieces; answer once all of it is here. */
    if (!r->started) {
        r->started = true;
        server_http_deadline_mark(s->deadline, c, CONN_BODY);
        if (target_has_nul(r, version))
            return plain(c, r, MHD_HTTP_BAD_REQUEST, "NUL in the request target\n");
        /* Decided before any body is read: a body from someone without the token is never
         * buffered (the 401 closes the connection, which is all such a client deserves). */
        r->api = !strncmp(url, "/api/v1/", 8) || !strcmp(url, "/api/v1");
        bool on_tls = s->admin_daemon && connection_daemon(c) == s->admin_daemon;
        if (on_tls && !r->api && strcmp(url, "/healthz") && !is_ui_path(url))
            return plain(c, r, MHD_HTTP_NOT_FOUND,
                         "this port serves /api/v1 and the status page only\n");
        /* the admin API in clear text is for this host only (bootctl on it, dnsmasq's
         * lease hook), unless the admin said otherwise: the token must not cross the LAN */
        if (!on_tls && r->api && !s->opts.admin_plain_lan && !from_this_host(c)) {
            r->route = R_API;
            if (s->admin_daemon)
                return server_reply_error_json(c, r, MHD_HTTP_FORBIDDEN,
                                        "the admin API is on https, port %d (bootctl: "
                                        "BOOTD_URL=https://HOST:%d)",
                                        s->opts.admin_port, s->opts.admin_port);
            return server_reply_error_json(c, r, MHD_HTTP_FORBIDDEN,
                                    "the admin API is served in clear text to this host only;"
                                    " start bootd with --admin-port N for TLS (or"
                                    " --admin-plain-lan)");
        }
        enum api_scope scope = r->api ? server_api_scope_of(s, c) : SCOPE_NONE;
        if (r->api && !server_api_scope_allows(scope, url + 7, method)) {
            r->route = R_API;
            return server_api_refuse(c, r, scope);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        /* only the admin API takes bodies; others are dropped unread */
        if (r->api && r->body.len + *upload_size > MAX_BODY)
            r->body_too_large = true;
        else if (r->api)
            bd_buf_append(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    server_http_deadline_mark(s->deadline, c, CONN_ANSWERING);
    if (r->body_too_large)
        return plain(c, r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
    if (!server_raw_uri_ok(r->raw_uri))
        return plain(c, r, MHD_HTTP_BAD_REQUEST, "encoded NUL, slash or backslash in URL\n");

    if (!strcmp(url, "/boot.ipxe")) {
        r->route = R_BOOT;
        return is_get(method) ? server_route_boot_chain(s, c, r)
                              : plain(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
    }
    if (!strcmp(url, "/ipxe")) {
        r->route = R_IPXE;
        return is_get(method) ? server_route_ipxe(s, c, r)
                              : plain(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
    }
    if (!strncmp(url, "/assets/", 8)) {
        r->route = R_ASSETS;
        return is_get(method) ? server_route_assets(s, c, r, url + 8, method)
                              : plain(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or HEAD\n");
    }
    if (!strncmp(url, "/uki/", 5)) {
        r->route = R_ASSETS;
        return is_get(method) ? server_route_uki(s, c, r, url + 5, method)
                              : plain(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or HEAD\n");
    }
    if (!strncmp(url, "/config/", 8)) {
        r->route = R_CONFIG;
        return !strcmp(method, "GET") ? server_route_config(s, c, r, url + 8)
                                      : plain(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
    }
    if (!strcmp(url, "/healthz")) {
        r->route = R_HEALTHZ;
        return plain(c, r, MHD_HTTP_OK, "ok\n");
    }
    if (!strcmp(url, "/metrics")) {
        r->route = R_METRICS;
        return is_get(method) ? server_route_metrics(s, c, r)
                              : plain(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
    }
    if (!strncmp(url, "/api/v1/", 8) || !strcmp(url, "/api/v1")) {
        r->route = R_API;
        return server_route_api(s, c, r, url + 7, method);
    }
    if (is_ui_path(url))
        return server_route_ui(s, c, r, url, method);
    return plain(c, r, MHD_HTTP_NOT_FOUND, "not found\n");
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    server_http_deadline_notify(s->deadline, c, socket_context, code);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        server_http_acceptor_closed(s->acceptor, c);
}

/* A daemon: the admin API over TLS with its own listener (key set), or one of the plain
 * HTTP loops, which take their connections from the acceptor (http_accept.c). */
static struct MHD_Daemon *daemon_start(struct server *s, struct sockaddr_in *sa, const char *key,
                                       const char *cert, unsigned connection_limit)
{
    struct MHD_OptionItem tls[] = {
        {key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG |
            MHD_ALLOW_SUSPEND_RESUME |
            (key ? MHD_USE_TLS : MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC),
        key ? ntohs(sa->sin_port) : 0, NULL, NULL, on_request, s,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, key ? (struct sockaddr *)sa : NULL,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit,
        /* one host cannot take every connection; a PXE boot or bootctl needs one or two
         * (the acceptor keeps the plain loops' count, each of them sees only its share) */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, key ? PER_ADDR_LIMIT : 0u,
        /* small per-connection pools: requests here are one short line and a few headers,
         * and MHD clears the pool for every request */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(key ? 32768 : 8192),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
}

static int admin_tls_start(struct server *s, struct sockaddr_in sa, struct bd_err *err)
{
    char *cert, *key, ip[16];
    struct lab_snap *snap = server_lab(s);
    bd_ipv4_format(snap->lab->lan.boot_server, ip);
    server_lab_put(s, snap);
    int rc = s->opts.admin_tls_cert
                 ? server_admin_tls_user(s->opts.state_dir, s->opts.admin_tls_cert,
                                         s->opts.admin_tls_key, &cert, &key, s->admin_pin,
                                         sizeof s->admin_pin, err)
                 : server_admin_tls_material(s->opts.state_dir, ip, &cert, &key, s->admin_pin,
                                             sizeof s->admin_pin, err);
    if (rc < 0)
        return -1;
    sa.sin_port = htons((uint16_t)s->opts.admin_port);
    s->admin_daemon = daemon_start(s, &sa, key, cert, CONNECTION_LIMIT);
    free(cert);
    free(key);
    if (!s->admin_daemon)
        return bd_err_set(err, "--admin-port: cannot listen on port %d (in use, or not allowed)",
                          s->opts.admin_port);
    bd_info("admin: API over TLS on port %d; certificate pin %s (bootctl keeps it in admin.pin"
            " beside the token)",
            s->opts.admin_port, s->admin_pin);
    return 0;
}

int server_http_start(struct server *s, struct bd_err *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    const char *addr = s->opts.listen_addr ? s->opts.listen_addr : "0.0.0.0";
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return bd_err_set(err, "--listen: \"%s\" is not an IPv4 address", addr);
    unsigned threads = s->opts.threads ? s->opts.threads : cpu_count();
    s->deadline = server_http_deadline_start();
    if (!s->deadline)
        return bd_err_set(err, "http: cannot start the request deadline thread");
    /* the admin listener first: once the plain one answers, all of bootd is up */
    if ((s->opts.admin_tls_cert || s->opts.admin_tls_key) &&
        (!s->opts.admin_tls_cert || !s->opts.admin_tls_key || !s->opts.admin_port))
        return bd_err_set(err, "--admin-tls-cert and --admin-tls-key go together, with --admin-port");
    if (s->opts.admin_port && admin_tls_start(s, sa, err) < 0)
        return -1;
    if (s->opts.admin_plain_lan)
        bd_warn("admin: --admin-plain-lan: the admin API answers the LAN in clear text; its token,"
                " kubeconfigs and etcd snapshots can be read by anyone on the path");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t salen = sizeof sa;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        if (fd >= 0)
            close(fd);
        return bd_err_set(err, "cannot listen on %s:%d (in use, or not allowed)", addr, s->port);
    }
    s->port = ntohs(sa.sin_port);
    s->loops = bd_xcalloc(threads, sizeof *s->loops);
    unsigned per_loop = CONNECTION_LIMIT / threads;
    for (s->nloops = 0; s->nloops < threads; s->nloops++) {
        /* the acceptor keeps each loop at per_loop; MHD's own limit is never to be met
         * (http_accept.c says why), and a loop may still hold connections the acceptor
         * has already counted out */
        s->loops[s->nloops] = daemon_start(s, NULL, NULL, NULL, 2 * per_loop + 16);
        if (!s->loops[s->nloops]) {
            close(fd);
            return bd_err_set(err, "http: cannot start the HTTP threads");
        }
    }
    s->daemon = s->loops[0];
    if (server_http_acceptor_start(&s->acceptor, fd, s->loops, s->nloops, per_loop,
                                   PER_ADDR_LIMIT) < 0) {
        close(fd);
        return bd_err_set(err, "http: cannot start the accepting thread");
    }
    bd_info("http: listening on %s:%d with %u threads", addr, s->port, threads);
    return 0;
}

void server_http_stop(struct server *s)
{
    if (s->admin_daemon)
        MHD_stop_daemon(s->admin_daemon);
    s->admin_daemon = NULL;
    /* no new connections first, then the loops with theirs */
    server_http_acceptor_stop(s->acceptor);
    for (unsigned i = 0; i < s->nloops; i++)
        MHD_stop_daemon(s->loops[i]);
    server_http_acceptor_free(s->acceptor);
    s->acceptor = NULL;
    free(s->loops);
    s->loops = NULL;
    s->nloops = 0;
    s->daemon = NULL;
    server_http_deadline_stop(s->deadline);
    s->deadline = NULL;
}
