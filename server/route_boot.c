/* /boot.ipxe and /ipxe: what a PXE-booting machine is told to do. */
#include "server.h"

#include "../boot/boot.h"
#include "../images/images.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 16
#define MAX_ARG_LEN 256

static enum MHD_Result script(struct MHD_Connection *c, struct req *r, struct bd_buf *b)
{
    enum MHD_Result rc = reply_text(c, r, MHD_HTTP_OK, "text/plain; charset=utf-8", b->data, b->len);
    bd_buf_free(b);
    return rc;
}

enum MHD_Result route_boot_chain(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct lab_snap *snap = server_lab(s);
    struct bd_buf b;
    bd_buf_init(&b);
    ipxe_render_chain(&b, snap->base_url);
    server_lab_put(s, snap);
    return script(c, r, &b);
}

struct arg_check {
    unsigned count;
    bool too_long;
};

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct arg_check *a = cls;
    a->count++;
    if (strlen(key) > MAX_ARG_LEN || (value && strlen(value) > MAX_ARG_LEN))
        a->too_long = true;
    return MHD_YES;
}

static bool word_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

static bool uuid_ok(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* What the machine said about itself, checked. */
struct ident {
    char mac[18];
    char mac_hyp[18];
    char uuid[37];
    char buildarch[17];
    char platform[17];
    char ip[16];
};

static const char *parse_ident(struct MHD_Connection *c, struct ident *id)
{
    struct arg_check a = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg, &a);
    if (a.count > MAX_ARGS || a.too_long)
        return "too many or too long query arguments\n";
    const char *mac = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mac");
    struct bd_mac m;
    if (!mac || !*mac)
        return "missing mac (chain from /boot.ipxe)\n";
    if (bd_mac_parse(mac, &m) < 0)
        return "malformed mac\n";
    bd_mac_format(&m, id->mac);
    memcpy(id->mac_hyp, id->mac, sizeof id->mac);
    for (char *p = id->mac_hyp; *p; p++)
        if (*p == ':')
            *p = '-';
    const char *uuid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "uuid");
    id->uuid[0] = 0;
    if (uuid && *uuid) {
        if (!uuid_ok(uuid))
            return "malformed uuid\n";
        for (int i = 0; i < 37; i++)
            id->uuid[i] = (char)tolower((unsigned char)uuid[i]);
    }
    const char *arch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "arch");
    const char *platform = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "platform");
    if (!arch || !*arch)
        arch = "x86_64";
    if (!platform || !*platform)
        platform = "pcbios";
    if (!word_ok(arch, 16) || !word_ok(platform, 16))
        return "malformed arch or platform\n";
    snprintf(id->buildarch, sizeof id->buildarch, "%s", arch);
    snprintf(id->platform, sizeof id->platform, "%s", platform);
    bd_ipv4_format(client_ipv4(c), id->ip);
    return NULL;
}

static char *retry_url(const struct lab_snap *snap, const struct ident *id)
{
    return bd_xasprintf("%s/ipxe?mac=%s&uuid=%s&arch=%s&platform=%s", snap->base_url, id->mac_hyp,
                        id->uuid, id->buildarch, id->platform);
}

static enum MHD_Result hold(struct server *s, struct MHD_Connection *c, struct req *r,
                            const struct lab_snap *snap, const struct ident *id, const char *msg)
{
    (void)s;
    struct bd_buf b;
    bd_buf_init(&b);
    char *url = retry_url(snap, id);
    ipxe_render_hold(&b, msg, snap->lab->boot.hold_retry_s, url);
    free(url);
    return script(c, r, &b);
}

static enum MHD_Result unknown_machine(struct server *s, struct MHD_Connection *c, struct req *r,
                                       const struct lab_snap *snap, const struct ident *id,
                                       const struct store_sighting *seen)
{
    struct bd_err err;
    if (store_machine_seen(s->store, id->mac, seen, &err) < 0)
        bd_error("ipxe: %s", err.msg);
    char msg[256];
    if (snap->lab->boot.unknown == LAB_UNKNOWN_EXIT) {
        struct bd_buf b;
        bd_buf_init(&b);
        snprintf(msg, sizeof msg, "%s is not in lab.yaml; booting the next device", id->mac);
        ipxe_render_exit(&b, msg);
        return script(c, r, &b);
    }
    snprintf(msg, sizeof msg,
             "%s is not in lab.yaml. Adopt it: bootctl machine adopt %s --name NAME --role worker",
             id->mac, id->mac);
    return hold(s, c, r, snap, id, msg);
}

/* Full DHCP mode with a reservation: the machine keeps its address from iPXE to Talos,
 * so the token is bound to it. Otherwise leases may differ between the two, and the
 * binding can only be the lab subnet. */
static void token_binding(const struct lab *lab, const struct lab_machine *m,
                          struct store_token_bind *bind)
{
    if (lab->lan.dhcp == LAB_DHCP_FULL && m->has_ip) {
        bind->addr = m->ip;
        bind->prefix = 32;
    } else {
        bind->addr = lab->lan.subnet.addr;
        bind->prefix = lab->lan.subnet.prefix;
    }
}

