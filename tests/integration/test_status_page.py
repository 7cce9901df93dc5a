"""The status page: its files, /api/v1/overview and the /api/v1/watch long-poll, and the
page itself in headless Chromium (tests/ui/status_page.mjs)."""
import http.client
import json
import os
import socket
import subprocess
import threading
import time
import unittest

from tests.integration import uitools
from tests.integration.harness import Bootd, config_path, free_port, lab_text, wait_for
from tests.integration.harness import read


def harness_read(path):
    return read(path, "rb")

REPO = uitools.ROOT
MACS = ("52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03")


class StatusPageBootd(Bootd):
    """The test lab with a kernel-log sink."""

    def __init__(self):
        self.log_port = free_port()
        port = free_port()
        text = lab_text(port).replace("  http_port: %d\n" % port,
                                      "  http_port: %d\n  log_port: %d\n" % (port, self.log_port))
        super().__init__(lab=text)
        self.port = port

    def settled(self):
        """The overview once bootd's first looks (the reconciler's phase) are done."""
        last = None
        for _ in range(50):
            _, j = self.api("GET", "/overview")
            if last and j["version"] == last["version"]:
                return j
            last = j
            time.sleep(0.3)
        raise AssertionError("the overview keeps changing on an idle lab")

    def watch(self, since, timeout=40):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", "/api/v1/watch?since=" + since,
                      headers={"Authorization": "Bearer " + self.token()})
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()


class StatusPageRoutes(unittest.TestCase):
    def setUp(self):
        self.b = StatusPageBootd().start()

    def tearDown(self):
        self.b.cleanup()

    def test_page_carries_no_lab_data_and_a_strict_policy(self):
        status, hdrs, body = self.b.get("/")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        csp = hdrs["content-security-policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(hdrs["x-content-type-options"], "nosniff")
        page = body.decode()
        for secret in ("cp-1", "w-1") + MACS + (self.b.token(),):
            self.assertNotIn(secret, page)
        # the script and style are bootd's own files, from memory
        for path, ctype in (("/ui/app.js", "text/javascript"), ("/ui/style.css", "text/css"),
                            ("/ui/favicon.svg", "image/svg+xml")):
            status, hdrs, body = self.b.get(path)
            self.assertEqual(status, 200, path)
            self.assertTrue(hdrs["content-type"].startswith(ctype), path)
            self.assertEqual(body, harness_read(os.path.join(REPO, "server/ui", path[4:])))
        self.assertEqual(self.b.get("/ui/missing.js")[0], 404)
        self.assertEqual(self.b.get("/ui/")[0], 404)
        self.assertEqual(self.b.request("POST", "/")[0], 405)

    def test_overview_needs_the_token(self):
        status, j = self.b.api("GET", "/overview", token="wrong-token-000000000000")
        self.assertEqual(status, 401)
        self.assertNotIn("machines", j)
        status, j = self.b.api("GET", "/overview")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(m["name"] for m in j["machines"]), ["cp-1", "w-1", "w-2"])
        self.assertEqual(j["status"]["cluster"], "it")
        self.assertIsNone(j["gitops"])
        self.assertRegex(j["version"], "^[0-9a-f]{16}$")
        status, _ = self.b.api("GET", "/watch?since=" + j["version"], token="nope-000000000000000")
        self.assertEqual(status, 401)

    def test_watch_answers_a_change_within_two_seconds(self):
        j = self.b.settled()
        v = j["version"]
        # without since, or with an old version: at once
        t = time.monotonic()
        status, w = self.b.api("GET", "/watch")
        self.assertEqual((status, w["version"]), (200, v))
        status, w = self.b.api("GET", "/watch?since=0000000000000000")
        self.assertEqual((status, w["version"]), (200, v))
        self.assertLess(time.monotonic() - t, 1.5)
        self.assertEqual(self.b.api("GET", "/watch?since=xyz")[0], 400)

        got = {}

        def waiter():
            got["answer"] = self.b.watch(v)
            got["at"] = time.monotonic()

        th = threading.Thread(target=waiter)
        th.start()
        time.sleep(1.0)
        self.assertNotIn("answer", got, "a watch with the current version waits")
        t0 = time.monotonic()
        status, _, _ = self.b.ipxe(MACS[2], source="127.0.0.13")  # w-2 as itself
        self.assertEqual(status, 200)
        th.join(10)
        self.assertEqual(got["answer"][0], 200)
        self.assertNotEqual(got["answer"][1]["version"], v)
        self.assertLess(got["at"] - t0, 2.0)
        # One boot can be more than one write (its event, then its state from the boot
        # queue): the page may be woken by the first and read the overview before the
        # second, and the second wakes it again. What it reads in the end is the boot.
        state = lambda j: {m["name"]: m["state"] for m in j["machines"]}["w-2"]  # noqa: E731
        j = wait_for(lambda: self.b.api("GET", "/overview")[1], lambda j: state(j) == "booting", 5)
        self.assertEqual(state(j), "booting")

    def test_kernel_log_lines_change_the_version(self):
        _, j = self.b.api("GET", "/overview")
        with socket.create_connection(("127.0.0.1", self.b.log_port),
                                      source_address=("127.0.0.11", 0)) as s:
            s.sendall(b'{"msg": "[talos] hello"}\n')
        v2 = wait_for(lambda: self.b.api("GET", "/overview")[1]["version"],
                      lambda v: v != j["version"])
        self.assertNotEqual(v2, j["version"])

    def test_stop_with_open_watches(self):
        j = self.b.settled()
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(self.b.watch(j["version"])))
                   for _ in range(3)]
        for th in threads:
            th.start()
        time.sleep(0.8)
        t = time.monotonic()
        self.b.stop()
        self.assertEqual(self.b.proc.returncode, 0, self.b.logs())
        self.assertLess(time.monotonic() - t, 5)
        for th in threads:
            th.join(10)
        self.assertEqual([a[0] for a in answers], [200, 200, 200])


