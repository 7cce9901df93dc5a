/* Server-side apply of one group, staged the way Flux does it: CustomResourceDefinitions,
 * Namespaces and ClusterRoles first (and the CRDs established before anything uses
 * them), then *Class kinds, then the rest; then wait for health. An object whose body
 * is the same as the one last applied is not sent again, only read back. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APPLY_QUERY "?fieldManager=bootd&force=true"
#define APPLY_TYPE "application/apply-patch+yaml"

static int stage_of(const struct gitops_obj *o)
{
    if (!strcmp(o->kind, "CustomResourceDefinition") || !strcmp(o->kind, "Namespace") ||
        !strcmp(o->kind, "ClusterRole"))
        return 0;
    size_t n = strlen(o->kind);
    return n > 5 && !strcmp(o->kind + n - 5, "Class") ? 1 : 2;
}

bool gitops_sleep(const atomic_bool *cancel, int64_t ms)
{
    while (ms > 0) {
        if (cancel && atomic_load(cancel))
            return false;
        int64_t step = ms < 50 ? ms : 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step * 1000000};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !(cancel && atomic_load(cancel));
}

static bool cancelled(const struct gitops_run *r)
{
    return r->cancel && atomic_load(r->cancel);
}

char *gitops_object_id(const char *api_version, const char *kind, const char *ns,
                       const char *name)
{
    const char *slash = strchr(api_version, '/');
    int glen = slash ? (int)(slash - api_version) : 0;
    return bd_xasprintf("%.*s/%s/%s/%s", glen, api_version, kind, ns ? ns : "", name);
}

static void detail_add(struct gitops_run *r, const char *list, const struct gitops_obj *o,
                       const char *key, const char *text)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(r->res->detail, list);
    if (!arr)
        arr = cJSON_AddArrayToObject(r->res->detail, list);
    if (cJSON_GetArraySize(arr) >= 100) /* the counts say the rest */
        return;
    cJSON *e = cJSON_CreateObject();
    char *what = bd_xasprintf("%s %s%s%s", o->kind, o->ns ? o->ns : "", o->ns ? "/" : "", o->name);
    cJSON_AddStringToObject(e, "object", what);
    free(what);
    cJSON_AddStringToObject(e, "source", o->src);
    cJSON_AddStringToObject(e, key, text);
    cJSON_AddItemToArray(arr, e);
}

static void fail(struct gitops_run *r, struct gitops_obj *o, const char *why)
{
    o->outcome = GITOPS_ERROR;
    free(o->message);
    o->message = bd_xstrdup(why);
    r->res->failed++;
    detail_add(r, "failed", o, "error", why);
    bd_warn("gitops: %s %s (%s): %s", o->kind, o->name, o->src, why);
}

static void set_label(cJSON *meta, const char *key, const char *val)
{
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (!cJSON_IsObject(labels)) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "labels");
        labels = cJSON_AddObjectToObject(meta, "labels");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(labels, key);
    cJSON_AddStringToObject(labels, key, val);
}

/* Resolves the resource and builds the body, its hash, the id and the path. */
static void prepare(struct gitops_run *r, struct gitops_obj *o)
{
    char why[512];
    o->res = kube_discovery_find(r->disc, o->api_version, o->kind, why, sizeof why);
    if (!o->res) {
        fail(r, o, why);
        return;
    }
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
    if (o->res->namespaced && !o->ns)
        cJSON_AddStringToObject(meta, "namespace", "default");
    else if (!o->res->namespaced && o->ns)
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace"); /* as the API server does */
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    o->ns = cJSON_IsString(ns) ? ns->valuestring : NULL;
    o->name = cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring;
    set_label(meta, GITOPS_MANAGED_LABEL, "true");
    set_label(meta, GITOPS_GROUP_LABEL, r->cfg->groups[o->group].name);
    o->id = gitops_object_id(o->api_version, o->kind, o->ns, o->name);
    o->path = kube_object_path(o->api_version, o->res, o->ns, o->name);
}

/* Health from an object the API server returned. */
static void take_status(struct gitops_obj *o, const struct kube_call *c)
{
    cJSON *live = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
    char msg[256];
    o->health = live ? gitops_health_of(live, msg, sizeof msg) : GITOPS_IN_PROGRESS;
    free(o->message);
    o->message = bd_xstrdup(live ? msg : "the API server answered something that is not JSON");
    cJSON_Delete(live);
}

static void call_init(struct kube_call *c, struct gitops_obj *o, bool apply)
{
    memset(c, 0, sizeof *c);
    c->ud = o;
    if (apply) {
        c->method = "PATCH";
        c->path = bd_xasprintf("%s" APPLY_QUERY, o->path);
        c->content_type = APPLY_TYPE;
        c->body = cJSON_PrintUnformatted(o->json);
        c->body_len = strlen(c->body);
    } else {
        c->method = "GET";
        c->path = bd_xstrdup(o->path);
    }
}

/* Applies (or, when unchanged, reads back) the objects in v; those that vanished from
 * the cluster since are applied again. */
