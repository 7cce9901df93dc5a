/* Private to gitops/: rendering helpers shared with the built-in kustomize, and the
 * steps of one sync. */
#ifndef GITOPS_INTERNAL_H
#define GITOPS_INTERNAL_H

#include "gitops.h"

/* Kustomization directories (kustomize.c). */
bool gitops_kustomize_dir_has_file(const char *dir);
/* dir's kustomization.yaml (or .yml, or Kustomization); NULL when none (caller frees). */
char *gitops_kustomize_file(const char *dir);
int gitops_kustomize_build(const char *root, const char *dir, size_t group,
                    const struct gitops_render_opts *o, struct gitops_objs *out,
                    struct bd_err *err) BD_MUST_CHECK;
/* Plain files under root (render.c), shared with the built-in kustomize. */
int gitops_render_file(const char *root, const char *path, size_t group, struct gitops_objs *out,
                struct bd_err *err) BD_MUST_CHECK;
/* The real path of path if it lies inside root (caller frees); NULL with err if not. */
char *gitops_render_inside(const char *root, const char *path, struct bd_err *err);

/* External tools (exec.c): argv[0] from PATH; extra_env ("NAME=value", NULL-ended, may
 * be NULL) added to bootd's environment; stdout into out; an error with the start of
 * stderr when the tool fails or outlives timeout_s (its process group is killed). */
int gitops_exec(char *const argv[], char *const extra_env[], int64_t timeout_s,
                struct bd_buf *out, struct bd_err *err) BD_MUST_CHECK;
/* The path of an executable name found in PATH, or NULL (caller frees). */
char *gitops_find_program(const char *name);

/* Two resource.Quantity texts with the same value ("1000m" and "1"); false if either is
 * not a quantity (quantity.c). */
bool gitops_quantity_equal(const char *a, const char *b);
/* Drift (drift.c): true, with why, when live no longer holds every field of want (the
 * body bootd applied) or a field of it is no longer manager's in managedFields. */
bool gitops_drifted(const struct cJSON *want, const struct cJSON *live, const char *manager,
                    char *why, size_t n);
/* true when obj carries GITOPS_SELF_HEAL_ANNOTATION: disabled. */
bool gitops_self_heal_disabled(const struct cJSON *obj);

/* The steps of a sync (sync.c, apply.c, prune.c, inventory.c). */
struct gitops_run {
    const struct gitops_cfg *cfg;
    struct kube *kube;
    struct kube_discovery *disc;
    struct gitops_objs objs;
    struct state_gitops_item *prev; /* inventory before this sync, sorted by id */
    size_t nprev;
    const atomic_bool *cancel;
    struct gitops_result *res;
    struct state_db *st; /* for drift events */
};
/* Applies one group's objects in stages and waits for them to be healthy; 0 when every
 * object applied and became healthy. */
int gitops_apply_group(struct gitops_run *r, size_t group);
/* Deletes inventory objects that are no longer rendered and carry the managed label.
 * keep[i] is set for each prev[i] that must stay in the inventory. */
void gitops_prune_removed(struct gitops_run *r, bool *keep);
/* Reads (when state.db has none) and writes the in-cluster inventory ConfigMap. */
int gitops_inventory_from_cluster(struct gitops_run *r, struct bd_err *err) BD_MUST_CHECK;
int gitops_inventory_to_cluster(struct gitops_run *r, const struct state_gitops_item *inv, size_t n,
                         struct bd_err *err) BD_MUST_CHECK;
/* The store entry of an inventory id, or NULL. */
const struct state_gitops_item *gitops_inventory_find(const struct gitops_run *r, const char *id);
/* "group/kind/namespace/name"; caller frees. */
char *gitops_object_id(const char *api_version, const char *kind, const char *ns,
                       const char *name);
/* Sleeps up to ms; false when cancelled. */
bool gitops_sleep(const atomic_bool *cancel, int64_t ms);

#endif