static enum MHD_Result boot_machine(struct server *s, struct MHD_Connection *c, struct req *r,
                                    const struct lab_snap *snap, const struct ident *id,
                                    const struct lab_machine *m, const struct store_sighting *seen)
{
    struct bd_err err;
    const struct lab *lab = snap->lab;
    const char *arch = boot_talos_arch(id->buildarch);
    if (!arch) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: iPXE architecture %s has no Talos image", m->name,
                 id->buildarch);
        store_event_add(s->store, id->mac, "http", "error", msg, &err);
        return hold(s, c, r, snap, id, msg);
    }
    if (m->uuid && id->uuid[0] && strcmp(m->uuid, id->uuid)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s: SMBIOS UUID %s differs from lab.yaml's %s; held", m->name,
                 id->uuid, m->uuid);
        store_event_add(s->store, id->mac, "http", "audit", msg, &err);
        return hold(s, c, r, snap, id, msg);
    }
    struct store_machine sm;
    int found = store_machine_get(s->store, id->mac, &sm, &err);
    if (found == 1 && sm.state >= BD_STATE_INSTALLING && !sm.reinstall) {
        struct bd_buf b;
        bd_buf_init(&b);
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%s is installed; booting from disk (bootctl machine reinstall %s to reinstall)",
                 m->name, m->name);
        ipxe_render_exit(&b, msg);
        return script(c, r, &b);
    }

    struct store_token_bind bind;
    token_binding(lab, m, &bind);
    char bound[40], boot_msg[256];
    bd_ipv4_format(bind.addr, bound);
    if (bind.prefix != 32)
        snprintf(bound + strlen(bound), sizeof bound - strlen(bound), "/%d", bind.prefix);
    snprintf(boot_msg, sizeof boot_msg, "script served to %s (%s %s); config token bound to %s%s",
             id->ip, id->platform, id->buildarch, bound,
             bind.prefix == 32 ? "" : " (no reserved address: lab subnet)");
    char token[33];
    if (store_token_mint(s->store, id->mac, m->name, seen, &bind, boot_msg, token, &err) < 0) {
        bd_error("ipxe: %s", err.msg);
        return hold(s, c, r, snap, id, "bootd could not record this boot; retrying");
    }
    if (bind.prefix == 32 && client_ipv4(c) != bind.addr) {
        char msg[200];
        snprintf(msg, sizeof msg, "script fetched from %s, but the reserved address is %s",
                 id->ip, bound);
        store_event_add(s->store, id->mac, "http", "warn", msg, &err);
    }

    bool efi = !strcmp(id->platform, "efi");
    char initrd_name[32];
    snprintf(initrd_name, sizeof initrd_name, "initramfs-%s.xz", arch);
    char *config_url = bd_xasprintf("%s/config/%s", snap->base_url, token);
    char *base = images_cached_cmdline(s->assets_fd, snap->schematic, lab->cluster.talos_version,
                                       arch);
    char *sink = NULL;
    if (lab->lan.log_port) {
        char ip[16];
        bd_ipv4_format(lab->lan.boot_server, ip);
        sink = bd_xasprintf("%s:%d", ip, lab->lan.log_port);
    }
    struct bd_buf args;
    bd_buf_init(&args);
    boot_kernel_args(&args, &(struct boot_kernel_args){
                                .lab = lab,
                                .machine = m,
                                .arch = arch,
                                .base_cmdline = base,
                                .initrd_name = efi ? initrd_name : NULL,
                                .config_url = config_url,
                                .log_sink = sink,
                            });
    char *asset = bd_xasprintf("%s/assets/%s/%s", snap->base_url, snap->schematic,
                               lab->cluster.talos_version);
    char *kernel = bd_xasprintf("%s/kernel-%s", asset, arch);
    char *initrd = bd_xasprintf("%s/%s", asset, initrd_name);
    char *comment = bd_xasprintf("%s (%s, %s)", m->name, lab_role_name(m->role), id->mac);
    char *again = retry_url(snap, id);
    struct bd_buf b;
    bd_buf_init(&b);
    ipxe_render_boot(&b, &(struct ipxe_boot){
                             .comment = comment,
                             .kernel_url = kernel,
                             .initrd_url = initrd,
                             .kernel_args = args.data,
                             .retry_url = again,
                         });
    free(again);
    free(comment);
    free(initrd);
    free(kernel);
    free(asset);
    bd_buf_free(&args);
    free(sink);
    free(base);
    free(config_url);
    return script(c, r, &b);
}

enum MHD_Result route_ipxe(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct ident id;
    const char *bad = parse_ident(c, &id);
    if (bad)
        return reply_text(c, r, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", bad,
                          strlen(bad));
    struct store_sighting seen = {
        .uuid = id.uuid[0] ? id.uuid : NULL,
        .ip = id.ip,
        .arch = id.buildarch,
    };
    struct lab_snap *snap = server_lab(s);
    struct bd_mac mac;
    bd_mac_parse(id.mac, &mac);
    const struct lab_machine *m = lab_machine_by_mac(snap->lab, &mac);
    enum MHD_Result rc = m ? boot_machine(s, c, r, snap, &id, m, &seen)
                           : unknown_machine(s, c, r, snap, &id, &seen);
    server_lab_put(s, snap);
    return rc;
}
