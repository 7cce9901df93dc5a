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

/* Where a machine's Talos API is: its ip in lab.yaml, else where bootd last saw it.
 * false when neither is known. */
bool cluster_machine_addr(struct state_db *st, const struct lab_machine *m, char ip[16]);

#endif
