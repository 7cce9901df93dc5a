/* Private to talos/: the pieces its files share. Nothing outside talos/ includes this. */
#ifndef TALOS_INTERNAL_H
#define TALOS_INTERNAL_H

#include "talos.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---------- PKI (pki_key.c, pki_cert.c): OpenSSL 3, see docs/talos.md ---------- */

enum pki_key_type { PKI_KEY_ED25519, PKI_KEY_EC_P256, PKI_KEY_RSA_4096 };
EVP_PKEY *talos_pki_key_generate(enum pki_key_type type, struct bd_err *err) BD_MUST_CHECK;
/* The type a key has (RSA of any size reads as PKI_KEY_RSA_4096). */
enum pki_key_type talos_pki_key_type_of(const EVP_PKEY *k);
const char *talos_pki_key_type_name(const EVP_PKEY *k); /* "Ed25519", "ECDSA", "RSA" */
/* Parses a private key PEM of the block types Talos reads (ED25519 PRIVATE KEY,
 * EC PRIVATE KEY, RSA PRIVATE KEY, PRIVATE KEY). what names the key in messages. */
EVP_PKEY *talos_pki_key_parse(const char *pem, const char *what, struct bd_err *err) BD_MUST_CHECK;
/* PEM of a private key as talosctl writes it: ED25519 PRIVATE KEY (PKCS#8 body),
 * EC PRIVATE KEY (SEC1), RSA PRIVATE KEY (PKCS#1). Caller frees *out. */
int talos_pki_key_pem(EVP_PKEY *k, char **out, struct bd_err *err) BD_MUST_CHECK;

enum { PKI_EKU_SERVER = 1, PKI_EKU_CLIENT = 2 };
enum { PKI_KU_DIGITAL_SIGNATURE = 1, PKI_KU_KEY_ENCIPHERMENT = 2, PKI_KU_CERT_SIGN = 4 };

struct pki_cert_spec {
    const char *subject;    /* "O=talos", "O=system:masters,CN=admin", "" */
    bool ca;
    unsigned key_usage;     /* PKI_KU_* */
    unsigned eku;           /* PKI_EKU_* */
    const char *const *sans; /* IPv4 literals become iPAddress, the rest dNSName */
    size_t nsans;
    int64_t not_before, not_after; /* Unix seconds */
};

/* Issues a certificate for subject_key. Self-signed when issuer is NULL; otherwise the
 * issuer name is the issuer's subject as encoded, which Go needs to chain it. Signed
 * with SHA-256 (ECDSA, RSA PKCS#1 v1.5) or Ed25519. Returns PEM (caller frees *pem). */
int talos_pki_cert_issue(const struct pki_cert_spec *spec, EVP_PKEY *subject_key, X509 *issuer,
                   EVP_PKEY *issuer_key, char **pem, struct bd_err *err) BD_MUST_CHECK;
X509 *talos_pki_cert_parse(const char *pem, const char *what, struct bd_err *err) BD_MUST_CHECK;
char *talos_pki_cert_pem(X509 *x); /* caller frees */
/* 0 when crt chains to ca (signature, validity, CA constraints); else -1, err says why. */
int talos_pki_cert_verify(X509 *crt, X509 *ca, struct bd_err *err) BD_MUST_CHECK;

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
    bool os_ed25519; /* talosctl's default; bootd signs with it like any other */
};

/* Loads a CA for signing; name ("os", "k8s") is for messages. Caller frees both. */
int talos_secrets_ca_open(const struct secrets_ca *ca, const char *name, X509 **crt, EVP_PKEY **key,
                          struct bd_err *err) BD_MUST_CHECK;

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
    char *installer_image;  /* <factory host>/[metal-]installer/<schematic>:<talos version> */
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
struct tmpl;

/* One patch file, parsed. Template patches (*.tftpl) keep their text and are filled
 * in and parsed for each machine. */
struct talos_patch {
    char *file;
    bool is_template;
    char *text;             /* template text */
    struct tmpl *tmpl;      /* ... parsed when the file is read */
    enum patch_kind kind;   /* for parsed patches */
    struct bd_yaml_doc yaml;
};

/* Variables a template patch may use: name -> value (a YAML node, so cluster.vars
 * may hold lists and maps; a null node is Terraform's null). */
struct patch_vars {
    size_t n;
    const char **names;
    const struct bd_node **values;
};

