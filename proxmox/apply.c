/* Carrying out a plan, with the retries the bpg provider makes: a dispatch that found no
 * worker or timed out on the config lock is sent again, locks are waited out, and a task
 * is waited for until it stops. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define ATTEMPTS 3

/* Sent again: no worker was forked, the config lock timed out (10 s in PVE), a proxy
 * between nodes failed. Anything else is the answer. */
static bool transient(const struct proxmox_resp *r)
{
    const char *m = proxmox_message(r);
    return strstr(m, "got no worker upid") || strstr(m, "got timeout") || r->status == 502 ||
           r->status == 503 || r->status == 595 || r->status == 596;
}

static bool locked(const struct proxmox_resp *r)
{
    return r->status == 500 && strstr(proxmox_message(r), " is locked (");
}

/* One asynchronous call: dispatch (retried as above), then wait for its task. On a
 * retried create, "already exists" means the first attempt went through. */
static int call_task(struct proxmox *px, const char *method, const char *path,
                     const struct proxmox_params *params, const char *node, int vmid,
                     const char *what, const char *action, struct bd_err *err)
{
    for (int attempt = 1;; attempt++) {
        struct proxmox_resp r;
        if (proxmox_call(px, method, path, params, what, action, &r, err) == 0) {
            if (!cJSON_IsString(r.data)) { /* null: done within the call */
                proxmox_resp_free(&r);
                return 0;
            }
            char *upid = bd_xstrdup(r.data->valuestring);
            proxmox_resp_free(&r);
            int ret = proxmox_task_wait(px, upid, what, action, err);
            free(upid);
            return ret;
        }
        if (r.status == 0) { /* no answer at all */
            proxmox_resp_free(&r);
            return -1;
        }
        bool again = attempt < ATTEMPTS && (transient(&r) || locked(&r));
        bool done = attempt > 1 && strstr(proxmox_message(&r), "already exists");
        bool was_locked = locked(&r);
        proxmox_resp_free(&r);
        if (done)
            return proxmox_wait_unlocked(px, node, vmid, what, err);
        if (!again)
            return -1;
        if (was_locked && proxmox_wait_unlocked(px, node, vmid, what, err) < 0)
            return -1;
        proxmox_sleep_ms(1000LL << (attempt - 1));
    }
}

static int put_config(struct proxmox *px, const char *node, int vmid, const char *what,
                      struct proxmox_params *p, struct bd_err *err)
{
    char *path = bd_xasprintf("/nodes/%s/qemu/%d/config", node, vmid);
    int ret = -1;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        if (proxmox_wait_unlocked(px, node, vmid, what, err) < 0)
            break;
        struct proxmox_resp r;
        ret = proxmox_call(px, "PUT", path, p, what, "change config", &r, err);
        bool again = ret < 0 && r.status && (transient(&r) || locked(&r));
        proxmox_resp_free(&r);
        if (!again)
            break;
        proxmox_sleep_ms(1000LL << (attempt - 1));
    }
    free(path);
    return ret;
}

int proxmox_power(struct proxmox *px, const char *node, int vmid, const char *what,
                  const char *action, struct bd_err *err)
{
    static const char *const actions[] = {"start", "stop", "shutdown", "reset", NULL};
    bool known = false;
    for (int i = 0; actions[i]; i++)
        known = known || !strcmp(actions[i], action);
    if (!known)
        return bd_err_set(err, "%s: unknown power action \"%s\"", what, action);
    if (proxmox_wait_unlocked(px, node, vmid, what, err) < 0)
        return -1;
    char *status = NULL;
    if (proxmox_status(px, node, vmid, &status, err) < 0)
        return -1;
    bool running = !strcmp(status, "running");
    free(status);
    if ((!strcmp(action, "start") && running) ||
        ((!strcmp(action, "stop") || !strcmp(action, "shutdown")) && !running))
        return 0;
    if (!strcmp(action, "reset") && !running)
        return bd_err_set(err, "%s: reset: the VM is not running", what);
    char *path = bd_xasprintf("/nodes/%s/qemu/%d/status/%s", node, vmid, action);
    int ret = call_task(px, "POST", path, NULL, node, vmid, what, action, err);
    free(path);
    /* a start that raced another start: bpg counts it as success */
    if (ret < 0 && !strcmp(action, "start") && strstr(err->msg, "already running"))
        ret = 0;
    return ret;
}

/* PUT .../resize (qemu-server's resize_vm): grows scsi0 to size; a task on PVE 8, done
 * within the call before. */
