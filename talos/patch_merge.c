/* Talos's strategic merge patches on config trees, following
 * talos@v1.13.9 pkg/machinery/config/merge and configpatcher:
 *   - mappings merge key by key; a scalar replaces the old one unless it is an empty
 *     string or 0 (booleans always replace);
 *   - lists are appended to, except podSubnets, serviceSubnets and auditPolicy, which
 *     are replaced, network interfaces (by interface or deviceSelector), VLANs (by
 *     vlanId) and admission plugins (by name), which merge with their match, and
 *     extraArgs, whose keys replace;
 *   - "$patch: delete" removes the mapping key it sits under, the list items matching
 *     the other key of its item, or, at the top of a typed document, the document;
 *   - a typed document (apiVersion, kind, name) merges into the one with the same
 *     identity, or is added.
 * Messages name the patch file and the path inside the config. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct merge {
    const char *file;
    struct bd_err *err;
    bool v1alpha1; /* the special list rules apply to the v1alpha1 document only */
};

/* "a.b[3].c" matches the pattern "a.b[].c". */
static bool path_is(const char *path, const char *pattern)
{
    while (*path && *pattern) {
        if (*path == '[' && pattern[0] == '[' && pattern[1] == ']') {
            path = strchr(path, ']');
            if (!path)
                return false;
            path++;
            pattern += 2;
            continue;
        }
        if (*path++ != *pattern++)
            return false;
    }
    return !*path && !*pattern;
}

static bool path_in(const char *path, const char *const *patterns)
{
    for (size_t i = 0; patterns[i]; i++)
        if (path_is(path, patterns[i]))
            return true;
    return false;
}

static const char *const replaced[] = {
    "cluster.network.podSubnets", "cluster.network.serviceSubnets", "cluster.apiServer.auditPolicy",
    NULL};

static const char *const args_maps[] = {
    "machine.kubelet.extraArgs",           "cluster.apiServer.extraArgs", "cluster.controllerManager.extraArgs",
    "cluster.scheduler.extraArgs",         "cluster.proxy.extraArgs",     "cluster.etcd.extraArgs", NULL};

/* Lists whose items merge with the item that has the same key. */
static const struct keyed {
    const char *path;
    const char *key, *alt_key;
} keyed[] = {
    {"machine.network.interfaces", "interface", "deviceSelector"},
    {"machine.network.interfaces[].vlans", "vlanId", NULL},
    {"cluster.apiServer.admissionControl", "name", NULL},
};

