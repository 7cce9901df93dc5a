/* server/ — bootd itself: HTTP routes, admin API, metrics and the lab it serves. This
 * header is shared by the files of server/ only. */
#ifndef SERVER_H
#define SERVER_H

#include "../lab/lab.h"
#include "../lib/bd.h"
#include "../state/state.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

struct cJSON;

/* ---- metrics ---- */

enum route {
    R_BOOT,
    R_IPXE,
    R_ASSETS,
    R_CONFIG,
    R_HEALTHZ,
    R_METRICS,
    R_API,
    R_OTHER,
    R_COUNT
};

#define METRIC_STATUSES 17
#define METRIC_BUCKETS 10

enum config_result { CFG_SERVED, CFG_DENIED, CFG_ERROR, CFG_COUNT };

struct metrics {
    atomic_ullong requests[R_COUNT][METRIC_STATUSES];
    atomic_ullong bytes[R_COUNT];
    atomic_ullong duration_bucket[R_COUNT][METRIC_BUCKETS];
    atomic_ullong duration_sum_us[R_COUNT];
    atomic_ullong config[CFG_COUNT];
    atomic_ullong reloads_ok, reloads_failed;
};

const char *server_route_name(enum route r);
void server_metrics_observe(struct metrics *m, enum route r, unsigned status, uint64_t bytes,
                     uint64_t duration_us);

/* ---- the lab being served ---- */

/* A machine's boot script is the same for every boot but for its config token: it is
 * rendered once per snapshot, machine and firmware kind, in two halves around it. */
struct script_parts {
    char *head; /* up to and including ".../config/" */
    char *tail; /* after the token */
    size_t head_len, tail_len;
};

#define SCRIPT_KINDS 4 /* {amd64, arm64} x {BIOS, UEFI} */

struct talos_cluster;
struct talos_creds;
struct talos_kube_admin;

/* An immutable lab snapshot; requests hold a reference while they use it, so a reload
 * never pulls it from under them. */
struct lab_snap {
    struct lab *lab;
    struct talos_cluster *talos; /* secrets and patches, prepared for rendering configs */
    struct lab_snap *lab_owner; /* set when lab belongs to an earlier snapshot (refresh) */
    /* bootd's Talos API credentials, minted from the secrets bundle when the lab is
     * installed; NULL with creds_error saying why (no bundle, an Ed25519 os CA) */
    struct talos_creds *creds;
    char *creds_error;
    char *cluster_id; /* the bundle's cluster.id: what the bootstrap record is keyed by */
    /* bootd's way into the Kubernetes API: cluster.endpoint, the cluster CA and an admin
     * client certificate minted from it; NULL with kube_error saying why */
    struct talos_kube_admin *kube;
    char *kube_error;
    char *base_url; /* http://boot_server:http_port, what machines use to reach bootd */
    char schematic[65];
    bool image_ready[2]; /* amd64, arm64: all files cached when the snapshot was made */
    int refs;
    struct script_parts **scripts; /* [machine index * SCRIPT_KINDS + kind], filled lazily */
    struct uki_image *uki[2]; /* amd64, arm64: UKI layouts, built on first use (route_uki.c) */
};

struct server_opts {
    const char *lab_path;
    const char *state_dir;
    const char *assets_dir;       /* default <state>/images */
    const char *admin_token_file; /* default <state>/admin.token */
    const char *viewer_token_file; /* read-only API token, default <state>/viewer.token */
    int admin_port;               /* admin API over TLS on this port; 0 = off */
    const char *admin_tls_cert, *admin_tls_key; /* the user's, instead of bootd's own */
    bool admin_plain_lan;         /* plain /api/v1 for the LAN too, not only this host */
    const char *listen_addr;      /* default 0.0.0.0 */
    int port;                     /* default lan.http_port */
    unsigned threads;             /* default: one per CPU */
    const char *dnsmasq;          /* dnsmasq binary (default: dnsmasq on PATH) */
    int talos_port;               /* apid's port on every machine (default 50000) */
    int64_t events_max;           /* events kept (default STATE_EVENTS_MAX) */
    int64_t events_max_age_s;     /* and for how long (default STATE_EVENTS_MAX_AGE_S) */
    int64_t discovered_max;       /* machines outside lab.yaml recorded (default 4096) */
    int64_t boot_window_ms; /* a UKI's config not asked for by then: a failed boot (0: default) */
};

struct logsink;
struct dnsmasq;
struct image_pulls;
struct gitops_loop;
struct cluster;

