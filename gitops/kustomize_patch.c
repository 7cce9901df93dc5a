/* patches, patchesStrategicMerge and patchesJson6902: where a patch comes from (a file
 * in the kustomization's tree or inline text), what it is (a strategic merge patch is
 * a mapping, a JSON 6902 patch a list of operations) and which objects it applies to
 * (its target selector: group, version, kind, name and namespace as anchored regular
 * expressions matched against original and current ids, label and annotation
 * selectors; or, for a strategic merge patch without target, the object it names). */
#include "kustomize_internal.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct selector {
    const char *group, *version, *kind, *name, *ns, *labels, *annotations;
};

/* Anchored as kustomize anchors them ("^(?:re)$"); an empty pattern matches all. */
static bool sel_re_match(const char *re, const char *s, bool *bad)
{
    if (!re || !*re)
        return true;
    regex_t rx;
    char *full = bd_xasprintf("^(%s)$", re);
    int rc = regcomp(&rx, full, REG_EXTENDED | REG_NOSUB);
    free(full);
    if (rc != 0) {
        *bad = true;
        return false;
    }
    bool ok = regexec(&rx, s ? s : "", 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* Kubernetes label selector, equality-based and set-based terms separated by commas
 * outside parentheses: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b). */
static bool term_match(const cJSON *m, const char *t)
{
    while (*t == ' ')
        t++;
    char *copy = bd_xstrdup(t);
    for (char *e = copy + strlen(copy); e > copy && e[-1] == ' ';)
        *--e = 0;
    bool ok;
    char *op;
    if (copy[0] == '!') {
        ok = !cJSON_GetObjectItemCaseSensitive(m, copy + 1);
    } else if ((op = strstr(copy, " notin ")) || (op = strstr(copy, " in "))) {
        bool notin = !strncmp(op, " notin ", 7);
        *op = 0;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, copy);
        char *set = strchr(op + 1, '(');
        bool in = false;
        for (char *save = NULL, *s = set ? strtok_r(set + 1, ",)", &save) : NULL; s;
             s = strtok_r(NULL, ",)", &save)) {
            while (*s == ' ')
                s++;
            char *end = s + strlen(s);
            while (end > s && end[-1] == ' ')
                *--end = 0;
            in = in || (cJSON_IsString(v) && !strcmp(v->valuestring, s));
        }
        ok = notin ? !in : in;
    } else if ((op = strstr(copy, "!="))) {
        *op = 0;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, copy);
        ok = !cJSON_IsString(v) || strcmp(v->valuestring, op + 2);
    } else if ((op = strchr(copy, '='))) {
        *op = 0;
        const char *want = op[1] == '=' ? op + 2 : op + 1;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, copy);
        ok = cJSON_IsString(v) && !strcmp(v->valuestring, want);
    } else {
        ok = cJSON_GetObjectItemCaseSensitive(m, copy) != NULL;
    }
    free(copy);
    return ok;
}

static bool selector_match(const cJSON *meta, const char *key, const char *sel)
{
    if (!sel || !*sel)
        return true;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, key);
    int depth = 0;
    const char *start = sel;
    for (const char *p = sel;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if ((*p == ',' && !depth) || !*p) {
            char *t = bd_xstrndup(start, (size_t)(p - start));
            bool ok = term_match(m, t);
            free(t);
            if (!ok)
                return false;
            if (!*p)
                return true;
            start = p + 1;
        }
    }
}

static const char *first_name(const struct gitops_obj *o, const char *key)
{
    const cJSON *list =
        !strcmp(key, "names") ? gitops_kust_track_names(o) : gitops_kust_track_namespaces(o);
    const cJSON *first = cJSON_GetArrayItem(list, 0);
    return first ? first->valuestring : NULL;
}

