/* The built-in kustomize's view of an object: where its identity is, and the names it
 * had before transformers changed them (what kustomize keeps in its previous-id
 * annotations, so references written against the old names can be updated). */
#include "kustomize_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gitops_kust_fail(const struct kust_at *at, struct bd_err *err, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_err_set(err, "%s:%d: %s: %s", at->kfile, at->line, at->field, msg);
}

void gitops_kust_set_str(cJSON *obj, const char *key, const char *v)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(v));
    else
        cJSON_AddStringToObject(obj, key, v);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void gitops_kust_refresh(struct gitops_obj *o)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
    const char *ns = str_of(meta, "namespace");
    o->api_version = str_of(o->json, "apiVersion");
    o->kind = str_of(o->json, "kind");
    o->name = str_of(meta, "name");
    o->ns = ns && *ns ? ns : NULL;
}

const char *gitops_kust_group(const char *api_version, char *buf, size_t n)
{
    const char *slash = api_version ? strchr(api_version, '/') : NULL;
    snprintf(buf, n, "%.*s", slash ? (int)(slash - api_version) : 0, slash ? api_version : "");
    return buf;
}

static cJSON *track(struct gitops_obj *o, bool create)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(o->json, KUST_TRACK);
    if (!t && create)
        t = cJSON_AddObjectToObject(o->json, KUST_TRACK);
    return t;
}

static void add_unique(cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (!strcmp(e->valuestring, s))
            return;
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

void gitops_kust_track_id(struct gitops_obj *o)
{
    cJSON *t = track(o, true);
    cJSON *names = cJSON_GetObjectItemCaseSensitive(t, "names");
    cJSON *nss = cJSON_GetObjectItemCaseSensitive(t, "namespaces");
    if (!names)
        names = cJSON_AddArrayToObject(t, "names");
    if (!nss)
        nss = cJSON_AddArrayToObject(t, "namespaces");
    add_unique(names, o->name);
    add_unique(nss, o->ns ? o->ns : "");
}

const cJSON *gitops_kust_track_names(const struct gitops_obj *o)
{
    return cJSON_GetObjectItemCaseSensitive(track((struct gitops_obj *)o, false), "names");
}

const cJSON *gitops_kust_track_namespaces(const struct gitops_obj *o)
{
    return cJSON_GetObjectItemCaseSensitive(track((struct gitops_obj *)o, false), "namespaces");
}

void gitops_kust_track_set_bool(struct gitops_obj *o, const char *key, bool v)
{
    cJSON *t = track(o, true);
    cJSON_DeleteItemFromObjectCaseSensitive(t, key);
    cJSON_AddBoolToObject(t, key, v);
}

bool gitops_kust_track_bool(const struct gitops_obj *o, const char *key)
{
    return cJSON_IsTrue(
        cJSON_GetObjectItemCaseSensitive(track((struct gitops_obj *)o, false), key));
}

void gitops_kust_track_strip(struct gitops_obj *o)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o->json, KUST_TRACK);
}

struct gitops_obj *gitops_kust_add(struct gitops_objs *out, cJSON *json, const char *src,
                                   size_t group)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->v = bd_xrealloc(out->v, out->cap * sizeof *out->v);
    }
    struct gitops_obj *o = &out->v[out->n++];
    memset(o, 0, sizeof *o);
    o->json = json;
    o->src = bd_xstrdup(src);
    o->group = group;
    gitops_kust_refresh(o);
    return o;
}

void gitops_kust_remove(struct gitops_objs *out, size_t i)
{
    struct gitops_obj *o = &out->v[i];
    cJSON_Delete(o->json);
    free(o->src);
    free(o->id);
    free(o->path);
    free(o->message);
    memmove(o, o + 1, (out->n - i - 1) * sizeof *o);
    out->n--;
}

cJSON *gitops_kust_string_map(const struct kust_at *at, const struct bd_node *n, struct bd_err *err)
{
    if (bd_node_is_null(n))
        return cJSON_CreateObject();
    if (n->kind != BD_NODE_MAP) {
        gitops_kust_fail(at, err, "expected a mapping of strings, got a %s", bd_node_kind_name(n));
        return NULL;
    }
    cJSON *m = cJSON_CreateObject();
    for (size_t i = 0; i < n->n; i++) {
        const struct bd_node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        if (v->kind != BD_NODE_SCALAR) {
            struct kust_at here = {at->kfile, v->line, at->field};
            gitops_kust_fail(&here, err, "%s: expected a string, got a %s", k->str,
                             bd_node_kind_name(v));
            cJSON_Delete(m);
            return NULL;
        }
        /* null reads as "" in kustomize's map[string]string */
        gitops_kust_set_str(m, k->str, bd_node_is_null(v) ? "" : v->str);
    }
    return m;
}
