/* helmCharts, as kustomize's HelmChartInflationGenerator does it, through `helm
 * template`: the chart is pulled once (`helm pull --untar`) into a cache keyed by
 * repository, name and version and used from there afterwards, without the network;
 * values are the chart's own values.yaml or valuesFile, with valuesInline merged over
 * them (valuesMerge override, merge or replace); the release goes to the entry's
 * namespace, else the kustomization's. Helm's own state (repository cache, config)
 * stays inside the cache directory. */
#include "kustomize_internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const known[] = {
    "name",        "repo",        "version",      "releaseName",
    "namespace",   "valuesFile",  "valuesInline", "valuesMerge",
    "includeCRDs", "skipTests",   "skipHooks",    "additionalValuesFiles",
    "apiVersions", "kubeVersion", "nameTemplate",
};

static const char *scalar(const struct bd_node *e, const char *key)
{
    const struct bd_node *v = bd_node_get(e, key);
    return v && v->kind == BD_NODE_SCALAR && !bd_node_is_null(v) ? v->str : NULL;
}

static bool flag(const struct bd_node *e, const char *key)
{
    const char *v = scalar(e, key);
    return v && !strcmp(v, "true");
}

/* A file inside the kustomization's tree (kustomize's load restrictor). */
static char *inside(const struct kust_at *at, const char *dir, const char *rel, struct bd_err *err)
{
    char *path = bd_path_join(dir, rel);
    char *real = gitops_render_inside(dir, path, err);
    free(path);
    if (!real)
        gitops_kust_fail(at, err, "%s is not in or below %s", rel, dir);
    return real;
}

/* Deep merge of src into dst, src winning (kustomize's merge2 for values). */
static void merge_values(cJSON *dst, const cJSON *src)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, src)
    {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, s->string);
        if (cJSON_IsObject(s) && cJSON_IsObject(d))
            merge_values(d, s);
        else if (cJSON_IsNull(s))
            cJSON_DeleteItemFromObjectCaseSensitive(dst, s->string);
        else if (d)
            cJSON_ReplaceItemInObjectCaseSensitive(dst, s->string, cJSON_Duplicate(s, true));
        else
            cJSON_AddItemToObject(dst, s->string, cJSON_Duplicate(s, true));
    }
}

static cJSON *read_values(const char *path, struct bd_err *err)
{
    struct bd_yaml_doc doc;
    if (bd_yaml_parse_file(path, &doc, err) < 0)
        return NULL;
    cJSON *v = doc.ndocs && !bd_node_is_null(doc.docs[0]) ? bd_node_to_json(doc.docs[0])
                                                          : cJSON_CreateObject();
    bd_yaml_doc_free(&doc);
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        bd_err_set(err, "%s: values must be a mapping", path);
        return NULL;
    }
    return v;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a directory tree (a superseded or half-pulled chart); missing is fine. */
