/* RFC 6902 JSON patches on the v1alpha1 document. Talos itself refuses JSON patches on
 * configs with more than one document (every v1.13 config has HostnameConfig); bootd
 * applies them to the v1alpha1 document, which is what their /machine and /cluster
 * paths address. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct op_ctx {
    const char *file;
    size_t index;
    const char *op, *path;
    struct bd_err *err;
};

static int op_fail(const struct op_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int op_fail(const struct op_ctx *c, const char *fmt, ...)
{
    char msg[500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_err_set(c->err, "patch %s: operation %zu (%s %s): %s", c->file, c->index, c->op,
                      c->path, msg);
}

/* One reference token of a JSON pointer, unescaped (~1 is /, ~0 is ~). */
static char *token(const char **p)
{
    const char *start = *p + 1, *end = strchr(start, '/');
    if (!end)
        end = start + strlen(start);
    char *t = bd_xmalloc((size_t)(end - start) + 1), *o = t;
    for (const char *s = start; s < end; s++) {
        if (*s == '~' && s[1] == '1') {
            *o++ = '/';
            s++;
        } else if (*s == '~' && s[1] == '0') {
            *o++ = '~';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    *p = end;
    return t;
}

/* A list index: digits without a leading zero, below limit. */
static bool index_of(const char *t, size_t limit, size_t *out)
{
    if (!t[0] || (t[0] == '0' && t[1]))
        return false;
    size_t v = 0;
    for (const char *s = t; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (size_t)(*s - '0');
        if (v > limit)
            return false;
    }
    *out = v;
    return v < limit || limit == (size_t)-1;
}

/* Finds the container a pointer's last token lives in; *last gets that token (caller
 * frees). NULL when a step on the way is missing. */
static struct bd_node *resolve_parent(struct bd_node *root, const char *ptr, char **last)
{
    struct bd_node *n = root;
    const char *p = ptr;
    char *t = token(&p);
    while (*p) {
        struct bd_node *next = NULL;
        size_t i;
        if (n->kind == BD_NODE_MAP)
            next = bd_node_get(n, t);
        else if (n->kind == BD_NODE_SEQ && index_of(t, n->n, &i))
            next = n->kids[i];
        free(t);
        if (!next)
            return NULL;
        n = next;
        t = token(&p);
    }
    *last = t;
    return n;
}

static struct bd_node *get(struct bd_node *root, const char *ptr)
{
    if (!ptr[0])
        return root;
    char *last;
    struct bd_node *parent = resolve_parent(root, ptr, &last);
    struct bd_node *n = NULL;
    size_t i;
    if (parent && parent->kind == BD_NODE_MAP)
        n = bd_node_get(parent, last);
    else if (parent && parent->kind == BD_NODE_SEQ && index_of(last, parent->n, &i))
        n = parent->kids[i];
    if (parent)
        free(last);
    return n;
}

/* Detaches and returns the node at ptr, or NULL. */
static struct bd_node *take(struct bd_node *root, const char *ptr)
{
    char *last;
    struct bd_node *parent = resolve_parent(root, ptr, &last);
    struct bd_node *n = NULL;
    size_t i;
    if (!parent)
        return NULL;
    if (parent->kind == BD_NODE_MAP) {
        for (i = 0; i < parent->n; i++)
            if (!strcmp(parent->kids[2 * i]->str, last)) {
                n = parent->kids[2 * i + 1];
                bd_node_free(parent->kids[2 * i]);
                memmove(&parent->kids[2 * i], &parent->kids[2 * i + 2],
                        (parent->n - i - 1) * 2 * sizeof *parent->kids);
                parent->n--;
                break;
            }
    } else if (parent->kind == BD_NODE_SEQ && index_of(last, parent->n, &i)) {
        n = parent->kids[i];
        memmove(&parent->kids[i], &parent->kids[i + 1], (parent->n - i - 1) * sizeof *parent->kids);
        parent->n--;
    }
    free(last);
    return n;
}

/* add: sets a key, or inserts into a list ("-" appends). Takes val. */
static int add(const struct op_ctx *c, struct bd_node *root, const char *ptr, struct bd_node *val)
{
    char *last;
    struct bd_node *parent = resolve_parent(root, ptr, &last);
    if (!parent) {
        bd_node_free(val);
        return op_fail(c, "the path's parent does not exist");
    }
    int rc = 0;
    size_t i;
    if (parent->kind == BD_NODE_MAP) {
        bd_node_map_set(parent, last, val);
    } else if (parent->kind == BD_NODE_SEQ &&
               (!strcmp(last, "-") || (index_of(last, (size_t)-1, &i) && i <= parent->n))) {
        size_t at = !strcmp(last, "-") ? parent->n : i;
        bd_node_seq_push(parent, val);
        memmove(&parent->kids[at + 1], &parent->kids[at], (parent->n - 1 - at) * sizeof *parent->kids);
        parent->kids[at] = val;
    } else {
        bd_node_free(val);
        rc = op_fail(c, "\"%s\" is not a place in a %s", last, bd_node_kind_name(parent));
    }
    free(last);
    return rc;
}

static bool json_equal(const struct bd_node *a, const struct bd_node *b)
{
    cJSON *ja = bd_node_to_json(a), *jb = bd_node_to_json(b);
    bool eq = cJSON_Compare(ja, jb, true);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return eq;
}

static int apply_op(const struct op_ctx *c, struct bd_node *root, const struct bd_node *op)
{
    const struct bd_node *value = bd_node_get(op, "value");
    const char *from = talos_tree_str_at(op, "from");
    if (!c->path[0])
        return op_fail(c, "bootd does not replace the whole v1alpha1 document; patch its keys");
    if (!strcmp(c->op, "add"))
        return add(c, root, c->path, bd_node_clone(value));
    if (!strcmp(c->op, "remove") || !strcmp(c->op, "replace")) {
        struct bd_node *old = take(root, c->path);
        if (!old)
            return op_fail(c, "nothing there to %s", c->op);
        bd_node_free(old);
        return strcmp(c->op, "replace") ? 0 : add(c, root, c->path, bd_node_clone(value));
    }
    if (!strcmp(c->op, "test")) {
        struct bd_node *have = get(root, c->path);
        if (!have)
            return op_fail(c, "test failed: nothing there");
        return json_equal(have, value) ? 0 : op_fail(c, "test failed: the value differs");
    }
    /* move, copy */
    if (!strcmp(c->op, "move") && !strncmp(c->path, from, strlen(from)) &&
        (c->path[strlen(from)] == '/' || !c->path[strlen(from)]))
        return op_fail(c, "cannot move %s into itself", from);
    struct bd_node *src = !strcmp(c->op, "move") ? take(root, from) : get(root, from);
    if (!src)
        return op_fail(c, "from %s: nothing there", from);
    return add(c, root, c->path, !strcmp(c->op, "move") ? src : bd_node_clone(src));
}

int talos_patch_json_apply(struct bd_node **root, const struct bd_node *ops, const char *file,
                     struct bd_err *err)
{
    for (size_t i = 0; i < ops->n; i++) {
        const struct bd_node *op = ops->kids[i];
        struct op_ctx c = {.file = file, .index = i, .op = talos_tree_str_at(op, "op"),
                           .path = talos_tree_str_at(op, "path"), .err = err};
        if (apply_op(&c, *root, op) < 0)
            return -1;
    }
    return 0;
}
