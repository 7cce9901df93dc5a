/* Proxmox VM records: the smbios1 uuid chosen for each machine's VM. */
#include "internal.h"

#include <sqlite3.h>
#include <string.h>

static void read_vm_uuid(sqlite3_stmt *s, void *dst)
{
    struct state_vm_uuid *out = dst;
    state_col_copy(s, 0, out->uuid, sizeof out->uuid);
    state_col_copy(s, 1, out->source, sizeof out->source);
}

int state_vm_uuid_get(struct state_db *st, const char *mac, struct state_vm_uuid *out,
                      struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, S_VM_UUID_GET);
    if (s)
        state_bind_text(s, 1, mac);
    int rc = state_fetch_one_locked(st, s, read_vm_uuid, out, "read VM uuid", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int state_vm_uuid_record(struct state_db *st, const char *mac, const char *uuid,
                         const char *source, struct bd_err *err)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = state_stmt(st, strcmp(source, "lab") ? S_VM_UUID_PUT : S_VM_UUID_SET);
    if (s) {
        state_bind_text(s, 1, mac);
        state_bind_text(s, 2, uuid);
        state_bind_text(s, 3, source);
        sqlite3_bind_int64(s, 4, bd_now_ms());
    }
    int rc = state_run(st, s, err, "record VM uuid");
    if (rc == 0)
        rc = sqlite3_changes(st->db) > 0;
    pthread_mutex_unlock(&st->mu);
    return rc;
}
