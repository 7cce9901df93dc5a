/* Cluster records: the bootstrap record, one per cluster. */
#include "internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cluster bootstrap ---- */

static void read_bootstrap(sqlite3_stmt *s, void *dst)
{
    struct state_bootstrap *out = dst;
    state_col_copy(s, 0, out->node, sizeof out->node);
    out->requested = sqlite3_column_int(s, 1) != 0;
    out->attempts = sqlite3_column_int64(s, 2);
    state_col_copy(s, 3, out->last_error, sizeof out->last_error);
    out->done = sqlite3_column_int(s, 4) != 0;
    state_col_copy(s, 5, out->outcome, sizeof out->outcome);
    out->first_attempt_ms = sqlite3_column_int64(s, 6);
    out->done_ms = sqlite3_column_int64(s, 7);
}

int state_bootstrap_get(struct state_db *st, const char *cluster, struct state_bootstrap *out,
                        struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_BOOTSTRAP_GET);
    if (s)
        state_bind_text(s, 1, cluster);
    int rc = state_fetch_one_locked(st, s, read_bootstrap, out, "read bootstrap", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Runs a bootstrap statement on the cluster's row, made first if missing. */
static int bootstrap_update(struct state_db *st, enum stmt_id id, const char *cluster,
                            const char *name, const char *node, const char *error,
                            const char *outcome, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_BOOTSTRAP_ENSURE);
    if (s) {
        state_bind_text(s, 1, cluster);
        state_bind_text(s, 2, name);
    }
    int rc = state_run(st, s, err, "record bootstrap");
    if (rc == 0) {
        s = state_stmt(st, id);
        if (s) {
            state_bind_text(s, 1, cluster);
            if (id == S_BOOTSTRAP_ATTEMPT) {
                state_bind_text(s, 2, node);
                state_bind_text(s, 3, error);
                state_bind_text(s, 4, outcome);
                sqlite3_bind_int64(s, 5, bd_now_ms());
            }
        }
        rc = state_run(st, s, err, "record bootstrap");
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_bootstrap_request(struct state_db *st, const char *cluster, const char *name,
                            struct bd_err *err)
{
    return bootstrap_update(st, S_BOOTSTRAP_REQUEST, cluster, name, NULL, NULL, NULL, err);
}

int state_bootstrap_attempt(struct state_db *st, const char *cluster, const char *name,
                            const char *node, const char *outcome, const char *error,
                            struct bd_err *err)
{
    return bootstrap_update(st, S_BOOTSTRAP_ATTEMPT, cluster, name, node, error, outcome, err);
}
