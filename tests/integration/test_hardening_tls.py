"""The admin API over TLS on its own port, with a certificate bootd makes and bootctl
pins."""
import http.client
import os
import shutil
import ssl
import unittest

from tests.integration.harness import Bootd, free_port


class AdminTls(unittest.TestCase):
    def setUp(self):
        self.tls_port = free_port()
        self.b = Bootd().start("--admin-port", str(self.tls_port))
        self.url = "https://127.0.0.1:%d" % self.tls_port

    def tearDown(self):
        self.b.cleanup()

    def bootctl(self, *args, **env):
        e = {"BOOTD_URL": self.url}
        e.update(env)
        return self.b.bootctl(*args, env=e)

    def test_pinned_certificate(self):
        pin_path = os.path.join(self.b.state, "admin.pin")
        with open(pin_path) as f:
            pin = f.read().strip()
        self.assertTrue(pin.startswith("sha256//"), pin)
        self.assertIn("certificate pin " + pin, self.b.logs())
        r = self.bootctl("machines")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cp-1", r.stdout)

    def test_wrong_pin_is_refused_and_says_what_to_do(self):
        r = self.bootctl("machines", BOOTD_PIN="sha256//" + "A" * 43 + "=")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not the one pinned in BOOTD_PIN", r.stderr)
        self.assertIn("refusing to send the token", r.stderr)

    def test_no_pin(self):
        d = os.path.join(self.b.root, "elsewhere")
        os.makedirs(d)
        shutil.copy(os.path.join(self.b.state, "admin.token"), d)
        r = self.bootctl("machines", BOOTD_TOKEN_FILE=os.path.join(d, "admin.token"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no pin for its certificate", r.stderr)

    def test_tls_port_serves_the_admin_api_and_status_page_only(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", self.tls_port, context=ctx, timeout=5)
        c.request("GET", "/ipxe?mac=52-54-00-00-00-02")
        self.assertEqual(c.getresponse().status, 404)
        c.close()
        c = http.client.HTTPSConnection("127.0.0.1", self.tls_port, context=ctx, timeout=5)
        c.request("GET", "/api/v1/status", headers={"Authorization": "Bearer " + self.b.token()})
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        # the status page comes with the admin API: its calls go to the same port
        for path in ("/", "/index.html"):
            c = http.client.HTTPSConnection("127.0.0.1", self.tls_port, context=ctx, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            self.assertEqual(r.status, 200, path)
            self.assertIn(b"<html", r.read().lower())
            c.close()

    def test_certificate_kept_across_restarts(self):
        with open(os.path.join(self.b.state, "admin.pin")) as f:
            before = f.read()
        self.b.stop()
        self.b.start("--admin-port", str(self.tls_port))
        with open(os.path.join(self.b.state, "admin.pin")) as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(self.bootctl("machines").returncode, 0)


if __name__ == "__main__":
    unittest.main()
