/* bootctl rebuild with a proxmox: section: the lab's VMs are made to network-boot again
 * through the Proxmox API before anything waits for them. Missing VMs are created and
 * started, stopped ones started, running ones reset. The rebuild record's phase is "vms"
 * until that is done, so a bootd restarted meanwhile does it (again) from state.db; a
 * Proxmox that does not answer is retried with a back-off, the error kept in the record
 * (bootctl rebuild shows it) and an event when it changes. */
#include "internal.h"

#include "../proxmox/proxmox.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMS_RETRY_MIN_MS 2000
#define VMS_RETRY_MAX_MS 60000

struct vms {
    struct proxmox_lab pl;
    struct proxmox *px;
    struct proxmox_plan plan;
    bool planned;
};

static void vms_close(struct vms *v)
{
    if (v->planned)
        proxmox_plan_free(&v->plan);
    proxmox_close(v->px);
    proxmox_lab_free(&v->pl);
}

static int vms_open(const struct lab *lab, const atomic_bool *cancel, struct vms *v,
                    struct bd_err *err)
{
    memset(v, 0, sizeof *v);
    if (proxmox_lab_load(lab, &v->pl, err) < 0)
        return -1;
    v->pl.cfg.cancel = cancel;
    if (proxmox_open(&v->pl.cfg, &v->px, err) < 0 ||
        proxmox_plan(v->px, v->pl.specs, v->pl.n, &v->plan, err) < 0)
        return bd_err_prefix(err, "Proxmox %s", lab->proxmox.api);
    v->planned = true;
    return 0;
}

/* What the rebuild does to a VM: create, start, reset, or change (then start). */
static const char *vm_action(const struct proxmox_plan_item *it)
{
    switch (it->action) {
    case PROXMOX_CREATE: return "create";
    case PROXMOX_CHANGE: return "change";
    case PROXMOX_OK: return it->status && !strcmp(it->status, "running") ? "reset" : "start";
    default: return NULL;
    }
}

int cluster_rebuild_vms_plan(const struct lab *lab, const atomic_bool *cancel, cJSON *plan,
                             struct bd_err *err)
{
    if (!lab->proxmox.set)
        return 0;
    struct vms v;
    int rc = vms_open(lab, cancel, &v, err);
    cJSON *a = rc == 0 ? cJSON_AddArrayToObject(plan, "vms") : NULL;
    for (size_t i = 0; rc == 0 && i < v.plan.n; i++) {
        const struct proxmox_plan_item *it = &v.plan.v[i];
        if (it->action == PROXMOX_CONFLICT)
            rc = bd_err_set(err, "VM %d (%s) on Proxmox: %s", it->vmid,
                            it->machine ? it->machine : "?", it->reason ? it->reason : "conflict");
        if (rc < 0 || !vm_action(it))
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "machine", it->machine);
        cJSON_AddNumberToObject(e, "vmid", it->vmid);
        cJSON_AddStringToObject(e, "action", vm_action(it));
        cJSON_AddItemToArray(a, e);
    }
    vms_close(&v);
    return rc;
}

/* A running VM is reset unless its machine has booted since the rebuild started (the
 * VM step is being redone after a restart: that boot is the one wanted). */
static bool booted_since(struct cluster *c, const struct lab *lab, const char *machine,
                         int64_t since_ms)
{
    const struct lab_machine *m = lab_machine_by_name(lab, machine);
    if (!m)
        return false;
    char mac[18];
    bd_mac_format(&m->mac, mac);
    struct state_machine sm;
    struct bd_err err;
    return state_machine_get(c->env.store, mac, &sm, &err) == 1 && sm.state >= STATE_BOOTING &&
           sm.state_since_ms >= since_ms;
}

struct report {
    char text[1024];
};

static void note(const struct proxmox_plan_item *it, const char *what, void *ud)
{
    struct report *r = ud;
    size_t len = strlen(r->text);
    snprintf(r->text + len, sizeof r->text - len, "%s%s %s (%d)", len ? ", " : "", what,
             it->machine ? it->machine : "?", it->vmid);
}

static int vms_do(struct cluster *c, const struct lab *lab, const struct state_rebuild *r,
                  struct report *rep, struct bd_err *err)
{
    struct vms v;
    int rc = vms_open(lab, &c->worker.cancel, &v, err);
    if (rc == 0)
        rc = proxmox_apply(v.px, &v.plan, v.pl.protected_ids, v.pl.nprotected, note, rep, err);
    for (size_t i = 0; rc == 0 && i < v.plan.n; i++) {
        const struct proxmox_plan_item *it = &v.plan.v[i];
        const char *act = vm_action(it);
        if (!act || strcmp(act, "reset") || booted_since(c, lab, it->machine, r->started_ms))
            continue;
        char what[160];
        snprintf(what, sizeof what, "VM %d (%s)", it->vmid, it->machine);
        rc = proxmox_power(v.px, it->node, it->vmid, what, "reset", err);
        if (rc == 0)
            note(it, "reset", rep);
    }
    if (rc < 0)
        bd_err_prefix(err, "Proxmox %s", lab->proxmox.api);
    vms_close(&v);
    return rc;
}

