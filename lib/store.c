/* state.db: machines, their event timelines and config tokens (SQLite in WAL mode).
 * One connection behind a mutex: writes are short, and SQLite admits one writer anyway. */
#include "bd.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Each entry upgrades the schema by one version; never edit one that has shipped. */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE machines ("
    "  mac TEXT PRIMARY KEY,"
    "  name TEXT,"
    "  uuid TEXT, ip TEXT, arch TEXT, hostname TEXT,"
    "  state TEXT NOT NULL,"
    "  reinstall INTEGER NOT NULL DEFAULT 0,"
    "  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, state_since INTEGER NOT NULL,"
    /* The config token of the newest boot (SHA-256 of it) and how it is bound. Only the
     * newest is valid; the one before is kept to tell a stale token from a forged one. */
    "  token TEXT, token_prev TEXT,"
    "  token_addr INTEGER, token_prefix INTEGER,"
    "  token_issued INTEGER, token_downloaded INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX machines_by_token ON machines(token);"
    "CREATE INDEX machines_by_token_prev ON machines(token_prev);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts INTEGER NOT NULL, mac TEXT, source TEXT NOT NULL, kind TEXT NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE INDEX events_by_mac ON events(mac, id);",
    /* 2: GitOps. The inventory is what bootd applied (prune deletes what leaves it);
     * hash is the SHA-256 of the object as last sent, so unchanged ones are not re-sent. */
    "CREATE TABLE gitops_inventory ("
    "  id TEXT PRIMARY KEY,"          /* group/kind/namespace/name */
    "  api_version TEXT NOT NULL,"
    "  hash TEXT NOT NULL);"
    "CREATE TABLE gitops_syncs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  started INTEGER NOT NULL, finished INTEGER NOT NULL,"
    "  revision TEXT, ok INTEGER NOT NULL,"
    "  applied INTEGER NOT NULL, unchanged INTEGER NOT NULL, pruned INTEGER NOT NULL,"
    "  failed INTEGER NOT NULL, unhealthy INTEGER NOT NULL,"
    "  error TEXT, detail TEXT);",
    /* 3: cluster bootstrap, one row per cluster (the cluster.id of its secrets bundle).
     * bootd calls Bootstrap until the row says done, and never again after that. */
    "CREATE TABLE bootstrap ("
    "  cluster TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  node TEXT NOT NULL DEFAULT '',"
    "  requested INTEGER NOT NULL DEFAULT 0," /* bootctl bootstrap, for manual labs */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  done INTEGER NOT NULL DEFAULT 0,"
    "  outcome TEXT,"                          /* bootstrapped | already-bootstrapped */
    "  first_attempt INTEGER NOT NULL DEFAULT 0,"
    "  done_at INTEGER NOT NULL DEFAULT 0);",
};

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
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_MACHINE_INSERT] = "INSERT OR IGNORE INTO machines(mac, state, first_seen, last_seen, "
                         "state_since) VALUES (?1, 'discovered', ?3, ?3, ?2)",
    [S_MACHINE_SEEN] = "UPDATE machines SET last_seen = ?2, uuid = coalesce(?3, uuid),"
                       " first_seen = CASE first_seen WHEN 0 THEN ?2 ELSE first_seen END,"
                       " ip = coalesce(?4, ip), arch = coalesce(?5, arch),"
                       " hostname = coalesce(?6, hostname) WHERE mac = ?1",
    [S_MACHINE_STATE_GET] = "SELECT state FROM machines WHERE mac = ?1",
    [S_MACHINE_STATE_SET] = "UPDATE machines SET state = ?2, state_since = ?3,"
                            " last_seen = CASE WHEN ?4 THEN ?3 ELSE last_seen END,"
                            " reinstall = CASE WHEN ?2 = 'booting' THEN 0 ELSE reinstall END"
                            " WHERE mac = ?1",
    [S_MACHINE_NAME_SET] = "UPDATE machines SET name = ?2 WHERE mac = ?1",
    [S_MACHINE_REINSTALL_SET] = "UPDATE machines SET reinstall = ?2 WHERE mac = ?1",
    [S_MACHINE_GET] = "SELECT mac, name, uuid, ip, arch, hostname, state, reinstall, first_seen,"
                      " last_seen, state_since FROM machines WHERE mac = ?1",
    [S_MACHINE_LIST] = "SELECT mac, name, uuid, ip, arch, hostname, state, reinstall, first_seen,"
                       " last_seen, state_since FROM machines ORDER BY name IS NULL, name, mac",
    [S_MACHINE_BY_IP] = "SELECT mac, name, uuid, ip, arch, hostname, state, reinstall, first_seen,"
                        " last_seen, state_since FROM machines WHERE ip = ?1"
                        " ORDER BY last_seen DESC LIMIT 1",
    [S_MACHINE_COUNTS] = "SELECT state, count(*) FROM machines GROUP BY state",
    [S_EVENT_ADD] = "INSERT INTO events(ts, mac, source, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_EVENTS_FOR] = "SELECT id, ts, mac, source, kind, message FROM"
                     " (SELECT * FROM events WHERE mac IS ?1 ORDER BY id DESC LIMIT ?2)"
                     " ORDER BY id",
    /* one statement for the whole of a boot: sighting, new token, state booting */
    [S_MACHINE_TOKEN_SET] = "UPDATE machines SET token_prev = token, token = ?2, token_addr = ?3,"
                            " token_prefix = ?4, token_issued = ?5, token_downloaded = 0,"
                            " last_seen = ?5, uuid = coalesce(?6, uuid), ip = coalesce(?7, ip),"
                            " arch = coalesce(?8, arch),"
                            " first_seen = CASE first_seen WHEN 0 THEN ?5 ELSE first_seen END,"
                            " state_since = CASE state WHEN 'booting' THEN state_since ELSE ?5 END,"
                            " state = 'booting', reinstall = 0"
                            " WHERE mac = ?1",
    [S_MACHINE_BOOT_GET] = "SELECT state, reinstall FROM machines WHERE mac = ?1",
    [S_TOKEN_LOOKUP] = "SELECT mac, coalesce(name, ''), token_addr, token_prefix, token_issued,"
                       " token_downloaded, token IS NOT ?1 FROM machines"
                       " WHERE token = ?1 OR token_prev = ?1",
    [S_TOKEN_DOWNLOADED] = "UPDATE machines SET token_downloaded = ?2 WHERE token = ?1 AND"
                           " token_downloaded = 0 RETURNING mac",
    [S_INV_LIST] = "SELECT id, api_version, hash FROM gitops_inventory ORDER BY id",
    [S_INV_CLEAR] = "DELETE FROM gitops_inventory",
    [S_INV_PUT] = "INSERT OR REPLACE INTO gitops_inventory(id, api_version, hash) VALUES (?1, ?2, ?3)",
    [S_SYNC_ADD] = "INSERT INTO gitops_syncs(started, finished, revision, ok, applied, unchanged,"
                   " pruned, failed, unhealthy, error, detail)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [S_SYNC_TRIM] = "DELETE FROM gitops_syncs WHERE id <= (SELECT max(id) FROM gitops_syncs) - 100",
    [S_SYNC_LAST] = "SELECT started, finished, revision, ok, applied, unchanged, pruned, failed,"
                    " unhealthy, error, detail FROM gitops_syncs WHERE ok >= ?1"
                    " ORDER BY id DESC LIMIT 1",
    [S_BOOTSTRAP_GET] = "SELECT node, requested, attempts, coalesce(last_error, ''), done,"
                        " coalesce(outcome, ''), first_attempt, done_at FROM bootstrap"
                        " WHERE cluster = ?1",
    [S_BOOTSTRAP_ENSURE] = "INSERT OR IGNORE INTO bootstrap(cluster, name) VALUES (?1, ?2)",
    [S_BOOTSTRAP_REQUEST] = "UPDATE bootstrap SET requested = 1 WHERE cluster = ?1 AND NOT done",
    /* a done row never changes again: that is what "exactly once" rests on */
    [S_BOOTSTRAP_ATTEMPT] = "UPDATE bootstrap SET node = ?2, attempts = attempts + 1,"
                            " last_error = ?3, done = ?4 IS NOT NULL, outcome = ?4,"
                            " first_attempt = CASE first_attempt WHEN 0 THEN ?5"
                            " ELSE first_attempt END,"
                            " done_at = CASE WHEN ?4 IS NOT NULL THEN ?5 ELSE 0 END"
                            " WHERE cluster = ?1 AND NOT done",
};

