/* The cache's layout: which files make an image, what the cache holds, and removing
 * what the lab no longer boots. Every path is opened below the cache's own directory
 * descriptor without following symlinks. */
#include "images.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const file_formats[IMAGES_NFILES] = {
    "kernel-%s",
    "initramfs-%s.xz",
    "cmdline-metal-%s",
};
static const char *const arches[] = {"amd64", "arm64", NULL};

void images_file_names(const char *arch, char names[IMAGES_NFILES][IMAGES_NAME_MAX])
{
    for (int i = 0; i < IMAGES_NFILES; i++)
        snprintf(names[i], IMAGES_NAME_MAX, file_formats[i], arch);
}

const char *images_file_arch(const char *name)
{
    for (int a = 0; arches[a]; a++) {
        char names[IMAGES_NFILES][IMAGES_NAME_MAX];
        images_file_names(arches[a], names);
        for (int i = 0; i < IMAGES_NFILES; i++)
            if (!strcmp(name, names[i]))
                return arches[a];
    }
    return NULL;
}

bool images_component_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || (unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return false;
    return true;
}

int images_lab_refs(const struct lab *lab, struct images_ref **out, size_t *n, struct bd_err *err)
{
    char id[65];
    if (images_schematic_id(lab, id, err) < 0)
        return -1;
    const char *version = lab->cluster.talos_version;
    if (!images_component_ok(version) || strlen(version) >= sizeof((*out)->version))
        return bd_err_set(err, "%s: cluster.talos_version \"%s\" cannot name a cache directory",
                          lab->path, version);
    *n = lab->images.arch.n;
    *out = bd_xcalloc(*n + 1, sizeof **out);
    for (size_t i = 0; i < *n; i++) {
        memcpy((*out)[i].schematic, id, sizeof id);
        snprintf((*out)[i].version, sizeof (*out)[i].version, "%s", version);
        snprintf((*out)[i].arch, sizeof (*out)[i].arch, "%s", lab->images.arch.v[i]);
    }
    return 0;
}

