"""The Debian package as a new user gets it: `make deb`, installed into a fresh root, its
unit's ExecStart run with the installed paths in a network namespace lab, and a VM
network-booting from that bootd (its dnsmasq runs the installed bootctl as lease hook)."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.e2e import netlab
from tests.e2e.netlab import Bootd, Lab, VM, sha256
from tests.e2e.test_pxe import CONFIGS, MACHINES, config_of, lab_yaml
from tests.integration.test_package import expand, unit_settings

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = "/lib/systemd/system/bootd.service"


class InstalledBootd(Bootd):
    """bootd started as the installed unit would start it."""

    def __init__(self, lab, root, **kw):
        self.root = root
        super().__init__(lab, state=os.path.join(root, "var/lib/bootd"), **kw)

    def start(self):
        with open(os.path.join(self.root, UNIT.lstrip("/"))) as f:
            settings = unit_settings(f.read())
        env = {k: v for k, v in (s[1].split("=", 1) for s in settings if s[0] == "Environment")}
        env["BOOTD_LAB"] = self.lab_path
        argv = expand(dict(settings)["ExecStart"], env)
        argv = [os.path.join(self.root, a.lstrip("/")) if a.startswith(("/usr/", "/var/")) else a
                for a in argv]
        self.argv = argv
        self.proc = self.lab.start(argv, self.log)
        netlab.wait_until("bootd to answer", self._healthy, 20, 0.1)
        return self


class DebianPackage(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bootd-deb-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        r = subprocess.run(["scripts/mkdeb.sh", netlab.BUILD, self.tmp], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        deb = r.stdout.strip().splitlines()[-1]
        self.root = os.path.join(self.tmp, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
            os.makedirs(os.path.join(self.root, d))
        open(os.path.join(self.root, "var/lib/dpkg/status"), "w").close()
        subprocess.run(["dpkg", "--root=" + self.root, "--force-depends",
                        "--force-script-chrootless", "--log=/dev/null", "-i", deb],
                       check=True, capture_output=True, timeout=120)
        # bootctl as installed, for the test's own calls too
        self.addCleanup(setattr, netlab, "BOOTCTL", netlab.BOOTCTL)
        netlab.BOOTCTL = os.path.join(self.root, "usr/bin/bootctl")

    def test_vm_boots_from_the_installed_service(self):
        lab = Lab()
        self.addCleanup(lab.close)
        bootd = InstalledBootd(lab, self.root, lab_yaml=lab_yaml(), files=CONFIGS).start()
        self.assertEqual(bootd.argv[0], os.path.join(self.root, "usr/bin/bootd"))
        self.assertIn(os.path.join(self.root, "var/lib/bootd"), bootd.argv)
        with open(os.path.join(self.root, "var/lib/bootd/dnsmasq/lease-event")) as f:
            hook = f.read()
        self.assertIn("exec '%s'" % os.path.join(self.root, "usr/bin/bootctl"), hook)
        vm = VM(lab, MACHINES["cp-1"][0], "bios", "cp-1")
        got = vm.config_sha256(240)
        self.assertEqual(got, sha256(config_of("cp-1")))
        m = bootd.wait_state("cp-1", "installing", 60)
        self.assertIn("config-served", [e["kind"] for e in m["events"]])
        # the lease reached bootd through the installed bootctl
        leases = [e for e in m["events"] if e["kind"] == "lease"]
        self.assertTrue(leases, m["events"])
        vm.wait_off(60)


if __name__ == "__main__":
    unittest.main()
