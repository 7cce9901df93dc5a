/* ArgoCD app-of-apps without ArgoCD (gitops.argocd: true). Rendering a group's paths
 * may yield Application and ApplicationSet objects (and AppProjects): instead of
 * applying them, bootd turns each Application into a group of its own that renders the
 * Application's source path, placed right after the group that rendered it, in sync-wave
 * order (then by name), depth first — the order in which ArgoCD syncs an app of apps
 * whose child Applications are health-checked wave by wave. ApplicationSets are expanded
 * with their git directory generators (path globs, exclude entries) and their template
 * ({{ path }}, {{ path.basename }}, {{ path.basenameNormalized }}, {{ path[N] }}, also
 * as Go templates with a leading dot). syncOptions CreateNamespace=true adds the
 * destination Namespace to the group (never pruned); the destination namespace is where
 * the group's namespaced objects without one go. Anything else an Application can say
 * (Helm or remote sources, other generators, multiple sources) is an error naming the
 * object. */
#include "kustomize_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WAVE_ANNOTATION "argocd.argoproj.io/sync-wave"
#define MAX_DEPTH 16

struct app {
    char *name, *path, *dest_ns, *src;
    cJSON *chart;      /* a Helm repository chart: a helmCharts entry, else NULL */
    char *unsupported; /* why bootd cannot render it, or NULL */
    long wave;
    bool create_ns, recurse;
};

static void app_free(struct app *a)
{
    free(a->name);
    free(a->path);
    free(a->dest_ns);
    free(a->src);
    free(a->unsupported);
    cJSON_Delete(a->chart);
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *at(const cJSON *o, const char *a, const char *b)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
}

static bool argo_kind(const struct gitops_obj *o, const char *kind)
{
    return !strncmp(o->api_version, "argoproj.io/", 12) && (!kind || !strcmp(o->kind, kind));
}

static int wave_of(const cJSON *meta, const char *src, long *wave, struct bd_err *err)
{
    const char *w = str(cJSON_GetObjectItemCaseSensitive(meta, "annotations"), WAVE_ANNOTATION);
    *wave = 0;
    if (!w)
        return 0;
    char *end;
    errno = 0;
    *wave = strtol(w, &end, 10);
    if (!*w || *end || errno)
        return bd_err_set(err, "%s: %s \"%s\" is not a whole number", src, WAVE_ANNOTATION, w);
    return 0;
}

/* A source with a chart from a Helm repository, as a kustomize helmCharts entry:
 * valueFiles written "$<ref>/path" name files of this repository (the other sources may
 * only be such refs). NULL with why when bootd cannot take it. */
static cJSON *chart_entry(const char *name, const cJSON *spec, const cJSON *source,
                          const cJSON *sources, char **why)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, sources)
    {
        if (s != source && (!str(s, "ref") || str(s, "path") || str(s, "chart"))) {
            *why = bd_xstrdup("its other sources may only be refs to this repository");
            return NULL;
        }
    }
    const cJSON *helm = cJSON_GetObjectItemCaseSensitive(source, "helm");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", str(source, "chart"));
    cJSON_AddStringToObject(e, "repo", str(source, "repoURL") ? str(source, "repoURL") : "");
    if (str(source, "targetRevision"))
        cJSON_AddStringToObject(e, "version", str(source, "targetRevision"));
    cJSON_AddStringToObject(e, "releaseName",
                            str(helm, "releaseName") ? str(helm, "releaseName") : name);
    const char *ns = str(cJSON_GetObjectItemCaseSensitive(spec, "destination"), "namespace");
    if (ns && *ns)
        cJSON_AddStringToObject(e, "namespace", ns);
    const cJSON *vf;
    cJSON *more = NULL;
    cJSON_ArrayForEach(vf, cJSON_GetObjectItemCaseSensitive(helm, "valueFiles"))
    {
        const char *v = cJSON_IsString(vf) ? vf->valuestring : "";
        const char *slash = strchr(v, '/');
        if (v[0] != '$' || !slash || !slash[1]) {
            *why = bd_xasprintf("value file \"%s\" is not \"$<ref>/<path in this repository>\"", v);
            cJSON_Delete(more);
            cJSON_Delete(e);
            return NULL;
        }
        if (!cJSON_GetObjectItemCaseSensitive(e, "valuesFile")) {
            cJSON_AddStringToObject(e, "valuesFile", slash + 1);
        } else {
            if (!more)
                more = cJSON_CreateArray();
            cJSON_AddItemToArray(more, cJSON_CreateString(slash + 1));
        }
    }
    if (more)
        cJSON_AddItemToObject(e, "additionalValuesFiles", more);
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(helm, "valuesObject");
    const char *text = str(helm, "values");
    if (cJSON_IsObject(obj)) {
        cJSON_AddItemToObject(e, "valuesInline", cJSON_Duplicate(obj, true));
    } else if (text) {
        struct bd_yaml_doc doc;
        struct bd_err perr;
        if (bd_yaml_parse(text, strlen(text), "helm.values", &doc, &perr) < 0) {
            *why = bd_xasprintf("helm.values: %s", perr.msg);
            cJSON_Delete(e);
            return NULL;
        }
        if (doc.ndocs && doc.docs[0]->kind == BD_NODE_MAP)
            cJSON_AddItemToObject(e, "valuesInline", bd_node_to_json(doc.docs[0]));
        bd_yaml_doc_free(&doc);
    }
    return e;
}

