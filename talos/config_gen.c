/* The machine config Talos v1.13's `talosctl gen config` would write, with what lab.yaml
 * says in place of its flags: the single v1alpha1 document (same key paths, defaults
 * and order as tests/fixtures/talos/v1.13-base-*.yaml) plus HostnameConfig and, where
 * a machine needs them, network documents. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parts that never change, as gen config writes them (Go maps come out key-sorted). */
static const char kubelet_yaml[] = "defaultRuntimeSeccompProfileEnabled: true\n"
                                   "disableManifestsDirectory: true\n";
static const char features_yaml[] = "diskQuotaSupport: true\n"
                                    "kubePrism:\n  enabled: true\n  port: 7445\n"
                                    "hostDNS:\n  enabled: true\n  forwardKubeDNSToHost: true\n";
static const char admission_yaml[] = "- name: PodSecurity\n"
                                     "  configuration:\n"
                                     "    apiVersion: pod-security.admission.config.k8s.io/v1alpha1\n"
                                     "    defaults:\n"
                                     "      audit: restricted\n"
                                     "      audit-version: latest\n"
                                     "      enforce: baseline\n"
                                     "      enforce-version: latest\n"
                                     "      warn: restricted\n"
                                     "      warn-version: latest\n"
                                     "    exemptions:\n"
                                     "      namespaces: [kube-system]\n"
                                     "      runtimeClasses: []\n"
                                     "      usernames: []\n"
                                     "    kind: PodSecurityConfiguration\n";
static const char audit_yaml[] = "apiVersion: audit.k8s.io/v1\n"
                                 "kind: Policy\n"
                                 "rules:\n  - level: Metadata\n";
static const char registries_yaml[] = "kubernetes:\n  disabled: true\nservice: {}\n";

/* Parses one of the constant snippets above. */
static struct bd_node *snippet(const char *yaml)
{
    struct bd_yaml_doc doc;
    struct bd_err err;
    if (bd_yaml_parse(yaml, strlen(yaml), "(built in)", &doc, &err) < 0 || doc.ndocs != 1)
        abort(); /* a constant in this file: only a broken build gets here */
    struct bd_node *n = doc.docs[0];
    doc.ndocs = 0;
    bd_yaml_doc_free(&doc);
    return n;
}

static void set_snippet(struct bd_node *map, const char *key, const char *yaml)
{
    bd_node_map_set(map, key, snippet(yaml));
}

static void image(struct bd_node *map, const char *repo, const char *version)
{
    char *s = bd_xasprintf("%s:v%s", repo, version);
    talos_tree_str(map, "image", s);
    free(s);
}

static void ca_pair(struct bd_node *parent, const char *key, const struct secrets_ca *ca,
                    bool with_key)
{
    struct bd_node *m = talos_tree_map(parent, key);
    talos_tree_str(m, "crt", ca->crt);
    talos_tree_str(m, "key", with_key ? ca->key : "");
}

static void str_list(struct bd_node *parent, const char *key, const struct lab_strlist *l)
{
    struct bd_node *seq = talos_tree_seq(parent, key);
    for (size_t i = 0; i < l->n; i++)
        bd_node_seq_push(seq, bd_node_scalar(l->v[i], false));
}

static void one_item_list(struct bd_node *parent, const char *key, const char *item)
{
    struct bd_node *seq = talos_tree_seq(parent, key);
    bd_node_seq_push(seq, bd_node_scalar(item, false));
}

static struct bd_node *machine_section(const struct gen_input *in, struct bd_node *doc,
                                       enum lab_role role)
{
    const struct lab_cluster *cl = &in->lab->cluster;
    const struct talos_secrets *s = in->secrets;
    bool cp = role == LAB_ROLE_CONTROLPLANE;
    struct bd_node *m = talos_tree_map(doc, "machine");
    talos_tree_str(m, "type", lab_role_name(role));
    talos_tree_str(m, "token", s->trustd_token);
    ca_pair(m, "ca", &s->os, cp);
    str_list(m, "certSANs", &cl->cert_sans);
    struct bd_node *kubelet = talos_tree_map(m, "kubelet");
    image(kubelet, "ghcr.io/siderolabs/kubelet", cl->kubernetes_version);
    struct bd_node *rest = snippet(kubelet_yaml);
    for (size_t i = 0; i < rest->n; i++)
        bd_node_map_set(kubelet, rest->kids[2 * i]->str, bd_node_clone(rest->kids[2 * i + 1]));
    bd_node_free(rest);
    struct bd_node *install = talos_tree_map(m, "install");
    talos_tree_str(install, "disk", ""); /* each machine's own, see talos_gen_machine */
    talos_tree_str(install, "image", in->installer_image);
    talos_tree_plain(install, "wipe", "false");
    talos_tree_plain(install, "grubUseUKICmdline", "true");
    set_snippet(m, "features", features_yaml);
    if (cp) {
        struct bd_node *labels = talos_tree_map(m, "nodeLabels");
        talos_tree_str(labels, "node.kubernetes.io/exclude-from-external-load-balancers", "");
    }
    return m;
}

