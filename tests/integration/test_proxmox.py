"""bootctl vm against the Proxmox VE API stand-in (tests/standins/proxmox_api.py): plan,
apply and its idempotence, changes, locks, failing tasks, TLS and token errors, and the
rules that keep data: vmid 9999 and protected ids are never touched, a destroy never frees
a volume bootd did not create."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

from tests.integration.harness import BOOTCTL, Bootd, free_port, lab_text, wait_for
from tests.standins.kube_apiserver import KubeApiServer
from tests.standins.pki import kubeconfig, make_pki
from tests.standins.proxmox_api import ProxmoxApi

LAB = """\
cluster:
  name: vmtest
  talos_version: v1.13.9
lan:
  interface: lo
  dnsmasq: false
  dhcp: proxy
  subnet: 127.0.0.0/8
  boot_server: 127.0.0.1
machines:
  - name: ctrl-00
    mac: "bc:24:11:00:00:01"
    role: controlplane
    ip: 127.0.0.11
    proxmox: {{vmid: 8101, cores: 2, memory: {mem}{cp}}}
  - name: work-00
    mac: "bc:24:11:00:00:02"
    role: worker
    hostname: work-00-host
    proxmox: {{vmid: {worker_vmid}, cores: 4, memory: 3072, disk: 20}}
