/* Events: every machine's timeline and the audit trail. */
#include "internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- events ---- */

int state_event_add(struct state_db *st, const char *mac, const char *source, const char *kind,
                    const char *message, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = state_event_add_locked(st, bd_now_ms(), mac, source, kind, message, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void state_event_note(struct state_db *st, const char *mac, const char *source, const char *kind,
                      const char *message)
{
    struct bd_err err;
    if (state_event_add(st, mac, source, kind, message, &err) < 0)
        bd_warn("%s event not recorded: %s", kind, err.msg);
}

void state_events_free(struct state_events *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        free(ev->v[i].message);
    free(ev->v);
    ev->v = NULL;
    ev->n = 0;
}

int state_events_for(struct state_db *st, const char *mac, int64_t limit, struct state_events *out,
                     struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_EVENTS_FOR);
    int rc = s ? 0 : state_db_fail(st, err, "read events");
    int r;
    if (s) {
        state_bind_text(s, 1, mac);
        sqlite3_bind_int64(s, 2, limit > 0 ? limit : 1000);
    }
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            out->v = bd_xrealloc(out->v, cap * sizeof *out->v);
        }
        struct state_event *e = &out->v[out->n++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(s, 0);
        e->ts_ms = sqlite3_column_int64(s, 1);
        state_col_copy(s, 2, e->mac, sizeof e->mac);
        state_col_copy(s, 3, e->source, sizeof e->source);
        state_col_copy(s, 4, e->kind, sizeof e->kind);
        const unsigned char *msg = sqlite3_column_text(s, 5);
        e->message = bd_xstrdup(msg ? (const char *)msg : "");
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = state_db_fail(st, err, "read events");
    if (s)
        sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0)
        state_events_free(out);
    return rc;
}
