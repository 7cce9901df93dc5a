/* One file out of a gzipped tar, as the Kubeconfig call returns it: Talos writes the
 * tar header and the file, closes the gzip stream but never the tar writer, so there is
 * no padding after the file and no end-of-archive blocks (machined's Kubeconfig in
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go). Headers are
 * POSIX ustar (pax and GNU long-name records before the entry are skipped). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BLOCK 512
/* headers, pax records and tar's 10 KiB record blocking around the file */
#define ARCHIVE_SLACK (64u << 10)

static int gunzip(const void *gz, size_t n, size_t max, struct bd_buf *out, struct bd_err *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper */
        return bd_err_set(err, "cannot start zlib");
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)n;
    int rc;
    do {
        char chunk[16384];
        z.next_out = (Bytef *)chunk;
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END)
            break;
        bd_buf_append(out, chunk, sizeof chunk - z.avail_out);
        if (out->len > max) {
            inflateEnd(&z);
            return bd_err_set(err, "the archive unpacks to more than %zu bytes", max);
        }
    } while (rc != Z_STREAM_END);
    inflateEnd(&z);
    if (rc != Z_STREAM_END)
        return bd_err_set(err, "the archive is not complete gzip data (%s)",
                          rc == Z_BUF_ERROR ? "it ends early" : (z.msg ? z.msg : "zlib error"));
    return 0;
}

static bool octal(const char *f, size_t n, uint64_t *v)
{
    *v = 0;
    size_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    bool digits = false;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits = true)
        *v = *v * 8 + (uint64_t)(f[i] - '0');
    return digits && (i == n || f[i] == ' ' || f[i] == 0);
}

static bool checksum_ok(const unsigned char *h)
{
    uint64_t want;
    if (!octal((const char *)h + 148, 8, &want))
        return false;
    uint64_t sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == want;
}

static bool all_zero(const unsigned char *b)
{
    for (size_t i = 0; i < BLOCK; i++)
        if (b[i])
            return false;
    return true;
}

/* The entry's path: ustar keeps a prefix apart from the name. */
static void entry_name(const unsigned char *h, char out[257])
{
    char name[101], prefix[156];
    snprintf(name, sizeof name, "%.100s", (const char *)h);
    bool ustar = !memcmp(h + 257, "ustar", 5);
    snprintf(prefix, sizeof prefix, "%.155s", ustar ? (const char *)h + 345 : "");
    snprintf(out, 257, "%s%s%s", prefix, prefix[0] ? "/" : "", name);
}

int talos_targz_entry(const void *gz, size_t n, const char *want, size_t max, char **out, size_t *len,
                struct bd_err *err)
{
    struct bd_buf tar;
    bd_buf_init(&tar);
    if (gunzip(gz, n, max + ARCHIVE_SLACK, &tar, err) < 0) {
        bd_buf_free(&tar);
        return -1;
    }
    const unsigned char *t = (const unsigned char *)tar.data;
    size_t off = 0;
    int rc = -1;
    bd_err_set(err, "the archive has no entry \"%s\"", want);
    while (off + BLOCK <= tar.len && !all_zero(t + off)) {
        const unsigned char *h = t + off;
        uint64_t size;
        if (!checksum_ok(h) || !octal((const char *)h + 124, 12, &size)) {
            bd_err_set(err, "the archive has a damaged tar header at byte %zu", off);
            break;
        }
        char name[257];
        entry_name(h, name);
        char type = (char)h[156];
        size_t data = off + BLOCK;
        if (size > tar.len - data) {
            bd_err_set(err, "the archive ends inside \"%s\" (%llu bytes announced, %zu there)", name,
                       (unsigned long long)size, tar.len - data);
            break;
        }
        if ((type == '0' || type == 0) && !strcmp(name, want)) {
            if (size > max) {
                bd_err_set(err, "\"%s\" is over %zu bytes", want, max);
                break;
            }
            *out = bd_xstrndup(tar.data + data, (size_t)size);
            *len = (size_t)size;
            rc = 0;
            break;
        }
        off = data + (size_t)((size + BLOCK - 1) / BLOCK * BLOCK);
    }
    bd_buf_free(&tar);
    return rc;
}
