#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads the fixture lab with one patch for every machine (or per role) and expects the
 * message. */
static void refused(const char *cluster_extra, const char *patch, const char *want)
{
    char *dir = fixture_lab(cluster_extra, NULL);
    free(write_file(dir, "p.yaml", patch));
    struct bd_err err;
    assert_has(fixture_cluster_error(dir, &err), want);
    tmpdir_remove(dir);
    free(dir);
}

Test(validate, worker_with_a_vip_names_patch_and_field)
{
    refused("  worker: {patches: [p.yaml]}\n",
            "machine:\n  network:\n    interfaces:\n      - interface: ens18\n        vip: {ip: 192.0.2.10}\n",
            "w-1: after patch ");
    refused("  worker: {patches: [p.yaml]}\n",
            "machine:\n  network:\n    interfaces:\n      - interface: ens18\n        vip: {ip: 192.0.2.10}\n",
            "p.yaml: machine.network.interfaces[0].vip: a worker cannot hold a VIP");
    refused("  worker: {patches: [p.yaml]}\n",
            "machine:\n  network:\n    interfaces:\n      - interface: ens18\n"
            "        vlans: [{vlanId: 5, vip: {ip: 192.0.2.10}}]\n",
            "machine.network.interfaces[0].vlans[0].vip: a worker cannot hold a VIP");
    refused("  worker: {patches: [p.yaml]}\n",
            "apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 192.0.2.10\nlink: ens18\n",
            "document 2 (Layer2VIPConfig 192.0.2.10): a worker cannot hold a VIP");
}

Test(validate, control_plane_without_the_ca_key)
{
    refused("  controlplane: {patches: [p.yaml]}\n", "machine:\n  ca:\n    key:\n      $patch: delete\n",
            "cp-1: after patch ");
    refused("  controlplane: {patches: [p.yaml]}\n", "machine:\n  ca:\n    key:\n      $patch: delete\n",
            "p.yaml: machine.ca.key: a control plane needs the os CA key");
    refused("  controlplane: {patches: [p.yaml]}\n",
            "cluster:\n  etcd:\n    ca:\n      key:\n        $patch: delete\n",
            "cluster.etcd.ca: a control plane needs the etcd CA certificate and key");
}

