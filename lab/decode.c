/* Generic decoding of YAML mappings into the lab structs, driven by field tables, so
 * every field gets the same checks and the same file:line: field messages. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lab_fail(struct lab_ctx *c, const struct bd_node *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *path = c->path[0] == '.' ? c->path + 1 : c->path;
    if (n)
        return bd_err_set(c->err, "%s:%d:%d: %s%s%s", c->file, n->line, n->col, path,
                          *path ? ": " : "", msg);
    return bd_err_set(c->err, "%s: %s%s%s", c->file, path, *path ? ": " : "", msg);
}

size_t lab_path_push(struct lab_ctx *c, const char *fmt, ...)
{
    size_t old = strlen(c->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->path + old, sizeof c->path - old, fmt, ap);
    va_end(ap);
    return old;
}

void lab_path_pop(struct lab_ctx *c, size_t len)
{
    c->path[len] = 0;
}

const char *lab_scalar(struct lab_ctx *c, const struct bd_node *n, const char *what)
{
    if (n->kind != BD_NODE_SCALAR || bd_node_is_null(n)) {
        lab_fail(c, n, "expected %s, got %s", what, bd_node_kind_name(n));
        return NULL;
    }
    return n->str;
}

/* Levenshtein distance, for "did you mean" hints on misspelt keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

static int unknown_key(struct lab_ctx *c, const struct bd_node *key,
                       const struct lab_field *fields)
{
    const char *best = NULL;
    size_t best_d = 3;
    struct bd_buf known;
    bd_buf_init(&known);
    for (const struct lab_field *f = fields; f->key; f++) {
        size_t d = edit_distance(key->str, f->key);
        if (d < best_d) {
            best_d = d;
            best = f->key;
        }
        bd_buf_printf(&known, "%s%s", known.len ? ", " : "", f->key);
    }
    size_t old = lab_path_push(c, ".%s", key->str);
    if (best)
        lab_fail(c, key, "unknown key (did you mean \"%s\"?)", best);
    else
        lab_fail(c, key, "unknown key; known keys here: %s", known.data);
    lab_path_pop(c, old);
    bd_buf_free(&known);
    return -1;
}

static int decode_bool(struct lab_ctx *c, const struct bd_node *n, bool *out)
{
    const char *s = lab_scalar(c, n, "true or false");
    if (!s)
        return -1;
    if (n->plain && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
        *out = true;
        return 0;
    }
    if (n->plain && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
        *out = false;
        return 0;
    }
    return lab_fail(c, n, "expected true or false, got \"%s\"", s);
}

static int decode_int(struct lab_ctx *c, const struct bd_node *n, long lo, long hi, int *out)
{
    const char *s = lab_scalar(c, n, "a whole number");
    if (!s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (!n->plain || !*s || *end || !(isdigit((unsigned char)s[0]) || s[0] == '-'))
        return lab_fail(c, n, "expected a whole number, got \"%s\"", s);
    if (v < lo || v > hi)
        return lab_fail(c, n, "%ld is out of range (%ld..%ld)", v, lo, hi);
    *out = (int)v;
    return 0;
}

int lab_int(struct lab_ctx *c, const struct bd_node *n, long lo, long hi, int *out)
{
    return decode_int(c, n, lo, hi, out);
}

static int decode_ipv4(struct lab_ctx *c, const struct bd_node *n, uint32_t *out)
{
    const char *s = lab_scalar(c, n, "an IPv4 address");
    if (!s)
        return -1;
    if (bd_ipv4_parse(s, out) < 0)
        return lab_fail(c, n, "\"%s\" is not an IPv4 address (e.g. 192.0.2.10)", s);
    return 0;
}

static int decode_strlist(struct lab_ctx *c, const struct bd_node *n, struct lab_strlist *out,
                          enum lab_ftype type)
{
    if (bd_node_is_null(n))
        return 0;
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list, got %s", bd_node_kind_name(n));
    out->n = n->n;
    out->v = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof(char *));
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        const char *s = lab_scalar(c, n->kids[i], "a string");
        if (!s)
            return -1;
        if (type == T_PATHLIST) {
            char *p = bd_path_join(c->dir, s);
            out->v[i] = bd_arena_strdup(&c->lab->arena, p);
            free(p);
        } else {
            if (type == T_KARGS) {
                if (!*s || strpbrk(s, " \t\n\"'$"))
                    return lab_fail(c, n->kids[i],
                                    "\"%s\": one kernel argument per item, without spaces, quotes or $",
                                    s);
                if (!strncmp(s, "talos.config=", 13))
                    return lab_fail(c, n->kids[i],
                                    "talos.config is set by bootd (a per-boot token URL); remove it");
            }
            out->v[i] = bd_arena_strdup(&c->lab->arena, s);
        }
        lab_path_pop(c, old);
    }
    return 0;
}

static int decode_labels(struct lab_ctx *c, const struct bd_node *n, struct lab_kvlist *out)
{
    if (bd_node_is_null(n))
        return 0;
    if (n->kind != BD_NODE_MAP)
        return lab_fail(c, n, "expected a mapping of label: value, got %s", bd_node_kind_name(n));
    out->n = n->n;
    out->v = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof *out->v);
    for (size_t i = 0; i < n->n; i++) {
        const struct bd_node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        size_t old = lab_path_push(c, ".%s", k->str);
        if (!bd_k8s_label_key_ok(k->str))
            return lab_fail(c, k, "\"%s\" is not a valid Kubernetes label key", k->str);
        const char *val = bd_node_is_null(v) ? "" : lab_scalar(c, v, "a string");
        if (!val)
            return -1;
        if (!bd_k8s_label_value_ok(val))
            return lab_fail(c, v, "\"%s\" is not a valid Kubernetes label value", val);
        out->v[i].key = bd_arena_strdup(&c->lab->arena, k->str);
        out->v[i].value = bd_arena_strdup(&c->lab->arena, val);
        lab_path_pop(c, old);
    }
    return 0;
}

static int decode_field(struct lab_ctx *c, const struct lab_field *f, const struct bd_node *n,
                        void *base)
{
    void *dst = (char *)base + f->off;
    struct bd_arena *A = &c->lab->arena;
    const char *s;
    switch (f->type) {
    case T_STR:
    case T_NAME:
    case T_DNSNAME:
    case T_URL:
    case T_PATH:
    case T_UUID:
        if (!(s = lab_scalar(c, n, "a string")))
            return -1;
        if (!*s)
            return lab_fail(c, n, "must not be empty");
        if (f->type == T_NAME && !bd_dns_label_ok(s))
            return lab_fail(c, n,
                            "\"%s\" is not a valid name (lower-case letters, digits and '-', "
                            "at most 63, no leading or trailing '-')",
                            s);
        if (f->type == T_DNSNAME && !bd_dns_name_ok(s))
            return lab_fail(c, n, "\"%s\" is not a valid DNS name", s);
        if (f->type == T_URL) {
            struct bd_err e;
            if (bd_url_check(s, f->aux, &e) < 0)
                return lab_fail(c, n, "%s", e.msg);
        }
        if (f->type == T_UUID) {
            char lower[37];
            size_t len = strlen(s);
            bool ok = len == 36;
            for (size_t i = 0; ok && i < len; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                ok = dash ? s[i] == '-' : isxdigit((unsigned char)s[i]) != 0;
                lower[i] = (char)tolower((unsigned char)s[i]);
            }
            if (!ok)
                return lab_fail(c, n, "\"%s\" is not a UUID (8-4-4-4-12 hex digits)", s);
            lower[36] = 0;
            *(char **)dst = bd_arena_strdup(A, lower);
            break;
        }
        if (f->type == T_PATH) {
            char *p = bd_path_join(c->dir, s);
            *(char **)dst = bd_arena_strdup(A, p);
            free(p);
            break;
        }
        *(char **)dst = bd_arena_strdup(A, s);
        break;
    case T_INT:
        return decode_int(c, n, 0, 1L << 30, dst);
    case T_PORT:
        return decode_int(c, n, 0, 65535, dst);
    case T_BOOL:
        return decode_bool(c, n, dst);
    case T_MAC:
        if (!(s = lab_scalar(c, n, "a MAC address")))
            return -1;
        if (bd_mac_parse(s, dst) < 0)
            return lab_fail(c, n, "\"%s\" is not a MAC address (six hex pairs, e.g. 52:54:00:12:34:56)",
                            s);
        break;
    case T_IPV4:
        return decode_ipv4(c, n, dst);
    case T_IPV4LIST: {
        if (n->kind != BD_NODE_SEQ)
            return lab_fail(c, n, "expected a list of IPv4 addresses, got %s", bd_node_kind_name(n));
        struct lab_ipv4list *l = dst;
        l->n = n->n;
        l->v = bd_arena_alloc(A, (n->n + 1) * sizeof(uint32_t));
        for (size_t i = 0; i < n->n; i++) {
            size_t old = lab_path_push(c, "[%zu]", i);
            if (decode_ipv4(c, n->kids[i], &l->v[i]) < 0)
                return -1;
            lab_path_pop(c, old);
        }
        break;
    }
    case T_CIDR: {
        if (!(s = lab_scalar(c, n, "a CIDR")))
            return -1;
        struct lab_cidr *cidr = dst;
        if (bd_cidr_parse(s, &cidr->addr, &cidr->prefix) < 0)
            return lab_fail(c, n, "\"%s\" is not an IPv4 CIDR (e.g. 192.0.2.0/24)", s);
        uint32_t mask = cidr->prefix ? 0xffffffffu << (32 - cidr->prefix) : 0;
        if (cidr->addr & ~mask)
            return lab_fail(c, n, "\"%s\" has host bits set (did you mean a network address?)", s);
        break;
    }
    case T_DURATION:
        if (!(s = lab_scalar(c, n, "a duration")))
            return -1;
        if (bd_duration_parse(s, dst) < 0)
            return lab_fail(c, n, "\"%s\" is not a duration (e.g. 30s, 5m, 2h)", s);
        break;
    case T_ENUM: {
        if (!(s = lab_scalar(c, n, "a string")))
            return -1;
        const char *const *names = f->aux;
        for (int i = 0; names[i]; i++)
            if (!strcmp(names[i], s)) {
                *(int *)dst = i;
                return 0;
            }
        struct bd_buf b;
        bd_buf_init(&b);
        for (int i = 0; names[i]; i++)
            bd_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
        lab_fail(c, n, "\"%s\" is not one of: %s", s, b.data);
        bd_buf_free(&b);
        return -1;
    }
    case T_STRLIST:
    case T_PATHLIST:
    case T_KARGS:
        return decode_strlist(c, n, dst, f->type);
    case T_LABELS:
        return decode_labels(c, n, dst);
    case T_MAP:
        return lab_decode_map(c, n, f->aux, dst);
    case T_CUSTOM:
        return ((lab_custom_fn)f->aux)(c, n, dst);
    }
    return 0;
}

int lab_decode_map(struct lab_ctx *c, const struct bd_node *n, const struct lab_field *fields,
                   void *base)
{
    if (n->kind != BD_NODE_MAP)
        return lab_fail(c, n, "expected a mapping, got %s", bd_node_kind_name(n));
    for (size_t i = 0; i < n->n; i++) {
        const struct bd_node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        const struct lab_field *f = fields;
        while (f->key && strcmp(f->key, k->str))
            f++;
        if (!f->key)
            return unknown_key(c, k, fields);
        size_t old = lab_path_push(c, ".%s", f->key);
        if (bd_node_is_null(v) && f->required)
            return lab_fail(c, k, "must not be empty");
        if (!bd_node_is_null(v) || f->type == T_STRLIST || f->type == T_PATHLIST ||
            f->type == T_KARGS || f->type == T_LABELS) {
            if (decode_field(c, f, v, base) < 0)
                return -1;
            if (f->set_off)
                *(bool *)((char *)base + f->set_off) = true;
            if (f->at_off) {
                struct lab_at *at = (struct lab_at *)((char *)base + f->at_off);
                at->file = bd_arena_strdup(&c->lab->arena, c->file);
                at->line = v->line;
                at->col = v->col;
            }
        }
        lab_path_pop(c, old);
    }
    for (const struct lab_field *f = fields; f->key; f++)
        if (f->required && !bd_node_get(n, f->key))
            return lab_fail(c, n, "missing required key \"%s\"", f->key);
    return 0;
}
