/* lab.yaml and machines.d/: the field tables and the loader. */
#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {"controlplane", "worker", NULL};
static const char *const dhcp_names[] = {"full", "proxy", NULL};
static const char *const unknown_names[] = {"hold", "exit", NULL};
static const char *const method_names[] = {"pxe", "http", NULL};
static const char *const arch_names[] = {"amd64", "arm64", NULL};
static const char *const cni_names[] = {"flannel", "none", "custom", NULL};
static const char *const addressing_names[] = {"dhcp", "static", NULL};
static const char *const bootstrap_names[] = {"auto", "manual", NULL};
static const char *const apply_names[] = {"manual", "auto", NULL};

const char *lab_role_name(enum lab_role r)
{
    return role_names[r];
}

int lab_role_parse(const char *s, enum lab_role *r)
{
    for (int i = 0; role_names[i]; i++)
        if (!strcmp(s, role_names[i])) {
            *r = (enum lab_role)i;
            return 0;
        }
    return -1;
}

/* Machines accumulate across lab.yaml and machines.d before they move into the arena. */
struct machine_acc {
    struct lab_machine *v;
    size_t n, cap;
};

static const char *const bios_names[] = {"seabios", "ovmf", NULL};

#define STRUCT struct lab_proxmox_vm
static const struct lab_field machine_proxmox_fields[] = {
    F(T_STR, "node", node, false, NULL),
    F(T_CUSTOM, "vmid", vmid, true, (const void *)lab_proxmox_vmid),
    F(T_INT, "cores", cores, false, NULL),
    F(T_CUSTOM, "memory", memory_mib, false, (const void *)lab_proxmox_memory),
    F(T_INT, "disk", disk_gib, false, NULL),
    F(T_ENUM, "bios", bios, false, bios_names),
    F(T_STR, "machine", machine, false, NULL),
    F(T_STR, "bridge", bridge, false, NULL),
    F(T_CUSTOM, "vlan", vlan, false, (const void *)lab_proxmox_vlan),
    F(T_CUSTOM, "tags", tags, false, (const void *)lab_proxmox_tags),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_machine
static const struct lab_field machine_fields[] = {
    F(T_NAME, "name", name, true, NULL),
    {.key = "mac", .type = T_MAC, .off = offsetof(struct lab_machine, mac), .required = true,
     .at_off = offsetof(struct lab_machine, mac_at)},
    F(T_UUID, "uuid", uuid, false, NULL),
    F(T_ENUM, "role", role, true, role_names),
    {.key = "ip", .type = T_IPV4, .off = offsetof(struct lab_machine, ip),
     .at_off = offsetof(struct lab_machine, ip_at)},
    F(T_ENUM, "addressing", addressing, false, addressing_names),
    F(T_NAME, "hostname", hostname, false, NULL),
    F(T_STR, "install_disk", install_disk, false, NULL),
    F(T_PATH, "config", config_file, false, NULL),
    F(T_PATHLIST, "patches", patches, false, NULL),
    F(T_KARGS, "kernel_args", kernel_args, false, NULL),
    F(T_LABELS, "labels", labels, false, NULL),
    {.key = "boot_method", .type = T_ENUM, .off = offsetof(struct lab_machine, boot_method),
     .aux = method_names, .set_off = offsetof(struct lab_machine, has_boot_method)},
    {.key = "arch", .type = T_ENUM, .off = offsetof(struct lab_machine, arch),
     .aux = arch_names, .set_off = offsetof(struct lab_machine, has_arch)},
    {.key = "proxmox", .type = T_MAP, .off = offsetof(struct lab_machine, proxmox),
     .aux = machine_proxmox_fields,
     .set_off = offsetof(struct lab_machine, proxmox) + offsetof(struct lab_proxmox_vm, set)},
    {.key = "vars", .type = T_CUSTOM, .off = offsetof(struct lab_machine, vars),
     .aux = (const void *)lab_decode_vars},
    {0},
};
#undef STRUCT

static int decode_machine(struct lab_ctx *c, const struct bd_node *n, struct machine_acc *acc)
{
    if (acc->n == acc->cap) {
        acc->cap = acc->cap ? acc->cap * 2 : 16;
        acc->v = bd_xrealloc(acc->v, acc->cap * sizeof *acc->v);
    }
    struct lab_machine *m = &acc->v[acc->n];
    memset(m, 0, sizeof *m);
    /* role is an enum decoded as int; has_ip is derived below */
    if (lab_decode_map(c, n, machine_fields, m) < 0)
        return -1;
    m->has_ip = bd_node_get(n, "ip") != NULL;
    m->where.file = bd_arena_strdup(&c->lab->arena, c->file);
    m->where.line = n->line;
    acc->n++;
    return 0;
}

static int decode_machines(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    if (bd_node_is_null(n))
        return 0;
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of machines, got %s", bd_node_kind_name(n));
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        if (decode_machine(c, n->kids[i], dst) < 0)
            return -1;
        lab_path_pop(c, old);
    }
    return 0;
}

