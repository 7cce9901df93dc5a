/* Values of the template language (Terraform's types as templatefile() sees them:
 * null, bool, number, string, list, map), made from lab.yaml's vars, and written out
 * the way Terraform's jsonencode() and yamlencode() write them. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tv *talos_tv_new(struct bd_arena *a, enum tv_kind k)
{
    struct tv *v = bd_arena_alloc(a, sizeof *v);
    v->k = k;
    return v;
}

struct tv *talos_tv_str(struct bd_arena *a, const char *s, size_t len)
{
    struct tv *v = talos_tv_new(a, TV_STR);
    char *copy = bd_arena_alloc(a, len + 1);
    memcpy(copy, s, len);
    v->s = copy;
    v->len = len;
    return v;
}

struct tv *talos_tv_num(struct bd_arena *a, double n)
{
    struct tv *v = talos_tv_new(a, TV_NUM);
    v->num = n;
    return v;
}

struct tv *talos_tv_bool(struct bd_arena *a, bool b)
{
    struct tv *v = talos_tv_new(a, TV_BOOL);
    v->b = b;
    return v;
}

void talos_tv_push(struct bd_arena *a, struct tv *list, const char *key, struct tv *item)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        struct tv **items = bd_arena_alloc(a, cap * sizeof *items);
        const char **keys = bd_arena_alloc(a, cap * sizeof *keys);
        if (list->n) {
            memcpy(items, list->items, list->n * sizeof *items);
            memcpy(keys, list->keys, list->n * sizeof *keys);
        }
        list->items = items;
        list->keys = keys;
        list->cap = cap;
    }
    list->keys[list->n] = key ? bd_arena_strdup(a, key) : NULL;
    list->items[list->n++] = item;
}

static int key_cmp(const void *x, const void *y)
{
    const char *const *a = x, *const *b = y;
    return strcmp(*a, *b);
}

/* Terraform's maps and objects iterate, encode and compare in lexical key order. */
void talos_tv_sort_map(struct tv *map)
{
    /* insertion sort over the parallel arrays; maps here are small */
    for (size_t i = 1; i < map->n; i++)
        for (size_t j = i; j > 0 && key_cmp(&map->keys[j - 1], &map->keys[j]) > 0; j--) {
            const char *k = map->keys[j];
            struct tv *v = map->items[j];
            map->keys[j] = map->keys[j - 1];
            map->items[j] = map->items[j - 1];
            map->keys[j - 1] = k;
            map->items[j - 1] = v;
        }
}

const struct tv *talos_tv_get(const struct tv *map, const char *key)
{
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->items[i];
    return NULL;
}

static bool parse_number(const char *s, double *out)
{
    if (!*s)
        return false;
    char *end;
    double d = strtod(s, &end);
    /* YAML 1.2 core numbers only, no hex floats, inf or nan */
    if (*end || strpbrk(s, "xXiInN"))
        return false;
    *out = d;
    return true;
}

struct tv *talos_tv_from_node(struct bd_arena *a, const struct bd_node *n)
{
    if (!n || bd_node_is_null(n))
        return talos_tv_new(a, TV_NULL);
    if (n->kind == BD_NODE_SCALAR) {
        double d;
        if (n->plain && (!strcmp(n->str, "true") || !strcmp(n->str, "false")))
            return talos_tv_bool(a, n->str[0] == 't');
        if (n->plain && parse_number(n->str, &d))
            return talos_tv_num(a, d);
        return talos_tv_str(a, n->str, strlen(n->str));
    }
    struct tv *v = talos_tv_new(a, n->kind == BD_NODE_SEQ ? TV_LIST : TV_MAP);
    if (n->kind == BD_NODE_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            talos_tv_push(a, v, NULL, talos_tv_from_node(a, n->kids[i]));
    } else {
        for (size_t i = 0; i < n->n; i++)
            talos_tv_push(a, v, n->kids[2 * i]->str, talos_tv_from_node(a, n->kids[2 * i + 1]));
        talos_tv_sort_map(v);
    }
    return v;
}

const char *talos_tv_kind_name(const struct tv *v)
{
    static const char *const names[] = {"null", "bool", "number", "string", "list", "map"};
    return names[v->k];
}

/* The shortest text that reads back as n, integers without a fraction: how
 * Terraform prints numbers. */
void talos_tv_format_number(double n, char out[32])
{
    if (n > -1e15 && n < 1e15 && n == (double)(long long)n) {
        snprintf(out, 32, "%.0f", n);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, n);
        if (strtod(out, NULL) == n)
            return;
    }
}

/* ---- jsonencode ---- */

