/* boot/ — what a PXE-booting machine is told: the iPXE scripts bootd serves, the Talos
 * kernel command line, and which iPXE binary each firmware kind gets. Pure rendering:
 * no I/O, no state. */
#ifndef BOOT_H
#define BOOT_H

#include "../lib/bd.h"

/* The script served at /boot.ipxe: chains to /ipxe with what identifies the machine. */
void ipxe_render_chain(struct bd_buf *out, const char *base_url);

struct ipxe_boot {
    const char *comment;     /* first-line comment, e.g. the machine's name and role */
    const char *kernel_url;
    const char *initrd_url;
    const char *kernel_args; /* already complete, including initrd= when needed */
    const char *retry_url;   /* fetched again if a download fails */
};
void ipxe_render_boot(struct bd_buf *out, const struct ipxe_boot *b);
/* Prints message on the console and asks retry_url again every retry_s seconds. */
void ipxe_render_hold(struct bd_buf *out, const char *message, int64_t retry_s,
                      const char *retry_url);
/* Leaves iPXE so the firmware boots the next device (the installed disk). */
void ipxe_render_exit(struct bd_buf *out, const char *message);

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

/* Built-in Talos metal command line for a version and arch (FACTS §5). */
void boot_default_cmdline(struct bd_buf *out, const char *talos_version, const char *arch);

/* DHCP client architectures (option 93) and the iPXE binary each one gets over TFTP. */
struct boot_firmware {
    const char *tag;  /* dnsmasq tag name */
    int client_arch;  /* option 93 value */
    const char *csa;  /* PXE client system type, as dnsmasq's pxe-service names it */
    const char *what; /* human description */
};
extern const struct boot_firmware boot_firmwares[];
extern const size_t boot_nfirmwares;
/* The lab's iPXE binary path for a firmware tag. */
const char *boot_firmware_binary(const struct lab *lab, const char *tag);

#endif
