"""bootctl and bootd as a new user meets them: global options anywhere, one duration
syntax, gitops sync --wait, empty views that say so, machines never powered on, no
"(null)" in any view, read-only commands that create nothing, --version, the --port
warning, and dnsmasq stopping with bootd."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.integration import harness
from tests.integration.gitops_env import GitopsLab, deployment, yaml_doc
from tests.integration.harness import Bootd, config_path, lab_text

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VERSION = harness.read(os.path.join(REPO, "VERSION")).strip()


class CliEdges(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Bootd().start()

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def run_ctl(self, *args, env=None):
        r = self.b.bootctl(*args, env=env)
        for stream in (r.stdout, r.stderr):
            self.assertNotIn("(null)", stream, args)
        return r

    def test_global_options_anywhere(self):
        for args in (("-o", "json", "machines"), ("machines", "-o", "json"),
                     ("machines", "--output=json"), ("machines", "list", "-ojson"),
                     ("--output", "json", "machines", "list")):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            self.assertEqual(sorted(m["name"] for m in json.loads(r.stdout)["machines"]),
                             ["cp-1", "w-1", "w-2"], args)
        # --url and --token-file after the command, with nothing in the environment
        url = "http://127.0.0.1:%d" % self.b.port
        token = os.path.join(self.b.state, "admin.token")
        env = {"BOOTD_URL": "", "BOOTD_TOKEN_FILE": "", "BOOTCTL_CONFIG": "/nonexistent"}
        r = self.run_ctl("status", "--url", url, "--token-file=" + token, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cluster   it", r.stdout)
        # a command's own -o (an output file) stays the command's
        out = tempfile.mkdtemp(prefix="bootctl-o-")
        try:
            r = self.run_ctl("gen", "config", self.b.lab_path, "--machine", "cp-1", "-o",
                             os.path.join(out, "cp-1.yaml"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.exists(os.path.join(out, "cp-1.yaml")))
        finally:
            shutil.rmtree(out)
        # "--" ends the search for global options
        self.assertEqual(self.run_ctl("machines", "--", "-o").returncode, 2)

    def test_one_duration_syntax_for_every_timeout(self):
        for args in (("bootstrap", "--timeout", "5x"), ("bootstrap", "--timeout=0"),
                     ("gitops", "sync", "--timeout", "soon"), ("gitops", "sync", "--timeout=5x")):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("is not a duration (30, 30s, 5m, 2h or 1d)", r.stderr, args)
        # accepted: the lab has no gitops section, which is what comes back (not usage)
        for args in (("gitops", "sync", "--wait", "--timeout", "5s"),
                     ("gitops", "sync", "--timeout=5s", "--wait"), ("gitops", "sync", "--timeout", "30")):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertIn("no gitops section", r.stderr)

    def test_empty_logs_and_events_say_so(self):
        r = self.run_ctl("logs", "w-2")
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        self.assertIn("no kernel log from w-2 yet", r.stderr)
        r = self.run_ctl("events")
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        self.assertIn("no events about unknown machines or tokens", r.stderr)

    def test_status_groups_machines_never_powered_on(self):
        r = self.run_ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("never powered on (", r.stdout)
        line = next(l for l in r.stdout.splitlines() if l.startswith("never powered on"))
        self.assertIn("w-2", line)
        # no Talos API column for them
        self.assertIsNone(re.search(r"^w-2\s", r.stdout, re.M), r.stdout)

    def test_status_after_a_boot(self):
        status, _, body = self.b.ipxe("52:54:00:00:00:01", source="127.0.0.11",
                                      uuid="4c4c4544-0000-1000-8000-000000000001")
        self.assertEqual(status, 200)
        r = self.run_ctl("status")
        self.assertRegex(r.stdout, r"(?m)^cp-1\s+controlplane\s+booting")
        line = next(l for l in r.stdout.splitlines() if l.startswith("never powered on"))
        self.assertNotIn("cp-1", line)

    def test_no_null_in_any_view(self):
        self.b.ipxe("52:54:00:aa:bb:cc", source="127.0.0.99")  # a discovered machine
        for args in (("status",), ("machines",), ("machines", "show", "w-2"),
                     ("machines", "show", "52:54:00:aa:bb:cc"), ("events",), ("events", "w-1"),
                     ("logs", "cp-1"), ("reload",), ("gitops",), ("gitops", "status"),
                     ("image", "list", "--lab", self.b.lab_path, "--state-dir", self.b.state)):
            self.run_ctl(*args)
            self.run_ctl("-o", "json", *args)

    def test_firmware_and_cpu_arch_apart(self):
        # firmware PXE's DHCP says BIOS (option 93); then iPXE says pcbios and x86_64
        status, _ = self.b.api("POST", "/dhcp/events", {"action": "add", "mac": "52:54:00:00:00:02",
                                                        "ip": "127.0.0.12", "tags": "known bios lo"})
        self.assertEqual(status, 200)
        m = self.b.api("GET", "/machines/w-1")[1]
        self.assertEqual((m["firmware"], m["arch"]), ("bios", None))
        self.b.ipxe("52:54:00:00:00:02", source="127.0.0.12", arch="x86_64", platform="pcbios")
        self.b.api("POST", "/dhcp/events", {"action": "old", "mac": "52:54:00:00:00:02",
                                            "ip": "127.0.0.12", "tags": "known bios lo"})
        m = self.b.api("GET", "/machines/w-1")[1]
        self.assertEqual((m["firmware"], m["arch"]), ("bios", "x86_64"))
        r = self.run_ctl("machines", "show", "w-1")
        self.assertRegex(r.stdout, r"(?m)^firmware\s+bios$")
        self.assertRegex(r.stdout, r"(?m)^arch\s+x86_64$")
        r = self.run_ctl("machines")
        self.assertRegex(r.stdout, r"(?m)^w-1\s.*\sbios\s+x86_64\s")
        # UEFI
        self.b.ipxe("52:54:00:00:00:01", source="127.0.0.11", arch="x86_64", platform="efi",
                    uuid="4c4c4544-0000-1000-8000-000000000001")
        m = self.b.api("GET", "/machines/cp-1")[1]
        self.assertEqual((m["firmware"], m["arch"]), ("uefi", "x86_64"))

    def test_versions(self):
        r = self.run_ctl("--version")
        self.assertEqual((r.returncode, r.stdout), (0, "bootctl %s\n" % VERSION))
        r = subprocess.run([harness.BOOTD, "--version"], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout), (0, "bootd %s\n" % VERSION))


class ImageListCreatesNothing(unittest.TestCase):
    def test_list_and_gc_leave_no_state_dir(self):
        root = tempfile.mkdtemp(prefix="bootctl-img-")
        try:
            lab = os.path.join(root, "lab.yaml")
            with open(lab, "w") as f:
                f.write(lab_text(8080))
            for name, text in (("cp.yaml", harness.CP_CONFIG), ("worker.yaml", harness.WORKER_CONFIG)):
                with open(os.path.join(root, name), "w") as f:
                    f.write(text)
            state = os.path.join(root, "state")
            for sub in (("list",), ("gc", "--dry-run"), ("gc",)):
                r = subprocess.run([harness.BOOTCTL, "image", *sub, "--lab", lab, "--state-dir", state],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertFalse(os.path.exists(state), sub)
            self.assertIn("no image cache at", r.stdout)
            # without --state-dir: the default is looked at, never made
            existed = os.path.exists("/var/lib/bootd")
            r = subprocess.run([harness.BOOTCTL, "image", "list", "--lab", lab],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(os.path.exists("/var/lib/bootd"), existed)
        finally:
            shutil.rmtree(root)


class HeldForItsImage(unittest.TestCase):
    def test_held_machine_shows_as_held_and_gets_no_token(self):
        b = Bootd(images=False).start()
        try:
            status, _, body = b.ipxe("52:54:00:00:00:02", source="127.0.0.12")
            self.assertEqual(status, 200)
            self.assertIsNone(config_path(body.decode()), "a hold script carries no config URL")
            m = {x["name"]: x for x in b.api("GET", "/machines")[1]["machines"]}["w-1"]
            self.assertEqual(m["state"], "held")
            held = [e for e in b.events("w-1") if e["kind"] == "held"]
            self.assertEqual(len(held), 1)
            self.assertIn("image is not in the cache yet", held[0]["message"])
            self.assertNotIn("booting", [e["kind"] for e in b.events("w-1")])
            # asking again does not repeat the event
            b.ipxe("52:54:00:00:00:02", source="127.0.0.12")
            self.assertEqual(len([e for e in b.events("w-1") if e["kind"] == "held"]), 1)
            r = b.bootctl("machines")
            self.assertRegex(r.stdout, r"(?m)^w-1\s.*\sheld\s")
            # the image lands: the next boot is a real one
            harness.seed_images(os.path.join(b.state, "images"))
            b.api("POST", "/images/refresh")
            status, _, body = b.ipxe("52:54:00:00:00:02", source="127.0.0.12")
            self.assertIsNotNone(config_path(body.decode()))
            m = {x["name"]: x for x in b.api("GET", "/machines")[1]["machines"]}["w-1"]
            self.assertEqual(m["state"], "booting")
        finally:
            b.cleanup()


class BootdEdges(unittest.TestCase):
    def test_port_other_than_http_port_warns(self):
        b = Bootd()
        try:
            b.start()
            self.assertNotIn("lan.http_port", b.logs())
            b.stop()
            other = harness.free_port()
            b.port = other
            b.start()
            self.assertIn("listening on port %d, but every URL handed to machines says "
                          "lan.http_port" % other, b.logs())
            # and what machines get says so too: the lab's port, not the one bound
            status, _, body = b.get("/boot.ipxe")
            self.assertEqual(status, 200)
            self.assertNotIn(":%d/" % other, body.decode())
        finally:
            b.cleanup()

    def start_with_standin_dnsmasq(self):
        b = Bootd(lab=lab_text(0).replace("dnsmasq: false", "dnsmasq: true"))
        b.write("lab.yaml", harness.read(b.lab_path).replace("http_port: 0", "http_port: %d" % b.port))
        fake = b.write("dnsmasq", "#!/bin/sh\n"
                       "trap 'echo standin exiting on signal; kill $!; exit 0' INT TERM\n"
                       "echo standin started \"$@\"\n"
                       "sleep 1000 & wait\n", mode=0o755)
        b.log = open(b.log_path, "ab")
        b.proc = subprocess.Popen(
            [harness.BOOTD, "--lab", b.lab_path, "--state-dir", b.state, "--listen", "127.0.0.1",
             "--port", str(b.port), "--dnsmasq", fake], stdout=b.log, stderr=b.log,
            start_new_session=True)
        harness.wait_for(lambda: "standin started" in b.logs(), bool, timeout=10)
        self.assertIn("standin started", b.logs())
        return b

    def children(self, pid):
        out = []
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(p) for p in f.read().split()]
        return out

    def assert_stopped_cleanly(self, b):
        b.proc.wait(15)
        log = b.logs()
        self.assertEqual(b.proc.returncode, 0, log)
        self.assertNotRegex(log, r"(?m)^\S+ error\s+dnsmasq", log)
        return log

    def test_dnsmasq_stopping_first_is_no_error(self):
        """systemd's stop signals the whole cgroup: dnsmasq may end before bootd acts."""
        b = self.start_with_standin_dnsmasq()
        try:
            for pid in self.children(b.proc.pid):
                os.kill(pid, signal.SIGTERM)
            time.sleep(0.2)
            b.proc.send_signal(signal.SIGTERM)
            log = self.assert_stopped_cleanly(b)
            self.assertIn("exited with status 0, stopped with bootd", log)
        finally:
            b.cleanup()

    def test_ctrl_c_is_no_error(self):
        """Ctrl-C reaches bootd and its dnsmasq together (one process group)."""
        b = self.start_with_standin_dnsmasq()
        try:
            os.killpg(b.proc.pid, signal.SIGINT)
            self.assert_stopped_cleanly(b)
        finally:
            b.cleanup()

    def test_dnsmasq_dying_alone_is_an_error(self):
        b = self.start_with_standin_dnsmasq()
        try:
            # the stand-in and its sleep, which holds dnsmasq's output pipe too
            for pid in self.children(b.proc.pid):
                for grandchild in self.children(pid):
                    os.kill(grandchild, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            harness.wait_for(b.logs, lambda l: "error dnsmasq" in re.sub(r"\s+", " ", l), timeout=5)
            self.assertRegex(b.logs(), r"(?m)^\S+ error\s+dnsmasq: killed by signal 9")
        finally:
            b.cleanup()


def utc_now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000)