Test(validate, contradictions_within_talos_rules)
{
    static const char *const cases[][3] = {
        {"  patches: [p.yaml]\n", "persist: false\n", "persist: .persist should be enabled"},
        {"  patches: [p.yaml]\n", "machine:\n  kubelet:\n    extraArg: {v: '2'}\n",
         "machine.kubelet.extraArg: unknown key (Talos refuses keys its config does not have)"},
        {"  patches: [p.yaml]\n", "machine:\n  network:\n    interfaces: [{interface: ens18, dchp: true}]\n",
         "machine.network.interfaces[0].dchp: unknown key"},
        {"  patches: [p.yaml]\n", "machine:\n  install:\n    extraKernelArgs: [console=ttyS1]\n",
         "machine.install.extraKernelArgs: cannot be used with grubUseUKICmdline: true"},
        {"  patches: [p.yaml]\n", "machine:\n  type: worker\n",
         "cp-1: after patch "},
        {"  patches: [p.yaml]\n", "machine:\n  type: worker\n",
         "machine.type: worker, but lab.yaml gives this machine the role controlplane"},
        {"  patches: [p.yaml]\n", "machine:\n  nodeLabels: {\"bad label\": x}\n",
         "machine.nodeLabels.bad label: not a valid Kubernetes key"},
        {"  patches: [p.yaml]\n", "machine:\n  features:\n    hostDNS: {enabled: false}\n",
         "machine.features.hostDNS.forwardKubeDNSToHost: needs machine.features.hostDNS.enabled: true"},
        {"  patches: [p.yaml]\n", "cluster:\n  controlPlane: {endpoint: 'http://base:6443'}\n",
         "cluster.controlPlane.endpoint: "},
        {"  controlplane: {patches: [p.yaml]}\n",
         "cluster:\n  network:\n    cni: {name: flannel, urls: [https://example.com/cni.yaml]}\n",
         "cluster.network.cni.urls: only cni name custom takes urls"},
        {"  inline_manifests: [{name: a, file: p.yaml}]\n  controlplane: {patches: [p.yaml]}\n",
         "cluster:\n  inlineManifests: [{name: a, contents: x}]\n",
         "cluster.inlineManifests: \"a\" appears twice"},
        {"  patches: [p.yaml]\n", "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n",
         "HostnameConfig): 'auto' and 'hostname' cannot be set at the same time"},
        {"  worker: {patches: [p.yaml]}\n", "cluster:\n  etcd: {image: x}\n",
         "cluster.etcd: only control planes run etcd"},
        {"  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n",
         "machine:\n  network:\n    interfaces: [{interface: ens18, dhcp: true}]\n",
         "cluster.vip: 192.0.2.10 is on no link of this control plane"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused(cases[i][0], cases[i][1], cases[i][2]);
}

Test(validate, a_patch_may_take_over_hostname_and_network)
{
    char *dir = fixture_lab("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n", NULL);
    free(write_file(dir, "p.yaml",
                    "machine:\n  network:\n    hostname: legacy\n    nameservers: [192.0.2.53]\n"
                    "    interfaces:\n      - {interface: ens18, dhcp: true, vip: {ip: 192.0.2.10}}\n"));
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *text = fixture_render(tc, lab, "cp-1");
    struct bd_yaml_doc d = fixture_parse(text);
    cr_assert_eq(d.ndocs, 1, "only the v1alpha1 document is left:\n%s", text);
    bd_yaml_doc_free(&d);
    free(text);
    fixture_done(tc, lab, dir);
}

Test(validate, rules_on_documents)
{
    struct talos_docs d = {0};
    struct bd_err err;
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *text = fixture_render(tc, lab, "w-1");
    struct bd_yaml_doc parsed = fixture_parse(text);
    for (size_t i = 0; i < parsed.ndocs; i++)
        talos_docs_push(&d, bd_node_clone(parsed.docs[i]));
    struct validate_ctx vc = {.role = LAB_ROLE_WORKER};
    cr_assert_eq(talos_validate(&d, &vc, &err), 0, "%s", err.msg);
    talos_docs_push(&d, bd_node_clone(d.v[1]));
    cr_assert_eq(talos_validate(&d, &vc, &err), -1);
    assert_has(err.msg, "document 2 (HostnameConfig): duplicate document (also document 1)");
    talos_docs_remove(&d, 2);
    struct bd_node *untyped = bd_node_new(BD_NODE_MAP);
    talos_tree_str(untyped, "kind", "LinkConfig");
    talos_docs_push(&d, untyped);
    cr_assert_eq(talos_validate(&d, &vc, &err), -1);
    assert_has(err.msg, "every document but the v1alpha1 one needs apiVersion and kind");
    talos_docs_free(&d);
    bd_yaml_doc_free(&parsed);
    free(text);
    fixture_done(tc, lab, dir);
}

/* ---- links a PXE-booted metal machine will not have ---- */

/* The reference homelab's VIP patch, written for nocloud images: eth0 does not exist
 * after PXE (predictable names), so the VIP would never come up. */
Test(validate, vip_on_eth0_is_refused_with_the_fix)
{
    const char *patch = "machine:\n  network:\n    interfaces:\n"
                        "      - interface: eth0\n        dhcp: true\n"
                        "        vip:\n          ip: 192.0.2.10\n";
    refused("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n", patch,
            "cp-1: after patch ");
    refused("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n", patch,
            "p.yaml: machine.network.interfaces[0].interface (line 4, column 20 of the patch): "
            "\"eth0\" is a link this machine will not have: Talos on metal (PXE) names links "
            "predictably (ens18 on a Proxmox virtio NIC)");
    refused("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n", patch,
            "The VIP 192.0.2.10 would never be held there");
    refused("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n", patch,
            "Fix: select the link by the machine's MAC instead (deviceSelector: {hardwareAddr: "
            "\"52:54:00:00:00:01\"}), or add net.ifnames=0 to the image schematic's "
            "customization.extraKernelArgs (images.schematic in lab.yaml)");
    /* the lab's kernel_args reach the PXE boot only, not the installed system */
    refused("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\nboot:\n  kernel_args: [net.ifnames=0]\n",
            patch, "net.ifnames=0 is in the lab's kernel_args, but those reach the PXE boot only");
    /* typed documents too, and bond members */
    refused("  worker: {patches: [p.yaml]}\n",
            "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth1\nmtu: 9000\n",
            "LinkConfig eth1: name (line 3, column 7 of the patch): \"eth1\" is a link this machine");
    refused("  patches: [p.yaml]\n",
            "machine:\n  network:\n    interfaces:\n      - interface: bond0\n"
            "        bond: {mode: active-backup, interfaces: [ens18, eth1]}\n",
            "machine.network.interfaces[0].bond.interfaces[1]");
}

/* A VIP on a link the machine has: by its MAC, by bootd's alias, by a predictable
 * name, or eth0 when the lab boots with net.ifnames=0. */
static void accepted(const char *cluster_extra, const char *patch)
{
    char *dir = fixture_lab(cluster_extra, NULL);
    free(write_file(dir, "p.yaml", patch));
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    fixture_done(tc, lab, dir);
}

Test(validate, vip_on_a_link_the_machine_has)
{
    const char *cp = "  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n";
    accepted(cp, "machine:\n  network:\n    interfaces:\n"
                 "      - deviceSelector: {hardwareAddr: '52:54:00:00:00:01'}\n"
                 "        dhcp: true\n        vip: {ip: 192.0.2.10}\n");
    accepted(cp, "machine:\n  network:\n    interfaces:\n"
                 "      - deviceSelector: {hardwareAddr: '52:54:*'}\n"
                 "        dhcp: true\n        vip: {ip: 192.0.2.10}\n");
    accepted(cp, "machine:\n  network:\n    interfaces:\n"
                 "      - {interface: ens18, dhcp: true, vip: {ip: 192.0.2.10}}\n");
    /* eth0 when the schematic gives every boot net.ifnames=0 */
    char *dir = fixture_lab("  vip: 192.0.2.10\n  controlplane: {patches: [p.yaml]}\n"
                            "images:\n  schematic: schematic.yaml\n", NULL);
    free(write_file(dir, "schematic.yaml", "customization:\n  extraKernelArgs: [net.ifnames=0]\n"));
    free(write_file(dir, "p.yaml", "machine:\n  network:\n    interfaces:\n"
                                   "      - {interface: eth0, dhcp: true, vip: {ip: 192.0.2.10}}\n"));
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    fixture_done(tc, lab, dir);
    /* the VIP bootd makes itself sits on its lan0 alias (by MAC) */
    accepted("  vip: 192.0.2.10\n", "{}\n");
    refused(cp, "machine:\n  network:\n    interfaces:\n"
                "      - deviceSelector: {hardwareAddr: '52:54:00:00:00:99'}\n"
                "        dhcp: true\n        vip: {ip: 192.0.2.10}\n",
            "machine.network.interfaces[0].deviceSelector.hardwareAddr (line 4, column 40 of the "
            "patch): 52:54:00:00:00:99 is not this machine's MAC (lab.yaml gives it "
            "52:54:00:00:00:01), so the link and its VIP would never be set up");
}

/* cni: none with nothing bringing a CNI would leave every node NotReady. */
Test(validate, cni_none_needs_a_cni_from_somewhere)
{
    char *dir = fixture_lab("  cni: none\n", NULL);
    struct bd_err err;
    assert_has(fixture_cluster_error(dir, &err),
               "cluster.cni: none (cp-1's config has cluster.network.cni.name: none), but no CNI "
               "arrives: no control plane's config has an inline manifest, an extra manifest or "
               "CNI URLs, and there is no gitops repo");
    tmpdir_remove(dir);
    free(dir);
    /* an inline manifest in lab.yaml, or one a patch brings */
    dir = fixture_lab("  cni: none\n  inline_manifests: [{name: cilium, file: cilium.yaml}]\n", NULL);
    free(write_file(dir, "cilium.yaml", "kind: DaemonSet\n"));
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    fixture_done(tc, lab, dir);
    accepted("  cni: none\n  controlplane: {patches: [p.yaml]}\n",
             "cluster:\n  extraManifests: [https://example.com/cilium.yaml]\n");
}

Test(validate, install_disk_must_be_a_path)
{
    char *dir = fixture_lab("  install_disk: sda\n", NULL);
    struct bd_err err;
    assert_has(fixture_cluster_error(dir, &err),
               "cp-1 (from lab.yaml and ");
    assert_has(err.msg, "machine.install.disk: \"sda\" is not a path; Talos installs to a device "
                        "path such as /dev/sda");
    tmpdir_remove(dir);
    free(dir);
}
