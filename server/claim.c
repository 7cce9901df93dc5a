/* Who may claim a MAC: a boot script (and with it a config token) and a config download
 * are for the machine itself only. The proof bootd has on a LAN is the kernel's neighbour
 * table: the link-layer address that answered for the request's source address. In full
 * DHCP mode a machine with a reservation may also be recognised by its address. See
 * docs/security.md for what this does and does not stop. */
#include "server.h"

#include <stdio.h>
#include <string.h>

bool server_claim_ok(const struct lab *lab, const struct lab_machine *m, uint32_t from, char *why,
              size_t n)
{
    char ip[16], mac[18];
    bd_ipv4_format(from, ip);
    bd_mac_format(&m->mac, mac);
    struct bd_mac seen;
    bool have_seen = server_neigh_lookup(from, lab->lan.interface, &seen);
    /* A reserved address is only bootd's dnsmasq's to give, but anyone can configure it
     * by hand: the neighbour table, when it knows the address, has the last word. */
    if (lab->lan.dhcp == LAB_DHCP_FULL && m->has_ip && from == m->ip &&
        (!have_seen || !bd_mac_cmp(&seen, &m->mac)))
        return true;
    if (lab->lan.routed) {
        if (bd_ipv4_in(from, lab->lan.subnet.addr, lab->lan.subnet.prefix))
            return true;
        snprintf(why, n, "%s: request for %s from %s, outside the lab subnet", m->name, mac, ip);
        return false;
    }
    if (!have_seen) {
        snprintf(why, n, "%s: request for %s from %s, which has no neighbour entry on %s",
                 m->name, mac, ip, lab->lan.interface ? lab->lan.interface : "the lab LAN");
        return false;
    }
    if (bd_mac_cmp(&seen, &m->mac)) {
        char other[18];
        bd_mac_format(&seen, other);
        snprintf(why, n, "%s: request for %s from %s, whose link-layer address is %s", m->name,
                 mac, ip, other);
        return false;
    }
    return true;
}
