/* bootctl gitops status | sync [--wait] | render: the GitOps loop seen from outside, and
 * offline, what bootd would apply from a directory. */
#include "cli.h"

#include "../gitops/gitops.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

static void print_list(const cJSON *detail, const char *list, const char *title,
                       const char *key, const char *header)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(detail, list);
    if (!cJSON_GetArraySize(arr))
        return;
    printf("\n%s\n", title);
    const char *hdr[] = {"OBJECT", "SOURCE", header};
    bool src = strcmp(list, "pruned") != 0;
    struct table *t = cli_table_new(src ? 3 : 2, src ? hdr : (const char *const[]){"OBJECT", header});
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const char *row[] = {cli_str(e, "object"), src ? cli_str(e, "source") : cli_str(e, key),
                             cli_str(e, key)};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout);
}

static void print_status(const cJSON *j)
{
    char tb[32];
    printf("state             %s\n", cli_or(cli_str(j, "state"), "-"));
    if (cli_str(j, "waiting_for"))
        printf("waiting for       %s\n", cli_str(j, "waiting_for"));
    printf("repo              %s (ref %s)\n", cli_str(j, "repo") ? cli_str(j, "repo") : "-",
           cli_str(j, "ref") ? cli_str(j, "ref") : "-");
    printf("server            %s\n", cli_str(j, "server") ? cli_str(j, "server") : "-");
    printf("revision          %s\n", cli_str(j, "revision") ? cli_str(j, "revision") : "-");
    printf("applied revision  %s\n",
           cli_str(j, "applied_revision") ? cli_str(j, "applied_revision") : "-");
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(j, "last_sync");
    if (cJSON_IsObject(last)) {
        const char *t = cli_time(last, "finished", tb);
        printf("last sync         %s (%s, %ld ms): %ld applied, %ld unchanged, %ld pruned, "
               "%ld failed, %ld unhealthy, %ld drifted\n",
               t ? t : "-", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(last, "ok")) ? "ok"
                                                                                       : "failed",
               num(last, "duration_ms"), num(last, "applied"), num(last, "unchanged"),
               num(last, "pruned"), num(last, "failed"), num(last, "unhealthy"),
               num(last, "drifted"));
    } else {
        printf("last sync         never\n");
    }
    const char *next = cli_time(j, "next_sync", tb);
    printf("next sync         %s\n", next ? next : "-");
    printf("last error        %s\n", cli_str(j, "last_error") ? cli_str(j, "last_error") : "-");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(last, "detail");
    print_list(detail, "failed", "FAILED", "error", "ERROR");
    print_list(detail, "unhealthy", "UNHEALTHY", "status", "STATUS");
    print_list(detail, "pruned", "PRUNED", "result", "RESULT");
    print_list(detail, "drifted", "DRIFTED (set back to Git)", "drift", "DRIFT");
}

static int show(struct cli *c, cJSON *j)
{
    if (c->json)
        cli_print_json(j);
    else
        print_status(j);
    return 0;
}

static const char *last_started(const cJSON *j)
{
    return cli_str(cJSON_GetObjectItemCaseSensitive(j, "last_sync"), "started");
}

/* A sync that can never start: bootd has no Kubernetes API to sync to. */
static bool cannot_run(const cJSON *j)
{
    const char *state = cli_str(j, "state");
    return state && !strcmp(state, "waiting");
}

/* Triggers a sync; with --wait, polls until one that started after the request (bootd's
 * clock: requested_at) has finished. One already running when asked does not count. */
static int sync_now(struct cli *c, bool wait, int64_t timeout_s)
{
    int code;
    cJSON *j = cli_call(c, "POST", "/gitops/sync", NULL, &code);
    if (!j)
        return code;
    if (cannot_run(j)) {
        fprintf(stderr, "bootctl: no sync can run: bootd is waiting for %s\n",
                cli_or(cli_str(j, "waiting_for"), "the cluster's Kubernetes API"));
        cJSON_Delete(j);
        return 1;
    }
    if (!wait) {
        if (c->json)
            cli_print_json(j);
        else
            printf("sync requested\n");
        cJSON_Delete(j);
        return 0;
    }
    char *asked = bd_xstrdup(cli_or(cli_str(j, "requested_at"), ""));
    if (!c->json)
        fprintf(stderr, "sync requested; waiting up to %llds for it\n", (long long)timeout_s);
    int64_t deadline = bd_now_ms() + timeout_s * 1000;
    for (;;) {
        const char *started = last_started(j);
        /* ISO 8601 UTC with milliseconds from the same clock: they sort as strings */
        if (started && strcmp(started, asked) >= 0 && strcmp(cli_or(cli_str(j, "state"), ""), "syncing"))
            break;
        if (cannot_run(j) || bd_now_ms() > deadline) {
            fprintf(stderr, "bootctl: %s (state %s%s%s)\n",
                    cannot_run(j) ? "no sync can run" : "no sync finished in time",
                    cli_or(cli_str(j, "state"), "-"), cli_str(j, "waiting_for") ? ": waiting for " : "",
                    cli_or(cli_str(j, "waiting_for"), ""));
            cJSON_Delete(j);
            free(asked);
            return 1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000};
        nanosleep(&ts, NULL);
        cJSON_Delete(j);
        if (!(j = cli_call(c, "GET", "/gitops", NULL, &code))) {
            free(asked);
            return code;
        }
    }
    free(asked);
    show(c, j);
    bool ok = cJSON_IsTrue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "last_sync"), "ok"));
    cJSON_Delete(j);
    return ok ? 0 : 1;
}

