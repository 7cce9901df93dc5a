#include "helpers.h"

#include "../../proxmox/proxmox.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct proxmox_vm_spec spec(bool ovmf)
{
    struct proxmox_vm_spec s = {
        .machine = "ctrl-00", .name = "ctrl-00", .vmid = 8101, .node = "host3",
        .storage = "rpool3", .vlan = 150, .memory_mib = 3072, .cores = 8, .ovmf = ovmf,
        .description = "Managed by bootd", .ntags = 1, .tags = {"controlplane"},
    };
    strcpy(s.mac, "bc:24:11:ae:18:ad");
    proxmox_spec_defaults(&s, "kube");
    return s;
}

static const char *param(const struct proxmox_params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].key, key))
            return p->v[i].value;
    return NULL;
}

Test(proxmox, create_parameters)
{
    struct proxmox_vm_spec s = spec(false);
    struct proxmox_params p;
    proxmox_spec_params(&s, true, &p);
    cr_assert_str_eq(param(&p, "vmid"), "8101");
    cr_assert_str_eq(param(&p, "net0"), "virtio=BC:24:11:AE:18:AD,bridge=vmbr0,tag=150");
    cr_assert_str_eq(param(&p, "scsi0"), "rpool3:32,iothread=1,discard=on,ssd=1");
    cr_assert_str_eq(param(&p, "boot"), "order=scsi0;net0");
    cr_assert_str_eq(param(&p, "tags"), "bootd;controlplane");
    cr_assert_str_eq(param(&p, "bios"), "seabios");
    cr_assert_str_eq(param(&p, "machine"), "q35");
    cr_assert_str_eq(param(&p, "memory"), "3072");
    cr_assert_str_eq(param(&p, "onboot"), "1");
    cr_assert_null(param(&p, "efidisk0"));
    cr_assert(strncmp(param(&p, "smbios1"), "uuid=", 5) == 0);
    proxmox_params_free(&p);

    s = spec(true);
    s.vlan = 0;
    proxmox_spec_params(&s, true, &p);
    cr_assert_str_eq(param(&p, "bios"), "ovmf");
    cr_assert_str_eq(param(&p, "efidisk0"), "rpool3:1,efitype=4m,pre-enrolled-keys=0");
    cr_assert_str_eq(param(&p, "net0"), "virtio=BC:24:11:AE:18:AD,bridge=vmbr0");
    proxmox_params_free(&p);

    /* compared, not created: no vmid and no disk allocation */
    proxmox_spec_params(&s, false, &p);
    cr_assert_null(param(&p, "vmid"));
    cr_assert_null(param(&p, "scsi0"));
    cr_assert_null(param(&p, "efidisk0"));
    proxmox_params_free(&p);
}

Test(proxmox, smbios_uuid_is_stable_and_given_one_wins)
{
    struct proxmox_vm_spec a = spec(false), b = spec(false);
    cr_assert_str_eq(a.uuid, b.uuid);
    cr_assert_eq(strlen(a.uuid), 36);
    cr_assert_eq(a.uuid[14], '5'); /* version 5 layout */
    struct proxmox_vm_spec c = {.vmid = 8102};
    strcpy(c.mac, "bc:24:11:ae:18:ae");
    proxmox_spec_defaults(&c, "kube");
    cr_assert_str_neq(a.uuid, c.uuid);
    struct proxmox_vm_spec d = {.vmid = 8103};
    strcpy(d.mac, "bc:24:11:ae:18:af");
    strcpy(d.uuid, "4C4C4544-0000-1000-8000-000000000001");
    proxmox_spec_defaults(&d, "kube");
    cr_assert_str_eq(d.uuid, "4c4c4544-0000-1000-8000-000000000001");
}

