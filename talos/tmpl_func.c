/* The functions template patches may call, with the behaviour Terraform's functions
 * of the same names document: indent, jsonencode, yamlencode, trimspace, join, lower,
 * upper, replace, coalesce, plus tostring and length. */
#include "internal.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call {
    const struct tmpl *t;
    const struct tx *x;
    struct tv **args;
    struct bd_arena *a;
    struct bd_err *err;
};

static struct tv *fail(const struct call *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct tv *fail(const struct call *c, size_t at, const char *fmt, ...)
{
    char where[300], msg[600];
    talos_tmpl_where(c->t, at, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bd_err_set(c->err, "%s: %s(): %s", where, c->x->name, msg);
    return NULL;
}

/* Argument i as a string (numbers and bools convert, as Terraform converts them). */
static const char *str_arg(const struct call *c, size_t i, char num[32])
{
    const struct tv *v = c->args[i];
    size_t at = c->x->args[i]->at;
    if (v->k == TV_STR)
        return v->s;
    if (v->k == TV_NUM) {
        talos_tv_format_number(v->num, num);
        return num;
    }
    if (v->k == TV_BOOL)
        return v->b ? "true" : "false";
    fail(c, at, "argument %zu must be a string, not %s", i + 1, talos_tv_kind_name(v));
    return NULL;
}

static struct tv *from_buf(const struct call *c, struct bd_buf *b)
{
    struct tv *v = talos_tv_str(c->a, b->data ? b->data : "", b->len);
    bd_buf_free(b);
    return v;
}

static struct tv *fn_indent(const struct call *c)
{
    char num[32];
    const struct tv *n = c->args[0];
    if (n->k != TV_NUM || n->num < 0 || n->num > 1024 || n->num != (long)n->num)
        return fail(c, c->x->args[0]->at, "the first argument is a number of spaces");
    const char *s = str_arg(c, 1, num);
    if (!s)
        return NULL;
    /* every line but the first gets the spaces, empty lines included */
    struct bd_buf b;
    bd_buf_init(&b);
    for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        bd_buf_append(&b, s, (size_t)(nl - s + 1));
        bd_buf_printf(&b, "%*s", (int)n->num, "");
    }
    bd_buf_puts(&b, s);
    return from_buf(c, &b);
}

static struct tv *fn_jsonencode(const struct call *c)
{
    struct bd_buf b;
    bd_buf_init(&b);
    talos_tv_json(&b, c->args[0]);
    return from_buf(c, &b);
}

static struct tv *fn_yamlencode(const struct call *c)
{
    struct bd_buf b;
    bd_buf_init(&b);
    talos_tv_yaml(&b, c->args[0]);
    return from_buf(c, &b);
}

static struct tv *fn_trimspace(const struct call *c)
{
    char num[32];
    const char *s = str_arg(c, 0, num);
    if (!s)
        return NULL;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    while (len && isspace((unsigned char)*s))
        s++, len--;
    return talos_tv_str(c->a, s, len);
}

static struct tv *fn_case(const struct call *c, int (*conv)(int))
{
    char num[32];
    const char *s = str_arg(c, 0, num);
    if (!s)
        return NULL;
    struct tv *v = talos_tv_str(c->a, s, strlen(s));
    for (char *p = (char *)v->s; *p; p++)
        *p = (char)conv((unsigned char)*p);
    return v;
}

static struct tv *fn_lower(const struct call *c)
{
    return fn_case(c, tolower);
}

static struct tv *fn_upper(const struct call *c)
{
    return fn_case(c, toupper);
}

static struct tv *fn_join(const struct call *c)
{
    char num[32];
    const char *sep = str_arg(c, 0, num);
    if (!sep)
        return NULL;
    sep = bd_arena_strdup(c->a, sep);
    struct bd_buf b;
    bd_buf_init(&b);
    size_t count = 0;
    for (size_t i = 1; i < c->x->n; i++) {
        const struct tv *l = c->args[i];
        if (l->k != TV_LIST) {
            bd_buf_free(&b);
            return fail(c, c->x->args[i]->at, "argument %zu must be a list, not %s", i + 1,
                        talos_tv_kind_name(l));
        }
        for (size_t j = 0; j < l->n; j++) {
            const struct tv *item = l->items[j];
            if (item->k == TV_NULL || item->k == TV_LIST || item->k == TV_MAP) {
                bd_buf_free(&b);
                return fail(c, c->x->args[i]->at, "element %zu of the list is %s%s, not a string", j,
                            item->k == TV_NULL ? "" : "a ", talos_tv_kind_name(item));
            }
            if (count++)
                bd_buf_puts(&b, sep);
            if (item->k == TV_STR) {
                bd_buf_append(&b, item->s, item->len);
            } else if (item->k == TV_NUM) {
                talos_tv_format_number(item->num, num);
                bd_buf_puts(&b, num);
            } else {
                bd_buf_puts(&b, item->b ? "true" : "false");
            }
        }
    }
    return from_buf(c, &b);
}

/* replace(s, "/re/", rep): a regular expression (POSIX extended here, where Terraform
 * has RE2; $1 and ${1} name groups in rep). */
static struct tv *replace_regex(const struct call *c, const char *s, const char *re, size_t relen,
                                const char *rep)
{
    char *pattern = bd_xstrndup(re, relen);
    regex_t rx;
    int rc = regcomp(&rx, pattern, REG_EXTENDED);
    free(pattern);
    if (rc != 0)
        return fail(c, c->x->args[1]->at, "the regular expression does not compile");
    struct bd_buf b;
    bd_buf_init(&b);
    regmatch_t m[10];
    int flags = 0;
    while (*s && regexec(&rx, s, 10, m, flags) == 0) {
        bd_buf_append(&b, s, (size_t)m[0].rm_so);
        for (const char *r = rep; *r; r++) {
            int g = -1;
            if (r[0] == '$' && r[1] >= '0' && r[1] <= '9') {
                g = r[1] - '0';
                r++;
            } else if (r[0] == '$' && r[1] == '{' && r[2] >= '0' && r[2] <= '9' && r[3] == '}') {
                g = r[2] - '0';
                r += 3;
            }
            if (g < 0)
                bd_buf_append(&b, r, 1);
            else if (m[g].rm_so >= 0)
                bd_buf_append(&b, s + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
        }
        size_t adv = (size_t)m[0].rm_eo;
        if (adv == 0) { /* an empty match: keep one character and move on */
            bd_buf_append(&b, s, 1);
            adv = 1;
        }
        s += adv;
        flags = REG_NOTBOL;
    }
    bd_buf_puts(&b, s);
    regfree(&rx);
    return from_buf(c, &b);
}

static struct tv *fn_replace(const struct call *c)
{
    char n0[32], n1[32], n2[32];
    const char *s = str_arg(c, 0, n0), *sub = str_arg(c, 1, n1), *rep = str_arg(c, 2, n2);
    if (!s || !sub || !rep)
        return NULL;
    size_t sublen = strlen(sub);
    if (sublen > 2 && sub[0] == '/' && sub[sublen - 1] == '/')
        return replace_regex(c, s, sub + 1, sublen - 2, rep);
    struct bd_buf b;
    bd_buf_init(&b);
    for (const char *at; sublen && (at = strstr(s, sub)); s = at + sublen) {
        bd_buf_append(&b, s, (size_t)(at - s));
        bd_buf_puts(&b, rep);
    }
    bd_buf_puts(&b, s);
    return from_buf(c, &b);
}

static struct tv *fn_coalesce(const struct call *c)
{
    for (size_t i = 0; i < c->x->n; i++) {
        struct tv *v = c->args[i];
        if (v->k != TV_NULL && !(v->k == TV_STR && v->len == 0))
            return v;
    }
    return fail(c, c->x->at, "no non-null, non-empty-string arguments");
}

static struct tv *fn_tostring(const struct call *c)
{
    char num[32];
    if (c->args[0]->k == TV_NULL)
        return c->args[0];
    const char *s = str_arg(c, 0, num);
    return s ? talos_tv_str(c->a, s, strlen(s)) : NULL;
}

static struct tv *fn_length(const struct call *c)
{
    const struct tv *v = c->args[0];
    if (v->k == TV_STR) {
        size_t n = 0; /* characters, not bytes */
        for (size_t i = 0; i < v->len; i++)
            n += ((unsigned char)v->s[i] & 0xc0) != 0x80;
        return talos_tv_num(c->a, (double)n);
    }
    if (v->k == TV_LIST || v->k == TV_MAP)
        return talos_tv_num(c->a, (double)v->n);
    return fail(c, c->x->args[0]->at, "needs a string, list or map, not %s", talos_tv_kind_name(v));
}

static const struct fn {
    const char *name;
    int min, max;   /* arguments; max -1 = any number */
    bool takes_null; /* Terraform refuses null arguments to the others */
    struct tv *(*run)(const struct call *c);
} fns[] = {
    {"coalesce", 1, -1, true, fn_coalesce},     {"indent", 2, 2, false, fn_indent},
    {"join", 2, -1, false, fn_join},            {"jsonencode", 1, 1, true, fn_jsonencode},
    {"length", 1, 1, false, fn_length},         {"lower", 1, 1, false, fn_lower},
    {"replace", 3, 3, false, fn_replace},       {"tostring", 1, 1, true, fn_tostring},
    {"trimspace", 1, 1, false, fn_trimspace},   {"upper", 1, 1, false, fn_upper},
    {"yamlencode", 1, 1, true, fn_yamlencode},
};
#define NFNS (sizeof fns / sizeof fns[0])

struct tv *talos_tmpl_call(const struct tmpl *t, const struct tx *x, struct tv **args,
                     struct bd_arena *a, struct bd_err *err)
{
    /* in the arena, not on the stack: results may point into what the call holds */
    struct call *c = bd_arena_alloc(a, sizeof *c);
    *c = (struct call){.t = t, .x = x, .args = args, .a = a, .err = err};
    for (size_t i = 0; i < NFNS; i++) {
        if (strcmp(fns[i].name, x->name))
            continue;
        if ((int)x->n < fns[i].min || (fns[i].max >= 0 && (int)x->n > fns[i].max))
            return fail(c, x->at, "takes %d%s argument%s, not %zu", fns[i].min,
                        fns[i].max < 0 ? " or more" : "", fns[i].min == 1 && fns[i].max == 1 ? "" : "s",
                        x->n);
        for (size_t j = 0; j < x->n && !fns[i].takes_null; j++)
            if (args[j]->k == TV_NULL)
                return fail(c, x->args[j]->at, "argument %zu must not be null", j + 1);
        return fns[i].run(c);
    }
    struct bd_buf names;
    bd_buf_init(&names);
    for (size_t i = 0; i < NFNS; i++)
        bd_buf_printf(&names, "%s%s", i ? ", " : "", fns[i].name);
    char where[300];
    talos_tmpl_where(t, x->at, where, sizeof where);
    bd_err_set(err, "%s: there is no function %s() in bootd's templates (there are %s)", where,
               x->name, names.data);
    bd_buf_free(&names);
    return NULL;
}
