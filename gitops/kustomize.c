/* Kustomization directories: through an external `kustomize build` or `kubectl
 * kustomize` when one is configured or on PATH, else through a built-in renderer for
 * the common case of local `resources:` and `namespace:` only, whose output matches
 * kustomize's object for object (tests/integration/test_gitops_render.py checks). */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *const kfile_names[] = {"kustomization.yaml", "kustomization.yml",
                                          "Kustomization"};

static char *kfile_of(const char *dir)
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
    char *p = kfile_of(dir);
    free(p);
    return p != NULL;
}

/* ---- the external tool ---- */

/* The tool to run: the configured one, else kustomize or kubectl from PATH; NULL for
 * none (caller frees). */
static char *find_tool(const char *configured)
{
    if (configured && !strcmp(configured, "builtin"))
        return NULL;
    if (configured && strchr(configured, '/'))
        return bd_xstrdup(configured);
    static const char *const names[] = {"kustomize", "kubectl"};
    const char *path = getenv("PATH");
    for (size_t i = 0; i < 2; i++) {
        const char *want = configured ? configured : names[i];
        for (const char *p = path ? path : ""; *p;) {
            size_t n = strcspn(p, ":");
            char *cand = bd_xasprintf("%.*s/%s", (int)n, p, want);
            if (n && access(cand, X_OK) == 0)
                return cand;
            free(cand);
            p += n;
            if (*p == ':')
                p++;
        }
        if (configured)
            return bd_xstrdup(configured); /* let the spawn say it is missing */
    }
    return NULL;
}

static bool is_kubectl(const char *tool)
{
    const char *base = strrchr(tool, '/');
    return !strncmp(base ? base + 1 : tool, "kubectl", 7);
}

/* Drains the two pipes until both close or the deadline passes; false on timeout. */
static bool collect(int outfd, int errfd, struct bd_buf *out, struct bd_buf *errb,
                    int64_t deadline)
{
    struct pollfd p[2] = {{.fd = outfd, .events = POLLIN}, {.fd = errfd, .events = POLLIN}};
    struct bd_buf *dst[2] = {out, errb};
    int open_fds = 2;
    char buf[65536];
    while (open_fds) {
        int64_t left = deadline - bd_mono_ms();
        if (left <= 0)
            return false;
        int r = poll(p, 2, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno != EINTR)
            return false;
        for (int i = 0; i < 2 && r > 0; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n > 0) {
                if (i == 0 || dst[i]->len < 16384) /* stderr: the start says enough */
                    bd_buf_append(dst[i], buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    return true;
}

static int run_tool(const char *tool, const char *dir, int64_t timeout_s, struct bd_buf *out,
                    struct bd_err *err)
{
    bool kubectl = is_kubectl(tool);
    char *argv[] = {(char *)tool, kubectl ? "kustomize" : "build", "--enable-helm", (char *)dir,
                    NULL};
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return bd_err_set(err, "pipe: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return bd_err_set(err, "pipe: %s", strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0); /* its own group, so a timeout kills helm too */
    pid_t pid;
    int src = posix_spawnp(&pid, tool, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    struct bd_buf errb;
    bd_buf_init(&errb);
    int rc = 0;
    const char *verb = kubectl ? "kustomize" : "build";
    if (src != 0) {
        rc = bd_err_set(err, "%s: cannot run %s: %s", dir, tool, strerror(src));
    } else {
        bool done = collect(po[0], pe[0], out, &errb, bd_mono_ms() + timeout_s * 1000);
        if (!done)
            kill(-pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        size_t n = errb.len;
        while (n && (errb.data[n - 1] == '\n' || errb.data[n - 1] == ' '))
            errb.data[--n] = 0;
        if (!done)
            rc = bd_err_set(err, "%s: %s %s timed out after %llds", dir, tool, verb,
                            (long long)timeout_s);
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = bd_err_set(err, "%s: %s %s failed (exit %d): %s", dir, tool, verb,
                            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                            errb.len ? errb.data : "no message");
    }
    close(po[0]);
    close(pe[0]);
    bd_buf_free(&errb);
    return rc;
}

/* ---- the built-in renderer ---- */

/* Kinds kustomize itself takes as cluster-wide (from the OpenAPI document it embeds);
 * everything else, custom kinds included, gets the namespace. Matching its list, not
 * the cluster's, is what makes the output equal to kustomize's. */
static const char *const cluster_kinds[] = {
    "v1 Namespace", "v1 Node", "v1 PersistentVolume", "v1 ComponentStatus",
    "rbac.authorization.k8s.io/v1 ClusterRole", "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1beta1 ClusterRole",
    "rbac.authorization.k8s.io/v1beta1 ClusterRoleBinding",
    "apiextensions.k8s.io/v1 CustomResourceDefinition",
    "apiextensions.k8s.io/v1beta1 CustomResourceDefinition", "storage.k8s.io/v1 StorageClass",
    "storage.k8s.io/v1beta1 StorageClass", "storage.k8s.io/v1 CSIDriver",
    "storage.k8s.io/v1beta1 CSIDriver", "storage.k8s.io/v1 CSINode",
    "storage.k8s.io/v1beta1 CSINode", "storage.k8s.io/v1 VolumeAttachment",
    "storage.k8s.io/v1beta1 VolumeAttachment", "scheduling.k8s.io/v1 PriorityClass",
    "scheduling.k8s.io/v1beta1 PriorityClass", "networking.k8s.io/v1 IngressClass",
    "networking.k8s.io/v1beta1 IngressClass", "node.k8s.io/v1 RuntimeClass",
    "node.k8s.io/v1beta1 RuntimeClass", "apiregistration.k8s.io/v1 APIService",
    "apiregistration.k8s.io/v1beta1 APIService",
    "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1beta1 ValidatingWebhookConfiguration",
    "certificates.k8s.io/v1 CertificateSigningRequest",
    "certificates.k8s.io/v1beta1 CertificateSigningRequest",
    "flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema",
    "flowcontrol.apiserver.k8s.io/v1beta1 PriorityLevelConfiguration",
    "policy/v1beta1 PodSecurityPolicy",
};

static bool cluster_kind(const char *api_version, const char *kind)
{
    size_t n = strlen(api_version);
    for (size_t i = 0; i < sizeof cluster_kinds / sizeof cluster_kinds[0]; i++)
        if (!strncmp(cluster_kinds[i], api_version, n) && cluster_kinds[i][n] == ' ' &&
            !strcmp(cluster_kinds[i] + n + 1, kind))
            return true;
    return false;
}

/* Kinds whose service references kustomize rewrites too; the built-in renderer leaves
 * them to kustomize rather than guess. */
static bool refers_to_services(const struct gitops_obj *o)
{
    if (!strcmp(o->kind, "MutatingWebhookConfiguration") ||
        !strcmp(o->kind, "ValidatingWebhookConfiguration") || !strcmp(o->kind, "APIService"))
        return true;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o->json, "spec");
    return !strcmp(o->kind, "CustomResourceDefinition") &&
           cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "conversion"),
                                            "webhook");
}

static void set_str(cJSON *o, const char *key, const char *v)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateString(v));
    else
        cJSON_AddStringToObject(o, key, v);
}

/* Re-points the object's string fields after json changed. */
static void refresh(struct gitops_obj *o)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    o->name = cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring;
    o->ns = cJSON_IsString(ns) ? ns->valuestring : NULL;
}

