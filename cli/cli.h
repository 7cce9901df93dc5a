/* cli/ — bootctl. This header is shared by the files of cli/ only. */
#ifndef CLI_H
#define CLI_H

#include "../lab/lab.h"
#include "../lib/bd.h"
#include "../proxmox/proxmox.h"
#include "../state/state.h"
#include "../talos/talos.h"

#include <stdio.h>

struct cJSON;

/* Owns its strings; cli_free releases them. */
struct cli {
    char *url;
    char *url_from;   /* where url came from, for messages */
    char *token;
    char *token_from; /* where the token came from */
    char *pin;        /* https: bootd's certificate pin (BOOTD_PIN, or admin.pin beside the
                       * token file) */
    char *pin_from;
    bool json;        /* -o json */
};
void cli_free(struct cli *c);

/* Resolves URL and token: flags, then BOOTD_URL/BOOTD_TOKEN/BOOTD_TOKEN_FILE, then the
 * config file, then the local defaults. */
int cli_resolve(struct cli *c, const char *flag_url, const char *flag_token_file,
                struct bd_err *err) BD_MUST_CHECK;
/* Calls the admin API; returns the parsed JSON (caller frees) or NULL with a message
 * that says what to do. *status gets the HTTP status. */
struct cJSON *cli_api(struct cli *c, const char *method, const char *path, const char *body,
                      long *status, struct bd_err *err);
/* Streams a GET's 2xx body into sink (which returns -1 to stop); an error answer becomes
 * err. A sink failure leaves err as the sink's caller set it up (see bd_http). */
int cli_download(struct cli *c, const char *path, int (*sink)(const void *, size_t, void *),
                 void *ud, struct bd_err *err) BD_MUST_CHECK;
/* cli_api plus the failure paths: NULL means "exit with *code" (message printed). */
struct cJSON *cli_call(struct cli *c, const char *method, const char *path, const char *body,
                       int *code);
/* A call whose answer is shown: with -o json it is printed as it is and NULL comes
 * back with *code 0; otherwise as cli_call, and the caller prints it for people. */
struct cJSON *cli_view(struct cli *c, const char *method, const char *path, const char *body,
                       int *code);
/* Prints {"error": ...} bodies as a message on stderr; returns the exit code 1. */
int cli_api_error(const struct cJSON *j, long status);

/* fmt with a machine name or MAC in its %s, kept from reaching another API route
 * (caller frees). */
char *cli_machine_path(const char *fmt, const char *id);

/* Output helpers. */
void cli_print_json(const struct cJSON *j);
struct table;
struct table *cli_table_new(size_t ncols, const char *const *headers);
void cli_table_add(struct table *t, const char *const *cells);
void cli_table_print(struct table *t, FILE *f); /* frees t */
void cli_table_free(struct table *t);
const char *cli_time(const struct cJSON *o, const char *key, char buf[32]);
const char *cli_str(const struct cJSON *o, const char *key);
/* s with control characters shown as \xNN (caller frees): for anything a machine sent. */
char *cli_escape(const char *s);
/* A --timeout's value (30, 30s, 5m, 2h, 1d): 0, or -1 with the message printed. */
int cli_duration(const char *opt, const char *s, int64_t *seconds);
/* v, or what to print when the API left it null. */
const char *cli_or(const char *v, const char *dash);
/* Writes text to path (0600, atomically), or to stdout for "-". */
int cli_put(const char *path, const char *text, size_t len, struct bd_err *err) BD_MUST_CHECK;

int cli_cmd_validate(int argc, char **argv);
int cli_etcd_snapshots(struct cli *c, int argc, char **argv); /* argv[0] = "snapshots" */
int cli_cmd_rebuild(struct cli *c, int argc, char **argv);
int cli_etcd_members(struct cli *c);
int cli_cmd_secrets(struct cli *c, int argc, char **argv);
int cli_machine_replace(struct cli *c, int argc, char **argv); /* argv[0] = "replace" */
int cli_machine_uki(struct cli *c, int argc, char **argv);     /* argv[0] = "uki" */
int cli_cmd_gen(int argc, char **argv);
int cli_cmd_plan(struct cli *c, int argc, char **argv);
int cli_machine_diff(struct cli *c, const char *name); /* bootctl plan NAME */
int cli_cmd_apply(struct cli *c, int argc, char **argv);
int cli_cmd_upgrade(struct cli *c, int argc, char **argv);
/* bootctl gen secureboot (cmd_secureboot.c): keys into out_dir (NULL: secureboot/ next to
 * lab.yaml); never replaces keys already there. */
int cli_gen_secureboot(const struct lab *lab, const char *out_dir, struct bd_err *err);
int cli_cmd_machines(struct cli *c, int argc, char **argv);
int cli_cmd_machine(struct cli *c, int argc, char **argv);
int cli_cmd_events(struct cli *c, int argc, char **argv);
int cli_cmd_reload(struct cli *c, int argc, char **argv);
int cli_cmd_status(struct cli *c, int argc, char **argv);
int cli_cmd_logs(struct cli *c, int argc, char **argv);
int cli_cmd_dhcp_event(struct cli *c, int argc, char **argv);
/* Works on the image cache directly; url and token_file (global flags, may be NULL)
 * find bootd to tell it about changes. */
int cli_cmd_image(struct cli *c, const char *url, const char *token_file, int argc, char **argv);
int cli_cmd_gitops(struct cli *c, int argc, char **argv);
int cli_cmd_gitops_render(int argc, char **argv, bool json); /* offline */
struct gitops_render_opts;
/* The rendering options of gitops render and plan (--kustomize, --helm, --helm-cache;
 * --root only where root is given): -1 on a bad option; optind is the first path. */
int cli_gitops_render_opts(int argc, char **argv, struct gitops_render_opts *ro,
                           const char **root);
int cli_cmd_gitops_plan(int argc, char **argv, bool json);   /* offline */
int cli_cmd_bootstrap(struct cli *c, int argc, char **argv);
/* The "cluster" part of /status: phase, bootstrap, each machine's Talos API. */
void cli_print_cluster(const struct cJSON *cluster);
int cli_cmd_etcd(struct cli *c, int argc, char **argv);
int cli_cmd_kubeconfig(struct cli *c, int argc, char **argv);
int cli_cmd_vm(int argc, char **argv, bool json); /* offline: lab.yaml to the Proxmox API */
/* What every bootctl vm command works with (cmd_vm.c opens it). */
struct cli_vm {
    struct lab *lab;
    struct proxmox_lab pl;
    struct proxmox *px;
    struct state_db *st; /* plan and apply: the VMs' smbios1 uuids */
    bool json;
};
int cli_vm_volumes(struct cli_vm *v, int owner, int argc, char **argv); /* cmd_vm_data.c */
/* vm destroy's PersistentVolume check (cmd_vm_pv.c): a proxmox_frees_fn. */
struct cli_pv_check {
    const struct lab *lab;
    const char *kubeconfig; /* --kubeconfig, or NULL */
    bool force;             /* --force-data-loss */
    bool listed, no_cluster, noted;
    struct cJSON *pvs;      /* the PersistentVolumeList */
    char *unchecked;        /* why the list could not be read */
};
int cli_vm_pv_check(const char *what, const char *node, const char *const *volids, size_t n,
                    void *ud, struct bd_err *err);
void cli_pv_check_free(struct cli_pv_check *c);
int cli_vm_csi(struct cli_vm *v, const char *out);

#endif
