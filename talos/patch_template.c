/* Template patches (*.tftpl), as Terraform's templatefile() fills them: ${name}, and
 * ${indent(N, name)}, which indents every line but the first by N spaces (how a
 * multi-line file lands inside a YAML block). $${ is a literal ${. Anything else
 * between ${ and } is refused rather than guessed at. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

static const char *var_value(const struct patch_vars *vars, const char *name, size_t len)
{
    for (size_t i = 0; i < vars->n; i++)
        if (strlen(vars->names[i]) == len && !memcmp(vars->names[i], name, len))
            return vars->values[i];
    return NULL;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

static size_t ident_len(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && (isalnum((unsigned char)p[n]) || p[n] == '_'))
        n++;
    return n;
}

static void append_indented(struct bd_buf *out, const char *s, long indent)
{
    for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        bd_buf_append(out, s, (size_t)(nl - s + 1));
        bd_buf_printf(out, "%*s", (int)indent, "");
    }
    bd_buf_puts(out, s);
}

static int unknown_var(const struct talos_patch *p, const char *at, const char *name, size_t len,
                       const struct patch_vars *vars, struct bd_err *err)
{
    struct bd_buf known;
    bd_buf_init(&known);
    for (size_t i = 0; i < vars->n; i++)
        bd_buf_printf(&known, "%s%s", i ? ", " : "", vars->names[i]);
    bd_err_set(err,
               "%s:%d: unknown template variable \"%.*s\" (known: %s; more come from "
               "cluster.template_files in lab.yaml)",
               p->file, line_of(p->text, at), (int)len, name, known.data);
    bd_buf_free(&known);
    return -1;
}

/* One ${...} expression between expr and end (the closing brace). */
static int fill_expr(const struct talos_patch *p, const char *expr, const char *end,
                     const struct patch_vars *vars, struct bd_buf *out, struct bd_err *err)
{
    const char *q = skip_space(expr, end);
    size_t n = ident_len(q, end);
    const char *after = skip_space(q + n, end);
    if (n && after == end) {
        const char *v = var_value(vars, q, n);
        if (!v)
            return unknown_var(p, expr, q, n, vars, err);
        bd_buf_puts(out, v);
        return 0;
    }
    if (n == 6 && !memcmp(q, "indent", 6) && after < end && *after == '(') {
        char *num_end;
        long indent = strtol(after + 1, &num_end, 10);
        const char *r = skip_space(num_end, end);
        if (num_end > after + 1 && indent >= 0 && indent <= 64 && r < end && *r == ',') {
            r = skip_space(r + 1, end);
            size_t vn = ident_len(r, end);
            const char *close = skip_space(r + vn, end);
            if (vn && close < end && *close == ')' && skip_space(close + 1, end) == end) {
                const char *v = var_value(vars, r, vn);
                if (!v)
                    return unknown_var(p, expr, r, vn, vars, err);
                append_indented(out, v, indent);
                return 0;
            }
        }
    }
    return bd_err_set(err,
                      "%s:%d: ${%.*s}: only ${name} and ${indent(N, name)} are supported in "
                      "template patches",
                      p->file, line_of(p->text, expr), (int)(end - expr), expr);
}

int talos_patch_fill_template(const struct talos_patch *p, const struct patch_vars *vars,
                        struct bd_buf *out, struct bd_err *err)
{
    const char *s = p->text;
    for (;;) {
        const char *dollar = strstr(s, "${"), *pct = strstr(s, "%{");
        const char *at = dollar && (!pct || dollar < pct) ? dollar : pct;
        if (!at) {
            bd_buf_puts(out, s);
            return 0;
        }
        /* $${ and %%{ are Terraform's escapes for a literal ${ and %{ */
        if (at > s && at[-1] == at[0]) {
            bd_buf_append(out, s, (size_t)(at - s - 1));
            bd_buf_append(out, at, 2);
            s = at + 2;
            continue;
        }
        if (at == pct)
            return bd_err_set(err, "%s:%d: template directives (%%{...}) are not supported",
                              p->file, line_of(p->text, at));
        bd_buf_append(out, s, (size_t)(at - s));
        const char *close = strchr(at + 2, '}');
        if (!close)
            return bd_err_set(err, "%s:%d: ${ without a closing }", p->file, line_of(p->text, at));
        if (fill_expr(p, at + 2, close, vars, out, err) < 0)
            return -1;
        s = close + 1;
    }
}
