/* proxmox/ — the Proxmox VE API client: bootd creates, powers and retires the lab's VMs.
 * API tokens, TLS verified against a CA file or pinned by the leaf's SHA-256 fingerprint,
 * UPID tasks polled to completion, and a plan (create / change / ok / not-in-lab) that
 * apply carries out. It never creates a protected VM id (9999, the Proxmox CSI plugin's
 * volume owner) and never frees a volume it did not create. */
#ifndef PROXMOX_H
#define PROXMOX_H

#include "../lab/lab.h"

struct cJSON;

/* The volume owner the Proxmox CSI plugin names its disks after (vm-9999-*): a VM with
 * this id must never exist, since destroying it would free every persistent volume. */
#define PROXMOX_CSI_VMID 9999

struct proxmox_cfg {
    const char *api;         /* https://host:8006 (no /api2/json) */
    const char *token_file;  /* USER@REALM!TOKENID=SECRET, mode 0600 */
    const char *ca_file;     /* verify the chain and host name against this CA */
    const char *fingerprint; /* or: pin the leaf certificate's SHA-256 (AA:BB:...) */
    bool verify_tls;         /* false and neither above: no verification at all */
    int64_t task_timeout_s;  /* a task (create, start, ...) may run this long; 0 = 600 */
    int64_t lock_timeout_s;  /* wait this long for a VM lock to clear; 0 = 120 */
    const atomic_bool *cancel; /* when it turns true, requests in flight give up */
};

struct proxmox;

/* Reads the token (refused unless 0600) and prepares the connection; nothing is sent
 * yet. Errors name the lab.yaml field (proxmox.token_file, ...). */
int proxmox_open(const struct proxmox_cfg *cfg, struct proxmox **out, struct bd_err *err) BD_MUST_CHECK;
void proxmox_close(struct proxmox *px);

/* GET /nodes: fails unless node is one of them, naming the field and the nodes there
 * are. The first call also proves the token and the TLS settings. */
int proxmox_check_node(struct proxmox *px, const char *field, const char *node,
                       struct bd_err *err) BD_MUST_CHECK;

/* ---------- the VM a lab machine should be ---------- */

#define PROXMOX_MAX_TAGS 16

struct proxmox_vm_spec {
    const char *machine;  /* the lab machine's name, for messages */
    const char *name;     /* the VM's name: the machine's hostname */
    int vmid;
    const char *node, *storage, *bridge;
    int vlan;             /* 0 = untagged */
    int cores, memory_mib, disk_gib;
    bool ovmf;            /* bios: ovmf (with an efidisk) instead of seabios */
    const char *machine_type; /* q35 */
    char mac[18];         /* upper-case, as PVE writes it */
    char uuid[37];        /* smbios1 uuid, lower-case */
    /* true: the uuid is only a proposal (neither lab.yaml nor state.db fixed it), and an
     * existing VM's smbios1 uuid is adopted rather than overwritten */
    bool uuid_adopt;
    size_t ntags;
    const char *tags[PROXMOX_MAX_TAGS]; /* besides "bootd" */
    const char *description;
};

/* Fills the defaults (cores 2, memory 4096, disk 32, storage local-lvm, bridge vmbr0,
 * q35) and, without a uuid, one derived from the cluster name and the MAC, so that
 * the same machine gets the same smbios1 uuid on every rebuild. */
void proxmox_spec_defaults(struct proxmox_vm_spec *s, const char *cluster);

/* One API parameter (key=value) of a create or config call. */
struct proxmox_param {
    const char *key;
    char *value;
};
struct proxmox_params {
    size_t n;
    struct proxmox_param v[24];
};
/* The parameters a VM is created with (create) or compared against (!create: no vmid,
 * no disk allocation). Caller frees with proxmox_params_free. */
void proxmox_spec_params(const struct proxmox_vm_spec *s, bool create, struct proxmox_params *out);
void proxmox_params_free(struct proxmox_params *p);

/* ---------- plan ---------- */

enum proxmox_action {
    PROXMOX_OK,         /* exists and matches */
    PROXMOX_CREATE,     /* missing */
    PROXMOX_CHANGE,     /* exists, settings differ */
    PROXMOX_NOT_IN_LAB, /* tagged bootd, no lab machine has its vmid */
    PROXMOX_CONFLICT,   /* the vmid is held by a VM bootd did not make, or elsewhere */
};
const char *proxmox_action_name(enum proxmox_action a);

struct proxmox_change {
    char *key, *from, *to; /* from NULL: added */
};
/* The change key for a larger disk (lab.yaml's disk grew): apply resizes scsi0 to "to"
 * (PUT .../resize) instead of writing the config. A smaller disk is a conflict. */
#define PROXMOX_DISK_SIZE_KEY "scsi0.size"
/* A PVE disk size ("32G", "528K", "34359738368") in bytes; -1 when it is not one. */
int64_t proxmox_size_bytes(const char *text);

