/* boot/ — what a PXE-booting machine is told: the iPXE scripts bootd serves, the Talos
 * kernel command line. Pure rendering: no I/O, no state. */
#ifndef BOOT_H
#define BOOT_H

#include "../lab/lab.h"
#include "../lib/bd.h"

/* The script served at /boot.ipxe: chains to /ipxe with what identifies the machine. */
void boot_ipxe_chain(struct bd_buf *out, const char *base_url);

struct ipxe_boot {
    const char *comment;     /* first-line comment, e.g. the machine's name and role */
    const char *kernel_url;
    const char *initrd_url;
    const char *kernel_args; /* already complete, including initrd= when needed */
    const char *retry_url;   /* fetched again if a download fails */
};
void boot_ipxe_boot(struct bd_buf *out, const struct ipxe_boot *b);
/* Prints message on the console and asks retry_url again every retry_s seconds. */
void boot_ipxe_hold(struct bd_buf *out, const char *message, int64_t retry_s,
                      const char *retry_url);
/* Leaves iPXE so the firmware boots the next device (the installed disk). */
void boot_ipxe_exit(struct bd_buf *out, const char *message);

/* Maps iPXE's ${buildarch} to the Talos architecture name; NULL if Talos has none. */
const char *boot_talos_arch(const char *buildarch);

struct boot_kernel_args {
    const struct lab *lab;
    const struct lab_machine *machine;
    const char *arch;         /* amd64 | arm64 */
    const char *base_cmdline; /* the image's cmdline-metal-<arch>, or NULL for built-in */
    const char *initrd_name;  /* set for UEFI, whose older iPXE builds need initrd= */
    const char *config_url;
    const char *log_sink;     /* host:port of the kernel-log sink, or NULL */
};
/* Layers, later replacing earlier ones key by key: the image's defaults, boot.console,
 * boot.kernel_args, the machine's kernel_args, then what bootd owns. */
void boot_kernel_args(struct bd_buf *out, const struct boot_kernel_args *a);

/* The kernel command line Talos's own metal images carry for a version and arch (see
 * docs/talos.md): what bootd boots with when no cmdline file is cached. */
void boot_default_cmdline(struct bd_buf *out, const char *talos_version, const char *arch);


#endif
