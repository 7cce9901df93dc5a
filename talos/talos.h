/* talos/ — Talos machine configs, the cluster secrets bundle, and the client configs
 * (talosconfig, kubeconfig) made from it. */
#ifndef TALOS_H
#define TALOS_H

#include "../lab/lab.h"
#include "../lib/bd.h"

#include <stdatomic.h>

/* ---------- secrets bundle (secrets.yaml, the layout of `talosctl gen secrets`) ---------- */

struct talos_secrets;

/* A new bundle as talosctl makes it: an Ed25519 os CA, ECDSA P-256 CAs (etcd, k8s,
 * k8s aggregator), an RSA-4096 service-account key, cluster id/secret and tokens. */
int talos_secrets_generate(struct talos_secrets **out, struct bd_err *err) BD_MUST_CHECK;
/* The same with the os CA's algorithm chosen (bundles before this release were ECDSA). */
enum talos_os_ca { TALOS_OS_CA_ED25519, TALOS_OS_CA_ECDSA };
int talos_secrets_generate_os(struct talos_secrets **out, enum talos_os_ca os_ca,
                              struct bd_err *err) BD_MUST_CHECK;
/* Reads and checks a bundle: talosctl's layout, or the Terraform provider's
 * talos_machine_secrets as yamlencode() writes it. Refuses a file group or others can
 * read. The os CA may be Ed25519 (talosctl's default), ECDSA or RSA. */
int talos_secrets_load(const char *path, struct talos_secrets **out, struct bd_err *err) BD_MUST_CHECK;
int talos_secrets_parse(const char *text, size_t len, const char *file, struct talos_secrets **out,
                        struct bd_err *err) BD_MUST_CHECK;
/* The bundle as YAML, key for key what talosctl writes. */
void talos_secrets_emit(const struct talos_secrets *s, struct bd_buf *out);
void talos_secrets_free(struct talos_secrets *s);
/* cluster.id: the cluster's identity, the same for every bundle copy. */
const char *talos_secrets_cluster_id(const struct talos_secrets *s);

/* ---------- machine configs ---------- */

/* What bootd needs to render a lab's machine configs, prepared once per lab: the secrets
 * bundle, parsed patches, inline manifests and template files. Every machine that has
 * no config file of its own is rendered once here, so a lab whose patches do not apply
 * is refused when it is loaded, not when a machine boots. schematic is the Image Factory
 * schematic id (images_schematic_id). Keeps a pointer to lab. */
struct talos_cluster;
int talos_cluster_new(const struct lab *lab, const char *schematic, struct talos_cluster **out,
                      struct bd_err *err) BD_MUST_CHECK;
void talos_cluster_free(struct talos_cluster *tc);
/* The lab's secrets bundle. When every machine has a config file of its own, the bundle
 * is optional: NULL then, with *why_not (if asked) saying why. */
const struct talos_secrets *talos_cluster_secrets(const struct talos_cluster *tc,
                                                  const char **why_not);

/* The Talos config a machine boots with (caller frees *out). First match wins: the
 * machine's own config file, its role's config file, then the config bootd generates
 * from lab.yaml, secrets.yaml and the patches (cluster, then role, then machine). */
int talos_machine_config(const struct talos_cluster *tc, const struct lab_machine *m, char **out,
                         size_t *len, struct bd_err *err) BD_MUST_CHECK;

/* ---------- client configs ---------- */

/* A talosconfig for the lab: a fresh os:admin client certificate (extended key usage
 * clientAuth only, one year) signed by the os CA; endpoints are the control planes'
 * addresses. */
int talos_talosconfig(const struct lab *lab, const struct talos_secrets *s, struct bd_buf *out,
                      struct bd_err *err) BD_MUST_CHECK;
/* An admin kubeconfig: a client certificate (CN admin, O system:masters, one year)
 * signed by the Kubernetes CA, for the cluster endpoint. */
int talos_kubeconfig(const struct lab *lab, const struct talos_secrets *s, struct bd_buf *out,
                     struct bd_err *err) BD_MUST_CHECK;

/* What an admin kubeconfig holds, PEM: the API server (cluster.endpoint), the
 * Kubernetes CA and a fresh client certificate (CN admin, O system:masters, one year)
 * with its key. */
struct talos_kube_admin {
    char *server, *ca_pem, *crt_pem, *key_pem;
};
int talos_kube_admin(const struct lab *lab, const struct talos_secrets *s,
                     struct talos_kube_admin *out, struct bd_err *err) BD_MUST_CHECK;
void talos_kube_admin_free(struct talos_kube_admin *a);

/* A TLS server certificate signed by the os CA (or the k8s CA when k8s is set), with
 * the given subject alternative names (IPv4 addresses or DNS names). PEM texts (caller
 * frees). Stand-ins for the Talos and Kubernetes APIs in tests serve with these. */
