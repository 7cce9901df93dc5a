/* Drift: does a live object still hold what bootd applied? Every field of the applied
 * body is compared with the live object (maps as subsets, since the API server and
 * controllers add defaults and fields of their own; lists element by element; scalars
 * exactly), and every field bootd applied must still be bootd's in metadata.managedFields
 * (another manager that took a field over, e.g. with a forced apply or kubectl edit, has
 * changed it even where the value happens to match). */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* Top-level and metadata fields the API server sets or that name the object. */
static bool skipped(int depth, bool in_meta, const char *key)
{
    if (depth == 0)
        return !strcmp(key, "apiVersion") || !strcmp(key, "kind") || !strcmp(key, "status");
    return in_meta && (!strcmp(key, "name") || !strcmp(key, "namespace"));
}

static void path_push(char *path, size_t n, const char *key, int index)
{
    size_t len = strlen(path);
    if (key)
        snprintf(path + len, n - len, "%s%s", len ? "." : "", key);
    else
        snprintf(path + len, n - len, "[%d]", index);
}

static void describe(const cJSON *v, char *out, size_t n)
{
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(out, n, "%.60s%s", s ? s : "missing", s && strlen(s) > 60 ? "..." : "");
    cJSON_free(s);
}

/* Fields that hold resource.Quantity values: the maps of resources, ResourceQuota and
 * LimitRange (keyed by resource name) and emptyDir's sizeLimit. Elsewhere "1000m" and "1"
 * are different strings. */
static bool quantity_field(const char *path)
{
    static const char *const maps[] = {"limits", "requests", "hard",
                                       "capacity", "allocatable", "default",
                                       "defaultRequest", "max", "min",
                                       "maxLimitRequestRatio", "podFixed"};
    const char *last = strrchr(path, '.');
    if (!last)
        return false;
    if (!strcmp(last + 1, "sizeLimit"))
        return true;
    const char *parent = last;
    while (parent > path && parent[-1] != '.' && parent[-1] != ']')
        parent--;
    size_t n = (size_t)(last - parent);
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if (strlen(maps[i]) == n && !strncmp(parent, maps[i], n))
            return true;
    return false;
}

/* Git may say `cpu: 2` (a number) or `memory: 1.5Gi`; the cluster answers the canonical
 * string ("2", "1536Mi"). */
static bool same_quantity(const char *path, const cJSON *want, const cJSON *live)
{
    if (!cJSON_IsString(live) || !quantity_field(path))
        return false;
    char *text = cJSON_IsNumber(want) ? cJSON_PrintUnformatted(want) : NULL;
    const char *w = text ? text : cJSON_IsString(want) ? want->valuestring : NULL;
    bool same = w && gitops_quantity_equal(w, live->valuestring);
    cJSON_free(text);
    return same;
}

static bool differs(const cJSON *want, const cJSON *live, const cJSON *owned, int depth,
                    bool in_meta, char *path, size_t pn, char *why, size_t n)
{
    size_t mark = strlen(path);
    if (cJSON_IsObject(want)) {
        if (!cJSON_IsObject(live)) {
            char l[80];
            describe(live, l, sizeof l);
            snprintf(why, n, "%s is %s in the cluster, an object in Git", path[0] ? path : ".", l);
            return true;
        }
        const cJSON *w;
        cJSON_ArrayForEach(w, want)
        {
            if (skipped(depth, in_meta, w->string))
                continue;
            path_push(path, pn, w->string, 0);
            const cJSON *sub = NULL;
            if (owned) {
                char f[512];
                snprintf(f, sizeof f, "f:%s", w->string);
                sub = cJSON_GetObjectItemCaseSensitive(owned, f);
                if (!sub) {
                    snprintf(why, n, "%s is no longer managed by bootd", path);
                    return true;
                }
            }
            if (differs(w, cJSON_GetObjectItemCaseSensitive(live, w->string), sub, depth + 1,
                        depth == 0 && !strcmp(w->string, "metadata"), path, pn, why, n))
                return true;
            path[mark] = 0;
        }
        return false;
    }
    if (cJSON_IsArray(want)) {
        int nw = cJSON_GetArraySize(want);
        if (!cJSON_IsArray(live) || cJSON_GetArraySize(live) != nw) {
            char l[80];
            describe(live, l, sizeof l);
            snprintf(why, n, "%s is %s in the cluster, a list of %d in Git", path, l, nw);
            return true;
        }
        /* ownership inside lists is keyed by merge keys; the values say enough there */
        for (int i = 0; i < nw; i++) {
            path_push(path, pn, NULL, i);
            if (differs(cJSON_GetArrayItem(want, i), cJSON_GetArrayItem(live, i), NULL, depth + 1,
                        false, path, pn, why, n))
                return true;
            path[mark] = 0;
        }
        return false;
    }
    if (!live || !(cJSON_Compare(want, live, true) || same_quantity(path, want, live))) {
        char w[80], l[80];
        describe(want, w, sizeof w);
        describe(live, l, sizeof l);
        snprintf(why, n, "%s is %s in the cluster, %s in Git", path, l, w);
        return true;
    }
    return false;
}

/* bootd's apply entry in managedFields: its fieldsV1, or NULL. */
static const cJSON *owned_by(const cJSON *live, const char *manager)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(live, "metadata");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(meta, "managedFields"))
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "manager");
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(e, "operation");
        if (cJSON_IsString(m) && !strcmp(m->valuestring, manager) && cJSON_IsString(op) &&
            !strcmp(op->valuestring, "Apply"))
            return cJSON_GetObjectItemCaseSensitive(e, "fieldsV1");
    }
    return NULL;
}

bool gitops_drifted(const cJSON *want, const cJSON *live, const char *manager, char *why, size_t n)
{
    const cJSON *owned = owned_by(live, manager);
    if (!owned) {
        snprintf(why, n, "no field of it is managed by %s", manager);
        return true;
    }
    char path[512] = "";
    return differs(want, live, owned, 0, false, path, sizeof path, why, n);
}

bool gitops_self_heal_disabled(const cJSON *obj)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                                         "annotations"),
        GITOPS_SELF_HEAL_ANNOTATION);
    return cJSON_IsString(a) && !strcmp(a->valuestring, "disabled");
}
