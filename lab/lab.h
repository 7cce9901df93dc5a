/* lab/ — the lab.yaml model: decoding (table-driven, with file:line:col in every error),
 * defaults and validation, machines.d included. Everything else reads a lab through
 * this header; nothing here knows what a lab is used for. */
#ifndef LAB_H
#define LAB_H

#include "../lib/bd.h"


enum lab_role { LAB_ROLE_CONTROLPLANE, LAB_ROLE_WORKER };
enum lab_dhcp_mode { LAB_DHCP_FULL, LAB_DHCP_PROXY };
enum lab_unknown_policy { LAB_UNKNOWN_HOLD, LAB_UNKNOWN_EXIT };
/* pxe: firmware gets iPXE over TFTP; http: UEFI HTTP Boot of a per-boot UKI */
enum lab_boot_method { LAB_BOOT_PXE, LAB_BOOT_HTTP };
enum lab_arch { LAB_ARCH_AMD64, LAB_ARCH_ARM64 };
enum lab_cni { LAB_CNI_FLANNEL, LAB_CNI_NONE, LAB_CNI_CUSTOM };
/* auto: bootd bootstraps the cluster once the bootstrap node's Talos API answers;
 * manual: only when asked (bootctl bootstrap). */
enum lab_bootstrap { LAB_BOOTSTRAP_AUTO, LAB_BOOTSTRAP_MANUAL };
/* manual: changed configs reach running machines by bootctl apply; auto: bootd starts
 * that itself after each reload (docs/day2.md). */
enum lab_apply { LAB_APPLY_MANUAL, LAB_APPLY_AUTO };
/* How a machine's Talos gets its address: by DHCP, or set from ip, lan.subnet,
 * lan.gateway and lan.dns in its config. */
enum lab_addressing { LAB_ADDR_DHCP, LAB_ADDR_STATIC };

struct lab_strlist {
    size_t n;
    char **v;
};

struct lab_kv {
    char *key, *value;
};
struct lab_kvlist {
    size_t n;
    struct lab_kv *v;
};

struct lab_ipv4list {
    size_t n;
    uint32_t *v;
};

struct lab_cidr {
    uint32_t addr;
    int prefix;
};

struct lab_manifest {
    char *name, *file;
};

struct lab_where { /* where a thing was written, for later error messages */
    const char *file;
    int line;
};
/* Where a value was written, to the column (file NULL: not written, a default). */
struct lab_at {
    const char *file;
    int line, col;
};

enum lab_bios { LAB_BIOS_SEABIOS, LAB_BIOS_OVMF };

struct lab_proxmox_vm {
    bool set;
    char *node;
    int vmid, cores, memory_mib, disk_gib;
    int bios;                /* enum lab_bios */
    char *machine, *bridge;  /* NULL: q35, proxmox.bridge */
    int vlan;                /* 0: proxmox.vlan */
    struct lab_strlist tags; /* Proxmox tags besides "bootd" */
};

struct lab_machine {
    char *name;
    struct bd_mac mac;
    char *uuid; /* lower-case, or NULL */
    enum lab_role role;
    uint32_t ip;
    bool has_ip;
    enum lab_addressing addressing;
    char *hostname; /* defaults to name */
    char *install_disk;
    char *config_file; /* user-supplied Talos config for this machine, or NULL */
    struct lab_strlist patches;
    struct lab_strlist kernel_args;
    struct lab_kvlist labels;
    enum lab_boot_method boot_method; /* when has_boot_method; else boot.method */
    bool has_boot_method;
    enum lab_arch arch; /* the CPU, when has_arch; else what its firmware says */
    bool has_arch;
    struct lab_proxmox_vm proxmox;
    struct lab_where where;
    /* template variables for this machine's *.tftpl patches: a YAML mapping (any
     * values), or NULL; lives as long as the lab */
    const struct bd_node *vars;
    struct lab_at ip_at, mac_at;
};

struct lab_role_cfg {
    struct lab_strlist patches;
    char *config_file; /* user-supplied Talos config for the role, or NULL */
    const struct bd_node *vars; /* template variables for the role, or NULL */
};

struct lab_range {
    uint32_t start, end;
    bool set;
};

/* cluster.etcd_backup: scheduled etcd snapshots into dir (off the cluster) */
struct lab_etcd_backup {
    bool set;
    int64_t interval_s; /* default 1h */
    int keep;           /* the newest this many stay; default 24 */
    char *dir;          /* required */
};

struct lab_cluster {
    char *name;
    char *endpoint;
    uint32_t vip;
    bool has_vip;
    char *talos_version;
    char *kubernetes_version;
    struct lab_at kubernetes_version_at; /* file NULL: the default */
    char *install_disk;
    char *secrets_file;
    char *bootstrap_node;
    enum lab_bootstrap bootstrap;
    enum lab_cni cni;
    bool kube_proxy;      /* false when Cilium replaces it */
    bool discovery;
    bool allow_scheduling_on_control_planes;
    char *pod_subnet, *service_subnet, *dns_domain;
    struct lab_strlist cert_sans;
    struct lab_strlist patches; /* every machine */
    struct lab_role_cfg roles[2]; /* indexed by enum lab_role */
    size_t n_inline_manifests;
    struct lab_manifest *inline_manifests;
    struct lab_strlist extra_manifests;
    struct lab_kvlist template_files; /* ${name} in *.tftpl patches -> file (resolved path) */
    struct lab_etcd_backup etcd_backup;
    struct lab_strlist bootstrap_secrets; /* files of v1 Secrets, 0600, applied before GitOps */
    const struct bd_node *vars; /* template variables for every machine, or NULL */
    enum lab_apply apply;
};