static int resize(struct proxmox *px, const char *node, int vmid, const char *what,
                  const char *size, const char *digest, struct bd_err *err)
{
    struct proxmox_params p = {0};
    proxmox_params_add(&p, "disk", "scsi0");
    proxmox_params_add(&p, "size", "%s", size);
    if (digest)
        proxmox_params_add(&p, "digest", "%s", digest);
    char *path = bd_xasprintf("/nodes/%s/qemu/%d/resize", node, vmid);
    int ret = proxmox_wait_unlocked(px, node, vmid, what, err);
    if (ret == 0)
        ret = call_task(px, "PUT", path, &p, node, vmid, what, "resize scsi0", err);
    free(path);
    proxmox_params_free(&p);
    return ret;
}

static bool needs_restart(const char *key)
{
    static const char *const keys[] = {"memory", "cores", "cpu", "machine", "bios", "smbios1",
                                       "efidisk0", "scsihw", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], key))
            return true;
    return false;
}

static int apply_item(struct proxmox *px, const struct proxmox_plan_item *it,
                      proxmox_report_fn report, void *ud, struct bd_err *err)
{
    const struct proxmox_vm_spec *s = it->spec;
    char *what = bd_xasprintf("VM %d (%s)", it->vmid, s->machine);
    int ret = 0;
    bool running = it->status && !strcmp(it->status, "running");
    if (it->action == PROXMOX_CREATE) {
        struct proxmox_params p;
        proxmox_spec_params(s, true, &p);
        char *path = bd_xasprintf("/nodes/%s/qemu", s->node);
        ret = call_task(px, "POST", path, &p, s->node, s->vmid, what, "create", err);
        free(path);
        proxmox_params_free(&p);
        if (ret == 0 && report)
            report(it, "created", ud);
    } else if (it->action == PROXMOX_CHANGE) {
        struct proxmox_params p = {0};
        struct bd_buf keys;
        bd_buf_init(&keys);
        bool restart = false;
        const struct proxmox_change *grow = NULL;
        for (size_t i = 0; i < it->nchanges; i++) {
            if (!strcmp(it->changes[i].key, PROXMOX_DISK_SIZE_KEY)) {
                grow = &it->changes[i];
                continue;
            }
            proxmox_params_add(&p, it->changes[i].key, "%s", it->changes[i].to);
            bd_buf_printf(&keys, "%s%s", keys.len ? ", " : "", it->changes[i].key);
            restart = restart || needs_restart(it->changes[i].key);
        }
        if (it->digest)
            proxmox_params_add(&p, "digest", "%s", it->digest);
        if (keys.len)
            ret = put_config(px, s->node, s->vmid, what, &p, err);
        proxmox_params_free(&p);
        if (ret == 0 && grow) {
            /* the digest the plan read is still the config's only when nothing was written */
            ret = resize(px, s->node, s->vmid, what, grow->to, keys.len ? NULL : it->digest, err);
            if (ret == 0 && report) {
                char *msg = bd_xasprintf("grew scsi0 from %s to %s", grow->from, grow->to);
                report(it, msg, ud);
                free(msg);
            }
        }
        if (ret == 0 && report && keys.len) {
            char *msg = bd_xasprintf("changed %s%s", keys.data,
                                     running && restart ? " (takes effect when the VM restarts)"
                                                        : "");
            report(it, msg, ud);
            free(msg);
        }
        bd_buf_free(&keys);
    }
    if (ret == 0 && !running) {
        ret = proxmox_power(px, s->node, s->vmid, what, "start", err);
        if (ret == 0 && report)
            report(it, "started", ud);
    }
    free(what);
    return ret;
}

int proxmox_apply(struct proxmox *px, const struct proxmox_plan *plan, const int *protected_ids,
                  size_t nprotected, proxmox_report_fn report, void *ud, struct bd_err *err)
{
    /* refuse before anything is touched */
    for (size_t i = 0; i < plan->n; i++) {
        const struct proxmox_plan_item *it = &plan->v[i];
        if (!it->spec)
            continue;
        char *what = bd_xasprintf("machine %s", it->machine);
        int bad = proxmox_check_vmid(it->vmid, protected_ids, nprotected, what, err);
        free(what);
        if (bad < 0)
            return bd_err_prefix(err, "nothing was changed");
        if (it->action == PROXMOX_CONFLICT)
            return bd_err_set(err, "nothing was changed: machine %s: %s", it->machine, it->reason);
    }
    for (size_t i = 0; i < plan->n; i++) {
        const struct proxmox_plan_item *it = &plan->v[i];
        if (it->spec && apply_item(px, it, report, ud, err) < 0)
            return -1;
    }
    return 0;
}

