/* bootctl bootstrap, etcd snapshot, kubeconfig, and the cluster part of status: bootd
 * calls the Talos API with its own credentials; bootctl only needs the admin token. */
#include "cli.h"

#include "../talos/talos.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_S 1

static bool json_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

void cli_print_cluster(const cJSON *cluster)
{
    if (!cluster)
        return;
    char tb[32];
    const char *since = cli_time(cluster, "since", tb);
    printf("phase     %s%s%s: %s\n", cli_str(cluster, "phase"), since ? " since " : "",
           since ? since : "", cli_str(cluster, "message"));
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cluster, "bootstrap");
    const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(b, "attempts");
    printf("bootstrap %s, node %s: ", cli_str(b, "mode"), cli_str(b, "node"));
    if (json_true(b, "done"))
        printf("done (%s on %s at %s)", cli_str(b, "outcome"), cli_str(b, "called_on"),
               cli_time(b, "done_at", tb));
    else
        printf("not done, %d calls%s%s", cJSON_IsNumber(attempts) ? attempts->valueint : 0,
               cli_str(b, "last_error") ? "; last: " : "",
               cli_str(b, "last_error") ? cli_str(b, "last_error") : "");
    printf("\n");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(cluster, "kubernetes");
    if (cli_str(k, "api")) {
        printf("kubernetes %s\n", cli_str(k, "api"));
        printf("cilium    %s\n", cli_str(cJSON_GetObjectItemCaseSensitive(k, "cilium"), "status"));
    }
    printf("\n");
    static const char *const hdr[] = {"MACHINE", "ROLE", "STATE", "NODE", "TALOS API"};
    struct table *t = cli_table_new(5, hdr);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(cluster, "machines"))
    {
        const char *row[] = {cli_str(m, "name"), cli_str(m, "role"), cli_str(m, "state"),
                             cli_str(m, "node"), cli_str(m, "talos")};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout);
}

static int parse_duration_arg(const char *s, int64_t *out)
{
    if (bd_duration_parse(s, out) < 0 || *out <= 0) {
        fprintf(stderr, "bootctl: --timeout: \"%s\" is not a duration like 10m\n", s);
        return -1;
    }
    return 0;
}

int cli_cmd_bootstrap(struct cli *c, int argc, char **argv)
{
    int64_t timeout_s = 600;
    static const struct option opts[] = {{"timeout", required_argument, NULL, 't'}, {0}};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (ch != 't' || parse_duration_arg(optarg, &timeout_s) < 0)
            return 2;
    if (optind != argc) {
        fprintf(stderr, "usage: bootctl bootstrap [--timeout 10m]\n");
        return 2;
    }
    int code;
    cJSON *j = cli_call(c, "POST", "/cluster/bootstrap", NULL, &code);
    if (!j)
        return code;
    if (json_true(j, "already_done")) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "cluster_state"), "bootstrap");
        printf("already bootstrapped (%s on %s); nothing to do\n", cli_str(b, "outcome"),
               cli_str(b, "called_on"));
        cJSON_Delete(j);
        return 0;
    }
    cJSON_Delete(j);
    fprintf(stderr, "bootstrap asked for; waiting up to %llds for it (Ctrl-C leaves bootd "
                    "trying)\n", (long long)timeout_s);
    char last[1400] = "";
    for (int64_t waited = 0;; waited += POLL_S) {
        j = cli_call(c, "GET", "/status", NULL, &code);
        if (!j)
            return code;
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(j, "cluster_state");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(cl, "bootstrap");
        char line[1400];
        snprintf(line, sizeof line, "%s: %s", cli_str(cl, "phase"), cli_str(cl, "message"));
        if (strcmp(line, last)) {
            fprintf(stderr, "  %s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        bool done = json_true(b, "done");
        if (done)
            printf("bootstrapped: %s on %s\n", cli_str(b, "outcome"), cli_str(b, "called_on"));
        cJSON_Delete(j);
        if (done)
            return 0;
        if (waited >= timeout_s) {
            fprintf(stderr, "bootctl: not bootstrapped after %llds; bootd keeps trying "
                            "(bootctl status shows how it goes)\n", (long long)timeout_s);
            return 1;
        }
        sleep(POLL_S);
    }
}

/* ---- etcd snapshot ---- */

struct snapshot_sink {
    struct bd_file_atomic f;
    struct talos_etcd_check *check;
    struct bd_err err;
    bool failed;
};

static int snapshot_write(const void *p, size_t n, void *ud)
{
    struct snapshot_sink *x = ud;
    talos_etcd_check_update(x->check, p, n);
    if (bd_file_atomic_write(&x->f, p, n, &x->err) < 0) {
        x->failed = true;
        return -1;
    }
    return 0;
}

static char *node_query(const char *fmt, const char *node)
{
    if (!node)
        return bd_xasprintf(fmt, "");
    char *q = bd_xasprintf("?node=%s", node);
    for (char *p = q + 6; *p; p++)
        if (*p == '&' || *p == '#' || *p == ' ' || *p == '/')
            *p = '_';
    char *path = bd_xasprintf(fmt, q);
    free(q);
    return path;
}

static int etcd_snapshot(struct cli *c, const char *file, const char *node)
{
    struct snapshot_sink x = {.check = talos_etcd_check_new()};
    struct bd_err err;
    if (bd_file_atomic_begin(&x.f, file, 0600, &err) < 0) {
        talos_etcd_check_free(x.check);
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    char *path = node_query("/cluster/etcd-snapshot%s", node);
    int rc = cli_download(c, path, snapshot_write, &x, &err);
    free(path);
    struct talos_snapshot_info info;
    if (x.failed)
        err = x.err;
    else if (rc == 0)
        rc = talos_etcd_check_finish(x.check, &info, &err);
    talos_etcd_check_free(x.check);
    if (rc < 0 || x.failed) {
        bd_file_atomic_abort(&x.f);
        fprintf(stderr, "bootctl: etcd snapshot: %s\n", err.msg);
        return 1;
    }
    if (bd_file_atomic_commit(&x.f, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    printf("etcd snapshot saved to %s (%llu bytes, sha256 %s)\n", file,
           (unsigned long long)info.size, info.sha256);
    return 0;
}

/* Options --node NAME and -o FILE after the command. */
static int node_args(int argc, char **argv, const char **node, const char **out)
{
    static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
                                         {"output", required_argument, NULL, 'o'},
                                         {0}};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, out ? "o:" : "", opts, NULL)) != -1) {
        if (ch == 'n')
            *node = optarg;
        else if (ch == 'o' && out)
            *out = optarg;
        else
            return -1;
    }
    return 0;
}

