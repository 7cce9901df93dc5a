/* The plan: what apply would do to make Proxmox hold the lab's VMs, like a Terraform plan. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *proxmox_action_name(enum proxmox_action a)
{
    switch (a) {
    case PROXMOX_OK: return "ok";
    case PROXMOX_CREATE: return "create";
    case PROXMOX_CHANGE: return "change";
    case PROXMOX_NOT_IN_LAB: return "not-in-lab";
    case PROXMOX_CONFLICT: return "conflict";
    }
    return "?";
}

int proxmox_check_vmid(int vmid, const int *protected_ids, size_t nprotected, const char *what,
                       struct bd_err *err)
{
    if (vmid == PROXMOX_CSI_VMID)
        return bd_err_set(err, "%s: VM id %d is refused: the Proxmox CSI plugin names its volumes "
                               "vm-%d-*, and destroying a VM %d would free all of them",
                          what, vmid, vmid, vmid);
    for (size_t i = 0; i < nprotected; i++)
        if (protected_ids[i] == vmid)
            return bd_err_set(err, "%s: VM id %d is listed in proxmox.protected_vmids; bootd "
                                   "never creates, changes or destroys it", what, vmid);
    return 0;
}

/* A config value as text: PVE answers numbers for some keys, strings for others. */
static char *config_text(const cJSON *config, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsString(v))
        return bd_xstrdup(v->valuestring);
    if (cJSON_IsNumber(v))
        return bd_xasprintf("%lld", (long long)v->valuedouble);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "b;a a,c" -> "a;b;c": PVE keeps tags in any of these separators and orders. */