bool images_cached(int cache_fd, const char *schematic, const char *version, const char *arch)
{
    char names[IMAGES_NFILES][IMAGES_NAME_MAX];
    images_file_names(arch, names);
    for (int i = 0; i < IMAGES_NFILES; i++) {
        char rel[256];
        struct stat sb;
        snprintf(rel, sizeof rel, "%s/%s/%s", schematic, version, names[i]);
        if (fstatat(cache_fd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
            sb.st_size == 0)
            return false;
    }
    return true;
}

/* ---- walking ---- */

/* Calls fn for each entry of the directory dir_fd/name, "." and ".." left out.
 * Subdirectories are opened with O_NOFOLLOW. */
typedef int (*entry_fn)(void *ud, int dir_fd, const char *name, const struct stat *sb);

static int each_entry(int parent_fd, const char *name, entry_fn fn, void *ud, struct bd_err *err)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return bd_err_set(err, "%s: %s", name, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return bd_err_set(err, "%s: %s", name, strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone meanwhile */
        rc = fn(ud, dirfd(d), e->d_name, &sb);
    }
    closedir(d);
    return rc;
}

/* ---- list ---- */

struct list_walk {
    struct images_entry *v;
    size_t n;
    const char *schematic, *version;
    struct bd_err *err;
};

static struct images_entry *entry_for(struct list_walk *w, const char *arch)
{
    for (size_t i = 0; i < w->n; i++) {
        struct images_ref *r = &w->v[i].ref;
        if (!strcmp(r->schematic, w->schematic) && !strcmp(r->version, w->version) &&
            !strcmp(r->arch, arch))
            return &w->v[i];
    }
    w->v = bd_xrealloc(w->v, (w->n + 1) * sizeof *w->v);
    struct images_entry *e = &w->v[w->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->ref.schematic, sizeof e->ref.schematic, "%s", w->schematic);
    snprintf(e->ref.version, sizeof e->ref.version, "%s", w->version);
    snprintf(e->ref.arch, sizeof e->ref.arch, "%s", arch);
    return e;
}

static int list_file(void *ud, int dir_fd, const char *name, const struct stat *sb)
{
    (void)dir_fd;
    struct list_walk *w = ud;
    if (!S_ISREG(sb->st_mode))
        return 0;
    char base[IMAGES_NAME_MAX + 8];
    size_t n = strlen(name);
    bool part = name[0] == '.' && n > 6 && !strcmp(name + n - 5, ".part");
    snprintf(base, sizeof base, "%.*s", part ? (int)(n - 6) : (int)n, part ? name + 1 : name);
    const char *arch = images_file_arch(base);
    if (!arch)
        return 0;
    struct images_entry *e = entry_for(w, arch);
    if (part) {
        e->partial += (uint64_t)sb->st_size;
    } else {
        e->nfiles++;
        e->bytes += (uint64_t)sb->st_size;
    }
    return 0;
}

static int list_version(void *ud, int dir_fd, const char *name, const struct stat *sb)
{
    struct list_walk *w = ud;
    if (!S_ISDIR(sb->st_mode) || name[0] == '.')
        return 0;
    w->version = name;
    return each_entry(dir_fd, name, list_file, w, w->err);
}

static int list_schematic(void *ud, int dir_fd, const char *name, const struct stat *sb)
{
    struct list_walk *w = ud;
    if (!S_ISDIR(sb->st_mode) || name[0] == '.')
        return 0;
    w->schematic = name;
    return each_entry(dir_fd, name, list_version, w, w->err);
}

static int ref_cmp(const void *a, const void *b)
{
    const struct images_ref *x = a, *y = b;
    int c = strcmp(x->schematic, y->schematic);
    if (!c)
        c = strcmp(x->version, y->version);
    return c ? c : strcmp(x->arch, y->arch);
}

int images_list(int cache_fd, struct images_entry **out, size_t *n, struct bd_err *err)
{
    struct list_walk w = {.err = err};
    if (each_entry(cache_fd, ".", list_schematic, &w, err) < 0) {
        free(w.v);
        return -1;
    }
    if (w.n)
        qsort(w.v, w.n, sizeof *w.v, ref_cmp);
    *out = w.v;
    *n = w.n;
    return 0;
}

/* ---- gc ---- */

struct tree_walk {
    bool dry_run;
    uint64_t bytes;
    struct bd_err *err;
};

static int remove_entry(struct tree_walk *t, int dir_fd, const char *name, const struct stat *sb);

static int remove_child(void *ud, int dir_fd, const char *name, const struct stat *sb)
{
    return remove_entry(ud, dir_fd, name, sb);
}

static int remove_entry(struct tree_walk *t, int dir_fd, const char *name, const struct stat *sb)
{
    bool dir = S_ISDIR(sb->st_mode);
    if (dir) {
        if (each_entry(dir_fd, name, remove_child, t, t->err) < 0)
            return -1;
    } else {
        t->bytes += (uint64_t)sb->st_size;
    }
    if (!t->dry_run && unlinkat(dir_fd, name, dir ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
        return bd_err_set(t->err, "%s: %s", name, strerror(errno));
    return 0;
}

struct gc_walk {
    const struct images_ref *keep;
    size_t nkeep;
    bool dry_run;
    void (*removed)(void *ud, const char *path, uint64_t bytes);
    void *ud;
    struct bd_err *err;
    char path[256]; /* of the directory being walked, relative to the cache */
};

static int gc_remove(struct gc_walk *g, int dir_fd, const char *name, const struct stat *sb)
{
    struct tree_walk t = {.dry_run = g->dry_run, .err = g->err};
    if (remove_entry(&t, dir_fd, name, sb) < 0)
        return bd_err_prefix(g->err, "%s", g->path);
    char *path = g->path[0] ? bd_xasprintf("%s/%s", g->path, name) : bd_xstrdup(name);
    if (g->removed)
        g->removed(g->ud, path, t.bytes);
    free(path);
    return 0;
}

/* Whether name in <schematic>/<version> belongs to a kept image of that directory. */
static bool kept_file(const struct gc_walk *g, const char *schematic, const char *version,
                      const char *name)
{
    for (size_t k = 0; k < g->nkeep; k++) {
        const struct images_ref *r = &g->keep[k];
        if (strcmp(r->schematic, schematic) || strcmp(r->version, version))
            continue;
        if (!strcmp(name, ".lock"))
            return true;
        char names[IMAGES_NFILES][IMAGES_NAME_MAX];
        images_file_names(r->arch, names);
        for (int i = 0; i < IMAGES_NFILES; i++) {
            char part[IMAGES_NAME_MAX + 8];
            images_stage_part(names[i], part);
            if (!strcmp(name, names[i]) || !strcmp(name, part))
                return true;
        }
    }
    return false;
}

static int gc_level(void *ud, int dir_fd, const char *name, const struct stat *sb);

static int gc_descend(struct gc_walk *g, int dir_fd, const char *name)
{
    size_t len = strlen(g->path);
    snprintf(g->path + len, sizeof g->path - len, "%s%s", len ? "/" : "", name);
    int rc = each_entry(dir_fd, name, gc_level, g, g->err);
    g->path[len] = 0;
    return rc;
}

/* One entry at any depth: descend into kept schematic and version directories, keep
 * the kept images' files, remove the rest. */
static int gc_level(void *ud, int dir_fd, const char *name, const struct stat *sb)
{
    struct gc_walk *g = ud;
    const char *slash = strchr(g->path, '/');
    if (!g->path[0] || !slash) {
        bool wanted = false;
        for (size_t k = 0; k < g->nkeep && !wanted; k++) {
            const struct images_ref *r = &g->keep[k];
            wanted = g->path[0] ? !strcmp(r->schematic, g->path) && !strcmp(r->version, name)
                                : !strcmp(r->schematic, name);
        }
        if (wanted && S_ISDIR(sb->st_mode))
            return gc_descend(g, dir_fd, name);
        return gc_remove(g, dir_fd, name, sb);
    }
    char schematic[65];
    snprintf(schematic, sizeof schematic, "%.*s", (int)(slash - g->path), g->path);
    if (S_ISREG(sb->st_mode) && kept_file(g, schematic, slash + 1, name))
        return 0;
    return gc_remove(g, dir_fd, name, sb);
}

int images_gc(int cache_fd, const struct images_ref *keep, size_t nkeep, bool dry_run,
              void (*removed)(void *ud, const char *path, uint64_t bytes), void *ud,
              struct bd_err *err)
{
    struct gc_walk g = {.keep = keep, .nkeep = nkeep, .dry_run = dry_run, .removed = removed,
                        .ud = ud, .err = err};
    return each_entry(cache_fd, ".", gc_level, &g, err);
}
