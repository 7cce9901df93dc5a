/* Prune: objects of the previous inventory that are no longer rendered are deleted, in
 * the reverse order of the apply stages, but only when the live object still carries
 * bootd's managed label and does not opt out with the bootd/prune: disabled
 * annotation. Anything else is left alone and forgotten. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An inventory id split into its parts (pointing into a copy the caller frees). */
struct parsed_id {
    char *copy;
    const char *kind, *ns, *name;
};

static bool parse_id(const char *id, struct parsed_id *p)
{
    p->copy = bd_xstrdup(id);
    char *parts[4];
    char *s = p->copy;
    for (int i = 0; i < 4; i++) {
        parts[i] = s;
        char *slash = i < 3 ? strchr(s, '/') : NULL;
        if (i < 3 && !slash)
            return false;
        if (slash) {
            *slash = 0;
            s = slash + 1;
        }
    }
    p->kind = parts[1];
    p->ns = *parts[2] ? parts[2] : NULL;
    p->name = parts[3];
    return *p->kind && *p->name;
}

static int delete_rank(const char *kind)
{
    size_t n = strlen(kind);
    if (!strcmp(kind, "CustomResourceDefinition") || !strcmp(kind, "Namespace") ||
        !strcmp(kind, "ClusterRole"))
        return 2;
    return n > 5 && !strcmp(kind + n - 5, "Class") ? 1 : 0;
}

static bool rendered(const struct gitops_run *r, const char *id)
{
    for (size_t i = 0; i < r->objs.n; i++)
        if (r->objs.v[i].id && !strcmp(r->objs.v[i].id, id))
            return true;
    return false;
}

static void note(struct gitops_run *r, const char *id, const char *what)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(r->res->detail, "pruned");
    if (!arr)
        arr = cJSON_AddArrayToObject(r->res->detail, "pruned");
    if (cJSON_GetArraySize(arr) >= 100)
        return;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "object", id);
    cJSON_AddStringToObject(e, "result", what);
    cJSON_AddItemToArray(arr, e);
}

/* May this live object be deleted? */
static bool ours(const struct kube_call *c)
{
    cJSON *j = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(meta, "labels"), GITOPS_MANAGED_LABEL);
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(meta, "annotations"), GITOPS_PRUNE_ANNOTATION);
    bool yes = cJSON_IsString(lab) && !strcmp(lab->valuestring, "true") &&
               !(cJSON_IsString(ann) && !strcmp(ann->valuestring, "disabled"));
    cJSON_Delete(j);
    return yes;
}

/* Reads back the leftovers of one rank and deletes those that are bootd's. */
static void prune_rank(struct gitops_run *r, bool *keep, const size_t *idx, size_t n, int rank)
{
    struct kube_call *gets = bd_xcalloc(n + 1, sizeof *gets);
    struct kube_call *dels = bd_xcalloc(n + 1, sizeof *dels);
    size_t ng = 0, nd = 0;
    for (size_t k = 0; k < n; k++) {
        const struct state_gitops_item *it = &r->prev[idx[k]];
        struct parsed_id p;
        char why[512];
        if (parse_id(it->id, &p) && delete_rank(p.kind) == rank) {
            const struct kube_resource *res =
                kube_discovery_find(r->disc, it->api_version, p.kind, why, sizeof why);
            if (res) {
                gets[ng].method = "GET";
                gets[ng].path = kube_object_path(it->api_version, res, p.ns, p.name);
                gets[ng++].ud = (void *)&idx[k];
            } else if (strstr(why, ": 404)") || strstr(why, "is not served in")) {
                note(r, it->id, "gone: its kind is no longer served");
            } else {
                keep[idx[k]] = true; /* cannot tell now; the next sync tries again */
                note(r, it->id, why);
            }
        }
        free(p.copy);
    }
    kube_run(r->kube, gets, ng);
    char buf[600];
    for (size_t k = 0; k < ng; k++) {
        size_t i = *(const size_t *)gets[k].ud;
        if (gets[k].status == 200 && ours(&gets[k])) {
            dels[nd].method = "DELETE";
            dels[nd].path = bd_xasprintf("%s?propagationPolicy=Background", gets[k].path);
            dels[nd++].ud = gets[k].ud;
        } else if (gets[k].status == 200) {
            note(r, r->prev[i].id,
                 "left alone: not labelled " GITOPS_MANAGED_LABEL "=true, or annotated "
                 GITOPS_PRUNE_ANNOTATION ": disabled");
        } else if (gets[k].status == 404) {
            note(r, r->prev[i].id, "already gone");
        } else {
            keep[i] = true;
            note(r, r->prev[i].id, kube_call_error(&gets[k], buf, sizeof buf));
        }
        kube_call_clear(&gets[k]);
    }
    kube_run(r->kube, dels, nd);
    for (size_t k = 0; k < nd; k++) {
        size_t i = *(const size_t *)dels[k].ud;
        if (dels[k].status == 200 || dels[k].status == 202) {
            r->res->pruned++;
            note(r, r->prev[i].id, "deleted");
            bd_info("gitops: pruned %s", r->prev[i].id);
        } else if (dels[k].status == 404) {
            note(r, r->prev[i].id, "already gone");
        } else {
            keep[i] = true;
            note(r, r->prev[i].id, kube_call_error(&dels[k], buf, sizeof buf));
        }
        kube_call_clear(&dels[k]);
    }
    free(gets);
    free(dels);
}

void gitops_prune_removed(struct gitops_run *r, bool *keep)
{
    size_t *idx = bd_xcalloc(r->nprev + 1, sizeof *idx);
    const char **avs = bd_xcalloc(r->nprev + 1, sizeof *avs);
    size_t n = 0;
    for (size_t i = 0; i < r->nprev; i++) {
        keep[i] = rendered(r, r->prev[i].id);
        if (!keep[i]) {
            avs[n] = r->prev[i].api_version;
            idx[n++] = i;
        }
    }
    kube_discovery_load(r->disc, r->kube, avs, n);
    free(avs);
    for (int rank = 0; rank < 3; rank++)
        prune_rank(r, keep, idx, n, rank);
    free(idx);
}