class GitopsSyncWait(unittest.TestCase):
    """--wait answers with a sync that started after the request."""

    def test_a_running_sync_does_not_count(self):
        # the Deployment never becomes healthy: each sync takes health_timeout (3 s)
        lab = GitopsLab({"base/ns.yaml": yaml_doc("Namespace", "web"),
                         "apps/deploy.yaml": deployment("site", "web")},
                        [("base", ["base"]), ("apps", ["apps"])], auto_ready=False).start()
        try:
            first = lab.wait_idle()
            self.assertEqual(first["revision"], lab.head)
            code, j = lab.bootd.api("POST", "/gitops/sync")
            self.assertEqual(code, 202, j)
            harness.wait_for(lab.status, lambda s: s["state"] == "syncing", timeout=5)
            time.sleep(0.3)  # the running sync has fetched the old head
            new = lab.commit({"base/cm.yaml": yaml_doc("ConfigMap", "c", "web", extra="data: {a: b}\n")})
            before = utc_now_iso()
            r = lab.bootd.bootctl("-o", "json", "gitops", "sync", "--wait", "--timeout", "60s")
            status = json.loads(r.stdout)
            self.assertEqual(status["revision"], new, "the sync running at the request was taken")
            self.assertGreaterEqual(status["last_sync"]["started"], before)
            self.assertEqual(r.returncode, 1, "the sync failed (unhealthy): exit 1")
        finally:
            lab.cleanup()

    def test_says_when_no_sync_can_run(self):
        lab = GitopsLab({"base/ns.yaml": yaml_doc("Namespace", "web")}, [("base", ["base"])],
                        write_kubeconfig=False).start()
        try:
            t = time.monotonic()
            r = lab.bootd.bootctl("gitops", "sync", "--wait", "--timeout", "1m")
            self.assertEqual(r.returncode, 1)
            self.assertIn("no sync can run: bootd is waiting for a kubeconfig", r.stderr)
            self.assertLess(time.monotonic() - t, 10, "it says so at once")
            r = lab.bootd.bootctl("gitops", "sync")
            self.assertEqual(r.returncode, 1)
            self.assertIn("no sync can run", r.stderr)
        finally:
            lab.cleanup()


if __name__ == "__main__":
    unittest.main()
