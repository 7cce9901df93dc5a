/* The fields of Talos's v1alpha1 structs (talos@v1.13.9
 * pkg/machinery/config/types/v1alpha1/v1alpha1_types.go, in their Go declaration
 * order), used twice:
 *   - to write a v1alpha1 document the way Talos does, so that a patched config reads
 *     the same as one `talosctl gen config --config-patch` would print: struct fields
 *     in declaration order, Go maps (labels, sysctls, extraArgs, embedded Kubernetes
 *     objects) in go-yaml's key order;
 *   - to refuse keys those structs do not have, as Talos's strict decoder does, so a
 *     misspelt key in a patch is caught before a machine downloads it.
 * Structs not listed here (deeper, rarer ones) are neither reordered nor checked. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum order_kind { STRUCT, MAP, MAP_DEEP };

static const struct order {
    const char *path; /* "[]" stands for every item of a list */
    enum order_kind kind;
    const char *const *keys;
} orders[] = {
#define K(...) (const char *const[]){__VA_ARGS__, NULL}
    {"", STRUCT, K("version", "debug", "persist", "machine", "cluster")},
    {"machine", STRUCT,
     K("type", "token", "ca", "acceptedCAs", "certSANs", "controlPlane", "kubelet", "pods",
       "network", "disks", "install", "files", "env", "time", "sysctls", "sysfs", "registries",
       "systemDiskEncryption", "features", "udev", "logging", "kernel", "seccompProfiles",
       "baseRuntimeSpecOverrides", "nodeLabels", "nodeAnnotations", "nodeTaints")},
    {"machine.ca", STRUCT, K("crt", "key")},
    {"machine.kubelet", STRUCT,
     K("image", "clusterDNS", "extraArgs", "extraMounts", "extraConfig",
       "credentialProviderConfig", "defaultRuntimeSeccompProfileEnabled", "registerWithFQDN",
       "nodeIP", "skipNodeRegistration", "disableManifestsDirectory")},
    {"machine.kubelet.extraArgs", MAP, NULL},
    {"machine.kubelet.extraConfig", MAP_DEEP, NULL},
    {"machine.kubelet.credentialProviderConfig", MAP_DEEP, NULL},
    {"machine.kubelet.extraMounts.[]", STRUCT,
     K("destination", "type", "source", "options", "uidMappings", "gidMappings")},
    {"machine.network", STRUCT,
     K("hostname", "interfaces", "nameservers", "searchDomains", "extraHostEntries", "kubespan",
       "disableSearchDomain")},
    {"machine.network.interfaces.[]", STRUCT,
     K("interface", "deviceSelector", "addresses", "cidr", "routes", "bond", "bridge",
       "bridgePort", "vlans", "mtu", "dhcp", "ignore", "dummy", "dhcpOptions", "wireguard", "vip")},
    {"machine.network.interfaces.[].routes.[]", STRUCT,
     K("network", "gateway", "source", "metric", "mtu")},
    {"machine.network.interfaces.[].vlans.[]", STRUCT,
     K("addresses", "cidr", "routes", "dhcp", "vlanId", "mtu", "vip", "dhcpOptions")},
    {"machine.network.interfaces.[].vip", STRUCT, K("ip", "equinixMetal", "hcloud")},
    {"machine.install", STRUCT,
     K("disk", "diskSelector", "extraKernelArgs", "image", "extensions", "bootloader", "wipe",
       "legacyBIOSSupport", "grubUseUKICmdline")},
    {"machine.sysctls", MAP, NULL},
    {"machine.sysfs", MAP, NULL},
    {"machine.features", STRUCT,
     K("rbac", "stableHostname", "kubernetesTalosAPIAccess", "apidCheckExtKeyUsage",
       "diskQuotaSupport", "kubePrism", "hostDNS", "imageCache", "nodeAddressSortAlgorithm")},
    {"machine.features.kubePrism", STRUCT, K("enabled", "port")},
    {"machine.features.hostDNS", STRUCT, K("enabled", "forwardKubeDNSToHost", "resolveMemberNames")},
    {"machine.baseRuntimeSpecOverrides", MAP_DEEP, NULL},
    {"machine.nodeLabels", MAP, NULL},
    {"machine.nodeAnnotations", MAP, NULL},
    {"machine.nodeTaints", MAP, NULL},
    {"cluster", STRUCT,
     K("id", "secret", "controlPlane", "clusterName", "network", "token", "aescbcEncryptionSecret",
       "secretboxEncryptionSecret", "ca", "acceptedCAs", "aggregatorCA", "serviceAccount",
       "apiServer", "controllerManager", "proxy", "scheduler", "discovery", "etcd", "coreDNS",
       "externalCloudProvider", "extraManifests", "extraManifestHeaders", "inlineManifests",
       "adminKubeconfig", "allowSchedulingOnMasters", "allowSchedulingOnControlPlanes")},
    {"cluster.controlPlane", STRUCT, K("endpoint", "localAPIServerPort")},
    {"cluster.network", STRUCT, K("cni", "dnsDomain", "podSubnets", "serviceSubnets")},
    {"cluster.network.cni", STRUCT, K("name", "urls", "flannel")},
    {"cluster.ca", STRUCT, K("crt", "key")},
    {"cluster.aggregatorCA", STRUCT, K("crt", "key")},
    {"cluster.apiServer", STRUCT,
     K("image", "extraArgs", "extraVolumes", "env", "certSANs", "disablePodSecurityPolicy",
       "admissionControl", "auditPolicy", "resources", "authorizationConfig")},
    {"cluster.apiServer.extraArgs", MAP, NULL},
    {"cluster.apiServer.admissionControl.[]", STRUCT, K("name", "configuration")},
    {"cluster.apiServer.admissionControl.[].configuration", MAP_DEEP, NULL},
    {"cluster.apiServer.auditPolicy", MAP_DEEP, NULL},
    {"cluster.controllerManager", STRUCT, K("image", "extraArgs", "extraVolumes", "env", "resources")},
    {"cluster.controllerManager.extraArgs", MAP, NULL},
    {"cluster.proxy", STRUCT, K("disabled", "image", "mode", "extraArgs")},
    {"cluster.proxy.extraArgs", MAP, NULL},
    {"cluster.scheduler", STRUCT, K("image", "extraArgs", "extraVolumes", "env", "resources", "config")},
    {"cluster.scheduler.extraArgs", MAP, NULL},
    {"cluster.scheduler.config", MAP_DEEP, NULL},
    {"cluster.discovery", STRUCT, K("enabled", "registries")},
    {"cluster.discovery.registries", STRUCT, K("kubernetes", "service")},
    {"cluster.etcd", STRUCT, K("image", "ca", "extraArgs", "subnet", "advertisedSubnets", "listenSubnets")},
    {"cluster.etcd.ca", STRUCT, K("crt", "key")},
    {"cluster.etcd.extraArgs", MAP, NULL},
    {"cluster.coreDNS", STRUCT, K("disabled", "image")},
    {"cluster.extraManifestHeaders", MAP, NULL},
    {"cluster.inlineManifests.[]", STRUCT, K("name", "contents")},
#undef K
};

