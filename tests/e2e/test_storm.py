"""End to end: a boot storm. Eight VMs powered on together PXE-boot from one bootd
(its dnsmasq, iPXE, the per-machine script, kernel and initramfs, the config), and each
one's power-on to config-served time is printed beside a single VM's from the same run.

Software-emulated QEMU shares the build machine's cores with everything else, so the
times are reported, not asserted: what is asserted is that every machine boots, gets
exactly its own config, and that no request failed. Runs in make e2e-slow."""
import time
import unittest

from tests.e2e.netlab import Bootd, Lab, VM, sha256

STORM = 8
TIMEOUT = 600  # eight software-emulated VMs on a busy 2-core machine
# what the stand-in needs: iPXE loads an 8 MiB kernel and a 1 MiB initramfs, which
# unpacks to a busybox root; 128 MiB leaves it room and keeps eight VMs small
MEMORY_MIB = 128

MACHINES = {"s-%d" % i: ("52:54:00:e2:e1:%02x" % i, "192.0.2.%d" % (40 + i))
            for i in range(STORM + 1)}


def lab_yaml():
    machines = "".join(
        "  - {name: %s, mac: \"%s\", role: %s, ip: %s, config: %s.yaml}\n"
        % (n, mac, "controlplane" if n == "s-0" else "worker", ip, n)
        for n, (mac, ip) in MACHINES.items())
    return ("cluster:\n  name: storm\n  talos_version: v1.13.9\n  vip: 192.0.2.10\n"
            "lan:\n  interface: br0\n  dhcp: full\n  range: [192.0.2.100, 192.0.2.149]\n"
            "  subnet: 192.0.2.0/24\n  gateway: 192.0.2.1\n  boot_server: 192.0.2.1\n"
            "  http_port: 8080\n  log_port: 5140\n  domain: lab.example\n"
            "machines:\n" + machines)


def config_of(name):
    role = "controlplane" if name == "s-0" else "worker"
    return "version: v1alpha1\n# %s's own config\nmachine:\n    type: %s\n" % (name, role)


class BootStorm(unittest.TestCase):
    def setUp(self):
        self.lab = Lab()
        self.addCleanup(self.lab.close)
        self.bootd = Bootd(self.lab, lab_yaml(), {"%s.yaml" % n: config_of(n) for n in MACHINES})
        self.bootd.start()

    def power_on(self, names):
        return {n: VM(self.lab, MACHINES[n][0], "bios", n, memory_mib=MEMORY_MIB)
                for n in names}

    def served(self, vms):
        """Power-on to config served for each VM, in the order they finish."""
        took, deadline = {}, time.monotonic() + TIMEOUT
        while len(took) < len(vms) and time.monotonic() < deadline:
            for n, vm in vms.items():
                if n in took:
                    continue
                for line in vm.console().splitlines():
                    if "config sha256=" in line:
                        got = line.split("config sha256=")[1].split()[0]
                        self.assertEqual(got, sha256(config_of(n)), "%s got another config" % n)
                        took[n] = time.monotonic() - vm.started
            time.sleep(0.5)
        missing = sorted(set(vms) - set(took))
        self.assertFalse(missing, "no config served within %d s to %s" % (TIMEOUT, missing))
        for n, vm in vms.items():
            self.bootd.wait_state(n, "installing", 60)
            vm.wait_off(120)
        return took

    def test_eight_vms_powered_on_together(self):
        single = self.served(self.power_on(["s-0"]))["s-0"]
        storm = self.served(self.power_on(["s-%d" % i for i in range(1, STORM + 1)]))
        _, metrics = self.bootd.get("/metrics")
        self.assertIn(b'bootd_config_downloads_total{result="served"} %d' % (STORM + 1),
                      metrics)
        times = sorted(storm.values())
        lines = ["e2e storm: one VM alone: power-on to config served %.1f s" % single]
        lines += ["e2e storm: %s of %d together: %.1f s (%.2fx the single VM)"
                  % (n, STORM, t, t / single) for n, t in sorted(storm.items())]
        lines.append("e2e storm: %d together: first %.1f s, median %.1f s, last %.1f s; "
                     "the last is %.2fx the single VM" % (
                         STORM, times[0], times[len(times) // 2], times[-1], times[-1] / single))
        with open("/proc/loadavg") as f:
            lines.append("e2e storm: load average %s" % f.read().strip())
        print("\n" + "\n".join(lines))


if __name__ == "__main__":
    unittest.main()
