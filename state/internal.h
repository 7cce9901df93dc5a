/* Private to state/: the connection, the prepared statements and the helpers every
 * topic file (machines, tokens, events, gitops, cluster) runs its SQL with. */
#ifndef STATE_INTERNAL_H
#define STATE_INTERNAL_H

#include "state.h"

#include <pthread.h>
#include <sqlite3.h>

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_MACHINE_INSERT,
    S_MACHINE_SEEN,
    S_MACHINE_STATE_GET,
    S_MACHINE_STATE_SET,
    S_MACHINE_NAME_SET,
    S_MACHINE_REINSTALL_SET,
    S_MACHINE_GET,
    S_MACHINE_LIST,
    S_MACHINE_BY_IP,
    S_MACHINE_COUNTS,
    S_EVENT_ADD,
    S_EVENTS_TRIM,
    S_EVENTS_FOR,
    S_MACHINE_TOKEN_SET,
    S_MACHINE_BOOT_GET,
    S_TOKEN_LOOKUP,
    S_TOKEN_DOWNLOADED,
    S_INV_LIST,
    S_INV_CLEAR,
    S_INV_PUT,
    S_SYNC_ADD,
    S_SYNC_TRIM,
    S_SYNC_LAST,
    S_BOOTSTRAP_GET,
    S_BOOTSTRAP_ENSURE,
    S_BOOTSTRAP_REQUEST,
    S_BOOTSTRAP_ATTEMPT,
    S_BOOTSTRAP_FORGET,
    S_REBUILD_GET,
    S_REBUILD_START,
    S_REBUILD_PROGRESS,
    S_APPLIED_GET,
    S_APPLIED_PUT,
    S_DAY2_GET,
    S_DAY2_START,
    S_DAY2_SET,
    S_VM_UUID_GET,
    S_VM_UUID_PUT,
    S_VM_UUID_SET,
    S_COUNT
};

struct state_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmts[S_COUNT];
    /* Checkpoints run on their own connection and thread: they fsync, and the writer
     * (which holds mu) must not wait for that. */
    sqlite3 *ckpt_db;
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_wanted, ckpt_stop, ckpt_running;
    int ckpt_mode;
    /* event retention: trimmed within the transaction that adds the trim_every-th event */
    int64_t events_max, events_max_age_ms;
    unsigned events_since_trim;
};

/* The schema, one migration per version, and the SQL of every statement (schema.c). */
extern const char *const state_migrations[];
extern const size_t state_nmigrations;
extern const char *const state_stmt_sql[S_COUNT];

/* db.c */
int state_db_fail(struct state_db *st, struct bd_err *err, const char *what);
/* The statement reset and with bindings cleared; NULL when it cannot be prepared. */
sqlite3_stmt *state_stmt(struct state_db *st, enum stmt_id id);
void state_bind_text(sqlite3_stmt *s, int i, const char *v);
/* Runs a statement that returns no rows. */
int state_run(struct state_db *st, sqlite3_stmt *s, struct bd_err *err, const char *what);
/* Takes the store's lock and opens a write transaction; state_txn_end always follows. */
int state_txn_begin(struct state_db *st, struct bd_err *err) BD_MUST_CHECK;
/* Commits when rc >= 0, else rolls back; releases the lock. Returns rc, or -1 when
 * the commit failed. */
int state_txn_end(struct state_db *st, int rc, struct bd_err *err) BD_MUST_CHECK;
void state_col_copy(sqlite3_stmt *s, int i, char *dst, size_t n);
char *state_col_dup(sqlite3_stmt *s, int i); /* caller frees; NULL for SQL NULL */
/* Steps a statement expected to give at most one row (bindings made, st->mu held):
 * 1 with dst filled by read, 0 without a row, -1 on error. */
int state_fetch_one_locked(struct state_db *st, sqlite3_stmt *s,
                           void (*read)(sqlite3_stmt *, void *), void *dst, const char *what,
                           struct bd_err *err) BD_MUST_CHECK;
/* Steps a listing statement (bindings made, st->mu held) and collects its rows into a
 * growing array of elem-byte entries filled by read (caller frees *out). */
int state_collect_locked(struct state_db *st, sqlite3_stmt *s, size_t elem,
                         void (*read)(sqlite3_stmt *, void *), void **out, size_t *n,
                         const char *what, struct bd_err *err) BD_MUST_CHECK;

/* machines.c, within a transaction */
int state_ensure_machine(struct state_db *st, const char *mac, int64_t now, bool seen,
                         struct bd_err *err) BD_MUST_CHECK;
int state_seen_locked(struct state_db *st, int64_t now, const char *mac,
                      const struct state_sighting *seen, struct bd_err *err) BD_MUST_CHECK;
int state_set_state_locked(struct state_db *st, int64_t now, const char *mac,
                           enum state_lifecycle state, bool by_machine, const char *source,
                           const char *message, struct bd_err *err) BD_MUST_CHECK;
/* with st->mu held (machines.c) */
int state_event_add_locked(struct state_db *st, int64_t now, const char *mac, const char *source,
                           const char *kind, const char *message, struct bd_err *err) BD_MUST_CHECK;

#endif
