/* One sync: git -> render every group -> check -> apply group by group (each healthy
 * before the next) -> prune -> inventory. Nothing is applied unless every path of every
 * group rendered and every object is well-formed, so a broken commit leaves the last
 * good revision applied. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? bd_xstrdup(s) : NULL;
}

struct gitops_cfg *gitops_cfg_from_lab(const struct lab *lab, const char *state_dir)
{
    const struct lab_gitops *g = &lab->gitops;
    if (!g->set)
        return NULL;
    struct gitops_cfg *c = bd_xcalloc(1, sizeof *c);
    c->repo = bd_xstrdup(g->repo);
    c->ref = bd_xstrdup(g->ref);
    c->token_file = dup_or_null(g->token_file);
    c->ssh_key_file = dup_or_null(g->ssh_key_file);
    c->checkout_dir = bd_path_join(state_dir, "gitops");
    /* a relative tool path is relative to lab.yaml, a bare name is looked up in PATH */
    c->kustomize = g->kustomize && strchr(g->kustomize, '/') ? bd_path_join(lab->dir, g->kustomize)
                                                             : dup_or_null(g->kustomize);
    c->kustomize_timeout_s = g->kustomize_timeout_s;
    c->interval_s = g->interval_s;
    c->health_timeout_s = g->health_timeout_s;
    c->prune = g->prune;
    c->ngroups = g->ngroups;
    c->groups = bd_xcalloc(g->ngroups + 1, sizeof *c->groups);
    for (size_t i = 0; i < g->ngroups; i++) {
        c->groups[i].name = bd_xstrdup(g->groups[i].name);
        c->groups[i].npaths = g->groups[i].paths.n;
        c->groups[i].paths = bd_xcalloc(g->groups[i].paths.n + 1, sizeof(char *));
        for (size_t k = 0; k < g->groups[i].paths.n; k++)
            c->groups[i].paths[k] = bd_xstrdup(g->groups[i].paths.v[k]);
    }
    return c;
}

void gitops_cfg_free(struct gitops_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ngroups; i++) {
        for (size_t k = 0; k < c->groups[i].npaths; k++)
            free(c->groups[i].paths[k]);
        free(c->groups[i].paths);
        free(c->groups[i].name);
    }
    free(c->groups);
    free(c->repo);
    free(c->ref);
    free(c->token_file);
    free(c->ssh_key_file);
    free(c->checkout_dir);
    free(c->kustomize);
    free(c);
}

void gitops_result_free(struct gitops_result *r)
{
    free(r->error);
    cJSON_Delete(r->detail);
    memset(r, 0, sizeof *r);
}

static int render_all(const struct gitops_cfg *cfg, struct gitops_objs *objs, struct bd_err *err)
{
    struct gitops_render_opts ro = {.kustomize = cfg->kustomize,
                                    .timeout_s = cfg->kustomize_timeout_s};
    for (size_t g = 0; g < cfg->ngroups; g++)
        for (size_t p = 0; p < cfg->groups[g].npaths; p++)
            if (gitops_render_path(cfg->checkout_dir, cfg->groups[g].paths[p], g, &ro, objs,
                                   err) < 0)
                return bd_err_prefix(err, "group %s", cfg->groups[g].name);
    /* sources read better relative to the repository */
    size_t n = strlen(cfg->checkout_dir);
    for (size_t i = 0; i < objs->n; i++) {
        char *src = objs->v[i].src;
        if (!strncmp(src, cfg->checkout_dir, n) && src[n] == '/')
            memmove(src, src + n + 1, strlen(src + n + 1) + 1);
    }
    return 0;
}

/* The same object twice would be applied twice with different content. */
static int check_unique(const struct gitops_objs *objs, struct bd_err *err)
{
    char **ids = bd_xcalloc(objs->n + 1, sizeof *ids);
    int rc = 0;
    for (size_t i = 0; i < objs->n; i++)
        ids[i] = gitops_object_id(objs->v[i].api_version, objs->v[i].kind, objs->v[i].ns,
                                  objs->v[i].name);
    for (size_t i = 0; i < objs->n && rc == 0; i++)
        for (size_t j = 0; j < i && rc == 0; j++)
            if (!strcmp(ids[i], ids[j]))
                rc = bd_err_set(err, "%s %s is rendered twice: %s and %s", objs->v[i].kind,
                                objs->v[i].name, objs->v[j].src, objs->v[i].src);
    for (size_t i = 0; i < objs->n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}

/* The inventory after this sync: what was applied or read back, what kept its place
 * because it could not be applied or pruned now. Sorted by id. */
static struct state_gitops_item *next_inventory(const struct gitops_run *r, const bool *keep,
                                                size_t *n)
{
    struct state_gitops_item *v = bd_xcalloc(r->objs.n + r->nprev + 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < r->objs.n; i++) {
        const struct gitops_obj *o = &r->objs.v[i];
        if (o->outcome != GITOPS_APPLIED && o->outcome != GITOPS_UNCHANGED)
            continue;
        v[k].id = bd_xstrdup(o->id);
        v[k].api_version = bd_xstrdup(o->api_version);
        memcpy(v[k++].hash, o->hash, sizeof o->hash);
    }
    for (size_t i = 0; i < r->nprev; i++) {
        bool have = false;
        for (size_t j = 0; j < k && !have; j++)
            have = !strcmp(v[j].id, r->prev[i].id);
        if (!have && keep[i]) {
            v[k].id = bd_xstrdup(r->prev[i].id);
            v[k].api_version = bd_xstrdup(r->prev[i].api_version);
            memcpy(v[k++].hash, r->prev[i].hash, sizeof r->prev[i].hash);
        }
    }
    *n = k;
    return v;
}

static bool same_ids(const struct state_gitops_item *a, size_t na,
                     const struct state_gitops_item *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = !strcmp(a[i].id, b[j].id);
        if (!found)
            return false;
    }
    return true;
}

