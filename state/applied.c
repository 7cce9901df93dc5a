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
