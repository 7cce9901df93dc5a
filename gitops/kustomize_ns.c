/* The namespace transformer, with kustomize's rules: the kinds kustomize takes as
 * cluster-wide keep no namespace, a v1 Namespace object is renamed, binding subjects
 * named "default" move along, and the service an APIService or a CRD conversion webhook
 * names moves too. */
#include "kustomize_internal.h"

#include <string.h>

/* Kinds kustomize itself takes as cluster-wide (from the OpenAPI document it embeds);
 * everything else, custom kinds included, gets the namespace. Matching its list, not
 * the cluster's, is what makes the output equal to kustomize's. */
static const char *const cluster_kinds[] = {
    "v1 Namespace",
    "v1 Node",
    "v1 PersistentVolume",
    "v1 ComponentStatus",
    "rbac.authorization.k8s.io/v1 ClusterRole",
    "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1beta1 ClusterRole",
    "rbac.authorization.k8s.io/v1beta1 ClusterRoleBinding",
    "apiextensions.k8s.io/v1 CustomResourceDefinition",
    "apiextensions.k8s.io/v1beta1 CustomResourceDefinition",
    "storage.k8s.io/v1 StorageClass",
    "storage.k8s.io/v1beta1 StorageClass",
    "storage.k8s.io/v1 CSIDriver",
    "storage.k8s.io/v1beta1 CSIDriver",
    "storage.k8s.io/v1 CSINode",
    "storage.k8s.io/v1beta1 CSINode",
    "storage.k8s.io/v1 VolumeAttachment",
    "storage.k8s.io/v1beta1 VolumeAttachment",
    "scheduling.k8s.io/v1 PriorityClass",
    "scheduling.k8s.io/v1beta1 PriorityClass",
    "networking.k8s.io/v1 IngressClass",
    "networking.k8s.io/v1beta1 IngressClass",
    "node.k8s.io/v1 RuntimeClass",
    "node.k8s.io/v1beta1 RuntimeClass",
    "apiregistration.k8s.io/v1 APIService",
    "apiregistration.k8s.io/v1beta1 APIService",
    "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1beta1 ValidatingWebhookConfiguration",
    "certificates.k8s.io/v1 CertificateSigningRequest",
    "certificates.k8s.io/v1beta1 CertificateSigningRequest",
    "flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema",
    "flowcontrol.apiserver.k8s.io/v1beta1 PriorityLevelConfiguration",
    "policy/v1beta1 PodSecurityPolicy",
};

bool gitops_kust_cluster_kind(const char *api_version, const char *kind)
{
    size_t n = strlen(api_version);
    for (size_t i = 0; i < sizeof cluster_kinds / sizeof cluster_kinds[0]; i++)
        if (!strncmp(cluster_kinds[i], api_version, n) && cluster_kinds[i][n] == ' ' &&
            !strcmp(cluster_kinds[i] + n + 1, kind))
            return true;
    return false;
}

static int set_ns(cJSON *parent, const char *key, void *ud)
{
    gitops_kust_set_str(parent, key, ud);
    return 0;
}

static const struct kust_fieldspec ns_specs[] = {
    {"apiregistration.k8s.io", "APIService", "spec/service/namespace", true},
    {"apiextensions.k8s.io", "CustomResourceDefinition",
     "spec/conversion/webhook/clientConfig/service/namespace", false},
};

int gitops_kust_namespace(const struct kust_at *at, const char *ns, struct gitops_objs *objs,
                          size_t from, struct bd_err *err)
{
    const struct gitops_obj *renamed_ns = NULL;
    for (size_t i = from; i < objs->n; i++) {
        struct gitops_obj *o = &objs->v[i];
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
        gitops_kust_track_id(o);
        if (!strcmp(o->api_version, "v1") && !strcmp(o->kind, "Namespace")) {
            /* kustomize renames the Namespace object itself */
            if (renamed_ns)
                return gitops_kust_fail(at, err,
                                        "two Namespace objects (%s, %s) would both be renamed "
                                        "to %s",
                                        renamed_ns->src, o->src, ns);
            renamed_ns = o;
            gitops_kust_set_str(meta, "name", ns);
        } else if (!gitops_kust_cluster_kind(o->api_version, o->kind)) {
            gitops_kust_set_str(meta, "namespace", ns);
        }
        for (size_t k = 0; k < sizeof ns_specs / sizeof ns_specs[0]; k++)
            if (gitops_kust_fieldspec_matches(&ns_specs[k], o))
                gitops_kust_fields_visit(o->json, ns_specs[k].path, ns_specs[k].create, set_ns,
                                         (void *)ns);
        if (!strcmp(o->kind, "RoleBinding") || !strcmp(o->kind, "ClusterRoleBinding")) {
            cJSON *subj;
            cJSON_ArrayForEach(subj, cJSON_GetObjectItemCaseSensitive(o->json, "subjects"))
            {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(subj, "name");
                if (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))
                    gitops_kust_set_str(subj, "namespace", ns);
            }
        }
        gitops_kust_refresh(o);
    }
    return 0;
}
