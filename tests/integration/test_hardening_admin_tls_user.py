"""The admin API over TLS with the user's own certificate and key (--admin-tls-cert,
--admin-tls-key): served and pinned when they are right, refused at start with the file
named when they are not; and the admin token is never sent in clear text to another host
by bootctl unless the user says so.

Planted bugs this catches (each checked by planting it, watching a test here fail, and
reverting):
- the key's match with the certificate not checked: bootd starts, and TLS fails later;
- the key's mode not checked (a 0644 key accepted);
- bootctl sending the token over http:// to an address that is not this host's;
- bootd answering the admin API in clear text to another host by default.
"""
import base64
import hashlib
import os
import shutil
import ssl
import subprocess
import time
import unittest

from tests.integration.harness import BOOTCTL, BOOTD, Bootd, free_port
from tests.integration.test_hardening_netns import LAB, sh


def openssl(*args, **kw):
    return subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=30, **kw)


def make_pair(d, name):
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-subj", "/CN=bootd.lab.example", "-days", "30",
            "-addext", "subjectAltName=IP:127.0.0.1")
    os.chmod(key, 0o600)
    return cert, key


def pin_of(cert):
    pub = openssl("x509", "-in", cert, "-pubkey", "-noout").stdout
    der = openssl("pkey", "-pubin", "-outform", "DER", input=pub).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


class UserCertificate(unittest.TestCase):
    def setUp(self):
        self.b = Bootd()
        self.addCleanup(self.b.cleanup)
        self.d = os.path.join(self.b.root, "tls")
        os.makedirs(self.d)
        self.cert, self.key = make_pair(self.d, "admin")
        self.tls_port = free_port()

    def start_fails(self, *args):
        """bootd must refuse to start; returns what it said."""
        self.b.start("--admin-port", str(self.tls_port), *args, wait=False)
        try:
            self.b.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("bootd did not refuse to start:\n" + self.b.logs())
        self.assertEqual(self.b.proc.returncode, 1, self.b.logs())
        return self.b.logs()

    def test_served_and_pinned(self):
        self.b.start("--admin-port", str(self.tls_port), "--admin-tls-cert", self.cert,
                     "--admin-tls-key", self.key)
        served = ssl.get_server_certificate(("127.0.0.1", self.tls_port), timeout=5)
        with open(self.cert) as f:
            self.assertEqual(ssl.PEM_cert_to_DER_cert(served), ssl.PEM_cert_to_DER_cert(f.read()))
        with open(os.path.join(self.b.state, "admin.pin")) as f:
            self.assertEqual(f.read().strip(), pin_of(self.cert))
        self.assertFalse(os.path.exists(os.path.join(self.b.state, "admin-tls.key")),
                         "bootd made no key of its own")
        r = self.b.bootctl("machines", env={"BOOTD_URL": "https://127.0.0.1:%d" % self.tls_port})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cp-1", r.stdout)

    def test_a_key_that_is_not_the_certificates(self):
        _, other_key = make_pair(self.d, "other")
        out = self.start_fails("--admin-tls-cert", self.cert, "--admin-tls-key", other_key)
        self.assertIn("--admin-tls-key %s is not the key of --admin-tls-cert %s"
                      % (other_key, self.cert), out)

    def test_a_key_others_can_read(self):
        os.chmod(self.key, 0o644)
        out = self.start_fails("--admin-tls-cert", self.cert, "--admin-tls-key", self.key)
        self.assertIn("--admin-tls-key: %s: readable by group or others" % self.key, out)
        self.assertIn("chmod 600 " + self.key, out)

    def test_a_missing_certificate(self):
        missing = os.path.join(self.d, "nope.crt")
        out = self.start_fails("--admin-tls-cert", missing, "--admin-tls-key", self.key)
        self.assertIn("--admin-tls-cert: %s: No such file" % missing, out)

    def test_not_pem(self):
        with open(os.path.join(self.d, "junk.crt"), "w") as f:
            f.write("not a certificate\n")
        out = self.start_fails("--admin-tls-cert", f.name, "--admin-tls-key", self.key)
        self.assertIn("--admin-tls-cert %s: not a PEM certificate" % f.name, out)

    def test_an_encrypted_key_is_refused_not_asked_for(self):
        enc = os.path.join(self.d, "enc.key")
        openssl("pkey", "-in", self.key, "-out", enc, "-aes256", "-passout", "pass:secret")
        os.chmod(enc, 0o600)
        t = time.monotonic()
        out = self.start_fails("--admin-tls-cert", self.cert, "--admin-tls-key", enc)
        self.assertIn("--admin-tls-key %s: not an unencrypted PEM private key" % enc, out)
        self.assertLess(time.monotonic() - t, 10, "no passphrase prompt")

    def test_the_flags_go_together(self):
        self.b.start("--admin-tls-cert", self.cert, wait=False)
        self.b.proc.wait(15)
        self.assertEqual(self.b.proc.returncode, 1)
        self.assertIn("--admin-tls-cert and --admin-tls-key go together, with --admin-port",
                      self.b.logs())


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip") and shutil.which("unshare"),
                     "needs root, ip(8) and unshare(1)")
