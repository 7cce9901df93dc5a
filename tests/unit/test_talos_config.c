#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What talosctl wrote, with the two things lab.yaml adds for every machine: the
 * install disk and installer image, and a static hostname in HostnameConfig. */
static char *expected_from_talosctl(const char *fixture, const char *hostname)
{
    char *want = read_text(fixture);
    struct bd_buf b;
    bd_buf_init(&b);
    const char *install = strstr(want, "    install:\n");
    const char *host = strstr(want, "auto: stable\n");
    cr_assert(install && host);
    install += strlen("    install:\n");
    bd_buf_append(&b, want, (size_t)(install - want));
    bd_buf_puts(&b, "        disk: /dev/sda\n"
                    "        image: factory.talos.dev/installer/" VANILLA ":v1.13.9\n");
    bd_buf_append(&b, install, (size_t)(host - install));
    bd_buf_printf(&b, "auto: \"off\"\nhostname: %s\n", hostname);
    free(want);
    return bd_buf_steal(&b);
}

Test(config, matches_what_talosctl_gen_config_writes)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cp = fixture_render(tc, lab, "cp-1"), *w = fixture_render(tc, lab, "w-1");
    char *want_cp = expected_from_talosctl(FIXTURES "v1.13-base-controlplane.yaml", "cp-1");
    char *want_w = expected_from_talosctl(FIXTURES "v1.13-base-worker.yaml", "w-1");
    cr_assert_str_eq(cp, want_cp);
    cr_assert_str_eq(w, want_w);
    free(cp);
    free(w);
    free(want_cp);
    free(want_w);
    fixture_done(tc, lab, dir);
}

#define STR(path) talos_tree_str_at(v1, path)

