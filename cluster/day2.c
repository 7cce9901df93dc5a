/* Day-2 jobs: bootctl apply (changed configs pushed through ApplyConfiguration), bootctl
 * upgrade talos (Upgrade with the lab's installer image at a new version) and bootctl
 * upgrade kubernetes (the configs lab.yaml now makes, whose component images name the
 * new version, applied as for bootctl apply; each Node followed to the new kubelet).
 *
 * A job is a list of machines taken one at a time, control planes first, stored in
 * state.db so a bootd that restarts carries on where it was. The reconciler's thread
 * advances it a step per round:
 *
 *   call  before touching a control plane that will go away (a reboot, an upgrade),
 *         every control plane's etcd must answer for itself and no member may be a
 *         learner: taking one away then leaves a quorum. Then the call; a machine that
 *         needs nothing is skipped.
 *   wait  the machine goes away and comes back: Version answers again (an upgrade: with
 *         the new version; the old one after going away means Talos rolled back, the
 *         job fails), and a control plane's etcd answers for itself again.
 *   kubelet  (upgrade-kubernetes, a change Talos applied live) the machine's Node
 *         reports the new kubelet version and is Ready.
 *
 * The first failure (refused config, a machine not back in time, a rollback, etcd not
 * healthy in time) stops the job: the machines after it are not touched. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_MS 1000

/* The job's machines in order: control planes first, then the rest, each in lab order;
 * only names asked for (none: all). Space-separated into out. -1 for an unknown name. */
static int order_machines(const struct lab *lab, const char *const *names, size_t n, char *out,
                          size_t size, struct bd_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!lab_machine_by_name(lab, names[i]))
            return bd_err_set(err, "no machine named \"%s\" in %s", names[i], lab->path);
    out[0] = 0;
    size_t len = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < lab->nmachines; i++) {
            const struct lab_machine *m = &lab->machines[i];
            if ((m->role == LAB_ROLE_CONTROLPLANE) != (pass == 0))
                continue;
            bool want = n == 0;
            for (size_t k = 0; k < n && !want; k++)
                want = !strcmp(names[k], m->name);
            if (!want)
                continue;
            int w = snprintf(out + len, size - len, "%s%s", len ? " " : "", m->name);
            if (w < 0 || (size_t)w >= size - len)
                return bd_err_set(err, "too many machines for one job");
            len += (size_t)w;
        }
    return 0;
}

/* The pos-th name of a job (into name); false past the end. */
static bool nth_machine(const struct state_day2 *j, int64_t pos, char name[64])
{
    const char *p = j->machines;
    for (int64_t i = 0; *p; i++) {
        size_t len = strcspn(p, " ");
        if (i == pos) {
            snprintf(name, 64, "%.*s", (int)len, p);
            return true;
        }
        p += len + (p[len] == ' ');
    }
    return false;
}

static bool job_active(const struct state_day2 *j)
{
    return !strcmp(j->phase, "call") || !strcmp(j->phase, "wait") || !strcmp(j->phase, "kubelet");
}

static bool kind_kubernetes(const struct state_day2 *j)
{
    return !strcmp(j->kind, "upgrade-kubernetes");
}

/* bootctl upgrade kubernetes VERSION upgrades to what lab.yaml says: the configs come
 * from it, and bootd does not edit it (it is the owner's, in Git). -1 with the line to
 * change when it says another version. VERSION with or without its v (lab.yaml and
 * Talos configs write none, kubelets report one); tag gets the kubelet's "v1.36.3". */
static int kubernetes_version_check(const struct lab *lab, const char *version, char tag[64],
                                    struct bd_err *err)
{
    const char *now = lab->cluster.kubernetes_version;
    const struct lab_at *at = &lab->cluster.kubernetes_version_at;
    version += version[0] == 'v';
    snprintf(tag, 64, "v%s", now);
    if (!strcmp(now, version))
        return 0;
    if (!at->file)
        return bd_err_set(err,
                          "%s sets no cluster.kubernetes_version (the default is %s): add "
                          "\"kubernetes_version: %s\" under cluster:, bootctl reload, then "
                          "bootctl upgrade kubernetes %s",
                          lab->path, now, version, version);
    return bd_err_set(err,
                      "%s:%d: cluster.kubernetes_version is %s, not %s: change that line to "
                      "\"kubernetes_version: %s\", bootctl reload, then bootctl upgrade "
                      "kubernetes %s (bootd does not edit lab.yaml)",
                      at->file, at->line, now, version, version, version);
}

