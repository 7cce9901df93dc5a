/* bootd's side of GitOps: the loop starts when lab.yaml has a gitops section and follows
 * reloads; it syncs once it knows the Kubernetes API, from gitops.kubeconfig or
 * <state-dir>/kubeconfig (bootstrap hands it over later through
 * gitops_loop_set_target). /api/v1/gitops shows its status, POST /api/v1/gitops/sync
 * (webhooks, bootctl gitops sync) asks for a sync now. */
#include "server.h"

#include "../gitops/gitops.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Gives the loop the API from the kubeconfig when there is one. */
static void load_target(struct server *s, const struct lab *lab)
{
    char *path = lab->gitops.kubeconfig ? bd_xstrdup(lab->gitops.kubeconfig)
                                        : bd_path_join(s->opts.state_dir, "kubeconfig");
    struct kube_target t;
    struct bd_err err;
    if (access(path, F_OK) < 0) {
        char *what = bd_xasprintf("a kubeconfig at %s (or the cluster bootstrap)", path);
        gitops_loop_waiting_for(s->gitops, what);
        bd_info("gitops: waiting for %s", what);
        free(what);
    } else if (kube_kubeconfig_load(path, &t, &err) < 0) {
        gitops_loop_waiting_for(s->gitops, err.msg);
        bd_warn("gitops: %s", err.msg);
    } else {
        gitops_loop_set_target(s->gitops, &t);
        kube_target_free(&t);
    }
    free(path);
}

void server_gitops_lab(struct server *s, const struct lab *lab)
{
    struct bd_err err;
    pthread_mutex_lock(&s->mu);
    if (!s->gitops && lab->gitops.set) {
        struct gitops_loop *l = gitops_loop_new(s->store);
        if (gitops_loop_start(l, &err) < 0) {
            bd_error("%s", err.msg);
            gitops_loop_free(l);
        } else {
            s->gitops = l;
        }
    }
    struct gitops_loop *l = s->gitops;
    pthread_mutex_unlock(&s->mu);
    if (!l)
        return;
    gitops_loop_configure(l, gitops_cfg_from_lab(lab, s->opts.state_dir));
    if (lab->gitops.set)
        load_target(s, lab);
}

void server_gitops_stop(struct server *s)
{
    gitops_loop_free(s->gitops);
    s->gitops = NULL;
}

void server_gitops_metrics(struct server *s, struct bd_buf *b)
{
    if (s->gitops)
        gitops_loop_metrics(s->gitops, b);
}

enum MHD_Result server_route_gitops(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *sub, const char *method)
{
    struct lab_snap *snap = server_lab(s);
    bool enabled = snap->lab->gitops.set && s->gitops;
    enum MHD_Result rc;
    if (!enabled) {
        rc = server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "lab.yaml has no gitops section");
    } else if (!strcmp(sub, "") || !strcmp(sub, "/status")) {
        rc = strcmp(method, "GET") && strcmp(method, "HEAD")
                 ? server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET")
                 : server_reply_json(c, r, MHD_HTTP_OK, gitops_loop_status(s->gitops));
    } else if (!strcmp(sub, "/sync")) {
        if (strcmp(method, "POST")) {
            rc = server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
        } else {
            if (!gitops_loop_has_target(s->gitops))
                load_target(s, snap->lab);
            gitops_loop_trigger(s->gitops);
            rc = server_reply_json(c, r, MHD_HTTP_ACCEPTED, gitops_loop_status(s->gitops));
        }
    } else {
        rc = server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "no such API route");
    }
    server_lab_put(s, snap);
    return rc;
}
