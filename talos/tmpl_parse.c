/* Reading a template in Terraform's template language (HCL native syntax, as
 * templatefile() reads a file): literal text, ${ expression } interpolations,
 * %{ if }/%{ else }/%{ endif } and %{ for }/%{ endfor } directives, ~ strip markers
 * (a ~ next to the braces removes all whitespace, newlines included, on that side),
 * $${ and %%{ for a literal ${ and %{. Expressions: literals, variables, .attr and
 * [index], function calls, [tuples], {objects}, ! and unary -, the arithmetic,
 * comparison and logical operators, and cond ? a : b. */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ps {
    struct tmpl *t;
    const char *s;
    size_t pos, len;
    bool strip_next; /* the last sequence ended with ~: trim the next text's start */
    struct bd_err *err;
    bool failed;
};

void talos_tmpl_where(const struct tmpl *t, size_t at, char *out, size_t size)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < at && t->text[i]; i++) {
        if (t->text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)t->text[i] & 0xc0) != 0x80) {
            col++; /* columns count characters, not UTF-8 bytes */
        }
    }
    snprintf(out, size, "%s:%d:%d", t->file, line, col);
}

static void *fail(struct ps *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *fail(struct ps *p, size_t at, const char *fmt, ...)
{
    if (p->failed)
        return NULL;
    char where[300], msg[600];
    talos_tmpl_where(p->t, at, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bd_err_set(p->err, "%s: %s", where, msg);
    p->failed = true;
    return NULL;
}

static char peek(const struct ps *p, size_t ahead)
{
    return p->pos + ahead < p->len ? p->s[p->pos + ahead] : 0;
}

static void skip_ws(struct ps *p)
{
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
}

static bool eat(struct ps *p, const char *tok)
{
    skip_ws(p);
    size_t n = strlen(tok);
    if (p->pos + n <= p->len && !memcmp(p->s + p->pos, tok, n)) {
        p->pos += n;
        return true;
    }
    return false;
}

static struct tx *node(struct ps *p, enum tx_kind k, size_t at)
{
    struct tx *x = bd_arena_alloc(&p->t->arena, sizeof *x);
    x->k = k;
    x->at = at;
    return x;
}

static bool ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool ident_char(char c)
{
    /* HCL identifiers may hold dashes: a-b is one name (write a - b to subtract) */
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static const char *ident(struct ps *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && ident_char(p->s[p->pos]))
        p->pos++;
    size_t n = p->pos - start;
    char *name = bd_arena_alloc(&p->t->arena, n + 1);
    memcpy(name, p->s + start, n);
    return name;
}

static struct tx *expr(struct ps *p);

/* A list of expressions up to close, commas between, a trailing one allowed. */
static int list(struct ps *p, const char *close, struct tx ***out, size_t *n)
{
    size_t cap = 0;
    *n = 0;
    *out = NULL;
    while (!eat(p, close)) {
        struct tx *e = expr(p);
        if (!e)
            return -1;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            struct tx **grown = bd_arena_alloc(&p->t->arena, cap * sizeof *grown);
            if (*n)
                memcpy(grown, *out, *n * sizeof *grown);
            *out = grown;
        }
        (*out)[(*n)++] = e;
        if (!eat(p, ",") && (skip_ws(p), peek(p, 0) != close[0])) {
            fail(p, p->pos, "expected \",\" or \"%s\"", close);
            return -1;
        }
    }
    return 0;
}

static size_t skip_quoted(const struct ps *p, size_t i);

/* From just after "${" or "%{": the index after its closing brace. */
static size_t skip_braces(const struct ps *p, size_t i)
{
    int depth = 1;
    while (i < p->len && depth) {
        char c = p->s[i];
        if (c == '"') {
            i = skip_quoted(p, i + 1);
            if (i >= p->len)
                return p->len;
        } else if (c == '{') {
            depth++;
        } else if (c == '}') {
            depth--;
        }
        i++;
    }
    return i;
}

/* From just after an opening quote: the index of the closing one, or p->len. */
static size_t skip_quoted(const struct ps *p, size_t i)
{
    while (i < p->len) {
        char c = p->s[i];
        if (c == '\n')
            return p->len;
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (c == '"')
            return i;
        if ((c == '$' || c == '%') && i + 1 < p->len && p->s[i + 1] == '{' &&
            !(i > 0 && p->s[i - 1] == c)) {
            i = skip_braces(p, i + 2);
            continue;
        }
        i++;
    }
    return p->len;
}

static const char *unescape(char e)
{
    return e == 'n' ? "\n" : e == 't' ? "\t" : e == 'r' ? "\r" : e == '"' ? "\"" : e == '\\' ? "\\" : NULL;
}

static struct tn *parse_body(struct ps *p, const char **stopped_by, size_t *stop_at);

/* A quoted string with ${...} or %{...} in it: a template of its own, rendered when
 * the expression is evaluated. */
static struct tx *quoted_template(struct ps *p, size_t at, size_t close)
{
    struct ps sub = *p;
    sub.pos = at + 1;
    sub.len = close;
    sub.strip_next = false;
    const char *stop;
    size_t stop_at;
    struct tx *x = node(p, TX_TEMPLATE, at);
    x->body = parse_body(&sub, &stop, &stop_at);
    if (sub.failed) {
        p->failed = true;
        return NULL;
    }
    if (stop)
        return fail(p, stop_at, "%%{ %s } without its opening directive in this string", stop);
    /* the literal parts keep their escapes until here */
    for (struct tn *n = x->body; n; n = n->next) {
        if (n->k != TN_TEXT)
            continue;
        size_t o = 0;
        for (size_t i = 0; i < n->len; i++) {
            const char *rep = n->text[i] == '\\' && i + 1 < n->len ? unescape(n->text[i + 1]) : NULL;
            if (rep) {
                n->text[o++] = rep[0];
                i++;
            } else {
                n->text[o++] = n->text[i];
            }
        }
        n->len = o;
    }
    p->pos = close + 1;
    return x;
}

static struct tx *string_lit(struct ps *p)
{
    size_t at = p->pos++;
    size_t close = skip_quoted(p, p->pos);
    if (close >= p->len)
        return fail(p, at, "unterminated string");
    for (size_t i = at + 1; i + 1 < close; i++)
        if ((p->s[i] == '$' || p->s[i] == '%') && p->s[i + 1] == '{' && p->s[i - 1] != p->s[i])
            return quoted_template(p, at, close);
    struct bd_buf b;
    bd_buf_init(&b);
    for (; p->pos < close; p->pos++) {
        char c = p->s[p->pos];
        /* $${ and %%{ are a literal ${ and %{ here too */
        if ((c == '$' || c == '%') && peek(p, 1) == c && peek(p, 2) == '{')
            continue;
        if (c != '\\') {
            bd_buf_append(&b, &c, 1);
            continue;
        }
        const char *rep = unescape(peek(p, 1));
        if (!rep) {
            bd_buf_free(&b);
            return fail(p, p->pos, "unknown escape \\%c in a string", peek(p, 1));
        }
        bd_buf_puts(&b, rep);
        p->pos++;
    }
    p->pos = close + 1;
    struct tx *x = node(p, TX_LIT, at);
    x->lit = talos_tv_str(&p->t->arena, b.data ? b.data : "", b.len);
    bd_buf_free(&b);
    return x;
}

static struct tx *object(struct ps *p, size_t at)
{
    struct tx *x = node(p, TX_OBJECT, at);
    size_t cap = 0;
    while (!eat(p, "}")) {
        skip_ws(p);
        struct tx *k;
        if (ident_start(peek(p, 0))) { /* a bare name is the key itself, not a variable */
            k = node(p, TX_LIT, p->pos);
            const char *name = ident(p);
            k->lit = talos_tv_str(&p->t->arena, name, strlen(name));
        } else if (!(k = expr(p))) {
            return NULL;
        }
        if (!eat(p, "=") && !eat(p, ":"))
            return fail(p, p->pos, "expected \"=\" or \":\" after an object key");
        struct tx *v = expr(p);
        if (!v)
            return NULL;
        if (x->n == cap) {
            cap = cap ? cap * 2 : 4;
            struct tx **keys = bd_arena_alloc(&p->t->arena, cap * sizeof *keys);
            struct tx **vals = bd_arena_alloc(&p->t->arena, cap * sizeof *vals);
            if (x->n) {
                memcpy(keys, x->keys, x->n * sizeof *keys);
                memcpy(vals, x->args, x->n * sizeof *vals);
            }
            x->keys = keys;
            x->args = vals;
        }
        x->keys[x->n] = k;
        x->args[x->n++] = v;
        eat(p, ","); /* commas or newlines separate items */
    }
    return x;
}

/* "for" as a keyword here (not a name such as "format"). */
static bool at_for(const struct ps *p)
{
    return p->pos + 3 < p->len && !memcmp(p->s + p->pos, "for", 3) && isspace((unsigned char)p->s[p->pos + 3]);
}

/* [for x in xs : expr if cond] and {for k, v in m : kexpr => vexpr if cond}, after the
 * opening bracket. */
static struct tx *for_expr(struct ps *p, size_t at, bool object)
{
    struct tx *x = node(p, object ? TX_FOR_OBJECT : TX_FOR_TUPLE, at);
    p->pos += 3;
    skip_ws(p);
    if (!ident_start(peek(p, 0)))
        return fail(p, p->pos, "expected a variable name after for");
    x->val_var = ident(p);
    if (eat(p, ",")) {
        skip_ws(p);
        if (!ident_start(peek(p, 0)))
            return fail(p, p->pos, "expected a second variable name after \",\"");
        x->key_var = x->val_var;
        x->val_var = ident(p);
    }
    skip_ws(p);
    if (!eat(p, "in") || ident_char(peek(p, 0)))
        return fail(p, p->pos, "expected \"in\" in a for expression");
    if (!(x->a = expr(p)))
        return NULL;
    if (!eat(p, ":"))
        return fail(p, p->pos, "expected \":\" in a for expression");
    if (object) {
        if (!(x->d = expr(p)))
            return NULL;
        if (!eat(p, "=>"))
            return fail(p, p->pos, "expected \"=>\" between key and value in a for expression");
    }
    if (!(x->b = expr(p)))
        return NULL;
    skip_ws(p);
    if (p->pos + 2 < p->len && !memcmp(p->s + p->pos, "if", 2) && !ident_char(p->s[p->pos + 2])) {
        p->pos += 2;
        if (!(x->c = expr(p)))
            return NULL;
    }
    if (!eat(p, object ? "}" : "]"))
        return fail(p, p->pos, "expected \"%s\" to end the for expression", object ? "}" : "]");
    return x;
}

static struct tx *primary(struct ps *p)
{
    skip_ws(p);
    size_t at = p->pos;
    char c = peek(p, 0);
    if (c == '"')
        return string_lit(p);
    if (isdigit((unsigned char)c)) {
        char *end;
        double d = strtod(p->s + p->pos, &end);
        p->pos = (size_t)(end - p->s);
        struct tx *x = node(p, TX_LIT, at);
        x->lit = talos_tv_num(&p->t->arena, d);
        return x;
    }
    if (eat(p, "(")) {
        struct tx *x = expr(p);
        if (x && !eat(p, ")"))
            return fail(p, p->pos, "expected \")\"");
        return x;
    }
    if (eat(p, "[")) {
        skip_ws(p);
        if (at_for(p))
            return for_expr(p, at, false);
        struct tx *x = node(p, TX_TUPLE, at);
        return list(p, "]", &x->args, &x->n) < 0 ? NULL : x;
    }
    if (eat(p, "{")) {
        skip_ws(p);
        return at_for(p) ? for_expr(p, at, true) : object(p, at);
    }
    if (!ident_start(c)) {
        if (!c)
            return fail(p, at, "expected an expression, found the end of the file");
        return fail(p, at, "expected an expression, found \"%c\"", c);
    }
    const char *name = ident(p);
    if (!strcmp(name, "true") || !strcmp(name, "false") || !strcmp(name, "null")) {
        struct tx *x = node(p, TX_LIT, at);
        x->lit = name[0] == 'n' ? talos_tv_new(&p->t->arena, TV_NULL)
                                : talos_tv_bool(&p->t->arena, name[0] == 't');
        return x;
    }
    skip_ws(p);
    if (peek(p, 0) == '(') {
        p->pos++;
        struct tx *x = node(p, TX_CALL, at);
        x->name = name;
        return list(p, ")", &x->args, &x->n) < 0 ? NULL : x;
    }
    struct tx *x = node(p, TX_VAR, at);
    x->name = name;
    return x;
}

static struct tx *postfix(struct ps *p)
{
    struct tx *x = primary(p);
    while (x) {
        skip_ws(p);
        size_t at = p->pos;
        if (peek(p, 0) == '.' && ident_start(peek(p, 1))) {
            p->pos++;
            struct tx *a = node(p, TX_ATTR, at);
            a->a = x;
            a->name = ident(p);
            x = a;
        } else if (peek(p, 0) == '[') {
            p->pos++;
            struct tx *i = node(p, TX_INDEX, at);
            i->a = x;
            if (!(i->b = expr(p)))
                return NULL;
            if (!eat(p, "]"))
                return fail(p, p->pos, "expected \"]\"");
            x = i;
        } else {
            break;
        }
    }
    return x;
}

static struct tx *unary(struct ps *p)
{
    skip_ws(p);
    size_t at = p->pos;
    if (peek(p, 0) == '!' && peek(p, 1) != '=') {
        p->pos++;
        struct tx *x = node(p, TX_NOT, at);
        return (x->a = unary(p)) ? x : NULL;
    }
    if (peek(p, 0) == '-') {
        p->pos++;
        struct tx *x = node(p, TX_NEG, at);
        return (x->a = unary(p)) ? x : NULL;
    }
    return postfix(p);
}

/* Binary operators by precedence level, loosest first (HCL's table). */
static const struct {
    const char *tok;
    enum tx_op op;
    int level;
} binops[] = {
    {"||", OP_OR, 0}, {"&&", OP_AND, 1}, {"==", OP_EQ, 2}, {"!=", OP_NE, 2}, {"<=", OP_LE, 3},
    {">=", OP_GE, 3}, {"<", OP_LT, 3},   {">", OP_GT, 3},  {"+", OP_ADD, 4}, {"-", OP_SUB, 4},
    {"*", OP_MUL, 5}, {"/", OP_DIV, 5},  {"%", OP_MOD, 5},
};
#define LEVELS 6

static struct tx *binary(struct ps *p, int level)
{
    if (level == LEVELS)
        return unary(p);
    struct tx *x = binary(p, level + 1);
    while (x) {
        skip_ws(p);
        int found = -1;
        for (size_t i = 0; i < sizeof binops / sizeof binops[0] && found < 0; i++) {
            size_t n = strlen(binops[i].tok);
            if (binops[i].level == level && p->pos + n <= p->len &&
                !memcmp(p->s + p->pos, binops[i].tok, n) &&
                /* "%}" ends a directive, "-}"/"~}" are not operators */
                !(binops[i].op == OP_MOD && peek(p, 1) == '}'))
                found = (int)i;
        }
        if (found < 0)
            break;
        p->pos += strlen(binops[found].tok);
        struct tx *b = node(p, TX_BINARY, x->at); /* messages point at the whole expression */
        b->op = binops[found].op;
        b->a = x;
        if (!(b->b = binary(p, level + 1)))
            return NULL;
        x = b;
    }
    return x;
}

static struct tx *expr(struct ps *p)
{
    struct tx *x = binary(p, 0);
    if (!x)
        return NULL;
    skip_ws(p);
    if (peek(p, 0) != '?')
        return x;
    struct tx *c = node(p, TX_COND, x->at);
    p->pos++;
    c->a = x;
    if (!(c->b = expr(p)))
        return NULL;
    if (!eat(p, ":"))
        return fail(p, p->pos, "expected \":\" in a conditional");
    return (c->c = expr(p)) ? c : NULL;
}

/* ---- the template around the expressions ---- */

struct body {
    struct tn *head, *tail;
};

static struct tn *add(struct ps *p, struct body *b, enum tn_kind k, size_t at)
{
    struct tn *n = bd_arena_alloc(&p->t->arena, sizeof *n);
    n->k = k;
    n->at = at;
    if (b->tail)
        b->tail->next = n;
    else
        b->head = n;
    b->tail = n;
    return n;
}

/* ${~ and %{~: the text before loses its trailing whitespace. */
static void strip_before(struct body *b)
{
    struct tn *t = b->tail;
    if (t && t->k == TN_TEXT)
        while (t->len && isspace((unsigned char)t->text[t->len - 1]))
            t->len--;
}

/* The end of a sequence: optional ~, then }. */
static int close_seq(struct ps *p, const char *what)
{
    skip_ws(p);
    if (peek(p, 0) == '~') {
        p->strip_next = true;
        p->pos++;
    }
    if (peek(p, 0) != '}') {
        fail(p, p->pos, "expected \"}\" to end the %s", what);
        return -1;
    }
    p->pos++;
    return 0;
}

static void text(struct ps *p, struct body *b, size_t at, size_t end)
{
    struct bd_buf buf;
    bd_buf_init(&buf);
    for (size_t i = at; i < end; i++) {
        /* $${ and %%{ are a literal ${ and %{ */
        if ((p->s[i] == '$' || p->s[i] == '%') && i + 2 < end && p->s[i + 1] == p->s[i] &&
            i + 2 < p->len && p->s[i + 2] == '{') {
            bd_buf_append(&buf, p->s + i + 1, 2);
            i += 2;
            continue;
        }
        bd_buf_append(&buf, p->s + i, 1);
    }
    const char *s = buf.data ? buf.data : "";
    size_t len = buf.len;
    if (p->strip_next) {
        while (len && isspace((unsigned char)*s))
            s++, len--;
        p->strip_next = false;
    }
    if (len) {
        struct tn *n = add(p, b, TN_TEXT, at);
        n->text = bd_arena_alloc(&p->t->arena, len + 1);
        memcpy(n->text, s, len);
        n->len = len;
    }
    bd_buf_free(&buf);
}

static struct tn *parse_body(struct ps *p, const char **stopped_by, size_t *stop_at);

static int directive_if(struct ps *p, struct body *b, size_t at)
{
    struct tn *n = add(p, b, TN_IF, at);
    if (!(n->e = expr(p)) || close_seq(p, "if directive") < 0)
        return -1;
    const char *stop;
    size_t stop_at;
    n->body = parse_body(p, &stop, &stop_at);
    if (p->failed)
        return -1;
    if (stop && !strcmp(stop, "else")) {
        n->els = parse_body(p, &stop, &stop_at);
        if (p->failed)
            return -1;
    }
    if (!stop || strcmp(stop, "endif")) {
        fail(p, stop ? stop_at : at, stop ? "%%{ %s } where this %%{ if } needs its %%{ endif }"
                                          : "%%{ if } without %%{ endif }%.0s",
             stop ? stop : "");
        return -1;
    }
    return 0;
}

static int directive_for(struct ps *p, struct body *b, size_t at)
{
    struct tn *n = add(p, b, TN_FOR, at);
    skip_ws(p);
    if (!ident_start(peek(p, 0))) {
        fail(p, p->pos, "expected a variable name after for");
        return -1;
    }
    n->val_var = ident(p);
    if (eat(p, ",")) {
        skip_ws(p);
        if (!ident_start(peek(p, 0))) {
            fail(p, p->pos, "expected a second variable name after \",\"");
            return -1;
        }
        n->key_var = n->val_var;
        n->val_var = ident(p);
    }
    skip_ws(p);
    if (!eat(p, "in") || ident_char(peek(p, 0))) {
        fail(p, p->pos, "expected \"in\" in a for directive");
        return -1;
    }
    if (!(n->e = expr(p)) || close_seq(p, "for directive") < 0)
        return -1;
    const char *stop;
    size_t stop_at;
    n->body = parse_body(p, &stop, &stop_at);
    if (p->failed)
        return -1;
    if (!stop || strcmp(stop, "endfor")) {
        fail(p, stop ? stop_at : at, stop ? "%%{ %s } where this %%{ for } needs its %%{ endfor }"
                                          : "%%{ for } without %%{ endfor }%.0s",
             stop ? stop : "");
        return -1;
    }
    return 0;
}

/* Template pieces up to the end or a %{ else }, %{ endif } or %{ endfor } (named in
 * *stopped_by, NULL at the end). */
static struct tn *parse_body(struct ps *p, const char **stopped_by, size_t *stop_at)
{
    struct body b = {0};
    *stopped_by = NULL;
    while (!p->failed) {
        size_t start = p->pos, i = start;
        while (i < p->len) {
            bool open = (p->s[i] == '$' || p->s[i] == '%') && i + 1 < p->len && p->s[i + 1] == '{';
            bool escaped = i > start && p->s[i - 1] == p->s[i] && open;
            if (open && !escaped)
                break;
            i++;
        }
        /* an escape's first $ or % was kept as text; the scan above skipped past it */
        text(p, &b, start, i);
        p->pos = i;
        if (i >= p->len)
            return b.head;
        bool interp = p->s[i] == '$';
        p->pos += 2;
        if (peek(p, 0) == '~') {
            strip_before(&b);
            p->pos++;
        }
        if (interp) {
            struct tn *n = add(p, &b, TN_INTERP, i);
            if (!(n->e = expr(p)) || close_seq(p, "interpolation") < 0)
                return NULL;
            continue;
        }
        skip_ws(p);
        size_t kw_at = p->pos;
        const char *kw = ident_start(peek(p, 0)) ? ident(p) : "";
        if (!strcmp(kw, "if")) {
            if (directive_if(p, &b, i) < 0)
                return NULL;
        } else if (!strcmp(kw, "for")) {
            if (directive_for(p, &b, i) < 0)
                return NULL;
        } else if (!strcmp(kw, "else") || !strcmp(kw, "endif") || !strcmp(kw, "endfor")) {
            if (close_seq(p, "directive") < 0)
                return NULL;
            *stopped_by = kw;
            *stop_at = i;
            return b.head;
        } else {
            return fail(p, kw_at, "unknown template directive \"%s\" (there are if, else, endif, "
                                  "for and endfor)",
                        kw);
        }
    }
    return NULL;
}

struct tmpl *talos_tmpl_parse(const char *file, const char *src, struct bd_err *err)
{
    struct tmpl *t = bd_xcalloc(1, sizeof *t);
    t->file = bd_xstrdup(file);
    t->text = bd_xstrdup(src);
    struct ps p = {.t = t, .s = t->text, .len = strlen(t->text), .err = err};
    const char *stop;
    size_t stop_at;
    t->body = parse_body(&p, &stop, &stop_at);
    if (!p.failed && stop)
        fail(&p, stop_at, "%%{ %s } without a matching %%{ %s }", stop,
             !strcmp(stop, "endfor") ? "for" : "if");
    if (p.failed) {
        talos_tmpl_free(t);
        return NULL;
    }
    return t;
}

void talos_tmpl_free(struct tmpl *t)
{
    if (!t)
        return;
    bd_arena_free(&t->arena);
    free(t->file);
    free(t->text);
    free(t);
}