static void cluster_network(const struct lab_cluster *cl, struct bd_node *c)
{
    struct bd_node *net = talos_tree_map(c, "network");
    if (cl->cni != LAB_CNI_FLANNEL) {
        struct bd_node *cni = talos_tree_map(net, "cni");
        talos_tree_str(cni, "name", cl->cni == LAB_CNI_NONE ? "none" : "custom");
    }
    talos_tree_str(net, "dnsDomain", cl->dns_domain);
    one_item_list(net, "podSubnets", cl->pod_subnet);
    one_item_list(net, "serviceSubnets", cl->service_subnet);
}

static void discovery(const struct lab_cluster *cl, struct bd_node *c)
{
    struct bd_node *d = talos_tree_map(c, "discovery");
    talos_tree_plain(d, "enabled", cl->discovery ? "true" : "false");
    set_snippet(d, "registries", registries_yaml);
}

static void control_plane_parts(const struct gen_input *in, struct bd_node *c)
{
    const struct lab_cluster *cl = &in->lab->cluster;
    const struct talos_secrets *s = in->secrets;
    const char *k8s = cl->kubernetes_version;
    ca_pair(c, "aggregatorCA", &s->k8s_aggregator, true);
    talos_tree_str(talos_tree_map(c, "serviceAccount"), "key", s->service_account_key);
    struct bd_node *api = talos_tree_map(c, "apiServer");
    image(api, "registry.k8s.io/kube-apiserver", k8s);
    if (cl->cert_sans.n)
        str_list(api, "certSANs", &cl->cert_sans);
    set_snippet(api, "admissionControl", admission_yaml);
    set_snippet(api, "auditPolicy", audit_yaml);
    image(talos_tree_map(c, "controllerManager"), "registry.k8s.io/kube-controller-manager", k8s);
    struct bd_node *proxy = talos_tree_map(c, "proxy");
    if (!cl->kube_proxy)
        talos_tree_plain(proxy, "disabled", "true");
    image(proxy, "registry.k8s.io/kube-proxy", k8s);
    image(talos_tree_map(c, "scheduler"), "registry.k8s.io/kube-scheduler", k8s);
    discovery(cl, c);
    ca_pair(talos_tree_map(c, "etcd"), "ca", &s->etcd, true);
    if (cl->extra_manifests.n)
        str_list(c, "extraManifests", &cl->extra_manifests);
    if (cl->n_inline_manifests) {
        struct bd_node *seq = talos_tree_seq(c, "inlineManifests");
        for (size_t i = 0; i < cl->n_inline_manifests; i++) {
            struct bd_node *item = bd_node_new(BD_NODE_MAP);
            talos_tree_str(item, "name", cl->inline_manifests[i].name);
            talos_tree_str(item, "contents", in->manifest_texts[i]);
            bd_node_seq_push(seq, item);
        }
    }
    if (cl->allow_scheduling_on_control_planes)
        talos_tree_plain(c, "allowSchedulingOnControlPlanes", "true");
}

struct bd_node *talos_gen_role_base(const struct gen_input *in, enum lab_role role)
{
    const struct lab_cluster *cl = &in->lab->cluster;
    const struct talos_secrets *s = in->secrets;
    bool cp = role == LAB_ROLE_CONTROLPLANE;
    struct bd_node *doc = bd_node_new(BD_NODE_MAP);
    talos_tree_str(doc, "version", "v1alpha1");
    talos_tree_plain(doc, "debug", "false");
    talos_tree_plain(doc, "persist", "true");
    machine_section(in, doc, role);

