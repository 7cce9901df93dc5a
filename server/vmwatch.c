/* The lab's Proxmox VMs as bootd sees them: each VM's power state in the machines API
 * and on its machine's timeline, and the VM behind a MAC bootd does not know. A worker
 * reads the cluster's inventory every proxmox.poll; a failure is logged once and kept
 * for the next round. */
#include "server.h"

#include "../proxmox/proxmox.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct server_vmwatch {
    struct bd_worker worker;
    struct server *s;
    /* under worker.mu */
    struct proxmox_vm_info *vms;
    size_t n;
    bool have;       /* a first inventory arrived: later differences are changes */
    char *last_error; /* logged once until it changes */
};

static const struct proxmox_vm_info *by_vmid(const struct proxmox_vm_info *v, size_t n, int vmid)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].vmid == vmid)
            return &v[i];
    return NULL;
}

/* A change of power state goes on the timeline of every MAC the VM has. */
static void note_changes(struct server_vmwatch *w, const struct lab *lab,
                         const struct proxmox_vm_info *now, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct proxmox_vm_info *was = by_vmid(w->vms, w->n, now[i].vmid);
        if (was && !strcmp(was->status, now[i].status))
            continue;
        if (!was && !w->have)
            continue;
        char msg[200];
        snprintf(msg, sizeof msg, "VM %d (%s) on %s: %s -> %s", now[i].vmid, now[i].name,
                 now[i].node, was ? was->status : "new", now[i].status);
        for (size_t k = 0; k < now[i].nmacs; k++) {
            /* only machines bootd knows get a timeline; other VMs on the host do not */
            char mac[18];
            struct state_machine sm;
            struct bd_err err;
            bd_mac_format(&now[i].macs[k], mac);
            if (lab_machine_by_mac(lab, &now[i].macs[k]) ||
                state_machine_get(w->s->store, mac, &sm, &err) == 1)
                state_event_note(w->s->store, mac, "proxmox", "power", msg);
        }
    }
}

static int64_t poll_once(struct server_vmwatch *w)
{
    struct lab_snap *snap = server_lab(w->s);
    const struct lab *lab = snap->lab;
    int64_t every = lab->proxmox.set ? lab->proxmox.poll_s : 0;
    if (every <= 0) {
        server_lab_put(w->s, snap);
        return -1;
    }
    struct proxmox_lab pl;
    struct proxmox *px = NULL;
    struct proxmox_vm_info *vms = NULL;
    size_t n = 0;
    struct bd_err err;
    int rc = proxmox_lab_load(lab, &pl, &err);
    pl.cfg.cancel = &w->worker.cancel;
    if (rc == 0) {
        rc = proxmox_open(&pl.cfg, &px, &err);
        if (rc == 0)
            rc = proxmox_inventory(px, &vms, &n, &err);
        proxmox_close(px);
        proxmox_lab_free(&pl);
    }
    pthread_mutex_lock(&w->worker.mu);
    if (rc == 0) {
        note_changes(w, lab, vms, n);
        proxmox_inventory_free(w->vms, w->n);
        w->vms = vms;
        w->n = n;
        w->have = true;
        free(w->last_error);
        w->last_error = NULL;
    } else if (!w->last_error || strcmp(w->last_error, err.msg)) {
        bd_warn("proxmox: VM power states not read: %s", err.msg);
        free(w->last_error);
        w->last_error = bd_xstrdup(err.msg);
    }
    pthread_mutex_unlock(&w->worker.mu);
    server_lab_put(w->s, snap);
    return every * 1000;
}

static void *watch_main(void *arg)
{
    struct server_vmwatch *w = arg;
    pthread_mutex_lock(&w->worker.mu);
    while (!w->worker.stop) {
        w->worker.wake = false;
        pthread_mutex_unlock(&w->worker.mu);
        int64_t next = poll_once(w);
        pthread_mutex_lock(&w->worker.mu);
        /* no proxmox section (or poll: 0): sleep until a reload wakes the worker */
        bd_worker_wait(&w->worker, next < 0 ? -1 : bd_mono_ms() + next);
    }
    pthread_mutex_unlock(&w->worker.mu);
    return NULL;
}

int server_vmwatch_start(struct server *s, struct bd_err *err)
{
    struct server_vmwatch *w = bd_xcalloc(1, sizeof *w);
    w->s = s;
    bd_worker_init(&w->worker);
    if (bd_worker_start(&w->worker, watch_main, w, "proxmox", err) < 0) {
        bd_worker_clear(&w->worker);
        free(w);
        return -1;
    }
    s->vmwatch = w;
    return 0;
}

void server_vmwatch_wake(struct server *s)
{
    if (s->vmwatch)
        bd_worker_wake(&s->vmwatch->worker);
}

void server_vmwatch_stop(struct server *s)
{
    struct server_vmwatch *w = s->vmwatch;
    if (!w)
        return;
    bd_worker_stop(&w->worker);
    bd_worker_clear(&w->worker);
    proxmox_inventory_free(w->vms, w->n);
    free(w->last_error);
    free(w);
    s->vmwatch = NULL;
}

void server_vmwatch_json(struct server *s, cJSON *o, const char *mac)
{
    struct server_vmwatch *w = s->vmwatch;
    struct bd_mac m;
    if (!w || bd_mac_parse(mac, &m) < 0)
        return;
    pthread_mutex_lock(&w->worker.mu);
    const struct proxmox_vm_info *vm = proxmox_inventory_by_mac(w->vms, w->n, &m);
    if (vm) {
        cJSON *v = cJSON_AddObjectToObject(o, "vm");
        cJSON_AddNumberToObject(v, "vmid", vm->vmid);
        cJSON_AddStringToObject(v, "name", vm->name);
        cJSON_AddStringToObject(v, "node", vm->node);
        cJSON_AddStringToObject(v, "power", vm->status);
    }
    pthread_mutex_unlock(&w->worker.mu);
}
