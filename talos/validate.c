/* The checks Talos v1.13 makes on a config (talos@v1.13.9
 * pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go, container.go and the
 * network documents' Validate/V1Alpha1ConflictValidate) that bootd's output can fail:
 * a config that breaks one would make the machine retry its download for hours. Each
 * message names the field. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct check {
    const struct talos_docs *d;
    const struct validate_ctx *vc;
    const struct bd_node *cfg; /* the v1alpha1 document */
    struct bd_err *err;
};

static int bad(const struct check *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(const struct check *c, const char *field, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_err_set(c->err, "%s: %s", field, msg);
}

static bool is_true(const struct bd_node *n)
{
    return n && n->kind == BD_NODE_SCALAR && n->plain && !strcmp(n->str, "true");
}

static const char *str(const struct check *c, const char *path)
{
    return talos_tree_str_at(c->cfg, path);
}

static bool cidr_ok(const char *s)
{
    uint32_t a;
    int p;
    return strchr(s, ':') || bd_cidr_parse(s, &a, &p) == 0; /* IPv6 is Talos's to judge */
}

static int check_machine_ca(const struct check *c, bool cp)
{
    const char *crt = str(c, "machine.ca.crt"), *key = str(c, "machine.ca.key");
    const struct bd_node *accepted = talos_tree_at(c->cfg, "machine.acceptedCAs");
    if (!crt && !(accepted && accepted->n))
        return bad(c, "machine.ca", "missing: the machine needs the os CA certificate");
    if (cp && (!key || !key[0]))
        return bad(c, "machine.ca.key",
                   "a control plane needs the os CA key (issuing CA key is required for "
                   "controlplane nodes)");
    if (!cp && key && key[0])
        return bad(c, "machine.ca.key", "a worker must not carry the os CA key");
    if (!cp && str(c, "cluster.ca.key") && str(c, "cluster.ca.key")[0])
        return bad(c, "cluster.ca.key", "a worker must not carry the Kubernetes CA key");
    if (cp && !(str(c, "cluster.ca.key") && str(c, "cluster.ca.key")[0]))
        return bad(c, "cluster.ca.key", "a control plane needs the Kubernetes CA key");
    return 0;
}

static int check_install(const struct check *c)
{
    const struct bd_node *install = talos_tree_at(c->cfg, "machine.install");
    if (!install)
        return bad(c, "machine.install", "required: Talos on bare metal installs itself from it");
    const char *disk = str(c, "machine.install.disk");
    if (!(disk && disk[0]) && !talos_tree_at(c->cfg, "machine.install.diskSelector"))
        return bad(c, "machine.install.disk", "needs a disk or a diskSelector");
    if (disk && disk[0] && disk[0] != '/')
        return bad(c, "machine.install.disk",
                   "\"%s\" is not a path; Talos installs to a device path such as /dev/sda or "
                   "/dev/disk/by-id/... (install_disk in lab.yaml, or a patch)",
                   disk);
    const struct bd_node *args = talos_tree_at(c->cfg, "machine.install.extraKernelArgs");
    if (args && args->n && is_true(talos_tree_at(c->cfg, "machine.install.grubUseUKICmdline")))
        return bad(c, "machine.install.extraKernelArgs",
                   "cannot be used with grubUseUKICmdline: true (set kernel arguments in the "
                   "image schematic instead)");
    return 0;
}

static int check_labels(const struct check *c, const char *path, bool check_values)
{
    const struct bd_node *m = talos_tree_at(c->cfg, path);
    if (!m)
        return 0;
    if (m->kind != BD_NODE_MAP)
        return bad(c, path, "expected a mapping, got %s", bd_node_kind_name(m));
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->kids[2 * i]->str;
        const struct bd_node *v = m->kids[2 * i + 1];
        char field[300];
        snprintf(field, sizeof field, "%s.%s", path, k);
        if (!bd_k8s_label_key_ok(k))
            return bad(c, field, "not a valid Kubernetes key");
        if (check_values && (v->kind != BD_NODE_SCALAR || !bd_k8s_label_value_ok(v->str)))
            return bad(c, field, "not a valid Kubernetes label value");
    }
    return 0;
}

