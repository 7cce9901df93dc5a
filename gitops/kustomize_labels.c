/* commonLabels, labels (includeSelectors, includeTemplates) and commonAnnotations, at
 * the places kustomize's default field specs name: metadata everywhere, pod templates
 * of the workload kinds, and with selectors the label selectors that must keep
 * matching those templates. */
#include "kustomize_internal.h"

#include <stdlib.h>
#include <string.h>

#define AFF "spec/template/spec/affinity/"
static const struct kust_fieldspec selector_specs[] = {
    {NULL, "Service", "spec/selector", true},
    {NULL, "ReplicationController", "spec/selector", true},
    {NULL, "Deployment", "spec/selector/matchLabels", true},
    {"apps", "Deployment",
     AFF "podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/"
         "labelSelector/matchLabels",
     false},
    {"apps", "Deployment",
     AFF "podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
     false},
    {"apps", "Deployment",
     AFF "podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/"
         "labelSelector/matchLabels",
     false},
    {"apps", "Deployment",
     AFF "podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/"
         "matchLabels",
     false},
    {"apps", "Deployment", "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
     false},
    {NULL, "ReplicaSet", "spec/selector/matchLabels", true},
    {NULL, "DaemonSet", "spec/selector/matchLabels", true},
    {"apps", "StatefulSet", "spec/selector/matchLabels", true},
    {"apps", "StatefulSet",
     AFF "podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/"
         "labelSelector/matchLabels",
     false},
    {"apps", "StatefulSet",
     AFF "podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
     false},
    {"apps", "StatefulSet",
     AFF "podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/"
         "labelSelector/matchLabels",
     false},
    {"apps", "StatefulSet",
     AFF "podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/"
         "matchLabels",
     false},
    {"apps", "StatefulSet",
     "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels", false},
    {"batch", "Job", "spec/selector/matchLabels", false},
    {"batch", "CronJob", "spec/jobTemplate/spec/selector/matchLabels", false},
    {"policy", "PodDisruptionBudget", "spec/selector/matchLabels", false},
    {"networking.k8s.io", "NetworkPolicy", "spec/podSelector/matchLabels", false},
    {"networking.k8s.io", "NetworkPolicy", "spec/ingress/from/podSelector/matchLabels", false},
    {"networking.k8s.io", "NetworkPolicy", "spec/egress/to/podSelector/matchLabels", false},
};

/* Labels (not annotations) of templates also go to the PVC templates. */
static const struct kust_fieldspec claim_templates = {
    "apps", "StatefulSet", "spec/volumeClaimTemplates[]/metadata/", true};

/* Pod templates; with "labels" replaced by "annotations" for commonAnnotations. */
static const struct kust_fieldspec template_specs[] = {
    {NULL, "ReplicationController", "spec/template/metadata/", true},
    {NULL, "Deployment", "spec/template/metadata/", true},
    {NULL, "ReplicaSet", "spec/template/metadata/", true},
    {NULL, "DaemonSet", "spec/template/metadata/", true},
    {NULL, "StatefulSet", "spec/template/metadata/", true},
    {"batch", "Job", "spec/template/metadata/", true},
    {"batch", "CronJob", "spec/jobTemplate/metadata/", true},
    {"batch", "CronJob", "spec/jobTemplate/spec/template/metadata/", true},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int set_pairs(cJSON *parent, const char *key, void *ud)
{
    const cJSON *pairs = ud;
    cJSON *m = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
        m = cJSON_AddObjectToObject(parent, key);
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs)
    {
        gitops_kust_set_str(m, p->string, p->valuestring);
    }
    return 0;
}

static void apply(const struct kust_fieldspec *fs, const char *leaf, const cJSON *pairs,
                  struct gitops_obj *o)
{
    if (!gitops_kust_fieldspec_matches(fs, o))
        return;
    char *path = bd_xasprintf("%s%s", fs->path, leaf);
    gitops_kust_fields_visit(o->json, path, fs->create, set_pairs, (void *)pairs);
    free(path);
}

static void metadata(const char *leaf, const cJSON *pairs, bool templates, struct gitops_obj *o)
{
    struct kust_fieldspec meta = {NULL, NULL, "metadata/", true};
    apply(&meta, leaf, pairs, o);
    for (size_t k = 0; templates && k < N(template_specs); k++)
        apply(&template_specs[k], leaf, pairs, o);
    if (templates && !strcmp(leaf, "labels"))
        apply(&claim_templates, leaf, pairs, o);
}

int gitops_kust_labels(const cJSON *pairs, bool selectors, bool templates, struct gitops_objs *objs,
                       size_t from)
{
    if (!cJSON_GetArraySize(pairs))
        return 0;
    for (size_t i = from; i < objs->n; i++) {
        struct gitops_obj *o = &objs->v[i];
        metadata("labels", pairs, templates || selectors, o);
        for (size_t k = 0; selectors && k < N(selector_specs); k++)
            apply(&selector_specs[k], "", pairs, o);
    }
    return 0;
}

int gitops_kust_annotations(const cJSON *pairs, struct gitops_objs *objs, size_t from)
{
    if (!cJSON_GetArraySize(pairs))
        return 0;
    for (size_t i = from; i < objs->n; i++)
        metadata("annotations", pairs, true, &objs->v[i]);
    return 0;
}
