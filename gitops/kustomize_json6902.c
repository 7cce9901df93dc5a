/* RFC 6902 JSON Patch (add, remove, replace, move, copy, test) with RFC 6901 pointers,
 * as kustomize applies them for `patches` and `patchesJson6902`. */
#include "kustomize_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One unescaped reference token of a pointer (~1 is '/', ~0 is '~'); caller frees. */
static char *token(const char **p)
{
    const char *s = *p + 1; /* past '/' */
    size_t n = strcspn(s, "/");
    char *t = bd_xmalloc(n + 1), *d = t;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
            *d++ = s[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            *d++ = s[i];
        }
    }
    *d = 0;
    *p = s + n;
    return t;
}

static bool index_of(const char *t, int size, bool append_ok, int *out)
{
    if (append_ok && !strcmp(t, "-")) {
        *out = size;
        return true;
    }
    if (!*t || (t[0] == '0' && t[1]))
        return false;
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (*end || errno || v < 0 || v > (append_ok ? size : size - 1))
        return false;
    *out = (int)v;
    return true;
}

/* Finds the parent of the pointer's last token; *last is that token (caller frees). */
static cJSON *parent_of(cJSON *doc, const char *ptr, char **last, char *why, size_t n)
{
    if (*ptr != '/') {
        snprintf(why, n, "path \"%s\" does not start with /", ptr);
        return NULL;
    }
    cJSON *cur = doc;
    const char *p = ptr;
    for (;;) {
        char *t = token(&p);
        if (!*p) {
            *last = t;
            return cur;
        }
        cJSON *next = NULL;
        int idx;
        if (cJSON_IsArray(cur) && index_of(t, cJSON_GetArraySize(cur), false, &idx))
            next = cJSON_GetArrayItem(cur, idx);
        else if (cJSON_IsObject(cur))
            next = cJSON_GetObjectItemCaseSensitive(cur, t);
        free(t);
        if (!next) {
            snprintf(why, n, "path %s: %.*s does not exist", ptr, (int)(p - ptr), ptr);
            return NULL;
        }
        cur = next;
    }
}

static cJSON *get(cJSON *doc, const char *ptr, char *why, size_t n)
{
    if (!*ptr)
        return doc;
    char *last;
    cJSON *parent = parent_of(doc, ptr, &last, why, n);
    if (!parent)
        return NULL;
    cJSON *v = NULL;
    int idx;
    if (cJSON_IsArray(parent) && index_of(last, cJSON_GetArraySize(parent), false, &idx))
        v = cJSON_GetArrayItem(parent, idx);
    else if (cJSON_IsObject(parent))
        v = cJSON_GetObjectItemCaseSensitive(parent, last);
    free(last);
    if (!v)
        snprintf(why, n, "path %s does not exist", ptr);
    return v;
}

/* Takes val. */
static int add(cJSON *doc, const char *ptr, cJSON *val, bool replace, char *why, size_t n)
{
    char *last;
    cJSON *parent = parent_of(doc, ptr, &last, why, n);
    int rc = 0, idx;
    if (!parent) {
        rc = -1;
    } else if (cJSON_IsArray(parent)) {
        if (!index_of(last, cJSON_GetArraySize(parent), !replace, &idx)) {
            snprintf(why, n, "path %s: index %s out of range", ptr, last);
            rc = -1;
        } else if (replace) {
            cJSON_ReplaceItemInArray(parent, idx, val);
            val = NULL;
        } else if (idx == cJSON_GetArraySize(parent)) {
            cJSON_AddItemToArray(parent, val);
            val = NULL;
        } else {
            cJSON_InsertItemInArray(parent, idx, val);
            val = NULL;
        }
    } else if (cJSON_IsObject(parent)) {
        bool exists = cJSON_GetObjectItemCaseSensitive(parent, last) != NULL;
        if (replace && !exists) {
            snprintf(why, n, "path %s does not exist; replace needs an existing value", ptr);
            rc = -1;
        } else {
            if (exists)
                cJSON_ReplaceItemInObjectCaseSensitive(parent, last, val);
            else
                cJSON_AddItemToObject(parent, last, val);
            val = NULL;
        }
    } else {
        snprintf(why, n, "path %s: the parent is not an object or array", ptr);
        rc = -1;
    }
    free(last);
    cJSON_Delete(val);
    return rc;
}

/* Detaches the value at ptr (caller frees). */
static cJSON *detach(cJSON *doc, const char *ptr, char *why, size_t n)
{
    char *last;
    cJSON *parent = parent_of(doc, ptr, &last, why, n);
    cJSON *v = NULL;
    int idx;
    if (parent && cJSON_IsArray(parent) && index_of(last, cJSON_GetArraySize(parent), false, &idx))
        v = cJSON_DetachItemFromArray(parent, idx);
    else if (parent && cJSON_IsObject(parent))
        v = cJSON_DetachItemFromObjectCaseSensitive(parent, last);
    if (parent && !v)
        snprintf(why, n, "path %s does not exist", ptr);
    free(parent ? last : NULL);
    return v;
}

static int one(cJSON *doc, const cJSON *op, char *why, size_t n)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(op, "from");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
    if (!cJSON_IsString(o) || !cJSON_IsString(path)) {
        snprintf(why, n, "every operation needs op and path");
        return -1;
    }
    const char *name = o->valuestring, *ptr = path->valuestring;
    bool needs_value = !strcmp(name, "add") || !strcmp(name, "replace") || !strcmp(name, "test");
    bool needs_from = !strcmp(name, "move") || !strcmp(name, "copy");
    if (needs_value && !value) {
        snprintf(why, n, "%s %s: no value", name, ptr);
        return -1;
    }
    if (needs_from && !cJSON_IsString(from)) {
        snprintf(why, n, "%s %s: no from", name, ptr);
        return -1;
    }
    if (!strcmp(name, "add") || !strcmp(name, "replace"))
        return add(doc, ptr, cJSON_Duplicate(value, true), !strcmp(name, "replace"), why, n);
    if (!strcmp(name, "remove")) {
        cJSON *v = detach(doc, ptr, why, n);
        cJSON_Delete(v);
        return v ? 0 : -1;
    }
    if (!strcmp(name, "move")) {
        cJSON *v = detach(doc, from->valuestring, why, n);
        return v ? add(doc, ptr, v, false, why, n) : -1;
    }
    if (!strcmp(name, "copy")) {
        cJSON *v = get(doc, from->valuestring, why, n);
        return v ? add(doc, ptr, cJSON_Duplicate(v, true), false, why, n) : -1;
    }
    if (!strcmp(name, "test")) {
        cJSON *v = get(doc, ptr, why, n);
        if (!v)
            return -1;
        if (!cJSON_Compare(v, value, true)) {
            snprintf(why, n, "test %s: the value differs", ptr);
            return -1;
        }
        return 0;
    }
    snprintf(why, n, "unknown operation \"%s\"", name);
    return -1;
}

int gitops_kust_json6902(cJSON *obj, const cJSON *ops, char *why, size_t n)
{
    if (!cJSON_IsArray(ops)) {
        snprintf(why, n, "a JSON patch is a list of operations");
        return -1;
    }
    const cJSON *op;
    cJSON_ArrayForEach(op, ops)
    {
        if (one(obj, op, why, n) < 0)
            return -1;
    }
    return 0;
}