Test(config, lab_settings_reach_the_config)
{
    char *dir = fixture_lab("  cni: none\n"
                            "  kube_proxy: false\n"
                            "  discovery: false\n"
                            "  allow_scheduling_on_control_planes: true\n"
                            "  dns_domain: lab.example\n"
                            "  pod_subnet: 10.10.0.0/16\n"
                            "  service_subnet: 10.20.0.0/16\n"
                            "  install_disk: /dev/vda\n"
                            "  cert_sans: [api.lab.example, 192.0.2.9]\n"
                            "  inline_manifests: [{name: cilium, file: cilium.yaml}]\n"
                            "  extra_manifests: [https://example.com/gateway.yaml]\n",
                            "images:\n  factory: https://factory.lab.example:5000\n"
                            "machines:\n"
                            "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane,\n"
                            "     install_disk: /dev/nvme0n1, hostname: alpha,\n"
                            "     labels: {zone: a, example.com/rack: r1}}\n"
                            "  - {name: w-1, mac: '52:54:00:00:00:02', role: worker, labels: {zone: b}}\n");
    free(write_file(dir, "cilium.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cilium\n"));
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cp = fixture_render(tc, lab, "cp-1"), *w = fixture_render(tc, lab, "w-1");
    struct bd_yaml_doc dc = fixture_parse(cp), dw = fixture_parse(w);
    const struct bd_node *v1 = dc.docs[0];
    cr_assert_str_eq(STR("cluster.network.cni.name"), "none");
    cr_assert_str_eq(STR("cluster.proxy.disabled"), "true");
    cr_assert_str_eq(STR("cluster.discovery.enabled"), "false");
    cr_assert_str_eq(STR("cluster.allowSchedulingOnControlPlanes"), "true");
    cr_assert_str_eq(STR("cluster.network.dnsDomain"), "lab.example");
    cr_assert_str_eq(talos_tree_at(v1, "cluster.network.podSubnets")->kids[0]->str, "10.10.0.0/16");
    cr_assert_str_eq(talos_tree_at(v1, "cluster.network.serviceSubnets")->kids[0]->str, "10.20.0.0/16");
    cr_assert_str_eq(STR("machine.install.disk"), "/dev/nvme0n1", "the machine's disk wins");
    cr_assert_str_eq(STR("machine.install.image"),
                     "factory.lab.example:5000/installer/" VANILLA ":v1.13.9");
    cr_assert_eq(talos_tree_at(v1, "machine.certSANs")->n, 2);
    cr_assert_str_eq(talos_tree_at(v1, "cluster.apiServer.certSANs")->kids[1]->str, "192.0.2.9");
    cr_assert_str_eq(STR("machine.nodeLabels.zone"), "a");
    const struct bd_node *labels = talos_tree_at(v1, "machine.nodeLabels");
    cr_assert_str_eq(bd_node_get(labels, "example.com/rack")->str, "r1");
    cr_assert_not_null(bd_node_get(labels, "node.kubernetes.io/exclude-from-external-load-balancers"));
    cr_assert_str_eq(talos_tree_at(v1, "cluster.inlineManifests")->kids[0]->kids[1]->str, "cilium");
    cr_assert_str_eq(talos_tree_str_at(talos_tree_at(v1, "cluster.inlineManifests")->kids[0], "contents"),
                     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cilium\n");
    cr_assert_str_eq(talos_tree_at(v1, "cluster.extraManifests")->kids[0]->str, "https://example.com/gateway.yaml");
    cr_assert_str_eq(talos_tree_str_at(dc.docs[fixture_doc(&dc, "HostnameConfig")], "hostname"), "alpha");
    /* key order follows Talos's structs: inline manifests after extra manifests, labels sorted */
    cr_assert(strstr(cp, "    extraManifests:") < strstr(cp, "    inlineManifests:"));
    cr_assert(strstr(cp, "example.com/rack: r1") < strstr(cp, "node.kubernetes.io/exclude"));

    v1 = dw.docs[0];
    cr_assert_str_eq(STR("cluster.network.cni.name"), "none", "workers get the CNI too");
    cr_assert_str_eq(STR("machine.install.disk"), "/dev/vda");
    cr_assert_str_eq(STR("machine.nodeLabels.zone"), "b");
    cr_assert_null(bd_node_get(talos_tree_at(v1, "machine.nodeLabels"),
                               "node.kubernetes.io/exclude-from-external-load-balancers"));
    static const char *const cp_only[] = {"cluster.etcd", "cluster.proxy", "cluster.apiServer",
                                          "cluster.inlineManifests", "cluster.extraManifests",
                                          "cluster.aggregatorCA", "cluster.serviceAccount",
                                          "cluster.secretboxEncryptionSecret",
                                          "cluster.allowSchedulingOnControlPlanes", NULL};
    for (int i = 0; cp_only[i]; i++)
        cr_assert_null(talos_tree_at(v1, cp_only[i]), "worker has %s", cp_only[i]);
    cr_assert_str_eq(STR("machine.ca.key"), "");
    cr_assert_str_eq(STR("cluster.ca.key"), "");
    bd_yaml_doc_free(&dc);
    bd_yaml_doc_free(&dw);
    free(cp);
    free(w);
    fixture_done(tc, lab, dir);
}

Test(config, vip_goes_to_control_planes_on_the_booting_link)
{
    char *dir = fixture_lab("  vip: 192.0.2.10\n", NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cp = fixture_render(tc, lab, "cp-1"), *w = fixture_render(tc, lab, "w-1");
    struct bd_yaml_doc dc = fixture_parse(cp), dw = fixture_parse(w);
    long alias = fixture_doc(&dc, "LinkAliasConfig"), vip = fixture_doc(&dc, "Layer2VIPConfig");
    cr_assert(alias > 0 && vip > 0);
    cr_assert_str_eq(talos_tree_str_at(dc.docs[alias], "selector.match"),
                     "mac(link.permanent_addr) == \"52:54:00:00:00:01\"");
    cr_assert_str_eq(talos_tree_str_at(dc.docs[vip], "name"), "192.0.2.10");
    cr_assert_str_eq(talos_tree_str_at(dc.docs[vip], "link"), talos_tree_str_at(dc.docs[alias], "name"));
    cr_assert_gt(fixture_doc(&dc, "DHCPv4Config"), 0, "the link keeps DHCP");
    cr_assert_eq(fixture_doc(&dw, "Layer2VIPConfig"), -1);
    cr_assert_eq(fixture_doc(&dw, "LinkAliasConfig"), -1, "a DHCP worker needs no network documents");
    bd_yaml_doc_free(&dc);
    bd_yaml_doc_free(&dw);
    free(cp);
    free(w);
    fixture_done(tc, lab, dir);
}

Test(config, static_addressing_sets_address_route_and_resolvers)
{
    char *dir = fixture_lab(NULL, "machines:\n"
                                  "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane,\n"
                                  "     ip: 192.0.2.11, addressing: static}\n");
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cp = fixture_render(tc, lab, "cp-1");
    struct bd_yaml_doc d = fixture_parse(cp);
    long link = fixture_doc(&d, "LinkConfig"), res = fixture_doc(&d, "ResolverConfig");
    cr_assert(link > 0 && res > 0);
    cr_assert_eq(fixture_doc(&d, "DHCPv4Config"), -1);
    cr_assert_str_eq(talos_tree_str_at(talos_tree_at(d.docs[link], "addresses")->kids[0], "address"), "192.0.2.11/24");
    cr_assert_str_eq(talos_tree_str_at(talos_tree_at(d.docs[link], "routes")->kids[0], "gateway"), "192.0.2.1");
    cr_assert_str_eq(talos_tree_str_at(talos_tree_at(d.docs[res], "nameservers")->kids[0], "address"), "192.0.2.53");
    bd_yaml_doc_free(&d);
    free(cp);
    fixture_done(tc, lab, dir);
}

Test(config, static_addressing_needs_an_ip)
{
    char *dir = fixture_lab(NULL, "machines:\n"
                                  "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane,\n"
                                  "     addressing: static}\n");
    struct bd_err err;
    cr_assert_null(load_lab(dir, &err));
    assert_has(err.msg, "addressing: static needs the machine's ip (machine cp-1)");
    tmpdir_remove(dir);
    free(dir);
}

Test(config, config_files_win_over_generated_per_machine_then_role)
{
    char *dir = fixture_lab("  worker:\n    config: worker.yaml\n",
                            "machines:\n"
                            "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane, config: mine.yaml}\n"
                            "  - {name: cp-2, mac: '52:54:00:00:00:03', role: controlplane}\n"
                            "  - {name: w-1, mac: '52:54:00:00:00:02', role: worker}\n");
    free(write_file(dir, "mine.yaml", "# cp-1's own\n"));
    free(write_file(dir, "worker.yaml", "# every worker\n"));
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *a = fixture_render(tc, lab, "cp-1"), *b = fixture_render(tc, lab, "w-1");
    char *c = fixture_render(tc, lab, "cp-2");
    cr_assert_str_eq(a, "# cp-1's own\n");
    cr_assert_str_eq(b, "# every worker\n");
    assert_has(c, "hostname: cp-2\n");
    free(a);
    free(b);
    free(c);
    fixture_done(tc, lab, dir);
}

Test(config, labs_with_only_config_files_need_no_secrets)
{
    char *dir = fixture_lab("  controlplane: {config: cp.yaml}\n  worker: {config: cp.yaml}\n", NULL);
    free(write_file(dir, "cp.yaml", "# mine\n"));
    char *secrets = bd_path_join(dir, "secrets.yaml");
    cr_assert_eq(chmod(secrets, 0644), 0, "not read at all, so not refused");
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *a = fixture_render(tc, lab, "cp-1");
    cr_assert_str_eq(a, "# mine\n");
    free(a);
    talos_cluster_free(tc);
    lab_free(lab);
    tmpdir_remove(dir);
    free(secrets);
    free(dir);
}

Test(config, missing_or_readable_secrets_are_refused_with_what_to_do)
{
    char *dir = fixture_lab(NULL, NULL);
    char *secrets = bd_path_join(dir, "secrets.yaml");
    struct bd_err err;
    cr_assert_eq(chmod(secrets, 0640), 0);
    assert_has(fixture_cluster_error(dir, &err), "cluster.secrets: ");
    assert_has(err.msg, "run: chmod 600");
    cr_assert_eq(unlink(secrets), 0);
    assert_has(fixture_cluster_error(dir, &err), "does not exist; bootd generates machine configs from it. "
                                                 "Create it with: bootctl gen secrets");
    tmpdir_remove(dir);
    free(secrets);
    free(dir);
}

/* The lab's Talos version with v1.13.9 replaced (the fixture's). */
static char *lab_at_version(const char *version)
{
    char *dir = fixture_lab(NULL, NULL);
    char *lab_path = bd_path_join(dir, "lab.yaml");
    char *text = read_text(lab_path);
    char *at = strstr(text, "v1.13.9");
    char *changed = bd_xasprintf("%.*s%s%s", (int)(at - text), text, version, at + 7);
    free(write_file(dir, "lab.yaml", changed));
    free(changed);
    free(text);
    free(lab_path);
    return dir;
}

Test(config, talos_v1_12_accepted_and_older_refused)
{
    char *dir = lab_at_version("v1.12.6");
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cfg = fixture_render(tc, lab, "cp-1");
    assert_has(cfg, "image: factory.talos.dev/installer/" VANILLA ":v1.12.6\n");
    free(cfg);
    fixture_done(tc, lab, dir);
    dir = lab_at_version("v1.11.5");
    struct bd_err err;
    assert_has(fixture_cluster_error(dir, &err),
               "cluster.talos_version: bootd writes the Talos v1.12/v1.13 config layout, which "
               "Talos v1.11.5 does not read; use v1.12 or later");
    tmpdir_remove(dir);
    free(dir);
}

/* From v1.14 the Talos tooling installs from the Image Factory's metal-installer/. */
Test(config, installer_image_per_version)
{
    static const char *const cases[][2] = {
        {"v1.13.9", "image: factory.talos.dev/installer/" VANILLA ":v1.13.9\n"},
        {"v1.14.0", "image: factory.talos.dev/metal-installer/" VANILLA ":v1.14.0\n"},
        {"v1.15.1", "image: factory.talos.dev/metal-installer/" VANILLA ":v1.15.1\n"},
    };
    for (size_t i = 0; i < 3; i++) {
        char *dir = lab_at_version(cases[i][0]);
        struct lab *lab;
        struct talos_cluster *tc = fixture_cluster(dir, &lab);
        char *cfg = fixture_render(tc, lab, "w-1");
        assert_has(cfg, cases[i][1]);
        free(cfg);
        fixture_done(tc, lab, dir);
    }
}

Test(config, kube_proxy_off_needs_another_cni)
{
    char *dir = fixture_lab("  kube_proxy: false\n", NULL);
    struct bd_err err;
    cr_assert_null(load_lab(dir, &err));
    assert_has(err.msg, "cluster.kube_proxy: false needs a CNI that replaces kube-proxy");
    tmpdir_remove(dir);
    free(dir);
}