static bool is_disk_key(const char *k)
{
    static const char *const prefixes[] = {"scsi", "virtio", "sata", "ide", "unused", NULL};
    if (!strcmp(k, "efidisk0") || !strcmp(k, "tpmstate0"))
        return true;
    for (int i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(k, prefixes[i], n) && k[n] >= '0' && k[n] <= '9')
            return true;
    }
    return false;
}

/* "local-lvm:vm-8101-disk-0,size=32G" -> "local-lvm:vm-8101-disk-0" (caller frees) */
static char *volid_of(const char *value)
{
    char *f = proxmox_prop_get(value, "file");
    if (f && !strchr(f, ':')) { /* "none", a CD-ROM drive, ... */
        free(f);
        return NULL;
    }
    return f;
}

static const char *volname(const char *volid)
{
    const char *c = strchr(volid, ':');
    return c ? c + 1 : volid;
}

/* Another VM's config naming one of our volumes: freeing it would break that VM. */
static int used_elsewhere(struct proxmox *px, int vmid, const char *volid,
                          const cJSON *vms, struct bd_buf *out, struct bd_err *err)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, vms)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "vmid");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "node");
        if (!cJSON_IsNumber(id) || id->valueint == vmid || !cJSON_IsString(n))
            continue;
        char *path = bd_xasprintf("/nodes/%s/qemu/%d/config", n->valuestring, id->valueint);
        char *what = bd_xasprintf("VM %d", id->valueint);
        struct proxmox_resp r;
        int ret = proxmox_call(px, "GET", path, NULL, what, "read config", &r, err);
        free(path);
        free(what);
        if (ret < 0) {
            proxmox_resp_free(&r);
            return -1;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, r.data)
        {
            if (!cJSON_IsString(e) || !is_disk_key(e->string))
                continue;
            char *other = volid_of(e->valuestring);
            if (other && !strcmp(other, volid))
                bd_buf_printf(out, "%s%s is %s of VM %d", out->len ? "; " : "", volid, e->string,
                              id->valueint);
            free(other);
        }
        proxmox_resp_free(&r);
    }
    return 0;
}

static void frees_add(char ***v, size_t *n, const char *volid)
{
    *v = bd_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = bd_xstrdup(volid);
}

