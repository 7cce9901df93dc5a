/* gitops/ — keeps a Kubernetes cluster in line with a Git repository: fetch and check
 * out a ref (libgit2), render the lab's path groups (plain YAML, kustomize), apply them
 * with server-side apply through libcurl (staged: CRDs, Namespaces and ClusterRoles,
 * then *Class kinds, then the rest), prune what left the inventory, and wait for
 * health with kstatus-style rules. A loop thread runs syncs on an interval or when
 * asked. Its only input about the cluster is a kube_target: the API server URL, its
 * CA bundle and a client certificate and key (or a bearer token). */
#ifndef GITOPS_H
#define GITOPS_H

#include "../lab/lab.h"
#include "../lib/bd.h"
#include "../kube/kube.h"
#include "../state/state.h"

#include <stdatomic.h>

struct cJSON;

/* ---------- git ---------- */

struct gitops_git_opts {
    const char *url, *ref;
    const char *token_file;   /* https: password for the URL's user (default "git") */
    const char *ssh_key_file; /* ssh: private key */
    const char *dir;          /* checkout directory, created on first use */
    const atomic_bool *cancel;
};
/* Clones or fetches, then checks out ref (a branch, tag or commit) into dir and puts its
 * commit id in commit. When the fetch fails but an earlier checkout exists, commit holds
 * that revision, *kept is true and -1 is returned with the fetch error. */
int gitops_git_sync(const struct gitops_git_opts *o, char commit[41], bool *kept,
                    struct bd_err *err) BD_MUST_CHECK;

/* ---------- objects and rendering ---------- */

enum gitops_health { GITOPS_CURRENT, GITOPS_IN_PROGRESS, GITOPS_FAILED };
enum gitops_outcome { GITOPS_PENDING, GITOPS_APPLIED, GITOPS_UNCHANGED, GITOPS_ERROR };

/* One object to apply. The string fields point into json. */
struct gitops_obj {
    struct cJSON *json;
    char *src;        /* where it came from: "file:line" */
    size_t group;     /* index of the lab group */
    const char *api_version, *kind, *name, *ns; /* ns NULL when the manifest sets none */
    /* filled while applying */
    const struct kube_resource *res;
    char *id;         /* group/kind/namespace/name, the inventory key */
    char *path;       /* API path of the object */
    char hash[65];    /* SHA-256 of the body sent */
    enum gitops_outcome outcome;
    enum gitops_health health;
    char *message;    /* why it failed or is not healthy yet */
};

struct gitops_objs {
    size_t n, cap;
    struct gitops_obj *v;
};
void gitops_objs_free(struct gitops_objs *o);

struct gitops_render_opts {
    /* kustomize or kubectl to run for kustomization directories; NULL searches PATH
     * for kustomize, then kubectl; "builtin" never runs one. */
    const char *kustomize;
    int64_t timeout_s; /* for one run of the tool; 0 = 120 */
};

/* Renders root/rel (a YAML file, a directory of YAML files, or a kustomization
 * directory) and appends its objects, tagged with group, to out. Every object must have
 * apiVersion, kind and metadata.name. Errors name the file and line. */
int gitops_render_path(const char *root, const char *rel, size_t group,
                       const struct gitops_render_opts *o, struct gitops_objs *out,
                       struct bd_err *err) BD_MUST_CHECK;
/* Turns YAML documents into objects (doc->file names them in errors). */
int gitops_objs_from_yaml(struct bd_yaml_doc *doc, size_t group, struct gitops_objs *out,
                          struct bd_err *err) BD_MUST_CHECK;

/* ---------- health (kstatus rules) ---------- */

/* Deployment, StatefulSet, DaemonSet, Job, CustomResourceDefinition, and for any other
 * kind observedGeneration plus the Ready/Reconciling/Stalled conditions. msg says what
 * is missing when not current. */
enum gitops_health gitops_health_of(const struct cJSON *obj, char *msg, size_t n);
const char *gitops_health_name(enum gitops_health h);

/* ---------- one sync ---------- */

struct gitops_group_cfg {
    char *name;
    size_t npaths;
    char **paths;
};

/* Everything a sync needs from lab.yaml, copied so a reload cannot change it midway. */
struct gitops_cfg {
    char *repo, *ref, *token_file, *ssh_key_file;
    char *checkout_dir; /* <state-dir>/gitops */
    char *kustomize;
    int64_t kustomize_timeout_s;
    int64_t interval_s, health_timeout_s;
    bool prune;
    size_t ngroups;
    struct gitops_group_cfg *groups;
};
/* Copies lab's gitops section (paths resolved against the lab's directory). */
struct gitops_cfg *gitops_cfg_from_lab(const struct lab *lab, const char *state_dir);
void gitops_cfg_free(struct gitops_cfg *c);

struct gitops_result {
    int64_t started_ms, finished_ms;
    char revision[41]; /* "" when no revision was reached */
    bool ok;
    int64_t objects, applied, unchanged, pruned, failed, unhealthy;
    char *error;
    struct cJSON *detail; /* {"failed": [...], "unhealthy": [...], "pruned": [...]} */
};
void gitops_result_free(struct gitops_result *r);

/* The in-cluster copy of the inventory: a ConfigMap in kube-system. */
#define GITOPS_INVENTORY_NS "kube-system"
#define GITOPS_INVENTORY_NAME "bootd-gitops-inventory"
/* Labels bootd puts on what it applies; prune deletes only objects that carry it. */
#define GITOPS_MANAGED_LABEL "bootd/managed"
#define GITOPS_GROUP_LABEL "bootd/group"
#define GITOPS_PRUNE_ANNOTATION "bootd/prune" /* "disabled" keeps an object */

/* git -> render -> apply (group by group, each healthy before the next) -> prune.
 * Records the outcome and the new inventory in st. Fills res; returns 0 when ok. */
int gitops_sync(const struct gitops_cfg *cfg, const struct kube_target *t, struct state_db *st,
                const atomic_bool *cancel, struct gitops_result *res);

/* ---------- the loop ---------- */

struct gitops_loop;
struct gitops_loop *gitops_loop_new(struct state_db *st);
/* Starts the thread; it syncs only once it has both a configuration and a target. */
int gitops_loop_start(struct gitops_loop *l, struct bd_err *err) BD_MUST_CHECK;
/* Takes cfg (NULL turns syncing off). */
void gitops_loop_configure(struct gitops_loop *l, struct gitops_cfg *cfg);
/* Copies t: where the Kubernetes API is. A bootstrap calls this once the API is ready. */
void gitops_loop_set_target(struct gitops_loop *l, const struct kube_target *t);
bool gitops_loop_has_target(struct gitops_loop *l);
/* What the loop waits for while it has no target (shown in status); NULL clears. */
void gitops_loop_waiting_for(struct gitops_loop *l, const char *what);
/* Asks for a sync now (webhooks, bootctl gitops sync). */
void gitops_loop_trigger(struct gitops_loop *l);
/* Status for the admin API (caller frees). */
struct cJSON *gitops_loop_status(struct gitops_loop *l);
/* Prometheus text lines. */
void gitops_loop_metrics(struct gitops_loop *l, struct bd_buf *out);
/* Stops the thread (cancelling a sync in flight) and frees l. */
void gitops_loop_free(struct gitops_loop *l);

#endif