static bool selected(const struct selector *s, const struct gitops_obj *o, bool *bad)
{
    char g[256];
    const char *slash = strchr(o->api_version, '/');
    const char *version = slash ? slash + 1 : o->api_version;
    const char *org_name = first_name(o, "names"), *org_ns = first_name(o, "namespaces");
    const char *ns = o->ns ? o->ns : "default";
    if (org_ns && !*org_ns)
        org_ns = "default";
    if (s->ns && *s->ns && !sel_re_match(s->ns, ns, bad) &&
        !(org_ns && sel_re_match(s->ns, org_ns, bad)))
        return false;
    if (s->name && *s->name && !sel_re_match(s->name, o->name, bad) &&
        !(org_name && sel_re_match(s->name, org_name, bad)))
        return false;
    if (!sel_re_match(s->group, gitops_kust_group(o->api_version, g, sizeof g), bad) ||
        !sel_re_match(s->version, version, bad) || !sel_re_match(s->kind, o->kind, bad))
        return false;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
    return selector_match(meta, "labels", s->labels) &&
           selector_match(meta, "annotations", s->annotations);
}

static int read_selector(const struct kust_at *at, const struct bd_node *t, struct selector *s,
                         struct bd_err *err)
{
    memset(s, 0, sizeof *s);
    if (t->kind != BD_NODE_MAP)
        return gitops_kust_fail(at, err, "target: expected a mapping");
    for (size_t i = 0; i < t->n; i++) {
        const char *k = t->kids[2 * i]->str;
        const struct bd_node *v = t->kids[2 * i + 1];
        const char **dst = !strcmp(k, "group")                ? &s->group
                           : !strcmp(k, "version")            ? &s->version
                           : !strcmp(k, "kind")               ? &s->kind
                           : !strcmp(k, "name")               ? &s->name
                           : !strcmp(k, "namespace")          ? &s->ns
                           : !strcmp(k, "labelSelector")      ? &s->labels
                           : !strcmp(k, "annotationSelector") ? &s->annotations
                                                              : NULL;
        struct kust_at here = {at->kfile, t->kids[2 * i]->line, at->field};
        if (!dst)
            return gitops_kust_fail(&here, err, "target.%s: not a selector field", k);
        if (v->kind != BD_NODE_SCALAR)
            return gitops_kust_fail(&here, err, "target.%s: expected a string", k);
        *dst = v->str;
    }
    return 0;
}

static bool builtin_group(const char *group)
{
    static const char *const groups[] = {"",
                                         "apps",
                                         "batch",
                                         "policy",
                                         "autoscaling",
                                         "networking.k8s.io",
                                         "rbac.authorization.k8s.io",
                                         "storage.k8s.io",
                                         "scheduling.k8s.io",
                                         "apiextensions.k8s.io",
                                         "admissionregistration.k8s.io",
                                         "apiregistration.k8s.io",
                                         "certificates.k8s.io",
                                         "coordination.k8s.io",
                                         "discovery.k8s.io",
                                         "events.k8s.io",
                                         "node.k8s.io",
                                         "flowcontrol.apiserver.k8s.io",
                                         "resource.k8s.io"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcmp(groups[i], group))
            return true;
    return false;
}

/* Applies a strategic merge patch to o, keeping o's kind, name and namespace. Returns
 * 1 when the patch deletes the object. */
static int apply_smp(const struct kust_at *at, struct gitops_obj *o, const cJSON *patch,
                     struct bd_err *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(patch, "$patch");
    if (cJSON_IsString(d) && !strcmp(d->valuestring, "delete"))
        return 1;
    char *kind = bd_xstrdup(o->kind), *name = bd_xstrdup(o->name);
    char *ns = o->ns ? bd_xstrdup(o->ns) : NULL;
    char g[256], why[512];
    int rc = gitops_kust_smp(o->json, patch,
                             builtin_group(gitops_kust_group(o->api_version, g, sizeof g)), why,
                             sizeof why);
    if (rc < 0) {
        rc = gitops_kust_fail(at, err, "%s %s (%s): %s", kind, name, o->src, why);
    } else {
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
        gitops_kust_set_str(o->json, "kind", kind);
        gitops_kust_set_str(meta, "name", name);
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
        if (ns)
            cJSON_AddStringToObject(meta, "namespace", ns);
        gitops_kust_refresh(o);
    }
    free(kind);
    free(name);
    free(ns);
    return rc;
}

