/* Scheduled etcd backups and the rebuild guard, driven round by round with a fake clock
 * and a fake Talos API over a real state.db: a snapshot after bootstrap, named with the
 * cluster id and etcd's revision, 0600; the newest `keep` stay; a failure is an event and
 * leaves no file; with snapshots in the dir and no bootstrap record, no empty bootstrap. */
#include "helpers.h"

#include "../../cluster/cluster.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT "tests/fixtures/etcd/small.snapshot" /* revision 9 */

struct fake {
    struct lab *lab;
    struct state_db *store;
    struct talos_creds creds;
    int64_t now;
    int bootstrap_calls, snapshot_calls;
    bool snapshot_fails;
};

static char *dir;

static void lab_get(void *ud, struct cluster_lab *out)
{
    struct fake *f = ud;
    *out = (struct cluster_lab){.lab = f->lab, .creds = &f->creds, .cluster_id = "Zm9v/YmFy+",
                                .kube_error = "not in this test"};
}

static void lab_put(void *ud, struct cluster_lab *l)
{
    (void)ud, (void)l;
}

static int64_t fake_now(void *ud)
{
    return ((struct fake *)ud)->now;
}

static int fake_version(void *ud, const struct talos_node *n, struct talos_version *out, int *code,
                        struct bd_err *err)
{
    (void)ud, (void)n, (void)err;
    memset(out, 0, sizeof *out);
    *code = TALOS_OK;
    return 0;
}

static int fake_bootstrap(void *ud, const struct talos_node *n, int *code, struct bd_err *err)
{
    (void)n, (void)err;
    ((struct fake *)ud)->bootstrap_calls++;
    *code = TALOS_OK;
    return 0;
}

/* EtcdSnapshot: a real etcd snapshot streamed into fd, or a stream that breaks halfway. */
static int fake_snapshot(void *ud, const struct talos_node *n, int fd,
                         struct talos_snapshot_info *info, int *code, struct bd_err *err)
{
    struct fake *f = ud;
    (void)n;
    f->snapshot_calls++;
    char *data;
    size_t len;
    cr_assert_eq(bd_file_read(SNAPSHOT, &data, &len, err), 0);
    size_t w = f->snapshot_fails ? len / 2 : len;
    cr_assert_eq(write(fd, data, w), (ssize_t)w);
    free(data);
    if (f->snapshot_fails) {
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "the connection broke");
    }
    info->size = len;
    snprintf(info->sha256, sizeof info->sha256, "%s", "(fake)");
    *code = TALOS_OK;
    return 0;
}

static void fake_init(struct fake *f, int keep)
{
    memset(f, 0, sizeof *f);
    dir = tmpdir_new();
    char *text = bd_xasprintf("cluster:\n  etcd_backup: {interval: 1h, keep: %d, dir: backups}\n%s"
                              "machines:\n"
                              "  - {name: cp-1, mac: \"52:54:00:00:00:11\", role: controlplane, "
                              "ip: 192.0.2.11}\n",
                              keep, lab_head + strlen("cluster:\n"));
    free(write_file(dir, "lab.yaml", text));
    free(text);
    struct bd_err err;
    f->lab = load_lab(dir, &err);
    cr_assert_not_null(f->lab, "%s", err.msg);
    cr_assert_eq(state_open(dir, &f->store, &err), 0, "%s", err.msg);
    f->now = 1000000;
}

static struct cluster *new_cluster(struct fake *f)
{
    struct cluster_env env = {
        .store = f->store,
        .ud = f,
        .lab_get = lab_get,
        .lab_put = lab_put,
        .now_ms = fake_now,
        .talos_version = fake_version,
        .talos_bootstrap = fake_bootstrap,
        .talos_etcd_snapshot = fake_snapshot,
    };
    return cluster_new(&env);
}

static void fake_fini(struct fake *f)
{
    state_close(f->store);
    lab_free(f->lab);
    tmpdir_remove(dir);
    free(dir);
}

static void run_until(struct cluster *c, struct fake *f, int64_t until)
{
    for (int i = 0; i < 1000 && f->now <= until; i++) {
        int64_t next = cluster_round(c);
        f->now = next > f->now ? next : f->now + 1;
    }
}

