/* The built-in kustomize: one kustomization (or component) at a time, in kustomize's
 * order — resources (files and nested kustomizations), generators, components, then
 * the transformers (patchesStrategicMerge, patches, namespace, namePrefix, nameSuffix,
 * labels, commonLabels, commonAnnotations, patchesJson6902, replicas, images) over
 * what this kustomization accumulated; at the top, hash suffixes for generated objects
 * and every reference to a renamed object updated. A field it does not handle is an
 * error naming the file, line and field. */
#include "kustomize_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REFUSE_HINT "install kustomize or kubectl, or name one in gitops.kustomize"

/* The fields of a kustomization, each with the node that set it. */
struct kfields {
    const struct bd_node *resources, *bases, *helm_charts, *namespace, *prefix, *suffix,
        *common_labels, *labels, *common_annotations, *images, *replicas, *cm_gen, *secret_gen,
        *gen_opts, *patches, *patches_sm, *patches_json, *components, *kind;
    int line_of[32];
};

static const struct {
    const char *name;
    size_t off;
} field_table[] = {
#define F(n, m)                                                                                    \
    {                                                                                              \
        n, offsetof(struct kfields, m)                                                             \
    }
    F("resources", resources),
    F("bases", bases),
    F("helmCharts", helm_charts),
    F("namespace", namespace),
    F("namePrefix", prefix),
    F("nameSuffix", suffix),
    F("commonLabels", common_labels),
    F("labels", labels),
    F("commonAnnotations", common_annotations),
    F("images", images),
    F("replicas", replicas),
    F("configMapGenerator", cm_gen),
    F("secretGenerator", secret_gen),
    F("generatorOptions", gen_opts),
    F("patches", patches),
    F("patchesStrategicMerge", patches_sm),
    F("patchesJson6902", patches_json),
    F("components", components),
    F("kind", kind),
#undef F
};

static int read_fields(const char *kfile, const struct bd_node *k, struct kfields *f,
                       struct bd_err *err)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < k->n; i++) {
        const struct bd_node *key = k->kids[2 * i], *v = k->kids[2 * i + 1];
        if (!strcmp(key->str, "apiVersion"))
            continue;
        size_t t = 0;
        while (t < sizeof field_table / sizeof field_table[0] &&
               strcmp(field_table[t].name, key->str))
            t++;
        if (t == sizeof field_table / sizeof field_table[0]) {
            if (bd_node_is_null(v))
                continue;
            return bd_err_set(err,
                              "%s:%d: %s: the built-in renderer does not handle this "
                              "field; " REFUSE_HINT,
                              kfile, key->line, key->str);
        }
        *(const struct bd_node **)((char *)f + field_table[t].off) = v;
        f->line_of[field_table[t].off / sizeof(struct bd_node *)] = key->line;
    }
    return 0;
}

static int line_of(const struct kfields *f, const struct bd_node *const *field)
{
    return f->line_of[((const char *)field - (const char *)f) / sizeof(struct bd_node *)];
}

static bool remote(const char *r)
{
    return strstr(r, "://") || !strncmp(r, "github.com/", 11) || strstr(r, "?ref=") ||
           !strncmp(r, "git@", 4);
}

/* What every level of one build shares. */
struct bctx {
    const char *root;
    const struct gitops_kust_helm *helm;
};

static int build(const struct bctx *c, const char *dir, size_t group, struct gitops_objs *out,
                 size_t from, bool component, int depth, struct bd_err *err);

