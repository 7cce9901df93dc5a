#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A fixture lab whose cluster section gets extra (patch lists); files are name, text
 * pairs written next to lab.yaml. */
static char *lab_with_files(const char *extra, const char *machines, const char *const *files)
{
    char *dir = fixture_lab(extra, machines);
    for (size_t i = 0; files && files[i]; i += 2)
        free(write_file(dir, files[i], files[i + 1]));
    return dir;
}

/* Renders one machine of a lab made by lab_with_files; returns the parsed documents. */
static struct bd_yaml_doc render_docs(const char *dir, const char *machine, char **text)
{
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    *text = fixture_render(tc, lab, machine);
    talos_cluster_free(tc);
    lab_free(lab);
    return fixture_parse(*text);
}

static void done(char *dir, char *text, struct bd_yaml_doc *d)
{
    bd_yaml_doc_free(d);
    free(text);
    tmpdir_remove(dir);
    free(dir);
}

static const char *node_str(const struct bd_node *n)
{
    cr_assert(n && n->kind == BD_NODE_SCALAR);
    return n->str;
}

Test(patch, cluster_then_role_then_machine)
{
    static const char *const files[] = {
        "c.yaml", "machine:\n  install:\n    image: from-cluster\n  sysctls: {a: cluster, b: cluster, c: cluster}\n",
        "r.yaml", "machine:\n  sysctls: {b: role, c: role}\n",
        "m.yaml", "machine:\n  sysctls: {c: machine}\n", NULL};
    char *dir = lab_with_files("  patches: [c.yaml]\n  controlplane: {patches: [r.yaml]}\n",
                               "machines:\n"
                               "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane, patches: [m.yaml]}\n",
                               files);
    char *text;
    struct bd_yaml_doc d = render_docs(dir, "cp-1", &text);
    const struct bd_node *v1 = d.docs[0];
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.sysctls.a"), "cluster");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.sysctls.b"), "role");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.sysctls.c"), "machine");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.install.image"), "from-cluster", "patches beat generated values");
    /* a patch's new keys land where Talos writes them: sysctls after install */
    cr_assert(strstr(text, "    install:") < strstr(text, "    sysctls:"), "Talos's field order");
    done(dir, text, &d);
}

Test(patch, strategic_merge_follows_talos)
{
    static const char *const files[] = {
        "p.yaml",
        "machine:\n"
        "  certSANs: [extra.example]\n"        /* lists append */
        "  install:\n"
        "    disk: \"\"\n"                      /* an empty string changes nothing */
        "    wipe: true\n"                      /* booleans always do */
        "  kubelet:\n"
        "    extraArgs: {rotate-server-certificates: 'true'}\n"
        "  network:\n"
        "    interfaces:\n"
        "      - {interface: ens18, dhcp: true}\n"
        "cluster:\n"
        "  network:\n"
        "    podSubnets: [10.1.0.0/16]\n"       /* replaced, not appended */
        "  apiServer:\n"
        "    admissionControl:\n"
        "      - name: PodSecurity\n"           /* merged with the one by that name */
        "        configuration: {defaults: {enforce: privileged}}\n"
        "---\n"
        "machine:\n"
        "  network:\n"
        "    interfaces:\n"
        "      - {interface: ens18, mtu: 9000}\n" /* merged by interface name */
        "      - {interface: ens19, dhcp: false}\n"
        "  kubelet:\n"
        "    extraArgs: {rotate-server-certificates: 'false', v: '2'}\n",
        NULL};
    char *dir = lab_with_files("  cert_sans: [api.example]\n  patches: [p.yaml]\n", NULL, files);
    char *text;
    struct bd_yaml_doc d = render_docs(dir, "cp-1", &text);
    const struct bd_node *v1 = d.docs[0];
    const struct bd_node *sans = talos_tree_at(v1, "machine.certSANs");
    cr_assert_eq(sans->n, 2);
    cr_assert_str_eq(node_str(sans->kids[1]), "extra.example");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.install.disk"), "/dev/sda");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.install.wipe"), "true");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.kubelet.extraArgs.rotate-server-certificates"), "false");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.kubelet.extraArgs.v"), "2");
    const struct bd_node *pods = talos_tree_at(v1, "cluster.network.podSubnets");
    cr_assert_eq(pods->n, 1);
    cr_assert_str_eq(node_str(pods->kids[0]), "10.1.0.0/16");
    const struct bd_node *ifs = talos_tree_at(v1, "machine.network.interfaces");
    cr_assert_eq(ifs->n, 2);
    cr_assert_str_eq(talos_tree_str_at(ifs->kids[0], "mtu"), "9000");
    cr_assert_str_eq(talos_tree_str_at(ifs->kids[0], "dhcp"), "true");
    const struct bd_node *adm = talos_tree_at(v1, "cluster.apiServer.admissionControl");
    cr_assert_eq(adm->n, 1);
    cr_assert_str_eq(talos_tree_str_at(adm->kids[0], "configuration.defaults.enforce"), "privileged");
    cr_assert_str_eq(talos_tree_str_at(adm->kids[0], "configuration.defaults.audit"), "restricted");
    done(dir, text, &d);
}

