/* server/ — bootd itself: HTTP routes, admin API, metrics and the lab it serves. This
 * header is shared by the files of server/ only. */
#ifndef SERVER_H
#define SERVER_H

#include "../lib/bd.h"

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

const char *route_name(enum route r);
void metrics_observe(struct metrics *m, enum route r, unsigned status, uint64_t bytes,
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
};

struct server_opts {
    const char *lab_path;
    const char *state_dir;
    const char *assets_dir;       /* default <state>/images */
    const char *admin_token_file; /* default <state>/admin.token */
    const char *listen_addr;      /* default 0.0.0.0 */
    int port;                     /* default lan.http_port */
    unsigned threads;             /* default: one per CPU */
    const char *dnsmasq;          /* dnsmasq binary (default: dnsmasq on PATH) */
    int talos_port;               /* apid's port on every machine (default 50000) */
};

struct bootq;
struct logsink;
struct dnsmasq;
struct image_pulls;
struct gitops_loop;
struct reconciler;

struct server {
    struct server_opts opts;
    struct bootq *bootq;
    struct logsink *logsink;
    struct dnsmasq *dnsmasq; /* NULL when the lab has lan.dnsmasq: false */
    struct image_pulls *pulls;
    struct reconciler *reconciler;
    struct store *store;
    char *admin_token;
    char *admin_token_file;
    int assets_fd;
    pthread_mutex_t install_mu; /* one lab install (reload, adopt) at a time */
    pthread_mutex_t mu;         /* guards snap and the reload status below */
    struct lab_snap *snap;
    char reload_error[1024];
    int64_t reload_at_ms;
    struct MHD_Daemon *daemon;
    struct metrics metrics;
    int port; /* the port actually bound */
    struct gitops_loop *gitops; /* NULL until lab.yaml has a gitops section */
    struct status_watch *watch; /* the status page's long-polls */
};

int server_start(struct server *s, const struct server_opts *o, struct bd_err *err);
void server_stop(struct server *s);
int server_http_start(struct server *s, struct bd_err *err);
void server_http_stop(struct server *s);

struct lab_snap *server_lab(struct server *s); /* takes a reference */
void server_lab_put(struct server *s, struct lab_snap *snap);
/* Reloads lab.yaml; on failure the old lab stays and the error is kept for status. */
int server_reload(struct server *s, struct bd_err *err);
/* Swaps in a lab already loaded and checked (adopt uses this). Takes lab. */
int server_install_lab(struct server *s, struct lab *lab, struct bd_err *err);
/* Serves the current lab from a fresh snapshot, so that boot scripts are rendered again
 * from the image cache: called when images land in it or leave it. */
void server_refresh(struct server *s);

/* ---- images missing from the cache (image_pull.c) ---- */

/* For a machine whose image the snapshot lacks: starts a background pull unless one
 * runs (or failed moments ago) and writes what the hold script should say. */
void server_image_hold(struct server *s, struct lab_snap *snap, const char *arch,
                       const char *mac, char *msg, size_t n);
/* Cancels running pulls and waits for them. */
void server_image_pulls_stop(struct server *s);

/* ---- requests ---- */

/* A /ipxe request's boot, waiting for (or back from) the boot writer. */
struct boot_job {
    struct boot_job *next;
    struct MHD_Connection *conn;
    struct store_boot boot;
    bool done, failed;
    /* kept for rendering once the boot is recorded */
    struct lab_snap *snap;
    const struct lab_machine *machine; /* in snap; NULL for an unknown machine */
    bool image_missing; /* held until the image is in the cache */
    char mac[18], mac_hyp[18], uuid[37], buildarch[17], platform[17], ip[16];
    char message[256], warning[160];
};

/* ---- kernel-log sink ---- */

struct log_line {
    int64_t ts_ms;
    char *msg;
};
int logsink_start(struct server *s, const char *listen_addr, int port, struct bd_err *err);
void logsink_stop(struct server *s);
/* A copy of a machine's kept lines, oldest first (free with log_lines_free). */
int logsink_lines(struct server *s, const char *mac, struct log_line **out, size_t *n);
/* Lines kept since start, all machines together (0 without a sink). */
uint64_t logsink_total(struct server *s);
void log_lines_free(struct log_line *v, size_t n);

/* ---- dnsmasq for the lab ---- */

/* Checks the lab against this host and writes dnsmasq's files; call before a lab
 * becomes current. Then services_apply starts, signals or restarts dnsmasq. */
int services_prepare(struct server *s, const struct lab *lab, bool *conf_changed,
                     bool *hosts_changed, struct bd_err *err);
void services_apply(struct server *s, const struct lab *lab, bool conf_changed, bool hosts_changed);
void services_stop(struct server *s);
/* One line on dnsmasq's state for /api/v1/status. */
void services_status(struct server *s, char *buf, size_t n);

int bootq_start(struct server *s, struct bd_err *err);
/* Queues j and suspends c; false when bootd is stopping (record it directly then). */
bool bootq_submit(struct server *s, struct MHD_Connection *c, struct boot_job *j);
void bootq_stop(struct server *s);

/* Per-request state, made when the request line arrives and freed when it completes. */
struct req {
    int64_t start_us;
    char *raw_uri; /* before MHD's percent-decoding: traversal checks need it */
    enum route route;
    unsigned status;
    uint64_t bytes;
    bool started;
    struct bd_buf body; /* POST body */
    bool body_too_large;
    char config_token[33]; /* set when a config response is queued */
    struct boot_job *job;  /* /ipxe: the boot being recorded */
};
void boot_job_free(struct server *s, struct boot_job *j);