struct server {
    struct server_opts opts;
    struct server_suspq *bootq;
    struct logsink *logsink;
    struct dnsmasq *dnsmasq; /* NULL when the lab has lan.dnsmasq: false */
    struct image_pulls *pulls;
    struct cluster *cluster; /* the reconciler */
    struct state_db *store;
    char *admin_token;
    char *viewer_token; /* reads only */
    char *admin_token_file;
    int assets_fd;
    pthread_mutex_t install_mu; /* one lab install (reload, adopt) at a time */
    pthread_mutex_t mu;         /* guards snap and the reload status below */
    struct lab_snap *snap;
    char reload_error[1024];
    int64_t reload_at_ms;
    struct MHD_Daemon *daemon; /* the first of loops: set while bootd serves */
    struct MHD_Daemon **loops; /* plain HTTP: one single-threaded daemon per thread */
    unsigned nloops;
    struct http_acceptor *acceptor; /* hands the loops their connections */
    struct server_suspq *reloader;      /* POST /api/v1/reload's thread (reloader.c) */
    struct MHD_Daemon *admin_daemon; /* --admin-port: the admin API over TLS */
    char admin_pin[64];              /* its certificate's public-key pin, sha256//BASE64 */
    struct http_deadline *deadline;
    struct metrics metrics;
    int port; /* the port actually bound */
    struct gitops_loop *gitops; /* NULL until lab.yaml has a gitops section */
    struct refusals *refusals;
    struct discover_limit *discover;
    int state_lock_fd; /* held for the life of the process: one bootd per state dir */
    struct server_vmwatch *vmwatch; /* the Proxmox VMs' power states (vmwatch.c) */
    struct status_watch *watch; /* the status page's long-polls */
    struct bootwatch *bootwatch; /* UKI boots waiting for their config (bootwatch.c) */
};

int server_start(struct server *s, const struct server_opts *o, struct bd_err *err) BD_MUST_CHECK;
/* Creates the state dir (0700) or takes group and world access away from it and its files,
 * removes what interrupted atomic writes left, and locks it; fails naming the bootd that
 * holds it. */
int server_state_dir_claim(const char *dir, int *lock_fd, struct bd_err *err);
void server_stop(struct server *s);
int server_http_start(struct server *s, struct bd_err *err) BD_MUST_CHECK;
/* The admin API's TLS certificate and key (PEM, caller frees), made in state_dir on first
 * start for ip and 127.0.0.1, and the pin of its public key (admin_tls.c). */
int server_admin_tls_material(const char *state_dir, const char *ip, char **cert_pem, char **key_pem,
                       char *pin, size_t pin_len, struct bd_err *err);
/* POST /api/v1/reload off the HTTP loops (reloader.c): the request suspends until the
 * reload thread has run a reload that read lab.yaml after it asked. */
/* A request suspended until a worker thread has done its part (suspendq.c): the first
 * member of the item the worker gets back. */
struct server_suspended {
    struct server_suspended *next;
    struct MHD_Connection *conn;
};
struct server_suspq;
/* run gets every item queued at once (a list through next) and resumes each one's
 * connection; stopping: bootd is stopping and these are the last. */
typedef void (*server_suspq_run_fn)(void *ud, struct server_suspended *batch, bool stopping);
struct server_suspq *server_suspq_start(server_suspq_run_fn run, void *ud); /* NULL: no thread */
/* false when stopping: answer without waiting */
bool server_suspq_submit(struct server_suspq *q, struct MHD_Connection *c,
                         struct server_suspended *item);
void server_suspq_stop(struct server_suspq *q);

struct reload_wait {
    struct server_suspended link; /* first: the queue hands it back */
    bool done, failed;
    char error[1024];
};
int server_reloader_start(struct server *s, struct bd_err *err);
/* false when bootd is stopping: answer without waiting */
bool server_reloader_submit(struct server *s, struct MHD_Connection *c, struct reload_wait *w);
void server_reloader_stop(struct server *s);

/* One listening socket feeding the HTTP loops, least loaded first (http_accept.c). */
int server_http_acceptor_start(struct http_acceptor **slot, int listen_fd,
                               struct MHD_Daemon **loops, unsigned nloops,
                               unsigned per_loop_limit, unsigned per_addr_limit);
void server_http_acceptor_closed(struct http_acceptor *a, struct MHD_Connection *c);
void server_http_acceptor_stop(struct http_acceptor *a); /* no new connections */
void server_http_acceptor_free(struct http_acceptor *a); /* once the loops are stopped */

