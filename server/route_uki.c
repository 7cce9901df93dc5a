/* /uki/<arch>.efi: UEFI HTTP Boot. The firmware fetches one EFI file (HEAD for its size,
 * then GET) and runs it; bootd answers with a Unified Kernel Image made for this boot:
 * the systemd EFI stub, the cached Talos kernel and initramfs, and a command line that
 * carries the boot's config token — signed with the lab's Secure Boot key when lab.yaml
 * names one. The firmware's request names no machine, so the machine is the one whose
 * link-layer address sent it (the kernel's neighbour table), the same rule every config
 * claim follows. Nothing is written per machine: the big sections are read from the
 * cache files while the response is sent. */
#include "server.h"

#include "../boot/boot.h"
#include "../images/images.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UKI_BLOCK (64 * 1024)

static const char *const default_stub[2] = {
    "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
    "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub",
};

/* One architecture's image for one lab snapshot, built on first use. */
struct uki_image {
    pthread_mutex_t mu;
    bool built;
    char error[sizeof(struct bd_err)]; /* set when building failed */
    int kernel_fd, initrd_fd;
    struct boot_uki layout;
    struct boot_uki_sum prefix;
    struct boot_signer *signer; /* NULL: served unsigned */
    char *signer_name;
    uint64_t size; /* of every boot's image: the signature's size does not vary */
};

void server_uki_snap_init(struct lab_snap *snap)
{
    for (int a = 0; a < 2; a++) {
        struct uki_image *img = bd_xcalloc(1, sizeof *img);
        pthread_mutex_init(&img->mu, NULL);
        img->kernel_fd = img->initrd_fd = -1;
        snap->uki[a] = img;
    }
}

void server_uki_snap_free(struct lab_snap *snap)
{
    for (int a = 0; a < 2; a++) {
        struct uki_image *img = snap->uki[a];
        if (!img)
            continue;
        if (img->kernel_fd >= 0)
            close(img->kernel_fd);
        if (img->initrd_fd >= 0)
            close(img->initrd_fd);
        boot_uki_free(&img->layout);
        boot_uki_sum_free(&img->prefix);
        boot_signer_free(img->signer);
        free(img->signer_name);
        pthread_mutex_destroy(&img->mu);
        free(img);
    }
}

/* Bytes of the image at pos (into buf); 0 at the end, -1 on a read error. */
static ssize_t uki_read(const struct uki_image *img, const struct boot_uki_boot *b, uint64_t pos,
                        uint8_t *buf, size_t max)
{
    struct boot_uki_piece p;
    if (!boot_uki_piece(&img->layout, b, pos, buf, max, &p))
        return 0;
    if (p.kind == BOOT_UKI_BYTES)
        return (ssize_t)p.len;
    int fd = p.kind == BOOT_UKI_LINUX ? img->kernel_fd : img->initrd_fd;
    ssize_t n = pread(fd, buf, p.len, (off_t)p.file_off);
    return n > 0 ? n : -1;
}

