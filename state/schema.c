/* The schema of state.db and the SQL of every statement bootd runs on it. */
#include "internal.h"

/* Each entry upgrades the schema by one version; never edit one that has shipped. */
const char *const state_migrations[] = {
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
    /* 4: bootctl rebuild, one row per cluster: what it restores and how far it got, so
     * a bootd that restarts mid-rebuild carries on. */
    "CREATE TABLE rebuild ("
    "  cluster TEXT PRIMARY KEY,"
    "  snapshot TEXT NOT NULL DEFAULT '',"      /* '' = a fresh bootstrap */
    "  skip_hash INTEGER NOT NULL DEFAULT 0,"
    "  phase TEXT NOT NULL,"                    /* reinstall | recovering | recovered */
    "  node TEXT NOT NULL DEFAULT '',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  started INTEGER NOT NULL,"
    "  recovered INTEGER NOT NULL DEFAULT 0);",
    /* 5: the firmware a machine booted with (bios, uefi, uefi-http), apart from its CPU
     * arch: DHCP tells the one, iPXE both. */
    "ALTER TABLE machines ADD COLUMN firmware TEXT;",
    /* 6: the config each machine last got (served at PXE time or applied through the
     * Talos API): its SHA-256 and its text with every secret redacted (never the
     * secrets), for bootctl plan's diff. */
    "CREATE TABLE applied_configs ("
    "  mac TEXT PRIMARY KEY,"
    "  sha256 TEXT NOT NULL,"
    "  redacted TEXT NOT NULL,"
    "  how TEXT NOT NULL,"                     /* pxe | auto | no-reboot | reboot | ... */
    "  applied_at INTEGER NOT NULL);"
    /* the day-2 job under way (bootctl apply, bootctl upgrade): one at a time, kept so a
     * bootd that restarts carries on with the machine it was at */
    "CREATE TABLE day2_job ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  kind TEXT NOT NULL,"                    /* apply | upgrade-talos */
    "  arg TEXT NOT NULL,"                     /* the apply mode, or the Talos version */
    "  machines TEXT NOT NULL,"                /* names in order, space-separated */
    "  pos INTEGER NOT NULL DEFAULT 0,"        /* the machine at hand */
    "  phase TEXT NOT NULL,"                   /* call | wait | done | failed */
    "  down_seen INTEGER NOT NULL DEFAULT 0,"  /* the machine at hand went away */
    "  step_started INTEGER NOT NULL DEFAULT 0,"
    "  timeout_s INTEGER NOT NULL,"
    "  started INTEGER NOT NULL,"
    "  finished INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT);",
    /* 7: the smbios1 uuid of each machine's Proxmox VM, by MAC: chosen once (adopted from
     * a VM that already has one, else derived) and kept, so renaming the machine or the
     * cluster never changes the uuid the Proxmox CSI plugin matches nodes by. */
    "CREATE TABLE vm_uuids ("
    "  mac TEXT PRIMARY KEY,"
    "  uuid TEXT NOT NULL,"
    "  source TEXT NOT NULL," /* adopted | derived */
    "  recorded INTEGER NOT NULL);",
};

const size_t state_nmigrations = sizeof state_migrations / sizeof state_migrations[0];


