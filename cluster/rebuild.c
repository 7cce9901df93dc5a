/* bootctl rebuild: the lab again from lab.yaml, secrets.yaml and (optionally) an etcd
 * snapshot. Starting one is a single state change (state_rebuild_start): the rebuild
 * record, every lab machine told to install again, the cluster's bootstrap record
 * forgotten. From there the reconciler does what it always does, except that on the
 * bootstrap step it restores etcd instead of starting it empty: EtcdRecover (the
 * snapshot, retried while Talos says FailedPrecondition "not ready for recovery yet")
 * then Bootstrap{recover_etcd}. Everything it needs is in state.db, so a bootd killed
 * mid-rebuild carries on where it was.
 *
 * A snapshot is checked before anything is changed: its name's cluster id (bootd's
 * backup names carry it) must be this lab's, it must end in etcd's SHA-256 of itself
 * (a raw copy of etcd's db file has none: --skip-hash-check, and then it must look like
 * one), and its bbolt pages must give a revision. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cluster_snapshot_check(const char *path, const char *cluster_id, bool skip_hash,
                           struct cluster_snapshot *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char mine[128];
    snprintf(mine, sizeof mine, "%s", cluster_id);
    for (char *p = mine; *p; p++)
        *p = *p == '/' ? '_' : *p == '+' ? '-' : *p;
    struct cluster_snapshot named;
    if (cluster_snapshot_name_parse(base, &named) == 0 && strcmp(named.cluster_id, mine))
        return bd_err_set(err,
                          "%s is a snapshot of cluster %s, not of this lab's cluster %s "
                          "(secrets.yaml cluster.id): restoring it would mix two clusters",
                          path, named.cluster_id, mine);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bd_err_set(err, "%s: %s", path, strerror(errno));
    struct talos_etcd_check *c = talos_etcd_check_new();
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        talos_etcd_check_update(c, buf, (size_t)n);
    int rerr = n < 0 ? errno : 0;
    close(fd);
    struct talos_snapshot_info info;
    struct bd_err cerr;
    int crc = talos_etcd_check_finish(c, &info, &cerr);
    talos_etcd_check_free(c);
    if (rerr)
        return bd_err_set(err, "%s: %s", path, strerror(rerr));
    if (skip_hash) {
        if (crc == 0)
            return bd_err_set(err, "%s ends with etcd's SHA-256: it is a snapshot, check it "
                                   "(leave out --skip-hash-check, which is for raw db copies)",
                              path);
        if (info.size % 4096)
            return bd_err_set(err, "%s (%llu bytes) is not a raw etcd db copy either: those "
                                   "are whole 4 KiB pages",
                              path, (unsigned long long)info.size);
    } else if (crc < 0) {
        return bd_err_set(err, "%s: %s (a raw copy of etcd's member/snap/db has no hash: "
                               "--skip-hash-check)",
                          path, cerr.msg);
    }
    if (talos_etcd_snapshot_revision(path, &out->revision, err) < 0)
        return -1;
    snprintf(out->name, sizeof out->name, "%.*s", (int)(sizeof out->name - 1), base);
    snprintf(out->cluster_id, sizeof out->cluster_id, "%s", mine);
    out->size = info.size;
    return 0;
}

/* ---- the recovery call, on the reconciler's bootstrap step ---- */

int cluster_recover_call(struct cluster *c, const struct talos_node *n,
                         const struct state_rebuild *r, int *code, struct bd_err *err)
{
    int fd = open(r->snapshot, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "the snapshot %s: %s", r->snapshot, strerror(errno));
    }
    int rc = c->env.talos_etcd_recover(c->env.ud, n, fd, code, err);
    close(fd);
    if (rc < 0)
        return bd_err_prefix(err, "uploading the snapshot");
    rc = c->env.talos_bootstrap_recover(c->env.ud, n, r->skip_hash, code, err);
    if (rc < 0 && *code == TALOS_ALREADY_EXISTS)
        bd_err_prefix(err, "its etcd has data already, so it cannot restore; it was not "
                           "reinstalled (bootctl machine reinstall, or recreate its VM)");
    return rc;
}