Test(proxmox, upid_parsing)
{
    struct proxmox_upid u;
    cr_assert_eq(proxmox_upid_parse("UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:", &u), 0);
    cr_assert_str_eq(u.node, "pve");
    cr_assert_str_eq(u.type, "qmcreate");
    cr_assert_str_eq(u.id, "101");
    cr_assert_str_eq(u.user, "root@pam");
    cr_assert_eq(proxmox_upid_parse("UPID:pve-srv:0012D68C:8206F38C:65144CB7:qmcreate:501:root@pam!bootd:", &u), 0);
    cr_assert_str_eq(u.node, "pve-srv");
    cr_assert_str_eq(u.user, "root@pam!bootd");
    cr_assert_eq(proxmox_upid_parse("UPID:pve:00061CB3:010BA69C:64EFECB0:imgcopy::root@pam:", &u), 0);
    cr_assert_str_eq(u.id, "");
    const char *bad[] = {
        "", "UPID:", "upid:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",
        "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam",   /* no final colon */
        "UPID:pve:0006XCB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",  /* not hex */
        "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root:",      /* no realm */
        "UPID:pve/x:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:", /* node with a slash */
        "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:extra:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(proxmox_upid_parse(bad[i], &u), -1, "%s", bad[i]);
}

Test(proxmox, property_strings)
{
    const char *net = "virtio=BC:24:11:AE:18:AD,bridge=vmbr0,firewall=1,tag=150";
    char *v;
    cr_assert_str_eq(v = proxmox_prop_get(net, "model"), "virtio");
    free(v);
    cr_assert_str_eq(v = proxmox_prop_get(net, "macaddr"), "BC:24:11:AE:18:AD");
    free(v);
    cr_assert_str_eq(v = proxmox_prop_get(net, "tag"), "150");
    free(v);
    cr_assert_null(proxmox_prop_get(net, "mtu"));
    /* bpg's spelling: model=..,macaddr=.. */
    cr_assert_str_eq(v = proxmox_prop_get("model=e1000,bridge=vmbr1,macaddr=52:54:00:00:00:01", "macaddr"),
                     "52:54:00:00:00:01");
    free(v);
    cr_assert_str_eq(v = proxmox_prop_get("local-lvm:vm-8101-disk-0,size=32G", "file"),
                     "local-lvm:vm-8101-disk-0");
    free(v);
    cr_assert_str_eq(v = proxmox_prop_get("file=local-lvm:vm-8101-disk-0,size=32G", "file"),
                     "local-lvm:vm-8101-disk-0");
    free(v);
}

Test(proxmox, volume_owner)
{
    cr_assert_eq(proxmox_volume_owner("vm-9999-pv-sonarr"), 9999);
    cr_assert_eq(proxmox_volume_owner("vm-8101-disk-0"), 8101);
    cr_assert_eq(proxmox_volume_owner("base-100-disk-0/vm-101-disk-0"), 101);
    cr_assert_eq(proxmox_volume_owner("8101/vm-8101-disk-0.qcow2"), 8101); /* file-backed */
    cr_assert_eq(proxmox_volume_owner("vm-8101-disk-0.qcow2"), 8101);
    cr_assert_eq(proxmox_volume_owner("vm-99-disk-0"), 0);    /* at least 3 digits */
    cr_assert_eq(proxmox_volume_owner("vm-0100-disk-0"), 0);  /* no leading zero */
    cr_assert_eq(proxmox_volume_owner("myvm-8101-disk-0"), 0);
    cr_assert_eq(proxmox_volume_owner("subvol-8101-disk-0"), 0);
}

Test(proxmox, protected_vmids)
{
    struct bd_err err;
    int protected_ids[] = {8000, 8001};
    cr_assert_eq(proxmox_check_vmid(8101, protected_ids, 2, "machine a", &err), 0);
    cr_assert_eq(proxmox_check_vmid(9999, NULL, 0, "machine a", &err), -1);
    cr_assert(strstr(err.msg, "vm-9999-*"), "%s", err.msg);
    cr_assert_eq(proxmox_check_vmid(8001, protected_ids, 2, "machine b", &err), -1);
    cr_assert(strstr(err.msg, "machine b: VM id 8001 is listed in proxmox.protected_vmids"), "%s", err.msg);
}

/* vm destroy checks the id itself, before it asks Proxmox anything: lab.yaml refuses these
 * ids, but the destroy must hold without it. Port 1 on loopback: a request would fail with
 * a connection error instead of the refusal. */
Test(proxmox, destroy_refuses_protected_ids_before_any_request)
{
    char *dir = tmpdir_new();
    char *token = write_file(dir, "token", "bootd@pve!bootd=00000000-0000-0000-0000-000000000000\n");
    cr_assert_eq(chmod(token, 0600), 0);
    struct proxmox_cfg cfg = {.api = "https://127.0.0.1:1", .token_file = token};
    struct proxmox *px;
    struct bd_err err;
    cr_assert_eq(proxmox_open(&cfg, &px, &err), 0, "%s", err.msg);
    int protected_ids[] = {8000, 8001};
    struct proxmox_destroy_opts o = {.protected_ids = protected_ids, .nprotected = 2};
    cr_assert_eq(proxmox_destroy(px, "host3", 8001, "VM 8001 (w)", &o, &err), -1);
    cr_assert(strstr(err.msg, "VM 8001 (w): VM id 8001 is listed in proxmox.protected_vmids"),
              "%s", err.msg);
    struct proxmox_destroy_opts none = {0};
    cr_assert_eq(proxmox_destroy(px, "host3", PROXMOX_CSI_VMID, "VM 9999", &none, &err), -1);
    cr_assert(strstr(err.msg, "vm-9999-*"), "%s", err.msg);
    proxmox_close(px);
    free(token);
    tmpdir_remove(dir);
    free(dir);
}

static void plan_of(const struct proxmox_vm_spec *s, const char *config_json,
                    struct proxmox_plan_item *it)
{
    cJSON *c = config_json ? cJSON_Parse(config_json) : NULL;
    cr_assert(config_json == NULL || c != NULL);
    proxmox_plan_vm(s, c, "host3", c ? "running" : NULL, it);
    cJSON_Delete(c);
}

Test(proxmox, plan_computation)
{
    struct proxmox_vm_spec s = spec(true);
    struct proxmox_plan_item it;
    plan_of(&s, NULL, &it);
    cr_assert_eq(it.action, PROXMOX_CREATE);
    struct proxmox_plan p = {.n = 1, .v = bd_xcalloc(1, sizeof it)};
    p.v[0] = it;
    proxmox_plan_free(&p);

    /* what PVE answers for a VM made from this spec: numbers, its own extra keys,
     * other tag order, lower-case MAC, cputype= spelling */
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"name\":\"ctrl-00\",\"memory\":\"3072\",\"cores\":8,\"cpu\":\"cputype=host\","
             "\"machine\":\"q35\",\"bios\":\"ovmf\",\"ostype\":\"l26\",\"scsihw\":\"virtio-scsi-single\","
             "\"net0\":\"virtio=bc:24:11:ae:18:ad,bridge=vmbr0,firewall=1,tag=150\","
             "\"boot\":\"order=scsi0;net0\",\"smbios1\":\"uuid=%s\",\"onboot\":1,"
             "\"tags\":\"controlplane;bootd\",\"description\":\"Managed by bootd\\n\","
             "\"scsi0\":\"rpool3:vm-8101-disk-0,size=32G\",\"efidisk0\":\"rpool3:vm-8101-disk-1,size=528K\","
             "\"digest\":\"abc\",\"vmgenid\":\"x\"}",
             s.uuid);
    plan_of(&s, cfg, &it);
    cr_assert_eq(it.action, PROXMOX_OK, "%zu changes, first %s", it.nchanges,
                 it.nchanges ? it.changes[0].key : "");
    cr_assert_str_eq(it.digest, "abc");
    p.n = 1;
    p.v = bd_xcalloc(1, sizeof it);
    p.v[0] = it;
    proxmox_plan_free(&p);

    /* memory and the VLAN differ, the efidisk is missing */
    s.memory_mib = 4096;
    s.vlan = 0;
    char *changed = bd_xstrdup(cfg);
    char *e = strstr(changed, ",\"efidisk0\"");
    memmove(e, strstr(e, ",\"digest\""), strlen(strstr(e, ",\"digest\"")) + 1);
    plan_of(&s, changed, &it);
    cr_assert_eq(it.action, PROXMOX_CHANGE);
    cr_assert_eq(it.nchanges, 3);
    cr_assert_str_eq(it.changes[0].key, "memory");
    cr_assert_str_eq(it.changes[0].from, "3072");
    cr_assert_str_eq(it.changes[0].to, "4096");
    cr_assert_str_eq(it.changes[1].key, "net0");
    cr_assert_str_eq(it.changes[1].to, "virtio=BC:24:11:AE:18:AD,bridge=vmbr0");
    cr_assert_str_eq(it.changes[2].key, "efidisk0");
    cr_assert_null(it.changes[2].from);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);
    free(changed);

    /* the vmid is taken by a VM without the bootd tag */
    plan_of(&s, "{\"name\":\"db\",\"tags\":\"prod\"}", &it);
    cr_assert_eq(it.action, PROXMOX_CONFLICT);
    cr_assert(strstr(it.reason, "VM 8101 (db) exists but bootd did not create it"), "%s", it.reason);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);

    /* absent keys count as PVE's defaults */
    plan_of(&s, "{\"tags\":\"bootd\"}", &it);
    cr_assert_eq(it.action, PROXMOX_CHANGE);
    bool bios = false;
    for (size_t i = 0; i < it.nchanges; i++)
        if (!strcmp(it.changes[i].key, "bios"))
            bios = !strcmp(it.changes[i].from, "seabios") && !strcmp(it.changes[i].to, "ovmf");
    cr_assert(bios);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);
}

