/* Private to cluster/: the reconciler's state, shared by its files. */
#ifndef CLUSTER_INTERNAL_H
#define CLUSTER_INTERNAL_H

#include "cluster.h"

/* What the reconciler knows of one machine's Talos API. */
struct machine_watch {
    char name[64];
    int64_t next_ms, backoff_ms; /* env clock; when to ask again */
    bool up;                     /* the last Version call answered */
    char talos[1024];            /* "v1.13.9 (metal)" or why it did not answer */
};

/* One look at Kubernetes (kube_watch.c). */
struct kube_node {
    char name[64], ip[16];
    char kubelet[64];    /* status.nodeInfo.kubeletVersion */
    char ready_why[300]; /* the Ready condition's reason: message */
    bool ready;
};
struct kube_view {
    bool api_ready;
    char api[512]; /* "<server>: ready" or why not */
    bool cilium_found, cilium_ready;
    char cilium[256]; /* "3/3 pods ready", or what is missing */
    size_t nnodes, joined; /* joined: the lab's machines whose Node is Ready */
    struct kube_node *nodes;
};

struct cluster {
    struct cluster_env env;
    struct bd_worker worker; /* mu guards the fields marked "under mu" */
    bool reset;              /* under mu: forget back-offs (a new lab, a request) */
    /* under mu: what the status shows */
    char phase[32];
    char message[1300];
    int64_t phase_since_ms; /* wall clock */
    size_t nwatch;
    struct machine_watch *watch;
    struct kube_view kube;
    /* the reconciling thread's own */
    int64_t boot_next_ms, boot_backoff_ms;
    int64_t kube_next_ms, kube_backoff_ms;
    char boot_event[1200]; /* the last bootstrap event, not repeated while it holds */
    int64_t backup_next_ms, backup_retry_ms;
    struct cluster_backup_status backup; /* under mu */
    bool secrets_pending;   /* the API answers, the bootstrap secrets are not in yet */
    /* day-2 counters for /metrics (since bootd started; read without a lock) */
    _Atomic uint64_t day2_jobs, day2_applied, day2_upgrades, day2_failures, day2_kubelets;
    char secrets_event[1400];
    int64_t vms_next_ms, vms_backoff_ms; /* rebuild_vms.c: Proxmox retried */
    char vms_event[1024];                /* the last Proxmox error, not repeated */
};

/* A machine's Talos API as the reconciler calls it: a short connect timeout, cancelled
 * when bootd stops. */
struct talos_node cluster_node_at(struct cluster *c, const struct cluster_lab *l, const char *ip);
/* rebuild.c: is a rebuild under way (r filled)? And its EtcdRecover + Bootstrap{recover}. */
bool cluster_rebuild_active(struct cluster *c, const char *cluster_id, struct state_rebuild *r);
int cluster_recover_call(struct cluster *c, const struct talos_node *n,
                         const struct state_rebuild *r, int *code, struct bd_err *err);
/* secrets.c: cluster.bootstrap_secrets applied; -1 (an event says why) to try again. */
int cluster_bootstrap_secrets_apply(struct cluster *c, const struct cluster_lab *l,
                                    const struct kube_target *t);
/* A cluster with no bootstrap record but snapshots of it in the backup dir was lost (or
 * bootd's state was): bootstrapping it empty would bury them, so bootd waits for
 * bootctl rebuild (or bootctl bootstrap). true with why filled. */
bool cluster_backups_block_bootstrap(struct cluster *c, const struct cluster_lab *l, char *why,
                                     size_t n);
/* day2.c: advances the day-2 job under way, if any, by a step. */
void cluster_day2_step(struct cluster *c, int64_t *next);
/* rebuild_vms.c: a rebuild's Proxmox VMs in the plan ("vms": [{machine, vmid, action}];
 * nothing without a proxmox: section) and, while the rebuild's phase is "vms", created,
 * started or reset (then phase "reinstall"). */
int cluster_rebuild_vms_plan(const struct lab *lab, const atomic_bool *cancel,
                             struct cJSON *plan, struct bd_err *err);
void cluster_rebuild_vms_step(struct cluster *c, const struct cluster_lab *l, int64_t *next);
/* machine replace: the machine's Proxmox VM destroyed (its own disks only) and created and
 * started again; done says what was done ("" without a proxmox: section for it). */
int cluster_replace_vm(struct cluster *c, const struct lab *lab, const char *machine, char *done,
                       size_t dn, struct bd_err *err);
/* Takes a snapshot into cluster.etcd_backup.dir when one is due. */
void cluster_backup_step(struct cluster *c, const struct cluster_lab *l, int64_t *next);

/* Asks the API server for /readyz, the Nodes and Cilium's DaemonSet; machines whose
 * Node is Ready become joined. Compared with prev it records the steps as events and,
 * when the API first answers, writes the admin kubeconfig and calls env.kube_ready. */
void cluster_kube_look(struct cluster *c, const struct cluster_lab *l,
                       const struct kube_view *prev, struct kube_view *v);
void cluster_kube_view_clear(struct kube_view *v);
/* A fresh look at a machine's Node: 1 Ready (and, kubelet given, its kubelet reports
 * that version), 0 not (why says), -1 bootd has not seen the Kubernetes API answer yet
 * (nothing to wait for). */
int cluster_kube_node_ready(struct cluster *c, const struct cluster_lab *l,
                            const struct lab_machine *m, const char *kubelet, char *why,
                            size_t n);
/* The Node of a lab machine (by hostname, else by address), or NULL. */
const struct kube_node *cluster_kube_node_of(const struct kube_view *v,
                                             const struct lab_machine *m);
/* A machine's state in the store (assigned when it has no row yet). */
enum state_lifecycle cluster_stored_state(struct cluster *c, const struct lab_machine *m);
/* An event on a machine's timeline (m NULL: the cluster's) and the log. */
void cluster_event(struct cluster *c, const char *source, const struct lab_machine *m,
                   const char *kind, const char *msg);

#endif
