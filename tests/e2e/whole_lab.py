"""The whole lab on this machine, for the whole-lab test (test_whole_lab.py) and `make
demo`: empty Proxmox (the API stand-in with real QEMU behind it, pve_qemu.py) → `bootctl vm
apply` → every VM PXE-boots from bootd to its config → Talos takes over → bootstrap →
Kubernetes → GitOps synced; then etcd snapshots, disaster, `bootctl rebuild`, `bootctl
machine replace`.

Real: bootd and its dnsmasq, each VM's firmware PXE boot in QEMU (SeaBIOS and OVMF), the
busybox guest fetching the config bootd generated, etcd (Debian's etcd-server, one member
per control plane, certificates from that config), git over smart HTTP with a token.

Concessions, because Talos OS cannot run here:
* Once a VM has downloaded its config (the guest prints its SHA-256, checked against the
  config `bootctl gen config` makes) and powered off, the machine's node twin
  (tests/standins/talos_node.py) takes over the machine's address: a network namespace of
  its own whose veth carries the machine's MAC and reserved address on the lab bridge, the
  twin answering the Talos API there and running the etcd member with that config. A real
  Talos machine would instead reboot into its installed disk.
* No kubelet: once bootd has seen a twin's Talos API (kubelet starts after Talos), the
  harness registers its Node (Ready, InternalIP) and Cilium's DaemonSet status with the
  kube-apiserver stand-in, which listens on the lab namespace's loopback
  (cluster.endpoint) and keeps its objects in memory, not in etcd: after the disaster it
  starts empty and GitOps fills it again.
* The Proxmox "persistent-volume disk" is a volume of the stand-in's (vm-9999-pv-data).

Everything runs inside the lab's namespaces (192.0.2.0/24) and is stopped by close().
"""
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

from tests.e2e.netlab import BOOT_SERVER, BOOTCTL, Bootd, Lab, add_image, sha256, wait_until
from tests.e2e.pve_qemu import QemuBackend
from tests.integration.git_http import GitHttp
from tests.integration.gitops_env import make_repo
from tests.standins import pki
from tests.standins.kube_apiserver import KubeApiServer, Store
from tests.standins.proxmox_api import ProxmoxApi
from tests.standins.talos_node import ETCDCTL

PYTHON = "/usr/bin/python3"
GIT_TOKEN = "lab-git-token"
PV_DISK = "local-lvm:vm-9999-pv-data"
MARKER = "/bootd-e2e/marker"

# name, MAC, role, address, Proxmox vmid, firmware
THREE_PLUS_ONE = [
    ("cp-1", "bc:24:11:e2:e1:01", "controlplane", "192.0.2.11", 8111, "seabios"),
    ("cp-2", "bc:24:11:e2:e1:02", "controlplane", "192.0.2.12", 8112, "ovmf"),
    ("cp-3", "bc:24:11:e2:e1:03", "controlplane", "192.0.2.13", 8113, "seabios"),
    ("w-1", "bc:24:11:e2:e1:21", "worker", "192.0.2.21", 8121, "seabios"),
]

APPS = {
    "apps/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: hello\n",
    "apps/hello.yaml": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n"
                        "  namespace: hello\ndata:\n  greeting: from git\n"),
}

LAB = """\
cluster:
  name: wholelab
  talos_version: v1.13.9
  discovery: false
  endpoint: {endpoint}
  etcd_backup: {{interval: 10s, keep: 5, dir: {backups}}}
lan:
  interface: br0
  dhcp: full
  range: [192.0.2.100, 192.0.2.149]
  subnet: 192.0.2.0/24
  gateway: 192.0.2.1
  boot_server: 192.0.2.1
  http_port: 8080
  log_port: 5140
boot:
  hold_retry: 5s
proxmox:
  api: {pve_url}
  token_file: {pve_token}
  node: host3
  bridge: br0
  fingerprint: "{pve_fp}"
gitops:
  repo: {repo}
  token_file: git.token
  interval: 1h
  health_timeout: 30s
  kustomize: builtin
  groups:
    - name: apps
      paths: [apps]
machines:
{machines}"""


