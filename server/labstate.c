/* The lab bootd serves: snapshots, reloads, and keeping state.db's machine names and
 * assignments in line with lab.yaml. */
#include "server.h"

#include "../cluster/cluster.h"

#include "../images/images.h"
#include "../talos/talos.h"

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
    server_uki_snap_init(snap);
    return snap;
}

/* Drops a reference under s->mu; the last one hands the snapshot back to be freed once
 * the lock is released: freeing a 10,000-machine lab takes long enough to hold up every
 * request waiting for the lock. */
static struct lab_snap *snap_release_locked(struct lab_snap *snap)
{
    return --snap->refs == 0 ? snap : NULL;
}

static void snap_free(struct server *s, struct lab_snap *snap)
{
    if (!snap)
        return;
    for (size_t i = 0; i < snap->lab->nmachines * SCRIPT_KINDS; i++)
        if (snap->scripts[i]) {
            free(snap->scripts[i]->head);
            free(snap->scripts[i]->tail);
            free(snap->scripts[i]);
        }
    free(snap->scripts);
    server_uki_snap_free(snap);
    if (snap->lab_owner) {
        server_lab_put(s, snap->lab_owner);
    } else {
        talos_cluster_free(snap->talos);
        if (snap->creds)
            talos_creds_free(snap->creds);
        free(snap->creds);
        free(snap->creds_error);
        free(snap->cluster_id);
        if (snap->kube)
            talos_kube_admin_free(snap->kube);
        free(snap->kube);
        free(snap->kube_error);
        lab_free(snap->lab);
    }
    free(snap->base_url);
    free(snap);
}

static void snap_check_images(struct server *s, struct lab_snap *snap)
{
    static const char *const arch[] = {"amd64", "arm64"};
    for (int i = 0; i < 2; i++)
        snap->image_ready[i] = images_cached(s->assets_fd, snap->schematic,
                                             snap->lab->cluster.talos_version, arch[i]);
}

struct lab_snap *server_lab(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    struct lab_snap *snap = s->snap;
    snap->refs++;
    pthread_mutex_unlock(&s->mu);
    return snap;
}

void server_lab_hold(struct server *s, struct lab_snap *snap)
{
    pthread_mutex_lock(&s->mu);
    snap->refs++;
    pthread_mutex_unlock(&s->mu);
}

void server_lab_put(struct server *s, struct lab_snap *snap)
{
    pthread_mutex_lock(&s->mu);
    struct lab_snap *gone = snap_release_locked(snap);
    pthread_mutex_unlock(&s->mu);
    snap_free(s, gone);
}

static int sync_store(struct server *s, const struct lab *lab, struct bd_err *err)
{
    struct state_lab_entry *e = bd_xcalloc(lab->nmachines + 1, sizeof *e);
    for (size_t i = 0; i < lab->nmachines; i++) {
        bd_mac_format(&lab->machines[i].mac, e[i].mac);
        e[i].name = lab->machines[i].name;
        e[i].role = lab_role_name(lab->machines[i].role);
    }
    int rc = state_lab_sync(s->store, e, lab->nmachines, err);
    free(e);
    return rc;
}

/* bootd's credentials for the lab's Talos and Kubernetes APIs; a lab without them is
 * still served, its status saying why bootstrap cannot run. */
static void mint_creds(struct lab_snap *snap)
{
    const char *why;
    const struct talos_secrets *sec = talos_cluster_secrets(snap->talos, &why);
    if (!sec) {
        snap->creds_error = bd_xasprintf(
            "bootd needs the cluster's secrets bundle to make its Talos API client "
            "certificate, and has none: %s",
            why ? why : "?");
        snap->kube_error = bd_xstrdup(snap->creds_error);
        return;
    }
    snap->cluster_id = bd_xstrdup(talos_secrets_cluster_id(sec));
    struct bd_err err;
    snap->kube = bd_xcalloc(1, sizeof *snap->kube);
    if (talos_kube_admin(snap->lab, sec, snap->kube, &err) < 0) {
        free(snap->kube);
        snap->kube = NULL;
        snap->kube_error = bd_xstrdup(err.msg);
    }
    snap->creds = bd_xcalloc(1, sizeof *snap->creds);
    if (talos_api_creds(snap->lab, sec, snap->creds, &err) < 0) {
        free(snap->creds);
        snap->creds = NULL;
        snap->creds_error = bd_xstrdup(err.msg);
        bd_warn("talos: %s", err.msg);
    }
}