/* The objects a strategic merge patch without target names. */
static int by_patch_id(const struct kust_at *at, const cJSON *patch, struct gitops_objs *objs,
                       size_t from, size_t *match, struct bd_err *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(patch, "metadata");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(patch, "kind");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(patch, "apiVersion");
    if (!cJSON_IsString(kind) || !cJSON_IsString(name))
        return gitops_kust_fail(at, err,
                                "a strategic merge patch without target needs kind and "
                                "metadata.name");
    char pg[256], g[256];
    gitops_kust_group(cJSON_IsString(av) ? av->valuestring : "", pg, sizeof pg);
    size_t found = 0;
    for (size_t i = from; i < objs->n; i++) {
        const struct gitops_obj *o = &objs->v[i];
        const char *org = first_name(o, "names");
        if (strcmp(o->kind, kind->valuestring) ||
            (strcmp(o->name, name->valuestring) && !(org && !strcmp(org, name->valuestring))))
            continue;
        if (cJSON_IsString(av) && strcmp(pg, gitops_kust_group(o->api_version, g, sizeof g)))
            continue;
        if (cJSON_IsString(ns) && strcmp(ns->valuestring, o->ns ? o->ns : "") &&
            !(!o->ns && !strcmp(ns->valuestring, "default")))
            continue;
        if (found++)
            return gitops_kust_fail(at, err,
                                    "strategic merge patch for %s %s matches more than one "
                                    "object (%s and %s); give it a namespace",
                                    kind->valuestring, name->valuestring, objs->v[*match].src,
                                    o->src);
        *match = i;
    }
    if (!found)
        return gitops_kust_fail(at, err, "no resource matches strategic merge patch %s %s",
                                kind->valuestring, name->valuestring);
    return 0;
}

/* Applies the documents of one patch. */
static int apply_docs(const struct kust_at *at, struct bd_yaml_doc *doc, const struct bd_node *t,
                      bool json_only, struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    struct selector s;
    if (t && read_selector(at, t, &s, err) < 0)
        return -1;
    size_t ndocs = 0;
    for (size_t i = 0; i < doc->ndocs; i++)
        ndocs += !bd_node_is_null(doc->docs[i]);
    if (!ndocs)
        return gitops_kust_fail(at, err, "the patch is empty");
    const struct bd_node *first = doc->docs[0];
    bool json = first->kind == BD_NODE_SEQ;
    if (json_only && !json)
        return gitops_kust_fail(at, err, "expected a list of JSON patch operations");
    if (json && !t)
        return gitops_kust_fail(at, err, "a JSON patch needs a target");
    if (!json && t && ndocs > 1)
        return gitops_kust_fail(at, err,
                                "several strategic merge patches in one entry cannot share a "
                                "target");
    int rc = 0;
    for (size_t d = 0; rc == 0 && d < doc->ndocs; d++) {
        if (bd_node_is_null(doc->docs[d]))
            continue;
        if (doc->docs[d]->kind != (json ? BD_NODE_SEQ : BD_NODE_MAP))
            return gitops_kust_fail(at, err, "%s:%d: expected a %s", doc->file, doc->docs[d]->line,
                                    json ? "list of JSON patch operations"
                                         : "strategic merge patch");
        cJSON *patch = bd_node_to_json(doc->docs[d]);
        size_t one = 0;
        if (!t)
            rc = by_patch_id(at, patch, objs, from, &one, err);
        size_t end = t ? objs->n : one + 1;
        for (size_t i = t ? from : one; rc == 0 && i < end; i++) {
            struct gitops_obj *o = &objs->v[i];
            bool bad = false;
            if (t && !selected(&s, o, &bad)) {
                if (bad)
                    rc = gitops_kust_fail(at, err,
                                          "target: a pattern is not a valid regular "
                                          "expression");
                continue;
            }
            char why[512];
            if (json) {
                gitops_kust_track_id(o);
                if (gitops_kust_json6902(o->json, patch, why, sizeof why) < 0)
                    rc = gitops_kust_fail(at, err, "%s %s (%s): %s", o->kind, o->name, o->src, why);
                else
                    gitops_kust_refresh(o);
                if (rc == 0 && (!o->api_version || !o->kind || !o->name))
                    rc = gitops_kust_fail(
                        at, err, "the patch removed apiVersion, kind or name of %s", o->src);
            } else {
                rc = apply_smp(at, o, patch, err);
                if (rc == 1) {
                    gitops_kust_remove(objs, i--);
                    end--;
                    rc = 0;
                }
            }
        }
        cJSON_Delete(patch);
    }
    return rc;
}

