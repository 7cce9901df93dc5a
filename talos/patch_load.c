/* Patch files: which kind each is, and applying it. A file is either YAML mappings
 * (Talos's strategic merge: a v1alpha1 fragment and/or typed documents) or one list of
 * RFC 6902 operations, in YAML or JSON. Files ending in .tftpl are templates, filled
 * in per machine first (patch_template.c). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *const json_ops[] = {"add", "remove", "replace", "move", "copy", "test", NULL};

/* The operations' shape, checked when the file is read rather than when applied. */
static int check_json_ops(const char *file, const struct bd_node *ops, struct bd_err *err)
{
    for (size_t i = 0; i < ops->n; i++) {
        const struct bd_node *op = ops->kids[i];
        if (op->kind != BD_NODE_MAP)
            return bd_err_set(err, "%s:%d: operation %zu: expected a mapping {op, path, ...}", file,
                              op->line, i);
        const char *name = talos_tree_str_at(op, "op"), *path = talos_tree_str_at(op, "path");
        bool known = false;
        for (int k = 0; name && json_ops[k]; k++)
            known |= !strcmp(name, json_ops[k]);
        if (!known)
            return bd_err_set(err, "%s:%d: operation %zu: op must be one of add, remove, replace, "
                                   "move, copy, test",
                              file, op->line, i);
        if (!path || (path[0] && path[0] != '/'))
            return bd_err_set(err, "%s:%d: operation %zu: path must be a JSON pointer like "
                                   "/machine/install/disk",
                              file, op->line, i);
        bool wants_value = !strcmp(name, "add") || !strcmp(name, "replace") || !strcmp(name, "test");
        bool wants_from = !strcmp(name, "move") || !strcmp(name, "copy");
        if (wants_value && !bd_node_get(op, "value"))
            return bd_err_set(err, "%s:%d: operation %zu (%s %s): needs a value", file, op->line, i,
                              name, path);
        if (wants_from && !talos_tree_str_at(op, "from"))
            return bd_err_set(err, "%s:%d: operation %zu (%s %s): needs from", file, op->line, i,
                              name, path);
    }
    return 0;
}

int talos_patch_parse(struct talos_patch *p, const char *text, size_t len, struct bd_err *err)
{
    if (bd_yaml_parse(text, len, p->file, &p->yaml, err) < 0)
        return -1;
    /* null documents (a lone "---") are skipped, as Talos does */
    size_t keep = 0;
    for (size_t i = 0; i < p->yaml.ndocs; i++) {
        if (bd_node_is_null(p->yaml.docs[i]))
            bd_node_free(p->yaml.docs[i]);
        else
            p->yaml.docs[keep++] = p->yaml.docs[i];
    }
    p->yaml.ndocs = keep;
    if (keep == 1 && p->yaml.docs[0]->kind == BD_NODE_SEQ) {
        p->kind = PATCH_JSON;
        return check_json_ops(p->file, p->yaml.docs[0], err);
    }
    p->kind = PATCH_MERGE;
    for (size_t i = 0; i < keep; i++)
        if (p->yaml.docs[i]->kind != BD_NODE_MAP)
            return bd_err_set(err,
                              "%s:%d: a patch is YAML mappings (a strategic merge patch) or one "
                              "list of RFC 6902 operations, not %s",
                              p->file, p->yaml.docs[i]->line, bd_node_kind_name(p->yaml.docs[i]));
    return 0;
}

int talos_patch_load(const char *file, struct talos_patch *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    out->file = bd_xstrdup(file);
    char *text;
    size_t len;
    if (bd_file_read(file, &text, &len, err) < 0)
        return -1;
    if (ends_with(file, ".tftpl")) {
        out->is_template = true;
        out->text = text;
        out->tmpl = talos_tmpl_parse(file, text, err);
        return out->tmpl ? 0 : -1;
    }
    int rc = talos_patch_parse(out, text, len, err);
    free(text);
    return rc;
}

void talos_patch_free(struct talos_patch *p)
{
    free(p->file);
    free(p->text);
    talos_tmpl_free(p->tmpl);
    bd_yaml_doc_free(&p->yaml);
    memset(p, 0, sizeof *p);
}

int talos_patch_apply(struct talos_docs *d, const struct talos_patch *p, struct bd_err *err)
{
    if (p->kind == PATCH_JSON)
        return talos_patch_json_apply(&d->v[0], p->yaml.docs[0], p->file, err);
    for (size_t i = 0; i < p->yaml.ndocs; i++)
        if (talos_patch_merge_doc(d, p->yaml.docs[i], p->file, err) < 0)
            return -1;
    return 0;
}