struct proxmox_plan_item {
    enum proxmox_action action;
    int vmid;
    char *machine; /* NULL for not-in-lab */
    char *name, *node;
    char *status;  /* running, stopped, or NULL when missing */
    char *reason;  /* for conflicts */
    char *digest;  /* of the config the plan read: a change is refused if it moved since */
    size_t nchanges;
    struct proxmox_change *changes;
    const struct proxmox_vm_spec *spec; /* NULL for not-in-lab */
    char uuid[37];      /* the smbios1 uuid the VM has (or gets) once applied */
    bool uuid_adopted;  /* taken from the existing VM (spec->uuid_adopt) */
};

struct proxmox_plan {
    size_t n;
    struct proxmox_plan_item *v;
};

/* Compares one spec with a VM's current config (a GET .../config answer, or NULL when
 * the VM does not exist). Pure: no I/O. */
void proxmox_plan_vm(const struct proxmox_vm_spec *s, const struct cJSON *config,
                     const char *node, const char *status, struct proxmox_plan_item *out);
/* The plan for the lab: one item per spec, then the bootd-tagged VMs no spec names. */
int proxmox_plan(struct proxmox *px, const struct proxmox_vm_spec *specs, size_t n,
                 struct proxmox_plan *out, struct bd_err *err) BD_MUST_CHECK;
void proxmox_plan_free(struct proxmox_plan *p);
struct cJSON *proxmox_plan_json(const struct proxmox_plan *p);

/* Refuses vmid 9999 and the ids in protected_ids (proxmox.protected_vmids). */
int proxmox_check_vmid(int vmid, const int *protected_ids, size_t nprotected, const char *what,
                       struct bd_err *err) BD_MUST_CHECK;

/* ---------- apply and power ---------- */

/* Carries out plan items: creates what is missing, applies changes, starts what is
 * stopped. A callback hears of each step ("created", "changed memory", ...). */
typedef void (*proxmox_report_fn)(const struct proxmox_plan_item *it, const char *what,
                                  void *ud);
int proxmox_apply(struct proxmox *px, const struct proxmox_plan *plan, const int *protected_ids,
                  size_t nprotected, proxmox_report_fn report, void *ud, struct bd_err *err) BD_MUST_CHECK;

/* start, stop, shutdown, reset: waits for the task. Starting a running VM is no error. */
int proxmox_power(struct proxmox *px, const char *node, int vmid, const char *what,
                  const char *action, struct bd_err *err) BD_MUST_CHECK;
/* The VM's status/current: "running" or "stopped" (caller frees). */
int proxmox_status(struct proxmox *px, const char *node, int vmid, char **status,
                   struct bd_err *err) BD_MUST_CHECK;

/* Sees the volumes a destroy would free (volids, e.g. "local-lvm:vm-8101-disk-0") before
 * anything is stopped; returning -1 (err filled) refuses the destroy. */
typedef int (*proxmox_frees_fn)(const char *what, const char *node, const char *const *volids,
                                size_t n, void *ud, struct bd_err *err);
struct proxmox_destroy_opts {
    const int *protected_ids; /* proxmox.protected_vmids */
    size_t nprotected;
    proxmox_frees_fn check;   /* NULL: none besides the Proxmox-side rules */
    void *ud;
};
/* Stops the VM, then deletes it with its own disks. Refused for protected ids, for a VM
 * without the bootd tag, when the delete would free a volume bootd did not create
 * (anything but scsi0/efidisk0 owned by this vmid) or one another VM still uses, and
 * when o->check refuses. */
int proxmox_destroy(struct proxmox *px, const char *node, int vmid, const char *what,
                    const struct proxmox_destroy_opts *o, struct bd_err *err) BD_MUST_CHECK;

/* ---------- inventory: every VM, its power state and MACs ---------- */

#define PROXMOX_MAX_NICS 8

struct proxmox_vm_info {
    int vmid;
    char *node, *name, *status; /* status: running, stopped, ... */
    bool bootd;                 /* tagged bootd */
    size_t nmacs;
    struct bd_mac macs[PROXMOX_MAX_NICS]; /* from net0..netN */
};
int proxmox_inventory(struct proxmox *px, struct proxmox_vm_info **out, size_t *n,
                      struct bd_err *err) BD_MUST_CHECK;
/* The VM with a NIC of that MAC, or NULL. */
const struct proxmox_vm_info *proxmox_inventory_by_mac(const struct proxmox_vm_info *v, size_t n,
                                                       const struct bd_mac *mac);
void proxmox_inventory_free(struct proxmox_vm_info *v, size_t n);

/* ---------- volumes ---------- */

struct proxmox_volume {
    char *volid;  /* storage:name */
    int64_t size; /* bytes */
    int owner;    /* vmid parsed from the name, 0 if none */
};
/* The image volumes on node/storage owned by owner (0 = all). */
int proxmox_volumes(struct proxmox *px, const char *node, const char *storage, int owner,
                    struct proxmox_volume **out, size_t *n, struct bd_err *err) BD_MUST_CHECK;
