/* What a machine's Talos API (or whatever answers on its port) sends back to a gRPC call:
 * header and trailer lines, then the DATA stream cut into gRPC's length-prefixed messages,
 * in pieces of the sizes libcurl may hand over. The input is header lines up to an empty
 * line, then one byte for the piece size, then the stream. Each message is walked as a
 * protobuf, as the calls' decoders do. */
#include "fuzz.h"
#include "../../talos/internal.h"

static void walk(struct pb_reader r, int depth)
{
    struct pb_field f;
    char s[64];
    while (talos_pb_next(&r, &f) == 1)
        if (talos_pb_is_bytes(&f)) {
            talos_pb_copy_string(&f, s, sizeof s);
            if (depth < 4)
                walk(talos_pb_sub(&f), depth + 1);
        }
}

static int on_msg(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    (void)err;
    ++*(size_t *)ud;
    walk((struct pb_reader){p, p + n}, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size, *p = data;
    struct talos_grpc_answer a;
    talos_grpc_answer_init(&a);
    /* header lines as libcurl hands them over: each with its CRLF */
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        talos_grpc_header(&a, (const char *)p, n);
        p += n;
        if (n <= 2)
            break; /* the blank line after the headers */
    }
    if (a.grpc_status < -1 || a.grpc_status >= 1000 || strlen(a.grpc_message) >= sizeof a.grpc_message)
        abort();
    size_t step = p < end ? (size_t)*p++ + 1 : 1, msgs = 0;
    struct bd_err err;
    while (p < end) {
        size_t n = (size_t)(end - p) < step ? (size_t)(end - p) : step;
        if (talos_grpc_data(&a, p, n, on_msg, &msgs, &err) < 0)
            break;
        p += n;
    }
    bd_buf_free(&a.pending);
    return 0;
}
