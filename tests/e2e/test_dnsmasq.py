"""bootd's dnsmasq in a network namespace, without VMs: reloads, restarts, failures."""
import os
import socket
import unittest

from tests.e2e.netlab import BOOTD, Bootd, Lab, wait_until
from tests.e2e.test_pxe import CONFIGS, lab_yaml


class Dnsmasq(unittest.TestCase):
    def setUp(self):
        self.lab = Lab()
        self.addCleanup(self.lab.close)
        self.bootd = Bootd(self.lab, lab_yaml(), CONFIGS)

    def status(self):
        return self.bootd.api("/status")[1]["dnsmasq"]

    def test_reservations_are_reloaded_and_config_changes_restart_it(self):
        self.bootd.start()
        first = wait_until("dnsmasq to run", lambda: "running" in self.status() and self.status(), 20)
        reads = lambda: self.bootd.logs().count("dhcp: read ")  # noqa: E731
        wait_until("dnsmasq to read its reservations", lambda: reads() >= 1, 20)
        before = reads()
        # a new reservation: bootd rewrites hosts/lab and sends SIGHUP, same process
        with open(self.bootd.lab_path, "a") as f:
            f.write('  - {name: w-9, mac: "52:54:00:e2:e0:09", role: worker, ip: 192.0.2.29,'
                    ' config: w-1.yaml}\n')
        self.assertEqual(self.bootd.api_post("/reload")[0], 200)
        wait_until("dnsmasq to re-read its reservations", lambda: reads() > before, 20)
        self.assertEqual(self.status(), first, "a reservation change does not restart dnsmasq")
        with open(os.path.join(self.bootd.state, "dnsmasq", "hosts", "lab")) as f:
            self.assertIn("52:54:00:e2:e0:09,192.0.2.29,w-9", f.read())
        # a changed dnsmasq.conf (a new DNS record): a new dnsmasq process
        with open(self.bootd.lab_path) as f:
            text = f.read()
        with open(self.bootd.lab_path, "w") as f:
            f.write(text.replace("    - {name: grafana, ip: 192.0.2.220}\n",
                                 "    - {name: grafana, ip: 192.0.2.220}\n"
                                 "    - {name: hubble, ip: 192.0.2.221}\n"))
        self.assertEqual(self.bootd.api_post("/reload")[0], 200)
        second = wait_until("a new dnsmasq", lambda: (lambda s: "running" in s and s != first and s)(
            self.status()), 20)
        self.assertNotEqual(first, second)

    def test_dhcp_port_taken_is_reported_and_http_keeps_serving(self):
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        squatter.bind(("0.0.0.0", 67))
        self.addCleanup(squatter.close)
        self.bootd.start()
        why = wait_until("dnsmasq's failure", lambda: "exited" in self.status() and self.status(), 20)
        self.assertIn("failed to bind DHCP server socket: Address already in use", why)
        self.assertIn("restarting in", why)
        self.assertEqual(self.bootd.get("/healthz")[0], 200)
        self.assertEqual(self.bootd.get("/boot.ipxe")[0], 200)
        # once the port is free, the retry brings it up
        squatter.close()
        wait_until("dnsmasq to come back", lambda: "running" in self.status(), 90)

    def test_a_host_that_does_not_fit_the_lab_is_refused(self):
        with open(self.bootd.lab_path) as f:
            text = f.read()
        with open(self.bootd.lab_path, "w") as f:
            f.write(text.replace("interface: br0", "interface: br9"))
        p = self.lab.start([BOOTD, "--lab",
                            self.bootd.lab_path, "--state-dir", self.bootd.state], self.bootd.log)
        self.assertEqual(p.wait(20), 1)
        self.assertIn("lan.interface: this host has no interface br9", self.bootd.logs())


if __name__ == "__main__":
    unittest.main()
