/* state/ — state.db, bootd's SQLite store (WAL): machines and their timelines, config
 * tokens, events and audit, cluster records, GitOps records. One connection behind a
 * mutex; every call is one transaction. */
#ifndef STATE_H
#define STATE_H

#include "../lib/bd.h"


enum state_lifecycle {
    STATE_DISCOVERED,
    STATE_ASSIGNED,
    STATE_HELD, /* asked to boot, but its Talos image is not in the cache yet */
    STATE_BOOTING,
    STATE_CONFIG_SERVED,
    STATE_INSTALLING,
    STATE_READY,
    STATE_JOINED,
    STATE_COUNT
};
const char *state_lifecycle_name(enum state_lifecycle s);
int state_lifecycle_parse(const char *s, enum state_lifecycle *out);

struct state_db;

struct state_machine {
    char mac[18];
    char name[64];
    char uuid[48];
    char ip[16];
    char arch[16];     /* CPU: iPXE's buildarch, or the one the UKI asked for */
    char firmware[24]; /* bios, uefi or uefi-http */
    char hostname[64];
    enum state_lifecycle state;
    bool reinstall;
    int64_t first_seen_ms, last_seen_ms, state_since_ms;
};

struct state_event {
    int64_t id, ts_ms;
    char mac[18];
    char source[24];
    char kind[40];
    char *message; /* owned by the list */
};

struct state_events {
    size_t n;
    struct state_event *v;
};
void state_events_free(struct state_events *ev);

/* How a config token is bound to the network: one address, or (when iPXE and the
 * booted kernel may get different leases) the lab subnet. */
struct state_token_bind {
    uint32_t addr;
    int prefix; /* 32 = exactly addr */
};

struct state_token_info {
    char mac[18];
    char name[64];
    struct state_token_bind bind;
    int64_t issued_ms, first_download_ms; /* 0 = never downloaded */
    bool superseded; /* a later boot of the machine minted a newer token */
};

/* Opens (creating if needed) state.db under dir and applies pending migrations. */
int state_open(const char *dir, struct state_db **out, struct bd_err *err) BD_MUST_CHECK;
void state_close(struct state_db *st);
int state_schema_version(struct state_db *st);

/* What a request told us about a machine; NULL fields leave stored values alone. */
struct state_sighting {
    const char *uuid, *ip, *arch, *hostname, *firmware;
};

/* Records a sighting: creates the machine (state discovered) or refreshes it. */
int state_machine_seen(struct state_db *st, const char *mac, const struct state_sighting *s,
                       struct bd_err *err) BD_MUST_CHECK;

/* A machine as lab.yaml names it. */
struct state_lab_entry {
    char mac[18];
    const char *name;
    const char *role;
};
/* Brings stored names and states in line with lab.yaml in one transaction: machines it
 * lists are named and at least assigned; named machines it no longer lists go back to
 * discovered. Sorts e by MAC. */
int state_lab_sync(struct state_db *st, struct state_lab_entry *e, size_t n, struct bd_err *err) BD_MUST_CHECK;
/* Moves a machine to state (creating it if needed); adds an event only when the state
 * changes. Returns 1 if the state changed, 0 if not. */
int state_machine_set_state(struct state_db *st, const char *mac, enum state_lifecycle state,
                            const char *source, const char *message, struct bd_err *err) BD_MUST_CHECK;
int state_machine_set_reinstall(struct state_db *st, const char *mac, bool on, struct bd_err *err) BD_MUST_CHECK;
/* 1 found, 0 not found, -1 error. */
int state_machine_get(struct state_db *st, const char *mac, struct state_machine *out,
                      struct bd_err *err) BD_MUST_CHECK;
int state_machine_list(struct state_db *st, struct state_machine **out, size_t *n, struct bd_err *err) BD_MUST_CHECK;
/* The machine last seen at ip (IPv4 text). 1 found, 0 not, -1 error. */
int state_machine_by_ip(struct state_db *st, const char *ip, struct state_machine *out,
                        struct bd_err *err) BD_MUST_CHECK;
int state_machine_counts(struct state_db *st, int64_t counts[STATE_COUNT], struct bd_err *err) BD_MUST_CHECK;

/* Events older than max_age_s, and beyond the newest max_events, are deleted as new ones
 * come (0: the defaults). */