proxmox:
  api: {api}
  token_file: {token_file}
  node: {node}
{extra}"""


class ProxmoxCase(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="bootd-pve-")
        self.pve = ProxmoxApi(os.path.join(self.root, "pve"), auth_delay=0.5).start()
        self.token_file = self.pve.token_file
        self.state_dir = os.path.join(self.root, "state")
        self.lab(ca=True)

    def tearDown(self):
        self.pve.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def lab(self, mem=2048, worker_vmid=8201, node="host3", api=None, ca=False, extra="", cp="",
            cluster="vmtest"):
        if ca:
            extra = "  ca_file: %s\n" % self.pve.crt + extra
        text = LAB.format(mem=mem, worker_vmid=worker_vmid, node=node, api=api or self.pve.url,
                          token_file=self.token_file, extra=extra, cp=cp)
        text = text.replace("name: vmtest", "name: " + cluster)
        self.lab_path = os.path.join(self.root, "lab.yaml")
        with open(self.lab_path, "w") as f:
            f.write(text)
        return text

    def edit_lab(self, old, new):
        with open(self.lab_path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(self.lab_path, "w") as f:
            f.write(text.replace(old, new))

    def vm(self, *args, stdin=None, json_out=False):
        cmd = [BOOTCTL] + (["-o", "json"] if json_out else []) + ["vm", args[0], "--lab", self.lab_path,
                                                                "--state-dir", self.state_dir] + list(args[1:])
        start = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, input=stdin or "", timeout=120)
        p.elapsed = time.monotonic() - start
        return p

    def ok(self, *args, **kw):
        p = self.vm(*args, **kw)
        self.assertEqual(p.returncode, 0, "bootctl vm %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p

    def plan(self):
        return {i["vmid"]: i for i in json.loads(self.ok("plan", json_out=True).stdout)}

    def writes(self):
        return [r for r in self.pve.requests() if r[0] in ("POST", "PUT", "DELETE")]


class TestPlanApply(ProxmoxCase):
    def test_plan_apply_and_a_second_apply_changes_nothing(self):
        plan = self.plan()
        self.assertEqual({k: v["action"] for k, v in plan.items()}, {8101: "create", 8201: "create"})
        self.assertEqual(self.pve.vmids(), [], "plan must not change anything")
        out = self.ok("apply").stdout
        self.assertIn("ctrl-00 (VM 8101): created", out)
        self.assertIn("work-00 (VM 8201): started", out)
        c = self.pve.vm(8201)["config"]
        self.assertEqual(self.pve.vm(8201)["status"], "running")
        self.assertEqual(c["name"], "work-00-host")
        self.assertEqual(c["net0"], "virtio=BC:24:11:00:00:02,bridge=vmbr0")
        self.assertEqual(c["boot"], "order=scsi0;net0")
        self.assertTrue(c["scsi0"].startswith("local-lvm:vm-8201-disk-0,"), c["scsi0"])
        self.assertIn("size=20G", c["scsi0"])
        self.assertEqual((c["memory"], c["cores"], c["machine"], c["bios"], c["cpu"]),
                         ("3072", "4", "q35", "seabios", "host"))
        self.assertIn("bootd", c["tags"].split(";"))
        self.assertEqual(c["onboot"], "1")
        self.assertIn("Managed by bootd", c["description"])
        self.assertRegex(c["smbios1"], r"^uuid=[0-9a-f-]{36}$")
        uuid = c["smbios1"]
        # idempotent: a second apply sends no write at all
        self.pve.reset_requests()
        out = self.ok("apply").stdout
        self.assertIn("nothing to do", out)
        self.assertEqual(self.writes(), [])
        self.assertEqual({v["action"] for v in self.plan().values()}, {"ok"})
        # the smbios1 uuid is recorded in state.db, so a rebuilt VM gets the same one
        self.ok("destroy", "--yes", "work-00")
        self.ok("apply", "work-00")
        self.assertEqual(self.pve.vm(8201)["config"]["smbios1"], uuid)

    def recorded_uuids(self):
        with sqlite3.connect(os.path.join(self.state_dir, "state.db")) as db:
            return {m: (u, s) for m, u, s in db.execute("SELECT mac, uuid, source FROM vm_uuids")}

    def test_uuid_is_recorded_once_and_survives_renames(self):
        plan = self.plan()
        self.assertEqual(self.recorded_uuids(), {}, "plan records nothing")
        self.ok("apply")
        uuid = self.pve.vm(8201)["config"]["smbios1"][len("uuid="):]
        self.assertEqual(plan[8201]["uuid"], uuid)
        self.assertEqual(self.recorded_uuids()["BC:24:11:00:00:02"], (uuid, "derived"))
        # the cluster and the machine are renamed: the VM is renamed, its uuid stays
        self.lab(ca=True, cluster="homelab")
        self.edit_lab("name: work-00\n", "name: work-01\n")
        item = self.plan()[8201]
        self.assertEqual([c["key"] for c in item["changes"]], ["description"], item)
        self.assertEqual(item["uuid"], uuid)
        self.ok("destroy", "--yes", "work-01")
        self.ok("apply")
        self.assertEqual(self.pve.vm(8201)["config"]["smbios1"], "uuid=" + uuid)

    def test_an_existing_vms_uuid_is_adopted_not_overwritten(self):
        # a VM made before bootd recorded uuids (or by hand, tagged bootd)
        theirs = "4c4c4544-0042-3510-8052-b4c04f4e5a31"
        self.pve.add_vm(8201, {"name": "work-00-host", "tags": "bootd", "smbios1": "uuid=" + theirs.upper()})
        item = self.plan()[8201]
        self.assertEqual(item["uuid"], theirs)
        self.assertTrue(item["uuid_adopted"])
        self.assertNotIn("smbios1", [c["key"] for c in item["changes"]])
        self.pve.reset_requests()
        self.ok("apply")
        self.assertNotIn("smbios1", [k for r in self.writes() if "/8201" in r[1] for k in r[2]])
        self.assertEqual(self.recorded_uuids()["BC:24:11:00:00:02"], (theirs, "adopted"))
        # recreated from lab.yaml: the adopted uuid, from state.db
        self.ok("destroy", "--yes", "work-00")
        self.ok("apply")
        self.assertEqual(self.pve.vm(8201)["config"]["smbios1"], "uuid=" + theirs)
        # a uuid in lab.yaml is asked for: plan shows the change, apply makes it
        self.edit_lab("    hostname: work-00-host\n",
                      "    hostname: work-00-host\n    uuid: 11111111-2222-4333-8444-555555555555\n")
        item = self.plan()[8201]
        self.assertEqual(item["changes"], [{"key": "smbios1", "from": "uuid=" + theirs,
                                            "to": "uuid=11111111-2222-4333-8444-555555555555"}])
        self.ok("apply")
        self.assertEqual(self.pve.vm(8201)["config"]["smbios1"],
                         "uuid=11111111-2222-4333-8444-555555555555")
        self.assertEqual(self.recorded_uuids()["BC:24:11:00:00:02"],
                         ("11111111-2222-4333-8444-555555555555", "lab"))
        # taken out of lab.yaml again: the VM keeps the uuid it was given
        self.edit_lab("    uuid: 11111111-2222-4333-8444-555555555555\n", "")
        item = self.plan()[8201]
        self.assertEqual(item["action"], "ok", item)
        self.assertEqual(item["uuid"], "11111111-2222-4333-8444-555555555555")

    def test_changed_memory_is_one_config_change(self):
        self.ok("apply")
        self.lab(mem=4096, ca=True)
        item = self.plan()[8101]
        self.assertEqual(item["action"], "change")
        self.assertEqual(item["changes"], [{"key": "memory", "from": "2048", "to": "4096"}])
        self.pve.reset_requests()
        out = self.ok("apply").stdout
        self.assertIn("changed memory (takes effect when the VM restarts)", out)
        puts = [r for r in self.writes()]
        self.assertEqual(len(puts), 1, puts)
        self.assertEqual(puts[0][0], "PUT")
        self.assertEqual(puts[0][2]["memory"], "4096")
        self.assertIn("digest", puts[0][2])
        self.assertEqual(self.pve.vm(8101)["config"]["memory"], "4096")
        self.assertEqual(self.plan()[8101]["action"], "ok")

    def test_a_larger_disk_is_a_resize_and_a_smaller_one_is_refused(self):
        self.ok("apply")
        self.lab(mem=4096, ca=True, cp=", disk: 40")
        item = self.plan()[8101]
        self.assertEqual(item["action"], "change")
        self.assertEqual(item["changes"], [{"key": "memory", "from": "2048", "to": "4096"},
                                           {"key": "scsi0.size", "from": "32G", "to": "40G"}])
        self.pve.reset_requests()
        out = self.ok("apply").stdout
        self.assertIn("ctrl-00 (VM 8101): grew scsi0 from 32G to 40G", out)
        self.assertIn("ctrl-00 (VM 8101): changed memory", out)
        writes = self.writes()
        self.assertEqual([(r[0], r[1].rsplit("/", 1)[-1]) for r in writes], [("PUT", "config"), ("PUT", "resize")])
        self.assertNotIn("scsi0.size", writes[0][2])
        self.assertEqual((writes[1][2]["disk"], writes[1][2]["size"]), ("scsi0", "40G"))
        self.assertIn("size=40G", self.pve.vm(8101)["config"]["scsi0"])
        self.assertEqual(self.pve.volumes()["local-lvm:vm-8101-disk-0"], 40 << 30)
        self.pve.reset_requests()
        self.assertIn("nothing to do", self.ok("apply").stdout)
        self.assertEqual(self.writes(), [])
        # smaller than the VM's disk: a conflict in the plan, refused by apply before anything
        self.lab(mem=4096, ca=True, cp=", disk: 36")
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("conflict", p.stdout)
        self.assertIn("Proxmox cannot shrink a disk; set disk: to 40G or more", p.stdout)
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing was changed: machine ctrl-00: lab.yaml's disk is 36G, the VM's scsi0 is 40G",
                      p.stderr)
        self.assertEqual(self.writes(), [])
        self.assertEqual(self.pve.volumes()["local-lvm:vm-8101-disk-0"], 40 << 30)

    def test_the_standin_resizes_as_proxmox_does(self):
        import ssl
        import urllib.error
        import urllib.parse
        import urllib.request
        self.ok("apply")
        with open(self.token_file) as f:
            token = f.read().strip()
        ctx = ssl.create_default_context(cafile=self.pve.crt)

        def call(method, path, **params):
            data = urllib.parse.urlencode(params).encode() if method == "PUT" else None
            req = urllib.request.Request(self.pve.url + "/api2/json" + path, data=data, method=method,
                                         headers={"Authorization": "PVEAPIToken=" + token})
            try:
                with urllib.request.urlopen(req, context=ctx) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        def put(**params):
            return call("PUT", "/nodes/host3/qemu/8201/resize", **params)

        def task(upid):
            path = "/nodes/host3/tasks/%s/status" % urllib.parse.quote(upid, safe="")
            d = wait_for(lambda: call("GET", path)[1].get("data") or {},
                         lambda d: d.get("status") == "stopped", 10)
            return d.get("exitstatus")
        code, body = put(disk="scsi0", size="20")  # bytes: smaller
        self.assertEqual(code, 200)
        self.assertEqual(task(body["data"]), "shrinking disks is not supported")
        code, body = put(disk="scsi0", size="+4G")
        self.assertEqual(task(body["data"]), "OK")
        self.assertEqual(self.pve.volumes()["local-lvm:vm-8201-disk-0"], 24 << 30)
        code, body = put(disk="scsi0", size="24G")
        self.assertEqual(task(body["data"]), "OK")
        self.assertIn("size=24G", self.pve.vm(8201)["config"]["scsi0"])
        code, body = put(disk="scsi9", size="30G")
        self.assertEqual(task(body["data"]), "disk 'scsi9' does not exist")
        code, body = put(disk="net0", size="1G", foo="1")
        self.assertEqual(code, 400)
        self.assertEqual(set(body["errors"]), {"disk", "foo"})
        code, body = put(disk="scsi0", size="-1G")
        self.assertEqual((code, body["errors"]), (400, {"size": "value does not match the regex pattern"}))

    def test_a_locked_vm_is_waited_for_and_a_lock_timeout_retried(self):
        self.ok("apply")
        self.lab(mem=4096, ca=True)
        self.pve.lock_vm(8101, "backup", seconds=1.5)
        self.pve.config_timeouts(1)
        self.pve.reset_requests()
        p = self.ok("apply")
        self.assertGreaterEqual(p.elapsed, 1.4)
        self.assertEqual(self.pve.vm(8101)["config"]["memory"], "4096")
        polls = self.pve.requests("GET", "/api2/json/nodes/host3/qemu/8101/status/current")
        self.assertGreater(len(polls), 2)
        self.assertEqual(len(self.pve.requests("PUT")), 2, "the 'got timeout' PUT is sent again")

    def test_list_shows_power_and_the_machine_behind_each_mac(self):
        self.ok("apply", "ctrl-00")
        self.pve.add_vm(700, {"name": "stray", "net0": "e1000=BC:24:11:00:00:02,bridge=vmbr0"},
                        status="running")
        self.pve.add_vm(701, {"name": "nas", "net0": "virtio=BC:24:11:99:99:99,bridge=vmbr0"})
        rows = {r["vmid"]: r for r in json.loads(self.ok("list", json_out=True).stdout)}
        self.assertEqual((rows[8101]["machine"], rows[8101]["status"], rows[8101]["bootd"]),
                         ("ctrl-00", "running", True))
        self.assertEqual(rows[8101]["macs"], ["bc:24:11:00:00:01"])
        # a VM bootd did not make, whose NIC is a lab machine's MAC: found by MAC
        self.assertEqual((rows[700]["machine"], rows[700]["bootd"]), ("work-00", False))
        self.assertIsNone(rows[701]["machine"])
        self.assertEqual(rows[701]["status"], "stopped")

    def test_not_in_lab_and_foreign_vmid(self):
        self.ok("apply")
        self.lab(worker_vmid=8301, ca=True)
        self.pve.add_vm(8301, {"name": "someone-elses", "tags": "prod"})
        plan = self.plan_raw()
        self.assertEqual(plan.returncode, 1)
        items = {i["vmid"]: i for i in json.loads(plan.stdout)}
        self.assertEqual(items[8201]["action"], "not-in-lab")
        self.assertEqual(items[8301]["action"], "conflict")
        self.assertIn("bootd did not create it", items[8301]["reason"])
        self.pve.reset_requests()
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing was changed", p.stderr)
        self.assertEqual(self.writes(), [])

    def plan_raw(self):
        return self.vm("plan", json_out=True)


class TestPowerAndTasks(ProxmoxCase):
    def test_power_commands(self):
        self.ok("apply")
        self.ok("shutdown", "ctrl-00")
        self.assertEqual(self.pve.vm(8101)["status"], "stopped")
        self.ok("stop", "ctrl-00")  # already stopped: nothing to do, no error
        self.ok("start", "ctrl-00")
        self.ok("start", "ctrl-00")
        self.assertEqual(self.pve.vm(8101)["status"], "running")
        self.ok("reset", "ctrl-00")
        p = self.vm("start", "nope")
        self.assertEqual(p.returncode, 1)
        self.assertIn('no machine "nope"', p.stderr)

    def test_a_failing_task_names_vm_exit_status_and_log(self):
        self.pve.fail_next_task("qmstart", "start failed: QEMU exited with code 1",
                                ["kvm: -netdev tap,id=net0: could not open /dev/net/tun"])
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        self.assertIn("VM 8101 (ctrl-00): start: task qmstart failed: start failed: QEMU exited "
                      "with code 1", p.stderr)
        self.assertIn("could not open /dev/net/tun", p.stderr)

    def test_the_standin_control_routes(self):
        """What a test in another process (the program mode) uses instead of the Python API."""
        import ssl
        import urllib.parse
        import urllib.request
        ctx = ssl.create_default_context(cafile=self.pve.crt)

        def control(method, what, **params):
            data = urllib.parse.urlencode(params).encode() if params else None
            req = urllib.request.Request(self.pve.url + "/_standin/" + what, data=data, method=method)
            return json.load(urllib.request.urlopen(req, context=ctx))["data"]

        control("POST", "fail", type="qmcreate", exitstatus="storage full", log="no space left")
        p = self.vm("apply", "ctrl-00")
        self.assertEqual(p.returncode, 1)
        self.assertIn("task qmcreate failed: storage full — log: ", p.stderr)
        self.assertIn("no space left", p.stderr)
        self.assertEqual(self.pve.vmids(), [], "a failed create leaves no VM")
        self.ok("apply", "ctrl-00")
        control("POST", "lock", vmid="8101", lock="backup", seconds="1")
        self.assertEqual(self.pve.vm(8101)["status"], "running")
        state = control("GET", "state")
        self.assertEqual(state["vms"]["8101"]["status"], "running")
        self.assertEqual(state["violations"], [])

    def test_parameter_errors_name_vm_and_parameter(self):
        self.lab(ca=True, cp=", machine: q99")
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        self.assertIn("VM 8101 (ctrl-00): create: Proxmox answered 400: Parameter verification "
                      "failed. — parameter machine = \"q99\":", p.stderr)
        self.assertIn("regex pattern", p.stderr)

    def test_per_machine_settings(self):
        self.lab(ca=True, cp=", bios: ovmf, vlan: 150, bridge: vmbr0, tags: [talos, cp]",
                 extra="  vlan: 20\n")
        self.ok("apply")
        c = self.pve.vm(8101)["config"]
        self.assertEqual(c["bios"], "ovmf")
        self.assertRegex(c["efidisk0"], r"^local-lvm:vm-8101-disk-\d,efitype=4m,pre-enrolled-keys=0,")
        self.assertEqual(c["net0"], "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=150")
        self.assertEqual(c["tags"], "bootd;talos;cp")
        self.assertEqual(self.pve.vm(8201)["config"]["net0"], "virtio=BC:24:11:00:00:02,bridge=vmbr0,tag=20")
        self.assertEqual({v["action"] for v in self.plan().values()}, {"ok"})

    def test_bridge_missing_fails_the_start_task(self):
        self.lab(ca=True, extra="  bridge: vmbr9\n")
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        self.assertIn("bridge 'vmbr9' does not exist", p.stderr)


class TestDataSafety(ProxmoxCase):
    def test_vmid_9999_and_protected_ids_are_refused_with_file_line_col(self):
        text = self.lab(worker_vmid=9999, ca=True)
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if "vmid: 9999" in l)
        self.assertIn("lab.yaml:%d:" % line, p.stderr)
        self.assertIn("machines[1].proxmox.vmid: 9999 is the Proxmox CSI plugin's volume owner", p.stderr)
        text = self.lab(ca=True, extra="  protected_vmids: [8000, 8201]\n")
        p = self.vm("apply")
        self.assertEqual(p.returncode, 1)
        self.assertIn("proxmox.vmid: 8201 is listed in proxmox.protected_vmids (machine work-00)", p.stderr)
        self.assertEqual(self.writes(), [])
        self.assertEqual(self.pve.vmids(), [])

    def test_a_bootd_tagged_vm_outside_the_lab_is_left_alone(self):
        self.lab(ca=True, extra="  protected_vmids: [8000]\n")
        self.pve.add_vm(8000, {"name": "keep", "tags": "bootd"}, status="running")
        self.assertEqual(self.plan()[8000]["action"], "not-in-lab")
        self.ok("apply")
        self.assertEqual([r for r in self.writes() if "/8000" in r[1]], [])
        self.assertEqual(self.pve.vm(8000)["status"], "running")

    def test_destroy_asks_and_frees_only_its_own_disks(self):
        self.pve.add_volume("local-lvm:vm-9999-pv-sonarr", 4 << 30)
        self.ok("apply")
        # the CSI plugin attached a persistent volume to the worker
        self.pve.set_config(8201, scsi1="local-lvm:vm-9999-pv-sonarr,size=4G")
        p = self.vm("destroy", "work-00", stdin="no\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing destroyed", p.stderr)
        self.assertIsNotNone(self.pve.vm(8201))
        p = self.ok("destroy", "work-00", stdin="yes\n")
        self.assertIn("destroyed", p.stdout)
        self.assertIsNone(self.pve.vm(8201))
        vols = self.pve.volumes()
        self.assertIn("local-lvm:vm-9999-pv-sonarr", vols)
        self.assertNotIn("local-lvm:vm-8201-disk-0", vols)
        self.assertEqual(self.pve.violations(), [])
        deletes = self.pve.requests("DELETE")
        self.assertEqual(len(deletes), 1)
        self.assertEqual(deletes[0][2].get("destroy-unreferenced-disks"), "1")

    def test_destroy_refused_when_it_would_free_foreign_disks(self):
        self.ok("apply")
        self.pve.add_volume("local-lvm:vm-8201-disk-7", 1 << 30)
        self.pve.set_config(8201, scsi2="local-lvm:vm-8201-disk-7,size=1G")
        self.pve.add_volume("local-lvm:vm-8101-data", 1 << 30)  # unattached, owned by 8101
        for name, vol in (("work-00", "local-lvm:vm-8201-disk-7 (scsi2) was not created by bootd"),
                          ("ctrl-00", "local-lvm:vm-8101-data is not attached")):
            p = self.vm("destroy", "--yes", name)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("destroy refused", p.stderr)
            self.assertIn(vol, p.stderr)
        self.assertEqual(self.pve.vmids(), [8101, 8201])
        self.assertEqual(self.pve.requests("DELETE"), [])
        self.assertEqual(self.pve.vm(8201)["status"], "running", "refused before stopping")

    def test_destroy_refused_when_its_disk_is_attached_to_another_vm(self):
        self.ok("apply")
        disk = self.pve.vm(8201)["config"]["scsi0"].split(",")[0]
        self.pve.set_config(8101, scsi3=disk + ",size=8G")  # someone moved it over by hand
        p = self.vm("destroy", "--yes", "work-00")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("destroy refused", p.stderr)
        self.assertIn("%s is scsi3 of VM 8101" % disk, p.stderr)
        self.assertEqual(self.pve.vmids(), [8101, 8201])
        self.assertIn(disk, self.pve.volumes())
        self.assertEqual(self.pve.requests("DELETE"), [])

    def test_destroy_refuses_a_vm_bootd_did_not_make(self):
        self.pve.add_vm(8101, {"name": "ctrl-00", "tags": "prod"})
        p = self.vm("destroy", "--yes", "ctrl-00")
        self.assertEqual(p.returncode, 1)
        self.assertIn('bootd did not create this VM (no "bootd" tag)', p.stderr)

    def test_volumes_lists_the_csi_owner(self):
        self.pve.add_volume("local-lvm:vm-9999-pv-a", 4 << 30)
        self.pve.add_volume("local-lvm:vm-9999-pv-b", 1 << 30)
        self.ok("apply")
        vols = json.loads(self.ok("volumes", json_out=True).stdout)
        self.assertEqual([(v["volid"], v["size"], v["owner"]) for v in vols],
                         [("local-lvm:vm-9999-pv-a", 4 << 30, 9999),
                          ("local-lvm:vm-9999-pv-b", 1 << 30, 9999)])


def csi_pv(name, handle, claim=None):
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain",
                   "csi": {"driver": "csi.proxmox.sinextra.dev", "fsType": "ext4",
                           "volumeHandle": handle}}}
    if claim:
        ns, cname = claim.split("/")
        pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": cname}
    return pv


class TestDestroyPersistentVolumes(ProxmoxCase):
    """vm destroy asks the cluster which PersistentVolumes of the Proxmox CSI plugin name
    the disks the delete would free."""
    def setUp(self):
        super().setUp()
        self.kpki = make_pki(os.path.join(self.root, "kube"))
        self.kube = KubeApiServer(self.kpki).start()
        self.addCleanup(self.kube.stop)
        self.kc = os.path.join(self.root, "kubeconfig")
        kubeconfig(self.kc, self.kube.url, self.kpki)
        self.ok("apply")
        self.disk = self.pve.vm(8201)["config"]["scsi0"].split(",")[0]  # local-lvm:vm-8201-disk-0

    def test_a_pv_on_a_disk_the_delete_frees_refuses_the_destroy(self):
        storage, disk = self.disk.split(":")
        self.kube.put(csi_pv("pv-media", "vmtest/host3/%s/%s" % (storage, disk), claim="media/library"))
        # the plugin's own volumes (vm-9999-*) are never freed: attached or not, no refusal
        self.pve.add_volume("local-lvm:vm-9999-pv-sonarr", 4 << 30)
        self.pve.set_config(8101, scsi1="local-lvm:vm-9999-pv-sonarr,size=4G")
        self.kube.put(csi_pv("pv-sonarr", "vmtest/host3/local-lvm/vm-9999-pv-sonarr", claim="arr/sonarr"))
        p = self.vm("destroy", "--yes", "--kubeconfig", self.kc, "work-00")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("VM 8201 (work-00): destroy refused", p.stderr)
        self.assertIn("%s is PersistentVolume pv-media (claim media/library)" % self.disk, p.stderr)
        self.assertIn("--force-data-loss", p.stderr)
        self.assertEqual(self.pve.vmids(), [8101, 8201])
        self.assertEqual(self.pve.vm(8201)["status"], "running", "refused before stopping")
        self.assertEqual(self.pve.requests("DELETE"), [])
        # KUBECONFIG works as --kubeconfig does
        p = subprocess.run([BOOTCTL, "vm", "destroy", "--lab", self.lab_path, "--state-dir", self.state_dir,
                            "--yes", "work-00"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, KUBECONFIG=self.kc))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("PersistentVolume pv-media", p.stderr)
        self.ok("destroy", "--yes", "--kubeconfig", self.kc, "ctrl-00")
        self.assertIn("local-lvm:vm-9999-pv-sonarr", self.pve.volumes())
        # asked for: destroyed, and said so
        p = self.ok("destroy", "--yes", "--kubeconfig", self.kc, "--force-data-loss", "work-00")
        self.assertIn("freeing what Kubernetes still uses (--force-data-loss)", p.stderr)
        self.assertEqual(self.pve.vmids(), [])

    def test_the_same_disk_name_on_another_node_or_driver_is_not_this_disk(self):
        storage, disk = self.disk.split(":")
        self.kube.put(csi_pv("pv-elsewhere", "vmtest/host4/%s/%s" % (storage, disk)))
        other = csi_pv("pv-nfs", "vmtest/host3/%s/%s" % (storage, disk))
        other["spec"]["csi"]["driver"] = "nfs.csi.k8s.io"
        self.kube.put(other)
        self.ok("destroy", "--yes", "--kubeconfig", self.kc, "work-00")
        self.assertEqual(self.pve.vmids(), [8101])

    def test_a_pv_on_shared_storage_names_no_node(self):
        storage, disk = self.disk.split(":")
        self.kube.put(csi_pv("pv-shared", "vmtest//%s/%s" % (storage, disk), claim="db/data"))
        p = self.vm("destroy", "--yes", "--kubeconfig", self.kc, "work-00")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("PersistentVolume pv-shared (claim db/data)", p.stderr)

    def test_a_cluster_that_does_not_answer_refuses_unless_forced(self):
        kubeconfig(self.kc, "https://127.0.0.1:%d" % free_port(), self.kpki)
        p = self.vm("destroy", "--yes", "--kubeconfig", self.kc, "work-00")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("cannot check which PersistentVolumes its disks hold", p.stderr)
        self.assertIn("--kubeconfig FILE", p.stderr)
        self.assertEqual(self.pve.requests("DELETE"), [])
        p = self.ok("destroy", "--yes", "--kubeconfig", self.kc, "--force-data-loss", "work-00")
        self.assertIn("PersistentVolumes not checked (--force-data-loss)", p.stderr)
        self.assertEqual(self.pve.vmids(), [8101])

    def test_without_cluster_credentials_it_says_it_did_not_check(self):
        p = self.ok("destroy", "--yes", "work-00")
        self.assertIn("PersistentVolumes not checked: no --kubeconfig, no KUBECONFIG", p.stderr)


class TestVolumes(ProxmoxCase):
    def test_volumes_apply_creates_only_the_missing_ones(self):
        self.lab(ca=True, extra="  volumes:\n    - {name: pv-sonarr, size: 4G}\n"
                                "    - {name: pv-radarr, size: 1G}\n    - {name: pv-lidarr, size: 2G}\n")
        self.pve.add_volume("local-lvm:vm-9999-pv-sonarr", 4 << 30)
        self.pve.add_volume("local-lvm:vm-9999-pv-lidarr", 3 << 30)  # grown by hand
        self.pve.add_volume("local-lvm:vm-9999-pv-old", 1 << 30)
        rows = {v["volid"]: v["state"] for v in json.loads(self.ok("volumes", json_out=True).stdout)}
        self.assertEqual(rows, {"local-lvm:vm-9999-pv-sonarr": "ok",
                                "local-lvm:vm-9999-pv-radarr": "missing",
                                "local-lvm:vm-9999-pv-lidarr": "other-size",
                                "local-lvm:vm-9999-pv-old": "not-in-lab"})
        self.pve.reset_requests()
        out = self.ok("volumes", "apply").stdout
        self.assertIn("local-lvm:vm-9999-pv-radarr (1G): created", out)
        self.assertIn("local-lvm:vm-9999-pv-lidarr (2G): exists with another size; left as it is", out)
        posts = [r for r in self.writes()]
        self.assertEqual([(r[0], r[2]["filename"], r[2]["size"]) for r in posts],
                         [("POST", "vm-9999-pv-radarr", "1048576K")])
        self.assertEqual(self.pve.volumes()["local-lvm:vm-9999-pv-radarr"], 1 << 30)
        self.assertEqual(self.pve.volumes()["local-lvm:vm-9999-pv-lidarr"], 3 << 30)
        self.pve.reset_requests()
        self.ok("volumes", "apply")
        self.assertEqual(self.writes(), [])

    def test_volume_errors_name_the_field(self):
        text = self.lab(ca=True, extra="  volumes:\n    - {name: pv-a, size: 4Q}\n")
        p = self.vm("volumes")
        self.assertEqual(p.returncode, 1)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if "4Q" in l)
        self.assertIn("lab.yaml:%d:" % line, p.stderr)
        self.assertIn('proxmox.volumes[0].size: "4Q" is not a size', p.stderr)


class TestCsiCredentials(ProxmoxCase):
    def csi(self):
        out = os.path.join(self.root, "secret.yaml")
        self.ok("csi", "-o", out)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        with open(out) as f:
            doc = yaml.safe_load(f)
        return doc, yaml.safe_load(doc["stringData"]["config.yaml"])["clusters"][0]

    def test_role_user_acl_and_token_made_once(self):
        doc, cluster = self.csi()
        self.assertEqual((doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"]),
                         ("Secret", "csi-proxmox", "proxmox-csi-plugin"))
        self.assertEqual(cluster["url"], self.pve.url + "/api2/json")
        self.assertEqual(cluster["token_id"], "kubernetes-csi@pve!csi")
        self.assertEqual(cluster["region"], "vmtest")
        s = self.pve.state
        self.assertEqual(s.roles["CSI"], {"VM.Audit", "VM.Config.Disk", "Datastore.Allocate",
                                          "Datastore.AllocateSpace", "Datastore.Audit"})
        self.assertIn(("/", "CSI", "kubernetes-csi@pve"), s.acl)
        self.assertEqual(s.users["kubernetes-csi@pve"]["tokens"]["csi"]["privsep"], 0)
        self.assertIn("kubernetes-csi@pve!csi=" + cluster["token_secret"], s.tokens)
        kept = os.path.join(self.root, "proxmox-csi.token")
        self.assertEqual(os.stat(kept).st_mode & 0o777, 0o600)
        # a second run keeps the token: no POST, the same secret
        self.pve.reset_requests()
        _, again = self.csi()
        self.assertEqual(again["token_secret"], cluster["token_secret"])
        self.assertEqual([r for r in self.writes() if r[0] in ("POST", "DELETE")], [])
        # the kept secret is lost: the token is replaced, and the new one works
        os.unlink(kept)
        _, renewed = self.csi()
        self.assertNotEqual(renewed["token_secret"], cluster["token_secret"])
        self.assertNotIn("kubernetes-csi@pve!csi=" + cluster["token_secret"], s.tokens)
        self.assertIn("kubernetes-csi@pve!csi=" + renewed["token_secret"], s.tokens)


class TestStandinProgram(unittest.TestCase):
    def test_program_prints_where_it_listens_and_serves(self):
        root = tempfile.mkdtemp(prefix="bootd-pve-prog-")
        self.addCleanup(shutil.rmtree, root, True)
        p = subprocess.Popen([sys.executable, "-m", "tests.standins.proxmox_api", "--dir", root,
                              "--auth-delay", "0.2", "--node", "pve1", "--node", "pve2"],
                             stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.wait, 10)
        self.addCleanup(p.terminate)
        info = json.loads(p.stdout.readline())
        self.assertEqual(set(info), {"url", "port", "fingerprint", "ca_file", "token_file", "node"})
        self.assertEqual(info["node"], "pve1")
        self.assertEqual(os.stat(info["token_file"]).st_mode & 0o777, 0o600)
        lab = os.path.join(root, "lab.yaml")
        with open(lab, "w") as f:
            f.write(LAB.format(mem=2048, worker_vmid=8201, node="pve2", api=info["url"],
                               token_file=info["token_file"], cp="",
                               extra='  fingerprint: "%s"\n' % info["fingerprint"]))
        r = subprocess.run([BOOTCTL, "vm", "apply", "--lab", lab, "--state-dir",
                            os.path.join(root, "state")], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("work-00 (VM 8201): started", r.stdout)


class TestBootdSeesVms(ProxmoxCase):
    """bootd itself reads the VMs' power states: in the machines API, on the timeline, and
    for a MAC it does not know."""

    def test_power_state_in_machines_and_on_the_timeline(self):
        self.pve.add_vm(8101, {"name": "cp-1", "tags": "bootd",
                               "net0": "virtio=52:54:00:00:00:01,bridge=vmbr0"}, status="running")
        self.pve.add_vm(700, {"name": "stray", "net0": "virtio=52:54:00:00:00:99,bridge=vmbr0"})
        self.pve.add_vm(701, {"name": "nas", "net0": "virtio=52:54:00:00:00:77,bridge=vmbr0"},
                        status="running")
        bootd = Bootd(lab="")
        self.addCleanup(bootd.cleanup)
        bootd.write("lab.yaml", lab_text(bootd.port) + (
            "proxmox:\n  api: %s\n  token_file: %s\n  node: host3\n  ca_file: %s\n  poll: 1s\n"
            % (self.pve.url, self.pve.token_file, self.pve.crt)))
        bootd.start()
        self.assertEqual(bootd.ipxe("52:54:00:00:00:99")[0], 200)  # an unknown machine PXE-boots

        def machines():
            return {m["mac"]: m for m in bootd.api("GET", "/machines")[1]["machines"]}
        ms = wait_for(machines, lambda m: "vm" in m.get("52:54:00:00:00:99", {}) and
                      "vm" in m.get("52:54:00:00:00:01", {}))
        self.assertEqual(ms["52:54:00:00:00:01"]["vm"],
                         {"vmid": 8101, "name": "cp-1", "node": "host3", "power": "running"})
        self.assertEqual(ms["52:54:00:00:00:99"]["vm"]["name"], "stray")
        self.assertEqual(ms["52:54:00:00:00:99"]["state"], "discovered")
        out = bootd.bootctl("machines").stdout
        self.assertIn("8101 cp-1 running", out)
        self.assertIn("700 stray stopped", out)
        # a power change lands on the machine's timeline
        self.pve.state.vms[8101]["status"] = "stopped"
        self.pve.state.vms[701]["status"] = "stopped"
        ev = wait_for(lambda: bootd.events("cp-1"),
                      lambda e: any(x["kind"] == "power" for x in e))
        power = [x for x in ev if x["kind"] == "power"]
        self.assertEqual(power[0]["source"], "proxmox")
        self.assertEqual(power[0]["message"], "VM 8101 (cp-1) on host3: running -> stopped")
        # a VM that is no machine of bootd's gets no timeline (it stopped in the same round)
        import sqlite3
        with sqlite3.connect(os.path.join(bootd.state, "state.db")) as db:
            macs = [r[0] for r in db.execute("SELECT DISTINCT mac FROM events WHERE source = 'proxmox'")]
        self.assertEqual(macs, ["52:54:00:00:00:01"])


class TestConnectionErrors(ProxmoxCase):
    def test_bad_token_is_a_clear_error_after_the_401_delay(self):
        bad = os.path.join(self.root, "bad.token")
        with open(bad, "w") as f:
            f.write("root@pam!bootd=00000000-0000-0000-0000-000000000000\n")
        os.chmod(bad, 0o600)
        self.token_file = bad
        self.lab(ca=True)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("proxmox.token_file: the API token was refused", p.stderr)
        self.assertIn("401", p.stderr)
        self.assertGreaterEqual(p.elapsed, 0.5)
        self.assertNotIn("00000000-0000", p.stderr, "the secret must not be printed")

    def test_token_file_missing_or_readable_by_others(self):
        self.token_file = os.path.join(self.root, "missing.token")
        self.lab(ca=True)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("proxmox.token_file", p.stderr)
        self.assertIn("missing.token", p.stderr)
        open_token = os.path.join(self.root, "open.token")
        shutil.copy(self.pve.token_file, open_token)
        os.chmod(open_token, 0o644)
        self.token_file = open_token
        self.lab(ca=True)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("proxmox.token_file", p.stderr)
        self.assertIn("chmod", p.stderr)
        self.assertEqual(self.pve.requests(), [], "nothing is sent with a token others can read")

    def test_token_file_with_garbage(self):
        garbage = os.path.join(self.root, "garbage.token")
        with open(garbage, "w") as f:
            f.write("just-a-secret\n")
        os.chmod(garbage, 0o600)
        self.token_file = garbage
        self.lab(ca=True)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("USER@REALM!TOKENID=SECRET", p.stderr)

    def test_api_url_with_the_base_path(self):
        self.lab(api=self.pve.url + "/api2/json/", ca=True)
        self.ok("plan")

    def test_unreachable_api(self):
        port = free_port()
        self.lab(api="https://127.0.0.1:%d" % port, ca=True)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("proxmox.api https://127.0.0.1:%d" % port, p.stderr)

    def test_unknown_node(self):
        self.lab(node="host9", ca=True)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn('proxmox.node: no node "host9"', p.stderr)
        self.assertIn("(it has: host3)", p.stderr)

    def test_fingerprint_pinning(self):
        self.lab(extra='  fingerprint: "%s"\n' % self.pve.fingerprint.lower())
        self.ok("plan")
        wrong = ":".join(["AB"] * 32)
        text = self.lab(extra='  fingerprint: "%s"\n' % wrong)
        self.pve.reset_requests()
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("proxmox.fingerprint:", p.stderr)
        self.assertIn(self.pve.fingerprint, p.stderr)
        self.assertIn(wrong, p.stderr)
        self.assertEqual(self.pve.requests(), [], "the token must not reach a server that fails the pin")
        text = self.lab(extra='  fingerprint: "AB:CD"\n')
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if "fingerprint" in l)
        self.assertIn("lab.yaml:%d:" % line, p.stderr)
        self.assertIn("proxmox.fingerprint", p.stderr)

    def test_self_signed_certificate_without_ca_or_fingerprint_is_refused(self):
        self.lab(ca=False)
        p = self.vm("plan")
        self.assertEqual(p.returncode, 1)
        self.assertIn("TLS verification failed", p.stderr)
        self.assertIn("proxmox.fingerprint", p.stderr)
        self.assertEqual(self.pve.requests(), [], "no request may reach an unverified server")


if __name__ == "__main__":
    unittest.main()