int proxmox_destroy(struct proxmox *px, const char *node, int vmid, const char *what,
                    const struct proxmox_destroy_opts *o, struct bd_err *err)
{
    if (proxmox_check_vmid(vmid, o->protected_ids, o->nprotected, what, err) < 0)
        return -1;
    char **frees = NULL; /* what the delete would free, for o->check */
    size_t nfrees = 0;
    char *cpath = bd_xasprintf("/nodes/%s/qemu/%d/config", node, vmid);
    struct proxmox_resp cfg, vms = {0};
    struct bd_buf refused;
    bd_buf_init(&refused);
    int ret = proxmox_call(px, "GET", cpath, NULL, what, "read config", &cfg, err);
    free(cpath);
    if (ret < 0)
        goto out;
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(cfg.data, "tags");
    const char *t = cJSON_IsString(tags) ? tags->valuestring : "";
    bool ours = false;
    for (const char *p = t; (p = strstr(p, "bootd")) != NULL; p += 5)
        ours = ours || ((p == t || strchr(";, ", p[-1])) && strchr(";, ", p[5]));
    if (!ours) {
        ret = bd_err_set(err, "%s: refused: bootd did not create this VM (no \"bootd\" tag)", what);
        goto out;
    }
    struct proxmox_params q = {0};
    proxmox_params_add(&q, "type", "vm");
    ret = proxmox_call(px, "GET", "/cluster/resources", &q, px->api, "list VMs", &vms, err);
    proxmox_params_free(&q);
    if (ret < 0)
        goto out;
    /* What PVE's destroy_vm would free: every volume in the config that this vmid owns,
     * and (destroy-unreferenced-disks) the others named vm-<vmid>-*. bootd made only
     * scsi0 and efidisk0; anything else is someone's data. */
    const cJSON *e;
    char *storages[8];
    size_t nstorages = 0;
    cJSON_ArrayForEach(e, cfg.data)
    {
        if (!cJSON_IsString(e) || !is_disk_key(e->string))
            continue;
        char *volid = volid_of(e->valuestring);
        if (!volid)
            continue;
        if (proxmox_volume_owner(volname(volid)) == vmid) {
            frees_add(&frees, &nfrees, volid);
            if (strcmp(e->string, "scsi0") && strcmp(e->string, "efidisk0"))
                bd_buf_printf(&refused, "%s%s (%s) was not created by bootd",
                              refused.len ? "; " : "", volid, e->string);
            else if (used_elsewhere(px, vmid, volid, vms.data, &refused, err) < 0)
                ret = -1;
            size_t sl = strcspn(volid, ":");
            bool seen = false;
            for (size_t i = 0; i < nstorages; i++)
                seen = seen || (strlen(storages[i]) == sl && !strncmp(storages[i], volid, sl));
            if (!seen && nstorages < 8)
                storages[nstorages++] = bd_xstrndup(volid, sl);
        }
        free(volid);
        if (ret < 0)
            break;
    }
    for (size_t i = 0; i < nstorages && ret == 0; i++) {
        struct proxmox_volume *v;
        size_t n;
        ret = proxmox_volumes(px, node, storages[i], vmid, &v, &n, err);
        for (size_t k = 0; ret == 0 && k < n; k++) {
            bool referenced = false;
            cJSON_ArrayForEach(e, cfg.data)
            {
                char *volid = cJSON_IsString(e) && is_disk_key(e->string) ? volid_of(e->valuestring)
                                                                          : NULL;
                referenced = referenced || (volid && !strcmp(volid, v[k].volid));
                free(volid);
            }
            if (!referenced) {
                bd_buf_printf(&refused, "%s%s is not attached but would be freed with the VM",
                              refused.len ? "; " : "", v[k].volid);
                frees_add(&frees, &nfrees, v[k].volid);
            }
        }
        if (ret == 0)
            proxmox_volumes_free(v, n);
    }
    for (size_t i = 0; i < nstorages; i++)
        free(storages[i]);
    if (ret < 0)
        goto out;
    if (refused.len) {
        ret = bd_err_set(err, "%s: destroy refused, it would free data bootd does not own: %s. "
                              "Detach or move those volumes first", what, refused.data);
        goto out;
    }
    if (o->check &&
        (ret = o->check(what, node, (const char *const *)frees, nfrees, o->ud, err)) < 0)
        goto out;
    if ((ret = proxmox_power(px, node, vmid, what, "stop", err)) < 0)
        goto out;
    struct proxmox_params d = {0};
    proxmox_params_add(&d, "purge", "1");
    proxmox_params_add(&d, "destroy-unreferenced-disks", "1");
    char *path = bd_xasprintf("/nodes/%s/qemu/%d", node, vmid);
    ret = call_task(px, "DELETE", path, &d, node, vmid, what, "destroy", err);
    free(path);
    proxmox_params_free(&d);
out:
    for (size_t i = 0; i < nfrees; i++)
        free(frees[i]);
    free(frees);
    proxmox_resp_free(&cfg);
    proxmox_resp_free(&vms);
    bd_buf_free(&refused);
    return ret;
}

int proxmox_volumes(struct proxmox *px, const char *node, const char *storage, int owner,
                    struct proxmox_volume **out, size_t *n, struct bd_err *err)
{
    *out = NULL;
    *n = 0;
    struct proxmox_params q = {0};
    proxmox_params_add(&q, "content", "images");
    if (owner)
        proxmox_params_add(&q, "vmid", "%d", owner);
    char *path = bd_xasprintf("/nodes/%s/storage/%s/content", node, storage);
    char *what = bd_xasprintf("storage %s on %s", storage, node);
    struct proxmox_resp r;
    int ret = proxmox_call(px, "GET", path, &q, what, "list volumes", &r, err);
    const cJSON *v, *list = ret == 0 ? r.data : (const cJSON *)NULL;
    cJSON_ArrayForEach(v, list)
    {
        const cJSON *volid = cJSON_GetObjectItemCaseSensitive(v, "volid");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(v, "size");
        if (!cJSON_IsString(volid))
            continue;
        int o = proxmox_volume_owner(volname(volid->valuestring));
        if (owner && o != owner)
            continue;
        *out = bd_xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[*n] = (struct proxmox_volume){
            .volid = bd_xstrdup(volid->valuestring),
            .size = cJSON_IsNumber(size) ? (int64_t)size->valuedouble : 0,
            .owner = o,
        };
        (*n)++;
    }
    proxmox_resp_free(&r);
    free(path);
    free(what);
    proxmox_params_free(&q);
    return ret;
}

void proxmox_volumes_free(struct proxmox_volume *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].volid);
    free(v);
}