static int failf(const struct merge *m, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(const struct merge *m, const char *path, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_err_set(m->err, "patch %s: %s: %s", m->file, *path ? path : "(document)", msg);
}

static char *join(const char *path, const char *key)
{
    return *path ? bd_xasprintf("%s.%s", path, key) : bd_xstrdup(key);
}

static bool is_zero(const struct bd_node *n)
{
    return n->kind == BD_NODE_SCALAR && (!n->str[0] || (n->plain && !strcmp(n->str, "0")));
}

/* Equality of two trees as values (what a list item's key is compared by). */
static bool patch_nodes_equal(const struct bd_node *a, const struct bd_node *b)
{
    if (a->kind != b->kind || a->n != b->n)
        return false;
    if (a->kind == BD_NODE_SCALAR)
        return !strcmp(a->str, b->str);
    size_t k = a->kind == BD_NODE_MAP ? 2 * a->n : a->n;
    for (size_t i = 0; i < k; i++)
        if (!patch_nodes_equal(a->kids[i], b->kids[i]))
            return false;
    return true;
}

static int merge_map(const struct merge *m, struct bd_node *left, const struct bd_node *right,
                     const char *path);

static const struct keyed *keyed_for(const struct merge *m, const char *path)
{
    for (size_t i = 0; m->v1alpha1 && i < sizeof keyed / sizeof keyed[0]; i++)
        if (path_is(path, keyed[i].path))
            return &keyed[i];
    return NULL;
}

static struct bd_node *keyed_match(struct bd_node *list, const struct bd_node *item,
                                   const struct keyed *k)
{
    const char *key = bd_node_get(item, k->key) ? k->key : k->alt_key;
    const struct bd_node *want = key ? bd_node_get(item, key) : NULL;
    for (size_t i = 0; want && i < list->n; i++) {
        const struct bd_node *have = bd_node_get(list->kids[i], key);
        if (have && patch_nodes_equal(have, want))
            return list->kids[i];
    }
    return NULL;
}

static int merge_list(const struct merge *m, struct bd_node *left, const struct bd_node *right,
                      const char *path)
{
    const struct keyed *k = keyed_for(m, path);
    for (size_t i = 0; i < right->n; i++) {
        const struct bd_node *item = right->kids[i];
        struct bd_node *match = k && item->kind == BD_NODE_MAP ? keyed_match(left, item, k) : NULL;
        if (!match) {
            bd_node_seq_push(left, bd_node_clone(item));
            continue;
        }
        char *ipath = bd_xasprintf("%s[%zu]", path, i);
        int rc = merge_map(m, match, item, ipath);
        free(ipath);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int merge_value(const struct merge *m, struct bd_node *map, const char *key,
                       const struct bd_node *rv, const char *path)
{
    struct bd_node *lv = bd_node_get(map, key);
    if (bd_node_is_null(rv))
        return 0; /* a nil pointer in Go: nothing to merge */
    if (!lv || bd_node_is_null(lv)) {
        bd_node_map_set(map, key, bd_node_clone(rv));
        return 0;
    }
    if (lv->kind != rv->kind)
        return failf(m, path, "cannot merge a %s into a %s", bd_node_kind_name(rv),
                     bd_node_kind_name(lv));
    if (m->v1alpha1 && path_in(path, replaced)) {
        bd_node_map_set(map, key, bd_node_clone(rv));
        return 0;
    }
    switch (rv->kind) {
    case BD_NODE_MAP:
        if (m->v1alpha1 && path_in(path, args_maps)) {
            for (size_t i = 0; i < rv->n; i++)
                bd_node_map_set(lv, rv->kids[2 * i]->str, bd_node_clone(rv->kids[2 * i + 1]));
            return 0;
        }
        return merge_map(m, lv, rv, path);
    case BD_NODE_SEQ:
        return merge_list(m, lv, rv, path);
    case BD_NODE_SCALAR:
        if (!is_zero(rv))
            bd_node_map_set(map, key, bd_node_clone(rv));
        return 0;
    }
    return 0;
}

static int merge_map(const struct merge *m, struct bd_node *left, const struct bd_node *right,
                     const char *path)
{
    for (size_t i = 0; i < right->n; i++) {
        const char *key = right->kids[2 * i]->str;
        char *kpath = join(path, key);
        int rc = merge_value(m, left, key, right->kids[2 * i + 1], kpath);
        free(kpath);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- $patch: delete ---- */

static bool is_delete_marker(const struct bd_node *map)
{
    const struct bd_node *v = bd_node_get(map, "$patch");
    return v && v->kind == BD_NODE_SCALAR && !strcmp(v->str, "delete");
}

static void map_remove(struct bd_node *map, size_t i)
{
    bd_node_free(map->kids[2 * i]);
    bd_node_free(map->kids[2 * i + 1]);
    memmove(&map->kids[2 * i], &map->kids[2 * i + 2], (map->n - i - 1) * 2 * sizeof *map->kids);
    map->n--;
}

static void seq_remove(struct bd_node *seq, size_t i)
{
    bd_node_free(seq->kids[i]);
    memmove(&seq->kids[i], &seq->kids[i + 1], (seq->n - i - 1) * sizeof *seq->kids);
    seq->n--;
}

/* Removes the key at path (dotted, no lists) from the target document. */
static int delete_key(const struct merge *m, struct bd_node *target, const char *path)
{
    char *parent_path = bd_xstrdup(path);
    char *dot = strrchr(parent_path, '.');
    const char *key = dot ? dot + 1 : parent_path;
    if (dot)
        *dot = 0;
    struct bd_node *parent = dot ? talos_tree_at(target, parent_path) : target;
    int rc = -1;
    for (size_t i = 0; parent && parent->kind == BD_NODE_MAP && i < parent->n; i++)
        if (!strcmp(parent->kids[2 * i]->str, key)) {
            map_remove(parent, i);
            rc = 0;
            break;
        }
    free(parent_path);
    if (rc < 0)
        return failf(m, path, "$patch: delete: the config has nothing there to delete");
    return 0;
}

/* Removes the items of the list at path whose key equals the marker item's. */
static int delete_items(const struct merge *m, struct bd_node *target, const char *path,
                        const struct bd_node *marker)
{
    const struct bd_node *k = NULL, *v = NULL;
    for (size_t i = 0; i < marker->n && !k; i++)
        if (strcmp(marker->kids[2 * i]->str, "$patch")) {
            k = marker->kids[2 * i];
            v = marker->kids[2 * i + 1];
        }
    if (!k)
        return failf(m, path, "$patch: delete in a list item needs another key to pick the items "
                              "(e.g. name: cilium)");
    struct bd_node *list = talos_tree_at(target, path);
    size_t removed = 0;
    for (size_t i = 0; list && list->kind == BD_NODE_SEQ && i < list->n;) {
        const struct bd_node *have = bd_node_get(list->kids[i], k->str);
        if (have && patch_nodes_equal(have, v)) {
            seq_remove(list, i);
            removed++;
        } else {
            i++;
        }
    }
    if (!removed)
        return failf(m, path, "$patch: delete: no item has %s: %s", k->str,
                     v->kind == BD_NODE_SCALAR ? v->str : "(that value)");
    return 0;
}

/* Walks the patch, applies each delete marker to target and drops it from the patch;
 * containers the removal leaves empty go too (as Talos does). Returns 1 when n itself
 * is to be dropped, 0 to keep it, -1 on error. */
static int take_deletes(const struct merge *m, struct bd_node *n, struct bd_node *target,
                        const char *path, bool in_list)
{
    if (n->kind == BD_NODE_MAP && is_delete_marker(n)) {
        if (in_list) {
            char *list_path = bd_xstrndup(path, (size_t)(strrchr(path, '[') - path));
            if (strchr(list_path, '[')) {
                free(list_path);
                return failf(m, path, "$patch: delete cannot reach into a list item; delete the item");
            }
            int rc = delete_items(m, target, list_path, n);
            free(list_path);
            return rc < 0 ? -1 : 1;
        }
        if (strchr(path, '['))
            return failf(m, path, "$patch: delete cannot reach into a list item; delete the item");
        return delete_key(m, target, path) < 0 ? -1 : 1;
    }
    if (n->kind == BD_NODE_SCALAR)
        return 0;
    bool removed_any = false;
    for (size_t i = 0; i < n->n;) {
        struct bd_node *kid = n->kind == BD_NODE_MAP ? n->kids[2 * i + 1] : n->kids[i];
        char *kpath = n->kind == BD_NODE_MAP ? join(path, n->kids[2 * i]->str)
                                             : bd_xasprintf("%s[%zu]", path, i);
        int rc = take_deletes(m, kid, target, kpath, n->kind == BD_NODE_SEQ);
        free(kpath);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            if (n->kind == BD_NODE_MAP)
                map_remove(n, i);
            else
                seq_remove(n, i);
            removed_any = true;
        } else {
            i++;
        }
    }
    return removed_any && n->n == 0 ? 1 : 0;
}

/* ---- documents ---- */

static bool is_v1alpha1_patch(const struct bd_node *doc)
{
    static const char *const keys[] = {"version", "debug", "persist", "machine", "cluster", NULL};
    for (size_t i = 0; keys[i]; i++)
        if (bd_node_get(doc, keys[i]))
            return true;
    return false;
}

int talos_patch_merge_doc(struct talos_docs *d, const struct bd_node *patch, const char *file,
                    struct bd_err *err)
{
    struct merge m = {.file = file, .err = err};
    const char *api = talos_tree_str_at(patch, "apiVersion"), *kind = talos_tree_str_at(patch, "kind");
    const char *name = talos_tree_str_at(patch, "name");
    long target = 0;
    if (api || kind) {
        if (!api || !kind)
            return bd_err_set(err, "patch %s:%d: a typed document needs both apiVersion and kind",
                              file, patch->line);
        target = talos_docs_find(d, kind, name);
        if (is_delete_marker(patch)) {
            if (target < 0)
                return bd_err_set(err, "patch %s:%d: $patch: delete: the config has no %s%s%s",
                                  file, patch->line, kind, name ? " named " : "", name ? name : "");
            talos_docs_remove(d, (size_t)target);
            return 0;
        }
    } else if (!is_v1alpha1_patch(patch)) {
        return bd_err_set(err,
                          "patch %s:%d: neither a v1alpha1 fragment (machine:, cluster:) nor a "
                          "typed document (apiVersion, kind)",
                          file, patch->line);
    } else if (is_delete_marker(patch)) {
        return bd_err_set(err, "patch %s:%d: the v1alpha1 document cannot be deleted", file,
                          patch->line);
    }
    m.v1alpha1 = target == 0;
    struct bd_node *copy = bd_node_clone(patch);
    /* a new document has nothing to delete from: markers in it fail against an empty one */
    struct bd_node *none = bd_node_new(BD_NODE_MAP);
    int rc = take_deletes(&m, copy, target >= 0 ? d->v[target] : none, "", false);
    bd_node_free(none);
    if (rc >= 0 && copy->n) {
        if (target < 0) {
            talos_docs_push(d, copy);
            return 0;
        }
        rc = merge_map(&m, d->v[target], copy, "");
    }
    bd_node_free(copy);
    return rc < 0 ? -1 : 0;
}
