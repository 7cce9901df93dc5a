"""bootctl against a running bootd, and offline."""
import json
import os
import unittest

from tests.integration.harness import Bootd, BOOTCTL, line_of, read


class Bootctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Bootd().start()

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def test_validate(self):
        r = self.b.bootctl("validate", self.b.lab_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok: cluster it, 4 machines", r.stdout)
        self.assertNotIn("note:", r.stderr, "lo exists here")
        elsewhere = self.b.write("elsewhere.yaml", read(self.b.lab_path).replace(
            "interface: lo", "interface: bd-none0", 1))
        r = self.b.bootctl("validate", elsewhere)
        self.assertEqual(r.returncode, 0, "a lab for another host is still valid: " + r.stderr)
        self.assertIn("note: lan.interface bd-none0 does not exist on this host", r.stderr)
        # bootd would refuse examples/minimal until its secrets bundle exists
        r = self.b.bootctl("validate", "examples/minimal/lab.yaml")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("Create it with: bootctl gen secrets examples/minimal/lab.yaml", r.stderr)
        text = read(self.b.lab_path).replace("role: worker", "role: wrker", 1)
        bad = self.b.write("bad/lab.yaml", text)
        r = self.b.bootctl("validate", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn('bad/lab.yaml:%d:11: machines[1].role: "wrker" is not one of'
                      % line_of(text, "role: wrker"), r.stderr)
        r = self.b.bootctl("validate")
        self.assertEqual(r.returncode, 2)

    def test_machines_table_and_json(self):
        self.b.ipxe("52-54-00-00-00-01", source="127.0.0.11")
        r = self.b.bootctl("machines")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[:5], ["NAME", "MAC", "ROLE", "IP", "STATE"])
        cp = [l for l in lines if l.startswith("cp-1 ")][0].split()
        self.assertEqual(cp[:5], ["cp-1", "52:54:00:00:00:01", "controlplane", "127.0.0.11",
                                  "booting"])
        r = self.b.bootctl("-o", "json", "machines")
        j = json.loads(r.stdout)
        self.assertIn("cp-1", [m["name"] for m in j["machines"]])
        r = self.b.bootctl("machines", "show", "cp-1")
        self.assertIn("state      booting", r.stdout)
        self.assertIn("booting", r.stdout.split("MESSAGE")[1])
        r = self.b.bootctl("events", "cp-1")
        self.assertIn("assigned", r.stdout)

    def test_adopt_and_reinstall(self):
        self.b.ipxe("52-54-00-ee-00-01", source="127.0.0.96")
        r = self.b.bootctl("machine", "adopt", "52:54:00:ee:00:01", "--name", "w-5", "--role",
                           "worker")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("adopted 52:54:00:ee:00:01 as w-5 (worker)", r.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.b.labdir, "machines.d", "w-5.yaml")))
        r = self.b.bootctl("machine", "adopt", "52:54:00:ee:00:01", "--name", "w-6", "--role",
                           "worker")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already in lab.yaml as w-5 (HTTP 409)", r.stderr)
        r = self.b.bootctl("machine", "reinstall", "w-5")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.b.bootctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reloaded", r.stdout)
        r = self.b.bootctl("status")
        self.assertIn("cluster   it", r.stdout)

    def test_unreachable_and_wrong_token(self):
        r = self.b.bootctl("--url", "http://127.0.0.1:1", "machines")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach bootd at http://127.0.0.1:1 (from --url)", r.stderr)
        self.assertIn("Is bootd running there?", r.stderr)
        r = self.b.bootctl("machines", env={"BOOTD_TOKEN": "nope", "BOOTD_TOKEN_FILE": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn("refused the admin token from BOOTD_TOKEN", r.stderr)

    def test_config_file(self):
        cfg = self.b.write("bootctl.yaml", "url: http://127.0.0.1:%d\ntoken_file: %s\n" % (
            self.b.port, os.path.join(self.b.state, "admin.token")))
        r = self.b.bootctl("machines", env={"BOOTD_URL": "", "BOOTD_TOKEN_FILE": "",
                                            "BOOTCTL_CONFIG": cfg})
        self.assertEqual(r.returncode, 0, r.stderr)
        bad = self.b.write("bad.yaml", "urll: x\n")
        r = self.b.bootctl("machines", env={"BOOTCTL_CONFIG": bad})
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.yaml:1: unknown key \"urll\"", r.stderr)

    def test_usage(self):
        r = self.b.bootctl("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)
        self.assertTrue(os.access(BOOTCTL, os.X_OK))


if __name__ == "__main__":
    unittest.main()