#define STRUCT struct lab_manifest
static const struct lab_field manifest_fields[] = {
    F(T_NAME, "name", name, true, NULL),
    F(T_PATH, "file", file, true, NULL),
    {0},
};
#undef STRUCT

static int decode_inline_manifests(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_cluster *cl = (struct lab_cluster *)((char *)dst -
                                                    offsetof(struct lab_cluster, n_inline_manifests));
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of {name, file}, got %s", bd_node_kind_name(n));
    cl->n_inline_manifests = n->n;
    cl->inline_manifests = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof *cl->inline_manifests);
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        if (lab_decode_map(c, n->kids[i], manifest_fields, &cl->inline_manifests[i]) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cl->inline_manifests[j].name, cl->inline_manifests[i].name))
                return lab_fail(c, n->kids[i], "duplicate inline manifest name \"%s\"",
                                cl->inline_manifests[i].name);
        lab_path_pop(c, old);
    }
    return 0;
}

#define STRUCT struct lab_role_cfg
static const struct lab_field role_fields[] = {
    F(T_PATHLIST, "patches", patches, false, NULL),
    F(T_PATH, "config", config_file, false, NULL),
    {.key = "vars", .type = T_CUSTOM, .off = offsetof(struct lab_role_cfg, vars),
     .aux = (const void *)lab_decode_vars},
    {0},
};
#undef STRUCT

static int decode_version(struct lab_ctx *c, const struct bd_node *n, void *dst, bool want_v)
{
    const char *s = lab_scalar(c, n, "a version");
    if (!s)
        return -1;
    const char *p = s[0] == 'v' ? s + 1 : s;
    int major, minor, patch, used = 0;
    if (sscanf(p, "%d.%d.%d%n", &major, &minor, &patch, &used) != 3 ||
        (p[used] && p[used] != '-' && p[used] != '+'))
        return lab_fail(c, n, "\"%s\" is not a version like %s", s, want_v ? "v1.13.9" : "1.36.3");
    /* Talos tags carry a leading v, Kubernetes versions in Talos configs do not. */
    *(char **)dst = bd_xasprintf("%s%s", want_v ? "v" : "", p);
    char *a = bd_arena_strdup(&c->lab->arena, *(char **)dst);
    free(*(char **)dst);
    *(char **)dst = a;
    return 0;
}

static int decode_talos_version(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    return decode_version(c, n, dst, true);
}

static int decode_k8s_version(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    return decode_version(c, n, dst, false);
}

static int decode_endpoint(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    const char *s = lab_scalar(c, n, "a URL");
    if (!s)
        return -1;
    struct bd_err e;
    if (bd_url_check(s, "https", &e) < 0)
        return lab_fail(c, n, "%s (expected e.g. https://192.0.2.10:6443)", e.msg);
    *(char **)dst = bd_arena_strdup(&c->lab->arena, s);
    return 0;
}