static int install_locked(struct server *s, struct lab *lab, struct bd_err *err)
{
    if (s->snap && lab->lan.http_port != s->snap->lab->lan.http_port)
        bd_warn("lab: lan.http_port changed to %d; bootd keeps listening on %d until restarted",
                lab->lan.http_port, s->port);
    if (s->snap && lab->lan.log_port != s->snap->lab->lan.log_port)
        bd_warn("lab: lan.log_port changed to %d; the kernel-log sink moves when bootd restarts",
                lab->lan.log_port);
    char schematic[65];
    bool conf_changed = false, hosts_changed = false;
    /* dnsmasq's files are checked and written only once bootd is up (server_start
     * does it for the first lab) */
    bool running = s->daemon != NULL;
    struct talos_cluster *talos = NULL;
    if (images_schematic_id(lab, schematic, err) < 0 ||
        talos_cluster_new(lab, schematic, &talos, err) < 0 ||
        (running && server_services_prepare(s, lab, &conf_changed, &hosts_changed, err) < 0) ||
        sync_store(s, lab, err) < 0) {
        talos_cluster_free(talos);
        lab_free(lab);
        return -1;
    }
    struct lab_snap *snap = snap_new(lab);
    snap->talos = talos;
    mint_creds(snap);
    memcpy(snap->schematic, schematic, sizeof schematic);
    snap_check_images(s, snap);
    pthread_mutex_lock(&s->mu);
    struct lab_snap *old = s->snap;
    s->snap = snap;
    s->reload_error[0] = 0;
    s->reload_at_ms = bd_now_ms();
    struct lab_snap *gone = old ? snap_release_locked(old) : NULL;
    pthread_mutex_unlock(&s->mu);
    snap_free(s, gone);
    atomic_fetch_add(&s->metrics.reloads_ok, 1);
    if (running)
        server_services_apply(s, lab, conf_changed, hosts_changed);
    server_gitops_lab(s, lab);
    if (s->cluster) {
        cluster_kick(s->cluster);
        cluster_day2_auto(s->cluster);
    }
    server_vmwatch_wake(s);
    bd_info("lab: serving %s: cluster %s, %zu machines", lab->path, lab->cluster.name,
            lab->nmachines);
    if (lab->lan.routed)
        bd_warn("lab: lan.routed: true: bootd cannot tell which machine is asking, so any host"
                " in lan.subnet can fetch the config of a machine without a reservation"
                " (docs/security.md)");
    return 0;
}

int server_install_lab(struct server *s, struct lab *lab, struct bd_err *err)
{
    pthread_mutex_lock(&s->install_mu);
    int rc = install_locked(s, lab, err);
    pthread_mutex_unlock(&s->install_mu);
    return rc;
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

void server_refresh(struct server *s)
{
    struct lab_snap *old = server_lab(s);
    struct lab_snap *snap = snap_new(old->lab);
    memcpy(snap->schematic, old->schematic, sizeof snap->schematic);
    snap->talos = old->talos; /* borrowed with the lab, as are the Talos API credentials */
    snap->creds = old->creds;
    snap->creds_error = old->creds_error;
    snap->cluster_id = old->cluster_id;
    snap->kube = old->kube;
    snap->kube_error = old->kube_error;
    snap_check_images(s, snap);
    pthread_mutex_lock(&s->mu);
    struct lab_snap *gone = NULL;
    if (s->snap == old) {
        /* the new snapshot borrows the lab from the one that owns it */
        snap->lab_owner = old->lab_owner ? old->lab_owner : old;
        snap->lab_owner->refs++;
        s->snap = snap;
        snap_release_locked(old); /* the reference below keeps it */
        snap = NULL;
    }
    gone = snap_release_locked(old); /* the reference taken above */
    pthread_mutex_unlock(&s->mu);
    if (snap) { /* a reload replaced the lab meanwhile; its snapshot is fresh already */
        free(snap->scripts);
        server_uki_snap_free(snap);
        free(snap->base_url);
        free(snap);
    }
    snap_free(s, gone);
    bd_info("images: cache changed; boot scripts are rendered again");
}