static bool vip_here(const struct bd_node *vip, uint32_t want)
{
    const char *ip = talos_tree_str_at(vip, "ip");
    uint32_t a;
    return ip && bd_ipv4_parse(ip, &a) == 0 && a == want;
}

/* A vip: on a link or VLAN of the legacy machine.network. Only control planes hold one;
 * *has_vip notes the lab's. */
static int check_legacy_vip(const struct check *c, const struct bd_node *vip, const char *field,
                            bool *has_vip)
{
    if (!vip)
        return 0;
    if (c->vc->role != LAB_ROLE_CONTROLPLANE)
        return bad(c, field, "a worker cannot hold a VIP");
    *has_vip |= c->vc->has_vip && vip_here(vip, c->vc->vip);
    return 0;
}

/* The legacy machine.network.interfaces: each names its link one way, has parseable
 * addresses, and carries a VIP only on a control plane. */
static int check_legacy_network(const struct check *c, bool *has_vip)
{
    const struct bd_node *ifs = talos_tree_at(c->cfg, "machine.network.interfaces");
    for (size_t i = 0; ifs && ifs->kind == BD_NODE_SEQ && i < ifs->n; i++) {
        const struct bd_node *dev = ifs->kids[i];
        char field[160];
        snprintf(field, sizeof field, "machine.network.interfaces[%zu]", i);
        if (!bd_node_get(dev, "interface") == !bd_node_get(dev, "deviceSelector"))
            return bad(c, field, "needs exactly one of interface and deviceSelector");
        const struct bd_node *addrs = bd_node_get(dev, "addresses");
        for (size_t a = 0; addrs && addrs->kind == BD_NODE_SEQ && a < addrs->n; a++)
            if (addrs->kids[a]->kind != BD_NODE_SCALAR || !cidr_ok(addrs->kids[a]->str))
                return bad(c, field, "addresses[%zu] is not an address with a prefix (192.0.2.10/24)",
                           a);
        snprintf(field, sizeof field, "machine.network.interfaces[%zu].vip", i);
        if (check_legacy_vip(c, bd_node_get(dev, "vip"), field, has_vip) < 0)
            return -1;
        const struct bd_node *vlans = bd_node_get(dev, "vlans");
        for (size_t v = 0; vlans && vlans->kind == BD_NODE_SEQ && v < vlans->n; v++) {
            snprintf(field, sizeof field, "machine.network.interfaces[%zu].vlans[%zu].vip", i, v);
            if (check_legacy_vip(c, bd_node_get(vlans->kids[v], "vip"), field, has_vip) < 0)
                return -1;
        }
    }
    return 0;
}

static int check_machine(const struct check *c)
{
    bool cp = c->vc->role == LAB_ROLE_CONTROLPLANE;
    const char *type = str(c, "machine.type");
    if (!talos_tree_at(c->cfg, "machine"))
        return bad(c, "machine", "machine instructions are required");
    if (!type || (strcmp(type, "controlplane") && strcmp(type, "worker")))
        return bad(c, "machine.type", "\"%s\" is not controlplane or worker", type ? type : "");
    if (strcmp(type, lab_role_name(c->vc->role)))
        return bad(c, "machine.type", "%s, but lab.yaml gives this machine the role %s", type,
                   lab_role_name(c->vc->role));
    if (!str(c, "machine.token"))
        return bad(c, "machine.token", "missing: machines join through trustd with it");
    if (check_machine_ca(c, cp) < 0 || check_install(c) < 0)
        return -1;
    const struct bd_node *dns = talos_tree_at(c->cfg, "machine.features.hostDNS");
    if (dns && is_true(bd_node_get(dns, "forwardKubeDNSToHost")) && !is_true(bd_node_get(dns, "enabled")))
        return bad(c, "machine.features.hostDNS.forwardKubeDNSToHost",
                   "needs machine.features.hostDNS.enabled: true");
    if (check_labels(c, "machine.nodeLabels", true) < 0 ||
        check_labels(c, "machine.nodeAnnotations", false) < 0 ||
        check_labels(c, "machine.nodeTaints", false) < 0)
        return -1;
    return 0;
}