/* name: file pairs; a name is what a template patch writes as ${name}. */
static int decode_template_files(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_kvlist *l = dst;
    if (n->kind != BD_NODE_MAP)
        return lab_fail(c, n, "expected a mapping of name: file, got %s", bd_node_kind_name(n));
    l->n = n->n;
    l->v = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof *l->v);
    for (size_t i = 0; i < n->n; i++) {
        const struct bd_node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        size_t old = lab_path_push(c, ".%s", k->str);
        bool ident = (k->str[0] >= 'a' && k->str[0] <= 'z') || (k->str[0] >= 'A' && k->str[0] <= 'Z') ||
                     k->str[0] == '_';
        for (const char *p = k->str; ident && *p; p++)
            ident = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    *p == '_';
        if (!ident)
            return lab_fail(c, k, "\"%s\" is not a template variable name (letters, digits, _)",
                            k->str);
        const char *file = lab_scalar(c, v, "a file path");
        if (!file)
            return -1;
        char *p = bd_path_join(c->dir, file);
        l->v[i].key = bd_arena_strdup(&c->lab->arena, k->str);
        l->v[i].value = bd_arena_strdup(&c->lab->arena, p);
        free(p);
        lab_path_pop(c, old);
    }
    return 0;
}

#define STRUCT struct lab_etcd_backup
static const struct lab_field etcd_backup_fields[] = {
    F(T_DURATION, "interval", interval_s, false, NULL),
    F(T_INT, "keep", keep, false, NULL),
    F(T_PATH, "dir", dir, true, NULL),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_cluster
static const struct lab_field cluster_fields[] = {
    F(T_NAME, "name", name, true, NULL),
    {.key = "endpoint", .type = T_CUSTOM, .off = offsetof(struct lab_cluster, endpoint),
     .aux = (const void *)decode_endpoint},
    {.key = "vip", .type = T_IPV4, .off = offsetof(struct lab_cluster, vip),
     .set_off = offsetof(struct lab_cluster, has_vip)},
    {.key = "talos_version", .type = T_CUSTOM, .off = offsetof(struct lab_cluster, talos_version),
     .required = true, .aux = (const void *)decode_talos_version},
    {.key = "kubernetes_version", .type = T_CUSTOM,
     .off = offsetof(struct lab_cluster, kubernetes_version), .aux = (const void *)decode_k8s_version,
     .at_off = offsetof(struct lab_cluster, kubernetes_version_at)},
    F(T_STR, "install_disk", install_disk, false, NULL),
    F(T_PATH, "secrets", secrets_file, false, NULL),
    F(T_NAME, "bootstrap_node", bootstrap_node, false, NULL),
    F(T_ENUM, "bootstrap", bootstrap, false, bootstrap_names),
    F(T_ENUM, "apply", apply, false, apply_names),
    F(T_ENUM, "cni", cni, false, cni_names),
    F(T_BOOL, "kube_proxy", kube_proxy, false, NULL),
    F(T_BOOL, "discovery", discovery, false, NULL),
    F(T_BOOL, "allow_scheduling_on_control_planes", allow_scheduling_on_control_planes, false,
      NULL),
    F(T_STR, "pod_subnet", pod_subnet, false, NULL),
    F(T_STR, "service_subnet", service_subnet, false, NULL),
    F(T_DNSNAME, "dns_domain", dns_domain, false, NULL),
    F(T_STRLIST, "cert_sans", cert_sans, false, NULL),
    F(T_PATHLIST, "patches", patches, false, NULL),
    {.key = "controlplane", .type = T_MAP,
     .off = offsetof(struct lab_cluster, roles) + LAB_ROLE_CONTROLPLANE * sizeof(struct lab_role_cfg),
     .aux = role_fields},
    {.key = "worker", .type = T_MAP,
     .off = offsetof(struct lab_cluster, roles) + LAB_ROLE_WORKER * sizeof(struct lab_role_cfg),
     .aux = role_fields},
    {.key = "inline_manifests", .type = T_CUSTOM,
     .off = offsetof(struct lab_cluster, n_inline_manifests),
     .aux = (const void *)decode_inline_manifests},
    F(T_STRLIST, "extra_manifests", extra_manifests, false, NULL),
    {.key = "template_files", .type = T_CUSTOM, .off = offsetof(struct lab_cluster, template_files),
     .aux = (const void *)decode_template_files},
    F(T_PATHLIST, "bootstrap_secrets", bootstrap_secrets, false, NULL),
    {.key = "etcd_backup", .type = T_MAP, .off = offsetof(struct lab_cluster, etcd_backup),
     .aux = etcd_backup_fields,
     .set_off = offsetof(struct lab_cluster, etcd_backup) + offsetof(struct lab_etcd_backup, set)},
    {.key = "vars", .type = T_CUSTOM, .off = offsetof(struct lab_cluster, vars),
     .aux = (const void *)lab_decode_vars},
    {0},
};
#undef STRUCT

static int decode_range(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_range *r = dst;
    if (n->kind != BD_NODE_SEQ || n->n != 2)
        return lab_fail(c, n, "expected [first, last] addresses, e.g. [192.0.2.100, 192.0.2.199]");
    const char *a = lab_scalar(c, n->kids[0], "an IPv4 address");
    const char *b = a ? lab_scalar(c, n->kids[1], "an IPv4 address") : NULL;
    if (!b)
        return -1;
    if (bd_ipv4_parse(a, &r->start) < 0)
        return lab_fail(c, n->kids[0], "\"%s\" is not an IPv4 address", a);
    if (bd_ipv4_parse(b, &r->end) < 0)
        return lab_fail(c, n->kids[1], "\"%s\" is not an IPv4 address", b);
    if (r->start > r->end)
        return lab_fail(c, n, "range starts after it ends (%s > %s)", a, b);
    r->set = true;
    return 0;
}

#define STRUCT struct lab_lan
static const struct lab_field lan_fields[] = {
    F(T_STR, "interface", interface, true, NULL),
    F(T_ENUM, "dhcp", dhcp, true, dhcp_names),
    {.key = "subnet", .type = T_CIDR, .off = offsetof(struct lab_lan, subnet), .required = true,
     .at_off = offsetof(struct lab_lan, subnet_at)},
    {.key = "range", .type = T_CUSTOM, .off = offsetof(struct lab_lan, range),
     .aux = (const void *)decode_range, .at_off = offsetof(struct lab_lan, range_at)},
    {.key = "gateway", .type = T_IPV4, .off = offsetof(struct lab_lan, gateway),
     .set_off = offsetof(struct lab_lan, has_gateway)},
    F(T_IPV4LIST, "dns", dns, false, NULL),
    F(T_DNSNAME, "domain", domain, false, NULL),
    F(T_IPV4, "boot_server", boot_server, true, NULL),
    F(T_PORT, "http_port", http_port, false, NULL),
    F(T_PORT, "log_port", log_port, false, NULL),
    F(T_BOOL, "dnsmasq", dnsmasq, false, NULL),
    F(T_BOOL, "only_known", only_known, false, NULL),
    F(T_BOOL, "routed", routed, false, NULL),
    F(T_PATH, "ipxe_bios", ipxe_bios, false, NULL),
    F(T_PATH, "ipxe_efi", ipxe_efi, false, NULL),
    F(T_PATH, "ipxe_snp", ipxe_snp, false, NULL),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_secureboot
static const struct lab_field secureboot_fields[] = {
    F(T_PATH, "cert", cert, true, NULL),
    F(T_PATH, "key", key, true, NULL),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_boot
static const struct lab_field efi_stub_fields[] = {
    {.key = "amd64", .type = T_PATH, .off = 0},
    {.key = "arm64", .type = T_PATH, .off = sizeof(char *)},
    {0},
};

static const struct lab_field boot_fields[] = {
    F(T_ENUM, "method", method, false, method_names),
    {.key = "efi_stub", .type = T_MAP, .off = offsetof(struct lab_boot, efi_stub),
     .aux = efi_stub_fields},
    {.key = "secureboot", .type = T_MAP, .off = offsetof(struct lab_boot, secureboot),
     .aux = secureboot_fields},
    F(T_ENUM, "unknown", unknown, false, unknown_names),
    F(T_DURATION, "hold_retry", hold_retry_s, false, NULL),
    F(T_KARGS, "console", console, false, NULL),
    F(T_KARGS, "kernel_args", kernel_args, false, NULL),
    F(T_DURATION, "token_grace", token_grace_s, false, NULL),
    F(T_DURATION, "token_max_age", token_max_age_s, false, NULL),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_images
static const struct lab_field images_fields[] = {
    F(T_URL, "factory", factory, false, "http,https,file"),
    F(T_PATH, "schematic", schematic_file, false, NULL),
    F(T_STRLIST, "arch", arch, false, NULL),
    F(T_PATH, "lock", lock_file, false, NULL),
    F(T_DURATION, "timeout", timeout_s, false, NULL),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_gitops_group
static const struct lab_field group_fields[] = {
    F(T_NAME, "name", name, true, NULL),
    F(T_STRLIST, "paths", paths, true, NULL),
    {0},
};
#undef STRUCT

static int decode_groups(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_gitops *g = (struct lab_gitops *)((char *)dst - offsetof(struct lab_gitops, ngroups));
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of {name, paths}, got %s", bd_node_kind_name(n));
    g->ngroups = n->n;
    g->groups = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof *g->groups);
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        if (lab_decode_map(c, n->kids[i], group_fields, &g->groups[i]) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(g->groups[j].name, g->groups[i].name))
                return lab_fail(c, n->kids[i], "duplicate group name \"%s\"", g->groups[i].name);
        lab_path_pop(c, old);
    }
    return 0;
}

#define STRUCT struct lab_gitops
static const struct lab_field gitops_fields[] = {
    F(T_URL, "repo", repo, true, "https,http,ssh,file"),
    F(T_STR, "ref", ref, false, NULL),
    F(T_PATH, "token_file", token_file, false, NULL),
    F(T_PATH, "ssh_key", ssh_key_file, false, NULL),
    F(T_DURATION, "interval", interval_s, false, NULL),
    F(T_DURATION, "health_timeout", health_timeout_s, false, NULL),
    F(T_BOOL, "prune", prune, false, NULL),
    F(T_STR, "kustomize", kustomize, false, NULL),
    F(T_DURATION, "kustomize_timeout", kustomize_timeout_s, false, NULL),
    F(T_PATH, "kubeconfig", kubeconfig, false, NULL),
    F(T_STR, "helm", helm, false, NULL),
    F(T_BOOL, "argocd", argocd, false, NULL),
    {.key = "groups", .type = T_CUSTOM, .off = offsetof(struct lab_gitops, ngroups), .required = true,
     .aux = (const void *)decode_groups},
    {0},
};
#undef STRUCT

#define STRUCT struct lab_service
static const struct lab_field service_fields[] = {
    F(T_NAME, "name", name, true, NULL),
    F(T_IPV4, "ip", ip, false, NULL),
    {0},
};
#undef STRUCT

static int decode_records(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_services *s = (struct lab_services *)((char *)dst - offsetof(struct lab_services, n));
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of {name, ip}, got %s", bd_node_kind_name(n));
    s->n = n->n;
    s->v = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof *s->v);
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        struct lab_service *r = &s->v[i];
        if (lab_decode_map(c, n->kids[i], service_fields, r) < 0)
            return -1;
        r->has_ip = bd_node_get(n->kids[i], "ip") != NULL;
        r->where.file = bd_arena_strdup(&c->lab->arena, c->file);
        r->where.line = n->kids[i]->line;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->v[j].name, r->name))
                return lab_fail(c, n->kids[i], "duplicate service name \"%s\" (first at line %d)",
                                r->name, s->v[j].where.line);
        lab_path_pop(c, old);
    }
    return 0;
}