void proxmox_volumes_free(struct proxmox_volume *v, size_t n);
/* A persistent volume of the lab: vm-9999-<name> on node/storage. */
struct proxmox_volume_spec {
    const char *node, *storage, *name;
    int64_t size; /* bytes */
};
enum proxmox_volume_state {
    PROXMOX_VOLUME_OK,         /* there, of that size */
    PROXMOX_VOLUME_OTHER_SIZE, /* there, another size: left as it is */
    PROXMOX_VOLUME_CREATED,
};
/* Creates the volume unless it exists (an "already exists" race counts as there). Never
 * deletes or resizes. */
int proxmox_volume_ensure(struct proxmox *px, const struct proxmox_volume_spec *v,
                          enum proxmox_volume_state *state, struct bd_err *err) BD_MUST_CHECK;
/* The vmid that owns a volume name (PVE's vm-<vmid>-... rule), or 0. */
int proxmox_volume_owner(const char *volname);

/* ---------- credentials for the Proxmox CSI plugin ---------- */

struct proxmox_csi_cfg {
    const char *role;        /* CSI */
    const char *user;        /* kubernetes-csi@pve */
    const char *token;       /* csi */
    const char *secret_file; /* where the token's secret is kept (0600) */
};
/* Makes the role (with the plugin's privileges), the user with the role on /, and the
 * token (no privilege separation), each only when missing. *token_id and *secret (caller
 * frees) are what the plugin authenticates with. */
int proxmox_csi_ensure(struct proxmox *px, const struct proxmox_csi_cfg *cfg, char **token_id,
                       char **secret, struct bd_err *err) BD_MUST_CHECK;
/* The driver name of the Proxmox CSI plugin, in a PersistentVolume's spec.csi.driver. */
#define PROXMOX_CSI_DRIVER "csi.proxmox.sinextra.dev"
/* The Proxmox volume a CSI volumeHandle names: "region/zone/storage/disk" (zone = the
 * Proxmox node, empty for shared storage) as *volid "storage:disk" and *zone ("" when
 * shared); caller frees both. -1 when handle is not of that form. */
int proxmox_csi_volume(const char *handle, char **zone, char **volid);
/* The Kubernetes Secret the plugin reads (its chart's: csi-proxmox/proxmox-csi-plugin,
 * key config.yaml): YAML with stringData for people, JSON with data for server-side
 * apply. Both hold the secret: never log them. */
char *proxmox_csi_secret_yaml(const char *ns, const char *name, const char *api,
                              const char *region, const char *token_id, const char *secret,
                              bool insecure);
struct cJSON *proxmox_csi_secret_json(const char *ns, const char *name, const char *api,
                                      const char *region, const char *token_id,
                                      const char *secret, bool insecure);
/* The credentials and where their Secret goes, as lab.yaml's proxmox: section says
 * (proxmox.csi or its defaults): made on Proxmox when missing (proxmox_csi_ensure). */
struct proxmox_csi_creds {
    char *token_id, *secret;          /* owned */
    const char *ns, *name, *api, *region; /* borrowed from the lab */
    bool insecure;
};
int proxmox_csi_from_lab(struct proxmox *px, const struct lab *lab, struct proxmox_csi_creds *out,
                         struct bd_err *err) BD_MUST_CHECK;
void proxmox_csi_creds_free(struct proxmox_csi_creds *c);

/* ---------- from lab.yaml ---------- */

struct proxmox_lab {
    struct proxmox_cfg cfg;
    size_t n;
    struct proxmox_vm_spec *specs; /* the machines with a proxmox: section, in file order */
    char **descriptions;
    size_t nprotected;
    const int *protected_ids;      /* proxmox.protected_vmids */
};
/* Borrows strings from lab, which must outlive the result. */
int proxmox_lab_load(const struct lab *lab, struct proxmox_lab *out, struct bd_err *err) BD_MUST_CHECK;
void proxmox_lab_free(struct proxmox_lab *pl);
/* By machine name or hostname; NULL if no machine with a proxmox: section has it. */
const struct proxmox_vm_spec *proxmox_lab_find(const struct proxmox_lab *pl, const char *name);

/* ---------- wire pieces (exposed for tests) ---------- */

struct proxmox_upid {
    char node[64], type[32], id[32], user[128];
};
int proxmox_upid_parse(const char *s, struct proxmox_upid *out) BD_MUST_CHECK;
/* The sentence for an error answer: status, message, and each parameter error with the
 * value that was sent for it (params may be NULL). what: "VM 8101 (ctrl-00)". */
char *proxmox_error_sentence(const char *what, const char *action, long status,
                             const char *body, const struct proxmox_params *params);
/* Value of key in a PVE property string ("virtio=BC:..,bridge=vmbr0"): the first
 * element's alias (model/macaddr) is reported under "model" and "macaddr" for net[n],
 * and under "file" for disks. Caller frees; NULL when absent. */
char *proxmox_prop_get(const char *prop, const char *key);

#endif
