/* A kernel-log stream as the sink reads it: cut into lines, never more than the sink's
 * buffer, and each line's text. Whatever is on the LAN can send these bytes;
 * tests/fuzz/fuzz_logsink.c drives them with arbitrary ones. */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Talos sends one JSON object per line ({"msg": ..., "talos-level": ...}); anything else
 * is kept as it came. */
char *server_log_message(const char *line)
{
    cJSON *j = cJSON_Parse(line);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "msg");
    char *text = bd_xstrdup(cJSON_IsString(msg) ? msg->valuestring : line);
    cJSON_Delete(j);
    return text;
}

size_t server_log_split(char *buf, size_t len, size_t cap, void (*on_line)(void *, char *),
                        void *ud)
{
    buf[len] = 0;
    char *start = buf, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        on_line(ud, start);
        start = nl + 1;
    }
    len = strlen(start);
    memmove(buf, start, len + 1);
    if (len >= cap) { /* an overlong line is cut, not allowed to grow */
        on_line(ud, buf);
        len = 0;
    }
    return len;
}