    struct bd_node *c = talos_tree_map(doc, "cluster");
    talos_tree_str(c, "id", s->cluster_id);
    talos_tree_str(c, "secret", s->cluster_secret);
    talos_tree_str(talos_tree_map(c, "controlPlane"), "endpoint", cl->endpoint);
    talos_tree_str(c, "clusterName", cl->name);
    cluster_network(cl, c);
    talos_tree_str(c, "token", s->bootstrap_token);
    if (cp)
        talos_tree_str(c, s->secretbox_secret ? "secretboxEncryptionSecret" : "aescbcEncryptionSecret",
                 s->secretbox_secret ? s->secretbox_secret : s->aescbc_secret);
    ca_pair(c, "ca", &s->k8s, cp);
    if (cp)
        control_plane_parts(in, c);
    else
        discovery(cl, c);
    return doc;
}

static struct bd_node *typed_doc(const char *kind, const char *name)
{
    struct bd_node *d = bd_node_new(BD_NODE_MAP);
    talos_tree_str(d, "apiVersion", "v1alpha1");
    talos_tree_str(d, "kind", kind);
    if (name)
        talos_tree_str(d, "name", name);
    return d;
}

/* Network documents, only where DHCP on every link (Talos's default) is not enough: a
 * static address, or the control planes' shared VIP. The link is found by the MAC
 * lab.yaml gives, so interface names do not matter. */
static void network_docs(const struct gen_input *in, const struct lab_machine *m,
                         struct talos_docs *out)
{
    const struct lab *lab = in->lab;
    bool vip = m->role == LAB_ROLE_CONTROLPLANE && lab->cluster.has_vip;
    bool stat = m->addressing == LAB_ADDR_STATIC;
    if (!vip && !stat)
        return;
    char mac[18], buf[64];
    bd_mac_format(&m->mac, mac);
    struct bd_node *alias = typed_doc("LinkAliasConfig", TALOS_LINK);
    snprintf(buf, sizeof buf, "mac(link.permanent_addr) == \"%s\"", mac);
    talos_tree_str(talos_tree_map(alias, "selector"), "match", buf);
    talos_docs_push(out, alias);
    if (stat) {
        struct bd_node *link = typed_doc("LinkConfig", TALOS_LINK);
        talos_tree_plain(link, "up", "true");
        char ip[16];
        bd_ipv4_format(m->ip, ip);
        snprintf(buf, sizeof buf, "%s/%d", ip, lab->lan.subnet.prefix);
        talos_tree_str(talos_tree_item(talos_tree_seq(link, "addresses")), "address", buf);
        bd_ipv4_format(lab->lan.gateway, ip);
        talos_tree_str(talos_tree_item(talos_tree_seq(link, "routes")), "gateway", ip);
        talos_docs_push(out, link);
        if (lab->lan.dns.n) {
            struct bd_node *res = typed_doc("ResolverConfig", NULL);
            struct bd_node *ns = talos_tree_seq(res, "nameservers");
            for (size_t i = 0; i < lab->lan.dns.n; i++) {
                bd_ipv4_format(lab->lan.dns.v[i], ip);
                talos_tree_str(talos_tree_item(ns), "address", ip);
            }
            talos_docs_push(out, res);
        }
    } else {
        talos_docs_push(out, typed_doc("DHCPv4Config", TALOS_LINK));
    }
    if (vip) {
        char v[16];
        bd_ipv4_format(lab->cluster.vip, v);
        struct bd_node *l2 = typed_doc("Layer2VIPConfig", v);
        talos_tree_str(l2, "link", TALOS_LINK);
        talos_docs_push(out, l2);
    }
}

void talos_gen_machine(const struct gen_input *in, const struct bd_node *role_base,
                 const struct lab_machine *m, struct talos_docs *out)
{
    struct bd_node *doc = bd_node_clone(role_base);
    struct bd_node *machine = bd_node_get(doc, "machine");
    talos_tree_str(bd_node_get(machine, "install"), "disk", m->install_disk);
    if (m->labels.n) {
        struct bd_node *labels = bd_node_get(machine, "nodeLabels");
        if (!labels)
            labels = talos_tree_map(machine, "nodeLabels");
        for (size_t i = 0; i < m->labels.n; i++)
            talos_tree_str(labels, m->labels.v[i].key, m->labels.v[i].value);
    }
    talos_docs_push(out, doc);
    /* what Talos's own static-hostname option writes (stdpatches.WithStaticHostname) */
    struct bd_node *host = typed_doc("HostnameConfig", NULL);
    talos_tree_str(host, "auto", "off"); /* a string; written quoted */
    talos_tree_str(host, "hostname", m->hostname);
    talos_docs_push(out, host);
    network_docs(in, m, out);
}
