/* bootctl vm: the lab's Proxmox VMs, straight from lab.yaml to the Proxmox VE API. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: bootctl vm list     [--lab PATH]             every VM: power, MAC, lab machine\n"
          "       bootctl vm plan     [--lab PATH] [--state-dir DIR]\n"
          "                                                    create/change/ok/not-in-lab per VM\n"
          "       bootctl vm apply    [--lab PATH] [--state-dir DIR] [NAME...]\n"
          "                                                    create, change and start the VMs\n"
          "       bootctl vm start|stop|shutdown|reset [--lab PATH] NAME...\n"
          "       bootctl vm destroy  [--lab PATH] [--yes] [--kubeconfig FILE] [--force-data-loss] NAME...\n"
          "                                                    stop, then delete VM and own disks;\n"
          "                                                    refused while a PersistentVolume names one\n"
          "       bootctl vm volumes  [--lab PATH] [--owner VMID] [apply]\n"
          "                                                    proxmox.volumes (vm-9999-*): listed, or\n"
          "                                                    created when missing (apply)\n"
          "       bootctl vm csi      [--lab PATH] [-o FILE|-]\n"
          "                                                    credentials for the Proxmox CSI plugin and\n"
          "                                                    its Secret (./proxmox-csi-plugin.yaml)\n"
          "lab.yaml defaults to ./lab.yaml; its proxmox: section says where and how to connect.\n"
          "plan and apply keep each VM's smbios1 uuid in DIR/state.db (default /var/lib/bootd).\n",
          f);
}

static void ctx_free(struct cli_vm *v)
{
    if (v->st)
        state_close(v->st);
    proxmox_close(v->px);
    proxmox_lab_free(&v->pl);
    lab_free(v->lab);
}

static int ctx_open(struct cli_vm *v, const char *lab_path, struct bd_err *err)
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

/* A uuid state.db recorded for a machine replaces the proposed (derived) one: chosen
 * once, it stays through renames of the machine or the cluster. */
static int uuids_from_state(struct cli_vm *v, const char *state_dir, struct bd_err *err)
{
    if (state_open(state_dir, &v->st, err) < 0)
        return bd_err_prefix(err, "state dir %s (--state-dir)", state_dir);
    for (size_t i = 0; i < v->pl.n; i++) {
        struct proxmox_vm_spec *s = &v->pl.specs[i];
        struct state_vm_uuid u;
        int found = s->uuid_adopt ? state_vm_uuid_get(v->st, s->mac, &u, err) : 0;
        if (found < 0)
            return -1;
        if (found) {
            memcpy(s->uuid, u.uuid, sizeof s->uuid);
            s->uuid_adopt = false;
        }
    }
    return 0;
}

/* Before apply touches a VM: the uuid it has or gets is recorded, so a VM made later
 * (a rebuild) gets the same one. */
static int uuids_record(struct cli_vm *v, const struct proxmox_plan *plan, struct bd_err *err)
{
    for (size_t i = 0; i < plan->n; i++) {
        const struct proxmox_plan_item *it = &plan->v[i];
        if (!it->spec || it->action == PROXMOX_CONFLICT)
            continue;
        /* lab.yaml's uuid replaces the record: removed from lab.yaml later, it stays */
        const char *source = it->uuid_adopted ? "adopted" : "derived";
        for (size_t k = 0; k < v->lab->nmachines && !it->spec->uuid_adopt; k++)
            if (!strcmp(v->lab->machines[k].name, it->spec->machine) && v->lab->machines[k].uuid)
                source = "lab";
        if ((it->spec->uuid_adopt || !strcmp(source, "lab")) &&
            state_vm_uuid_record(v->st, it->spec->mac, it->uuid, source, err) < 0)
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

static int vm_plan(struct cli_vm *v)
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
static int pick(struct cli_vm *v, int argc, char **argv, struct proxmox_vm_spec **out,
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

static int vm_apply(struct cli_vm *v, int argc, char **argv)
{
    struct proxmox_vm_spec *specs;
    size_t n;
    if (pick(v, argc, argv, &specs, &n, true) < 0)
        return 1;
    struct proxmox_plan plan;
    struct bd_err err;
    struct report r = {.json = v->json, .steps = cJSON_CreateArray()};
    int rc = 0;
    if (proxmox_plan(v->px, specs, n, &plan, &err) < 0 || uuids_record(v, &plan, &err) < 0 ||
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

static int vm_power(struct cli_vm *v, const char *action, int argc, char **argv)
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

static int vm_destroy(struct cli_vm *v, bool yes, struct cli_pv_check *pv, int argc, char **argv)
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
        struct proxmox_destroy_opts o = {.protected_ids = v->pl.protected_ids,
                                         .nprotected = v->pl.nprotected,
                                         .check = cli_vm_pv_check, .ud = pv};
        if (proxmox_destroy(v->px, specs[i].node, specs[i].vmid, what, &o, &err) < 0) {
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


/* Every VM on the cluster, with the lab machine its MAC belongs to. */
static int vm_list(struct cli_vm *v)
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


int cli_cmd_vm(int argc, char **argv, bool json)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *lab_path = "lab.yaml", *out = "proxmox-csi-plugin.yaml";
    const char *state_dir = "/var/lib/bootd", *kubeconfig = NULL;
    bool force = false;
    bool yes = false;
    int owner = PROXMOX_CSI_VMID;
    static const struct option opts[] = {
        {"lab", required_argument, NULL, 'l'},
        {"yes", no_argument, NULL, 'y'},
        {"owner", required_argument, NULL, 'w'},
        {"state-dir", required_argument, NULL, 's'},
        {"kubeconfig", required_argument, NULL, 'k'},
        {"force-data-loss", no_argument, NULL, 'F'},
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
        case 's': state_dir = optarg; break;
        case 'k': kubeconfig = optarg; break;
        case 'F': force = true; break;
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
    struct cli_vm v = {.json = json};
    struct bd_err err;
    int rc;
    bool uses_state = !strcmp(sub, "plan") || !strcmp(sub, "apply");
    if (ctx_open(&v, lab_path, &err) < 0 || (uses_state && uuids_from_state(&v, state_dir, &err) < 0)) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        rc = 1;
    } else if (!strcmp(sub, "plan")) {
        rc = vm_plan(&v);
    } else if (!strcmp(sub, "apply")) {
        rc = vm_apply(&v, nargs, args);
    } else if (!strcmp(sub, "destroy")) {
        struct cli_pv_check pv = {.lab = v.lab, .kubeconfig = kubeconfig, .force = force};
        rc = vm_destroy(&v, yes, &pv, nargs, args);
        cli_pv_check_free(&pv);
    } else if (!strcmp(sub, "list")) {
        rc = vm_list(&v);
    } else if (!strcmp(sub, "csi")) {
        rc = cli_vm_csi(&v, out);
    } else if (!strcmp(sub, "volumes")) {
        rc = cli_vm_volumes(&v, owner, nargs, args);
    } else {
        rc = vm_power(&v, sub, nargs, args);
    }
    ctx_free(&v);
    return rc;
}
