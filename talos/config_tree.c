/* Building and walking config trees, and the list of documents a config is made of. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct bd_node *talos_tree_map(struct bd_node *parent, const char *key)
{
    struct bd_node *n = bd_node_new(BD_NODE_MAP);
    bd_node_map_set(parent, key, n);
    return n;
}

struct bd_node *talos_tree_seq(struct bd_node *parent, const char *key)
{
    struct bd_node *n = bd_node_new(BD_NODE_SEQ);
    bd_node_map_set(parent, key, n);
    return n;
}

struct bd_node *talos_tree_item(struct bd_node *seq)
{
    struct bd_node *n = bd_node_new(BD_NODE_MAP);
    bd_node_seq_push(seq, n);
    return n;
}

void talos_tree_str(struct bd_node *map, const char *key, const char *val)
{
    bd_node_map_set(map, key, bd_node_scalar(val, false));
}

void talos_tree_plain(struct bd_node *map, const char *key, const char *val)
{
    bd_node_map_set(map, key, bd_node_scalar(val, true));
}

struct bd_node *talos_tree_at(const struct bd_node *root, const char *path)
{
    const struct bd_node *n = root;
    const char *p = path;
    while (n && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        const struct bd_node *next = NULL;
        for (size_t i = 0; n->kind == BD_NODE_MAP && i < n->n; i++)
            if (strlen(n->kids[2 * i]->str) == len && !memcmp(n->kids[2 * i]->str, p, len))
                next = n->kids[2 * i + 1];
        n = next;
        p = dot ? dot + 1 : p + len;
    }
    return (struct bd_node *)n;
}

const char *talos_tree_str_at(const struct bd_node *root, const char *path)
{
    const struct bd_node *n = talos_tree_at(root, path);
    return n && n->kind == BD_NODE_SCALAR && !bd_node_is_null(n) ? n->str : NULL;
}

void talos_docs_push(struct talos_docs *d, struct bd_node *doc)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = bd_xrealloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n++] = doc;
}

void talos_docs_remove(struct talos_docs *d, size_t i)
{
    bd_node_free(d->v[i]);
    memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof *d->v);
    d->n--;
}

void talos_docs_free(struct talos_docs *d)
{
    for (size_t i = 0; i < d->n; i++)
        bd_node_free(d->v[i]);
    free(d->v);
    memset(d, 0, sizeof *d);
}

long talos_docs_find(const struct talos_docs *d, const char *kind, const char *name)
{
    for (size_t i = 1; i < d->n; i++) {
        const char *k = talos_tree_str_at(d->v[i], "kind"), *nm = talos_tree_str_at(d->v[i], "name");
        if (k && !strcmp(k, kind) && (!name || (nm && !strcmp(nm, name))))
            return (long)i;
    }
    return -1;
}