static int set_namespace(const char *kfile, int line, const char *ns, struct gitops_objs *objs,
                         size_t from, struct bd_err *err)
{
    const struct gitops_obj *renamed_ns = NULL;
    for (size_t i = from; i < objs->n; i++) {
        struct gitops_obj *o = &objs->v[i];
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
        if (refers_to_services(o))
            return bd_err_set(err, "%s:%d: namespace: %s %s (%s) refers to services, which only "
                                   "kustomize rewrites; install kustomize or kubectl, or name one "
                                   "in gitops.kustomize",
                              kfile, line, o->kind, o->name, o->src);
        if (!strcmp(o->api_version, "v1") && !strcmp(o->kind, "Namespace")) {
            /* kustomize renames the Namespace object itself */
            if (renamed_ns)
                return bd_err_set(err, "%s:%d: namespace: two Namespace objects (%s, %s) would "
                                       "both be renamed to %s",
                                  kfile, line, renamed_ns->src, o->src, ns);
            renamed_ns = o;
            set_str(meta, "name", ns);
        } else if (!cluster_kind(o->api_version, o->kind)) {
            set_str(meta, "namespace", ns);
        }
        if (!strncmp(o->api_version, "rbac.authorization.k8s.io/", 26) &&
            (!strcmp(o->kind, "RoleBinding") || !strcmp(o->kind, "ClusterRoleBinding"))) {
            /* subjects named "default" move along, as kustomize does */
            cJSON *subj;
            cJSON_ArrayForEach(subj, cJSON_GetObjectItemCaseSensitive(o->json, "subjects"))
            {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(subj, "name");
                if (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))
                    set_str(subj, "namespace", ns);
            }
        }
        refresh(o);
    }
    return 0;
}

static bool same_id(const struct gitops_obj *a, const struct gitops_obj *b)
{
    return !strcmp(a->api_version, b->api_version) && !strcmp(a->kind, b->kind) &&
           !strcmp(a->name, b->name) &&
           !strcmp(a->ns ? a->ns : "", b->ns ? b->ns : "");
}

static int check_unique(const char *kfile, struct gitops_objs *objs, size_t from,
                        struct bd_err *err)
{
    for (size_t i = from; i < objs->n; i++)
        for (size_t j = from; j < i; j++)
            if (same_id(&objs->v[i], &objs->v[j]))
                return bd_err_set(err, "%s: %s %s appears twice (%s and %s)", kfile,
                                  objs->v[i].kind, objs->v[i].name, objs->v[j].src,
                                  objs->v[i].src);
    return 0;
}

static bool remote(const char *r)
{
    return strstr(r, "://") || !strncmp(r, "github.com/", 11) || strstr(r, "?ref=") ||
           !strncmp(r, "git@", 4);
}

