/* bootctl plan [NAME...] and bootctl machine diff NAME: what bootd would change on the
 * running machines (the redacted diff of each config against the one the machine last
 * got) and what Talos says it would do with it. Changes nothing. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *verdict_text(const char *v)
{
    if (!v)
        return "?";
    if (!strcmp(v, "live"))
        return "applies live, no reboot";
    if (!strcmp(v, "reboot"))
        return "needs a reboot";
    if (!strcmp(v, "refused"))
        return "REFUSED";
    return "unknown";
}

static void print_machine(const cJSON *m)
{
    const char *name = cli_or(cli_str(m, "name"), "?"), *status = cli_or(cli_str(m, "status"), "?");
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(m, "applied");
    char at[32];
    const char *when = cJSON_IsObject(ap) ? cli_time(ap, "at", at) : NULL;
    printf("%s (%s): %s", name, cli_or(cli_str(m, "role"), "?"), status);
    if (when)
        printf(" (last got %s: %s)", cli_or(cli_str(ap, "how"), "?"), when);
    if (!strcmp(status, "unrecorded"))
        printf(" (installed before bootd recorded configs: no diff to show)");
    printf("\n");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "talos");
    if (t) {
        const char *err = cli_str(t, "error"), *det = cli_str(t, "details");
        char *e = cli_escape(err ? err : det ? det : "");
        printf("  Talos: %s%s%s\n", verdict_text(cli_str(t, "verdict")), *e ? ": " : "", e);
        free(e);
    }
    const char *err = cli_str(m, "error");
    if (err)
        printf("  error: %s\n", err);
    const char *diff = cli_str(m, "diff");
    /* redacted by bootd; each line escaped like anything else a config holds */
    for (const char *p = diff; p && *p;) {
        size_t len = strcspn(p, "\n");
        char *line = bd_xasprintf("%.*s", (int)len, p), *e = cli_escape(line);
        printf("    %s\n", e);
        free(line);
        free(e);
        p += len + (p[len] == '\n');
    }
}

static int plan(struct cli *c, char **names, int n)
{
    struct bd_buf q;
    bd_buf_init(&q);
    bd_buf_printf(&q, "/cluster/plan");
    for (int i = 0; i < n; i++) {
        char *p = cli_machine_path("%s", names[i]);
        bd_buf_printf(&q, "%s%s", i ? "," : "?machine=", p);
        free(p);
    }
    int code;
    cJSON *j = cli_view(c, "GET", q.data, NULL, &code);
    bd_buf_free(&q);
    if (!j)
        return code;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "machines")) print_machine(m);
    int changed = cJSON_GetObjectItemCaseSensitive(j, "changed")
                      ? cJSON_GetObjectItemCaseSensitive(j, "changed")->valueint
                      : 0;
    if (changed)
        printf("\n%d machine%s to change: bootctl apply%s\n", changed, changed == 1 ? "" : "s",
               n ? " NAME..." : "");
    else
        printf("\nno changes: every installed machine has the config bootd serves\n");
    cJSON_Delete(j);
    return 0;
}

int cli_cmd_plan(struct cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bootctl plan [NAME...]\n");
            return 2;
        }
    return plan(c, argv + 1, argc - 1);
}

int cli_machine_diff(struct cli *c, const char *name)
{
    char *n = (char *)name;
    return plan(c, &n, 1);
}
