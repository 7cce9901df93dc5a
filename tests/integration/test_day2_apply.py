"""bootctl apply against node twins with a real 3-member etcd: a patch Talos applies live
reaches every machine without a reboot; a change that needs a reboot is applied one
machine at a time, control planes first, each back (and its etcd member healthy) before
the next goes, with etcd taking writes throughout. What was applied is recorded (state,
timeline, metrics) and bootctl plan has nothing left to do."""
import json
import os
import threading
import unittest

from tests.integration.day2_lab import DayTwoLab
from tests.integration.harness import wait_for
from tests.integration.twin_lab import SharedSecrets
from tests.standins import talos_node

CPS = ["127.0.0.81", "127.0.0.82", "127.0.0.83"]
WORKERS = ["127.0.0.84"]
SECRETS = SharedSecrets("bootd-day2-apply-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


class Writer:
    """Writes to etcd through every control plane, every 0.3 s: a write that fails twice in
    a row means the cluster lost its quorum. Once is not enough: a proposal in flight while
    a stopping leader hands its leadership over is dropped by raft and times out ("request
    timed out, possibly due to connection lost"), and etcd's clients retry it, as this does;
    without a quorum the retry fails as well."""

    def __init__(self, lab):
        self.lab, self.ok, self.failed, self.retried = lab, 0, [], []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self._stop.wait(0.3) and i < 2000:
            i += 1
            t = self.lab.twins["cp-1"]
            eps = [t.client_url(h) for h in self.lab.cps]
            for attempt in (self.retried, self.failed):
                try:
                    t.etcdctl("put", "day2/%d" % i, "x", endpoints=eps, timeout=3)
                    self.ok += 1
                    break
                except (talos_node.EtcdError, Exception) as e:  # noqa: BLE001
                    attempt.append(str(e))

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(20)


class ApplyTest(unittest.TestCase):
    def setUp(self):
        self.lab = DayTwoLab(self, SECRETS.path, CPS, WORKERS)
        self.lab.start()
        self.lab.boot_all()
        self.lab.wait_etcd(3)

    def bootctl(self, *args, timeout=300):
        p = subprocess_run(self.lab, args, timeout)
        return p

    def test_live_patch_applied_without_reboot(self):
        self.lab.patch({"machine": {"nodeLabels": {"day2": "two"}}})
        self.lab.reload()
        r = self.bootctl("apply")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.lab.bootd.logs()[-3000:])
        self.assertIn("apply auto, one machine at a time: cp-1 cp-2 cp-3 w-1", r.stdout)
        for n, t in self.lab.twins.items():
            self.assertEqual(t.applied, [("NO_REBOOT", False)], n)
            self.assertEqual(t.reboots, 0, n)
            self.assertIn("day2: two", t.config_text, n)
        plan = json.loads(self.bootctl("plan", "-o", "json").stdout)
        self.assertEqual({m["status"] for m in plan["machines"]}, {"unchanged"}, plan)
        self.assertEqual({m["applied"]["how"] for m in plan["machines"]}, {"no-reboot"})
        ev = [e for e in self.lab.bootd.events("cp-2") if e["kind"] == "config-applied"]
        self.assertTrue(ev and "no-reboot" in ev[0]["message"], ev)
        _, _, metrics = self.lab.bootd.get("/metrics")
        self.assertIn(b"bootd_day2_configs_applied_total 4\n", metrics)
        # again: nothing left to apply, nothing called
        r = self.bootctl("apply")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.lab.twins["cp-1"].applied, [("NO_REBOOT", False)])

    def test_reboot_change_one_machine_at_a_time(self):
        self.lab.patch({"machine": {"nodeLabels": {"day2": "one"}, "env": {"DAY2": "x"}}})
        self.lab.reload()
        with Writer(self.lab) as w:
            r = self.bootctl("apply", "--timeout", "90s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.lab.bootd.logs()[-3000:])
        self.assertEqual(w.failed, [], "etcd lost its quorum during the apply")
        self.assertGreater(w.ok, 5)
        away = sorted((t.down_log[0], n) for n, t in self.lab.twins.items())
        self.assertEqual([n for _, n in away], ["cp-1", "cp-2", "cp-3", "w-1"],
                         "control planes first, in lab order")
        for (a, _), (b, n) in zip(away, away[1:]):
            self.assertLess(a[1], b[0], "%s went away before the one before it was back" % n)
        for n, t in self.lab.twins.items():
            self.assertEqual(t.reboots, 1, n)
            self.assertIn("DAY2: x", t.config_text, n)
        self.lab.wait_etcd(3, 30)
        st = self.lab.bootd.api("GET", "/cluster/day2")[1]
        self.assertEqual(st["phase"], "done", st)

    def test_refused_change_stops_before_any_machine_changes(self):
        # no-reboot asked for a change that needs one: Talos refuses it (InvalidArgument)
        self.lab.patch({"machine": {"env": {"DAY2": "y"}}})
        self.lab.reload()
        r = self.bootctl("apply", "--mode", "no-reboot", "--timeout", "30s")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cp-1: ApplyConfiguration (no-reboot)", r.stderr)
        self.assertIn("immediate mode", r.stderr)
        for n, t in self.lab.twins.items():
            self.assertEqual((t.reboots, t.applied), (0, []), n)
        ev = [e for e in self.lab.bootd.events("cp-1") if e["kind"] == "day2-failed"]
        self.assertTrue(ev, self.lab.bootd.events("cp-1"))


class AutoApplyTest(unittest.TestCase):
    def test_reload_applies_by_itself(self):
        lab = DayTwoLab(self, SECRETS.path, CPS[:1], WORKERS,
                        extra="  apply: auto\n")
        lab.start()
        lab.boot_all()
        lab.reload()  # nothing changed: no job
        self.assertIsNone(lab.bootd.api("GET", "/cluster/day2")[1])
        lab.patch({"machine": {"nodeLabels": {"day2": "auto"}}})
        lab.reload()
        st = wait_for(lambda: lab.bootd.api("GET", "/cluster/day2")[1],
                      lambda j: j and j["phase"] in ("done", "failed"), 60)
        self.assertEqual((st["kind"], st["arg"], st["phase"]), ("apply", "auto", "done"), st)
        for n, t in lab.twins.items():
            self.assertEqual(t.applied, [("NO_REBOOT", False)],
                             "%s: %s" % (n, lab.bootd.events(n)))
            self.assertIn("day2: auto", t.config_text)


def subprocess_run(lab, args, timeout):
    import subprocess
    env = dict(os.environ, BOOTD_URL="http://127.0.0.1:%d" % lab.bootd.port,
               BOOTD_TOKEN_FILE=os.path.join(lab.bootd.state, "admin.token"), HOME=lab.bootd.root)
    from tests.integration.harness import BOOTCTL
    return subprocess.run([BOOTCTL, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


if __name__ == "__main__":
    unittest.main()
