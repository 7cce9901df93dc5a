/* Internal to gitops/: the pieces of the built-in kustomize. Each transformer works on
 * the objects out->v[from..out->n) that one kustomization accumulated, in the order
 * kustomize runs them (kustomize_builtin.c). Tracking data that kustomize keeps in
 * internal annotations (names an object had before a prefix, suffix, namespace or hash
 * changed them; whether a generated object wants a hash suffix) lives under the key
 * KUST_TRACK of the object's JSON and is removed before the objects leave the renderer. */
#ifndef GITOPS_KUSTOMIZE_INTERNAL_H
#define GITOPS_KUSTOMIZE_INTERNAL_H

#include "internal.h"

#include <cjson/cJSON.h>

#define KUST_TRACK "\001kustomize"

/* Where a field of the kustomization came from, for errors. */
struct kust_at {
    const char *kfile;
    int line;
    const char *field;
};
int gitops_kust_fail(const struct kust_at *at, struct bd_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- objects (kustomize_objs.c) ---- */

/* Re-points o's apiVersion/kind/name/ns after o->json changed. */
void gitops_kust_refresh(struct gitops_obj *o);
/* The API group of an apiVersion ("" for the core group), into buf. */
const char *gitops_kust_group(const char *api_version, char *buf, size_t n);
/* Remembers o's current name and namespace before a transformer changes them. */
void gitops_kust_track_id(struct gitops_obj *o);
/* Names and namespaces o had (current ones included); arrays of strings, may be NULL. */
const cJSON *gitops_kust_track_names(const struct gitops_obj *o);
const cJSON *gitops_kust_track_namespaces(const struct gitops_obj *o);
void gitops_kust_track_set_bool(struct gitops_obj *o, const char *key, bool v);
bool gitops_kust_track_bool(const struct gitops_obj *o, const char *key);
void gitops_kust_track_strip(struct gitops_obj *o);
void gitops_kust_set_str(cJSON *obj, const char *key, const char *v);
/* Appends a new object (takes json) to out, tagged as from src. */
struct gitops_obj *gitops_kust_add(struct gitops_objs *out, cJSON *json, const char *src,
                                   size_t group);
/* Removes out->v[i], keeping the order. */
void gitops_kust_remove(struct gitops_objs *out, size_t i);
/* A map of strings from a kustomization node (labels, annotations); NULL with err. */
cJSON *gitops_kust_string_map(const struct kust_at *at, const struct bd_node *n,
                              struct bd_err *err);

/* ---- field specs (kustomize_fields.c) ---- */

/* A place in objects of some kinds: kustomize's FieldSpec. group/kind NULL = any;
 * path is "a/b/c", arrays on the way are walked element by element. */
struct kust_fieldspec {
    const char *group, *kind, *path;
    bool create;
};
bool gitops_kust_fieldspec_matches(const struct kust_fieldspec *fs, const struct gitops_obj *o);
/* Calls fn(parent, key) for every place of path in obj whose last field exists (or, with
 * create, could: missing maps on the way are then created). Stops at the first fn that
 * returns -1. */
typedef int (*gitops_kust_field_fn)(cJSON *parent, const char *key, void *ud);
int gitops_kust_fields_visit(cJSON *obj, const char *path, bool create, gitops_kust_field_fn fn,
                             void *ud);

/* ---- transformers ---- */

bool gitops_kust_cluster_kind(const char *api_version, const char *kind);
int gitops_kust_namespace(const struct kust_at *at, const char *ns, struct gitops_objs *objs,
                          size_t from, struct bd_err *err); /* kustomize_ns.c */
int gitops_kust_name_affix(const struct kust_at *at, const char *prefix, const char *suffix,
                           struct gitops_objs *objs, size_t from,
                           struct bd_err *err); /* _names.c */
/* labels: includeSelectors / includeTemplates; commonLabels = both. */
int gitops_kust_labels(const cJSON *pairs, bool selectors, bool templates, struct gitops_objs *objs,
                       size_t from); /* kustomize_labels.c */
int gitops_kust_annotations(const cJSON *pairs, struct gitops_objs *objs, size_t from);
int gitops_kust_images(const struct kust_at *at, const struct bd_node *images,
                       struct gitops_objs *objs, size_t from, struct bd_err *err); /* _images.c */
int gitops_kust_replicas(const struct kust_at *at, const struct bd_node *replicas,
                         struct gitops_objs *objs, size_t from, struct bd_err *err);

/* Generators (kustomize_gen.c): configMapGenerator or secretGenerator entries. */
int gitops_kust_generate(const struct kust_at *at, const char *dir, const struct bd_node *list,
                         bool secret, const struct bd_node *global_opts, size_t group,
                         struct gitops_objs *objs, size_t from, struct bd_err *err);
/* At the end of the top kustomization: hash suffixes, then name references. */
int gitops_kust_hash_suffixes(struct gitops_objs *objs, size_t from, struct bd_err *err);
void gitops_kust_fix_references(struct gitops_objs *objs, size_t from); /* kustomize_refs.c */

/* helmCharts through `helm template` (kustomize_helm.c). */
struct gitops_kust_helm {
    const char *helm;      /* the helm program; NULL when there is none */
    const char *cache_dir; /* charts pulled once, by repository, name and version */
    int64_t timeout_s;
};
int gitops_kust_helm(const struct kust_at *at, const struct gitops_kust_helm *h, const char *dir,
                     const struct bd_node *charts, const char *kust_ns, size_t group,
                     struct gitops_objs *objs, struct bd_err *err);

/* The whole build of the kustomization in dir (kustomize_builtin.c). */
int gitops_kustomize_builtin(const char *root, const char *dir, size_t group,
                             const struct gitops_kust_helm *helm, struct gitops_objs *out,
                             struct bd_err *err);

/* Patches (kustomize_patch.c). at->field: "patches", "patchesStrategicMerge" or
 * "patchesJson6902". */
int gitops_kust_patches(const struct kust_at *at, const char *root, const char *dir,
                        const struct bd_node *list, struct gitops_objs *objs, size_t from,
                        struct bd_err *err);
/* Strategic merge patch of obj with patch (kustomize_smp.c); builtin_kind picks the
 * Kubernetes merge keys for lists, custom kinds replace lists. */
int gitops_kust_smp(cJSON *obj, const cJSON *patch, bool builtin_kind, char *why, size_t n);
/* RFC 6902 operations (an array) on obj (kustomize_json6902.c). */
int gitops_kust_json6902(cJSON *obj, const cJSON *ops, char *why, size_t n);

#endif
