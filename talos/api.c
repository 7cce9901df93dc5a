/* The Talos API methods bootd calls, with their messages' field numbers as
 * api/machine/machine.proto and api/common/common.proto define them (Talos v1.13.9):
 *
 *   Version(google.protobuf.Empty) -> VersionResponse
 *   Bootstrap(BootstrapRequest) -> BootstrapResponse
 *   Kubeconfig(google.protobuf.Empty) -> stream common.Data
 *   EtcdSnapshot(EtcdSnapshotRequest) -> stream common.Data
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVICE "/machine.MachineService/"

/* common.Metadata */
enum { METADATA_HOSTNAME = 1, METADATA_ERROR = 2, METADATA_STATUS = 3 };
/* google.rpc.Status */
enum { STATUS_CODE = 1, STATUS_MESSAGE = 2 };
/* machine.VersionResponse / BootstrapResponse: repeated messages = 1 */
enum { RESPONSE_MESSAGES = 1 };
/* machine.Version */
enum { VERSION_METADATA = 1, VERSION_VERSION = 2, VERSION_PLATFORM = 3 };
/* machine.VersionInfo */
enum { INFO_TAG = 1, INFO_SHA = 2, INFO_ARCH = 6 };
/* machine.PlatformInfo */
enum { PLATFORM_NAME = 1, PLATFORM_MODE = 2 };
/* machine.Bootstrap */
enum { BOOTSTRAP_METADATA = 1 };
/* machine.BootstrapRequest */
enum { BOOTSTRAP_RECOVER_ETCD = 1, BOOTSTRAP_RECOVER_SKIP_HASH_CHECK = 2 };
/* common.Data */
enum { DATA_METADATA = 1, DATA_BYTES = 2 };

#define KUBECONFIG_MAX (1u << 20)

static int malformed(struct bd_err *err, const char *what)
{
    return bd_err_set(err, "malformed %s message", what);
}

/* A response item's common.Metadata: apid puts an upstream failure here instead of
 * failing the call (a relic of multi-node proxying, still honoured). */
static int check_metadata(const struct pb_field *md, char *hostname, size_t hn, struct bd_err *err)
{
    struct pb_reader r = talos_pb_sub(md);
    struct pb_field f;
    char error[512] = "", status[512] = "";
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0) {
        if (f.num == METADATA_HOSTNAME && talos_pb_is_bytes(&f) && hostname)
            talos_pb_copy_string(&f, hostname, hn);
        else if (f.num == METADATA_ERROR && talos_pb_is_bytes(&f))
            talos_pb_copy_string(&f, error, sizeof error);
        else if (f.num == METADATA_STATUS && talos_pb_is_bytes(&f)) {
            struct pb_reader sr = talos_pb_sub(&f);
            struct pb_field sf;
            while (talos_pb_next(&sr, &sf) > 0)
                if (sf.num == STATUS_MESSAGE && talos_pb_is_bytes(&sf))
                    talos_pb_copy_string(&sf, status, sizeof status);
        }
    }
    if (rc < 0)
        return malformed(err, "common.Metadata");
    if (error[0] || status[0])
        return bd_err_set(err, "the node reports: %s", error[0] ? error : status);
    return 0;
}

static int call(const struct talos_node *n, const char *method, const struct bd_buf *req,
                bool stream, int (*on_msg)(const uint8_t *, size_t, void *, struct bd_err *),
                void *ud, int *code, struct bd_err *err)
{
    struct talos_grpc_call c = {
        .node = n, .method = method, .req = req, .stream = stream, .on_msg = on_msg, .ud = ud,
    };
    return talos_grpc_call(&c, code, err);
}

/* ---- Version ---- */

struct version_ctx {
    struct talos_version *v;
    bool seen;
};

/* The string fields of an embedded message that bootd keeps. */
struct str_field {
    uint32_t num;
    char *dst;
    size_t size;
};

static void read_strings(const struct pb_field *msg, const struct str_field *want, size_t n)
{
    struct pb_reader r = talos_pb_sub(msg);
    struct pb_field g;
    while (talos_pb_next(&r, &g) > 0)
        for (size_t i = 0; i < n; i++)
            if (g.num == want[i].num && talos_pb_is_bytes(&g))
                talos_pb_copy_string(&g, want[i].dst, want[i].size);
}

static int decode_version(const struct pb_field *item, struct talos_version *v, struct bd_err *err)
{
    const struct str_field info[] = {{INFO_TAG, v->tag, sizeof v->tag},
                                     {INFO_SHA, v->sha, sizeof v->sha},
                                     {INFO_ARCH, v->arch, sizeof v->arch}};
    const struct str_field platform[] = {{PLATFORM_NAME, v->platform, sizeof v->platform},
                                         {PLATFORM_MODE, v->mode, sizeof v->mode}};
    struct pb_reader r = talos_pb_sub(item);
    struct pb_field f;
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0) {
        if (!talos_pb_is_bytes(&f))
            continue;
        if (f.num == VERSION_METADATA && check_metadata(&f, v->hostname, sizeof v->hostname, err) < 0)
            return -1;
        if (f.num == VERSION_VERSION)
            read_strings(&f, info, 3);
        if (f.num == VERSION_PLATFORM)
            read_strings(&f, platform, 2);
    }
    return rc < 0 ? malformed(err, "machine.Version") : 0;
}

