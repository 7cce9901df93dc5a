#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes lab_head + extra as lab.yaml in a new dir and loads it expecting failure;
 * returns the message. */
static const char *lab_error(const char *extra, struct bd_err *err)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%s%s", lab_head, extra);
    free(write_file(dir, "lab.yaml", text));
    struct lab *lab = load_lab(dir, err);
    cr_assert_null(lab, "expected an error for:\n%s", extra);
    free(text);
    free(dir);
    return err->msg;
}

static struct lab *lab_ok(const char *extra, char **dir_out)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%s%s", lab_head, extra);
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    free(text);
    if (dir_out)
        *dir_out = dir;
    else
        free(dir);
    return lab;
}

#define assert_has(msg, needle) cr_assert(strstr((msg), (needle)), "\"%s\" not in: %s", needle, msg)

Test(lab, examples_validate)
{
    const char *paths[] = {"examples/minimal/lab.yaml", "examples/homelab/lab.yaml"};
    for (size_t i = 0; i < 2; i++) {
        struct lab *lab;
        struct bd_err err;
        cr_assert_eq(lab_load(paths[i], NULL, NULL, &lab, &err), 0, "%s", err.msg);
        lab_free(lab);
    }
}

Test(lab, homelab_has_all_six_nodes_and_services)
{
    struct lab *lab;
    struct bd_err err;
    cr_assert_eq(lab_load("examples/homelab/lab.yaml", NULL, NULL, &lab, &err), 0, "%s", err.msg);
    cr_assert_eq(lab->nmachines, 6);
    const char *names[] = {"ctrl-00", "ctrl-01", "ctrl-02", "work-00", "work-01", "work-02"};
    for (int i = 0; i < 6; i++)
        cr_assert_not_null(lab_machine_by_name(lab, names[i]), "%s", names[i]);
    struct bd_mac mac;
    bd_mac_parse("bc:24:11:e6:ba:07", &mac);
    cr_assert_str_eq(lab_machine_by_mac(lab, &mac)->name, "ctrl-00");
    const char *services[] = {"adguard", "authelia", "grafana", "hubble", "jellyfin",
                              "lidarr",  "prowlarr", "prometheus", "radarr", "sonarr",
                              "haos",    "proxmox",  "truenas", "argocd"};
    for (size_t s = 0; s < sizeof services / sizeof services[0]; s++) {
        bool found = false;
        for (size_t i = 0; i < lab->services.n; i++)
            found |= !strcmp(lab->services.v[i].name, services[s]);
        cr_assert(found, "service %s missing", services[s]);
    }
    cr_assert_str_eq(lab->cluster.endpoint, "https://api.kube.pc-tips.se:6443");
    lab_free(lab);
}

Test(lab, defaults)
{
    struct lab *lab = lab_ok("machines:\n"
                             "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane,"
                             " ip: 192.0.2.11}\n",
                             NULL);
    cr_assert_str_eq(lab->cluster.endpoint, "https://192.0.2.11:6443");
    cr_assert_str_eq(lab->cluster.bootstrap_node, "cp-1");
    cr_assert_eq(lab->cluster.bootstrap, LAB_BOOTSTRAP_AUTO);
    cr_assert_str_eq(lab->cluster.kubernetes_version, "1.36.3");
    cr_assert_str_eq(lab->machines[0].install_disk, "/dev/sda");
    cr_assert_str_eq(lab->machines[0].hostname, "cp-1");
    cr_assert_eq(lab->lan.http_port, 8080);
    cr_assert_eq(lab->boot.token_grace_s, 600);
    cr_assert_eq(lab->boot.token_max_age_s, 4 * 3600, "an unused config URL lives 4 h");
    cr_assert_eq(lab->boot.unknown, LAB_UNKNOWN_HOLD);
    cr_assert(lab->cluster.kube_proxy);
    lab_free(lab);
}

Test(lab, unknown_key_names_file_line_and_field)
{
    struct bd_err err;
    const char *m = lab_error("machines:\n"
                              "  - name: cp-1\n"
                              "    mac: '52:54:00:00:00:01'\n"
                              "    role: controlplane\n"
                              "    instal_disk: /dev/vda\n",
                              &err);
    assert_has(m, "lab.yaml:15:5: machines[0].instal_disk: unknown key");
    assert_has(m, "did you mean \"install_disk\"");
}

