/* bootctl vm destroy's look at the cluster: a VM's disks that a PersistentVolume of the
 * Proxmox CSI plugin names are not freed without --force-data-loss. The PersistentVolumes
 * are listed once per command, with the cluster credentials bootctl can find. */
#include "cli.h"

#include "../kube/kube.h"
#include "../talos/talos.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where the credentials come from: --kubeconfig, $KUBECONFIG, else an admin certificate
 * minted from the lab's secrets bundle (as `bootctl gen kubeconfig` does). 0 with
 * *from NULL when the lab has none of them. */
static int target_of(struct cli_pv_check *c, struct kube_target *t, char **from,
                     struct bd_err *err)
{
    memset(t, 0, sizeof *t);
    *from = NULL;
    const char *kc = c->kubeconfig ? c->kubeconfig : getenv("KUBECONFIG");
    if (kc && *kc) {
        *from = bd_xstrdup(kc);
        return kube_kubeconfig_load(kc, t, err);
    }
    const char *sf = c->lab->cluster.secrets_file;
    if (!sf || access(sf, F_OK) != 0)
        return 0;
    struct talos_secrets *s;
    struct talos_kube_admin a;
    if (talos_secrets_load(sf, &s, err) < 0)
        return -1;
    int rc = talos_kube_admin(c->lab, s, &a, err);
    talos_secrets_free(s);
    if (rc < 0)
        return -1;
    t->server = a.server;
    t->ca_pem = a.ca_pem;
    t->cert_pem = a.crt_pem;
    t->key_pem = a.key_pem;
    *from = bd_xasprintf("an admin certificate from %s", sf);
    return 0;
}

/* GET /api/v1/persistentvolumes into c->pvs; c->unchecked says why not. */
static void list_pvs(struct cli_pv_check *c)
{
    c->listed = true;
    struct kube_target t;
    char *from = NULL;
    struct bd_err err;
    if (target_of(c, &t, &from, &err) < 0) {
        c->unchecked = bd_xasprintf("cluster credentials: %s", err.msg);
        kube_target_free(&t);
        free(from);
        return;
    }
    if (!from) {
        c->no_cluster = true;
        return;
    }
    struct kube *k = kube_new(&t);
    struct kube_call call = {.method = "GET", .path = bd_xstrdup("/api/v1/persistentvolumes")};
    kube_run(k, &call, 1);
    char why[300];
    cJSON *list = call.status == 200 ? cJSON_ParseWithLength(call.resp.data, call.resp.len) : NULL;
    if (call.status == 200 && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(list, "items"))) {
        c->pvs = list;
        list = NULL;
    } else {
        c->unchecked = bd_xasprintf("GET %s/api/v1/persistentvolumes (credentials: %s): %s",
                                    t.server, from,
                                    call.status == 200 ? "not a PersistentVolumeList"
                                                       : kube_call_error(&call, why, sizeof why));
    }
    cJSON_Delete(list);
    kube_call_clear(&call);
    kube_free(k);
    kube_target_free(&t);
    free(from);
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "PersistentVolume pv-a (claim media/data)" for each PV of the plugin on one of volids. */
static void pvs_on(const cJSON *pvs, const char *node, const char *const *volids, size_t n,
                   struct bd_buf *out)
{
    const cJSON *pv;
    cJSON_ArrayForEach(pv, cJSON_GetObjectItemCaseSensitive(pvs, "items"))
    {
        const cJSON *csi = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(pv, "spec"), "csi");
        const char *driver = str_at(csi, "driver", NULL), *handle = str_at(csi, "volumeHandle", NULL);
        char *zone, *volid;
        if (!driver || strcmp(driver, PROXMOX_CSI_DRIVER) || proxmox_csi_volume(handle, &zone, &volid) < 0)
            continue;
        bool hit = false;
        /* a node's local storage is that node's; a shared one (no zone) is everyone's */
        for (size_t i = 0; i < n && !hit && (!*zone || !strcmp(zone, node)); i++)
            hit = !strcmp(volids[i], volid);
        if (hit) {
            const cJSON *ref = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(pv, "spec"), "claimRef");
            const char *name = str_at(pv, "metadata", "name");
            const char *cns = str_at(ref, "namespace", NULL), *cname = str_at(ref, "name", NULL);
            bd_buf_printf(out, "%s%s is PersistentVolume %s", out->len ? "; " : "", volid,
                          name ? name : "?");
            if (cname)
                bd_buf_printf(out, " (claim %s/%s)", cns ? cns : "", cname);
            else
                bd_buf_puts(out, " (no claim)");
        }
        free(zone);
        free(volid);
    }
}

int cli_vm_pv_check(const char *what, const char *node, const char *const *volids, size_t n,
                    void *ud, struct bd_err *err)
{
    struct cli_pv_check *c = ud;
    if (!c->listed)
        list_pvs(c);
    if (c->no_cluster) {
        if (!c->noted)
            fprintf(stderr, "bootctl: PersistentVolumes not checked: no --kubeconfig, no "
                            "KUBECONFIG and no %s to reach the cluster with\n",
                    c->lab->cluster.secrets_file ? c->lab->cluster.secrets_file : "secrets bundle");
        c->noted = true;
        return 0;
    }
    if (c->unchecked) {
        if (c->force) {
            fprintf(stderr, "bootctl: %s: PersistentVolumes not checked (--force-data-loss): %s\n",
                    what, c->unchecked);
            return 0;
        }
        return bd_err_set(err, "%s: destroy refused: cannot check which PersistentVolumes its "
                               "disks hold: %s. Give --kubeconfig FILE; if the cluster is gone "
                               "for good, --force-data-loss destroys without the check",
                          what, c->unchecked);
    }
    struct bd_buf hits;
    bd_buf_init(&hits);
    pvs_on(c->pvs, node, volids, n, &hits);
    int rc = 0;
    if (hits.len && c->force)
        fprintf(stderr, "bootctl: %s: freeing what Kubernetes still uses (--force-data-loss): %s\n",
                what, hits.data);
    else if (hits.len)
        rc = bd_err_set(err, "%s: destroy refused: the delete would free disks that "
                             "Kubernetes still uses: %s. Move the data to another volume, or "
                             "delete the claim and the PersistentVolume first; "
                             "--force-data-loss destroys them with the VM",
                        what, hits.data);
    bd_buf_free(&hits);
    return rc;
}

void cli_pv_check_free(struct cli_pv_check *c)
{
    cJSON_Delete(c->pvs);
    free(c->unchecked);
    memset(c, 0, sizeof *c);
}
