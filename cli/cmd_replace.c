/* bootctl machine replace NAME: bootd removes a dead control plane's etcd member and
 * tells the machine to install again; this command then follows etcd's member list until
 * the machine is back as a voting member (a worker: until it answers again). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Is name a voting etcd member (and not the one removed)? */
static bool rejoined(struct cli *c, const char *name, const char *removed, char *seen, size_t sn)
{
    struct bd_err err;
    long status;
    cJSON *j = cli_api(c, "GET", "/cluster/etcd-members", NULL, &status, &err);
    bool ok = false;
    if (!j || status != 200) {
        const char *why = j ? cli_str(j, "error") : err.msg;
        snprintf(seen, sn, "etcd: %.200s", why ? why : "?");
        cJSON_Delete(j);
        return false;
    }
    const cJSON *m;
    snprintf(seen, sn, "%s not a member yet", name);
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "members"))
    {
        const char *h = cli_str(m, "hostname"), *id = cli_str(m, "id");
        if (!h || strcmp(h, name) || (removed && id && !strcmp(id, removed)))
            continue;
        bool learner = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "learner"));
        snprintf(seen, sn, "%s is a %s (member %s)", name, learner ? "learner" : "voting member",
                 id ? id : "?");
        ok = !learner;
    }
    cJSON_Delete(j);
    return ok;
}

int cli_machine_replace(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"no-wait", no_argument, NULL, 'n'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {0}};
    bool wait = true;
    int64_t timeout_s = 600;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'n')
            wait = false;
        else if (ch == 't' && bd_duration_parse(optarg, &timeout_s) == 0)
            continue;
        else {
            fprintf(stderr, "usage: bootctl machine replace NAME [--no-wait] [--timeout 10m]\n");
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: bootctl machine replace NAME [--no-wait] [--timeout 10m]\n");
        return 2;
    }
    const char *name = argv[optind];
    int code;
    char *path = cli_machine_path("/machines/%s/replace", name);
    cJSON *j = cli_call(c, "POST", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    const char *removed = cli_str(j, "removed_member");
    char *rm = removed ? bd_xstrdup(removed) : NULL;
    bool cp = !strcmp(cli_str(j, "role") ? cli_str(j, "role") : "", "controlplane");
    if (rm)
        printf("%s: etcd member %s removed through %s\n", name, rm, cli_str(j, "through"));
    else if (cp)
        printf("%s: no etcd member of that name (removed before)\n", name);
    printf("%s will install again on its next network boot\n", name);
    if (cli_str(j, "vm"))
        printf("%s: Proxmox: %s\n", name, cli_str(j, "vm"));
    cJSON_Delete(j);
    int rc = 0;
    if (wait && cp) {
        time_t start = time(NULL);
        char seen[300] = "", last[300] = "";
        while (!rejoined(c, name, rm, seen, sizeof seen)) {
            if (strcmp(seen, last)) {
                printf("  %3lds  %s\n", (long)(time(NULL) - start), seen);
                snprintf(last, sizeof last, "%s", seen);
            }
            if (time(NULL) - start > timeout_s) {
                fprintf(stderr, "bootctl: %s has not rejoined etcd after %llds\n", name,
                        (long long)timeout_s);
                rc = 1;
                break;
            }
            sleep(1);
        }
        if (!rc)
            printf("  %3lds  %s: rejoined\n", (long)(time(NULL) - start), seen);
    }
    free(rm);
    return rc;
}
