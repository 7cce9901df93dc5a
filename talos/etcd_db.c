/* The revision an etcd snapshot was taken at, read from the snapshot itself so that a
 * backup's name can carry it. A snapshot is etcd's bbolt database (plus the SHA-256
 * trailer); etcd keeps every key version in the bucket "key" under an 8-byte big-endian
 * main revision, '_', an 8-byte sub revision (and a 't' for a deletion), so the last key
 * of that bucket holds the highest revision — what `etcdutl snapshot status` reports.
 *
 * The bbolt layout read here (etcd-io/bbolt page.go, bucket.go, db.go): pages of the
 * size the meta page gives; a 16-byte page header {id u64, flags u16, count u16,
 * overflow u32}; two meta pages, the valid one with the higher txid counts (magic
 * 0xED0CDAED, FNV-1a 64 checksum over the 56 bytes before it); branch elements {pos u32,
 * ksize u32, pgid u64} and leaf elements {flags u32, pos u32, ksize u32, vsize u32}, pos
 * counted from the element itself; a sub-bucket is a leaf value {root u64, sequence u64}
 * followed, when root is 0, by its one inline page. Little-endian, as etcd writes it on
 * every architecture bootd runs on. Only reading, only these two lookups. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE_HEADER 16
#define ELEMENT 16
#define META_MAGIC 0xED0CDAEDu
enum { BRANCH = 0x01, LEAF = 0x02, META = 0x04 };
enum { BUCKET_LEAF = 0x01 };
#define MAX_DEPTH 64 /* a B+tree deeper than this is a loop in a damaged file */

struct db {
    const uint8_t *p;
    size_t size;     /* without the SHA-256 trailer */
    uint32_t pagesz;
};

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* A page's start, or NULL when it lies outside the file. */
static const uint8_t *page(const struct db *d, uint64_t id)
{
    if (id > (d->size / d->pagesz) || (id + 1) * d->pagesz > d->size)
        return NULL;
    return d->p + id * d->pagesz;
}

/* A page (in the file or inline) whose elements all lie inside [pg, end). */
static bool elements_fit(const uint8_t *pg, const uint8_t *end)
{
    uint64_t count = le(pg + 10, 2);
    return pg + PAGE_HEADER + count * ELEMENT <= end;
}

static const uint8_t *page_end(const struct db *d, const uint8_t *pg)
{
    uint64_t span = (le(pg + 12, 4) + 1) * (uint64_t)d->pagesz; /* with overflow pages */
    const uint8_t *file_end = d->p + d->size;
    return (uint64_t)(file_end - pg) < span ? file_end : pg + span;
}

/* The valid meta page with the highest txid. */
static int pick_meta(struct db *d, const uint8_t **meta, struct bd_err *err)
{
    const uint8_t *best = NULL;
    uint32_t pagesz = 0;
    for (int i = 0; i < 2; i++) {
        size_t off = i == 0 ? 0 : pagesz;
        if (i == 1 && (!pagesz || off + PAGE_HEADER + 64 > d->size))
            break;
        const uint8_t *m = d->p + off + PAGE_HEADER;
        if (!(le(d->p + off + 8, 2) & META) || le(m, 4) != META_MAGIC ||
            fnv1a64(m, 56) != le(m + 56, 8))
            continue;
        if (i == 0)
            pagesz = (uint32_t)le(m + 8, 4);
        if (!best || le(m + 48, 8) > le(best + 48, 8))
            best = m;
    }
    if (!pagesz && best)
        pagesz = (uint32_t)le(best + 8, 4);
    if (!best || pagesz < 512 || pagesz > (1u << 20) || (pagesz & (pagesz - 1)))
        return bd_err_set(err, "not an etcd database: no valid bbolt meta page");
    d->pagesz = pagesz;
    *meta = best;
    return 0;
}