Test(lab, wrong_types)
{
    struct bd_err err;
    assert_has(lab_error("boot:\n  hold_retry: soon\n", &err),
               "lab.yaml:12:15: boot.hold_retry: \"soon\" is not a duration");
    assert_has(lab_error("machines: {name: x}\n", &err), "machines: expected a list of machines");
    assert_has(lab_error("boot:\n  console: ttyS0\n", &err), "boot.console: expected a list");
    assert_has(lab_error("cluster2: {}\n", &err), "cluster2: unknown key");
}

Test(lab, malformed_values)
{
    struct bd_err err;
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00', role: worker}\n", &err),
               "machines[0].mac: \"52:54:00:00:00\" is not a MAC address");
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: boss}\n", &err),
               "machines[0].role: \"boss\" is not one of: controlplane, worker");
    assert_has(lab_error("machines:\n  - {name: A_1, mac: '52:54:00:00:00:01', role: worker}\n",
                         &err),
               "machines[0].name: \"A_1\" is not a valid name");
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: worker,"
                         " kernel_args: ['talos.config=http://x']}\n",
                         &err),
               "talos.config is set by bootd");
    assert_has(lab_error("gitops:\n  repo: ftp://example.org/lab.git\n  groups: []\n", &err),
               "gitops.repo: \"ftp://example.org/lab.git\": scheme ftp");
}

Test(lab, bad_cidr_is_named)
{
    char *dir = tmpdir_new();
    char *text = bd_xstrdup(lab_head);
    char *p = strstr(text, "192.0.2.0/24");
    memcpy(p, "192.0.2.9/24", 12);
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    cr_assert_null(load_lab(dir, &err));
    assert_has(err.msg, "lab.yaml:7:11: lan.subnet: \"192.0.2.9/24\" has host bits set");
    free(text);
    free(dir);
}

Test(lab, duplicates_across_files)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%smachines:\n"
                              "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane,"
                              " ip: 192.0.2.11, uuid: 0d8e8a80-1b1c-4c5e-9e2f-000000000001}\n",
                              lab_head);
    free(write_file(dir, "lab.yaml", text));
    struct {
        const char *file, *needle;
    } cases[] = {
        {"name: cp-1\nmac: '52:54:00:00:00:02'\nrole: worker\n", "name: \"cp-1\" is already used"},
        {"name: w-1\nmac: '52-54-00-00-00-01'\nrole: worker\n",
         "mac: 52:54:00:00:00:01 is already used by cp-1"},
        {"name: w-1\nmac: '52:54:00:00:00:02'\nrole: worker\nip: 192.0.2.11\n",
         "ip: 192.0.2.11 is already used by cp-1"},
        {"name: w-1\nmac: '52:54:00:00:00:02'\nrole: worker\n"
         "uuid: 0D8E8A80-1B1C-4C5E-9E2F-000000000001\n",
         "uuid: 0d8e8a80-1b1c-4c5e-9e2f-000000000001 is already used by cp-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_file(dir, "machines.d/w-1.yaml", cases[i].file);
        struct bd_err err;
        cr_assert_null(load_lab(dir, &err), "case %zu", i);
        assert_has(err.msg, "machines.d/w-1.yaml:1: ");
        assert_has(err.msg, cases[i].needle);
        free(path);
    }
    free(text);
    free(dir);
}

static const char *lan_error(const char *lan_and_rest, struct bd_err *err)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("cluster:\n  name: t\n  talos_version: v1.13.9\n%s", lan_and_rest);
    free(write_file(dir, "lab.yaml", text));
    cr_assert_null(load_lab(dir, err), "expected an error for:\n%s", text);
    free(text);
    free(dir);
    return err->msg;
}