static char *tags_norm(const char *s)
{
    char *copy = bd_xstrdup(s ? s : ""), *save = NULL;
    char *v[64] = {0};
    size_t n = 0;
    for (char *t = strtok_r(copy, ";, ", &save); t && n < 64; t = strtok_r(NULL, ";, ", &save)) {
        for (char *p = t; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        v[n++] = t;
    }
    qsort(v, n, sizeof *v, cmp_str);
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_puts(&b, "");
    for (size_t i = 0; i < n; i++)
        bd_buf_printf(&b, "%s%s", i ? ";" : "", v[i]);
    free(copy);
    return bd_buf_steal(&b);
}

static bool prop_eq(const char *have, const char *want, const char *key, bool nocase)
{
    char *a = proxmox_prop_get(have, key), *b = proxmox_prop_get(want, key);
    bool eq = (!a && !b) || (a && b && (nocase ? !strcasecmp(a, b) : !strcmp(a, b)));
    free(a);
    free(b);
    return eq;
}

/* Equal in what bootd sets; PVE adds keys of its own (firewall=1, size=...) that do not
 * count as a difference. */
static bool same(const char *key, const char *have, const char *want)
{
    if (!have)
        return false;
    if (!strcmp(key, "net0"))
        return prop_eq(have, want, "model", false) && prop_eq(have, want, "macaddr", true) &&
               prop_eq(have, want, "bridge", false) && prop_eq(have, want, "tag", false);
    if (!strcmp(key, "smbios1"))
        return prop_eq(have, want, "uuid", true);
    if (!strcmp(key, "memory")) {
        char *c = proxmox_prop_get(have, "current");
        bool eq = !strcmp(c ? c : have, want);
        free(c);
        return eq;
    }
    if (!strcmp(key, "tags")) {
        char *a = tags_norm(have), *b = tags_norm(want);
        bool eq = !strcmp(a, b);
        free(a);
        free(b);
        return eq;
    }
    if (!strcmp(key, "cpu")) { /* [cputype=]<type>[,flags=...] */
        const char *t = strncmp(have, "cputype=", 8) ? have : have + 8;
        size_t n = strcspn(t, ",");
        return n == strlen(want) && !strncmp(t, want, n);
    }
    if (!strcmp(key, "description")) {
        size_t n = strlen(have);
        while (n && have[n - 1] == '\n')
            n--;
        return n == strlen(want) && !strncmp(have, want, n);
    }
    return !strcmp(have, want);
}

/* What PVE assumes for a key the config does not list. */
static const char *pve_default(const char *key)
{
    static const char *const d[][2] = {{"bios", "seabios"}, {"ostype", "other"},
                                       {"scsihw", "lsi"},   {"cores", "1"},
                                       {"memory", "512"},   {"onboot", "0"},
                                       {"cpu", "kvm64"}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (!strcmp(d[i][0], key))
            return d[i][1];
    return NULL;
}

static void add_change(struct proxmox_plan_item *it, const char *key, const char *from,
                       const char *to)
{
    it->changes = bd_xrealloc(it->changes, (it->nchanges + 1) * sizeof *it->changes);
    struct proxmox_change *c = &it->changes[it->nchanges++];
    c->key = bd_xstrdup(key);
    c->from = from ? bd_xstrdup(from) : NULL;
    c->to = bd_xstrdup(to);
}

int64_t proxmox_size_bytes(const char *text)
{
    /* PVE's disk-size format: a number with an optional K, M, G or T (bytes without) */
    char *end;
    double v = strtod(text ? text : "", &end);
    if (!text || end == text || v < 0)
        return -1;
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, *end) : NULL;
    if (*end && (!u || end[1]))
        return -1;
    for (int i = 0; u && i <= u - units; i++)
        v *= 1024;
    return (int64_t)v;
}

/* scsi0's size against lab.yaml's disk: grown by apply (PUT .../resize), never shrunk
 * (Proxmox cannot; the plan names it a conflict). */
static void plan_disk_size(const struct proxmox_vm_spec *s, const char *scsi0,
                           struct proxmox_plan_item *out)
{
    char *size = proxmox_prop_get(scsi0, "size");
    int64_t have = size ? proxmox_size_bytes(size) : -1;
    int64_t want = (int64_t)s->disk_gib << 30;
    char to[32];
    snprintf(to, sizeof to, "%dG", s->disk_gib);
    if (have > want) {
        out->action = PROXMOX_CONFLICT;
        out->reason = bd_xasprintf("lab.yaml's disk is %dG, the VM's scsi0 is %s: Proxmox cannot "
                                   "shrink a disk; set disk: to %s or more, or destroy the VM and "
                                   "apply again to make it anew (its disk is lost)",
                                   s->disk_gib, size, size);
    } else if (have >= 0 && have < want) {
        add_change(out, PROXMOX_DISK_SIZE_KEY, size, to);
    }
    free(size);
}

static bool has_tag(const char *tags, const char *tag)
{
    char *n = tags_norm(tags);
    bool found = false;
    char *save = NULL;
    for (char *t = strtok_r(n, ";", &save); t && !found; t = strtok_r(NULL, ";", &save))
        found = !strcmp(t, tag);
    free(n);
    return found;
}

void proxmox_plan_vm(const struct proxmox_vm_spec *s, const cJSON *config, const char *node,
                     const char *status, struct proxmox_plan_item *out)
{
    memset(out, 0, sizeof *out);
    out->vmid = s->vmid;
    out->machine = bd_xstrdup(s->machine);
    out->name = bd_xstrdup(s->name);
    out->node = bd_xstrdup(node ? node : s->node);
    out->status = status ? bd_xstrdup(status) : NULL;
    out->spec = s;
    snprintf(out->uuid, sizeof out->uuid, "%s", s->uuid);
    if (!config) {
        out->action = PROXMOX_CREATE;
        return;
    }
    char *tags = config_text(config, "tags"), *name = config_text(config, "name");
    if (!has_tag(tags, "bootd")) {
        out->action = PROXMOX_CONFLICT;
        out->reason = bd_xasprintf("VM %d (%s) exists but bootd did not create it (no \"bootd\" "
                                   "tag); choose another vmid or remove that VM",
                                   s->vmid, name ? name : "no name");
    } else if (node && strcmp(node, s->node) != 0) {
        out->action = PROXMOX_CONFLICT;
        out->reason = bd_xasprintf("VM %d is on node %s, lab.yaml places it on %s; bootd does "
                                   "not migrate VMs", s->vmid, node, s->node);
    }
    free(tags);
    free(name);
    if (out->action == PROXMOX_CONFLICT)
        return;
    /* An existing VM keeps its smbios1 uuid unless lab.yaml or state.db names one: the
     * node's systemUUID in Kubernetes is that uuid, and VMs made before bootd recorded
     * uuids carry the derived one. */
    struct proxmox_vm_spec eff = *s;
    char *smbios = config_text(config, "smbios1");
    char *have_uuid = smbios ? proxmox_prop_get(smbios, "uuid") : NULL;
    if (s->uuid_adopt && have_uuid && strlen(have_uuid) == 36) {
        for (char *p = have_uuid; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        snprintf(eff.uuid, sizeof eff.uuid, "%s", have_uuid);
        out->uuid_adopted = true;
    }
    snprintf(out->uuid, sizeof out->uuid, "%s", eff.uuid);
    free(have_uuid);
    free(smbios);
    struct proxmox_params want;
    proxmox_spec_params(&eff, false, &want);
    for (size_t i = 0; i < want.n; i++) {
        const char *key = want.v[i].key;
        char *have = config_text(config, key);
        const char *cmp = have ? have : pve_default(key);
        if (!(cmp && same(key, cmp, want.v[i].value)))
            add_change(out, key, cmp, want.v[i].value);
        free(have);
    }
    proxmox_params_free(&want);
    /* a disk is never replaced: added when missing, grown when lab.yaml's disk grew */
    char *scsi0 = config_text(config, "scsi0");
    if (!scsi0) {
        char *v = bd_xasprintf("%s:%d,iothread=1,discard=on,ssd=1", s->storage, s->disk_gib);
        add_change(out, "scsi0", NULL, v);
        free(v);
    } else {
        plan_disk_size(s, scsi0, out);
    }
    free(scsi0);
    char *efi = config_text(config, "efidisk0");
    if (s->ovmf && !efi) {
        char *v = bd_xasprintf("%s:1,efitype=4m,pre-enrolled-keys=0", s->storage);
        add_change(out, "efidisk0", NULL, v);
        free(v);
    }
    free(efi);
    out->digest = config_text(config, "digest");
    if (out->action != PROXMOX_CONFLICT)
        out->action = out->nchanges ? PROXMOX_CHANGE : PROXMOX_OK;
}

static void item_free(struct proxmox_plan_item *it)
{
    for (size_t i = 0; i < it->nchanges; i++) {
        free(it->changes[i].key);
        free(it->changes[i].from);
        free(it->changes[i].to);
    }
    free(it->changes);
    free(it->machine);
    free(it->name);
    free(it->node);
    free(it->status);
    free(it->reason);
    free(it->digest);
}

void proxmox_plan_free(struct proxmox_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        item_free(&p->v[i]);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

static struct proxmox_plan_item *plan_push(struct proxmox_plan *p)
{
    p->v = bd_xrealloc(p->v, (p->n + 1) * sizeof *p->v);
    return &p->v[p->n++];
}

/* The cluster's VMs: GET /cluster/resources?type=vm. */
static int cluster_vms(struct proxmox *px, struct proxmox_resp *r, struct bd_err *err)
{
    struct proxmox_params q = {0};
    proxmox_params_add(&q, "type", "vm");
    int ret = proxmox_call(px, "GET", "/cluster/resources", &q, px->api, "list VMs", r, err);
    proxmox_params_free(&q);
    return ret;
}

static const cJSON *find_vm(const cJSON *vms, int vmid)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, vms)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "vmid");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
        if (cJSON_IsNumber(id) && id->valueint == vmid &&
            (!cJSON_IsString(type) || !strcmp(type->valuestring, "qemu")))
            return v;
    }
    return NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int proxmox_plan(struct proxmox *px, const struct proxmox_vm_spec *specs, size_t n,
                 struct proxmox_plan *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    struct proxmox_resp vms;
    if (cluster_vms(px, &vms, err) < 0) {
        proxmox_resp_free(&vms);
        return -1;
    }
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        const struct proxmox_vm_spec *s = &specs[i];
        const cJSON *vm = find_vm(vms.data, s->vmid);
        struct proxmox_resp cfg = {0};
        const char *node = vm ? str_of(vm, "node") : NULL;
        if (vm && node) {
            char *what = bd_xasprintf("VM %d (%s)", s->vmid, s->machine);
            char *path = bd_xasprintf("/nodes/%s/qemu/%d/config", node, s->vmid);
            ret = proxmox_call(px, "GET", path, NULL, what, "read config", &cfg, err);
            free(path);
            free(what);
        }
        if (ret == 0)
            proxmox_plan_vm(s, vm ? cfg.data : NULL, node, vm ? str_of(vm, "status") : NULL,
                            plan_push(out));
        proxmox_resp_free(&cfg);
    }
    const cJSON *v, *list = ret == 0 ? vms.data : (const cJSON *)NULL;
    cJSON_ArrayForEach(v, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "vmid");
        const char *tags = str_of(v, "tags");
        if (!cJSON_IsNumber(id) || !tags || !has_tag(tags, "bootd"))
            continue;
        bool named = false;
        for (size_t i = 0; i < n && !named; i++)
            named = specs[i].vmid == id->valueint;
        if (named)
            continue;
        struct proxmox_plan_item *it = plan_push(out);
        memset(it, 0, sizeof *it);
        it->action = PROXMOX_NOT_IN_LAB;
        it->vmid = id->valueint;
        it->name = bd_xstrdup(str_of(v, "name") ? str_of(v, "name") : "");
        it->node = bd_xstrdup(str_of(v, "node") ? str_of(v, "node") : "");
        it->status = str_of(v, "status") ? bd_xstrdup(str_of(v, "status")) : NULL;
    }
    proxmox_resp_free(&vms);
    if (ret < 0)
        proxmox_plan_free(out);
    return ret;
}