class Twin:
    """A node twin in its own namespace at a machine's address (see the module header)."""

    def __init__(self, lab, machine, config, workdir, peers, trustd_config, log):
        name, mac, role, ip = machine[:4]
        self.name, self.ip, self.workdir = name, ip, workdir
        self.netns = "%s-%s" % (lab.name, name)
        lab._add_netns(self.netns)
        veth = self.veth = "v-" + name
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        run("ip", "link", "set", veth, "master", "br0")
        run("ip", "link", "set", veth, "up")
        for cmd in (["link", "set", "lo", "up"], ["link", "set", "eth0", "address", mac],
                    ["addr", "add", ip + "/24", "dev", "eth0"], ["link", "set", "eth0", "up"]):
            run("ip", "-n", self.netns, *cmd)
        # A booting machine sends frames (DHCP, ARP) before anyone calls it; so does the
        # twin, one datagram to the boot server (its ARP request is enough), or the bridge
        # would keep delivering the MAC to the powered-off VM's tap until its entry ages
        # out, 5 min (a worker's twin sends nothing by itself).
        run("ip", "netns", "exec", self.netns, PYTHON, "-c",
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto("
            "b'', ('%s', 9))" % BOOT_SERVER)
        argv = ["ip", "netns", "exec", self.netns, PYTHON, "-m", "tests.standins.talos_node",
                "--config", config, "--host", ip, "--workdir", workdir]
        argv += sum((["--peer", p] for p in peers), [])
        if role != "controlplane":
            argv += ["--trustd-config", trustd_config]
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=f, start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready or not self.proc.stdout.readline().strip():
            self.stop()
            raise AssertionError("the twin of %s did not start; see %s" % (name, log))

    def etcdctl(self, *args, timeout=10):
        p = lambda n: os.path.join(self.workdir, "system", "secrets", n)
        r = subprocess.run(["ip", "netns", "exec", self.netns, ETCDCTL,
                            "--endpoints", "https://%s:2379" % self.ip, "--cacert", p("etcd-ca.crt"),
                            "--cert", p("etcd-admin.crt"), "--key", p("etcd-admin.key"),
                            "--dial-timeout", "3s", "--command-timeout", "%ds" % timeout, *args],
                           capture_output=True, text=True, timeout=timeout + 5,
                           env=dict(os.environ, ETCDCTL_API="3"))
        return r.stdout if r.returncode == 0 else None

    def stop(self):
        """The machine loses power: the twin SIGKILLs its etcd when its stdin closes."""
        self.proc.stdout.close()
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the veth goes at once (with the namespace it would go some time later, and a
        # new twin for the same machine needs its name)
        run("ip", "link", "del", self.veth, check=False)
        run("ip", "netns", "del", self.netns, check=False)


def run(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode:
        raise AssertionError("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


class WholeLab:
    """bootd, Proxmox with QEMU, Git over HTTP, the kube-apiserver stand-in and the twins,
    in one lab namespace. say() hears of every step; timeline holds (phase, seconds).
    Its directory (logs, and the cluster's secrets) stays after close() for a look at a
    failure, unless keep_dir is false."""

    def __init__(self, machines=THREE_PLUS_ONE, say=lambda msg: None, keep_dir=True):
        self.machines, self.say, self.keep_dir = machines, say, keep_dir
        self.timeline, self.twins, self.pending, self.no_kubelet = [], {}, set(), set()
        self.lab = Lab()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self):
        lab = self.lab
        self.pve = ProxmoxApi(lab.path("pve"), bridges=("br0",), auth_delay=0.5).start()
        self.backend = QemuBackend(lab)
        self.pve.state.backend = self.backend
        self.pve.add_volume(PV_DISK, 1 << 30)  # a persistent volume's disk (CSI plugin's)
        self.git = GitHttp(lab.path("git"), GIT_TOKEN)
        self.head = make_repo(lab.path("git", "apps"), APPS)
        self.backups = lab.path("backups")
        self.disks = lab.path("disks")
        os.makedirs(self.disks)
        self.kube = None
        self.bootd = Bootd(lab, self._lab_yaml("https://127.0.0.1:6443"),
                           {"git.token": GIT_TOKEN + "\n"})
        os.chmod(os.path.join(self.bootd.dir, "git.token"), 0o600)
        self.say("generating the cluster secrets (bootctl gen secrets)")
        self.bootd.gen("secrets")
        os.makedirs(lab.path("k8s-ca"))
        kpki = pki.make_pki(lab.path("kube-pki"), ca=pki.bundle_ca(
            os.path.join(self.bootd.dir, "secrets.yaml"), "k8s", lab.path("k8s-ca")))
        self.kube = KubeApiServer(kpki, auto_ready=True).start()
        with open(self.bootd.lab_path, "w") as f:
            f.write(self._lab_yaml(self.kube.url))
        out = lab.path("configs")
        subprocess.run([BOOTCTL, "gen", "config", self.bootd.lab_path, "-o", out], check=True,
                       capture_output=True, timeout=60)
        self.configs = {m[0]: os.path.join(out, m[0] + ".yaml") for m in self.machines}

    def _lab_yaml(self, endpoint):
        machines = "".join(
            '  - {name: %s, mac: "%s", role: %s, ip: %s,\n'
            "     proxmox: {vmid: %d, bios: %s, memory: 512, disk: 1}}\n" % m
            for m in self.machines)
        return LAB.format(endpoint=endpoint, backups=self.backups, pve_url=self.pve.url,
                          pve_token=self.pve.token_file, pve_fp=self.pve.fingerprint,
                          repo=self.git.url("apps"), machines=machines)

    # ---- steps ----

    def phase(self, name, t0):
        self.timeline.append((name, time.monotonic() - t0))
        self.say("%-34s %6.1f s" % (name, self.timeline[-1][1]))

    def bootctl(self, *args, timeout=120):
        r = subprocess.run([BOOTCTL, *args], capture_output=True, text=True, env=self.bootd.env(),
                           timeout=timeout)
        if r.returncode:
            raise AssertionError("bootctl %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                                r.stdout, r.stderr))
        return r.stdout

    def bootctl_popen(self, *args):
        """bootctl running on; its output goes to a file (.out on the process)."""
        out = tempfile.mkstemp(prefix="bootctl-", suffix=".out", dir=self.lab.root)[1]
        with open(out, "w") as f:
            p = subprocess.Popen([BOOTCTL, *args], stdout=f, stderr=subprocess.STDOUT,
                                 text=True, env=self.bootd.env())
        p.out = out
        return p

    def vm(self, *args):
        """bootctl vm SUB --lab LAB ARGS: lab.yaml's Proxmox VMs."""
        return self.bootctl("vm", args[0], "--lab", self.bootd.lab_path, "--state-dir",
                            self.bootd.state, *args[1:], timeout=300)

    def power_on(self, names=None):
        """Creates (when missing) and starts the VMs; each is taken over by its twin once
        it has its config."""
        names = names or [m[0] for m in self.machines]
        self.pending.update(names)
        self.vm("apply", *names)

    def vmid(self, name):
        return next(m[4] for m in self.machines if m[0] == name)

    def drive(self, what, done, timeout):
        """Hands each pending machine to its twin once its VM has downloaded its config
        and powered off, until done() is true."""
        deadline = time.monotonic() + timeout
        while True:
            for name in sorted(self.pending):
                vmid = self.vmid(name)
                if vmid in self.backend.procs and not self.backend.running(vmid) and \
                        "config sha256=" in self.backend.console(vmid):
                    self.take_over(name)
            for name in sorted(self.no_kubelet):
                # kubelet registers the Node once Talos is up: after bootd saw its API
                state = (self.bootd.machine(name) or {}).get("state")
                if state in ("ready", "joined"):
                    self.no_kubelet.discard(name)
                    self.kubelet(name)
            v = done()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ds waiting for %s; machines: %s\n%s" % (
                    timeout, what, self.states(), self.bootd.logs()[-6000:]))
            time.sleep(0.5)

    def take_over(self, name):
        console = self.backend.console(self.vmid(name))
        got = console.split("config sha256=")[1].split()[0]
        with open(self.configs[name]) as f:
            want = sha256(f.read())
        if got != want:
            raise AssertionError("%s downloaded a config with sha256 %s, not its own (%s)"
                                 % (name, got, want))
        self.pending.discard(name)
        self.backend.stop(self.vmid(name))
        machine = next(m for m in self.machines if m[0] == name)
        cps = [m for m in self.machines if m[2] == "controlplane"]
        wd = tempfile.mkdtemp(prefix=name + "-", dir=self.disks)
        self.twins[name] = Twin(self.lab, machine, self.configs[name], wd,
                                [m[3] for m in cps], self.configs[cps[0][0]],
                                self.lab.path("twin-%s.log" % name))
        self.no_kubelet.add(name)
        self.say("%s has its config (sha256 %s…); its twin answers at %s" % (name, got[:12],
                                                                              machine[3]))

    def kubelet(self, name):
        """What the machine's kubelet and Cilium agent would report."""
        ip = next(m[3] for m in self.machines if m[0] == name)
        self.kube.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                  "addresses": [{"type": "InternalIP", "address": ip}]}})
        n = len(self.kube.names("v1", "nodes"))
        self.kube.put({"apiVersion": "apps/v1", "kind": "DaemonSet",
                       "metadata": {"name": "cilium", "namespace": "kube-system"}})
        # set after the put: the stand-in's auto_ready would make up a status of its own
        self.kube.set_status("apps/v1", "daemonsets", "kube-system", "cilium", {
            "observedGeneration": 1, "desiredNumberScheduled": n, "currentNumberScheduled": n,
            "updatedNumberScheduled": n, "numberAvailable": n, "numberReady": n})

    def stop_twin(self, name):
        self.no_kubelet.discard(name)
        t = self.twins.pop(name, None)
        if t:
            t.stop()
        self.kube.store.objects.pop(("", "nodes", "", name), None)

    # ---- what the tests and the demo look at ----

    def states(self):
        return {m[0]: (self.bootd.machine(m[0]) or {}).get("state") for m in self.machines}

    def cluster(self):
        status, j = self.bootd.api("/status")
        return j.get("cluster_state") if status == 200 else None

    def gitops(self):
        status, j = self.bootd.api("/gitops")
        return j if status == 200 else None

    def synced(self):
        """Cluster ready, every machine joined, GitOps applied Git's head, the object from
        Git in the cluster."""
        c, g = self.cluster(), self.gitops()
        return bool(c and c.get("phase") == "ready" and g and g.get("applied_revision") == self.head
                    and all(s == "joined" for s in self.states().values())
                    and self.kube.get("v1", "configmaps", "hello", "hello"))

    def etcdctl(self, *args):
        """etcdctl through the first control plane twin that answers; None if none does."""
        cps = [m[0] for m in self.machines if m[2] == "controlplane"]
        for name in cps:
            out = self.twins[name].etcdctl(*args) if name in self.twins else None
            if out is not None:
                return out
        return None

    def voters(self):
        out = self.etcdctl("member", "list", "-w", "json")
        if not out:
            return []
        return sorted(m.get("name", "") for m in json.loads(out)["members"] if not m.get("isLearner"))

    def snapshots(self):
        try:
            return sorted(f for f in os.listdir(self.backups) if f.endswith(".snapshot"))
        except FileNotFoundError:
            return []

    # ---- the whole path ----

    def up(self):
        """From nothing to a synced cluster; returns the seconds it took."""
        t0 = time.monotonic()
        self.bootd.start()
        self.say("bootd is up on 192.0.2.1 (dnsmasq for DHCP and TFTP); log: %s" % self.bootd.log)
        self.say("creating %d VMs on the Proxmox stand-in (bootctl vm apply)" % len(self.machines))
        self.power_on()
        self.phase("VMs created and started", t0)
        self.drive("every machine's config", lambda: not self.pending, 480)
        self.phase("every VM booted to its config", t0)
        self.drive("bootstrap", lambda: (self.cluster() or {}).get("bootstrap", {}).get("done"), 120)
        self.phase("etcd bootstrapped", t0)
        self.drive("Kubernetes", lambda: (self.cluster() or {}).get("phase") == "ready", 180)
        self.phase("Kubernetes ready, all joined", t0)
        self.drive("GitOps synced", self.synced, 180)
        self.phase("GitOps synced", t0)
        return time.monotonic() - t0

    def disaster(self):
        """Every VM destroyed, every node gone (etcd killed), bootd's state dir deleted;
        lab.yaml, secrets.yaml and the backup dir are what is left."""
        self.vm("destroy", "--yes", *[m[0] for m in self.machines])
        for name in list(self.twins):
            self.stop_twin(name)
        self.lab.stop(self.bootd.proc)
        shutil.rmtree(self.bootd.state)
        add_image(self.bootd, "amd64")  # the image cache comes back with bootd's package
        wipe_kube(self.kube)

    def rebuild(self, *args, timeout=600):
        """bootd started on its empty state dir and `bootctl rebuild ARGS --yes`, which
        creates the VMs through Proxmox; returns (exit code, bootctl output)."""
        self.bootd.start()
        self.pending.update(m[0] for m in self.machines)
        p = self.bootctl_popen("rebuild", *args, "--yes", "--timeout", "%ds" % timeout)
        self.drive("the rebuild", lambda: p.poll() is not None, timeout + 30)
        with open(p.out) as f:
            return p.returncode, f.read()

    def replace(self, name, timeout=420):
        """The machine dies, then `bootctl machine replace NAME`, which recreates its VM
        through Proxmox; returns (exit code, bootctl output)."""
        self.stop_twin(name)
        vmid, old = self.vmid(name), self.backend.procs.get(self.vmid(name))
        p = self.bootctl_popen("machine", "replace", name, "--timeout", "%ds" % timeout)
        # the old VM destroyed, a new one started: the machine to hand to its twin
        wait_until("%s's new VM" % name, lambda: p.poll() is not None or
                   self.backend.procs.get(vmid) not in (None, old), 120)
        self.pending.add(name)
        self.drive("%s to rejoin" % name, lambda: p.poll() is not None, timeout + 30)
        with open(p.out) as f:
            return p.returncode, f.read()

    def close(self):
        for name in list(self.twins):
            self.stop_twin(name)
        for p in (getattr(self, "kube", None), getattr(self, "pve", None)):
            if p:
                p.stop()
        if getattr(self, "git", None):
            self.git.stop()
        if getattr(self, "backend", None):
            for vmid in list(self.backend.procs):
                self.backend.stop(vmid)
        try:
            self.lab.close()
        finally:
            if not self.keep_dir:
                shutil.rmtree(self.lab.root, ignore_errors=True)


def wipe_kube(kube):
    """The API server's objects lived in the etcd that was lost: it starts empty."""
    fresh = Store(auto_ready=True)
    with kube.store.lock:
        for k, v in fresh.__dict__.items():
            if k != "lock":
                setattr(kube.store, k, v)

