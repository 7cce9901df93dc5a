/* Shared by the libFuzzer harnesses: each fuzz_*.c is one target for an input bootd takes
 * from outside (the lab's files, the LAN, a machine's API, the Kubernetes API). Built by
 * `make fuzz` with clang; `make test` runs every corpus file once under ASan+UBSan. */
#ifndef FUZZ_H
#define FUZZ_H
#include "../../lib/bd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input as a C string (caller frees): most parsers take text. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
