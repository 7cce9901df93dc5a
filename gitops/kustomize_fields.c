/* kustomize's FieldSpecs: which kinds a transformer touches and where. A path walks
 * maps by key and every element of the arrays it meets, as kustomize's path getter
 * does; "[]" after a key only says the value is an array. */
#include "kustomize_internal.h"

#include <stdlib.h>
#include <string.h>

bool gitops_kust_fieldspec_matches(const struct kust_fieldspec *fs, const struct gitops_obj *o)
{
    if (fs->kind && strcmp(fs->kind, o->kind))
        return false;
    char g[256];
    return !fs->group || !strcmp(fs->group, gitops_kust_group(o->api_version, g, sizeof g));
}

static int visit(cJSON *node, char **segs, size_t i, size_t n, bool create, gitops_kust_field_fn fn,
                 void *ud)
{
    if (cJSON_IsArray(node)) {
        cJSON *e;
        cJSON_ArrayForEach(e, node)
        {
            if (visit(e, segs, i, n, create, fn, ud) < 0)
                return -1;
        }
        return 0;
    }
    if (!cJSON_IsObject(node))
        return 0;
    cJSON *child = cJSON_GetObjectItemCaseSensitive(node, segs[i]);
    bool missing = !child || cJSON_IsNull(child);
    if (i + 1 == n)
        return missing && !create ? 0 : fn(node, segs[i], ud);
    if (missing) {
        if (!create)
            return 0;
        cJSON_DeleteItemFromObjectCaseSensitive(node, segs[i]);
        child = cJSON_AddObjectToObject(node, segs[i]);
    }
    return visit(child, segs, i + 1, n, create, fn, ud);
}

int gitops_kust_fields_visit(cJSON *obj, const char *path, bool create, gitops_kust_field_fn fn,
                             void *ud)
{
    char *copy = bd_xstrdup(path);
    char *segs[32];
    size_t n = 0;
    for (char *save = NULL, *s = strtok_r(copy, "/", &save); s && n < 32;
         s = strtok_r(NULL, "/", &save)) {
        size_t len = strlen(s);
        if (len > 2 && !strcmp(s + len - 2, "[]"))
            s[len - 2] = 0;
        segs[n++] = s;
    }
    int rc = n ? visit(obj, segs, 0, n, create, fn, ud) : 0;
    free(copy);
    return rc;
}
