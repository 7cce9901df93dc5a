#include "helpers.h"

#include "../../netsvc/netsvc.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define assert_has(hay, needle) cr_assert(strstr((hay), (needle)), "\"%s\" not in:\n%s", needle, hay)
#define assert_lacks(hay, needle) cr_assert_null(strstr((hay), (needle)), "\"%s\" in:\n%s", needle, hay)

static const char head[] =
    "cluster: {name: t, talos_version: v1.13.9, vip: 192.0.2.10}\n"
    "lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
    "  range: [192.0.2.100, 192.0.2.199]\n  boot_server: 192.0.2.1\n  http_port: 8080\n";

static char *conf_of(const char *boot, const char *machines)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%s%smachines:\n%s", head, boot, machines);
    free(write_file(dir, "lab.yaml", text));
    free(text);
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    free(dir);
    struct netsvc_files f;
    netsvc_files_init(&f, "/var/lib/bootd");
    struct bd_buf b;
    bd_buf_init(&b);
    netsvc_render_conf(lab, &f, &b);
    netsvc_files_free(&f);
    lab_free(lab);
    return bd_buf_steal(&b);
}

static const char two[] = "  - {name: a, mac: '52:54:00:00:00:01', role: controlplane}\n"
                          "  - {name: b, mac: '52:54:00:00:00:02', role: worker, boot_method: %s}\n";

Test(http_boot, http_lab_answers_http_clients_and_runs_no_tftp)
{
    char *m = bd_xasprintf(two, "http");
    char *c = conf_of("boot: {method: http}\n", m);
    assert_has(c, "\ndhcp-vendorclass=set:httpclient,HTTPClient\n");
    assert_has(c, "\ndhcp-option-force=tag:httpclient,60,HTTPClient\n");
    assert_has(c, "\ndhcp-match=set:efihttp-amd64,option:client-arch,16\n");
    assert_has(c, "\ndhcp-match=set:efihttp-arm64,option:client-arch,19\n");
    assert_has(c, "\ndhcp-boot=tag:httpclient,tag:efihttp-amd64,"
                  "http://192.0.2.1:8080/uki/amd64.efi\n");
    assert_has(c, "\ndhcp-boot=tag:httpclient,tag:efihttp-arm64,"
                  "http://192.0.2.1:8080/uki/arm64.efi\n");
    assert_lacks(c, "enable-tftp");
    assert_lacks(c, "ipxe.efi");
    assert_lacks(c, "dhcp-mac=");
    free(c);
    free(m);
}

Test(http_boot, machines_on_the_other_method_are_tagged)
{
    char *m = bd_xasprintf(two, "http");
    char *c = conf_of("", m); /* the lab boots over PXE, b over HTTP */
    assert_has(c, "\ndhcp-mac=set:bootd-http,52:54:00:00:00:02\n");
    assert_has(c, "\ndhcp-boot=tag:!ipxe,tag:efi64,tag:!bootd-http,ipxe.efi\n");
    assert_has(c, "tag:efihttp-amd64,tag:bootd-http,http://192.0.2.1:8080/uki/amd64.efi\n");
    assert_has(c, "\nenable-tftp\n");
    free(c);
    free(m);
    m = bd_xasprintf(two, "pxe");
    c = conf_of("boot: {method: http}\n", m); /* the lab over HTTP, b over PXE */
    assert_has(c, "\ndhcp-mac=set:bootd-pxe,52:54:00:00:00:02\n");
    assert_has(c, "\ndhcp-boot=tag:!ipxe,tag:efi64,tag:bootd-pxe,ipxe.efi\n");
    assert_has(c, "tag:efihttp-amd64,tag:!bootd-pxe,http://192.0.2.1:8080/uki/amd64.efi\n");
    assert_has(c, "\nenable-tftp\n");
    free(c);
    free(m);
}

Test(http_boot, pxe_lab_has_no_http_rules)
{
    char *m = bd_xasprintf(two, "pxe");
    char *c = conf_of("", m);
    assert_lacks(c, "HTTPClient");
    assert_lacks(c, "dhcp-mac=");
    free(c);
    free(m);
}

static const char *load_error(const char *text)
{
    static struct bd_err err;
    char *dir = tmpdir_new();
    free(write_file(dir, "lab.yaml", text));
    struct lab *lab = load_lab(dir, &err);
    cr_assert_null(lab, "loaded:\n%s", text);
    free(dir);
    return err.msg;
}

Test(http_boot, lab_yaml_refuses_what_cannot_boot)
{
    char *t = bd_xasprintf("%sboot: {method: tftp}\nmachines: []\n", head);
    const char *e = load_error(t);
    cr_assert(strstr(e, "boot.method") && strstr(e, "pxe, http"), "%s", e);
    free(t);
    /* dnsmasq's proxy mode answers PXE clients only */
    t = bd_xasprintf("cluster: {name: t, talos_version: v1.13.9}\n"
                     "lan: {interface: br0, dhcp: proxy, subnet: 192.0.2.0/24, boot_server: 192.0.2.1}\n"
                     "boot: {method: http}\nmachines: []\n");
    e = load_error(t);
    cr_assert(strstr(e, "boot.method: http needs lan.dhcp: full"), "%s", e);
    free(t);
    t = bd_xasprintf("%smachines:\n  - {name: a, mac: '52:54:00:00:00:01', role: worker, arch: arm64}\n",
                     head);
    e = load_error(t);
    cr_assert(strstr(e, "arm64 is not in images.arch (machine a)"), "%s", e);
    free(t);
}
