/* namePrefix and nameSuffix: metadata.name of every object but CRDs, APIServices and
 * Namespaces (kustomize's skip list); the old name is remembered so that references
 * to it are updated at the end of the build (kustomize_refs.c). */
#include "kustomize_internal.h"

#include <stdlib.h>
#include <string.h>

static bool skipped(const struct gitops_obj *o)
{
    char g[256];
    gitops_kust_group(o->api_version, g, sizeof g);
    return !strcmp(o->kind, "CustomResourceDefinition") || !strcmp(o->kind, "Namespace") ||
           (!strcmp(o->kind, "APIService") && !strcmp(g, "apiregistration.k8s.io"));
}

int gitops_kust_name_affix(const struct kust_at *at, const char *prefix, const char *suffix,
                           struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    for (size_t i = from; i < objs->n; i++) {
        struct gitops_obj *o = &objs->v[i];
        if (skipped(o))
            continue;
        char *name = bd_xasprintf("%s%s%s", prefix ? prefix : "", o->name, suffix ? suffix : "");
        if (strlen(name) > 253) {
            int rc = gitops_kust_fail(at, err,
                                      "%s %s (%s) would be named %s, longer than 253 "
                                      "characters",
                                      o->kind, o->name, o->src, name);
            free(name);
            return rc;
        }
        gitops_kust_track_id(o);
        gitops_kust_set_str(cJSON_GetObjectItemCaseSensitive(o->json, "metadata"), "name", name);
        free(name);
        gitops_kust_refresh(o);
    }
    return 0;
}