/* Go's encoding/json escapes, which jsonencode() uses: also <, >, & and U+2028/9. */
static void json_string(struct bd_buf *b, const char *s, size_t len)
{
    bd_buf_puts(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': bd_buf_puts(b, "\\\""); break;
        case '\\': bd_buf_puts(b, "\\\\"); break;
        case '\n': bd_buf_puts(b, "\\n"); break;
        case '\r': bd_buf_puts(b, "\\r"); break;
        case '\t': bd_buf_puts(b, "\\t"); break;
        case '\b': bd_buf_puts(b, "\\b"); break;
        case '\f': bd_buf_puts(b, "\\f"); break;
        case '<': bd_buf_puts(b, "\\u003c"); break;
        case '>': bd_buf_puts(b, "\\u003e"); break;
        case '&': bd_buf_puts(b, "\\u0026"); break;
        default:
            if (c < 0x20) {
                bd_buf_printf(b, "\\u%04x", c);
            } else if (c == 0xe2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                       ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
                bd_buf_printf(b, "\\u202%c", s[i + 2] == (char)0xa8 ? '8' : '9');
                i += 2;
            } else {
                bd_buf_append(b, s + i, 1);
            }
        }
    }
    bd_buf_puts(b, "\"");
}

void talos_tv_json(struct bd_buf *b, const struct tv *v)
{
    char num[32];
    switch (v->k) {
    case TV_NULL: bd_buf_puts(b, "null"); break;
    case TV_BOOL: bd_buf_puts(b, v->b ? "true" : "false"); break;
    case TV_NUM:
        talos_tv_format_number(v->num, num);
        bd_buf_puts(b, num);
        break;
    case TV_STR: json_string(b, v->s, v->len); break;
    case TV_LIST:
    case TV_MAP:
        bd_buf_puts(b, v->k == TV_LIST ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                bd_buf_puts(b, ",");
            if (v->k == TV_MAP) {
                json_string(b, v->keys[i], strlen(v->keys[i]));
                bd_buf_puts(b, ":");
            }
            talos_tv_json(b, v->items[i]);
        }
        bd_buf_puts(b, v->k == TV_LIST ? "]" : "}");
        break;
    }
}

/* ---- yamlencode: block style, strings and keys double-quoted, two-space indent,
 * sequences at their key's level (what Terraform's yamlencode writes) ---- */

static void yaml_string(struct bd_buf *b, const char *s, size_t len)
{
    bd_buf_puts(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            bd_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            bd_buf_puts(b, "\\n");
        else if (c == '\t')
            bd_buf_puts(b, "\\t");
        else if (c == '\r')
            bd_buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7f)
            bd_buf_printf(b, "\\x%02x", c);
        else
            bd_buf_append(b, s + i, 1);
    }
    bd_buf_puts(b, "\"");
}

static bool tv_is_block(const struct tv *v)
{
    return (v->k == TV_LIST || v->k == TV_MAP) && v->n > 0;
}

static void yaml_scalar(struct bd_buf *b, const struct tv *v)
{
    char num[32];
    switch (v->k) {
    case TV_NULL: bd_buf_puts(b, "null"); break;
    case TV_BOOL: bd_buf_puts(b, v->b ? "true" : "false"); break;
    case TV_NUM:
        talos_tv_format_number(v->num, num);
        bd_buf_puts(b, num);
        break;
    case TV_STR: yaml_string(b, v->s, v->len); break;
    case TV_LIST: bd_buf_puts(b, "[]"); break;
    case TV_MAP: bd_buf_puts(b, "{}"); break;
    }
}

/* A block collection at indent; the first line's indent is already written when
 * inline is set (a map inside a sequence item). */
static void yaml_block(struct bd_buf *b, const struct tv *v, int indent, bool inline_first)
{
    for (size_t i = 0; i < v->n; i++) {
        if (i || !inline_first)
            bd_buf_printf(b, "%*s", indent, "");
        const struct tv *item = v->items[i];
        if (v->k == TV_LIST) {
            bd_buf_puts(b, "- ");
            if (tv_is_block(item)) {
                yaml_block(b, item, indent + 2, true);
                continue;
            }
        } else {
            yaml_string(b, v->keys[i], strlen(v->keys[i]));
            bd_buf_puts(b, ":");
            if (tv_is_block(item)) {
                bd_buf_puts(b, "\n");
                yaml_block(b, item, item->k == TV_MAP ? indent + 2 : indent, false);
                continue;
            }
            bd_buf_puts(b, " ");
        }
        yaml_scalar(b, item);
        bd_buf_puts(b, "\n");
    }
}

void talos_tv_yaml(struct bd_buf *b, const struct tv *v)
{
    if (tv_is_block(v)) {
        yaml_block(b, v, 0, false);
        return;
    }
    yaml_scalar(b, v);
    /* a plain scalar alone is a document that needs its end marker */
    bd_buf_puts(b, v->k == TV_STR || v->k == TV_LIST || v->k == TV_MAP ? "\n" : "\n...\n");
}