#define STRUCT struct lab_services
static const struct lab_field services_fields[] = {
    F(T_DNSNAME, "domain", domain, true, NULL),
    F(T_BOOL, "dns", dns, false, NULL),
    {.key = "ingress_ip", .type = T_IPV4, .off = offsetof(struct lab_services, ingress_ip),
     .set_off = offsetof(struct lab_services, has_ingress_ip)},
    {.key = "records", .type = T_CUSTOM, .off = offsetof(struct lab_services, n),
     .aux = (const void *)decode_records},
    {0},
};
#undef STRUCT

#define STRUCT struct lab_proxmox_csi
static const struct lab_field proxmox_csi_fields[] = {
    F(T_NAME, "namespace", namespace_, false, NULL),
    F(T_NAME, "secret", secret, false, NULL),
    F(T_PATH, "token_file", token_file, false, NULL),
    {0},
};
#undef STRUCT

#define STRUCT struct lab_proxmox
static const struct lab_field proxmox_fields[] = {
    F(T_URL, "api", api, true, "https"),
    F(T_PATH, "token_file", token_file, true, NULL),
    F(T_STR, "node", node, true, NULL),
    F(T_STR, "storage", storage, false, NULL),
    F(T_STR, "bridge", bridge, false, NULL),
    F(T_CUSTOM, "vlan", vlan, false, (const void *)lab_proxmox_vlan),
    F(T_BOOL, "verify_tls", verify_tls, false, NULL),
    F(T_PATH, "ca_file", ca_file, false, NULL),
    F(T_CUSTOM, "fingerprint", fingerprint, false, (const void *)lab_proxmox_fingerprint),
    F(T_CUSTOM, "protected_vmids", nprotected, false, (const void *)lab_proxmox_vmids),
    F(T_CUSTOM, "volumes", nvolumes, false, (const void *)lab_proxmox_volumes),
    F(T_DURATION, "poll", poll_s, false, NULL),
    F(T_STR, "cluster", cluster, false, NULL),
    {.key = "csi", .type = T_MAP, .off = offsetof(struct lab_proxmox, csi), .aux = proxmox_csi_fields,
     .set_off = offsetof(struct lab_proxmox, csi) + offsetof(struct lab_proxmox_csi, set)},
    {0},
};
#undef STRUCT