static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The chart's directory: in the cache, pulled first if it is not there yet. */
static char *chart_dir(const struct kust_at *at, const struct gitops_kust_helm *h, const char *dir,
                       const struct bd_node *e, struct bd_err *err)
{
    const char *name = scalar(e, "name"), *repo = scalar(e, "repo");
    const char *version = scalar(e, "version");
    if (!repo) { /* a chart kept in the repository, in kustomize's chartHome */
        char *local = bd_xasprintf("charts/%s", name);
        char *real = inside(at, dir, local, err);
        free(local);
        return real;
    }
    char key[65];
    char *id = bd_xasprintf("%s\n%s\n%s", repo, name, version ? version : "");
    bd_sha256_hex(id, strlen(id), key);
    free(id);
    key[16] = 0;
    char *home = bd_xasprintf("%s/%s-%s-%s", h->cache_dir, name, version ? version : "latest", key);
    char *chart = bd_path_join(home, name);
    struct stat sb;
    if (version && stat(chart, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        free(home);
        return chart;
    }
    /* pulled into a fresh directory and renamed into place, so that a cut download never
     * looks like a cached chart */
    char *tmp = bd_xasprintf("%s.tmp.%d", home, (int)getpid());
    char *cfg = bd_xasprintf("%s/.helm", h->cache_dir);
    int rc = bd_mkdir_p(tmp, 0700, err);
    if (rc == 0) {
        char *env[] = {bd_xasprintf("HELM_CONFIG_HOME=%s", cfg),
                       bd_xasprintf("HELM_CACHE_HOME=%s/cache", cfg),
                       bd_xasprintf("HELM_DATA_HOME=%s/data", cfg), NULL};
        /* an OCI registry names the chart in its reference, an HTTP repository by --repo */
        bool oci = !strncmp(repo, "oci://", 6);
        size_t rl = strlen(repo);
        char *ref =
            oci ? bd_xasprintf("%.*s/%s", (int)(rl - (repo[rl - 1] == '/')), repo, name) : NULL;
        char *argv[12];
        size_t k = 0;
        argv[k++] = (char *)h->helm;
        argv[k++] = "pull";
        argv[k++] = "--untar";
        argv[k++] = "--untardir";
        argv[k++] = tmp;
        if (oci) {
            argv[k++] = ref;
        } else {
            argv[k++] = "--repo";
            argv[k++] = (char *)repo;
            argv[k++] = (char *)name;
        }
        if (version) {
            argv[k++] = "--version";
            argv[k++] = (char *)version;
        }
        argv[k] = NULL;
        struct bd_buf out;
        bd_buf_init(&out);
        rc = gitops_exec(argv, env, h->timeout_s, &out, err);
        bd_buf_free(&out);
        free(ref);
        for (int i = 0; env[i]; i++)
            free(env[i]);
        if (rc < 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            gitops_kust_fail(at, err, "chart %s %s from %s: %s", name, version ? version : "", repo,
                             why);
        }
    }
    char *pulled = rc == 0 ? bd_path_join(tmp, name) : NULL;
    if (rc == 0 && (stat(pulled, &sb) < 0 || !S_ISDIR(sb.st_mode)))
        rc = gitops_kust_fail(at, err, "helm pull of %s left no chart directory", name);
    if (rc == 0) {
        char *old = bd_xasprintf("%s.old.%d", home, (int)getpid());
        rename(home, old); /* a "latest" pull replaces the cached one */
        if (rename(tmp, home) < 0)
            rc = gitops_kust_fail(at, err, "%s: %s", home, strerror(errno));
        remove_tree(old);
        free(old);
    }
    remove_tree(tmp);
    free(pulled);
    free(tmp);
    free(cfg);
    free(home);
    if (rc < 0) {
        free(chart);
        return NULL;
    }
    return chart;
}

/* Values file to pass: the merged values, written next to nothing else (caller
 * removes it). */
static char *values_file(const struct kust_at *at, const struct gitops_kust_helm *h,
                         const char *dir, const char *chart, const struct bd_node *e,
                         struct bd_err *err)
{
    const char *vf = scalar(e, "valuesFile"), *how = scalar(e, "valuesMerge");
    const struct bd_node *inl = bd_node_get(e, "valuesInline");
    if (how && strcmp(how, "override") && strcmp(how, "merge") && strcmp(how, "replace")) {
        gitops_kust_fail(at, err, "valuesMerge \"%s\": expected override, merge or replace", how);
        return NULL;
    }
    if (inl && !bd_node_is_null(inl) && inl->kind != BD_NODE_MAP) {
        gitops_kust_fail(at, err, "valuesInline: expected a mapping");
        return NULL;
    }
    char *path = vf ? inside(at, dir, vf, err) : bd_path_join(chart, "values.yaml");
    if (!path)
        return NULL;
    cJSON *values = NULL;
    cJSON *inline_v = inl && !bd_node_is_null(inl) ? bd_node_to_json(inl) : NULL;
    if (inline_v && how && !strcmp(how, "replace")) {
        values = inline_v;
        inline_v = NULL;
    } else if (access(path, F_OK) == 0 || vf) {
        values = read_values(path, err);
    } else {
        values = cJSON_CreateObject();
    }
    free(path);
    if (!values) {
        cJSON_Delete(inline_v);
        bd_err_prefix(err, "%s:%d: %s", at->kfile, at->line, at->field);
        return NULL;
    }
    if (inline_v && how && !strcmp(how, "merge")) {
        merge_values(inline_v, values); /* the file wins */
        cJSON_Delete(values);
        values = inline_v;
        inline_v = NULL;
    } else if (inline_v) {
        merge_values(values, inline_v);
    }
    cJSON_Delete(inline_v);
    char *text = cJSON_PrintUnformatted(values); /* JSON is YAML */
    cJSON_Delete(values);
    char *out = bd_xasprintf("%s/.values-%d-%p.yaml", h->cache_dir, (int)getpid(), (void *)e);
    struct bd_err werr;
    if (bd_file_write_atomic(out, text, strlen(text), 0600, &werr) < 0) {
        gitops_kust_fail(at, err, "%s", werr.msg);
        free(out);
        out = NULL;
    }
    free(text);
    return out;
}

static void push(char ***argv, size_t *n, const char *s)
{
    *argv = bd_xrealloc(*argv, (*n + 2) * sizeof **argv);
    (*argv)[(*n)++] = (char *)s;
    (*argv)[*n] = NULL;
}

static int one(const struct kust_at *list_at, const struct gitops_kust_helm *h, const char *dir,
               const struct bd_node *e, size_t idx, const char *kust_ns, size_t group,
               struct gitops_objs *objs, struct bd_err *err)
{
    char field[48];
    snprintf(field, sizeof field, "%s[%zu]", list_at->field, idx);
    /* an entry made from an ArgoCD Application has no line of its own */
    struct kust_at at = {list_at->kfile, e->line ? e->line : list_at->line, field};
    if (e->kind != BD_NODE_MAP)
        return gitops_kust_fail(&at, err, "expected a mapping");
    for (size_t i = 0; i < e->n; i++) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], e->kids[2 * i]->str))
            k++;
        if (k == sizeof known / sizeof known[0]) {
            at.line = e->kids[2 * i]->line;
            return gitops_kust_fail(&at, err,
                                    "%s: the built-in renderer does not know this "
                                    "field",
                                    e->kids[2 * i]->str);
        }
    }
    const char *name = scalar(e, "name");
    if (!name || !*name || strchr(name, '/'))
        return gitops_kust_fail(&at, err, "a chart needs a name");
    if (bd_mkdir_p(h->cache_dir, 0700, err) < 0)
        return -1;
    char *chart = chart_dir(&at, h, dir, e, err);
    if (!chart)
        return -1;
    char *values = values_file(&at, h, dir, chart, e, err);
    if (!values) {
        free(chart);
        return -1;
    }
    const char *ns = scalar(e, "namespace") ? scalar(e, "namespace") : kust_ns;
    char **argv = NULL;
    size_t n = 0;
    char **extra = NULL; /* resolved additional values files */
    size_t nextra = 0;
    push(&argv, &n, h->helm);
    push(&argv, &n, "template");
    push(&argv, &n, scalar(e, "releaseName") ? scalar(e, "releaseName") : "--generate-name");
    push(&argv, &n, chart);
    if (ns && *ns) {
        push(&argv, &n, "--namespace");
        push(&argv, &n, ns);
    }
    if (scalar(e, "nameTemplate")) {
        push(&argv, &n, "--name-template");
        push(&argv, &n, scalar(e, "nameTemplate"));
    }
    push(&argv, &n, "-f");
    push(&argv, &n, values);
    int rc = 0;
    const struct bd_node *more = bd_node_get(e, "additionalValuesFiles");
    for (size_t i = 0; rc == 0 && more && more->kind == BD_NODE_SEQ && i < more->n; i++) {
        char *p = inside(&at, dir, more->kids[i]->str, err);
        if (!p) {
            rc = -1;
            break;
        }
        extra = bd_xrealloc(extra, (nextra + 1) * sizeof *extra);
        extra[nextra++] = p;
        push(&argv, &n, "-f");
        push(&argv, &n, p);
    }
    const struct bd_node *apis = bd_node_get(e, "apiVersions");
    for (size_t i = 0; apis && apis->kind == BD_NODE_SEQ && i < apis->n; i++) {
        push(&argv, &n, "--api-versions");
        push(&argv, &n, apis->kids[i]->str);
    }
    if (scalar(e, "kubeVersion")) {
        push(&argv, &n, "--kube-version");
        push(&argv, &n, scalar(e, "kubeVersion"));
    }
    if (flag(e, "includeCRDs"))
        push(&argv, &n, "--include-crds");
    if (flag(e, "skipTests"))
        push(&argv, &n, "--skip-tests");
    if (flag(e, "skipHooks"))
        push(&argv, &n, "--no-hooks");
    struct bd_buf out;
    bd_buf_init(&out);
    if (rc == 0) {
        char *cfg = bd_xasprintf("%s/.helm", h->cache_dir);
        char *env[] = {bd_xasprintf("HELM_CONFIG_HOME=%s", cfg),
                       bd_xasprintf("HELM_CACHE_HOME=%s/cache", cfg),
                       bd_xasprintf("HELM_DATA_HOME=%s/data", cfg), NULL};
        rc = gitops_exec(argv, env, h->timeout_s, &out, err);
        if (rc < 0)
            bd_err_prefix(err, "%s:%d: %s: chart %s", at.kfile, at.line, at.field, name);
        for (int i = 0; env[i]; i++)
            free(env[i]);
        free(cfg);
    }
    if (rc == 0) {
        char *doc_name = bd_xasprintf("%s:%d (helm template %s)", at.kfile, e->line, name);
        struct bd_yaml_doc doc;
        rc = bd_yaml_parse(out.data ? out.data : "", out.len, doc_name, &doc, err);
        if (rc == 0)
            rc = gitops_objs_from_yaml(&doc, group, objs, err);
        bd_yaml_doc_free(&doc);
        free(doc_name);
    }
    bd_buf_free(&out);
    unlink(values);
    free(values);
    for (size_t i = 0; i < nextra; i++)
        free(extra[i]);
    free(extra);
    free(argv);
    free(chart);
    return rc;
}

int gitops_kust_helm(const struct kust_at *at, const struct gitops_kust_helm *h, const char *dir,
                     const struct bd_node *charts, const char *kust_ns, size_t group,
                     struct gitops_objs *objs, struct bd_err *err)
{
    if (bd_node_is_null(charts))
        return 0;
    if (charts->kind != BD_NODE_SEQ)
        return gitops_kust_fail(at, err, "expected a list");
    if (!h->helm)
        return gitops_kust_fail(at, err,
                                "needs helm, which is not installed; install helm "
                                "or name it in gitops.helm");
    for (size_t i = 0; i < charts->n; i++)
        if (one(at, h, dir, charts->kids[i], i, kust_ns, group, objs, err) < 0)
            return -1;
    return 0;
}
