/* bootctl machine replace: a dead machine out, its replacement in. For a control plane
 * its etcd member is removed first, through another control plane's Talos API
 * (EtcdMemberList, then EtcdRemoveMemberByID), as Talos's docs say for a node that cannot
 * leave by itself; otherwise the new machine, with an empty etcd, could not join under
 * the same name and address. Then the machine is told to install again; the reconciler
 * and Talos do the rest (it joins as a learner and is promoted). Persistent-volume disks
 * are not bootd's to touch here. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The members as seen through the first other control plane that answers. */
static int members_through(struct cluster *c, const struct cluster_lab *l,
                           const struct lab_machine *skip, const struct lab_machine **via,
                           struct talos_etcd_member **v, size_t *n, struct talos_node *node,
                           char ip[16], struct bd_err *err)
{
    bd_err_set(err, "no other control plane with a known address");
    for (size_t i = 0; i < l->lab->nmachines; i++) {
        const struct lab_machine *m = &l->lab->machines[i];
        if (m == skip || m->role != LAB_ROLE_CONTROLPLANE ||
            !cluster_machine_addr(c->env.store, m, ip))
            continue;
        *node = cluster_node_at(c, l, ip);
        int code;
        struct bd_err e;
        if (c->env.talos_etcd_members(c->env.ud, node, false, v, n, &code, &e) == 0) {
            *via = m;
            return 0;
        }
        bd_err_set(err, "%s: %s", m->name, e.msg);
    }
    return -1;
}

struct cJSON *cluster_etcd_members(struct cluster *c, struct bd_err *err)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    cJSON *o = NULL;
    const struct lab_machine *via;
    struct talos_etcd_member *v;
    size_t n;
    struct talos_node node;
    char ip[16];
    if (!l.creds)
        bd_err_set(err, "bootd cannot call the Talos API: %s", l.creds_error);
    else if (members_through(c, &l, NULL, &via, &v, &n, &node, ip, err) == 0) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "through", via->name);
        cJSON *a = cJSON_AddArrayToObject(o, "members");
        for (size_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            char id[24];
            snprintf(id, sizeof id, "%" PRIx64, v[i].id);
            cJSON_AddStringToObject(e, "id", id);
            cJSON_AddStringToObject(e, "hostname", v[i].hostname);
            cJSON_AddStringToObject(e, "peer_url", v[i].peer_url);
            cJSON_AddBoolToObject(e, "learner", v[i].learner);
            cJSON_AddItemToArray(a, e);
        }
        free(v);
    }
    c->env.lab_put(c->env.ud, &l);
    return o;
}

struct cJSON *cluster_machine_replace(struct cluster *c, const char *name, struct bd_err *err)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    cJSON *o = NULL;
    const struct lab_machine *m = lab_machine_by_name(l.lab, name);
    char msg[1400];
    if (!m) {
        bd_err_set(err, "no machine named \"%s\" in %s", name, l.lab->path);
        goto out;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "role", lab_role_name(m->role));
    snprintf(msg, sizeof msg, "%s replaced: told to install again", m->name);
    if (m->role == LAB_ROLE_CONTROLPLANE) {
        if (!l.creds) {
            bd_err_set(err, "bootd cannot call the Talos API: %s", l.creds_error);
            goto fail;
        }
        const struct lab_machine *via;
        struct talos_etcd_member *v;
        size_t n;
        struct talos_node node;
        char ip[16];
        if (members_through(c, &l, m, &via, &v, &n, &node, ip, err) < 0) {
            bd_err_prefix(err, "cannot reach etcd to remove %s's member (is quorum lost? then "
                               "bootctl rebuild)",
                          m->name);
            goto fail;
        }
        const char *host = m->hostname ? m->hostname : m->name;
        const struct talos_etcd_member *mine = NULL;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(v[i].hostname, host))
                mine = &v[i];
        cJSON_AddStringToObject(o, "through", via->name);
        if (mine) {
            int code;
            struct bd_err e;
            char id[24];
            snprintf(id, sizeof id, "%" PRIx64, mine->id);
            if (c->env.talos_etcd_remove_member(c->env.ud, &node, mine->id, &code, &e) < 0 &&
                code != TALOS_NOT_FOUND) {
                bd_err_set(err, "removing %s's etcd member %s through %s: %s", m->name, id,
                           via->name, e.msg);
                free(v);
                goto fail;
            }
            cJSON_AddStringToObject(o, "removed_member", id);
            snprintf(msg, sizeof msg,
                     "%s replaced: its etcd member %s removed through %s; told to install again",
                     m->name, id, via->name);
        } else {
            cJSON_AddNullToObject(o, "removed_member");
        }
        free(v);
    }
    char mac[18];
    bd_mac_format(&m->mac, mac);
    if (state_machine_set_reinstall(c->env.store, mac, true, err) < 0)
        goto fail; /* no row: never seen, it installs anyway */
    char vm[1024];
    if (cluster_replace_vm(c, l.lab, m->name, vm, sizeof vm, err) < 0) {
        /* what was done stays done: a second replace finds no member and goes on */
        bd_err_prefix(err, "%s is told to install again%s, but its VM was not recreated "
                           "(run bootctl machine replace %s again once Proxmox answers)",
                      m->name, cJSON_GetObjectItemCaseSensitive(o, "removed_member") &&
                                       cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "removed_member"))
                                   ? " and its etcd member is removed"
                                   : "",
                      m->name);
        cluster_event(c, "replace", m, "machine-replace-failed", err->msg);
        goto fail;
    }
    bd_json_add_str_or_null(o, "vm", vm[0] ? vm : NULL);
    if (vm[0]) {
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof msg - len, "; Proxmox: %.300s", vm);
    }
    cluster_event(c, "replace", m, "machine-replace", msg);
    cluster_kick(c);
    goto out;
fail:
    cJSON_Delete(o);
    o = NULL;
out:
    c->env.lab_put(c->env.ud, &l);
    return o;
}
