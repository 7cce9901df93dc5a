/* The kernel's neighbour table: which link-layer address answered for an IPv4 address on
 * the lab LAN. Claims (claim.c), /uki (route_uki.c) and the log sink ask it who a request
 * is. Read over rtnetlink (RTM_GETNEIGH, with libmnl); tests on loopback, which has no
 * neighbours, point $BOOTD_NEIGH_TABLE at a file in /proc/net/arp's format instead. */
#include "server.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ATF_COM 0x02 /* <net/if_arp.h>: the entry is complete (resolved) */
/* The kernel's NUD_VALID (include/net/neighbour.h, not in the uapi headers): the states
 * in which it trusts the link-layer address, which /proc/net/arp reports as ATF_COM. */
#define NEIGH_VALID (NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY)

int server_neigh_parse_line(const char *line, uint32_t *ip, struct bd_mac *mac, char dev[32])
{
    char ips[64], hw[64];
    unsigned type, flags;
    if (sscanf(line, "%63s 0x%x 0x%x %63s %*s %31s", ips, &type, &flags, hw, dev) != 5)
        return -1;
    if (!(flags & ATF_COM) || bd_ipv4_parse(ips, ip) < 0 || bd_mac_parse(hw, mac) < 0)
        return -1;
    return 0;
}

static int file_lookup(const char *path, uint32_t ip, const char *ifname, struct bd_mac *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[256];
    int found = 0;
    if (fgets(line, sizeof line, f)) { /* the header */
        while (!found && fgets(line, sizeof line, f)) {
            uint32_t a;
            char dev[32];
            if (server_neigh_parse_line(line, &a, out, dev) == 0 && a == ip &&
                (!ifname || !*ifname || !strcmp(dev, ifname)))
                found = 1;
        }
    }
    fclose(f);
    return found;
}

struct want {
    uint32_t ip_be;
    int ifindex; /* 0: any */
    struct bd_mac *out;
    int found;
};

static int attr_cb(const struct nlattr *a, void *data)
{
    const struct nlattr **tb = data;
    if (mnl_attr_type_valid(a, NDA_MAX) >= 0)
        tb[mnl_attr_get_type(a)] = a;
    return MNL_CB_OK;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
    struct want *w = data;
    const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
    if (nlh->nlmsg_type != RTM_NEWNEIGH || nd->ndm_family != AF_INET ||
        (w->ifindex && nd->ndm_ifindex != w->ifindex) || !(nd->ndm_state & NEIGH_VALID))
        return MNL_CB_OK;
    const struct nlattr *tb[NDA_MAX + 1] = {0};
    if (mnl_attr_parse(nlh, sizeof *nd, attr_cb, tb) < 0 || !tb[NDA_DST] || !tb[NDA_LLADDR] ||
        mnl_attr_get_payload_len(tb[NDA_DST]) != 4 ||
        mnl_attr_get_payload_len(tb[NDA_LLADDR]) != sizeof w->out->b ||
        memcmp(mnl_attr_get_payload(tb[NDA_DST]), &w->ip_be, 4))
        return MNL_CB_OK;
    memcpy(w->out->b, mnl_attr_get_payload(tb[NDA_LLADDR]), sizeof w->out->b);
    w->found = 1;
    return MNL_CB_OK; /* the dump goes on to its end: the socket is left clean */
}

static int netlink_lookup(uint32_t ip, const char *ifname, struct bd_mac *out)
{
    struct want w = {.ip_be = htonl(ip), .out = out};
    if (ifname && *ifname && !(w.ifindex = (int)if_nametoindex(ifname)))
        return 0; /* no such interface: nobody is a neighbour on it */
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl)
        return 0;
    char *buf = bd_xmalloc(MNL_SOCKET_BUFFER_SIZE);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = (unsigned)time(NULL);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof *nd);
    nd->ndm_family = AF_INET;
    unsigned seq = nlh->nlmsg_seq;
    int rc = -1;
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0 &&
        mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) >= 0) {
        unsigned portid = mnl_socket_get_portid(nl);
        ssize_t n;
        while ((n = mnl_socket_recvfrom(nl, buf, MNL_SOCKET_BUFFER_SIZE)) > 0 &&
               (rc = mnl_cb_run(buf, (size_t)n, seq, portid, neigh_cb, &w)) > MNL_CB_STOP)
            ;
    }
    if (rc < 0)
        bd_debug("neighbour table: rtnetlink dump failed");
    free(buf);
    mnl_socket_close(nl);
    return w.found;
}

int server_neigh_lookup(uint32_t ip, const char *ifname, struct bd_mac *out)
{
    const char *path = getenv("BOOTD_NEIGH_TABLE");
    if (path && *path)
        return file_lookup(path, ip, ifname, out);
    return netlink_lookup(ip, ifname, out);
}
