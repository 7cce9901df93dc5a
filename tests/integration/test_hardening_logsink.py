"""The kernel-log sink holds against a hostile LAN: idle connections cannot lock machines
out, a host can only write its own log, and memory stays bounded."""
import json
import socket
import time
import unittest

from tests.integration.harness import Bootd, config_path, free_port, lab_text, wait_for
from tests.integration.hardening import SANITIZED, open_idle, rss_kib

W2, ATTACKER, ATTACKER_MAC = "52:54:00:00:00:03", "127.0.0.66", "02:00:00:00:00:66"


def send_lines(port, source, lines):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.sendall("".join(json.dumps({"msg": m}) + "\n" for m in lines).encode())
    return s


class Sink(unittest.TestCase):
    def setUp(self):
        self.log_port = free_port()
        b = Bootd()
        text = lab_text(b.port).replace("  http_port:", "  log_port: %d\n  http_port:"
                                        % self.log_port)
        b.write("lab.yaml", text)
        b.neighbours({"127.0.0.11": "52:54:00:00:00:01", "127.0.0.13": W2,
                      ATTACKER: ATTACKER_MAC})
        self.b = b.start()

    def tearDown(self):
        self.b.cleanup()

    def lines(self, name):
        status, j = self.b.api("GET", "/machines/%s/logs" % name)
        self.assertEqual(status, 200, j)
        return [l["msg"] for l in j["lines"]]

    def test_idle_connections_do_not_lock_machines_out(self):
        idle = []
        try:
            for i in range(300):  # 1200 sockets from 300 addresses
                idle += open_idle(self.log_port, 4, source="127.0.2.%d" % (i % 250 + 1)
                                  if i < 250 else "127.0.3.%d" % (i - 249))
            idle += open_idle(self.log_port, 50, source=ATTACKER)
            time.sleep(0.5)
            s = send_lines(self.log_port, "127.0.0.11", ["cp-1 is here"])
            got = wait_for(lambda: self.lines("cp-1"), lambda v: "cp-1 is here" in v, timeout=5)
            s.close()
            self.assertIn("cp-1 is here", got)
        finally:
            for s in idle:
                s.close()

    def test_a_host_writes_only_its_own_log(self):
        script = self.b.ipxe(W2, source="127.0.0.13")[2].decode()
        self.assertEqual(self.b.get(config_path(script), source="127.0.0.13")[0], 200)
        wait_for(lambda: self.b.api("GET", "/machines/w-2")[1]["state"],
                 lambda st: st == "config-served")
        self.b.ipxe(W2, source=ATTACKER)  # on a LAN anyone can ask
        s = send_lines(self.log_port, ATTACKER, ["forged: disk wiped"])
        time.sleep(1.5)
        s.close()
        self.assertNotIn("forged: disk wiped", self.lines("w-2"))
        self.assertEqual(self.b.api("GET", "/machines/w-2")[1]["state"], "config-served")
        # the machine itself
        s = send_lines(self.log_port, "127.0.0.13", ["[talos] installing"])
        got = wait_for(lambda: self.lines("w-2"), lambda v: "[talos] installing" in v)
        s.close()
        self.assertIn("[talos] installing", got)
        st = wait_for(lambda: self.b.api("GET", "/machines/w-2")[1]["state"],
                      lambda st: st == "installing")
        self.assertEqual(st, "installing")

    def test_rings_stay_bounded(self):
        line = "x" * 900
        before = rss_kib(self.b.proc.pid)
        deadline = time.monotonic() + 60
        for i in range(200):
            self.b.get("/ipxe?mac=02:00:00:01:%02x:%02x" % (i >> 8, i & 255), source=ATTACKER)
            s = send_lines(self.log_port, ATTACKER, [line] * 500)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)  # bootd closes once it has read everything
            s.close()
            if time.monotonic() > deadline:
                break
        time.sleep(0.5)
        grew = (rss_kib(self.b.proc.pid) - before) / 1024
        print("\nRSS after 200 x 500 lines of 900 bytes from one address: +%.1f MiB" % grew)
        if not SANITIZED:
            self.assertLess(grew, 24)


if __name__ == "__main__":
    unittest.main()
