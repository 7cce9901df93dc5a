/* The lab bootd serves: snapshots, reloads, and keeping state.db's machine names and
 * assignments in line with lab.yaml. */
#include "server.h"

#include "../images/images.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct lab_snap *snap_new(struct lab *lab)
{
    struct lab_snap *snap = bd_xcalloc(1, sizeof *snap);
    snap->lab = lab;
    char ip[16];
    bd_ipv4_format(lab->lan.boot_server, ip);
    snap->base_url = bd_xasprintf("http://%s:%d", ip, lab->lan.http_port);
    snap->refs = 1;
    snap->scripts = bd_xcalloc(lab->nmachines * SCRIPT_KINDS + 1, sizeof *snap->scripts);
    return snap;
}

static void snap_unref_locked(struct lab_snap *snap)
{
    if (--snap->refs == 0) {
        for (size_t i = 0; i < snap->lab->nmachines * SCRIPT_KINDS; i++)
            if (snap->scripts[i]) {
                free(snap->scripts[i]->head);
                free(snap->scripts[i]->tail);
                free(snap->scripts[i]);
            }
        free(snap->scripts);
        lab_free(snap->lab);
        free(snap->base_url);
        free(snap);
    }
}

struct lab_snap *server_lab(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    struct lab_snap *snap = s->snap;
    snap->refs++;
    pthread_mutex_unlock(&s->mu);
    return snap;
}

void server_lab_put(struct server *s, struct lab_snap *snap)
{
    pthread_mutex_lock(&s->mu);
    snap_unref_locked(snap);
    pthread_mutex_unlock(&s->mu);
}

static int sync_store(struct server *s, const struct lab *lab, struct bd_err *err)
{
    struct store_lab_entry *e = bd_xcalloc(lab->nmachines + 1, sizeof *e);
    for (size_t i = 0; i < lab->nmachines; i++) {
        bd_mac_format(&lab->machines[i].mac, e[i].mac);
        e[i].name = lab->machines[i].name;
        e[i].role = lab_role_name(lab->machines[i].role);
    }
    int rc = store_lab_sync(s->store, e, lab->nmachines, err);
    free(e);
    return rc;
}

int server_install_lab(struct server *s, struct lab *lab, struct bd_err *err)
{
    if (s->snap && lab->lan.http_port != s->snap->lab->lan.http_port)
        bd_warn("lab: lan.http_port changed to %d; bootd keeps listening on %d until restarted",
                lab->lan.http_port, s->port);
    char schematic[65];
    if (images_schematic_id(lab, schematic, err) < 0 || sync_store(s, lab, err) < 0) {
        lab_free(lab);
        return -1;
    }
    struct lab_snap *snap = snap_new(lab);
    memcpy(snap->schematic, schematic, sizeof schematic);
    pthread_mutex_lock(&s->mu);
    struct lab_snap *old = s->snap;
    s->snap = snap;
    s->reload_error[0] = 0;
    s->reload_at_ms = bd_now_ms();
    if (old)
        snap_unref_locked(old);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->metrics.reloads_ok, 1);
    server_gitops_lab(s, lab);
    bd_info("lab: serving %s: cluster %s, %zu machines", lab->path, lab->cluster.name,
            lab->nmachines);
    return 0;
}

int server_reload(struct server *s, struct bd_err *err)
{
    struct lab *lab;
    if (lab_load(s->opts.lab_path, NULL, NULL, &lab, err) < 0 ||
        server_install_lab(s, lab, err) < 0) {
        pthread_mutex_lock(&s->mu);
        snprintf(s->reload_error, sizeof s->reload_error, "%s", err->msg);
        s->reload_at_ms = bd_now_ms();
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&s->metrics.reloads_failed, 1);
        bd_error("lab: reload failed, still serving the previous lab: %s", err->msg);
        return -1;
    }
    return 0;
}
