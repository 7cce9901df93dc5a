/* talos/ — Talos machine configs, the cluster secrets bundle, and the client configs
 * (talosconfig, kubeconfig) made from it. */
#ifndef TALOS_H
#define TALOS_H

#include "../lib/bd.h"

/* ---------- secrets bundle (secrets.yaml, the layout of `talosctl gen secrets`) ---------- */

struct talos_secrets;

/* A new bundle: ECDSA P-256 CAs (etcd, k8s, k8s aggregator, os), an RSA-4096
 * service-account key, cluster id/secret and tokens. */
int talos_secrets_generate(struct talos_secrets **out, struct bd_err *err);
/* Reads and checks a bundle; refuses a file group or others can read. An Ed25519 os CA
 * (talosctl's default) is accepted and carried as it is. */
int talos_secrets_load(const char *path, struct talos_secrets **out, struct bd_err *err);
int talos_secrets_parse(const char *text, size_t len, const char *file, struct talos_secrets **out,
                        struct bd_err *err);
/* The bundle as YAML, key for key what talosctl writes. */
void talos_secrets_emit(const struct talos_secrets *s, struct bd_buf *out);
void talos_secrets_free(struct talos_secrets *s);

/* ---------- machine configs ---------- */

/* What bootd needs to render a lab's machine configs, prepared once per lab: the secrets
 * bundle, parsed patches, inline manifests and template files. Every machine that has
 * no config file of its own is rendered once here, so a lab whose patches do not apply
 * is refused when it is loaded, not when a machine boots. schematic is the Image Factory
 * schematic id (images_schematic_id). Keeps a pointer to lab. */
struct talos_cluster;
int talos_cluster_new(const struct lab *lab, const char *schematic, struct talos_cluster **out,
                      struct bd_err *err);
void talos_cluster_free(struct talos_cluster *tc);

/* The Talos config a machine boots with (caller frees *out). First match wins: the
 * machine's own config file, its role's config file, then the config bootd generates
 * from lab.yaml, secrets.yaml and the patches (cluster, then role, then machine). */
int talos_machine_config(const struct talos_cluster *tc, const struct lab_machine *m, char **out,
                         size_t *len, struct bd_err *err);

/* ---------- client configs ---------- */

/* A talosconfig for the lab: a fresh os:admin client certificate (extended key usage
 * clientAuth only, one year) signed by the os CA; endpoints are the control planes'
 * addresses. Needs an ECDSA or RSA os CA. */
int talos_talosconfig(const struct lab *lab, const struct talos_secrets *s, struct bd_buf *out,
                      struct bd_err *err);
/* An admin kubeconfig: a client certificate (CN admin, O system:masters, one year)
 * signed by the Kubernetes CA, for the cluster endpoint. */
int talos_kubeconfig(const struct lab *lab, const struct talos_secrets *s, struct bd_buf *out,
                     struct bd_err *err);

/* A TLS server certificate signed by the os CA (or the k8s CA when k8s is set), with
 * the given subject alternative names (IPv4 addresses or DNS names). PEM texts (caller
 * frees). Stand-ins for the Talos and Kubernetes APIs in tests serve with these. */
int talos_server_cert(const struct talos_secrets *s, bool k8s, const char *common_name,
                      const char *const *sans, size_t nsans, char **crt_pem, char **key_pem,
                      struct bd_err *err);

#endif
