"""The node twin on its own (tests/standins/talos_node.py), driven through the Talos API
by a grpcio client with an os:admin certificate: three control planes from the configs
`bootctl gen config` makes form a real etcd cluster (one bootstrapped, two joining as
learners and promoted); a snapshot taken through EtcdSnapshot comes back through
EtcdRecover + Bootstrap{recover_etcd} on wiped nodes; members are listed and removed;
what Talos refuses, the twin refuses."""
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

import grpc

from tests.integration.harness import BOOTCTL, free_ports, wait_for
from tests.standins import pki, talos_apid, talos_node

HOSTS = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
WORKER = "127.0.0.34"
LAB = """\
cluster:
  name: twin
  talos_version: v1.13.9
  discovery: false
lan:
  interface: lo
  dnsmasq: false
  dhcp: proxy
  subnet: 127.0.0.0/8
  boot_server: 127.0.0.1
  http_port: 8080
machines:
  - {name: cp-1, mac: "52:54:00:00:00:31", role: controlplane, ip: 127.0.0.31}
  - {name: cp-2, mac: "52:54:00:00:00:32", role: controlplane, ip: 127.0.0.32}
  - {name: cp-3, mac: "52:54:00:00:00:33", role: controlplane, ip: 127.0.0.33}
  - {name: w-1, mac: "52:54:00:00:00:34", role: worker, ip: 127.0.0.34}
"""
_DIR = None
CONFIGS = {}


def setUpModule():
    global _DIR
    _DIR = tempfile.mkdtemp(prefix="bootd-twin-")
    lab = os.path.join(_DIR, "lab.yaml")
    with open(lab, "w") as f:
        f.write(LAB)
    for args in (["gen", "secrets", lab], ["gen", "config", lab, "-o", os.path.join(_DIR, "cfg")]):
        subprocess.run([BOOTCTL, *args], check=True, capture_output=True, timeout=120)
    for name in ("cp-1", "cp-2", "cp-3", "w-1"):
        with open(os.path.join(_DIR, "cfg", name + ".yaml")) as f:
            CONFIGS[name] = f.read()


def tearDownModule():
    shutil.rmtree(_DIR, ignore_errors=True)


