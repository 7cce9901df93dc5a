/* lab.yaml's proxmox: sections as a connection and one VM spec per machine. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int proxmox_lab_load(const struct lab *lab, struct proxmox_lab *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    const struct lab_proxmox *p = &lab->proxmox;
    if (!p->set)
        return bd_err_set(err, "%s: no proxmox: section; bootd manages VMs only with one "
                               "(api, token_file, node)", lab->path);
    out->cfg = (struct proxmox_cfg){
        .api = p->api,
        .token_file = p->token_file,
        .ca_file = p->ca_file,
        .fingerprint = p->fingerprint,
        .verify_tls = p->verify_tls,
    };
    out->protected_ids = p->protected_vmids;
    out->nprotected = p->nprotected;
    out->specs = bd_xcalloc(lab->nmachines ? lab->nmachines : 1, sizeof *out->specs);
    out->descriptions = bd_xcalloc(lab->nmachines ? lab->nmachines : 1, sizeof(char *));
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        if (!m->proxmox.set)
            continue; /* not a VM bootd manages */
        struct proxmox_vm_spec *s = &out->specs[out->n];
        s->machine = m->name;
        s->name = m->hostname ? m->hostname : m->name;
        s->vmid = m->proxmox.vmid;
        s->node = m->proxmox.node ? m->proxmox.node : p->node;
        s->storage = p->storage;
        s->bridge = m->proxmox.bridge ? m->proxmox.bridge : p->bridge;
        s->vlan = m->proxmox.vlan ? m->proxmox.vlan : p->vlan;
        s->ovmf = m->proxmox.bios == LAB_BIOS_OVMF;
        s->machine_type = m->proxmox.machine;
        s->ntags = m->proxmox.tags.n;
        for (size_t k = 0; k < s->ntags && k < PROXMOX_MAX_TAGS; k++)
            s->tags[k] = m->proxmox.tags.v[k];
        s->cores = m->proxmox.cores;
        s->memory_mib = m->proxmox.memory_mib;
        s->disk_gib = m->proxmox.disk_gib;
        bd_mac_format(&m->mac, s->mac);
        if (m->uuid)
            snprintf(s->uuid, sizeof s->uuid, "%s", m->uuid);
        s->uuid_adopt = !m->uuid; /* lab.yaml's uuid is asked for; anything else proposed */
        out->descriptions[out->n] =
            bd_xasprintf("Managed by bootd: machine %s (%s) of cluster %s. `bootctl vm apply` "
                         "undoes changes made here.",
                         m->name, lab_role_name(m->role), lab->cluster.name);
        s->description = out->descriptions[out->n];
        proxmox_spec_defaults(s, lab->cluster.name);
        out->n++;
    }
    return 0;
}

void proxmox_lab_free(struct proxmox_lab *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        free(pl->descriptions[i]);
    free(pl->descriptions);
    free(pl->specs);
    memset(pl, 0, sizeof *pl);
}

const struct proxmox_vm_spec *proxmox_lab_find(const struct proxmox_lab *pl, const char *name)
{
    for (size_t i = 0; i < pl->n; i++)
        if (!strcmp(pl->specs[i].machine, name) || !strcmp(pl->specs[i].name, name))
            return &pl->specs[i];
    return NULL;
}
