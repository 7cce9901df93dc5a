"""bootctl validate checks a lab offline exactly as bootd checks it when it loads it:
every machine's Talos config is rendered (secrets bundle, patches, templates, Talos's
rules, links a PXE-booted machine will not have), and what bootctl refuses bootd
refuses too. The reference homelab (examples/homelab) validates; its nocloud-era VIP
patch (eth0) is refused with the fix."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.harness import BOOTCTL, BOOTD, free_port, line_of

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "talos")
CASE = "/work/shared/cases/homelab"

LAB = """\
cluster:
  name: v
  talos_version: {version}
{extra}lan:
  interface: lo
  dnsmasq: false
  dhcp: proxy
  subnet: 192.0.2.0/24
  gateway: 192.0.2.1
  boot_server: 192.0.2.1
  http_port: {port}
machines:
  - {{name: cp-1, mac: "52:54:00:00:00:01", role: controlplane, ip: 192.0.2.11}}
  - {{name: w-1, mac: "52:54:00:00:00:02", role: worker, ip: 192.0.2.12}}
"""


class Validate(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bootd-validate-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.port = free_port()

    def write(self, name, text, mode=None):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(path, mode)
        return path

    def secrets(self, fixture="secrets-openssl-ed25519.yaml"):
        path = os.path.join(self.dir, "secrets.yaml")
        shutil.copy(os.path.join(FIXTURES, fixture), path)
        os.chmod(path, 0o600)

    def lab(self, extra="", version="v1.13.9"):
        return self.write("lab.yaml", LAB.format(version=version, extra=extra, port=self.port))

    def validate(self, path):
        r = subprocess.run([BOOTCTL, "validate", path], capture_output=True, text=True,
                           timeout=60)
        self.assertNotIn("Sanitizer", r.stderr)
        return r

    def bootd_refuses(self, path, want):
        """bootd refuses the same lab at start, with the same message."""
        state = os.path.join(self.dir, "state")
        r = subprocess.run([BOOTD, "--lab", path, "--state-dir", state, "--listen", "127.0.0.1",
                            "--port", str(self.port), "--threads", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(want, r.stdout + r.stderr)
        self.assertNotIn("Sanitizer", r.stdout + r.stderr)

    def refused(self, path, *wants):
        r = self.validate(path)
        self.assertEqual(r.returncode, 1, r.stdout)
        for want in wants:
            self.assertIn(want, r.stderr)
        self.bootd_refuses(path, wants[0])
        return r.stderr

    def test_missing_secrets_bundle(self):
        path = self.lab()
        self.refused(path, "cluster.secrets: %s/secrets.yaml does not exist" % self.dir,
                     "Create it with: bootctl gen secrets")

    def test_ok_renders_every_config(self):
        path = self.lab()
        self.secrets()
        r = self.validate(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok: cluster v, 2 machines (1 controlplane, 1 worker), dhcp proxy, "
                      "2 Talos configs rendered", r.stdout)

    def test_terraform_secrets_validate(self):
        path = self.lab()
        self.secrets("secrets-terraform.yaml")
        r = self.validate(path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_talos_versions(self):
        self.secrets()
        self.refused(self.lab(version="v1.11.5"),
                     "cluster.talos_version: bootd writes the Talos v1.12/v1.13 config layout, "
                     "which Talos v1.11.5 does not read")
        r = self.validate(self.lab(version="v1.12.6"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_template_error_names_file_line_col(self):
        self.secrets()
        tpl = self.write("p.yaml.tftpl", "machine:\n  nodeLabels:\n    zone: ${zone}\n")
        path = self.lab(extra="  patches: [p.yaml.tftpl]\n")
        self.refused(path, "cp-1: %s:3:13: no variable \"zone\"" % tpl)

    def test_install_disk_not_a_path(self):
        self.secrets()
        self.refused(self.lab(extra="  install_disk: sda\n"),
                     "machine.install.disk: \"sda\" is not a path")

    def test_cni_none_without_a_cni(self):
        self.secrets()
        self.refused(self.lab(extra="  cni: none\n"), "but no CNI arrives")
        self.write("cilium.yaml", "kind: DaemonSet\n")
        r = self.validate(self.lab(extra="  cni: none\n  inline_manifests: "
                                         "[{name: cilium, file: cilium.yaml}]\n"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_vip_on_eth0_refused_with_the_fix(self):
        self.secrets()
        self.write("vip.yaml", "machine:\n  network:\n    interfaces:\n"
                               "      - interface: eth0\n        dhcp: true\n"
                               "        vip: {ip: 192.0.2.10}\n")
        path = self.lab(extra="  vip: 192.0.2.10\n  controlplane: {patches: [vip.yaml]}\n")
        self.refused(path, "cp-1: after patch %s/vip.yaml: machine.network.interfaces[0]."
                           "interface (line 4, column 20 of the patch): \"eth0\" is a link this "
                           "machine will not have" % self.dir,
                     "The VIP 192.0.2.10 would never be held there",
                     "deviceSelector: {hardwareAddr: \"52:54:00:00:00:01\"}")

    # ---- the reference homelab ----

    def homelab(self):
        """examples/homelab copied, with the openssl-made Ed25519 bundle as its secrets."""
        lab = os.path.join(self.dir, "homelab")
        shutil.copytree(os.path.join(ROOT, "examples", "homelab"), lab)
        shutil.copy(os.path.join(FIXTURES, "secrets-openssl-ed25519.yaml"),
                    os.path.join(lab, "secrets.yaml"))
        os.chmod(os.path.join(lab, "secrets.yaml"), 0o600)
        return lab

    def test_homelab_example_validates_with_topology_from_proxmox(self):
        lab = self.homelab()
        r = self.validate(os.path.join(lab, "lab.yaml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("6 machines (3 controlplane, 3 worker)", r.stdout)
        self.assertIn("6 Talos configs rendered", r.stdout)
        out = subprocess.run([BOOTCTL, "gen", "config", os.path.join(lab, "lab.yaml"),
                              "--machine", "work-01", "-o", "-"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        # the Proxmox cluster and node (what the Proxmox CSI plugin matches), not the
        # Talos cluster name and the machine name
        self.assertIn("topology.kubernetes.io/region: kube\n", out.stdout)
        self.assertIn("topology.kubernetes.io/zone: host3\n", out.stdout)

    @unittest.skipUnless(os.path.isdir(CASE), "the reference homelab's files")
    def test_homelab_nocloud_vip_patch_refused_with_the_fix(self):
        """The lab's own control-plane patch, as its Terraform applied it to nocloud
        images: interface eth0."""
        lab = self.homelab()
        patch = os.path.join(lab, "talos", "machine-config", "control-plane.yaml.tftpl")
        shutil.copy(os.path.join(CASE, "talos", "machine-config", "control-plane.yaml.tftpl"),
                    patch)
        self.refused(os.path.join(lab, "lab.yaml"),
                     "ctrl-00: after patch %s: machine.network.interfaces[0].interface "
                     "(line 15, column 20 of the patch): \"eth0\" is a link this machine will "
                     "not have" % patch,
                     "The VIP 10.25.150.10 would never be held there",
                     "deviceSelector: {hardwareAddr: \"bc:24:11:e6:ba:07\"}")

    # ---- addresses ----

    def test_machine_addresses(self):
        self.secrets()
        text = LAB.format(version="v1.13.9", extra="", port=self.port)
        cases = [
            ("ip: 192.0.2.12", "ip: 192.0.2.255",
             "machine w-1: ip 192.0.2.255 is the broadcast address of lan.subnet 192.0.2.0/24"),
            ("ip: 192.0.2.12", "ip: 192.0.2.0",
             "machine w-1: ip 192.0.2.0 is the network address"),
            ('"52:54:00:00:00:02"', '"33:33:00:00:00:02"',
             "machine w-1: mac 33:33:00:00:00:02 is a multicast address"),
        ]
        for old, new, want in cases:
            changed = text.replace(old, new)
            path = self.write("lab.yaml", changed)
            line = line_of(changed, new)
            col = changed.splitlines()[line - 1].index(new.split(": ")[-1]) + 1
            self.refused(path, "%s:%d:%d: %s" % (path, line, col, want))
        # inside the DHCP range (full mode): both places named
        full = text.replace("dhcp: proxy", "dhcp: full\n  range: [192.0.2.100, 192.0.2.199]")
        changed = full.replace("ip: 192.0.2.12", "ip: 192.0.2.150")
        path = self.write("lab.yaml", changed)
        r = self.refused(path, "machine w-1: ip 192.0.2.150 is inside lan.range "
                               "192.0.2.100-192.0.2.199 (%s:%d:10)"
                         % (path, line_of(changed, "range: [")))
        self.assertIn("%s:%d:" % (path, line_of(changed, "ip: 192.0.2.150")), r)
