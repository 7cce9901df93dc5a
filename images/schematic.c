/* Schematic ids, computed the way Image Factory computes them: decode the schematic
 * into its Go struct (unknown fields rejected), marshal it again with go-yaml (4-space
 * indentation, struct field order, empty optional fields left out) and take the
 * SHA-256 of that text. The tables below mirror the struct of
 * siderolabs/image-factory pkg/schematic; bd_yaml_emit writes go-yaml's layout. */
#include "images.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind {
    K_STR,        /* Go string: any scalar's text */
    K_STRS,       /* []string */
    K_BOOL,
    K_UINT,       /* uint8 / uint, bounded by max */
    K_BOOTLOADER, /* imageropts.BootloaderKind, a text enum */
    K_STRUCT,
    K_STRUCTS,    /* []struct */
    K_ANYMAP,     /* map[string]any */
    K_REFUSED,    /* a field Image Factory refuses in a schematic it is given */
};

struct field {
    const char *key;
    enum kind kind;
    bool omitempty;
    const struct field *sub; /* K_STRUCT, K_STRUCTS */
    uint64_t max;            /* K_UINT */
    const char *why;         /* K_REFUSED */
};

static const struct field meta_fields[] = {
    {"key", K_UINT, false, NULL, 255, NULL},
    {"value", K_STR, false, NULL, 0, NULL},
    {0},
};

static const struct field extensions_fields[] = {
    {"officialExtensions", K_STRS, true, NULL, 0, NULL},
    {0},
};

static const struct field secureboot_fields[] = {
    {"enrollKeys", K_STR, true, NULL, 0, NULL},
    {"includeWellKnownCertificates", K_BOOL, true, NULL, 0, NULL},
    {0},
};

static const struct field disk_image_fields[] = {
    {"sectorSize", K_UINT, true, NULL, UINT64_MAX, NULL},
    {0},
};

static const struct field customization_fields[] = {
    {"embeddedMachineConfiguration", K_STR, true, NULL, 0, NULL},
    {"extraKernelArgs", K_STRS, true, NULL, 0, NULL},
    {"meta", K_STRUCTS, true, meta_fields, 0, NULL},
    {"systemExtensions", K_STRUCT, true, extensions_fields, 0, NULL},
    {"bootloader", K_BOOTLOADER, true, NULL, 0, NULL},
    {"secureboot", K_STRUCT, true, secureboot_fields, 0, NULL},
    {"diskImage", K_STRUCT, true, disk_image_fields, 0, NULL},
    {0},
};

static const struct field overlay_fields[] = {
    {"image", K_STR, false, NULL, 0, NULL},
    {"name", K_STR, false, NULL, 0, NULL},
    {"options", K_ANYMAP, true, NULL, 0, NULL},
    {0},
};

static const struct field schematic_fields[] = {
    {"owner", K_REFUSED, true, NULL, 0,
     "Image Factory sets the owner from its login (Enterprise only) and refuses it in a "
     "schematic"},
    {"overlay", K_STRUCT, true, overlay_fields, 0, NULL},
    {"customization", K_STRUCT, false, customization_fields, 0, NULL},
    {0},
};

static const char *const bootloaders[] = {"none", "dual-boot", "sd-boot", "grub", NULL};

struct ctx {
    const char *file;
    struct bd_err *err;
};

static int fail(struct ctx *c, const struct bd_node *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct ctx *c, const struct bd_node *n, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_err_set(c->err, "%s:%d:%d: %s: %s", c->file, n->line, n->col, path, msg);
}

/* go-yaml v4 writes these strings single-quoted (YAML 1.1 booleans, base-60 numbers,
 * the merge key) or double-quoted (timestamps), which bd_yaml_emit does not reproduce:
 * better no id than a wrong one. */
static bool quoted_unlike_emitter(const char *s)
{
    static const char *const old_bools[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                            "n", "N", "no", "No", "NO", "off", "Off", "OFF",
                                            "<<", NULL};
    for (int i = 0; old_bools[i]; i++)
        if (!strcmp(s, old_bools[i]))
            return true;
    bool numeric_start = isdigit((unsigned char)s[0]) || s[0] == '+' || s[0] == '-';
    if (numeric_start && strchr(s, ':'))
        return true; /* base 60 */
    return strlen(s) >= 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
           isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && s[4] == '-';
}

