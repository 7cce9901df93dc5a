#include "helpers.h"

#include "../../netsvc/netsvc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define assert_has(hay, needle) cr_assert(strstr((hay), (needle)), "\"%s\" not in:\n%s", needle, hay)
#define assert_lacks(hay, needle) cr_assert_null(strstr((hay), (needle)), "\"%s\" in:\n%s", needle, hay)

static struct lab *lab_from(const char *text)
{
    char *dir = tmpdir_new();
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    free(dir);
    return lab;
}

static char *conf_for(const struct lab *lab)
{
    struct netsvc_files f;
    netsvc_files_init(&f, "/var/lib/bootd");
    struct bd_buf b;
    bd_buf_init(&b);
    netsvc_render_conf(lab, &f, &b);
    netsvc_files_free(&f);
    return bd_buf_steal(&b);
}

static const char full_lab[] =
    "cluster: {name: t, talos_version: v1.13.9, vip: 192.0.2.10}\n"
    "lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
    "  range: [192.0.2.100, 192.0.2.199]\n  gateway: 192.0.2.1\n  dns: [192.0.2.1, 198.51.100.53]\n"
    "  domain: lab.example\n  boot_server: 192.0.2.1\n  http_port: 8080\n"
    "services:\n  domain: lab.example\n  dns: true\n  ingress_ip: 192.0.2.220\n"
    "  records: [{name: grafana}, {name: dns, ip: 192.0.2.53}]\n"
    "machines:\n  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane, ip: 192.0.2.11}\n"
    "  - {name: w-1, mac: '52:54:00:00:00:02', role: worker}\n";

Test(netsvc, full_mode_config)
{
    struct lab *lab = lab_from(full_lab);
    char *c = conf_for(lab);
    assert_has(c, "\nport=53\n");
    assert_has(c, "\ninterface=br0\nbind-interfaces\n");
    assert_has(c, "\ndhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,12h\n");
    assert_has(c, "\ndhcp-option=option:router,192.0.2.1\n");
    assert_has(c, "\ndhcp-option=option:dns-server,192.0.2.1,198.51.100.53\n");
    assert_has(c, "\ndhcp-hostsdir=/var/lib/bootd/dnsmasq/hosts\n");
    assert_has(c, "\ndhcp-script=/var/lib/bootd/dnsmasq/lease-event\n");
    assert_has(c, "\ntftp-root=/var/lib/bootd/dnsmasq/tftp\n");
    assert_has(c, "\npid-file=/var/lib/bootd/dnsmasq/dnsmasq.pid\n");
    /* firmware gets iPXE over TFTP, iPXE gets the chain script: exclusive on tag:ipxe */
    assert_has(c, "\ndhcp-match=set:ipxe,175\n");
    assert_has(c, "\ndhcp-match=set:efi64,option:client-arch,7\n");
    assert_has(c, "\ndhcp-match=set:efi64,option:client-arch,9\n");
    assert_has(c, "\ndhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi\n");
    assert_has(c, "\ndhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe\n");
    assert_has(c, "\ndhcp-boot=tag:ipxe,http://192.0.2.1:8080/boot.ipxe\n");
    assert_lacks(c, "proxy");
    assert_lacks(c, "dhcp-ignore");
    assert_has(c, "\nhost-record=grafana.lab.example,192.0.2.220\n");
    assert_has(c, "\nhost-record=dns.lab.example,192.0.2.53\n");
    free(c);
    struct bd_buf h;
    bd_buf_init(&h);
    netsvc_render_hosts(lab, &h);
    assert_has(h.data, "\n52:54:00:00:00:01,192.0.2.11,cp-1\n");
    assert_lacks(h.data, "52:54:00:00:00:02"); /* no reservation without an ip */
    bd_buf_free(&h);
    lab_free(lab);
}