struct store {
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
};

#define CHECKPOINT_PAGES 1000

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct store *st = arg;
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
    struct store *st = arg;
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

static int start_checkpointer(struct store *st, const char *path, struct bd_err *err)
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

static void stop_checkpointer(struct store *st)
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

static const char *const state_names[BD_STATE_COUNT] = {
    "discovered", "assigned", "booting", "config-served", "installing", "ready", "joined",
};

const char *bd_state_name(enum bd_state s)
{
    return (unsigned)s < BD_STATE_COUNT ? state_names[s] : "unknown";
}

int bd_state_parse(const char *s, enum bd_state *out)
{
    for (int i = 0; i < BD_STATE_COUNT; i++)
        if (!strcmp(s, state_names[i])) {
            *out = (enum bd_state)i;
            return 0;
        }
    return -1;
}

static int db_fail(struct store *st, struct bd_err *err, const char *what)
{
    return bd_err_set(err, "state.db: %s: %s", what, sqlite3_errmsg(st->db));
}

/* Returns the statement reset and with bindings cleared. */
static sqlite3_stmt *stmt(struct store *st, enum stmt_id id)
{
    sqlite3_stmt *s = st->stmts[id];
    if (!s) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
            SQLITE_OK)
            return NULL;
        st->stmts[id] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

