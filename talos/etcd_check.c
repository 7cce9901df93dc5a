/* Checking an etcd snapshot as it streams past. etcd's Maintenance.Snapshot sends the
 * bbolt database (a whole number of pages) followed by the SHA-256 of it
 * (server/etcdserver/api/v3rpc/maintenance.go); `etcdutl snapshot restore` and
 * `talosctl etcd snapshot` look for that trailer (size % 512 == 32) and compare. So the
 * last 32 bytes seen are held back from the digest until the stream ends. */
#include "internal.h"

#include <mbedtls/sha256.h>
#include <stdlib.h>
#include <string.h>

#define TRAILER 32

struct talos_etcd_check {
    mbedtls_sha256_context body;  /* everything but the trailer */
    mbedtls_sha256_context whole; /* the file as written */
    uint8_t tail[TRAILER];        /* the last bytes seen */
    size_t ntail;
    uint64_t size;
};

struct talos_etcd_check *talos_etcd_check_new(void)
{
    struct talos_etcd_check *c = bd_xcalloc(1, sizeof *c);
    mbedtls_sha256_init(&c->body);
    mbedtls_sha256_init(&c->whole);
    mbedtls_sha256_starts_ret(&c->body, 0);
    mbedtls_sha256_starts_ret(&c->whole, 0);
    return c;
}

void talos_etcd_check_update(struct talos_etcd_check *c, const void *data, size_t n)
{
    const uint8_t *p = data;
    mbedtls_sha256_update_ret(&c->whole, p, n);
    c->size += n;
    if (n >= TRAILER) {
        /* the held-back bytes and all but the new tail go into the digest */
        mbedtls_sha256_update_ret(&c->body, c->tail, c->ntail);
        mbedtls_sha256_update_ret(&c->body, p, n - TRAILER);
        memcpy(c->tail, p + n - TRAILER, TRAILER);
        c->ntail = TRAILER;
        return;
    }
    size_t spill = c->ntail + n > TRAILER ? c->ntail + n - TRAILER : 0;
    mbedtls_sha256_update_ret(&c->body, c->tail, spill);
    memmove(c->tail, c->tail + spill, c->ntail - spill);
    memcpy(c->tail + c->ntail - spill, p, n);
    c->ntail = c->ntail - spill + n;
}

int talos_etcd_check_finish(struct talos_etcd_check *c, struct talos_snapshot_info *info,
                            struct bd_err *err)
{
    uint8_t body[32], whole[32];
    mbedtls_sha256_finish_ret(&c->body, body);
    mbedtls_sha256_finish_ret(&c->whole, whole);
    info->size = c->size;
    bd_hex(whole, sizeof whole, info->sha256);
    if (c->size % 512 != TRAILER)
        return bd_err_set(err,
                          "the etcd snapshot (%llu bytes) has no SHA-256 trailer: it is incomplete "
                          "or not an etcd snapshot",
                          (unsigned long long)c->size);
    if (memcmp(body, c->tail, TRAILER))
        return bd_err_set(err, "the etcd snapshot (%llu bytes) does not match its own SHA-256: it "
                               "was corrupted on the way",
                          (unsigned long long)c->size);
    return 0;
}

void talos_etcd_check_free(struct talos_etcd_check *c)
{
    if (!c)
        return;
    mbedtls_sha256_free(&c->body);
    mbedtls_sha256_free(&c->whole);
    free(c);
}