#define STATE_EVENTS_MAX 100000
#define STATE_EVENTS_MAX_AGE_S (90 * 86400)
void state_set_event_retention(struct state_db *st, int64_t max_events, int64_t max_age_s);
/* mac may be NULL for events that concern no machine (e.g. an unknown token). */
int state_event_add(struct state_db *st, const char *mac, const char *source, const char *kind,
                    const char *message, struct bd_err *err) BD_MUST_CHECK;
/* The same where the event is a note beside the real work: a failure is logged, not
 * returned. */
void state_event_note(struct state_db *st, const char *mac, const char *source, const char *kind,
                      const char *message);
int state_events_for(struct state_db *st, const char *mac, int64_t limit, struct state_events *out,
                     struct bd_err *err) BD_MUST_CHECK;

/* One network boot as the store sees it (see state_boot_batch). */
struct state_boot {
    /* in */
    const char *mac;
    const char *name;                 /* lab.yaml name; NULL for an unknown machine */
    struct state_sighting seen;
    struct state_token_bind bind;     /* used when a token is minted */
    const char *message;              /* for the booting event */
    const char *warning;              /* an extra warn event, or NULL */
    bool held;                        /* its image is missing: held, sighted, no token */
    /* out */
    bool installed;                   /* installed and no reinstall asked: boot from disk */
    char token[33];                   /* the minted token (32 hex chars), or "" */
};

/* Records many network boots in one transaction. Unknown machines (name NULL) are
 * only sighted. Known ones are sighted and, unless installed, get a fresh 128-bit
 * token that supersedes their earlier ones and move to booting. Only the token's
 * SHA-256 is stored. All or nothing. */
int state_boot_batch(struct state_db *st, struct state_boot *v, size_t n, struct bd_err *err) BD_MUST_CHECK;
/* 1 found (the machine's newest token, or superseded: the one before it), 0 unknown or
 * older, -1 error. */
int state_token_lookup(struct state_db *st, const char *token, struct state_token_info *out,
                       struct bd_err *err) BD_MUST_CHECK;
/* Records the first complete download (later ones keep the first time) and moves the
 * machine to config-served. */
int state_token_downloaded(struct state_db *st, const char *token, struct bd_err *err) BD_MUST_CHECK;

/* GitOps (gitops/): what bootd applied and how its syncs went. */
struct state_gitops_item {
    char *id;          /* group/kind/namespace/name */
    char *api_version;
    char hash[65];     /* SHA-256 of the object as last sent */
};
struct state_gitops_sync {
    int64_t started_ms, finished_ms;
    char *revision; /* the commit rendered, or NULL when none was reached */
    bool ok;
    int64_t applied, unchanged, pruned, failed, unhealthy;
    char *error;  /* NULL when ok */
    char *detail; /* JSON: the objects that failed, were unhealthy or pruned */
};
int state_gitops_inventory(struct state_db *st, struct state_gitops_item **out, size_t *n,
                           struct bd_err *err) BD_MUST_CHECK;
void state_gitops_items_free(struct state_gitops_item *v, size_t n);
/* Adds a sync to the history (the newest 100 are kept) and, when replace_inventory,
 * swaps the inventory for inv, all in one transaction. */
int state_gitops_record(struct state_db *st, const struct state_gitops_sync *sync,
                        const struct state_gitops_item *inv, size_t n, bool replace_inventory,
                        struct bd_err *err) BD_MUST_CHECK;
/* The newest sync (or the newest ok one): 1 found, 0 none, -1 error. Caller frees out. */
int state_gitops_last_sync(struct state_db *st, bool ok_only, struct state_gitops_sync *out,
                           struct bd_err *err) BD_MUST_CHECK;
void state_gitops_sync_free(struct state_gitops_sync *y);

/* Cluster bootstrap (server/reconcile.c): one record per cluster, keyed by the cluster
 * id of its secrets bundle. */
struct state_bootstrap {
    char node[64];    /* the machine Bootstrap was called on */
    bool requested;   /* bootctl bootstrap asked for it */
    int64_t attempts;
    char last_error[512];
    bool done;        /* never called again once set */
    char outcome[32]; /* bootstrapped | already-bootstrapped */
    int64_t first_attempt_ms, done_ms;
};
/* 1 found, 0 no record yet, -1 error. */
int state_bootstrap_get(struct state_db *st, const char *cluster, struct state_bootstrap *out,
                        struct bd_err *err) BD_MUST_CHECK;
int state_bootstrap_request(struct state_db *st, const char *cluster, const char *name,
                            struct bd_err *err) BD_MUST_CHECK;
