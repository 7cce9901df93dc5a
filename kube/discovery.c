/* Discovery: which resource serves an apiVersion/kind and whether it is namespaced,
 * from /api/v1 and /apis/<group>/<version> (APIResourceList). Only the apiVersions a
 * sync uses are fetched, all at once; the cache lives for one sync. */
#include "kube.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum gv_state { GV_SERVED, GV_MISSING, GV_ERROR };

struct gv {
    char *api_version;
    enum gv_state state;
    char *why; /* GV_MISSING, GV_ERROR */
    size_t n;
    struct kube_resource *res;
};

struct kube_discovery {
    size_t n;
    struct gv *v;
};

struct kube_discovery *kube_discovery_new(void)
{
    return bd_xcalloc(1, sizeof(struct kube_discovery));
}

static void gv_clear(struct gv *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->res[i].kind);
        free(g->res[i].plural);
    }
    free(g->res);
    free(g->why);
    free(g->api_version);
}

void kube_discovery_free(struct kube_discovery *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        gv_clear(&d->v[i]);
    free(d->v);
    free(d);
}

static struct gv *gv_find(struct kube_discovery *d, const char *api_version)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].api_version, api_version))
            return &d->v[i];
    return NULL;
}

static char *gv_path(const char *api_version)
{
    return strchr(api_version, '/') ? bd_xasprintf("/apis/%s", api_version)
                                    : bd_xasprintf("/api/%s", api_version);
}

static void parse_list(struct gv *g, const struct kube_call *c)
{
    cJSON *j = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "resources");
    if (!cJSON_IsArray(list)) {
        g->state = GV_ERROR;
        g->why = bd_xasprintf("GET %s: not an APIResourceList", c->path);
        cJSON_Delete(j);
        return;
    }
    g->state = GV_SERVED;
    g->res = bd_xcalloc((size_t)cJSON_GetArraySize(list) + 1, sizeof *g->res);
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(r, "kind");
        /* subresources (deployments/status) share the kind of their parent */
        if (!cJSON_IsString(name) || !cJSON_IsString(kind) || strchr(name->valuestring, '/'))
            continue;
        struct kube_resource *kr = &g->res[g->n++];
        kr->kind = bd_xstrdup(kind->valuestring);
        kr->plural = bd_xstrdup(name->valuestring);
        kr->namespaced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "namespaced"));
    }
    cJSON_Delete(j);
}

void kube_discovery_load(struct kube_discovery *d, struct kube *k, const char *const *api_versions,
                    size_t n)
{
    struct kube_call *calls = bd_xcalloc(n + 1, sizeof *calls);
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (gv_find(d, api_versions[i]))
            continue;
        d->v = bd_xrealloc(d->v, (d->n + 1) * sizeof *d->v);
        struct gv *g = &d->v[d->n++];
        memset(g, 0, sizeof *g);
        g->api_version = bd_xstrdup(api_versions[i]);
        calls[nc].method = "GET";
        calls[nc].path = gv_path(api_versions[i]);
        calls[nc].ud = g->api_version;
        nc++;
    }
    kube_run(k, calls, nc);
    for (size_t i = 0; i < nc; i++) {
        struct gv *g = gv_find(d, calls[i].ud);
        char buf[512];
        if (calls[i].status == 200) {
            parse_list(g, &calls[i]);
        } else if (calls[i].status == 404) {
            g->state = GV_MISSING;
            g->why = bd_xasprintf("apiVersion %s is not served by the API server (GET %s: 404)",
                                  g->api_version, calls[i].path);
        } else {
            g->state = GV_ERROR;
            g->why = bd_xasprintf("discovery of %s failed: %s", g->api_version,
                                  kube_call_error(&calls[i], buf, sizeof buf));
        }
        kube_call_clear(&calls[i]);
    }
    free(calls);
}

const struct kube_resource *kube_discovery_find(struct kube_discovery *d, const char *api_version,
                                           const char *kind, char *why, size_t n)
{
    struct gv *g = gv_find(d, api_version);
    if (!g) {
        snprintf(why, n, "apiVersion %s was not looked up", api_version);
        return NULL;
    }
    if (g->state != GV_SERVED) {
        snprintf(why, n, "%s", g->why);
        return NULL;
    }
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->res[i].kind, kind))
            return &g->res[i];
    struct bd_buf kinds;
    bd_buf_init(&kinds);
    for (size_t i = 0; i < g->n && i < 12; i++)
        bd_buf_printf(&kinds, "%s%s", i ? ", " : "", g->res[i].kind);
    if (g->n > 12)
        bd_buf_puts(&kinds, ", ...");
    snprintf(why, n, "kind %s is not served in %s (discovery lists: %s)", kind, api_version,
             g->n ? kinds.data : "no kinds");
    bd_buf_free(&kinds);
    return NULL;
}

void kube_discovery_forget_group(struct kube_discovery *d, const char *group)
{
    size_t glen = strlen(group);
    for (size_t i = 0; i < d->n;) {
        const char *av = d->v[i].api_version;
        if (!strncmp(av, group, glen) && av[glen] == '/') {
            gv_clear(&d->v[i]);
            d->v[i] = d->v[--d->n];
        } else {
            i++;
        }
    }
}

char *kube_object_path(const char *api_version, const struct kube_resource *res, const char *ns,
                       const char *name)
{
    const char *root = strchr(api_version, '/') ? "/apis" : "/api";
    if (res->namespaced)
        return bd_xasprintf("%s/%s/namespaces/%s/%s/%s", root, api_version, ns, res->plural,
                            name);
    return bd_xasprintf("%s/%s/%s/%s", root, api_version, res->plural, name);
}