/* go-yaml's key order (its sorter.go): runs of digits compare as numbers, and at the
 * first difference a non-letter sorts before a letter, unless it follows digits. */
static int goyaml_cmp(const char *a, const char *b)
{
    bool digits = false;
    size_t i = 0;
    for (; a[i] && b[i]; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x == y) {
            digits = isdigit(x);
            continue;
        }
        bool xl = isalpha(x), yl = isalpha(y);
        if (xl && yl)
            return x < y ? -1 : 1;
        if (xl || yl)
            return (digits ? xl : yl) ? -1 : 1;
        long long xn = 0, yn = 0;
        size_t xi = i, yi = i;
        for (; isdigit((unsigned char)a[xi]); xi++)
            xn = xn * 10 + (a[xi] - '0');
        for (; isdigit((unsigned char)b[yi]); yi++)
            yn = yn * 10 + (b[yi] - '0');
        if (xn != yn)
            return xn < yn ? -1 : 1;
        if (xi != yi)
            return xi < yi ? -1 : 1;
        return x < y ? -1 : 1;
    }
    return a[i] ? 1 : b[i] ? -1 : 0;
}

struct entry {
    struct bd_node *key, *val;
    size_t rank; /* struct position, or the original position for unknown keys */
};

static int cmp_entry(const void *pa, const void *pb, void *order)
{
    const struct entry *a = pa, *b = pb;
    if (((const struct order *)order)->kind != STRUCT) {
        int c = goyaml_cmp(a->key->str, b->key->str);
        return c ? c : (a->rank > b->rank) - (a->rank < b->rank);
    }
    return (a->rank > b->rank) - (a->rank < b->rank);
}

