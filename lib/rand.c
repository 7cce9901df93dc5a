/* Randomness, hex and hashing. */
#include "bd.h"

#include <errno.h>
#include <mbedtls/sha256.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int bd_random(void *buf, size_t n, struct bd_err *err)
{
    char *p = buf;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return bd_err_set(err, "getrandom: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void bd_hex(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

void bd_sha256(const void *data, size_t n, uint8_t out[32])
{
    mbedtls_sha256_ret(data, n, out, 0);
}

void bd_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t d[32];
    bd_sha256(data, n, d);
    bd_hex(d, 32, out);
}

bool bd_secret_equal(const char *a, const char *b)
{
    /* Comparing digests keeps the time independent of where the strings differ and
     * of the expected secret's length. */
    uint8_t da[32], db[32];
    bd_sha256(a, strlen(a), da);
    bd_sha256(b, strlen(b), db);
    volatile uint8_t diff = 0;
    for (int i = 0; i < 32; i++)
        diff |= da[i] ^ db[i];
    return diff == 0;
}
