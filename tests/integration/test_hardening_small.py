"""Smaller hardening points: a NUL in the request target, weak admin tokens, a readable
secrets bundle in bootctl validate."""
import os
import socket
import subprocess
import unittest

from tests.integration.harness import BOOTCTL, Bootd


class Small(unittest.TestCase):
    def test_nul_in_request_target(self):
        b = Bootd().start()
        try:
            for target in (b"/healthz\x00/../lab.yaml", b"/ipxe?mac=52-54-00-00-00-02\x00&a=1"):
                s = socket.create_connection(("127.0.0.1", b.port), timeout=5,
                                             source_address=("127.0.0.12", 0))
                s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"), target)
                s.close()
            self.assertEqual(b.get("/healthz")[0], 200)
        finally:
            b.cleanup()

    def test_weak_admin_token_refused(self):
        for weak in ("0123456789abcdef", "ab" * 20):
            b = Bootd()
            try:
                path = b.write("token", weak + "\n", mode=0o600)
                b.start("--admin-token-file", path, wait=False)
                self.assertEqual(b.proc.wait(10), 1, weak)
                self.assertIn("admin token too weak", b.logs())
            finally:
                b.cleanup()

    def test_validate_refuses_a_readable_secrets_bundle(self):
        b = Bootd()
        try:
            r = subprocess.run([BOOTCTL, "gen", "secrets", b.lab_path], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            secrets = os.path.join(b.labdir, "secrets.yaml")
            ok = subprocess.run([BOOTCTL, "validate", b.lab_path], capture_output=True, text=True)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            os.chmod(secrets, 0o644)
            bad = subprocess.run([BOOTCTL, "validate", b.lab_path], capture_output=True, text=True)
            self.assertEqual(bad.returncode, 1, bad.stdout)
            self.assertIn("chmod 600 " + secrets, bad.stderr)
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
