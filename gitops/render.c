/* Rendering a path of the repository into objects: a YAML file, a directory of YAML
 * files (recursive, in byte order of their paths, so every run renders the same list),
 * or a kustomization directory (kustomize.c). */
#include "internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void gitops_objs_free(struct gitops_objs *o)
{
    for (size_t i = 0; i < o->n; i++) {
        struct gitops_obj *x = &o->v[i];
        cJSON_Delete(x->json);
        free(x->src);
        free(x->id);
        free(x->path);
        free(x->message);
    }
    free(o->v);
    memset(o, 0, sizeof *o);
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

/* Names go into API paths unescaped; the API server refuses these characters anyway. */
static bool name_ok(const char *s)
{
    if (strlen(s) > 253)
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == '%' || *s == '?' || *s == '#' || *s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

/* Takes j. */
static int add_object(cJSON *j, const char *file, int line, size_t group, struct gitops_objs *out,
                      struct bd_err *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const char *av = str_at(j, "apiVersion"), *kind = str_at(j, "kind");
    const char *name = cJSON_IsObject(meta) ? str_at(meta, "name") : NULL;
    const char *missing = !av ? "apiVersion" : !kind ? "kind" : !name ? "metadata.name" : NULL;
    if (missing) {
        bd_err_set(err, "%s:%d: object%s%s has no %s; every manifest needs apiVersion, kind and "
                        "metadata.name",
                   file, line, kind ? " of kind " : "", kind ? kind : "", missing);
        cJSON_Delete(j);
        return -1;
    }
    if (!name_ok(name)) {
        bd_err_set(err, "%s:%d: %s \"%s\": metadata.name is not a valid object name", file, line,
                   kind, name);
        cJSON_Delete(j);
        return -1;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->v = bd_xrealloc(out->v, out->cap * sizeof *out->v);
    }
    struct gitops_obj *o = &out->v[out->n++];
    memset(o, 0, sizeof *o);
    o->json = j;
    o->src = bd_xasprintf("%s:%d", file, line);
    o->group = group;
    o->api_version = av;
    o->kind = kind;
    o->name = name;
    o->ns = str_at(meta, "namespace");
    return 0;
}

/* A plain YYYY-MM-DD is a timestamp to kubectl and kustomize (go-yaml), which write it
 * back as RFC 3339; bootd does the same so that objects match theirs. */
static void dates_as_timestamps(struct bd_node *n)
{
    if (n->kind != BD_NODE_SCALAR) {
        size_t k = n->kind == BD_NODE_MAP ? 2 * n->n : n->n;
        for (size_t i = n->kind == BD_NODE_MAP ? 1 : 0; i < k; i += n->kind == BD_NODE_MAP ? 2 : 1)
            dates_as_timestamps(n->kids[i]);
        return;
    }
    const char *s = n->str;
    static const char shape[] = "dddd-dd-dd";
    if (!n->plain || strlen(s) != sizeof shape - 1)
        return;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return;
    char *ts = bd_xasprintf("%sT00:00:00Z", s);
    free(n->str);
    n->str = ts;
    n->plain = false;
}

int gitops_objs_from_yaml(struct bd_yaml_doc *doc, size_t group, struct gitops_objs *out,
                          struct bd_err *err)
{
    for (size_t i = 0; i < doc->ndocs; i++)
        dates_as_timestamps(doc->docs[i]);
    for (size_t i = 0; i < doc->ndocs; i++) {
        const struct bd_node *d = doc->docs[i];
        if (bd_node_is_null(d))
            continue;
        if (d->kind != BD_NODE_MAP)
            return bd_err_set(err, "%s:%d: expected a Kubernetes object (a mapping), got a %s",
                              doc->file, d->line, bd_node_kind_name(d));
        const struct bd_node *kind = bd_node_get(d, "kind"), *items = bd_node_get(d, "items");
        /* a v1 List carries its objects in items */
        if (kind && kind->kind == BD_NODE_SCALAR && !strcmp(kind->str, "List") && items &&
            items->kind == BD_NODE_SEQ) {
            for (size_t k = 0; k < items->n; k++) {
                if (items->kids[k]->kind != BD_NODE_MAP)
                    return bd_err_set(err, "%s:%d: List item is not an object", doc->file,
                                      items->kids[k]->line);
                if (add_object(bd_node_to_json(items->kids[k]), doc->file, items->kids[k]->line,
                               group, out, err) < 0)
                    return -1;
            }
            continue;
        }
        if (add_object(bd_node_to_json(d), doc->file, d->line, group, out, err) < 0)
            return -1;
    }
    return 0;
}

char *gitops_render_inside(const char *root, const char *path, struct bd_err *err)
{
    char rroot[PATH_MAX], rpath[PATH_MAX];
    if (!realpath(root, rroot)) {
        bd_err_set(err, "%s: %s", root, strerror(errno));
        return NULL;
    }
    if (!realpath(path, rpath)) {
        bd_err_set(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = strlen(rroot);
    if (strcmp(rroot, "/") && (strncmp(rpath, rroot, n) || (rpath[n] && rpath[n] != '/'))) {
        bd_err_set(err, "%s: leads outside the repository (to %s)", path, rpath);
        return NULL;
    }
    return bd_xstrdup(rpath);
}

int gitops_render_file(const char *root, const char *path, size_t group, struct gitops_objs *out,
                struct bd_err *err)
{
    char *real = gitops_render_inside(root, path, err);
    if (!real)
        return -1;
    free(real);
    struct bd_yaml_doc doc;
    if (bd_yaml_parse_file(path, &doc, err) < 0)
        return -1;
    int rc = gitops_objs_from_yaml(&doc, group, out, err);
    bd_yaml_doc_free(&doc);
    return rc;
}

static bool is_manifest(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")) ||
           (n > 5 && !strcmp(name + n - 5, ".json"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int render_dir(const char *root, const char *dir, size_t group,
                      const struct gitops_render_opts *o, struct gitops_objs *out, int depth,
                      struct bd_err *err);

static int render_any(const char *root, const char *path, size_t group,
                      const struct gitops_render_opts *o, struct gitops_objs *out, int depth,
                      struct bd_err *err)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return bd_err_set(err, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        if (gitops_kustomize_dir_has_file(path))
            return gitops_kustomize_build(root, path, group, o, out, err);
        return render_dir(root, path, group, o, out, depth, err);
    }
    return gitops_render_file(root, path, group, out, err);
}

static int render_dir(const char *root, const char *dir, size_t group,
                      const struct gitops_render_opts *o, struct gitops_objs *out, int depth,
                      struct bd_err *err)
{
    if (depth > 32)
        return bd_err_set(err, "%s: directories nested deeper than 32", dir);
    char *real = gitops_render_inside(root, dir, err);
    if (!real)
        return -1;
    free(real);
    DIR *d = opendir(dir);
    if (!d)
        return bd_err_set(err, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') /* ., .., .git and other hidden entries */
            continue;
        names = bd_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = bd_xstrdup(e->d_name);
    }
    closedir(d);
    if (n) /* names is NULL then, and qsort wants an array */
        qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = bd_path_join(dir, names[i]);
        struct stat sb;
        if (rc == 0 && stat(p, &sb) == 0 && (S_ISDIR(sb.st_mode) || is_manifest(names[i])))
            rc = render_any(root, p, group, o, out, depth + 1, err);
        free(p);
        free(names[i]);
    }
    free(names);
    return rc;
}

int gitops_render_path(const char *root, const char *rel, size_t group,
                       const struct gitops_render_opts *o, struct gitops_objs *out,
                       struct bd_err *err)
{
    char *path = bd_path_join(root, rel);
    int rc = render_any(root, path, group, o, out, 0, err);
    free(path);
    return rc;
}
