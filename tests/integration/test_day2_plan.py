"""bootctl plan / bootctl machine diff against node twins that got their configs at PXE
time: unchanged after boot; a patch that Talos applies live, and one that needs a reboot,
each shown as a redacted diff with Talos's own verdict (ApplyConfiguration, dry_run);
no secret of the bundle ever in the output or in state.db."""
import base64
import json
import os
import tempfile
import unittest

import yaml

from tests.integration.day2_lab import DayTwoLab
from tests.integration.twin_lab import SharedSecrets, gen_secrets

CPS = ["127.0.0.71"]
WORKERS = ["127.0.0.74"]
SECRETS = SharedSecrets("bootd-day2-plan-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


def secret_values(path):
    """Every secret the bundle holds, as it could appear in a config (and base64 inside)."""
    with open(path) as f:
        b = yaml.safe_load(f)
    out = [b["cluster"]["secret"], b["secrets"]["bootstraptoken"], b["trustdinfo"]["token"]]
    out += [v for k, v in b["secrets"].items() if k.endswith("secret")]
    for ca in b["certs"].values():
        if isinstance(ca, dict) and ca.get("key"):
            out.append(ca["key"])
            out.append(base64.b64decode(ca["key"]).decode().splitlines()[1])
    return [s for s in out if s]


class PlanTest(unittest.TestCase):
    def setUp(self):
        self.lab = DayTwoLab(self, SECRETS.path, CPS, WORKERS)
        self.lab.start()
        self.lab.boot_all()
        self.secrets = secret_values(SECRETS.path)

    def plan(self, *names):
        r = self.lab.bootd.bootctl("plan", *names, "-o", "json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for s in self.secrets:
            self.assertNotIn(s, r.stdout)
        return {m["name"]: m for m in json.loads(r.stdout)["machines"]}

    def test_unchanged_then_live_then_reboot(self):
        plan = self.plan()
        self.assertEqual({n: m["status"] for n, m in plan.items()},
                         {"cp-1": "unchanged", "w-1": "unchanged"}, plan)
        self.assertEqual(plan["cp-1"]["applied"]["how"], "pxe")
        rows = self.lab.applied_rows()
        self.assertEqual(len(rows), 2)
        for _, _, redacted, _ in rows:
            self.assertIn("<redacted:", redacted)
            for s in self.secrets:
                self.assertNotIn(s, redacted, "a secret reached state.db")

        # a change Talos applies live: node labels
        self.lab.patch({"machine": {"nodeLabels": {"day2": "two"}}})
        self.lab.reload()
        plan = self.plan()
        for n in ("cp-1", "w-1"):
            self.assertEqual(plan[n]["status"], "changed", plan[n])
            self.assertEqual(plan[n]["talos"]["verdict"], "live", plan[n])
            self.assertIn("-        day2: one", plan[n]["diff"])
            self.assertIn("+        day2: two", plan[n]["diff"])
        # nothing was applied by planning
        self.assertEqual(self.lab.twins["cp-1"].applied, [])

        # a change that needs a reboot: machine.env
        self.lab.patch({"machine": {"nodeLabels": {"day2": "one"}, "env": {"DAY2": "x"}}})
        self.lab.reload()
        plan = self.plan("cp-1")
        self.assertEqual(list(plan), ["cp-1"])
        self.assertEqual(plan["cp-1"]["talos"]["verdict"], "reboot", plan)
        self.assertIn("+        DAY2: x", plan["cp-1"]["diff"])
        self.assertNotIn("day2: two", plan["cp-1"]["diff"])

        r = self.lab.bootd.bootctl("machine", "diff", "w-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("w-1 (worker): changed (last got pxe", r.stdout)
        self.assertIn("Talos: needs a reboot", r.stdout)
        self.assertIn("    +        DAY2: x", r.stdout)
        for s in self.secrets:
            self.assertNotIn(s, r.stdout)

    def test_secret_rotation_shows_as_a_changed_marker(self):
        # the cluster's etcd CA key changes (a new bundle): a marker changes, no key shows
        with open(os.path.join(self.lab.bootd.labdir, "secrets.yaml")) as f:
            b = yaml.safe_load(f)
        other = tempfile.mkdtemp(dir=self.lab.bootd.root)
        gen_secrets(other)
        with open(os.path.join(other, "secrets.yaml")) as f:
            b["certs"]["etcd"] = yaml.safe_load(f)["certs"]["etcd"]
        path = os.path.join(self.lab.bootd.labdir, "secrets.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(b, f)
        os.chmod(path, 0o600)
        self.lab.reload()
        plan = self.plan("cp-1")
        d = plan["cp-1"]["diff"]
        self.assertRegex(d, r"\n-\s+key: <redacted:[0-9a-f]{8}>")
        self.assertRegex(d, r"\n\+\s+key: <redacted:[0-9a-f]{8}>")
        self.assertNotIn(b["certs"]["etcd"]["key"], d)

    def test_unknown_machine(self):
        r = self.lab.bootd.bootctl("plan", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope", r.stderr)


if __name__ == "__main__":
    unittest.main()
