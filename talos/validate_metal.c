/* What a PXE-booted metal machine will not have. Talos on metal names network links
 * predictably (ens18 for a Proxmox virtio NIC, enp0s3, eno1...); only cloud platforms
 * such as nocloud boot with net.ifnames=0 and get eth0. A patch written for nocloud
 * images that names eth0 therefore configures a link the machine does not have: its
 * addresses and, worse, the cluster VIP are never set up, and the Kubernetes endpoint
 * never answers. Links chosen by deviceSelector must match the machine's MAC for the
 * same reason. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct metal {
    const struct validate_ctx *vc;
    bool ifnames0; /* the schematic's, or machine.install.extraKernelArgs' without UKI cmdline */
    struct bd_err *err;
};

/* eth0, eth1...: kernel names that predictable naming replaces. */
static bool kernel_name(const char *s)
{
    if (strncmp(s, "eth", 3) || !isdigit((unsigned char)s[3]))
        return false;
    for (s += 3; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static void where(const struct bd_node *n, char *out, size_t size)
{
    if (n && n->line)
        snprintf(out, size, " (line %d, column %d of the patch)", n->line, n->col);
    else
        out[0] = 0;
}

static int no_such_link(const struct metal *m, const char *field, const struct bd_node *n,
                        bool vip)
{
    char at[80], mac[18], vipmsg[120] = "";
    const char *pxe_only = m->vc->ifnames0_pxe_only
                               ? " net.ifnames=0 is in the lab's kernel_args, but those reach the "
                                 "PXE boot only: the installed system boots from its disk with "
                                 "the image's command line."
                               : "";
    where(n, at, sizeof at);
    bd_mac_format(&m->vc->mac, mac);
    if (vip) {
        char ip[16];
        bd_ipv4_format(m->vc->vip, ip);
        snprintf(vipmsg, sizeof vipmsg, " The VIP %s would never be held there, so the "
                                        "Kubernetes endpoint would never answer.",
                 ip);
    }
    return bd_err_set(m->err,
                      "%s%s: \"%s\" is a link this machine will not have: Talos on metal (PXE) "
                      "names links predictably (ens18 on a Proxmox virtio NIC); only cloud "
                      "platforms such as nocloud boot with net.ifnames=0 and get eth0.%s%s Fix: "
                      "select the link by the machine's MAC instead (deviceSelector: "
                      "{hardwareAddr: \"%s\"}), or add net.ifnames=0 to the image schematic's "
                      "customization.extraKernelArgs (images.schematic in lab.yaml), which both "
                      "the PXE boot and the installed system get",
                      field, at, n->str, vipmsg, pxe_only, mac);
}

static int check_name(const struct metal *m, const char *field, const struct bd_node *n, bool vip)
{
    if (!n || n->kind != BD_NODE_SCALAR || m->ifnames0 || !kernel_name(n->str))
        return 0;
    return no_such_link(m, field, n, vip);
}

static bool mac_pattern_matches(const char *pattern, const struct bd_mac *mac)
{
    char have[18];
    bd_mac_format(mac, have);
    /* Talos matches hardwareAddr as a glob; only plain addresses are compared here */
    return strpbrk(pattern, "*?[") || !strcasecmp(pattern, have);
}

static int check_selector(const struct metal *m, const char *field, const struct bd_node *sel,
                          bool vip)
{
    const struct bd_node *hw = sel ? bd_node_get(sel, "hardwareAddr") : NULL;
    if (!hw || hw->kind != BD_NODE_SCALAR || mac_pattern_matches(hw->str, &m->vc->mac))
        return 0;
    char at[80], mac[18];
    where(hw, at, sizeof at);
    bd_mac_format(&m->vc->mac, mac);
    return bd_err_set(m->err,
                      "%s.hardwareAddr%s: %s is not this machine's MAC (lab.yaml gives it %s), "
                      "so the link%s would never be set up",
                      field, at, hw->str, mac, vip ? " and its VIP" : "");
}

static bool has_vip(const struct bd_node *dev)
{
    if (bd_node_get(dev, "vip"))
        return true;
    const struct bd_node *vlans = bd_node_get(dev, "vlans");
    for (size_t v = 0; vlans && vlans->kind == BD_NODE_SEQ && v < vlans->n; v++)
        if (bd_node_get(vlans->kids[v], "vip"))
            return true;
    return false;
}

static int check_legacy(const struct metal *m, const struct bd_node *cfg)
{
    const struct bd_node *ifs = talos_tree_at(cfg, "machine.network.interfaces");
    for (size_t i = 0; ifs && ifs->kind == BD_NODE_SEQ && i < ifs->n; i++) {
        const struct bd_node *dev = ifs->kids[i];
        bool vip = has_vip(dev);
        char field[160];
        snprintf(field, sizeof field, "machine.network.interfaces[%zu].interface", i);
        if (check_name(m, field, bd_node_get(dev, "interface"), vip) < 0)
            return -1;
        snprintf(field, sizeof field, "machine.network.interfaces[%zu].deviceSelector", i);
        if (check_selector(m, field, bd_node_get(dev, "deviceSelector"), vip) < 0)
            return -1;
        static const char *const groups[] = {"bond", "bridge"};
        for (int g = 0; g < 2; g++) {
            const struct bd_node *members = talos_tree_at(dev, g ? "bridge.interfaces" : "bond.interfaces");
            for (size_t k = 0; members && members->kind == BD_NODE_SEQ && k < members->n; k++) {
                snprintf(field, sizeof field, "machine.network.interfaces[%zu].%s.interfaces[%zu]",
                         i, groups[g], k);
                if (check_name(m, field, members->kids[k], vip) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

/* The typed network documents name links in these fields. */
static const struct {
    const char *kind, *field;
    bool list;
} link_fields[] = {
    {"LinkConfig", "name", false},      {"DHCPv4Config", "name", false},
    {"DHCPv6Config", "name", false},    {"Layer2VIPConfig", "link", false},
    {"VLANConfig", "parent", false},    {"BondConfig", "links", true},
    {"BridgeConfig", "links", true},    {"HCloudVIPConfig", "link", false},
};

/* A name a LinkAliasConfig gives (bootd's lan0 among them) is the machine's to have. */
static bool aliased(const struct talos_docs *d, const char *name)
{
    for (size_t i = 1; i < d->n; i++) {
        const char *kind = talos_tree_str_at(d->v[i], "kind"), *n = talos_tree_str_at(d->v[i], "name");
        if (kind && n && !strcmp(kind, "LinkAliasConfig") && !strcmp(n, name))
            return true;
    }
    return false;
}

static int check_doc(const struct metal *m, const struct talos_docs *d, size_t i)
{
    const struct bd_node *doc = d->v[i];
    const char *kind = talos_tree_str_at(doc, "kind"), *name = talos_tree_str_at(doc, "name");
    if (!kind)
        return 0;
    if (!strcmp(kind, "LinkAliasConfig")) {
        char field[160];
        snprintf(field, sizeof field, "LinkAliasConfig %s.selector", name ? name : "");
        return check_selector(m, field, bd_node_get(doc, "selector"), false);
    }
    for (size_t f = 0; f < sizeof link_fields / sizeof link_fields[0]; f++) {
        if (strcmp(kind, link_fields[f].kind))
            continue;
        const struct bd_node *v = bd_node_get(doc, link_fields[f].field);
        size_t n = v && link_fields[f].list && v->kind == BD_NODE_SEQ ? v->n : v ? 1 : 0;
        for (size_t k = 0; k < n; k++) {
            const struct bd_node *item = link_fields[f].list ? v->kids[k] : v;
            char field[160];
            snprintf(field, sizeof field, "%s %s: %s", kind, name ? name : "", link_fields[f].field);
            if (item->kind == BD_NODE_SCALAR && aliased(d, item->str))
                continue;
            if (check_name(m, field, item, strstr(kind, "VIP") != NULL) < 0)
                return -1;
        }
    }
    return 0;
}

int talos_validate_metal(const struct talos_docs *d, const struct validate_ctx *vc,
                         struct bd_err *err)
{
    struct metal m = {.vc = vc, .ifnames0 = vc->ifnames0, .err = err};
    /* with grubUseUKICmdline off, the installer adds machine.install.extraKernelArgs */
    const struct bd_node *args = talos_tree_at(d->v[0], "machine.install.extraKernelArgs");
    const struct bd_node *uki = talos_tree_at(d->v[0], "machine.install.grubUseUKICmdline");
    bool uki_on = uki && uki->kind == BD_NODE_SCALAR && !strcmp(uki->str, "true");
    for (size_t i = 0; !uki_on && args && args->kind == BD_NODE_SEQ && i < args->n; i++)
        if (args->kids[i]->kind == BD_NODE_SCALAR && !strncmp(args->kids[i]->str, "net.ifnames=", 12))
            m.ifnames0 = !strcmp(args->kids[i]->str + 12, "0");
    if (check_legacy(&m, d->v[0]) < 0)
        return -1;
    for (size_t i = 1; i < d->n; i++)
        if (check_doc(&m, d, i) < 0)
            return -1;
    return 0;
}
