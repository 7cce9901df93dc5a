/* Private to lab/: the table-driven decoder behind lab.yaml. */
#ifndef LAB_INTERNAL_H
#define LAB_INTERNAL_H

#include "lab.h"

struct lab_ctx {
    struct lab *lab;
    const char *file; /* for messages */
    const char *dir;  /* relative paths resolve here */
    struct bd_err *err;
    char path[256];   /* field path, e.g. machines[2].mac */
    struct machine_acc *machines; /* where decoded machines collect */
};

enum lab_ftype {
    T_STR,
    T_NAME,     /* DNS label */
    T_DNSNAME,
    T_INT,
    T_PORT,
    T_BOOL,
    T_MAC,
    T_UUID,
    T_IPV4,
    T_IPV4LIST,
    T_CIDR,
    T_URL,      /* aux: allowed schemes */
    T_DURATION,
    T_ENUM,     /* aux: NULL-terminated names; stored as int */
    T_STRLIST,
    T_PATH,     /* resolved against the file's directory */
    T_PATHLIST,
    T_KARGS,    /* kernel arguments */
    T_LABELS,   /* map of Kubernetes label key -> value */
    T_MAP,      /* aux: nested struct lab_field table, stored at off */
    T_CUSTOM,   /* aux: lab_custom_fn */
};

struct lab_field {
    const char *key;
    enum lab_ftype type;
    size_t off;
    bool required;
    const void *aux;
    size_t set_off; /* offset of a bool set when the key is present; 0 = none */
    size_t at_off;  /* offset of a struct lab_at for where the value was written; 0 = none */
};

typedef int (*lab_custom_fn)(struct lab_ctx *c, const struct bd_node *n, void *dst);

/* Fails with "file:line:col: path: message". */
int lab_fail(struct lab_ctx *c, const struct bd_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Pushes ".key" or "[i]" onto the field path; returns the old length for lab_path_pop. */
size_t lab_path_push(struct lab_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lab_path_pop(struct lab_ctx *c, size_t len);
int lab_decode_map(struct lab_ctx *c, const struct bd_node *n, const struct lab_field *fields,
                   void *base);
const char *lab_scalar(struct lab_ctx *c, const struct bd_node *n, const char *what);
/* A whole number in lo..hi. */
int lab_int(struct lab_ctx *c, const struct bd_node *n, long lo, long hi, int *out) BD_MUST_CHECK;

/* One row of a field table: F(type, key, member, required, aux), STRUCT naming the struct. */
#define F(type_, key_, member_, req_, aux_)                                                     \
    {.key = key_, .type = type_, .off = offsetof(STRUCT, member_), .required = req_, .aux = aux_}

/* The proxmox: sections' own value checks (lab/proxmox.c); the field tables are in lab.c. */
int lab_proxmox_vmid(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_vlan(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_memory(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_vmids(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_tags(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_fingerprint(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_size(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_volname(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;
int lab_proxmox_volumes(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;

/* vars: a mapping of template variable names to any YAML value, kept (in the lab's
 * arena) as a const struct bd_node * at dst. */
int lab_decode_vars(struct lab_ctx *c, const struct bd_node *n, void *dst) BD_MUST_CHECK;

/* check_addr.c: machine addresses no host can have or dnsmasq could lease away. */
int lab_check_addresses(const struct lab *lab, struct bd_err *err) BD_MUST_CHECK;

/* lab_check.c */
int lab_check(struct lab *lab, struct bd_err *err) BD_MUST_CHECK;
void lab_apply_defaults(struct lab *lab);

#endif
