/* images/ — the Talos image cache: schematic ids, downloads, verification, import and
 * the paths bootd serves them under.
 *
 * The cache is a directory: <schematic>/<talos-version>/<file>, where an image for one
 * architecture is three files from Image Factory: kernel-<arch>, initramfs-<arch>.xz
 * and cmdline-metal-<arch>. Partial downloads and per-image lock files are dot-files
 * next to them (bootd never serves dot-files). The lock file (images.lock, next to
 * lab.yaml and meant for Git) pins the SHA-256 of every file ever downloaded or
 * imported, in sha256sum(1) format with paths relative to the cache. */
#ifndef IMAGES_H
#define IMAGES_H

#include "../lab/lab.h"
#include "../lib/bd.h"

#include <stdatomic.h>

#define IMAGES_VANILLA_SCHEMATIC "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
#define IMAGES_VANILLA_YAML "customization: {}\n"
#define IMAGES_NFILES 3
#define IMAGES_NAME_MAX 32

/* ---------- schematics ---------- */

/* The text Image Factory hashes for a schematic: decoded as Image Factory decodes it
 * (unknown fields refused, with file:line:col) and marshalled again in go-yaml's
 * canonical form. Caller frees *out. */
int images_schematic_canonical(const char *text, size_t len, const char *file, char **out,
                               struct bd_err *err) BD_MUST_CHECK;
/* A schematic file's id (lower-case hex SHA-256 of its canonical form) and, when
 * canonical is not NULL, that form (caller frees). path NULL is the vanilla schematic. */
int images_schematic_load(const char *path, char id[65], char **canonical, struct bd_err *err) BD_MUST_CHECK;
/* The lab's schematic id, computed locally the way Image Factory computes it. */
int images_schematic_id(const struct lab *lab, char out[65], struct bd_err *err) BD_MUST_CHECK;

/* ---------- cache layout ---------- */

/* One image: what a machine of one architecture boots. */
struct images_ref {
    char schematic[65];
    char version[32];
    char arch[8];
};

/* The images lab.yaml's machines boot: the cluster's Talos version and schematic, once
 * per images.arch. Caller frees *out. */
int images_lab_refs(const struct lab *lab, struct images_ref **out, size_t *n, struct bd_err *err) BD_MUST_CHECK;
/* The image's three file names, in download order. */
void images_file_names(const char *arch, char names[IMAGES_NFILES][IMAGES_NAME_MAX]);
/* The architecture an image file name belongs to ("amd64"), or NULL for other names. */
const char *images_file_arch(const char *name);
/* false for names that cannot be a version or schematic directory ("", ".", "..", '/'). */
bool images_component_ok(const char *s);
/* Whether all three files of the image are in the cache (fstatat only, no reads). */
bool images_cached(int cache_fd, const char *schematic, const char *version, const char *arch);
/* The cached cmdline-metal-<arch> for the lab's image, trimmed; NULL when not cached
 * (caller frees). cache_fd is the cache root directory. */
char *images_cached_cmdline(int cache_fd, const char *schematic, const char *version,
                            const char *arch);

/* What the cache holds, one entry per image (files grouped by architecture). */
struct images_entry {
    struct images_ref ref;
    int nfiles;       /* of IMAGES_NFILES */
    uint64_t bytes;   /* complete files */
    uint64_t partial; /* bytes in partial downloads */
};
/* Sorted by schematic, version, arch. Caller frees *out. */
int images_list(int cache_fd, struct images_entry **out, size_t *n, struct bd_err *err) BD_MUST_CHECK;

/* Removes everything in the cache that is not one of keep[] (its files, partial
 * downloads and lock), calling removed() for each file or directory it takes (or would
 * take, when dry_run). */
int images_gc(int cache_fd, const struct images_ref *keep, size_t nkeep, bool dry_run,
              void (*removed)(void *ud, const char *path, uint64_t bytes), void *ud,
              struct bd_err *err) BD_MUST_CHECK;

/* ---------- the lock file ---------- */

struct images_lock_entry {
    char sha256[65];
    char *path; /* <schematic>/<version>/<file> */
};
struct images_lock {
    size_t n;
    struct images_lock_entry *v; /* sorted by path */
};
/* Reads a lock file; a missing file is an empty lock. Bad lines name file:line. */
int images_lock_read(const char *file, struct images_lock *out, struct bd_err *err) BD_MUST_CHECK;
/* The pinned sha256 of a cache path, or NULL. */
const char *images_lock_find(const struct images_lock *l, const char *path);
/* Adds or replaces an entry (keeps the order). */
void images_lock_set(struct images_lock *l, const char *path, const char *sha256);
int images_lock_write(const char *file, const struct images_lock *l, struct bd_err *err) BD_MUST_CHECK;
void images_lock_free(struct images_lock *l);

/* ---------- hashing (OpenSSL's SHA-256: several times mbedTLS's speed on big files) */

