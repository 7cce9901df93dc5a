"""End to end: real firmware (SeaBIOS + iPXE, OVMF), real DHCP and TFTP from the dnsmasq
bootd runs, real HTTP from bootd, a real Linux kernel booting the Talos stand-in."""
import subprocess
import time
import unittest

from tests.e2e.netlab import Bootd, Lab, VM, sha256

BIOS_TIMEOUT = 240  # software-emulated VMs on a busy 2-core machine
UEFI_TIMEOUT = 300

MACHINES = {
    "cp-1": ("52:54:00:e2:e0:01", "controlplane", "192.0.2.11"),
    "w-1": ("52:54:00:e2:e0:02", "worker", "192.0.2.21"),
    "w-2": ("52:54:00:e2:e0:03", "worker", "192.0.2.22"),
}


def lab_yaml(dhcp="full"):
    lan = ("  dhcp: full\n  range: [192.0.2.100, 192.0.2.149]\n" if dhcp == "full"
           else "  dhcp: proxy\n")
    machines = "".join(
        "  - {name: %s, mac: \"%s\", role: %s%s, config: %s.yaml}\n"
        % (n, mac, role, ", ip: " + ip if dhcp == "full" else "", n)
        for n, (mac, role, ip) in MACHINES.items())
    return ("cluster:\n  name: e2e\n  talos_version: v1.13.9\n  vip: 192.0.2.10\n"
            "lan:\n  interface: br0\n" + lan +
            "  subnet: 192.0.2.0/24\n  gateway: 192.0.2.1\n  boot_server: 192.0.2.1\n"
            "  http_port: 8080\n  log_port: 5140\n  domain: lab.example\n"
            "boot:\n  hold_retry: 5s\n"
            "services:\n  domain: lab.example\n  dns: true\n"
            "  records:\n    - {name: grafana, ip: 192.0.2.220}\n"
            "machines:\n" + machines)


def config_of(name):
    role = MACHINES[name][1]
    return "version: v1alpha1\n# %s's own config\nmachine:\n    type: %s\n" % (name, role)


CONFIGS = {"%s.yaml" % n: config_of(n) for n in MACHINES}
TIMINGS = []


def tearDownModule():
    if TIMINGS:
        print("\n" + "\n".join(TIMINGS))


class PxeLab(unittest.TestCase):
    """A fresh namespace and bootd per test; the tests are in the classes below."""
    dhcp = "full"

    def setUp(self):
        self.lab = Lab()
        self.addCleanup(self.lab.close)
        self.bootd = Bootd(self.lab, lab_yaml(self.dhcp), CONFIGS)

    def boot(self, name, firmware="bios"):
        return VM(self.lab, MACHINES[name][0], firmware, name)

    def assert_booted(self, vm, name, timeout):
        """The VM downloaded exactly its own config and Talos' log moved it on."""
        got = vm.config_sha256(timeout)
        self.assertEqual(got, sha256(config_of(name)), "%s got another config" % name)
        served = time.monotonic() - vm.started
        m = self.bootd.wait_state(name, "installing", 30)
        kinds = [e["kind"] for e in m["events"]]
        for k in ("booting", "config-served", "installing"):
            self.assertIn(k, kinds, m["events"])
        logs = self.bootd.bootctl("logs", name)
        self.assertIn("[talos] config sha256=" + got, logs)
        vm.wait_off(60)
        steps = ", ".join("%s +%.1fs" % (e["kind"], (t - m["events"][0]["_t"]))
                          for e, t in self.event_times(m))
        TIMINGS.append("e2e %s %s (%s): power-on to config served %.1f s; timeline: %s"
                       % (self.id().split(".")[-1], name, vm.firmware, served, steps))
        return m

    @staticmethod
    def event_times(m):
        import datetime
        out = []
        for e in m["events"]:
            t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
            e["_t"] = t
            out.append((e, t))
        return out


class PxeBoot(PxeLab):
    """bootd's dnsmasq is the lab's DHCP server."""

    def test_a_bios_known_machine(self):
        self.bootd.start()
        vm = self.boot("cp-1", "bios")
        m = self.assert_booted(vm, "cp-1", BIOS_TIMEOUT)
        self.assertEqual(m["ip"], "192.0.2.11")
        self.assertIn("lease", [e["kind"] for e in m["events"]])
        # the services section is published through bootd's dnsmasq
        out = subprocess.run(["busybox", "nslookup", "grafana.lab.example", "192.0.2.1"],
                             capture_output=True, text=True, timeout=20).stdout
        self.assertIn("192.0.2.220", out)

    def test_b_uefi_known_machine(self):
        self.bootd.start()
        vm = self.boot("w-1", "uefi")
        self.assert_booted(vm, "w-1", UEFI_TIMEOUT)

    def test_c_unknown_mac_is_held(self):
        self.bootd.start()
        vm = VM(self.lab, "52:54:00:e2:e0:99", "bios", "stranger")
        vm.wait_console("is not in lab.yaml", BIOS_TIMEOUT)
        m = self.bootd.machine("52:54:00:e2:e0:99")
        self.assertEqual(m["state"], "discovered")
        self.assertTrue(m["ip"].startswith("192.0.2.1"), m)
        self.assertIn(m["arch"], ("i386", "x86_64"))
        # held: it asks again and again, and never gets a config
        vm.wait_console("asking again", 30)
        time.sleep(6)
        self.assertNotIn("config sha256", vm.console())
        _, metrics = self.bootd.get("/metrics")
        self.assertIn(b'bootd_config_downloads_total{result="served"} 0', metrics)
        vm.stop()

    def test_e_two_vms_at_once(self):
        self.bootd.start()
        a = self.boot("cp-1", "bios")
        b = self.boot("w-2", "bios")
        self.assert_booted(a, "cp-1", BIOS_TIMEOUT)
        self.assert_booted(b, "w-2", BIOS_TIMEOUT)

    def test_f_bootd_killed_while_a_vm_boots(self):
        self.bootd.start()
        vm = self.boot("cp-1", "bios")
        self.bootd.wait_state("cp-1", "booting", BIOS_TIMEOUT)
        self.bootd.kill9()
        time.sleep(2)
        self.bootd.start()  # same state dir; a new dnsmasq replaces the old one
        m = self.assert_booted(vm, "cp-1", BIOS_TIMEOUT)
        kinds = [e["kind"] for e in m["events"]]
        self.assertEqual(kinds[0], "assigned", "the timeline from before the kill is kept")


class ProxyBoot(PxeLab):
    """Beside a home router: its DHCP leases addresses, bootd's dnsmasq answers PXE."""
    dhcp = "proxy"

    def test_a_bios_known_machine(self):
        self.lab.home_router()
        self.bootd.start()
        vm = self.boot("cp-1", "bios")
        m = self.assert_booted(vm, "cp-1", BIOS_TIMEOUT)
        self.assertTrue(m["ip"].startswith("192.0.2.1"), m)  # the router's range
        booting = [e["message"] for e in m["events"] if e["kind"] == "booting"][0]
        self.assertIn("bound to 192.0.2.0/24 (no reserved address: lab subnet)", booting)


if __name__ == "__main__":
    unittest.main()
