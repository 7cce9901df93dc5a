/* A lab machine's VM as Proxmox API parameters (qm.conf syntax, pve-docs apidata.js). */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void proxmox_spec_defaults(struct proxmox_vm_spec *s, const char *cluster)
{
    if (!s->cores)
        s->cores = 2;
    if (!s->memory_mib)
        s->memory_mib = 4096;
    if (!s->disk_gib)
        s->disk_gib = 32;
    if (!s->storage)
        s->storage = "local-lvm";
    if (!s->bridge)
        s->bridge = "vmbr0";
    if (!s->machine_type)
        s->machine_type = "q35";
    for (char *p = s->mac; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (!s->uuid[0]) {
        /* A name-based (version 5 layout) uuid: the same cluster and MAC give the same
         * smbios1 uuid on every rebuild, which the Proxmox CSI plugin matches against the
         * Kubernetes node's systemUUID. */
        char seed[256];
        uint8_t h[32];
        snprintf(seed, sizeof seed, "bootd smbios1 %s %s", cluster ? cluster : "", s->mac);
        bd_sha256(seed, strlen(seed), h);
        h[6] = (uint8_t)((h[6] & 0x0f) | 0x50);
        h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
        snprintf(s->uuid, sizeof s->uuid,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
                 h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
                 h[14], h[15]);
    }
    for (char *p = s->uuid; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

void proxmox_spec_params(const struct proxmox_vm_spec *s, bool create, struct proxmox_params *out)
{
    memset(out, 0, sizeof *out);
    if (create)
        proxmox_params_add(out, "vmid", "%d", s->vmid);
    proxmox_params_add(out, "name", "%s", s->name);
    proxmox_params_add(out, "memory", "%d", s->memory_mib);
    proxmox_params_add(out, "cores", "%d", s->cores);
    /* Talos needs x86-64-v2, which PVE's default kvm64 lacks */
    proxmox_params_add(out, "cpu", "host");
    proxmox_params_add(out, "machine", "%s", s->machine_type);
    proxmox_params_add(out, "bios", "%s", s->ovmf ? "ovmf" : "seabios");
    /* Secure Boot stays off (pre-enrolled-keys=0): iPXE and the netboot kernel are unsigned */
    if (create && s->ovmf)
        proxmox_params_add(out, "efidisk0", "%s:1,efitype=4m,pre-enrolled-keys=0", s->storage);
    proxmox_params_add(out, "ostype", "l26");
    proxmox_params_add(out, "scsihw", "virtio-scsi-single");
    if (create)
        proxmox_params_add(out, "scsi0", "%s:%d,iothread=1,discard=on,ssd=1", s->storage, s->disk_gib);
    if (s->vlan)
        proxmox_params_add(out, "net0", "virtio=%s,bridge=%s,tag=%d", s->mac, s->bridge, s->vlan);
    else
        proxmox_params_add(out, "net0", "virtio=%s,bridge=%s", s->mac, s->bridge);
    /* Disk first: an empty disk falls through to PXE; once Talos installed, the disk boots. */
    proxmox_params_add(out, "boot", "order=scsi0;net0");
    proxmox_params_add(out, "smbios1", "uuid=%s", s->uuid);
    proxmox_params_add(out, "onboot", "1");
    struct bd_buf tags;
    bd_buf_init(&tags);
    bd_buf_puts(&tags, "bootd");
    for (size_t i = 0; i < s->ntags; i++)
        bd_buf_printf(&tags, ";%s", s->tags[i]);
    proxmox_params_add(out, "tags", "%s", tags.data);
    bd_buf_free(&tags);
    if (s->description)
        proxmox_params_add(out, "description", "%s", s->description);
}
