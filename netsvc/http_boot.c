/* dnsmasq rules for UEFI HTTP Boot. The firmware's HTTP boot client asks with vendor
 * class "HTTPClient:Arch:000NN" (client arch 16 for x86-64, 19 for arm64); it takes
 * only an offer that echoes "HTTPClient" in option 60 and carries a full http:// URL as
 * its boot file. Machines whose boot method is not the lab's get a tag of their own
 * (dhcp-mac works in every DHCP mode), so each firmware is answered on one path only:
 * a machine that boots over HTTP gets no PXE answer and falls through to HTTP boot. */
#include "netsvc.h"

#include <string.h>

static const struct {
    int client_arch;
    const char *arch;
} http_arches[] = {{16, "amd64"}, {19, "arm64"}};

static enum lab_boot_method method_of(const struct lab *lab, const struct lab_machine *m)
{
    return m->has_boot_method ? m->boot_method : lab->boot.method;
}

bool netsvc_lab_uses(const struct lab *lab, enum lab_boot_method method)
{
    if (lab->boot.method == method)
        return true;
    for (size_t i = 0; i < lab->nmachines; i++)
        if (method_of(lab, &lab->machines[i]) == method)
            return true;
    return false;
}

const char *netsvc_method_guard(const struct lab *lab, enum lab_boot_method method)
{
    if (!netsvc_lab_uses(lab, LAB_BOOT_PXE) || !netsvc_lab_uses(lab, LAB_BOOT_HTTP))
        return "";
    /* the lab's own method: every machine but those tagged with the other one */
    if (lab->boot.method == method)
        return method == LAB_BOOT_HTTP ? "tag:!bootd-pxe," : "tag:!bootd-http,";
    return method == LAB_BOOT_HTTP ? "tag:bootd-http," : "tag:bootd-pxe,";
}

void netsvc_render_method_tags(const struct lab *lab, struct bd_buf *b)
{
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        enum lab_boot_method meth = method_of(lab, m);
        if (meth == lab->boot.method)
            continue;
        char mac[18];
        bd_mac_format(&m->mac, mac);
        bd_buf_printf(b, "dhcp-mac=set:%s,%s\n", meth == LAB_BOOT_HTTP ? "bootd-http" : "bootd-pxe",
                      mac);
    }
}

void netsvc_render_http_boot(const struct lab *lab, const char *base_url, struct bd_buf *b)
{
    if (!netsvc_lab_uses(lab, LAB_BOOT_HTTP))
        return;
    const char *guard = netsvc_method_guard(lab, LAB_BOOT_HTTP);
    bd_buf_puts(b, "dhcp-vendorclass=set:httpclient,HTTPClient\n"
                   "dhcp-option-force=tag:httpclient,60,HTTPClient\n");
    for (size_t i = 0; i < sizeof http_arches / sizeof http_arches[0]; i++) {
        bd_buf_printf(b, "dhcp-match=set:efihttp-%s,option:client-arch,%d\n", http_arches[i].arch,
                      http_arches[i].client_arch);
        bd_buf_printf(b, "dhcp-boot=tag:httpclient,tag:efihttp-%s,%s%s/uki/%s.efi\n",
                      http_arches[i].arch, guard, base_url, http_arches[i].arch);
    }
}