static int check_cni(const struct check *c)
{
    const struct bd_node *cni = talos_tree_at(c->cfg, "cluster.network.cni");
    if (!cni)
        return 0;
    const char *name = talos_tree_str_at(cni, "name");
    const struct bd_node *urls = bd_node_get(cni, "urls");
    bool has_urls = urls && urls->kind == BD_NODE_SEQ && urls->n;
    if (!name || (strcmp(name, "flannel") && strcmp(name, "custom") && strcmp(name, "none")))
        return bad(c, "cluster.network.cni.name", "\"%s\" is not flannel, custom or none",
                   name ? name : "");
    if (strcmp(name, "custom") && has_urls)
        return bad(c, "cluster.network.cni.urls", "only cni name custom takes urls (name is %s)", name);
    if (strcmp(name, "flannel") && bd_node_get(cni, "flannel"))
        return bad(c, "cluster.network.cni.flannel", "flannel settings with cni name %s", name);
    return 0;
}

static int check_inline_manifests(const struct check *c)
{
    const struct bd_node *l = talos_tree_at(c->cfg, "cluster.inlineManifests");
    for (size_t i = 0; l && l->kind == BD_NODE_SEQ && i < l->n; i++) {
        const char *name = talos_tree_str_at(l->kids[i], "name");
        if (!name || !name[0])
            return bad(c, "cluster.inlineManifests", "item %zu has no name", i);
        for (size_t j = 0; j < i; j++) {
            const char *other = talos_tree_str_at(l->kids[j], "name");
            if (other && !strcmp(other, name))
                return bad(c, "cluster.inlineManifests",
                           "\"%s\" appears twice (items %zu and %zu); names must be unique", name,
                           j, i);
        }
    }
    return 0;
}

static int check_cluster(const struct check *c)
{
    bool cp = c->vc->role == LAB_ROLE_CONTROLPLANE;
    if (!talos_tree_at(c->cfg, "cluster"))
        return bad(c, "cluster", "cluster instructions are required");
    const char *endpoint = str(c, "cluster.controlPlane.endpoint");
    struct bd_err e;
    if (!endpoint)
        return bad(c, "cluster.controlPlane.endpoint", "cluster controlplane endpoint is required");
    if (bd_url_check(endpoint, "https", &e) < 0)
        return bad(c, "cluster.controlPlane.endpoint", "%s", e.msg);
    const char *domain = str(c, "cluster.network.dnsDomain");
    if (domain && !bd_dns_name_ok(domain))
        return bad(c, "cluster.network.dnsDomain", "\"%s\" is not a DNS name", domain);
    const struct bd_node *etcd = talos_tree_at(c->cfg, "cluster.etcd");
    if (etcd && !cp)
        return bad(c, "cluster.etcd", "only control planes run etcd; a worker must not have it");
    if (cp && !(str(c, "cluster.etcd.ca.crt") && str(c, "cluster.etcd.ca.key")))
        return bad(c, "cluster.etcd.ca", "a control plane needs the etcd CA certificate and key");
    if (is_true(talos_tree_at(c->cfg, "cluster.discovery.enabled")) &&
        !(str(c, "cluster.id") && str(c, "cluster.secret")))
        return bad(c, "cluster.discovery", "discovery needs cluster.id and cluster.secret");
    if (cp && (check_cni(c) < 0 || check_inline_manifests(c) < 0))
        return -1;
    return 0;
}

/* ---- typed documents ---- */

