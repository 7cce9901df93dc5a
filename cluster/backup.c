/* Scheduled etcd backups (cluster.etcd_backup): once the cluster is bootstrapped, an
 * EtcdSnapshot every interval through the first control plane whose Talos API answers,
 * checked against etcd's own SHA-256 trailer while it streams, written to a temporary
 * file (0600) in the backup dir and renamed into place only when whole, under a name
 * that carries the cluster id, the time and etcd's revision:
 *
 *   etcd-<cluster id>-<YYYYMMDDTHHMMSSZ>-r<revision>.snapshot
 *
 * Then all but the newest `keep` of this cluster's snapshots go. The schedule starts
 * from the newest snapshot in the dir, so a restart does not take an extra one. A
 * failure is an event on the cluster's timeline and retried with a back-off. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MIN_MS 5000
#define RETRY_MAX_MS 300000
#define PREFIX "etcd-"
#define SUFFIX ".snapshot"

/* A cluster id as it goes into a file name: std base64's '/' and '+' swapped for the
 * URL-safe '_' and '-' (ids Talos makes are URL-safe already). */
static void id_for_name(const char *id, char *out, size_t n)
{
    size_t i = 0;
    for (; id[i] && i + 1 < n; i++)
        out[i] = id[i] == '/' ? '_' : id[i] == '+' ? '-' : id[i];
    out[i] = 0;
}

int cluster_snapshot_name_parse(const char *name, struct cluster_snapshot *out)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(name), pl = strlen(PREFIX), sl = strlen(SUFFIX);
    if (len <= pl + sl || strncmp(name, PREFIX, pl) || strcmp(name + len - sl, SUFFIX) ||
        len >= sizeof out->name)
        return -1;
    char body[256];
    snprintf(body, sizeof body, "%.*s", (int)(len - pl - sl), name + pl);
    char *r = strrchr(body, '-'); /* -r<revision> */
    if (!r || r[1] != 'r' || !r[2])
        return -1;
    char *end;
    errno = 0;
    unsigned long long rev = strtoull(r + 2, &end, 10);
    if (*end || errno)
        return -1;
    *r = 0;
    char *t = strrchr(body, '-'); /* -<time> */
    struct tm tm = {0};
    if (!t || t == body || strlen(t + 1) != 16 || !(end = strptime(t + 1, "%Y%m%dT%H%M%SZ", &tm)) ||
        *end)
        return -1;
    *t = 0;
    snprintf(out->name, sizeof out->name, "%s", name);
    if (strlen(body) >= sizeof out->cluster_id)
        return -1;
    memcpy(out->cluster_id, body, strlen(body) + 1);
    out->revision = rev;
    out->taken_s = (int64_t)timegm(&tm);
    return 0;
}

static int newest_first(const void *a, const void *b)
{
    const struct cluster_snapshot *x = a, *y = b;
    if (x->taken_s != y->taken_s)
        return x->taken_s < y->taken_s ? 1 : -1;
    return x->revision < y->revision ? 1 : x->revision > y->revision ? -1 : 0;
}

int cluster_snapshots_list(const char *dir, const char *cluster_id, struct cluster_snapshot **out,
                           size_t *count, struct bd_err *err)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return bd_err_set(err, "%s: %s", dir, strerror(errno));
    }
    char want[128] = "";
    if (cluster_id)
        id_for_name(cluster_id, want, sizeof want);
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct cluster_snapshot s;
        if (cluster_snapshot_name_parse(e->d_name, &s) < 0 || (want[0] && strcmp(s.cluster_id, want)))
            continue;
        char *p = bd_path_join(dir, e->d_name);
        struct stat st;
        bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
        free(p);
        if (!ok)
            continue;
        s.size = (uint64_t)st.st_size;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            *out = bd_xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*count)++] = s;
    }
    closedir(d);
    if (*count)
        qsort(*out, *count, sizeof **out, newest_first);
    return 0;
}

/* All but the newest keep of this cluster's snapshots go. */
static void prune(struct cluster *c, const char *dir, const char *cluster_id, int keep)
{
    struct cluster_snapshot *v;
    size_t n;
    struct bd_err err;
    if (cluster_snapshots_list(dir, cluster_id, &v, &n, &err) < 0) {
        bd_warn("etcd backup: %s", err.msg);
        return;
    }
    for (size_t i = (size_t)keep; i < n; i++) {
        char *p = bd_path_join(dir, v[i].name);
        if (unlink(p) < 0 && errno != ENOENT) {
            char msg[600];
            snprintf(msg, sizeof msg, "cannot remove the old snapshot %s: %s", p, strerror(errno));
            cluster_event(c, "etcd-backup", NULL, "etcd-backup-failed", msg);
        }
        free(p);
    }
    free(v);
}

