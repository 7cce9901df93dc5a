/* Growable buffers and allocation helpers. */
#include "bd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    bd_fatal("out of memory allocating %zu bytes", n);
}

void bd_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bootd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *bd_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *bd_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        oom(n * sz);
    return p;
}

void *bd_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *bd_xstrdup(const char *s)
{
    return bd_xstrndup(s, strlen(s));
}

char *bd_xstrndup(const char *s, size_t n)
{
    char *p = bd_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *bd_xasprintf(const char *fmt, ...)
{
    struct bd_buf b;
    bd_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    bd_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return bd_buf_steal(&b);
}

void bd_buf_init(struct bd_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void bd_buf_free(struct bd_buf *b)
{
    free(b->data);
    bd_buf_init(b);
}

void bd_buf_reset(struct bd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

static void reserve(struct bd_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = bd_xrealloc(b->data, cap);
    b->cap = cap;
}

void bd_buf_append(struct bd_buf *b, const void *p, size_t n)
{
    reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void bd_buf_puts(struct bd_buf *b, const char *s)
{
    bd_buf_append(b, s, strlen(s));
}

void bd_buf_vprintf(struct bd_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    reserve(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    if (n > 0)
        b->len += (size_t)n;
}

void bd_buf_printf(struct bd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bd_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *bd_buf_steal(struct bd_buf *b)
{
    if (!b->data)
        return bd_xstrdup("");
    char *p = b->data;
    bd_buf_init(b);
    return p;
}