/* Runs a statement that returns no rows. */
static int run(struct store *st, sqlite3_stmt *s, struct bd_err *err, const char *what)
{
    if (!s)
        return db_fail(st, err, what);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(st, err, what);
    return 0;
}

static int begin(struct store *st, struct bd_err *err)
{
    return run(st, stmt(st, S_BEGIN), err, "begin");
}

static int commit(struct store *st, struct bd_err *err)
{
    return run(st, stmt(st, S_COMMIT), err, "commit");
}

static void rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        run(st, stmt(st, S_ROLLBACK), NULL, "rollback");
}

/* Takes the store's lock and opens a write transaction; txn_end always follows. */
static int txn_begin(struct store *st, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    return begin(st, err);
}

/* Commits when rc >= 0, else rolls back; releases the lock. Returns rc, or -1 when
 * the commit failed. */
static int txn_end(struct store *st, int rc, struct bd_err *err)
{
    if (rc >= 0 && commit(st, err) < 0)
        rc = -1;
    if (rc < 0)
        rollback(st);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int migrate(struct store *st, struct bd_err *err)
{
    int have = store_schema_version(st);
    int want = (int)(sizeof migrations / sizeof migrations[0]);
    if (have > want)
        return bd_err_set(err, "state.db: schema version %d is newer than this bootd knows (%d); "
                               "use the bootd that wrote it",
                          have, want);
    for (int v = have; v < want; v++) {
        char *msg = NULL;
        char *sql = bd_xasprintf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
                                 migrations[v], v + 1);
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

int store_open(const char *dir, struct store **out, struct bd_err *err)
{
    if (bd_mkdir_p(dir, 0700, err) < 0)
        return -1;
    struct store *st = bd_xcalloc(1, sizeof *st);
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
        store_close(st);
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
        store_close(st);
        return -1;
    }
    if (migrate(st, err) < 0 || start_checkpointer(st, path, err) < 0) {
        free(path);
        store_close(st);
        return -1;
    }
    free(path);
    *out = st;
    return 0;
}

void store_close(struct store *st)
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

int store_schema_version(struct store *st)
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

/* ---- machines ---- */

/* Creates the machine row if missing. seen says whether the machine itself is talking
 * to us (first/last seen are set) or only lab.yaml names it (they stay 0 = never). */
static int ensure_machine(struct store *st, const char *mac, int64_t now, bool seen,
                          struct bd_err *err)
{
    sqlite3_stmt *s = stmt(st, S_MACHINE_INSERT);
    if (s) {
        bind_text(s, 1, mac);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_int64(s, 3, seen ? now : 0);
    }
    return run(st, s, err, "insert machine");
}

static int event_add_locked(struct store *st, int64_t now, const char *mac, const char *source,
                            const char *kind, const char *message, struct bd_err *err)
{
    sqlite3_stmt *s = stmt(st, S_EVENT_ADD);
    if (s) {
        sqlite3_bind_int64(s, 1, now);
        bind_text(s, 2, mac);
        bind_text(s, 3, source);
        bind_text(s, 4, kind);
        bind_text(s, 5, message ? message : "");
    }
    return run(st, s, err, "add event");
}

/* Within a transaction: creates the machine if new (with a discovered event) and
 * records what the sighting says. */
static int seen_locked(struct store *st, int64_t now, const char *mac,
                       const struct store_sighting *seen, struct bd_err *err)
{
    if (ensure_machine(st, mac, now, true, err) < 0)
        return -1;
    if (sqlite3_changes(st->db) > 0) {
        char *msg = bd_xasprintf("first seen%s%s", seen && seen->ip ? " at " : "",
                                 seen && seen->ip ? seen->ip : "");
        int rc = event_add_locked(st, now, mac, "bootd", "discovered", msg, err);
        free(msg);
        if (rc < 0)
            return -1;
    }
    if (!seen)
        return 0;
    sqlite3_stmt *s = stmt(st, S_MACHINE_SEEN);
    if (s) {
        bind_text(s, 1, mac);
        sqlite3_bind_int64(s, 2, now);
        bind_text(s, 3, seen->uuid);
        bind_text(s, 4, seen->ip);
        bind_text(s, 5, seen->arch);
        bind_text(s, 6, seen->hostname);
    }
    return run(st, s, err, "update machine");
}

int store_machine_seen(struct store *st, const char *mac, const struct store_sighting *seen,
                       struct bd_err *err)
{
    int64_t now = bd_now_ms();
    int rc = txn_begin(st, err);
    if (rc == 0)
        rc = seen_locked(st, now, mac, seen, err);
    return txn_end(st, rc, err);
}

/* Within a transaction: returns 1 if the state changed, 0 if it was already state.
 * by_machine says the machine itself caused the change (so it was seen now). */
static int set_state_locked(struct store *st, int64_t now, const char *mac, enum bd_state state,
                            bool by_machine, const char *source, const char *message,
                            struct bd_err *err)
{
    if (ensure_machine(st, mac, now, by_machine, err) < 0)
        return -1;
    sqlite3_stmt *s = stmt(st, S_MACHINE_STATE_GET);
    if (!s)
        return db_fail(st, err, "read state");
    bind_text(s, 1, mac);
    bool same = sqlite3_step(s) == SQLITE_ROW &&
                !strcmp((const char *)sqlite3_column_text(s, 0), bd_state_name(state));
    sqlite3_reset(s);
    if (same)
        return 0;
    s = stmt(st, S_MACHINE_STATE_SET);
    if (s) {
        bind_text(s, 1, mac);
        bind_text(s, 2, bd_state_name(state));
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_int(s, 4, by_machine);
    }
    if (run(st, s, err, "set state") < 0 ||
        event_add_locked(st, now, mac, source, bd_state_name(state), message, err) < 0)
        return -1;
    return 1;
}

int store_machine_set_state(struct store *st, const char *mac, enum bd_state state,
                            const char *source, const char *message, struct bd_err *err)
{
    int rc = txn_begin(st, err);
    if (rc == 0)
        rc = set_state_locked(st, bd_now_ms(), mac, state, false, source, message, err);
    return txn_end(st, rc, err);
}

int store_machine_set_reinstall(struct store *st, const char *mac, bool on, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_MACHINE_REINSTALL_SET);
    if (s) {
        bind_text(s, 1, mac);
        sqlite3_bind_int(s, 2, on);
    }
    int rc = run(st, s, err, "update machine");
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t n)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static void read_machine(sqlite3_stmt *s, struct store_machine *m)
{
    memset(m, 0, sizeof *m);
    col_copy(s, 0, m->mac, sizeof m->mac);
    col_copy(s, 1, m->name, sizeof m->name);
    col_copy(s, 2, m->uuid, sizeof m->uuid);
    col_copy(s, 3, m->ip, sizeof m->ip);
    col_copy(s, 4, m->arch, sizeof m->arch);
    col_copy(s, 5, m->hostname, sizeof m->hostname);
    const unsigned char *state = sqlite3_column_text(s, 6);
    if (!state || bd_state_parse((const char *)state, &m->state) < 0)
        m->state = BD_STATE_DISCOVERED;
    m->reinstall = sqlite3_column_int(s, 7) != 0;
    m->first_seen_ms = sqlite3_column_int64(s, 8);
    m->last_seen_ms = sqlite3_column_int64(s, 9);
    m->state_since_ms = sqlite3_column_int64(s, 10);
}