static int on_version(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    struct version_ctx *x = ud;
    struct pb_reader r = {p, p + n};
    struct pb_field f;
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0)
        if (f.num == RESPONSE_MESSAGES && talos_pb_is_bytes(&f) && !x->seen) {
            x->seen = true; /* one node answers: one item */
            if (decode_version(&f, x->v, err) < 0)
                return -1;
        }
    return rc < 0 ? malformed(err, "machine.VersionResponse") : 0;
}

int talos_api_version(const struct talos_node *n, struct talos_version *out, int *code,
                      struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    struct bd_buf empty; /* google.protobuf.Empty */
    bd_buf_init(&empty);
    struct version_ctx x = {.v = out};
    int rc = call(n, SERVICE "Version", &empty, false, on_version, &x, code, err);
    bd_buf_free(&empty);
    if (rc == 0 && !x.seen) {
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "Talos API %s:%d: Version: the answer holds no version", n->host,
                          n->port);
    }
    return rc;
}

/* ---- Bootstrap ---- */

static int on_bootstrap(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    (void)ud;
    struct pb_reader r = {p, p + n};
    struct pb_field f, g;
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0) {
        if (f.num != RESPONSE_MESSAGES || !talos_pb_is_bytes(&f))
            continue;
        struct pb_reader item = talos_pb_sub(&f);
        while (talos_pb_next(&item, &g) > 0)
            if (g.num == BOOTSTRAP_METADATA && talos_pb_is_bytes(&g) &&
                check_metadata(&g, NULL, 0, err) < 0)
                return -1;
    }
    return rc < 0 ? malformed(err, "machine.BootstrapResponse") : 0;
}

int talos_api_bootstrap(const struct talos_node *n, int *code, struct bd_err *err)
{
    struct bd_buf req; /* a first bootstrap, not a recovery: both flags false */
    bd_buf_init(&req);
    talos_pb_put_bool(&req, BOOTSTRAP_RECOVER_ETCD, false);
    talos_pb_put_bool(&req, BOOTSTRAP_RECOVER_SKIP_HASH_CHECK, false);
    int rc = call(n, SERVICE "Bootstrap", &req, false, on_bootstrap, NULL, code, err);
    bd_buf_free(&req);
    return rc;
}

/* ---- streams of common.Data ---- */

struct data_ctx {
    int (*on_bytes)(const uint8_t *p, size_t n, void *ud, struct bd_err *err);
    void *ud;
};

static int on_data(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    struct data_ctx *x = ud;
    struct pb_reader r = {p, p + n};
    struct pb_field f;
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0) {
        if (!talos_pb_is_bytes(&f))
            continue;
        if (f.num == DATA_METADATA && check_metadata(&f, NULL, 0, err) < 0)
            return -1;
        if (f.num == DATA_BYTES && f.len && x->on_bytes(f.data, f.len, x->ud, err) < 0)
            return -1;
    }
    return rc < 0 ? malformed(err, "common.Data") : 0;
}

static int data_stream(const struct talos_node *n, const char *method,
                       int (*on_bytes)(const uint8_t *, size_t, void *, struct bd_err *), void *ud,
                       int *code, struct bd_err *err)
{
    struct bd_buf empty; /* Empty and EtcdSnapshotRequest have no fields */
    bd_buf_init(&empty);
    struct data_ctx x = {on_bytes, ud};
    int rc = call(n, method, &empty, true, on_data, &x, code, err);
    bd_buf_free(&empty);
    return rc;
}

/* ---- Kubeconfig ---- */

static int collect(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    struct bd_buf *b = ud;
    if (b->len + n > KUBECONFIG_MAX)
        return bd_err_set(err, "the kubeconfig archive is over %u bytes", KUBECONFIG_MAX);
    bd_buf_append(b, p, n);
    return 0;
}

int talos_api_kubeconfig(const struct talos_node *n, char **out, size_t *len, int *code,
                         struct bd_err *err)
{
    struct bd_buf gz;
    bd_buf_init(&gz);
    int rc = data_stream(n, SERVICE "Kubeconfig", collect, &gz, code, err);
    if (rc == 0 && talos_targz_entry(gz.data, gz.len, "kubeconfig", KUBECONFIG_MAX, out, len, err) < 0) {
        *code = TALOS_CALL_FAILED;
        rc = bd_err_prefix(err, "Talos API %s:%d: Kubeconfig", n->host, n->port);
    }
    bd_buf_free(&gz);
    return rc;
}

/* ---- EtcdSnapshot ---- */

struct snapshot_ctx {
    int fd;
    struct talos_etcd_check *check;
};

static int write_chunk(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    struct snapshot_ctx *x = ud;
    talos_etcd_check_update(x->check, p, n);
    while (n) {
        ssize_t w = write(x->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return bd_err_set(err, "writing the snapshot: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int talos_api_etcd_snapshot(const struct talos_node *n, int fd, struct talos_snapshot_info *info,
                            int *code, struct bd_err *err)
{
    struct snapshot_ctx x = {.fd = fd, .check = talos_etcd_check_new()};
    int rc = data_stream(n, SERVICE "EtcdSnapshot", write_chunk, &x, code, err);
    if (rc == 0 && talos_etcd_check_finish(x.check, info, err) < 0) {
        *code = TALOS_CALL_FAILED;
        rc = bd_err_prefix(err, "Talos API %s:%d: EtcdSnapshot", n->host, n->port);
    }
    talos_etcd_check_free(x.check);
    return rc;
}