static void sort_map(struct bd_node *map, const struct order *o)
{
    if (map->n < 2)
        return;
    struct entry *e = bd_xmalloc(map->n * sizeof *e);
    for (size_t i = 0; i < map->n; i++) {
        e[i] = (struct entry){map->kids[2 * i], map->kids[2 * i + 1], 1000 + i};
        for (size_t k = 0; o->kind == STRUCT && o->keys[k]; k++)
            if (!strcmp(o->keys[k], e[i].key->str))
                e[i].rank = k;
        if (o->kind != STRUCT)
            e[i].rank = i;
    }
    qsort_r(e, map->n, sizeof *e, cmp_entry, (void *)o);
    for (size_t i = 0; i < map->n; i++) {
        map->kids[2 * i] = e[i].key;
        map->kids[2 * i + 1] = e[i].val;
    }
    free(e);
}

static const struct order *lookup(const char *path)
{
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
        if (!strcmp(orders[i].path, path))
            return &orders[i];
    return NULL;
}

static void walk(struct bd_node *n, char *path, size_t len, size_t cap, bool deep)
{
    static const struct order deep_map = {"", MAP_DEEP, NULL};
    const struct order *o = NULL;
    if (n->kind == BD_NODE_MAP) {
        o = deep ? &deep_map : lookup(path);
        if (o)
            sort_map(n, o);
    }
    deep = deep || (o && o->kind == MAP_DEEP);
    for (size_t i = 0; n->kind != BD_NODE_SCALAR && i < n->n; i++) {
        struct bd_node *kid = n->kind == BD_NODE_MAP ? n->kids[2 * i + 1] : n->kids[i];
        const char *seg = n->kind == BD_NODE_MAP ? n->kids[2 * i]->str : "[]";
        size_t add = strlen(seg) + (len ? 1 : 0);
        if (kid->kind == BD_NODE_SCALAR || len + add + 1 > cap)
            continue; /* nothing to order below, or deeper than any path in the table */
        if (len)
            path[len] = '.';
        memcpy(path + len + (len ? 1 : 0), seg, strlen(seg) + 1);
        walk(kid, path, len + add, cap, deep);
        path[len] = 0;
    }
}

void talos_tree_order_v1alpha1(struct bd_node *doc)
{
    char path[256] = "";
    walk(doc, path, 0, sizeof path, false);
}

/* The first key of a listed struct that the struct does not have. path is the dotted
 * path of n, display the same with list indices for messages. */
static int check_keys(const struct bd_node *n, const char *path, const char *display,
                      struct bd_err *err)
{
    const struct order *o = n->kind == BD_NODE_MAP ? lookup(path) : NULL;
    if (o && o->kind != STRUCT)
        return 0; /* a Go map: any key */
    for (size_t i = 0; o && i < n->n; i++) {
        const char *key = n->kids[2 * i]->str;
        bool known = false;
        for (size_t k = 0; o->keys[k] && !known; k++)
            known = !strcmp(o->keys[k], key);
        if (!known)
            return bd_err_set(err, "%s%s%s: unknown key (Talos refuses keys its config does not have)",
                              display, *display ? "." : "", key);
    }
    for (size_t i = 0; n->kind != BD_NODE_SCALAR && i < n->n; i++) {
        const struct bd_node *kid = n->kind == BD_NODE_MAP ? n->kids[2 * i + 1] : n->kids[i];
        if (kid->kind == BD_NODE_SCALAR)
            continue;
        const char *seg = n->kind == BD_NODE_MAP ? n->kids[2 * i]->str : "[]";
        char *kpath = *path ? bd_xasprintf("%s.%s", path, seg) : bd_xstrdup(seg);
        char *kdisplay = n->kind == BD_NODE_MAP
                             ? (*display ? bd_xasprintf("%s.%s", display, seg) : bd_xstrdup(seg))
                             : bd_xasprintf("%s[%zu]", display, i);
        int rc = check_keys(kid, kpath, kdisplay, err);
        free(kpath);
        free(kdisplay);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int talos_tree_check_v1alpha1_keys(const struct bd_node *doc, struct bd_err *err)
{
    return check_keys(doc, "", "", err);
}