/* The same from the user's files (--admin-tls-cert, --admin-tls-key), checked: readable,
 * PEM, the key private (0600), unencrypted and the certificate's; errors name the file. */
int server_admin_tls_user(const char *state_dir, const char *cert_path, const char *key_path,
                          char **cert_pem, char **key_pem, char *pin, size_t pin_len,
                          struct bd_err *err);
/* Request heads that do not arrive in time, bodies and answers that move too slowly
 * (http_deadline.c). */
struct http_deadline *server_http_deadline_start(void);
void server_http_deadline_stop(struct http_deadline *d);
void server_http_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);
enum server_conn_phase {
    CONN_WAITING,   /* for a request head: new, or after a response */
    CONN_BODY,      /* the head is in; a body may be arriving */
    CONN_ANSWERING, /* the request is whole; bootd works on it or sends the answer */
};
void server_http_deadline_mark(struct http_deadline *d, struct MHD_Connection *c,
                               enum server_conn_phase phase);
void server_http_stop(struct server *s);

struct lab_snap *server_lab(struct server *s); /* takes a reference */
void server_lab_put(struct server *s, struct lab_snap *snap);
/* Takes one more reference on a snapshot already held. */
void server_lab_hold(struct server *s, struct lab_snap *snap);
/* Reloads lab.yaml; on failure the old lab stays and the error is kept for status. */
int server_reload(struct server *s, struct bd_err *err) BD_MUST_CHECK;
/* Swaps in a lab already loaded and checked (adopt uses this). Takes lab. */
int server_install_lab(struct server *s, struct lab *lab, struct bd_err *err) BD_MUST_CHECK;
/* Serves the current lab from a fresh snapshot, so that boot scripts are rendered again
 * from the image cache: called when images land in it or leave it. */
void server_refresh(struct server *s);

/* ---- images missing from the cache (image_pull.c) ---- */

/* For a machine whose image the snapshot lacks: starts a background pull unless one
 * runs (or failed moments ago) and writes what the hold script should say. */
/* The lab's images at another Talos version (bootctl upgrade talos): 1 all cached, 0 a
 * pull is under way (started now if need be), -1 a pull failed a moment ago; why says
 * which and why. */
int server_image_ensure(struct server *s, const char *version, char *why, size_t n);
void server_image_hold(struct server *s, struct lab_snap *snap, const char *arch,
                       const char *mac, char *msg, size_t n);
/* Cancels running pulls and waits for them. */
void server_image_pulls_stop(struct server *s);

/* ---- Proxmox VMs (vmwatch.c) ---- */

struct server_vmwatch;
int server_vmwatch_start(struct server *s, struct bd_err *err) BD_MUST_CHECK;
void server_vmwatch_wake(struct server *s); /* read again now (a new lab.yaml) */
void server_vmwatch_stop(struct server *s);
/* Adds "vm": {vmid, name, node, power} to a machine's JSON when a VM has that MAC. */
void server_vmwatch_json(struct server *s, struct cJSON *o, const char *mac);

/* ---- requests ---- */

/* A /ipxe request's boot, waiting for (or back from) the boot writer. */
struct boot_job {
    struct server_suspended link; /* first: the boot queue hands it back */
    struct state_boot boot;
    bool done, failed;
    /* kept for rendering once the boot is recorded */
    struct lab_snap *snap;
    const struct lab_machine *machine; /* in snap; NULL for an unknown machine */
    bool image_missing; /* held until the image is in the cache */
    bool uki;           /* /uki (UEFI HTTP Boot), not /ipxe */
    char mac[18], mac_hyp[18], uuid[37], buildarch[17], platform[17], ip[16];
    char message[256], warning[160];
};

/* ---- what a request's target and headers say (request_parse.c) ---- */

#define SERVER_MAX_ARGS 16
#define SERVER_MAX_ARG_LEN 256
/* /ipxe's query: how many arguments, whether one is too long, and the ones it reads
 * (NULL when absent), as MHD decoded them. */
struct server_ident_args {
    unsigned count;
    bool too_long;
    const char *mac, *uuid, *arch, *platform;
};
/* Fills j's mac, mac_hyp, uuid, buildarch and platform; NULL, or a message for a 400. */
const char *server_ident_parse(const struct server_ident_args *a, struct boot_job *j);
/* false for a raw target with an encoded NUL, slash or backslash in the path, or NUL in
 * the query */