class PlainTokenStaysHome(unittest.TestCase):
    """Neither side lets the token cross the LAN in clear text by default: bootd in one
    network namespace, a client host in another over a veth pair (198.51.100.0/24)."""

    def setUp(self):
        tag = "%d" % os.getpid()
        self.ns = {k: "bd14p%s-%s" % (k, tag) for k in ("srv", "c")}
        for n in self.ns.values():
            sh("ip", "netns", "add", n)
        self.addCleanup(lambda: [sh("ip", "netns", "del", n, check=False)
                                 for n in self.ns.values()])
        a, c = "bd14pa" + tag[-5:], "bd14pc" + tag[-5:]
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", c)
        sh("ip", "link", "set", a, "netns", self.ns["srv"])
        sh("ip", "link", "set", c, "netns", self.ns["c"])
        for ns, dev, addr in (("srv", a, "198.51.100.1"), ("c", c, "198.51.100.2")):
            sh("ip", "-n", self.ns[ns], "addr", "add", addr + "/24", "dev", dev)
            sh("ip", "-n", self.ns[ns], "link", "set", dev, "up")
            sh("ip", "-n", self.ns[ns], "link", "set", "lo", "up")
        self.b = Bootd(lab="")
        self.b.write("lab.yaml", LAB % {"dev": a, "port": self.b.port})
        self.addCleanup(self.b.cleanup)
        self.url = "http://198.51.100.1:%d" % self.b.port

    def start(self, *args):
        self.b.log = open(self.b.log_path, "ab")
        self.b.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns["srv"], BOOTD, "--lab", self.b.lab_path,
             "--state-dir", self.b.state, "--listen", "198.51.100.1", "--threads", "2", *args],
            stdout=self.b.log, stderr=self.b.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            err = self.bootctl("c", "status", BOOTD_INSECURE_PLAIN="1").stderr
            if "cannot reach" not in err and "admin token (" not in err:
                return  # an answer, whatever it said
            time.sleep(0.1)
        self.fail("bootd did not come up:\n" + self.b.logs())

    def bootctl(self, ns, *args, **env):
        e = dict(os.environ, BOOTD_URL=self.url, HOME=self.b.root,
                 BOOTD_TOKEN_FILE=os.path.join(self.b.state, "admin.token"))
        e.update(env)
        self.last = subprocess.run(["ip", "netns", "exec", self.ns[ns], BOOTCTL, *args],
                                   capture_output=True, text=True, env=e, timeout=30)
        return self.last

    def test_bootd_answers_only_this_host_in_clear_text(self):
        self.start()
        r = self.bootctl("c", "machines", BOOTD_INSECURE_PLAIN="1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("the admin API is served in clear text to this host only", r.stderr)
        self.assertIn("--admin-port", r.stderr)
        # bootctl on bootd's own host, at bootd's LAN address: fine
        r = self.bootctl("srv", "machines")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cp-1", r.stdout)

    def test_bootd_answers_the_lan_in_clear_text_when_told(self):
        self.start("--admin-plain-lan")
        self.assertIn("--admin-plain-lan: the admin API answers the LAN in clear text",
                      self.b.logs())
        r = self.bootctl("c", "machines", BOOTD_INSECURE_PLAIN="1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cp-1", r.stdout)

    def test_bootctl_sends_no_token_in_clear_text_to_another_host(self):
        self.start("--admin-plain-lan")
        r = self.bootctl("c", "machines")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("the admin token would cross the LAN in clear text", r.stderr)
        self.assertIn("BOOTD_INSECURE_PLAIN=1", r.stderr)
        self.assertNotIn("refused the admin token", r.stderr)
        self.assertNotIn("cp-1", r.stdout)

    def test_this_host_is_fine(self):
        # no bootd: loopback names are this host, so bootctl tries (and finds nothing)
        for url in ("http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"):
            with self.subTest(url=url):
                r = self.bootctl("c", "machines", BOOTD_URL=url, BOOTD_TOKEN="t" * 32)
                self.assertIn("cannot reach bootd", r.stderr)


if __name__ == "__main__":
    unittest.main()
