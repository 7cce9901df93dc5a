/* state.db itself: opening (private files, WAL, migrations), closing, the statement
 * cache, transactions, row helpers, and WAL checkpoints on a thread of their own. */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECKPOINT_PAGES 1000

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct state_db *st = arg;
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_wanted = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
    }
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    struct state_db *st = arg;
    pthread_mutex_lock(&st->ckpt_mu);
    while (!st->ckpt_stop) {
        if (!st->ckpt_wanted) {
            pthread_cond_wait(&st->ckpt_cv, &st->ckpt_mu);
            continue;
        }
        st->ckpt_wanted = false;
        pthread_mutex_unlock(&st->ckpt_mu);
        int rc = sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            bd_warn("state.db: checkpoint: %s", sqlite3_errmsg(st->ckpt_db));
        pthread_mutex_lock(&st->ckpt_mu);
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    return NULL;
}

static int start_checkpointer(struct state_db *st, const char *path, struct bd_err *err)
{
    if (sqlite3_open_v2(path, &st->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return bd_err_set(err, "%s: %s", path, sqlite3_errmsg(st->ckpt_db));
    sqlite3_busy_timeout(st->ckpt_db, 5000);
    pthread_mutex_init(&st->ckpt_mu, NULL);
    pthread_cond_init(&st->ckpt_cv, NULL);
    if (pthread_create(&st->ckpt_thread, NULL, checkpointer, st) != 0)
        return bd_err_set(err, "state.db: cannot start the checkpoint thread");
    st->ckpt_running = true;
    sqlite3_wal_autocheckpoint(st->db, 0);
    sqlite3_wal_hook(st->db, on_wal_commit, st);
    return 0;
}

static void stop_checkpointer(struct state_db *st)
{
    if (st->ckpt_running) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_stop = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
        pthread_join(st->ckpt_thread, NULL);
        pthread_cond_destroy(&st->ckpt_cv);
        pthread_mutex_destroy(&st->ckpt_mu);
        st->ckpt_running = false;
    }
    sqlite3_close(st->ckpt_db);
    st->ckpt_db = NULL;
}

int state_db_fail(struct state_db *st, struct bd_err *err, const char *what)
{
    return bd_err_set(err, "state.db: %s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3_stmt *state_stmt(struct state_db *st, enum stmt_id id)
{
    sqlite3_stmt *s = st->stmts[id];
    if (!s) {
        if (sqlite3_prepare_v3(st->db, state_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
            SQLITE_OK)
            return NULL;
        st->stmts[id] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

void state_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

int state_run(struct state_db *st, sqlite3_stmt *s, struct bd_err *err, const char *what)
{
    if (!s)
        return state_db_fail(st, err, what);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return state_db_fail(st, err, what);
    return 0;
}

static int begin(struct state_db *st, struct bd_err *err)
{
    return state_run(st, state_stmt(st, S_BEGIN), err, "begin");
}

static int commit(struct state_db *st, struct bd_err *err)
{
    return state_run(st, state_stmt(st, S_COMMIT), err, "commit");
}

static void rollback(struct state_db *st)
{
    if (!sqlite3_get_autocommit(st->db))
        state_run(st, state_stmt(st, S_ROLLBACK), NULL, "rollback");
}

int state_txn_begin(struct state_db *st, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    return begin(st, err);
}

int state_txn_end(struct state_db *st, int rc, struct bd_err *err)
{
    if (rc >= 0 && commit(st, err) < 0)
        rc = -1;
    if (rc < 0)
        rollback(st);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int migrate(struct state_db *st, struct bd_err *err)
{
    int have = state_schema_version(st);
    int want = (int)state_nmigrations;
    if (have > want)
        return bd_err_set(err, "state.db: schema version %d is newer than this bootd knows (%d); "
                               "use the bootd that wrote it",
                          have, want);
    for (int v = have; v < want; v++) {
        char *msg = NULL;
        char *sql = bd_xasprintf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
                                 state_migrations[v], v + 1);
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
        free(sql);
        if (rc != SQLITE_OK) {
            bd_err_set(err, "state.db: migration to version %d: %s", v + 1, msg ? msg : "?");
            sqlite3_free(msg);
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    return 0;
}

int state_open(const char *dir, struct state_db **out, struct bd_err *err)
{
    if (bd_mkdir_p(dir, 0700, err) < 0)
        return -1;
    struct state_db *st = bd_xcalloc(1, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    char *path = bd_path_join(dir, "state.db");
    /* created private before SQLite opens it; its -wal and -shm files follow its mode */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        bd_err_set(err, "%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
        free(path);
        state_close(st);
        return -1;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* WAL + synchronous=NORMAL: a committed transaction survives the process being
     * killed; only an OS crash may roll back the newest ones, never corrupt. */
    char *msg = NULL;
    if (sqlite3_exec(st->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     " PRAGMA foreign_keys = ON;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        bd_err_set(err, "state.db: %s", msg ? msg : "pragma failed");
        sqlite3_free(msg);
        free(path);
        state_close(st);
        return -1;
    }
    if (migrate(st, err) < 0 || start_checkpointer(st, path, err) < 0) {
        free(path);
        state_close(st);
        return -1;
    }
    free(path);
    *out = st;
    return 0;
}

void state_close(struct state_db *st)
{
    if (!st)
        return;
    stop_checkpointer(st);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

int state_schema_version(struct state_db *st)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    return v;
}

void state_col_copy(sqlite3_stmt *s, int i, char *dst, size_t n)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    snprintf(dst, n, "%s", v ? (const char *)v : "");
}

char *state_col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? bd_xstrdup((const char *)v) : NULL;
}

/* Steps a statement expected to give at most one row (bindings made, st->mu held):
 * 1 with dst filled by read, 0 without a row, -1 on error. */
int state_fetch_one_locked(struct state_db *st, sqlite3_stmt *s, void (*read)(sqlite3_stmt *, void *),
                            void *dst, const char *what, struct bd_err *err)
{
    if (!s)
        return state_db_fail(st, err, what);
    int r = sqlite3_step(s);
    int rc = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : state_db_fail(st, err, what);
    if (rc == 1)
        read(s, dst);
    sqlite3_reset(s);
    return rc;
}

/* Steps a listing statement (bindings made, st->mu held) and collects its rows into a
 * growing array of elem-byte entries filled by read (caller frees *out). */
int state_collect_locked(struct state_db *st, sqlite3_stmt *s, size_t elem,
                          void (*read)(sqlite3_stmt *, void *), void **out, size_t *n,
                          const char *what, struct bd_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = s ? 0 : state_db_fail(st, err, what);
    int r;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = bd_xrealloc(*out, cap * elem);
        }
        read(s, (char *)*out + (*n)++ * elem);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = state_db_fail(st, err, what);
    if (s)
        sqlite3_reset(s);
    return rc;
}
