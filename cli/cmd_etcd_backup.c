/* bootctl etcd snapshots: the scheduled etcd backups in cluster.etcd_backup.dir, read
 * straight from the directory (no bootd needed: this is what is left on the day the
 * lab is gone), newest first, this cluster's marked as such. */
#include "cli.h"

#include "../cluster/cluster.h"
#include "../talos/talos.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fputs("usage: bootctl etcd snapshots [--lab PATH]\n", f);
}

/* The bundle's cluster id as backup names carry it (std base64's '/' and '+' read '_'
 * and '-'). */
static void name_id(const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s", id);
    for (char *p = out; *p; p++)
        *p = *p == '/' ? '_' : *p == '+' ? '-' : *p;
}

static void print(struct cli *c, const char *dir, const char *mine,
                  const struct cluster_snapshot *v, size_t n)
{
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dir", dir);
        cJSON_AddStringToObject(o, "cluster_id", mine);
        cJSON *a = cJSON_AddArrayToObject(o, "snapshots");
        for (size_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "file", v[i].name);
            cJSON_AddStringToObject(e, "cluster_id", v[i].cluster_id);
            cJSON_AddBoolToObject(e, "this_cluster", !strcmp(v[i].cluster_id, mine));
            cJSON_AddNumberToObject(e, "revision", (double)v[i].revision);
            cJSON_AddNumberToObject(e, "size", (double)v[i].size);
            bd_json_add_time(e, "taken", v[i].taken_s * 1000);
            cJSON_AddItemToArray(a, e);
        }
        cli_print_json(o);
        cJSON_Delete(o);
        return;
    }
    printf("dir       %s\ncluster   %s\n\n", dir, mine);
    if (!n) {
        printf("no snapshots yet\n");
        return;
    }
    static const char *const head[] = {"TAKEN (UTC)", "REVISION", "SIZE", "CLUSTER", "FILE"};
    struct table *t = cli_table_new(5, head);
    for (size_t i = 0; i < n; i++) {
        char taken[32], rev[24], size[24];
        time_t ts = (time_t)v[i].taken_s;
        struct tm tm;
        gmtime_r(&ts, &tm);
        strftime(taken, sizeof taken, "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(rev, sizeof rev, "%llu", (unsigned long long)v[i].revision);
        snprintf(size, sizeof size, "%llu", (unsigned long long)v[i].size);
        const char *row[] = {taken, rev, size, strcmp(v[i].cluster_id, mine) ? "other" : "this",
                             v[i].name};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout);
}

int cli_etcd_snapshots(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"lab", required_argument, NULL, 'l'}, {0}};
    const char *lab_path = "lab.yaml";
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'l') {
            usage(stderr);
            return 2;
        }
        lab_path = optarg;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    struct bd_err err;
    struct lab *lab;
    if (lab_load(lab_path, NULL, NULL, &lab, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    struct talos_secrets *s = NULL;
    struct cluster_snapshot *v = NULL;
    size_t n = 0;
    const struct lab_etcd_backup *b = &lab->cluster.etcd_backup;
    if (!b->set) {
        fprintf(stderr, "bootctl: %s: cluster.etcd_backup is not set: bootd takes no etcd "
                        "snapshots (docs/recovery.md)\n",
                lab->path);
    } else if (talos_secrets_load(lab->cluster.secrets_file, &s, &err) < 0 ||
               cluster_snapshots_list(b->dir, NULL, &v, &n, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
    } else {
        char mine[128];
        name_id(talos_secrets_cluster_id(s), mine, sizeof mine);
        print(c, b->dir, mine, v, n);
        rc = 0;
    }
    free(v);
    talos_secrets_free(s);
    lab_free(lab);
    return rc;
}

/* ---- bootctl etcd members ---- */

int cli_etcd_members(struct cli *c)
{
    int code;
    cJSON *j = cli_view(c, "GET", "/cluster/etcd-members", NULL, &code);
    if (!j)
        return code;
    printf("through %s\n\n", cli_str(j, "through"));
    static const char *const head[] = {"ID", "HOSTNAME", "PEER URL", "LEARNER"};
    struct table *t = cli_table_new(4, head);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "members"))
    {
        const char *row[] = {cli_str(m, "id"), cli_str(m, "hostname"), cli_str(m, "peer_url"),
                             cli_str(m, "learner")};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout);
    cJSON_Delete(j);
    return 0;
}
