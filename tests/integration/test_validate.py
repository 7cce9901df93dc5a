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