/* One snapshot through node n into dir; the new file's name in name. */
static int take(struct cluster *c, const struct talos_node *n, const char *dir,
                const char *cluster_id, char *name, size_t nn, struct bd_err *err)
{
    if (bd_mkdir_p(dir, 0700, err) < 0)
        return -1;
    /* the name holds the revision, known once the snapshot is in: a provisional one until
     * the rename */
    char *provisional = bd_path_join(dir, PREFIX "incoming" SUFFIX ".new");
    struct bd_file_atomic f;
    int rc = bd_file_atomic_begin(&f, provisional, 0600, err);
    free(provisional);
    if (rc < 0)
        return -1;
    struct talos_snapshot_info info;
    int code;
    uint64_t rev = 0;
    if (c->env.talos_etcd_snapshot(c->env.ud, n, f.fd, &info, &code, err) < 0 ||
        talos_etcd_snapshot_revision(f.tmp, &rev, err) < 0) {
        bd_file_atomic_abort(&f);
        return -1;
    }
    char id[128], stamp[32];
    id_for_name(cluster_id, id, sizeof id);
    time_t now = (time_t)(bd_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(name, nn, PREFIX "%s-%s-r%llu" SUFFIX, id, stamp, (unsigned long long)rev);
    free(f.path);
    f.path = bd_path_join(dir, name);
    if (bd_file_atomic_commit(&f, err) < 0)
        return -1;
    bd_info("etcd backup: %s (%llu bytes, sha256 %s) through %s", name,
            (unsigned long long)info.size, info.sha256, n->host);
    return 0;
}

/* When the next snapshot is due: interval after the newest one in the dir, else now. */
static int64_t first_due(struct cluster *c, const struct lab_etcd_backup *b, const char *id)
{
    struct cluster_snapshot *v;
    size_t n;
    struct bd_err err;
    int64_t due = c->env.now_ms(c->env.ud);
    if (cluster_snapshots_list(b->dir, id, &v, &n, &err) == 0 && n) {
        int64_t age_ms = bd_now_ms() - v[0].taken_s * 1000;
        pthread_mutex_lock(&c->worker.mu);
        if (v[0].taken_s > c->backup.last_success_s)
            c->backup.last_success_s = v[0].taken_s;
        pthread_mutex_unlock(&c->worker.mu);
        if (age_ms < b->interval_s * 1000)
            due += b->interval_s * 1000 - (age_ms > 0 ? age_ms : 0);
    }
    free(v);
    return due;
}

void cluster_backup_step(struct cluster *c, const struct cluster_lab *l, int64_t *next)
{
    const struct lab_etcd_backup *b = &l->lab->cluster.etcd_backup;
    if (!b->set || !l->cluster_id)
        return;
    if (!c->backup_next_ms)
        c->backup_next_ms = first_due(c, b, l->cluster_id);
    if (c->env.now_ms(c->env.ud) < c->backup_next_ms) {
        if (c->backup_next_ms < *next)
            *next = c->backup_next_ms;
        return;
    }
    char errors[1024] = "", name[300];
    size_t used = 0;
    bool ok = false;
    const char *through = NULL;
    for (size_t i = 0; i < l->lab->nmachines && !ok; i++) {
        const struct lab_machine *m = &l->lab->machines[i];
        char ip[16];
        if (m->role != LAB_ROLE_CONTROLPLANE || !cluster_machine_addr(c->env.store, m, ip))
            continue;
        struct talos_node n = cluster_node_at(c, l, ip);
        struct bd_err err;
        if (take(c, &n, b->dir, l->cluster_id, name, sizeof name, &err) == 0) {
            ok = true;
            through = m->name;
        } else if (used < sizeof errors) {
            used += (size_t)snprintf(errors + used, sizeof errors - used, "%s%s: %s",
                                     used ? "; " : "", m->name, err.msg);
        }
    }
    int64_t now = c->env.now_ms(c->env.ud);
    pthread_mutex_lock(&c->worker.mu);
    if (ok) {
        c->backup.last_success_s = bd_now_ms() / 1000;
        c->backup.last_error[0] = 0;
        snprintf(c->backup.last_file, sizeof c->backup.last_file, "%s", name);
        c->backup_retry_ms = 0;
        c->backup_next_ms = now + b->interval_s * 1000;
    } else {
        c->backup.failures++;
        snprintf(c->backup.last_error, sizeof c->backup.last_error, "%s",
                 errors[0] ? errors : "no control plane with a known address");
        int64_t r = c->backup_retry_ms ? c->backup_retry_ms : RETRY_MIN_MS;
        c->backup_retry_ms = r * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r * 2;
        c->backup_next_ms = now + (r < b->interval_s * 1000 ? r : b->interval_s * 1000);
    }
    char msg[1400];
    if (ok)
        snprintf(msg, sizeof msg, "etcd snapshot %s taken through %s", name, through);
    else
        snprintf(msg, sizeof msg, "etcd snapshot failed: %s", c->backup.last_error);
    pthread_mutex_unlock(&c->worker.mu);
    cluster_event(c, "etcd-backup", NULL, ok ? "etcd-backup" : "etcd-backup-failed", msg);
    if (ok)
        prune(c, b->dir, l->cluster_id, b->keep);
    if (c->backup_next_ms < *next)
        *next = c->backup_next_ms;
}

void cluster_backup_status(struct cluster *c, struct cluster_backup_status *out)
{
    pthread_mutex_lock(&c->worker.mu);
    *out = c->backup;
    pthread_mutex_unlock(&c->worker.mu);
}
