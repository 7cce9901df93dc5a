/* Bump allocator for the lab model: one lab's strings and arrays live and die together. */
#include "bd.h"

#include <stdlib.h>
#include <string.h>

struct bd_arena_block {
    struct bd_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *bd_arena_alloc(struct bd_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct bd_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = bd_xmalloc(sizeof *b + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *bd_arena_strdup(struct bd_arena *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *p = bd_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    return p;
}

void bd_arena_free(struct bd_arena *a)
{
    struct bd_arena_block *b = a->head;
    while (b) {
        struct bd_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
