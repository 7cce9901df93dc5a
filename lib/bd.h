/* lib/ — the base every folder builds on, and nothing else: errors, logging, buffers,
 * an arena, atomic files, randomness and hashes, addresses, the YAML tree and its JSON
 * twin, time, one libcurl setup and worker threads. It names no capability of bootd
 * (no lab, no store, no cluster) and includes no other folder. */
#ifndef BD_H
#define BD_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------- conventions ----------
 *
 * Fallible functions return 0 (or a count) on success and -1 on failure with a human
 * message in a struct bd_err, and carry BD_MUST_CHECK so a caller cannot drop the
 * result by accident. Freeing: *_free(p) releases a heap object and its contents and
 * accepts NULL; *_clear(p) releases what an embedded (stack or member) object holds and
 * leaves it empty, ready for reuse. "caller frees" is said wherever it applies. */
#define BD_MUST_CHECK __attribute__((warn_unused_result))

/* ---------- errors ---------- */

/* Functions return 0 on success and -1 on failure with a human message here. */
struct bd_err {
    char msg[1024];
};

int bd_err_set(struct bd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "what: <OpenSSL's first queued error>" (the queue is cleared); returns -1. */
int bd_err_openssl(struct bd_err *e, const char *what);
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

/* For what bootd cannot go on after (out of memory): prints and aborts. */
void bd_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
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
int bd_file_read(const char *path, char **out, size_t *len, struct bd_err *err) BD_MUST_CHECK;
/* Writes data to path atomically: temp file in the same directory, fsync, rename,
 * fsync of the directory. Readers see the old or the new file, never a mix. */
int bd_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct bd_err *err) BD_MUST_CHECK;
/* The same, written piece by piece (a download): begin, write as often as needed, then
 * commit (fsync, rename, fsync of the directory) or abort (the temp file goes). Until
 * commit, path keeps its old contents. */
struct bd_file_atomic {
    int fd;
    char *path, *tmp;
};
int bd_file_atomic_begin(struct bd_file_atomic *f, const char *path, mode_t mode,
                         struct bd_err *err) BD_MUST_CHECK;
int bd_file_atomic_write(struct bd_file_atomic *f, const void *data, size_t len,
                         struct bd_err *err) BD_MUST_CHECK;
int bd_file_atomic_commit(struct bd_file_atomic *f, struct bd_err *err) BD_MUST_CHECK; /* aborts on failure */
void bd_file_atomic_abort(struct bd_file_atomic *f);
/* Refuses a secret file that group or others can read, naming the chmod to run. */
int bd_file_check_private(const char *path, struct bd_err *err) BD_MUST_CHECK;
/* Creates a directory and its parents (mode for the new ones). */
int bd_mkdir_p(const char *path, mode_t mode, struct bd_err *err) BD_MUST_CHECK;
/* rel resolved against dir (rel itself when absolute); caller frees. */
char *bd_path_join(const char *dir, const char *rel);
/* The directory part of path ("." when it has none); caller frees. */
char *bd_path_dir(const char *path);

/* ---------- randomness, encodings, hashes ---------- */

int bd_random(void *buf, size_t n, struct bd_err *err) BD_MUST_CHECK;
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
int bd_url_check(const char *s, const char *schemes, struct bd_err *err) BD_MUST_CHECK;
/* A DNS label: 1..63 of [a-z0-9-], not starting or ending with '-'. */
bool bd_dns_label_ok(const char *s);
bool bd_dns_name_ok(const char *s);
/* Kubernetes label (and annotation, taint) keys: [DNS-subdomain/]name, the name at most
 * 63 of [A-Za-z0-9._-] with alphanumeric ends; values the same or empty. */
bool bd_k8s_label_key_ok(const char *key);
bool bd_k8s_label_value_ok(const char *value);

/* ---------- time ---------- */

int64_t bd_now_ms(void);  /* wall clock: what people see */
int64_t bd_mono_ms(void); /* monotonic: deadlines and back-offs */
int64_t bd_mono_us(void);

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
                  struct bd_err *err) BD_MUST_CHECK;
int bd_yaml_parse_file(const char *path, struct bd_yaml_doc *out, struct bd_err *err) BD_MUST_CHECK;
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
/* key: v, or null when v is NULL or empty. */
void bd_json_add_str_or_null(struct cJSON *o, const char *key, const char *v);

/* ---------- outbound HTTP (libcurl) ---------- */

struct bd_http_resp {
    long status;
    struct bd_buf body;
};

struct bd_http_req {
    const char *method; /* default GET */
    const char *url;
    const char *bearer; /* Authorization: Bearer ..., or NULL */
    const char *pinned_key; /* https: trust the server by this pin (sha256//BASE64) alone */
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
int bd_http(const struct bd_http_req *req, struct bd_http_resp *resp, struct bd_err *err) BD_MUST_CHECK;
void bd_http_resp_free(struct bd_http_resp *r);
/* For other libcurl users: global setup once per process, and a write callback that
 * appends to the struct bd_buf given as its data. */
void bd_curl_global_init(void);
size_t bd_curl_to_buf(char *p, size_t sz, size_t n, void *buf);
/* A libcurl easy handle (CURL *) with what every bootd call shares: no signals, a
 * connect timeout, the user agent. NULL when libcurl cannot make one. */
void *bd_curl_easy(long connect_timeout_ms);
/* TLS 1.2 or later, the peer verified against ca_pem alone (never the system's CAs),
 * and a client certificate when cert_pem and key_pem are set. */
void bd_curl_tls(void *curl, const char *ca_pem, const char *cert_pem, const char *key_pem);
/* The transfer stops (CURLE_ABORTED_BY_CALLBACK) once *cancel turns true. */
void bd_curl_cancel_on(void *curl, const atomic_bool *cancel);

/* ---------- worker threads ---------- */

/* A thread that sleeps until a deadline, a wake-up or a stop. Its owner keeps its own
 * state under mu. Embedded: bd_worker_init, then bd_worker_clear when done. */
struct bd_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started;
    bool stop, wake;   /* under mu; the owner clears wake when it acts on it */
    atomic_bool cancel; /* set by bd_worker_stop before it waits: long calls give up */
};
void bd_worker_init(struct bd_worker *w);
int bd_worker_start(struct bd_worker *w, void *(*fn)(void *), void *arg, const char *what,
                    struct bd_err *err) BD_MUST_CHECK;
/* With mu held: sleeps until deadline_ms (bd_mono_ms; negative: no deadline), a wake
 * or a stop; returns at once when one of them is already set. */
void bd_worker_wait(struct bd_worker *w, int64_t deadline_ms);
void bd_worker_wake(struct bd_worker *w);
/* Sets cancel and stop, wakes the thread and joins it. */
void bd_worker_stop(struct bd_worker *w);
void bd_worker_clear(struct bd_worker *w);

#endif
