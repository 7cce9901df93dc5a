"""Claims against the kernel's real neighbour table: bootd in one network namespace,
machines in two others over veth pairs (198.51.100.0/24 only). Needs root and ip(8)."""
import os
import shutil
import subprocess
import time
import unittest

from tests.integration.harness import BOOTD, Bootd, config_path

W2, W2_HYP = "52:54:00:00:00:03", "52-54-00-00-00-03"
ATTACKER_MAC = "02:00:00:00:00:66"

LAB = """\
cluster:
  name: it
  talos_version: v1.13.9
  controlplane: {config: cp.yaml}
  worker: {config: worker.yaml}
lan:
  interface: %(dev)s
  dnsmasq: false
  dhcp: proxy
  subnet: 198.51.100.0/24
  boot_server: 198.51.100.1
  http_port: %(port)d
machines:
  - {name: cp-1, mac: "52:54:00:00:00:01", role: controlplane, ip: 198.51.100.11}
  - {name: w-2, mac: "52:54:00:00:00:03", role: worker}
images:
  factory: http://127.0.0.1:9
"""

CLIENT = """
import http.client, sys
c = http.client.HTTPConnection("198.51.100.1", %d, timeout=5)
c.request("GET", sys.argv[1])
r = c.getresponse()
sys.stdout.write("%%d\\n" %% r.status + r.read().decode())
"""


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip"), "needs root and ip(8)")
class RealNeighbours(unittest.TestCase):
    def setUp(self):
        tag = "%d" % os.getpid()
        self.ns = {k: "bd14%s-%s" % (k, tag) for k in ("srv", "m", "x")}
        self.dev = "bd14s" + tag[-5:]
        for n in self.ns.values():
            sh("ip", "netns", "add", n)
        self.addCleanup(self.teardown_net)
        self.ip("srv", "link", "add", self.dev, "type", "bridge")
        for i, (k, mac, addr) in enumerate((("m", W2, "198.51.100.2"),
                                           ("x", ATTACKER_MAC, "198.51.100.3"))):
            a, b = "bd14a%d%s" % (i, tag[-4:]), "bd14b%d%s" % (i, tag[-4:])
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", self.ns["srv"])
            sh("ip", "link", "set", b, "netns", self.ns[k])
            self.ip("srv", "link", "set", a, "master", self.dev, "up")
            self.ip(k, "link", "set", b, "address", mac)
            self.ip(k, "addr", "add", addr + "/24", "dev", b)
            self.ip(k, "link", "set", b, "up")
            self.ip(k, "link", "set", "lo", "up")
        self.ip("srv", "addr", "add", "198.51.100.1/24", "dev", self.dev)
        self.ip("srv", "link", "set", self.dev, "up")
        self.ip("srv", "link", "set", "lo", "up")
        self.b = Bootd(lab="")
        self.b.write("lab.yaml", LAB % {"dev": self.dev, "port": self.b.port})
        self.addCleanup(self.b.cleanup)
        env = dict(os.environ)
        env.pop("BOOTD_NEIGH_TABLE", None)
        self.b.log = open(self.b.log_path, "ab")
        self.b.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns["srv"], BOOTD, "--lab", self.b.lab_path,
             "--state-dir", self.b.state, "--listen", "198.51.100.1", "--threads", "2"],
            stdout=self.b.log, stderr=self.b.log, env=env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.get("m", "/healthz", check=False)[0] == 200:
                return
            time.sleep(0.1)
        self.fail("bootd did not come up:\n" + self.b.logs())

    def teardown_net(self):
        for n in self.ns.values():
            sh("ip", "netns", "del", n, check=False)

    def ip(self, ns, *args):
        return sh("ip", "-n", self.ns[ns], *args)

    def get(self, ns, path, check=True):
        r = subprocess.run(["ip", "netns", "exec", self.ns[ns], "python3", "-c",
                            CLIENT % self.b.port, path], capture_output=True, text=True,
                           timeout=20)
        if r.returncode:
            if check:
                self.fail(r.stderr)
            return 0, ""
        status, _, body = r.stdout.partition("\n")
        return int(status), body

    def test_machine_gets_its_config_and_a_neighbour_does_not(self):
        path = "/ipxe?mac=%s&uuid=&arch=x86_64&platform=pcbios" % W2_HYP
        status, body = self.get("x", path)
        self.assertEqual(status, 200)
        self.assertIsNone(config_path(body), "a neighbour with another MAC got a token")
        status, body = self.get("m", path)
        cfg = config_path(body)
        self.assertIsNotNone(cfg, body)
        self.assertEqual(self.get("x", cfg)[0], 403, "the token works from another MAC")
        status, body = self.get("m", cfg)
        self.assertEqual(status, 200)
        self.assertIn("type: worker", body)


if __name__ == "__main__":
    unittest.main()
