/* The reconciler (cluster/) as bootd runs it: it reads the lab from the current
 * snapshot and hands the Kubernetes API to the GitOps loop when it first answers. */
#include "server.h"

#include "../cluster/cluster.h"
#include "../gitops/gitops.h"

static void lab_get(void *ud, struct cluster_lab *out)
{
    struct lab_snap *snap = server_lab(ud);
    *out = (struct cluster_lab){
        .lab = snap->lab,
        .talos = snap->talos,
        .creds = snap->creds,
        .creds_error = snap->creds_error,
        .cluster_id = snap->cluster_id,
        .kube = snap->kube,
        .kube_error = snap->kube_error,
        .handle = snap,
    };
}

static void lab_put(void *ud, struct cluster_lab *l)
{
    server_lab_put(ud, l->handle);
}

static void kube_ready(void *ud, const struct kube_target *t)
{
    struct server *s = ud;
    pthread_mutex_lock(&s->mu);
    struct gitops_loop *loop = s->gitops;
    pthread_mutex_unlock(&s->mu);
    if (loop)
        gitops_loop_set_target(loop, t);
}

static int images_ensure(void *ud, const char *version, char *why, size_t n)
{
    return server_image_ensure(ud, version, why, n);
}

int server_cluster_start(struct server *s, struct bd_err *err)
{
    struct cluster_env env = {
        .store = s->store,
        .state_dir = s->opts.state_dir,
        .talos_port = s->opts.talos_port,
        .ud = s,
        .lab_get = lab_get,
        .lab_put = lab_put,
        .kube_ready = kube_ready,
        .images_ensure = images_ensure,
    };
    s->cluster = cluster_new(&env);
    return cluster_start(s->cluster, err);
}
