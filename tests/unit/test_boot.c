#include "helpers.h"

#include "../../boot/boot.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define assert_has(hay, needle) cr_assert(strstr((hay), (needle)), "\"%s\" not in:\n%s", needle, hay)

static struct lab *small_lab(const char *boot_section, const char *machine_extra)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%s%s"
                              "machines:\n"
                              "  - name: cp-1\n"
                              "    mac: '52:54:00:00:00:01'\n"
                              "    role: controlplane\n"
                              "    ip: 192.0.2.11\n%s",
                              lab_head, boot_section, machine_extra);
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    free(text);
    free(dir);
    return lab;
}

static char *args_for(const struct lab *lab, const char *base, const char *initrd)
{
    struct bd_buf b;
    bd_buf_init(&b);
    boot_kernel_args(&b, &(struct boot_kernel_args){
                             .lab = lab,
                             .machine = &lab->machines[0],
                             .arch = "amd64",
                             .base_cmdline = base,
                             .initrd_name = initrd,
                             .config_url = "http://192.0.2.1:8080/config/abc",
                             .log_sink = "192.0.2.1:5140",
                         });
    return bd_buf_steal(&b);
}

Test(boot, chain_script_passes_identity)
{
    struct bd_buf b;
    bd_buf_init(&b);
    boot_ipxe_chain(&b, "http://192.0.2.1:8080");
    cr_assert(!strncmp(b.data, "#!ipxe\n", 7));
    assert_has(b.data, "http://192.0.2.1:8080/ipxe?mac=${netX/mac:hexhyp}");
    assert_has(b.data, "uuid=${uuid}");
    assert_has(b.data, "arch=${buildarch}");
    assert_has(b.data, "platform=${platform}");
    bd_buf_free(&b);
}

Test(boot, talos_metal_args_from_facts)
{
    struct lab *lab = small_lab("", "");
    char *a = args_for(lab, NULL, NULL);
    assert_has(a, "talos.platform=metal");
    assert_has(a, "slab_nomerge");
    assert_has(a, "pti=on");
    assert_has(a, "init_on_alloc=1"); /* v1.13 still has it */
    assert_has(a, "talos.logging.kernel=tcp://192.0.2.1:5140/");
    cr_assert_null(strstr(a, "initrd="), "no initrd= without UEFI: %s", a);
    /* the config URL is last so nothing after it can shadow it */
    const char *cfg = strstr(a, "talos.config=http://192.0.2.1:8080/config/abc");
    cr_assert_not_null(cfg);
    cr_assert_eq(cfg[strlen("talos.config=http://192.0.2.1:8080/config/abc")], 0);
    free(a);
    lab_free(lab);
}

Test(boot, uefi_gets_initrd_name_first)
{
    struct lab *lab = small_lab("", "");
    char *a = args_for(lab, NULL, "initramfs-amd64.xz");
    cr_assert(!strncmp(a, "initrd=initramfs-amd64.xz ", 26), "%s", a);
    free(a);
    lab_free(lab);
}

Test(boot, layers_replace_by_key)
{
    struct lab *lab = small_lab("boot:\n  console: [ttyS1]\n  kernel_args: [pti=off, net.ifnames=0]\n",
                                "    kernel_args: [net.ifnames=1, talos.dashboard.disabled=1]\n");
    char *a = args_for(lab, "talos.platform=metal console=tty0 console=ttyS0 pti=on", NULL);
    cr_assert_null(strstr(a, "console=tty0"), "%s", a);
    cr_assert_null(strstr(a, "console=ttyS0"), "%s", a);
    assert_has(a, "console=ttyS1");
    cr_assert_null(strstr(a, "pti=on"), "%s", a);
    assert_has(a, "pti=off");
    cr_assert_null(strstr(a, "net.ifnames=0"), "%s", a);
    assert_has(a, "net.ifnames=1");
    assert_has(a, "talos.dashboard.disabled=1");
    free(a);
    lab_free(lab);
}

Test(boot, default_cmdline_by_version)
{
    struct bd_buf b;
    bd_buf_init(&b);
    boot_default_cmdline(&b, "v1.13.9", "amd64");
    cr_assert_str_eq(b.data, "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on "
                             "consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on "
                             "selinux=1 module.sig_enforce=1 proc_mem.force_override=never");
    bd_buf_reset(&b);
    boot_default_cmdline(&b, "v1.14.0", "amd64");
    cr_assert_null(strstr(b.data, "init_on_alloc"));
    bd_buf_reset(&b);
    boot_default_cmdline(&b, "v1.13.9", "arm64");
    assert_has(b.data, "console=ttyAMA0");
    assert_has(b.data, " pti=on"); /* Talos refuses to boot without it, arm64 included */
    bd_buf_free(&b);
}

Test(boot, hold_and_exit_scripts)
{
    struct bd_buf b;
    bd_buf_init(&b);
    boot_ipxe_hold(&b, "not in lab.yaml", 30, "http://192.0.2.1:8080/ipxe?mac=x");
    assert_has(b.data, "sleep 30\n");
    assert_has(b.data, "chain --replace --autofree http://192.0.2.1:8080/ipxe?mac=x || goto retry");
    cr_assert_null(strstr(b.data, "kernel"));
    bd_buf_reset(&b);
    boot_ipxe_exit(&b, "installed");
    assert_has(b.data, "\nexit\n");
    bd_buf_reset(&b);
    /* a message can never add a line or an iPXE setting to the script */
    boot_ipxe_hold(&b, "a\nchain http://x/${evil}", 5, "http://192.0.2.1:8080/boot.ipxe");
    assert_has(b.data, "echo bootd: a?chain http://x/?{evil}\n");
    cr_assert_null(strstr(b.data, "${"));
    bd_buf_free(&b);
}

Test(boot, arch_names)
{
    cr_assert_str_eq(boot_talos_arch("i386"), "amd64");
    cr_assert_str_eq(boot_talos_arch("x86_64"), "amd64");
    cr_assert_str_eq(boot_talos_arch("arm64"), "arm64");
    cr_assert_null(boot_talos_arch("riscv64"));
}

/* Without a cached cmdline-metal-<arch>, the built-in command line stands in for Image
 * Factory's, which ends with the schematic's extraKernelArgs: so does this one, and the
 * lab's own kernel_args still come after them. */
Test(boot, built_in_cmdline_carries_the_schematic_kernel_args)
{
    char *dir = tmpdir_new();
    free(write_file(dir, "s.yaml", "customization:\n  extraKernelArgs: [net.ifnames=0, console=ttyS1]\n"));
    char *text = bd_xasprintf("%simages:\n  schematic: s.yaml\nboot:\n  kernel_args: [console=ttyS2]\n"
                              "machines:\n  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane, ip: 192.0.2.11}\n",
                              lab_head);
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    char *a = args_for(lab, NULL, NULL);
    assert_has(a, " pti=on");
    assert_has(a, "net.ifnames=0");
    char *cached = args_for(lab, "talos.platform=metal pti=on", NULL);
    cr_assert_null(strstr(cached, "net.ifnames=0"), "the cached cmdline already has them: %s", cached);
    free(cached);
    free(a);
    lab_free(lab);
    tmpdir_remove(dir);
    free(text);
    free(dir);
}
