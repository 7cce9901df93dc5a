/* Name references: once prefixes, suffixes, namespaces and hashes have renamed objects,
 * every field that names one of them (kustomize's nameReference field specs: pod
 * volumes and env sources, service accounts, role refs and subjects, Ingress backends,
 * webhook services, ...) is updated to the new name, as kustomize's FixBackReferences
 * does. A field names an object when the value is one of the names the object had and
 * the two share a namespace (now or before a namespace transformer moved them). */
#include "kustomize_internal.h"

#include <stdlib.h>
#include <string.h>

/* What holds a pod spec, and where. */
enum { POD_CM = 1, POD_SA = 2 }; /* the kinds ConfigMap/Secret refs use; SA/PVC refs use */
static const struct {
    const char *kind, *prefix;
    int uses;
} pod_holders[] = {
    {"Pod", "spec/", POD_CM | POD_SA},
    {"PodTemplate", "template/spec/", POD_CM},
    {"Deployment", "spec/template/spec/", POD_CM | POD_SA},
    {"ReplicaSet", "spec/template/spec/", POD_CM},
    {"ReplicationController", "spec/template/spec/", POD_SA},
    {"DaemonSet", "spec/template/spec/", POD_CM | POD_SA},
    {"StatefulSet", "spec/template/spec/", POD_CM | POD_SA},
    {"Job", "spec/template/spec/", POD_CM | POD_SA},
    {"CronJob", "spec/jobTemplate/spec/template/spec/", POD_CM | POD_SA},
};

struct pod_ref {
    const char *referral; /* kind referred to (core group) */
    int uses;
    const char *path; /* below the pod spec */
};
static const struct pod_ref pod_refs[] = {
    {"ConfigMap", POD_CM, "volumes/configMap/name"},
    {"ConfigMap", POD_CM, "containers/env/valueFrom/configMapKeyRef/name"},
    {"ConfigMap", POD_CM, "initContainers/env/valueFrom/configMapKeyRef/name"},
    {"ConfigMap", POD_CM, "containers/envFrom/configMapRef/name"},
    {"ConfigMap", POD_CM, "initContainers/envFrom/configMapRef/name"},
    {"ConfigMap", POD_CM, "volumes/projected/sources/configMap/name"},
    {"Secret", POD_CM, "volumes/secret/secretName"},
    {"Secret", POD_CM, "containers/env/valueFrom/secretKeyRef/name"},
    {"Secret", POD_CM, "initContainers/env/valueFrom/secretKeyRef/name"},
    {"Secret", POD_CM, "containers/envFrom/secretRef/name"},
    {"Secret", POD_CM, "initContainers/envFrom/secretRef/name"},
    {"Secret", POD_CM, "imagePullSecrets/name"},
    {"Secret", POD_CM, "volumes/projected/sources/secret/name"},
    {"ServiceAccount", POD_SA, "serviceAccountName"},
    {"PersistentVolumeClaim", POD_SA, "volumes/persistentVolumeClaim/claimName"},
    {"PriorityClass", POD_SA, "priorityClassName"},
};

