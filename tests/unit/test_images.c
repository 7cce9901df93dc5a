#include "helpers.h"

#include "../../images/images.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static char *canonical_ok(const char *text)
{
    char *out;
    struct bd_err err;
    cr_assert_eq(images_schematic_canonical(text, strlen(text), "s.yaml", &out, &err), 0, "%s: %s",
                 text, err.msg);
    return out;
}

/* The id bootd computes for a schematic file: through images_schematic_load, the
 * function bootd itself uses (a test that hashed the canonical form on its own would
 * not notice that function hashing the wrong bytes). */
static void id_of(const char *text, char id[65])
{
    char *dir = tmpdir_new();
    char *path = write_file(dir, "schematic.yaml", text);
    char *canon;
    struct bd_err err;
    cr_assert_eq(images_schematic_load(path, id, &canon, &err), 0, "%s: %s", text, err.msg);
    char *c = canonical_ok(text);
    cr_assert_str_eq(canon, c, "the id is of the canonical form");
    free(c);
    free(canon);
    free(path);
    rm_tree(dir);
}

/* Inputs and ids from image-factory's pkg/schematic tests and FACTS §7. */
Test(images, schematic_ids_match_image_factory)
{
    static const struct {
        const char *yaml, *id;
    } cases[] = {
        {"{}", IMAGES_VANILLA_SCHEMATIC},
        {"customization: {}", IMAGES_VANILLA_SCHEMATIC},
        {"customization: {\"extraKernelArgs\": []}", IMAGES_VANILLA_SCHEMATIC},
        {"{\"customization\": {\"extraKernelArgs\": [\"noapic\", \"nolapic\"]}}",
         "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"},
        {"{\"customization\": {\"extraKernelArgs\": [\"noapic\", \"nolapic\"], "
         "\"systemExtensions\": {}}}",
         "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"},
        {"{\"customization\": {\"meta\": [{\"key\": 10, \"value\": \"foo\"}], "
         "\"extraKernelArgs\": [], \"systemExtensions\": {}}}",
         "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"},
        {"customization:\n  meta:\n    - key: 0x0a\n      value: foo\n",
         "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"},
        {"{\"overlay\": {\"name\": \"rpi_generic\", \"image\": \"siderolabs/sbc-raspberrypi\"}}",
         "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"},
        {"{\"overlay\": {\"name\": \"rpi_generic\", \"image\": \"siderolabs/sbc-raspberrypi\"},"
         "\"customization\":{}}",
         "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"},
        {"{\"customization\":{\"secureboot\": {\"includeWellKnownCertificates\": true}}}",
         "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"},
        {"customization:\n  diskImage:\n    sectorSize: 4096\n",
         "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea"},
        {"customization:\n  systemExtensions:\n    officialExtensions:\n"
         "      - siderolabs/qemu-guest-agent\n",
         "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[65];
        id_of(cases[i].yaml, id);
        cr_expect_str_eq(id, cases[i].id, "%s", cases[i].yaml);
    }
}

Test(images, homelab_schematic_is_the_qemu_guest_agent_one)
{
    char id[65], *canon;
    struct bd_err err;
    cr_assert_eq(images_schematic_load("examples/homelab/talos/image/schematic.yaml", id, &canon,
                                       &err),
                 0, "%s", err.msg);
    cr_expect_str_eq(id, "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515");
    cr_expect_str_eq(canon, "customization:\n"
                            "    systemExtensions:\n"
                            "        officialExtensions:\n"
                            "            - siderolabs/qemu-guest-agent\n");
    free(canon);
    cr_assert_eq(images_schematic_load(NULL, id, &canon, &err), 0);
    cr_expect_str_eq(id, IMAGES_VANILLA_SCHEMATIC);
    cr_expect_str_eq(canon, IMAGES_VANILLA_YAML);
    free(canon);
}

Test(images, canonical_form_follows_struct_order_and_drops_empty_fields)
{
    char *c = canonical_ok("customization:\n"
                           "  diskImage: {sectorSize: 0}\n"
                           "  bootloader: SD-Boot\n"
                           "  secureboot: {includeWellKnownCertificates: false, enrollKeys: force}\n"
                           "  extraKernelArgs: [console=ttyS0, 12, 'true']\n"
                           "overlay:\n"
                           "  image: siderolabs/sbc\n");
    cr_expect_str_eq(c, "overlay:\n"
                        "    image: siderolabs/sbc\n"
                        "    name: \"\"\n"
                        "customization:\n"
                        "    extraKernelArgs:\n"
                        "        - console=ttyS0\n"
                        "        - \"12\"\n"
                        "        - \"true\"\n"
                        "    bootloader: sd-boot\n"
                        "    secureboot:\n"
                        "        enrollKeys: force\n");
    free(c);
}

Test(images, overlay_options_sort_like_go_yaml)
{
    char *c = canonical_ok("overlay:\n  image: i\n  name: nm\n  options:\n"
                           "    b: 1\n    a10: x\n    a9: z\n    A: true\n    \"1\": ~\n"
                           "    a09: +7\n    list: [1, \"007\", {q: 2, p: s}]\n");
    cr_expect_str_eq(c, "overlay:\n"
                        "    image: i\n"
                        "    name: nm\n"
                        "    options:\n"
                        "        \"1\": null\n"
                        "        A: true\n"
                        "        a9: z\n"
                        "        a09: 7\n"
                        "        a10: x\n"
                        "        b: 1\n"
                        "        list:\n"
                        "            - 1\n"
                        "            - \"007\"\n"
                        "            - p: s\n"
                        "              q: 2\n"
                        "customization: {}\n");
    free(c);
}

static const char *canonical_err(const char *text, struct bd_err *err)
{
    char *out = NULL;
    cr_assert_eq(images_schematic_canonical(text, strlen(text), "s.yaml", &out, err), -1, "%s",
                 text);
    cr_assert_null(out);
    return err->msg;
}

Test(images, schematic_errors_name_the_place)
{
    struct bd_err err;
    cr_expect_str_eq(canonical_err("customization:\n  extraKernelArg: [a]\n", &err),
                     "s.yaml:2:3: customization: unknown field \"extraKernelArg\" (Image Factory "
                     "accepts: embeddedMachineConfiguration, extraKernelArgs, meta, "
                     "systemExtensions, bootloader, secureboot, diskImage)");
    cr_expect(strstr(canonical_err("owner: me\n", &err), "s.yaml:1:8: owner: "));
    cr_expect(strstr(canonical_err("customization:\n  meta:\n    - key: 256\n", &err),
                     "s.yaml:3:12: customization.meta[0].key: 256 is larger than 255"));
    cr_expect(strstr(canonical_err("customization:\n  extraKernelArgs: noapic\n", &err),
                     "customization.extraKernelArgs: expected a list, found a scalar"));
    cr_expect(strstr(canonical_err("customization: {bootloader: lilo}\n", &err),
                     "expected none, dual-boot, sd-boot or grub"));
    cr_expect(strstr(canonical_err("- a\n", &err), "expected a mapping"));
    cr_expect(strstr(canonical_err("", &err), "empty schematic"));
    /* go-yaml v4 quotes these in a way bootd's emitter does not: no id beats a wrong one */
    cr_expect(strstr(canonical_err("customization: {extraKernelArgs: ['yes']}\n", &err),
                     "cannot compute the id"));
    cr_expect(strstr(canonical_err("customization: {extraKernelArgs: ['2024-01-02']}\n", &err),
                     "cannot compute the id"));
}

Test(images, lab_schematic_file_errors_carry_the_path)
{
    char *dir = tmpdir_new();
    char *p = write_file(dir, "s.yaml", "customization:\n  systemExtension: {}\n");
    char id[65];
    struct bd_err err;
    cr_assert_eq(images_schematic_load(p, id, NULL, &err), -1);
    cr_expect(strstr(err.msg, "s.yaml:2:3: customization: unknown field \"systemExtension\""),
              "%s", err.msg);
    free(p);
    rm_tree(dir);
}

Test(images, file_names_and_arches)
{
    char names[IMAGES_NFILES][IMAGES_NAME_MAX];
    images_file_names("arm64", names);
    cr_expect_str_eq(names[0], "kernel-arm64");
    cr_expect_str_eq(names[1], "initramfs-arm64.xz");
    cr_expect_str_eq(names[2], "cmdline-metal-arm64");
    cr_expect_str_eq(images_file_arch("initramfs-amd64.xz"), "amd64");
    cr_expect_null(images_file_arch("metal-amd64.iso"));
    cr_expect_null(images_file_arch(".kernel-amd64.part"));
    cr_expect_not(images_component_ok(".."));
    cr_expect_not(images_component_ok("a/b"));
    cr_expect(images_component_ok("v1.13.9"));
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

Test(images, lock_file_round_trip_sorted)
{
    char *dir = tmpdir_new();
    char *file = bd_path_join(dir, "images.lock");
    struct images_lock l = {0};
    struct bd_err err;
    images_lock_set(&l, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/kernel-amd64", SHA_B);
    images_lock_set(&l, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/cmdline-metal-amd64", SHA_A);
    images_lock_set(&l, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/kernel-amd64", SHA_A);
    cr_assert_eq(images_lock_write(file, &l, &err), 0, "%s", err.msg);
    images_lock_free(&l);
    char *text;
    cr_assert_eq(bd_file_read(file, &text, NULL, &err), 0);
    cr_expect_str_eq(text, SHA_A "  " IMAGES_VANILLA_SCHEMATIC "/v1.13.9/cmdline-metal-amd64\n"
                           SHA_A "  " IMAGES_VANILLA_SCHEMATIC "/v1.13.9/kernel-amd64\n");
    free(text);
    cr_assert_eq(images_lock_read(file, &l, &err), 0, "%s", err.msg);
    cr_expect_eq(l.n, 2);
    cr_expect_str_eq(images_lock_find(&l, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/kernel-amd64"),
                     SHA_A);
    cr_expect_null(images_lock_find(&l, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/kernel-arm64"));
    images_lock_free(&l);
    char *missing = bd_path_join(dir, "none.lock");
    cr_expect_eq(images_lock_read(missing, &l, &err), 0, "a missing lock file is empty");
    cr_expect_eq(l.n, 0);
    free(missing);
    free(file);
    rm_tree(dir);
}

Test(images, lock_file_errors_name_the_line)
{
    char *dir = tmpdir_new();
    struct images_lock l;
    struct bd_err err;
    char *bad = write_file(dir, "a.lock", SHA_A "  s/v/kernel-amd64\n\n" SHA_B " s/v/x\n");
    cr_assert_eq(images_lock_read(bad, &l, &err), -1);
    cr_expect(strstr(err.msg, "a.lock:3: expected"), "%s", err.msg);
    char *twice = write_file(dir, "b.lock", SHA_A "  s/v/k\n" SHA_B "  s/v/k\n");
    cr_assert_eq(images_lock_read(twice, &l, &err), -1);
    cr_expect(strstr(err.msg, "b.lock:2: s/v/k is listed twice"), "%s", err.msg);
    char *escape = write_file(dir, "c.lock", SHA_A "  s/../k\n");
    cr_assert_eq(images_lock_read(escape, &l, &err), -1);
    free(bad);
    free(twice);
    free(escape);
    rm_tree(dir);
}

static int open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0, "%s", path);
    return fd;
}

static void removed_path(void *ud, const char *path, uint64_t bytes)
{
    (void)bytes;
    bd_buf_printf(ud, "%s\n", path);
}

Test(images, list_and_gc_keep_what_the_lab_boots)
{
    char *dir = tmpdir_new();
    const char *s = IMAGES_VANILLA_SCHEMATIC;
    char path[512];
    static const char *const files[] = {
        "v1.13.9/kernel-amd64", "v1.13.9/initramfs-amd64.xz", "v1.13.9/cmdline-metal-amd64",
        "v1.13.9/.kernel-arm64.part", "v1.13.9/kernel-arm64", "v1.13.9/.lock",
        "v1.13.9/metal-amd64.iso", "v1.12.0/kernel-amd64",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "c/%s/%s", s, files[i]);
        free(write_file(dir, path, "12345"));
    }
    free(write_file(dir, "c/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515/"
                         "v1.13.9/kernel-amd64", "x"));
    snprintf(path, sizeof path, "%s/c", dir);
    int fd = open_dir(path);

    struct images_entry *e;
    size_t n;
    struct bd_err err;
    cr_assert_eq(images_list(fd, &e, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4);
    cr_expect_str_eq(e[0].ref.version, "v1.12.0");
    cr_expect_eq(e[1].nfiles, 3);
    cr_expect_eq(e[1].bytes, 15);
    cr_expect_str_eq(e[2].ref.arch, "arm64");
    cr_expect_eq(e[2].nfiles, 1);
    cr_expect_eq(e[2].partial, 5);
    cr_expect_str_eq(e[3].ref.schematic, "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515");
    free(e);

    struct images_ref keep = {.version = "v1.13.9", .arch = "amd64"};
    memcpy(keep.schematic, s, 65);
    struct bd_buf seen;
    bd_buf_init(&seen);
    cr_assert_eq(images_gc(fd, &keep, 1, true, removed_path, &seen, &err), 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/c/%s/v1.13.9/kernel-arm64", dir, s);
    cr_expect_eq(access(path, F_OK), 0, "a dry run removes nothing");
    bd_buf_reset(&seen);
    cr_assert_eq(images_gc(fd, &keep, 1, false, removed_path, &seen, &err), 0, "%s", err.msg);
    cr_expect(strstr(seen.data, "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515\n"),
              "%s", seen.data);
    cr_expect(strstr(seen.data, "/v1.12.0\n"), "%s", seen.data);
    cr_expect(strstr(seen.data, "/v1.13.9/kernel-arm64\n"), "%s", seen.data);
    cr_expect(strstr(seen.data, "/v1.13.9/.kernel-arm64.part\n"), "%s", seen.data);
    cr_expect(strstr(seen.data, "/v1.13.9/metal-amd64.iso\n"), "%s", seen.data);
    cr_expect_eq(access(path, F_OK), -1);
    cr_assert_eq(images_list(fd, &e, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(e[0].nfiles, 3, "the lab's image stays");
    free(e);
    snprintf(path, sizeof path, "%s/c/%s/v1.13.9/.lock", dir, s);
    cr_expect_eq(access(path, F_OK), 0);
    bd_buf_free(&seen);
    close(fd);
    rm_tree(dir);
}

/* Text that passes for an x86 kernel: the boot header "HdrS" at 0x202, then tail. */
static char *fake_kernel(const char *tail)
{
    char *k = bd_xasprintf("%*sHdrS%s", 0x202, "", tail);
    memset(k, 'k', 0x202);
    return k;
}

Test(images, import_records_then_refuses_other_bytes)
{
    char *dir = tmpdir_new();
    char *cache = bd_path_join(dir, "cache");
    mkdir(cache, 0755);
    int fd = open_dir(cache);
    char *lock = bd_path_join(dir, "images.lock");
    char *one = fake_kernel(" one"), *two = fake_kernel(" two");
    char *k1 = write_file(dir, "a/kernel-amd64", one);
    char *c1 = write_file(dir, "a/cmdline-metal-amd64", "talos.platform=metal\n");
    char *k2 = write_file(dir, "b/kernel-amd64", two);
    char *odd = write_file(dir, "b/vmlinuz", "kernel two");
    struct images_stage_file out[2 * IMAGES_NFILES];
    struct bd_err err;
    char *first[] = {k1, c1};
    cr_assert_eq(images_import(fd, lock, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", first, 2, out, &err),
                 0, "%s", err.msg);
    cr_expect(out[0].recorded);
    cr_expect_eq(out[0].size, strlen(one));
    char *again[] = {k1};
    cr_assert_eq(images_import(fd, lock, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", again, 1, out, &err),
                 0, "%s", err.msg);
    cr_expect_not(out[0].recorded, "the same bytes are verified, not recorded again");

    char *other[] = {k2};
    cr_assert_eq(images_import(fd, lock, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", other, 1, out, &err),
                 -1);
    cr_expect(strstr(err.msg, "does not match"), "%s", err.msg);
    char *cached = bd_path_join(cache, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/kernel-amd64");
    char *text;
    cr_assert_eq(bd_file_read(cached, &text, NULL, &err), 0);
    cr_expect_str_eq(text, one, "the cached file stays");
    free(text);
    char *part = bd_path_join(cache, IMAGES_VANILLA_SCHEMATIC "/v1.13.9/.kernel-amd64.part");
    cr_expect_eq(access(part, F_OK), -1, "no partial file is left behind");

    char *bad[] = {odd};
    cr_assert_eq(images_import(fd, lock, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", bad, 1, out, &err),
                 -1);
    cr_expect(strstr(err.msg, "vmlinuz: not a name Image Factory gives"), "%s", err.msg);
    free(part);
    free(cached);
    free(k1);
    free(c1);
    free(k2);
    free(odd);
    free(lock);
    free(cache);
    close(fd);
    rm_tree(dir);
    free(one);
    free(two);
}

struct waiter {
    int cache_fd;
    atomic_bool cancel;
    atomic_bool waited;
    int rc;
    char msg[1024];
};

static void note_wait(void *ud)
{
    struct waiter *w = ud;
    atomic_store(&w->waited, true);
    atomic_store(&w->cancel, true); /* seen that it waits: give up */
}

static void *second_stage(void *arg)
{
    struct waiter *w = arg;
    struct images_stage st;
    struct bd_err err;
    w->rc = images_stage_open(&st, w->cache_fd, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", &w->cancel,
                              note_wait, w, &err);
    if (w->rc == 0)
        images_stage_close(&st);
    snprintf(w->msg, sizeof w->msg, "%s", w->rc ? err.msg : "");
    return NULL;
}

Test(images, one_image_is_staged_by_one_pull_at_a_time)
{
    char *dir = tmpdir_new();
    int fd = open_dir(dir);
    struct images_stage st;
    struct bd_err err;
    cr_assert_eq(images_stage_open(&st, fd, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", NULL, NULL, NULL,
                                   &err),
                 0, "%s", err.msg);
    struct waiter w = {.cache_fd = fd};
    pthread_t t;
    pthread_create(&t, NULL, second_stage, &w);
    pthread_join(t, NULL);
    cr_expect(atomic_load(&w.waited), "the second one waits for the first");
    cr_expect_eq(w.rc, -1);
    cr_expect(strstr(w.msg, "cancelled while another download of this image ran"), "%s", w.msg);
    images_stage_close(&st);
    cr_assert_eq(images_stage_open(&st, fd, IMAGES_VANILLA_SCHEMATIC, "v1.13.9", NULL, NULL, NULL,
                                   &err),
                 0, "free again once the first is done");
    images_stage_close(&st);
    cr_expect_eq(images_stage_open(&st, fd, "..", "v1", NULL, NULL, NULL, &err), -1);
    close(fd);
    rm_tree(dir);
}
