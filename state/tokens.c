/* Network boots and the config tokens they mint. */
#include "internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokens ---- */

/* Within a transaction: one boot of a known machine. */
static int boot_known_locked(struct state_db *st, int64_t now, struct state_boot *b,
                             struct bd_err *err)
{
    if (state_ensure_machine(st, b->mac, now, true, err) < 0)
        return -1;
    bool created = sqlite3_changes(st->db) > 0;
    sqlite3_stmt *s = state_stmt(st, S_MACHINE_BOOT_GET);
    if (!s)
        return state_db_fail(st, err, "read machine");
    state_bind_text(s, 1, b->mac);
    enum state_lifecycle state = STATE_DISCOVERED;
    bool reinstall = false;
    if (sqlite3_step(s) == SQLITE_ROW) {
        state_lifecycle_parse((const char *)sqlite3_column_text(s, 0), &state);
        reinstall = sqlite3_column_int(s, 1) != 0;
    }
    sqlite3_reset(s);
    if (state >= STATE_INSTALLING && !reinstall) {
        b->installed = true;
        return state_seen_locked(st, now, b->mac, &b->seen, err);
    }
    uint8_t raw[16];
    if (bd_random(raw, sizeof raw, err) < 0)
        return -1;
    bd_hex(raw, sizeof raw, b->token);
    char hash[65];
    bd_sha256_hex(b->token, 32, hash);
    s = state_stmt(st, S_MACHINE_TOKEN_SET);
    if (s) {
        state_bind_text(s, 1, b->mac);
        state_bind_text(s, 2, hash);
        sqlite3_bind_int64(s, 3, b->bind.addr);
        sqlite3_bind_int(s, 4, b->bind.prefix);
        sqlite3_bind_int64(s, 5, now);
        state_bind_text(s, 6, b->seen.uuid);
        state_bind_text(s, 7, b->seen.ip);
        state_bind_text(s, 8, b->seen.arch);
    }
    if (state_run(st, s, err, "record boot") < 0)
        return -1;
    if (created && state_event_add_locked(st, now, b->mac, "bootd", "discovered", "first seen", err) < 0)
        return -1;
    if (state != STATE_BOOTING &&
        state_event_add_locked(st, now, b->mac, "http", "booting", b->message, err) < 0)
        return -1;
    if (b->warning && state_event_add_locked(st, now, b->mac, "http", "warn", b->warning, err) < 0)
        return -1;
    return 0;
}

int state_boot_batch(struct state_db *st, struct state_boot *v, size_t n, struct bd_err *err)
{
    int64_t now = bd_now_ms();
    int rc = state_txn_begin(st, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        v[i].installed = false;
        v[i].token[0] = 0;
        rc = v[i].name ? boot_known_locked(st, now, &v[i], err)
                       : state_seen_locked(st, now, v[i].mac, &v[i].seen, err);
    }
    rc = state_txn_end(st, rc, err);
    for (size_t i = 0; rc < 0 && i < n; i++)
        v[i].token[0] = 0; /* nothing was recorded, so no token may be handed out */
    return rc;
}

int state_token_lookup(struct state_db *st, const char *token, struct state_token_info *out,
                       struct bd_err *err)
{
    char hash[65];
    bd_sha256_hex(token, strlen(token), hash);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_TOKEN_LOOKUP);
    int rc;
    if (!s) {
        rc = state_db_fail(st, err, "read token");
    } else {
        state_bind_text(s, 1, hash);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            memset(out, 0, sizeof *out);
            state_col_copy(s, 0, out->mac, sizeof out->mac);
            state_col_copy(s, 1, out->name, sizeof out->name);
            out->bind.addr = (uint32_t)sqlite3_column_int64(s, 2);
            out->bind.prefix = sqlite3_column_int(s, 3);
            out->issued_ms = sqlite3_column_int64(s, 4);
            out->first_download_ms = sqlite3_column_int64(s, 5);
            out->superseded = sqlite3_column_int(s, 6) != 0;
            rc = 1;
        } else {
            rc = r == SQLITE_DONE ? 0 : state_db_fail(st, err, "read token");
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_token_downloaded(struct state_db *st, const char *token, struct bd_err *err)
{
    char hash[65];
    bd_sha256_hex(token, strlen(token), hash);
    int64_t now = bd_now_ms();
    int rc = state_txn_begin(st, err);
    char mac[18] = "";
    if (rc == 0) {
        sqlite3_stmt *s = state_stmt(st, S_TOKEN_DOWNLOADED);
        if (!s) {
            rc = state_db_fail(st, err, "mark token");
        } else {
            state_bind_text(s, 1, hash);
            sqlite3_bind_int64(s, 2, now);
            int r = sqlite3_step(s);
            if (r == SQLITE_ROW)
                state_col_copy(s, 0, mac, sizeof mac);
            else if (r != SQLITE_DONE)
                rc = state_db_fail(st, err, "mark token");
            sqlite3_reset(s);
        }
    }
    /* only the first complete download moves the machine on */
    if (rc == 0 && mac[0])
        rc = state_set_state_locked(st, now, mac, STATE_CONFIG_SERVED, true, "http",
                              "machine config downloaded", err) < 0 ? -1 : 0;
    return state_txn_end(st, rc, err);
}