/* Counts an attempt on node: with outcome (error NULL) it is done for good; otherwise
 * error says why not yet. A record already done is left alone. */
int state_bootstrap_attempt(struct state_db *st, const char *cluster, const char *name,
                            const char *node, const char *outcome, const char *error,
                            struct bd_err *err) BD_MUST_CHECK;

/* bootctl rebuild (cluster/rebuild.c): one record per cluster. */
struct state_rebuild {
    char snapshot[1024]; /* the etcd snapshot to restore; "" = a fresh bootstrap */
    bool skip_hash;      /* a raw db copy without etcd's SHA-256 trailer */
    char phase[32];      /* vms | reinstall | recovering | recovered */
    char node[64];       /* the control plane recovery was last tried on */
    int64_t attempts;
    char last_error[512];
    int64_t started_ms, recovered_ms;
};
/* 1 found, 0 none, -1 error. */
int state_rebuild_get(struct state_db *st, const char *cluster, struct state_rebuild *out,
                      struct bd_err *err) BD_MUST_CHECK;
/* In one transaction: the rebuild record (replacing an earlier one) in its first phase,
 * every machine in macs told to install again, and the cluster's bootstrap record
 * forgotten, so the reconciler bootstraps (or recovers) once more. */
int state_rebuild_start(struct state_db *st, const char *cluster, const char *snapshot,
                        bool skip_hash, const char *phase, const char *const *macs,
                        size_t nmacs, struct bd_err *err) BD_MUST_CHECK;
/* Records where the rebuild stands; error (not NULL) counts an attempt. */
int state_rebuild_progress(struct state_db *st, const char *cluster, const char *phase,
                           const char *node, const char *error, struct bd_err *err) BD_MUST_CHECK;

/* The config a machine last got (bootctl plan and apply): served at PXE time or pushed
 * through the Talos API. Only its SHA-256 and a redacted copy are kept. */
struct state_applied {
    char sha256[65];
    char *redacted; /* caller frees (state_applied_clear) */
    char how[32];   /* pxe, auto, no-reboot, reboot, staged, try */
    int64_t applied_ms;
};
/* 1 found, 0 none, -1 error. */
int state_applied_get(struct state_db *st, const char *mac, struct state_applied *out,
                      struct bd_err *err) BD_MUST_CHECK;
int state_applied_put(struct state_db *st, const char *mac, const char *sha256,
                      const char *redacted, const char *how, struct bd_err *err) BD_MUST_CHECK;
void state_applied_clear(struct state_applied *a);

/* The day-2 job (bootctl apply, bootctl upgrade): one at a time; a new one replaces a
 * finished one. */
struct state_day2 {
    char kind[24];       /* apply | upgrade-talos */
    char arg[64];        /* the apply mode, or the Talos version */
    char machines[2048]; /* names in order, space-separated */
    int64_t pos;         /* index of the machine at hand */
    char phase[16];      /* call | wait | done | failed */
    bool down_seen;      /* the machine at hand went away (rebooting) */
    int64_t step_started_ms, timeout_s, started_ms, finished_ms;
    char error[1024];
};
/* 1 found, 0 none, -1 error. */
int state_day2_get(struct state_db *st, struct state_day2 *out, struct bd_err *err) BD_MUST_CHECK;
int state_day2_start(struct state_db *st, const char *kind, const char *arg, const char *machines,
                     int64_t timeout_s, struct bd_err *err) BD_MUST_CHECK;
/* Where the job stands (pos, phase, down_seen, step_started_ms, error). */
int state_day2_set(struct state_db *st, const struct state_day2 *j, struct bd_err *err) BD_MUST_CHECK;
/* The smbios1 uuid of a machine's Proxmox VM (proxmox/), by the machine's MAC. */
struct state_vm_uuid {
    char uuid[37];
    char source[16]; /* adopted (from an existing VM) | derived */
};
/* 1 found, 0 none recorded, -1 error. */
int state_vm_uuid_get(struct state_db *st, const char *mac, struct state_vm_uuid *out,
                      struct bd_err *err) BD_MUST_CHECK;
/* Records the uuid unless one is recorded already (the first stays: generated once);
 * with source "lab" (lab.yaml names it) it replaces the record. Returns 1 when recorded
 * now, 0 when the record stayed as it was. */
int state_vm_uuid_record(struct state_db *st, const char *mac, const char *uuid,
                         const char *source, struct bd_err *err) BD_MUST_CHECK;

#endif
