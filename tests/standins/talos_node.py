"""A node twin: what a Talos machine does once it has downloaded its machine config, for
bootd's recovery tests (Talos itself cannot run on a build machine).

Given the config bootd generated for a machine and the machine's address, the twin:

* answers the Talos API on that address (the apid stand-in's TLS front and RBAC, see
  talos_apid.py), with a server certificate made the way Talos's secrets.APIController
  makes it: signed by the os CA from `machine.ca`, the node's address and hostname as
  SANs, EKU serverAuth. A worker's config holds no os CA key; Talos asks trustd on a
  control plane for its certificate, the twin takes the key from the control plane twin
  given as `trustd`.
* on a control plane, runs a real etcd member (Debian's etcd-server) with the
  certificates Talos's etcd.CertificateGenerator derives from `cluster.etcd.ca`: a server
  and a peer certificate for the node's address and hostname (EKU serverAuth+clientAuth)
  and a "talos" client certificate; client and peer TLS with client certificates
  required, as Talos runs etcd.
* follows machined's etcd service and the v1alpha1 server (internal/app/machined/
  internal/server/v1alpha1/v1alpha1_server.go, pkg/system/services/etcd.go at
  siderolabs/talos ad88231), messages and field numbers from api/machine/machine.proto:
  - Bootstrap{recover_etcd, recover_skip_hash_check}: FailedPrecondition "bootstrap is
    not available yet" until the node is up (`ready_after`), Unimplemented on a worker,
    AlreadyExists "etcd data directory is not empty" once /var/lib/etcd holds anything;
    otherwise a new one-member cluster, or with recover_etcd the uploaded snapshot
    restored with etcd's own `etcdctl snapshot restore` (hash checked unless
    recover_skip_hash_check) and deleted. Like Talos, the call returns once etcd is
    started; a failed restore shows as the etcd service failing (`etcd_state`).
  - EtcdRecover (client stream of common.Data): FailedPrecondition "etcd service is not
    ready for recovery yet" until /var/lib exists (EPHEMERAL mounted: `ready_after`),
    Unimplemented on a worker; writes /var/lib/etcd.snapshot, removes it when the upload
    did not finish.
  - EtcdSnapshot: streams what the local etcd's Maintenance.Snapshot sends (through
    `etcdctl snapshot save`: the bbolt file and etcd's SHA-256 trailer).
  - EtcdMemberList{query_local}: the members as etcd lists them; EtcdRemoveMemberByID
    {member_id}: NotFound when there is no such member.
  - ApplyConfiguration{data, mode, dry_run, try_mode_timeout} (machined's
    ApplyConfiguration and Runtime.CanApplyImmediate at v1.13.9, os:admin only): the
    config is parsed and validated (InvalidArgument when it is not YAML, holds no v1alpha1
    document, or lacks machine.type / a valid cluster.controlPlane.endpoint); a change
    outside what Talos applies immediately (anything in the v1alpha1 document but debug,
    cluster, and machine.{ca, acceptedCAs, time, certSANs, install, network, sysfs,
    sysctls, logging, controlPlane, kubelet, kernel, registries, pods, seccompProfiles,
    nodeAnnotations, nodeLabels, nodeTaints} and five machine.features) needs a reboot.
    AUTO picks NO_REBOOT or REBOOT; NO_REBOOT and TRY refuse such a change
    (InvalidArgument); STAGED keeps it for the next boot; REBOOT (or AUTO's reboot) takes
    the node away for `reboot_s` (its API port closed, etcd stopped) and it comes back
    running the new config; a second apply meanwhile is FailedPrecondition. dry_run
    answers the chosen mode and "Dry run summary:" details without applying. TRY reverts
    after try_mode_timeout (Talos's default 1m).
  - Upgrade{image, preserve, stage, force} (MachineService/Upgrade, os:admin): the
    installer image's tag is the new version (InvalidArgument for a reference without
    one); on a control plane, unless force or preserve, etcd must be healthy with every
    member voting (etcd's ValidateForUpgrade) or the call fails; then the node goes away
    for `upgrade_s` and answers Version with the new tag. `fail_upgrade` makes the
    upgrade fail the way Talos's A/B boot does: the node comes back on the old version.
  - kubelet, given a Kubernetes API (`kube`: its URL, the cluster CA and the client
    certificate kubelet got by TLS bootstrapping, CN system:node:<hostname>): while the
    node is up it registers its core/v1 Node (POST /api/v1/nodes, name = hostname, as
    kubelet's registerWithAPIServer) and posts its status every `kubelet_every` seconds
    (PATCH /api/v1/nodes/NAME/status, strategic merge patch, as tryUpdateNodeStatus):
    addresses InternalIP and Hostname, nodeInfo.kubeletVersion = the tag of
    machine.kubelet.image in the config it runs, conditions Ready and the pressures.
    Talos restarts kubelet when that image changes (an ApplyConfiguration applied live,
    or a reboot): kubelet then reports NotReady (KubeletNotReady) for `kubelet_start_s`,
    then Ready. `kubelet_broken` names a kubelet version that never becomes Ready (its
    CNI never initialises). While the node is away nothing is posted: the API server's
    node lifecycle controller marks the Node Unknown.
  - Control planes that were not bootstrapped keep trying to join (every second): when
    another control plane's etcd answers, they add themselves as a learner, start etcd
    with initial-cluster-state=existing and are promoted once etcd allows it (Talos's
    etcd.go addMember / promoteMember). Until then etcd stays "Preparing".

What it does not do: boot, install, pods, the LifecycleService Upgrade stream, Kubernetes, trustd's API, EtcdLeaveCluster,
Reset, etcd encryption or defragmentation, time sync, discovery (control planes are given
their peers' addresses). Its "node" is a directory: wiping the VM is `stop()` plus a new
twin on a fresh directory.

In-process: NodeTwin(config_text, host, workdir, peers=[...]).start() ... .stop(); or as a
program: python3 -m tests.standins.talos_node --config F --host IP --workdir D [--peer IP]
[--trustd-config CONTROL_PLANE_CONFIG] (prints the Talos API port; stops when stdin closes)
"""
import argparse
import asyncio
import base64
import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import datetime
import http.client
import ssl

