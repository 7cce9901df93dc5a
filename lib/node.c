/* Building and querying bd_node trees. */
#include "bd.h"

#include <stdlib.h>
#include <string.h>

struct bd_node *bd_node_new(enum bd_node_kind kind)
{
    struct bd_node *n = bd_xcalloc(1, sizeof *n);
    n->kind = kind;
    return n;
}

struct bd_node *bd_node_scalar(const char *s, bool plain)
{
    struct bd_node *n = bd_node_new(BD_NODE_SCALAR);
    n->str = bd_xstrdup(s);
    n->plain = plain;
    return n;
}

static size_t nkids(const struct bd_node *n)
{
    if (n->kind == BD_NODE_SCALAR)
        return 0;
    return n->kind == BD_NODE_MAP ? 2 * n->n : n->n;
}

void bd_node_free(struct bd_node *n)
{
    if (!n)
        return;
    size_t k = nkids(n);
    for (size_t i = 0; i < k; i++)
        bd_node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

struct bd_node *bd_node_clone(const struct bd_node *n)
{
    struct bd_node *c = bd_node_new(n->kind);
    c->line = n->line;
    c->col = n->col;
    c->plain = n->plain;
    c->str = n->str ? bd_xstrdup(n->str) : NULL;
    size_t k = nkids(n);
    if (k) {
        c->cap = k;
        c->kids = bd_xmalloc(k * sizeof *c->kids);
        for (size_t i = 0; i < k; i++)
            c->kids[i] = bd_node_clone(n->kids[i]);
    }
    c->n = n->n;
    return c;
}

struct bd_node *bd_node_get(const struct bd_node *n, const char *key)
{
    if (!n || n->kind != BD_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->kids[2 * i]->str, key))
            return n->kids[2 * i + 1];
    return NULL;
}

void bd_node_map_set(struct bd_node *map, const char *key, struct bd_node *val)
{
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->kids[2 * i]->str, key)) {
            bd_node_free(map->kids[2 * i + 1]);
            map->kids[2 * i + 1] = val;
            return;
        }
    if (map->cap < 2 * map->n + 2) {
        map->cap = map->cap ? map->cap * 2 : 8;
        map->kids = bd_xrealloc(map->kids, map->cap * sizeof *map->kids);
    }
    map->kids[2 * map->n] = bd_node_scalar(key, true);
    map->kids[2 * map->n + 1] = val;
    map->n++;
}

void bd_node_seq_push(struct bd_node *seq, struct bd_node *item)
{
    if (seq->cap < seq->n + 1) {
        seq->cap = seq->cap ? seq->cap * 2 : 8;
        seq->kids = bd_xrealloc(seq->kids, seq->cap * sizeof *seq->kids);
    }
    seq->kids[seq->n++] = item;
}

bool bd_node_is_null(const struct bd_node *n)
{
    if (!n)
        return true;
    if (n->kind != BD_NODE_SCALAR || !n->plain)
        return false;
    const char *s = n->str;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

const char *bd_node_kind_name(const struct bd_node *n)
{
    if (bd_node_is_null(n))
        return "null";
    switch (n->kind) {
    case BD_NODE_MAP:
        return "mapping";
    case BD_NODE_SEQ:
        return "list";
    default:
        return "scalar";
    }
}
