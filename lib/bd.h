/* lib/ — the shared foundation of bootd and bootctl: errors, buffers, YAML trees,
 * the lab.yaml model, the SQLite state store, atomic files, randomness, hashing and
 * the outbound HTTP client. Every other folder may include this header; it includes
 * nothing of theirs. */
#ifndef BD_H
#define BD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------- errors ---------- */

/* Functions return 0 on success and -1 on failure with a human message here. */
struct bd_err {
    char msg[1024];
};

int bd_err_set(struct bd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to the message already in e; returns -1. */
int bd_err_prefix(struct bd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------- logging ---------- */

enum bd_log_level { BD_LOG_DEBUG, BD_LOG_INFO, BD_LOG_WARN, BD_LOG_ERROR };
void bd_log_set_level(enum bd_log_level lvl);
void bd_log(enum bd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define bd_info(...) bd_log(BD_LOG_INFO, __VA_ARGS__)
#define bd_warn(...) bd_log(BD_LOG_WARN, __VA_ARGS__)
#define bd_error(...) bd_log(BD_LOG_ERROR, __VA_ARGS__)
#define bd_debug(...) bd_log(BD_LOG_DEBUG, __VA_ARGS__)

/* ---------- growable byte buffer (always NUL-terminated) ---------- */

struct bd_buf {
    char *data;
    size_t len, cap;
};

void bd_buf_init(struct bd_buf *b);
void bd_buf_free(struct bd_buf *b);
void bd_buf_reset(struct bd_buf *b);
void bd_buf_append(struct bd_buf *b, const void *p, size_t n);
void bd_buf_puts(struct bd_buf *b, const char *s);
void bd_buf_printf(struct bd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bd_buf_vprintf(struct bd_buf *b, const char *fmt, va_list ap);
/* Hands the data to the caller (caller frees) and leaves b empty. */
char *bd_buf_steal(struct bd_buf *b);

/* xmalloc family: abort with a message on out-of-memory; bootd cannot continue then. */
void *bd_xmalloc(size_t n);
void *bd_xcalloc(size_t n, size_t sz);
void *bd_xrealloc(void *p, size_t n);
char *bd_xstrdup(const char *s);
char *bd_xstrndup(const char *s, size_t n);
char *bd_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------- arena: many small allocations freed together ---------- */

struct bd_arena_block;
struct bd_arena {
    struct bd_arena_block *head;
};
void *bd_arena_alloc(struct bd_arena *a, size_t n); /* zeroed */
char *bd_arena_strdup(struct bd_arena *a, const char *s);
void bd_arena_free(struct bd_arena *a);

/* ---------- files ---------- */

/* Reads a whole file (caller frees *out). Fails with the path in the message. */
int bd_file_read(const char *path, char **out, size_t *len, struct bd_err *err);
/* Writes data to path atomically: temp file in the same directory, fsync, rename,
 * fsync of the directory. Readers see the old or the new file, never a mix. */
int bd_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct bd_err *err);
/* The same, written piece by piece (a download): begin, write as often as needed, then
 * commit (fsync, rename, fsync of the directory) or abort (the temp file goes). Until
 * commit, path keeps its old contents. */
struct bd_file_atomic {
    int fd;
    char *path, *tmp;
};
int bd_file_atomic_begin(struct bd_file_atomic *f, const char *path, mode_t mode,
                         struct bd_err *err);
int bd_file_atomic_write(struct bd_file_atomic *f, const void *data, size_t len,
                         struct bd_err *err);
int bd_file_atomic_commit(struct bd_file_atomic *f, struct bd_err *err); /* aborts on failure */
void bd_file_atomic_abort(struct bd_file_atomic *f);
/* Refuses a secret file that group or others can read, naming the chmod to run. */
int bd_file_check_private(const char *path, struct bd_err *err);
/* Creates a directory and its parents (mode for the new ones). */
int bd_mkdir_p(const char *path, mode_t mode, struct bd_err *err);
/* dirname of path, relative paths resolved against base_dir (caller frees). */
char *bd_path_join(const char *dir, const char *rel);
char *bd_path_dir(const char *path);

/* ---------- randomness, encodings, hashes ---------- */

int bd_random(void *buf, size_t n, struct bd_err *err);
void bd_hex(const void *in, size_t n, char *out); /* out: 2n+1 bytes */
void bd_sha256(const void *data, size_t n, uint8_t out[32]);
void bd_sha256_hex(const void *data, size_t n, char out[65]);
/* Compares two secrets in time that depends only on their lengths' digests. */
bool bd_secret_equal(const char *a, const char *b);

/* ---------- addresses ---------- */

struct bd_mac {
    uint8_t b[6];
};
/* Accepts 52:54:00:12:34:56, 52-54-00-12-34-56 and 525400123456, any case. */
int bd_mac_parse(const char *s, struct bd_mac *m);
void bd_mac_format(const struct bd_mac *m, char out[18]); /* lower-case, colons */
int bd_mac_cmp(const struct bd_mac *a, const struct bd_mac *b);

/* IPv4 addresses are kept in host byte order. */
int bd_ipv4_parse(const char *s, uint32_t *out);
void bd_ipv4_format(uint32_t a, char out[16]);
int bd_cidr_parse(const char *s, uint32_t *addr, int *prefix);
bool bd_ipv4_in(uint32_t a, uint32_t net, int prefix);
/* Parses "10s", "5m", "2h", "1d" or plain seconds. */
int bd_duration_parse(const char *s, int64_t *seconds);
/* URL with an allowed scheme list ("http,https"); host must be non-empty. */
int bd_url_check(const char *s, const char *schemes, struct bd_err *err);
/* A DNS label: 1..63 of [a-z0-9-], not starting or ending with '-'. */
bool bd_dns_label_ok(const char *s);
bool bd_dns_name_ok(const char *s);
/* Kubernetes label (and annotation, taint) keys: [DNS-subdomain/]name, the name at most
 * 63 of [A-Za-z0-9._-] with alphanumeric ends; values the same or empty. */
bool bd_k8s_label_key_ok(const char *key);
bool bd_k8s_label_value_ok(const char *value);

int64_t bd_now_ms(void);

/* ---------- YAML tree ---------- */

enum bd_node_kind { BD_NODE_SCALAR, BD_NODE_MAP, BD_NODE_SEQ };

/* A parsed YAML node with its position. A map keeps its entries in order:
 * kids[2i] is the key (a scalar), kids[2i+1] its value; n counts entries. */
struct bd_node {
    enum bd_node_kind kind;
    int line, col; /* 1-based */
    bool plain;    /* scalar written without quotes or explicit !!str tag */
    char *str;     /* scalar text */
    size_t n, cap;
    struct bd_node **kids;
};

/* A file's documents. file is kept for error messages. */
struct bd_yaml_doc {
    char *file;
    size_t ndocs;
    struct bd_node **docs;
};

int bd_yaml_parse(const char *text, size_t len, const char *file, struct bd_yaml_doc *out,
                  struct bd_err *err);
int bd_yaml_parse_file(const char *path, struct bd_yaml_doc *out, struct bd_err *err);
void bd_yaml_doc_free(struct bd_yaml_doc *d);

struct bd_node *bd_node_new(enum bd_node_kind kind);
struct bd_node *bd_node_scalar(const char *s, bool plain);
void bd_node_free(struct bd_node *n);
struct bd_node *bd_node_clone(const struct bd_node *n);
/* Map lookup by key; NULL if absent or n is not a map. */
struct bd_node *bd_node_get(const struct bd_node *n, const char *key);
void bd_node_map_set(struct bd_node *map, const char *key, struct bd_node *val); /* takes val */
void bd_node_seq_push(struct bd_node *seq, struct bd_node *item);             /* takes item */
bool bd_node_is_null(const struct bd_node *n);
const char *bd_node_kind_name(const struct bd_node *n);

/* Emits YAML the way go-yaml v3/v4 does with 4-space indentation (what Talos and Image
 * Factory write): block style, sequence items indented under their key, strings
 * quoted only when they would read back as something else, multi-line strings as
 * literal blocks. A scalar with plain=true is written as is (true, 7445, null); one
 * with plain=false is a string. */
void bd_yaml_emit(struct bd_buf *out, const struct bd_node *n);
/* Several documents separated by "---". */
void bd_yaml_emit_docs(struct bd_buf *out, struct bd_node *const *docs, size_t n);
/* true when s, written plain, would read back as the string s. */
bool bd_yaml_plain_safe(const char *s);

/* YAML tree <-> cJSON. Plain scalars become numbers, booleans or null where YAML 1.2
 * says so; everything else is a string. Caller frees the result. */
struct cJSON;
struct cJSON *bd_node_to_json(const struct bd_node *n);
struct bd_node *bd_node_from_json(const struct cJSON *j);
/* Adds key: "2026-11-26T03:40:28.594Z" (UTC), or null when ms is 0. */
void bd_json_add_time(struct cJSON *o, const char *key, int64_t ms);

/* ---------- lab.yaml model ---------- */

enum lab_role { LAB_ROLE_CONTROLPLANE, LAB_ROLE_WORKER };
enum lab_dhcp_mode { LAB_DHCP_FULL, LAB_DHCP_PROXY };
enum lab_unknown_policy { LAB_UNKNOWN_HOLD, LAB_UNKNOWN_EXIT };
enum lab_cni { LAB_CNI_FLANNEL, LAB_CNI_NONE, LAB_CNI_CUSTOM };
/* auto: bootd bootstraps the cluster once the bootstrap node's Talos API answers;
 * manual: only when asked (bootctl bootstrap). */
enum lab_bootstrap { LAB_BOOTSTRAP_AUTO, LAB_BOOTSTRAP_MANUAL };
/* How a machine's Talos gets its address: by DHCP, or set from ip, lan.subnet,
 * lan.gateway and lan.dns in its config. */
enum lab_addressing { LAB_ADDR_DHCP, LAB_ADDR_STATIC };

struct lab_strlist {
    size_t n;
    char **v;
};

struct lab_kv {
    char *key, *value;
};
struct lab_kvlist {
    size_t n;
    struct lab_kv *v;
};

struct lab_ipv4list {
    size_t n;
    uint32_t *v;
};

struct lab_cidr {
    uint32_t addr;
    int prefix;
};

struct lab_manifest {
    char *name, *file;
};

struct lab_where { /* where a thing was written, for later error messages */
    const char *file;
    int line;
};

struct lab_proxmox_vm {
    bool set;
    char *node;
    int vmid, cores, memory_mib, disk_gib;
};

struct lab_machine {
    char *name;
    struct bd_mac mac;
    char *uuid; /* lower-case, or NULL */
    enum lab_role role;
    uint32_t ip;
    bool has_ip;
    enum lab_addressing addressing;
    char *hostname; /* defaults to name */
    char *install_disk;
    char *config_file; /* user-supplied Talos config for this machine, or NULL */
    struct lab_strlist patches;
    struct lab_strlist kernel_args;
    struct lab_kvlist labels;
    struct lab_proxmox_vm proxmox;
    struct lab_where where;
};

struct lab_role_cfg {
    struct lab_strlist patches;
    char *config_file; /* user-supplied Talos config for the role, or NULL */
};

struct lab_range {
    uint32_t start, end;
    bool set;
};

struct lab_cluster {
    char *name;
    char *endpoint;
    uint32_t vip;
    bool has_vip;
    char *talos_version;
    char *kubernetes_version;
    char *install_disk;
    char *secrets_file;
    char *bootstrap_node;
    enum lab_bootstrap bootstrap;
    enum lab_cni cni;
    bool kube_proxy;      /* false when Cilium replaces it */
    bool discovery;
    bool allow_scheduling_on_control_planes;
    char *pod_subnet, *service_subnet, *dns_domain;
    struct lab_strlist cert_sans;
    struct lab_strlist patches; /* every machine */
    struct lab_role_cfg roles[2]; /* indexed by enum lab_role */
    size_t n_inline_manifests;
    struct lab_manifest *inline_manifests;
    struct lab_strlist extra_manifests;
    struct lab_kvlist template_files; /* ${name} in *.tftpl patches -> file (resolved path) */
};

struct lab_lan {
    char *interface;
    enum lab_dhcp_mode dhcp;
    struct lab_cidr subnet;
    struct lab_range range;
    uint32_t gateway;
    bool has_gateway;
    struct lab_ipv4list dns;
    char *domain;
    uint32_t boot_server;
    int http_port;
    int log_port; /* kernel-log sink; 0 = off */
    bool dnsmasq;    /* bootd runs dnsmasq for this lab */
    bool only_known; /* full mode: lease addresses to lab.yaml's machines only */
    char *ipxe_bios, *ipxe_efi, *ipxe_snp;
};

struct lab_boot {
    enum lab_unknown_policy unknown;
    int64_t hold_retry_s;
    struct lab_strlist console;
    struct lab_strlist kernel_args;
    int64_t token_grace_s;
    int64_t token_max_age_s;
};

struct lab_images {
    char *factory;
    char *schematic_file; /* NULL = vanilla */
    struct lab_strlist arch;
    char *lock_file;
    int64_t timeout_s; /* a download that sends nothing for this long fails */
};

struct lab_gitops_group {
    char *name;
    struct lab_strlist paths;
};

struct lab_gitops {
    bool set;
    char *repo, *ref;
    char *token_file, *ssh_key_file;
    int64_t interval_s;
    int64_t health_timeout_s;
    bool prune;
    char *kustomize;          /* external kustomize or kubectl; NULL = search PATH */
    int64_t kustomize_timeout_s;
    char *kubeconfig;         /* NULL = <state-dir>/kubeconfig */
    size_t ngroups;
    struct lab_gitops_group *groups;
};

struct lab_service {
    char *name;
    uint32_t ip; /* services.ingress_ip when the record has none */
    bool has_ip;
    struct lab_where where;
};

struct lab_services {
    char *domain;
    bool dns;
    uint32_t ingress_ip;
    bool has_ingress_ip;
    size_t n;
    struct lab_service *v;
};

struct lab_proxmox {
    bool set;
    char *api, *token_file, *node, *storage, *bridge, *ca_file;
    int vlan;
    bool verify_tls;
};

struct lab {
    struct bd_arena arena;
    char *path; /* lab.yaml as given */
    char *dir;  /* its directory; relative paths in lab.yaml resolve here */
    char *machines_dir;
    struct lab_cluster cluster;
    struct lab_lan lan;
    struct lab_boot boot;
    struct lab_images images;
    struct lab_gitops gitops;
    struct lab_services services;
    struct lab_proxmox proxmox;
    size_t nmachines;
    struct lab_machine *machines;  /* in file order */
    struct lab_machine **by_mac;   /* sorted by MAC for lookups */
};

/* Loads lab.yaml plus the *.yaml files in machines.d next to it and validates everything.
 * extra_name/extra_text, when set, are treated as one more machines.d file (used to
 * check an adoption before writing it). On error the message names file:line: field. */
int lab_load(const char *path, const char *extra_name, const char *extra_text, struct lab **out,
             struct bd_err *err);
void lab_free(struct lab *lab);
const struct lab_machine *lab_machine_by_mac(const struct lab *lab, const struct bd_mac *mac);
const struct lab_machine *lab_machine_by_name(const struct lab *lab, const char *name);
const char *lab_role_name(enum lab_role r);
int lab_role_parse(const char *s, enum lab_role *r);

/* ---------- state store (SQLite, WAL) ---------- */

enum bd_state {
    BD_STATE_DISCOVERED,
    BD_STATE_ASSIGNED,
    BD_STATE_BOOTING,
    BD_STATE_CONFIG_SERVED,
    BD_STATE_INSTALLING,
    BD_STATE_READY,
    BD_STATE_JOINED,
    BD_STATE_COUNT
};
const char *bd_state_name(enum bd_state s);
int bd_state_parse(const char *s, enum bd_state *out);

struct store;

struct store_machine {
    char mac[18];
    char name[64];
    char uuid[48];
    char ip[16];
    char arch[16];
    char hostname[64];
    enum bd_state state;
    bool reinstall;
    int64_t first_seen_ms, last_seen_ms, state_since_ms;
};

struct store_event {
    int64_t id, ts_ms;
    char mac[18];
    char source[16];
    char kind[24];
    char *message; /* owned by the list */
};

struct store_events {
    size_t n;
    struct store_event *v;
};
void store_events_free(struct store_events *ev);

/* How a config token is bound to the network: one address, or (when iPXE and the
 * booted kernel may get different leases) the lab subnet. */
struct store_token_bind {
    uint32_t addr;
    int prefix; /* 32 = exactly addr */
};

struct store_token_info {
    char mac[18];
    char name[64];
    struct store_token_bind bind;
    int64_t issued_ms, first_download_ms; /* 0 = never downloaded */
    bool superseded; /* a later boot of the machine minted a newer token */
};

/* Opens (creating if needed) state.db under dir and applies pending migrations. */
int store_open(const char *dir, struct store **out, struct bd_err *err);
void store_close(struct store *st);
int store_schema_version(struct store *st);

/* What a request told us about a machine; NULL fields leave stored values alone. */
struct store_sighting {
    const char *uuid, *ip, *arch, *hostname;
};

/* Records a sighting: creates the machine (state discovered) or refreshes it. */
int store_machine_seen(struct store *st, const char *mac, const struct store_sighting *s,
                       struct bd_err *err);

/* A machine as lab.yaml names it. */
struct store_lab_entry {
    char mac[18];
    const char *name;
    const char *role;
};
/* Brings stored names and states in line with lab.yaml in one transaction: machines it
 * lists are named and at least assigned; named machines it no longer lists go back to
 * discovered. Sorts e by MAC. */
int store_lab_sync(struct store *st, struct store_lab_entry *e, size_t n, struct bd_err *err);
/* Moves a machine to state (creating it if needed); adds an event only when the state
 * changes, or always when force_event. Returns 1 if the state changed, 0 if not. */
int store_machine_set_state(struct store *st, const char *mac, enum bd_state state,
                            const char *source, const char *message, struct bd_err *err);
int store_machine_set_reinstall(struct store *st, const char *mac, bool on, struct bd_err *err);
/* 1 found, 0 not found, -1 error. */
int store_machine_get(struct store *st, const char *mac, struct store_machine *out,
                      struct bd_err *err);
int store_machine_list(struct store *st, struct store_machine **out, size_t *n, struct bd_err *err);
/* The machine last seen at ip (IPv4 text). 1 found, 0 not, -1 error. */
int store_machine_by_ip(struct store *st, const char *ip, struct store_machine *out,
                        struct bd_err *err);
int store_machine_counts(struct store *st, int64_t counts[BD_STATE_COUNT], struct bd_err *err);

/* mac may be NULL for events that concern no machine (e.g. an unknown token). */
int store_event_add(struct store *st, const char *mac, const char *source, const char *kind,
                    const char *message, struct bd_err *err);
int store_events_for(struct store *st, const char *mac, int64_t limit, struct store_events *out,
                     struct bd_err *err);

/* One network boot as the store sees it (see store_boot_batch). */
struct store_boot {
    /* in */
    const char *mac;
    const char *name;                 /* lab.yaml name; NULL for an unknown machine */
    struct store_sighting seen;
    struct store_token_bind bind;     /* used when a token is minted */
    const char *message;              /* for the booting event */
    const char *warning;              /* an extra warn event, or NULL */
    /* out */
    bool installed;                   /* installed and no reinstall asked: boot from disk */
    char token[33];                   /* the minted token (32 hex chars), or "" */
};

/* Records many network boots in one transaction. Unknown machines (name NULL) are
 * only sighted. Known ones are sighted and, unless installed, get a fresh 128-bit
 * token that supersedes their earlier ones and move to booting. Only the token's
 * SHA-256 is stored. All or nothing. */
int store_boot_batch(struct store *st, struct store_boot *v, size_t n, struct bd_err *err);
/* 1 found (the machine's newest token, or superseded: the one before it), 0 unknown or
 * older, -1 error. */
int store_token_lookup(struct store *st, const char *token, struct store_token_info *out,
                       struct bd_err *err);
/* Records the first complete download (later ones keep the first time) and moves the
 * machine to config-served. */
int store_token_downloaded(struct store *st, const char *token, struct bd_err *err);

/* GitOps (gitops/): what bootd applied and how its syncs went. */
struct store_gitops_item {
    char *id;          /* group/kind/namespace/name */
    char *api_version;
    char hash[65];     /* SHA-256 of the object as last sent */
};
struct store_gitops_sync {
    int64_t started_ms, finished_ms;
    char *revision; /* the commit rendered, or NULL when none was reached */
    bool ok;
    int64_t applied, unchanged, pruned, failed, unhealthy;
    char *error;  /* NULL when ok */
    char *detail; /* JSON: the objects that failed, were unhealthy or pruned */
};
int store_gitops_inventory(struct store *st, struct store_gitops_item **out, size_t *n,
                           struct bd_err *err);
void store_gitops_items_free(struct store_gitops_item *v, size_t n);
/* Adds a sync to the history (the newest 100 are kept) and, when replace_inventory,
 * swaps the inventory for inv, all in one transaction. */
int store_gitops_record(struct store *st, const struct store_gitops_sync *sync,
                        const struct store_gitops_item *inv, size_t n, bool replace_inventory,
                        struct bd_err *err);
/* The newest sync (or the newest ok one): 1 found, 0 none, -1 error. Caller frees out. */
int store_gitops_last_sync(struct store *st, bool ok_only, struct store_gitops_sync *out,
                           struct bd_err *err);
void store_gitops_sync_free(struct store_gitops_sync *y);

/* Cluster bootstrap (server/reconcile.c): one record per cluster, keyed by the cluster
 * id of its secrets bundle. */
struct store_bootstrap {
    char node[64];    /* the machine Bootstrap was called on */
    bool requested;   /* bootctl bootstrap asked for it */
    int64_t attempts;
    char last_error[512];
    bool done;        /* never called again once set */
    char outcome[32]; /* bootstrapped | already-bootstrapped */
    int64_t first_attempt_ms, done_ms;
};
/* 1 found, 0 no record yet, -1 error. */
int store_bootstrap_get(struct store *st, const char *cluster, struct store_bootstrap *out,
                        struct bd_err *err);
int store_bootstrap_request(struct store *st, const char *cluster, const char *name,
                            struct bd_err *err);
/* Counts an attempt on node: with outcome (error NULL) it is done for good; otherwise
 * error says why not yet. A record already done is left alone. */
int store_bootstrap_attempt(struct store *st, const char *cluster, const char *name,
                            const char *node, const char *outcome, const char *error,
                            struct bd_err *err);

/* ---------- outbound HTTP (libcurl) ---------- */

struct bd_http_resp {
    long status;
    struct bd_buf body;
};

struct bd_http_req {
    const char *method; /* default GET */
    const char *url;
    const char *bearer; /* Authorization: Bearer ..., or NULL */
    const char *content_type;
    const char *body;
    size_t body_len;
    long timeout_s; /* 0 = 30 s; -1 = none, but fail when nothing arrives for a minute */
    /* When set, a 2xx answer's body goes to sink piece by piece instead of into
     * resp->body (other answers still land there); sink returns -1 to stop, and bd_http
     * then fails (the sink keeps its own reason). */
    int (*sink)(const void *data, size_t n, void *ud);
    void *sink_ud;
};

/* Fails (-1) only when no HTTP answer came; any status is returned in resp. */
int bd_http(const struct bd_http_req *req, struct bd_http_resp *resp, struct bd_err *err);
void bd_http_resp_free(struct bd_http_resp *r);
/* For other libcurl users: global setup once per process, and a write callback that
 * appends to the struct bd_buf given as its data. */
void bd_curl_global_init(void);
size_t bd_curl_to_buf(char *p, size_t sz, size_t n, void *buf);

#endif