/* Steps a statement expected to give at most one row (bindings made, st->mu held):
 * 1 with dst filled by read, 0 without a row, -1 on error. */
static int fetch_one_locked(struct store *st, sqlite3_stmt *s, void (*read)(sqlite3_stmt *, void *),
                            void *dst, const char *what, struct bd_err *err)
{
    if (!s)
        return db_fail(st, err, what);
    int r = sqlite3_step(s);
    int rc = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : db_fail(st, err, what);
    if (rc == 1)
        read(s, dst);
    sqlite3_reset(s);
    return rc;
}

static void read_machine_row(sqlite3_stmt *s, void *dst)
{
    read_machine(s, dst);
}

/* One machine by a statement keyed on its first parameter. */
static int machine_query(struct store *st, enum stmt_id id, const char *key,
                         struct store_machine *out, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, id);
    if (s)
        bind_text(s, 1, key);
    int rc = fetch_one_locked(st, s, read_machine_row, out, "read machine", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_machine_get(struct store *st, const char *mac, struct store_machine *out,
                      struct bd_err *err)
{
    return machine_query(st, S_MACHINE_GET, mac, out, err);
}

int store_machine_by_ip(struct store *st, const char *ip, struct store_machine *out,
                        struct bd_err *err)
{
    return machine_query(st, S_MACHINE_BY_IP, ip, out, err);
}

/* Steps a listing statement (bindings made, st->mu held) and collects its rows into a
 * growing array of elem-byte entries filled by read (caller frees *out). */
static int collect_locked(struct store *st, sqlite3_stmt *s, size_t elem,
                          void (*read)(sqlite3_stmt *, void *), void **out, size_t *n,
                          const char *what, struct bd_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = s ? 0 : db_fail(st, err, what);
    int r;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = bd_xrealloc(*out, cap * elem);
        }
        read(s, (char *)*out + (*n)++ * elem);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = db_fail(st, err, what);
    if (s)
        sqlite3_reset(s);
    return rc;
}

