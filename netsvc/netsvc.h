/* netsvc/ — the network services bootd runs for a lab: dnsmasq's configuration
 * (DHCP in full or proxy mode, TFTP of the iPXE binaries, DNS records for services),
 * its reservations, its lease events, and the dnsmasq process itself. */
#ifndef NETSVC_H
#define NETSVC_H

#include "../lab/lab.h"
#include "../lib/bd.h"

/* Where a lab's dnsmasq files live (all under <state-dir>/dnsmasq). */
struct netsvc_files {
    char *dir, *conf, *hostsdir, *hosts, *leases, *tftp, *hook, *pid;
};
void netsvc_files_init(struct netsvc_files *f, const char *state_dir);
void netsvc_files_free(struct netsvc_files *f);

/* How dnsmasq reaches bootd with lease events. */
struct netsvc_hook {
    const char *bootctl;    /* absolute path of bootctl */
    const char *api_url;    /* bootd's admin API base, e.g. http://127.0.0.1:8080 */
    const char *token_file; /* bootd's admin token */
};

/* The text of dnsmasq.conf for the lab. Pure: no I/O. */
void netsvc_render_conf(const struct lab *lab, const struct netsvc_files *f, struct bd_buf *out);
/* The reservations file: one "MAC,IP,hostname" line per machine with an ip. */
void netsvc_render_hosts(const struct lab *lab, struct bd_buf *out);

/* Checks the lab against this host (the interface exists, is up to serve, carries
 * lan.boot_server inside lan.subnet; the iPXE binaries are readable), then writes the
 * config, reservations, lease hook and TFTP directory. *conf_changed / *hosts_changed
 * say what differs from what was there. Errors name the lab.yaml field. */
int netsvc_prepare(const struct lab *lab, const struct netsvc_files *f,
                   const struct netsvc_hook *hook, bool *conf_changed, bool *hosts_changed,
                   struct bd_err *err) BD_MUST_CHECK;

/* One lease from dnsmasq's lease file or a --dhcp-script call. */
struct netsvc_lease {
    int64_t expires; /* epoch seconds; 0 = infinite */
    char mac[18];
    char ip[16];
    char hostname[64];
};
/* Parses a dnsmasq lease file; calls fn for each IPv4 lease. Malformed lines are
 * skipped and counted in *bad (may be NULL). */
void netsvc_parse_leases(const char *text, void (*fn)(const struct netsvc_lease *, void *),
                         void *arg, int *bad);
/* Client architecture from dnsmasq's DNSMASQ_TAGS ("efi64", "bios"), or NULL. */
const char *netsvc_arch_from_tags(const char *tags);

/* The dnsmasq process: started in the foreground, its log lines forwarded to bootd's
 * log with a "dnsmasq: " prefix, restarted with backoff when it dies. */
struct dnsmasq;
/* pid_file: where dnsmasq records its pid; a dnsmasq still running from a bootd that
 * died is stopped first. */
int netsvc_dnsmasq_start(const char *binary, const char *conf, const char *pid_file, struct dnsmasq **out,
                  struct bd_err *err) BD_MUST_CHECK;
void netsvc_dnsmasq_reload(struct dnsmasq *d);  /* SIGHUP: re-read reservations */
void netsvc_dnsmasq_restart(struct dnsmasq *d); /* stop and start: re-read dnsmasq.conf */
void netsvc_dnsmasq_stop(struct dnsmasq *d);
/* Copies a one-line status into buf: "running (pid N)" or why it is not. */
void netsvc_dnsmasq_status(struct dnsmasq *d, char *buf, size_t n);
/* Pid of the running dnsmasq, 0 if none. */
int netsvc_dnsmasq_pid(struct dnsmasq *d);

/* DHCP client architectures (option 93) and the iPXE binary each one gets over TFTP. */
struct netsvc_firmware {
    const char *tag;  /* dnsmasq tag name */
    int client_arch;  /* option 93 value */
    const char *csa;  /* PXE client system type, as dnsmasq's pxe-service names it */
    const char *what; /* human description */
};
extern const struct netsvc_firmware netsvc_firmwares[];
extern const size_t netsvc_nfirmwares;
/* The lab's iPXE binary path for a firmware tag. */
const char *netsvc_firmware_binary(const struct lab *lab, const char *tag);

#endif
