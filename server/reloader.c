/* Reloads asked over the admin API run on their own thread (suspendq.c). Loading,
 * checking and installing a 10,000-machine lab takes a good part of a second; on an
 * HTTP loop it would hold every boot that loop serves meanwhile. The request suspends
 * its connection and waits; the thread runs one reload for every request queued when it
 * starts (the file is read after they asked) and resumes them with its outcome. */
#include "server.h"

#include <stdio.h>

static void run_reload(void *ud, struct server_suspended *batch, bool stopping)
{
    struct bd_err err = {0};
    /* when stopping, the waiters are answered without a reload */
    int rc = stopping ? bd_err_set(&err, "bootd is stopping") : server_reload(ud, &err);
    for (struct server_suspended *l = batch, *next; l; l = next) {
        next = l->next; /* the wait belongs to its request again once resumed */
        struct reload_wait *w = (struct reload_wait *)l;
        w->failed = rc < 0;
        snprintf(w->error, sizeof w->error, "%s", err.msg);
        w->done = true;
        MHD_resume_connection(l->conn);
    }
}

int server_reloader_start(struct server *s, struct bd_err *err)
{
    s->reloader = server_suspq_start(run_reload, s);
    return s->reloader ? 0 : bd_err_set(err, "cannot start the reload thread");
}

bool server_reloader_submit(struct server *s, struct MHD_Connection *c, struct reload_wait *w)
{
    w->done = false;
    return server_suspq_submit(s->reloader, c, &w->link);
}

void server_reloader_stop(struct server *s)
{
    server_suspq_stop(s->reloader);
    s->reloader = NULL;
}
