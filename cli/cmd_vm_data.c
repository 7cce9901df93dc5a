/* bootctl vm volumes and vm csi: the data side of the lab's Proxmox — the CSI plugin's
 * persistent volumes and its credentials. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *vol_storage(const struct cli_vm *v, const struct lab_proxmox_volume *lv)
{
    if (lv && lv->storage)
        return lv->storage;
    return v->lab->proxmox.storage ? v->lab->proxmox.storage : "local-lvm";
}

static const char *vol_node(const struct cli_vm *v, const struct lab_proxmox_volume *lv)
{
    return lv && lv->node ? lv->node : v->lab->proxmox.node;
}

struct vol_row {
    char *volid, *node, *state;
    int64_t size;
    int owner;
};

static void vol_add(struct vol_row **rows, size_t *n, const char *volid, const char *node,
                    int64_t size, int owner, const char *state)
{
    *rows = bd_xrealloc(*rows, (*n + 1) * sizeof **rows);
    (*rows)[(*n)++] = (struct vol_row){bd_xstrdup(volid), bd_xstrdup(node), bd_xstrdup(state),
                                       size, owner};
}

/* The lab's volumes (ok, missing, another size) and the other ones owner holds there. */
static int vol_rows(struct cli_vm *v, int owner, struct vol_row **rows, size_t *nrows,
                    struct bd_err *err)
{
    const struct lab_proxmox *p = &v->lab->proxmox;
    *rows = NULL;
    *nrows = 0;
    for (size_t i = 0; i <= p->nvolumes; i++) { /* i == nvolumes: the default storage */
        const struct lab_proxmox_volume *lv = i < p->nvolumes ? &p->volumes[i] : NULL;
        const char *node = vol_node(v, lv), *storage = vol_storage(v, lv);
        bool listed = false;
        for (size_t k = 0; k < i && !listed; k++) {
            const struct lab_proxmox_volume *o = &p->volumes[k];
            listed = !strcmp(vol_node(v, o), node) && !strcmp(vol_storage(v, o), storage);
        }
        if (listed)
            continue;
        struct proxmox_volume *have;
        size_t n;
        if (proxmox_volumes(v->px, node, storage, owner, &have, &n, err) < 0)
            return -1;
        /* the lab's volumes on this node and storage first, in lab.yaml's order */
        for (size_t k = 0; k < p->nvolumes; k++) {
            const struct lab_proxmox_volume *o = &p->volumes[k];
            if (strcmp(vol_node(v, o), node) || strcmp(vol_storage(v, o), storage))
                continue;
            char *volid = bd_xasprintf("%s:vm-%d-%s", storage, PROXMOX_CSI_VMID, o->name);
            const char *state = "missing";
            int64_t size = o->size;
            for (size_t h = 0; h < n; h++)
                if (!strcmp(have[h].volid, volid)) {
                    state = have[h].size == o->size ? "ok" : "other-size";
                    size = have[h].size;
                    have[h].owner = -1; /* shown */
                }
            vol_add(rows, nrows, volid, node, size, PROXMOX_CSI_VMID, state);
            free(volid);
        }
        for (size_t h = 0; h < n; h++)
            if (have[h].owner >= 0)
                vol_add(rows, nrows, have[h].volid, node, have[h].size, have[h].owner,
                        p->nvolumes ? "not-in-lab" : "present");
        proxmox_volumes_free(have, n);
    }
    return 0;
}

static void vol_rows_free(struct vol_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].volid);
        free(rows[i].node);
        free(rows[i].state);
    }
    free(rows);
}

static int vm_volumes_apply(struct cli_vm *v)
{
    const struct lab_proxmox *p = &v->lab->proxmox;
    if (!p->nvolumes) {
        fprintf(stderr, "bootctl: %s: proxmox.volumes lists no volumes\n", v->lab->path);
        return 1;
    }
    for (size_t i = 0; i < p->nvolumes; i++) {
        const struct lab_proxmox_volume *lv = &p->volumes[i];
        struct proxmox_volume_spec spec = {
            .node = vol_node(v, lv), .storage = vol_storage(v, lv), .name = lv->name, .size = lv->size,
        };
        enum proxmox_volume_state st;
        struct bd_err err;
        if (proxmox_volume_ensure(v->px, &spec, &st, &err) < 0) {
            fprintf(stderr, "bootctl: %s\n", err.msg);
            return 1;
        }
        static const char *const said[] = {"ok", "exists with another size; left as it is",
                                           "created"};
        if (!v->json)
            printf("%s:vm-%d-%s (%s): %s\n", spec.storage, PROXMOX_CSI_VMID, lv->name,
                   lv->size_text, said[st]);
    }
    return 0;
}

int cli_vm_volumes(struct cli_vm *v, int owner, int argc, char **argv)
{
    if (argc > 0 && !strcmp(argv[0], "apply"))
        return vm_volumes_apply(v);
    if (argc > 0) {
        fprintf(stderr, "bootctl: vm volumes takes only \"apply\"\n");
        return 2;
    }
    struct vol_row *rows;
    size_t n;
    struct bd_err err;
    if (vol_rows(v, owner, &rows, &n, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    if (v->json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "volid", rows[i].volid);
            cJSON_AddStringToObject(o, "node", rows[i].node);
            cJSON_AddNumberToObject(o, "size", (double)rows[i].size);
            cJSON_AddNumberToObject(o, "owner", rows[i].owner);
            cJSON_AddStringToObject(o, "state", rows[i].state);
            cJSON_AddItemToArray(arr, o);
        }
        cli_print_json(arr);
        cJSON_Delete(arr);
    } else {
        static const char *const hdr[] = {"VOLUME", "NODE", "SIZE", "OWNER", "STATE"};
        struct table *t = cli_table_new(5, hdr);
        for (size_t i = 0; i < n; i++) {
            char size[32], own[16];
            snprintf(size, sizeof size, "%.1fG", (double)rows[i].size / (1024.0 * 1024 * 1024));
            snprintf(own, sizeof own, "%d", rows[i].owner);
            const char *row[] = {rows[i].volid, rows[i].node, size, own, rows[i].state};
            cli_table_add(t, row);
        }
        cli_table_print(t, stdout);
    }
    vol_rows_free(rows, n);
    return 0;
}

int cli_vm_csi(struct cli_vm *v, const char *out)
{
    struct proxmox_csi_creds c;
    struct bd_err err;
    int rc = 0;
    if (proxmox_csi_from_lab(v->px, v->lab, &c, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    char *yaml = proxmox_csi_secret_yaml(c.ns, c.name, c.api, c.region, c.token_id, c.secret,
                                         c.insecure);
    if (cli_put(out, yaml, strlen(yaml), &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        rc = 1;
    } else if (strcmp(out, "-")) {
        fprintf(stderr, "token %s (secret kept in %s); Secret %s/%s written to %s\n", c.token_id,
                v->lab->proxmox.csi.token_file, c.ns, c.name, out);
    }
    explicit_bzero(yaml, strlen(yaml));
    free(yaml);
    proxmox_csi_creds_free(&c);
    return rc;
}
