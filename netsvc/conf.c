/* dnsmasq.conf and the reservations file, rendered from lab.yaml. */
#include "netsvc.h"


#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void netmask(int prefix, char out[16])
{
    bd_ipv4_format(prefix ? 0xffffffffu << (32 - prefix) : 0, out);
}

/* Firmware gets an iPXE binary over TFTP; iPXE (user class / option 175) gets the
 * HTTP chain script. The two rule sets are mutually exclusive on tag:ipxe, so iPXE is
 * never handed iPXE again (no loops). */
static void render_boot_rules(const struct lab *lab, const char *chain_url, struct bd_buf *b)
{
    bd_buf_puts(b, "dhcp-match=set:ipxe,175\n");
    for (size_t i = 0; i < netsvc_nfirmwares; i++)
        bd_buf_printf(b, "dhcp-match=set:%s,option:client-arch,%d\n", netsvc_firmwares[i].tag,
                      netsvc_firmwares[i].client_arch);
    if (lab->lan.dhcp == LAB_DHCP_FULL) {
        bd_buf_printf(b, "dhcp-boot=tag:!ipxe,tag:efi64,%s\n", base_name(lab->lan.ipxe_efi));
        bd_buf_printf(b, "dhcp-boot=tag:!ipxe,tag:!efi64,%s\n", base_name(lab->lan.ipxe_bios));
        bd_buf_printf(b, "dhcp-boot=tag:ipxe,%s\n", chain_url);
        return;
    }
    /* proxy-DHCP answers only with PXE boot services, one per client system type */
    bd_buf_puts(b, "pxe-prompt=\"bootd\",0\n");
    for (size_t i = 0; i < netsvc_nfirmwares; i++) {
        const struct netsvc_firmware *fw = &netsvc_firmwares[i];
        bd_buf_printf(b, "pxe-service=tag:!ipxe,%s,\"bootd\",%s\n", fw->csa,
                      base_name(netsvc_firmware_binary(lab, fw->tag)));
    }
    for (size_t i = 0; i < netsvc_nfirmwares; i++)
        bd_buf_printf(b, "pxe-service=tag:ipxe,%s,\"bootd\",%s\n", netsvc_firmwares[i].csa,
                      chain_url);
}

void netsvc_render_conf(const struct lab *lab, const struct netsvc_files *f, struct bd_buf *b)
{
    const struct lab_lan *lan = &lab->lan;
    char a[16], c[16], mask[16];
    netmask(lan->subnet.prefix, mask);
    bd_ipv4_format(lan->boot_server, a);
    char *chain_url = bd_xasprintf("http://%s:%d/boot.ipxe", a, lan->http_port);
    const struct passwd *pw = getpwuid(geteuid());
    const struct group *gr = getgrgid(getegid());

    bd_buf_printf(b, "# dnsmasq configuration written by bootd from %s; edits are overwritten\n",
                  lab->path);
    bd_buf_printf(b, "port=%d\n", lab->services.dns ? 53 : 0);
    bd_buf_printf(b, "interface=%s\nbind-interfaces\n", lan->interface);
    /* bootd's user and group: the reservations and hook live in bootd's private state
     * directory, and an unchanged identity keeps the parent-death signal that stops
     * dnsmasq with bootd. The pid file lets a restarted bootd find a leftover one. */
    bd_buf_printf(b, "pid-file=%s\nuser=%s\ngroup=%s\n", f->pid, pw ? pw->pw_name : "root",
                  gr ? gr->gr_name : "root");
    bd_buf_puts(b, "log-dhcp\n");
    if (lan->dhcp == LAB_DHCP_FULL) {
        bd_ipv4_format(lan->range.start, a);
        bd_ipv4_format(lan->range.end, c);
        bd_buf_printf(b, "dhcp-authoritative\ndhcp-range=%s,%s,%s,12h\n", a, c, mask);
        if (lan->has_gateway) {
            bd_ipv4_format(lan->gateway, a);
            bd_buf_printf(b, "dhcp-option=option:router,%s\n", a);
        }
        if (lan->dns.n) {
            bd_buf_puts(b, "dhcp-option=option:dns-server");
            for (size_t i = 0; i < lan->dns.n; i++) {
                bd_ipv4_format(lan->dns.v[i], a);
                bd_buf_printf(b, ",%s", a);
            }
            bd_buf_puts(b, "\n");
        }
        if (lan->domain)
            bd_buf_printf(b, "domain=%s\n", lan->domain);
        bd_buf_printf(b, "dhcp-hostsdir=%s\n", f->hostsdir);
        if (lan->only_known)
            bd_buf_puts(b, "dhcp-ignore=tag:!known\n");
    } else {
        bd_ipv4_format(lan->subnet.addr, a);
        bd_buf_printf(b, "dhcp-range=%s,proxy,%s\n", a, mask);
    }
    bd_buf_printf(b, "dhcp-leasefile=%s\ndhcp-script=%s\n", f->leases, f->hook);
    render_boot_rules(lab, chain_url, b);
    bd_buf_printf(b, "enable-tftp\ntftp-root=%s\n", f->tftp);
    if (lab->services.dns)
        for (size_t i = 0; i < lab->services.n; i++) {
            bd_ipv4_format(lab->services.v[i].ip, a);
            bd_buf_printf(b, "host-record=%s.%s,%s\n", lab->services.v[i].name,
                          lab->services.domain, a);
        }
    free(chain_url);
}

void netsvc_render_hosts(const struct lab *lab, struct bd_buf *b)
{
    bd_buf_puts(b, "# reservations written by bootd from lab.yaml\n");
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        if (!m->has_ip)
            continue;
        char mac[18], ip[16];
        bd_mac_format(&m->mac, mac);
        bd_ipv4_format(m->ip, ip);
        bd_buf_printf(b, "%s,%s,%s\n", mac, ip, m->hostname);
    }
}
