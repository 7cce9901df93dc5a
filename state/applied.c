/* The config each machine last got: its SHA-256 (to tell a change) and a redacted copy
 * (to show it). The secrets themselves never reach state.db. */
#include "internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static void read_applied(sqlite3_stmt *s, void *dst)
{
    struct state_applied *out = dst;
    state_col_copy(s, 0, out->sha256, sizeof out->sha256);
    const unsigned char *t = sqlite3_column_text(s, 1);
    out->redacted = bd_xstrdup(t ? (const char *)t : "");
    state_col_copy(s, 2, out->how, sizeof out->how);
    out->applied_ms = sqlite3_column_int64(s, 3);
}

int state_applied_get(struct state_db *st, const char *mac, struct state_applied *out,
                      struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_APPLIED_GET);
    if (s)
        state_bind_text(s, 1, mac);
    int rc = state_fetch_one_locked(st, s, read_applied, out, "read applied config", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_applied_put(struct state_db *st, const char *mac, const char *sha256,
                      const char *redacted, const char *how, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_APPLIED_PUT);
    if (s) {
        state_bind_text(s, 1, mac);
        state_bind_text(s, 2, sha256);
        state_bind_text(s, 3, redacted);
        state_bind_text(s, 4, how);
        sqlite3_bind_int64(s, 5, bd_now_ms());
    }
    int rc = state_run(st, s, err, "record applied config");
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void state_applied_clear(struct state_applied *a)
{
    free(a->redacted);
    a->redacted = NULL;
}

/* ---- the day-2 job ---- */

static void read_day2(sqlite3_stmt *s, void *dst)
{
    struct state_day2 *j = dst;
    state_col_copy(s, 0, j->kind, sizeof j->kind);
    state_col_copy(s, 1, j->arg, sizeof j->arg);
    state_col_copy(s, 2, j->machines, sizeof j->machines);
    j->pos = sqlite3_column_int64(s, 3);
    state_col_copy(s, 4, j->phase, sizeof j->phase);
    j->down_seen = sqlite3_column_int(s, 5) != 0;
    j->step_started_ms = sqlite3_column_int64(s, 6);
    j->timeout_s = sqlite3_column_int64(s, 7);
    j->started_ms = sqlite3_column_int64(s, 8);
    j->finished_ms = sqlite3_column_int64(s, 9);
    state_col_copy(s, 10, j->error, sizeof j->error);
}

int state_day2_get(struct state_db *st, struct state_day2 *out, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_DAY2_GET);
    int rc = state_fetch_one_locked(st, s, read_day2, out, "read day-2 job", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_day2_start(struct state_db *st, const char *kind, const char *arg, const char *machines,
                     int64_t timeout_s, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_DAY2_START);
    if (s) {
        state_bind_text(s, 1, kind);
        state_bind_text(s, 2, arg);
        state_bind_text(s, 3, machines);
        sqlite3_bind_int64(s, 4, timeout_s);
        sqlite3_bind_int64(s, 5, bd_now_ms());
    }
    int rc = state_run(st, s, err, "start day-2 job");
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_day2_set(struct state_db *st, const struct state_day2 *j, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_DAY2_SET);
    if (s) {
        sqlite3_bind_int64(s, 1, j->pos);
        state_bind_text(s, 2, j->phase);
        sqlite3_bind_int(s, 3, j->down_seen);
        sqlite3_bind_int64(s, 4, j->step_started_ms);
        state_bind_text(s, 5, j->error[0] ? j->error : NULL);
        sqlite3_bind_int64(s, 6, bd_now_ms());
    }
    int rc = state_run(st, s, err, "record day-2 job");
    pthread_mutex_unlock(&st->mu);
    return rc;
}