struct cJSON *cluster_day2_start(struct cluster *c, const char *kind, const char *arg,
                                 const char *const *names, size_t n, int64_t timeout_s,
                                 struct bd_err *err)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    cJSON *o = NULL;
    struct state_day2 j;
    char list[2048];
    int have = state_day2_get(c->env.store, &j, err);
    if (have < 0)
        goto out;
    if (have && job_active(&j)) {
        bd_err_set(err, "a %s job (%s) is under way; bootctl apply --status shows it", j.kind,
                   j.arg);
        goto out;
    }
    if (!l.creds) {
        bd_err_set(err, "bootd cannot call the Talos API: %s", l.creds_error);
        goto out;
    }
    char tag[64];
    if (!strcmp(kind, "upgrade-kubernetes")) {
        if (kubernetes_version_check(l.lab, arg, tag, err) < 0)
            goto out;
        arg = tag;
        if (!l.kube) { /* each Node is followed to the new kubelet */
            bd_err_set(err, "bootd cannot call the Kubernetes API: %s",
                       l.kube_error ? l.kube_error : "?");
            goto out;
        }
    }
    if (order_machines(l.lab, names, n, list, sizeof list, err) < 0 ||
        state_day2_start(c->env.store, kind, arg, list, timeout_s > 0 ? timeout_s : 600, err) < 0)
        goto out;
    char msg[2300];
    snprintf(msg, sizeof msg, "%s %s started: %s", kind, arg, list[0] ? list : "(no machines)");
    cluster_event(c, "day2", NULL, "day2-start", msg);
    c->day2_jobs++;
    cluster_kick(c);
    o = cluster_day2_status(c);
out:
    c->env.lab_put(c->env.ud, &l);
    return o;
}

struct cJSON *cluster_day2_status(struct cluster *c)
{
    struct state_day2 j;
    struct bd_err err;
    int have = state_day2_get(c->env.store, &j, &err);
    if (have <= 0)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", j.kind);
    cJSON_AddStringToObject(o, "arg", j.arg);
    cJSON *a = cJSON_AddArrayToObject(o, "machines");
    char name[64];
    for (int64_t i = 0; nth_machine(&j, i, name); i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(name));
    cJSON_AddNumberToObject(o, "pos", (double)j.pos);
    if (nth_machine(&j, j.pos, name) && job_active(&j))
        cJSON_AddStringToObject(o, "machine", name);
    cJSON_AddStringToObject(o, "phase", j.phase);
    bd_json_add_time(o, "started", j.started_ms);
    if (j.finished_ms)
        bd_json_add_time(o, "finished", j.finished_ms);
    bd_json_add_str_or_null(o, "error", j.error[0] ? j.error : NULL);
    if (!strcmp(j.kind, "upgrade-talos")) {
        /* PXE boots get what lab.yaml says: it has to say the new version too */
        struct cluster_lab l;
        c->env.lab_get(c->env.ud, &l);
        if (strcmp(l.lab->cluster.talos_version, j.arg)) {
            char hint[1200];
            snprintf(hint, sizeof hint,
                     "%s: set cluster.talos_version: %s (it says %s), or machines that boot "
                     "from the network install the old version",
                     l.lab->path, j.arg, l.lab->cluster.talos_version);
            cJSON_AddStringToObject(o, "lab_change", hint);
        }
        c->env.lab_put(c->env.ud, &l);
    }
    return o;
}

/* ---- the steps ---- */

static void job_save(struct cluster *c, struct state_day2 *j)
{
    struct bd_err err;
    if (state_day2_set(c->env.store, j, &err) < 0)
        bd_error("day2: %s", err.msg);
}

