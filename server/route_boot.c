/* /boot.ipxe and /ipxe: what a PXE-booting machine is told to do. */
#include "server.h"

#include "../boot/boot.h"
#include "../images/images.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result script(struct MHD_Connection *c, struct req *r, struct bd_buf *b)
{
    enum MHD_Result rc = server_reply_text(c, r, MHD_HTTP_OK, "text/plain; charset=utf-8", b->data, b->len);
    bd_buf_free(b);
    return rc;
}

enum MHD_Result server_route_boot_chain(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct lab_snap *snap = server_lab(s);
    struct bd_buf b;
    bd_buf_init(&b);
    boot_ipxe_chain(&b, snap->base_url);
    server_lab_put(s, snap);
    return script(c, r, &b);
}

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct server_ident_args *a = cls;
    a->count++;
    if (strlen(key) > SERVER_MAX_ARG_LEN || (value && strlen(value) > SERVER_MAX_ARG_LEN))
        a->too_long = true;
    return MHD_YES;
}

/* Fills what the machine said about itself into j; a message for a 400 otherwise. */
static const char *parse_ident(struct MHD_Connection *c, struct boot_job *j)
{
    struct server_ident_args a = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg, &a);
    a.mac = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mac");
    a.uuid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "uuid");
    a.arch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "arch");
    a.platform = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "platform");
    const char *bad = server_ident_parse(&a, j);
    if (!bad)
        bd_ipv4_format(server_client_ipv4(c), j->ip);
    return bad;
}

static char *retry_url(const struct boot_job *j)
{
    return bd_xasprintf("%s/ipxe?mac=%s&uuid=%s&arch=%s&platform=%s", j->snap->base_url,
                        j->mac_hyp, j->uuid, j->buildarch, j->platform);
}

static enum MHD_Result hold(struct MHD_Connection *c, struct req *r, const struct boot_job *j,
                            const char *msg)
{
    struct bd_buf b;
    bd_buf_init(&b);
    char *url = retry_url(j);
    boot_ipxe_hold(&b, msg, j->snap->lab->boot.hold_retry_s, url);
    free(url);
    return script(c, r, &b);
}

static enum MHD_Result exit_script(struct MHD_Connection *c, struct req *r, const char *msg)
{
    struct bd_buf b;
    bd_buf_init(&b);
    boot_ipxe_exit(&b, msg);
    return script(c, r, &b);
}

static enum MHD_Result unknown_machine(struct MHD_Connection *c, struct req *r,
                                       const struct boot_job *j)
{
    char msg[256];
    if (j->snap->lab->boot.unknown == LAB_UNKNOWN_EXIT) {
        snprintf(msg, sizeof msg, "%s is not in lab.yaml; booting the next device", j->mac);
        return exit_script(c, r, msg);
    }
    snprintf(msg, sizeof msg,
             "%s is not in lab.yaml. Adopt it: bootctl machine adopt %s --name NAME --role worker",
             j->mac, j->mac);
    return hold(c, r, j, msg);
}

/* Full DHCP mode with a reservation: the machine keeps its address from iPXE to Talos,
 * so the token is bound to it. Otherwise leases may differ between the two, and the
 * binding can only be the lab subnet. */
void server_boot_token_binding(const struct lab *lab, const struct lab_machine *m,
                               struct state_token_bind *bind)
{
    if (lab->lan.dhcp == LAB_DHCP_FULL && m->has_ip) {
        bind->addr = m->ip;
        bind->prefix = 32;
    } else {
        bind->addr = lab->lan.subnet.addr;
        bind->prefix = lab->lan.subnet.prefix;
    }
}

#define TOKEN_MARK "@TOKEN@"

