"""The whole lab from nothing, lost, and back, driven through bootctl.

An empty Proxmox (the API stand-in, real QEMU behind it) → `bootctl vm apply` creates 3
control planes (SeaBIOS and OVMF) and 1 worker → each PXE-boots from bootd to its config →
bootstrap → Kubernetes ready, Cilium ready, every node joined → GitOps synced (the object
from Git exists) → a marker written to etcd → a scheduled snapshot taken after it →
disaster: every VM destroyed, every node gone, bootd's state dir deleted → `bootctl rebuild
--etcd-snapshot latest --yes` (the VMs recreated through Proxmox meanwhile) → the same end
state, the marker back, the persistent-volume disk on Proxmox untouched → `bootctl machine
replace cp-3` after cp-3 died (bootd recreates its VM) → 3 voting etcd members again. Each phase's time is printed.

Concession (Talos OS cannot run here; see tests/e2e/whole_lab.py and docs/recovery.md):
after a VM has downloaded its config and powered off, its node twin takes over the
machine's address (its own network namespace with the machine's MAC and address on the
lab bridge) and runs the Talos API and the etcd member from that config; once bootd
has seen that API the harness registers the Node and Cilium's status with the
kube-apiserver stand-in (no kubelet).

Runs in make e2e-slow (wrap it in flock /work/notes/qemu.lock on a shared machine); 4 to
6 minutes here.
"""
import os
import re
import time
import unittest

from tests.e2e.whole_lab import MARKER, PV_DISK, WholeLab


def say(msg):
    print("  whole-lab: " + msg, flush=True)


class WholeLabTest(unittest.TestCase):
    def setUp(self):
        self.lab = WholeLab(say=say)
        self.addCleanup(self.lab.close)

    def test_from_nothing_lost_and_back(self):
        lab = self.lab
        t0 = time.monotonic()
        lab.up()
        # the last control plane up joins as a learner and is promoted a moment later
        voters = lab.drive("3 voting members", lambda: lab.voters() == ["cp-1", "cp-2", "cp-3"], 120)
        self.assertTrue(voters)
        # every machine's Talos API answers at its address, the worker's too
        talos = lambda: {m["name"]: m["talos"] for m in lab.cluster()["machines"]}
        self.assertEqual(set(talos().values()), {"v1.13.9 (metal)"}, talos())
        self.assertEqual(lab.cluster()["kubernetes"]["cilium"]["status"], "4/4 pods ready")
        self.assertEqual(lab.cluster()["bootstrap"]["outcome"], "bootstrapped")
        self.assertEqual(lab.kube.get("v1", "configmaps", "hello", "hello")["data"],
                         {"greeting": "from git"})
        # cp-2 is the OVMF machine: its firmware's own PXE fetched ipxe.efi
        firmware = {m: lab.bootd.machine(m)["firmware"] for m in ("cp-1", "cp-2")}
        self.assertNotEqual(firmware["cp-1"], firmware["cp-2"], firmware)
        disk_before = lab.pve.volumes()[PV_DISK]

        # a marker in etcd, then a scheduled snapshot that holds it
        t = time.monotonic()
        rev = int(re.search(r'"revision":(\d+)', lab.etcdctl("put", MARKER, "before-the-flood",
                                                              "-w", "json")).group(1))
        revs = lambda: [int(re.search(r"-r(\d+)\.snapshot$", f).group(1)) for f in lab.snapshots()]
        lab.drive("a snapshot after the marker", lambda: any(r >= rev for r in revs()), 60)
        lab.phase("snapshot with the marker", t)

        t = time.monotonic()
        lab.disaster()
        self.assertEqual(lab.pve.vmids(), [])
        self.assertFalse(os.path.exists(os.path.join(lab.bootd.state, "state.db")))
        self.assertIsNone(lab.kube.get("v1", "configmaps", "hello", "hello"))
        lab.phase("disaster: VMs, nodes, state gone", t)

        t = time.monotonic()
        code, out = lab.rebuild("--etcd-snapshot", "latest")
        self.assertEqual(code, 0, out + lab.bootd.logs()[-4000:])
        self.assertIn("restore      " + lab.backups, out)
        self.assertIn("proxmox      create cp-1 (8111) create cp-2 (8112) create cp-3 (8113) "
                      "create w-1 (8121)", out)
        self.assertIn("\n  vms ", out, "the summary times the VM phase")
        self.assertIn("rebuild done in", out)
        lab.phase("rebuild: etcd restored, all joined", t)
        lab.drive("GitOps synced after the rebuild", lab.synced, 180)
        lab.phase("rebuild: GitOps synced", t)
        self.assertEqual(lab.etcdctl("get", MARKER, "--print-value-only").strip(),
                         "before-the-flood")
        lab.drive("3 voting members", lambda: len(lab.voters()) == 3, 120)
        self.assertEqual(lab.cluster()["rebuild"]["phase"], "recovered")
        self.assertEqual(lab.pve.vmids(), [8111, 8112, 8113, 8121])
        self.assertEqual(lab.pve.volumes()[PV_DISK], disk_before)
        self.assertEqual(lab.pve.violations(), [])

        t = time.monotonic()
        code, out = lab.replace("cp-3")
        self.assertEqual(code, 0, out + lab.bootd.logs()[-4000:])
        self.assertRegex(out, r"cp-3: etcd member [0-9a-f]+ removed through cp-[12]")
        self.assertIn("cp-3: Proxmox: destroyed cp-3 (8113), created cp-3 (8113), started cp-3 "
                      "(8113)", out)
        self.assertIn("rejoined", out)
        lab.drive("3 voting members after the replace", lambda: lab.voters() == ["cp-1", "cp-2", "cp-3"], 120)
        lab.phase("cp-3 replaced and rejoined", t)
        self.assertEqual(lab.etcdctl("get", MARKER, "--print-value-only").strip(),
                         "before-the-flood")
        self.assertEqual(lab.pve.volumes()[PV_DISK], disk_before)
        self.assertEqual(lab.pve.violations(), [])
        say("total %.1f s" % (time.monotonic() - t0))
        lab.keep_dir = False  # passed: its logs and the cluster secrets need not stay


if __name__ == "__main__":
    unittest.main()