/* The parts of an Application spec bootd acts on. */
static int app_from_spec(const char *name, const cJSON *meta, const cJSON *spec, const char *src,
                         struct app *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(spec, "source");
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(spec, "sources");
    const cJSON *s, *scan = source ? NULL : sources;
    cJSON_ArrayForEach(s, scan)
    {
        if (str(s, "path") || str(s, "chart")) {
            if (source) { /* two that render */
                source = NULL;
                break;
            }
            source = s;
        }
    }
    const char *path = str(source, "path");
    char *why = NULL;
    if (str(source, "chart") && !path)
        out->chart = chart_entry(name, spec, source, sources, &why);
    else if (!path)
        why = bd_xstrdup("bootd takes a source with a path in this repository or a chart from "
                         "a Helm repository, one of them");
    if (why) {
        out->unsupported = bd_xasprintf("%s: Application %s: %s", src, name, why);
        free(why);
    }
    long wave;
    if (wave_of(meta, src, &wave, err) < 0) {
        free(out->unsupported);
        out->unsupported = NULL;
        cJSON_Delete(out->chart);
        out->chart = NULL;
        return -1;
    }
    const cJSON *opt;
    bool create_ns = false;
    cJSON_ArrayForEach(opt, at(spec, "syncPolicy", "syncOptions"))
    {
        create_ns =
            create_ns || (cJSON_IsString(opt) && !strcmp(opt->valuestring, "CreateNamespace=true"));
    }
    out->name = bd_xstrdup(name);
    /* ArgoCD paths are relative to the repository root; "." and "./x" read the same */
    while (path && path[0] == '.' && path[1] == '/')
        path += 2;
    out->path = !path || out->unsupported ? NULL : bd_xstrdup(!strcmp(path, ".") ? "" : path);
    const char *ns = str(cJSON_GetObjectItemCaseSensitive(spec, "destination"), "namespace");
    out->dest_ns = ns && *ns ? bd_xstrdup(ns) : NULL;
    out->src = bd_xstrdup(src);
    out->wave = wave;
    out->create_ns = create_ns;
    out->recurse = cJSON_IsTrue(at(source, "directory", "recurse"));
    return 0;
}

/* ---- ApplicationSet git directory generators ---- */