int talos_server_cert(const struct talos_secrets *s, bool k8s, const char *common_name,
                      const char *const *sans, size_t nsans, char **crt_pem, char **key_pem,
                      struct bd_err *err) BD_MUST_CHECK;

/* How the kubeconfig Talos hands out (text) compares with the one talos_kubeconfig mints:
 * context, cluster and server names equal, the lab's Kubernetes CA among the CAs it
 * trusts, its client certificate signed by that CA. -1 when text is no kubeconfig. */
#define TALOS_KUBE_CHECKS 5
struct talos_kube_check {
    const char *what;
    bool same;
    char talos[200], bootd[200];
};
int talos_kubeconfig_compare(const struct lab *lab, const struct talos_secrets *s,
                             const char *text, size_t len,
                             struct talos_kube_check out[TALOS_KUBE_CHECKS], struct bd_err *err) BD_MUST_CHECK;

/* ---------- Talos API client: gRPC over HTTP/2 and mutual TLS to apid ---------- */

#define TALOS_API_PORT 50000

/* What bootd shows apid and what it trusts: the os CA, and an os:admin client
 * certificate (extended key usage clientAuth only) with its key, PEM. */
struct talos_creds {
    char *ca_pem, *crt_pem, *key_pem;
};
/* Mints fresh credentials from the bundle (any os CA algorithm: Ed25519, ECDSA, RSA). */
int talos_api_creds(const struct lab *lab, const struct talos_secrets *s, struct talos_creds *out,
                    struct bd_err *err) BD_MUST_CHECK;
void talos_creds_free(struct talos_creds *c);

/* One node's apid, reached directly (no proxying through another node). */
struct talos_node {
    const char *host; /* IPv4 address: apid's certificate names the node's addresses */
    int port;
    const struct talos_creds *creds;
    long connect_timeout_ms; /* 0 = 5 s */
    const atomic_bool *cancel; /* when set and true, a call in flight stops; NULL = never */
};

/* Outcomes of a call: TALOS_CALL_FAILED when no gRPC status came (no connection, TLS
 * refused, not gRPC, an answer that could not be read or stored), else the gRPC status
 * code; these are the ones bootd acts on. */
enum {
    TALOS_CALL_FAILED = -1,
    TALOS_OK = 0,
    TALOS_INVALID_ARGUMENT = 3,
    TALOS_NOT_FOUND = 5,
    TALOS_ALREADY_EXISTS = 6,
    TALOS_PERMISSION_DENIED = 7,
    TALOS_FAILED_PRECONDITION = 9,
    TALOS_UNIMPLEMENTED = 12,
    TALOS_UNAVAILABLE = 14,
    TALOS_UNAUTHENTICATED = 16,
};
const char *talos_code_name(int code); /* "FailedPrecondition" */

struct talos_version {
    char tag[64], sha[64], arch[16], platform[32], mode[32], hostname[128];
};

/* Every call returns 0 when the node answered OK; otherwise -1 with *code and a message
 * naming the node, the method and the gRPC status or transport failure. */
int talos_api_version(const struct talos_node *n, struct talos_version *out, int *code,
                      struct bd_err *err) BD_MUST_CHECK;
/* Bootstrap: starts etcd on one control plane. FailedPrecondition means not yet (retry);
 * AlreadyExists means it was done before. */
int talos_api_bootstrap(const struct talos_node *n, int *code, struct bd_err *err) BD_MUST_CHECK;
/* The admin kubeconfig Talos makes, unpacked from the Kubeconfig stream's gzipped tar
 * (caller frees *out). */
int talos_api_kubeconfig(const struct talos_node *n, char **out, size_t *len, int *code,
                         struct bd_err *err) BD_MUST_CHECK;

/* Bootstrap{recover_etcd: true}: etcd starts from the snapshot uploaded with
 * talos_api_etcd_recover. skip_hash_check only for a raw copy of etcd's db file, which
 * has no SHA-256 trailer. */
int talos_api_bootstrap_recover(const struct talos_node *n, bool skip_hash_check, int *code,
                                struct bd_err *err) BD_MUST_CHECK;
/* EtcdRecover: uploads the snapshot in fd, from its start, in 4 KiB messages as talosctl
 * does. FailedPrecondition: the node's etcd is not ready for recovery yet (retry). */
int talos_api_etcd_recover(const struct talos_node *n, int fd, int *code,
                           struct bd_err *err) BD_MUST_CHECK;

struct talos_etcd_member {
    uint64_t id;
    char hostname[128];
    char peer_url[256]; /* the first */
    bool learner;
};
/* EtcdMemberList through a control plane (query_local: its own etcd only); caller frees
 * *out. */