void cluster_rebuild_vms_step(struct cluster *c, const struct cluster_lab *l, int64_t *next)
{
    struct state_rebuild r;
    if (!cluster_rebuild_active(c, l->cluster_id, &r) || strcmp(r.phase, "vms"))
        return;
    int64_t now = c->env.now_ms(c->env.ud);
    if (now < c->vms_next_ms) {
        if (c->vms_next_ms < *next)
            *next = c->vms_next_ms;
        return;
    }
    struct report rep = {""};
    struct bd_err err;
    struct bd_err serr;
    if (vms_do(c, l->lab, &r, &rep, &err) == 0) {
        c->vms_backoff_ms = 0;
        c->vms_event[0] = '\0';
        if (state_rebuild_progress(c->env.store, l->cluster_id, "reinstall", NULL, NULL, &serr) < 0)
            bd_warn("rebuild: %s", serr.msg);
        char msg[1200];
        snprintf(msg, sizeof msg, "Proxmox VMs network-boot again: %s",
                 rep.text[0] ? rep.text : "nothing to do");
        cluster_event(c, "rebuild", NULL, "rebuild-vms", msg);
        return;
    }
    if (state_rebuild_progress(c->env.store, l->cluster_id, "vms", NULL, err.msg, &serr) < 0)
        bd_warn("rebuild: %s", serr.msg);
    /* done so far is done: what Proxmox did before it stopped answering stays */
    if (strcmp(c->vms_event, err.msg)) {
        snprintf(c->vms_event, sizeof c->vms_event, "%s", err.msg);
        char msg[1400];
        snprintf(msg, sizeof msg, "%s%s%s; retrying", rep.text[0] ? rep.text : "",
                 rep.text[0] ? "; then " : "", err.msg);
        cluster_event(c, "rebuild", NULL, "rebuild-vms-failed", msg);
    }
    c->vms_backoff_ms = c->vms_backoff_ms ? c->vms_backoff_ms * 2 : VMS_RETRY_MIN_MS;
    if (c->vms_backoff_ms > VMS_RETRY_MAX_MS)
        c->vms_backoff_ms = VMS_RETRY_MAX_MS;
    c->vms_next_ms = now + c->vms_backoff_ms;
    if (c->vms_next_ms < *next)
        *next = c->vms_next_ms;
}

int cluster_replace_vm(struct cluster *c, const struct lab *lab, const char *machine, char *done,
                       size_t dn, struct bd_err *err)
{
    done[0] = '\0';
    if (!lab->proxmox.set)
        return 0;
    struct vms v;
    memset(&v, 0, sizeof v);
    if (proxmox_lab_load(lab, &v.pl, err) < 0)
        return -1;
    const struct proxmox_vm_spec *s = proxmox_lab_find(&v.pl, machine);
    if (!s) { /* not a Proxmox VM of the lab: whoever runs it powers it on */
        proxmox_lab_free(&v.pl);
        return 0;
    }
    v.pl.cfg.cancel = &c->worker.cancel;
    struct report rep = {""};
    int rc = proxmox_open(&v.pl.cfg, &v.px, err);
    if (rc == 0 && (rc = proxmox_plan(v.px, s, 1, &v.plan, err)) == 0)
        v.planned = true;
    /* the plan's first item is the spec's; bootd-tagged VMs of other machines follow and
     * are left alone (apply only creates, changes and starts) */
    const struct proxmox_plan_item *it = rc == 0 ? &v.plan.v[0] : NULL;
    if (it && it->action == PROXMOX_CONFLICT)
        rc = bd_err_set(err, "VM %d: %s", it->vmid, it->reason ? it->reason : "conflict");
    if (rc == 0 && it->action != PROXMOX_CREATE) {
        char what[160];
        snprintf(what, sizeof what, "VM %d (%s)", it->vmid, machine);
        /* the Proxmox-side rules keep any disk bootd did not create (a CSI volume attached
         * to this VM refuses the delete) */
        struct proxmox_destroy_opts o = {.protected_ids = v.pl.protected_ids,
                                         .nprotected = v.pl.nprotected};
        rc = proxmox_destroy(v.px, it->node, it->vmid, what, &o, err);
        if (rc == 0) {
            note(it, "destroyed", &rep);
            proxmox_plan_free(&v.plan);
            v.planned = false;
            if ((rc = proxmox_plan(v.px, s, 1, &v.plan, err)) == 0)
                v.planned = true;
        }
    }
    if (rc == 0)
        rc = proxmox_apply(v.px, &v.plan, v.pl.protected_ids, v.pl.nprotected, note, &rep, err);
    if (rc < 0)
        bd_err_prefix(err, "Proxmox %s%s%s", lab->proxmox.api, rep.text[0] ? ": after " : "",
                      rep.text);
    snprintf(done, dn, "%s", rep.text);
    vms_close(&v);
    return rc;
}
