/* Pulling an image: every file verified against images.lock, the missing or damaged
 * ones downloaded, all of them landing together or not at all. */
#include "images.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Image Factory only serves schematics it has been given: register ours, and check
 * that it computes the id we did. */
static int register_schematic(const struct images_pull_opts *o, const char *base,
                              const char *want, struct bd_err *err)
{
    char *url = bd_xasprintf("%s/schematics", base);
    struct bd_http_req req = {
        .method = "POST",
        .url = url,
        .content_type = "application/yaml",
        .body = o->schematic_yaml,
        .body_len = strlen(o->schematic_yaml),
        .timeout_s = o->timeout_s,
    };
    struct bd_http_resp resp;
    int rc = bd_http(&req, &resp, err);
    if (rc == 0) {
        cJSON *j = resp.status == 200 || resp.status == 201 ? cJSON_Parse(resp.body.data) : NULL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        if (!cJSON_IsString(id))
            rc = bd_err_set(err, "%s: HTTP %ld: no schematic id in the answer", url, resp.status);
        else if (strcmp(id->valuestring, want))
            rc = bd_err_set(err,
                            "%s: Image Factory gives the schematic id %s, bootd computed %s; "
                            "bootd's schematic encoding needs fixing",
                            url, id->valuestring, want);
        cJSON_Delete(j);
        bd_http_resp_free(&resp);
    }
    free(url);
    return rc;
}

static int download(const struct images_pull_opts *o, const struct images_ref *ref,
                    struct images_stage *st, const char *name, bool *registered,
                    struct bd_err *err)
{
    char base[1024];
    snprintf(base, sizeof base, "%s", o->factory);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        base[--bl] = 0;
    char *url = bd_xasprintf("%s/image/%s/%s/%s", base, ref->schematic, ref->version, name);
    char part[IMAGES_NAME_MAX + 8];
    images_stage_part(name, part);
    struct images_fetch f = {.o = o, .url = url, .name = name, .dir = st->dir,
                             .dir_fd = st->dir_fd, .part = part};
    int rc = images_fetch(&f, err);
    bool custom = o->schematic_yaml && strcmp(ref->schematic, IMAGES_VANILLA_SCHEMATIC);
    if (rc < 0 && f.status == 404 && custom && !*registered) {
        struct bd_err why = *err;
        *registered = true;
        if (register_schematic(o, base, ref->schematic, err) < 0) {
            bd_err_prefix(err, "%s; registering the schematic failed too", why.msg);
        } else {
            bd_info("images: registered schematic %s with %s", ref->schematic, base);
            rc = images_fetch(&f, err);
        }
    }
    free(url);
    if (rc == 0)
        images_stage_add(st, name, f.sha256, f.size, true);
    return rc;
}

/* The cached copy of name, if it is there and agrees with the lock. */
static bool cached_ok(struct images_stage *st, const struct images_lock *lock, const char *name,
                      struct bd_err *err)
{
    int fd = openat(st->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct images_hash *h = images_hash_new();
    uint64_t size;
    char sha[65] = "";
    bool ok = images_hash_fd(fd, name, h, &size, err) == 0 && size > 0;
    close(fd);
    if (ok)
        images_hash_final(h, sha);
    images_hash_free(h);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", st->dir, name);
    const char *pinned = images_lock_find(lock, path);
    if (ok && pinned && strcmp(pinned, sha)) {
        bd_warn("images: cached %s does not match images.lock; downloading it again", path);
        ok = false;
    }
    if (ok)
        images_stage_add(st, name, sha, size, false);
    return ok;
}

int images_pull(const struct images_pull_opts *o, const struct images_ref *ref,
                struct images_pull_report *rep, struct bd_err *err)
{
    memset(rep, 0, sizeof *rep);
    struct images_lock lock;
    if (images_lock_read(o->lock_file, &lock, err) < 0)
        return -1;
    struct images_stage st;
    if (images_stage_open(&st, o->cache_fd, ref->schematic, ref->version, o->cancel, o->waiting,
                          o->ud, err) < 0) {
        images_lock_free(&lock);
        return -1;
    }
    char names[IMAGES_NFILES][IMAGES_NAME_MAX];
    images_file_names(ref->arch, names);
    bool registered = false;
    int rc = 0;
    for (int i = 0; i < IMAGES_NFILES && rc == 0; i++) {
        struct bd_err ignored;
        if (cached_ok(&st, &lock, names[i], &ignored))
            continue;
        rep->downloaded[i] = true;
        rc = download(o, ref, &st, names[i], &registered, err);
    }
    images_lock_free(&lock);
    if (rc == 0)
        rc = images_stage_commit(&st, o->lock_file, err);
    for (size_t i = 0; i < st.n; i++)
        rep->files[i] = st.files[i];
    images_stage_close(&st);
    return rc;
}