Test(patch, delete_removes_keys_list_items_and_documents)
{
    static const char *const files[] = {
        "a.yaml", "kind: A\n", "b.yaml", "kind: B\n",
        "d.yaml",
        "machine:\n"
        "  features:\n"
        "    hostDNS:\n"
        "      $patch: delete\n"
        "cluster:\n"
        "  inlineManifests:\n"
        "    - name: a\n"
        "      $patch: delete\n"
        "---\n"
        "apiVersion: v1alpha1\n"
        "kind: HostnameConfig\n"
        "$patch: delete\n",
        NULL};
    char *dir = lab_with_files("  inline_manifests: [{name: a, file: a.yaml}, {name: b, file: b.yaml}]\n"
                               "  controlplane: {patches: [d.yaml]}\n",
                               NULL, files);
    char *text;
    struct bd_yaml_doc d = render_docs(dir, "cp-1", &text);
    const struct bd_node *v1 = d.docs[0];
    cr_assert_null(talos_tree_at(v1, "machine.features.hostDNS"));
    cr_assert_not_null(talos_tree_at(v1, "machine.features.kubePrism"));
    const struct bd_node *im = talos_tree_at(v1, "cluster.inlineManifests");
    cr_assert_eq(im->n, 1);
    cr_assert_str_eq(talos_tree_str_at(im->kids[0], "name"), "b");
    cr_assert_eq(fixture_doc(&d, "HostnameConfig"), -1);
    done(dir, text, &d);
}

Test(patch, delete_of_something_absent_names_patch_and_path)
{
    static const char *const files[] = {"d.yaml", "machine:\n  network:\n    $patch: delete\n", NULL};
    char *dir = lab_with_files("  patches: [d.yaml]\n", NULL, files);
    struct bd_err err;
    const char *msg = fixture_cluster_error(dir, &err);
    assert_has(msg, "cp-1: patch ");
    assert_has(msg, "d.yaml: machine.network: $patch: delete: the config has nothing there to delete");
    tmpdir_remove(dir);
    free(dir);
}

Test(patch, typed_documents_are_added_or_merged)
{
    static const char *const files[] = {
        "t.yaml",
        "apiVersion: v1alpha1\n"
        "kind: RegistryMirrorConfig\n"
        "name: ghcr.io\n"
        "endpoints:\n"
        "  - url: https://ghcr.io.my-mirror.com\n"
        "---\n"
        "apiVersion: v1alpha1\n"
        "kind: HostnameConfig\n"
        "hostname: renamed\n",
        NULL};
    char *dir = lab_with_files("  patches: [t.yaml]\n", NULL, files);
    char *text;
    struct bd_yaml_doc d = render_docs(dir, "w-1", &text);
    long mirror = fixture_doc(&d, "RegistryMirrorConfig"), host = fixture_doc(&d, "HostnameConfig");
    cr_assert(mirror > 0 && host > 0);
    cr_assert_str_eq(talos_tree_str_at(d.docs[host], "hostname"), "renamed");
    assert_has(text, "---\napiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: ghcr.io\n"
                     "endpoints:\n    - url: https://ghcr.io.my-mirror.com\n");
    done(dir, text, &d);
}