bool server_raw_uri_ok(const char *raw);
/* One component of an /assets path (n bytes at s): not empty, hidden, too long or odd. */
bool server_asset_component_ok(const char *s, size_t n);
/* One "bytes=" Range against size: 1 set (off, len), 0 serve it all, -1 unsatisfiable. */
int server_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len);
bool server_etag_listed(const char *header, const char *etag);
bool server_config_token_ok(const char *t);

/* ---- kernel-log sink ---- */

struct log_line {
    int64_t ts_ms;
    char *msg;
};
int server_logsink_start(struct server *s, const char *listen_addr, int port, struct bd_err *err) BD_MUST_CHECK;
void server_logsink_stop(struct server *s);
/* A copy of a machine's kept lines, oldest first (free with server_log_lines_free). */
int server_logsink_lines(struct server *s, const char *mac, struct log_line **out, size_t *n);
/* Cuts buf's len bytes (buf has room for one more) at newlines, hands each complete line
 * to on_line, moves the rest to the front and returns its length; a rest of cap bytes
 * or more is handed on as a line of its own and dropped. */
size_t server_log_split(char *buf, size_t len, size_t cap, void (*on_line)(void *, char *),
                        void *ud);
/* The text a kernel-log line carries (caller frees): its "msg", or the line itself. */
char *server_log_message(const char *line);
/* Lines kept since start, all machines together (0 without a sink). */
uint64_t server_logsink_total(struct server *s);
void server_log_lines_free(struct log_line *v, size_t n);

/* ---- dnsmasq for the lab ---- */

/* Checks the lab against this host and writes dnsmasq's files; call before a lab
 * becomes current. Then server_services_apply starts, signals or restarts dnsmasq. */
int server_services_prepare(struct server *s, const struct lab *lab, bool *conf_changed,
                     bool *hosts_changed, struct bd_err *err) BD_MUST_CHECK;
void server_services_apply(struct server *s, const struct lab *lab, bool conf_changed, bool hosts_changed);
void server_services_stop(struct server *s);
/* One line on dnsmasq's state for /api/v1/status. */
void server_services_status(struct server *s, char *buf, size_t n);

int server_bootq_start(struct server *s, struct bd_err *err) BD_MUST_CHECK;
/* Queues j and suspends c; false when bootd is stopping (record it directly then). */
bool server_bootq_submit(struct server *s, struct MHD_Connection *c, struct boot_job *j);
void server_bootq_stop(struct server *s);

/* Per-request state, made when the request line arrives and freed when it completes. */
struct req {
    int64_t start_us;
    char *raw_uri; /* before MHD's percent-decoding: traversal checks need it */
    const char *raw_at; /* where MHD had it: in its read buffer, for the NUL check */
    enum route route;
    unsigned status;
    uint64_t bytes;
    bool started;
    struct bd_buf body; /* POST body: admin API requests only, once authorized */
    bool api, body_too_large;
    char config_token[33]; /* set when a config response is queued */
    struct boot_job *job;  /* /ipxe: the boot being recorded */
    /* /uki: the boot whose image is being sent, for bootwatch.c once it is complete */
    char uki_mac[18], uki_token[33];
    bool watch_answered; /* a woken long-poll answered: status_page.c waits for it at stop */
    struct reload_wait *reload; /* POST /api/v1/reload: waiting for the reload thread */
};
void server_boot_job_free(struct server *s, struct boot_job *j);

/* Queue a response and note its status and size for metrics. */
enum MHD_Result server_reply(struct MHD_Connection *c, struct req *r, unsigned status,
                      struct MHD_Response *resp);
enum MHD_Result server_reply_text(struct MHD_Connection *c, struct req *r, unsigned status,
                           const char *content_type, const char *body, size_t len);
enum MHD_Result server_reply_json(struct MHD_Connection *c, struct req *r, unsigned status,
                           struct cJSON *json); /* frees json */
