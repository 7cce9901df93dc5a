/* iPXE scripts. Each ends its lines with \n and starts with #!ipxe; scripts never wait
 * on back-end work, they only retry. */
#include "boot.h"

#include <string.h>

void boot_ipxe_chain(struct bd_buf *out, const char *base_url)
{
    /* ${netX/mac} is the NIC iPXE booted from; hexhyp keeps the URL free of ':'.
     * uristring escapes whatever the firmware put in the serial number. */
    bd_buf_printf(out,
                  "#!ipxe\n"
                  "# bootd: identify this machine and fetch its own script\n"
                  "chain --replace --autofree "
                  "%s/ipxe?mac=${netX/mac:hexhyp}&uuid=${uuid}&arch=${buildarch}"
                  "&platform=${platform}&serial=${serial:uristring}"
                  "&ip=${netX/ip} || goto failed\n"
                  ":failed\n"
                  "echo bootd: cannot reach %s, retrying in 10 s\n"
                  "sleep 10\n"
                  "chain --replace --autofree %s/boot.ipxe\n",
                  base_url, base_url, base_url);
}

void boot_ipxe_boot(struct bd_buf *out, const struct ipxe_boot *b)
{
    bd_buf_printf(out,
                  "#!ipxe\n"
                  "# bootd: %s\n"
                  "kernel %s %s || goto retry\n"
                  "initrd %s || goto retry\n"
                  "boot || goto retry\n"
                  ":retry\n"
                  "echo bootd: download or boot failed, asking bootd again in 10 s\n"
                  "sleep 10\n"
                  "chain --replace --autofree %s\n",
                  b->comment, b->kernel_url, b->kernel_args, b->initrd_url, b->retry_url);
}

/* Text for an iPXE echo line: one line, and no ${...} for iPXE to expand. */
static void echo_text(struct bd_buf *out, const char *message)
{
    for (const char *p = message; *p; p++)
        bd_buf_append(out, ((unsigned char)*p < 0x20 || *p == '$') ? "?" : p, 1);
}

void boot_ipxe_hold(struct bd_buf *out, const char *message, int64_t retry_s,
                      const char *retry_url)
{
    bd_buf_puts(out, "#!ipxe\necho bootd: ");
    echo_text(out, message);
    bd_buf_printf(out,
                  "\n"
                  ":retry\n"
                  "echo bootd: asking again in %lld s\n"
                  "sleep %lld\n"
                  "chain --replace --autofree %s || goto retry\n",
                  (long long)retry_s, (long long)retry_s, retry_url);
}

void boot_ipxe_exit(struct bd_buf *out, const char *message)
{
    bd_buf_puts(out, "#!ipxe\necho bootd: ");
    echo_text(out, message);
    bd_buf_puts(out, "\nexit\n");
}

const char *boot_talos_arch(const char *buildarch)
{
    /* BIOS iPXE (undionly) is an i386 build even on 64-bit CPUs, and Talos has no
     * 32-bit x86 image, so both x86 builds mean amd64. */
    if (!strcmp(buildarch, "i386") || !strcmp(buildarch, "x86_64"))
        return "amd64";
    if (!strcmp(buildarch, "arm64"))
        return "arm64";
    return NULL;
}
