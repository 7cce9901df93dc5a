/* Machines: sightings, lifecycle states, lab.yaml names, listings. */
#include "internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[STATE_COUNT] = {
    "discovered", "assigned", "held", "booting", "config-served", "installing", "ready", "joined",
};

const char *state_lifecycle_name(enum state_lifecycle s)
{
    return (unsigned)s < STATE_COUNT ? state_names[s] : "unknown";
}

int state_lifecycle_parse(const char *s, enum state_lifecycle *out)
{
    for (int i = 0; i < STATE_COUNT; i++)
        if (!strcmp(s, state_names[i])) {
            *out = (enum state_lifecycle)i;
            return 0;
        }
    return -1;
}

/* ---- machines ---- */

/* Creates the machine row if missing. seen says whether the machine itself is talking
 * to us (first/last seen are set) or only lab.yaml names it (they stay 0 = never). */
int state_ensure_machine(struct state_db *st, const char *mac, int64_t now, bool seen,
                          struct bd_err *err)
{
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_INSERT);
    if (s) {
        state_bind_text(s, 1, mac);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_int64(s, 3, seen ? now : 0);
    }
    return state_run(st, s, err, "insert machine");
}

static int events_trim_locked(struct state_db *st, int64_t now, struct bd_err *err)
{
    sqlite3_stmt *s = state_stmt(st, S_EVENTS_TRIM);
    if (s) {
        sqlite3_bind_int64(s, 1, now - st->events_max_age_ms);
        sqlite3_bind_int64(s, 2, st->events_max);
    }
    st->events_since_trim = 0;
    return state_run(st, s, err, "trim events");
}

int state_event_add_locked(struct state_db *st, int64_t now, const char *mac, const char *source,
                            const char *kind, const char *message, struct bd_err *err)
{
    /* struct state_event reads these back into fixed fields: refuse what would come back cut */
    if (strlen(kind) >= sizeof ((struct state_event *)0)->kind ||
        (source && strlen(source) >= sizeof ((struct state_event *)0)->source))
        return bd_err_set(err, "event kind '%s' or source '%s' too long for the timeline", kind,
                          source ? source : "");
    sqlite3_stmt *s = state_stmt(st, S_EVENT_ADD);
    if (s) {
        sqlite3_bind_int64(s, 1, now);
        state_bind_text(s, 2, mac);
        state_bind_text(s, 3, source);
        state_bind_text(s, 4, kind);
        state_bind_text(s, 5, message ? message : "");
    }
    if (state_run(st, s, err, "add event") < 0)
        return -1;
    /* a tenth of the limit at a time: the table holds at most 110% of it */
    int64_t every = st->events_max / 10 > 0 ? st->events_max / 10 : 1;
    if (++st->events_since_trim >= (uint64_t)every)
        return events_trim_locked(st, now, err);
    return 0;
}

void state_set_event_retention(struct state_db *st, int64_t max_events, int64_t max_age_s)
{
    pthread_mutex_lock(&st->mu);
    st->events_max = max_events > 0 ? max_events : STATE_EVENTS_MAX;
    st->events_max_age_ms = (max_age_s > 0 ? max_age_s : STATE_EVENTS_MAX_AGE_S) * 1000;
    pthread_mutex_unlock(&st->mu);
}

/* Within a transaction: creates the machine if new (with a discovered event) and
 * records what the sighting says. */
int state_seen_locked(struct state_db *st, int64_t now, const char *mac,
                       const struct state_sighting *seen, struct bd_err *err)
{
    if (state_ensure_machine(st, mac, now, true, err) < 0)
        return -1;
    if (sqlite3_changes(st->db) > 0) {
        char *msg = bd_xasprintf("first seen%s%s", seen && seen->ip ? " at " : "",
                                 seen && seen->ip ? seen->ip : "");
        int rc = state_event_add_locked(st, now, mac, "bootd", "discovered", msg, err);
        free(msg);
        if (rc < 0)
            return -1;
    }
    if (!seen)
        return 0;
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_SEEN);
    if (s) {
        state_bind_text(s, 1, mac);
        sqlite3_bind_int64(s, 2, now);
        state_bind_text(s, 3, seen->uuid);
        state_bind_text(s, 4, seen->ip);
        state_bind_text(s, 5, seen->arch);
        state_bind_text(s, 6, seen->hostname);
        state_bind_text(s, 7, seen->firmware);
    }
    return state_run(st, s, err, "update machine");
}

int state_machine_seen(struct state_db *st, const char *mac, const struct state_sighting *seen,
                       struct bd_err *err)
{
    int64_t now = bd_now_ms();
    int rc = state_txn_begin(st, err);
    if (rc == 0)
        rc = state_seen_locked(st, now, mac, seen, err);
    return state_txn_end(st, rc, err);
}