int talos_api_etcd_members(const struct talos_node *n, bool query_local,
                           struct talos_etcd_member **out, size_t *count, int *code,
                           struct bd_err *err) BD_MUST_CHECK;
/* EtcdRemoveMemberByID: NotFound when there is no such member. */
int talos_api_etcd_remove_member(const struct talos_node *n, uint64_t id, int *code,
                                 struct bd_err *err) BD_MUST_CHECK;

struct talos_snapshot_info {
    uint64_t size;
    char sha256[65]; /* of the whole file */
};
/* Streams an etcd snapshot into fd, checking etcd's own SHA-256 trailer at the end. */
int talos_api_etcd_snapshot(const struct talos_node *n, int fd, struct talos_snapshot_info *info,
                            int *code, struct bd_err *err) BD_MUST_CHECK;

/* ApplyConfiguration's modes, with their numbers in machine.proto. REBOOT is what Talos
 * calls it (deprecated there in favour of AUTO, which reboots only when it must). */
enum talos_apply_mode {
    TALOS_APPLY_REBOOT = 0,
    TALOS_APPLY_AUTO = 1,
    TALOS_APPLY_NO_REBOOT = 2,
    TALOS_APPLY_STAGED = 3,
    TALOS_APPLY_TRY = 4,
};
const char *talos_apply_mode_name(enum talos_apply_mode m); /* "no-reboot" */
int talos_apply_mode_parse(const char *s, enum talos_apply_mode *out);
struct talos_apply_result {
    bool answered;
    enum talos_apply_mode mode; /* the mode Talos chose (AUTO becomes REBOOT or NO_REBOOT) */
    char details[8192];         /* mode_details; on a dry run Talos's own config diff follows */
    char warnings[2048];        /* one a line */
};
/* ApplyConfiguration: the machine config in data, in mode; dry_run asks what Talos would
 * do without doing it. InvalidArgument: Talos refuses the config (invalid, or a change
 * that cannot apply in no-reboot/try mode). try_timeout_s: for TRY, 0 = Talos's default. */
int talos_api_apply_config(const struct talos_node *n, const char *data, size_t len,
                           enum talos_apply_mode mode, bool dry_run, int64_t try_timeout_s,
                           struct talos_apply_result *out, int *code,
                           struct bd_err *err) BD_MUST_CHECK;

/* Upgrade (MachineService/Upgrade, deprecated by Talos in favour of LifecycleService but
 * answered through v1.17): the node installs image and reboots into it. On a control
 * plane Talos first checks etcd is healthy (unless force or preserve). */
int talos_api_upgrade(const struct talos_node *n, const char *image, int *code,
                      struct bd_err *err) BD_MUST_CHECK;
/* The installer image of the lab's schematic at another Talos version (caller frees;
 * NULL when the lab's image is not an Image Factory one). */
char *talos_installer_image(const struct talos_cluster *tc, const char *version);

/* ---------- what bootctl plan shows of a config (config_diff.c) ---------- */

/* The key that makes redaction markers: derived from the cluster's secrets (tc may be
 * NULL, or hold no bundle: then from the name alone). */
void talos_redact_key_of(const struct talos_cluster *tc, const char *cluster_name,
                         uint8_t key[32]);
/* The config with every secret value (CA and service-account keys, tokens, the cluster
 * secret, encryption secrets, registry credentials, WireGuard keys, passphrases, inline
 * manifests holding a Secret) replaced by "<redacted:xxxxxxxx>", an HMAC of the value:
 * a changed secret shows as a changed marker. Caller frees *out. */
int talos_config_redact(const char *text, size_t len, const uint8_t key[32], char **out,
                        struct bd_err *err) BD_MUST_CHECK;
/* A unified diff (3 lines of context) from old to new_, files a/NAME and b/NAME; "" when
 * they are the same. Caller frees *out. */
int talos_text_diff(const char *old, const char *new_, const char *name, char **out,
                    struct bd_err *err) BD_MUST_CHECK;

/* The snapshot check on its own, for copies of a snapshot (bootctl's download): feed
 * every byte in order, then finish. */
struct talos_etcd_check;
struct talos_etcd_check *talos_etcd_check_new(void);
void talos_etcd_check_update(struct talos_etcd_check *c, const void *data, size_t n);
int talos_etcd_check_finish(struct talos_etcd_check *c, struct talos_snapshot_info *info,
                            struct bd_err *err) BD_MUST_CHECK;
void talos_etcd_check_free(struct talos_etcd_check *c);

/* The etcd revision a snapshot (or a raw bbolt db copy) was taken at: the highest key
 * revision in it. */
int talos_etcd_snapshot_revision(const char *path, uint64_t *rev,
                                 struct bd_err *err) BD_MUST_CHECK;

#endif
