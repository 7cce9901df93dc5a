/* Images missing from the cache: a machine that needs one is held while a background
 * thread pulls it, one pull per image at a time, never on the request path. When the
 * image lands bootd switches to a fresh snapshot; when the pull fails the machine that
 * asked gets an error event, and the next try waits a minute. */
#include "server.h"

#include "../images/images.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_AFTER_MS 60000

struct pull {
    struct pull *next;
    struct server *s;
    struct lab_snap *snap; /* referenced while the pull runs */
    struct images_ref ref;
    char mac[18];          /* the machine whose boot started it, for the event */
    pthread_t thread;
    bool running, joinable;
    int64_t failed_ms;
    char error[sizeof(struct bd_err)];
};

struct image_pulls {
    pthread_mutex_t mu;
    atomic_bool cancel;
    struct pull *list;
};

static void *run(void *arg)
{
    struct pull *p = arg;
    struct server *s = p->s;
    const struct lab *lab = p->snap->lab;
    struct images_pull_opts o = {
        .cache_fd = s->assets_fd,
        .factory = lab->images.factory,
        .lock_file = lab->images.lock_file,
        .timeout_s = lab->images.timeout_s,
        .cancel = &s->pulls->cancel,
    };
    char id[65], *canonical = NULL;
    struct bd_err err;
    struct images_pull_report rep;
    int rc = images_schematic_load(lab->images.schematic_file, id, &canonical, &err);
    if (rc == 0) {
        o.schematic_yaml = strcmp(id, p->ref.schematic) ? NULL : canonical;
        bd_info("images: pulling %s/%s for %s from %s", p->ref.version, p->ref.arch,
                p->ref.schematic, o.factory);
        rc = images_pull(&o, &p->ref, &rep, &err);
    }
    free(canonical);
    bool cancelled = atomic_load(&s->pulls->cancel);
    if (rc == 0) {
        bd_info("images: Talos %s %s is cached", p->ref.version, p->ref.arch);
        server_refresh(s);
    } else if (!cancelled) {
        char msg[sizeof err.msg + 128];
        snprintf(msg, sizeof msg, "pulling the Talos %s %s image failed: %s", p->ref.version,
                 p->ref.arch, err.msg);
        bd_error("images: %s", msg);
        state_event_note(s->store, p->mac, "images", "error", msg);
    }
    server_lab_put(s, p->snap);
    pthread_mutex_lock(&s->pulls->mu);
    p->snap = NULL;
    p->running = false;
    p->failed_ms = rc == 0 ? 0 : bd_now_ms();
    snprintf(p->error, sizeof p->error, "%s", rc == 0 ? "" : err.msg);
    pthread_mutex_unlock(&s->pulls->mu);
    return NULL;
}

static struct image_pulls *pulls_of(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->pulls) {
        s->pulls = bd_xcalloc(1, sizeof *s->pulls);
        pthread_mutex_init(&s->pulls->mu, NULL);
    }
    struct image_pulls *ps = s->pulls;
    pthread_mutex_unlock(&s->mu);
    return ps;
}

/* Under ps->mu: starts p's thread with the lab being served. */
static bool start(struct server *s, struct pull *p, const char *mac)
{
    if (p->joinable)
        pthread_join(p->thread, NULL); /* finished: joining does not wait */
    p->joinable = false;
    p->snap = server_lab(s);
    snprintf(p->mac, sizeof p->mac, "%s", mac);
    p->running = true;
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        server_lab_put(s, p->snap);
        p->snap = NULL;
        p->running = false;
        return false;
    }
    p->joinable = true;
    return true;
}

void server_image_hold(struct server *s, struct lab_snap *snap, const char *arch,
                       const char *mac, char *msg, size_t n)
{
    struct lab_snap *now = server_lab(s);
    bool arrived = now != snap && now->image_ready[!strcmp(arch, "arm64")];
    server_lab_put(s, now);
    if (arrived) { /* landed since this request took its snapshot */
        snprintf(msg, n, "%s: the Talos %s image has just arrived", mac, arch);
        return;
    }
    struct image_pulls *ps = pulls_of(s);
    struct images_ref ref = {0};
    snprintf(ref.schematic, sizeof ref.schematic, "%s", snap->schematic);
    snprintf(ref.version, sizeof ref.version, "%s", snap->lab->cluster.talos_version);
    snprintf(ref.arch, sizeof ref.arch, "%s", arch);
    pthread_mutex_lock(&ps->mu);
    struct pull *p = ps->list;
    while (p && memcmp(&p->ref, &ref, sizeof ref))
        p = p->next;
    int64_t wait_ms = p && !p->running ? p->failed_ms + RETRY_AFTER_MS - bd_now_ms() : 0;
    if (p && !p->running && p->failed_ms && wait_ms > 0) {
        snprintf(msg, n, "pulling the Talos %s %s image failed: %s; bootd tries again in %d s",
                 ref.version, arch, p->error, (int)(wait_ms / 1000) + 1);
        pthread_mutex_unlock(&ps->mu);
        return;
    }
    if (!p) {
        p = bd_xcalloc(1, sizeof *p);
        p->s = s;
        p->ref = ref;
        p->next = ps->list;
        ps->list = p;
    }
    bool running = p->running || start(s, p, mac);
    pthread_mutex_unlock(&ps->mu);
    snprintf(msg, n, "%s: the Talos %s %s image (schematic %.12s) %s", mac, ref.version, arch,
             ref.schematic,
             running ? "is being downloaded into bootd's cache; waiting"
                     : "is missing and bootd cannot start a download thread");
}

void server_image_pulls_stop(struct server *s)
{
    struct image_pulls *ps = s->pulls;
    if (!ps)
        return;
    atomic_store(&ps->cancel, true);
    for (struct pull *p = ps->list; p; p = p->next)
        if (p->joinable)
            pthread_join(p->thread, NULL);
    while (ps->list) {
        struct pull *p = ps->list;
        ps->list = p->next;
        free(p);
    }
    pthread_mutex_destroy(&ps->mu);
    free(ps);
    s->pulls = NULL;
}
