/* Rendering a parsed template with its variables, by Terraform's rules: an
 * interpolation must give a string, number or bool (null and collections are errors),
 * an if's condition a bool, a for walks a list in order or a map in key order; a
 * variable the template names but nobody set is an error, not an empty string. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Variables in scope: the template's, then for-loop variables on top. */
struct scope {
    const char *name;
    struct tv *value;
    const struct scope *up;
};

struct ev {
    const struct tmpl *t;
    struct bd_arena *a;
    size_t nvars;
    const char *const *names;
    struct tv *const *values;
    struct bd_err *err;
};

static void *fail(struct ev *e, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *fail(struct ev *e, size_t at, const char *fmt, ...)
{
    char where[300], msg[700];
    talos_tmpl_where(e->t, at, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bd_err_set(e->err, "%s: %s", where, msg);
    return NULL;
}

static struct tv *lookup(struct ev *e, const struct scope *sc, const struct tx *x)
{
    for (; sc; sc = sc->up)
        if (!strcmp(sc->name, x->name))
            return sc->value;
    for (size_t i = e->nvars; i-- > 0;) /* a later definition wins */
        if (!strcmp(e->names[i], x->name))
            return e->values[i];
    struct bd_buf known;
    bd_buf_init(&known);
    for (size_t i = 0; i < e->nvars; i++) {
        bool again = false; /* each name once */
        for (size_t j = 0; j < i && !again; j++)
            again = !strcmp(e->names[j], e->names[i]);
        if (!again)
            bd_buf_printf(&known, "%s%s", known.len ? ", " : "", e->names[i]);
    }
    fail(e, x->at, "no variable \"%s\" (there are: %s; add it to vars in lab.yaml)", x->name,
         known.data ? known.data : "none");
    bd_buf_free(&known);
    return NULL;
}

static struct tv *eval(struct ev *e, const struct scope *sc, const struct tx *x);
static int render(struct ev *e, const struct scope *sc, const struct tn *n, struct bd_buf *out);

static bool equal(const struct tv *a, const struct tv *b)
{
    if (a->k != b->k)
        return false;
    switch (a->k) {
    case TV_NULL: return true;
    case TV_BOOL: return a->b == b->b;
    case TV_NUM: return a->num == b->num;
    case TV_STR: return a->len == b->len && !memcmp(a->s, b->s, a->len);
    default:
        if (a->n != b->n)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if ((a->k == TV_MAP && strcmp(a->keys[i], b->keys[i])) ||
                !equal(a->items[i], b->items[i]))
                return false;
        return true;
    }
}

/* Terraform converts "true"/"false" strings to bool and numeric strings to numbers
 * where an operator needs them. */
static bool want_bool(struct ev *e, const struct tv *v, size_t at, const char *what, bool *out)
{
    if (v->k == TV_BOOL) {
        *out = v->b;
        return true;
    }
    if (v->k == TV_STR && (!strcmp(v->s, "true") || !strcmp(v->s, "false"))) {
        *out = v->s[0] == 't';
        return true;
    }
    fail(e, at, "%s must be a bool, but it is %s%s", what, v->k == TV_NULL ? "" : "a ",
         talos_tv_kind_name(v));
    return false;
}

static bool want_num(struct ev *e, const struct tv *v, size_t at, double *out)
{
    char *end;
    if (v->k == TV_NUM) {
        *out = v->num;
        return true;
    }
    if (v->k == TV_STR && v->len && (*out = strtod(v->s, &end), !*end))
        return true;
    fail(e, at, "a number is required here, but this is %s%s", v->k == TV_NULL ? "" : "a ",
         talos_tv_kind_name(v));
    return false;
}

static struct tv *binary(struct ev *e, const struct scope *sc, const struct tx *x)
{
    struct tv *a = eval(e, sc, x->a);
    if (!a)
        return NULL;
    bool ab, bb;
    if (x->op == OP_OR || x->op == OP_AND) {
        if (!want_bool(e, a, x->a->at, "an operand of || and &&", &ab))
            return NULL;
        /* both sides are evaluated in HCL too: no short circuit around errors */
        struct tv *b = eval(e, sc, x->b);
        if (!b || !want_bool(e, b, x->b->at, "an operand of || and &&", &bb))
            return NULL;
        return talos_tv_bool(e->a, x->op == OP_OR ? ab || bb : ab && bb);
    }
    struct tv *b = eval(e, sc, x->b);
    if (!b)
        return NULL;
    if (x->op == OP_EQ || x->op == OP_NE)
        return talos_tv_bool(e->a, equal(a, b) == (x->op == OP_EQ));
    double n, m;
    if (!want_num(e, a, x->a->at, &n) || !want_num(e, b, x->b->at, &m))
        return NULL;
    switch (x->op) {
    case OP_LT: return talos_tv_bool(e->a, n < m);
    case OP_LE: return talos_tv_bool(e->a, n <= m);
    case OP_GT: return talos_tv_bool(e->a, n > m);
    case OP_GE: return talos_tv_bool(e->a, n >= m);
    case OP_ADD: return talos_tv_num(e->a, n + m);
    case OP_SUB: return talos_tv_num(e->a, n - m);
    case OP_MUL: return talos_tv_num(e->a, n * m);
    case OP_DIV:
        if (m == 0)
            return fail(e, x->at, "division by zero");
        return talos_tv_num(e->a, n / m);
    default:
        if (m == 0)
            return fail(e, x->at, "modulo by zero");
        /* integers in practice (HCL's % is for whole numbers); no libm for that */
        return talos_tv_num(e->a, n - m * (double)(long long)(n / m));
    }
}

/* [for ...] and {for ...}: over a list in order or a map in key order, as %{ for }. */
static struct tv *for_expr(struct ev *e, const struct scope *sc, const struct tx *x)
{
    struct tv *coll = eval(e, sc, x->a);
    if (!coll)
        return NULL;
    if (coll->k != TV_LIST && coll->k != TV_MAP)
        return fail(e, x->a->at, "a for expression walks a list or a map, not %s%s",
                    coll->k == TV_NULL ? "" : "a ", talos_tv_kind_name(coll));
    struct tv *out = talos_tv_new(e->a, x->k == TX_FOR_OBJECT ? TV_MAP : TV_LIST);
    for (size_t i = 0; i < coll->n; i++) {
        struct tv *key = coll->k == TV_MAP ? talos_tv_str(e->a, coll->keys[i], strlen(coll->keys[i]))
                                           : talos_tv_num(e->a, (double)i);
        struct scope kv = {.name = x->key_var, .value = key, .up = sc};
        struct scope val = {.name = x->val_var, .value = coll->items[i],
                            .up = x->key_var ? &kv : sc};
        bool keep = true;
        struct tv *c, *v, *k = NULL;
        if (x->c && (!(c = eval(e, &val, x->c)) || !want_bool(e, c, x->c->at, "a for expression's if", &keep)))
            return NULL;
        if (!keep)
            continue;
        if (!(v = eval(e, &val, x->b)) || (x->d && !(k = eval(e, &val, x->d))))
            return NULL;
        if (k && k->k != TV_STR)
            return fail(e, x->d->at, "a key must be a string, not %s", talos_tv_kind_name(k));
        if (k && talos_tv_get(out, k->s))
            return fail(e, x->d->at, "the key \"%s\" comes twice", k->s);
        talos_tv_push(e->a, out, k ? k->s : NULL, v);
    }
    if (out->k == TV_MAP)
        talos_tv_sort_map(out);
    return out;
}

static struct tv *index_of(struct ev *e, const struct tx *x, struct tv *coll, struct tv *key)
{
    if (coll->k == TV_NULL)
        return fail(e, x->at, "cannot index a null value");
    if (coll->k == TV_LIST) {
        double i;
        if (!want_num(e, key, x->at, &i))
            return NULL;
        if (i < 0 || i >= (double)coll->n || i != (double)(size_t)i)
            return fail(e, x->at, "index %g is out of range: the list has %zu elements", i, coll->n);
        return coll->items[(size_t)i];
    }
    if (coll->k == TV_MAP) {
        char num[32];
        const char *k = key->k == TV_STR ? key->s : NULL;
        if (key->k == TV_NUM) {
            talos_tv_format_number(key->num, num);
            k = num;
        }
        if (!k)
            return fail(e, x->at, "a map key must be a string, not %s", talos_tv_kind_name(key));
        const struct tv *v = talos_tv_get(coll, k);
        if (!v)
            return fail(e, x->at, "the map has no element \"%s\"", k);
        return (struct tv *)v;
    }
    return fail(e, x->at, "a %s cannot be indexed", talos_tv_kind_name(coll));
}

static struct tv *eval(struct ev *e, const struct scope *sc, const struct tx *x)
{
    struct tv *v, *w;
    bool b;
    double n;
    switch (x->k) {
    case TX_LIT: return x->lit;
    case TX_VAR: return lookup(e, sc, x);
    case TX_ATTR:
        if (!(v = eval(e, sc, x->a)))
            return NULL;
        if (v->k != TV_MAP)
            return fail(e, x->at, "cannot read .%s of a %s", x->name, talos_tv_kind_name(v));
        if (!(w = (struct tv *)talos_tv_get(v, x->name)))
            return fail(e, x->at, "the map has no attribute \"%s\"", x->name);
        return w;
    case TX_INDEX:
        if (!(v = eval(e, sc, x->a)) || !(w = eval(e, sc, x->b)))
            return NULL;
        return index_of(e, x, v, w);
    case TX_CALL: {
        struct tv **args = bd_arena_alloc(e->a, (x->n + 1) * sizeof *args);
        for (size_t i = 0; i < x->n; i++)
            if (!(args[i] = eval(e, sc, x->args[i])))
                return NULL;
        return talos_tmpl_call(e->t, x, args, e->a, e->err);
    }
    case TX_TUPLE:
        v = talos_tv_new(e->a, TV_LIST);
        for (size_t i = 0; i < x->n; i++) {
            if (!(w = eval(e, sc, x->args[i])))
                return NULL;
            talos_tv_push(e->a, v, NULL, w);
        }
        return v;
    case TX_OBJECT:
        v = talos_tv_new(e->a, TV_MAP);
        for (size_t i = 0; i < x->n; i++) {
            struct tv *k = eval(e, sc, x->keys[i]);
            if (!k)
                return NULL;
            if (k->k != TV_STR)
                return fail(e, x->keys[i]->at, "an object key must be a string");
            if (!(w = eval(e, sc, x->args[i])))
                return NULL;
            talos_tv_push(e->a, v, k->s, w);
        }
        talos_tv_sort_map(v);
        return v;
    case TX_NOT:
        if (!(v = eval(e, sc, x->a)) || !want_bool(e, v, x->a->at, "the operand of !", &b))
            return NULL;
        return talos_tv_bool(e->a, !b);
    case TX_NEG:
        if (!(v = eval(e, sc, x->a)) || !want_num(e, v, x->a->at, &n))
            return NULL;
        return talos_tv_num(e->a, -n);
    case TX_BINARY: return binary(e, sc, x);
    case TX_COND:
        if (!(v = eval(e, sc, x->a)) || !want_bool(e, v, x->a->at, "a condition", &b))
            return NULL;
        return eval(e, sc, b ? x->b : x->c);
    case TX_FOR_TUPLE:
    case TX_FOR_OBJECT:
        return for_expr(e, sc, x);
    case TX_TEMPLATE: {
        struct bd_buf out;
        bd_buf_init(&out);
        int rc = render(e, sc, x->body, &out);
        v = rc < 0 ? NULL : talos_tv_str(e->a, out.data ? out.data : "", out.len);
        bd_buf_free(&out);
        return v;
    }
    }
    return NULL;
}

/* An interpolation's result as text; x names what gave it, for messages. */
static int interpolate(struct ev *e, const struct tv *v, const struct tx *x, struct bd_buf *out)
{
    size_t at = x->at;
    char what[160] = "the expression";
    if (x->k == TX_VAR)
        snprintf(what, sizeof what, "\"%s\"", x->name);
    char num[32];
    switch (v->k) {
    case TV_STR: bd_buf_append(out, v->s, v->len); return 0;
    case TV_NUM:
        talos_tv_format_number(v->num, num);
        bd_buf_puts(out, num);
        return 0;
    case TV_BOOL: bd_buf_puts(out, v->b ? "true" : "false"); return 0;
    case TV_NULL:
        fail(e, at, "%s is null, which cannot go into the text (set it in lab.yaml, test it "
                    "with %%{ if x != null } or give a default with coalesce())",
             what);
        return -1;
    default:
        fail(e, at, "%s is a %s, which cannot go into the text as it is; use jsonencode() or "
                    "yamlencode()",
             what, talos_tv_kind_name(v));
        return -1;
    }
}

static int render(struct ev *e, const struct scope *sc, const struct tn *n, struct bd_buf *out)
{
    for (; n; n = n->next) {
        struct tv *v;
        bool b;
        switch (n->k) {
        case TN_TEXT: bd_buf_append(out, n->text, n->len); break;
        case TN_INTERP:
            if (!(v = eval(e, sc, n->e)) || interpolate(e, v, n->e, out) < 0)
                return -1;
            break;
        case TN_IF:
            if (!(v = eval(e, sc, n->e)) || !want_bool(e, v, n->e->at, "an if condition", &b))
                return -1;
            if (render(e, sc, b ? n->body : n->els, out) < 0)
                return -1;
            break;
        case TN_FOR:
            if (!(v = eval(e, sc, n->e)))
                return -1;
            if (v->k != TV_LIST && v->k != TV_MAP) {
                fail(e, n->e->at, "a for directive walks a list or a map, not %s%s",
                     v->k == TV_NULL ? "" : "a ", talos_tv_kind_name(v));
                return -1;
            }
            for (size_t i = 0; i < v->n; i++) {
                struct tv *key = v->k == TV_MAP ? talos_tv_str(e->a, v->keys[i], strlen(v->keys[i]))
                                                : talos_tv_num(e->a, (double)i);
                struct scope kv = {.name = n->key_var, .value = key, .up = sc};
                struct scope val = {.name = n->val_var, .value = v->items[i],
                                    .up = n->key_var ? &kv : sc};
                if (render(e, &val, n->body, out) < 0)
                    return -1;
            }
            break;
        }
    }
    return 0;
}

int talos_tmpl_render(const struct tmpl *t, size_t nvars, const char *const *names,
                struct tv *const *values, struct bd_arena *a, struct bd_buf *out,
                struct bd_err *err)
{
    struct ev e = {.t = t, .a = a, .nvars = nvars, .names = names, .values = values, .err = err};
    return render(&e, NULL, t->body, out);
}