static int decode_machines_top(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    (void)dst;
    return decode_machines(c, n, c->machines);
}

#define STRUCT struct lab
static const struct lab_field top_fields[] = {
    {.key = "cluster", .type = T_MAP, .off = offsetof(struct lab, cluster), .required = true,
     .aux = cluster_fields},
    {.key = "lan", .type = T_MAP, .off = offsetof(struct lab, lan), .required = true,
     .aux = lan_fields},
    {.key = "boot", .type = T_MAP, .off = offsetof(struct lab, boot), .aux = boot_fields},
    {.key = "machines", .type = T_CUSTOM, .aux = (const void *)decode_machines_top},
    {.key = "images", .type = T_MAP, .off = offsetof(struct lab, images), .aux = images_fields},
    {.key = "gitops", .type = T_MAP, .off = offsetof(struct lab, gitops), .aux = gitops_fields,
     .set_off = offsetof(struct lab, gitops) + offsetof(struct lab_gitops, set)},
    {.key = "services", .type = T_MAP, .off = offsetof(struct lab, services),
     .aux = services_fields},
    {.key = "proxmox", .type = T_MAP, .off = offsetof(struct lab, proxmox), .aux = proxmox_fields,
     .set_off = offsetof(struct lab, proxmox) + offsetof(struct lab_proxmox, set)},
    {0},
};
#undef STRUCT