Test(proxmox, error_bodies_become_sentences)
{
    struct proxmox_params sent = {0};
    struct proxmox_vm_spec s = spec(false);
    proxmox_spec_params(&s, true, &sent);
    char *m = proxmox_error_sentence(
        "VM 8101 (ctrl-00)", "create", 400,
        "{\"data\":null,\"message\":\"Parameter verification failed.\\n\","
        "\"errors\":{\"net0\":\"invalid format - format error\\nnet0.tag: value must have a maximum value of 4094\\n\"}}",
        &sent);
    cr_assert_str_eq(m, "VM 8101 (ctrl-00): create: Proxmox answered 400: Parameter verification "
                        "failed. — parameter net0 = \"virtio=BC:24:11:AE:18:AD,bridge=vmbr0,tag=150\": "
                        "invalid format - format error; net0.tag: value must have a maximum value of 4094");
    free(m);
    proxmox_params_free(&sent);
    m = proxmox_error_sentence("VM 8101 (ctrl-00)", "change config", 500,
                               "{\"data\":null,\"message\":\"VM is locked (backup)\\n\"}", NULL);
    cr_assert_str_eq(m, "VM 8101 (ctrl-00): change config: Proxmox answered 500: VM is locked (backup)");
    free(m);
    m = proxmox_error_sentence("https://pve:8006", "list nodes", 401, "", NULL);
    cr_assert_str_eq(m, "https://pve:8006: list nodes: Proxmox answered 401: authentication failure");
    free(m);
}