Test(netsvc, proxy_mode_config)
{
    struct lab *lab = lab_from("cluster: {name: t, talos_version: v1.13.9, vip: 192.0.2.10}\n"
                               "lan: {interface: eth0, dhcp: proxy, subnet: 192.0.2.0/24,"
                               " boot_server: 192.0.2.5, http_port: 9000}\n");
    char *c = conf_for(lab);
    assert_has(c, "\nport=0\n");
    assert_has(c, "\ndhcp-range=192.0.2.0,proxy,255.255.255.0\n");
    assert_has(c, "\npxe-service=tag:!ipxe,x86PC,\"bootd\",undionly.kpxe\n");
    assert_has(c, "\npxe-service=tag:!ipxe,X86-64_EFI,\"bootd\",ipxe.efi\n");
    assert_has(c, "\npxe-service=tag:ipxe,x86PC,\"bootd\",http://192.0.2.5:9000/boot.ipxe\n");
    assert_has(c, "\npxe-service=tag:ipxe,BC_EFI,\"bootd\",http://192.0.2.5:9000/boot.ipxe\n");
    assert_lacks(c, "dhcp-boot");
    assert_lacks(c, "dhcp-authoritative");
    assert_lacks(c, "dhcp-hostsdir");
    free(c);
    lab_free(lab);
}

Test(netsvc, only_known_machines)
{
    char *text = bd_xstrdup(full_lab);
    char *p = strstr(text, "  http_port: 8080\n");
    char *with = bd_xasprintf("%.*s  only_known: true\n%s", (int)(p - text), text, p);
    struct lab *lab = lab_from(with);
    char *c = conf_for(lab);
    assert_has(c, "\ndhcp-ignore=tag:!known\n");
    free(c);
    lab_free(lab);
    free(with);
    free(text);
}

