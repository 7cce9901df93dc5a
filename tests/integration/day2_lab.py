"""A bootd on loopback whose machines are node twins (tests/standins/talos_node.py) that
got their configs the way Talos machines do: an iPXE script from bootd, then the
talos.config URL in it, fetched from the machine's own address. So bootd has recorded
what each machine runs (served at PXE time), as for day-2 operations. Three control
planes with a real etcd cluster and workers. With kube=True the cluster endpoint is a
kube-apiserver stand-in (certificate from the bundle's Kubernetes CA) and every twin runs
a kubelet that keeps its Node there."""
import os
import shutil
import sqlite3
import tempfile

from tests.integration.harness import Bootd, config_path, free_ports, seed_images, wait_for
from tests.integration.twin_lab import LAB
from tests.standins import pki, talos_node
from tests.standins.kube_apiserver import KubeApiServer

PATCH = "day2.yaml"


class DayTwoLab:
    def __init__(self, test, secrets, cps, workers=(), extra="", name="day2",
                 seed_versions=("v1.14.0",), kube=False, **twin_kw):
        self.test = test
        self.bootd = Bootd(lab="")
        test.addCleanup(self.cleanup)
        self.api = None
        if kube:
            self.kpki = os.path.join(self.bootd.root, "kube-pki")
            os.makedirs(self.kpki)
            self.k8s_ca = pki.bundle_ca(secrets, "k8s", self.kpki)
            pki.make_pki(self.kpki, ca=self.k8s_ca)
            # the controller manager's --node-monitor-grace-period, short for tests
            self.api = KubeApiServer(self.kpki, node_grace=1.0).start()
            extra += "  endpoint: %s\n" % self.api.url
        self.machines = []  # (name, role, host, mac)
        for i, h in enumerate(cps):
            self.machines.append(("cp-%d" % (i + 1), "controlplane", h, "52:54:00:00:02:%02x" % (i + 1)))
        for i, h in enumerate(workers):
            self.machines.append(("w-%d" % (i + 1), "worker", h, "52:54:00:00:02:%02x" % (i + 0x41)))
        self.cps = list(cps)
        rows = "".join('  - {name: %s, mac: "%s", role: %s, ip: %s}\n' % (n, mac, r, h)
                       for n, r, h, mac in self.machines)
        extra = "  patches: [%s]\n%s" % (PATCH, extra)
        # a local, empty Image Factory: an image not seeded fails to pull, and no test
        # reaches the Internet
        self.factory = tempfile.mkdtemp(prefix="factory-", dir=self.bootd.root)
        self.lab_text = LAB.format(name=name, extra=extra, port=self.bootd.port, machines=rows)
        self.lab_text += "images:\n  factory: file://%s\n" % self.factory
        for v in seed_versions:
            seed_images(os.path.join(self.bootd.state, "images"), version=v)
        self.bootd.write("lab.yaml", self.lab_text)
        self.patch({"machine": {"nodeLabels": {"day2": "one"}}})
        shutil.copy(secrets, os.path.join(self.bootd.labdir, "secrets.yaml"))
        os.chmod(os.path.join(self.bootd.labdir, "secrets.yaml"), 0o600)
        self.bootd.neighbours({h: mac for _, _, h, mac in self.machines})
        self.apid_port, self.cport, self.pport = free_ports(3)
        self.disks = tempfile.mkdtemp(prefix="day2-disks-", dir=self.bootd.root)
        self.twins = {}
        self.twin_kw = twin_kw

    def patch(self, doc):
        import yaml
        self.bootd.write(PATCH, yaml.safe_dump(doc))

    def reload(self):
        r = self.bootd.bootctl("reload")
        self.test.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def start(self, *args):
        self.bootd.start("--talos-port", str(self.apid_port), *args)
        return self

    def pxe_config(self, name):
        """The config a machine gets at PXE time, fetched from its own address."""
        _, _, host, mac = next(m for m in self.machines if m[0] == name)
        status, _, body = self.bootd.ipxe(mac, source=host)
        self.test.assertEqual(status, 200, body)
        path = config_path(body.decode())
        self.test.assertTrue(path, body)
        status, _, cfg = self.bootd.get(path, source=host)
        self.test.assertEqual(status, 200, cfg)
        return cfg.decode()

    def boot(self, name, **kw):
        """The machine boots from the network and runs the config it got."""
        cfg = self.pxe_config(name)
        _, role, host, _ = next(m for m in self.machines if m[0] == name)
        wd = tempfile.mkdtemp(prefix=name + "-", dir=self.disks)
        args = dict(self.twin_kw, **kw)
        if role == "worker":
            args["trustd"] = self.twins["cp-1"]
        if self.api:  # kubelet's client certificate, as TLS bootstrapping gets it
            hostname = talos_node.MachineConfig(cfg).hostname or host
            pki.issue(self.k8s_ca, self.kpki, "kubelet-" + name,
                      "/O=system:nodes/CN=system:node:" + hostname, "clientAuth")
            args["kube"] = (self.api.url, os.path.join(self.kpki, "ca.crt"),
                            os.path.join(self.kpki, "kubelet-%s.crt" % name),
                            os.path.join(self.kpki, "kubelet-%s.key" % name))
        t = talos_node.NodeTwin(cfg, host, wd, self.cps, apid_port=self.apid_port,
                                client_port=self.cport, peer_port=self.pport, **args).start()
        self.twins[name] = t
        return t

    def boot_all(self):
        for n, *_ in self.machines:
            self.boot(n)

    def voters(self):
        for n in ("cp-1", "cp-2", "cp-3"):
            t = self.twins.get(n)
            if not t or t.down:
                continue
            try:
                import json
                ms = json.loads(t.etcdctl("member", "list", "-w", "json", timeout=5))["members"]
                return sorted(m.get("name", "") for m in ms if not m.get("isLearner"))
            except Exception:  # noqa: BLE001 - any failure: ask the next one
                continue
        return []

    def wait_etcd(self, n=3, timeout=90):
        v = wait_for(self.voters, lambda v: len(v) == n, timeout)
        self.test.assertEqual(len(v), n, self.bootd.logs()[-3000:])

    def applied_rows(self):
        db = sqlite3.connect(os.path.join(self.bootd.state, "state.db"))
        try:
            return db.execute("SELECT mac, sha256, redacted, how FROM applied_configs").fetchall()
        finally:
            db.close()

    def cleanup(self):
        for t in self.twins.values():
            t.stop()
        self.twins = {}
        self.bootd.cleanup()
        if self.api:
            self.api.stop()
            self.api = None
