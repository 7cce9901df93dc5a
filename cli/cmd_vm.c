/* bootctl vm: the lab's Proxmox VMs, straight from lab.yaml to the Proxmox VE API. */
#include "cli.h"

#include "../proxmox/proxmox.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: bootctl vm list     [--lab PATH]             every VM: power, MAC, lab machine\n"
          "       bootctl vm plan     [--lab PATH]             create/change/ok/not-in-lab per VM\n"
          "       bootctl vm apply    [--lab PATH] [NAME...]   create, change and start the VMs\n"
          "       bootctl vm start|stop|shutdown|reset [--lab PATH] NAME...\n"
          "       bootctl vm destroy  [--lab PATH] [--yes] NAME...\n"
          "                                                    stop, then delete VM and own disks\n"
          "       bootctl vm volumes  [--lab PATH] [--owner VMID] [apply]\n"
          "                                                    proxmox.volumes (vm-9999-*): listed, or\n"
          "                                                    created when missing (apply)\n"
          "       bootctl vm csi      [--lab PATH] [-o FILE|-]\n"
          "                                                    credentials for the Proxmox CSI plugin and\n"
          "                                                    its Secret (./proxmox-csi-plugin.yaml)\n"
          "lab.yaml defaults to ./lab.yaml; its proxmox: section says where and how to connect.\n",
          f);
}

struct vm_ctx {
    struct lab *lab;
    struct proxmox_lab pl;
    struct proxmox *px;
    bool json;
};

static void ctx_free(struct vm_ctx *v)
{
    proxmox_close(v->px);
    proxmox_lab_free(&v->pl);
    lab_free(v->lab);
}

