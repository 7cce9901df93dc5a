/* Between bd_node trees and cJSON values. */
#include "bd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* YAML 1.2 core schema for plain scalars: null, booleans, integers, floats. */
static cJSON *plain_scalar(const char *s)
{
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return cJSON_CreateNull();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return cJSON_CreateTrue();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return cJSON_CreateFalse();
    char *end;
    errno = 0;
    if (!strncmp(s, "0x", 2) || !strncmp(s, "0o", 2)) {
        long long v = strtoll(s + 2, &end, s[1] == 'x' ? 16 : 8);
        if (!*end && !errno && s[2])
            return cJSON_CreateNumber((double)v);
    } else {
        long long v = strtoll(s, &end, 10);
        if (!*end && !errno && (s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
            return cJSON_CreateNumber((double)v);
        double d = strtod(s, &end);
        bool numeric_start = (s[0] >= '0' && s[0] <= '9') ||
                             ((s[0] == '-' || s[0] == '+' || s[0] == '.') && s[1] >= '0' &&
                              s[1] <= '9');
        if (!*end && numeric_start && isfinite(d))
            return cJSON_CreateNumber(d);
    }
    return cJSON_CreateString(s);
}

cJSON *bd_node_to_json(const struct bd_node *n)
{
    switch (n->kind) {
    case BD_NODE_SCALAR:
        return n->plain ? plain_scalar(n->str) : cJSON_CreateString(n->str);
    case BD_NODE_MAP: {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < n->n; i++)
            cJSON_AddItemToObject(o, n->kids[2 * i]->str, bd_node_to_json(n->kids[2 * i + 1]));
        return o;
    }
    case BD_NODE_SEQ: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n->n; i++)
            cJSON_AddItemToArray(a, bd_node_to_json(n->kids[i]));
        return a;
    }
    }
    return cJSON_CreateNull();
}

struct bd_node *bd_node_from_json(const cJSON *j)
{
    if (cJSON_IsObject(j)) {
        struct bd_node *m = bd_node_new(BD_NODE_MAP);
        const cJSON *c;
        cJSON_ArrayForEach(c, j) bd_node_map_set(m, c->string, bd_node_from_json(c));
        return m;
    }
    if (cJSON_IsArray(j)) {
        struct bd_node *s = bd_node_new(BD_NODE_SEQ);
        const cJSON *c;
        cJSON_ArrayForEach(c, j) bd_node_seq_push(s, bd_node_from_json(c));
        return s;
    }
    if (cJSON_IsString(j))
        return bd_node_scalar(j->valuestring, false);
    if (cJSON_IsBool(j))
        return bd_node_scalar(cJSON_IsTrue(j) ? "true" : "false", true);
    if (cJSON_IsNumber(j)) {
        char buf[64];
        double d = j->valuedouble;
        /* range first: converting a double outside long long's range is undefined */
        if (fabs(d) < 9.0e15 && d == (double)(long long)d)
            snprintf(buf, sizeof buf, "%lld", (long long)d);
        else
            snprintf(buf, sizeof buf, "%.17g", d);
        return bd_node_scalar(buf, true);
    }
    return bd_node_scalar("null", true);
}