static char *normalized(const char *s)
{
    char *out = bd_xstrdup(s);
    for (char *p = out; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            *p = '-';
    return out;
}

/* Fills {{ ... }} placeholders of the template string s for directory dir; NULL with err
 * on an unknown one. */
static char *fill(const char *s, const char *dir, const char *src, struct bd_err *err)
{
    struct bd_buf b;
    bd_buf_init(&b);
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    for (const char *p = s; *p;) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open, "}}") : NULL;
        if (!close) {
            bd_buf_puts(&b, p);
            break;
        }
        bd_buf_append(&b, p, (size_t)(open - p));
        const char *k = open + 2, *e = close;
        while (k < e && *k == ' ')
            k++;
        while (e > k && e[-1] == ' ')
            e--;
        if (k < e && *k == '.') /* goTemplate: {{ .path.basename }} */
            k++;
        char *key = bd_xstrndup(k, (size_t)(e - k));
        int idx = -1;
        if (!strcmp(key, "path") || !strcmp(key, "path.path")) {
            bd_buf_puts(&b, dir);
        } else if (!strcmp(key, "path.basename")) {
            bd_buf_puts(&b, base);
        } else if (!strcmp(key, "path.basenameNormalized")) {
            char *n = normalized(base);
            bd_buf_puts(&b, n);
            free(n);
        } else if (sscanf(key, "path[%d]", &idx) == 1 && idx >= 0) {
            const char *seg = dir;
            for (int i = 0; i < idx && seg; i++)
                seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL;
            if (!seg) {
                bd_err_set(err, "%s: {{%s}}: %s has no segment %d", src, key, dir, idx);
                free(key);
                bd_buf_free(&b);
                return NULL;
            }
            bd_buf_append(&b, seg, strcspn(seg, "/"));
        } else {
            bd_err_set(err,
                       "%s: template parameter {{%s}} is not one bootd fills (path, "
                       "path.basename, path.basenameNormalized, path[N])",
                       src, key);
            free(key);
            bd_buf_free(&b);
            return NULL;
        }
        free(key);
        p = close + 2;
    }
    char *s_out = bd_buf_steal(&b);
    return s_out ? s_out : bd_xstrdup("");
}

/* A copy of the template with every string filled for dir. */
static cJSON *fill_json(const cJSON *t, const char *dir, const char *src, struct bd_err *err)
{
    if (cJSON_IsString(t)) {
        char *s = fill(t->valuestring, dir, src, err);
        cJSON *v = s ? cJSON_CreateString(s) : NULL;
        free(s);
        return v;
    }
    if (!cJSON_IsObject(t) && !cJSON_IsArray(t))
        return cJSON_Duplicate(t, true);
    cJSON *out = cJSON_IsObject(t) ? cJSON_CreateObject() : cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, t)
    {
        cJSON *v = fill_json(e, dir, src, err);
        if (!v) {
            cJSON_Delete(out);
            return NULL;
        }
        if (cJSON_IsObject(t))
            cJSON_AddItemToObject(out, e->string, v);
        else
            cJSON_AddItemToArray(out, v);
    }
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Directories of the checkout matching the generator's directories (path globs, minus
 * the exclude entries), sorted; repository-relative. */
static int directories(const char *root, const cJSON *dirs, const char *src, char ***out, size_t *n,
                       struct bd_err *err)
{
    *out = NULL;
    *n = 0;
    size_t rootlen = strlen(root);
    for (int pass = 0; pass < 2; pass++) { /* includes, then excludes */
        const cJSON *d;
        cJSON_ArrayForEach(d, dirs)
        {
            const char *pat = str(d, "path");
            bool exclude = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "exclude"));
            if (!pat)
                return bd_err_set(err, "%s: a git directories entry needs a path", src);
            if (exclude != (pass == 1))
                continue;
            char *full = bd_path_join(root, pat);
            glob_t g;
            int rc = glob(full, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g);
            free(full);
            for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
                struct stat sb;
                const char *m = g.gl_pathv[i];
                if (stat(m, &sb) < 0 || !S_ISDIR(sb.st_mode) || strncmp(m, root, rootlen) ||
                    m[rootlen] != '/')
                    continue;
                const char *rel = m + rootlen + 1;
                size_t k = 0;
                while (k < *n && strcmp((*out)[k], rel))
                    k++;
                if (pass == 0 && k == *n) {
                    *out = bd_xrealloc(*out, (*n + 1) * sizeof **out);
                    (*out)[(*n)++] = bd_xstrdup(rel);
                } else if (pass == 1 && k < *n) {
                    free((*out)[k]);
                    (*out)[k] = (*out)[--*n];
                }
            }
            if (rc == 0)
                globfree(&g);
        }
    }
    if (*n)
        qsort(*out, *n, sizeof **out, cmp_str);
    return 0;
}

static void apps_push(struct app **v, size_t *n, const struct app *a)
{
    *v = bd_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = *a;
}