bool cluster_rebuild_active(struct cluster *c, const char *cluster_id, struct state_rebuild *r)
{
    struct bd_err err;
    return cluster_id && state_rebuild_get(c->env.store, cluster_id, r, &err) == 1 &&
           strcmp(r->phase, "recovered");
}

/* ---- plan and start ---- */

/* Is etcd up? Asks each control plane until one lists the members. */
static bool etcd_healthy(struct cluster *c, const struct cluster_lab *l, char *why, size_t wn)
{
    snprintf(why, wn, "no control plane answered");
    for (size_t i = 0; i < l->lab->nmachines; i++) {
        const struct lab_machine *m = &l->lab->machines[i];
        char ip[16];
        if (m->role != LAB_ROLE_CONTROLPLANE || !cluster_machine_addr(c->env.store, m, ip))
            continue;
        struct talos_node n = cluster_node_at(c, l, ip);
        struct talos_etcd_member *v;
        size_t cnt;
        int code;
        struct bd_err err;
        if (c->env.talos_etcd_members(c->env.ud, &n, false, &v, &cnt, &code, &err) == 0) {
            snprintf(why, wn, "etcd answers through %s with %zu members", m->name, cnt);
            free(v);
            return cnt > 0;
        }
        snprintf(why, wn, "%s: %.500s", m->name, err.msg);
    }
    return false;
}

/* "latest": the newest of this cluster's snapshots in cluster.etcd_backup.dir. */
static int resolve(const struct cluster_lab *l, const char *want, char *path, size_t pn,
                   struct bd_err *err)
{
    if (strcmp(want, "latest")) {
        if (want[0] != '/')
            return bd_err_set(err, "the snapshot path must be absolute (bootd reads it): %s",
                              want);
        snprintf(path, pn, "%s", want);
        return 0;
    }
    const struct lab_etcd_backup *b = &l->lab->cluster.etcd_backup;
    if (!b->set)
        return bd_err_set(err, "--etcd-snapshot latest: cluster.etcd_backup is not set in %s, "
                               "so bootd keeps no snapshots; give a FILE",
                          l->lab->path);
    struct cluster_snapshot *v;
    size_t n;
    if (cluster_snapshots_list(b->dir, l->cluster_id, &v, &n, err) < 0)
        return -1;
    if (!n) {
        free(v);
        return bd_err_set(err, "--etcd-snapshot latest: %s holds no snapshot of this cluster",
                          b->dir);
    }
    char *p = bd_path_join(b->dir, v[0].name);
    snprintf(path, pn, "%s", p);
    free(p);
    free(v);
    return 0;
}

