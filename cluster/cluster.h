/* cluster/ — the reconciler: takes a lab from "machines have their configs" to a
 * bootstrapped, joined cluster. It asks every machine's Talos API for its version (an
 * answer through mutual TLS means the machine is ready), bootstraps etcd once per
 * cluster on the bootstrap node, then watches Kubernetes until every machine's Node is
 * Ready and hands the API to whoever waits for it (the GitOps loop).
 *
 * Everything it reads or calls goes through a struct cluster_env: the store, the
 * current lab, a monotonic clock, the Talos API and the Kubernetes API. bootd passes
 * the real ones; unit tests pass fakes and drive cluster_round() by hand. */
#ifndef CLUSTER_H
#define CLUSTER_H

#include "../kube/kube.h"
#include "../lab/lab.h"
#include "../lib/bd.h"
#include "../state/state.h"
#include "../talos/talos.h"

#include <stdatomic.h>

struct cJSON;

/* What the reconciler needs of the lab being served, held between lab_get and lab_put
 * (bootd hands out a reference to its current snapshot). */
struct cluster_lab {
    const struct lab *lab;
    const struct talos_cluster *talos;
    /* bootd's Talos API credentials; NULL with creds_error saying why */
    const struct talos_creds *creds;
    const char *creds_error;
    const char *cluster_id; /* the secrets bundle's cluster.id: keys the bootstrap record */
    /* bootd's way into the Kubernetes API; NULL with kube_error saying why */
    const struct talos_kube_admin *kube;
    const char *kube_error;
    void *handle; /* the provider's, for lab_put */
};

struct cluster_env {
    struct state_db *store;
    const char *state_dir; /* where the admin kubeconfig is written once the API answers */
    int talos_port;        /* apid's port on every machine; 0 = 50000 */
    void *ud;              /* passed to every hook */
    void (*lab_get)(void *ud, struct cluster_lab *out);
    void (*lab_put)(void *ud, struct cluster_lab *l);
    /* The Kubernetes API answered for the first time (or again after a new lab). */
    void (*kube_ready)(void *ud, const struct kube_target *t);
    /* Replaceable for tests; cluster_new fills the real ones where NULL. */
    int64_t (*now_ms)(void *ud); /* monotonic */
    int (*talos_version)(void *ud, const struct talos_node *n, struct talos_version *out,
                         int *code, struct bd_err *err);
    int (*talos_bootstrap)(void *ud, const struct talos_node *n, int *code, struct bd_err *err);
    void (*kube_run)(void *ud, const struct kube_target *t, const atomic_bool *cancel,
                     struct kube_call *calls, size_t n);
    int (*talos_etcd_snapshot)(void *ud, const struct talos_node *n, int fd,
                               struct talos_snapshot_info *info, int *code, struct bd_err *err);
    int (*talos_etcd_recover)(void *ud, const struct talos_node *n, int fd, int *code,
                              struct bd_err *err);
    int (*talos_bootstrap_recover)(void *ud, const struct talos_node *n, bool skip_hash,
                                   int *code, struct bd_err *err);
    int (*talos_etcd_members)(void *ud, const struct talos_node *n, bool local,
                              struct talos_etcd_member **out, size_t *count, int *code,
                              struct bd_err *err);
    int (*talos_etcd_remove_member)(void *ud, const struct talos_node *n, uint64_t id,
                                    int *code, struct bd_err *err);
    int (*talos_apply_config)(void *ud, const struct talos_node *n, const char *data, size_t len,
                              enum talos_apply_mode mode, bool dry_run, int64_t try_timeout_s,
                              struct talos_apply_result *out, int *code, struct bd_err *err);
    int (*talos_upgrade)(void *ud, const struct talos_node *n, const char *image, int *code,
                         struct bd_err *err);
    /* The lab's PXE images at a Talos version in bootd's cache: 1 yes, 0 being pulled,
     * -1 the pull failed (why says). NULL: nothing to fill (tests). */
    int (*images_ensure)(void *ud, const char *version, char *why, size_t n);
};

struct cluster;
/* Copies env; no thread runs until cluster_start. */
struct cluster *cluster_new(const struct cluster_env *env);
int cluster_start(struct cluster *c, struct bd_err *err) __attribute__((warn_unused_result));
/* Stops the thread (cancelling calls in flight) and frees c. NULL-safe. */
void cluster_free(struct cluster *c);
/* One pass over the lab; returns when the next one is due (env clock, ms). The thread
 * calls it in a loop; tests call it directly. */
int64_t cluster_round(struct cluster *c);
/* Look again now, with every back-off forgotten: the lab changed, or bootstrap was
 * asked for. */
void cluster_kick(struct cluster *c);
/* bootctl bootstrap: 0 asked for, 1 already done, -1 error. */
int cluster_request_bootstrap(struct cluster *c, struct bd_err *err)
    __attribute__((warn_unused_result));
/* The cluster's phase, its bootstrap record and each machine's Talos API and Node
 * (caller frees). */
struct cJSON *cluster_status(struct cluster *c);

/* ---- etcd backups (backup.c) ---- */

/* What the scheduled snapshots did, for /metrics and the admin API. */
struct cluster_backup_status {
    int64_t last_success_s; /* wall clock; 0 = never (the newest file in the dir counts) */
    uint64_t failures;      /* since bootd started */
    char last_error[1024];
    char last_file[300];
};
void cluster_backup_status(struct cluster *c, struct cluster_backup_status *out);