cJSON *proxmox_plan_json(const struct proxmox_plan *p)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < p->n; i++) {
        const struct proxmox_plan_item *it = &p->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "action", proxmox_action_name(it->action));
        cJSON_AddNumberToObject(o, "vmid", it->vmid);
        if (it->machine)
            cJSON_AddStringToObject(o, "machine", it->machine);
        cJSON_AddStringToObject(o, "name", it->name ? it->name : "");
        cJSON_AddStringToObject(o, "node", it->node ? it->node : "");
        if (it->status)
            cJSON_AddStringToObject(o, "status", it->status);
        else
            cJSON_AddNullToObject(o, "status");
        if (it->reason)
            cJSON_AddStringToObject(o, "reason", it->reason);
        if (it->spec && it->uuid[0]) {
            cJSON_AddStringToObject(o, "uuid", it->uuid);
            cJSON_AddBoolToObject(o, "uuid_adopted", it->uuid_adopted);
        }
        cJSON *ch = cJSON_AddArrayToObject(o, "changes");
        for (size_t k = 0; k < it->nchanges; k++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "key", it->changes[k].key);
            if (it->changes[k].from)
                cJSON_AddStringToObject(c, "from", it->changes[k].from);
            else
                cJSON_AddNullToObject(c, "from");
            cJSON_AddStringToObject(c, "to", it->changes[k].to);
            cJSON_AddItemToArray(ch, c);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
