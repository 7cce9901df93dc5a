"""Scheduled etcd backups (cluster.etcd_backup): bootd against three node twins running
a real etcd cluster bootstrapped by bootd. Snapshots land in the backup dir whole, 0600,
named with the cluster id, the time and etcd's revision (checked with etcdctl), only the
newest `keep` stay, the metric moves, `bootctl etcd snapshots` lists them; when no
control plane can give a snapshot the failure is an event and a counter."""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

import yaml

from tests.integration.harness import wait_for
from tests.integration.twin_lab import TwinLab, SharedSecrets

HOSTS = ["127.0.0.41", "127.0.0.42", "127.0.0.43"]
SECRETS = SharedSecrets("bootd-backup-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


def cluster_id():
    with open(SECRETS.path) as f:
        return yaml.safe_load(f)["cluster"]["id"]


NAME = re.compile(r"^etcd-(.+)-(\d{8}T\d{6}Z)-r(\d+)\.snapshot$")


class EtcdBackupTest(unittest.TestCase):
    def lab(self, keep=2, interval="10s"):
        self.backups = os.path.join(tempfile.mkdtemp(prefix="backups-"), "etcd")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.backups), True)
        extra = "  etcd_backup: {interval: %s, keep: %d, dir: %s}\n" % (interval, keep, self.backups)
        return TwinLab(self, SECRETS.path, HOSTS, extra=extra)

    def snapshots(self):
        try:
            return sorted(f for f in os.listdir(self.backups) if NAME.match(f))
        except FileNotFoundError:
            return []

    def metric(self, lab, name):
        status, _, body = lab.bootd.get("/metrics")
        m = re.search(r"^%s (\S+)$" % name, body.decode(), re.M)
        return float(m.group(1)) if m else None

    def test_scheduled_snapshots_named_checked_and_pruned(self):
        lab = self.lab()
        lab.start_twins()
        lab.start()
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 3, 60), ["cp-1", "cp-2", "cp-3"],
                         lab.bootd.logs())
        lab.twins["cp-1"].etcdctl("put", "/marker", "first")
        first = wait_for(self.snapshots, lambda v: len(v) >= 1, 30)
        self.assertTrue(first, lab.bootd.logs())
        path = os.path.join(self.backups, first[0])
        m = NAME.match(first[0])
        self.assertEqual(m.group(1), cluster_id().replace("/", "_").replace("+", "-"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        data = open(path, "rb").read()
        self.assertEqual(len(data) % 512, 32)
        self.assertEqual(hashlib.sha256(data[:-32]).digest(), data[-32:])
        st = json.loads(subprocess.run(["etcdctl", "snapshot", "status", path, "-w", "json"],
                                       capture_output=True, text=True, check=True).stdout)
        self.assertEqual(int(m.group(3)), st["revision"])
        self.assertFalse([f for f in os.listdir(self.backups) if not NAME.match(f)],
                         "no temporary files stay behind")
        ts = self.metric(lab, "bootd_etcd_snapshot_last_success_timestamp_seconds")
        self.assertGreater(ts, 0)
        events = [e for e in lab.bootd.events() if e["kind"] == "etcd-backup"]
        self.assertTrue(events and first[0] in events[0]["message"], events)

        # every 10 s another; only the newest two stay
        seen = set(first)
        def more():
            seen.update(self.snapshots())
            return seen
        wait_for(more, lambda s: len(s) >= 3, 40)
        self.assertGreaterEqual(len(seen), 3)
        now = self.snapshots()
        self.assertEqual(len(now), 2, now)
        self.assertEqual(now, sorted(seen)[-2:])

        r = lab.bootd.bootctl("etcd", "snapshots", "--lab", lab.bootd.lab_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        for f in now:
            self.assertIn(f, r.stdout)
        self.assertIn("this", r.stdout)
        r = lab.bootd.bootctl("-o", "json", "etcd", "snapshots", "--lab", lab.bootd.lab_path)
        j = json.loads(r.stdout)
        self.assertEqual([s["file"] for s in j["snapshots"]], sorted(now, reverse=True))
        self.assertTrue(all(s["this_cluster"] for s in j["snapshots"]))

    def test_failures_are_events_and_counted(self):
        lab = self.lab(interval="10s")
        lab.start_twins()
        lab.start()
        wait_for(self.snapshots, lambda v: len(v) >= 1, 60)
        self.assertTrue(self.snapshots(), lab.bootd.logs())
        for t in lab.twins.values():
            t.stop_etcd()
        fails = wait_for(lambda: self.metric(lab, "bootd_etcd_snapshot_failures_total"),
                         lambda v: v and v >= 1, 30)
        self.assertGreaterEqual(fails, 1, lab.bootd.logs())
        ev = [e for e in lab.bootd.events() if e["kind"] == "etcd-backup-failed"]
        self.assertTrue(ev)
        self.assertIn("cp-1", ev[0]["message"])
        self.assertEqual(len(self.snapshots()), 1, "a failed snapshot leaves nothing behind")
        self.assertFalse([f for f in os.listdir(self.backups) if not NAME.match(f)])

    def test_no_backup_config_no_snapshots_and_bootctl_says_so(self):
        lab = TwinLab(self, SECRETS.path, HOSTS[:1])
        r = lab.bootd.bootctl("etcd", "snapshots", "--lab", lab.bootd.lab_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cluster.etcd_backup is not set", r.stderr)


if __name__ == "__main__":
    unittest.main()
