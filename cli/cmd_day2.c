/* bootctl apply [NAME...] [--mode MODE] and bootctl upgrade talos|kubernetes VERSION
 * [NAME...]: start a day-2 job in bootd and follow it machine by machine until it is done or
 * stops (exit 1, with bootd's reason). bootd runs the job itself: stopping bootctl
 * does not stop it, and a restarted bootd carries on. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print_status(const cJSON *j)
{
    const char *err = cli_str(j, "error");
    printf("%s %s: %s", cli_or(cli_str(j, "kind"), "?"), cli_or(cli_str(j, "arg"), "?"),
           cli_or(cli_str(j, "phase"), "?"));
    if (cli_str(j, "machine"))
        printf(" at %s", cli_str(j, "machine"));
    printf("\n");
    if (err)
        printf("  stopped: %s\n", err);
}

/* Follows the job until it is done (0) or failed (1). */
static int follow(struct cli *c, int64_t timeout_s)
{
    time_t start = time(NULL);
    char last[200] = "";
    for (;;) {
        long status;
        struct bd_err err;
        cJSON *j = cli_api(c, "GET", "/cluster/day2", NULL, &status, &err);
        if (!j || status != 200) {
            /* bootd restarting: the job is in its state.db, keep asking */
            snprintf(last, sizeof last, "bootd: %.150s", j ? "error" : err.msg);
            cJSON_Delete(j);
        } else {
            const char *phase = cli_or(cli_str(j, "phase"), "?"), *m = cli_str(j, "machine");
            char now[200];
            snprintf(now, sizeof now, "%s%s%s", m ? m : "", m ? ": " : "",
                     !strcmp(phase, "call")      ? "next"
                     : !strcmp(phase, "wait")    ? "away, waiting for it"
                     : !strcmp(phase, "kubelet") ? "waiting for its Node's new kubelet, Ready"
                                                 : phase);
            if (strcmp(now, last)) {
                printf("  %3lds  %s\n", (long)(time(NULL) - start), now);
                fflush(stdout);
                snprintf(last, sizeof last, "%s", now);
            }
            if (!strcmp(phase, "done") || !strcmp(phase, "failed")) {
                int rc = !strcmp(phase, "failed");
                if (rc)
                    fprintf(stderr, "bootctl: %s\n", cli_or(cli_str(j, "error"), "failed"));
                if (cli_str(j, "lab_change"))
                    printf("lab.yaml: %s\n", cli_str(j, "lab_change"));
                cJSON_Delete(j);
                return rc;
            }
            cJSON_Delete(j);
        }
        if (time(NULL) - start > timeout_s) {
            fprintf(stderr, "bootctl: stopped following after %llds; bootd carries on "
                            "(bootctl apply --status)\n", (long long)timeout_s);
            return 1;
        }
        sleep(1);
    }
}

static int job_start(struct cli *c, const char *kind, const char *arg, char **names, int n,
                 int64_t step_timeout_s, bool wait)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "kind", kind);
    cJSON_AddStringToObject(body, "arg", arg);
    cJSON *a = cJSON_AddArrayToObject(body, "machines");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    if (step_timeout_s)
        cJSON_AddNumberToObject(body, "timeout_s", (double)step_timeout_s);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    int code;
    cJSON *j = cli_call(c, "POST", "/cluster/day2", text, &code);
    free(text);
    if (!j)
        return code;
    if (c->json && !wait) {
        cli_print_json(j);
        cJSON_Delete(j);
        return 0;
    }
    const cJSON *m;
    /* as bootd took them (upgrade kubernetes: the version as kubelets report it) */
    printf("%s %s, one machine at a time:", cli_or(cli_str(j, "kind"), kind),
           cli_or(cli_str(j, "arg"), arg));
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "machines")) printf(" %s", m->valuestring);
    printf("\n");
    cJSON_Delete(j);
    /* a whole job may take each machine's step timeout */
    return wait ? follow(c, (step_timeout_s ? step_timeout_s : 600) * 64) : 0;
}

static int job_status(struct cli *c)
{
    int code;
    cJSON *j = cli_view(c, "GET", "/cluster/day2", NULL, &code);
    if (!j)
        return code;
    if (cJSON_IsNull(j))
        printf("no day-2 job has run\n");
    else
        print_status(j);
    cJSON_Delete(j);
    return 0;
}

/* The options both commands take; -1 on a bad one. */
static int options(int argc, char **argv, const char **mode, int64_t *timeout_s, bool *wait,
                   bool *show)
{
    static const struct option opts[] = {{"mode", required_argument, NULL, 'm'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"no-wait", no_argument, NULL, 'n'},
                                         {"status", no_argument, NULL, 's'},
                                         {0}};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'm' && mode)
            *mode = optarg;
        else if (ch == 't' && cli_duration("--timeout", optarg, timeout_s) == 0)
            continue;
        else if (ch == 'n')
            *wait = false;
        else if (ch == 's')
            *show = true;
        else
            return -1;
    }
    return 0;
}

int cli_cmd_apply(struct cli *c, int argc, char **argv)
{
    const char *mode = "auto";
    int64_t timeout_s = 0;
    bool wait = true, show = false;
    enum talos_apply_mode m;
    if (options(argc, argv, &mode, &timeout_s, &wait, &show) < 0 ||
        talos_apply_mode_parse(mode, &m) < 0) {
        fprintf(stderr, "usage: bootctl apply [NAME...] [--mode auto|no-reboot|reboot|staged|try]"
                        " [--timeout 10m] [--no-wait]\n"
                        "       bootctl apply --status\n");
        return 2;
    }
    if (show)
        return job_status(c);
    return job_start(c, "apply", mode, argv + optind, argc - optind, timeout_s, wait);
}

int cli_cmd_upgrade(struct cli *c, int argc, char **argv)
{
    int64_t timeout_s = 0;
    bool wait = true, show = false;
    if (argc >= 2 && !strcmp(argv[1], "status"))
        return job_status(c);
    /* kubernetes: the version lab.yaml names (bootd refuses another), whose component
     * images each machine's config gets, as talosctl upgrade-k8s patches them in */
    bool k8s = argc >= 3 && !strcmp(argv[1], "kubernetes");
    if (argc < 3 || (strcmp(argv[1], "talos") && !k8s) ||
        options(argc - 2, argv + 2, NULL, &timeout_s, &wait, &show) < 0 || show) {
        fprintf(stderr, "usage: bootctl upgrade talos VERSION [NAME...] [--timeout 10m] "
                        "[--no-wait]\n"
                        "       bootctl upgrade kubernetes VERSION [NAME...] [--timeout 10m] "
                        "[--no-wait]\n"
                        "       bootctl upgrade status\n"
                        "(kubernetes: VERSION must be lab.yaml's cluster.kubernetes_version; "
                        "change it there and bootctl reload first)\n");
        return 2;
    }
    return job_start(c, k8s ? "upgrade-kubernetes" : "upgrade-talos", argv[2], argv + 2 + optind,
                     argc - 2 - optind, timeout_s, wait);
}