static const char lab_vms[] =
    "machines:\n"
    "  - name: cp-1\n"
    "    mac: \"bc:24:11:00:00:01\"\n"
    "    role: controlplane\n"
    "    ip: 192.0.2.11\n"
    "    proxmox: {vmid: 8101, bios: ovmf, vlan: 150, tags: [talos, cp], memory: 3072}\n"
    "  - name: w-1\n"
    "    mac: \"bc:24:11:00:00:02\"\n"
    "    role: worker\n"
    "    hostname: worker-one\n"
    "    proxmox: {vmid: 8201, node: host4, machine: pc, bridge: vmbr1}\n"
    "proxmox:\n"
    "  api: https://pve.example:8006\n"
    "  token_file: pve.token\n"
    "  node: host3\n"
    "  storage: rpool3\n"
    "  vlan: 20\n"
    "  fingerprint: \"ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89\"\n"
    "  protected_vmids: [8000, 8001]\n";

Test(proxmox, lab_to_specs)
{
    char *dir = tmpdir_new();
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_printf(&b, "%s%s", lab_head, lab_vms);
    free(write_file(dir, "lab.yaml", b.data));
    bd_buf_free(&b);
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    struct proxmox_lab pl;
    cr_assert_eq(proxmox_lab_load(lab, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(pl.n, 2);
    cr_assert_str_eq(pl.cfg.fingerprint, "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89");
    cr_assert_eq(pl.nprotected, 2);
    cr_assert_eq(pl.protected_ids[1], 8001);
    const struct proxmox_vm_spec *cp = proxmox_lab_find(&pl, "cp-1");
    cr_assert(cp->ovmf);
    cr_assert_eq(cp->vlan, 150);
    cr_assert_eq(cp->memory_mib, 3072);
    cr_assert_str_eq(cp->node, "host3");
    cr_assert_str_eq(cp->storage, "rpool3");
    cr_assert_str_eq(cp->mac, "BC:24:11:00:00:01");
    cr_assert_eq(cp->ntags, 2);
    cr_assert_str_eq(cp->tags[1], "cp");
    const struct proxmox_vm_spec *w = proxmox_lab_find(&pl, "worker-one");
    cr_assert_not_null(w);
    cr_assert_str_eq(w->name, "worker-one");
    cr_assert_str_eq(w->node, "host4");
    cr_assert_str_eq(w->bridge, "vmbr1");
    cr_assert_str_eq(w->machine_type, "pc");
    cr_assert_eq(w->vlan, 20);
    cr_assert_not(w->ovmf);
    proxmox_lab_free(&pl);
    lab_free(lab);
    tmpdir_remove(dir);
    free(dir);
}

/* Each bad value fails at its own line and column, naming the field. */
Test(proxmox, lab_errors_name_file_line_col)
{
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"vmid: 8201", "vmid: 9999", "lab.yaml:21:21: machines[1].proxmox.vmid: 9999 is the Proxmox CSI"},
        {"vmid: 8201", "vmid: 99", "lab.yaml:21:21: machines[1].proxmox.vmid: 99 is out of range"},
        {"vlan: 150", "vlan: 4095", "lab.yaml:16:45: machines[0].proxmox.vlan: 4095 is out of range"},
        {"bios: ovmf", "bios: uefi", "machines[0].proxmox.bios: \"uefi\" is not one of: seabios, ovmf"},
        {"tags: [talos, cp]", "tags: [talos, Bad Tag]", "machines[0].proxmox.tags[1]: \"Bad Tag\" is not a Proxmox tag"},
        {"memory: 3072", "memory: 8", "machines[0].proxmox.memory: 8 is out of range"},
        {"\"ab:cd:ef:01", "\"ab:cd:ef", "proxmox.fingerprint: \"ab:cd:ef:23:45"},
        {"[8000, 8001]", "[8000, 8101]", "lab.yaml:12: proxmox.vmid: 8101 is listed in proxmox.protected_vmids (machine cp-1)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = tmpdir_new();
        struct bd_buf b;
        bd_buf_init(&b);
        bd_buf_printf(&b, "%s%s", lab_head, lab_vms);
        char *at = strstr(b.data, cases[i].from);
        cr_assert_not_null(at, "%s", cases[i].from);
        struct bd_buf t;
        bd_buf_init(&t);
        bd_buf_printf(&t, "%.*s%s%s", (int)(at - b.data), b.data, cases[i].to, at + strlen(cases[i].from));
        free(write_file(dir, "lab.yaml", t.data));
        struct bd_err err;
        struct lab *lab = load_lab(dir, &err);
        cr_assert_null(lab, "case %zu loaded", i);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
        bd_buf_free(&b);
        bd_buf_free(&t);
        tmpdir_remove(dir);
        free(dir);
    }
}

/* A VM's smbios1 uuid is adopted when nothing fixed the spec's (no lab.yaml uuid, none in
 * state.db); a fixed one is a change. PVE may answer it upper-case. */
Test(proxmox, plan_adopts_an_existing_uuid_unless_one_is_fixed)
{
    struct proxmox_vm_spec s = spec(false);
    s.uuid_adopt = true;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"name\":\"%s\",\"tags\":\"bootd\","
                              "\"smbios1\":\"uuid=4C4C4544-0042-3510-8052-B4C04F4E5A31,manufacturer=eA==\"}",
             s.name);
    struct proxmox_plan_item it;
    plan_of(&s, cfg, &it);
    cr_assert(it.uuid_adopted);
    cr_assert_str_eq(it.uuid, "4c4c4544-0042-3510-8052-b4c04f4e5a31");
    for (size_t i = 0; i < it.nchanges; i++)
        cr_assert_str_neq(it.changes[i].key, "smbios1");
    struct proxmox_plan p = {.n = 1, .v = bd_xcalloc(1, sizeof it)};
    p.v[0] = it;
    proxmox_plan_free(&p);

    s.uuid_adopt = false;
    plan_of(&s, cfg, &it);
    cr_assert_not(it.uuid_adopted);
    cr_assert_str_eq(it.uuid, s.uuid);
    bool changed = false;
    for (size_t i = 0; i < it.nchanges; i++)
        changed = changed || !strcmp(it.changes[i].key, "smbios1");
    cr_assert(changed);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);

    /* no VM yet: the proposed uuid is the one it is created with */
    s.uuid_adopt = true;
    plan_of(&s, NULL, &it);
    cr_assert_str_eq(it.uuid, s.uuid);
    cr_assert_not(it.uuid_adopted);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);
}

