/* Strategic merge patches as kustomize applies them: maps merge key by key, null
 * deletes, `$patch: replace|delete` directives, and lists of Kubernetes kinds merge by
 * their patchMergeKey (containers by name, volumeMounts by mountPath, ...) where the
 * API declares one and are replaced otherwise, as are all lists of custom kinds (for
 * which kustomize has no schema). */
#include "kustomize_internal.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *field, *key;
} merge_keys[] = {
    {"containers", "name"},
    {"initContainers", "name"},
    {"ephemeralContainers", "name"},
    {"volumes", "name"},
    {"env", "name"},
    {"volumeMounts", "mountPath"},
    {"volumeDevices", "devicePath"},
    {"imagePullSecrets", "name"},
    {"hostAliases", "ip"},
    {"topologySpreadConstraints", "topologyKey"},
    {"conditions", "type"},
    {"ownerReferences", "uid"},
    {"resourceClaims", "name"},
    {"readinessGates", "conditionType"},
};

static const char *merge_key(const char *field, const cJSON *a, const cJSON *b, bool builtin)
{
    if (!builtin) /* kustomize has no schema for custom kinds: their lists are replaced */
        return NULL;
    if (!strcmp(field, "ports")) {
        const cJSON *first = cJSON_GetArrayItem(a && cJSON_GetArraySize(a) ? a : b, 0);
        return cJSON_GetObjectItemCaseSensitive(first, "containerPort") ? "containerPort" : "port";
    }
    for (size_t i = 0; i < sizeof merge_keys / sizeof merge_keys[0]; i++)
        if (!strcmp(merge_keys[i].field, field))
            return merge_keys[i].key;
    return NULL;
}

static bool directive(const char *key)
{
    return key[0] == '$';
}

static const char *patch_directive(const cJSON *m)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "$patch");
    return cJSON_IsString(d) ? d->valuestring : NULL;
}

/* A copy of v without directives (what a patch value becomes when nothing is there). */
static cJSON *clean(const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        cJSON *o = cJSON_CreateObject();
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!directive(e->string) && !cJSON_IsNull(e))
                cJSON_AddItemToObject(o, e->string, clean(e));
        }
        return o;
    }
    if (cJSON_IsArray(v)) {
        cJSON *a = cJSON_CreateArray();
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            const char *d = cJSON_IsObject(e) ? patch_directive(e) : NULL;
            if (!d || strcmp(d, "delete"))
                cJSON_AddItemToArray(a, clean(e));
        }
        return a;
    }
    return cJSON_Duplicate(v, true);
}

static int merge_map(cJSON *dst, const cJSON *patch, bool builtin, char *why, size_t n);

static bool same_key(const cJSON *a, const cJSON *b, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, key);
    return x && y && cJSON_Compare(x, y, true);
}

static int merge_list(cJSON *parent, const char *field, cJSON *dst, const cJSON *patch,
                      bool builtin, char *why, size_t n)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, patch)
    {
        const char *d = cJSON_IsObject(e) ? patch_directive(e) : NULL;
        if (d && !strcmp(d, "replace")) { /* the whole list is the patch's */
            cJSON_ReplaceItemInObjectCaseSensitive(parent, field, clean(patch));
            return 0;
        }
    }
    const char *key = merge_key(field, dst, patch, builtin);
    if (!key) {
        cJSON_ReplaceItemInObjectCaseSensitive(parent, field, clean(patch));
        return 0;
    }
    /* as Kubernetes merges: the patch's items in its order (merged into the matching
     * item), then the items only the object had */
    cJSON *merged = cJSON_CreateArray();
    cJSON_ArrayForEach(e, patch)
    {
        if (!cJSON_IsObject(e) || !cJSON_GetObjectItemCaseSensitive(e, key)) {
            cJSON_AddItemToArray(merged, clean(e));
            continue;
        }
        cJSON *match = NULL, *x;
        cJSON_ArrayForEach(x, dst)
        {
            if (same_key(x, e, key)) {
                match = x;
                break;
            }
        }
        if (match)
            cJSON_DetachItemViaPointer(dst, match);
        const char *d = patch_directive(e);
        if (d && !strcmp(d, "delete")) {
            cJSON_Delete(match);
        } else if (match) {
            cJSON_AddItemToArray(merged, match);
            if (merge_map(match, e, builtin, why, n) < 0) {
                cJSON_Delete(merged);
                return -1;
            }
        } else {
            cJSON_AddItemToArray(merged, clean(e));
        }
    }
    cJSON *rest;
    while ((rest = dst->child))
        cJSON_AddItemToArray(merged, cJSON_DetachItemViaPointer(dst, rest));
    cJSON_ReplaceItemInObjectCaseSensitive(parent, field, merged);
    return 0;
}

static int merge_map(cJSON *dst, const cJSON *patch, bool builtin, char *why, size_t n)
{
    const char *d = patch_directive(patch);
    if (d && !strcmp(d, "replace")) {
        cJSON *e;
        while ((e = dst->child))
            cJSON_Delete(cJSON_DetachItemViaPointer(dst, e));
    } else if (d && strcmp(d, "merge") && strcmp(d, "delete")) {
        snprintf(why, n, "unknown $patch directive \"%s\"", d);
        return -1;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        const char *k = p->string;
        if (directive(k))
            continue;
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, k);
        const char *pd = cJSON_IsObject(p) ? patch_directive(p) : NULL;
        if (cJSON_IsNull(p) || (pd && !strcmp(pd, "delete"))) {
            cJSON_DeleteItemFromObjectCaseSensitive(dst, k);
        } else if (cJSON_IsObject(p) && cJSON_IsObject(cur)) {
            if (merge_map(cur, p, builtin, why, n) < 0)
                return -1;
        } else if (cJSON_IsArray(p) && cJSON_IsArray(cur)) {
            if (merge_list(dst, k, cur, p, builtin, why, n) < 0)
                return -1;
        } else if (cur) {
            cJSON_ReplaceItemInObjectCaseSensitive(dst, k, clean(p));
        } else {
            cJSON_AddItemToObject(dst, k, clean(p));
        }
    }
    return 0;
}

int gitops_kust_smp(cJSON *obj, const cJSON *patch, bool builtin_kind, char *why, size_t n)
{
    return merge_map(obj, patch, builtin_kind, why, n);
}