class Client:
    """talosctl's side, in grpcio: os:admin client certificate from the bundle's os CA."""

    def __init__(self, d, host, port, orgs="os:admin"):
        os.makedirs(d, exist_ok=True)
        ca = pki.bundle_ca(os.path.join(_DIR, "secrets.yaml"), "os", d)
        crt, key = pki.issue(ca, d, "client-%s" % host, "/O=%s/CN=client" % orgs, "clientAuth")
        with open(ca[0], "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read(), key.encode(), crt.encode())
        self.ch = grpc.secure_channel("%s:%d" % (host, port), creds)

    def call(self, method, req, resp, kind="unary_unary"):
        return getattr(self.ch, kind)("/machine.MachineService/" + method,
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=resp.FromString)

    def bootstrap(self, recover=False, skip=False):
        return self.call("Bootstrap", None, talos_apid.BootstrapResponse)(
            talos_apid.BootstrapRequest(recover_etcd=recover, recover_skip_hash_check=skip),
            timeout=60)

    def recover(self, data):
        chunks = (talos_apid.Data(bytes=data[i:i + 4096]) for i in range(0, len(data), 4096))
        return self.call("EtcdRecover", None, talos_node.EtcdRecoverResponse, "stream_unary")(
            chunks, timeout=30)

    def snapshot(self):
        stream = self.call("EtcdSnapshot", None, talos_apid.Data, "unary_stream")(
            talos_apid.EtcdSnapshotRequest(), timeout=60)
        return b"".join(d.bytes for d in stream)

    def members(self, local=False):
        r = self.call("EtcdMemberList", None, talos_node.EtcdMemberListResponse)(
            talos_node.EtcdMemberListRequest(query_local=local), timeout=20)
        return list(r.messages[0].members)

    def remove(self, member_id):
        return self.call("EtcdRemoveMemberByID", None, talos_node.EtcdRemoveMemberByIDResponse)(
            talos_node.EtcdRemoveMemberByIDRequest(member_id=member_id), timeout=20)

    def close(self):
        self.ch.close()


class TwinTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="bootd-twin-t-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.twins = {}
        # one apid, client and peer port for all: each node has its own address
        self.apid_port, self.cport, self.pport = free_ports(3)

    def twin(self, i, ready_after=0.0, worker=False):
        name = "w-1" if worker else "cp-%d" % (i + 1)
        host = WORKER if worker else HOSTS[i]
        old = self.twins.pop(name, None)
        if old:
            old.stop()
        wd = tempfile.mkdtemp(prefix=name + "-", dir=self.root)  # a fresh disk
        t = talos_node.NodeTwin(CONFIGS[name], host, wd, HOSTS, apid_port=self.apid_port,
                                client_port=self.cport, peer_port=self.pport,
                                ready_after=ready_after,
                                trustd=self.twins.get("cp-1")).start()
        self.twins[name] = t
        self.addCleanup(t.stop)
        return t

    def client(self, host):
        c = Client(os.path.join(self.root, "client"), host, self.apid_port)
        self.addCleanup(c.close)
        return c

    def cluster(self):
        """Three control planes, cp-1 bootstrapped, every member a voter."""
        for i in range(3):
            self.twin(i)
        c = self.client(HOSTS[0])
        c.bootstrap()
        voters = lambda: [m for m in self.safe_members(c) if not m.is_learner]
        self.assertEqual(len(wait_for(voters, lambda v: len(v) == 3, 60)), 3,
                         [(m.hostname, m.is_learner) for m in self.safe_members(c)])
        return c

    def safe_members(self, c):
        try:
            return c.members()
        except grpc.RpcError:
            return []

    def put(self, twin, key, value):
        twin.etcdctl("put", key, value)

    def get(self, twin, key):
        return twin.etcdctl("get", key, "--print-value-only").strip()

    def test_bootstrap_join_snapshot_and_recover(self):
        c = self.cluster()
        self.assertEqual(sorted(m.hostname for m in c.members()), ["cp-1", "cp-2", "cp-3"])
        with self.assertRaises(grpc.RpcError) as e:
            c.bootstrap()
        self.assertEqual(e.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.put(self.twins["cp-2"], "/marker", "before-the-flood")
        snap = self.client(HOSTS[1]).snapshot()
        self.assertEqual(len(snap) % 512, 32)
        self.assertEqual(hashlib.sha256(snap[:-32]).digest(), snap[-32:])

        # disaster: every node wiped; the new ones take a while to mount EPHEMERAL
        for i in range(3):
            self.twin(i, ready_after=3600)
        c = self.client(HOSTS[0])
        with self.assertRaises(grpc.RpcError) as e:
            c.recover(snap)
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("not ready for recovery", e.exception.details())
        for t in self.twins.values():
            t.mount()
        c.recover(snap)
        self.assertTrue(os.path.exists(self.twins["cp-1"].recovery))
        c.bootstrap(recover=True)
        self.assertFalse(os.path.exists(self.twins["cp-1"].recovery), "restore deletes the upload")
        self.assertIn("cp-1", self.twins["cp-1"].restored + "cp-1")
        value = wait_for(lambda: self._try_get(self.twins["cp-1"], "/marker"),
                         lambda v: v == "before-the-flood", 30)
        self.assertEqual(value, "before-the-flood")
        voters = lambda: [m for m in self.safe_members(c) if not m.is_learner]
        self.assertEqual(len(wait_for(voters, lambda v: len(v) == 3, 60)), 3)
        self.assertEqual(self._try_get(self.twins["cp-3"], "/marker"), "before-the-flood")

    def _try_get(self, twin, key):
        try:
            return self.get(twin, key)
        except (talos_node.EtcdError, subprocess.TimeoutExpired):
            return None

    def test_corrupt_snapshot_fails_the_restore_unless_raw_with_skip(self):
        t = self.twin(0)
        c = self.client(HOSTS[0])
        c.bootstrap()
        wait_for(lambda: self._try_get(t, "/x"), lambda v: v is not None, 20)
        self.put(t, "/k", "v")
        snap = bytearray(c.snapshot())
        t.stop_etcd()
        raw = open(os.path.join(t.datadir, "member", "snap", "db"), "rb").read()
        snap[100] ^= 0xff
        t = self.twin(0)
        c.recover(bytes(snap))
        c.bootstrap(recover=True)
        self.assertTrue(t.etcd_state.startswith("Failed"), t.etcd_state)
        self.assertIn("sha256", t.etcd_state)
        # a raw db copy: no trailer, refused by the hash check, accepted with the skip
        t = self.twin(0)
        c.recover(raw)
        c.bootstrap(recover=True)
        self.assertIn("missing hash", t.etcd_state)
        t = self.twin(0)
        c.recover(raw)
        c.bootstrap(recover=True, skip=True)
        self.assertEqual(t.etcd_state, "Running")
        self.assertEqual(wait_for(lambda: self._try_get(t, "/k"), lambda v: v == "v", 30), "v")

    def test_remove_a_dead_member_and_a_replacement_joins(self):
        c = self.cluster()
        dead = self.twins["cp-3"]
        dead.stop_etcd()
        mid = next(m.id for m in c.members() if m.hostname == "cp-3")
        c.remove(mid)
        self.assertEqual(sorted(m.hostname for m in c.members()), ["cp-1", "cp-2"])
        with self.assertRaises(grpc.RpcError) as e:
            c.remove(mid)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.twin(2)  # the replacement VM, a fresh disk
        voters = lambda: [m for m in self.safe_members(c) if not m.is_learner]
        self.assertEqual(len(wait_for(voters, lambda v: len(v) == 3, 60)), 3)

    def test_worker_refuses_etcd_calls_and_roles_are_checked(self):
        self.twin(0)
        self.twin(0, worker=True)
        w = self.client(WORKER)
        for call in (lambda: w.bootstrap(), lambda: w.recover(b"x"), lambda: w.members()):
            with self.assertRaises(grpc.RpcError) as e:
                call()
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        reader = Client(os.path.join(self.root, "reader"), HOSTS[0], self.apid_port, "os:reader")
        self.addCleanup(reader.close)
        with self.assertRaises(grpc.RpcError) as e:
            reader.recover(b"x")
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)


if __name__ == "__main__":
    unittest.main()
