/* What a request says in its target, before any route acts on it: the raw target's
 * encodings, /ipxe's query arguments, /assets' path components and Range and
 * If-None-Match headers, /config's token. Everything here comes from whoever can reach
 * the HTTP port; none of it touches a connection, so tests/fuzz/fuzz_request.c drives it
 * all with arbitrary bytes. */
#include "server.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Percent-encoded NUL, slash and backslash have no business in any bootd URL; MHD
 * would decode them before routing, so they are refused on the raw text. */
bool server_raw_uri_ok(const char *raw)
{
    const char *end = strchr(raw, '?');
    size_t n = end ? (size_t)(end - raw) : strlen(raw);
    for (const char *p = raw; (p = strchr(p, '%')) && (size_t)(p - raw) < n; p++) {
        if (p[1] == '0' && p[2] == '0')
            return false;
        if ((p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) ||
            (p[1] == '5' && (p[2] == 'c' || p[2] == 'C')))
            return false;
    }
    /* in the query a NUL would cut a value short without anyone noticing */
    return !end || !strstr(end, "%00");
}

static bool word_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

static bool uuid_ok(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

const char *server_ident_parse(const struct server_ident_args *a, struct boot_job *j)
{
    if (a->count > SERVER_MAX_ARGS || a->too_long)
        return "too many or too long query arguments\n";
    const char *mac = a->mac;
    struct bd_mac m;
    if (!mac || !*mac)
        return "missing mac (chain from /boot.ipxe)\n";
    if (bd_mac_parse(mac, &m) < 0)
        return "malformed mac\n";
    bd_mac_format(&m, j->mac);
    memcpy(j->mac_hyp, j->mac, sizeof j->mac);
    for (char *p = j->mac_hyp; *p; p++)
        if (*p == ':')
            *p = '-';
    const char *uuid = a->uuid;
    if (uuid && *uuid) {
        if (!uuid_ok(uuid))
            return "malformed uuid\n";
        for (int i = 0; i < 37; i++)
            j->uuid[i] = (char)tolower((unsigned char)uuid[i]);
    }
    const char *arch = a->arch, *platform = a->platform;
    if (!arch || !*arch)
        arch = "x86_64";
    if (!platform || !*platform)
        platform = "pcbios";
    if (!word_ok(arch, 16) || !word_ok(platform, 16))
        return "malformed arch or platform\n";
    snprintf(j->buildarch, sizeof j->buildarch, "%s", arch);
    snprintf(j->platform, sizeof j->platform, "%s", platform);
    return NULL;
}

/* Names that are never served: empty, ".", "..", hidden or partial files (".name"). */
bool server_asset_component_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\\' || (unsigned char)s[i] < 0x20)
            return false;
    return true;
}

/* Parses one "bytes=" range against size. 1: range set; 0: serve everything (absent,
 * malformed or several ranges, which RFC 9110 lets a server ignore); -1: unsatisfiable. */
int server_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9')
            return 0;
        uint64_t suffix = strtoull(p + 1, &end, 10);
        if (*end)
            return 0;
        if (suffix == 0 || size == 0)
            return -1;
        if (suffix > size)
            suffix = size;
        *off = size - suffix;
        *len = suffix;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    uint64_t first = strtoull(p, &end, 10);
    if (*end != '-')
        return 0;
    uint64_t last = UINT64_MAX;
    if (end[1]) {
        if (end[1] < '0' || end[1] > '9')
            return 0;
        last = strtoull(end + 1, &end, 10);
        if (*end || last < first)
            return 0;
    }
    if (first >= size)
        return -1;
    if (last >= size)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return 1;
}

bool server_etag_listed(const char *header, const char *etag)
{
    if (!header)
        return false;
    if (!strcmp(header, "*"))
        return true;
    /* a list of tags; ours contain no commas or quotes inside, so a substring match
     * is an exact match on one of them */
    return strstr(header, etag) != NULL;
}

/* The form of a config token: 32 lower-case hex digits. */
bool server_config_token_ok(const char *t)
{
    if (strlen(t) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!isxdigit((unsigned char)t[i]) || isupper((unsigned char)t[i]))
            return false;
    return true;
}