static int from_appset(const char *root, const struct gitops_obj *o, struct app **v, size_t *n,
                       struct bd_err *err)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o->json, "spec");
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    long set_wave;
    if (wave_of(cJSON_GetObjectItemCaseSensitive(o->json, "metadata"), o->src, &set_wave, err) < 0)
        return -1;
    if (!cJSON_IsObject(tmpl) || cJSON_GetObjectItemCaseSensitive(spec, "templatePatch"))
        return bd_err_set(err,
                          "%s: ApplicationSet %s: bootd needs a template (and takes no "
                          "templatePatch)",
                          o->src, o->name);
    const cJSON *gen;
    cJSON_ArrayForEach(gen, cJSON_GetObjectItemCaseSensitive(spec, "generators"))
    {
        const cJSON *git = cJSON_GetObjectItemCaseSensitive(gen, "git");
        const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(git, "directories");
        if (!git || !cJSON_IsArray(dirs) || cJSON_GetArraySize(gen) != 1)
            return bd_err_set(err,
                              "%s: ApplicationSet %s: bootd expands only git directory "
                              "generators",
                              o->src, o->name);
        char **found;
        size_t nfound;
        if (directories(root, dirs, o->src, &found, &nfound, err) < 0)
            return -1;
        int rc = 0;
        for (size_t i = 0; i < nfound; i++) {
            cJSON *t = rc == 0 ? fill_json(tmpl, found[i], o->src, err) : NULL;
            const cJSON *meta = cJSON_GetObjectItemCaseSensitive(t, "metadata");
            const char *name = str(meta, "name");
            struct app a;
            if (!t)
                rc = -1;
            else if (!name || !*name)
                rc = bd_err_set(err, "%s: ApplicationSet %s: the template gives %s no name", o->src,
                                o->name, found[i]);
            else if (app_from_spec(name, meta, cJSON_GetObjectItemCaseSensitive(t, "spec"), o->src,
                                   &a, err) == 0) {
                if (!str(cJSON_GetObjectItemCaseSensitive(meta, "annotations"), WAVE_ANNOTATION))
                    a.wave = set_wave;
                apps_push(v, n, &a);
            } else {
                rc = -1;
            }
            cJSON_Delete(t);
            free(found[i]);
        }
        free(found);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int cmp_app(const void *a, const void *b)
{
    const struct app *x = a, *y = b;
    if (x->wave != y->wave)
        return x->wave < y->wave ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- the plan ---- */

struct planner {
    const struct gitops_cfg *cfg;
    const struct gitops_render_opts *ro;
    bool keep_going; /* plan only: a path that fails to render is noted, not fatal */
    struct gitops_plan *plan;
    struct gitops_objs *objs;
};

static size_t add_group(struct gitops_plan *p, const char *name, const char *from, long wave,
                        const char *dest_ns, int depth)
{
    p->groups = bd_xrealloc(p->groups, (p->n + 1) * sizeof *p->groups);
    struct gitops_plan_group *g = &p->groups[p->n];
    memset(g, 0, sizeof *g);
    g->name = bd_xstrdup(name);
    g->from = from ? bd_xstrdup(from) : NULL;
    g->wave = wave;
    g->dest_ns = dest_ns ? bd_xstrdup(dest_ns) : NULL;
    g->depth = depth;
    return p->n++;
}

static void group_add_path(struct gitops_plan_group *g, const char *path)
{
    g->paths = bd_xrealloc(g->paths, (g->npaths + 1) * sizeof *g->paths);
    g->paths[g->npaths++] = bd_xstrdup(path);
}

static int expand(struct planner *pl, size_t gi, int depth, struct bd_err *err);

/* A path or chart of group gi that did not render: fatal, or noted in a plan. */
static int not_rendered(struct planner *pl, size_t gi, struct bd_err *err)
{
    struct gitops_plan_group *g = &pl->plan->groups[gi];
    if (!pl->keep_going)
        return bd_err_prefix(err, "group %s", g->name);
    char *note = bd_xasprintf("%s%s%s", g->error ? g->error : "", g->error ? "; " : "", err->msg);
    free(g->error);
    g->error = note;
    return 0;
}

/* Moves the rendered objects of group gi to the plan's list, except ArgoCD's own kinds:
 * Applications (also those of ApplicationSets) go to apps. */
static int sort_out(struct planner *pl, struct gitops_objs *tmp, struct app **apps, size_t *napps,
                    struct bd_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < tmp->n; i++) {
        struct gitops_obj *o = &tmp->v[i];
        if (argo_kind(o, "Application")) {
            struct app a;
            rc = app_from_spec(o->name, cJSON_GetObjectItemCaseSensitive(o->json, "metadata"),
                               cJSON_GetObjectItemCaseSensitive(o->json, "spec"), o->src, &a, err);
            if (rc == 0)
                apps_push(apps, napps, &a);
        } else if (argo_kind(o, "ApplicationSet")) {
            rc = from_appset(pl->cfg->checkout_dir, o, apps, napps, err);
        } else if (!argo_kind(o, NULL)) {
            /* the object moves to the plan's list; tmp keeps an empty shell */
            struct gitops_objs *out = pl->objs;
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 64;
                out->v = bd_xrealloc(out->v, out->cap * sizeof *out->v);
            }
            out->v[out->n++] = *o;
            memset(o, 0, sizeof *o);
        }
    }
    gitops_objs_free(tmp);
    return rc;
}