int store_machine_list(struct store *st, struct store_machine **out, size_t *n, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = collect_locked(st, stmt(st, S_MACHINE_LIST), sizeof **out, read_machine_row,
                            (void **)out, n, "list machines", err);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int store_machine_counts(struct store *st, int64_t counts[BD_STATE_COUNT], struct bd_err *err)
{
    memset(counts, 0, sizeof(int64_t) * BD_STATE_COUNT);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_MACHINE_COUNTS);
    int rc = s ? 0 : db_fail(st, err, "count machines");
    int r;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        enum bd_state state;
        if (bd_state_parse((const char *)sqlite3_column_text(s, 0), &state) == 0)
            counts[state] = sqlite3_column_int64(s, 1);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = db_fail(st, err, "count machines");
    if (s)
        sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct store_lab_entry *)a)->mac, ((const struct store_lab_entry *)b)->mac);
}

static int sync_entry(struct store *st, int64_t now, const struct store_lab_entry *e,
                      struct bd_err *err)
{
    if (ensure_machine(st, e->mac, now, false, err) < 0)
        return -1;
    sqlite3_stmt *s = stmt(st, S_MACHINE_GET);
    if (!s)
        return db_fail(st, err, "read machine");
    bind_text(s, 1, e->mac);
    struct store_machine m;
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return db_fail(st, err, "read machine");
    }
    read_machine(s, &m);
    sqlite3_reset(s);
    if (strcmp(m.name, e->name)) {
        s = stmt(st, S_MACHINE_NAME_SET);
        if (s) {
            bind_text(s, 1, e->mac);
            bind_text(s, 2, e->name);
        }
        if (run(st, s, err, "name machine") < 0)
            return -1;
    }
    if (m.state != BD_STATE_DISCOVERED)
        return 0;
    char *msg = bd_xasprintf("in lab.yaml as %s (%s)", e->name, e->role);
    int rc = set_state_locked(st, now, e->mac, BD_STATE_ASSIGNED, false, "lab", msg, err);
    free(msg);
    return rc < 0 ? -1 : 0;
}

/* Named machines that lab.yaml no longer lists lose their name and assignment. */
static int sync_removed(struct store *st, int64_t now, const struct store_lab_entry *e, size_t n,
                        struct bd_err *err)
{
    sqlite3_stmt *s = stmt(st, S_MACHINE_LIST);
    if (!s)
        return db_fail(st, err, "list machines");
    char (*gone)[18] = NULL;
    size_t ngone = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        struct store_machine m;
        read_machine(s, &m);
        struct store_lab_entry key;
        snprintf(key.mac, sizeof key.mac, "%s", m.mac);
        if (!m.name[0] || bsearch(&key, e, n, sizeof *e, cmp_entry))
            continue;
        gone = bd_xrealloc(gone, (ngone + 1) * sizeof *gone);
        memcpy(gone[ngone++], m.mac, 18);
    }
    sqlite3_reset(s);
    int rc = 0;
    for (size_t i = 0; i < ngone && rc == 0; i++) {
        s = stmt(st, S_MACHINE_NAME_SET);
        if (s)
            bind_text(s, 1, gone[i]);
        rc = run(st, s, err, "unname machine");
        if (rc == 0)
            rc = set_state_locked(st, now, gone[i], BD_STATE_DISCOVERED, false, "lab",
                                  "no longer in lab.yaml", err) < 0 ? -1 : 0;
    }
    free(gone);
    return rc;
}

