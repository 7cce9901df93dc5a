/* Every VM of the Proxmox cluster with its power state and NIC MACs: what bootd needs to
 * show a machine's power and to name the VM behind an unknown MAC. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void add_macs(struct proxmox_vm_info *vm, const cJSON *config)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, config)
    {
        if (!cJSON_IsString(e) || strncmp(e->string, "net", 3) || !isdigit((unsigned char)e->string[3]))
            continue;
        char *mac = proxmox_prop_get(e->valuestring, "macaddr");
        struct bd_mac m;
        if (mac && bd_mac_parse(mac, &m) == 0 && vm->nmacs < PROXMOX_MAX_NICS)
            vm->macs[vm->nmacs++] = m;
        free(mac);
    }
}

int proxmox_inventory(struct proxmox *px, struct proxmox_vm_info **out, size_t *n,
                      struct bd_err *err)
{
    *out = NULL;
    *n = 0;
    struct proxmox_params q = {0};
    proxmox_params_add(&q, "type", "vm");
    struct proxmox_resp vms;
    int ret = proxmox_call(px, "GET", "/cluster/resources", &q, px->api, "list VMs", &vms, err);
    proxmox_params_free(&q);
    const cJSON *v, *list = ret == 0 ? vms.data : (const cJSON *)NULL;
    cJSON_ArrayForEach(v, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "vmid");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
        const cJSON *node = cJSON_GetObjectItemCaseSensitive(v, "node");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(node) ||
            (cJSON_IsString(type) && strcmp(type->valuestring, "qemu")))
            continue;
        char *path = bd_xasprintf("/nodes/%s/qemu/%d/config", node->valuestring, id->valueint);
        char *what = bd_xasprintf("VM %d", id->valueint);
        struct proxmox_resp cfg;
        ret = proxmox_call(px, "GET", path, NULL, what, "read config", &cfg, err);
        free(path);
        free(what);
        if (ret < 0) {
            proxmox_resp_free(&cfg);
            break;
        }
        *out = bd_xrealloc(*out, (*n + 1) * sizeof **out);
        struct proxmox_vm_info *vm = &(*out)[(*n)++];
        memset(vm, 0, sizeof *vm);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(v, "status");
        const cJSON *tags = cJSON_GetObjectItemCaseSensitive(cfg.data, "tags");
        vm->vmid = id->valueint;
        vm->node = bd_xstrdup(node->valuestring);
        vm->name = bd_xstrdup(cJSON_IsString(name) ? name->valuestring : "");
        vm->status = bd_xstrdup(cJSON_IsString(status) ? status->valuestring : "unknown");
        for (const char *t = cJSON_IsString(tags) ? tags->valuestring : ""; (t = strstr(t, "bootd")); t += 5)
            vm->bootd = vm->bootd || ((t == tags->valuestring || strchr(";, ", t[-1])) && strchr(";, ", t[5]));
        add_macs(vm, cfg.data);
        proxmox_resp_free(&cfg);
    }
    proxmox_resp_free(&vms);
    if (ret < 0) {
        proxmox_inventory_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

const struct proxmox_vm_info *proxmox_inventory_by_mac(const struct proxmox_vm_info *v, size_t n,
                                                       const struct bd_mac *mac)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i].nmacs; k++)
            if (!bd_mac_cmp(&v[i].macs[k], mac))
                return &v[i];
    return NULL;
}

void proxmox_inventory_free(struct proxmox_vm_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].node);
        free(v[i].name);
        free(v[i].status);
    }
    free(v);
}