/* Renders path into group gi; Applications found become groups right after. */
static int render_into(struct planner *pl, size_t gi, const char *path, struct app **apps,
                       size_t *napps, struct bd_err *err)
{
    struct gitops_objs tmp = {0};
    /* ArgoCD reads a plain directory without its subdirectories unless told to recurse;
     * lab.yaml's own groups keep bootd's recursive reading */
    struct gitops_render_opts ro = pl->ro ? *pl->ro : (struct gitops_render_opts){0};
    ro.flat = pl->plan->groups[gi].depth > 0 && !pl->plan->groups[gi].recurse;
    if (gitops_render_path(pl->cfg->checkout_dir, path, gi, &ro, &tmp, err) < 0) {
        gitops_objs_free(&tmp);
        return not_rendered(pl, gi, err);
    }
    return sort_out(pl, &tmp, apps, napps, err);
}

/* Renders a Helm repository chart of an Application into group gi, through the
 * built-in kustomize's helmCharts (the same cache). */
static int render_chart(struct planner *pl, size_t gi, const struct app *a, struct bd_err *err)
{
    const struct gitops_render_opts *ro = pl->ro;
    char *helm = ro && ro->helm ? bd_xstrdup(ro->helm) : gitops_find_program("helm");
    char *cache = ro && ro->helm_cache ? bd_xstrdup(ro->helm_cache)
                                       : bd_path_join(pl->cfg->checkout_dir, "charts");
    struct gitops_kust_helm h = {helm, cache, ro && ro->timeout_s ? ro->timeout_s : 120};
    char *file = bd_xstrdup(a->src);
    char *colon = strrchr(file, ':');
    int line = colon ? atoi(colon + 1) : 0;
    if (colon)
        *colon = 0;
    struct kust_at where = {file, line, "chart"};
    struct bd_node *entry = bd_node_from_json(a->chart);
    struct bd_node *list = bd_node_new(BD_NODE_SEQ);
    bd_node_seq_push(list, entry);
    struct gitops_objs tmp = {0};
    int rc = gitops_kust_helm(&where, &h, pl->cfg->checkout_dir, list, NULL, gi, &tmp, err);
    bd_node_free(list);
    free(file);
    free(helm);
    free(cache);
    if (rc < 0) {
        gitops_objs_free(&tmp);
        return not_rendered(pl, gi, err);
    }
    struct app *none = NULL;
    size_t n = 0;
    rc = sort_out(pl, &tmp, &none, &n, err); /* a chart's Applications are not followed */
    for (size_t i = 0; i < n; i++)
        app_free(&none[i]);
    free(none);
    return rc;
}

/* A namespace the Application's CreateNamespace=true asks for, unless rendered; never
 * pruned, as ArgoCD never deletes the namespaces it creates. */
static int add_namespace(struct planner *pl, size_t gi, const char *ns, struct bd_err *err)
{
    for (size_t i = 0; i < pl->objs->n; i++) {
        const struct gitops_obj *o = &pl->objs->v[i];
        if (!strcmp(o->kind, "Namespace") && !strcmp(o->api_version, "v1") && !strcmp(o->name, ns))
            return 0;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "apiVersion", "v1");
    cJSON_AddStringToObject(j, "kind", "Namespace");
    cJSON *meta = cJSON_AddObjectToObject(j, "metadata");
    cJSON_AddStringToObject(meta, "name", ns);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"), GITOPS_PRUNE_ANNOTATION,
                            "disabled");
    struct bd_node *node = bd_node_from_json(j);
    cJSON_Delete(j);
    char *name = bd_xasprintf("%s (CreateNamespace=true)", pl->plan->groups[gi].from);
    struct bd_yaml_doc doc = {.file = name, .ndocs = 1, .docs = &node};
    int rc = gitops_objs_from_yaml(&doc, gi, pl->objs, err);
    bd_node_free(node);
    free(name);
    return rc;
}