int store_lab_sync(struct store *st, struct store_lab_entry *e, size_t n, struct bd_err *err)
{
    qsort(e, n, sizeof *e, cmp_entry);
    int64_t now = bd_now_ms();
    int rc = txn_begin(st, err);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = sync_entry(st, now, &e[i], err);
    if (rc == 0)
        rc = sync_removed(st, now, e, n, err);
    return txn_end(st, rc, err);
}

/* ---- events ---- */

int store_event_add(struct store *st, const char *mac, const char *source, const char *kind,
                    const char *message, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = event_add_locked(st, bd_now_ms(), mac, source, kind, message, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_events_free(struct store_events *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        free(ev->v[i].message);
    free(ev->v);
    ev->v = NULL;
    ev->n = 0;
}

int store_events_for(struct store *st, const char *mac, int64_t limit, struct store_events *out,
                     struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_EVENTS_FOR);
    int rc = s ? 0 : db_fail(st, err, "read events");
    int r;
    if (s) {
        bind_text(s, 1, mac);
        sqlite3_bind_int64(s, 2, limit > 0 ? limit : 1000);
    }
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            out->v = bd_xrealloc(out->v, cap * sizeof *out->v);
        }
        struct store_event *e = &out->v[out->n++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(s, 0);
        e->ts_ms = sqlite3_column_int64(s, 1);
        col_copy(s, 2, e->mac, sizeof e->mac);
        col_copy(s, 3, e->source, sizeof e->source);
        col_copy(s, 4, e->kind, sizeof e->kind);
        const unsigned char *msg = sqlite3_column_text(s, 5);
        e->message = bd_xstrdup(msg ? (const char *)msg : "");
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = db_fail(st, err, "read events");
    if (s)
        sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0)
        store_events_free(out);
    return rc;
}

/* ---- tokens ---- */

/* Within a transaction: one boot of a known machine. */
static int boot_known_locked(struct store *st, int64_t now, struct store_boot *b,
                             struct bd_err *err)
{
    if (ensure_machine(st, b->mac, now, true, err) < 0)
        return -1;
    bool created = sqlite3_changes(st->db) > 0;
    sqlite3_stmt *s = stmt(st, S_MACHINE_BOOT_GET);
    if (!s)
        return db_fail(st, err, "read machine");
    bind_text(s, 1, b->mac);
    enum bd_state state = BD_STATE_DISCOVERED;
    bool reinstall = false;
    if (sqlite3_step(s) == SQLITE_ROW) {
        bd_state_parse((const char *)sqlite3_column_text(s, 0), &state);
        reinstall = sqlite3_column_int(s, 1) != 0;
    }
    sqlite3_reset(s);
    if (state >= BD_STATE_INSTALLING && !reinstall) {
        b->installed = true;
        return seen_locked(st, now, b->mac, &b->seen, err);
    }
    uint8_t raw[16];
    if (bd_random(raw, sizeof raw, err) < 0)
        return -1;
    bd_hex(raw, sizeof raw, b->token);
    char hash[65];
    bd_sha256_hex(b->token, 32, hash);
    s = stmt(st, S_MACHINE_TOKEN_SET);
    if (s) {
        bind_text(s, 1, b->mac);
        bind_text(s, 2, hash);
        sqlite3_bind_int64(s, 3, b->bind.addr);
        sqlite3_bind_int(s, 4, b->bind.prefix);
        sqlite3_bind_int64(s, 5, now);
        bind_text(s, 6, b->seen.uuid);
        bind_text(s, 7, b->seen.ip);
        bind_text(s, 8, b->seen.arch);
    }
    if (run(st, s, err, "record boot") < 0)
        return -1;
    if (created && event_add_locked(st, now, b->mac, "bootd", "discovered", "first seen", err) < 0)
        return -1;
    if (state != BD_STATE_BOOTING &&
        event_add_locked(st, now, b->mac, "http", "booting", b->message, err) < 0)
        return -1;
    if (b->warning && event_add_locked(st, now, b->mac, "http", "warn", b->warning, err) < 0)
        return -1;
    return 0;
}

