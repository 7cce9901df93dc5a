/* bootctl machines, machine, events, reload, status: views of bootd's admin API. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void print_events(const cJSON *events, const char *none)
{
    if (!cJSON_GetArraySize(events)) {
        fprintf(stderr, "%s\n", none);
        return;
    }
    static const char *const hdr[] = {"TIME (UTC)", "SOURCE", "EVENT", "MESSAGE"};
    struct table *t = cli_table_new(4, hdr);
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        char tb[32];
        const char *row[] = {cli_time(e, "time", tb), cli_str(e, "source"), cli_str(e, "kind"),
                             cli_str(e, "message")};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout);
}

static int machines_list(struct cli *c)
{
    int code;
    cJSON *j = cli_view(c, "GET", "/machines", NULL, &code);
    if (!j)
        return code;
    /* the VM column only when bootd reads VMs from Proxmox */
    const cJSON *m;
    bool vms = false;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "machines"))
        vms = vms || cJSON_GetObjectItemCaseSensitive(m, "vm");
    static const char *const hdr[] = {"NAME",     "MAC",  "ROLE",            "IP", "STATE",
                                      "FIRMWARE", "ARCH", "LAST SEEN (UTC)", "VM"};
    struct table *t = cli_table_new(vms ? 9 : 8, hdr);
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "machines"))
    {
        char tb[32], vm[160] = "-", state[64];
        /* a failed boot shows until the machine's next config download */
        snprintf(state, sizeof state, "%s%s", cli_str(m, "state"),
                 cJSON_GetObjectItemCaseSensitive(m, "boot_failed") ? " (boot failed)" : "");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "vm");
        if (v)
            snprintf(vm, sizeof vm, "%d %s %s", cJSON_GetObjectItemCaseSensitive(v, "vmid")->valueint,
                     cli_str(v, "name"), cli_str(v, "power"));
        const char *row[] = {cli_str(m, "name"), cli_str(m, "mac"), cli_str(m, "role"),
                             cli_str(m, "ip"), state, cli_or(cli_str(m, "firmware"), "-"),
                             cli_or(cli_str(m, "arch"), "-"), cli_time(m, "last_seen", tb), vm};
        cli_table_add(t, row);
    }
    cli_table_print(t, stdout);
    cJSON_Delete(j);
    return 0;
}

static int machine_show(struct cli *c, const char *id)
{
    int code;
    char *path = cli_machine_path("/machines/%s", id);
    cJSON *j = cli_view(c, "GET", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    static const char *const keys[] = {"name", "mac", "role", "state", "ip", "hostname",
                                       "uuid", "firmware", "arch", "in_lab", "reinstall"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = cli_str(j, keys[i]);
        printf("%-10s %s\n", keys[i], v ? v : "-");
    }
    char tb[32];
    const char *t = cli_time(j, "first_seen", tb);
    printf("%-10s %s\n", "first seen", t ? t : "never");
    t = cli_time(j, "last_seen", tb);
    printf("%-10s %s\n", "last seen", t ? t : "never");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "boot_failed");
    if (f)
        printf("%-10s %s: %s\n", "boot failed", cli_time(f, "time", tb), cli_str(f, "message"));
    printf("\n");
    print_events(cJSON_GetObjectItemCaseSensitive(j, "events"), "no events for this machine yet");
    cJSON_Delete(j);
    return 0;
}

int cli_cmd_machines(struct cli *c, int argc, char **argv)
{
    if (argc == 1 || (argc == 2 && !strcmp(argv[1], "list")))
        return machines_list(c);
    if (argc >= 3 && !strcmp(argv[1], "replace"))
        return cli_machine_replace(c, argc - 1, argv + 1);
    if (argc == 3 && !strcmp(argv[1], "show"))
        return machine_show(c, argv[2]);
    if (argc == 3 && !strcmp(argv[1], "diff"))
        return cli_machine_diff(c, argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "uki"))
        return cli_machine_uki(c, argc - 1, argv + 1);
    fprintf(stderr, "usage: bootctl machines [list | show NAME|MAC]\n");
    return 2;
}