/* Other referrers: referral kind and group, referrer kind and group, path. */
static const struct {
    const char *kind, *group, *rkind, *rgroup, *path;
} refs[] = {
    {"Deployment", NULL, "HorizontalPodAutoscaler", NULL, "spec/scaleTargetRef/name"},
    {"ReplicationController", NULL, "HorizontalPodAutoscaler", NULL, "spec/scaleTargetRef/name"},
    {"ReplicaSet", NULL, "HorizontalPodAutoscaler", NULL, "spec/scaleTargetRef/name"},
    {"StatefulSet", NULL, "HorizontalPodAutoscaler", NULL, "spec/scaleTargetRef/name"},
    {"ConfigMap", "", "Role", NULL, "rules/resourceNames"},
    {"ConfigMap", "", "ClusterRole", NULL, "rules/resourceNames"},
    {"ConfigMap", "", "Node", NULL, "spec/configSource/configMap"},
    {"Secret", "", "Ingress", NULL, "spec/tls/secretName"},
    {"Secret", "", "ServiceAccount", NULL, "imagePullSecrets/name"},
    {"Secret", "", "StorageClass", NULL, "parameters/secretName"},
    {"Secret", "", "StorageClass", NULL, "parameters/adminSecretName"},
    {"Secret", "", "StorageClass", NULL, "parameters/userSecretName"},
    {"Secret", "", "StorageClass", NULL, "parameters/secretRef"},
    {"Secret", "", "Role", NULL, "rules/resourceNames"},
    {"Secret", "", "ClusterRole", NULL, "rules/resourceNames"},
    {"Secret", "", "PersistentVolume", NULL, "spec/azureFile/secretName"},
    {"Service", "", "StatefulSet", "apps", "spec/serviceName"},
    {"Service", "", "Ingress", NULL, "spec/rules/http/paths/backend/serviceName"},
    {"Service", "", "Ingress", NULL, "spec/backend/serviceName"},
    {"Service", "", "Ingress", NULL, "spec/rules/http/paths/backend/service/name"},
    {"Service", "", "Ingress", NULL, "spec/defaultBackend/service/name"},
    {"Service", "", "APIService", "apiregistration.k8s.io", "spec/service"},
    {"Service", "", "ValidatingWebhookConfiguration", "admissionregistration.k8s.io",
     "webhooks/clientConfig/service"},
    {"Service", "", "MutatingWebhookConfiguration", "admissionregistration.k8s.io",
     "webhooks/clientConfig/service"},
    {"Role", "rbac.authorization.k8s.io", "RoleBinding", "rbac.authorization.k8s.io",
     "roleRef/name"},
    {"ClusterRole", "rbac.authorization.k8s.io", "RoleBinding", "rbac.authorization.k8s.io",
     "roleRef/name"},
    {"ClusterRole", "rbac.authorization.k8s.io", "ClusterRoleBinding", "rbac.authorization.k8s.io",
     "roleRef/name"},
    {"ServiceAccount", "", "RoleBinding", "rbac.authorization.k8s.io", "subjects"},
    {"ServiceAccount", "", "ClusterRoleBinding", "rbac.authorization.k8s.io", "subjects"},
    {"PersistentVolume", "", "PersistentVolumeClaim", NULL, "spec/volumeName"},
    {"PersistentVolume", "", "ClusterRole", NULL, "rules/resourceNames"},
    {"StorageClass", "storage.k8s.io", "PersistentVolume", NULL, "spec/storageClassName"},
    {"StorageClass", "storage.k8s.io", "PersistentVolumeClaim", NULL, "spec/storageClassName"},
    {"StorageClass", "storage.k8s.io", "StatefulSet", NULL,
     "spec/volumeClaimTemplates/spec/storageClassName"},
    {"IngressClass", "networking.k8s.io", "Ingress", NULL, "spec/ingressClassName"},
    {"ValidatingAdmissionPolicy", "admissionregistration.k8s.io",
     "ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io", "spec/policyName"},
};

struct fix {
    struct gitops_objs *objs;
    size_t from;
    const struct gitops_obj *referrer;
    const char *kind, *group; /* the referral; group NULL = any */
};

static bool ns_eq(const char *a, const char *b)
{
    if (!a || !*a)
        a = "default";
    if (!b || !*b)
        b = "default";
    return !strcmp(a, b);
}

static bool in_list(const cJSON *list, const char *s, bool ns)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        if (ns ? ns_eq(e->valuestring, s) : !strcmp(e->valuestring, s))
            return true;
    }
    return false;
}

static bool had_name(const struct gitops_obj *o, const char *name)
{
    return !strcmp(o->name, name) || in_list(gitops_kust_track_names(o), name, false);
}

static bool had_ns(const struct gitops_obj *o, const char *ns)
{
    return ns_eq(o->ns, ns) || in_list(gitops_kust_track_namespaces(o), ns, true);
}

/* kustomize's sameCurrentNamespaceAsReferrer: cluster-wide referrers and candidates, and
 * ServiceAccounts (bindings name accounts of other namespaces), always pass. */
static bool same_namespace(const struct gitops_obj *referrer, const struct gitops_obj *o)
{
    if (gitops_kust_cluster_kind(referrer->api_version, referrer->kind) ||
        gitops_kust_cluster_kind(o->api_version, o->kind) || !strcmp(o->kind, "ServiceAccount"))
        return true;
    return ns_eq(referrer->ns, o->ns);
}