static struct bd_node *string_node(struct ctx *c, const struct bd_node *n, const char *path,
                                   bool *zero)
{
    if (n->kind != BD_NODE_SCALAR) {
        fail(c, n, path, "expected a string, found a %s", bd_node_kind_name(n));
        return NULL;
    }
    /* go-yaml puts any scalar's text into a string field; null leaves it empty */
    const char *s = bd_node_is_null(n) ? "" : n->str;
    if (quoted_unlike_emitter(s)) {
        fail(c, n, path, "bootd cannot compute the id of a schematic holding the string \"%s\"", s);
        return NULL;
    }
    *zero = !*s;
    return bd_node_scalar(s, false);
}

static int parse_uint(const char *s, uint64_t *out)
{
    int base = 10;
    if (!strncmp(s, "0x", 2) || !strncmp(s, "0o", 2)) {
        base = s[1] == 'x' ? 16 : 8;
        s += 2;
    } else if (s[0] == '0' && s[1]) {
        return -1; /* leading zeros: octal to YAML 1.1, decimal to others */
    }
    if (!isxdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    *out = strtoull(s, &end, base);
    return *end || errno ? -1 : 0;
}

static struct bd_node *uint_node(struct ctx *c, const struct bd_node *n, const char *path,
                                 uint64_t max, bool *zero)
{
    uint64_t v = 0;
    if (!bd_node_is_null(n)) {
        if (n->kind != BD_NODE_SCALAR || !n->plain || parse_uint(n->str, &v) < 0) {
            fail(c, n, path, "expected an unsigned integer");
            return NULL;
        }
        if (v > max) {
            fail(c, n, path, "%" PRIu64 " is larger than %" PRIu64, v, max);
            return NULL;
        }
    }
    *zero = v == 0;
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return bd_node_scalar(buf, true);
}

static struct bd_node *bool_node(struct ctx *c, const struct bd_node *n, const char *path,
                                 bool *zero)
{
    bool v = false;
    if (!bd_node_is_null(n)) {
        const char *s = n->kind == BD_NODE_SCALAR && n->plain ? n->str : "";
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
            v = true;
        else if (strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE")) {
            fail(c, n, path, "expected true or false");
            return NULL;
        }
    }
    *zero = !v;
    return bd_node_scalar(v ? "true" : "false", true);
}

static struct bd_node *bootloader_node(struct ctx *c, const struct bd_node *n, const char *path,
                                       bool *zero)
{
    int idx = 0;
    if (!bd_node_is_null(n)) {
        idx = -1;
        for (int i = 0; n->kind == BD_NODE_SCALAR && bootloaders[i]; i++)
            if (!strcasecmp(n->str, bootloaders[i]))
                idx = i;
        if (idx < 0) {
            fail(c, n, path, "expected none, dual-boot, sd-boot or grub");
            return NULL;
        }
    }
    *zero = idx == 0;
    return bd_node_scalar(bootloaders[idx], true);
}

/* ---- map[string]any (overlay options): keys sorted as go-yaml sorts them ---- */

static size_t digits_at(const char *s, size_t i, int64_t *value)
{
    for (; isdigit((unsigned char)s[i]); i++)
        *value = *value * 10 + (s[i] - '0');
    return i;
}

/* go-yaml's natural key order: letters before other characters unless after digits,
 * runs of digits compared as numbers. Keys are ASCII here (checked by the caller). */
static bool key_less(const char *a, const char *b)
{
    bool after_digit = false;
    size_t i = 0;
    for (; a[i] && b[i]; i++) {
        if (a[i] == b[i]) {
            after_digit = isdigit((unsigned char)a[i]);
            continue;
        }
        bool al = isalpha((unsigned char)a[i]), bl = isalpha((unsigned char)b[i]);
        if (al && bl)
            return a[i] < b[i];
        if (al || bl)
            return after_digit ? al : bl;
        int64_t an = 0, bn = 0;
        if (a[i] == '0' || b[i] == '0')
            for (size_t j = i; j-- > 0 && isdigit((unsigned char)a[j]);)
                if (a[j] != '0') {
                    an = bn = 1;
                    break;
                }
        size_t ae = digits_at(a, i, &an), be = digits_at(b, i, &bn);
        if (an != bn)
            return an < bn;
        if (ae != be)
            return ae < be;
        return a[i] < b[i];
    }
    return !a[i] && b[i];
}

static bool is_decimal_int(const char *s)
{
    const char *p = s + (*s == '-' || *s == '+');
    if (!*p || (p[0] == '0' && p[1]))
        return false;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

static struct bd_node *any_node(struct ctx *c, const struct bd_node *n, const char *path);

static struct bd_node *any_scalar(struct ctx *c, const struct bd_node *n, const char *path)
{
    bool zero;
    if (!n->plain)
        return string_node(c, n, path, &zero);
    if (bd_node_is_null(n))
        return bd_node_scalar("null", true);
    const char *s = n->str;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return bd_node_scalar("true", true);
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return bd_node_scalar("false", true);
    if (is_decimal_int(s) && strcmp(s, "-0")) { /* go-yaml reads -0 as a float */
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno) {
            fail(c, n, path, "integer out of range");
            return NULL;
        }
        char buf[24];
        snprintf(buf, sizeof buf, "%lld", v);
        return bd_node_scalar(buf, true);
    }
    if (!bd_yaml_plain_safe(s) || !strcmp(s, "<<")) {
        fail(c, n, path, "bootd computes ids for strings, booleans and decimal integers here; "
                         "quote \"%s\" if it is a string", s);
        return NULL;
    }
    return string_node(c, n, path, &zero);
}

static struct bd_node *any_map(struct ctx *c, const struct bd_node *n, const char *path)
{
    struct bd_node *out = bd_node_new(BD_NODE_MAP);
    out->cap = 2 * n->n + 2;
    out->kids = bd_xcalloc(out->cap, sizeof *out->kids);
    for (size_t i = 0; i < n->n; i++) {
        const struct bd_node *k = n->kids[2 * i];
        const char *key = bd_node_is_null(k) ? "" : k->str;
        for (const char *p = key; *p; p++)
            if ((unsigned char)*p >= 0x80) {
                fail(c, k, path, "non-ASCII key \"%s\" is not supported", key);
                bd_node_free(out);
                return NULL;
            }
        char *sub = bd_xasprintf("%s.%s", path, key);
        struct bd_node *v = any_node(c, n->kids[2 * i + 1], sub);
        free(sub);
        if (!v) {
            bd_node_free(out);
            return NULL;
        }
        /* insertion sort: option maps are small */
        size_t at = out->n;
        while (at > 0 && key_less(key, out->kids[2 * (at - 1)]->str)) {
            out->kids[2 * at] = out->kids[2 * at - 2];
            out->kids[2 * at + 1] = out->kids[2 * at - 1];
            at--;
        }
        out->kids[2 * at] = bd_node_scalar(key, false);
        out->kids[2 * at + 1] = v;
        out->n++;
    }
    return out;
}

static struct bd_node *struct_node(struct ctx *c, const struct field *fields,
                                   const struct bd_node *n, const char *path, bool *zero);

/* An item of a list: of the field's kind, or any value when f is NULL. */
static struct bd_node *item_node(struct ctx *c, const struct field *f, const struct bd_node *n,
                                 const char *path, bool *zero)
{
    if (!f)
        return any_node(c, n, path);
    if (f->kind == K_STRS)
        return string_node(c, n, path, zero);
    return struct_node(c, f->sub, n, path, zero);
}

static struct bd_node *list_node(struct ctx *c, const struct field *f, const struct bd_node *n,
                                 const char *path)
{
    struct bd_node *out = bd_node_new(BD_NODE_SEQ);
    for (size_t i = 0; i < n->n; i++) {
        char *sub = bd_xasprintf("%s[%zu]", path, i);
        bool zero;
        struct bd_node *v = item_node(c, f, n->kids[i], sub, &zero);
        free(sub);
        if (!v) {
            bd_node_free(out);
            return NULL;
        }
        bd_node_seq_push(out, v);
    }
    return out;
}

static struct bd_node *any_node(struct ctx *c, const struct bd_node *n, const char *path)
{
    if (n->kind == BD_NODE_SCALAR)
        return any_scalar(c, n, path);
    if (n->kind == BD_NODE_MAP)
        return any_map(c, n, path);
    return list_node(c, NULL, n, path);
}

/* ---- structs ---- */

static struct bd_node *seq_node(struct ctx *c, const struct field *f, const struct bd_node *n,
                                const char *path, bool *zero)
{
    *zero = true;
    if (bd_node_is_null(n))
        return bd_node_new(BD_NODE_SEQ);
    if (n->kind != BD_NODE_SEQ) {
        fail(c, n, path, "expected a list, found a %s", bd_node_kind_name(n));
        return NULL;
    }
    struct bd_node *out = list_node(c, f, n, path);
    *zero = !out || out->n == 0;
    return out;
}

static struct bd_node *field_node(struct ctx *c, const struct field *f, const struct bd_node *n,
                                  const char *path, bool *zero)
{
    switch (f->kind) {
    case K_STR:
        return string_node(c, n, path, zero);
    case K_STRS:
    case K_STRUCTS:
        return seq_node(c, f, n, path, zero);
    case K_BOOL:
        return bool_node(c, n, path, zero);
    case K_UINT:
        return uint_node(c, n, path, f->max, zero);
    case K_BOOTLOADER:
        return bootloader_node(c, n, path, zero);
    case K_STRUCT:
        return struct_node(c, f->sub, n, path, zero);
    case K_ANYMAP:
        if (bd_node_is_null(n)) {
            *zero = true;
            return bd_node_new(BD_NODE_MAP);
        }
        if (n->kind != BD_NODE_MAP) {
            fail(c, n, path, "expected a mapping, found a %s", bd_node_kind_name(n));
            return NULL;
        }
        struct bd_node *m = any_map(c, n, path);
        *zero = m && m->n == 0;
        return m;
    case K_REFUSED:
        if (bd_node_is_null(n)) {
            *zero = true;
            return bd_node_scalar("", false);
        }
        fail(c, n, path, "%s", f->why);
        return NULL;
    }
    return NULL;
}

static const struct field *find_field(const struct field *fields, const char *key)
{
    for (const struct field *f = fields; f->key; f++)
        if (!strcmp(f->key, key))
            return f;
    return NULL;
}

static struct bd_node *struct_node(struct ctx *c, const struct field *fields,
                                   const struct bd_node *n, const char *path, bool *zero)
{
    *zero = true;
    if (!bd_node_is_null(n) && n->kind != BD_NODE_MAP) {
        fail(c, n, path, "expected a mapping, found a %s", bd_node_kind_name(n));
        return NULL;
    }
    for (size_t i = 0; n->kind == BD_NODE_MAP && i < n->n; i++)
        if (!find_field(fields, n->kids[2 * i]->str)) {
            struct bd_buf known;
            bd_buf_init(&known);
            for (const struct field *f = fields; f->key; f++)
                bd_buf_printf(&known, "%s%s", f == fields ? "" : ", ", f->key);
            fail(c, n->kids[2 * i], path, "unknown field \"%s\" (Image Factory accepts: %s)",
                 n->kids[2 * i]->str, known.data);
            bd_buf_free(&known);
            return NULL;
        }
    static const struct bd_node absent = {.kind = BD_NODE_SCALAR, .plain = true, .str = ""};
    struct bd_node *out = bd_node_new(BD_NODE_MAP);
    for (const struct field *f = fields; f->key; f++) {
        const struct bd_node *v = bd_node_get(n, f->key);
        char *sub = path[0] ? bd_xasprintf("%s.%s", path, f->key) : bd_xstrdup(f->key);
        bool fzero;
        struct bd_node *val = field_node(c, f, v ? v : &absent, sub, &fzero);
        free(sub);
        if (!val) {
            bd_node_free(out);
            return NULL;
        }
        *zero &= fzero;
        if (fzero && f->omitempty)
            bd_node_free(val);
        else
            bd_node_map_set(out, f->key, val);
    }
    return out;
}

int images_schematic_canonical(const char *text, size_t len, const char *file, char **out,
                               struct bd_err *err)
{
    struct bd_yaml_doc doc;
    if (bd_yaml_parse(text, len, file, &doc, err) < 0)
        return -1;
    if (doc.ndocs == 0) {
        bd_yaml_doc_free(&doc);
        return bd_err_set(err, "%s: empty schematic (write \"customization: {}\" for none)", file);
    }
    /* Image Factory decodes the first document only */
    struct ctx c = {.file = file, .err = err};
    bool zero;
    struct bd_node *canon = struct_node(&c, schematic_fields, doc.docs[0], "", &zero);
    bd_yaml_doc_free(&doc);
    if (!canon)
        return -1;
    struct bd_buf b;
    bd_buf_init(&b);
    bd_yaml_emit(&b, canon);
    bd_node_free(canon);
    *out = bd_buf_steal(&b);
    return 0;
}

int images_schematic_load(const char *path, char id[65], char **canonical, struct bd_err *err)
{
    if (!path) {
        memcpy(id, IMAGES_VANILLA_SCHEMATIC, 65);
        if (canonical)
            *canonical = bd_xstrdup(IMAGES_VANILLA_YAML);
        return 0;
    }
    char *text;
    size_t len;
    if (bd_file_read(path, &text, &len, err) < 0)
        return -1;
    char *canon;
    int rc = images_schematic_canonical(text, len, path, &canon, err);
    free(text);
    if (rc < 0)
        return -1;
    bd_sha256_hex(canon, strlen(canon), id);
    if (canonical)
        *canonical = canon;
    else
        free(canon);
    return 0;
}

int images_schematic_id(const struct lab *lab, char out[65], struct bd_err *err)
{
    return images_schematic_load(lab->images.schematic_file, out, NULL, err);
}
