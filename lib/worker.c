/* A background thread that sleeps until a deadline, a wake-up or a stop. The reconciler
 * and the GitOps loop are built on it; their state lives under its mutex. */
#include "bd.h"

#include <openssl/crypto.h>
#include <time.h>

void bd_worker_init(struct bd_worker *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines are bd_mono_ms */
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&w->cancel, false);
    w->started = w->stop = w->wake = false;
}

struct start_arg {
    void *(*fn)(void *);
    void *arg;
};

static void *worker_main(void *p)
{
    struct start_arg a = *(struct start_arg *)p;
    free(p);
    void *r = a.fn(a.arg);
    OPENSSL_thread_stop(); /* libcurl's TLS leaves per-thread state behind */
    return r;
}

int bd_worker_start(struct bd_worker *w, void *(*fn)(void *), void *arg, const char *what,
                    struct bd_err *err)
{
    struct start_arg *a = bd_xmalloc(sizeof *a);
    a->fn = fn;
    a->arg = arg;
    if (pthread_create(&w->thread, NULL, worker_main, a) != 0) {
        free(a);
        return bd_err_set(err, "%s: cannot start its thread", what);
    }
    w->started = true;
    return 0;
}

void bd_worker_wait(struct bd_worker *w, int64_t deadline_ms)
{
    if (w->stop || w->wake)
        return;
    if (deadline_ms < 0) {
        pthread_cond_wait(&w->cv, &w->mu);
        return;
    }
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

void bd_worker_wake(struct bd_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->wake = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void bd_worker_stop(struct bd_worker *w)
{
    atomic_store(&w->cancel, true);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
}

void bd_worker_clear(struct bd_worker *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}