/* The files in the backup dir, names joined by spaces. */
static size_t files(char *out, size_t n)
{
    char *bd = bd_path_join(dir, "backups");
    DIR *d = opendir(bd);
    size_t count = 0;
    out[0] = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            count++;
            strncat(out, e->d_name, n - strlen(out) - 2);
            strcat(out, " ");
        }
    if (d)
        closedir(d);
    free(bd);
    return count;
}

static bool event_of(struct fake *f, const char *kind, const char *needle)
{
    struct state_events ev;
    struct bd_err err;
    cr_assert_eq(state_events_for(f->store, NULL, 100, &ev, &err), 0, "%s", err.msg);
    bool found = false;
    for (size_t i = 0; i < ev.n; i++)
        found |= !strcmp(ev.v[i].kind, kind) && strstr(ev.v[i].message, needle);
    state_events_free(&ev);
    return found;
}

Test(cluster_backup, snapshots_named_checked_kept_and_counted)
{
    struct fake f;
    fake_init(&f, 2);
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 1);
    cr_assert_eq(f.snapshot_calls, 1, "one snapshot once bootstrapped, not one per round");
    char names[2048];
    cr_assert_eq(files(names, sizeof names), 1, "%s", names);
    struct cluster_snapshot s;
    char first[300];
    sscanf(names, "%299s", first);
    cr_assert_eq(cluster_snapshot_name_parse(first, &s), 0, "%s", first);
    cr_assert_str_eq(s.cluster_id, "Zm9v_YmFy-", "std base64 made safe for a file name");
    cr_assert_eq(s.revision, 9);
    char *p = bd_path_join(dir, "backups");
    char *fp = bd_path_join(p, first);
    struct stat st;
    cr_assert_eq(stat(fp, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert(event_of(&f, "etcd-backup", first));
    struct cluster_backup_status bs;
    cluster_backup_status(c, &bs);
    cr_assert_gt(bs.last_success_s, 0);
    cr_assert_eq(bs.failures, 0);

    /* an hour on, twice more (a second apart on the wall clock: names carry the time) */
    for (int i = 0; i < 2; i++) {
        sleep(1);
        run_until(c, &f, f.now + 3600 * 1000);
    }
    cr_assert_eq(f.snapshot_calls, 3);
    cr_assert_eq(files(names, sizeof names), 2, "keep: 2 (%s)", names);
    cr_assert_null(strstr(names, first), "the oldest went");

    /* the stream breaks: an event, a counter, nothing half-written left */
    f.snapshot_fails = true;
    run_until(c, &f, f.now + 3600 * 1000 + 1000);
    cluster_backup_status(c, &bs);
    cr_assert_geq(bs.failures, 1);
    cr_assert(event_of(&f, "etcd-backup-failed", "cp-1: the connection broke"));
    cr_assert_eq(files(names, sizeof names), 2, "%s", names);
    cluster_free(c);
    free(fp);
    free(p);
    fake_fini(&f);
}

Test(cluster_backup, no_empty_bootstrap_over_existing_snapshots)
{
    struct fake f;
    fake_init(&f, 5);
    char *bd = bd_path_join(dir, "backups");
    struct bd_err err;
    cr_assert_eq(bd_mkdir_p(bd, 0700, &err), 0);
    free(write_file(bd, "etcd-Zm9v_YmFy--20261201T150002Z-r48213.snapshot", "x"));
    free(bd);
    struct cluster *c = new_cluster(&f);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 0, "state lost, snapshots kept: wait for bootctl rebuild");
    cJSON *st = cluster_status(c);
    cr_assert_str_eq(cJSON_GetObjectItem(st, "phase")->valuestring, "waiting-for-rebuild");
    cr_assert(strstr(cJSON_GetObjectItem(st, "message")->valuestring, "revision 48213"));
    cJSON_Delete(st);
    /* bootctl bootstrap overrides it */
    cr_assert_eq(cluster_request_bootstrap(c, &err), 0, "%s", err.msg);
    run_until(c, &f, f.now + 60 * 1000);
    cr_assert_eq(f.bootstrap_calls, 1);
    cluster_free(c);
    fake_fini(&f);
}
