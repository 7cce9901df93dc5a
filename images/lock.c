/* images.lock: the SHA-256 of every image file bootd has downloaded or imported, one
 * "<sha256>  <schematic>/<version>/<file>" line each (sha256sum(1)'s format, so
 * `sha256sum -c images.lock` run in the cache checks it), sorted by path so that Git
 * diffs stay small. */
#include "images.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

/* <schematic>/<version>/<file>: exactly three safe components. */
static bool path_ok(const char *p)
{
    char *copy = bd_xstrdup(p), *save = NULL;
    int parts = 0;
    bool ok = p[0] != '/' && !strstr(p, "//") && p[strlen(p) - 1] != '/';
    for (char *t = strtok_r(copy, "/", &save); t && ok; t = strtok_r(NULL, "/", &save)) {
        ok = images_component_ok(t) && t[0] != '.';
        parts++;
    }
    free(copy);
    return ok && parts == 3;
}

static size_t find_at(const struct images_lock *l, const char *path, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->v[mid].path, path);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const char *images_lock_find(const struct images_lock *l, const char *path)
{
    bool found;
    size_t i = find_at(l, path, &found);
    return found ? l->v[i].sha256 : NULL;
}

void images_lock_set(struct images_lock *l, const char *path, const char *sha256)
{
    bool found;
    size_t i = find_at(l, path, &found);
    if (!found) {
        l->v = bd_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
        memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof *l->v);
        l->v[i].path = bd_xstrdup(path);
        l->n++;
    }
    memcpy(l->v[i].sha256, sha256, 65);
}

void images_lock_free(struct images_lock *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int images_lock_read(const char *file, struct images_lock *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    if (access(file, F_OK) < 0 && errno == ENOENT)
        return 0;
    char *text;
    if (bd_file_read(file, &text, NULL, err) < 0)
        return -1;
    int rc = 0, lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (n == 0)
            continue;
        const char *path = line + 66;
        if (n < 67 || !hex64(line) || line[64] != ' ' || line[65] != ' ' || !path_ok(path)) {
            rc = bd_err_set(err,
                            "%s:%d: expected \"<sha256 in lower-case hex>  "
                            "<schematic>/<version>/<file>\"",
                            file, lineno);
            break;
        }
        line[64] = 0;
        if (images_lock_find(out, path)) {
            rc = bd_err_set(err, "%s:%d: %s is listed twice", file, lineno, path);
            break;
        }
        images_lock_set(out, path, line);
    }
    free(text);
    if (rc < 0)
        images_lock_free(out);
    return rc;
}

int images_lock_write(const char *file, const struct images_lock *l, struct bd_err *err)
{
    struct bd_buf b;
    bd_buf_init(&b);
    for (size_t i = 0; i < l->n; i++)
        bd_buf_printf(&b, "%s  %s\n", l->v[i].sha256, l->v[i].path);
    int rc = bd_file_write_atomic(file, b.data, b.len, 0644, err);
    bd_buf_free(&b);
    return rc;
}
