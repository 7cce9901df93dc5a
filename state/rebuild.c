/* The rebuild record: what bootctl rebuild restores and how far it got. */
#include "internal.h"

#include <sqlite3.h>
#include <string.h>

static void read_rebuild(sqlite3_stmt *s, void *dst)
{
    struct state_rebuild *out = dst;
    state_col_copy(s, 0, out->snapshot, sizeof out->snapshot);
    out->skip_hash = sqlite3_column_int(s, 1) != 0;
    state_col_copy(s, 2, out->phase, sizeof out->phase);
    state_col_copy(s, 3, out->node, sizeof out->node);
    out->attempts = sqlite3_column_int64(s, 4);
    state_col_copy(s, 5, out->last_error, sizeof out->last_error);
    out->started_ms = sqlite3_column_int64(s, 6);
    out->recovered_ms = sqlite3_column_int64(s, 7);
}

int state_rebuild_get(struct state_db *st, const char *cluster, struct state_rebuild *out,
                      struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_REBUILD_GET);
    if (s)
        state_bind_text(s, 1, cluster);
    int rc = state_fetch_one_locked(st, s, read_rebuild, out, "read rebuild", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_rebuild_start(struct state_db *st, const char *cluster, const char *snapshot,
                        bool skip_hash, const char *phase, const char *const *macs,
                        size_t nmacs, struct bd_err *err)
{
    int64_t now = bd_now_ms();
    int rc = state_txn_begin(st, err);
    sqlite3_stmt *s;
    if (rc == 0 && (s = state_stmt(st, S_REBUILD_START))) {
        state_bind_text(s, 1, cluster);
        state_bind_text(s, 2, snapshot ? snapshot : "");
        sqlite3_bind_int(s, 3, skip_hash);
        sqlite3_bind_int64(s, 4, now);
        state_bind_text(s, 5, phase);
        rc = state_run(st, s, err, "start rebuild");
    }
    if (rc == 0 && (s = state_stmt(st, S_BOOTSTRAP_FORGET))) {
        state_bind_text(s, 1, cluster);
        rc = state_run(st, s, err, "start rebuild");
    }
    for (size_t i = 0; rc == 0 && i < nmacs; i++) {
        if ((s = state_stmt(st, S_MACHINE_REINSTALL_SET))) { /* a machine never seen installs anyway */
            state_bind_text(s, 1, macs[i]);
            sqlite3_bind_int(s, 2, 1);
            rc = state_run(st, s, err, "start rebuild");
        }
    }
    return state_txn_end(st, rc, err);
}

int state_rebuild_progress(struct state_db *st, const char *cluster, const char *phase,
                           const char *node, const char *error, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_REBUILD_PROGRESS);
    if (s) {
        state_bind_text(s, 1, cluster);
        state_bind_text(s, 2, phase);
        state_bind_text(s, 3, node ? node : "");
        state_bind_text(s, 4, error);
        sqlite3_bind_int64(s, 5, bd_now_ms());
    }
    int rc = state_run(st, s, err, "record rebuild");
    pthread_mutex_unlock(&st->mu);
    return rc;
}
