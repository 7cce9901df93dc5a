/* A worker thread for requests that suspend their connection until it has done their
 * part: the boot queue (bootq.c) and reloads (reloader.c). Submitting suspends the
 * connection before the thread can see the item, so its resume cannot come first; the
 * thread hands everything queued at once to run(), which resumes each connection. At
 * stop, run() gets what is still queued, with stopping set, before the thread ends. */
#include "server.h"

#include <stdlib.h>

struct server_suspq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct server_suspended *head, *tail;
    bool stopping;
    pthread_t thread;
    server_suspq_run_fn run;
    void *ud;
};

static void *suspq_main(void *arg)
{
    struct server_suspq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        struct server_suspended *batch = q->head;
        q->head = q->tail = NULL;
        bool stopping = q->stopping;
        if (!batch && stopping)
            break;
        pthread_mutex_unlock(&q->mu);
        q->run(q->ud, batch, stopping);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

struct server_suspq *server_suspq_start(server_suspq_run_fn run, void *ud)
{
    struct server_suspq *q = bd_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->run = run;
    q->ud = ud;
    if (pthread_create(&q->thread, NULL, suspq_main, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return NULL;
    }
    return q;
}

bool server_suspq_submit(struct server_suspq *q, struct MHD_Connection *c,
                         struct server_suspended *item)
{
    item->conn = c;
    item->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    MHD_suspend_connection(c);
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void server_suspq_stop(struct server_suspq *q)
{
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
}
