/* The Protocol Buffers wire format, as far as bootd's Talos API calls need it: reading
 * the fields of a message one by one (unknown fields are skipped, so newer Talos
 * releases that add fields still decode) and writing varint fields. Field numbers live
 * with the messages in api.c. */
#include "internal.h"

#include <string.h>

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static int read_varint(struct pb_reader *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return -1;
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1; /* more than ten bytes */
}

int talos_pb_next(struct pb_reader *r, struct pb_field *f)
{
    if (r->p == r->end)
        return 0;
    uint64_t key;
    if (read_varint(r, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return -1;
    memset(f, 0, sizeof *f);
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    size_t fixed;
    switch (f->wire) {
    case WIRE_VARINT:
        return read_varint(r, &f->varint) < 0 ? -1 : 1;
    case WIRE_LEN: {
        uint64_t len;
        if (read_varint(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
            return -1;
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    }
    case WIRE_I64:
        fixed = 8;
        break;
    case WIRE_I32:
        fixed = 4;
        break;
    default: /* groups (3, 4) are gone from proto3; anything else is not protobuf */
        return -1;
    }
    if ((size_t)(r->end - r->p) < fixed)
        return -1;
    f->data = r->p;
    f->len = fixed;
    r->p += fixed;
    return 1;
}

struct pb_reader talos_pb_sub(const struct pb_field *f)
{
    struct pb_reader r = {f->data, f->data + f->len};
    return r;
}

bool talos_pb_is_bytes(const struct pb_field *f)
{
    return f->wire == WIRE_LEN;
}

void talos_pb_copy_string(const struct pb_field *f, char *out, size_t n)
{
    size_t len = f->len < n - 1 ? f->len : n - 1;
    memcpy(out, f->data, len);
    out[len] = 0;
}

static void put_varint(struct bd_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    bd_buf_append(b, tmp, n);
}

void talos_pb_put_bool(struct bd_buf *b, uint32_t num, bool v)
{
    if (!v)
        return; /* proto3 leaves default values out */
    put_varint(b, (uint64_t)num << 3); /* wire type 0: varint */
    put_varint(b, 1);
}
