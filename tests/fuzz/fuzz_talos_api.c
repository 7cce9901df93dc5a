/* What a machine's Talos API sends back: protobuf messages (walked field by field, into
 * every embedded message) and the kubeconfig's gzipped tar. First byte: which. */
#include "fuzz.h"
#include "../../talos/internal.h"

static void walk(struct pb_reader r, int depth)
{
    struct pb_field f;
    char s[64];
    while (talos_pb_next(&r, &f) == 1) {
        if (talos_pb_is_bytes(&f)) {
            talos_pb_copy_string(&f, s, sizeof s);
            if (depth < 8)
                walk(talos_pb_sub(&f), depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    if (data[0] & 1) {
        walk((struct pb_reader){data + 1, data + size}, 0);
    } else {
        char *out;
        size_t len;
        struct bd_err err;
        if (talos_targz_entry(data + 1, size - 1, "kubeconfig", 1 << 20, &out, &len, &err) == 0)
            free(out);
    }
    return 0;
}
