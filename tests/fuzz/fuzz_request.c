/* What anyone who reaches bootd's HTTP port puts in a request: the target (path and query)
 * and the Range and If-None-Match headers of /assets. The input is the target, then a
 * newline and a Range header, then a newline and If-None-Match. The target is split and
 * decoded as libmicrohttpd does before routing (MHD_http_unescape on the path and on each
 * query key and value), then handed to the same checks the routes make. */
#include "fuzz.h"
#include "../../server/server.h"

#include <microhttpd.h>

#define MAX_QUERY_ARGS 64

static char *next_line(char **p)
{
    char *s = *p;
    if (!s)
        return NULL;
    char *nl = strchr(s, '\n');
    *p = nl ? nl + 1 : NULL;
    if (nl)
        *nl = 0;
    return s;
}

static const char *arg(char *const keys[], char *const vals[], size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i], key))
            return vals[i];
    return NULL;
}

static void query(char *q)
{
    char *keys[MAX_QUERY_ARGS], *vals[MAX_QUERY_ARGS];
    struct server_ident_args a = {0};
    size_t n = 0;
    for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq++ = 0;
        MHD_http_unescape(kv);
        if (eq)
            MHD_http_unescape(eq);
        a.count++;
        if (strlen(kv) > SERVER_MAX_ARG_LEN || (eq && strlen(eq) > SERVER_MAX_ARG_LEN))
            a.too_long = true;
        if (n < MAX_QUERY_ARGS) {
            keys[n] = kv;
            vals[n++] = eq ? eq : "";
        }
    }
    a.mac = arg(keys, vals, n, "mac");
    a.uuid = arg(keys, vals, n, "uuid");
    a.arch = arg(keys, vals, n, "arch");
    a.platform = arg(keys, vals, n, "platform");
    struct boot_job j;
    memset(&j, 0, sizeof j);
    if (!server_ident_parse(&a, &j)) {
        /* what a good answer promises the script renderer */
        if (strlen(j.mac) != 17 || strlen(j.mac_hyp) != 17 || !j.buildarch[0] || !j.platform[0])
            abort();
    }
}

/* each component of an /assets path, as route_assets.c walks it before opening anything */
static void asset_path(const char *rel)
{
    for (const char *p = rel;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!server_asset_component_ok(p, n))
            return;
        if (n == 1 && p[0] == '.')
            abort(); /* "." and ".." never pass */
        if (!slash)
            return;
        p = slash + 1;
    }
}

static void range(const char *h, const uint8_t *data, size_t size)
{
    uint64_t file = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        file = file << 8 | data[i];
    file %= (uint64_t)1 << 40; /* the image cache's files are far smaller */
    uint64_t off = 0, len = 0;
    int rc = server_range_parse(h, file, &off, &len);
    /* a range set is non-empty and inside the file: sendfile's offset and count */
    if (rc == 1 && (len == 0 || off >= file || len > file - off))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    char *rest = text;
    char *target = next_line(&rest);
    char *range_h = next_line(&rest);
    char *inm = next_line(&rest);

    server_raw_uri_ok(target);
    char *q = strchr(target, '?');
    if (q)
        *q++ = 0;
    MHD_http_unescape(target);
    if (q)
        query(q);
    if (!strncmp(target, "/assets/", 8))
        asset_path(target + 8);
    else
        asset_path(target);
    server_config_token_ok(!strncmp(target, "/config/", 8) ? target + 8 : target);
    if (range_h)
        range(range_h, data, size);
    if (inm)
        server_etag_listed(inm, "\"0123456789abcdef\"");
    free(text);
    return 0;
}