struct images_hash;
struct images_hash *images_hash_new(void);
void images_hash_update(struct images_hash *h, const void *p, size_t n);
/* Writes the hex digest and starts the hash again. */
void images_hash_final(struct images_hash *h, char out[65]);
void images_hash_free(struct images_hash *h);
/* Feeds fd's content from offset 0 into h; *size gets its length. name for messages. */
int images_hash_fd(int fd, const char *name, struct images_hash *h, uint64_t *size,
                   struct bd_err *err) BD_MUST_CHECK;

/* Hashes a file in a thread of its own while it is being written, so that hashing
 * overlaps the download instead of following it. The first size bytes are there. */
struct images_hash_follow;
struct images_hash_follow *images_hash_follow_start(int fd, uint64_t size);
/* The file now holds size bytes. */
void images_hash_follow_grow(struct images_hash_follow *hf, uint64_t size);
/* Hashes what is left, stops the thread and frees hf; out gets the hex digest. */
int images_hash_follow_finish(struct images_hash_follow *hf, const char *name, char out[65],
                              struct bd_err *err) BD_MUST_CHECK;

/* ---------- staging: how files enter the cache (pull and import) ---------- */

struct images_stage_file {
    char name[IMAGES_NAME_MAX];
    char sha256[65];
    uint64_t size;
    bool staged;   /* new bytes sit in .<name>.part, waiting to land */
    bool recorded; /* its hash was not in the lock file before */
};

/* One image directory held exclusively (by other threads and processes too) while
 * files are staged into it. */
struct images_stage {
    int cache_fd, dir_fd, lock_fd;
    char dir[128]; /* <schematic>/<version>, for lock paths and messages */
    size_t n;
    struct images_stage_file files[2 * IMAGES_NFILES];
};

/* Creates the image directory if needed and locks it. Waits while another download of
 * the same image runs, calling waiting(ud) once; gives up when *cancel turns true. */
int images_stage_open(struct images_stage *st, int cache_fd, const char *schematic,
                      const char *version, const atomic_bool *cancel,
                      void (*waiting)(void *ud), void *ud, struct bd_err *err) BD_MUST_CHECK;
/* The staging name of a file: ".<name>.part" (out: IMAGES_NAME_MAX + 8 bytes). */
void images_stage_part(const char *name, char *out);
/* Notes a file whose bytes are complete: staged (in its .part) or already in place. */
struct images_stage_file *images_stage_add(struct images_stage *st, const char *name,
                                           const char *sha256, uint64_t size, bool staged);
/* Checks every file against the lock file and lands the staged ones. A file whose
 * hash differs from the lock is refused: nothing lands, refused partial files are
 * removed, the cached files stay as they were. New hashes are recorded first, then
 * files are renamed into place (each rename is atomic). */
int images_stage_commit(struct images_stage *st, const char *lock_file, struct bd_err *err) BD_MUST_CHECK;
/* Unlocks; staged files that did not land stay as partial downloads. */
void images_stage_close(struct images_stage *st);

/* ---------- pull and import ---------- */

struct images_progress {
    const char *file;
    uint64_t done, total; /* total 0 = unknown */
};

struct images_pull_opts {
    int cache_fd;
    const char *factory;   /* base URL: <factory>/image/<schematic>/<version>/<file> */
    const char *lock_file;
    /* canonical schematic, registered with Image Factory (POST /schematics) when it
     * answers 404 for a custom one; NULL to never register */
    const char *schematic_yaml;
    long timeout_s;        /* no byte for this long: give up (partial download kept) */
    void (*progress)(void *ud, const struct images_progress *p); /* may be NULL */
    void (*waiting)(void *ud); /* another process is downloading this image */
    void *ud;
    const atomic_bool *cancel; /* may be NULL */
};

struct images_pull_report {
    struct images_stage_file files[IMAGES_NFILES];
    bool downloaded[IMAGES_NFILES]; /* false: the cached file was verified */
};

/* Makes the cache hold ref's three files, each matching images.lock: cached files are
 * verified, missing or mismatching ones downloaded (resuming partial downloads) and
 * checked before they land. Hashes seen for the first time are recorded. */
int images_pull(const struct images_pull_opts *o, const struct images_ref *ref,
                struct images_pull_report *rep, struct bd_err *err) BD_MUST_CHECK;

/* Downloads url into dir_fd/part, resuming what is there. On success sha256 and size
 * describe the whole file. *status is the HTTP status (0 when no answer came). */
struct images_fetch {
    const struct images_pull_opts *o;
    const char *url;
    const char *name; /* for progress and messages */
    const char *dir;  /* the image directory, for messages */
    int dir_fd;
    const char *part;
    /* out */
    long status;
    char sha256[65];
    uint64_t size;
};
int images_fetch(struct images_fetch *f, struct bd_err *err) BD_MUST_CHECK;

/* Copies local files (named as Image Factory names them: kernel-amd64, ...) into the
 * cache as part of the given schematic and version, verified against and recorded in
 * the lock file like downloads. */
int images_import(int cache_fd, const char *lock_file, const char *schematic,
                  const char *version, char *const *paths, size_t npaths,
                  struct images_stage_file *out, struct bd_err *err) BD_MUST_CHECK;

#endif