int cli_cmd_etcd(struct cli *c, int argc, char **argv)
{
    const char *node = NULL;
    if (argc < 2 || strcmp(argv[1], "snapshot") || node_args(argc - 1, argv + 1, &node, NULL) < 0 ||
        optind + 1 != argc - 1) {
        fprintf(stderr, "usage: bootctl etcd snapshot FILE [--node NAME]\n");
        return 2;
    }
    return etcd_snapshot(c, argv[optind + 1], node);
}

/* ---- kubeconfig ---- */

int cli_cmd_kubeconfig(struct cli *c, int argc, char **argv)
{
    const char *node = NULL, *out = "kubeconfig";
    if (node_args(argc, argv, &node, &out) < 0 || optind != argc) {
        fprintf(stderr, "usage: bootctl kubeconfig [-o FILE | -o -] [--node NAME]\n");
        return 2;
    }
    char *path = node_query("/cluster/kubeconfig%s", node);
    int code;
    cJSON *j = cli_view(c, "GET", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    const char *text = cli_str(j, "kubeconfig");
    struct bd_err err;
    if (!text || cli_put(out, text, strlen(text), &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", text ? err.msg : "bootd sent no kubeconfig");
        cJSON_Delete(j);
        return 1;
    }
    bool same = json_true(j, "same");
    FILE *f = strcmp(out, "-") ? stdout : stderr;
    fprintf(f, "kubeconfig from %s's Talos API, compared with the one bootd mints:\n",
            cli_str(j, "node"));
    const char *cerr = cli_str(j, "compare_error");
    if (cerr)
        fprintf(f, "  cannot compare: %s\n", cerr);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "checks"))
    {
        if (json_true(e, "same"))
            fprintf(f, "  %-18s same: %s\n", cli_str(e, "what"), cli_str(e, "talos"));
        else
            fprintf(f, "  %-18s DIFFERS: Talos %s, bootd %s\n", cli_str(e, "what"),
                    cli_str(e, "talos"), cli_str(e, "bootd"));
    }
    if (!same)
        fprintf(f, "The cluster does not match this lab (another secrets bundle or endpoint?)\n");
    cJSON_Delete(j);
    return same ? 0 : 1;
}
