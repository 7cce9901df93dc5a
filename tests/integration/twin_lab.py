"""A bootd on loopback whose control planes are node twins (tests/standins/talos_node.py):
each machine its own 127.0.0.x address, the configs the ones `bootctl gen config` makes
from the lab and its secrets bundle, real etcd members behind them. For the etcd backup
and recovery tests."""
import json
import os
import shutil
import subprocess
import tempfile

from tests.integration.harness import BOOTCTL, Bootd, free_ports
from tests.standins import talos_node

LAB = """\
cluster:
  name: {name}
  talos_version: v1.13.9
  discovery: false
{extra}lan:
  interface: lo
  dnsmasq: false
  dhcp: proxy
  subnet: 127.0.0.0/8
  boot_server: 127.0.0.1
  http_port: {port}
machines:
{machines}"""


def gen_secrets(d):
    """A secrets bundle in d (bootctl gen secrets, made once per module)."""
    lab = os.path.join(d, "lab.yaml")
    with open(lab, "w") as f:
        f.write(LAB.format(name="x", extra="", port=8080, machines=""
                           "  - {name: cp-1, mac: \"52:54:00:00:00:01\", role: controlplane, ip: 127.0.0.9}\n"))
    subprocess.run([BOOTCTL, "gen", "secrets", lab], check=True, capture_output=True, timeout=120)
    return os.path.join(d, "secrets.yaml")


class SharedSecrets:
    """One secrets bundle for all the labs of a test module, made once (bootctl gen
    secrets is slow): setUpModule, tearDownModule = SECRETS.up, SECRETS.down."""

    def __init__(self, prefix):
        self.prefix, self.dir = prefix, None

    def up(self):
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        gen_secrets(self.dir)

    def down(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def path(self):
        return os.path.join(self.dir, "secrets.yaml")


class TwinLab:
    """bootd + node twins. hosts: the control planes' addresses (cp-1, cp-2, ...)."""

    def __init__(self, test, secrets, hosts, extra="", name="twin", machine_extra=lambda i: ""):
        """machine_extra(i): more keys for the i-th machine's entry (", proxmox: {...}")."""
        self.test, self.hosts = test, hosts
        self.bootd = Bootd(lab="")
        test.addCleanup(self.cleanup)
        self.names = ["cp-%d" % (i + 1) for i in range(len(hosts))]
        machines = "".join('  - {name: %s, mac: "52:54:00:00:01:%02x", role: controlplane, ip: %s%s}\n'
                           % (n, i + 1, h, machine_extra(i))
                           for i, (n, h) in enumerate(zip(self.names, hosts)))
        self.lab_text = LAB.format(name=name, extra=extra, port=self.bootd.port, machines=machines)
        self.bootd.write("lab.yaml", self.lab_text)
        self.secrets = os.path.join(self.bootd.labdir, "secrets.yaml")
        shutil.copy(secrets, self.secrets)
        os.chmod(self.secrets, 0o600)
        self.apid_port, self.cport, self.pport = free_ports(3)
        self.configs = self.gen_configs()
        self.disks = tempfile.mkdtemp(prefix="twin-disks-", dir=self.bootd.root)
        self.twins = {}

    def gen_configs(self):
        out = os.path.join(self.bootd.root, "configs")
        subprocess.run([BOOTCTL, "gen", "config", self.bootd.lab_path, "-o", out], check=True,
                       capture_output=True, timeout=60)
        configs = {}
        for n in self.names:
            with open(os.path.join(out, n + ".yaml")) as f:
                configs[n] = f.read()
        return configs

    def twin(self, name, ready_after=0.0):
        """Starts (or replaces, on a fresh disk) the twin of a control plane."""
        old = self.twins.pop(name, None)
        if old:
            old.stop()
        i = self.names.index(name)
        wd = tempfile.mkdtemp(prefix=name + "-", dir=self.disks)
        t = talos_node.NodeTwin(self.configs[name], self.hosts[i], wd, self.hosts,
                                apid_port=self.apid_port, client_port=self.cport,
                                peer_port=self.pport, ready_after=ready_after).start()
        self.twins[name] = t
        return t

    def start_twins(self, ready_after=0.0):
        for n in self.names:
            self.twin(n, ready_after)

    def start(self, *args):
        self.bootd.start("--talos-port", str(self.apid_port), *args)
        return self

    def bootctl_popen(self, *args):
        """bootctl talking to this bootd, running on (stdout and stderr piped, text)."""
        env = dict(os.environ, BOOTD_URL="http://127.0.0.1:%d" % self.bootd.port,
                   BOOTD_TOKEN_FILE=os.path.join(self.bootd.state, "admin.token"),
                   HOME=self.bootd.root)
        return subprocess.Popen([BOOTCTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)

    def etcd_get(self, key):
        for t in self.twins.values():
            try:
                return t.etcdctl("get", key, "--print-value-only").strip()
            except (talos_node.EtcdError, subprocess.TimeoutExpired):
                continue
        return None

    def voters(self):
        for t in self.twins.values():
            try:
                ms = json.loads(t.etcdctl("member", "list", "-w", "json", timeout=5))["members"]
                return sorted(m.get("name", "") for m in ms if not m.get("isLearner"))
            except (talos_node.EtcdError, subprocess.TimeoutExpired, ValueError):
                continue
        return []

    def cleanup(self):
        for t in self.twins.values():
            t.stop()
        self.twins = {}
        self.bootd.cleanup()