int cli_cmd_gitops(struct cli *c, int argc, char **argv)
{
    if (argc == 1 || (argc == 2 && !strcmp(argv[1], "status"))) {
        int code;
        cJSON *j = cli_call(c, "GET", "/gitops", NULL, &code);
        if (!j)
            return code;
        show(c, j);
        cJSON_Delete(j);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "sync")) {
        bool wait = false;
        int64_t timeout = 600;
        static const struct option opts[] = {{"wait", no_argument, NULL, 'w'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {0}};
        optind = 0;
        int ch;
        while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
            if (ch == 'w')
                wait = true;
            else if (ch != 't' || cli_duration("--timeout", optarg, &timeout) < 0)
                return 2;
        }
        if (optind != argc - 1)
            goto usage;
        return sync_now(c, wait, timeout);
    }
usage:
    fprintf(stderr, "usage: bootctl gitops [status]\n"
                    "       bootctl gitops sync [--wait] [--timeout DURATION]\n"
                    "       bootctl gitops render [--kustomize TOOL|builtin] [--helm HELM]\n"
                    "                             [--helm-cache DIR] PATH...\n"
                    "       bootctl gitops plan [--root DIR] [--kustomize TOOL|builtin] PATH...\n");
    return 2;
}

int cli_gitops_render_opts(int argc, char **argv, struct gitops_render_opts *ro,
                           const char **root)
{
    static const struct option opts[] = {{"kustomize", required_argument, NULL, 'k'},
                                         {"helm", required_argument, NULL, 'h'},
                                         {"helm-cache", required_argument, NULL, 'c'},
                                         {"root", required_argument, NULL, 'r'},
                                         {0}};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'k')
            ro->kustomize = optarg;
        else if (ch == 'h')
            ro->helm = optarg;
        else if (ch == 'c')
            ro->helm_cache = optarg;
        else if (ch == 'r' && root)
            *root = optarg;
        else
            return -1;
    }
    return 0;
}

int cli_cmd_gitops_render(int argc, char **argv, bool json)
{
    struct gitops_render_opts ro = {0};
    if (cli_gitops_render_opts(argc, argv, &ro, NULL) < 0)
        return 2;
    if (optind >= argc) {
        fprintf(stderr, "usage: bootctl gitops render [--kustomize TOOL|builtin] [--helm HELM] "
                        "[--helm-cache DIR] PATH...\n");
        return 2;
    }
    struct gitops_objs objs = {0};
    struct bd_err err;
    for (int i = optind; i < argc; i++) {
        char *abs = realpath(argv[i], NULL);
        int rc = abs ? gitops_render_path("/", abs, 0, &ro, &objs, &err)
                     : bd_err_set(&err, "%s: no such file or directory", argv[i]);
        free(abs);
        if (rc < 0) {
            fprintf(stderr, "bootctl: %s\n", err.msg);
            gitops_objs_free(&objs);
            return 1;
        }
    }
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < objs.n; i++)
            cJSON_AddItemReferenceToArray(arr, objs.v[i].json);
        cli_print_json(arr);
        cJSON_Delete(arr);
    } else {
        struct bd_node **docs = bd_xcalloc(objs.n + 1, sizeof *docs);
        for (size_t i = 0; i < objs.n; i++)
            docs[i] = bd_node_from_json(objs.v[i].json);
        struct bd_buf out;
        bd_buf_init(&out);
        bd_yaml_emit_docs(&out, docs, objs.n);
        fwrite(out.data ? out.data : "", 1, out.len, stdout);
        bd_buf_free(&out);
        for (size_t i = 0; i < objs.n; i++)
            bd_node_free(docs[i]);
        free(docs);
    }
    fprintf(stderr, "bootctl: %zu objects\n", objs.n);
    gitops_objs_free(&objs);
    return 0;
}