int talos_patch_load(const char *file, struct talos_patch *out, struct bd_err *err) BD_MUST_CHECK;
void talos_patch_free(struct talos_patch *p);
/* Renders a template patch as Terraform's templatefile() would (tmpl_*.c). */
int talos_patch_fill_template(const struct talos_patch *p, const struct patch_vars *vars,
                        struct bd_buf *out, struct bd_err *err) BD_MUST_CHECK;

/* ---------- templates (tmpl_*.c): Terraform's template language ---------- */

enum tv_kind { TV_NULL, TV_BOOL, TV_NUM, TV_STR, TV_LIST, TV_MAP };
/* A value; everything lives in one arena per render. Maps keep keys sorted. */
struct tv {
    enum tv_kind k;
    bool b;
    double num;
    const char *s; /* strings: len bytes, NUL-terminated */
    size_t len;
    size_t n, cap; /* lists and maps */
    struct tv **items;
    const char **keys; /* maps */
};
struct tv *talos_tv_new(struct bd_arena *a, enum tv_kind k);
struct tv *talos_tv_str(struct bd_arena *a, const char *s, size_t len);
struct tv *talos_tv_num(struct bd_arena *a, double n);
struct tv *talos_tv_bool(struct bd_arena *a, bool b);
void talos_tv_push(struct bd_arena *a, struct tv *list, const char *key, struct tv *item);
void talos_tv_sort_map(struct tv *map);
const struct tv *talos_tv_get(const struct tv *map, const char *key);
/* YAML to value: plain true/false, numbers and null become bool, number, null. */
struct tv *talos_tv_from_node(struct bd_arena *a, const struct bd_node *n);
const char *talos_tv_kind_name(const struct tv *v);
void talos_tv_format_number(double n, char out[32]);
void talos_tv_json(struct bd_buf *b, const struct tv *v); /* jsonencode() */
void talos_tv_yaml(struct bd_buf *b, const struct tv *v); /* yamlencode() */

/* Expressions and template pieces, as tmpl_parse.c reads them; at is the offset in
 * the template text, for file:line:col in messages. */
enum tx_kind { TX_LIT, TX_VAR, TX_ATTR, TX_INDEX, TX_CALL, TX_TUPLE, TX_OBJECT, TX_NOT, TX_NEG,
               TX_BINARY, TX_COND, TX_TEMPLATE, TX_FOR_TUPLE, TX_FOR_OBJECT };
enum tx_op { OP_OR, OP_AND, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ADD, OP_SUB, OP_MUL,
             OP_DIV, OP_MOD };
struct tx {
    enum tx_kind k;
    size_t at;
    struct tv *lit;   /* TX_LIT */
    const char *name; /* TX_VAR, TX_ATTR, TX_CALL */
    enum tx_op op;
    struct tx *a, *b, *c;
    size_t n;          /* TX_CALL args, TX_TUPLE items, TX_OBJECT pairs */
    struct tx **args;
    struct tx **keys;  /* TX_OBJECT */
    struct tn *body;   /* TX_TEMPLATE: a quoted string with ${...} or %{...} in it */
    /* TX_FOR_*: [for key_var, val_var in a : b if c], {for ... : d => b if c} */
    const char *key_var, *val_var;
    struct tx *d;
};
enum tn_kind { TN_TEXT, TN_INTERP, TN_IF, TN_FOR };
struct tn {
    enum tn_kind k;
    size_t at;
    char *text; /* TN_TEXT */
    size_t len;
    struct tx *e;          /* TN_INTERP value, TN_IF condition, TN_FOR collection */
    struct tn *body, *els; /* TN_IF, TN_FOR */
    const char *key_var, *val_var; /* TN_FOR: key_var NULL with one variable */
    struct tn *next;
};
struct tmpl {
    char *file, *text;
    struct bd_arena arena;
    struct tn *body;
};
/* "file:line:col: " for an offset into the template. */
void talos_tmpl_where(const struct tmpl *t, size_t at, char *out, size_t size);
/* A function call (tmpl_func.c); NULL with err set on error. */
struct tv *talos_tmpl_call(const struct tmpl *t, const struct tx *call, struct tv **args,
                     struct bd_arena *a, struct bd_err *err);