enum MHD_Result server_reply_error_json(struct MHD_Connection *c, struct req *r, unsigned status,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The client's IPv4 address in host order; 0 when not IPv4. */
uint32_t server_client_ipv4(struct MHD_Connection *c);

enum MHD_Result server_route_boot_chain(struct server *s, struct MHD_Connection *c, struct req *r);
/* "bios" or "uefi" for iPXE's platform or a DHCP client-arch tag; NULL when unknown. */
const char *server_firmware_name(const char *kind);
/* A machine's kernel command line for a boot (/ipxe and /uki): Talos's cached or built-in
 * command line, the lab's and the machine's arguments, the config URL and the log sink;
 * initrd_name only for UEFI iPXE. Appended to out. */
void server_boot_kernel_args(struct server *s, const struct lab_snap *snap,
                             const struct lab_machine *m, const char *arch,
                             const char *initrd_name, const char *config_url, struct bd_buf *out);
enum MHD_Result server_route_ipxe(struct server *s, struct MHD_Connection *c, struct req *r);
/* Shared by /ipxe and /uki (route_boot.c): a known machine's checks (a message for a
 * refusal, NULL when it may boot), the boot's description and token binding, recording
 * it through the boot queue, and the answer once it is recorded. */
const char *server_boot_refuse(struct server *s, struct boot_job *j, char *msg, size_t n);
void server_boot_describe(struct MHD_Connection *c, struct boot_job *j, const char *what);
enum MHD_Result server_boot_submit(struct server *s, struct MHD_Connection *c, struct req *r,
                                   struct boot_job *j);
enum MHD_Result server_boot_finish(struct server *s, struct MHD_Connection *c, struct req *r);
/* /uki/<arch>.efi (route_uki.c) */
struct uki_image;
enum MHD_Result server_route_uki(struct server *s, struct MHD_Connection *c, struct req *r,
                                 const char *file, const char *method);
enum MHD_Result server_uki_answer(struct server *s, struct MHD_Connection *c, struct req *r,
                                  struct boot_job *j);
/* GET /api/v1/machines/NAME/uki (admin only): ?arch=, ?config=token|none. */
enum MHD_Result server_uki_download(struct server *s, struct MHD_Connection *c, struct req *r,
                                    const char *name);
/* What a machine's config token is bound to: its reserved address, else the lab subnet. */
void server_boot_token_binding(const struct lab *lab, const struct lab_machine *m,
                               struct state_token_bind *bind);
void server_uki_snap_init(struct lab_snap *snap);
void server_uki_snap_free(struct lab_snap *snap);
enum MHD_Result server_route_assets(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *url, const char *method);
enum MHD_Result server_route_config(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *token);
void server_route_config_completed(struct server *s, struct req *r);
enum MHD_Result server_route_metrics(struct server *s, struct MHD_Connection *c, struct req *r);
enum MHD_Result server_route_api(struct server *s, struct MHD_Connection *c, struct req *r,
                          const char *url, const char *method);
/* Whom the bearer token names, decided from the headers alone. The viewer token reads
 * what an admin reads, except secrets (kubeconfig, etcd snapshots); it changes nothing. */
enum api_scope { SCOPE_NONE, SCOPE_VIEWER, SCOPE_ADMIN };
enum api_scope server_api_scope_of(struct server *s, struct MHD_Connection *c);
/* sub: the decoded path under /api/v1 */
bool server_api_scope_allows(enum api_scope scope, const char *sub, const char *method);
/* 401 without a token, 403 for a viewer asking for more */
enum MHD_Result server_api_refuse(struct MHD_Connection *c, struct req *r, enum api_scope scope);

/* The admin API's views, shared with the status page's overview (caller frees). */
struct cJSON *server_api_status_json(struct server *s, const struct lab *lab);
struct cJSON *server_api_machines_json(struct server *s, const struct lab *lab,
                                       struct bd_err *err);
struct cJSON *server_api_audit_json(struct server *s, size_t max, struct bd_err *err);

/* The status page (status_page.c): its files at / and /ui/, /api/v1/overview, and
 * /api/v1/watch, a long-poll answered when the overview changes. */
enum MHD_Result server_route_ui(struct server *s, struct MHD_Connection *c, struct req *r,
                                const char *url, const char *method);
enum MHD_Result server_route_overview(struct server *s, struct MHD_Connection *c, struct req *r);
enum MHD_Result server_route_watch(struct server *s, struct MHD_Connection *c, struct req *r);
int server_status_watch_start(struct server *s, struct bd_err *err) BD_MUST_CHECK;
/* Before HTTP stops: answers every long-poll. */
void server_status_watch_stop(struct server *s);
void server_status_watch_free(struct server *s);
/* An admin request ended: a resumed watch whose client went away is forgotten; answered
 * says it was a woken watch's answer, which bootd waits for when it stops. */
void server_status_watch_forget(struct server *s, const struct MHD_Connection *c, bool answered);

/* GitOps (server_route_gitops.c): the loop follows the lab; /api/v1/gitops[/sync]. */
void server_gitops_lab(struct server *s, const struct lab *lab);
void server_gitops_stop(struct server *s);
void server_gitops_metrics(struct server *s, struct bd_buf *b);
enum MHD_Result server_route_gitops(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *sub, const char *method);
/* ---- the reconciler (cluster/), wired to this server (cluster_env.c) ---- */

int server_cluster_start(struct server *s, struct bd_err *err) BD_MUST_CHECK;

enum MHD_Result server_route_cluster(struct server *s, struct MHD_Connection *c, struct req *r,
                              const char *url, const char *method);

/* Adds a machine file to machines.d after checking the whole lab with it. */
int server_adopt(struct server *s, const char *mac, const char *name, const char *role,
                 const char *ip, struct bd_err *err, int *http_status);


/* ---- who may claim a MAC (claim.c) ---- */
/* Whether a request from `from` may act for lab machine m: its reserved address in full
 * DHCP mode, or a neighbour whose link-layer address is m's MAC (lan.routed: anywhere in
 * the subnet). When not, why says so. */
bool server_claim_ok(const struct lab *lab, const struct lab_machine *m, uint32_t from, char *why,
              size_t n);
/* The kernel's neighbour table over rtnetlink (or $BOOTD_NEIGH_TABLE, a file in
 * /proc/net/arp's format): the valid entry for ip on ifname (any when NULL or ""). 1 found,
 * 0 not (neigh.c). */
int server_neigh_lookup(uint32_t ip, const char *ifname, struct bd_mac *out);
/* One line of /proc/net/arp; -1 for the header, malformed or incomplete entries. */
int server_neigh_parse_line(const char *line, uint32_t *ip, struct bd_mac *mac, char dev[32]);

/* ---- failed UKI boots (bootwatch.c) ---- */
/* What showed that a UKI sent complete did not boot. */
enum server_boot_failed {
    SERVER_BOOT_FAILED_NO_CONFIG,  /* no config request within the window */
    SERVER_BOOT_FAILED_BOOT_AGAIN, /* the machine asked for a boot image again */
    SERVER_BOOT_FAILED_DHCP_AGAIN, /* its firmware asked DHCP again */
    SERVER_BOOT_FAILED_COUNT
};
#define SERVER_BOOT_WINDOW_S 180 /* default --boot-window */
struct bootwatch;
int server_bootwatch_start(struct server *s, int64_t window_ms, struct bd_err *err) BD_MUST_CHECK;
void server_bootwatch_stop(struct server *s);
/* A UKI for mac's boot with this config token is being sent (signer: its certificate's
 * subject, NULL unsigned); then, once it went out complete, server_bootwatch_sent. */
void server_bootwatch_answer(struct server *s, const char *mac, const char *token,
                             const char *signer);
void server_bootwatch_sent(struct server *s, const char *mac, const char *token);
/* Someone asked for the config of token: that boot's kernel ran. */
void server_bootwatch_config(struct server *s, const char *token);
/* mac came back (what: "asked for ...", for the event) while its UKI boot was waited on. */
void server_bootwatch_again(struct server *s, const char *mac, enum server_boot_failed cause,
                            const char *what);
/* A kernel log line from mac arrived. */
void server_bootwatch_kernel(struct server *s, const char *mac);
/* mac's last failed boot, until a config of its is fetched: true with msg and its time. */
bool server_bootwatch_failed(struct server *s, const char *mac, char *msg, size_t n,
                             int64_t *at_ms);
void server_bootwatch_metrics(struct server *s, struct bd_buf *b);

/* ---- machines outside lab.yaml (discover_limit.c) ---- */
struct discover_limit *server_discover_limit_new(void);
void server_discover_limit_free(struct discover_limit *d);
/* Whether a sighting of an unknown machine from addr (ip, as text) is recorded. */
bool server_discovery_allowed(struct server *s, uint32_t addr, const char *ip);

/* ---- repeated refusals, logged once per window with a count (refusals.c) ---- */
struct refusals *server_refusals_new(void);
void server_refusals_free(struct refusals *r);
/* true: log now; *suppressed says how many of key were left out since it last was. */
bool server_refusal_log_now(struct refusals *r, const char *key, unsigned *suppressed);
/* An audit event and a warning for msg, unless one of the same kind (why) for the same
 * machine (mac, may be NULL) was made in the last minute. */
void server_refusal(struct server *s, const char *mac, const char *why, const char *msg);
#endif