/* Within a transaction: returns 1 if the state changed, 0 if it was already state.
 * by_machine says the machine itself caused the change (so it was seen now). */
int state_set_state_locked(struct state_db *st, int64_t now, const char *mac, enum state_lifecycle state,
                            bool by_machine, const char *source, const char *message,
                            struct bd_err *err)
{
    if (state_ensure_machine(st, mac, now, by_machine, err) < 0)
        return -1;
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_STATE_GET);
    if (!s)
        return state_db_fail(st, err, "read state");
    state_bind_text(s, 1, mac);
    bool same = sqlite3_step(s) == SQLITE_ROW &&
                !strcmp((const char *)sqlite3_column_text(s, 0), state_lifecycle_name(state));
    sqlite3_reset(s);
    if (same)
        return 0;
    s = state_stmt(st, S_MACHINE_STATE_SET);
    if (s) {
        state_bind_text(s, 1, mac);
        state_bind_text(s, 2, state_lifecycle_name(state));
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_int(s, 4, by_machine);
    }
    if (state_run(st, s, err, "set state") < 0 ||
        state_event_add_locked(st, now, mac, source, state_lifecycle_name(state), message, err) < 0)
        return -1;
    return 1;
}

int state_machine_set_state(struct state_db *st, const char *mac, enum state_lifecycle state,
                            const char *source, const char *message, struct bd_err *err)
{
    int rc = state_txn_begin(st, err);
    if (rc == 0)
        rc = state_set_state_locked(st, bd_now_ms(), mac, state, false, source, message, err);
    return state_txn_end(st, rc, err);
}

int state_machine_set_reinstall(struct state_db *st, const char *mac, bool on, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_REINSTALL_SET);
    if (s) {
        state_bind_text(s, 1, mac);
        sqlite3_bind_int(s, 2, on);
    }
    int rc = state_run(st, s, err, "update machine");
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static void read_machine(sqlite3_stmt *s, struct state_machine *m)
{
    memset(m, 0, sizeof *m);
    state_col_copy(s, 0, m->mac, sizeof m->mac);
    state_col_copy(s, 1, m->name, sizeof m->name);
    state_col_copy(s, 2, m->uuid, sizeof m->uuid);
    state_col_copy(s, 3, m->ip, sizeof m->ip);
    state_col_copy(s, 4, m->arch, sizeof m->arch);
    state_col_copy(s, 5, m->hostname, sizeof m->hostname);
    const unsigned char *state = sqlite3_column_text(s, 6);
    if (!state || state_lifecycle_parse((const char *)state, &m->state) < 0)
        m->state = STATE_DISCOVERED;
    m->reinstall = sqlite3_column_int(s, 7) != 0;
    m->first_seen_ms = sqlite3_column_int64(s, 8);
    m->last_seen_ms = sqlite3_column_int64(s, 9);
    m->state_since_ms = sqlite3_column_int64(s, 10);
    state_col_copy(s, 11, m->firmware, sizeof m->firmware);
}

static void read_machine_row(sqlite3_stmt *s, void *dst)
{
    read_machine(s, dst);
}

/* One machine by a statement keyed on its first parameter. */
static int machine_query(struct state_db *st, enum stmt_id id, const char *key,
                         struct state_machine *out, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, id);
    if (s)
        state_bind_text(s, 1, key);
    int rc = state_fetch_one_locked(st, s, read_machine_row, out, "read machine", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_machine_get(struct state_db *st, const char *mac, struct state_machine *out,
                      struct bd_err *err)
{
    return machine_query(st, S_MACHINE_GET, mac, out, err);
}

int state_machine_by_ip(struct state_db *st, const char *ip, struct state_machine *out,
                        struct bd_err *err)
{
    return machine_query(st, S_MACHINE_BY_IP, ip, out, err);
}

int state_machine_list(struct state_db *st, struct state_machine **out, size_t *n, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = state_collect_locked(st, state_stmt(st, S_MACHINE_LIST), sizeof **out, read_machine_row,
                            (void **)out, n, "list machines", err);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int state_machine_counts(struct state_db *st, int64_t counts[STATE_COUNT], struct bd_err *err)
{
    memset(counts, 0, sizeof(int64_t) * STATE_COUNT);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_COUNTS);
    int rc = s ? 0 : state_db_fail(st, err, "count machines");
    int r;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        enum state_lifecycle state;
        if (state_lifecycle_parse((const char *)sqlite3_column_text(s, 0), &state) == 0)
            counts[state] = sqlite3_column_int64(s, 1);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = state_db_fail(st, err, "count machines");
    if (s)
        sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct state_lab_entry *)a)->mac, ((const struct state_lab_entry *)b)->mac);
}

