/* Bringing bootd up and down: state, admin token, asset store, lab, HTTP. */
#include "server.h"

#include "../cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The admin token is made on first start so that a local bootctl works out of the box;
 * an existing file must be private. */
static int load_admin_token(struct server *s, const char *path, struct bd_err *err)
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
        bd_info("admin: created admin token in %s", path);
    }
    if (bd_file_check_private(path, err) < 0)
        return -1;
    char *text;
    if (bd_file_read(path, &text, NULL, err) < 0)
        return -1;
    size_t n = strcspn(text, "\r\n");
    text[n] = 0;
    if (n < 16) {
        free(text);
        return bd_err_set(err, "%s: admin token is shorter than 16 characters", path);
    }
    s->admin_token = text;
    return 0;
}

int server_start(struct server *s, const struct server_opts *o, struct bd_err *err)
{
    memset(s, 0, sizeof *s);
    s->opts = *o;
    s->assets_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->install_mu, NULL);
    if (state_open(o->state_dir, &s->store, err) < 0)
        return -1;
    s->admin_token_file = o->admin_token_file ? bd_xstrdup(o->admin_token_file)
                                              : bd_path_join(o->state_dir, "admin.token");
    if (load_admin_token(s, s->admin_token_file, err) < 0)
        return -1;
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
    if (server_bootq_start(s, err) < 0 || server_http_start(s, err) < 0)
        return -1;
    if (l->lan.log_port && server_logsink_start(s, o->listen_addr, l->lan.log_port, err) < 0)
        return -1;
    if (server_cluster_start(s, err) < 0)
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
    cluster_free(s->cluster);
    s->cluster = NULL;
    server_services_stop(s);
    server_logsink_stop(s);
    /* the queue before HTTP: it resumes every suspended request, which MHD needs */
    server_bootq_stop(s);
    server_http_stop(s);
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
    free(s->admin_token_file);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->install_mu);
}