struct cJSON *cluster_rebuild(struct cluster *c, const char *snapshot, bool skip_hash,
                              bool dry_run, bool force, struct bd_err *err)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    cJSON *plan = NULL;
    char path[1024] = "", health[600];
    struct cluster_snapshot snap;
    if (!l.creds) {
        bd_err_set(err, "bootd cannot call the Talos API: %s", l.creds_error);
        goto out;
    }
    if (snapshot && (resolve(&l, snapshot, path, sizeof path, err) < 0 ||
                     cluster_snapshot_check(path, l.cluster_id, skip_hash, &snap, err) < 0))
        goto out;
    bool healthy = etcd_healthy(c, &l, health, sizeof health);
    plan = cJSON_CreateObject();
    cJSON_AddStringToObject(plan, "cluster", l.lab->cluster.name);
    cJSON_AddStringToObject(plan, "cluster_id", l.cluster_id);
    cJSON_AddStringToObject(plan, "etcd", health);
    cJSON_AddBoolToObject(plan, "healthy", healthy);
    cJSON_AddStringToObject(plan, "mode", path[0] ? "restore" : "fresh-bootstrap");
    if (path[0]) {
        cJSON *s = cJSON_AddObjectToObject(plan, "snapshot");
        cJSON_AddStringToObject(s, "path", path);
        cJSON_AddNumberToObject(s, "revision", (double)snap.revision);
        cJSON_AddNumberToObject(s, "size", (double)snap.size);
        cJSON_AddBoolToObject(s, "skip_hash_check", skip_hash);
    }
    /* a healthy cluster is left alone: Proxmox need not even answer */
    if ((!healthy || force) && cluster_rebuild_vms_plan(l.lab, &c->worker.cancel, plan, err) < 0) {
        cJSON_Delete(plan);
        plan = NULL;
        goto out;
    }
    cJSON *ms = cJSON_AddArrayToObject(plan, "reinstall");
    const char **macs = bd_xcalloc(l.lab->nmachines + 1, sizeof *macs);
    char(*macbuf)[18] = bd_xcalloc(l.lab->nmachines + 1, sizeof *macbuf);
    for (size_t i = 0; i < l.lab->nmachines; i++) {
        const struct lab_machine *m = &l.lab->machines[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", m->name);
        cJSON_AddStringToObject(e, "role", lab_role_name(m->role));
        cJSON_AddItemToArray(ms, e);
        bd_mac_format(&m->mac, macbuf[i]);
        macs[i] = macbuf[i];
    }
    const char *started = NULL;
    if (healthy && !force)
        started = "nothing to do: the cluster is healthy (--force rebuilds it anyway)";
    else if (dry_run)
        started = "plan only";
    else if (state_rebuild_start(c->env.store, l.cluster_id, path, skip_hash,
                                 l.lab->proxmox.set ? "vms" : "reinstall", macs,
                                 l.lab->nmachines, err) < 0) {
        cJSON_Delete(plan);
        plan = NULL;
    } else {
        char msg[1400];
        snprintf(msg, sizeof msg, "rebuild started: %s; every machine told to install again",
                 path[0] ? path : "a fresh bootstrap");
        cluster_event(c, "rebuild", NULL, "rebuild-started", msg);
        started = "started";
        cluster_kick(c);
    }
    if (plan)
        cJSON_AddStringToObject(plan, "outcome", started);
    free(macs);
    free(macbuf);
out:
    c->env.lab_put(c->env.ud, &l);
    return plan;
}

struct cJSON *cluster_rebuild_json(struct cluster *c, const char *cluster_id)
{
    struct state_rebuild r;
    struct bd_err err;
    if (!cluster_id || state_rebuild_get(c->env.store, cluster_id, &r, &err) != 1)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", r.phase);
    bd_json_add_str_or_null(o, "snapshot", r.snapshot[0] ? r.snapshot : NULL);
    bd_json_add_str_or_null(o, "node", r.node[0] ? r.node : NULL);
    cJSON_AddNumberToObject(o, "attempts", (double)r.attempts);
    bd_json_add_str_or_null(o, "last_error", r.last_error[0] ? r.last_error : NULL);
    bd_json_add_time(o, "started", r.started_ms);
    bd_json_add_time(o, "recovered", r.recovered_ms);
    return o;
}

bool cluster_backups_block_bootstrap(struct cluster *c, const struct cluster_lab *l, char *why,
                                     size_t n)
{
    const struct lab_etcd_backup *b = &l->lab->cluster.etcd_backup;
    struct state_rebuild r;
    if (!b->set || cluster_rebuild_active(c, l->cluster_id, &r))
        return false;
    struct cluster_snapshot *v;
    size_t cnt;
    struct bd_err err;
    if (cluster_snapshots_list(b->dir, l->cluster_id, &v, &cnt, &err) < 0 || !cnt) {
        free(v); /* NULL or empty */
        return false;
    }
    snprintf(why, n,
             "not bootstrapping an empty etcd: %zu snapshot%s of this cluster in %s (newest "
             "revision %llu). Run bootctl rebuild --etcd-snapshot latest, or bootctl bootstrap "
             "to start empty",
             cnt, cnt == 1 ? "" : "s", b->dir, (unsigned long long)v[0].revision);
    free(v);
    return true;
}