Test(netsvc, prepare_checks_the_host)
{
    struct lab *lab = lab_from("cluster: {name: t, talos_version: v1.13.9, vip: 192.0.2.10}\n"
                               "lan: {interface: nosuch0, dhcp: proxy, subnet: 192.0.2.0/24,"
                               " boot_server: 192.0.2.5}\n");
    char *dir = tmpdir_new();
    struct netsvc_files f;
    netsvc_files_init(&f, dir);
    struct netsvc_hook hook = {"/usr/bin/bootctl", "http://127.0.0.1:8080", "/x/admin.token"};
    bool cc, hc;
    struct bd_err err;
    cr_assert_eq(netsvc_prepare(lab, &f, &hook, &cc, &hc, &err), -1);
    assert_has(err.msg, "lan.interface: this host has no interface nosuch0");
    lab_free(lab);
    /* lo exists but does not carry 192.0.2.5 */
    lab = lab_from("cluster: {name: t, talos_version: v1.13.9, vip: 192.0.2.10}\n"
                   "lan: {interface: lo, dhcp: proxy, subnet: 192.0.2.0/24, boot_server: 192.0.2.5}\n");
    cr_assert_eq(netsvc_prepare(lab, &f, &hook, &cc, &hc, &err), -1);
    assert_has(err.msg, "lan.boot_server: 192.0.2.5 is not an address of lo (it has: 127.0.0.1");
    lab_free(lab);
    /* on lo with 127.0.0.1 it writes everything, once */
    lab = lab_from("cluster: {name: t, talos_version: v1.13.9, vip: 127.0.0.10}\n"
                   "lan: {interface: lo, dhcp: proxy, subnet: 127.0.0.0/8, boot_server: 127.0.0.1}\n");
    cr_assert_eq(netsvc_prepare(lab, &f, &hook, &cc, &hc, &err), 0, "%s", err.msg);
    cr_assert(cc && hc);
    cr_assert_eq(netsvc_prepare(lab, &f, &hook, &cc, &hc, &err), 0, "%s", err.msg);
    cr_assert(!cc && !hc, "unchanged files are not rewritten");
    struct stat sb;
    cr_assert_eq(stat(f.hook, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0700);
    char *hook_text;
    cr_assert_eq(bd_file_read(f.hook, &hook_text, NULL, &err), 0, "%s", err.msg);
    assert_has(hook_text, "exec '/usr/bin/bootctl' --url 'http://127.0.0.1:8080' --token-file "
                          "'/x/admin.token' dhcp-event \"$@\"");
    char *tftp = bd_path_join(f.tftp, "undionly.kpxe");
    cr_assert_eq(access(tftp, R_OK), 0);
    free(tftp);
    free(hook_text);
    lab_free(lab);
    netsvc_files_free(&f);
    free(dir);
}

static void collect(const struct netsvc_lease *l, void *arg)
{
    struct bd_buf *b = arg;
    bd_buf_printf(b, "%lld %s %s [%s]\n", (long long)l->expires, l->mac, l->ip, l->hostname);
}

Test(netsvc, leases)
{
    struct bd_buf b;
    bd_buf_init(&b);
    int bad;
    netsvc_parse_leases("1700000000 52:54:00:00:00:01 192.0.2.11 cp-1 01:52:54:00:00:00:01\n"
                        "1700000100 52:54:00:00:00:02 192.0.2.120 * *\n"
                        "duid 00:01:00:01:2c:00:00:00:52:54:00:00:00:03\n"
                        "garbage line\n"
                        "0 52-54-00-00-00-03 192.0.2.121 w-3 *",
                        collect, &b, &bad);
    cr_assert_str_eq(b.data, "1700000000 52:54:00:00:00:01 192.0.2.11 [cp-1]\n"
                             "1700000100 52:54:00:00:00:02 192.0.2.120 []\n"
                             "0 52:54:00:00:00:03 192.0.2.121 [w-3]\n");
    cr_assert_eq(bad, 1);
    bd_buf_free(&b);
    cr_assert_str_eq(netsvc_arch_from_tags("known efi64 br0"), "efi64");
    cr_assert_str_eq(netsvc_arch_from_tags("ipxe bios br0"), "bios");
    cr_assert_null(netsvc_arch_from_tags("br0"));
    cr_assert_null(netsvc_arch_from_tags(NULL));
}

/* A stand-in for the dnsmasq binary: logs like dnsmasq, then does what $MODE says. */
static char *fake_dnsmasq(const char *dir, const char *mode)
{
    char *text = bd_xasprintf("#!/bin/sh\n"
                              "echo \"dnsmasq[$$]: started, version test\" >&2\n"
                              "case '%s' in\n"
                              "fail) echo \"dnsmasq: failed to create listening socket for port 67: "
                              "Address already in use\" >&2; exit 2 ;;\n"
                              "hup) trap 'echo \"dnsmasq[$$]: got SIGHUP\" >&2' HUP;"
                              " while :; do sleep 0.1; done ;;\n"
                              "esac\n",
                              mode);
    char *path = write_file(dir, mode, text);
    chmod(path, 0755);
    free(text);
    return path;
}

static bool wait_status(struct dnsmasq *d, const char *needle, char *buf, size_t n)
{
    for (int i = 0; i < 100; i++) {
        netsvc_dnsmasq_status(d, buf, n);
        if (strstr(buf, needle))
            return true;
        usleep(50000);
    }
    return false;
}

Test(netsvc, supervisor_reports_dnsmasqs_own_reason)
{
    char *dir = tmpdir_new();
    char *bin = fake_dnsmasq(dir, "fail");
    struct dnsmasq *d;
    struct bd_err err;
    cr_assert_eq(netsvc_dnsmasq_start(bin, "/nonexistent.conf", NULL, &d, &err), 0, "%s", err.msg);
    char st[512];
    cr_assert(wait_status(d, "Address already in use", st, sizeof st), "%s", st);
    assert_has(st, "exited with status 2: failed to create listening socket for port 67");
    assert_has(st, "restarting in");
    netsvc_dnsmasq_stop(d);
    free(bin);
    free(dir);
}

Test(netsvc, supervisor_forwards_reload_and_stops_the_child)
{
    char *dir = tmpdir_new();
    char *bin = fake_dnsmasq(dir, "hup");
    struct dnsmasq *d;
    struct bd_err err;
    cr_assert_eq(netsvc_dnsmasq_start(bin, "/nonexistent.conf", NULL, &d, &err), 0, "%s", err.msg);
    char st[512];
    cr_assert(wait_status(d, "running (pid", st, sizeof st), "%s", st);
    int pid = netsvc_dnsmasq_pid(d);
    cr_assert_gt(pid, 0);
    netsvc_dnsmasq_reload(d);
    netsvc_dnsmasq_restart(d);
    for (int i = 0; i < 100 && (netsvc_dnsmasq_pid(d) == pid || !netsvc_dnsmasq_pid(d)); i++)
        usleep(50000);
    int pid2 = netsvc_dnsmasq_pid(d);
    cr_assert(pid2 > 0 && pid2 != pid, "restart gives a new process (%d, %d)", pid, pid2);
    cr_assert_eq(kill(pid, 0), -1, "the old one is gone");
    netsvc_dnsmasq_stop(d);
    cr_assert_eq(kill(pid2, 0), -1, "stop ends the child");
    free(bin);
    free(dir);
}
