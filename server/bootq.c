/* The boot queue: /ipxe requests record their boot in state.db before their script
 * leaves, but they do not each pay for a transaction. A request suspends its
 * connection and queues its boot; one writer thread commits everything queued in a
 * single transaction and resumes the connections, which then answer. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

struct bootq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct boot_job *head, *tail;
    bool stopping;
    pthread_t thread;
    struct server *s;
};

static void run_batch(struct bootq *q, struct boot_job *jobs)
{
    size_t n = 0;
    for (struct boot_job *j = jobs; j; j = j->next)
        n++;
    struct state_boot *v = bd_xcalloc(n, sizeof *v);
    size_t i = 0;
    for (struct boot_job *j = jobs; j; j = j->next)
        v[i++] = j->boot;
    struct bd_err err;
    int rc = state_boot_batch(q->s->store, v, n, &err);
    if (rc < 0)
        bd_error("ipxe: recording %zu boots failed: %s", n, err.msg);
    i = 0;
    for (struct boot_job *j = jobs, *next; j; j = next) {
        next = j->next; /* j belongs to its request again once resumed */
        j->boot = v[i++];
        j->failed = rc < 0;
        j->done = true;
        MHD_resume_connection(j->conn);
    }
    free(v);
}

static void *writer(void *arg)
{
    struct bootq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        struct boot_job *jobs = q->head;
        q->head = q->tail = NULL;
        if (!jobs && q->stopping)
            break;
        pthread_mutex_unlock(&q->mu);
        run_batch(q, jobs);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int server_bootq_start(struct server *s, struct bd_err *err)
{
    struct bootq *q = bd_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->s = s;
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        free(q);
        return bd_err_set(err, "cannot start the boot writer thread");
    }
    s->bootq = q;
    return 0;
}

bool server_bootq_submit(struct server *s, struct MHD_Connection *c, struct boot_job *j)
{
    struct bootq *q = s->bootq;
    j->conn = c;
    j->next = NULL;
    j->done = false;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    /* suspended before the writer can see it, so its resume cannot come first */
    MHD_suspend_connection(c);
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void server_bootq_stop(struct server *s)
{
    struct bootq *q = s->bootq;
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL); /* drains the queue: every suspended request resumes */
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
    s->bootq = NULL;
}