/* The object the value names, or NULL when none or several do. ns is the namespace a
 * {name, namespace} reference carries, else NULL. */
static const struct gitops_obj *resolve(const struct fix *f, const char *name, const char *ns,
                                        bool map)
{
    const struct gitops_obj *found = NULL;
    for (size_t i = f->from; i < f->objs->n; i++) {
        const struct gitops_obj *o = &f->objs->v[i];
        char g[256];
        if (strcmp(o->kind, f->kind) ||
            (f->group && strcmp(f->group, gitops_kust_group(o->api_version, g, sizeof g))))
            continue;
        if (!had_name(o, name) || (ns && !had_ns(o, ns)) || !same_namespace(f->referrer, o))
            continue;
        if (found && (strcmp(found->name, o->name) || (map && !ns_eq(found->ns, o->ns))))
            return NULL; /* ambiguous: kustomize refuses, bootd leaves the field alone */
        if (!found)
            found = o;
    }
    return found;
}

static void fix_string(const struct fix *f, cJSON *item)
{
    if (!cJSON_IsString(item))
        return;
    const struct gitops_obj *o = resolve(f, item->valuestring, NULL, false);
    if (o && strcmp(o->name, item->valuestring))
        cJSON_SetValuestring(item, o->name);
}

/* {name, namespace} maps: subjects, webhook and APIService services. */
static void fix_named(const struct fix *f, cJSON *m)
{
    cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(m, "kind");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(m, "namespace");
    if (!cJSON_IsString(name) ||
        (kind && !(cJSON_IsString(kind) && !strcmp(kind->valuestring, f->kind))))
        return;
    const struct gitops_obj *o =
        resolve(f, name->valuestring, cJSON_IsString(ns) ? ns->valuestring : NULL, true);
    if (!o)
        return;
    if (strcmp(o->name, name->valuestring))
        cJSON_SetValuestring(name, o->name);
    if (o->ns) /* written even where the reference had none, as kustomize does */
        gitops_kust_set_str(m, "namespace", o->ns);
}

static int visit(cJSON *parent, const char *key, void *ud)
{
    const struct fix *f = ud;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!strcmp(key, "name") && cJSON_IsObject(parent) &&
        cJSON_GetObjectItemCaseSensitive(parent, "kind") &&
        cJSON_GetObjectItemCaseSensitive(parent, "apiGroup")) {
        /* roleRef: only when it names the referral's kind */
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(parent, "kind");
        if (!cJSON_IsString(k) || strcmp(k->valuestring, f->kind))
            return 0;
    }
    if (cJSON_IsArray(v)) {
        cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (cJSON_IsObject(e))
                fix_named(f, e);
            else
                fix_string(f, e);
        }
    } else if (cJSON_IsObject(v)) {
        fix_named(f, v);
    } else {
        fix_string(f, v);
    }
    return 0;
}

static void fix_one(struct gitops_objs *objs, size_t from, struct gitops_obj *o)
{
    char g[256];
    gitops_kust_group(o->api_version, g, sizeof g);
    for (size_t h = 0; h < sizeof pod_holders / sizeof pod_holders[0]; h++) {
        if (strcmp(pod_holders[h].kind, o->kind))
            continue;
        for (size_t r = 0; r < sizeof pod_refs / sizeof pod_refs[0]; r++) {
            if (!(pod_refs[r].uses & pod_holders[h].uses))
                continue;
            struct fix f = {objs, from, o, pod_refs[r].referral,
                            !strcmp(pod_refs[r].referral, "PriorityClass") ? "scheduling.k8s.io"
                                                                           : ""};
            char *path = bd_xasprintf("%s%s", pod_holders[h].prefix, pod_refs[r].path);
            gitops_kust_fields_visit(o->json, path, false, visit, &f);
            free(path);
        }
    }
    for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++) {
        if (strcmp(refs[r].rkind, o->kind) || (refs[r].rgroup && strcmp(refs[r].rgroup, g)))
            continue;
        struct fix f = {objs, from, o, refs[r].kind, refs[r].group};
        gitops_kust_fields_visit(o->json, refs[r].path, false, visit, &f);
    }
}

void gitops_kust_fix_references(struct gitops_objs *objs, size_t from)
{
    for (size_t i = from; i < objs->n; i++)
        fix_one(objs, from, &objs->v[i]);
}