static void job_fail(struct cluster *c, struct state_day2 *j, const struct lab_machine *m,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void job_fail(struct cluster *c, struct state_day2 *j, const struct lab_machine *m,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    snprintf(j->phase, sizeof j->phase, "failed");
    job_save(c, j);
    char msg[1300];
    snprintf(msg, sizeof msg, "%s %s stopped: %.1000s", j->kind, j->arg, j->error);
    cluster_event(c, "day2", m, "day2-failed", msg);
    c->day2_failures++;
}

static void next_machine(struct cluster *c, struct state_day2 *j)
{
    j->pos++;
    snprintf(j->phase, sizeof j->phase, "call");
    j->down_seen = false;
    j->step_started_ms = bd_now_ms();
    char name[64];
    if (!nth_machine(j, j->pos, name)) {
        snprintf(j->phase, sizeof j->phase, "done");
        char msg[200];
        snprintf(msg, sizeof msg, "%s %s done", j->kind, j->arg);
        cluster_event(c, "day2", NULL, "day2-done", msg);
    }
    job_save(c, j);
}

/* Every control plane's etcd answers for itself and no member is a learner: one may go
 * away with a quorum left. why says what is not so. */
static bool etcd_healthy(struct cluster *c, const struct cluster_lab *l, char *why, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < l->lab->nmachines; i++) {
        const struct lab_machine *m = &l->lab->machines[i];
        char ip[16];
        if (m->role != LAB_ROLE_CONTROLPLANE)
            continue;
        cps++;
        if (!cluster_machine_addr(c->env.store, m, ip)) {
            snprintf(why, n, "%s: no known address", m->name);
            return false;
        }
        struct talos_node node = cluster_node_at(c, l, ip);
        struct talos_etcd_member *v;
        size_t count;
        int code;
        struct bd_err err;
        if (c->env.talos_etcd_members(c->env.ud, &node, true, &v, &count, &code, &err) < 0) {
            snprintf(why, n, "%s's etcd: %.500s", m->name, err.msg);
            return false;
        }
        for (size_t k = 0; k < count; k++)
            if (v[k].learner) {
                snprintf(why, n, "etcd member %s is a learner (not caught up yet)", v[k].hostname);
                free(v);
                return false;
            }
        if (count < cps && count < 2) {
            snprintf(why, n, "%s's etcd lists %zu member(s)", m->name, count);
            free(v);
            return false;
        }
        free(v);
    }
    return true;
}

/* What follows a machine's call: the next machine (NULL), or a phase that waits for it:
 * "wait" it went away (a reboot, an upgrade), "kubelet" its Node's new kubelet. */
static const char *after_change(const struct state_day2 *j, enum talos_apply_mode applied)
{
    if (applied == TALOS_APPLY_REBOOT)
        return "wait";
    return kind_kubernetes(j) && applied != TALOS_APPLY_STAGED ? "kubelet" : NULL;
}

/* Nothing to apply: the next machine, unless a Kubernetes upgrade's Node is still to
 * report the version (it was applied before: by bootctl apply, or by this job before
 * bootd restarted). */
static const char *after_unchanged(struct cluster *c, const struct cluster_lab *l,
                                   const struct state_day2 *j, const struct lab_machine *m)
{
    char why[600];
    if (!kind_kubernetes(j))
        return NULL;
    if (cluster_kube_node_ready(c, l, m, j->arg, why, sizeof why) != 1)
        return "kubelet";
    char msg[700];
    snprintf(msg, sizeof msg, "already runs kubelet %s: %s", j->arg, why);
    cluster_event(c, "day2", m, "upgrade-skipped", msg);
    return NULL;
}

/* apply and upgrade-kubernetes, phase call: the change pushed; *then says what follows
 * (after_change). 0 done (also: nothing to do), 1 not yet (etcd), -1 failed (job
 * failed). */