int store_boot_batch(struct store *st, struct store_boot *v, size_t n, struct bd_err *err)
{
    int64_t now = bd_now_ms();
    int rc = txn_begin(st, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        v[i].installed = false;
        v[i].token[0] = 0;
        rc = v[i].name ? boot_known_locked(st, now, &v[i], err)
                       : seen_locked(st, now, v[i].mac, &v[i].seen, err);
    }
    rc = txn_end(st, rc, err);
    for (size_t i = 0; rc < 0 && i < n; i++)
        v[i].token[0] = 0; /* nothing was recorded, so no token may be handed out */
    return rc;
}

int store_token_lookup(struct store *st, const char *token, struct store_token_info *out,
                       struct bd_err *err)
{
    char hash[65];
    bd_sha256_hex(token, strlen(token), hash);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_TOKEN_LOOKUP);
    int rc;
    if (!s) {
        rc = db_fail(st, err, "read token");
    } else {
        bind_text(s, 1, hash);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            memset(out, 0, sizeof *out);
            col_copy(s, 0, out->mac, sizeof out->mac);
            col_copy(s, 1, out->name, sizeof out->name);
            out->bind.addr = (uint32_t)sqlite3_column_int64(s, 2);
            out->bind.prefix = sqlite3_column_int(s, 3);
            out->issued_ms = sqlite3_column_int64(s, 4);
            out->first_download_ms = sqlite3_column_int64(s, 5);
            out->superseded = sqlite3_column_int(s, 6) != 0;
            rc = 1;
        } else {
            rc = r == SQLITE_DONE ? 0 : db_fail(st, err, "read token");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_token_downloaded(struct store *st, const char *token, struct bd_err *err)
{
    char hash[65];
    bd_sha256_hex(token, strlen(token), hash);
    int64_t now = bd_now_ms();
    int rc = txn_begin(st, err);
    char mac[18] = "";
    if (rc == 0) {
        sqlite3_stmt *s = stmt(st, S_TOKEN_DOWNLOADED);
        if (!s) {
            rc = db_fail(st, err, "mark token");
        } else {
            bind_text(s, 1, hash);
            sqlite3_bind_int64(s, 2, now);
            int r = sqlite3_step(s);
            if (r == SQLITE_ROW)
                col_copy(s, 0, mac, sizeof mac);
            else if (r != SQLITE_DONE)
                rc = db_fail(st, err, "mark token");
            sqlite3_reset(s);
        }
    }
    /* only the first complete download moves the machine on */
    if (rc == 0 && mac[0])
        rc = set_state_locked(st, now, mac, BD_STATE_CONFIG_SERVED, true, "http",
                              "machine config downloaded", err) < 0 ? -1 : 0;
    return txn_end(st, rc, err);
}

/* ---- gitops: inventory and sync history ---- */

void store_gitops_items_free(struct store_gitops_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].api_version);
    }
    free(v);
}

static void read_item(sqlite3_stmt *s, void *dst)
{
    struct store_gitops_item *it = dst;
    it->id = bd_xstrdup((const char *)sqlite3_column_text(s, 0));
    it->api_version = bd_xstrdup((const char *)sqlite3_column_text(s, 1));
    col_copy(s, 2, it->hash, sizeof it->hash);
}