/* Reads a patch from a file in the kustomization's tree or from inline text. */
static int load(const struct kust_at *at, const char *root, const char *dir, const char *path,
                const char *inline_text, int line, struct bd_yaml_doc *doc, struct bd_err *err)
{
    if (inline_text) {
        char *name = bd_xasprintf("%s:%d (inline patch)", at->kfile, line);
        int rc = bd_yaml_parse(inline_text, strlen(inline_text), name, doc, err);
        free(name);
        return rc;
    }
    char *full = bd_path_join(dir, path);
    char *real = gitops_render_inside(dir, full, err);
    char *in_root = real ? gitops_render_inside(root, full, err) : NULL;
    int rc = in_root ? bd_yaml_parse_file(full, doc, err) : -1;
    if (!real)
        gitops_kust_fail(at, err, "%s is not in or below %s", path, dir);
    free(real);
    free(in_root);
    free(full);
    return rc;
}

static const struct bd_node *scalar(const struct bd_node *m, const char *key)
{
    const struct bd_node *v = bd_node_get(m, key);
    return v && v->kind == BD_NODE_SCALAR && !bd_node_is_null(v) ? v : NULL;
}

static int entry(const struct kust_at *list_at, const char *root, const char *dir,
                 const struct bd_node *e, size_t idx, struct gitops_objs *objs, size_t from,
                 struct bd_err *err)
{
    char field[64];
    snprintf(field, sizeof field, "%s[%zu]", list_at->field, idx);
    struct kust_at at = {list_at->kfile, e->line, field};
    bool sm_list = !strcmp(list_at->field, "patchesStrategicMerge");
    const char *path = NULL, *text = NULL;
    const struct bd_node *target = NULL;
    if (sm_list) {
        if (e->kind != BD_NODE_SCALAR)
            return gitops_kust_fail(&at, err, "expected a file name or an inline patch");
        /* kustomize takes an entry that is not a file as an inline patch */
        if (strchr(e->str, '\n'))
            text = e->str;
        else
            path = e->str;
    } else {
        if (e->kind != BD_NODE_MAP)
            return gitops_kust_fail(&at, err, "expected a mapping with path or patch");
        for (size_t i = 0; i < e->n; i++) {
            const char *k = e->kids[2 * i]->str;
            if (strcmp(k, "path") && strcmp(k, "patch") && strcmp(k, "target")) {
                at.line = e->kids[2 * i]->line;
                return gitops_kust_fail(&at, err,
                                        "%s: the built-in renderer does not know this field%s", k,
                                        !strcmp(k, "options") ? " (patch options)" : "");
            }
        }
        const struct bd_node *p = scalar(e, "path"), *t = scalar(e, "patch");
        target = bd_node_get(e, "target");
        if (target && bd_node_is_null(target))
            target = NULL;
        if (!!p == !!t)
            return gitops_kust_fail(&at, err, "give exactly one of path and patch");
        path = p ? p->str : NULL;
        text = t ? t->str : NULL;
    }
    struct bd_yaml_doc doc;
    if (load(&at, root, dir, path, text, e->line, &doc, err) < 0)
        return -1;
    int rc =
        apply_docs(&at, &doc, target, !strcmp(list_at->field, "patchesJson6902"), objs, from, err);
    bd_yaml_doc_free(&doc);
    return rc;
}

int gitops_kust_patches(const struct kust_at *at, const char *root, const char *dir,
                        const struct bd_node *list, struct gitops_objs *objs, size_t from,
                        struct bd_err *err)
{
    if (bd_node_is_null(list))
        return 0;
    if (list->kind != BD_NODE_SEQ)
        return gitops_kust_fail(at, err, "expected a list");
    for (size_t i = 0; i < list->n; i++)
        if (entry(at, root, dir, list->kids[i], i, objs, from, err) < 0)
            return -1;
    return 0;
}