void server_boot_kernel_args(struct server *s, const struct lab_snap *snap,
                             const struct lab_machine *m, const char *arch,
                             const char *initrd_name, const char *config_url, struct bd_buf *out)
{
    const struct lab *lab = snap->lab;
    char *base = images_cached_cmdline(s->assets_fd, snap->schematic, lab->cluster.talos_version,
                                       arch);
    char *sink = NULL;
    if (lab->lan.log_port) {
        char ip[16];
        bd_ipv4_format(lab->lan.boot_server, ip);
        sink = bd_xasprintf("%s:%d", ip, lab->lan.log_port);
    }
    boot_kernel_args(out, &(struct boot_kernel_args){
                              .lab = lab,
                              .machine = m,
                              .arch = arch,
                              .base_cmdline = base,
                              .initrd_name = initrd_name,
                              .config_url = config_url,
                              .log_sink = sink,
                          });
    free(sink);
    free(base);
}

/* Renders a machine's script with a placeholder for the token and splits it there. */
static struct script_parts *render_parts(struct server *s, const struct lab_snap *snap,
                                         const struct lab_machine *m, const char *arch, bool efi)
{
    const struct lab *lab = snap->lab;
    char initrd_name[32];
    snprintf(initrd_name, sizeof initrd_name, "initramfs-%s.xz", arch);
    char *config_url = bd_xasprintf("%s/config/" TOKEN_MARK, snap->base_url);
    struct bd_buf args;
    bd_buf_init(&args);
    server_boot_kernel_args(s, snap, m, arch, efi ? initrd_name : NULL, config_url, &args);
    char *asset = bd_xasprintf("%s/assets/%s/%s", snap->base_url, snap->schematic,
                               lab->cluster.talos_version);
    char *kernel = bd_xasprintf("%s/kernel-%s", asset, arch);
    char *initrd = bd_xasprintf("%s/%s", asset, initrd_name);
    char mac[18];
    bd_mac_format(&m->mac, mac);
    char *comment = bd_xasprintf("%s (%s, %s)", m->name, lab_role_name(m->role), mac);
    char *again = bd_xasprintf("%s/boot.ipxe", snap->base_url);
    struct bd_buf b;
    bd_buf_init(&b);
    boot_ipxe_boot(&b, &(struct ipxe_boot){
                             .comment = comment,
                             .kernel_url = kernel,
                             .initrd_url = initrd,
                             .kernel_args = args.data,
                             .retry_url = again,
                         });
    struct script_parts *p = bd_xcalloc(1, sizeof *p);
    char *mark = strstr(b.data, TOKEN_MARK);
    p->head_len = (size_t)(mark - b.data);
    p->head = bd_xstrndup(b.data, p->head_len);
    p->tail = bd_xstrdup(mark + strlen(TOKEN_MARK));
    p->tail_len = strlen(p->tail);
    bd_buf_free(&b);
    free(again);
    free(comment);
    free(initrd);
    free(kernel);
    free(asset);
    bd_buf_free(&args);
    free(config_url);
    return p;
}

static enum MHD_Result boot_script(struct server *s, struct MHD_Connection *c, struct req *r,
                                   const struct boot_job *j)
{
    struct lab_snap *snap = j->snap;
    const char *arch = boot_talos_arch(j->buildarch);
    bool efi = !strcmp(j->platform, "efi");
    size_t kind = (size_t)(!strcmp(arch, "arm64") * 2 + efi);
    struct script_parts **slot =
        &snap->scripts[(size_t)(j->machine - snap->lab->machines) * SCRIPT_KINDS + kind];
    struct script_parts *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!p) {
        struct script_parts *fresh = render_parts(s, snap, j->machine, arch, efi);
        p = NULL;
        if (__atomic_compare_exchange_n(slot, &p, fresh, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            p = fresh;
        } else { /* another thread rendered it first */
            free(fresh->head);
            free(fresh->tail);
            free(fresh);
        }
    }
    size_t len = p->head_len + 32 + p->tail_len;
    char *body = bd_xmalloc(len + 1);
    memcpy(body, p->head, p->head_len);
    memcpy(body + p->head_len, j->boot.token, 32);
    memcpy(body + p->head_len + 32, p->tail, p->tail_len + 1);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->bytes = len;
    return server_reply(c, r, MHD_HTTP_OK, resp);
}