struct lab_lan {
    char *interface;
    enum lab_dhcp_mode dhcp;
    struct lab_cidr subnet;
    struct lab_range range;
    uint32_t gateway;
    bool has_gateway;
    struct lab_ipv4list dns;
    char *domain;
    uint32_t boot_server;
    int http_port;
    int log_port; /* kernel-log sink; 0 = off */
    bool dnsmasq;    /* bootd runs dnsmasq for this lab */
    bool only_known; /* full mode: lease addresses to lab.yaml's machines only */
    bool routed;     /* machines are not on bootd's L2: claims cannot be checked */
    char *ipxe_bios, *ipxe_efi, *ipxe_snp;
    struct lab_at subnet_at, range_at;
};

/* Signs UKIs for Secure Boot (bootctl gen secureboot makes the pair). */
struct lab_secureboot {
    char *cert, *key; /* NULL: unsigned */
};

struct lab_boot {
    enum lab_unknown_policy unknown;
    enum lab_boot_method method;
    char *efi_stub[2]; /* amd64, arm64: systemd EFI stubs for UKIs; NULL = Debian's */
    struct lab_secureboot secureboot;
    int64_t hold_retry_s;
    struct lab_strlist console;
    struct lab_strlist kernel_args;
    int64_t token_grace_s;
    int64_t token_max_age_s;
};

struct lab_images {
    char *factory;
    char *schematic_file; /* NULL = vanilla */
    struct lab_strlist arch;
    char *lock_file;
    int64_t timeout_s; /* a download that sends nothing for this long fails */
};

struct lab_gitops_group {
    char *name;
    struct lab_strlist paths;
};

struct lab_gitops {
    bool set;
    char *repo, *ref;
    char *token_file, *ssh_key_file;
    int64_t interval_s;
    int64_t health_timeout_s;
    bool prune;
    char *kustomize;          /* external kustomize or kubectl; NULL = search PATH */
    int64_t kustomize_timeout_s;
    char *kubeconfig;         /* NULL = <state-dir>/kubeconfig */
    size_t ngroups;
    struct lab_gitops_group *groups;
    char *helm;               /* helm for helmCharts; NULL = search PATH */
    bool argocd;              /* ArgoCD Applications/ApplicationSets become groups */
};

struct lab_service {
    char *name;
    uint32_t ip; /* services.ingress_ip when the record has none */
    bool has_ip;
    struct lab_where where;
};

struct lab_services {
    char *domain;
    bool dns;
    uint32_t ingress_ip;
    bool has_ingress_ip;
    size_t n;
    struct lab_service *v;
};

/* A persistent volume for the Proxmox CSI plugin: vm-9999-<name>, made when missing. */
struct lab_proxmox_volume {
    char *name, *size_text, *storage, *node; /* storage, node: NULL = proxmox.storage, .node */
    int64_t size;                             /* bytes */
};

/* proxmox.csi: bootd makes the Proxmox CSI plugin's credentials and hands its Secret to
 * the cluster as soon as the Kubernetes API answers. */
struct lab_proxmox_csi {
    bool set;
    char *namespace_, *secret; /* default csi-proxmox, proxmox-csi-plugin (the chart's) */
    char *token_file;          /* the token's secret, 0600; default proxmox-csi.token */
};

struct lab_proxmox {
    bool set;
    char *api, *token_file, *node, *storage, *bridge, *ca_file;
    int vlan;
    bool verify_tls;
    char *fingerprint; /* the node certificate's SHA-256, AA:BB:... */
    size_t nprotected;
    int *protected_vmids; /* never created, changed or destroyed (9999 never is either) */
    size_t nvolumes;
    struct lab_proxmox_volume *volumes;
    int64_t poll_s; /* how often bootd reads the VMs' power state; 0 = never */
    char *cluster; /* the Proxmox cluster's name (topology.kubernetes.io/region), or NULL */
    struct lab_proxmox_csi csi;
};

struct lab {
    struct bd_arena arena;
    char *path; /* lab.yaml as given */
    char *dir;  /* its directory; relative paths in lab.yaml resolve here */
    char *machines_dir;
    struct lab_cluster cluster;
    struct lab_lan lan;
    struct lab_boot boot;
    struct lab_images images;
    struct lab_gitops gitops;
    struct lab_services services;
    struct lab_proxmox proxmox;
    size_t nmachines;
    struct lab_machine *machines;  /* in file order */
    struct lab_machine **by_mac;   /* sorted by MAC for lookups */
};

/* Loads lab.yaml plus the *.yaml files in machines.d next to it and validates everything.
 * extra_name/extra_text, when set, are treated as one more machines.d file (used to
 * check an adoption before writing it). On error the message names file:line: field. */
int lab_load(const char *path, const char *extra_name, const char *extra_text, struct lab **out,
             struct bd_err *err) BD_MUST_CHECK;
void lab_free(struct lab *lab);
const struct lab_machine *lab_machine_by_mac(const struct lab *lab, const struct bd_mac *mac);
const struct lab_machine *lab_machine_by_name(const struct lab *lab, const char *name);
const char *lab_role_name(enum lab_role r);
int lab_role_parse(const char *s, enum lab_role *r);

#endif