static int open_cached(struct server *s, const struct lab_snap *snap, const char *name,
                       uint64_t *size, struct bd_err *err)
{
    char *rel = bd_xasprintf("%s/%s/%s", snap->schematic, snap->lab->cluster.talos_version, name);
    int fd = openat(s->assets_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        bd_err_set(err, "image cache: %s: %s", rel, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(rel);
        return -1;
    }
    free(rel);
    *size = (uint64_t)sb.st_size;
    return fd;
}

static int load_signer(const struct lab *lab, struct uki_image *img, struct bd_err *err)
{
    const struct lab_secureboot *sb = &lab->boot.secureboot;
    if (!sb->cert)
        return 0;
    char *cert = NULL, *key = NULL;
    size_t cn = 0, kn = 0;
    int rc = -1;
    if (bd_file_check_private(sb->key, err) == 0 && bd_file_read(sb->cert, &cert, &cn, err) == 0 &&
        bd_file_read(sb->key, &key, &kn, err) == 0 &&
        boot_signer_new(cert, cn, key, kn, &img->signer, err) == 0) {
        img->signer_name = boot_signer_subject(img->signer);
        rc = 0;
    }
    if (key)
        OPENSSL_cleanse(key, kn);
    free(key);
    free(cert);
    return rc;
}

static int build(struct server *s, const struct lab_snap *snap, int arch, struct uki_image *img,
                 struct bd_err *err)
{
    const char *arch_name = arch ? "arm64" : "amd64";
    const char *stub_path = snap->lab->boot.efi_stub[arch] ? snap->lab->boot.efi_stub[arch]
                                                           : default_stub[arch];
    char names[IMAGES_NFILES][IMAGES_NAME_MAX];
    images_file_names(arch_name, names);
    char *stub;
    size_t stub_len;
    uint64_t ksize, isize;
    if (bd_file_read(stub_path, &stub, &stub_len, err) < 0)
        return bd_err_prefix(err, "EFI stub for %s (boot.efi_stub.%s)", arch_name, arch_name);
    img->kernel_fd = open_cached(s, snap, names[0], &ksize, err);
    img->initrd_fd = img->kernel_fd < 0 ? -1 : open_cached(s, snap, names[1], &isize, err);
    int rc = img->initrd_fd < 0 ? -1 : boot_uki_layout(&img->layout, stub, stub_len, ksize, isize, err);
    free(stub);
    if (rc < 0)
        return rc;
    if (load_signer(snap->lab, img, err) < 0)
        return bd_err_prefix(err, "boot.secureboot");
    /* the checksum and hash of everything before .cmdline, once for every boot */
    boot_uki_sum_init(&img->prefix, img->signer != NULL);
    struct boot_uki_boot none = {.size = img->layout.cmdline_off};
    uint8_t *buf = bd_xmalloc(1 << 20);
    for (uint64_t pos = 0; pos < none.size;) {
        ssize_t n = uki_read(img, &none, pos, buf, 1 << 20);
        if (n <= 0) {
            free(buf);
            return bd_err_set(err, "image cache: reading the %s kernel or initramfs failed",
                              arch_name);
        }
        boot_uki_sum_update(&img->layout, &img->prefix, buf, (size_t)n);
        pos += (uint64_t)n;
    }
    free(buf);
    struct boot_uki_boot probe;
    if (boot_uki_finish(&img->layout, &img->prefix, "", img->signer, &probe, err) < 0)
        return -1;
    img->size = probe.size;
    boot_uki_boot_free(&probe);
    return 0;
}

/* The snapshot's image for arch, built by the first request that needs it. */
static struct uki_image *image_for(struct server *s, struct lab_snap *snap, int arch,
                                   struct bd_err *err)
{
    struct uki_image *img = snap->uki[arch];
    pthread_mutex_lock(&img->mu);
    if (!img->built) {
        int64_t t0 = bd_mono_ms();
        if (build(s, snap, arch, img, err) < 0)
            snprintf(img->error, sizeof img->error, "%s", err->msg);
        else
            bd_info("uki: %s image laid out (%llu bytes, %s) in %lld ms", arch ? "arm64" : "amd64",
                    (unsigned long long)img->size,
                    img->signer ? img->signer_name : "unsigned", (long long)(bd_mono_ms() - t0));
        img->built = true;
    }
    pthread_mutex_unlock(&img->mu);
    if (img->error[0]) {
        bd_err_set(err, "%s", img->error);
        return NULL;
    }
    return img;
}

/* ---------- the machine behind a request ---------- */

static enum MHD_Result text(struct MHD_Connection *c, struct req *r, unsigned status,
                            const char *msg)
{
    return server_reply_text(c, r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

struct uki_stream {
    struct server *s;
    struct lab_snap *snap;
    struct uki_image *img;
    struct boot_uki_boot b;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct uki_stream *st = cls;
    ssize_t n = uki_read(st->img, &st->b, pos, (uint8_t *)buf, max);
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : n;
}

static void stream_free(void *cls)
{
    struct uki_stream *st = cls;
    boot_uki_boot_free(&st->b);
    server_lab_put(st->s, st->snap);
    free(st);
}

/* Streams the image; the response owns b's allocations from here (b: the boot's part,
 * or an empty one for HEAD). */
static enum MHD_Result send_image(struct server *s, struct MHD_Connection *c, struct req *r,
                                  struct lab_snap *snap, struct uki_image *img,
                                  const struct boot_uki_boot *b, bool head)
{
    struct uki_stream *st = bd_xcalloc(1, sizeof *st);
    st->s = s;
    st->snap = snap;
    server_lab_hold(s, snap);
    st->img = img;
    st->b = *b;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(img->size, UKI_BLOCK, stream_read, st, stream_free);
    if (!resp) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/efi");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->bytes = head ? 0 : img->size;
    return server_reply(c, r, MHD_HTTP_OK, resp);
}

/* The boot is recorded (its token minted): make the image for it and send it. */
enum MHD_Result server_uki_answer(struct server *s, struct MHD_Connection *c, struct req *r,
                                  struct boot_job *j)
{
    struct lab_snap *snap = j->snap;
    char msg[sizeof(struct bd_err) + 128];
    if (j->failed)
        return text(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "bootd could not record this boot\n");
    if (!j->machine) {
        snprintf(msg, sizeof msg,
                 "%s is not in lab.yaml. Adopt it: bootctl machine adopt %s --name NAME --role worker\n",
                 j->mac, j->mac);
        return text(c, r, MHD_HTTP_NOT_FOUND, msg);
    }
    if (j->boot.installed) {
        snprintf(msg, sizeof msg,
                 "%s is installed; booting from disk (bootctl machine reinstall %s to reinstall)\n",
                 j->machine->name, j->machine->name);
        return text(c, r, MHD_HTTP_NOT_FOUND, msg);
    }
    int arch = !strcmp(j->buildarch, "arm64");
    const char *arch_name = arch ? "arm64" : "amd64";
    if (j->image_missing) {
        server_image_hold(s, snap, arch_name, j->mac, msg, sizeof msg - 1);
        strcat(msg, "\n");
        return text(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    struct bd_err err;
    struct uki_image *img = image_for(s, snap, arch, &err);
    if (!img) {
        state_event_note(s->store, j->mac, "http", "error", err.msg);
        return text(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                    "bootd cannot build this image; see bootctl events\n");
    }
    char *config_url = bd_xasprintf("%s/config/%s", snap->base_url, j->boot.token);
    struct bd_buf args;
    bd_buf_init(&args);
    /* the same command line iPXE passes, without initrd=: the stub hands the kernel
     * its .initrd itself */
    server_boot_kernel_args(s, snap, j->machine, arch_name, NULL, config_url, &args);
    struct boot_uki_boot b;
    int rc = boot_uki_finish(&img->layout, &img->prefix, args.data, img->signer, &b, &err);
    if (rc == 0 && b.size != img->size) {
        boot_uki_boot_free(&b);
        rc = bd_err_set(&err, "UKI: the signature's size changed between boots");
    }
    bd_buf_free(&args);
    free(config_url);
    if (rc < 0) {
        state_event_note(s->store, j->mac, "http", "error", err.msg);
        return text(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                    "bootd cannot build this image; see bootctl events\n");
    }
    snprintf(r->uki_mac, sizeof r->uki_mac, "%s", j->mac);
    snprintf(r->uki_token, sizeof r->uki_token, "%s", j->boot.token);
    server_bootwatch_answer(s, j->mac, j->boot.token, img->signer ? img->signer_name : NULL);
    return send_image(s, c, r, snap, img, &b, false);
}

/* The machine behind a request: the neighbour table's MAC for its address, else (full
 * DHCP mode) the machine that address is reserved for. */
static bool identify(const struct lab *lab, uint32_t addr, char mac[18])
{
    struct bd_mac seen;
    if (server_neigh_lookup(addr, lab->lan.interface, &seen)) {
        bd_mac_format(&seen, mac);
        return true;
    }
    if (lab->lan.dhcp != LAB_DHCP_FULL)
        return false;
    for (size_t i = 0; i < lab->nmachines; i++)
        if (lab->machines[i].has_ip && lab->machines[i].ip == addr) {
            bd_mac_format(&lab->machines[i].mac, mac);
            return true;
        }
    return false;
}

enum MHD_Result server_route_uki(struct server *s, struct MHD_Connection *c, struct req *r,
                                 const char *file, const char *method)
{
    if (r->job)
        return server_boot_finish(s, c, r); /* resumed by the boot writer */
    int arch;
    if (!strcmp(file, "amd64.efi"))
        arch = 0;
    else if (!strcmp(file, "arm64.efi"))
        arch = 1;
    else
        return text(c, r, MHD_HTTP_NOT_FOUND, "no such image (amd64.efi, arm64.efi)\n");
    struct boot_job *j = bd_xcalloc(1, sizeof *j);
    uint32_t addr = server_client_ipv4(c);
    bd_ipv4_format(addr, j->ip);
    j->snap = server_lab(s);
    if (!identify(j->snap->lab, addr, j->mac)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "%s is not a neighbour on the lab LAN nor a reserved address; bootd cannot tell "
                 "which machine it is\n",
                 j->ip);
        server_boot_job_free(s, j);
        return text(c, r, MHD_HTTP_FORBIDDEN, msg);
    }
    snprintf(j->buildarch, sizeof j->buildarch, "%s", arch ? "arm64" : "x86_64");
    snprintf(j->platform, sizeof j->platform, "efi-http");
    j->uki = true;
    struct bd_mac mac;
    bd_mac_parse(j->mac, &mac);
    j->machine = lab_machine_by_mac(j->snap->lab, &mac);
    struct uki_image *img = NULL;
    if (j->machine) {
        server_bootwatch_again(s, j->mac, SERVER_BOOT_FAILED_BOOT_AGAIN,
                               "asked for its UKI again");
        char msg[256];
        if (server_boot_refuse(s, j, msg, sizeof msg - 1)) {
            strcat(msg, "\n");
            server_boot_job_free(s, j);
            return text(c, r, MHD_HTTP_FORBIDDEN, msg);
        }
        j->image_missing = !j->snap->image_ready[arch];
        struct bd_err err;
        /* built before the boot is recorded: a lab that cannot make its image mints no
         * token */
        if (!j->image_missing && !(img = image_for(s, j->snap, arch, &err))) {
            state_event_note(s->store, j->mac, "http", "error", err.msg);
            server_boot_job_free(s, j);
            return text(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "bootd cannot build this image; see bootctl events\n");
        }
    }
    if (!strcmp(method, "HEAD")) {
        /* the firmware asks for the size first: no boot yet, so no token */
        enum MHD_Result rc;
        if (img) {
            struct boot_uki_boot none = {.size = img->size};
            rc = send_image(s, c, r, j->snap, img, &none, true);
        } else {
            rc = server_uki_answer(s, c, r, j); /* the refusal GET would get */
        }
        server_boot_job_free(s, j);
        return rc;
    }
    if (j->machine) {
        char what[200];
        snprintf(what, sizeof what, "UKI (%s) served",
                 img ? (img->signer ? img->signer_name : "unsigned") : "none yet");
        server_boot_describe(c, j, what);
    }
    return server_boot_submit(s, c, r, j);
}

/* GET /api/v1/machines/NAME/uki (admin): the image bootd would serve the machine, for a
 * USB stick or a check with sbverify. Without ?config=token its command line has no
 * talos.config= (Talos starts in maintenance mode) and nothing is recorded; with it, the
 * download is a boot of the machine: a fresh token, bound and claim-checked as every
 * other, superseding the one before (docs/boot-paths.md says what that risks). */
enum MHD_Result server_uki_download(struct server *s, struct MHD_Connection *c, struct req *r,
                                    const char *name)
{
    const char *arch_q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "arch");
    const char *config_q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "config");
    bool with_token = config_q && !strcmp(config_q, "token");
    if (config_q && !with_token && strcmp(config_q, "none"))
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST,
                                       "config: \"token\" or \"none\"");
    struct lab_snap *snap = server_lab(s);
    const struct lab_machine *m = lab_machine_by_name(snap->lab, name);
    enum MHD_Result rc;
    int arch = m && m->has_arch ? m->arch == LAB_ARCH_ARM64 : 0;
    if (arch_q)
        arch = !strcmp(arch_q, "arm64") ? 1 : !strcmp(arch_q, "amd64") ? 0 : -1;
    struct bd_err err;
    struct uki_image *img = NULL;
    if (!m) {
        rc = server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s is not in lab.yaml", name);
    } else if (arch < 0) {
        rc = server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "arch: amd64 or arm64");
    } else if (m->has_arch && (m->arch == LAB_ARCH_ARM64) != arch) {
        rc = server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "lab.yaml says arch %s for %s",
                                     arch ? "amd64" : "arm64", name);
    } else if (!snap->image_ready[arch]) {
        rc = server_reply_error_json(c, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                     "the Talos %s %s image is not in the cache (bootctl image "
                                     "pull)",
                                     snap->lab->cluster.talos_version, arch ? "arm64" : "amd64");
    } else if (!(img = image_for(s, snap, arch, &err))) {
        rc = server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
    } else {
        const char *arch_name = arch ? "arm64" : "amd64";
        char mac[18], msg[200];
        bd_mac_format(&m->mac, mac);
        struct state_boot boot = {.mac = mac, .name = m->name,
                                  .seen = {.arch = arch ? "arm64" : "x86_64"}};
        char *config_url = NULL;
        int ok = 0;
        if (with_token) {
            server_boot_token_binding(snap->lab, m, &boot.bind);
            char bound[16];
            bd_ipv4_format(boot.bind.addr, bound);
            snprintf(msg, sizeof msg,
                     "UKI (%s) downloaded through the admin API with a config token bound to "
                     "%s/%d",
                     img->signer ? img->signer_name : "unsigned", bound, boot.bind.prefix);
            boot.message = msg;
            ok = state_boot_batch(s->store, &boot, 1, &err);
            if (ok == 0 && !boot.token[0])
                ok = bd_err_set(&err, "%s is installed: bootctl machine reinstall %s first",
                                name, name);
            if (ok == 0)
                config_url = bd_xasprintf("%s/config/%s", snap->base_url, boot.token);
        }
        struct bd_buf args;
        bd_buf_init(&args);
        struct boot_uki_boot b;
        if (ok == 0) {
            server_boot_kernel_args(s, snap, m, arch_name, NULL, config_url, &args);
            ok = boot_uki_finish(&img->layout, &img->prefix, args.data, img->signer, &b, &err);
            if (ok == 0 && b.size != img->size) {
                boot_uki_boot_free(&b);
                ok = bd_err_set(&err, "UKI: the signature's size changed between boots");
            }
        }
        bd_buf_free(&args);
        free(config_url);
        if (ok < 0) {
            rc = server_reply_error_json(c, r, boot.installed ? MHD_HTTP_CONFLICT
                                                              : MHD_HTTP_INTERNAL_SERVER_ERROR,
                                         "%s", err.msg);
        } else {
            rc = send_image(s, c, r, snap, img, &b, false);
        }
    }
    server_lab_put(s, snap);
    return rc;
}
