/* GitOps records: the inventory of applied objects and the sync history. */
#include "internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- gitops: inventory and sync history ---- */

void state_gitops_items_free(struct state_gitops_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].api_version);
    }
    free(v);
}

static void read_item(sqlite3_stmt *s, void *dst)
{
    struct state_gitops_item *it = dst;
    it->id = bd_xstrdup((const char *)sqlite3_column_text(s, 0));
    it->api_version = bd_xstrdup((const char *)sqlite3_column_text(s, 1));
    state_col_copy(s, 2, it->hash, sizeof it->hash);
}

int state_gitops_inventory(struct state_db *st, struct state_gitops_item **out, size_t *n,
                           struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = state_collect_locked(st, state_stmt(st, S_INV_LIST), sizeof **out, read_item, (void **)out, n,
                            "read inventory", err);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        state_gitops_items_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int sync_add_locked(struct state_db *st, const struct state_gitops_sync *y, struct bd_err *err)
{
    sqlite3_stmt *s = state_stmt(st, S_SYNC_ADD);
    if (s) {
        sqlite3_bind_int64(s, 1, y->started_ms);
        sqlite3_bind_int64(s, 2, y->finished_ms);
        state_bind_text(s, 3, y->revision);
        sqlite3_bind_int(s, 4, y->ok);
        sqlite3_bind_int64(s, 5, y->applied);
        sqlite3_bind_int64(s, 6, y->unchanged);
        sqlite3_bind_int64(s, 7, y->pruned);
        sqlite3_bind_int64(s, 8, y->failed);
        sqlite3_bind_int64(s, 9, y->unhealthy);
        state_bind_text(s, 10, y->error);
        state_bind_text(s, 11, y->detail);
    }
    if (state_run(st, s, err, "record sync") < 0)
        return -1;
    return state_run(st, state_stmt(st, S_SYNC_TRIM), err, "trim syncs");
}

int state_gitops_record(struct state_db *st, const struct state_gitops_sync *sync,
                        const struct state_gitops_item *inv, size_t n, bool replace_inventory,
                        struct bd_err *err)
{
    int rc = state_txn_begin(st, err);
    if (rc == 0 && replace_inventory) {
        rc = state_run(st, state_stmt(st, S_INV_CLEAR), err, "clear inventory");
        for (size_t i = 0; i < n && rc == 0; i++) {
            sqlite3_stmt *s = state_stmt(st, S_INV_PUT);
            if (s) {
                state_bind_text(s, 1, inv[i].id);
                state_bind_text(s, 2, inv[i].api_version);
                state_bind_text(s, 3, inv[i].hash);
            }
            rc = state_run(st, s, err, "write inventory");
        }
    }
    if (rc == 0)
        rc = sync_add_locked(st, sync, err);
    return state_txn_end(st, rc, err);
}

static void read_sync(sqlite3_stmt *s, void *dst)
{
    struct state_gitops_sync *out = dst;
    out->started_ms = sqlite3_column_int64(s, 0);
    out->finished_ms = sqlite3_column_int64(s, 1);
    out->revision = state_col_dup(s, 2);
    out->ok = sqlite3_column_int(s, 3) != 0;
    out->applied = sqlite3_column_int64(s, 4);
    out->unchanged = sqlite3_column_int64(s, 5);
    out->pruned = sqlite3_column_int64(s, 6);
    out->failed = sqlite3_column_int64(s, 7);
    out->unhealthy = sqlite3_column_int64(s, 8);
    out->error = state_col_dup(s, 9);
    out->detail = state_col_dup(s, 10);
}

int state_gitops_last_sync(struct state_db *st, bool ok_only, struct state_gitops_sync *out,
                           struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_SYNC_LAST);
    if (s)
        sqlite3_bind_int(s, 1, ok_only ? 1 : 0);
    int rc = state_fetch_one_locked(st, s, read_sync, out, "read syncs", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void state_gitops_sync_free(struct state_gitops_sync *y)
{
    free(y->revision);
    free(y->error);
    free(y->detail);
    memset(y, 0, sizeof *y);
}