/* The plugin's volume ids (pkg/utils/volume/volume.go): region/zone/storage/disk, an
 * empty zone for shared storage, and a file-backed storage's "<vmid>/vm-..." disk. */
Test(proxmox, csi_volume_handles)
{
    char *zone, *volid;
    cr_assert_eq(proxmox_csi_volume("kube/host3/rpool3/vm-9999-pv-sonarr", &zone, &volid), 0);
    cr_assert_str_eq(zone, "host3");
    cr_assert_str_eq(volid, "rpool3:vm-9999-pv-sonarr");
    free(zone);
    free(volid);
    cr_assert_eq(proxmox_csi_volume("kube//ceph/vm-9999-pvc-1", &zone, &volid), 0);
    cr_assert_str_eq(zone, "");
    cr_assert_str_eq(volid, "ceph:vm-9999-pvc-1");
    free(zone);
    free(volid);
    cr_assert_eq(proxmox_csi_volume("kube/host3/local/9999/vm-9999-pv-a.raw", &zone, &volid), 0);
    cr_assert_str_eq(volid, "local:9999/vm-9999-pv-a.raw");
    free(zone);
    free(volid);
    cr_assert_eq(proxmox_csi_volume("kube/host3/rpool3", &zone, &volid), -1);
    cr_assert_eq(proxmox_csi_volume("kube/host3//vm-1", &zone, &volid), -1);
    cr_assert_eq(proxmox_csi_volume("kube/host3/rpool3/", &zone, &volid), -1);
    cr_assert_null(zone);
}

