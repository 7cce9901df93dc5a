/* lab.yaml defaults and the checks that span several fields or files. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_KUBERNETES "1.36.3" /* what Talos v1.13.9's gen config defaults to */

static char *dflt(struct lab *lab, char *v, const char *d)
{
    return v ? v : bd_arena_strdup(&lab->arena, d);
}

static char *dflt_path(struct lab *lab, char *v, const char *rel)
{
    if (v)
        return v;
    char *p = bd_path_join(lab->dir, rel);
    char *a = bd_arena_strdup(&lab->arena, p);
    free(p);
    return a;
}

static void dflt_list(struct lab *lab, struct lab_strlist *l, const char *const *items)
{
    if (l->n)
        return;
    size_t n = 0;
    while (items[n])
        n++;
    l->v = bd_arena_alloc(&lab->arena, (n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        l->v[i] = bd_arena_strdup(&lab->arena, items[i]);
    l->n = n;
}

void lab_apply_defaults(struct lab *lab)
{
    struct lab_cluster *cl = &lab->cluster;
    cl->install_disk = dflt(lab, cl->install_disk, "/dev/sda");
    cl->kubernetes_version = dflt(lab, cl->kubernetes_version, DEFAULT_KUBERNETES);
    cl->secrets_file = dflt_path(lab, cl->secrets_file, "secrets.yaml");
    struct lab_proxmox_csi *csi = &lab->proxmox.csi;
    csi->namespace_ = dflt(lab, csi->namespace_, "csi-proxmox");
    csi->secret = dflt(lab, csi->secret, "proxmox-csi-plugin");
    csi->token_file = dflt_path(lab, csi->token_file, "proxmox-csi.token");
    cl->pod_subnet = dflt(lab, cl->pod_subnet, "10.244.0.0/16");
    cl->service_subnet = dflt(lab, cl->service_subnet, "10.96.0.0/12");
    cl->dns_domain = dflt(lab, cl->dns_domain, "cluster.local");
    if (cl->etcd_backup.set && !cl->etcd_backup.interval_s)
        cl->etcd_backup.interval_s = 3600;
    if (cl->etcd_backup.set && !cl->etcd_backup.keep)
        cl->etcd_backup.keep = 24;
    if (!cl->bootstrap_node)
        for (size_t i = 0; i < lab->nmachines; i++)
            if (lab->machines[i].role == LAB_ROLE_CONTROLPLANE) {
                cl->bootstrap_node = lab->machines[i].name;
                break;
            }
    if (!cl->endpoint) {
        char ip[16];
        const struct lab_machine *boot = cl->bootstrap_node
                                             ? lab_machine_by_name(lab, cl->bootstrap_node)
                                             : NULL;
        if (cl->has_vip || (boot && boot->has_ip)) {
            bd_ipv4_format(cl->has_vip ? cl->vip : boot->ip, ip);
            char *e = bd_xasprintf("https://%s:6443", ip);
            cl->endpoint = bd_arena_strdup(&lab->arena, e);
            free(e);
        }
    }

    struct lab_lan *lan = &lab->lan;
    lan->ipxe_bios = dflt(lab, lan->ipxe_bios, "/usr/lib/ipxe/undionly.kpxe");
    lan->ipxe_efi = dflt(lab, lan->ipxe_efi, "/usr/lib/ipxe/ipxe.efi");
    lan->ipxe_snp = dflt(lab, lan->ipxe_snp, "/usr/lib/ipxe/snponly.efi");

    struct lab_boot *b = &lab->boot;
    if (!b->hold_retry_s)
        b->hold_retry_s = 30;
    if (!b->token_grace_s)
        b->token_grace_s = 600;
    if (!b->token_max_age_s)
        b->token_max_age_s = 4 * 3600; /* Talos keeps retrying a config URL for 3 h */
    static const char *const console[] = {"tty0", "ttyS0,115200n8", NULL};
    dflt_list(lab, &b->console, console);

    struct lab_images *im = &lab->images;
    im->factory = dflt(lab, im->factory, "https://factory.talos.dev");
    im->lock_file = dflt_path(lab, im->lock_file, "images.lock");
    if (!im->timeout_s)
        im->timeout_s = 30;
    static const char *const arch[] = {"amd64", NULL};
    dflt_list(lab, &im->arch, arch);

    struct lab_gitops *g = &lab->gitops;
    g->ref = dflt(lab, g->ref, "main");
    if (!g->interval_s)
        g->interval_s = 300;
    if (!g->health_timeout_s)
        g->health_timeout_s = 300;
    if (!g->kustomize_timeout_s)
        g->kustomize_timeout_s = 120;

    for (size_t i = 0; i < lab->services.n; i++)
        if (!lab->services.v[i].has_ip)
            lab->services.v[i].ip = lab->services.ingress_ip;

    for (size_t i = 0; i < lab->nmachines; i++) {
        struct lab_machine *m = &lab->machines[i];
        if (!m->hostname)
            m->hostname = m->name;
        if (!m->install_disk)
            m->install_disk = cl->install_disk;
    }
}

static int fail_at(struct bd_err *err, const struct lab_where *w, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static int fail_at(struct bd_err *err, const struct lab_where *w, const char *field, const char *fmt,
                   ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_err_set(err, "%s:%d: %s: %s", w->file, w->line, field, msg);
}

static int cmp_mac(const void *a, const void *b)
{
    const struct lab_machine *x = *(const struct lab_machine *const *)a;
    const struct lab_machine *y = *(const struct lab_machine *const *)b;
    return bd_mac_cmp(&x->mac, &y->mac);
}

static int check_file(struct bd_err *err, const struct lab_where *w, const char *field,
                      const char *path)
{
    if (path && access(path, R_OK) < 0)
        return fail_at(err, w, field, "cannot read %s", path);
    return 0;
}

static int check_files(struct bd_err *err, const struct lab_where *w, const char *field,
                       const struct lab_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (check_file(err, w, field, l->v[i]) < 0)
            return -1;
    return 0;
}

static int check_subnet(const char *s)
{
    uint32_t a;
    int p;
    if (bd_cidr_parse(s, &a, &p) < 0)
        return -1;
    uint32_t mask = p ? 0xffffffffu << (32 - p) : 0;
    return (a & ~mask) ? -1 : 0;
}

/* Where an address is used in lab.yaml, for duplicate checks. */
static int addr_in_use(const struct lab *lab, uint32_t ip, const char **what)
{
    if (ip == lab->lan.boot_server) {
        *what = "lan.boot_server";
        return 1;
    }
    if (lab->lan.has_gateway && ip == lab->lan.gateway) {
        *what = "lan.gateway";
        return 1;
    }
    if (lab->cluster.has_vip && ip == lab->cluster.vip) {
        *what = "cluster.vip";
        return 1;
    }
    return 0;
}

static int check_lan(struct lab *lab, struct bd_err *err)
{
    struct lab_lan *lan = &lab->lan;
    struct lab_where w = {lab->path, 0};
    char a[16];
    uint32_t net = lan->subnet.addr;
    int pfx = lan->subnet.prefix;
    if (pfx > 30)
        return bd_err_set(err, "%s: lan.subnet: /%d leaves no room for machines", lab->path, pfx);
    if (!bd_ipv4_in(lan->boot_server, net, pfx)) {
        bd_ipv4_format(lan->boot_server, a);
        return bd_err_set(err, "%s: lan.boot_server: %s is outside lan.subnet", lab->path, a);
    }
    if (lan->has_gateway && !bd_ipv4_in(lan->gateway, net, pfx)) {
        bd_ipv4_format(lan->gateway, a);
        return bd_err_set(err, "%s: lan.gateway: %s is outside lan.subnet", lab->path, a);
    }
    if (lan->dhcp == LAB_DHCP_FULL) {
        if (!lan->range.set)
            return bd_err_set(err,
                              "%s: lan.range: required when lan.dhcp is full (bootd's dnsmasq "
                              "leases addresses from it)",
                              lab->path);
        if (!bd_ipv4_in(lan->range.start, net, pfx) || !bd_ipv4_in(lan->range.end, net, pfx))
            return bd_err_set(err, "%s: lan.range: must lie inside lan.subnet", lab->path);
        if (lan->range.start <= lan->boot_server && lan->boot_server <= lan->range.end)
            return bd_err_set(err, "%s: lan.range: contains lan.boot_server; leasing it would "
                                   "break booting", lab->path);
        if (lab->cluster.has_vip && lan->range.start <= lab->cluster.vip &&
            lab->cluster.vip <= lan->range.end)
            return bd_err_set(err, "%s: cluster.vip: inside lan.range, so dnsmasq could lease it",
                              lab->path);
    } else if (lan->range.set) {
        return bd_err_set(err,
                          "%s: lan.range: not used when lan.dhcp is proxy (the home router leases "
                          "addresses); remove it",
                          lab->path);
    }
    if (lab->cluster.has_vip && !bd_ipv4_in(lab->cluster.vip, net, pfx)) {
        bd_ipv4_format(lab->cluster.vip, a);
        return bd_err_set(err, "%s: cluster.vip: %s is outside lan.subnet", lab->path, a);
    }
    if (lan->only_known && lan->dhcp != LAB_DHCP_FULL)
        return bd_err_set(err, "%s: lan.only_known: only meaningful with lan.dhcp: full", lab->path);
    if (lan->log_port && lan->log_port == lan->http_port)
        return bd_err_set(err, "%s: lan.log_port: same as lan.http_port", lab->path);
    if (lab->boot.method == LAB_BOOT_HTTP && lan->dhcp != LAB_DHCP_FULL)
        return bd_err_set(err, "%s: boot.method: http needs lan.dhcp: full (in proxy mode "
                               "dnsmasq answers PXE clients only)", lab->path);
    (void)w;
    return 0;
}

static int check_cluster(struct lab *lab, struct bd_err *err)
{
    struct lab_cluster *cl = &lab->cluster;
    struct lab_where w = {lab->path, 0};
    if (check_subnet(cl->pod_subnet) < 0)
        return bd_err_set(err, "%s: cluster.pod_subnet: \"%s\" is not an IPv4 network (e.g. 10.244.0.0/16)",
                          lab->path, cl->pod_subnet);
    if (check_subnet(cl->service_subnet) < 0)
        return bd_err_set(err, "%s: cluster.service_subnet: \"%s\" is not an IPv4 network (e.g. 10.96.0.0/12)",
                          lab->path, cl->service_subnet);
    size_t ncp = 0;
    for (size_t i = 0; i < lab->nmachines; i++)
        ncp += lab->machines[i].role == LAB_ROLE_CONTROLPLANE;
    if (lab->nmachines && !ncp)
        return bd_err_set(err, "%s: machines: no controlplane; the cluster needs at least one",
                          lab->path);
    if (lab->nmachines && !cl->endpoint)
        return bd_err_set(err,
                          "%s: cluster.endpoint: not set, and neither cluster.vip nor an ip on the "
                          "bootstrap node gives one",
                          lab->path);
    if (cl->bootstrap_node) {
        const struct lab_machine *m = lab_machine_by_name(lab, cl->bootstrap_node);
        if (!m)
            return bd_err_set(err, "%s: cluster.bootstrap_node: no machine named \"%s\"", lab->path,
                              cl->bootstrap_node);
        if (m->role != LAB_ROLE_CONTROLPLANE)
            return bd_err_set(err, "%s: cluster.bootstrap_node: \"%s\" is a worker; bootstrap runs "
                                   "on a controlplane",
                              lab->path, cl->bootstrap_node);
    }
    if (check_files(err, &w, "cluster.patches", &cl->patches) < 0)
        return -1;
    for (int r = 0; r < 2; r++) {
        char field[64];
        snprintf(field, sizeof field, "cluster.%s", lab_role_name((enum lab_role)r));
        if (check_files(err, &w, field, &cl->roles[r].patches) < 0 ||
            check_file(err, &w, field, cl->roles[r].config_file) < 0)
            return -1;
    }
    for (size_t i = 0; i < cl->n_inline_manifests; i++)
        if (check_file(err, &w, "cluster.inline_manifests", cl->inline_manifests[i].file) < 0)
            return -1;
    for (size_t i = 0; i < cl->template_files.n; i++)
        if (check_file(err, &w, "cluster.template_files", cl->template_files.v[i].value) < 0)
            return -1;
    if (check_files(err, &w, "cluster.bootstrap_secrets", &cl->bootstrap_secrets) < 0)
        return -1;
    for (size_t i = 0; i < cl->bootstrap_secrets.n; i++) {
        struct bd_err e;
        if (bd_file_check_private(cl->bootstrap_secrets.v[i], &e) < 0)
            return bd_err_set(err, "%s: cluster.bootstrap_secrets[%zu]: %s", lab->path, i, e.msg);
    }
    if (cl->etcd_backup.set && cl->etcd_backup.interval_s < 10)
        return bd_err_set(err, "%s: cluster.etcd_backup.interval: at least 10s", lab->path);
    if (!cl->kube_proxy && cl->cni == LAB_CNI_FLANNEL)
        return bd_err_set(err,
                          "%s: cluster.kube_proxy: false needs a CNI that replaces kube-proxy; "
                          "flannel does not (set cni: none and ship Cilium, or keep kube_proxy)",
                          lab->path);
    for (size_t i = 0; i < cl->extra_manifests.n; i++) {
        struct bd_err e;
        if (bd_url_check(cl->extra_manifests.v[i], "http,https", &e) < 0)
            return bd_err_set(err, "%s: cluster.extra_manifests[%zu]: %s", lab->path, i, e.msg);
    }
    for (size_t i = 0; i < lab->images.arch.n; i++) {
        const char *a = lab->images.arch.v[i];
        if (strcmp(a, "amd64") && strcmp(a, "arm64"))
            return bd_err_set(err, "%s: images.arch[%zu]: \"%s\" is not amd64 or arm64", lab->path,
                              i, a);
    }
    if (check_file(err, &w, "images.schematic", lab->images.schematic_file) < 0)
        return -1;
    for (size_t g = 0; g < lab->gitops.ngroups; g++)
        for (size_t i = 0; i < lab->gitops.groups[g].paths.n; i++) {
            const char *p = lab->gitops.groups[g].paths.v[i];
            if (p[0] == '/' || strstr(p, ".."))
                return bd_err_set(err,
                                  "%s: gitops.groups[%zu].paths[%zu]: \"%s\" must be relative to "
                                  "the repository root, without ..",
                                  lab->path, g, i, p);
        }
    return 0;
}

static bool lab_lists_arch(const struct lab *lab, const char *arch)
{
    for (size_t i = 0; i < lab->images.arch.n; i++)
        if (!strcmp(lab->images.arch.v[i], arch))
            return true;
    return false;
}

/* What two machines may not share, in the order a clash is reported. */
enum dup_key { DUP_NAME, DUP_MAC, DUP_IP, DUP_UUID, DUP_HOSTNAME, DUP_VMID, DUP_KEYS };

struct dup {
    size_t i, j; /* machine i repeats machine j's key (j < i); i == SIZE_MAX: none */
    enum dup_key key;
};

struct dup_ctx {
    const struct lab *lab;
    enum dup_key key;
};

static bool has_key(const struct lab_machine *m, enum dup_key key)
{
    return key == DUP_IP ? m->has_ip
           : key == DUP_UUID ? m->uuid != NULL
           : key == DUP_VMID ? m->proxmox.set
                             : true;
}

static int key_cmp(const struct lab_machine *a, const struct lab_machine *b, enum dup_key key)
{
    switch (key) {
    case DUP_NAME: return strcmp(a->name, b->name);
    case DUP_MAC: return bd_mac_cmp(&a->mac, &b->mac);
    case DUP_IP: return (a->ip > b->ip) - (a->ip < b->ip);
    case DUP_UUID: return strcmp(a->uuid, b->uuid);
    case DUP_HOSTNAME: return strcmp(a->hostname, b->hostname);
    default: return (a->proxmox.vmid > b->proxmox.vmid) - (a->proxmox.vmid < b->proxmox.vmid);
    }
}

static int cmp_by_key(const void *x, const void *y, void *arg)
{
    const struct dup_ctx *c = arg;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    int r = key_cmp(&c->lab->machines[i], &c->lab->machines[j], c->key);
    return r ? r : (i > j) - (i < j);
}

/* The clash the pairwise check in file order would meet first: the lowest machine i
 * repeating any earlier one, then the lowest such j, then the first key in dup_key's
 * order. Sorting by each key keeps a 10,000-machine lab's check to milliseconds. */
static struct dup first_dup(const struct lab *lab)
{
    struct dup best = {.i = SIZE_MAX};
    size_t *idx = bd_xmalloc((lab->nmachines + 1) * sizeof *idx);
    for (enum dup_key key = 0; key < DUP_KEYS; key++) {
        size_t n = 0;
        for (size_t i = 0; i < lab->nmachines; i++)
            if (has_key(&lab->machines[i], key))
                idx[n++] = i;
        struct dup_ctx ctx = {lab, key};
        qsort_r(idx, n, sizeof *idx, cmp_by_key, &ctx);
        for (size_t r = 0, k = 1; k < n; k++) {
            if (key_cmp(&lab->machines[idx[r]], &lab->machines[idx[k]], key)) {
                r = k; /* a new run; its first member is its earliest machine */
                continue;
            }
            struct dup d = {idx[k], idx[r], key};
            if (d.i < best.i || (d.i == best.i && (d.j < best.j || (d.j == best.j &&
                                                                    d.key < best.key))))
                best = d;
        }
    }
    free(idx);
    return best;
}

static int check_machines(struct lab *lab, struct bd_err *err)
{
    struct dup dup = first_dup(lab);
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        const struct lab_where *w = &m->where;
        char a[16];
        if (m->has_ip) {
            bd_ipv4_format(m->ip, a);
            const char *what;
            if (!bd_ipv4_in(m->ip, lab->lan.subnet.addr, lab->lan.subnet.prefix))
                return fail_at(err, w, "ip", "%s (machine %s) is outside lan.subnet", a, m->name);
            if (addr_in_use(lab, m->ip, &what))
                return fail_at(err, w, "ip", "%s (machine %s) is already %s", a, m->name, what);
        }
        if (m->addressing == LAB_ADDR_STATIC && !m->has_ip)
            return fail_at(err, w, "addressing", "static needs the machine's ip (machine %s)",
                           m->name);
        if (m->addressing == LAB_ADDR_STATIC && !lab->lan.has_gateway)
            return fail_at(err, w, "addressing",
                           "static needs lan.gateway for the default route (machine %s)", m->name);
        if (m->has_boot_method && m->boot_method == LAB_BOOT_HTTP &&
            lab->lan.dhcp != LAB_DHCP_FULL)
            return fail_at(err, w, "boot_method", "http needs lan.dhcp: full (machine %s)",
                           m->name);
        if (m->has_arch && !lab_lists_arch(lab, m->arch == LAB_ARCH_ARM64 ? "arm64" : "amd64"))
            return fail_at(err, w, "arch", "%s is not in images.arch (machine %s)",
                           m->arch == LAB_ARCH_ARM64 ? "arm64" : "amd64", m->name);
        if (check_files(err, w, "patches", &m->patches) < 0 ||
            check_file(err, w, "config", m->config_file) < 0)
            return -1;
        for (size_t k = 0; m->proxmox.set && k < lab->proxmox.nprotected; k++)
            if (m->proxmox.vmid == lab->proxmox.protected_vmids[k])
                return fail_at(err, w, "proxmox.vmid",
                               "%d is listed in proxmox.protected_vmids (machine %s)",
                               m->proxmox.vmid, m->name);
        if (i != dup.i)
            continue;
        const struct lab_machine *o = &lab->machines[dup.j];
        char mac[18];
        switch (dup.key) {
        case DUP_NAME:
            return fail_at(err, w, "name", "\"%s\" is already used at %s:%d", m->name,
                           o->where.file, o->where.line);
        case DUP_MAC:
            bd_mac_format(&m->mac, mac);
            return fail_at(err, w, "mac", "%s is already used by %s at %s:%d", mac, o->name,
                           o->where.file, o->where.line);
        case DUP_IP:
            return fail_at(err, w, "ip", "%s is already used by %s at %s:%d", a, o->name,
                           o->where.file, o->where.line);
        case DUP_UUID:
            return fail_at(err, w, "uuid", "%s is already used by %s at %s:%d", m->uuid,
                           o->name, o->where.file, o->where.line);
        case DUP_HOSTNAME:
            return fail_at(err, w, "hostname", "\"%s\" is already used by %s at %s:%d",
                           m->hostname, o->name, o->where.file, o->where.line);
        default:
            return fail_at(err, w, "proxmox.vmid", "%d is already used by %s at %s:%d",
                           m->proxmox.vmid, o->name, o->where.file, o->where.line);
        }
    }
    return 0;
}

static int check_services(struct lab *lab, struct bd_err *err)
{
    for (size_t i = 0; i < lab->services.n; i++) {
        const struct lab_service *r = &lab->services.v[i];
        if (!r->has_ip && !lab->services.has_ingress_ip)
            return fail_at(err, &r->where, "ip",
                           "service %s has no ip, and services.ingress_ip is not set", r->name);
    }
    return 0;
}

int lab_check(struct lab *lab, struct bd_err *err)
{
    if (check_services(lab, err) < 0)
        return -1;
    if (check_lan(lab, err) < 0 || check_machines(lab, err) < 0 || check_cluster(lab, err) < 0 ||
        lab_check_addresses(lab, err) < 0)
        return -1;
    lab->by_mac = bd_xmalloc((lab->nmachines + 1) * sizeof *lab->by_mac);
    for (size_t i = 0; i < lab->nmachines; i++)
        lab->by_mac[i] = &lab->machines[i];
    qsort(lab->by_mac, lab->nmachines, sizeof *lab->by_mac, cmp_mac);
    return 0;
}

const struct lab_machine *lab_machine_by_mac(const struct lab *lab, const struct bd_mac *mac)
{
    size_t lo = 0, hi = lab->nmachines;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = bd_mac_cmp(&lab->by_mac[mid]->mac, mac);
        if (c == 0)
            return lab->by_mac[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct lab_machine *lab_machine_by_name(const struct lab *lab, const char *name)
{
    for (size_t i = 0; i < lab->nmachines; i++)
        if (!strcmp(lab->machines[i].name, name))
            return &lab->machines[i];
    return NULL;
}
