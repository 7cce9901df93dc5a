/* The lab's dnsmasq, as bootd runs it: files from netsvc, the process from netsvc's
 * supervisor, and the lease hook that reports back to bootd's admin API. */
#include "server.h"

#include "../netsvc/netsvc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* bootctl is installed next to bootd; dnsmasq runs it for every lease change. */
static char *bootctl_path(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return bd_xstrdup("bootctl");
    exe[n] = 0;
    char *dir = bd_path_dir(exe);
    char *path = bd_path_join(dir, "bootctl");
    free(dir);
    return path;
}

int server_services_prepare(struct server *s, const struct lab *lab, bool *conf_changed,
                     bool *hosts_changed, struct bd_err *err)
{
    *conf_changed = *hosts_changed = false;
    if (!lab->lan.dnsmasq)
        return 0;
    struct netsvc_files f;
    netsvc_files_init(&f, s->opts.state_dir);
    char *bootctl = bootctl_path();
    if (access(bootctl, X_OK) < 0)
        bd_warn("dnsmasq: %s is missing, so DHCP leases will not reach bootd", bootctl);
    const char *listen = s->opts.listen_addr;
    char *api = bd_xasprintf("http://%s:%d",
                             !listen || !strcmp(listen, "0.0.0.0") ? "127.0.0.1" : listen, s->port);
    struct netsvc_hook hook = {.bootctl = bootctl, .api_url = api, .token_file = s->admin_token_file};
    int rc = netsvc_prepare(lab, &f, &hook, conf_changed, hosts_changed, err);
    free(api);
    free(bootctl);
    netsvc_files_free(&f);
    return rc;
}

void server_services_apply(struct server *s, const struct lab *lab, bool conf_changed, bool hosts_changed)
{
    if (!lab->lan.dnsmasq) {
        if (s->dnsmasq)
            bd_info("dnsmasq: lan.dnsmasq is false now; stopping it");
        netsvc_dnsmasq_stop(s->dnsmasq);
        s->dnsmasq = NULL;
        return;
    }
    if (!s->dnsmasq) {
        struct netsvc_files f;
        netsvc_files_init(&f, s->opts.state_dir);
        struct bd_err err;
        if (netsvc_dnsmasq_start(s->opts.dnsmasq, f.conf, f.pid, &s->dnsmasq, &err) < 0)
            bd_error("dnsmasq: %s", err.msg);
        netsvc_files_free(&f);
    } else if (conf_changed) {
        netsvc_dnsmasq_restart(s->dnsmasq);
    } else if (hosts_changed) {
        /* dnsmasq's hostsdir watch only adds entries; SIGHUP re-reads them all */
        netsvc_dnsmasq_reload(s->dnsmasq);
    }
}

void server_services_stop(struct server *s)
{
    netsvc_dnsmasq_stop(s->dnsmasq);
    s->dnsmasq = NULL;
}

void server_services_status(struct server *s, char *buf, size_t n)
{
    if (!s->dnsmasq)
        snprintf(buf, n, "not run by bootd (lan.dnsmasq: false)");
    else
        netsvc_dnsmasq_status(s->dnsmasq, buf, n);
}
