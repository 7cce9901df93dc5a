/* YAML out, in go-yaml's block style with 4-space indentation. */
#include "bd.h"

#include <ctype.h>
#include <string.h>

#define INDENT 4

static bool looks_like_number(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF"))
        return true;
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
        return true;
    if (!strncmp(p, "0x", 2) || !strncmp(p, "0o", 2) || !strncmp(p, "0b", 2))
        return p[2] != 0;
    bool digits = false, dot = false, exp = false;
    for (; *p; p++) {
        if (isdigit((unsigned char)*p) || *p == '_')
            digits = true;
        else if (*p == '.' && !dot && !exp)
            dot = true;
        else if ((*p == 'e' || *p == 'E') && digits && !exp) {
            exp = true;
            if (p[1] == '+' || p[1] == '-')
                p++;
        } else
            return false;
    }
    return digits;
}

bool bd_yaml_plain_safe(const char *s)
{
    static const char *const reserved[] = {
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON",
        "off", "Off", "OFF", "<<", NULL,
    };
    for (int i = 0; strchr("~nNtTfFyYoO<", s[0]) && reserved[i]; i++) /* their first letters */
        if (!strcmp(s, reserved[i]))
            return false;
    if (looks_like_number(s))
        return false;
    size_t n = strlen(s);
    if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
        return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) &&
        !((s[0] == '-' || s[0] == '?' || s[0] == ':') && s[1] && !isspace((unsigned char)s[1])))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == ':' && (i + 1 == n || s[i + 1] == ' '))
            return false;
        if (c == '#' && i > 0 && s[i - 1] == ' ')
            return false;
    }
    return true;
}

static void emit_quoted(struct bd_buf *out, const char *s)
{
    bd_buf_puts(out, "\"");
    const unsigned char *run = (const unsigned char *)s;
    for (const unsigned char *p = run; *p; p++) {
        if (*p != '"' && *p != '\\' && *p >= 0x20 && *p != 0x7f)
            continue; /* copied with the rest of its run */
        bd_buf_append(out, run, (size_t)(p - run));
        run = p + 1;
        switch (*p) {
        case '"': bd_buf_puts(out, "\\\""); break;
        case '\\': bd_buf_puts(out, "\\\\"); break;
        case '\n': bd_buf_puts(out, "\\n"); break;
        case '\t': bd_buf_puts(out, "\\t"); break;
        case '\r': bd_buf_puts(out, "\\r"); break;
        default: bd_buf_printf(out, "\\x%02x", *p);
        }
    }
    bd_buf_puts(out, (const char *)run);
    bd_buf_puts(out, "\"");
}

static void pad(struct bd_buf *out, int n)
{
    static const char spaces[] = "                                                                ";
    for (; n > 0; n -= (int)sizeof spaces - 1)
        bd_buf_append(out, spaces, n < (int)sizeof spaces - 1 ? (size_t)n : sizeof spaces - 1);
}

/* A multi-line string as a literal block (|, or |- without a final newline) whose
 * lines are indented to ind. Falls back to quoting when a block cannot keep it. */
static bool emit_literal(struct bd_buf *out, const char *s, int ind)
{
    size_t n = strlen(s);
    if (!strchr(s, '\n') || isspace((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n')
            return false;
    /* trailing spaces on a line and more than one final newline need quoting */
    if (n >= 2 && s[n - 1] == '\n' && s[n - 2] == '\n')
        return false;
    for (const char *p = s; (p = strchr(p, '\n')); p++)
        if (p > s && p[-1] == ' ')
            return false;
    bool keep = s[n - 1] == '\n';
    bd_buf_puts(out, keep ? "|\n" : "|-\n");
    const char *line = s;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len)
            pad(out, ind);
        bd_buf_append(out, line, len);
        bd_buf_puts(out, "\n");
        if (!nl)
            break;
        line = nl + 1;
    }
    return true;
}

static void emit_scalar(struct bd_buf *out, const struct bd_node *n, int ind)
{
    if (n->plain || bd_yaml_plain_safe(n->str)) {
        bd_buf_puts(out, n->str);
        bd_buf_puts(out, "\n");
        return;
    }
    if (emit_literal(out, n->str, ind))
        return;
    emit_quoted(out, n->str);
    bd_buf_puts(out, "\n");
}

static bool is_empty_container(const struct bd_node *n)
{
    return n->kind != BD_NODE_SCALAR && n->n == 0;
}

static void emit_node(struct bd_buf *out, const struct bd_node *n, int ind);

/* Writes a value that follows "key:" or "- " on the current line. */
static void emit_value_inline(struct bd_buf *out, const struct bd_node *v, int ind)
{
    if (v->kind == BD_NODE_SCALAR) {
        bd_buf_puts(out, " ");
        emit_scalar(out, v, ind);
    } else if (is_empty_container(v)) {
        bd_buf_puts(out, v->kind == BD_NODE_MAP ? " {}\n" : " []\n");
    } else {
        bd_buf_puts(out, "\n");
        emit_node(out, v, ind);
    }
}

static void emit_key(struct bd_buf *out, const struct bd_node *k)
{
    if (bd_yaml_plain_safe(k->str) || k->plain)
        bd_buf_puts(out, k->str);
    else
        emit_quoted(out, k->str);
    bd_buf_puts(out, ":");
}

/* Keys at key_col, their block values at child_ind. In a sequence item ("- key: v")
 * the keys sit two columns right of the dash but the values indent from the dash, as
 * go-yaml does; the first key then follows the dash on its line. */
static void emit_map_body(struct bd_buf *out, const struct bd_node *n, int key_col, int child_ind,
                          bool first_inline)
{
    for (size_t i = 0; i < n->n; i++) {
        if (i || !first_inline)
            pad(out, key_col);
        emit_key(out, n->kids[2 * i]);
        emit_value_inline(out, n->kids[2 * i + 1], child_ind);
    }
}

static void emit_node(struct bd_buf *out, const struct bd_node *n, int ind)
{
    switch (n->kind) {
    case BD_NODE_SCALAR:
        pad(out, ind);
        emit_scalar(out, n, ind);
        break;
    case BD_NODE_MAP:
        if (!n->n) {
            pad(out, ind);
            bd_buf_puts(out, "{}\n");
        }
        emit_map_body(out, n, ind, ind + INDENT, false);
        break;
    case BD_NODE_SEQ:
        if (!n->n) {
            pad(out, ind);
            bd_buf_puts(out, "[]\n");
        }
        for (size_t i = 0; i < n->n; i++) {
            const struct bd_node *item = n->kids[i];
            pad(out, ind);
            bd_buf_puts(out, "-");
            if (item->kind == BD_NODE_MAP && item->n) {
                bd_buf_puts(out, " ");
                emit_map_body(out, item, ind + 2, ind + INDENT, true);
            } else if (item->kind == BD_NODE_SEQ && item->n) {
                bd_buf_puts(out, "\n");
                emit_node(out, item, ind + INDENT);
            } else {
                emit_value_inline(out, item, ind + 2);
            }
        }
        break;
    }
}

void bd_yaml_emit(struct bd_buf *out, const struct bd_node *n)
{
    emit_node(out, n, 0);
}

void bd_yaml_emit_docs(struct bd_buf *out, struct bd_node *const *docs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            bd_buf_puts(out, "---\n");
        bd_yaml_emit(out, docs[i]);
    }
}