Test(lab, lan_consistency)
{
    struct bd_err err;
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: proxy\n  subnet: 192.0.2.0/24\n"
                         "  range: [192.0.2.100, 192.0.2.200]\n  boot_server: 192.0.2.1\n",
                         &err),
               "lan.range: not used when lan.dhcp is proxy");
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
                         "  boot_server: 192.0.2.1\n",
                         &err),
               "lan.range: required when lan.dhcp is full");
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
                         "  range: [192.0.2.100, 198.51.100.10]\n  boot_server: 192.0.2.1\n",
                         &err),
               "lan.range: must lie inside lan.subnet");
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
                         "  range: [192.0.2.1, 192.0.2.200]\n  boot_server: 192.0.2.1\n",
                         &err),
               "lan.range: contains lan.boot_server");
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
                         "  range: [192.0.2.100, 192.0.2.200]\n  boot_server: 198.51.100.1\n",
                         &err),
               "lan.boot_server: 198.51.100.1 is outside lan.subnet");
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: sometimes\n  subnet: 192.0.2.0/24\n"
                         "  boot_server: 192.0.2.1\n",
                         &err),
               "lab.yaml:6:9: lan.dhcp: \"sometimes\" is not one of: full, proxy");
    assert_has(lan_error("lan:\n  dhcp: proxy\n  subnet: 192.0.2.0/24\n  boot_server: 192.0.2.1\n",
                         &err),
               "lab.yaml:5:3: lan: missing required key \"interface\"");
    assert_has(lan_error("lan:\n  interface: br0\n  dhcp: full\n  subnet: 192.0.2.0/24\n"
                         "  range: [192.0.2.100, 192.0.2.200]\n  boot_server: 192.0.2.1\n"
                         "machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: controlplane,"
                         " ip: 198.51.100.4}\n",
                         &err),
               "lab.yaml:11: ip: 198.51.100.4 (machine a) is outside lan.subnet");
}

Test(lab, contradictions)
{
    struct bd_err err;
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: worker}\n",
                         &err),
               "no controlplane");
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: controlplane}\n"
                         "  - {name: w, mac: '52:54:00:00:00:02', role: worker}\n",
                         &err),
               "cluster.endpoint: not set");
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: controlplane,"
                         " ip: 192.0.2.1}\n",
                         &err),
               "192.0.2.1 (machine a) is already lan.boot_server");
    assert_has(lab_error("machines:\n  - {name: a, mac: '52:54:00:00:00:01', role: controlplane,"
                         " patches: [nope.yaml]}\n",
                         &err),
               "patches: cannot read");
}

Test(lab, extra_file_is_checked_with_the_rest)
{
    char *dir;
    struct lab *lab = lab_ok("machines:\n  - {name: cp-1, mac: '52:54:00:00:00:01', role: "
                             "controlplane, ip: 192.0.2.11}\n",
                             &dir);
    lab_free(lab);
    char *path = bd_path_join(dir, "lab.yaml");
    struct bd_err err;
    cr_assert_eq(lab_load(path, "w-1.yaml", "name: w-1\nmac: '52:54:00:00:00:02'\nrole: worker\n",
                          &lab, &err),
                 0, "%s", err.msg);
    cr_assert_eq(lab->nmachines, 2);
    lab_free(lab);
    cr_assert_eq(lab_load(path, "w-1.yaml", "name: cp-1\nmac: '52:54:00:00:00:02'\nrole: worker\n",
                          &lab, &err),
                 -1);
    assert_has(err.msg, "machines.d/w-1.yaml:1: name: \"cp-1\" is already used");
    free(path);
    free(dir);
}

Test(lab, lookup_by_mac_among_many)
{
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_puts(&b, "machines:\n");
    for (int i = 0; i < 300; i++)
        bd_buf_printf(&b, "  - {name: m-%d, mac: '52:54:00:00:%02x:%02x', role: %s}\n", i, i >> 8,
                      i & 255, i ? "worker" : "controlplane");
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("%s  endpoint: https://192.0.2.5:6443\n%s%s", "cluster:\n  name: t\n"
                              "  talos_version: v1.13.9\n", strstr(lab_head, "lan:"), b.data);
    free(write_file(dir, "lab.yaml", text));
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    for (int i = 0; i < 300; i += 37) {
        struct bd_mac mac;
        char s[18];
        snprintf(s, sizeof s, "52:54:00:00:%02x:%02x", i >> 8, i & 255);
        bd_mac_parse(s, &mac);
        const struct lab_machine *m = lab_machine_by_mac(lab, &mac);
        cr_assert_not_null(m, "%s", s);
        char want[16];
        snprintf(want, sizeof want, "m-%d", i);
        cr_assert_str_eq(m->name, want);
    }
    struct bd_mac none;
    bd_mac_parse("52:54:00:ff:ff:ff", &none);
    cr_assert_null(lab_machine_by_mac(lab, &none));
    lab_free(lab);
    free(text);
    free(dir);
    bd_buf_free(&b);
}