/* A parsed template (tmpl_parse.c).*/
struct tmpl *talos_tmpl_parse(const char *file, const char *text, struct bd_err *err) BD_MUST_CHECK;
void talos_tmpl_free(struct tmpl *t);
/* Renders with vars (name -> value); errors name file:line:col. */
int talos_tmpl_render(const struct tmpl *t, size_t nvars, const char *const *names,
                struct tv *const *values, struct bd_arena *a, struct bd_buf *out,
                struct bd_err *err) BD_MUST_CHECK;
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
    struct bd_mac mac; /* the machine's, from lab.yaml */
    bool ifnames0;     /* the installed system boots with net.ifnames=0 (eth0 names) */
    bool ifnames0_pxe_only; /* ... only the PXE boot does (boot.kernel_args) */
};
/* The Talos rules that concern bootd's output; messages name the field. */
int talos_validate(const struct talos_docs *d, const struct validate_ctx *vc, struct bd_err *err) BD_MUST_CHECK;
/* Links a PXE-booted metal machine will not have (validate_metal.c). */
int talos_validate_metal(const struct talos_docs *d, const struct validate_ctx *vc,
                         struct bd_err *err) BD_MUST_CHECK;

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
void talos_pb_put_uint64(struct bd_buf *b, uint32_t num, uint64_t v);
void talos_pb_put_bytes(struct bd_buf *b, uint32_t num, const void *p, size_t n);
void talos_pb_put_uint64(struct bd_buf *b, uint32_t num, uint64_t v);
void talos_pb_put_bytes(struct bd_buf *b, uint32_t num, const void *p, size_t n);

/* One gRPC call: the request message, then each response message to on_msg (which
 * returns -1 with err set to stop the call). */
struct talos_grpc_call {
    const struct talos_node *node;
    const char *method; /* "/machine.MachineService/Version" */
    const struct bd_buf *req;
    bool stream; /* a server stream: no overall time limit, only one for stalls */
    int (*on_msg)(const uint8_t *p, size_t n, void *ud, struct bd_err *err);
    void *ud;
    /* A client stream instead of req: next_msg puts the next message in b (returns 1),
     * or says the stream is over (0) or failed (-1, err set). */
    int (*next_msg)(struct bd_buf *b, void *ud, struct bd_err *err);
    void *next_ud;
};
int talos_grpc_call(const struct talos_grpc_call *c, int *code, struct bd_err *err) BD_MUST_CHECK;

/* A call's answer as it arrives (api_grpc_wire.c): header and trailer lines, and the
 * framed messages, each handed to on_msg once complete. */
struct talos_grpc_answer {
    struct bd_buf pending; /* the start of a message whose end has not arrived */
    int grpc_status;       /* -1 until grpc-status arrives */
    char grpc_message[512];
    char content_type[64];
};
void talos_grpc_answer_init(struct talos_grpc_answer *a);
void talos_grpc_header(struct talos_grpc_answer *a, const char *line, size_t len);
/* 0, or -1 with err set: a compressed or oversized message, or on_msg said stop. */
int talos_grpc_data(struct talos_grpc_answer *a, const void *p, size_t n,
                    int (*on_msg)(const uint8_t *, size_t, void *, struct bd_err *), void *ud,
                    struct bd_err *err) BD_MUST_CHECK;

/* The shared parts of api.c's calls, for api_etcd.c. */
#define TALOS_API_SERVICE "/machine.MachineService/"
int talos_api_call(const struct talos_node *n, const char *method, const struct bd_buf *req,
                   bool stream, int (*on_msg)(const uint8_t *, size_t, void *, struct bd_err *),
                   void *ud, int *code, struct bd_err *err) BD_MUST_CHECK;
/* A response item's common.Metadata: the error a node reports there fails the call. */
int talos_api_check_metadata(const struct pb_field *md, char *hostname, size_t hn,
                             struct bd_err *err) BD_MUST_CHECK;
/* on_msg for the answers made of `repeated {common.Metadata metadata = 1; ...} messages = 1`
 * (Bootstrap, EtcdRecover, EtcdRemoveMemberByID): checks each item's metadata; ud names
 * the message for errors (NULL: BootstrapResponse). */
int talos_api_on_items(const uint8_t *p, size_t n, void *ud, struct bd_err *err);

/* The file want from a gzipped tar of at most max bytes unpacked (caller frees *out). */
int talos_targz_entry(const void *gz, size_t n, const char *want, size_t max, char **out, size_t *len,
                struct bd_err *err) BD_MUST_CHECK;

#endif
