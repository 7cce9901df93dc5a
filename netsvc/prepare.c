/* Checking the lab against this host and writing dnsmasq's files. */
#include "netsvc.h"


#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void netsvc_files_init(struct netsvc_files *f, const char *state_dir)
{
    f->dir = bd_path_join(state_dir, "dnsmasq");
    f->conf = bd_path_join(f->dir, "dnsmasq.conf");
    f->hostsdir = bd_path_join(f->dir, "hosts");
    f->hosts = bd_path_join(f->hostsdir, "lab");
    f->leases = bd_path_join(f->dir, "leases");
    f->tftp = bd_path_join(f->dir, "tftp");
    f->hook = bd_path_join(f->dir, "lease-event");
    f->pid = bd_path_join(f->dir, "dnsmasq.pid");
}

void netsvc_files_free(struct netsvc_files *f)
{
    free(f->dir);
    free(f->conf);
    free(f->hostsdir);
    free(f->hosts);
    free(f->leases);
    free(f->tftp);
    free(f->hook);
    free(f->pid);
    memset(f, 0, sizeof *f);
}

static int check_interface(const struct lab *lab, struct bd_err *err)
{
    const struct lab_lan *lan = &lab->lan;
    if (if_nametoindex(lan->interface) == 0)
        return bd_err_set(err, "%s: lan.interface: this host has no interface %s", lab->path,
                          lan->interface);
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) < 0)
        return bd_err_set(err, "getifaddrs: %s", strerror(errno));
    bool found = false;
    struct bd_buf have;
    bd_buf_init(&have);
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, lan->interface))
            continue;
        uint32_t a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
        char s[16];
        bd_ipv4_format(a, s);
        bd_buf_printf(&have, "%s%s", have.len ? ", " : "", s);
        found |= a == lan->boot_server;
    }
    freeifaddrs(ifa);
    int rc = 0;
    if (!found) {
        char bs[16];
        bd_ipv4_format(lan->boot_server, bs);
        rc = bd_err_set(err, "%s: lan.boot_server: %s is not an address of %s (it has: %s)",
                        lab->path, bs, lan->interface, have.len ? have.data : "no IPv4 address");
    }
    bd_buf_free(&have);
    return rc;
}

/* Writes path only when its content differs; *changed says whether it did. */
static int write_if_changed(const char *path, const char *data, size_t len, mode_t mode,
                            bool *changed, struct bd_err *err)
{
    char *old = NULL;
    size_t old_len = 0;
    struct bd_err ignore;
    if (bd_file_read(path, &old, &old_len, &ignore) == 0 && old_len == len &&
        !memcmp(old, data, len)) {
        free(old);
        if (changed)
            *changed = false;
        return 0;
    }
    free(old);
    if (changed)
        *changed = true;
    return bd_file_write_atomic(path, data, len, mode, err);
}

static const char *const ipxe_fields[] = {"ipxe_bios", "ipxe_efi", "ipxe_snp"};

static int copy_ipxe(const struct lab *lab, const struct netsvc_files *f, struct bd_err *err)
{
    const char *paths[] = {lab->lan.ipxe_bios, lab->lan.ipxe_efi, lab->lan.ipxe_snp};
    for (int i = 0; i < 3; i++) {
        char *data;
        size_t len;
        if (bd_file_read(paths[i], &data, &len, err) < 0)
            return bd_err_prefix(err, "%s: lan.%s (install Debian's ipxe package, or set the path)",
                                 lab->path, ipxe_fields[i]);
        const char *slash = strrchr(paths[i], '/');
        char *dst = bd_path_join(f->tftp, slash ? slash + 1 : paths[i]);
        int rc = write_if_changed(dst, data, len, 0644, NULL, err);
        free(dst);
        free(data);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int netsvc_prepare(const struct lab *lab, const struct netsvc_files *f,
                   const struct netsvc_hook *hook, bool *conf_changed, bool *hosts_changed,
                   struct bd_err *err)
{
    if (check_interface(lab, err) < 0)
        return -1;
    if (bd_mkdir_p(f->hostsdir, 0700, err) < 0 || bd_mkdir_p(f->tftp, 0700, err) < 0 ||
        copy_ipxe(lab, f, err) < 0)
        return -1;
    struct bd_buf b;
    bd_buf_init(&b);
    /* dnsmasq runs this on every lease change (as root, its default script user) */
    bd_buf_printf(&b,
                  "#!/bin/sh\n"
                  "# written by bootd: tells bootd about DHCP leases\n"
                  "exec '%s' --url '%s' --token-file '%s' dhcp-event \"$@\"\n",
                  hook->bootctl, hook->api_url, hook->token_file);
    int rc = write_if_changed(f->hook, b.data, b.len, 0700, NULL, err);
    bd_buf_reset(&b);
    if (rc == 0) {
        netsvc_render_hosts(lab, &b);
        rc = write_if_changed(f->hosts, b.data, b.len, 0600, hosts_changed, err);
        bd_buf_reset(&b);
    }
    if (rc == 0) {
        netsvc_render_conf(lab, f, &b);
        rc = write_if_changed(f->conf, b.data, b.len, 0600, conf_changed, err);
    }
    bd_buf_free(&b);
    return rc;
}