/* Queue a response and note its status and size for metrics. */
enum MHD_Result reply(struct MHD_Connection *c, struct req *r, unsigned status,
                      struct MHD_Response *resp);
enum MHD_Result reply_text(struct MHD_Connection *c, struct req *r, unsigned status,
                           const char *content_type, const char *body, size_t len);
enum MHD_Result reply_json(struct MHD_Connection *c, struct req *r, unsigned status,
                           struct cJSON *json); /* frees json */
enum MHD_Result reply_error_json(struct MHD_Connection *c, struct req *r, unsigned status,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* key: v, or null when v is NULL or empty. */
void json_add_str_or_null(struct cJSON *o, const char *key, const char *v);
/* The client's IPv4 address in host order; 0 when not IPv4. */
uint32_t client_ipv4(struct MHD_Connection *c);

enum MHD_Result route_boot_chain(struct server *s, struct MHD_Connection *c, struct req *r);
enum MHD_Result route_ipxe(struct server *s, struct MHD_Connection *c, struct req *r);
enum MHD_Result route_assets(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *url, const char *method);
enum MHD_Result route_config(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *token);
void route_config_completed(struct server *s, struct req *r);
enum MHD_Result route_metrics(struct server *s, struct MHD_Connection *c, struct req *r);
enum MHD_Result route_api(struct server *s, struct MHD_Connection *c, struct req *r,
                          const char *url, const char *method);

/* The admin API's views, shared with the status page's overview (caller frees). */
struct cJSON *api_status_json(struct server *s, const struct lab *lab);
struct cJSON *api_machines_json(struct server *s, const struct lab *lab, struct bd_err *err);
struct cJSON *api_audit_json(struct server *s, size_t max, struct bd_err *err);

/* The status page (status_page.c): its files at / and /ui/, /api/v1/overview, and
 * /api/v1/watch, a long-poll answered when the overview changes. */
enum MHD_Result route_ui(struct server *s, struct MHD_Connection *c, struct req *r,
                         const char *url, const char *method);
enum MHD_Result route_overview(struct server *s, struct MHD_Connection *c, struct req *r);
enum MHD_Result route_watch(struct server *s, struct MHD_Connection *c, struct req *r);
int status_watch_start(struct server *s, struct bd_err *err);
void status_watch_stop(struct server *s); /* before HTTP stops: answers every long-poll */
void status_watch_free(struct server *s);
void status_watch_forget(struct server *s, struct MHD_Connection *c);

/* GitOps (route_gitops.c): the loop follows the lab; /api/v1/gitops[/sync]. */
void server_gitops_lab(struct server *s, const struct lab *lab);
void server_gitops_stop(struct server *s);
void server_gitops_metrics(struct server *s, struct bd_buf *b);
enum MHD_Result route_gitops(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *sub, const char *method);
/* ---- reconciler: the Talos API, cluster bootstrap and readiness (reconcile.c) ---- */

int reconcile_start(struct server *s, struct bd_err *err);
void reconcile_stop(struct server *s);
/* Look again now: the lab changed, or bootstrap was asked for. */
void reconcile_kick(struct server *s);
/* The cluster's phase, its bootstrap record and each machine's Talos API (caller frees). */
struct cJSON *reconcile_status(struct server *s);
/* bootctl bootstrap: 0 asked for, 1 already done, -1 error. */
int reconcile_request_bootstrap(struct server *s, struct bd_err *err);
/* Where a machine's Talos API is: its ip in lab.yaml, else where bootd last saw it.
 * false when neither is known. */
bool machine_talos_addr(struct server *s, const struct lab_machine *m, char ip[16]);
/* apid at ip (which n points at) with bootd's credentials from snap. */
struct talos_node;
void machine_talos_node(struct server *s, const struct lab_snap *snap, const char *ip,
                        struct talos_node *n);

/* After bootstrap, one look at Kubernetes (reconcile_kube.c). */
struct kube_node {
    char name[64], ip[16];
    bool ready;
};
struct kube_view {
    bool api_ready;
    char api[512]; /* "<server>: ready" or why not */
    bool cilium_found, cilium_ready;
    char cilium[256]; /* "3/3 pods ready", or what is missing */
    size_t nnodes, joined; /* joined: the lab's machines whose Node is Ready */
    struct kube_node *nodes;
};
/* Asks the API server for /readyz, the Nodes and the cilium DaemonSet; machines whose
 * Node is Ready become joined. Compared with prev it records the steps as events and,
 * when the API first answers, hands it to the GitOps loop. */
void kube_look(struct server *s, const struct lab_snap *snap, const struct kube_view *prev,
               const atomic_bool *cancel, struct kube_view *v);
void kube_view_free(struct kube_view *v);
/* The Node of a lab machine (by hostname, else by address), or NULL. */
const struct kube_node *kube_node_of(const struct kube_view *v, const struct lab_machine *m);

enum MHD_Result route_cluster(struct server *s, struct MHD_Connection *c, struct req *r,
                              const char *url, const char *method);

/* Adds a machine file to machines.d after checking the whole lab with it. */
int server_adopt(struct server *s, const char *mac, const char *name, const char *role,
                 const char *ip, struct bd_err *err, int *http_status);

#endif
