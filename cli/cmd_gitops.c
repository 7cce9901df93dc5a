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
    printf("state             %s\n", cli_str(j, "state"));
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
               "%ld failed, %ld unhealthy\n",
               t ? t : "-", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(last, "ok")) ? "ok"
                                                                                       : "failed",
               num(last, "duration_ms"), num(last, "applied"), num(last, "unchanged"),
               num(last, "pruned"), num(last, "failed"), num(last, "unhealthy"));
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
}

static int show(struct cli *c, cJSON *j)
{
    if (c->json)
        cli_print_json(j);
    else
        print_status(j);
    return 0;
}

static const char *finished_of(const cJSON *j)
{
    const char *f = cli_str(cJSON_GetObjectItemCaseSensitive(j, "last_sync"), "finished");
    return f ? f : "";
}

/* Triggers a sync; with --wait, polls until one that started after the trigger ends. */
static int sync_now(struct cli *c, bool wait, long timeout_s)
{
    int code;
    cJSON *before = cli_call(c, "GET", "/gitops", NULL, &code);
    if (!before)
        return code;
    char *was = bd_xstrdup(finished_of(before));
    cJSON_Delete(before);
    cJSON *j = cli_call(c, "POST", "/gitops/sync", NULL, &code);
    if (!j || !wait) {
        if (j && !c->json)
            printf("sync requested\n");
        else if (j)
            cli_print_json(j);
        cJSON_Delete(j);
        free(was);
        return j ? 0 : code;
    }
    int64_t deadline = bd_now_ms() + timeout_s * 1000;
    while (strcmp(finished_of(j), was) == 0 || !strcmp(cli_str(j, "state"), "syncing")) {
        if (bd_now_ms() > deadline || !strcmp(cli_str(j, "state"), "waiting")) {
            fprintf(stderr, "bootctl: no sync finished within %lds (state %s%s%s)\n", timeout_s,
                    cli_str(j, "state"), cli_str(j, "waiting_for") ? ": waiting for " : "",
                    cli_str(j, "waiting_for") ? cli_str(j, "waiting_for") : "");
            cJSON_Delete(j);
            free(was);
            return 1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000};
        nanosleep(&ts, NULL);
        cJSON_Delete(j);
        if (!(j = cli_call(c, "GET", "/gitops", NULL, &code))) {
            free(was);
            return code;
        }
    }
    free(was);
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
        long timeout = 600;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--wait"))
                wait = true;
            else if (!strncmp(argv[i], "--timeout=", 10) && atol(argv[i] + 10) > 0)
                timeout = atol(argv[i] + 10);
            else
                goto usage;
        }
        return sync_now(c, wait, timeout);
    }
usage:
    fprintf(stderr, "usage: bootctl gitops [status]\n"
                    "       bootctl gitops sync [--wait] [--timeout=SECONDS]\n"
                    "       bootctl gitops render [--kustomize TOOL|builtin] PATH...\n");
    return 2;
}

int cli_cmd_gitops_render(int argc, char **argv, bool json)
{
    const char *tool = NULL;
    static const struct option opts[] = {{"kustomize", required_argument, NULL, 'k'}, {0}};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'k')
            return 2;
        tool = optarg;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: bootctl gitops render [--kustomize TOOL|builtin] PATH...\n");
        return 2;
    }
    struct gitops_render_opts ro = {.kustomize = tool};
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
