/* The Talos API's etcd membership and recovery calls, with their messages' field numbers
 * as api/machine/machine.proto defines them (siderolabs/talos ad88231; the same in
 * v1.13.9):
 *
 *   EtcdRecover(stream common.Data) -> EtcdRecoverResponse   (client stream)
 *   EtcdMemberList(EtcdMemberListRequest) -> EtcdMemberListResponse
 *   EtcdRemoveMemberByID(EtcdRemoveMemberByIDRequest) -> EtcdRemoveMemberByIDResponse
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* common.Data */
enum { DATA_BYTES = 2 };
/* machine.EtcdMemberListRequest */
enum { MEMBER_LIST_QUERY_LOCAL = 1 };
/* machine.EtcdMemberListResponse: repeated EtcdMembers messages = 1 */
enum { RESPONSE_MESSAGES = 1 };
/* machine.EtcdMembers */
enum { MEMBERS_METADATA = 1, MEMBERS_MEMBERS = 3 };
/* machine.EtcdMember */
enum { MEMBER_ID = 2, MEMBER_HOSTNAME = 3, MEMBER_PEER_URLS = 4, MEMBER_IS_LEARNER = 6 };
/* machine.EtcdRemoveMemberByIDRequest */
enum { REMOVE_MEMBER_ID = 1 };

/* talosctl's chunk size (pkg/machinery/client/client.go EtcdRecover) */
#define RECOVER_CHUNK 4096
#define MAX_MEMBERS 64

/* ---- EtcdRecover ---- */

struct upload {
    int fd;
};

static int next_chunk(struct bd_buf *b, void *ud, struct bd_err *err)
{
    struct upload *u = ud;
    uint8_t buf[RECOVER_CHUNK];
    ssize_t n;
    do
        n = read(u->fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return bd_err_set(err, "reading the snapshot: %s", strerror(errno));
    if (n == 0)
        return 0;
    talos_pb_put_bytes(b, DATA_BYTES, buf, (size_t)n);
    return 1;
}

int talos_api_etcd_recover(const struct talos_node *n, int fd, int *code, struct bd_err *err)
{
    if (lseek(fd, 0, SEEK_SET) < 0) { /* every attempt sends the whole file */
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "the snapshot: %s", strerror(errno));
    }
    struct upload u = {fd};
    struct talos_grpc_call c = {
        .node = n,
        .method = TALOS_API_SERVICE "EtcdRecover",
        .stream = true,
        .on_msg = talos_api_on_items,
        .ud = "machine.EtcdRecoverResponse",
        .next_msg = next_chunk,
        .next_ud = &u,
    };
    return talos_grpc_call(&c, code, err);
}

/* ---- EtcdMemberList ---- */

struct members_ctx {
    struct talos_etcd_member *m;
    size_t n;
};

static int decode_member(const struct pb_field *f, struct talos_etcd_member *m)
{
    struct pb_reader r = talos_pb_sub(f);
    struct pb_field g;
    int rc;
    memset(m, 0, sizeof *m);
    while ((rc = talos_pb_next(&r, &g)) > 0) {
        if (g.num == MEMBER_ID && !talos_pb_is_bytes(&g))
            m->id = g.varint;
        else if (g.num == MEMBER_HOSTNAME && talos_pb_is_bytes(&g))
            talos_pb_copy_string(&g, m->hostname, sizeof m->hostname);
        else if (g.num == MEMBER_PEER_URLS && talos_pb_is_bytes(&g) && !m->peer_url[0])
            talos_pb_copy_string(&g, m->peer_url, sizeof m->peer_url);
        else if (g.num == MEMBER_IS_LEARNER && !talos_pb_is_bytes(&g))
            m->learner = g.varint != 0;
    }
    return rc;
}

static int on_members(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    struct members_ctx *x = ud;
    struct pb_reader r = {p, p + n};
    struct pb_field f, g;
    int rc = 0;
    while (rc >= 0 && (rc = talos_pb_next(&r, &f)) > 0) {
        if (f.num != RESPONSE_MESSAGES || !talos_pb_is_bytes(&f))
            continue;
        struct pb_reader item = talos_pb_sub(&f);
        while (rc >= 0 && (rc = talos_pb_next(&item, &g)) > 0) {
            if (!talos_pb_is_bytes(&g))
                continue;
            if (g.num == MEMBERS_METADATA && talos_api_check_metadata(&g, NULL, 0, err) < 0)
                return -1;
            if (g.num == MEMBERS_MEMBERS && x->n < MAX_MEMBERS)
                rc = decode_member(&g, &x->m[x->n++]);
        }
    }
    return rc < 0 ? bd_err_set(err, "malformed machine.EtcdMemberListResponse message") : 0;
}

int talos_api_etcd_members(const struct talos_node *n, bool query_local,
                           struct talos_etcd_member **out, size_t *count, int *code,
                           struct bd_err *err)
{
    struct bd_buf req;
    bd_buf_init(&req);
    talos_pb_put_bool(&req, MEMBER_LIST_QUERY_LOCAL, query_local);
    struct members_ctx x = {bd_xcalloc(MAX_MEMBERS, sizeof *x.m), 0};
    int rc = talos_api_call(n, TALOS_API_SERVICE "EtcdMemberList", &req, false, on_members, &x,
                            code, err);
    bd_buf_free(&req);
    if (rc < 0) {
        free(x.m);
        return -1;
    }
    *out = x.m;
    *count = x.n;
    return 0;
}

/* ---- EtcdRemoveMemberByID ---- */

int talos_api_etcd_remove_member(const struct talos_node *n, uint64_t id, int *code,
                                 struct bd_err *err)
{
    struct bd_buf req;
    bd_buf_init(&req);
    talos_pb_put_uint64(&req, REMOVE_MEMBER_ID, id);
    int rc = talos_api_call(n, TALOS_API_SERVICE "EtcdRemoveMemberByID", &req, false,
                            talos_api_on_items, "machine.EtcdRemoveMemberByIDResponse", code,
                            err);
    bd_buf_free(&req);
    return rc;
}
