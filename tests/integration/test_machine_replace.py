"""bootctl machine replace and bootctl etcd members, against node twins running a real
etcd cluster bootstrapped by bootd: a control plane dies (its etcd with it, its member
left behind); replace removes that member through another control plane's Talos API
(EtcdMemberList, EtcdRemoveMemberByID), marks the machine for reinstall and follows
until the new machine (a fresh disk) is a voting member again."""
import re
import unittest

from tests.integration.harness import wait_for
from tests.integration.twin_lab import TwinLab, SharedSecrets

HOSTS = ["127.0.0.61", "127.0.0.62", "127.0.0.63"]
SECRETS = SharedSecrets("bootd-replace-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


class ReplaceTest(unittest.TestCase):
    def test_dead_control_plane_replaced_and_rejoined(self):
        lab = TwinLab(self, SECRETS.path, HOSTS)
        lab.start_twins()
        lab.start()
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 3, 60), ["cp-1", "cp-2", "cp-3"],
                         lab.bootd.logs())
        r = lab.bootd.bootctl("etcd", "members")
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = dict(re.findall(r"^([0-9a-f]+)\s+(cp-\d)\s", r.stdout, re.M))
        self.assertEqual(sorted(ids.values()), ["cp-1", "cp-2", "cp-3"], r.stdout)
        old = next(i for i, n in ids.items() if n == "cp-2")

        lab.twins["cp-2"].stop_etcd()  # the machine is dead; its member stays behind
        follow = lab.bootctl_popen("machine", "replace", "cp-2", "--timeout", "90s")
        self.addCleanup(lambda: follow.poll() is None and follow.kill())
        wait_for(lambda: lab.voters(), lambda v: v == ["cp-1", "cp-3"], 20)
        self.assertEqual(lab.voters(), ["cp-1", "cp-3"], "the dead member was removed")
        status, m = lab.bootd.api("GET", "/machines/cp-2")
        self.assertTrue(m["reinstall"], m)
        lab.twin("cp-2")  # the new VM installs with its config, a fresh disk
        out, err = follow.communicate(timeout=120)
        self.assertEqual(follow.returncode, 0, out + err + lab.bootd.logs())
        self.assertIn("etcd member %s removed through cp-1" % old, out)
        self.assertIn("rejoined", out)
        self.assertEqual(lab.voters(), ["cp-1", "cp-2", "cp-3"])
        ev = [e for e in lab.bootd.events("cp-2") if e["kind"] == "machine-replace"]
        self.assertTrue(ev and old in ev[0]["message"], ev)

    def test_unknown_machine_and_worker(self):
        lab = TwinLab(self, SECRETS.path, HOSTS[:1])
        lab.start()
        r = lab.bootd.bootctl("machine", "replace", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope", r.stderr)
        r = lab.bootd.bootctl("machine", "replace", "cp-1", "--no-wait")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("cannot reach etcd", r.stderr)


if __name__ == "__main__":
    unittest.main()
