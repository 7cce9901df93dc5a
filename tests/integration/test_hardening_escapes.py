"""What a machine sends reaches the admin's terminal with its control characters escaped."""
import json
import socket
import unittest

from tests.integration.harness import Bootd, config_path, free_port, lab_text, wait_for

EVIL = "boot \x1b]0;owned\x07\x1b[2Jdone \u009b31m\\"


class Escapes(unittest.TestCase):
    def setUp(self):
        self.log_port = free_port()
        b = Bootd()
        b.write("lab.yaml", lab_text(b.port).replace(
            "  http_port:", "  log_port: %d\n  http_port:" % self.log_port))
        self.b = b.start()

    def tearDown(self):
        self.b.cleanup()

    def test_kernel_log_and_events_are_escaped(self):
        script = self.b.ipxe("52-54-00-00-00-01", source="127.0.0.11")[2].decode()
        self.assertEqual(self.b.get(config_path(script), source="127.0.0.11")[0], 200)
        wait_for(lambda: self.b.api("GET", "/machines/cp-1")[1]["state"],
                 lambda s: s == "config-served")
        s = socket.create_connection(("127.0.0.1", self.log_port), timeout=5,
                                     source_address=("127.0.0.11", 0))
        s.sendall((json.dumps({"msg": EVIL}) + "\n").encode())
        wait_for(lambda: self.b.api("GET", "/machines/cp-1/logs")[1]["lines"], len)
        wait_for(lambda: self.b.api("GET", "/machines/cp-1")[1]["state"],
                 lambda st: st == "installing")
        s.close()
        for args in (("logs", "cp-1"), ("events", "cp-1")):
            r = self.b.bootctl(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
            for c in ("\x1b", "\x07", "\u009b"):
                self.assertNotIn(c, r.stdout, args)
            self.assertIn("boot \\x1b]0;owned\\x07\\x1b[2Jdone \\u009b31m\\\\", r.stdout, args)


if __name__ == "__main__":
    unittest.main()
