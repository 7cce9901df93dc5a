/* What the Proxmox VE API answers: a VM's config (GET .../qemu/VMID/config, compared with
 * the lab's spec for the plan, its net[n] and disk property strings read for MACs and
 * volumes), an error answer turned into a sentence, a task's UPID, a certificate
 * fingerprint as the user writes it. The first byte picks which. */
#include "fuzz.h"
#include "../../proxmox/internal.h"

#include <cjson/cJSON.h>

static void config(const char *text)
{
    cJSON *c = cJSON_Parse(text);
    if (!c)
        return;
    struct proxmox_vm_spec s = {
        .machine = "cp-1", .name = "cp-1", .vmid = 8101, .node = "pve", .vlan = 150,
        .ovmf = true, .description = "Managed by bootd", .ntags = 1, .tags = {"controlplane"},
    };
    strcpy(s.mac, "BC:24:11:AE:18:AD");
    proxmox_spec_defaults(&s, "lab");
    struct proxmox_plan_item it;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(c, "data"); /* the API's wrapper */
    proxmox_plan_vm(&s, data ? data : c, "pve", "running", &it);
    struct proxmox_plan p = {.n = 1, .v = bd_xcalloc(1, sizeof it)};
    p.v[0] = it;
    cJSON *j = proxmox_plan_json(&p);
    cJSON_Delete(j);
    proxmox_plan_free(&p);
    static const char *const keys[] = {"macaddr", "model", "file", "bridge", "size", "legacy"};
    const cJSON *e;
    cJSON_ArrayForEach(e, c)
    {
        if (!cJSON_IsString(e))
            continue;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            free(proxmox_prop_get(e->valuestring, keys[i]));
        int owner = proxmox_volume_owner(e->valuestring);
        if (owner != 0 && (owner < 100 || owner > 999999999))
            abort();
    }
    cJSON_Delete(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    char *text = fuzz_text(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        config(text);
        break;
    case 1: {
        struct proxmox_vm_spec s = {.machine = "cp-1", .name = "cp-1", .vmid = 8101, .node = "pve"};
        strcpy(s.mac, "BC:24:11:AE:18:AD");
        proxmox_spec_defaults(&s, "lab");
        struct proxmox_params params;
        proxmox_spec_params(&s, true, &params); /* the error names the parameters sent */
        free(proxmox_error_sentence("VM 8101", "create", 400 + data[0] / 4, text, &params));
        proxmox_params_free(&params);
        break;
    }
    case 2: {
        struct proxmox_upid u;
        (void)!proxmox_upid_parse(text, &u);
        break;
    }
    default: {
        char out[96];
        (void)!proxmox_fingerprint_normalise(text, out);
        break;
    }
    }
    free(text);
    return 0;
}