int store_gitops_inventory(struct store *st, struct store_gitops_item **out, size_t *n,
                           struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = collect_locked(st, stmt(st, S_INV_LIST), sizeof **out, read_item, (void **)out, n,
                            "read inventory", err);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        store_gitops_items_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int sync_add_locked(struct store *st, const struct store_gitops_sync *y, struct bd_err *err)
{
    sqlite3_stmt *s = stmt(st, S_SYNC_ADD);
    if (s) {
        sqlite3_bind_int64(s, 1, y->started_ms);
        sqlite3_bind_int64(s, 2, y->finished_ms);
        bind_text(s, 3, y->revision);
        sqlite3_bind_int(s, 4, y->ok);
        sqlite3_bind_int64(s, 5, y->applied);
        sqlite3_bind_int64(s, 6, y->unchanged);
        sqlite3_bind_int64(s, 7, y->pruned);
        sqlite3_bind_int64(s, 8, y->failed);
        sqlite3_bind_int64(s, 9, y->unhealthy);
        bind_text(s, 10, y->error);
        bind_text(s, 11, y->detail);
    }
    if (run(st, s, err, "record sync") < 0)
        return -1;
    return run(st, stmt(st, S_SYNC_TRIM), err, "trim syncs");
}

int store_gitops_record(struct store *st, const struct store_gitops_sync *sync,
                        const struct store_gitops_item *inv, size_t n, bool replace_inventory,
                        struct bd_err *err)
{
    int rc = txn_begin(st, err);
    if (rc == 0 && replace_inventory) {
        rc = run(st, stmt(st, S_INV_CLEAR), err, "clear inventory");
        for (size_t i = 0; i < n && rc == 0; i++) {
            sqlite3_stmt *s = stmt(st, S_INV_PUT);
            if (s) {
                bind_text(s, 1, inv[i].id);
                bind_text(s, 2, inv[i].api_version);
                bind_text(s, 3, inv[i].hash);
            }
            rc = run(st, s, err, "write inventory");
        }
    }
    if (rc == 0)
        rc = sync_add_locked(st, sync, err);
    return txn_end(st, rc, err);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? bd_xstrdup((const char *)v) : NULL;
}

static void read_sync(sqlite3_stmt *s, void *dst)
{
    struct store_gitops_sync *out = dst;
    out->started_ms = sqlite3_column_int64(s, 0);
    out->finished_ms = sqlite3_column_int64(s, 1);
    out->revision = col_dup(s, 2);
    out->ok = sqlite3_column_int(s, 3) != 0;
    out->applied = sqlite3_column_int64(s, 4);
    out->unchanged = sqlite3_column_int64(s, 5);
    out->pruned = sqlite3_column_int64(s, 6);
    out->failed = sqlite3_column_int64(s, 7);
    out->unhealthy = sqlite3_column_int64(s, 8);
    out->error = col_dup(s, 9);
    out->detail = col_dup(s, 10);
}

int store_gitops_last_sync(struct store *st, bool ok_only, struct store_gitops_sync *out,
                           struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_SYNC_LAST);
    if (s)
        sqlite3_bind_int(s, 1, ok_only ? 1 : 0);
    int rc = fetch_one_locked(st, s, read_sync, out, "read syncs", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_gitops_sync_free(struct store_gitops_sync *y)
{
    free(y->revision);
    free(y->error);
    free(y->detail);
    memset(y, 0, sizeof *y);
}

/* ---- cluster bootstrap ---- */

static void read_bootstrap(sqlite3_stmt *s, void *dst)
{
    struct store_bootstrap *out = dst;
    col_copy(s, 0, out->node, sizeof out->node);
    out->requested = sqlite3_column_int(s, 1) != 0;
    out->attempts = sqlite3_column_int64(s, 2);
    col_copy(s, 3, out->last_error, sizeof out->last_error);
    out->done = sqlite3_column_int(s, 4) != 0;
    col_copy(s, 5, out->outcome, sizeof out->outcome);
    out->first_attempt_ms = sqlite3_column_int64(s, 6);
    out->done_ms = sqlite3_column_int64(s, 7);
}

int store_bootstrap_get(struct store *st, const char *cluster, struct store_bootstrap *out,
                        struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_BOOTSTRAP_GET);
    if (s)
        bind_text(s, 1, cluster);
    int rc = fetch_one_locked(st, s, read_bootstrap, out, "read bootstrap", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Runs a bootstrap statement on the cluster's row, made first if missing. */
static int bootstrap_update(struct store *st, enum stmt_id id, const char *cluster,
                            const char *name, const char *node, const char *error,
                            const char *outcome, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_BOOTSTRAP_ENSURE);
    if (s) {
        bind_text(s, 1, cluster);
        bind_text(s, 2, name);
    }
    int rc = run(st, s, err, "record bootstrap");
    if (rc == 0) {
        s = stmt(st, id);
        if (s) {
            bind_text(s, 1, cluster);
            if (id == S_BOOTSTRAP_ATTEMPT) {
                bind_text(s, 2, node);
                bind_text(s, 3, error);
                bind_text(s, 4, outcome);
                sqlite3_bind_int64(s, 5, bd_now_ms());
            }
        }
        rc = run(st, s, err, "record bootstrap");
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_bootstrap_request(struct store *st, const char *cluster, const char *name,
                            struct bd_err *err)
{
    return bootstrap_update(st, S_BOOTSTRAP_REQUEST, cluster, name, NULL, NULL, NULL, err);
}

int store_bootstrap_attempt(struct store *st, const char *cluster, const char *name,
                            const char *node, const char *outcome, const char *error,
                            struct bd_err *err)
{
    return bootstrap_update(st, S_BOOTSTRAP_ATTEMPT, cluster, name, node, error, outcome, err);
}