static int call_apply(struct cluster *c, const struct cluster_lab *l, struct state_day2 *j,
                      const struct lab_machine *m, const struct talos_node *node,
                      const char **then)
{
    char *cfg, sha[65], mac[18];
    size_t len;
    struct bd_err err;
    *then = NULL;
    if (talos_machine_config(l->talos, m, &cfg, &len, &err) < 0) {
        job_fail(c, j, m, "%s: %s", m->name, err.msg);
        return -1;
    }
    bd_sha256_hex(cfg, len, sha);
    bd_mac_format(&m->mac, mac);
    struct state_applied a;
    int have = state_applied_get(c->env.store, mac, &a, &err);
    if (have > 0)
        state_applied_clear(&a);
    if (have > 0 && !strcmp(a.sha256, sha)) {
        free(cfg);
        cluster_event(c, "day2", m, "config-unchanged", "config unchanged: nothing to apply");
        *then = after_unchanged(c, l, j, m);
        return 0;
    }
    if (have == 0 && cluster_stored_state(c, m) < STATE_INSTALLING) {
        free(cfg);
        cluster_event(c, "day2", m, "config-unchanged",
                      "not installed yet: it gets its config when it boots");
        return 0;
    }
    enum talos_apply_mode mode = TALOS_APPLY_AUTO; /* upgrade-kubernetes: as Talos decides */
    if (!strcmp(j->kind, "apply") && talos_apply_mode_parse(j->arg, &mode) < 0)
        mode = TALOS_APPLY_AUTO;
    struct talos_apply_result res;
    int code, rc;
    if (mode == TALOS_APPLY_AUTO) { /* will it reboot? then etcd first */
        rc = c->env.talos_apply_config(c->env.ud, node, cfg, len, TALOS_APPLY_AUTO, true, 0,
                                       &res, &code, &err);
        if (rc < 0) {
            free(cfg);
            job_fail(c, j, m, "%s: Talos %s the config: %s", m->name,
                     code == TALOS_INVALID_ARGUMENT ? "refuses" : "did not judge", err.msg);
            return -1;
        }
    }
    /* AUTO stays AUTO for the real call (Talos decides again); the dry run tells whether
     * the machine is about to go away */
    enum talos_apply_mode expect = mode != TALOS_APPLY_AUTO ? mode
                                   : res.mode == TALOS_APPLY_NO_REBOOT ? TALOS_APPLY_NO_REBOOT
                                                                       : TALOS_APPLY_REBOOT;
    char why[600];
    if (expect == TALOS_APPLY_REBOOT && m->role == LAB_ROLE_CONTROLPLANE &&
        !etcd_healthy(c, l, why, sizeof why)) {
        free(cfg);
        if (bd_now_ms() - j->step_started_ms > j->timeout_s * 1000) {
            job_fail(c, j, m, "etcd not healthy for %llds before %s: %s",
                     (long long)j->timeout_s, m->name, why);
            return -1;
        }
        return 1;
    }
    rc = c->env.talos_apply_config(c->env.ud, node, cfg, len, mode, false, 0, &res, &code, &err);
    if (rc < 0) {
        free(cfg);
        job_fail(c, j, m, "%s: ApplyConfiguration (%s): %s", m->name, talos_apply_mode_name(mode),
                 err.msg);
        return -1;
    }
    struct bd_err rerr;
    /* try: Talos reverts it unless applied again, so it is not what the machine keeps */
    if (res.mode != TALOS_APPLY_TRY &&
        cluster_applied_record(c->env.store, l->talos, l->lab, m, cfg, len,
                               talos_apply_mode_name(res.mode), &rerr) < 0)
        bd_error("day2: %s", rerr.msg);
    free(cfg);
    char msg[600];
    snprintf(msg, sizeof msg, "config applied (%s): %.400s", talos_apply_mode_name(res.mode),
             res.details);
    cluster_event(c, "day2", m, "config-applied", msg);
    c->day2_applied++;
    *then = after_change(j, res.mode);
    return 0;
}

/* upgrade-talos, phase call. Same outcomes as call_apply. */
static int call_upgrade(struct cluster *c, const struct cluster_lab *l, struct state_day2 *j,
                        const struct lab_machine *m, const struct talos_node *node,
                        const char **then)
{
    struct talos_version v;
    int code;
    struct bd_err err;
    *then = NULL;
    char why[1200];
    /* first the image cache: machines that boot from the network meanwhile need it */
    int ready = c->env.images_ensure ? c->env.images_ensure(c->env.ud, j->arg, why, sizeof why) : 1;
    if (ready < 0) {
        job_fail(c, j, m, "before %s: %.1000s", m->name, why);
        return -1;
    }
    if (ready == 0) {
        if (bd_now_ms() - j->step_started_ms > j->timeout_s * 1000) {
            job_fail(c, j, m, "before %s: %.1000s (for %llds)", m->name, why,
                     (long long)j->timeout_s);
            return -1;
        }
        return 1;
    }
    if (c->env.talos_version(c->env.ud, node, &v, &code, &err) == 0 && !strcmp(v.tag, j->arg)) {
        cluster_event(c, "day2", m, "upgrade-skipped", "already runs the version asked for");
        return 0;
    }
    if (m->role == LAB_ROLE_CONTROLPLANE && !etcd_healthy(c, l, why, sizeof why)) {
        if (bd_now_ms() - j->step_started_ms > j->timeout_s * 1000) {
            job_fail(c, j, m, "etcd not healthy for %llds before %s: %s",
                     (long long)j->timeout_s, m->name, why);
            return -1;
        }
        return 1;
    }
    char *image = talos_installer_image(l->talos, j->arg);
    if (!image) {
        job_fail(c, j, m, "the lab's installer image names no Image Factory schematic");
        return -1;
    }
    int rc = c->env.talos_upgrade(c->env.ud, node, image, &code, &err);
    if (rc < 0 && code != TALOS_FAILED_PRECONDITION) { /* FailedPrecondition: under way */
        job_fail(c, j, m, "%s: Upgrade to %s: %s", m->name, image, err.msg);
        free(image);
        return -1;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "upgrade to %s asked for (%s)", j->arg, image);
    free(image);
    cluster_event(c, "day2", m, "upgrade-started", msg);
    c->day2_upgrades++;
    *then = "wait";
    return 0;
}

