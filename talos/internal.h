/* Private to talos/: the pieces its files share. Nothing outside talos/ includes this. */
#ifndef TALOS_INTERNAL_H
#define TALOS_INTERNAL_H

#include "talos.h"

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

/* ---------- PKI (pki_key.c, pki_cert.c, pki_ext.c) ---------- */

/* mbedTLS's f_rng, backed by getrandom(2). */
int talos_pki_rng(void *unused, unsigned char *buf, size_t len);

enum pki_key_type { PKI_KEY_EC_P256, PKI_KEY_RSA_4096 };
int talos_pki_key_generate(mbedtls_pk_context *pk, enum pki_key_type type, struct bd_err *err) BD_MUST_CHECK;
/* Parses a private key PEM (EC PRIVATE KEY, RSA PRIVATE KEY or PRIVATE KEY). what names
 * the key in messages. An Ed25519 key gets a message saying mbedTLS cannot use it. */
int talos_pki_key_parse(const char *pem, mbedtls_pk_context *pk, const char *what, struct bd_err *err) BD_MUST_CHECK;
/* SEC1 / PKCS#1 PEM of a private key (caller frees *out). */
int talos_pki_key_pem(mbedtls_pk_context *pk, char **out, struct bd_err *err) BD_MUST_CHECK;
/* True when a PEM private key is Ed25519 (the block type Talos writes, or PKCS#8 with
 * the Ed25519 algorithm). */
bool talos_pki_key_is_ed25519(const char *pem);

enum { PKI_EKU_SERVER = 1, PKI_EKU_CLIENT = 2 };

struct pki_cert_spec {
    const char *subject;    /* mbedTLS DN string, e.g. "O=talos" */
    bool ca;
    unsigned key_usage;     /* MBEDTLS_X509_KU_* */
    unsigned eku;           /* PKI_EKU_* */
    const char *const *sans; /* IPv4 literals become iPAddress, the rest dNSName */
    size_t nsans;
    int64_t not_before, not_after; /* Unix seconds */
};

/* Issues a certificate for subject_key. Self-signed when issuer is NULL (issuer_key is
 * then subject_key); otherwise the issuer name is copied byte for byte from the
 * issuer's subject, which Go needs to chain it. Returns PEM (caller frees *pem). */
int talos_pki_cert_issue(const struct pki_cert_spec *spec, mbedtls_pk_context *subject_key,
                   const mbedtls_x509_crt *issuer, mbedtls_pk_context *issuer_key, char **pem,
                   struct bd_err *err) BD_MUST_CHECK;

/* DER values of the extensions mbedTLS 2.28 has no writer for. Written at the end of
 * buf; *der points into buf. */
int talos_pki_ext_eku(unsigned eku, unsigned char *buf, size_t size, unsigned char **der, size_t *len);
int talos_pki_ext_san(const char *const *sans, size_t n, unsigned char *buf, size_t size,
                unsigned char **der, size_t *len, struct bd_err *err) BD_MUST_CHECK;

/* Base64 (standard alphabet, padded). Caller frees. */
char *talos_pki_b64(const void *data, size_t len);
/* Decodes standard base64; NULL when s is not base64 (caller frees; *len set). */
unsigned char *talos_pki_unb64(const char *s, size_t *len);

/* ---------- secrets bundle (secrets.c, secrets_gen.c) ---------- */

/* A CA as secrets.yaml holds it: base64 of the PEM texts, kept verbatim so an imported
 * bundle's values reach machine configs unchanged. */
struct secrets_ca {
    char *crt, *key;
};

struct talos_secrets {
    char *cluster_id, *cluster_secret;
    char *bootstrap_token;
    char *secretbox_secret; /* or, in bundles from Talos < 1.3, */
    char *aescbc_secret;
    char *trustd_token;
    struct secrets_ca etcd, k8s, k8s_aggregator, os;
    char *service_account_key;
    bool os_ed25519; /* carried opaquely: mbedTLS 2.28 cannot sign with it */
};

/* Loads a CA for signing; name ("os", "k8s") is for messages. */
int talos_secrets_ca_open(const struct secrets_ca *ca, const char *name, mbedtls_x509_crt *crt,
                    mbedtls_pk_context *key, struct bd_err *err) BD_MUST_CHECK;

/* ---------- config documents ---------- */

/* A machine config: docs[0] is the v1alpha1 document, the rest are typed documents. */
struct talos_docs {
    size_t n, cap;
    struct bd_node **v;
};
void talos_docs_push(struct talos_docs *d, struct bd_node *doc); /* takes doc */
void talos_docs_remove(struct talos_docs *d, size_t i);
void talos_docs_free(struct talos_docs *d);
/* Index of the typed document kind[/name], or -1. name NULL matches any. */
long talos_docs_find(const struct talos_docs *d, const char *kind, const char *name);

/* Tree building (config_tree.c). Keys are added in call order. */
struct bd_node *talos_tree_map(struct bd_node *parent, const char *key);
struct bd_node *talos_tree_seq(struct bd_node *parent, const char *key);
struct bd_node *talos_tree_item(struct bd_node *seq); /* a new mapping at the end of seq */
void talos_tree_str(struct bd_node *map, const char *key, const char *val);   /* a string */
void talos_tree_plain(struct bd_node *map, const char *key, const char *val); /* true, 7445 */
/* Walks a dotted path of map keys ("machine.install.disk"); NULL when absent. */
struct bd_node *talos_tree_at(const struct bd_node *root, const char *path);
const char *talos_tree_str_at(const struct bd_node *root, const char *path);
/* Sorts map keys the way Talos writes them: struct fields in their Go order, Go maps
 * by go-yaml's key order (config_order.c). */
