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
        state_event_note(s->store, p->mac[0] ? p->mac : NULL, "images", "error", msg);
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

static int pull_ref(struct server *s, const struct images_ref *r, const char *mac, char *why,
                    size_t n);

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
    struct images_ref ref = {0};
    snprintf(ref.schematic, sizeof ref.schematic, "%s", snap->schematic);
    snprintf(ref.version, sizeof ref.version, "%s", snap->lab->cluster.talos_version);
    snprintf(ref.arch, sizeof ref.arch, "%s", arch);
    char why[sizeof(struct bd_err) + 200];
    if (pull_ref(s, &ref, mac, why, sizeof why) < 0 && strncmp(why, "the Talos", 9))
        snprintf(msg, n, "%s", why); /* a failure a moment ago: said as it is */
    else
        snprintf(msg, n, "%s: %s", mac, why);
}

/* Under way (0), failed a moment ago (-1): why says so. Starts the pull when none runs
 * and the last one did not fail within a minute. */
static int pull_ref(struct server *s, const struct images_ref *r, const char *mac, char *why,
                    size_t n)
{
    struct image_pulls *ps = pulls_of(s);
    struct images_ref ref = *r;
    const char *arch = ref.arch;
    pthread_mutex_lock(&ps->mu);
    struct pull *p = ps->list;
    while (p && memcmp(&p->ref, &ref, sizeof ref))
        p = p->next;
    int64_t wait_ms = p && !p->running ? p->failed_ms + RETRY_AFTER_MS - bd_now_ms() : 0;
    if (p && !p->running && p->failed_ms && wait_ms > 0) {
        snprintf(why, n, "pulling the Talos %s %s image failed: %s; bootd tries again in %d s",
                 ref.version, arch, p->error, (int)(wait_ms / 1000) + 1);
        pthread_mutex_unlock(&ps->mu);
        return -1;
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
    snprintf(why, n, "the Talos %s %s image (schematic %.12s) %s", ref.version, arch,
             ref.schematic,
             running ? "is being downloaded into bootd's cache; waiting"
                     : "is missing and bootd cannot start a download thread");
    return running ? 0 : -1;
}

int server_image_ensure(struct server *s, const char *version, char *why, size_t n)
{
    struct lab_snap *snap = server_lab(s);
    struct images_ref *refs = NULL;
    size_t nrefs = 0;
    struct bd_err err;
    int rc = 1;
    if (images_lab_refs(snap->lab, &refs, &nrefs, &err) < 0) {
        snprintf(why, n, "%s", err.msg);
        rc = -1;
    }
    for (size_t i = 0; rc == 1 && i < nrefs; i++) {
        snprintf(refs[i].version, sizeof refs[i].version, "%s", version);
        if (!images_cached(s->assets_fd, refs[i].schematic, version, refs[i].arch))
            rc = pull_ref(s, &refs[i], "", why, n);
    }
    free(refs);
    server_lab_put(s, snap);
    return rc;
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