/* A step not done within the job's timeout fails it: -1 then, 1 to wait on. */
static int not_yet(struct cluster *c, struct state_day2 *j, const struct lab_machine *m,
                   const char *what, const char *why)
{
    if (bd_now_ms() - j->step_started_ms <= j->timeout_s * 1000)
        return 1;
    job_fail(c, j, m, "%s %s after %llds: %s", m->name, what, (long long)j->timeout_s, why);
    return -1;
}

/* upgrade-kubernetes: the machine's Node reports the new kubelet and is Ready. */
static bool kubelet_done(struct cluster *c, const struct cluster_lab *l,
                         const struct state_day2 *j, const struct lab_machine *m, char *why,
                         size_t n)
{
    int rc = cluster_kube_node_ready(c, l, m, j->arg, why, n);
    if (rc < 0)
        snprintf(why, n, "bootd has not seen the Kubernetes API answer yet");
    if (rc != 1)
        return false;
    char msg[800];
    snprintf(msg, sizeof msg, "kubelet %s: %s", j->arg, why);
    cluster_event(c, "day2", m, "kubelet-upgraded", msg);
    c->day2_kubelets++;
    return true;
}

/* phase kubelet: 0 done, 1 not yet, -1 failed. */
static int wait_kubelet(struct cluster *c, const struct cluster_lab *l, struct state_day2 *j,
                        const struct lab_machine *m)
{
    char why[600];
    if (kubelet_done(c, l, j, m, why, sizeof why))
        return 0;
    char what[128];
    snprintf(what, sizeof what, "not on kubelet %s and Ready", j->arg);
    return not_yet(c, j, m, what, why);
}

/* phase wait: 0 back, 1 not yet, -1 failed. */
static int wait_back(struct cluster *c, const struct cluster_lab *l, struct state_day2 *j,
                     const struct lab_machine *m, const struct talos_node *node)
{
    struct talos_version v;
    int code;
    struct bd_err err;
    bool up = c->env.talos_version(c->env.ud, node, &v, &code, &err) == 0;
    bool upgrade = !strcmp(j->kind, "upgrade-talos");
    if (!up && !j->down_seen) {
        j->down_seen = true;
        job_save(c, j);
        cluster_event(c, "day2", m, "machine-away", "went away (rebooting)");
    }
    if (up && upgrade && !strcmp(v.tag, j->arg)) {
        j->down_seen = true; /* on the new version: it went away, however briefly */
    } else if (up && upgrade && j->down_seen) {
        job_fail(c, j, m, "%s came back on %s, not %s: Talos rolled the upgrade back", m->name,
                 v.tag, j->arg);
        return -1;
    }
    char why[600] = "";
    bool back = up && j->down_seen;
    if (back && m->role == LAB_ROLE_CONTROLPLANE && !etcd_healthy(c, l, why, sizeof why))
        back = false;
    if (back && kind_kubernetes(j)) {
        if (!kubelet_done(c, l, j, m, why, sizeof why))
            back = false;
    } else if (back && cluster_kube_node_ready(c, l, m, NULL, why, sizeof why) == 0) {
        back = false; /* Kubernetes runs: its Node must be Ready again too */
    }
    if (back) {
        char msg[700];
        snprintf(msg, sizeof msg, "back: Talos %s%s%s%s", v.tag,
                 m->role == LAB_ROLE_CONTROLPLANE ? ", etcd healthy" : "", why[0] ? ", " : "",
                 why);
        cluster_event(c, "day2", m, "machine-back", msg);
        return 0;
    }
    return not_yet(c, j, m, "not back", !up ? err.msg : why[0] ? why : "it never went away");
}