void talos_tree_order_v1alpha1(struct bd_node *doc);
/* Refuses a key that Talos's v1alpha1 structs do not have; the message names it. */
int talos_tree_check_v1alpha1_keys(const struct bd_node *doc, struct bd_err *err) BD_MUST_CHECK;

/* ---------- generation (config_gen.c) ---------- */

/* The alias bootd gives the link a machine boots from (found by its MAC). */
#define TALOS_LINK "lan0"

/* What the generator needs, prepared once per lab. */
struct gen_input {
    const struct lab *lab;
    const struct talos_secrets *secrets;
    char *installer_image;  /* <factory host>/installer/<schematic>:<talos version> */
    char **manifest_texts;  /* contents of lab->cluster.inline_manifests[i].file */
};
/* The v1alpha1 document every machine of a role starts from. */
struct bd_node *talos_gen_role_base(const struct gen_input *in, enum lab_role role);
/* A machine's config before patches: its role's base with its own values, then its
 * HostnameConfig and network documents. */
void talos_gen_machine(const struct gen_input *in, const struct bd_node *role_base,
                 const struct lab_machine *m, struct talos_docs *out);

/* ---------- patches (patch_*.c) ---------- */

enum patch_kind { PATCH_MERGE, PATCH_JSON };

/* One patch file, parsed. Template patches (*.tftpl) keep their text and are filled
 * in and parsed for each machine. */
struct talos_patch {
    char *file;
    bool is_template;
    char *text;             /* template text */
    enum patch_kind kind;   /* for parsed patches */
    struct bd_yaml_doc yaml;
};

/* Variables a template patch may use: name -> text. */
struct patch_vars {
    size_t n;
    const char **names;
    const char **values;
};

int talos_patch_load(const char *file, struct talos_patch *out, struct bd_err *err) BD_MUST_CHECK;
void talos_patch_free(struct talos_patch *p);
/* Fills a template's ${name} and ${indent(N, name)} placeholders. */
int talos_patch_fill_template(const struct talos_patch *p, const struct patch_vars *vars,
                        struct bd_buf *out, struct bd_err *err) BD_MUST_CHECK;
/* Parses patch text into p->yaml and p->kind. */
int talos_patch_parse(struct talos_patch *p, const char *text, size_t len, struct bd_err *err) BD_MUST_CHECK;
/* Applies a parsed patch; messages name the patch file and the path inside it. */
int talos_patch_apply(struct talos_docs *d, const struct talos_patch *p, struct bd_err *err) BD_MUST_CHECK;
/* Talos's strategic merge of one patch document into the config. */
int talos_patch_merge_doc(struct talos_docs *d, const struct bd_node *patch, const char *file,
                    struct bd_err *err) BD_MUST_CHECK;
/* RFC 6902 operations (a list) applied to the v1alpha1 document. */
int talos_patch_json_apply(struct bd_node **root, const struct bd_node *ops, const char *file,
                     struct bd_err *err) BD_MUST_CHECK;

/* ---------- validation (validate*.c) ---------- */

struct validate_ctx {
    enum lab_role role;
    bool has_vip;
    uint32_t vip;
};
/* The Talos rules that concern bootd's output; messages name the field. */
int talos_validate(const struct talos_docs *d, const struct validate_ctx *vc, struct bd_err *err) BD_MUST_CHECK;

/* ---------- Talos API (api*.c, targz.c) ---------- */

/* Reading a protobuf message field by field. */
struct pb_reader {
    const uint8_t *p, *end;
};
struct pb_field {
    uint32_t num;
    int wire;
    uint64_t varint;     /* varint fields */
    const uint8_t *data; /* length-delimited and fixed-size fields */
    size_t len;
};
/* 1 a field, 0 the end, -1 malformed. */
int talos_pb_next(struct pb_reader *r, struct pb_field *f);
struct pb_reader talos_pb_sub(const struct pb_field *f); /* an embedded message */
bool talos_pb_is_bytes(const struct pb_field *f);        /* strings, bytes, messages */
void talos_pb_copy_string(const struct pb_field *f, char *out, size_t n); /* truncates */
void talos_pb_put_bool(struct bd_buf *b, uint32_t num, bool v);

/* One gRPC call: the request message, then each response message to on_msg (which
 * returns -1 with err set to stop the call). */
struct talos_grpc_call {
    const struct talos_node *node;
    const char *method; /* "/machine.MachineService/Version" */
    const struct bd_buf *req;
    bool stream; /* a server stream: no overall time limit, only one for stalls */
    int (*on_msg)(const uint8_t *p, size_t n, void *ud, struct bd_err *err);
    void *ud;
};
int talos_grpc_call(const struct talos_grpc_call *c, int *code, struct bd_err *err) BD_MUST_CHECK;

/* The file want from a gzipped tar of at most max bytes unpacked (caller frees *out). */
int talos_targz_entry(const void *gz, size_t n, const char *want, size_t max, char **out, size_t *len,
                struct bd_err *err) BD_MUST_CHECK;

#endif
