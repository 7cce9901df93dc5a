/* Text from the LAN and the host: neighbour-table lines, dnsmasq lease files, and the
 * addresses and durations a request or a lab carries. The first byte picks the parser. */
#include "fuzz.h"
#include "../../netsvc/netsvc.h"
#include "../../server/server.h"

static void on_lease(const struct netsvc_lease *l, void *ud)
{
    (void)l;
    (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    char *text = fuzz_text(data + 1, size - 1);
    uint32_t ip;
    int prefix;
    int64_t secs;
    struct bd_mac mac;
    char dev[32], out[18];
    switch (data[0] % 4) {
    case 0:
        if (server_neigh_parse_line(text, &ip, &mac, dev) == 0)
            bd_mac_format(&mac, out);
        break;
    case 1:
        netsvc_parse_leases(text, on_lease, NULL, NULL);
        netsvc_arch_from_tags(text);
        break;
    case 2:
        if (bd_mac_parse(text, &mac) == 0)
            bd_mac_format(&mac, out);
        break;
    default:
        bd_ipv4_parse(text, &ip);
        bd_cidr_parse(text, &ip, &prefix);
        bd_duration_parse(text, &secs);
        break;
    }
    free(text);
    return 0;
}