static void send(struct gitops_run *r, struct gitops_obj **v, size_t n)
{
    struct kube_call *calls = bd_xcalloc(n + 1, sizeof *calls);
    for (size_t i = 0; i < n; i++) {
        char *body = cJSON_PrintUnformatted(v[i]->json);
        bd_sha256_hex(body, strlen(body), v[i]->hash);
        free(body);
        const struct state_gitops_item *prev = gitops_inventory_find(r, v[i]->id);
        call_init(&calls[i], v[i], !(prev && !strcmp(prev->hash, v[i]->hash)));
    }
    for (int round = 0; round < 2 && n; round++) {
        kube_run(r->kube, calls, n);
        size_t again = 0;
        for (size_t i = 0; i < n; i++) {
            struct kube_call *c = &calls[i];
            struct gitops_obj *o = c->ud;
            bool get = !strcmp(c->method, "GET");
            char buf[600];
            if (get && c->status == 404) {
                kube_call_clear(c);
                call_init(&calls[again++], o, true);
                continue;
            }
            if (c->status == 200 || c->status == 201) {
                o->outcome = get ? GITOPS_UNCHANGED : GITOPS_APPLIED;
                if (get)
                    r->res->unchanged++;
                else
                    r->res->applied++;
                take_status(o, c);
            } else {
                fail(r, o, kube_call_error(c, buf, sizeof buf));
            }
            kube_call_clear(c);
        }
        n = again;
    }
    free(calls);
}

/* Reads the objects back until none is in progress, the deadline passes or the sync is
 * cancelled. */
static void poll_health(struct gitops_run *r, struct gitops_obj **v, size_t n, int64_t deadline)
{
    int64_t wait_ms = 200;
    struct kube_call *calls = bd_xcalloc(n + 1, sizeof *calls);
    for (;;) {
        size_t nc = 0;
        for (size_t i = 0; i < n; i++)
            if (v[i]->health == GITOPS_IN_PROGRESS)
                call_init(&calls[nc++], v[i], false);
        if (!nc || bd_now_ms() >= deadline || !gitops_sleep(r->cancel, wait_ms)) {
            for (size_t i = 0; i < nc; i++)
                kube_call_clear(&calls[i]);
            break;
        }
        kube_run(r->kube, calls, nc);
        for (size_t i = 0; i < nc; i++) {
            struct gitops_obj *o = calls[i].ud;
            if (calls[i].status == 200) {
                take_status(o, &calls[i]);
            } else {
                char buf[600];
                free(o->message);
                o->message = bd_xstrdup(kube_call_error(&calls[i], buf, sizeof buf));
            }
            kube_call_clear(&calls[i]);
        }
        wait_ms = wait_ms * 3 / 2 > 2000 ? 2000 : wait_ms * 3 / 2;
    }
    free(calls);
}

static void apply_stage(struct gitops_run *r, struct gitops_obj **v, size_t n, bool crds)
{
    const char **avs = bd_xcalloc(n + 1, sizeof *avs);
    for (size_t i = 0; i < n; i++)
        avs[i] = v[i]->api_version;
    kube_discovery_load(r->disc, r->kube, avs, n);
    free(avs);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        prepare(r, v[i]);
        if (v[i]->outcome != GITOPS_ERROR)
            v[m++] = v[i];
    }
    send(r, v, m);
    if (!crds)
        return;
    /* custom resources of these CRDs come next: wait until the API serves them */
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (!strcmp(v[i]->kind, "CustomResourceDefinition") && v[i]->outcome != GITOPS_ERROR)
            v[k++] = v[i];
    poll_health(r, v, k, bd_now_ms() + r->cfg->health_timeout_s * 1000);
    for (size_t i = 0; i < k; i++) {
        const cJSON *group = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(v[i]->json, "spec"), "group");
        if (cJSON_IsString(group))
            kube_discovery_forget_group(r->disc, group->valuestring);
    }
}

int gitops_apply_group(struct gitops_run *r, size_t group)
{
    struct gitops_objs *all = &r->objs;
    struct gitops_obj **v = bd_xcalloc(all->n + 1, sizeof *v);
    size_t failed_before = (size_t)r->res->failed;
    for (int stage = 0; stage < 3 && !cancelled(r); stage++) {
        size_t n = 0;
        for (size_t i = 0; i < all->n; i++)
            if (all->v[i].group == group && stage_of(&all->v[i]) == stage)
                v[n++] = &all->v[i];
        if (n)
            apply_stage(r, v, n, stage == 0);
    }
    size_t n = 0;
    for (size_t i = 0; i < all->n; i++)
        if (all->v[i].group == group && all->v[i].outcome != GITOPS_ERROR &&
            all->v[i].outcome != GITOPS_PENDING)
            v[n++] = &all->v[i];
    poll_health(r, v, n, bd_now_ms() + r->cfg->health_timeout_s * 1000);
    size_t unhealthy = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i]->health != GITOPS_CURRENT) {
            char *why = bd_xasprintf("%s: %s", gitops_health_name(v[i]->health),
                                     v[i]->message ? v[i]->message : "");
            detail_add(r, "unhealthy", v[i], "status", why);
            free(why);
            unhealthy++;
        }
    r->res->unhealthy += (int64_t)unhealthy;
    free(v);
    return (size_t)r->res->failed == failed_before && !unhealthy && !cancelled(r) ? 0 : -1;
}
