"""bootctl rebuild in a lab with a proxmox: section: the plan names what happens to each
VM (create the missing, reset the running) before anything changes; bootd does it through
the Proxmox API (the stand-in, tests/standins/proxmox_api.py) as the rebuild's first
phase; Proxmox going away mid-run is a clear error kept in the rebuild record and an
event, the VMs done so far stay done, and once Proxmox is back (bootd restarted
meanwhile) the rebuild carries on from state.db without creating anything twice, then
restores etcd as usual."""
import signal
import tempfile
import unittest

from tests.integration import test_rebuild
from tests.integration.harness import wait_for
from tests.integration.test_rebuild import BackedUp
from tests.standins.proxmox_api import ProxmoxApi

VMIDS = [8101, 8102, 8103]


def setUpModule():
    test_rebuild.setUpModule()


def tearDownModule():
    test_rebuild.tearDownModule()


class RebuildProxmoxTest(BackedUp, unittest.TestCase):
    def proxmox_lab(self):
        self.pve = ProxmoxApi(tempfile.mkdtemp(prefix="pve-"), auth_delay=0.2, task_seconds=1.0,
                              first_poll_400=False).start()
        self.addCleanup(self.pve.stop)
        lab = self.lab(machine_extra=lambda i: ", proxmox: {vmid: %d, memory: 1024, disk: 4}"
                       % VMIDS[i])
        lab.bootd.write("lab.yaml", lab.lab_text + (
            "proxmox:\n  api: %s\n  token_file: %s\n  node: host3\n  fingerprint: \"%s\"\n"
            "  poll: 0\n" % (self.pve.url, self.pve.token_file, self.pve.fingerprint)))
        return lab

    def posts(self, suffix):
        return [r[1] for r in self.pve.requests("POST") if r[1].endswith(suffix)]

    def test_vms_created_and_reset_proxmox_down_midway_then_resumed(self):
        lab = self.proxmox_lab()
        self.backed_up_cluster(lab)
        r = lab.bootd.bootctl("vm", "apply", "--lab", lab.bootd.lab_path, "--state-dir",
                              lab.bootd.state, "cp-2")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.pve.vmids(), [8102])  # cp-2's VM survived, still running
        self.disaster(lab)
        lab.start()

        # the plan, with nothing changed yet: Proxmox asked, not told
        self.pve.reset_requests()
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", "latest")  # not a terminal: no --yes
        self.assertEqual(r.returncode, 1)
        self.assertIn("proxmox      create cp-1 (8101) reset cp-2 (8102) create cp-3 (8103)",
                      r.stdout)
        self.assertEqual([x for x in self.pve.requests() if x[0] != "GET"], [])
        self.assertIsNone(self.rebuild_state(lab))

        # Proxmox goes away once the first VM is made
        with self.pve.state.lock:  # every task runs 3 s
            self.pve.state.task_polls, self.pve.state.task_seconds = 10 ** 6, 3.0
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", "latest", "--yes", "--until", "etcd",
                              "--timeout", "1s")
        self.assertIn("started", r.stdout, r.stderr)
        self.assertEqual(self.rebuild_state(lab)["phase"], "vms")
        wait_for(lambda: self.pve.vmids(), lambda v: 8101 in v, 30)
        self.pve.stop()
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r["last_error"], 60)
        self.assertEqual(rb["phase"], "vms", lab.bootd.logs())
        self.assertIn("Proxmox %s" % self.pve.url, rb["last_error"])
        failed = [e for e in lab.bootd.events() if e["kind"] == "rebuild-vms-failed"]
        self.assertEqual(len(failed), 1, failed)
        self.assertIn("retrying", failed[0]["message"])

        # bootd restarted while Proxmox is down: the record says where it was
        lab.bootd.stop(signal.SIGKILL)
        lab.start()
        self.assertEqual(self.rebuild_state(lab)["phase"], "vms")
        self.pve.resume()
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r["phase"] != "vms", 90)
        self.assertEqual(rb["phase"], "reinstall", lab.bootd.logs())
        self.assertEqual(self.pve.vmids(), VMIDS)
        self.assertEqual(sorted(self.posts("/qemu")), ["/api2/json/nodes/host3/qemu"] * 2,
                         "each missing VM created once, across the outage and the restart")
        self.assertEqual(len(self.posts("/8102/status/reset")), 1)
        self.assertTrue(all(self.pve.vm(v)["status"] == "running" for v in VMIDS))
        self.assertIn("rebuild-vms", [e["kind"] for e in lab.bootd.events()])
        self.assertEqual(self.pve.violations(), [])

        # the machines come up: etcd is restored as in any rebuild
        lab.start_twins()
        rb = wait_for(lambda: self.rebuild_state(lab), lambda r: r["phase"] == "recovered", 120)
        self.assertEqual(rb["phase"], "recovered", lab.bootd.logs())
        self.assertEqual(wait_for(lambda: lab.etcd_get("/marker"), lambda v: v == "before-the-flood",
                                  60), "before-the-flood")

    def test_replace_recreates_the_vm_and_is_rerun_after_a_proxmox_outage(self):
        lab = self.proxmox_lab()
        lab.start_twins()
        lab.start()
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 3, 120), ["cp-1", "cp-2", "cp-3"])
        r = lab.bootd.bootctl("vm", "apply", "--lab", lab.bootd.lab_path, "--state-dir",
                              lab.bootd.state)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.pve.add_volume("local-lvm:vm-9999-pv-data", 1 << 30)  # a persistent volume
        lab.twins.pop("cp-3").stop()  # cp-3 dies

        # Proxmox is down: the member goes, the VM cannot; replace says to run it again
        self.pve.stop()
        r = lab.bootd.bootctl("machine", "replace", "cp-3", "--no-wait")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("cp-3 is told to install again and its etcd member is removed, but its VM "
                      "was not recreated (run bootctl machine replace cp-3 again once Proxmox "
                      "answers)", r.stderr)
        self.assertIn("Proxmox %s" % self.pve.url, r.stderr)
        self.assertEqual(lab.voters(), ["cp-1", "cp-2"])
        self.pve.resume()
        self.pve.reset_requests()
        r = lab.bootd.bootctl("machine", "replace", "cp-3", "--no-wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("cp-3: no etcd member of that name (removed before)", r.stdout)
        self.assertIn("cp-3: Proxmox: destroyed cp-3 (8103), created cp-3 (8103), started cp-3 (8103)",
                      r.stdout)
        writes = [x[:2] for x in self.pve.requests() if x[0] != "GET"]
        self.assertIn(("DELETE", "/api2/json/nodes/host3/qemu/8103"), writes)
        self.assertEqual([w for w in writes if "/8101" in w[1] or "/8102" in w[1]], [],
                         "the other machines' VMs are not touched")
        self.assertEqual(self.pve.vm(8103)["status"], "running")
        self.assertIn("local-lvm:vm-9999-pv-data", self.pve.volumes())
        self.assertEqual(self.pve.violations(), [])
        kinds = [e["kind"] for e in lab.bootd.events("cp-3")]
        self.assertIn("machine-replace-failed", kinds)
        self.assertEqual(kinds[-1], "machine-replace")

        lab.twin("cp-3")  # the new VM's machine comes up with an empty etcd and joins
        self.assertEqual(wait_for(lab.voters, lambda v: len(v) == 3, 120), ["cp-1", "cp-2", "cp-3"])

    def test_proxmox_unreachable_at_plan_time_refuses(self):
        lab = self.proxmox_lab()
        self.backed_up_cluster(lab)
        self.disaster(lab)
        lab.start()
        self.pve.stop()
        r = lab.bootd.bootctl("rebuild", "--etcd-snapshot", "latest", "--yes")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Proxmox %s" % self.pve.url, r.stderr)
        self.assertIsNone(self.rebuild_state(lab), "nothing was started")
        self.pve.resume()


if __name__ == "__main__":
    unittest.main()
