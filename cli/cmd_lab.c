/* bootctl logs and dhcp-event: a machine's kernel log, and dnsmasq's lease reports. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cli_cmd_logs(struct cli *c, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bootctl logs NAME|MAC\n");
        return 2;
    }
    char *path = cli_machine_path("/machines/%s/logs", argv[1]);
    int code;
    cJSON *j = cli_view(c, "GET", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(j, "lines"))
    {
        char tb[32];
        const char *t = cli_time(l, "time", tb);
        printf("%s  %s\n", t ? t : "-", cli_str(l, "msg"));
    }
    cJSON_Delete(j);
    return 0;
}

/* dnsmasq's --dhcp-script calls this as: ACTION MAC IP [HOSTNAME], with the request's
 * tags in DNSMASQ_TAGS. Other actions (tftp, init) are not about leases. */
int cli_cmd_dhcp_event(struct cli *c, int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *action = argv[1];
    if (strcmp(action, "add") && strcmp(action, "old") && strcmp(action, "del"))
        return 0;
    if (argc < 4) {
        fprintf(stderr, "usage: bootctl dhcp-event add|old|del MAC IP [HOSTNAME]\n");
        return 2;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "action", action);
    cJSON_AddStringToObject(body, "mac", argv[2]);
    cJSON_AddStringToObject(body, "ip", argv[3]);
    if (argc > 4)
        cJSON_AddStringToObject(body, "hostname", argv[4]);
    const char *tags = getenv("DNSMASQ_TAGS");
    if (tags)
        cJSON_AddStringToObject(body, "tags", tags);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    int code;
    cJSON *j = cli_call(c, "POST", "/dhcp/events", text, &code);
    free(text);
    cJSON_Delete(j);
    return code;
}
