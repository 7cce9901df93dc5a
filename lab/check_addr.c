/* Machine addresses that cannot work, named with both places when two fields clash:
 * an ip that is lan.subnet's network or broadcast address (no host has it), an ip
 * inside lan.range (bootd's dnsmasq could lease it to another machine), and a
 * multicast MAC (no NIC has one; it is a typo or a copied group address). */
#include "internal.h"

#include <stdio.h>

static void at_text(const struct lab_at *at, const char *fallback, char *out, size_t size)
{
    if (at->file)
        snprintf(out, size, "%s:%d:%d", at->file, at->line, at->col);
    else
        snprintf(out, size, "%s", fallback);
}

static int check_ip(const struct lab *lab, const struct lab_machine *m, struct bd_err *err)
{
    const struct lab_lan *lan = &lab->lan;
    char where[300], subnet_where[300], ip[16], net[16];
    at_text(&m->ip_at, lab->path, where, sizeof where);
    at_text(&lan->subnet_at, lab->path, subnet_where, sizeof subnet_where);
    bd_ipv4_format(m->ip, ip);
    bd_ipv4_format(lan->subnet.addr, net);
    int pfx = lan->subnet.prefix;
    uint32_t mask = pfx ? 0xffffffffu << (32 - pfx) : 0;
    uint32_t bcast = lan->subnet.addr | ~mask;
    if (pfx <= 30 && (m->ip == lan->subnet.addr || m->ip == bcast))
        return bd_err_set(err,
                          "%s: machine %s: ip %s is the %s address of lan.subnet %s/%d (%s); no "
                          "host can have it",
                          where, m->name, ip, m->ip == bcast ? "broadcast" : "network", net, pfx,
                          subnet_where);
    if (lan->dhcp == LAB_DHCP_FULL && lan->range.set && lan->range.start <= m->ip &&
        m->ip <= lan->range.end) {
        char range_where[300], a[16], b[16];
        at_text(&lan->range_at, lab->path, range_where, sizeof range_where);
        bd_ipv4_format(lan->range.start, a);
        bd_ipv4_format(lan->range.end, b);
        return bd_err_set(err,
                          "%s: machine %s: ip %s is inside lan.range %s-%s (%s), so bootd's "
                          "dnsmasq could lease it to another machine; give it an address "
                          "outside the range",
                          where, m->name, ip, a, b, range_where);
    }
    return 0;
}

int lab_check_addresses(const struct lab *lab, struct bd_err *err)
{
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        if (m->mac.b[0] & 1) {
            char where[300], mac[18];
            at_text(&m->mac_at, lab->path, where, sizeof where);
            bd_mac_format(&m->mac, mac);
            return bd_err_set(err,
                              "%s: machine %s: mac %s is a multicast address (the first octet "
                              "is odd); a NIC's own address never is",
                              where, m->name, mac);
        }
        if (m->has_ip && check_ip(lab, m, err) < 0)
            return -1;
    }
    return 0;
}