static int machine_adopt(struct cli *c, int argc, char **argv)
{
    const char *name = NULL, *role = NULL, *ip = NULL;
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"ip", required_argument, NULL, 'i'},
        {0},
    };
    optind = 0; /* 0 makes GNU getopt start over, forgetting main's '+' mode */
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'n')
            name = optarg;
        else if (ch == 'r')
            role = optarg;
        else if (ch == 'i')
            ip = optarg;
        else
            return 2;
    }
    if (optind + 1 != argc || !name || !role) {
        fprintf(stderr, "usage: bootctl machine adopt MAC --name NAME --role controlplane|worker "
                        "[--ip ADDR]\n");
        return 2;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "mac", argv[optind]);
    cJSON_AddStringToObject(body, "name", name);
    cJSON_AddStringToObject(body, "role", role);
    if (ip)
        cJSON_AddStringToObject(body, "ip", ip);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    int code;
    cJSON *j = cli_view(c, "POST", "/machines/adopt", text, &code);
    free(text);
    if (!j)
        return code;
    printf("adopted %s as %s (%s); it boots on its next network boot\n",
           cli_or(cli_str(j, "mac"), "-"), cli_or(cli_str(j, "name"), "-"),
           cli_or(cli_str(j, "role"), "-"));
    cJSON_Delete(j);
    return 0;
}

static int machine_reinstall(struct cli *c, const char *id)
{
    int code;
    char *path = cli_machine_path("/machines/%s/reinstall", id);
    cJSON *j = cli_view(c, "POST", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    printf("%s will install again on its next network boot\n", cli_or(cli_str(j, "name"), id));
    cJSON_Delete(j);
    return 0;
}

int cli_cmd_machine(struct cli *c, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "adopt"))
        return machine_adopt(c, argc - 1, argv + 1);
    if (argc == 3 && !strcmp(argv[1], "reinstall"))
        return machine_reinstall(c, argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "replace"))
        return cli_machine_replace(c, argc - 1, argv + 1);
    if (argc == 3 && !strcmp(argv[1], "show"))
        return machine_show(c, argv[2]);
    if (argc == 3 && !strcmp(argv[1], "diff"))
        return cli_machine_diff(c, argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "uki"))
        return cli_machine_uki(c, argc - 1, argv + 1);
    fprintf(stderr, "usage: bootctl machine adopt MAC --name NAME --role ROLE [--ip ADDR]\n"
                    "       bootctl machine reinstall NAME\n"
                    "       bootctl machine replace NAME [--no-wait] [--timeout 10m]\n"
                    "       bootctl machine show NAME\n"
                    "       bootctl machine diff NAME\n"
                    "       bootctl machine uki NAME -o FILE [--arch amd64|arm64] [--config-token]\n");
    return 2;
}

int cli_cmd_events(struct cli *c, int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: bootctl events [NAME|MAC]   (no name: events about no machine, "
                        "e.g. unknown config tokens)\n");
        return 2;
    }
    int code;
    char *path = argc == 2 ? cli_machine_path("/machines/%s/events", argv[1]) : bd_xstrdup("/events");
    cJSON *j = cli_view(c, "GET", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    print_events(cJSON_GetObjectItemCaseSensitive(j, "events"),
                 argc == 2 ? "no events for this machine yet"
                           : "no events about unknown machines or tokens");
    cJSON_Delete(j);
    return 0;
}

int cli_cmd_reload(struct cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: bootctl reload\n");
        return 2;
    }
    int code;
    cJSON *j = cli_view(c, "POST", "/reload", NULL, &code);
    if (!j)
        return code;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "machines_in_lab");
    printf("reloaded %s: cluster %s, %d machines\n", cli_or(cli_str(j, "lab"), "-"),
           cli_or(cli_str(j, "cluster"), "-"), cJSON_IsNumber(n) ? n->valueint : 0);
    cJSON_Delete(j);
    return 0;
}

int cli_cmd_status(struct cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: bootctl status\n");
        return 2;
    }
    int code;
    cJSON *j = cli_view(c, "GET", "/status", NULL, &code);
    if (!j)
        return code;
    printf("lab       %s\ncluster   %s\n", cli_or(cli_str(j, "lab"), "-"),
           cli_or(cli_str(j, "cluster"), "-"));
    const char *re = cli_str(j, "reload_error");
    if (re)
        printf("reload    FAILED, previous lab still served: %s\n", re);
    printf("dnsmasq   %s\n", cli_or(cli_str(j, "dnsmasq"), "-"));
    printf("machines ");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(j, "states"))
        if (s->valueint)
            printf(" %s=%d", s->string, s->valueint);
    printf("\n");
    cli_print_cluster(cJSON_GetObjectItemCaseSensitive(j, "cluster_state"));
    cJSON_Delete(j);
    return 0;
}