Test(patch, json6902_operations)
{
    static const char *const files[] = {
        "j.yaml",
        "- {op: add, path: /machine/certSANs/-, value: added.example}\n"
        "- {op: add, path: /machine/certSANs/0, value: first.example}\n"
        "- {op: replace, path: /machine/install/disk, value: /dev/vdb}\n"
        "- {op: remove, path: /machine/features/hostDNS}\n"
        "- {op: copy, from: /cluster/clusterName, path: /machine/nodeLabels/cluster}\n"
        "- {op: move, from: /machine/kubelet/image, path: /machine/install/image}\n"
        "- {op: test, path: /machine/install/disk, value: /dev/vdb}\n",
        "j.json", "[{\"op\": \"add\", \"path\": \"/machine/sysctls\", \"value\": {\"vm.x\": \"1\"}}]\n",
        NULL};
    char *dir = lab_with_files("  controlplane: {patches: [j.yaml, j.json]}\n", NULL, files);
    char *text;
    struct bd_yaml_doc d = render_docs(dir, "cp-1", &text);
    const struct bd_node *v1 = d.docs[0];
    const struct bd_node *sans = talos_tree_at(v1, "machine.certSANs");
    cr_assert_eq(sans->n, 2);
    cr_assert_str_eq(node_str(sans->kids[0]), "first.example");
    cr_assert_str_eq(node_str(sans->kids[1]), "added.example");
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.install.disk"), "/dev/vdb");
    cr_assert_null(talos_tree_at(v1, "machine.features.hostDNS"));
    cr_assert_str_eq(bd_node_get(talos_tree_at(v1, "machine.nodeLabels"), "cluster")->str, "base");
    cr_assert_null(talos_tree_at(v1, "machine.kubelet.image"));
    cr_assert_str_eq(talos_tree_str_at(v1, "machine.install.image"), "ghcr.io/siderolabs/kubelet:v1.28.0");
    cr_assert_str_eq(bd_node_get(talos_tree_at(v1, "machine.sysctls"), "vm.x")->str, "1");
    cr_assert_gt(fixture_doc(&d, "HostnameConfig"), 0, "other documents stay");
    done(dir, text, &d);
}

