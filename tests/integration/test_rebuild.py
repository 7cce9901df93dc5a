"""bootctl rebuild against node twins: a cluster bootd bootstrapped and backed up is lost
(every node and bootd's state dir), and `bootctl rebuild --etcd-snapshot latest` brings
it back: the plan, one state change, EtcdRecover retried while the new nodes are not
ready for recovery, Bootstrap{recover_etcd}, the marker written before the disaster back
in etcd, the other control planes joined; bootd killed mid-rebuild carries on from
state.db; a rebuild of a healthy cluster changes nothing. Refused before anything
changes: another cluster's snapshot (naming both ids), a corrupted one, `latest` with no
snapshot, no --yes off a terminal."""
import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from tests.integration.harness import seed_images, wait_for
from tests.integration.twin_lab import TwinLab, SharedSecrets

HOSTS = ["127.0.0.51", "127.0.0.52", "127.0.0.53"]
SECRETS = SharedSecrets("bootd-rebuild-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


class BackedUp:
    """A twin lab with scheduled snapshots, brought to a backed-up cluster and lost."""

    def lab(self, extra="", **kw):
        self.backups = os.path.join(tempfile.mkdtemp(prefix="backups-"), "etcd")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.backups), True)
        extra = "  etcd_backup: {interval: 10s, keep: 5, dir: %s}\n" % self.backups + extra
        return TwinLab(self, SECRETS.path, HOSTS, extra=extra, **kw)

    def snapshots(self):
        try:
            return sorted(f for f in os.listdir(self.backups) if re.match(r"etcd-.*\.snapshot$", f))
        except FileNotFoundError:
            return []

    def rebuild_state(self, lab):
        status, j = lab.bootd.api("GET", "/status")
        return j["cluster_state"].get("rebuild") if status == 200 else None

    def backed_up_cluster(self, lab):
        """Bootstrapped by bootd, a marker in etcd, a snapshot taken after it."""
        lab.start_twins()
        lab.start()
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 3, 120), ["cp-1", "cp-2", "cp-3"],
                         lab.bootd.logs())
        out = json.loads(lab.twins["cp-1"].etcdctl("put", "/marker", "before-the-flood", "-w", "json"))
        rev = out["header"]["revision"]
        revs = lambda: [int(re.search(r"-r(\d+)\.snapshot$", f).group(1)) for f in self.snapshots()]
        self.assertTrue(any(r >= rev for r in wait_for(revs, lambda v: any(r >= rev for r in v), 60)),
                        lab.bootd.logs())

    def disaster(self, lab):
        """Every node gone, bootd's state dir gone."""
        for n in list(lab.twins):
            lab.twins.pop(n).stop()
        lab.bootd.stop()
        shutil.rmtree(lab.bootd.state)
        seed_images(os.path.join(lab.bootd.state, "images"))