static int sync_entry(struct state_db *st, int64_t now, const struct state_lab_entry *e,
                      struct bd_err *err)
{
    if (state_ensure_machine(st, e->mac, now, false, err) < 0)
        return -1;
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_GET);
    if (!s)
        return state_db_fail(st, err, "read machine");
    state_bind_text(s, 1, e->mac);
    struct state_machine m;
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return state_db_fail(st, err, "read machine");
    }
    read_machine(s, &m);
    sqlite3_reset(s);
    if (strcmp(m.name, e->name)) {
        s = state_stmt(st, S_MACHINE_NAME_SET);
        if (s) {
            state_bind_text(s, 1, e->mac);
            state_bind_text(s, 2, e->name);
        }
        if (state_run(st, s, err, "name machine") < 0)
            return -1;
    }
    if (m.state != STATE_DISCOVERED)
        return 0;
    char *msg = bd_xasprintf("in lab.yaml as %s (%s)", e->name, e->role);
    int rc = state_set_state_locked(st, now, e->mac, STATE_ASSIGNED, false, "lab", msg, err);
    free(msg);
    return rc < 0 ? -1 : 0;
}

/* What the store holds of a machine, as far as lab.yaml decides it. */
struct held {
    char mac[18];
    char name[64];
    enum state_lifecycle state;
};

static int cmp_held(const void *a, const void *b)
{
    return strcmp(((const struct held *)a)->mac, ((const struct held *)b)->mac);
}

/* Every machine stored, sorted by MAC: one scan instead of a query per lab machine. */
static int read_held(struct state_db *st, struct held **out, size_t *nout, struct bd_err *err)
{
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_LIST);
    if (!s)
        return state_db_fail(st, err, "list machines");
    size_t n = 0, cap = 256;
    struct held *v = bd_xmalloc(cap * sizeof *v);
    while (sqlite3_step(s) == SQLITE_ROW) {
        struct state_machine m;
        read_machine(s, &m);
        if (n == cap) {
            cap *= 2;
            v = bd_xrealloc(v, cap * sizeof *v);
        }
        memcpy(v[n].mac, m.mac, sizeof v[n].mac);
        memcpy(v[n].name, m.name, sizeof v[n].name);
        v[n++].state = m.state;
    }
    sqlite3_reset(s);
    qsort(v, n, sizeof *v, cmp_held);
    *out = v;
    *nout = n;
    return 0;
}

/* Named machines that lab.yaml no longer lists lose their name and assignment. */
static int sync_removed(struct state_db *st, int64_t now, const struct state_lab_entry *e, size_t n,
                        const struct held *held, size_t nheld, struct bd_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < nheld && rc == 0; i++) {
        struct state_lab_entry key = {.name = NULL};
        snprintf(key.mac, sizeof key.mac, "%s", held[i].mac);
        if (!held[i].name[0] || bsearch(&key, e, n, sizeof *e, cmp_entry))
            continue;
        sqlite3_stmt *s = state_stmt(st, S_MACHINE_NAME_SET);
        if (s)
            state_bind_text(s, 1, held[i].mac);
        rc = state_run(st, s, err, "unname machine");
        if (rc == 0)
            rc = state_set_state_locked(st, now, held[i].mac, STATE_DISCOVERED, false, "lab",
                                  "no longer in lab.yaml", err) < 0 ? -1 : 0;
    }
    return rc;
}

/* Writes only what differs from what is stored: a reload of a large lab that renames one
 * machine holds the store (and so every boot being recorded) for one scan, not for a
 * write per machine. */
int state_lab_sync(struct state_db *st, struct state_lab_entry *e, size_t n, struct bd_err *err)
{
    qsort(e, n, sizeof *e, cmp_entry);
    int64_t now = bd_now_ms();
    int rc = state_txn_begin(st, err);
    struct held *held = NULL;
    size_t nheld = 0;
    if (rc == 0)
        rc = read_held(st, &held, &nheld, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct held key = {.state = STATE_DISCOVERED};
        snprintf(key.mac, sizeof key.mac, "%s", e[i].mac);
        const struct held *h = nheld ? bsearch(&key, held, nheld, sizeof *held, cmp_held) : NULL;
        if (h && !strcmp(h->name, e[i].name) && h->state != STATE_DISCOVERED)
            continue; /* as sync_entry would leave it */
        rc = sync_entry(st, now, &e[i], err);
    }
    if (rc == 0)
        rc = sync_removed(st, now, e, n, held, nheld, err);
    free(held);
    return state_txn_end(st, rc, err);
}