/* One step of the job j on its current machine, with lab l. true: on to the next
 * machine in this round (a live change). */
static bool step_machine(struct cluster *c, const struct cluster_lab *l, struct state_day2 *j)
{
    char name[64], ip[16];
    const struct lab_machine *m = nth_machine(j, j->pos, name) ? lab_machine_by_name(l->lab, name)
                                                              : NULL;
    if (!m) {
        job_fail(c, j, NULL, "machine %s is no longer in lab.yaml", name);
        return false;
    }
    if (!cluster_machine_addr(c->env.store, m, ip)) {
        job_fail(c, j, m, "%s: no known address", m->name);
        return false;
    }
    struct talos_node node = cluster_node_at(c, l, ip);
    if (!j->step_started_ms) {
        j->step_started_ms = bd_now_ms();
        job_save(c, j);
    }
    int rc;
    if (!strcmp(j->phase, "call")) {
        const char *then;
        rc = !strcmp(j->kind, "upgrade-talos") ? call_upgrade(c, l, j, m, &node, &then)
                                               : call_apply(c, l, j, m, &node, &then);
        if (rc != 0)
            return false;
        if (then) {
            snprintf(j->phase, sizeof j->phase, "%s", then);
            j->down_seen = false;
            j->step_started_ms = bd_now_ms();
            job_save(c, j);
            return false; /* give it a moment to go, or its kubelet to restart */
        }
        next_machine(c, j);
        return true;
    }
    rc = !strcmp(j->phase, "kubelet") ? wait_kubelet(c, l, j, m) : wait_back(c, l, j, m, &node);
    if (rc == 0)
        next_machine(c, j);
    return false;
}

void cluster_day2_step(struct cluster *c, int64_t *next)
{
    struct state_day2 j;
    struct bd_err err;
    bool more = true;
    for (int guard = 0; more && guard < 64 && !atomic_load(&c->worker.cancel); guard++) {
        if (state_day2_get(c->env.store, &j, &err) <= 0 || !job_active(&j))
            return;
        int64_t soon = c->env.now_ms(c->env.ud) + STEP_MS;
        if (*next > soon)
            *next = soon;
        /* The lab is taken after the job is read, never before: a job is started after
         * the reload it follows (cluster.apply: auto, or bootctl apply after bootctl
         * reload), so this lab is at least that one. A lab taken at the start of the
         * round, before a reload the job came from, rendered the old configs and found
         * them unchanged. */
        struct cluster_lab l;
        c->env.lab_get(c->env.ud, &l);
        more = step_machine(c, &l, &j);
        c->env.lab_put(c->env.ud, &l);
    }
}

/* Does an installed machine's config differ from what it last got? */
static bool any_changed(struct cluster *c, const struct cluster_lab *l)
{
    for (size_t i = 0; i < l->lab->nmachines; i++) {
        const struct lab_machine *m = &l->lab->machines[i];
        char mac[18], sha[65], *cfg;
        size_t len;
        struct bd_err err;
        struct state_applied a;
        bd_mac_format(&m->mac, mac);
        if (state_applied_get(c->env.store, mac, &a, &err) != 1)
            continue; /* never got one: it gets it when it boots */
        if (talos_machine_config(l->talos, m, &cfg, &len, &err) == 0) {
            bd_sha256_hex(cfg, len, sha);
            free(cfg);
            bool changed = strcmp(sha, a.sha256) != 0;
            state_applied_clear(&a);
            if (changed)
                return true;
        } else {
            state_applied_clear(&a);
        }
    }
    return false;
}

void cluster_day2_auto(struct cluster *c)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    bool go = l.lab->cluster.apply == LAB_APPLY_AUTO && l.creds && any_changed(c, &l);
    c->env.lab_put(c->env.ud, &l);
    if (!go)
        return;
    struct bd_err err;
    cJSON *o = cluster_day2_start(c, "apply", "auto", NULL, 0, 0, &err);
    if (!o) {
        char msg[1200];
        snprintf(msg, sizeof msg, "cluster.apply: auto: not started: %s", err.msg);
        cluster_event(c, "day2", NULL, "day2-failed", msg);
    }
    cJSON_Delete(o);
}