import grpc
import yaml

from tests.standins import pki, talos_apid
from tests.standins.talos_apid import F, _file, message

U64 = F.TYPE_UINT64
talos_apid._POOL.Add(_file("machine/etcd.proto", "machine", ["common/common.proto"], {
    "EtcdRecover": [("metadata", 1, F.TYPE_MESSAGE, ".common.Metadata", False)],
    "EtcdRecoverResponse": [("messages", 1, F.TYPE_MESSAGE, ".machine.EtcdRecover", True)],
    "EtcdMemberListRequest": [("query_local", 1, F.TYPE_BOOL, None, False)],
    "EtcdMember": [("id", 2, U64, None, False), ("hostname", 3, F.TYPE_STRING, None, False),
                   ("peer_urls", 4, F.TYPE_STRING, None, True),
                   ("client_urls", 5, F.TYPE_STRING, None, True),
                   ("is_learner", 6, F.TYPE_BOOL, None, False)],
    "EtcdMembers": [("metadata", 1, F.TYPE_MESSAGE, ".common.Metadata", False),
                    ("legacy_members", 2, F.TYPE_STRING, None, True),
                    ("members", 3, F.TYPE_MESSAGE, ".machine.EtcdMember", True)],
    "EtcdMemberListResponse": [("messages", 1, F.TYPE_MESSAGE, ".machine.EtcdMembers", True)],
    "EtcdRemoveMemberByIDRequest": [("member_id", 1, U64, None, False)],
    "EtcdRemoveMemberByID": [("metadata", 1, F.TYPE_MESSAGE, ".common.Metadata", False)],
    "EtcdRemoveMemberByIDResponse": [("messages", 1, F.TYPE_MESSAGE,
                                      ".machine.EtcdRemoveMemberByID", True)],
}))
talos_apid._POOL.Add(_file("google/protobuf/duration.proto", "google.protobuf", [], {
    "Duration": [("seconds", 1, F.TYPE_INT64, None, False), ("nanos", 2, F.TYPE_INT32, None, False)],
}))
talos_apid._POOL.Add(_file("machine/apply.proto", "machine",
                           ["common/common.proto", "google/protobuf/duration.proto"], {
    # Mode is an enum in machine.proto; on the wire an enum is a varint, read as int32
    "ApplyConfigurationRequest": [("data", 1, F.TYPE_BYTES, None, False),
                                  ("mode", 4, F.TYPE_INT32, None, False),
                                  ("dry_run", 5, F.TYPE_BOOL, None, False),
                                  ("try_mode_timeout", 6, F.TYPE_MESSAGE,
                                   ".google.protobuf.Duration", False)],
    "ApplyConfiguration": [("metadata", 1, F.TYPE_MESSAGE, ".common.Metadata", False),
                           ("warnings", 2, F.TYPE_STRING, None, True),
                           ("mode", 3, F.TYPE_INT32, None, False),
                           ("mode_details", 4, F.TYPE_STRING, None, False)],
    "ApplyConfigurationResponse": [("messages", 1, F.TYPE_MESSAGE, ".machine.ApplyConfiguration",
                                    True)],
    "UpgradeRequest": [("image", 1, F.TYPE_STRING, None, False),
                       ("preserve", 2, F.TYPE_BOOL, None, False),
                       ("stage", 3, F.TYPE_BOOL, None, False),
                       ("force", 4, F.TYPE_BOOL, None, False),
                       ("reboot_mode", 5, F.TYPE_INT32, None, False)],
    "Upgrade": [("metadata", 1, F.TYPE_MESSAGE, ".common.Metadata", False),
                ("ack", 2, F.TYPE_STRING, None, False),
                ("actor_id", 3, F.TYPE_STRING, None, False)],
    "UpgradeResponse": [("messages", 1, F.TYPE_MESSAGE, ".machine.Upgrade", True)],
}))
ApplyConfigurationRequest = message("machine.ApplyConfigurationRequest")
ApplyConfigurationResponse = message("machine.ApplyConfigurationResponse")
UpgradeRequest = message("machine.UpgradeRequest")
UpgradeResponse = message("machine.UpgradeResponse")
REBOOT, AUTO, NO_REBOOT, STAGED, TRY = range(5)
MODE_NAMES = ["REBOOT", "AUTO", "NO_REBOOT", "STAGED", "TRY"]