class RebuildTest(BackedUp, unittest.TestCase):
    def test_lost_cluster_comes_back_from_the_latest_snapshot(self):
        lab = self.lab()
        self.backed_up_cluster(lab)
        self.disaster(lab)
        lab.start()
        t0 = time.monotonic()
        follow = lab.bootctl_popen("rebuild", "--etcd-snapshot", "latest", "--yes",
                                   "--until", "etcd", "--timeout", "240s")
        self.addCleanup(lambda: follow.poll() is None and follow.kill())
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r and r["phase"] == "reinstall", 30)
        self.assertEqual(rb["phase"], "reinstall", lab.bootd.logs())
        self.assertIn(self.backups, rb["snapshot"])

        # bootd dies mid-rebuild; the new machines come up meanwhile (not ready for
        # recovery at first); bootd started again carries on from state.db
        lab.bootd.stop(signal.SIGKILL)
        follow.wait(30)
        lab.start_twins(ready_after=3600)
        lab.start()
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r and r["attempts"] >= 1, 60)
        self.assertIn("not ready for recovery yet", rb["last_error"] or "", lab.bootd.logs())
        self.assertEqual(rb["phase"], "recovering")
        for t in lab.twins.values():
            t.mount()  # EPHEMERAL is there now
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r and r["phase"] == "recovered", 120)
        self.assertEqual(rb["phase"], "recovered", lab.bootd.logs())
        self.assertEqual(wait_for(lambda: lab.etcd_get("/marker"), lambda v: v == "before-the-flood", 60),
                         "before-the-flood")
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 3, 120), ["cp-1", "cp-2", "cp-3"])
        kinds = [e["kind"] for e in lab.bootd.events()]
        self.assertIn("rebuild-started", kinds)
        print("\n  rebuild to etcd restored: %.1fs" % (time.monotonic() - t0))

        # healthy now: rebuild changes nothing
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", "latest", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to do: the cluster is healthy", r.stdout)
        self.assertEqual(self.rebuild_state(lab)["phase"], "recovered")

    def test_progress_view_and_summary(self):
        lab = self.lab()
        self.backed_up_cluster(lab)
        self.disaster(lab)
        lab.start()
        follow = lab.bootctl_popen("rebuild", "--etcd-snapshot", "latest", "--yes",
                                   "--until", "etcd", "--timeout", "240s")
        self.addCleanup(lambda: follow.poll() is None and follow.kill())
        wait_for(lambda: self.rebuild_state(lab), lambda r: r and r["phase"] == "reinstall", 30)
        lab.start_twins(ready_after=1.0)
        out, err = follow.communicate(timeout=120)
        self.assertEqual(follow.returncode, 0, out + err + lab.bootd.logs())
        self.assertIn("restore      %s" % self.backups, out)
        self.assertIn("reinstall    cp-1 (controlplane) cp-2 (controlplane) cp-3 (controlplane)", out)
        self.assertIn("rebuild done in", out)
        self.assertRegex(out, r"\n  reinstall\s+\d+s\n  etcd\s+\d+s")
        self.assertNotIn("\033[", out, "plain lines when not on a terminal")
        self.assertEqual(lab.etcd_get("/marker"), "before-the-flood")

    def test_bootstrap_node_dead_recovery_goes_to_another_control_plane(self):
        lab = self.lab()
        self.backed_up_cluster(lab)
        self.disaster(lab)
        lab.start()
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", "latest", "--yes", "--until", "etcd",
                              "--timeout", "1s")  # start it, do not follow
        self.assertIn("started", r.stdout, r.stderr)
        lab.twin("cp-2")  # cp-1 (the bootstrap node) never comes back
        lab.twin("cp-3")
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r and r["phase"] == "recovered", 120)
        self.assertEqual(rb["phase"], "recovered", lab.bootd.logs())
        self.assertIn(rb["node"], ("cp-2", "cp-3"))
        self.assertEqual(wait_for(lambda: lab.etcd_get("/marker"), lambda v: v == "before-the-flood", 60),
                         "before-the-flood")
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 2, 120), ["cp-2", "cp-3"])

    def test_lost_state_waits_for_rebuild_instead_of_bootstrapping_empty(self):
        lab = self.lab()
        self.backed_up_cluster(lab)
        self.disaster(lab)
        lab.start_twins()  # the machines are back before anyone ran rebuild
        lab.start()
        phase = lambda: lab.bootd.api("GET", "/status")[1]["cluster_state"]
        c = wait_for(phase, lambda c: c["phase"] == "waiting-for-rebuild", 30)
        self.assertEqual(c["phase"], "waiting-for-rebuild", lab.bootd.logs())
        self.assertIn("bootctl rebuild --etcd-snapshot latest", c["message"])
        time.sleep(2)
        self.assertFalse(any(t.bootstrapped for t in lab.twins.values()),
                         "an empty etcd would bury the snapshots")
        self.assertEqual(lab.voters(), [])

    def test_refusals_change_nothing(self):
        lab = self.lab()
        self.backed_up_cluster(lab)
        good = os.path.join(self.backups, self.snapshots()[-1])
        self.disaster(lab)
        lab.start()
        d = tempfile.mkdtemp(prefix="snaps-")
        self.addCleanup(shutil.rmtree, d, True)

        foreign = os.path.join(d, re.sub(r"^etcd-.*?-(\d{8}T)", r"etcd-OTHERCLUSTERid0-\1",
                                         os.path.basename(good)))
        shutil.copy(good, foreign)
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", foreign, "--yes")
        self.assertEqual(r.returncode, 1)
        mine = re.match(r"etcd-(.*)-\d{8}T", os.path.basename(good)).group(1)
        self.assertIn("OTHERCLUSTERid0", r.stderr)
        self.assertIn(mine, r.stderr)

        corrupt = os.path.join(d, "corrupt.snapshot")
        data = bytearray(open(good, "rb").read())
        data[5000] ^= 0xff
        open(corrupt, "wb").write(bytes(data))
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", corrupt, "--yes")
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not match its own SHA-256", r.stderr)
        truncated = os.path.join(d, "truncated.snapshot")
        open(truncated, "wb").write(bytes(data[:8192]))
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", truncated, "--yes")
        self.assertIn("no SHA-256 trailer", r.stderr)
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", good, "--skip-hash-check", "--yes")
        self.assertIn("leave out --skip-hash-check", r.stderr)

        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", good)  # stdin is not a terminal
        self.assertEqual(r.returncode, 1)
        self.assertIn("add --yes", r.stderr)

        for f in self.snapshots():
            os.unlink(os.path.join(self.backups, f))
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", "latest", "--yes")
        self.assertEqual(r.returncode, 1)
        self.assertIn("holds no snapshot of this cluster", r.stderr)
        self.assertIsNone(self.rebuild_state(lab), "nothing was started")


if __name__ == "__main__":
    unittest.main()