class EarliestRequests(unittest.TestCase):
    """The page asks for the overview the moment bootd answers: nothing it reads may still
    be starting (the reconciler, the kernel-log sink)."""

    def test_status_from_the_first_answer_on(self):
        for _ in range(12):
            b = StatusPageBootd()
            try:
                b.start(wait=False)
                token = None
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        token = token or b.token()
                        status, j = b.api("GET", "/overview", token=token)
                        break
                    except (OSError, ValueError):
                        time.sleep(0.001)
                self.assertEqual(status, 200)
                self.assertIn("cluster_state", j["status"])
                self.assertIsNone(b.proc.poll(), b.logs())
            finally:
                b.cleanup()


class StatusPageBrowser(unittest.TestCase):
    """The page in Debian's Chromium; screenshots land in build/ui-screenshots/ (copied to
    docs/img/ when the page changes)."""

    def test_in_chromium(self):
        why = uitools.missing()
        if why:
            self.fail(why)
        modules = uitools.node_modules()
        b = StatusPageBootd().start()
        out = os.path.join(REPO, "build", "ui-screenshots")
        os.makedirs(out, exist_ok=True)
        try:
            # a lab in motion: cp-1 has its config, an unknown machine waits, w-2 never booted
            status, _, body = b.ipxe(MACS[0], source="127.0.0.11",
                                     uuid="4c4c4544-0000-1000-8000-000000000001")
            self.assertEqual(status, 200)
            self.assertEqual(b.get(config_path(body.decode()), source="127.0.0.11")[0], 200)
            self.assertEqual(b.ipxe("52:54:00:aa:bb:cc", source="127.0.0.99")[0], 200)
            env = dict(os.environ, NODE_PATH=modules, BOOTD_URL="http://127.0.0.1:%d" % b.port,
                       BOOTD_TOKEN=b.token(), BOOTD_LOG_PORT=str(b.log_port),
                       BOOT_MAC=MACS[1], BOOT_SOURCE="127.0.0.12",
                       LOG_MAC=MACS[0], LOG_SOURCE="127.0.0.11", OUT_DIR=out,
                       CHROMIUM=uitools.CHROMIUM,
                       SECRET_TEXTS=json.dumps(["cp-1", "w-1", "52:54:00:00:00:01", "52:54:00:aa:bb:cc"]))
            r = subprocess.run(["node", os.path.join(REPO, "tests", "ui", "status_page.mjs")],
                               capture_output=True, text=True, env=env, timeout=180)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\nbootd:\n" + b.logs()[-3000:])
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print("\n  status page: %s" % res)
            self.assertLess(res["state_change_ms"], 2000)
            self.assertLess(res["kernel_log_ms"], 2000)
            for name in ("status-desktop.png", "status-phone.png"):
                self.assertGreater(os.path.getsize(os.path.join(out, name)), 10000)
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
