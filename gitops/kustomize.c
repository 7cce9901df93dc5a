/* Kustomization directories: through an external `kustomize build` or `kubectl
 * kustomize` when one is configured or on PATH, else through bootd's built-in kustomize
 * (kustomize_builtin.c and the files it uses), whose output matches kustomize's object
 * for object (tests/integration/test_gitops_kustomize.py checks). */
#include "kustomize_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kfile_names[] = {"kustomization.yaml", "kustomization.yml",
                                          "Kustomization"};

char *gitops_kustomize_file(const char *dir)
{
    for (size_t i = 0; i < sizeof kfile_names / sizeof kfile_names[0]; i++) {
        char *p = bd_path_join(dir, kfile_names[i]);
        if (access(p, F_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

bool gitops_kustomize_dir_has_file(const char *dir)
{
    char *p = gitops_kustomize_file(dir);
    free(p);
    return p != NULL;
}

/* The tool to run: the configured one, else kustomize or kubectl from PATH; NULL for
 * none (caller frees). */
static char *find_tool(const char *configured)
{
    if (configured && !strcmp(configured, "builtin"))
        return NULL;
    if (configured) {
        char *found = strchr(configured, '/') ? NULL : gitops_find_program(configured);
        return found ? found : bd_xstrdup(configured); /* a missing one: the spawn says so */
    }
    char *tool = gitops_find_program("kustomize");
    return tool ? tool : gitops_find_program("kubectl");
}

static bool is_kubectl(const char *tool)
{
    const char *base = strrchr(tool, '/');
    return !strncmp(base ? base + 1 : tool, "kubectl", 7);
}

static int external(const char *tool, const char *dir, size_t group,
                    const struct gitops_render_opts *o, struct gitops_objs *out,
                    struct bd_err *err)
{
    bool kubectl = is_kubectl(tool);
    char *argv[] = {(char *)tool, kubectl ? "kustomize" : "build", "--enable-helm", (char *)dir,
                    NULL};
    struct bd_buf text;
    bd_buf_init(&text);
    int rc = gitops_exec(argv, NULL, o && o->timeout_s ? o->timeout_s : 120, &text, err);
    if (rc < 0) {
        bd_err_prefix(err, "%s", dir);
    } else {
        char *name = bd_xasprintf("%s (%s output)", dir,
                                  kubectl ? "kubectl kustomize" : "kustomize build");
        struct bd_yaml_doc doc;
        rc = bd_yaml_parse(text.data ? text.data : "", text.len, name, &doc, err);
        if (rc == 0)
            rc = gitops_objs_from_yaml(&doc, group, out, err);
        bd_yaml_doc_free(&doc);
        free(name);
    }
    bd_buf_free(&text);
    return rc;
}

int gitops_kustomize_build(const char *root, const char *dir, size_t group,
                           const struct gitops_render_opts *o, struct gitops_objs *out,
                           struct bd_err *err)
{
    char *tool = find_tool(o ? o->kustomize : NULL);
    char *real = gitops_render_inside(root, dir, err);
    int rc = -1;
    if (real && tool) {
        rc = external(tool, real, group, o, out, err);
    } else if (real) {
        char *helm = o && o->helm ? bd_xstrdup(o->helm) : gitops_find_program("helm");
        char *cache = o && o->helm_cache ? bd_xstrdup(o->helm_cache) : bd_path_join(dir, "charts");
        struct gitops_kust_helm h = {helm, cache, o && o->timeout_s ? o->timeout_s : 120};
        rc = gitops_kustomize_builtin(root, dir, group, &h, out, err);
        free(helm);
        free(cache);
    }
    free(real);
    free(tool);
    return rc;
}