static int one_resource(const struct bctx *c, const char *dir, const char *kfile, const char *field,
                        const struct bd_node *item, size_t idx, size_t group,
                        struct gitops_objs *out, int depth, struct bd_err *err)
{
    if (item->kind != BD_NODE_SCALAR || !*item->str)
        return bd_err_set(err, "%s:%d: %s[%zu]: expected a path", kfile, item->line, field, idx);
    if (remote(item->str))
        return bd_err_set(err,
                          "%s:%d: %s[%zu]: \"%s\" is remote; the built-in renderer reads "
                          "only files in the repository; " REFUSE_HINT,
                          kfile, item->line, field, idx, item->str);
    char *path = bd_path_join(dir, item->str);
    struct stat sb;
    int rc;
    if (stat(path, &sb) < 0) {
        rc = bd_err_set(err, "%s:%d: %s[%zu]: %s: %s", kfile, item->line, field, idx, path,
                        strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        rc = gitops_kustomize_dir_has_file(path)
                 ? build(c, path, group, out, out->n, !strcmp(field, "components"), depth + 1, err)
                 : bd_err_set(err, "%s:%d: %s[%zu]: %s has no kustomization.yaml", kfile,
                              item->line, field, idx, path);
    } else if (!strcmp(field, "components")) {
        rc = bd_err_set(err, "%s:%d: %s[%zu]: %s: a component is a directory", kfile, item->line,
                        field, idx, item->str);
    } else {
        /* as kustomize's default load restrictor: files only from the kustomization's
         * own directory tree */
        char *real = gitops_render_inside(dir, path, err);
        rc = real ? gitops_render_file(c->root, path, group, out, err) : -1;
        if (!real)
            bd_err_set(err, "%s:%d: %s[%zu]: %s is not in or below %s", kfile, item->line, field,
                       idx, item->str, dir);
        free(real);
    }
    free(path);
    return rc;
}

static int resources(const struct bctx *c, const char *dir, const char *kfile, const char *field,
                     const struct bd_node *list, size_t group, struct gitops_objs *out, int depth,
                     struct bd_err *err)
{
    if (bd_node_is_null(list))
        return 0;
    if (list->kind != BD_NODE_SEQ)
        return bd_err_set(err, "%s:%d: %s: expected a list", kfile, list->line, field);
    for (size_t i = 0; i < list->n; i++)
        if (one_resource(c, dir, kfile, field, list->kids[i], i, group, out, depth, err) < 0)
            return -1;
    return 0;
}

static bool same_id(const struct gitops_obj *a, const struct gitops_obj *b)
{
    return !strcmp(a->api_version, b->api_version) && !strcmp(a->kind, b->kind) &&
           !strcmp(a->name, b->name) && !strcmp(a->ns ? a->ns : "", b->ns ? b->ns : "");
}

static int check_unique(const char *kfile, struct gitops_objs *objs, size_t from,
                        struct bd_err *err)
{
    for (size_t i = from; i < objs->n; i++)
        for (size_t j = from; j < i; j++)
            if (same_id(&objs->v[i], &objs->v[j]))
                return bd_err_set(err, "%s: %s %s appears twice (%s and %s)", kfile,
                                  objs->v[i].kind, objs->v[i].name, objs->v[j].src, objs->v[i].src);
    return 0;
}

static const char *scalar(const struct bd_node *n)
{
    return n && n->kind == BD_NODE_SCALAR && !bd_node_is_null(n) ? n->str : NULL;
}

/* labels: [{pairs, includeSelectors, includeTemplates}] */
static int labels_list(const struct kust_at *at, const struct bd_node *list,
                       struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    if (bd_node_is_null(list))
        return 0;
    if (list->kind != BD_NODE_SEQ)
        return gitops_kust_fail(at, err, "expected a list");
    for (size_t i = 0; i < list->n; i++) {
        const struct bd_node *e = list->kids[i];
        struct kust_at here = {at->kfile, e->line, at->field};
        if (e->kind != BD_NODE_MAP)
            return gitops_kust_fail(&here, err, "expected a mapping");
        bool sel = false, tmpl = false;
        cJSON *pairs = NULL;
        for (size_t k = 0; k < e->n; k++) {
            const char *key = e->kids[2 * k]->str;
            const struct bd_node *v = e->kids[2 * k + 1];
            here.line = e->kids[2 * k]->line;
            if (!strcmp(key, "pairs")) {
                cJSON_Delete(pairs);
                if (!(pairs = gitops_kust_string_map(&here, v, err)))
                    return -1;
            } else if (!strcmp(key, "includeSelectors")) {
                sel = scalar(v) && !strcmp(v->str, "true");
            } else if (!strcmp(key, "includeTemplates")) {
                tmpl = scalar(v) && !strcmp(v->str, "true");
            } else {
                cJSON_Delete(pairs);
                return gitops_kust_fail(&here, err,
                                        "%s: the built-in renderer does not handle this "
                                        "field; " REFUSE_HINT,
                                        key);
            }
        }
        if (pairs)
            gitops_kust_labels(pairs, sel, tmpl, objs, from);
        cJSON_Delete(pairs);
    }
    return 0;
}

static int string_map_transform(const struct kust_at *at, const struct bd_node *n, bool labels,
                                struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    if (!n)
        return 0;
    cJSON *m = gitops_kust_string_map(at, n, err);
    if (!m)
        return -1;
    if (labels)
        gitops_kust_labels(m, true, true, objs, from);
    else
        gitops_kust_annotations(m, objs, from);
    cJSON_Delete(m);
    return 0;
}

static int transform(const struct bctx *c, const char *dir, const char *kfile,
                     const struct kfields *f, struct gitops_objs *out, size_t from,
                     struct bd_err *err)
{
#define AT(field, name)                                                                            \
    {                                                                                              \
        kfile, line_of(f, &f->field), name                                                         \
    }
    struct kust_at a_sm = AT(patches_sm, "patchesStrategicMerge"), a_p = AT(patches, "patches"),
                   a_ns = AT(namespace, "namespace"), a_pre = AT(prefix, "namePrefix"),
                   a_l = AT(labels, "labels"), a_cl = AT(common_labels, "commonLabels"),
                   a_ca = AT(common_annotations, "commonAnnotations"),
                   a_j = AT(patches_json, "patchesJson6902"), a_r = AT(replicas, "replicas"),
                   a_i = AT(images, "images");
#undef AT
    const char *ns = scalar(f->namespace), *pre = scalar(f->prefix), *suf = scalar(f->suffix);
    if (gitops_kust_patches(&a_sm, c->root, dir, f->patches_sm, out, from, err) < 0 ||
        gitops_kust_patches(&a_p, c->root, dir, f->patches, out, from, err) < 0)
        return -1;
    if (ns && *ns && gitops_kust_namespace(&a_ns, ns, out, from, err) < 0)
        return -1;
    if (((pre && *pre) || (suf && *suf)) &&
        gitops_kust_name_affix(&a_pre, pre, suf, out, from, err) < 0)
        return -1;
    if (labels_list(&a_l, f->labels, out, from, err) < 0 ||
        string_map_transform(&a_cl, f->common_labels, true, out, from, err) < 0 ||
        string_map_transform(&a_ca, f->common_annotations, false, out, from, err) < 0 ||
        gitops_kust_patches(&a_j, c->root, dir, f->patches_json, out, from, err) < 0 ||
        gitops_kust_replicas(&a_r, f->replicas, out, from, err) < 0 ||
        gitops_kust_images(&a_i, f->images, out, from, err) < 0)
        return -1;
    return 0;
}

static int build_from(const struct bctx *c, const char *dir, const char *kfile,
                      const struct bd_node *k, size_t group, struct gitops_objs *out, size_t from,
                      bool component, int depth, struct bd_err *err)
{
    struct kfields f;
    if (read_fields(kfile, k, &f, err) < 0)
        return -1;
    const char *kind = scalar(f.kind);
    if (kind && strcmp(kind, component ? "Component" : "Kustomization") &&
        !(depth == 0 && !strcmp(kind, "Component")))
        return bd_err_set(err, "%s:%d: kind: %s here must be a %s", kfile, f.kind->line, kind,
                          component ? "Component" : "Kustomization");
    if (resources(c, dir, kfile, "resources", f.resources, group, out, depth, err) < 0 ||
        resources(c, dir, kfile, "bases", f.bases, group, out, depth, err) < 0)
        return -1;
    struct kust_at a_cm = {kfile, line_of(&f, &f.cm_gen), "configMapGenerator"};
    struct kust_at a_sg = {kfile, line_of(&f, &f.secret_gen), "secretGenerator"};
    if (gitops_kust_generate(&a_cm, dir, f.cm_gen, false, f.gen_opts, group, out, from, err) < 0 ||
        gitops_kust_generate(&a_sg, dir, f.secret_gen, true, f.gen_opts, group, out, from, err) < 0)
        return -1;
    struct kust_at a_h = {kfile, line_of(&f, &f.helm_charts), "helmCharts"};
    if (f.helm_charts && !bd_node_is_null(f.helm_charts) &&
        gitops_kust_helm(&a_h, c->helm, dir, f.helm_charts, scalar(f.namespace), group, out, err) <
            0)
        return -1;
    if (f.components && !bd_node_is_null(f.components)) {
        if (f.components->kind != BD_NODE_SEQ)
            return bd_err_set(err, "%s:%d: components: expected a list", kfile, f.components->line);
        /* a component's transformers apply to everything accumulated so far */
        for (size_t i = 0; i < f.components->n; i++) {
            const struct bd_node *comp = f.components->kids[i];
            char *path = comp->kind == BD_NODE_SCALAR ? bd_path_join(dir, comp->str) : NULL;
            int rc = path && gitops_kustomize_dir_has_file(path)
                         ? build(c, path, group, out, from, true, depth + 1, err)
                         : bd_err_set(err,
                                      "%s:%d: components[%zu]: expected a directory with a "
                                      "kustomization.yaml",
                                      kfile, comp->line, i);
            free(path);
            if (rc < 0)
                return -1;
        }
    }
    if (transform(c, dir, kfile, &f, out, from, err) < 0)
        return -1;
    return check_unique(kfile, out, from, err);
}

static int build(const struct bctx *c, const char *dir, size_t group, struct gitops_objs *out,
                 size_t from, bool component, int depth, struct bd_err *err)
{
    if (depth > 32)
        return bd_err_set(err, "%s: kustomizations nested deeper than 32 (a cycle?)", dir);
    char *kfile = gitops_kustomize_file(dir);
    if (!kfile)
        return bd_err_set(err, "%s: no kustomization.yaml", dir);
    struct bd_yaml_doc doc;
    char *real = gitops_render_inside(c->root, dir, err);
    if (!real || bd_yaml_parse_file(kfile, &doc, err) < 0) {
        free(real);
        free(kfile);
        return -1;
    }
    free(real);
    const struct bd_node *k = doc.ndocs == 1 ? doc.docs[0] : NULL;
    int rc = k && k->kind == BD_NODE_MAP
                 ? build_from(c, dir, kfile, k, group, out, from, component, depth, err)
                 : bd_err_set(err, "%s: expected one Kustomization mapping", kfile);
    bd_yaml_doc_free(&doc);
    free(kfile);
    return rc;
}

static bool local_config(const struct gitops_obj *o)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o->json, "metadata"),
                                         "annotations"),
        "config.kubernetes.io/local-config");
    return cJSON_IsString(a) && !strcmp(a->valuestring, "true");
}

int gitops_kustomize_builtin(const char *root, const char *dir, size_t group,
                             const struct gitops_kust_helm *helm, struct gitops_objs *out,
                             struct bd_err *err)
{
    size_t from = out->n;
    struct bctx ctx = {root, helm}, *c = &ctx;
    int rc = build(c, dir, group, out, from, false, 0, err);
    if (rc == 0)
        rc = gitops_kust_hash_suffixes(out, from, err);
    if (rc == 0)
        gitops_kust_fix_references(out, from);
    for (size_t i = from; i < out->n; i++) {
        gitops_kust_track_strip(&out->v[i]);
        if (rc == 0 && local_config(&out->v[i]))
            gitops_kust_remove(out, i--);
    }
    return rc;
}