static void set_error(struct gitops_result *res, const char *msg)
{
    if (!res->error)
        res->error = bd_xstrdup(msg);
}

/* After render: apply, prune and keep the inventory. */
static void apply_all(struct gitops_run *r, struct state_db *st)
{
    const struct gitops_cfg *cfg = r->cfg;
    struct gitops_result *res = r->res;
    struct bd_err err;
    if (r->nprev == 0 && gitops_inventory_from_cluster(r, &err) < 0)
        bd_warn("gitops: %s", err.msg);
    size_t reached = 0;
    for (size_t g = 0; g < cfg->ngroups; g++, reached++) {
        if (gitops_apply_group(r, g) < 0) {
            char *msg = bd_xasprintf("group %s: %lld failed, %lld not healthy within %llds",
                                     cfg->groups[g].name, (long long)res->failed,
                                     (long long)res->unhealthy, (long long)cfg->health_timeout_s);
            set_error(res, msg);
            free(msg);
            reached++;
            break;
        }
    }
    bool *keep = bd_xcalloc(r->nprev + 1, sizeof *keep);
    bool all_applied = reached == cfg->ngroups && res->failed == 0 &&
                       !(r->cancel && atomic_load(r->cancel));
    if (all_applied && cfg->prune) {
        gitops_prune_removed(r, keep);
    } else {
        /* without prune, what left Git is forgotten; after a failure it stays known */
        for (size_t i = 0; i < r->nprev; i++)
            keep[i] = !all_applied;
    }
    size_t n;
    struct state_gitops_item *inv = next_inventory(r, keep, &n);
    if (!same_ids(inv, n, r->prev, r->nprev) && gitops_inventory_to_cluster(r, inv, n, &err) < 0)
        set_error(res, err.msg);
    res->finished_ms = bd_now_ms();
    char *detail = cJSON_PrintUnformatted(res->detail);
    struct state_gitops_sync rec = {
        .started_ms = res->started_ms, .finished_ms = res->finished_ms,
        .revision = res->revision[0] ? res->revision : NULL, .ok = !res->error,
        .applied = res->applied, .unchanged = res->unchanged, .pruned = res->pruned,
        .failed = res->failed, .unhealthy = res->unhealthy, .error = res->error,
        .detail = detail,
    };
    if (state_gitops_record(st, &rec, inv, n, true, &err) < 0)
        bd_error("gitops: %s", err.msg);
    free(detail);
    state_gitops_items_free(inv, n);
    free(keep);
}

static void record_failure(struct state_db *st, struct gitops_result *res)
{
    res->finished_ms = bd_now_ms();
    char *detail = cJSON_PrintUnformatted(res->detail);
    struct state_gitops_sync rec = {
        .started_ms = res->started_ms, .finished_ms = res->finished_ms,
        .revision = res->revision[0] ? res->revision : NULL, .error = res->error,
        .detail = detail,
    };
    struct bd_err err;
    if (state_gitops_record(st, &rec, NULL, 0, false, &err) < 0)
        bd_error("gitops: %s", err.msg);
    free(detail);
}

int gitops_sync(const struct gitops_cfg *cfg, const struct kube_target *t, struct state_db *st,
                const atomic_bool *cancel, struct gitops_result *res)
{
    memset(res, 0, sizeof *res);
    res->started_ms = bd_now_ms();
    res->detail = cJSON_CreateObject();
    struct bd_err err;
    struct gitops_git_opts go = {.url = cfg->repo, .ref = cfg->ref, .token_file = cfg->token_file,
                                 .ssh_key_file = cfg->ssh_key_file, .dir = cfg->checkout_dir,
                                 .cancel = cancel};
    bool kept;
    if (gitops_git_sync(&go, res->revision, &kept, &err) < 0) {
        char *msg = kept ? bd_xasprintf("git: %s (keeping revision %.12s)", err.msg, res->revision)
                         : bd_xasprintf("git: %s", err.msg);
        set_error(res, msg);
        free(msg);
        if (!kept) {
            record_failure(st, res);
            return -1;
        }
    }
    int64_t t_git = bd_now_ms();
    struct gitops_run r = {.cfg = cfg, .cancel = cancel, .res = res};
    if (render_all(cfg, &r.objs, &err) < 0 || check_unique(&r.objs, &err) < 0) {
        char *msg = bd_xasprintf("render of %.12s: %s; nothing applied", res->revision, err.msg);
        free(res->error);
        res->error = msg;
        gitops_objs_free(&r.objs);
        record_failure(st, res);
        return -1;
    }
    res->objects = (int64_t)r.objs.n;
    if (state_gitops_inventory(st, &r.prev, &r.nprev, &err) < 0) {
        set_error(res, err.msg);
        gitops_objs_free(&r.objs);
        record_failure(st, res);
        return -1;
    }
    r.kube = kube_new(t);
    r.disc = kube_discovery_new();
    int64_t t_render = bd_now_ms();
    apply_all(&r, st);
    bd_debug("gitops: git %lld ms, render %lld ms, apply %lld ms", (long long)(t_git - res->started_ms),
             (long long)(t_render - t_git), (long long)(bd_now_ms() - t_render));
    kube_discovery_free(r.disc);
    kube_free(r.kube);
    state_gitops_items_free(r.prev, r.nprev);
    gitops_objs_free(&r.objs);
    res->ok = !res->error;
    return res->ok ? 0 : -1;
}