static int native_build(const char *root, const char *dir, size_t group, struct gitops_objs *out,
                        int depth, struct bd_err *err);

static int native_resource(const char *root, const char *dir, const char *kfile,
                           const struct bd_node *item, size_t idx, size_t group,
                           struct gitops_objs *out, int depth, struct bd_err *err)
{
    if (item->kind != BD_NODE_SCALAR || !*item->str)
        return bd_err_set(err, "%s:%d: resources[%zu]: expected a path", kfile, item->line, idx);
    if (remote(item->str))
        return bd_err_set(err, "%s:%d: resources[%zu]: \"%s\" is remote; the built-in renderer "
                               "reads only files in the repository; install kustomize or "
                               "kubectl, or name one in gitops.kustomize",
                          kfile, item->line, idx, item->str);
    char *path = bd_path_join(dir, item->str);
    struct stat sb;
    int rc;
    if (stat(path, &sb) < 0) {
        rc = bd_err_set(err, "%s:%d: resources[%zu]: %s: %s", kfile, item->line, idx, path,
                        strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        rc = gitops_kustomize_dir_has_file(path)
                 ? native_build(root, path, group, out, depth + 1, err)
                 : bd_err_set(err, "%s:%d: resources[%zu]: %s has no kustomization.yaml", kfile,
                              item->line, idx, path);
    } else {
        /* as kustomize's default load restrictor: files only from the kustomization's
         * own directory tree */
        char *real = gitops_render_inside(dir, path, err);
        rc = real ? gitops_render_file(root, path, group, out, err) : -1;
        if (!real)
            bd_err_set(err, "%s:%d: resources[%zu]: %s is not in or below %s", kfile, item->line,
                       idx, item->str, dir);
        free(real);
    }
    free(path);
    return rc;
}

static int native_build(const char *root, const char *dir, size_t group, struct gitops_objs *out,
                        int depth, struct bd_err *err)
{
    if (depth > 32)
        return bd_err_set(err, "%s: kustomizations nested deeper than 32 (a cycle?)", dir);
    char *kfile = kfile_of(dir);
    struct bd_yaml_doc doc;
    char *real = gitops_render_inside(root, dir, err);
    if (!real || bd_yaml_parse_file(kfile, &doc, err) < 0) {
        free(real);
        free(kfile);
        return -1;
    }
    free(real);
    const struct bd_node *k = doc.ndocs == 1 ? doc.docs[0] : NULL;
    const struct bd_node *ns = NULL, *resources = NULL;
    int rc = 0;
    if (!k || k->kind != BD_NODE_MAP)
        rc = bd_err_set(err, "%s: expected one Kustomization mapping", kfile);
    for (size_t i = 0; rc == 0 && i < k->n; i++) {
        const struct bd_node *key = k->kids[2 * i], *v = k->kids[2 * i + 1];
        if (!strcmp(key->str, "apiVersion") || !strcmp(key->str, "kind"))
            continue;
        if (!strcmp(key->str, "namespace") && v->kind == BD_NODE_SCALAR)
            ns = v;
        else if (!strcmp(key->str, "resources") && v->kind == BD_NODE_SEQ)
            resources = v;
        else if (!bd_node_is_null(v))
            rc = bd_err_set(err, "%s:%d: %s: the built-in renderer handles only resources and "
                                 "namespace; install kustomize or kubectl, or name one in "
                                 "gitops.kustomize",
                            kfile, key->line, key->str);
    }
    size_t from = out->n;
    for (size_t i = 0; rc == 0 && resources && i < resources->n; i++)
        rc = native_resource(root, dir, kfile, resources->kids[i], i, group, out, depth, err);
    if (rc == 0 && ns && *ns->str)
        rc = set_namespace(kfile, ns->line, ns->str, out, from, err);
    if (rc == 0)
        rc = check_unique(kfile, out, from, err);
    bd_yaml_doc_free(&doc);
    free(kfile);
    return rc;
}

int gitops_kustomize_build(const char *root, const char *dir, size_t group,
                    const struct gitops_render_opts *o, struct gitops_objs *out,
                    struct bd_err *err)
{
    char *tool = find_tool(o ? o->kustomize : NULL);
    if (!tool)
        return native_build(root, dir, group, out, 0, err);
    char *real = gitops_render_inside(root, dir, err);
    if (!real) {
        free(tool);
        return -1;
    }
    struct bd_buf text;
    bd_buf_init(&text);
    int rc = run_tool(tool, real, o && o->timeout_s ? o->timeout_s : 120, &text, err);
    if (rc == 0) {
        char *name = bd_xasprintf("%s (%s output)", dir, is_kubectl(tool) ? "kubectl kustomize"
                                                                         : "kustomize build");
        struct bd_yaml_doc doc;
        rc = bd_yaml_parse(text.data ? text.data : "", text.len, name, &doc, err);
        if (rc == 0)
            rc = gitops_objs_from_yaml(&doc, group, out, err);
        bd_yaml_doc_free(&doc);
        free(name);
    }
    bd_buf_free(&text);
    free(real);
    free(tool);
    return rc;
}
