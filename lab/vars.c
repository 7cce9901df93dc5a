/* vars: template variables for *.tftpl patches (lab-wide, per role, per machine). Any
 * YAML value goes, as Terraform's templatefile() takes any value; names are template
 * identifiers. The tree is copied into the lab's arena, so it lives and dies with the
 * lab like every other field. */
#include "internal.h"

#include <ctype.h>
#include <string.h>

static struct bd_node *arena_clone(struct bd_arena *a, const struct bd_node *n)
{
    struct bd_node *c = bd_arena_alloc(a, sizeof *c);
    c->kind = n->kind;
    c->line = n->line;
    c->col = n->col;
    c->plain = n->plain;
    c->str = n->str ? bd_arena_strdup(a, n->str) : NULL;
    size_t k = n->kind == BD_NODE_MAP ? 2 * n->n : n->kind == BD_NODE_SEQ ? n->n : 0;
    if (k) {
        c->kids = bd_arena_alloc(a, k * sizeof *c->kids);
        for (size_t i = 0; i < k; i++)
            c->kids[i] = arena_clone(a, n->kids[i]);
    }
    c->n = n->n;
    c->cap = k;
    return c;
}

/* A name a template can write as ${name}: HCL identifier characters. */
static bool var_name_ok(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
            return false;
    return true;
}

int lab_decode_vars(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    if (n->kind != BD_NODE_MAP)
        return lab_fail(c, n, "expected a mapping of name: value, got %s", bd_node_kind_name(n));
    for (size_t i = 0; i < n->n; i++) {
        const struct bd_node *k = n->kids[2 * i];
        if (!var_name_ok(k->str)) {
            size_t old = lab_path_push(c, ".%s", k->str);
            int rc = lab_fail(c, k, "\"%s\" is not a template variable name (letters, digits, _ "
                                    "and -, not starting with a digit)",
                              k->str);
            lab_path_pop(c, old);
            return rc;
        }
    }
    *(const struct bd_node **)dst = arena_clone(&c->lab->arena, n);
    return 0;
}
