"""The kernel-log sink on loopback: lines are credited to the machine they come from,
and only that machine moves from config-served to installing.

Two machines have a reserved address in lab.yaml (cp-1 127.0.0.11, w-1 127.0.0.12), one
has none (w-2: bootd knows its address from its boot). Planted bugs this catches: lines
credited to the first machine with a reservation (the address compare dropped in
attribute()), a machine without a reservation never found, a machine moved to installing
before its config was served, lines from an unknown address kept.
"""
import json
import socket
import time
import unittest

from tests.integration.harness import Bootd, config_path, free_port, lab_text, wait_for


def kernel_line(msg, seq):
    return json.dumps({"facility": "kern", "priority": "info", "seq": seq, "clock": seq,
                       "msg": msg}) + "\n"


class KernelLogSink(unittest.TestCase):
    def setUp(self):
        self.b = Bootd()
        self.log_port = free_port()
        text = lab_text(self.b.port).replace(
            "  http_port: %d\n" % self.b.port,
            "  http_port: %d\n  log_port: %d\n" % (self.b.port, self.log_port))
        self.b.write("lab.yaml", text)
        self.b.start()

    def tearDown(self):
        self.b.cleanup()

    def served(self, mac, source):
        """Boots a machine from source and downloads its config there."""
        status, _, body = self.b.ipxe(mac, source=source)
        self.assertEqual(status, 200)
        path = config_path(body.decode())
        self.assertEqual(self.b.get(path, source=source)[0], 200)

    def state(self, name):
        return self.b.api("GET", "/machines/" + name)[1]["state"]

    def logs(self, name):
        status, j = self.b.api("GET", "/machines/%s/logs" % name)
        self.assertEqual(status, 200, j)
        return [line["msg"] for line in j["lines"]]

    def send(self, source, *msgs):
        with socket.create_connection(("127.0.0.1", self.log_port), timeout=5,
                                      source_address=(source, 0)) as s:
            s.sendall("".join(kernel_line(m, i) for i, m in enumerate(msgs, 1)).encode())

    def test_lines_land_on_the_right_machine(self):
        self.served("52-54-00-00-00-01", "127.0.0.11")   # cp-1, reserved
        self.served("52-54-00-00-00-02", "127.0.0.12")   # w-1, reserved
        self.served("52-54-00-00-00-03", "127.0.0.13")   # w-2, no reservation
        for name in ("cp-1", "w-1", "w-2"):
            self.assertEqual(wait_for(lambda: self.state(name), lambda s: s == "config-served"),
                             "config-served", name)

        # w-1 (the second reserved machine) talks; cp-1 and w-2 stay silent
        self.send("127.0.0.12", "[talos] w-1 line one", "[talos] w-1 line two")
        self.assertEqual(wait_for(lambda: self.logs("w-1"), lambda v: len(v) == 2),
                         ["[talos] w-1 line one", "[talos] w-1 line two"])
        self.assertEqual(wait_for(lambda: self.state("w-1"), lambda s: s == "installing"),
                         "installing")
        self.assertEqual(self.logs("cp-1"), [])
        self.assertEqual(self.logs("w-2"), [])
        self.assertEqual(self.state("cp-1"), "config-served")
        self.assertEqual(self.state("w-2"), "config-served")

        # w-2 has no reservation: found by the address it booted from
        self.send("127.0.0.13", "[talos] w-2 here")
        self.assertEqual(wait_for(lambda: self.logs("w-2"), lambda v: len(v) == 1),
                         ["[talos] w-2 here"])
        self.assertEqual(wait_for(lambda: self.state("w-2"), lambda s: s == "installing"),
                         "installing")

        # an address no machine has: its lines go nowhere
        self.send("127.0.0.77", "[talos] stranger")
        time.sleep(0.3)
        self.assertEqual(self.logs("cp-1"), [])
        self.assertEqual(self.logs("w-1"), ["[talos] w-1 line one", "[talos] w-1 line two"])
        self.assertEqual(self.logs("w-2"), ["[talos] w-2 here"])
        self.assertEqual(self.state("cp-1"), "config-served")
        kinds = [e["kind"] for e in self.b.events("cp-1")]
        self.assertNotIn("installing", kinds)

    def test_no_move_before_the_config_was_served(self):
        status, _, _ = self.b.ipxe("52-54-00-00-00-02", source="127.0.0.12")  # booting only
        self.assertEqual(status, 200)
        self.send("127.0.0.12", "[talos] early line")
        self.assertEqual(wait_for(lambda: self.logs("w-1"), lambda v: len(v) == 1),
                         ["[talos] early line"])
        time.sleep(0.2)
        self.assertEqual(self.state("w-1"), "booting")


if __name__ == "__main__":
    unittest.main()
