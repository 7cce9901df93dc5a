"""bootctl upgrade talos against node twins with a real 3-member etcd: a rolling upgrade
of 3 control planes and a worker, control planes first, each machine followed until it
answers Version with the new version and (control planes) its etcd member is healthy
again, etcd taking writes throughout; a machine that comes back on the old version (Talos
rolled back) stops the upgrade with the rest untouched and the cluster healthy; bootd
killed mid-upgrade carries on where it was after a restart."""
import json
import signal
import unittest

from tests.integration.day2_lab import DayTwoLab
from tests.integration.harness import wait_for
from tests.integration.test_day2_apply import Writer, subprocess_run
from tests.integration.twin_lab import SharedSecrets

CPS = ["127.0.0.91", "127.0.0.92", "127.0.0.93"]
WORKERS = ["127.0.0.94"]
NEW = "v1.14.0"
SECRETS = SharedSecrets("bootd-day2-upgrade-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        seed = () if "missing_images" in self.id() else ("v1.14.0",)
        # node_ready: a kube-apiserver stand-in whose Nodes the twins' kubelets keep
        self.lab = DayTwoLab(self, SECRETS.path, CPS, WORKERS,
                             seed_versions=seed, kube="node_ready" in self.id())
        self.lab.start()

    def boot(self, **per_machine):
        for n, *_ in self.lab.machines:
            self.lab.boot(n, **per_machine.get(n.replace("-", "_"), {}))
        self.lab.wait_etcd(3)

    def bootctl(self, *args, timeout=300):
        return subprocess_run(self.lab, args, timeout)

    def tags(self):
        return {n: t.tag for n, t in self.lab.twins.items()}

    def test_rolling_upgrade_keeps_quorum(self):
        self.boot()
        with Writer(self.lab) as w:
            r = self.bootctl("upgrade", "talos", NEW, "--timeout", "90s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.lab.bootd.logs()[-3000:])
        self.assertEqual(w.failed, [], "etcd lost its quorum during the upgrade")
        self.assertEqual(self.tags(), {n: NEW for n in self.tags()})
        for n, t in self.lab.twins.items():
            self.assertEqual(len(t.upgrades), 1, n)
            self.assertRegex(t.upgrades[0], r"^factory\.talos\.dev/metal-installer/[0-9a-f]{64}:"
                             + NEW + "$")
        away = sorted((t.down_log[0], n) for n, t in self.lab.twins.items())
        self.assertEqual([n for _, n in away], ["cp-1", "cp-2", "cp-3", "w-1"])
        for (a, _), (b, n) in zip(away, away[1:]):
            self.assertLess(a[1], b[0], "%s went away before the one before it was back" % n)
        self.assertIn("set cluster.talos_version: %s (it says v1.13.9)" % NEW, r.stdout)
        ev = [e["kind"] for e in self.lab.bootd.events("cp-2")]
        for k in ("upgrade-started", "machine-away", "machine-back"):
            self.assertIn(k, ev)
        _, _, metrics = self.lab.bootd.get("/metrics")
        self.assertIn(b"bootd_day2_upgrades_total 4\n", metrics)
        self.lab.wait_etcd(3, 30)

    def test_each_node_ready_again_before_the_next(self):
        # kubelet takes 3 s after each boot to report Ready: the job waits for it, as it
        # reads the Node from the API server
        self.boot()
        wait_for(lambda: self.lab.bootd.api("GET", "/status")[1]["cluster_state"],
                 lambda c: c.get("kubernetes", {}).get("ready"), 60)
        for t in self.lab.twins.values():
            t.kubelet_start_s = 3.0
        r = self.bootctl("upgrade", "talos", NEW, "--timeout", "90s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.lab.bootd.logs()[-3000:])
        self.assertEqual(self.tags(), {n: NEW for n in self.tags()})
        away = sorted((t.down_log[0], n) for n, t in self.lab.twins.items())
        self.assertEqual([n for _, n in away], ["cp-1", "cp-2", "cp-3", "w-1"])
        for ((_, back), n), ((nxt, _), m) in zip(away, away[1:]):
            log = self.lab.twins[n].kubelet_log
            self.assertIn((True, "False"), [(t > back, r) for t, _, r in log], n)  # NotReady at first
            ready = next((t for t, _, r in log if t > back and r == "True"), None)
            self.assertIsNotNone(ready, "%s's Node never Ready again: %s" % (n, log))
            self.assertLess(ready, nxt, "%s went away before %s's Node was Ready again" % (m, n))

    def test_rollback_stops_with_the_rest_untouched(self):
        self.boot(cp_2={"fail_upgrade": True})
        r = self.bootctl("upgrade", "talos", NEW, "--timeout", "60s")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cp-2 came back on v1.13.9, not %s: Talos rolled the upgrade back" % NEW,
                      r.stderr)
        self.assertEqual(self.tags(), {"cp-1": NEW, "cp-2": "v1.13.9", "cp-3": "v1.13.9",
                                       "w-1": "v1.13.9"})
        self.assertEqual((self.lab.twins["cp-3"].upgrades, self.lab.twins["w-1"].upgrades),
                         ([], []), "nothing after the failure was touched")
        self.lab.wait_etcd(3, 30)  # the cluster is left healthy
        st = self.lab.bootd.api("GET", "/cluster/day2")[1]
        self.assertEqual((st["phase"], st["pos"]), ("failed", 1), st)

    def test_missing_images_stop_it_before_any_machine(self):
        # the image cache is filled first: a version the factory does not have stops it
        self.boot()
        r = self.bootctl("upgrade", "talos", NEW, "--timeout", "30s")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("before cp-1: pulling the Talos %s amd64 image failed" % NEW, r.stderr)
        self.assertEqual([t.upgrades for t in self.lab.twins.values()], [[]] * 4)

    def test_bootd_killed_mid_upgrade_carries_on(self):
        self.boot()
        for t in self.lab.twins.values():
            t.upgrade_s = 4.0
        r = self.bootctl("upgrade", "talos", NEW, "--timeout", "90s", "--no-wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # kill bootd while cp-2 is away
        wait_for(lambda: self.lab.twins["cp-2"].down, bool, 60)
        self.assertTrue(self.lab.twins["cp-2"].down, self.lab.bootd.logs()[-3000:])
        self.lab.bootd.stop(signal.SIGKILL)
        self.lab.bootd.start("--talos-port", str(self.lab.apid_port))
        st = wait_for(lambda: self.lab.bootd.api("GET", "/cluster/day2")[1],
                      lambda j: j and j["phase"] in ("done", "failed"), 120)
        self.assertEqual(st["phase"], "done", json.dumps(st) + self.lab.bootd.logs()[-3000:])
        self.assertEqual(self.tags(), {n: NEW for n in self.tags()})
        for n, t in self.lab.twins.items():
            self.assertEqual(len(t.upgrades), 1, "%s upgraded once, not again after the restart" % n)
        self.lab.wait_etcd(3, 30)


if __name__ == "__main__":
    unittest.main()
