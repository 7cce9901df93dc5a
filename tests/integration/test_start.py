"""make start on any machine: bootd on loopback, and a banner only when it is true."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest
import urllib.request

from tests.integration import harness

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class MakeStart(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bootd-start-")
        self.port = harness.free_port()
        self.env = dict(os.environ, PORT=str(self.port), STATE_DIR=os.path.join(self.dir, "s"))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        self.out = open(os.path.join(self.dir, "out"), "w+")
        return subprocess.Popen(["scripts/start.sh", os.path.abspath(harness.BUILD)], cwd=REPO,
                                env=self.env, stdout=self.out, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def output(self):
        self.out.seek(0)
        return self.out.read()

    def test_runs_on_loopback_and_says_so(self):
        p = self.start()
        try:
            harness.wait_for(self.output, lambda o: "is up on" in o or p.poll() is not None,
                             timeout=60)
            out = self.output()
            self.assertIn("is up on http://127.0.0.1:%d" % self.port, out)
            url = "http://127.0.0.1:%d" % self.port
            with urllib.request.urlopen(url + "/boot.ipxe", timeout=5) as r:
                self.assertIn(b"#!ipxe", r.read())
            with urllib.request.urlopen(url + "/", timeout=5) as r:
                self.assertIn(b"<title>bootd</title>", r.read())
            # the commands the banner prints work as printed
            token = os.path.join(self.env["STATE_DIR"], "state", "admin.token")
            self.assertIn("BOOTD_TOKEN_FILE=%s" % token, out)
            r = subprocess.run([harness.BOOTCTL, "machines"], capture_output=True, text=True,
                               env=dict(os.environ, BOOTD_URL=url, BOOTD_TOKEN_FILE=token))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("cp-1", r.stdout)
            # nothing but loopback
            with self.assertRaises(OSError):
                socket.create_connection((self.other_address(), self.port), timeout=1).close()
            # Ctrl-C: the process group, as a terminal sends it
            os.killpg(p.pid, signal.SIGINT)
            self.assertEqual(p.wait(15), 0)
            self.assertIn("bootd stopped", self.output())
            with self.assertRaises(OSError):
                urllib.request.urlopen(url + "/healthz", timeout=2)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            self.out.close()

    def other_address(self):
        """An address of this machine that is not loopback, or skip."""
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            addr = line.split()[3].split("/")[0]
            if not addr.startswith("127."):
                return addr
        self.skipTest("no address but loopback here")

    def test_a_port_in_use_fails_without_a_banner(self):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen()
            p = self.start()
            # the listener answers nothing: bootd cannot start behind it
            self.assertNotEqual(p.wait(60), 0)
        out = self.output()
        self.assertNotIn("is up on", out)
        self.assertRegex(out, r"already answers|did not start")
        self.out.close()


if __name__ == "__main__":
    unittest.main()