/* Booleans whose default is true must be distinguishable from "absent"; they are set
 * before decoding, and decoding overwrites them when the key is present. */
static void preset_true_defaults(struct lab *lab)
{
    lab->cluster.kube_proxy = true;
    lab->cluster.discovery = true;
    lab->gitops.prune = true;
    lab->proxmox.verify_tls = true;
    lab->proxmox.poll_s = 30;
    lab->lan.http_port = 8080;
    lab->lan.dnsmasq = true;
}

static int single_doc(const struct bd_yaml_doc *doc, struct bd_err *err)
{
    if (doc->ndocs != 1)
        return bd_err_set(err, "%s: expected one YAML document, found %zu", doc->file, doc->ndocs);
    return 0;
}

static int load_machine_file(struct lab *lab, struct machine_acc *acc, const char *display, const char *text, size_t len,
                             struct bd_err *err)
{
    struct bd_yaml_doc doc;
    if (bd_yaml_parse(text, len, display, &doc, err) < 0)
        return -1;
    int rc = single_doc(&doc, err);
    if (rc == 0) {
        char *dir = bd_path_dir(display);
        struct lab_ctx c = {.lab = lab, .file = display, .dir = dir, .err = err, .machines = acc};
        rc = decode_machine(&c, doc.docs[0], acc);
        free(dir);
    }
    bd_yaml_doc_free(&doc);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_machines_dir(struct lab *lab, struct machine_acc *acc, const char *extra_name, const char *extra_text,
                             struct bd_err *err)
{
    DIR *d = opendir(lab->machines_dir);
    char **names = NULL;
    size_t n = 0;
    if (!d && errno != ENOENT)
        return bd_err_set(err, "%s: %s", lab->machines_dir, strerror(errno));
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
            continue;
        names = bd_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = bd_xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = bd_path_join(lab->machines_dir, names[i]);
        char *text;
        size_t len;
        rc = bd_file_read(path, &text, &len, err);
        if (rc == 0) {
            rc = load_machine_file(lab, acc, path, text, len, err);
            free(text);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0 && extra_name) {
        char *path = bd_path_join(lab->machines_dir, extra_name);
        rc = load_machine_file(lab, acc, path, extra_text, strlen(extra_text), err);
        free(path);
    }
    return rc;
}

int lab_load(const char *path, const char *extra_name, const char *extra_text, struct lab **out,
             struct bd_err *err)
{
    struct lab *lab = bd_xcalloc(1, sizeof *lab);
    struct machine_acc acc = {0};
    lab->path = bd_arena_strdup(&lab->arena, path);
    char *dir = bd_path_dir(path);
    lab->dir = bd_arena_strdup(&lab->arena, dir);
    char *mdir = bd_path_join(dir, "machines.d");
    lab->machines_dir = bd_arena_strdup(&lab->arena, mdir);
    free(mdir);
    preset_true_defaults(lab);

    struct bd_yaml_doc doc;
    int rc = bd_yaml_parse_file(path, &doc, err);
    if (rc == 0) {
        rc = single_doc(&doc, err);
        struct lab_ctx c = {.lab = lab, .file = path, .dir = dir, .err = err, .machines = &acc};
        if (rc == 0)
            rc = lab_decode_map(&c, doc.docs[0], top_fields, lab);
        bd_yaml_doc_free(&doc);
    }
    free(dir);
    if (rc == 0)
        rc = load_machines_dir(lab, &acc, extra_name, extra_text, err);
    if (rc == 0) {
        lab->nmachines = acc.n;
        lab->machines = bd_arena_alloc(&lab->arena, (acc.n + 1) * sizeof *lab->machines);
        if (acc.n)
            memcpy(lab->machines, acc.v, acc.n * sizeof *acc.v);
    }
    free(acc.v);
    if (rc == 0) {
        lab_apply_defaults(lab);
        rc = lab_check(lab, err);
    }
    if (rc < 0) {
        lab_free(lab);
        return -1;
    }
    *out = lab;
    return 0;
}

void lab_free(struct lab *lab)
{
    if (!lab)
        return;
    free(lab->by_mac);
    bd_arena_free(&lab->arena);
    free(lab);
}