Test(patch, json6902_failures_name_the_operation)
{
    static const char *const cases[][2] = {
        {"- {op: replace, path: /machine/nothing, value: 1}\n",
         "j.yaml: operation 0 (replace /machine/nothing): nothing there to replace"},
        {"- {op: add, path: /machine/missing/deeper, value: 1}\n",
         "operation 0 (add /machine/missing/deeper): the path's parent does not exist"},
        {"- {op: test, path: /machine/type, value: worker}\n",
         "operation 0 (test /machine/type): test failed: the value differs"},
        {"- {op: frobnicate, path: /x}\n", "j.yaml:1: operation 0: op must be one of add"},
        {"- {op: add, path: machine, value: 1}\n", "path must be a JSON pointer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *files[] = {"j.yaml", cases[i][0], NULL};
        char *dir = lab_with_files("  patches: [j.yaml]\n", NULL, files);
        struct bd_err err;
        assert_has(fixture_cluster_error(dir, &err), cases[i][1]);
        tmpdir_remove(dir);
        free(dir);
    }
}

Test(patch, merge_errors_name_the_patch_and_the_path)
{
    static const char *const cases[][2] = {
        {"machine:\n  certSANs: {a: b}\n", "p.yaml: machine.certSANs: cannot merge a mapping into a list"},
        {"apiVersion: v1alpha1\nfoo: bar\n", "p.yaml:1: a typed document needs both apiVersion and kind"},
        {"foo: bar\n", "neither a v1alpha1 fragment (machine:, cluster:) nor a typed document"},
        {"- a\n- b\n", "p.yaml:1: operation 0: expected a mapping"},
        {"machine: [\n", "p.yaml:2:1: did not find expected node content"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *files[] = {"p.yaml", cases[i][0], NULL};
        char *dir = lab_with_files("  patches: [p.yaml]\n", NULL, files);
        struct bd_err err;
        assert_has(fixture_cluster_error(dir, &err), cases[i][1]);
        tmpdir_remove(dir);
        free(dir);
    }
}

Test(patch, templates_fill_in_lab_values_and_files)
{
    static const char *const files[] = {
        "t.yaml.tftpl",
        "machine:\n"
        "  nodeLabels:\n"
        "    topology.kubernetes.io/region: ${cluster_name}\n"
        "    topology.kubernetes.io/zone: ${ node_name }\n"
        "    host: ${hostname}\n"
        "cluster:\n"
        "  inlineManifests:\n"
        "    - name: values\n"
        "      contents: |\n"
        "        data:\n"
        "          values.yaml: |-\n"
        "            ${indent(12, values)}\n"
        "    - name: literal\n"
        "      contents: \"$${not_a_var}\"\n",
        "values.yaml", "a: 1\nb:\n  c: 2",
        NULL};
    /* node_name and cluster_name are the Proxmox node and cluster, as the reference
     * homelab's Terraform bound them (the Proxmox CSI plugin's topology labels) */
    char *dir = lab_with_files("  patches: [t.yaml.tftpl]\n  template_files: {values: values.yaml}\n"
                               "proxmox:\n  api: https://pve.example:8006/api2/json\n"
                               "  token_file: pve.token\n  node: pve1\n  cluster: lab-pve\n",
                               "machines:\n"
                               "  - {name: cp-1, hostname: host-1, mac: '52:54:00:00:00:01', role: controlplane,\n"
                               "     proxmox: {vmid: 101, node: pve2}}\n",
                               files);
    free(write_file(dir, "pve.token", "root@pam!bootd=x\n"));
    char *tok = bd_path_join(dir, "pve.token");
    cr_assert_eq(chmod(tok, 0600), 0);
    free(tok);
    char *text;
    struct bd_yaml_doc d = render_docs(dir, "cp-1", &text);
    const struct bd_node *labels = talos_tree_at(d.docs[0], "machine.nodeLabels");
    cr_assert_str_eq(bd_node_get(labels, "topology.kubernetes.io/region")->str, "lab-pve");
    cr_assert_str_eq(bd_node_get(labels, "topology.kubernetes.io/zone")->str, "pve2");
    cr_assert_str_eq(bd_node_get(labels, "host")->str, "host-1");
    const struct bd_node *im = talos_tree_at(d.docs[0], "cluster.inlineManifests");
    cr_assert_str_eq(talos_tree_str_at(im->kids[0], "contents"), "data:\n  values.yaml: |-\n    a: 1\n    b:\n      c: 2\n");
    cr_assert_str_eq(talos_tree_str_at(im->kids[1], "contents"), "${not_a_var}");
    done(dir, text, &d);
}

Test(patch, template_mistakes_name_file_and_line)
{
    static const char *const cases[][2] = {
        {"machine:\n  nodeLabels: {a: '${nope}'}\n",
         "t.tftpl:2:22: no variable \"nope\" (there are: hostname, name, role, ip, mac_address"},
        {"machine:\n\n  x: ${uper(hostname)}\n",
         "t.tftpl:3:8: there is no function uper() in bootd's templates"},
        {"machine:\n  x: %{ if true }\n", "t.tftpl:2:6: %{ if } without %{ endif }"},
        {"machine:\n  x: ${hostname\n", "t.tftpl:3:1: expected \"}\" to end the interpolation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *files[] = {"t.tftpl", cases[i][0], NULL};
        char *dir = lab_with_files("  patches: [t.tftpl]\n", NULL, files);
        struct bd_err err;
        assert_has(fixture_cluster_error(dir, &err), cases[i][1]);
        tmpdir_remove(dir);
        free(dir);
    }
}

/* The reference homelab's own patches, filled from examples/homelab/lab.yaml: the
 * whole result is kept in tests/fixtures/homelab/ for people to read, and compared
 * byte for byte. */
static char *homelab_dir(void)
{
    char *dir = tmpdir_new();
    char *cmd = bd_xasprintf("cp -r examples/homelab/. %s/", dir);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
    fixture_secrets(dir);
    return dir;
}

#define QEMU_GUEST_AGENT "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"

Test(patch, homelab_patches_apply)
{
    char *dir = homelab_dir();
    struct bd_err err;
    struct lab *lab = load_lab(dir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    struct talos_cluster *tc;
    cr_assert_eq(talos_cluster_new(lab, QEMU_GUEST_AGENT, &tc, &err), 0, "%s", err.msg);
    static const char *const machines[] = {"ctrl-00", "work-00"};
    for (int i = 0; i < 2; i++) {
        char *text = fixture_render(tc, lab, machines[i]);
        char *golden_path = bd_xasprintf("tests/fixtures/homelab/%s.yaml", machines[i]);
        char *golden = read_text(golden_path);
        cr_assert_str_eq(text, golden, "%s differs from %s", machines[i], golden_path);
        struct bd_yaml_doc d = fixture_parse(text);
        const struct bd_node *v1 = d.docs[0];
        cr_assert_str_eq(talos_tree_str_at(v1, "machine.network.hostname"), machines[i]);
        cr_assert_eq(fixture_doc(&d, "HostnameConfig"), -1,
                     "the patch's machine.network.hostname replaces HostnameConfig");
        const struct bd_node *labels = talos_tree_at(v1, "machine.nodeLabels");
        /* the Proxmox cluster and node, as the lab's Terraform passed them */
        cr_assert_str_eq(bd_node_get(labels, "topology.kubernetes.io/region")->str, "kube");
        cr_assert_str_eq(bd_node_get(labels, "topology.kubernetes.io/zone")->str, "host3");
        cr_assert_str_eq(talos_tree_str_at(v1, "cluster.network.cni.name"), "none");
        if (i == 0) {
            cr_assert_str_eq(talos_tree_str_at(v1, "cluster.proxy.disabled"), "true");
            const struct bd_node *im = talos_tree_at(v1, "cluster.inlineManifests");
            cr_assert_eq(im->n, 2);
            assert_has(talos_tree_str_at(im->kids[0], "contents"),
                       "  values.yaml: |-\n    # https://github.com/cilium/cilium/blob/main/install/kubernetes/cilium/values.yaml\n    cluster:\n      name: talos\n");
            assert_has(talos_tree_str_at(im->kids[1], "contents"), "kind: Job\nmetadata:\n  name: cilium-install\n");
            const struct bd_node *ifs = talos_tree_at(v1, "machine.network.interfaces");
            cr_assert_str_eq(talos_tree_str_at(ifs->kids[0], "vip.ip"), "10.25.150.10");
            /* the VIP's link by the machine's MAC: ens18 after PXE, not nocloud's eth0 */
            cr_assert_str_eq(talos_tree_str_at(ifs->kids[0], "deviceSelector.hardwareAddr"),
                             "bc:24:11:e6:ba:07");
            cr_assert_eq(fixture_doc(&d, "Layer2VIPConfig"), -1, "the patch's VIP replaces bootd's");
            cr_assert_str_eq(talos_tree_str_at(v1, "machine.install.image"),
                             "factory.talos.dev/installer/" QEMU_GUEST_AGENT ":v1.13.9");
        }
        bd_yaml_doc_free(&d);
        free(golden);
        free(golden_path);
        free(text);
    }
    fixture_done(tc, lab, dir);
}

/* Template variables from lab.yaml: cluster.vars, then the role's, then the machine's
 * (a later one wins), any YAML value. */
Test(patch, template_vars_from_lab_role_and_machine)
{
    static const char *const files[] = {
        "t.tftpl",
        "machine:\n"
        "  nodeLabels:\n"
        "    zone: ${zone}\n"
        "    mtu: \"${mtu}\"\n"
        "    first-dns: ${dns[0]}\n"
        "  network:\n"
        "    nameservers: ${jsonencode(dns)}\n",
        NULL};
    char *dir = lab_with_files("  patches: [t.tftpl]\n"
                               "  vars: {zone: a, mtu: 1500, dns: [192.0.2.53, 192.0.2.54]}\n"
                               "  controlplane: {vars: {zone: b}}\n",
                               "machines:\n"
                               "  - {name: cp-1, mac: '52:54:00:00:00:01', role: controlplane,\n"
                               "     vars: {zone: c}}\n"
                               "  - {name: cp-2, mac: '52:54:00:00:00:03', role: controlplane}\n"
                               "  - {name: w-1, mac: '52:54:00:00:00:02', role: worker}\n",
                               files);
    static const char *const want[][2] = {{"cp-1", "c"}, {"cp-2", "b"}, {"w-1", "a"}};
    for (size_t i = 0; i < 3; i++) {
        char *text;
        struct bd_yaml_doc d = render_docs(dir, want[i][0], &text);
        cr_assert_str_eq(talos_tree_str_at(d.docs[0], "machine.nodeLabels.zone"), want[i][1]);
        cr_assert_str_eq(talos_tree_str_at(d.docs[0], "machine.nodeLabels.mtu"), "1500");
        cr_assert_str_eq(talos_tree_str_at(d.docs[0], "machine.nodeLabels.first-dns"), "192.0.2.53");
        const struct bd_node *ns = talos_tree_at(d.docs[0], "machine.network.nameservers");
        cr_assert_eq(ns->n, 2);
        bd_yaml_doc_free(&d);
        free(text);
    }
    tmpdir_remove(dir);
    free(dir);
}