/* The Secret bootd applies: the chart's namespace/name, data (not stringData) holding the
 * plugin's config.yaml. */
Test(proxmox, csi_secret_for_server_side_apply)
{
    cJSON *o = proxmox_csi_secret_json("csi-proxmox", "proxmox-csi-plugin", "https://pve:8006",
                                       "kube", "kubernetes-csi@pve!csi", "s3cr3t", false);
    cJSON *meta = cJSON_GetObjectItem(o, "metadata");
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "namespace")->valuestring, "csi-proxmox");
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "name")->valuestring, "proxmox-csi-plugin");
    cr_assert_null(cJSON_GetObjectItem(o, "stringData"));
    const char *b64 = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "config.yaml")->valuestring;
    unsigned char text[512] = {0};
    int n = EVP_DecodeBlock(text, (const unsigned char *)b64, (int)strlen(b64));
    cr_assert_gt(n, 0);
    cr_assert(strstr((char *)text, "clusters:\n  - url: \"https://pve:8006/api2/json\"\n"), "%s", text);
    cr_assert(strstr((char *)text, "    token_secret: \"s3cr3t\"\n"), "%s", text);
    cr_assert(strstr((char *)text, "    region: \"kube\"\n"), "%s", text);
    cr_assert(strstr((char *)text, "    insecure: false\n"), "%s", text);
    cJSON_Delete(o);
}

Test(proxmox, disk_sizes_and_the_plan_for_a_grown_or_shrunk_disk)
{
    cr_assert_eq(proxmox_size_bytes("32G"), 32LL << 30);
    cr_assert_eq(proxmox_size_bytes("528K"), 528LL << 10);
    cr_assert_eq(proxmox_size_bytes("1.5T"), 3LL << 39);
    cr_assert_eq(proxmox_size_bytes("4096"), 4096);
    cr_assert_eq(proxmox_size_bytes("4X"), -1);
    cr_assert_eq(proxmox_size_bytes("G"), -1);
    cr_assert_eq(proxmox_size_bytes("4GB"), -1);

    struct proxmox_vm_spec s = spec(false);
    s.disk_gib = 40;
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"tags\":\"bootd\",\"scsi0\":\"rpool3:vm-8101-disk-0,size=32G\"}");
    struct proxmox_plan_item it;
    plan_of(&s, cfg, &it);
    cr_assert_eq(it.action, PROXMOX_CHANGE);
    bool grow = false;
    for (size_t i = 0; i < it.nchanges; i++)
        if (!strcmp(it.changes[i].key, PROXMOX_DISK_SIZE_KEY)) {
            grow = true;
            cr_assert_str_eq(it.changes[i].from, "32G");
            cr_assert_str_eq(it.changes[i].to, "40G");
        }
    cr_assert(grow);
    struct proxmox_plan p = {.n = 1, .v = bd_xcalloc(1, sizeof it)};
    p.v[0] = it;
    proxmox_plan_free(&p);

    s.disk_gib = 16;
    plan_of(&s, cfg, &it);
    cr_assert_eq(it.action, PROXMOX_CONFLICT);
    cr_assert(strstr(it.reason, "Proxmox cannot shrink a disk"), "%s", it.reason);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);

    s.disk_gib = 32; /* the same size: nothing about the disk */
    plan_of(&s, cfg, &it);
    for (size_t i = 0; i < it.nchanges; i++)
        cr_assert_str_neq(it.changes[i].key, PROXMOX_DISK_SIZE_KEY);
    cr_assert_neq(it.action, PROXMOX_CONFLICT);
    p.v = bd_xcalloc(1, sizeof it);
    p.n = 1;
    p.v[0] = it;
    proxmox_plan_free(&p);
}