static int ctx_open(struct vm_ctx *v, const char *lab_path, struct bd_err *err)
{
    if (lab_load(lab_path, NULL, NULL, &v->lab, err) < 0 ||
        proxmox_lab_load(v->lab, &v->pl, err) < 0 ||
        proxmox_open(&v->pl.cfg, &v->px, err) < 0)
        return -1;
    /* the first call proves address, TLS and token, and names the field when one is wrong */
    if (proxmox_check_node(v->px, "proxmox.node", v->lab->proxmox.node, err) < 0)
        return -1;
    for (size_t i = 0; i < v->pl.n; i++) {
        const struct proxmox_vm_spec *s = &v->pl.specs[i];
        if (strcmp(s->node, v->lab->proxmox.node) == 0)
            continue;
        char *field = bd_xasprintf("machine %s: proxmox.node", s->machine);
        int rc = proxmox_check_node(v->px, field, s->node, err);
        free(field);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static const char *dash(const char *s)
{
    return s && *s ? s : "-";
}

static void print_plan(const struct proxmox_plan *p)
{
    static const char *const hdr[] = {"ACTION", "VMID", "MACHINE", "NAME", "NODE", "STATUS", "DETAIL"};
    struct table *t = cli_table_new(7, hdr);
    for (size_t i = 0; i < p->n; i++) {
        const struct proxmox_plan_item *it = &p->v[i];
        struct bd_buf d;
        bd_buf_init(&d);
        bd_buf_puts(&d, "");
        for (size_t k = 0; k < it->nchanges; k++)
            bd_buf_printf(&d, "%s%s: %s -> %s", k ? "; " : "", it->changes[k].key,
                          it->changes[k].from ? it->changes[k].from : "(none)", it->changes[k].to);
        if (it->reason)
            bd_buf_puts(&d, it->reason);
        char vmid[16];
        snprintf(vmid, sizeof vmid, "%d", it->vmid);
        const char *row[] = {proxmox_action_name(it->action), vmid, dash(it->machine), dash(it->name),
                             dash(it->node), it->status ? it->status : "(missing)", dash(d.data)};
        cli_table_add(t, row);
        bd_buf_free(&d);
    }
    cli_table_print(t, stdout);
}

static int vm_plan(struct vm_ctx *v)
{
    struct proxmox_plan plan;
    struct bd_err err;
    if (proxmox_plan(v->px, v->pl.specs, v->pl.n, &plan, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    int conflicts = 0;
    for (size_t i = 0; i < plan.n; i++)
        conflicts += plan.v[i].action == PROXMOX_CONFLICT;
    if (v->json) {
        cJSON *j = proxmox_plan_json(&plan);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        print_plan(&plan);
    }
    proxmox_plan_free(&plan);
    return conflicts ? 1 : 0;
}

struct report {
    bool json;
    cJSON *steps;
    int n;
};

static void on_step(const struct proxmox_plan_item *it, const char *what, void *ud)
{
    struct report *r = ud;
    r->n++;
    if (r->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "machine", it->machine);
        cJSON_AddNumberToObject(o, "vmid", it->vmid);
        cJSON_AddStringToObject(o, "step", what);
        cJSON_AddItemToArray(r->steps, o);
    } else {
        printf("%s (VM %d): %s\n", it->machine, it->vmid, what);
        fflush(stdout);
    }
}

/* The specs named on the command line (all without names); -1 names an unknown one. */
static int pick(struct vm_ctx *v, int argc, char **argv, struct proxmox_vm_spec **out,
                size_t *n, bool all_by_default)
{
    if (argc == 0 && all_by_default) {
        *out = bd_xcalloc(v->pl.n ? v->pl.n : 1, sizeof **out);
        memcpy(*out, v->pl.specs, v->pl.n * sizeof **out);
        *n = v->pl.n;
        return 0;
    }
    *out = bd_xcalloc((size_t)argc + 1, sizeof **out);
    *n = 0;
    for (int i = 0; i < argc; i++) {
        const struct proxmox_vm_spec *s = proxmox_lab_find(&v->pl, argv[i]);
        if (!s) {
            fprintf(stderr, "bootctl: no machine \"%s\" with a proxmox: section in %s\n", argv[i],
                    v->lab->path);
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[(*n)++] = *s;
    }
    return 0;
}

static int vm_apply(struct vm_ctx *v, int argc, char **argv)
{
    struct proxmox_vm_spec *specs;
    size_t n;
    if (pick(v, argc, argv, &specs, &n, true) < 0)
        return 1;
    struct proxmox_plan plan;
    struct bd_err err;
    struct report r = {.json = v->json, .steps = cJSON_CreateArray()};
    int rc = 0;
    if (proxmox_plan(v->px, specs, n, &plan, &err) < 0 ||
        proxmox_apply(v->px, &plan, v->pl.protected_ids, v->pl.nprotected, on_step, &r, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        rc = 1;
    }
    if (rc == 0 || plan.v) {
        if (v->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "steps", r.steps);
            r.steps = NULL;
            cJSON_AddBoolToObject(o, "ok", rc == 0);
            cli_print_json(o);
            cJSON_Delete(o);
        } else if (rc == 0 && r.n == 0) {
            printf("nothing to do: %zu VM%s as lab.yaml says, and running\n", n, n == 1 ? "" : "s");
        }
        for (size_t i = 0; i < plan.n; i++)
            if (plan.v[i].action == PROXMOX_NOT_IN_LAB && !v->json)
                printf("VM %d (%s) is tagged bootd but not in lab.yaml; left alone\n",
                       plan.v[i].vmid, plan.v[i].name);
        proxmox_plan_free(&plan);
    }
    cJSON_Delete(r.steps);
    free(specs);
    return rc;
}

static int vm_power(struct vm_ctx *v, const char *action, int argc, char **argv)
{
    struct proxmox_vm_spec *specs;
    size_t n;
    if (argc == 0) {
        fprintf(stderr, "bootctl: vm %s needs the names of the machines\n", action);
        return 2;
    }
    if (pick(v, argc, argv, &specs, &n, false) < 0)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct bd_err err;
        char *what = bd_xasprintf("VM %d (%s)", specs[i].vmid, specs[i].machine);
        if (proxmox_check_vmid(specs[i].vmid, v->pl.protected_ids, v->pl.nprotected, what, &err) < 0 ||
            proxmox_power(v->px, specs[i].node, specs[i].vmid, what, action, &err) < 0) {
            fprintf(stderr, "bootctl: %s\n", err.msg);
            rc = 1;
        } else if (!v->json) {
            printf("%s: %s done\n", what, action);
        }
        free(what);
    }
    free(specs);
    return rc;
}

static bool confirmed(const struct proxmox_vm_spec *specs, size_t n)
{
    fprintf(stderr, "This stops and deletes, with their scsi0 and EFI disks:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  VM %d (%s) on %s\n", specs[i].vmid, specs[i].machine, specs[i].node);
    fprintf(stderr, "Type \"yes\" to go on: ");
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return !strcmp(line, "yes");
}

static int vm_destroy(struct vm_ctx *v, bool yes, int argc, char **argv)
{
    struct proxmox_vm_spec *specs;
    size_t n;
    if (argc == 0) {
        fprintf(stderr, "bootctl: vm destroy needs the names of the machines\n");
        return 2;
    }
    if (pick(v, argc, argv, &specs, &n, false) < 0)
        return 1;
    int rc = 0;
    if (!yes && !confirmed(specs, n)) {
        fprintf(stderr, "bootctl: nothing destroyed\n");
        rc = 1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct bd_err err;
        char *what = bd_xasprintf("VM %d (%s)", specs[i].vmid, specs[i].machine);
        if (proxmox_destroy(v->px, specs[i].node, specs[i].vmid, what, v->pl.protected_ids,
                            v->pl.nprotected, &err) < 0) {
            fprintf(stderr, "bootctl: %s\n", err.msg);
            rc = 1;
        } else if (!v->json) {
            printf("%s: destroyed\n", what);
        }
        free(what);
    }
    free(specs);
    return rc;
}

static const char *vol_storage(const struct vm_ctx *v, const struct lab_proxmox_volume *lv)
{
    if (lv && lv->storage)
        return lv->storage;
    return v->lab->proxmox.storage ? v->lab->proxmox.storage : "local-lvm";
}

static const char *vol_node(const struct vm_ctx *v, const struct lab_proxmox_volume *lv)
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
static int vol_rows(struct vm_ctx *v, int owner, struct vol_row **rows, size_t *nrows,
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

static int vm_volumes_apply(struct vm_ctx *v)
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

static int vm_volumes(struct vm_ctx *v, int owner, int argc, char **argv)
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

/* Every VM on the cluster, with the lab machine its MAC belongs to. */
static int vm_list(struct vm_ctx *v)
{
    struct proxmox_vm_info *vms;
    size_t n;
    struct bd_err err;
    if (proxmox_inventory(v->px, &vms, &n, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    static const char *const hdr[] = {"VMID", "NAME", "NODE", "STATUS", "MACHINE", "BOOTD", "MAC"};
    struct table *t = v->json ? NULL : cli_table_new(7, hdr);
    cJSON *arr = v->json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < n; i++) {
        const struct lab_machine *m = NULL;
        char mac[18] = "-", vmid[16];
        for (size_t k = 0; k < vms[i].nmacs && !m; k++)
            m = lab_machine_by_mac(v->lab, &vms[i].macs[k]);
        if (vms[i].nmacs)
            bd_mac_format(&vms[i].macs[0], mac);
        snprintf(vmid, sizeof vmid, "%d", vms[i].vmid);
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "vmid", vms[i].vmid);
            cJSON_AddStringToObject(o, "name", vms[i].name);
            cJSON_AddStringToObject(o, "node", vms[i].node);
            cJSON_AddStringToObject(o, "status", vms[i].status);
            if (m)
                cJSON_AddStringToObject(o, "machine", m->name);
            else
                cJSON_AddNullToObject(o, "machine");
            cJSON_AddBoolToObject(o, "bootd", vms[i].bootd);
            cJSON *macs = cJSON_AddArrayToObject(o, "macs");
            for (size_t k = 0; k < vms[i].nmacs; k++) {
                char s[18];
                bd_mac_format(&vms[i].macs[k], s);
                cJSON_AddItemToArray(macs, cJSON_CreateString(s));
            }
            cJSON_AddItemToArray(arr, o);
        } else {
            const char *row[] = {vmid, dash(vms[i].name), vms[i].node, vms[i].status,
                                 m ? m->name : "-", vms[i].bootd ? "yes" : "no", mac};
            cli_table_add(t, row);
        }
    }
    if (arr) {
        cli_print_json(arr);
        cJSON_Delete(arr);
    } else {
        cli_table_print(t, stdout);
    }
    proxmox_inventory_free(vms, n);
    return 0;
}

static int vm_csi(struct vm_ctx *v, const char *out)
{
    char *secret_file = bd_xasprintf("%s/proxmox-csi.token", v->lab->dir);
    struct proxmox_csi_cfg cfg = {
        .role = "CSI", .user = "kubernetes-csi@pve", .token = "csi", .secret_file = secret_file,
    };
    char *token_id, *secret;
    struct bd_err err;
    int rc = 0;
    if (proxmox_csi_ensure(v->px, &cfg, &token_id, &secret, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        free(secret_file);
        return 1;
    }
    char *yaml = proxmox_csi_secret_yaml(v->lab->proxmox.api, v->lab->cluster.name, token_id,
                                         secret, !v->lab->proxmox.verify_tls);
    if (cli_put(out, yaml, strlen(yaml), &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        rc = 1;
    } else if (strcmp(out, "-")) {
        fprintf(stderr, "token %s (secret kept in %s); Secret csi-proxmox/proxmox-csi-plugin "
                        "written to %s\n", token_id, secret_file, out);
    }
    explicit_bzero(yaml, strlen(yaml));
    explicit_bzero(secret, strlen(secret));
    free(yaml);
    free(secret);
    free(token_id);
    free(secret_file);
    return rc;
}

int cli_cmd_vm(int argc, char **argv, bool json)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *lab_path = "lab.yaml", *out = "proxmox-csi-plugin.yaml";
    bool yes = false;
    int owner = PROXMOX_CSI_VMID;
    static const struct option opts[] = {
        {"lab", required_argument, NULL, 'l'},
        {"yes", no_argument, NULL, 'y'},
        {"owner", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc - 1, argv + 1, "ho:", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'l': lab_path = optarg; break;
        case 'y': yes = true; break;
        case 'w': owner = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int nargs = argc - 1 - optind;
    char **args = argv + 1 + optind;
    static const char *const power[] = {"start", "stop", "shutdown", "reset", NULL};
    bool known = !strcmp(sub, "plan") || !strcmp(sub, "apply") || !strcmp(sub, "destroy") ||
                 !strcmp(sub, "volumes") || !strcmp(sub, "csi") || !strcmp(sub, "list");
    for (int i = 0; power[i]; i++)
        known = known || !strcmp(sub, power[i]);
    if (!known) {
        fprintf(stderr, "bootctl: unknown vm command \"%s\"\n", sub);
        usage(stderr);
        return 2;
    }
    struct vm_ctx v = {.json = json};
    struct bd_err err;
    int rc;
    if (ctx_open(&v, lab_path, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        rc = 1;
    } else if (!strcmp(sub, "plan")) {
        rc = vm_plan(&v);
    } else if (!strcmp(sub, "apply")) {
        rc = vm_apply(&v, nargs, args);
    } else if (!strcmp(sub, "destroy")) {
        rc = vm_destroy(&v, yes, nargs, args);
    } else if (!strcmp(sub, "list")) {
        rc = vm_list(&v);
    } else if (!strcmp(sub, "csi")) {
        rc = vm_csi(&v, out);
    } else if (!strcmp(sub, "volumes")) {
        rc = vm_volumes(&v, owner, nargs, args);
    } else {
        rc = vm_power(&v, sub, nargs, args);
    }
    ctx_free(&v);
    return rc;
}
