/* Parsing of the address-like values that appear in lab.yaml and requests. */
#include "bd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bd_mac_parse(const char *s, struct bd_mac *m)
{
    size_t len = strlen(s);
    char sep = 0;
    if (len == 17) {
        sep = s[2];
        if (sep != ':' && sep != '-')
            return -1;
    } else if (len != 12) {
        return -1;
    }
    size_t step = sep ? 3 : 2;
    for (int i = 0; i < 6; i++) {
        const char *p = s + (size_t)i * step;
        if (sep && i < 5 && p[2] != sep)
            return -1;
        char pair[3] = {p[0], p[1], 0};
        if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]))
            return -1;
        m->b[i] = (uint8_t)strtoul(pair, NULL, 16);
    }
    return 0;
}

void bd_mac_format(const struct bd_mac *m, char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m->b[0], m->b[1], m->b[2], m->b[3],
             m->b[4], m->b[5]);
}

int bd_mac_cmp(const struct bd_mac *a, const struct bd_mac *b)
{
    return memcmp(a->b, b->b, 6);
}

int bd_ipv4_parse(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

void bd_ipv4_format(uint32_t a, char out[16])
{
    struct in_addr in = {.s_addr = htonl(a)};
    inet_ntop(AF_INET, &in, out, 16);
}

int bd_cidr_parse(const char *s, uint32_t *addr, int *prefix)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash - s > 15)
        return -1;
    char ip[16];
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = 0;
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || p < 0 || p > 32)
        return -1;
    if (bd_ipv4_parse(ip, addr) < 0)
        return -1;
    *prefix = (int)p;
    return 0;
}

bool bd_ipv4_in(uint32_t a, uint32_t net, int prefix)
{
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    return (a & mask) == (net & mask);
}

int bd_duration_parse(const char *s, int64_t *seconds)
{
    char *end;
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    long long v = strtoll(s, &end, 10);
    int64_t mult;
    if (!*end)
        mult = 1;
    else if (!strcmp(end, "s"))
        mult = 1;
    else if (!strcmp(end, "m"))
        mult = 60;
    else if (!strcmp(end, "h"))
        mult = 3600;
    else if (!strcmp(end, "d"))
        mult = 86400;
    else
        return -1;
    if (v < 0 || v > (long long)(INT64_MAX / 86400))
        return -1;
    *seconds = (int64_t)v * mult;
    return 0;
}

int bd_url_check(const char *s, const char *schemes, struct bd_err *err)
{
    CURLU *u = curl_url();
    if (!u)
        return bd_err_set(err, "out of memory");
    int rc = 0;
    char *scheme = NULL, *host = NULL;
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK) {
        rc = bd_err_set(err, "\"%s\" is not a URL", s);
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (!scheme) {
        rc = bd_err_set(err, "\"%s\" has no scheme", s);
        goto out;
    }
    bool ok = false;
    size_t sl = strlen(scheme);
    for (const char *p = schemes; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == sl && strncasecmp(p, scheme, n) == 0)
            ok = true;
        p += n + (c ? 1 : 0);
    }
    if (!ok) {
        rc = bd_err_set(err, "\"%s\": scheme %s is not one of %s", s, scheme, schemes);
        goto out;
    }
    if (strcasecmp(scheme, "file") != 0 &&
        (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host))
        rc = bd_err_set(err, "\"%s\" has no host", s);
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

bool bd_dns_label_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

bool bd_dns_name_ok(const char *s)
{
    if (!*s || strlen(s) > 253)
        return false;
    char *copy = bd_xstrdup(s), *save = NULL;
    bool ok = s[strlen(s) - 1] != '.';
    for (char *l = strtok_r(copy, ".", &save); l && ok; l = strtok_r(NULL, ".", &save))
        ok = bd_dns_label_ok(l);
    if (strstr(s, ".."))
        ok = false;
    free(copy);
    return ok;
}

/* Kubernetes label names: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends. */
static bool k8s_label_name_ok(const char *s, bool allow_empty)
{
    size_t n = strlen(s);
    if (n == 0)
        return allow_empty;
    if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return false;
    return true;
}

bool bd_k8s_label_key_ok(const char *key)
{
    const char *slash = strrchr(key, '/');
    bool ok = k8s_label_name_ok(slash ? slash + 1 : key, false);
    if (ok && slash) {
        char *prefix = bd_xstrndup(key, (size_t)(slash - key));
        ok = bd_dns_name_ok(prefix);
        free(prefix);
    }
    return ok;
}

bool bd_k8s_label_value_ok(const char *value)
{
    return k8s_label_name_ok(value, true);
}