static enum MHD_Result image_hold(struct server *s, struct MHD_Connection *c, struct req *r,
                                   const struct boot_job *j)
{
    char msg[sizeof(struct bd_err) + 128];
    server_image_hold(s, j->snap, boot_talos_arch(j->buildarch), j->mac, msg, sizeof msg);
    return hold(c, r, j, msg); /* the hold script keeps server answers to one echo line */
}

/* The boot is recorded (or recording failed): answer. */
enum MHD_Result server_boot_finish(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct boot_job *j = r->job;
    enum MHD_Result rc;
    if (j->uki)
        rc = server_uki_answer(s, c, r, j);
    else if (j->failed)
        rc = hold(c, r, j, "bootd could not record this boot; retrying");
    else if (!j->machine)
        rc = unknown_machine(c, r, j);
    else if (j->boot.installed) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%s is installed; booting from disk (bootctl machine reinstall %s to reinstall)",
                 j->machine->name, j->machine->name);
        rc = exit_script(c, r, msg);
    } else if (j->image_missing) {
        rc = image_hold(s, c, r, j);
    } else {
        rc = boot_script(s, c, r, j);
    }
    server_boot_job_free(s, j);
    r->job = NULL;
    return rc;
}

void server_boot_job_free(struct server *s, struct boot_job *j)
{
    if (!j)
        return;
    if (j->snap)
        server_lab_put(s, j->snap);
    free(j);
}

/* Checks that need no state: a known machine with a strange architecture or a
 * different SMBIOS UUID is held, and the event says why. */
const char *server_boot_refuse(struct server *s, struct boot_job *j, char *msg, size_t n)
{
    const struct lab_machine *m = j->machine;
    if (!boot_talos_arch(j->buildarch)) {
        snprintf(msg, n, "%s: iPXE architecture %s has no Talos image", m->name, j->buildarch);
        state_event_note(s->store, j->mac, "http", "error", msg);
        return msg;
    }
    const struct lab_strlist *arches = &j->snap->lab->images.arch;
    size_t a = 0;
    while (a < arches->n && strcmp(arches->v[a], boot_talos_arch(j->buildarch)))
        a++;
    if (a == arches->n) {
        snprintf(msg, n, "%s: images.arch in lab.yaml does not list %s; held", m->name,
                 boot_talos_arch(j->buildarch));
        state_event_note(s->store, j->mac, "http", "error", msg);
        return msg;
    }
    const char *want = m->arch == LAB_ARCH_ARM64 ? "arm64" : "amd64";
    if (m->has_arch && strcmp(want, boot_talos_arch(j->buildarch))) {
        snprintf(msg, n, "%s: lab.yaml says arch %s, but its firmware asks for %s; held", m->name,
                 want, boot_talos_arch(j->buildarch));
        state_event_note(s->store, j->mac, "http", "error", msg);
        return msg;
    }
    /* iPXE always sends ${uuid}: a pinned UUID left out is a request not from iPXE. The
     * pinned value is never told: it would show a spoofer what to send. A firmware's own
     * HTTP boot client (/uki) sends no UUID at all; there the link-layer check is all. */
    bool from_ipxe = strcmp(j->platform, "efi-http") != 0;
    if (m->uuid && from_ipxe && strcmp(m->uuid, j->uuid)) {
        snprintf(msg, n, "%s: SMBIOS UUID %s is not the one lab.yaml pins; held", m->name,
                 j->uuid[0] ? j->uuid : "(none sent)");
        server_refusal(s, j->mac, "uuid", msg);
        return msg;
    }
    return NULL;
}

void server_boot_describe(struct MHD_Connection *c, struct boot_job *j, const char *what)
{
    const struct lab *lab = j->snap->lab;
    struct state_token_bind *bind = &j->boot.bind;
    server_boot_token_binding(lab, j->machine, bind);
    char bound[24];
    bd_ipv4_format(bind->addr, bound);
    snprintf(j->message, sizeof j->message,
             "%s to %s (%s %s); config token bound to %s/%d%s", what, j->ip, j->platform,
             j->buildarch, bound, bind->prefix,
             bind->prefix == 32 ? "" : " (no reserved address: lab subnet)");
    j->boot.message = j->message;
    if (bind->prefix == 32 && server_client_ipv4(c) != bind->addr) {
        snprintf(j->warning, sizeof j->warning,
                 "%s fetched from %s, but the reserved address is %s", j->uki ? "UKI" : "script", j->ip, bound);
        j->boot.warning = j->warning;
    }
}

