/* The inventory: every object bootd applied, by id (group/kind/namespace/name). It lives
 * in state.db (with the hash of what was sent) and, so that a lost state dir does not
 * orphan objects, in a ConfigMap in the cluster. Prune deletes what left it. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const struct state_gitops_item *)a)->id,
                  ((const struct state_gitops_item *)b)->id);
}

const struct state_gitops_item *gitops_inventory_find(const struct gitops_run *r, const char *id)
{
    if (!id || !r->nprev)
        return NULL;
    struct state_gitops_item key = {.id = (char *)id};
    return bsearch(&key, r->prev, r->nprev, sizeof key, cmp_item);
}

static const char *const cm_path =
    "/api/v1/namespaces/" GITOPS_INVENTORY_NS "/configmaps/" GITOPS_INVENTORY_NAME;

int gitops_inventory_from_cluster(struct gitops_run *r, struct bd_err *err)
{
    struct kube_call c = {.method = "GET", .path = bd_xstrdup(cm_path)};
    kube_run(r->kube, &c, 1);
    if (c.status == 404) {
        kube_call_clear(&c);
        return 0;
    }
    if (c.status != 200) {
        char buf[600];
        int rc = bd_err_set(err, "reading the inventory ConfigMap: %s",
                        kube_call_error(&c, buf, sizeof buf));
        kube_call_clear(&c);
        return rc;
    }
    cJSON *j = cJSON_ParseWithLength(c.resp.data, c.resp.len);
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "data"), "inventory");
    for (const char *p = cJSON_IsString(inv) ? inv->valuestring : ""; *p;) {
        size_t n = strcspn(p, "\n");
        const char *sp = memchr(p, ' ', n);
        if (sp) {
            r->prev = bd_xrealloc(r->prev, (r->nprev + 1) * sizeof *r->prev);
            struct state_gitops_item *it = &r->prev[r->nprev++];
            memset(it, 0, sizeof *it);
            it->id = bd_xstrndup(p, (size_t)(sp - p));
            it->api_version = bd_xstrndup(sp + 1, n - (size_t)(sp - p) - 1);
        }
        p += n;
        if (*p)
            p++;
    }
    qsort(r->prev, r->nprev, sizeof *r->prev, cmp_item);
    cJSON_Delete(j);
    kube_call_clear(&c);
    return 0;
}

int gitops_inventory_to_cluster(struct gitops_run *r, const struct state_gitops_item *inv, size_t n,
                         struct bd_err *err)
{
    struct bd_buf text;
    bd_buf_init(&text);
    for (size_t i = 0; i < n; i++)
        bd_buf_printf(&text, "%s %s\n", inv[i].id, inv[i].api_version);
    cJSON *cm = cJSON_CreateObject();
    cJSON_AddStringToObject(cm, "apiVersion", "v1");
    cJSON_AddStringToObject(cm, "kind", "ConfigMap");
    cJSON *meta = cJSON_AddObjectToObject(cm, "metadata");
    cJSON_AddStringToObject(meta, "name", GITOPS_INVENTORY_NAME);
    cJSON_AddStringToObject(meta, "namespace", GITOPS_INVENTORY_NS);
    cJSON *data = cJSON_AddObjectToObject(cm, "data");
    cJSON_AddStringToObject(data, "inventory", text.data ? text.data : "");
    cJSON_AddStringToObject(data, "revision", r->res->revision);
    bd_buf_free(&text);
    struct kube_call c = {
        .method = "PATCH",
        .path = bd_xasprintf("%s?fieldManager=bootd&force=true", cm_path),
        .content_type = "application/apply-patch+yaml",
        .body = cJSON_PrintUnformatted(cm),
    };
    c.body_len = strlen(c.body);
    cJSON_Delete(cm);
    kube_run(r->kube, &c, 1);
    char buf[600];
    int rc = 0;
    if (c.status != 200 && c.status != 201)
        rc = bd_err_set(err, "writing the inventory ConfigMap: %s",
                        kube_call_error(&c, buf, sizeof buf));
    kube_call_clear(&c);
    return rc;
}
