/* What a Talos API answer carries besides its messages, read from the HTTP/2 stream as
 * libcurl hands it over: gRPC's length-prefixed framing (grpc/grpc
 * doc/PROTOCOL-HTTP2.md) and the grpc-status / grpc-message trailers. Everything here
 * comes from the machine: nothing it sends may read or write out of bounds. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* grpc-go's default receive limit is 4 MiB; Talos streams chunks of a few KiB. */
#define GRPC_MAX_MESSAGE (16u << 20)

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* grpc-message is percent-encoded. */
static void percent_decode(const char *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        int hi, lo;
        if (v[i] == '%' && i + 2 < n && (hi = hexval(v[i + 1])) >= 0 && (lo = hexval(v[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = v[i];
        }
    }
    out[o] = 0;
}

void talos_grpc_answer_init(struct talos_grpc_answer *a)
{
    memset(a, 0, sizeof *a);
    bd_buf_init(&a->pending);
    a->grpc_status = -1;
}

void talos_grpc_header(struct talos_grpc_answer *x, const char *p, size_t len)
{
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return; /* the status line or the blank line after a header block */
    size_t klen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (klen == 11 && !strncasecmp(p, "grpc-status", 11)) {
        char num[12];
        size_t m = vlen < sizeof num - 1 ? vlen : sizeof num - 1;
        memcpy(num, v, m);
        num[m] = 0;
        char *end;
        long s = strtol(num, &end, 10);
        x->grpc_status = (end != num && *end == 0 && s >= 0 && s < 1000) ? (int)s : 2 /* Unknown */;
    } else if (klen == 12 && !strncasecmp(p, "grpc-message", 12)) {
        percent_decode(v, vlen, x->grpc_message, sizeof x->grpc_message);
    } else if (klen == 12 && !strncasecmp(p, "content-type", 12)) {
        snprintf(x->content_type, sizeof x->content_type, "%.*s", (int)vlen, v);
    }
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int talos_grpc_data(struct talos_grpc_answer *x, const void *p, size_t n,
                    int (*on_msg)(const uint8_t *, size_t, void *, struct bd_err *), void *ud,
                    struct bd_err *err)
{
    bd_buf_append(&x->pending, p, n);
    const uint8_t *b = (const uint8_t *)x->pending.data;
    size_t off = 0, len = x->pending.len;
    while (len - off >= 5) {
        uint32_t mlen = be32(b + off + 1);
        if (b[off] & 1) {
            bd_err_set(err, "a compressed message arrived, though bootd asks for none");
            return -1;
        }
        if (mlen > GRPC_MAX_MESSAGE) {
            bd_err_set(err, "a message of %u bytes is over bootd's limit of %u", mlen,
                       GRPC_MAX_MESSAGE);
            return -1;
        }
        if (len - off - 5 < mlen)
            break;
        if (on_msg(b + off + 5, mlen, ud, err) < 0)
            return -1;
        off += 5 + (size_t)mlen;
    }
    memmove(x->pending.data, x->pending.data + off, len - off);
    x->pending.len = len - off;
    return 0;
}