const char *const state_stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_MACHINE_INSERT] = "INSERT OR IGNORE INTO machines(mac, state, first_seen, last_seen, "
                         "state_since) VALUES (?1, 'discovered', ?3, ?3, ?2)",
    [S_MACHINE_SEEN] = "UPDATE machines SET last_seen = ?2, uuid = coalesce(?3, uuid),"
                       " first_seen = CASE first_seen WHEN 0 THEN ?2 ELSE first_seen END,"
                       " ip = coalesce(?4, ip), arch = coalesce(?5, arch),"
                       " hostname = coalesce(?6, hostname), firmware = coalesce(?7, firmware)"
                       " WHERE mac = ?1",
    [S_MACHINE_STATE_GET] = "SELECT state FROM machines WHERE mac = ?1",
    [S_MACHINE_STATE_SET] = "UPDATE machines SET state = ?2, state_since = ?3,"
                            " last_seen = CASE WHEN ?4 THEN ?3 ELSE last_seen END,"
                            " reinstall = CASE WHEN ?2 = 'booting' THEN 0 ELSE reinstall END"
                            " WHERE mac = ?1",
    [S_MACHINE_NAME_SET] = "UPDATE machines SET name = ?2 WHERE mac = ?1",
    [S_MACHINE_REINSTALL_SET] = "UPDATE machines SET reinstall = ?2 WHERE mac = ?1",
    [S_MACHINE_GET] = "SELECT mac, name, uuid, ip, arch, hostname, state, reinstall, first_seen,"
                      " last_seen, state_since, firmware FROM machines WHERE mac = ?1",
    [S_MACHINE_LIST] = "SELECT mac, name, uuid, ip, arch, hostname, state, reinstall, first_seen,"
                       " last_seen, state_since, firmware FROM machines ORDER BY name IS NULL, name, mac",
    [S_MACHINE_BY_IP] = "SELECT mac, name, uuid, ip, arch, hostname, state, reinstall, first_seen,"
                        " last_seen, state_since, firmware FROM machines WHERE ip = ?1"
                        " ORDER BY last_seen DESC LIMIT 1",
    [S_MACHINE_COUNTS] = "SELECT state, count(*) FROM machines GROUP BY state",
    [S_EVENT_ADD] = "INSERT INTO events(ts, mac, source, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* ids only grow, so the newest max are those above max(id) - max */
    [S_EVENTS_TRIM] = "DELETE FROM events WHERE ts < ?1 OR id <= (SELECT max(id) FROM events) - ?2",
    [S_EVENTS_FOR] = "SELECT id, ts, mac, source, kind, message FROM"
                     " (SELECT * FROM events WHERE mac IS ?1 ORDER BY id DESC LIMIT ?2)"
                     " ORDER BY id",
    /* one statement for the whole of a boot: sighting, new token, state booting */
    [S_MACHINE_TOKEN_SET] = "UPDATE machines SET token_prev = token, token = ?2, token_addr = ?3,"
                            " token_prefix = ?4, token_issued = ?5, token_downloaded = 0,"
                            " last_seen = ?5, uuid = coalesce(?6, uuid), ip = coalesce(?7, ip),"
                            " arch = coalesce(?8, arch), firmware = coalesce(?9, firmware),"
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
    [S_REBUILD_GET] = "SELECT snapshot, skip_hash, phase, node, attempts, coalesce(last_error, ''),"
                      " started, recovered FROM rebuild WHERE cluster = ?1",
    [S_REBUILD_START] = "INSERT OR REPLACE INTO rebuild(cluster, snapshot, skip_hash, phase,"
                        " started) VALUES (?1, ?2, ?3, ?5, ?4)",
    [S_REBUILD_PROGRESS] = "UPDATE rebuild SET phase = ?2, node = ?3, last_error = ?4,"
                           " attempts = attempts + (?4 IS NOT NULL),"
                           " recovered = CASE WHEN ?2 = 'recovered' THEN ?5 ELSE recovered END"
                           " WHERE cluster = ?1",
    [S_BOOTSTRAP_FORGET] = "DELETE FROM bootstrap WHERE cluster = ?1",
    [S_BOOTSTRAP_ENSURE] = "INSERT OR IGNORE INTO bootstrap(cluster, name) VALUES (?1, ?2)",
    [S_BOOTSTRAP_REQUEST] = "UPDATE bootstrap SET requested = 1 WHERE cluster = ?1 AND NOT done",
    /* a done row never changes again: that is what "exactly once" rests on */
    [S_BOOTSTRAP_ATTEMPT] = "UPDATE bootstrap SET node = ?2, attempts = attempts + 1,"
                            " last_error = ?3, done = ?4 IS NOT NULL, outcome = ?4,"
                            " first_attempt = CASE first_attempt WHEN 0 THEN ?5"
                            " ELSE first_attempt END,"
                            " done_at = CASE WHEN ?4 IS NOT NULL THEN ?5 ELSE 0 END"
                            " WHERE cluster = ?1 AND NOT done",
    [S_APPLIED_GET] = "SELECT sha256, redacted, how, applied_at FROM applied_configs WHERE mac = ?1",
    [S_DAY2_GET] = "SELECT kind, arg, machines, pos, phase, down_seen, step_started, timeout_s,"
                   " started, finished, coalesce(error, '') FROM day2_job WHERE id = 1",
    [S_DAY2_START] = "INSERT OR REPLACE INTO day2_job(id, kind, arg, machines, phase, timeout_s,"
                     " started) VALUES (1, ?1, ?2, ?3, 'call', ?4, ?5)",
    [S_DAY2_SET] = "UPDATE day2_job SET pos = ?1, phase = ?2, down_seen = ?3, step_started = ?4,"
                   " error = ?5, finished = CASE WHEN ?2 IN ('done', 'failed') THEN ?6 ELSE 0 END"
                   " WHERE id = 1",
    [S_APPLIED_PUT] = "INSERT OR REPLACE INTO applied_configs(mac, sha256, redacted, how, applied_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_VM_UUID_GET] = "SELECT uuid, source FROM vm_uuids WHERE mac = ?1",
    /* the first one recorded stays */
    [S_VM_UUID_PUT] = "INSERT OR IGNORE INTO vm_uuids(mac, uuid, source, recorded)"
                      " VALUES (?1, ?2, ?3, ?4)",
    /* lab.yaml's uuid: asked for, so it replaces what was recorded */
    [S_VM_UUID_SET] = "INSERT INTO vm_uuids(mac, uuid, source, recorded) VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT(mac) DO UPDATE SET uuid = ?2, source = ?3, recorded = ?4"
                      " WHERE uuid IS NOT ?2 OR source IS NOT ?3",
};