static int check_hostname(const struct check *c, const struct bd_node *doc, const char *what)
{
    const char *auto_kind = talos_tree_str_at(doc, "auto"), *host = talos_tree_str_at(doc, "hostname");
    if (!auto_kind && !host)
        return bad(c, what, "either 'auto' or 'hostname' must be set");
    if (auto_kind && strcmp(auto_kind, "off") && strcmp(auto_kind, "stable"))
        return bad(c, what, "auto: \"%s\" is not off or stable", auto_kind);
    if (host && auto_kind && strcmp(auto_kind, "off"))
        return bad(c, what, "'auto' and 'hostname' cannot be set at the same time");
    if (host) {
        size_t first = strcspn(host, ".");
        if (strlen(host) > 253 || first == 0 || first > 63)
            return bad(c, what, "invalid hostname \"%s\"", host);
    }
    if (str(c, "machine.network.hostname"))
        return bad(c, what, "machine.network.hostname is set too; Talos refuses both");
    if (is_true(talos_tree_at(c->cfg, "machine.features.stableHostname")))
        return bad(c, what, "machine.features.stableHostname is set too; Talos refuses both");
    return 0;
}

static int check_doc(const struct check *c, size_t i, bool *has_vip)
{
    const struct bd_node *doc = c->d->v[i];
    const char *api = talos_tree_str_at(doc, "apiVersion"), *kind = talos_tree_str_at(doc, "kind");
    const char *name = talos_tree_str_at(doc, "name");
    char what[160];
    snprintf(what, sizeof what, "document %zu (%s%s%s)", i, kind ? kind : "no kind", name ? " " : "",
             name ? name : "");
    if (!api || !kind)
        return bad(c, what, "every document but the v1alpha1 one needs apiVersion and kind");
    for (size_t j = 1; j < i; j++) {
        const char *k2 = talos_tree_str_at(c->d->v[j], "kind"), *n2 = talos_tree_str_at(c->d->v[j], "name");
        if (k2 && !strcmp(k2, kind) && !strcmp(n2 ? n2 : "", name ? name : ""))
            return bad(c, what, "duplicate document (also document %zu)", j);
    }
    if (!strcmp(kind, "HostnameConfig"))
        return check_hostname(c, doc, what);
    if (!strcmp(kind, "ResolverConfig") &&
        (talos_tree_at(c->cfg, "machine.network.nameservers") || talos_tree_at(c->cfg, "machine.network.searchDomains")))
        return bad(c, what, "machine.network.nameservers or searchDomains is set too; Talos refuses both");
    if (!strcmp(kind, "Layer2VIPConfig")) {
        uint32_t a;
        if (!name || bd_ipv4_parse(name, &a) < 0)
            return bad(c, what, "name must be the VIP address");
        if (!talos_tree_str_at(doc, "link"))
            return bad(c, what, "link must be specified");
        if (c->vc->role != LAB_ROLE_CONTROLPLANE)
            return bad(c, what, "a worker cannot hold a VIP");
        *has_vip |= c->vc->has_vip && a == c->vc->vip;
    }
    return 0;
}

int talos_validate(const struct talos_docs *d, const struct validate_ctx *vc, struct bd_err *err)
{
    struct check c = {.d = d, .vc = vc, .cfg = d->v[0], .err = err};
    const char *version = str(&c, "version");
    if (!version || strcmp(version, "v1alpha1"))
        return bad(&c, "version", "must be v1alpha1");
    if (talos_tree_check_v1alpha1_keys(c.cfg, err) < 0)
        return -1;
    const struct bd_node *persist = bd_node_get(c.cfg, "persist");
    if (persist && !is_true(persist))
        return bad(&c, "persist", ".persist should be enabled");
    if (check_machine(&c) < 0 || check_cluster(&c) < 0)
        return -1;
    bool cp = vc->role == LAB_ROLE_CONTROLPLANE, has_vip = false;
    if (check_legacy_network(&c, &has_vip) < 0)
        return -1;
    for (size_t i = 1; i < d->n; i++)
        if (check_doc(&c, i, &has_vip) < 0)
            return -1;
    if (cp && vc->has_vip && !has_vip) {
        char ip[16];
        bd_ipv4_format(vc->vip, ip);
        return bad(&c, "cluster.vip",
                   "%s is on no link of this control plane (a patch replaced the network setup "
                   "without it)",
                   ip);
    }
    return 0;
}