/* A snapshot in a backup dir, known by its name:
 * etcd-<cluster id>-<YYYYMMDDTHHMMSSZ>-r<revision>.snapshot */
struct cluster_snapshot {
    char name[256];
    char cluster_id[128]; /* as in the name: '/' and '+' of std base64 read '_' and '-' */
    uint64_t revision;
    int64_t taken_s;
    uint64_t size;
};
int cluster_snapshot_name_parse(const char *name, struct cluster_snapshot *out);
/* The snapshots in dir (of cluster_id only, unless NULL), newest first; a missing dir
 * has none. Caller frees *out. */
int cluster_snapshots_list(const char *dir, const char *cluster_id, struct cluster_snapshot **out,
                           size_t *count, struct bd_err *err);

/* ---- rebuild (rebuild.c) ---- */

/* Checks a snapshot before a restore: this cluster's (by its name, when bootd named
 * it), etcd's SHA-256 trailer (or, with skip_hash, a raw db copy without one), a
 * readable revision. */
int cluster_snapshot_check(const char *path, const char *cluster_id, bool skip_hash,
                           struct cluster_snapshot *out, struct bd_err *err);
/* The rebuild plan (snapshot: "latest", an absolute path, or NULL for a fresh
 * bootstrap); unless dry_run, and unless etcd is healthy and not force, starts it.
 * NULL with err when it cannot be done (a foreign or damaged snapshot, none). */
struct cJSON *cluster_rebuild(struct cluster *c, const char *snapshot, bool skip_hash,
                              bool dry_run, bool force, struct bd_err *err);
/* The rebuild record for the status (JSON null when there is none). */
struct cJSON *cluster_rebuild_json(struct cluster *c, const char *cluster_id);

/* ---- members and replacing a machine (replace.c) ---- */

/* etcd's members, through the first control plane that answers (caller frees). */
struct cJSON *cluster_etcd_members(struct cluster *c, struct bd_err *err);
/* bootctl machine replace: a control plane's etcd member removed through another one,
 * then the machine told to install again. NULL with err when it cannot be done. */
struct cJSON *cluster_machine_replace(struct cluster *c, const char *name, struct bd_err *err);

/* A document of a bootstrap secrets file: a v1 Secret with name and namespace;
 * messages name file:line:col. */
int cluster_secret_doc_check(const struct bd_node *doc, const char *file, struct bd_err *err);

/* A live Secret (from the API) reduced to what applies again elsewhere (caller frees). */
struct cJSON *cluster_secret_clean(const struct cJSON *live);

/* Where a machine's Talos API is: its ip in lab.yaml, else where bootd last saw it.
 * false when neither is known. */
bool cluster_machine_addr(struct state_db *st, const struct lab_machine *m, char ip[16]);

/* ---- day 2: configs reaching running machines (plan.c) ---- */

/* What state.db keeps of a config: its SHA-256 and its redacted text (caller frees). */
int cluster_applied_prepare(const struct talos_cluster *tc, const struct lab *lab,
                            const char *text, size_t len, char sha[65], char **redacted,
                            struct bd_err *err) BD_MUST_CHECK;
/* Records the config a machine got (how: "pxe", or the apply mode): its SHA-256 and a
 * redacted copy (talos_config_redact), never the secrets. */
int cluster_applied_record(struct state_db *st, const struct talos_cluster *tc,
                           const struct lab *lab, const struct lab_machine *m, const char *text,
                           size_t len, const char *how, struct bd_err *err) BD_MUST_CHECK;
/* bootctl plan: per installed machine (of names, or all when nnames is 0) the redacted
 * diff between the config bootd would serve now and the one it last got, and Talos's
 * verdict on it (ApplyConfiguration AUTO with dry_run). NULL with err for an unknown
 * name. Caller frees. */
struct cJSON *cluster_plan(struct cluster *c, const char *const *names, size_t nnames,
                           struct bd_err *err);
/* Talos's answer to an ApplyConfiguration (dry run or not) as bootctl shows it: "live"
 * (applied without a reboot), "reboot", "refused" (InvalidArgument: the config or the
 * mode), "unknown" (no answer). */
const char *cluster_verdict(int rc, int code, enum talos_apply_mode mode);

/* ---- day-2 jobs (day2.c): bootctl apply, bootctl upgrade talos|kubernetes ---- */

/* Starts a job: kind "apply" (arg: the apply mode name), "upgrade-talos" or
 * "upgrade-kubernetes" (arg: the version) over the machines named (none: all), control
 * planes first, one at a time; each step may take timeout_s (0: 600). NULL with err when
 * one is under way, a name is unknown, or (upgrade-kubernetes) lab.yaml's
 * cluster.kubernetes_version is not arg. Returns the job's status (caller frees). */
struct cJSON *cluster_day2_start(struct cluster *c, const char *kind, const char *arg,
                                 const char *const *names, size_t n, int64_t timeout_s,
                                 struct bd_err *err);
/* cluster.apply: auto: after a reload, an apply job (mode auto, every machine) when an
 * installed machine's config changed and none is under way (an event says why not). */
void cluster_day2_auto(struct cluster *c);
/* The day-2 job (the last one when none is under way), or JSON null. */
struct cJSON *cluster_day2_status(struct cluster *c);
struct cluster_day2_counters {
    uint64_t jobs, applied, upgrades, failures;
    uint64_t kubelets; /* machines whose Node reached a Kubernetes upgrade's kubelet */
};
void cluster_day2_counters(struct cluster *c, struct cluster_day2_counters *out);

#endif
