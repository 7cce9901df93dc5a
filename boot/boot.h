/* boot/ — what a network-booting machine is told: the iPXE scripts bootd serves, the Talos
 * kernel command line, and Unified Kernel Images for UEFI HTTP Boot with their
 * Authenticode signatures and the lab's Secure Boot keys. No I/O and no state: UKIs are
 * laid out from bytes and sizes, and the caller reads the files. */
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


/* ---------- Unified Kernel Images (uki.c, authenticode.c, secureboot.c) ---------- */
/* The .cmdline section has a fixed size so that a UKI's headers, and with them its
 * checksum and hash up to .cmdline, are the same for every boot: the kernel's own
 * command line limit (COMMAND_LINE_SIZE, 2048 on x86-64 and arm64) less its NUL. */
#define BOOT_UKI_CMDLINE_MAX 2047
#define BOOT_UKI_CMDLINE_RAW 2048
#define BOOT_UKI_NADDED 3 /* .linux, .initrd, .cmdline */

/* One architecture's image layout: the stub's headers and sections (patched: three
 * more sections, the image size) followed by .linux and .initrd, which are the cache
 * files as they are, zero-padded to the file alignment, then .cmdline. */
struct boot_uki {
    uint8_t *head; /* the patched stub, up to the end of its last section */
    size_t head_len;
    uint32_t file_align;
    uint64_t linux_off, linux_size;
    uint64_t initrd_off, initrd_size;
    uint64_t cmdline_off;
    uint64_t size;       /* up to the end of .cmdline (a signature follows it) */
    size_t checksum_off; /* of the PE checksum field, in head */
    size_t secdir_off;   /* of the security directory entry, in head */
};
/* Lays out a UKI from the unsigned systemd EFI stub (its bytes) and the sizes of the
 * kernel and initramfs. Refuses stubs it cannot extend safely. */
int boot_uki_layout(struct boot_uki *u, const void *stub, size_t stub_len, uint64_t linux_size,
                    uint64_t initrd_size, struct bd_err *err);
void boot_uki_free(struct boot_uki *u);

/* The PE checksum (and, for signing, the Authenticode SHA-256) of an image, fed its
 * bytes in file order. Feed it head, then the kernel and initramfs with their padding:
 * that prefix is what boot_uki_finish starts from. */
struct boot_uki_sum {
    uint64_t pos;   /* bytes fed */
    uint64_t words; /* sum of 16-bit little-endian words */
    bool odd;       /* a byte waits for its partner */
    uint8_t odd_byte;
    void *sha;      /* EVP_MD_CTX, NULL when not hashing */
};
void boot_uki_sum_init(struct boot_uki_sum *s, bool hash);
void boot_uki_sum_update(const struct boot_uki *u, struct boot_uki_sum *s, const void *data,
                         size_t n);
void boot_uki_sum_copy(struct boot_uki_sum *dst, const struct boot_uki_sum *src);
void boot_uki_sum_free(struct boot_uki_sum *s);
/* The PE checksum from a word sum: folded to 16 bits, plus the file's size. */
uint32_t boot_uki_checksum_of(uint64_t words, uint64_t file_size);

/* An Authenticode signer: an X.509 certificate and its RSA key, both PEM. */
struct boot_signer;
int boot_signer_new(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                    struct boot_signer **out, struct bd_err *err);
void boot_signer_free(struct boot_signer *s);
/* The certificate's subject, for messages (caller frees). */
char *boot_signer_subject(const struct boot_signer *s);
/* A PKCS#7 SignedData (DER, caller frees) whose content is the Authenticode
 * SpcIndirectDataContent for a PE image with that SHA-256 Authenticode digest. */
int boot_authenticode_sign(const struct boot_signer *s, const uint8_t digest[32], uint8_t **der,
                           size_t *len, struct bd_err *err);

/* What one boot adds: its .cmdline bytes, the header fields that change with them,
 * and the certificate table when signed. */
struct boot_uki_boot {
    uint8_t cmdline[BOOT_UKI_CMDLINE_RAW];
    uint8_t checksum[4], secdir[8];
    uint8_t *certs;
    size_t certs_len;
    uint64_t size; /* of the whole file served */
};
/* prefix: the sum over everything before .cmdline. signer NULL: unsigned. */
int boot_uki_finish(const struct boot_uki *u, const struct boot_uki_sum *prefix,
                    const char *cmdline, const struct boot_signer *signer, struct boot_uki_boot *b,
                    struct bd_err *err);
void boot_uki_boot_free(struct boot_uki_boot *b);

/* Where the bytes at pos come from: memory (copied into buf) or a range of the kernel
 * or initramfs file, which the caller reads. Returns 0 at the end. */
enum { BOOT_UKI_BYTES = 1, BOOT_UKI_LINUX, BOOT_UKI_INITRD };
struct boot_uki_piece {
    int kind;
    uint64_t file_off; /* for LINUX and INITRD */
    size_t len;
};
int boot_uki_piece(const struct boot_uki *u, const struct boot_uki_boot *b, uint64_t pos,
                   uint8_t *buf, size_t max, struct boot_uki_piece *p);

/* ---------- Secure Boot keys for a lab (secureboot.c) ---------- */

/* One generated file: "<var>.<ext>" with var PK, KEK or db and ext key (PEM private
 * key, secret), crt (PEM certificate), cer (DER certificate), esl (EFI signature list)
 * or auth (signed authenticated update: ESL behind an EFI_VARIABLE_AUTHENTICATION_2). */
struct boot_sb_file {
    char name[16];
    uint8_t *data;
    size_t len;
    bool secret;
};
struct boot_sb_material {
    struct boot_sb_file files[15];
    size_t n;
};
/* New RSA-2048 keys and self-signed certificates named after label (the cluster). */
int boot_secureboot_generate(const char *label, int64_t now_s, struct boot_sb_material *m,
                             struct bd_err *err);
void boot_secureboot_free(struct boot_sb_material *m);

#endif