static int expand(struct planner *pl, size_t gi, int depth, struct bd_err *err)
{
    if (depth > MAX_DEPTH)
        return bd_err_set(err, "group %s: Applications nested deeper than %d (a cycle?)",
                          pl->plan->groups[gi].name, MAX_DEPTH);
    struct app *apps = NULL;
    size_t napps = 0;
    int rc = 0;
    for (size_t p = 0; rc == 0 && p < pl->plan->groups[gi].npaths; p++) {
        char *path = bd_xstrdup(pl->plan->groups[gi].paths[p]);
        rc = render_into(pl, gi, path, &apps, &napps, err);
        free(path);
    }
    if (rc == 0 && pl->plan->groups[gi].create_ns && pl->plan->groups[gi].dest_ns)
        rc = add_namespace(pl, gi, pl->plan->groups[gi].dest_ns, err);
    if (napps)
        qsort(apps, napps, sizeof *apps, cmp_app);
    for (size_t i = 0; rc == 0 && i < napps; i++) {
        for (size_t k = 0; k < pl->plan->n; k++)
            if (!strcmp(pl->plan->groups[k].name, apps[i].name)) {
                rc = bd_err_set(err, "%s: Application %s: a group of that name exists (%s)",
                                apps[i].src, apps[i].name,
                                pl->plan->groups[k].from ? pl->plan->groups[k].from : "lab.yaml");
                break;
            }
        if (rc < 0)
            break;
        if (apps[i].unsupported && !pl->keep_going) {
            rc = bd_err_set(err, "%s", apps[i].unsupported);
            break;
        }
        size_t child = add_group(pl->plan, apps[i].name, apps[i].src, apps[i].wave, apps[i].dest_ns,
                                 depth + 1);
        pl->plan->groups[child].create_ns = apps[i].create_ns;
        pl->plan->groups[child].recurse = apps[i].recurse;
        pl->plan->groups[child].parent = gi;
        if (apps[i].unsupported) {
            pl->plan->groups[child].error = bd_xstrdup(apps[i].unsupported);
            continue;
        }
        if (apps[i].chart) {
            const cJSON *c = apps[i].chart;
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "version");
            char *what = bd_xasprintf("chart %s %s from %s",
                                      cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring,
                                      cJSON_IsString(v) ? v->valuestring : "(latest)",
                                      cJSON_GetObjectItemCaseSensitive(c, "repo")->valuestring);
            group_add_path(&pl->plan->groups[child], what);
            free(what);
            rc = render_chart(pl, child, &apps[i], err);
            if (rc == 0 && apps[i].create_ns && apps[i].dest_ns)
                rc = add_namespace(pl, child, apps[i].dest_ns, err);
            continue;
        }
        group_add_path(&pl->plan->groups[child], apps[i].path);
        rc = expand(pl, child, depth + 1, err);
    }
    for (size_t i = 0; i < napps; i++)
        app_free(&apps[i]);
    free(apps);
    return rc;
}

int gitops_argocd_plan(const struct gitops_cfg *cfg, const struct gitops_render_opts *ro,
                       bool keep_going, struct gitops_plan *plan, struct gitops_objs *objs,
                       struct bd_err *err)
{
    memset(plan, 0, sizeof *plan);
    struct planner pl = {cfg, ro, keep_going, plan, objs};
    for (size_t g = 0; g < cfg->ngroups; g++) {
        size_t gi = add_group(plan, cfg->groups[g].name, NULL, 0, NULL, 0);
        plan->groups[gi].parent = (size_t)-1;
        for (size_t p = 0; p < cfg->groups[g].npaths; p++)
            group_add_path(&plan->groups[gi], cfg->groups[g].paths[p]);
        if (expand(&pl, gi, 0, err) < 0)
            return -1;
    }
    return 0;
}

void gitops_plan_free(struct gitops_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct gitops_plan_group *g = &p->groups[i];
        for (size_t k = 0; k < g->npaths; k++)
            free(g->paths[k]);
        free(g->paths);
        free(g->name);
        free(g->from);
        free(g->dest_ns);
        free(g->error);
    }
    free(p->groups);
    memset(p, 0, sizeof *p);
}
