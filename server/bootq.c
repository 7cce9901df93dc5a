/* The boot queue: /ipxe requests record their boot in state.db before their script
 * leaves, but they do not each pay for a transaction. A request suspends its
 * connection and queues its boot; one writer thread (suspendq.c) commits everything
 * queued in a single transaction and resumes the connections, which then answer. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* also at stop: what is queued is still recorded */
static void run_batch(void *ud, struct server_suspended *batch, bool stopping)
{
    struct server *s = ud;
    (void)stopping;
    size_t n = 0;
    for (struct server_suspended *l = batch; l; l = l->next)
        n++;
    struct state_boot *v = bd_xcalloc(n, sizeof *v);
    size_t i = 0;
    for (struct server_suspended *l = batch; l; l = l->next)
        v[i++] = ((struct boot_job *)l)->boot;
    struct bd_err err;
    int rc = state_boot_batch(s->store, v, n, &err);
    if (rc < 0)
        bd_error("ipxe: recording %zu boots failed: %s", n, err.msg);
    i = 0;
    for (struct server_suspended *l = batch, *next; l; l = next) {
        next = l->next; /* the job belongs to its request again once resumed */
        struct boot_job *j = (struct boot_job *)l;
        j->boot = v[i++];
        j->failed = rc < 0;
        j->done = true;
        MHD_resume_connection(l->conn);
    }
    free(v);
}

int server_bootq_start(struct server *s, struct bd_err *err)
{
    s->bootq = server_suspq_start(run_batch, s);
    return s->bootq ? 0 : bd_err_set(err, "cannot start the boot writer thread");
}

bool server_bootq_submit(struct server *s, struct MHD_Connection *c, struct boot_job *j)
{
    j->done = false;
    return server_suspq_submit(s->bootq, c, &j->link);
}

void server_bootq_stop(struct server *s)
{
    server_suspq_stop(s->bootq); /* drains the queue: every suspended request resumes */
    s->bootq = NULL;
}