/* The leaf element of key in the tree at root, or NULL. */
static const uint8_t *find(const struct db *d, const uint8_t *pg, const char *key, int depth)
{
    size_t klen = strlen(key);
    if (depth > MAX_DEPTH)
        return NULL;
    const uint8_t *end = page_end(d, pg);
    if (!elements_fit(pg, end))
        return NULL;
    uint64_t count = le(pg + 10, 2), flags = le(pg + 8, 2);
    const uint8_t *child = NULL;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = pg + PAGE_HEADER + i * ELEMENT;
        const uint8_t *k = e + le(e + (flags & BRANCH ? 0 : 4), 4);
        uint64_t ks = le(e + (flags & BRANCH ? 4 : 8), 4);
        if (k + ks > end)
            return NULL;
        int c = memcmp(k, key, ks < klen ? ks : klen);
        if (c == 0)
            c = ks < klen ? -1 : ks > klen;
        if (flags & LEAF) {
            if (c == 0)
                return e;
        } else if (c <= 0) {
            child = page(d, le(e + 8, 8)); /* the last branch whose key is <= key */
        }
    }
    if ((flags & BRANCH) && !child && count)
        child = page(d, le(pg + PAGE_HEADER + 8, 8)); /* smaller than every key: the first */
    return (flags & BRANCH) && child ? find(d, child, key, depth + 1) : NULL;
}

/* The last key of the tree at pg: the rightmost element down to a leaf. */
static int last_key(const struct db *d, const uint8_t *pg, const uint8_t *end,
                    const uint8_t **key, uint64_t *klen, int depth)
{
    if (depth > MAX_DEPTH || !elements_fit(pg, end))
        return -1;
    uint64_t count = le(pg + 10, 2), flags = le(pg + 8, 2);
    if (!count)
        return 0; /* an empty bucket */
    const uint8_t *e = pg + PAGE_HEADER + (count - 1) * ELEMENT;
    if (flags & BRANCH) {
        const uint8_t *child = page(d, le(e + 8, 8));
        return child ? last_key(d, child, page_end(d, child), key, klen, depth + 1) : -1;
    }
    if (!(flags & LEAF))
        return -1;
    *key = e + le(e + 4, 4);
    *klen = le(e + 8, 4);
    return *key + *klen <= end ? 0 : -1;
}

static int revision(struct db *d, uint64_t *rev, struct bd_err *err)
{
    const uint8_t *meta = NULL, *root;
    if (pick_meta(d, &meta, err) < 0)
        return -1;
    if (!(root = page(d, le(meta + 16, 8))))
        return bd_err_set(err, "damaged etcd database: the root bucket is outside the file");
    const uint8_t *e = find(d, root, "key", 0);
    if (!e || !(le(e, 4) & BUCKET_LEAF))
        return bd_err_set(err, "not an etcd database: it has no \"key\" bucket");
    const uint8_t *v = e + le(e + 4, 4) + le(e + 8, 4);
    uint64_t vsize = le(e + 12, 4);
    if (vsize < 16 || v + vsize > d->p + d->size)
        return bd_err_set(err, "damaged etcd database: the \"key\" bucket header is cut off");
    uint64_t broot = le(v, 8);
    const uint8_t *pg = broot ? page(d, broot) : v + 16;
    const uint8_t *end = broot ? (pg ? page_end(d, pg) : NULL) : v + vsize;
    const uint8_t *key = NULL;
    uint64_t klen = 0;
    if (!pg || (!broot && vsize < 16 + PAGE_HEADER) || last_key(d, pg, end, &key, &klen, 0) < 0)
        return bd_err_set(err, "damaged etcd database: the \"key\" bucket cannot be read");
    *rev = 0;
    if (key && klen >= 8)
        for (int i = 0; i < 8; i++)
            *rev = *rev << 8 | key[i];
    return 0;
}

int talos_etcd_snapshot_revision(const char *path, uint64_t *rev, struct bd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bd_err_set(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < 1024) {
        close(fd);
        return bd_err_set(err, "%s: too small to be an etcd snapshot", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return bd_err_set(err, "%s: %s", path, strerror(errno));
    struct db d = {.p = map, .size = (size_t)st.st_size};
    if (d.size % 512 == 32)
        d.size -= 32; /* the SHA-256 trailer is not part of the database */
    int rc = revision(&d, rev, err);
    munmap(map, (size_t)st.st_size);
    return rc < 0 ? bd_err_prefix(err, "%s", path) : 0;
}
