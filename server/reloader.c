/* Reloads asked over the admin API run on their own thread. Loading, checking and
 * installing a 10,000-machine lab takes a good part of a second; on an HTTP loop it
 * would hold every boot that loop serves meanwhile. The request suspends its connection
 * and waits here; the thread runs one reload for every request queued when it starts
 * (the file is read after they asked) and resumes them with its outcome. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>

struct reloader {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct reload_wait *head;
    bool stopping;
    pthread_t thread;
    struct server *s;
};

static void *reload_main(void *arg)
{
    struct reloader *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        struct reload_wait *waiting = q->head;
        q->head = NULL;
        bool stopping = q->stopping;
        if (!waiting && stopping)
            break;
        pthread_mutex_unlock(&q->mu);
        struct bd_err err = {0};
        /* when stopping, the waiters are answered without a reload */
        int rc = stopping ? bd_err_set(&err, "bootd is stopping") : server_reload(q->s, &err);
        for (struct reload_wait *w = waiting, *next; w; w = next) {
            next = w->next; /* w belongs to its request again once resumed */
            w->failed = rc < 0;
            snprintf(w->error, sizeof w->error, "%s", err.msg);
            w->done = true;
            MHD_resume_connection(w->conn);
        }
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int server_reloader_start(struct server *s, struct bd_err *err)
{
    struct reloader *q = bd_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->s = s;
    if (pthread_create(&q->thread, NULL, reload_main, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return bd_err_set(err, "cannot start the reload thread");
    }
    s->reloader = q;
    return 0;
}

bool server_reloader_submit(struct server *s, struct MHD_Connection *c, struct reload_wait *w)
{
    struct reloader *q = s->reloader;
    w->conn = c;
    w->done = false;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    /* suspended before the thread can see it, so its resume cannot come first */
    MHD_suspend_connection(c);
    w->next = q->head;
    q->head = w;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void server_reloader_stop(struct server *s)
{
    struct reloader *q = s->reloader;
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL); /* every suspended request is resumed first */
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
    s->reloader = NULL;
}
