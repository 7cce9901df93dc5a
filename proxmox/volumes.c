/* The lab's persistent volumes: disks owned by the CSI plugin's vmid 9999, created when
 * missing and never deleted or resized. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int proxmox_volume_ensure(struct proxmox *px, const struct proxmox_volume_spec *v,
                          enum proxmox_volume_state *state, struct bd_err *err)
{
    char *volid = bd_xasprintf("%s:vm-%d-%s", v->storage, PROXMOX_CSI_VMID, v->name);
    struct proxmox_volume *have;
    size_t n;
    int ret = proxmox_volumes(px, v->node, v->storage, PROXMOX_CSI_VMID, &have, &n, err);
    *state = PROXMOX_VOLUME_CREATED;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        if (strcmp(have[i].volid, volid))
            continue;
        *state = have[i].size == v->size ? PROXMOX_VOLUME_OK : PROXMOX_VOLUME_OTHER_SIZE;
    }
    if (ret == 0)
        proxmox_volumes_free(have, n);
    if (ret == 0 && *state == PROXMOX_VOLUME_CREATED) {
        struct proxmox_params p = {0};
        proxmox_params_add(&p, "vmid", "%d", PROXMOX_CSI_VMID);
        proxmox_params_add(&p, "filename", "vm-%d-%s", PROXMOX_CSI_VMID, v->name);
        proxmox_params_add(&p, "size", "%lldK", (long long)(v->size / 1024));
        proxmox_params_add(&p, "format", "raw");
        char *path = bd_xasprintf("/nodes/%s/storage/%s/content", v->node, v->storage);
        char *what = bd_xasprintf("volume %s on %s", volid, v->node);
        struct proxmox_resp r;
        ret = proxmox_call(px, "POST", path, &p, what, "create", &r, err);
        /* made between the listing and now: adopt it, as the seed's DR recipe does */
        if (ret < 0 && r.status == 500 && strstr(proxmox_message(&r), "already exists")) {
            *state = PROXMOX_VOLUME_OK;
            ret = 0;
        }
        proxmox_resp_free(&r);
        free(path);
        free(what);
        proxmox_params_free(&p);
    }
    free(volid);
    return ret;
}
