"""End to end: on an empty Proxmox (the API stand-in with real QEMU behind it),
`bootctl vm apply` creates one BIOS and one UEFI VM from lab.yaml; they PXE-boot from bootd
to config-served through the disk-then-net boot order, and a second apply creates and
changes nothing."""
import subprocess
import unittest

from tests.e2e.netlab import BOOTCTL, Bootd, Lab
from tests.e2e.pve_qemu import QemuBackend
from tests.standins.proxmox_api import ProxmoxApi

TIMEOUT = 360  # software-emulated VMs, SeaBIOS and OVMF side by side on a busy machine

MACHINES = {
    "cp-1": ("bc:24:11:e2:e0:01", "controlplane", "192.0.2.11", 8101, "seabios"),
    "w-1": ("bc:24:11:e2:e0:02", "worker", "192.0.2.21", 8201, "ovmf"),
}


def config_of(name):
    return "version: v1alpha1\n# %s's own config\nmachine:\n    type: %s\n" % (name, MACHINES[name][1])


def lab_yaml(pve):
    machines = "".join(
        "  - {name: %s, mac: \"%s\", role: %s, ip: %s, config: %s.yaml,\n"
        "     proxmox: {vmid: %d, bios: %s, memory: 512, disk: 1}}\n"
        % (n, mac, role, ip, n, vmid, bios) for n, (mac, role, ip, vmid, bios) in MACHINES.items())
    return ("cluster:\n  name: e2e\n  talos_version: v1.13.9\n  vip: 192.0.2.10\n"
            "lan:\n  interface: br0\n  dhcp: full\n  range: [192.0.2.100, 192.0.2.149]\n"
            "  subnet: 192.0.2.0/24\n  gateway: 192.0.2.1\n  boot_server: 192.0.2.1\n"
            "  http_port: 8080\n  log_port: 5140\n"
            "boot:\n  hold_retry: 5s\n"
            "proxmox:\n  api: %s\n  token_file: %s\n  node: host3\n  bridge: br0\n"
            "  fingerprint: \"%s\"\n"
            "machines:\n" % (pve.url, pve.token_file, pve.fingerprint) + machines)


class ProxmoxVms(unittest.TestCase):
    def setUp(self):
        self.lab = Lab()
        self.addCleanup(self.lab.close)
        # in the lab's namespace: bootctl reaches it on its loopback
        self.pve = ProxmoxApi(self.lab.path("pve"), bridges=("br0",), auth_delay=0.5).start()
        self.addCleanup(self.pve.stop)
        self.backend = QemuBackend(self.lab)
        self.pve.state.backend = self.backend
        files = {"%s.yaml" % n: config_of(n) for n in MACHINES}
        self.bootd = Bootd(self.lab, lab_yaml(self.pve), files)

    def vm(self, *args):
        return subprocess.run([BOOTCTL, "vm", args[0], "--lab", self.bootd.lab_path,
                               "--state-dir", self.bootd.state] + list(args[1:]),
                              capture_output=True, text=True, timeout=300)

    def test_apply_creates_vms_that_pxe_boot_and_a_second_apply_is_a_no_op(self):
        self.bootd.start()
        p = self.vm("apply")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.pve.vmids(), [8101, 8201])
        self.assertEqual(self.pve.vm(8201)["config"]["bios"], "ovmf")
        self.assertIn("efidisk0", self.pve.vm(8201)["config"])
        for name in MACHINES:
            m = self.bootd.wait_state(name, "config-served", TIMEOUT)
            kinds = [e["kind"] for e in m["events"]]
            self.assertIn("booting", kinds)
        # The second apply creates and changes nothing. The Talos stand-in powers its VM
        # off once it has its config (a real Talos reboots into the installed disk), so
        # apply may only start the VMs whose guest powered off.
        self.pve.reset_requests()
        p = self.vm("apply")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        writes = [r[1] for r in self.pve.requests() if r[0] != "GET"]
        self.assertEqual([w for w in writes if not w.endswith("/status/start")], [], writes)
        self.assertNotIn("created", p.stdout)
        self.assertNotIn("changed", p.stdout)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([l.split()[0] for l in p.stdout.splitlines()[1:]], ["ok", "ok"])
        p = self.vm("destroy", "--yes", "w-1")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.pve.vmids(), [8101])
        self.assertEqual(self.pve.violations(), [])


if __name__ == "__main__":
    unittest.main()