# Runtime.CanApplyImmediate: what may differ in the v1alpha1 document without a reboot
IMMEDIATE_TOP = {"debug", "cluster"}
IMMEDIATE_MACHINE = {"ca", "acceptedCAs", "time", "certSANs", "install", "network", "sysfs",
                     "sysctls", "logging", "controlPlane", "kubelet", "kernel", "registries",
                     "pods", "seccompProfiles", "nodeAnnotations", "nodeLabels", "nodeTaints"}
IMMEDIATE_FEATURES = {"kubernetesTalosAPIAccess", "kubePrism", "hostDNS", "imageCache",
                      "nodeAddressSortAlgorithm"}


def v1alpha1_of(text):
    """The v1alpha1 document of a config; ValueError says why it is not a valid one."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ValueError("failed to parse config: %s" % e)
    if not all(isinstance(d, dict) for d in docs):
        raise ValueError("failed to parse config: a document is not a mapping")
    main = [d for d in docs if d.get("version") == "v1alpha1"]
    if not main:
        raise ValueError("the applied machine configuration doesn't contain v1alpha1 config, "
                         "did you mean to patch the machine config instead?")
    m, c = main[0].get("machine") or {}, main[0].get("cluster") or {}
    if m.get("type") not in ("controlplane", "worker", "init"):
        raise ValueError("1 error occurred:\n\t* unknown machine type %r" % m.get("type"))
    ep = ((c.get("controlPlane") or {}).get("endpoint") or "")
    if not ep.startswith("https://"):
        raise ValueError("1 error occurred:\n\t* cluster.controlPlane.endpoint %r must be an "
                         "https URL" % ep)
    return main[0]


def immediate_view(doc):
    """doc with everything Talos may change without a reboot taken out."""
    d = json.loads(json.dumps(doc))
    for k in IMMEDIATE_TOP:
        d.pop(k, None)
    m = d.get("machine") or {}
    for k in IMMEDIATE_MACHINE:
        m.pop(k, None)
    for k in IMMEDIATE_FEATURES:
        (m.get("features") or {}).pop(k, None)
    return d


EtcdRecoverResponse = message("machine.EtcdRecoverResponse")
EtcdMemberListRequest = message("machine.EtcdMemberListRequest")
EtcdMemberListResponse = message("machine.EtcdMemberListResponse")
EtcdRemoveMemberByIDRequest = message("machine.EtcdRemoveMemberByIDRequest")
EtcdRemoveMemberByIDResponse = message("machine.EtcdRemoveMemberByIDResponse")

# machined's RBAC table (internal/app/machined/pkg/system/services/machined.go)
ROLES = dict(talos_apid.ROLES, **{
    "EtcdRecover": {"os:admin"},
    "EtcdMemberList": {"os:admin", "os:operator", "os:reader", "os:etcd:backup"},
    "EtcdRemoveMemberByID": {"os:admin"},
    "ApplyConfiguration": {"os:admin", "os:reader"},  # reader: maintenance mode only
    "Upgrade": {"os:admin"},
})

ETCD, ETCDCTL = shutil.which("etcd") or "/usr/bin/etcd", shutil.which("etcdctl") or "/usr/bin/etcdctl"


class MachineConfig:
    """The parts of a v1alpha1 machine config (plus HostnameConfig) the twin acts on."""

    def __init__(self, text):
        docs = [d for d in yaml.safe_load_all(text) if d]
        main = next(d for d in docs if d.get("version") == "v1alpha1")
        m, c = main["machine"], main["cluster"]
        self.type = m["type"]
        self.hostname = next((d["hostname"] for d in docs if d.get("kind") == "HostnameConfig"),
                             (m.get("network") or {}).get("hostname"))
        # talosctl's "ED25519 PRIVATE KEY" block holds PKCS#8, which openssl reads as
        # "PRIVATE KEY" (see pki.bundle_ca)
        b64 = lambda s: (base64.b64decode(s).decode().replace("ED25519 PRIVATE KEY", "PRIVATE KEY")
                         if s else None)
        self.os_ca = (b64(m["ca"]["crt"]), b64(m["ca"].get("key")))
        etcd = (c.get("etcd") or {}).get("ca") or {}
        self.etcd_ca = (b64(etcd.get("crt")), b64(etcd.get("key")))
        self.cluster_id = c.get("id")
        self.controlplane = self.type in ("controlplane", "init")
        image = ((m.get("kubelet") or {}).get("image") or "")
        self.kubelet_version = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""


class EtcdError(Exception):
    pass


class NodeTwin(talos_apid.Apid):
    roles = ROLES

    def __init__(self, config_text, host, workdir, peers=(), apid_port=50000, client_port=2379,
                 peer_port=2380, ready_after=0.0, trustd=None, reboot_s=2.0, upgrade_s=2.0,
                 fail_upgrade=False, kube=None, kubelet_every=0.3, kubelet_start_s=0.6,
                 kubelet_broken=None, **kw):
        self.config = MachineConfig(config_text)
        self.config_text = config_text     # what runs now
        self.persisted = config_text       # what the next boot runs
        self.applied = []                  # (mode name, dry_run) of every apply that passed
        self.reboots = 0
        self.reboot_s, self.upgrade_s, self.fail_upgrade = reboot_s, upgrade_s, fail_upgrade
        self.down = False                  # rebooting: API closed, etcd stopped
        self.down_log = []                 # (start, end) monotonic of every time away
        self.upgrades = []                 # images asked for
        self._rebooting = False
        self._try_timer = None
        self.host, self.workdir = host, workdir
        self.peers = [p for p in peers if p != host]
        self.client_port, self.peer_port = client_port, peer_port
        self.pki = os.path.join(workdir, "system", "secrets")
        os.makedirs(self.pki, exist_ok=True)
        os_ca = self._ca("os", self.config.os_ca if self.config.os_ca[1] else trustd.config.os_ca)
        name = self.config.hostname or host
        crt, key = pki.issue(os_ca, self.pki, "api", "/CN=" + name, "serverAuth", [host, name])
        super().__init__(host, apid_port, self.config.os_ca[0], crt, key, hostname=name, **kw)
        if self.config.controlplane:
            ca = self._ca("etcd", self.config.etcd_ca)
            sans = [host, name, "localhost", "127.0.0.1"]
            pki.issue(ca, self.pki, "etcd-server", "/CN=" + name, "serverAuth,clientAuth", sans)
            # etcd checks a peer's client certificate against the connection's source
            # address; on loopback that is 127.0.0.1, not the node's own 127.0.0.x
            pki.issue(ca, self.pki, "etcd-peer", "/CN=" + name, "serverAuth,clientAuth",
                      [host, name, "127.0.0.1"])
            pki.issue(ca, self.pki, "etcd-admin", "/CN=talos", "clientAuth")
        self.datadir = os.path.join(workdir, "var", "lib", "etcd")
        self.recovery = os.path.join(workdir, "var", "lib", "etcd.snapshot")
        self.ready_at = time.monotonic() + ready_after
        self.etcd = None              # the etcd process
        self.etcd_state = "Preparing"
        self.etcd_log = os.path.join(workdir, "etcd.log")
        self.restored = None          # etcdctl's output of the last restore
        self._stop = threading.Event()
        self._joiner = None
        self.kube = kube  # (url, ca path, crt path, key path) or None
        self.kubelet_every, self.kubelet_start_s = kubelet_every, kubelet_start_s
        self.kubelet_broken = kubelet_broken
        self.kubelet_log = []     # (monotonic, kubeletVersion, Ready status) as posted, on change
        self.applied_at = []      # monotonic time of every apply that passed (not dry runs)
        self._kubelet = None

    def _ca(self, name, pair):
        paths = []
        for part, text in zip(("crt", "key"), pair):
            path = os.path.join(self.pki, "%s-ca.%s" % (name, part))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            paths.append(path)
        return paths

    # ---- etcd ----

    @property
    def name(self):
        return self.hostname

    def client_url(self, host=None):
        return "https://%s:%d" % (host or self.host, self.client_port)

    def peer_url(self):
        return "https://%s:%d" % (self.host, self.peer_port)

    def etcdctl(self, *args, endpoints=None, timeout=15):
        """etcdctl with the node's "talos" client certificate; returns stdout."""
        p = lambda n: os.path.join(self.pki, n)
        cmd = [ETCDCTL, "--endpoints", ",".join(endpoints or [self.client_url()]),
               "--cacert", p("etcd-ca.crt"), "--cert", p("etcd-admin.crt"),
               "--key", p("etcd-admin.key"), "--dial-timeout", "3s",
               "--command-timeout", "%ds" % timeout, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if r.returncode:
            raise EtcdError((r.stderr.strip().splitlines() or ["etcdctl failed"])[-1])
        return r.stdout

    def _start_etcd(self, initial_cluster, state):
        p = lambda n: os.path.join(self.pki, n)
        cmd = [ETCD, "--name", self.name, "--data-dir", self.datadir,
               "--listen-client-urls", self.client_url(),
               "--advertise-client-urls", self.client_url(),
               "--listen-peer-urls", self.peer_url(),
               "--initial-advertise-peer-urls", self.peer_url(),
               "--cert-file", p("etcd-server.crt"), "--key-file", p("etcd-server.key"),
               "--trusted-ca-file", p("etcd-ca.crt"), "--client-cert-auth",
               "--peer-cert-file", p("etcd-peer.crt"), "--peer-key-file", p("etcd-peer.key"),
               "--peer-trusted-ca-file", p("etcd-ca.crt"), "--peer-client-cert-auth"]
        if initial_cluster:
            cmd += ["--initial-cluster", initial_cluster, "--initial-cluster-state", state]
        log = open(self.etcd_log, "ab")
        self.etcd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.etcd_state = "Running"

    def _data_dir_empty(self):
        return not os.path.isdir(self.datadir) or not os.listdir(self.datadir)

    def _bootstrap_etcd(self, recover, skip_hash):
        """machined's BootstrapEtcd (+ recoverFromSnapshot) for the etcd service."""
        os.makedirs(os.path.dirname(self.datadir), exist_ok=True)
        ic = "%s=%s" % (self.name, self.peer_url())
        if recover:
            args = ["snapshot", "restore", self.recovery, "--name", self.name,
                    "--data-dir", self.datadir, "--initial-cluster", ic,
                    "--initial-advertise-peer-urls", self.peer_url()]
            if skip_hash:
                args.append("--skip-hash-check")
            r = subprocess.run([ETCDCTL, *args], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, ETCDCTL_API="3"))
            self.restored = r.stdout + r.stderr
            if r.returncode:
                shutil.rmtree(self.datadir, ignore_errors=True)
                self.etcd_state = "Failed: " + (r.stderr.strip().splitlines() or ["restore"])[-1]
                return
            os.unlink(self.recovery)
            self._start_etcd(None, None)  # the data dir has the member: no initial cluster
        else:
            self._start_etcd(ic, "new")

    def _join(self):
        """Adds this control plane to a running cluster as a learner and starts etcd; the
        member's id. Discovery runs without the lock, so the API stays responsive."""
        endpoints = [self.client_url(p) for p in self.peers]
        members = json.loads(self.etcdctl("member", "list", "-w", "json",
                                          endpoints=endpoints, timeout=5))["members"]
        with self.lock:
            if self.etcd is not None or not self._data_dir_empty():
                return None  # bootstrapped meanwhile
            mine = [m for m in members if self.peer_url() in m.get("peerURLs", [])]
            if not mine:
                out = json.loads(self.etcdctl("member", "add", self.name, "--learner",
                                              "--peer-urls", self.peer_url(), "-w", "json",
                                              endpoints=endpoints, timeout=5))
                members, mine = out["members"], [out["member"]]
            ic = ",".join("%s=%s" % (m.get("name") or self.name, m["peerURLs"][0])
                          for m in members if m.get("peerURLs"))
            self._start_etcd(ic, "existing")
            return mine[0]["ID"]

    def _join_loop(self):
        learner = None
        while not self._stop.wait(1.0):
            if self.down:
                continue
            if self.etcd is not None and self.etcd.poll() is not None:
                # the service failed; machined restarts it, a failed join starts over
                with self.lock:
                    self.etcd_state = "Failed (exit %d)" % self.etcd.returncode
                    self.etcd = None
                    if learner is not None:
                        shutil.rmtree(self.datadir, ignore_errors=True)
                    elif not self._data_dir_empty():
                        self._start_etcd(None, None)
            try:
                if self.etcd is None and self._data_dir_empty() and self.peers and \
                        time.monotonic() >= self.ready_at:
                    learner = self._join()
                elif learner is not None:
                    self.etcdctl("member", "promote", "%x" % learner,
                                 endpoints=[self.client_url(p) for p in self.peers], timeout=5)
                    learner = None
            except (EtcdError, subprocess.TimeoutExpired, ValueError, KeyError):
                pass  # not yet: no cluster to join, or the learner is not caught up

    # ---- Talos API ----

    def _handlers(self):
        h = super()._handlers()
        h.update({
            "EtcdRecover": grpc.stream_unary_rpc_method_handler(
                self._etcd_recover, talos_apid.Data.FromString,
                EtcdRecoverResponse.SerializeToString),
            "EtcdMemberList": grpc.unary_unary_rpc_method_handler(
                self._etcd_member_list, EtcdMemberListRequest.FromString,
                EtcdMemberListResponse.SerializeToString),
            "EtcdRemoveMemberByID": grpc.unary_unary_rpc_method_handler(
                self._etcd_remove_member, EtcdRemoveMemberByIDRequest.FromString,
                EtcdRemoveMemberByIDResponse.SerializeToString),
            "ApplyConfiguration": grpc.unary_unary_rpc_method_handler(
                self._apply_configuration, ApplyConfigurationRequest.FromString,
                ApplyConfigurationResponse.SerializeToString),
            "Upgrade": grpc.unary_unary_rpc_method_handler(
                self._upgrade, UpgradeRequest.FromString, UpgradeResponse.SerializeToString),
        })
        return h

    # ---- day 2: ApplyConfiguration, Upgrade, reboots ----

    def _admin_only(self, method, context):
        port = int(context.peer().rsplit(":", 1)[1])
        if "os:admin" not in self._peers.get(port, []):
            self.denied.append((method, self._peers.get(port, [])))
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not authorized")

    def _apply_configuration(self, request, context):
        with self.lock:
            self._authorize("ApplyConfiguration", context)
            self._admin_only("ApplyConfiguration", context)  # the node is not in maintenance
            if self._rebooting:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              "configuration was already applied and node is rebooting, cannot "
                              "apply more configuration changes until next reboot")
            text = request.data.decode(errors="replace")
            try:
                new = v1alpha1_of(text)
                cur = v1alpha1_of(self.config_text)
            except ValueError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            immediate = immediate_view(new) == immediate_view(cur)
            mode, details = request.mode, "Applied configuration with a reboot"
            if mode not in range(5):
                context.abort(grpc.StatusCode.UNKNOWN,
                              "incorrect mode '%d' specified for the apply config call" % mode)
            if mode in (TRY, NO_REBOOT):
                if not immediate:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                  "this config change can't be applied in immediate mode")
                details = "Applied configuration without a reboot"
            elif mode == STAGED:
                details = "Staged configuration to be applied after the next reboot"
            elif mode == AUTO:
                mode = NO_REBOOT if immediate else REBOOT
                details = ("Applied configuration without a reboot" if immediate
                           else "Applied configuration with a reboot")
            resp = ApplyConfigurationResponse()
            item = resp.messages.add(mode=mode)
            if request.dry_run:
                diff = "".join(difflib.unified_diff(self.config_text.splitlines(True),
                                                    text.splitlines(True)))
                item.mode_details = "Dry run summary:\n%s (skipped in dry-run).\nConfig diff:\n\n%s" % (
                    details, diff or "No changes.")
                return resp
            self.applied.append((MODE_NAMES[mode], False))
            self.applied_at.append(time.monotonic())
            if mode in (NO_REBOOT, TRY):
                if mode == NO_REBOOT:
                    self.persisted = text
                else:
                    timeout = (request.try_mode_timeout.seconds
                               if request.HasField("try_mode_timeout") else 60)
                    old = self.config_text
                    details += ("\nThe config is applied in 'try' mode and will be automatically "
                                "reverted back in %ds" % timeout)
                    self._try_timer = threading.Timer(timeout, self._set_running, (old,))
                    self._try_timer.daemon = True
                    self._try_timer.start()
                self._set_running(text, locked=True)
            elif mode == STAGED:
                self.persisted = text
            else:
                self.persisted = text
                self._rebooting = True
                threading.Thread(target=self._reboot, args=(self.reboot_s, None),
                                 daemon=True).start()
            item.mode_details = details
            return resp

    def _set_running(self, text, locked=False):
        if not locked:
            with self.lock:
                return self._set_running(text, True)
        self.config_text = text
        self.config = MachineConfig(text)

    def _etcd_healthy(self):
        """etcd's ValidateForUpgrade: every member voting and its endpoint healthy."""
        members = json.loads(self.etcdctl("member", "list", "-w", "json", timeout=5))["members"]
        for m in members:
            if m.get("isLearner"):
                raise EtcdError("etcd member %s is a learner" % m.get("name"))
            if not m.get("clientURLs"):
                raise EtcdError("etcd member %s is not started" % m.get("name"))
        self.etcdctl("endpoint", "health", endpoints=[u for m in members for u in m["clientURLs"]],
                     timeout=5)

    def _upgrade(self, request, context):
        with self.lock:
            self._authorize("Upgrade", context)
            if self._rebooting:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the node is rebooting")
        ref = request.image
        tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
        if not ref or not tag.startswith("v"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "error validating installer image %r: no version tag" % ref)
        if self.config.controlplane and not request.force and not request.preserve:
            try:
                self._etcd_healthy()
            except (EtcdError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
                context.abort(grpc.StatusCode.UNKNOWN,
                              "error validating etcd for upgrade: %s" % e)
        with self.lock:
            self.upgrades.append(ref)
            self._rebooting = True
        threading.Thread(target=self._reboot, args=(self.upgrade_s, tag), daemon=True).start()
        resp = UpgradeResponse()
        resp.messages.add(ack="Upgrade request received", actor_id="bootd-test")
        return resp

    def _kill_etcd(self):
        e = self.etcd
        if e is not None and e.poll() is None:
            os.killpg(e.pid, signal.SIGTERM)
            try:
                e.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(e.pid, signal.SIGKILL)
                e.wait(10)

    def _listen(self, up):
        async def flip():
            if up:
                self._server = await asyncio.start_server(self._serve_conn, self.host, self.port,
                                                          ssl=self._ctx)
            else:
                self._server.close()
                await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(flip(), self._loop).result(10)

    def _reboot(self, away_s, new_tag):
        """The node reboots: its API closes, etcd stops; it comes back after away_s on
        the persisted config (and, after an upgrade, the new version unless it fails)."""
        time.sleep(0.2)  # Talos answers the call before it goes
        start = time.monotonic()
        with self.lock:
            self.down = True
        self._listen(False)
        self._kill_etcd()
        if self._stop.wait(away_s):
            return
        with self.lock:
            self._kill_etcd()  # one the join loop restarted as the node went down
            self.etcd = None
            self._set_running(self.persisted, locked=True)
            if new_tag and not self.fail_upgrade:
                self.tag = new_tag
            if self.config.controlplane and not self._data_dir_empty():
                self._start_etcd(None, None)  # the member's data is on the disk
            self.reboots += 1
            self.down_log.append((start, time.monotonic()))
            self.down = False
            self._rebooting = False
        self._listen(True)

    def _controlplane(self, context, api):
        if not self.config.controlplane:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          "%s is only available on control plane nodes" % api)

    def _bootstrap(self, request, context):
        with self.lock:
            self._authorize("Bootstrap", context)
            if time.monotonic() < self.ready_at:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "bootstrap is not available yet")
            self._controlplane(context, "bootstrap")
            if not self.config.etcd_ca[0]:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "etcd is not configured, bootstrap is not possible")
            if not self._data_dir_empty() or self.etcd is not None:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "etcd data directory is not empty")
            self.bootstrapped = True
            self._bootstrap_etcd(request.recover_etcd, request.recover_skip_hash_check)
        resp = talos_apid.BootstrapResponse()
        resp.messages.add()
        return resp

    def _etcd_recover(self, chunks, context):
        with self.lock:
            self._authorize("EtcdRecover", context)
            if time.monotonic() < self.ready_at:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              "etcd service is not ready for recovery yet")
            self._controlplane(context, "etcd recover")
            os.makedirs(os.path.dirname(self.recovery), exist_ok=True)
        done = False
        try:
            with open(self.recovery, "wb") as f:
                os.chmod(self.recovery, 0o700)
                for chunk in chunks:
                    f.write(chunk.bytes)
                f.flush()
                os.fsync(f.fileno())
            done = True
        finally:
            if not done and os.path.exists(self.recovery):
                os.unlink(self.recovery)
        resp = EtcdRecoverResponse()
        resp.messages.add()
        return resp

    def _etcd_snapshot(self, request, context):
        with self.lock:
            self._authorize("EtcdSnapshot", context)
        self._controlplane(context, "etcd snapshot")
        if self.etcd is None or self.etcd.poll() is not None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "failed to create etcd client: etcd is "
                          "not running (%s)" % self.etcd_state)
        path = os.path.join(self.workdir, "snapshot.%d" % threading.get_ident())
        try:
            self.etcdctl("snapshot", "save", path, timeout=30)
            with open(path, "rb") as f:
                data = f.read()
        except EtcdError as e:
            context.abort(grpc.StatusCode.UNKNOWN, "failed reading etcd snapshot: %s" % e)
        finally:
            for p in (path, path + ".part"):
                if os.path.exists(p):
                    os.unlink(p)
        for i in range(0, len(data), 1024):
            yield talos_apid.Data(bytes=data[i:i + 1024])

    def _etcd_member_list(self, request, context):
        with self.lock:
            self._authorize("EtcdMemberList", context)
        self._controlplane(context, "member list")
        endpoints = [self.client_url()] + ([] if request.query_local else
                                           [self.client_url(p) for p in self.peers])
        try:
            members = json.loads(self.etcdctl("member", "list", "-w", "json",
                                              endpoints=endpoints, timeout=5))["members"]
        except (EtcdError, subprocess.TimeoutExpired) as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, "etcd: %s" % e)
        resp = EtcdMemberListResponse()
        item = resp.messages.add()
        for m in members:
            item.legacy_members.append(m.get("name", ""))
            e = item.members.add(id=m["ID"], hostname=m.get("name", ""),
                                 is_learner=bool(m.get("isLearner")))
            e.peer_urls.extend(m.get("peerURLs", []))
            e.client_urls.extend(m.get("clientURLs", []))
        return resp

    def _etcd_remove_member(self, request, context):
        with self.lock:
            self._authorize("EtcdRemoveMemberByID", context)
        self._controlplane(context, "etcd remove member")
        try:
            # through the node's own etcd, as machined's local etcd client does: a dead
            # peer's address only times out (off loopback nothing refuses the connection)
            self.etcdctl("member", "remove", "%x" % request.member_id, timeout=10)
        except EtcdError as e:
            if "member not found" in str(e):
                context.abort(grpc.StatusCode.NOT_FOUND, "etcdserver: member not found")
            context.abort(grpc.StatusCode.UNKNOWN, "failed to remove member: %s" % e)
        resp = EtcdRemoveMemberByIDResponse()
        resp.messages.add()
        return resp

    # ---- kubelet ----

    def _kube_call(self, conn, method, path, body, ctype="application/json"):
        conn.request(method, path, json.dumps(body), {"Content-Type": ctype,
                                                      "Accept": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    def _node_status(self, version, ready, why):
        t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        cond = lambda kind, status, reason, msg: {
            "type": kind, "status": status, "reason": reason, "message": msg,
            "lastHeartbeatTime": t, "lastTransitionTime": t}
        return {
            "addresses": [{"type": "InternalIP", "address": self.host},
                          {"type": "Hostname", "address": self.hostname}],
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True" if ready else "False",
                     "KubeletReady" if ready else "KubeletNotReady",
                     "kubelet is posting ready status" if ready else why)],
            "nodeInfo": {"kubeletVersion": version,
                         "operatingSystem": "linux", "architecture": "amd64",
                         "osImage": "Talos (%s)" % self.tag,
                         "containerRuntimeVersion": "containerd://2.1.5",
                         "kernelVersion": "6.12.57-talos", "machineID": "", "systemUUID": "",
                         "bootID": ""}}

    def _kubelet_loop(self):
        url, ca, crt, key = self.kube
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(crt, key)
        hostport = url.split("://", 1)[1]
        conn, running, started, last = None, None, 0.0, None
        while not self._stop.wait(self.kubelet_every):
            with self.lock:
                down, version = self.down, self.config.kubelet_version
            if down:  # kubelet is not running: it starts again with the node
                running = None
                continue
            if running != version:  # Talos (re)started kubelet with the config's image
                running, started = version, time.monotonic()
            ready = time.monotonic() - started >= self.kubelet_start_s and \
                version != self.kubelet_broken
            why = ("container runtime network not ready: NetworkReady=false "
                   "reason:NetworkPluginNotReady message:Network plugin returns error: cni "
                   "plugin not initialized" if version == self.kubelet_broken else
                   "container runtime status check may not have completed yet")
            status = self._node_status(version, ready, why)
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(hostport, context=ctx, timeout=5)
                    node = {"apiVersion": "v1", "kind": "Node",
                            "metadata": {"name": self.hostname, "labels": {
                                "kubernetes.io/hostname": self.hostname,
                                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
                            "spec": {}, "status": status}
                    code, body = self._kube_call(conn, "POST", "/api/v1/nodes", node)
                    if code not in (201, 409):  # 409: registered before this boot
                        raise OSError("registering the Node: %d %s" % (code, body[:200]))
                code, body = self._kube_call(conn, "PATCH",
                                             "/api/v1/nodes/%s/status" % self.hostname,
                                             {"status": status},
                                             "application/strategic-merge-patch+json")
                if code != 200:
                    raise OSError("posting the Node's status: %d %s" % (code, body[:200]))
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                continue
            now = (version, "True" if ready else "False")
            if now != last:
                self.kubelet_log.append((time.monotonic(),) + now)
                last = now
        if conn is not None:
            conn.close()

    # ---- life ----

    def start(self):
        super().start()
        if self.config.controlplane:
            self._joiner = threading.Thread(target=self._join_loop, daemon=True)
            self._joiner.start()
        if self.kube:
            self._kubelet = threading.Thread(target=self._kubelet_loop, daemon=True)
            self._kubelet.start()
        return self

    def mount(self):
        """EPHEMERAL is mounted now: the node is ready for recovery and bootstrap."""
        self.ready_at = time.monotonic()

    def stop_etcd(self):
        """The machine losing power: etcd dies without leaving the cluster."""
        self._stop.set()
        if self._joiner:
            self._joiner.join(20)
            self._joiner = None
        if self._kubelet:
            self._kubelet.join(20)
            self._kubelet = None
        if self.etcd is not None:
            os.killpg(self.etcd.pid, signal.SIGKILL)
            self.etcd.wait(10)
            self.etcd = None
            self.etcd_state = "Stopped"

    def stop(self):
        self.stop_etcd()
        super().stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the machine config bootd served")
    ap.add_argument("--host", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--peer", action="append", default=[], help="another control plane's address")
    ap.add_argument("--apid-port", type=int, default=50000)
    ap.add_argument("--ready-after", type=float, default=0.0)
    ap.add_argument("--trustd-config", help="a worker: a control plane's machine config, "
                    "whose os CA signs the worker's certificate (what trustd does)")
    a = ap.parse_args()
    trustd = None
    if a.trustd_config:
        with open(a.trustd_config) as f:
            trustd = argparse.Namespace(config=MachineConfig(f.read()))
    with open(a.config) as f:
        twin = NodeTwin(f.read(), a.host, a.workdir, a.peer, apid_port=a.apid_port,
                        ready_after=a.ready_after, trustd=trustd).start()
    print(twin.port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        twin.stop()


if __name__ == "__main__":
    sys.exit(main())
