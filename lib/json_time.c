/* JSON as the admin API writes it: times in UTC, RFC 3339 with milliseconds; empty
 * strings as null. */
#include "bd.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <time.h>

void bd_json_add_time(struct cJSON *o, const char *key, int64_t ms)
{
    if (ms <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(ms % 1000));
    cJSON_AddStringToObject(o, key, buf);
}

void bd_json_add_str_or_null(struct cJSON *o, const char *key, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}