enum MHD_Result server_route_ipxe(struct server *s, struct MHD_Connection *c, struct req *r)
{
    if (r->job)
        return server_boot_finish(s, c, r); /* resumed by the boot writer */
    struct boot_job *j = bd_xcalloc(1, sizeof *j);
    const char *bad = parse_ident(c, j);
    if (bad) {
        free(j);
        return server_reply_text(c, r, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", bad,
                          strlen(bad));
    }
    j->snap = server_lab(s);
    struct bd_mac mac;
    bd_mac_parse(j->mac, &mac);
    j->machine = lab_machine_by_mac(j->snap->lab, &mac);
    r->job = j;
    if (j->machine && !server_claim_ok(j->snap->lab, j->machine, server_client_ipv4(c), j->message,
                                sizeof j->message)) {
        /* no token, and the machine's own token stays valid */
        char held[300];
        snprintf(held, sizeof held, "%s; held, no token", j->message);
        server_refusal(s, j->mac, "claim", held);
        snprintf(held, sizeof held, "bootd cannot tell that %s is asking; held", j->mac);
        enum MHD_Result rc = hold(c, r, j, held);
        server_boot_job_free(s, j);
        r->job = NULL;
        return rc;
    }
    if (j->machine) {
        char msg[256];
        const char *why = server_boot_refuse(s, j, msg, sizeof msg);
        if (why) {
            enum MHD_Result rc = hold(c, r, j, why);
            server_boot_job_free(s, j);
            r->job = NULL;
            return rc;
        }
        server_bootwatch_again(s, j->mac, SERVER_BOOT_FAILED_BOOT_AGAIN,
                               "asked for an iPXE boot script");
        server_boot_describe(c, j, "script served");
        j->image_missing = !j->snap->image_ready[!strcmp(boot_talos_arch(j->buildarch), "arm64")];
    }
    if (!j->machine && !server_discovery_allowed(s, server_client_ipv4(c), j->ip)) {
        enum MHD_Result rc = unknown_machine(c, r, j);
        server_boot_job_free(s, j);
        r->job = NULL;
        return rc;
    }
    return server_boot_submit(s, c, r, j);
}

enum MHD_Result server_boot_submit(struct server *s, struct MHD_Connection *c, struct req *r,
                                   struct boot_job *j)
{
    r->job = j;
    if (j->machine && j->image_missing)
        snprintf(j->message, sizeof j->message, "held: the Talos %s %s image is not in the cache yet",
                 j->snap->lab->cluster.talos_version, boot_talos_arch(j->buildarch));
    j->boot.mac = j->mac;
    j->boot.name = j->machine ? j->machine->name : NULL;
    j->boot.held = j->image_missing;
    j->boot.seen = (struct state_sighting){
        .uuid = j->uuid[0] ? j->uuid : NULL,
        .ip = j->ip,
        .arch = j->buildarch,
        .firmware = server_firmware_name(j->platform),
    };
    if (server_bootq_submit(s, c, j))
        return MHD_YES;
    /* bootd is stopping: record this one on its own */
    struct bd_err err;
    j->failed = state_boot_batch(s->store, &j->boot, 1, &err) < 0;
    return server_boot_finish(s, c, r);
}

const char *server_firmware_name(const char *kind)
{
    if (!kind)
        return NULL;
    /* iPXE's ${platform} and dnsmasq's option-93 tags, in one vocabulary */
    if (!strcmp(kind, "pcbios") || !strcmp(kind, "bios"))
        return "bios";
    if (!strncmp(kind, "efi", 3) && strstr(kind, "http")) /* its own HTTP boot client */
        return "uefi-http";
    if (!strncmp(kind, "efi", 3))
        return "uefi";
    return NULL;
}
