/* dnsmasq's lease file: "expiry mac ip hostname client-id" per line. */
#include "netsvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void netsvc_parse_leases(const char *text, void (*fn)(const struct netsvc_lease *, void *),
                         void *arg, int *bad)
{
    if (bad)
        *bad = 0;
    const char *line = text;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[512];
        if (len && len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = 0;
            long long expires;
            char mac[32], ip[64], host[64];
            struct bd_mac m;
            uint32_t addr;
            /* DHCPv6 lines ("duid ...") and anything malformed are skipped */
            if (sscanf(buf, "%lld %31s %63s %63s", &expires, mac, ip, host) == 4 &&
                bd_mac_parse(mac, &m) == 0 && bd_ipv4_parse(ip, &addr) == 0) {
                struct netsvc_lease l = {.expires = expires};
                bd_mac_format(&m, l.mac);
                bd_ipv4_format(addr, l.ip);
                snprintf(l.hostname, sizeof l.hostname, "%s", strcmp(host, "*") ? host : "");
                fn(&l, arg);
            } else if (bad && strncmp(buf, "duid ", 5)) {
                (*bad)++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
}

const char *netsvc_arch_from_tags(const char *tags)
{
    if (!tags)
        return NULL;
    /* the tags bootd's dhcp-match rules set from option 93 */
    char *copy = bd_xstrdup(tags), *save = NULL;
    const char *arch = NULL;
    for (char *t = strtok_r(copy, " ", &save); t && !arch; t = strtok_r(NULL, " ", &save)) {
        if (!strcmp(t, "efi64"))
            arch = "efi64";
        else if (!strcmp(t, "bios"))
            arch = "bios";
        else if (!strcmp(t, "efihttp-amd64"))
            arch = "efihttp-amd64";
        else if (!strcmp(t, "efihttp-arm64"))
            arch = "efihttp-arm64";
    }
    free(copy);
    return arch;
}
