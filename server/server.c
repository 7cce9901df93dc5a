/* Bringing bootd up and down: state, admin token, asset store, lab, HTTP. */
#include "server.h"

#include "../cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 32 characters, not a repeated few: 128 bits when they are hex digits. */
static bool token_strong(const char *t)
{
    bool seen[256] = {false};
    size_t distinct = 0, n = strlen(t);
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (!seen[*p]) {
            seen[*p] = true;
            distinct++;
        }
    return n >= 32 && distinct >= 8;
}

/* Tokens are made on first start so that a local bootctl works out of the box; an
 * existing file must be private. what: "admin" or "viewer". */
static int load_token(const char *path, const char *what, char **out, struct bd_err *err)
{
    if (access(path, F_OK) < 0) {
        uint8_t raw[32];
        char hex[65];
        if (bd_random(raw, sizeof raw, err) < 0)
            return -1;
        bd_hex(raw, sizeof raw, hex);
        hex[64] = '\n';
        if (bd_file_write_atomic(path, hex, 65, 0600, err) < 0)
            return -1;
        bd_info("admin: created %s token in %s", what, path);
    }
    if (bd_file_check_private(path, err) < 0)
        return -1;
    char *text;
    if (bd_file_read(path, &text, NULL, err) < 0)
        return -1;
    size_t n = strcspn(text, "\r\n");
    text[n] = 0;
    if (!token_strong(text)) {
        free(text);
        return bd_err_set(err,
                          "%s: %s token too weak: at least 32 characters, 8 of them different"
                          " (remove the file and bootd makes one)",
                          path, what);
    }
    *out = text;
    return 0;
}

int server_start(struct server *s, const struct server_opts *o, struct bd_err *err)
{
    memset(s, 0, sizeof *s);
    s->opts = *o;
    s->assets_fd = -1;
    s->state_lock_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->install_mu, NULL);
    s->refusals = server_refusals_new();
    s->discover = server_discover_limit_new();
    if (!s->opts.discovered_max)
        s->opts.discovered_max = 4096;
    if (server_state_dir_claim(o->state_dir, &s->state_lock_fd, err) < 0)
        return -1;
    if (state_open(o->state_dir, &s->store, err) < 0)
        return -1;
    state_set_event_retention(s->store, o->events_max, o->events_max_age_s);
    s->admin_token_file = o->admin_token_file ? bd_xstrdup(o->admin_token_file)
                                              : bd_path_join(o->state_dir, "admin.token");
    if (load_token(s->admin_token_file, "admin", &s->admin_token, err) < 0)
        return -1;
    /* read-only (status page, dashboards): beside the admin token unless told otherwise */
    char *viewer = o->viewer_token_file ? bd_xstrdup(o->viewer_token_file)
                                        : bd_path_join(o->state_dir, "viewer.token");
    int vrc = load_token(viewer, "viewer", &s->viewer_token, err);
    free(viewer);
    if (vrc < 0)
        return -1;
    if (!strcmp(s->viewer_token, s->admin_token))
        return bd_err_set(err, "the viewer token is the admin token; make them differ");
    char *assets = o->assets_dir ? bd_xstrdup(o->assets_dir) : bd_path_join(o->state_dir, "images");
    if (bd_mkdir_p(assets, 0755, err) == 0) {
        s->assets_fd = open(assets, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->assets_fd < 0)
            bd_err_set(err, "%s: %s", assets, strerror(errno));
    }
    free(assets);
    if (s->assets_fd < 0)
        return -1;
    struct lab *lab;
    if (lab_load(o->lab_path, NULL, NULL, &lab, err) < 0 || server_install_lab(s, lab, err) < 0)
        return -1;
    const struct lab *l = s->snap->lab;
    s->port = o->port >= 0 ? o->port : l->lan.http_port;
    if (o->port >= 0 && o->port != l->lan.http_port)
        bd_warn("http: listening on port %d, but every URL handed to machines says "
                "lan.http_port %d: machines reach bootd only if something forwards %d to %d",
                o->port, l->lan.http_port, l->lan.http_port, o->port);
    if (server_bootq_start(s, err) < 0 || server_reloader_start(s, err) < 0 ||
        server_status_watch_start(s, err) < 0)
        return -1;
    if (l->lan.log_port && server_logsink_start(s, o->listen_addr, l->lan.log_port, err) < 0)
        return -1;
    /* HTTP after what its routes read (/api/v1/status asks the reconciler) */
    if (server_cluster_start(s, err) < 0 || server_vmwatch_start(s, err) < 0 ||
        server_bootwatch_start(s,
                               o->boot_window_ms > 0 ? o->boot_window_ms
                                                     : SERVER_BOOT_WINDOW_S * 1000,
                               err) < 0 ||
        server_http_start(s, err) < 0)
        return -1;
    /* dnsmasq last: its lease hook needs the port bootd really listens on */
    bool conf_changed, hosts_changed;
    if (server_services_prepare(s, l, &conf_changed, &hosts_changed, err) < 0)
        return -1;
    server_services_apply(s, l, conf_changed, hosts_changed);
    return 0;
}

void server_stop(struct server *s)
{
    /* first: its thread reads what the others own, and MHD needs its pages resumed */
    server_status_watch_stop(s);
    server_vmwatch_stop(s);
    server_services_stop(s);
    server_logsink_stop(s);
    /* the queue before HTTP: it resumes every suspended request, which MHD needs */
    server_bootq_stop(s);
    server_reloader_stop(s);
    server_http_stop(s);
    server_bootwatch_stop(s); /* after HTTP: its routes tell it what they see */
    /* after HTTP: a request may still ask the reconciler for its status until then */
    cluster_free(s->cluster);
    s->cluster = NULL;
    server_status_watch_free(s);
    server_image_pulls_stop(s);
    server_gitops_stop(s);
    if (s->snap)
        server_lab_put(s, s->snap);
    s->snap = NULL;
    state_close(s->store);
    s->store = NULL;
    if (s->assets_fd >= 0)
        close(s->assets_fd);
    free(s->admin_token);
    free(s->viewer_token);
    free(s->admin_token_file);
    server_refusals_free(s->refusals);
    server_discover_limit_free(s->discover);
    if (s->state_lock_fd >= 0)
        close(s->state_lock_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->install_mu);
}
