"""Cluster bootstrap through the Talos API: bootd against apid stand-ins on loopback
(each node its own 127.0.0.x address, apid's port given by --talos-port), mutual TLS with
the lab's own os CA. Covers the happy path, FailedPrecondition retries, a cluster
bootstrapped before, a node certificate from another CA, apid down (backoff, an idle
CPU), manual bootstrap, restarts, the kubeconfig and etcd snapshot commands."""
import base64
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import grpc

from tests.integration.gitops_env import make_repo
from tests.integration.harness import BOOTCTL, Bootd, free_port, wait_for
from tests.standins import pki, talos_apid
from tests.standins.kube_apiserver import KubeApiServer

CP, W = "127.0.0.11", "127.0.0.12"

LAB = """\
cluster:
  name: it
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
  - {{name: cp-1, mac: "52:54:00:00:00:01", role: controlplane, ip: %s}}
  - {{name: w-1, mac: "52:54:00:00:00:02", role: worker, ip: %s}}
""" % (CP, W)

_SECRETS = None  # one bundle for the module: RSA-4096 generation takes a while


def setUpModule():
    global _SECRETS
    d = tempfile.mkdtemp(prefix="bootd-bs-secrets-")
    with open(os.path.join(d, "lab.yaml"), "w") as f:
        f.write(LAB.format(extra="", port=8080))
    subprocess.run([BOOTCTL, "gen", "secrets", os.path.join(d, "lab.yaml")], check=True,
                   capture_output=True, timeout=120)
    _SECRETS = d


def tearDownModule():
    shutil.rmtree(_SECRETS, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU time a process has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Lab:
    """A bootd with generated configs, the module's secrets bundle, apid stand-ins and,
    with kube=True, a kube-apiserver stand-in serving the cluster endpoint with a
    certificate from the bundle's Kubernetes CA."""

    def __init__(self, test, extra="", kube=False, after="", secrets_from=None):
        self.test = test
        self.bootd = Bootd(lab="")
        self.apids, self.api = [], None
        test.addCleanup(self.cleanup)
        secrets = os.path.join(self.bootd.labdir, "secrets.yaml")
        shutil.copy(secrets_from or os.path.join(_SECRETS, "secrets.yaml"), secrets)
        os.chmod(secrets, 0o600)
        self.pki = os.path.join(self.bootd.root, "pki")
        os.makedirs(self.pki)
        self.os_ca = pki.bundle_ca(secrets, "os", self.pki)
        with open(self.os_ca[0]) as f:
            self.os_ca_pem = f.read()
        if kube:
            kpki = pki.make_pki(os.path.join(self.pki, "kube"), ca=pki.bundle_ca(secrets, "k8s",
                                                                                 self.pki))
            self.api = KubeApiServer(kpki).start()
            extra += "  endpoint: %s\n" % self.api.url
        self.bootd.write("lab.yaml", LAB.format(extra=extra, port=self.bootd.port) + after)
        self.port = None

    def apid(self, host, ca=None, **kw):
        """An apid stand-in on host, serving a certificate for host from ca (default: the
        lab's os CA)."""
        crt, key = pki.issue(ca or self.os_ca, self.pki, "apid-" + host, "/CN=" + host,
                               "serverAuth", [host])
        a = talos_apid.Apid(host, self.port or 0, self.os_ca_pem, crt, key, **kw).start()
        self.port = a.port
        self.apids.append(a)
        return a

    def talos_port(self):
        if self.port is None:
            self.port = free_port()
        return self.port

    def start(self):
        self.bootd.start("--talos-port", str(self.talos_port()))
        return self

    def cluster(self):
        status, j = self.bootd.api("GET", "/status")
        self.test.assertEqual(status, 200, j)
        return j["cluster_state"]

    def wait_cluster(self, ok, timeout=15):
        c = wait_for(self.cluster, ok, timeout)
        self.test.assertTrue(ok(c), "cluster status: %s\nbootd log:\n%s" % (c, self.bootd.logs()))
        return c

    def machine(self, cluster, name):
        return next(m for m in cluster["machines"] if m["name"] == name)

    def cleanup(self):
        self.bootd.cleanup()
        for a in self.apids:
            a.stop()
        if self.api:
            self.api.stop()

    def node(self, name, ready, ip):
        self.api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                      "status": {"conditions": [{"type": "Ready",
                                                 "status": "True" if ready else "False"}],
                                 "addresses": [{"type": "InternalIP", "address": ip}]}})

    def cilium(self, desired, ready):
        self.api.put({"apiVersion": "apps/v1", "kind": "DaemonSet",
                      "metadata": {"name": "cilium", "namespace": "kube-system", "generation": 1},
                      "status": {"observedGeneration": 1, "desiredNumberScheduled": desired,
                                 "currentNumberScheduled": desired,
                                 "updatedNumberScheduled": desired, "numberAvailable": ready,
                                 "numberReady": ready}})


def done(c):
    return c["bootstrap"]["done"]



class BootstrapTest(unittest.TestCase):
    def test_happy_path(self):
        lab = Lab(self, kube=True)
        lab.node("cp-1", True, CP)
        lab.node("w-1", True, W)
        lab.cilium(2, 2)
        cp = lab.apid(CP)
        w = lab.apid(W)
        lab.start()
        c = lab.wait_cluster(lambda c: c["phase"] == "ready")
        self.assertEqual(c["bootstrap"]["outcome"], "bootstrapped")
        self.assertEqual(c["bootstrap"]["called_on"], "cp-1")
        self.assertEqual(c["bootstrap"]["attempts"], 1)
        self.assertEqual(cp.calls["Bootstrap"], 1)
        self.assertEqual(w.calls["Bootstrap"], 0, "Bootstrap goes to the bootstrap node only")
        self.assertEqual([m["state"] for m in c["machines"]], ["joined", "joined"])
        self.assertEqual([m["node"] for m in c["machines"]], ["Ready", "Ready"])
        self.assertEqual(lab.machine(c, "cp-1")["talos"], "v1.13.9 (metal)")
        self.assertTrue(c["kubernetes"]["ready"])
        self.assertEqual(c["kubernetes"]["cilium"]["status"], "2/2 pods ready")
        self.assertEqual(c["message"], "all 2 machines joined; cilium: 2/2 pods ready")
        self.assertEqual(cp.refused + w.refused, [])
        self.assertEqual(cp.denied + w.denied, [])
        kinds = [e["kind"] for e in lab.bootd.events("cp-1")]
        self.assertLess(kinds.index("ready"), kinds.index("bootstrap"))
        self.assertLess(kinds.index("bootstrap"), kinds.index("joined"))
        cluster = [e["kind"] for e in lab.bootd.events()]
        for kind in ("kubernetes-ready", "cilium-ready", "cluster-ready"):
            self.assertIn(kind, cluster)
        self.assertIn(("GET", "/readyz"), lab.api.requests("GET"))
        out = lab.bootd.bootctl("status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("phase     ready", out.stdout)
        self.assertIn("done (bootstrapped on cp-1", out.stdout)
        self.assertIn("kubernetes %s: ready" % lab.api.url, out.stdout)
        self.assertRegex(out.stdout, r"w-1\s+worker\s+joined\s+Ready\s+v1\.13\.9 \(metal\)")
        # bootd's admin kubeconfig is left for users and the GitOps loop
        kc = os.path.join(lab.bootd.state, "kubeconfig")
        self.assertEqual(stat.S_IMODE(os.stat(kc).st_mode), 0o600)
        with open(kc) as f:
            self.assertIn("server: %s" % lab.api.url, f.read())

    def test_kubernetes_comes_up_and_machines_join(self):
        lab = Lab(self, kube=True)
        lab.api.set_ready(False)
        lab.apid(CP)
        lab.apid(W)
        lab.start()
        c = lab.wait_cluster(lambda c: c["phase"] == "waiting-for-kubernetes")
        self.assertIn("HTTP 500", c["message"])
        self.assertFalse(os.path.exists(os.path.join(lab.bootd.state, "kubeconfig")))
        lab.api.set_ready(True)
        c = lab.wait_cluster(lambda c: c["phase"] == "kubernetes-ready")
        self.assertEqual(c["message"],
                         "0 of 2 machines joined; cilium: no DaemonSet kube-system/cilium (yet)")
        lab.node("cp-1", True, "198.51.100.1")  # found by name
        lab.node("worker-one", False, W)        # found by address, not Ready yet
        lab.cilium(2, 1)
        c = lab.wait_cluster(lambda c: lab.machine(c, "cp-1")["state"] == "joined")
        self.assertEqual(lab.machine(c, "w-1")["node"], "NotReady")
        self.assertEqual(lab.machine(c, "w-1")["state"], "ready")
        self.assertIn("1/2 pods ready", c["kubernetes"]["cilium"]["status"])
        self.assertFalse(c["kubernetes"]["cilium"]["ready"])
        lab.node("worker-one", True, W)
        lab.cilium(2, 2)
        c = lab.wait_cluster(lambda c: c["phase"] == "ready")
        self.assertTrue(c["kubernetes"]["cilium"]["ready"])
        msgs = [e["message"] for e in lab.bootd.events("w-1") if e["kind"] == "joined"]
        self.assertEqual(msgs, ["Kubernetes node worker-one is Ready"])

    def test_kubernetes_api_handed_to_gitops(self):
        repo = os.path.join(tempfile.mkdtemp(prefix="bootd-bs-repo-"), "repo")
        self.addCleanup(shutil.rmtree, os.path.dirname(repo), True)
        make_repo(repo, {"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                         "  name: hello\n  namespace: default\n"})
        lab = Lab(self, kube=True, after="gitops:\n  repo: file://%s\n  kustomize: builtin\n"
                                         "  groups:\n    - {name: apps, paths: [apps]}\n" % repo)
        lab.node("cp-1", True, CP)
        lab.apid(CP)
        lab.start()
        ok = wait_for(lambda: lab.api.get("v1", "configmaps", "default", "hello"),
                      lambda o: o is not None, 20)
        self.assertIsNotNone(ok, "the GitOps loop applied through bootd's API handover:\n" +
                             lab.bootd.logs())

    def test_retries_while_not_ready(self):
        lab = Lab(self)
        cp = lab.apid(CP, not_ready=3)
        lab.start()
        c = lab.wait_cluster(done)
        self.assertEqual(cp.calls["Bootstrap"], 4)
        self.assertEqual(c["bootstrap"]["attempts"], 4)
        self.assertEqual(c["bootstrap"]["outcome"], "bootstrapped")
        events = lab.bootd.events("cp-1")
        waits = [e for e in events if e["kind"] == "bootstrap-wait"]
        self.assertEqual(len(waits), 1, "one event for the wait, not one per attempt")
        self.assertIn("FailedPrecondition: bootstrap is not available yet", waits[0]["message"])

    def test_already_bootstrapped(self):
        lab = Lab(self)
        cp = lab.apid(CP)
        cp.bootstrapped = True
        lab.start()
        c = lab.wait_cluster(done)
        self.assertEqual(c["bootstrap"]["outcome"], "already-bootstrapped")
        self.assertEqual(cp.calls["Bootstrap"], 1)
        boot = [e for e in lab.bootd.events("cp-1") if e["kind"] == "bootstrap"]
        self.assertEqual([e["message"] for e in boot],
                         ["cp-1 says etcd was bootstrapped before (AlreadyExists): nothing to do"])

    def test_node_certificate_from_another_ca(self):
        lab = Lab(self)
        other = pki.self_signed_ca(lab.pki, "other-ca", "/O=talos")
        cp = lab.apid(CP, ca=other)
        lab.start()
        c = lab.wait_cluster(lambda c: "certificate" in (lab.machine(c, "cp-1")["talos"] or ""))
        msg = lab.machine(c, "cp-1")["talos"]
        self.assertIn("TLS: the node's certificate is not one the cluster's os CA", msg)
        self.assertIn("Talos API 127.0.0.11:%d: Version" % lab.port, msg)
        self.assertEqual(c["phase"], "waiting-for-talos")
        self.assertEqual(cp.calls["Version"] + cp.calls["Bootstrap"], 0)
        self.assertFalse(done(c))

    def test_apid_down_backs_off(self):
        lab = Lab(self)
        counter = talos_apid.ConnectionCounter(CP).start()
        self.addCleanup(counter.stop)
        lab.port = counter.port
        lab.start()
        pid = lab.bootd.proc.pid
        wait_for(lambda: counter.count, lambda n: n >= 1, 5)
        cpu0, n0 = cpu_seconds(pid), counter.count
        time.sleep(4)
        cpu1, n1 = cpu_seconds(pid), counter.count
        # back-off 0.5 s, 1 s, 2 s, ...: a handful of attempts in 4 s, not a busy loop
        self.assertLessEqual(n1 - n0, 5, "connection attempts in 4 s")
        self.assertGreaterEqual(n1 - n0, 1, "it keeps trying")
        self.assertLess(cpu1 - cpu0, 0.3, "CPU seconds used in 4 s while apid is down")
        c = lab.cluster()
        self.assertEqual(c["phase"], "waiting-for-talos")
        self.assertIn("TLS handshake failed", lab.machine(c, "cp-1")["talos"])
        self.assertEqual(c["bootstrap"]["attempts"], 0)

    def test_restart_mid_bootstrap_and_after(self):
        lab = Lab(self)
        cp = lab.apid(CP, not_ready=10**6)
        lab.start()
        lab.wait_cluster(lambda c: c["bootstrap"]["attempts"] >= 2)
        lab.bootd.stop()
        before = cp.calls["Bootstrap"]
        cp.not_ready = 0  # ready now: the next call succeeds
        lab.bootd.start("--talos-port", str(lab.port))
        c = lab.wait_cluster(done)
        self.assertEqual(cp.calls["Bootstrap"], before + 1)
        self.assertEqual(c["bootstrap"]["attempts"], before + 1, "attempts survive the restart")
        # after success: a restarted bootd reads the record and never calls again
        lab.bootd.stop(signal.SIGKILL)
        lab.bootd.start("--talos-port", str(lab.port))
        c = lab.wait_cluster(lambda c: c["phase"] == "waiting-for-kubernetes")
        time.sleep(1)
        self.assertEqual(cp.calls["Bootstrap"], before + 1)
        self.assertEqual(c["bootstrap"]["outcome"], "bootstrapped")

    def test_manual_bootstrap(self):
        lab = Lab(self, extra="  bootstrap: manual\n")
        cp = lab.apid(CP)
        lab.start()
        c = lab.wait_cluster(lambda c: lab.machine(c, "cp-1")["state"] == "ready")
        self.assertEqual(c["phase"], "manual")
        self.assertEqual(cp.calls["Bootstrap"], 0)
        out = lab.bootd.bootctl("bootstrap", "--timeout", "20s")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("bootstrapped: bootstrapped on cp-1", out.stdout)
        self.assertEqual(cp.calls["Bootstrap"], 1)
        again = lab.bootd.bootctl("bootstrap")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("already bootstrapped", again.stdout)
        self.assertEqual(cp.calls["Bootstrap"], 1)
        self.assertIn("bootstrap-requested", [e["kind"] for e in lab.bootd.events()])


class KubeconfigAndSnapshotTest(unittest.TestCase):
    def setUp(self):
        self.lab = Lab(self)

    def minted_kubeconfig(self):
        r = subprocess.run([BOOTCTL, "gen", "kubeconfig", self.lab.bootd.lab_path, "-o", "-"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_kubeconfig_extracted_and_compared(self):
        text = self.minted_kubeconfig()  # signed by the lab's CA, as Talos's would be
        self.lab.apid(CP, kubeconfig=text)
        self.lab.start()
        out_path = os.path.join(self.lab.bootd.root, "kc", "kubeconfig")
        os.makedirs(os.path.dirname(out_path))
        r = self.lab.bootd.bootctl("kubeconfig", "-o", out_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out_path) as f:
            self.assertEqual(f.read(), text)
        self.assertEqual(stat.S_IMODE(os.stat(out_path).st_mode), 0o600)
        for what in ("context", "cluster", "server", "cluster CA", "client certificate"):
            self.assertRegex(r.stdout, r"%s\s+same" % what)
        self.assertNotIn("DIFFERS", r.stdout)

    def test_kubeconfig_from_another_cluster_differs(self):
        other = pki.self_signed_ca(self.lab.pki, "other-k8s", "/O=kubernetes")
        crt, key = pki.issue(other, self.lab.pki, "other-admin", "/O=system:masters/CN=admin",
                               "clientAuth")
        b64 = lambda t: base64.b64encode(t.encode()).decode()
        with open(other[0]) as f:
            ca = f.read()
        text = ("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
                "    certificate-authority-data: %s\n    server: https://192.0.2.99:6443\n"
                "  name: it\ncontexts:\n- context:\n    cluster: it\n    namespace: default\n"
                "    user: admin@it\n  name: admin@it\ncurrent-context: admin@it\nusers:\n"
                "- name: admin@it\n  user:\n    client-certificate-data: %s\n"
                "    client-key-data: %s\n") % (b64(ca), b64(crt), b64(key))
        self.lab.apid(CP, kubeconfig=text)
        self.lab.start()
        r = self.lab.bootd.bootctl("kubeconfig", "-o", "-")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, text)
        self.assertRegex(r.stderr, r"context\s+same")
        self.assertRegex(r.stderr, r"server\s+DIFFERS: Talos https://192.0.2.99:6443")
        self.assertRegex(r.stderr, r"cluster CA\s+DIFFERS")
        self.assertRegex(r.stderr, r"client certificate\s+DIFFERS")
        self.assertIn("does not match this lab", r.stderr)

    def test_etcd_snapshot_byte_exact(self):
        cp = self.lab.apid(CP, snapshot=talos_apid.etcd_snapshot(pages=300))
        self.lab.start()
        path = os.path.join(self.lab.bootd.root, "etcd.db")
        r = self.lab.bootd.bootctl("etcd", "snapshot", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(path, "rb") as f:
            got = f.read()
        want = hashlib.sha256(cp.snapshot).hexdigest()
        self.assertEqual(hashlib.sha256(got).hexdigest(), want)
        self.assertEqual(len(got), 300 * 4096 + 32)
        self.assertIn("sha256 " + want, r.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(cp.calls["EtcdSnapshot"], 1)
        kinds = [e["kind"] for e in self.lab.bootd.events("cp-1")]
        self.assertIn("etcd-snapshot", kinds)

    def test_corrupt_etcd_snapshot_is_not_saved(self):
        snap = bytearray(talos_apid.etcd_snapshot(pages=8))
        snap[100] ^= 1
        self.lab.apid(CP, snapshot=bytes(snap))
        self.lab.start()
        path = os.path.join(self.lab.bootd.root, "etcd.db")
        with open(path, "wb") as f:
            f.write(b"an older snapshot")
        r = self.lab.bootd.bootctl("etcd", "snapshot", path)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("does not match its own SHA-256", r.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"an older snapshot")
        self.assertEqual([n for n in os.listdir(self.lab.bootd.root) if ".tmp-" in n], [])

    def test_worker_refused_for_snapshot(self):
        self.lab.apid(CP)
        self.lab.start()
        r = self.lab.bootd.bootctl("etcd", "snapshot", os.path.join(self.lab.bootd.root, "x"),
                                   "--node", "w-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("w-1 is a worker", r.stderr)


class ApidStandinTest(unittest.TestCase):
    """The stand-in refuses what apid refuses."""

    def setUp(self):
        self.lab = Lab(self)
        self.apid = self.lab.apid(CP)

    def channel(self, subject, eku):
        crt, key = pki.issue(self.lab.os_ca, self.lab.pki, "client-%d" % len(self.apid.calls),
                               subject, eku)
        creds = grpc.ssl_channel_credentials(self.lab.os_ca_pem.encode(), key.encode(),
                                             crt.encode())
        ch = grpc.secure_channel("%s:%d" % (CP, self.apid.port), creds)
        self.addCleanup(ch.close)
        return ch

    def call(self, ch, method, req, resp):
        return ch.unary_unary("/machine.MachineService/" + method,
                              request_serializer=req.SerializeToString,
                              response_deserializer=resp.FromString)(req(), timeout=5)

    def test_reader_may_ask_version_but_not_bootstrap(self):
        ch = self.channel("/O=os:reader", "clientAuth")
        v = self.call(ch, "Version", talos_apid.Empty, talos_apid.VersionResponse)
        self.assertEqual(v.messages[0].version.tag, "v1.13.9")
        with self.assertRaises(grpc.RpcError) as e:
            self.call(ch, "Bootstrap", talos_apid.BootstrapRequest, talos_apid.BootstrapResponse)
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.apid.denied, [("Bootstrap", ["os:reader"])])

    def test_extended_key_usage_must_be_exactly_client_auth(self):
        ch = self.channel("/O=os:admin", "serverAuth,clientAuth")
        with self.assertRaises(grpc.RpcError) as e:
            self.call(ch, "Version", talos_apid.Empty, talos_apid.VersionResponse)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("client certificate extended key usage is not exactly clientAuth",
                      self.apid.refused)
        self.assertEqual(self.apid.calls["Version"], 0)


if __name__ == "__main__":
    unittest.main()


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "talos")


class Ed25519OsCaTest(unittest.TestCase):
    """An Ed25519 os CA, talosctl's and the Terraform provider's default: bootd signs its
    os:admin client certificate with it and bootstraps through it."""

    def os_ca_algorithm(self, secrets):
        crt, _ = pki.bundle_ca(secrets, "os", tempfile.mkdtemp(prefix="bootd-os-ca-"))
        out = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-text"], check=True,
                             capture_output=True, text=True).stdout
        shutil.rmtree(os.path.dirname(crt))
        return out

    def test_bootctl_gen_secrets_makes_an_ed25519_os_ca(self):
        out = self.os_ca_algorithm(os.path.join(_SECRETS, "secrets.yaml"))
        self.assertIn("Public Key Algorithm: ED25519", out)
        self.assertIn("Subject: O = talos", out)

    def bootstrap_with(self, secrets):
        self.assertIn("Public Key Algorithm: ED25519", self.os_ca_algorithm(secrets))
        lab = Lab(self, secrets_from=secrets)
        cp = lab.apid(CP)
        lab.apid(W)
        lab.start()
        c = lab.wait_cluster(lambda c: c["bootstrap"]["done"])
        self.assertEqual(c["bootstrap"]["outcome"], "bootstrapped")
        self.assertEqual(cp.calls["Bootstrap"], 1)
        self.assertEqual(cp.refused, [])
        self.assertEqual(cp.denied, [])
        self.assertTrue(cp.client_sig_algs)
        self.assertEqual(set(cp.client_sig_algs), {"ed25519"},
                         "bootd's client certificate is signed by the Ed25519 os CA")
        # the talosconfig bootctl makes carries a certificate from the same CA
        out = lab.bootd.bootctl("gen", "talosconfig", os.path.join(lab.bootd.labdir, "lab.yaml"),
                                "-o", "-")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("context: it\n", out.stdout)
        key = base64.b64decode(out.stdout.split("key: ")[1].split()[0]).decode()
        self.assertTrue(key.startswith("-----BEGIN ED25519 PRIVATE KEY-----\n"), key)

    def test_openssl_made_talosctl_layout_bundle_bootstraps(self):
        self.bootstrap_with(os.path.join(FIXTURES, "secrets-openssl-ed25519.yaml"))

    def test_terraform_machine_secrets_bootstraps(self):
        self.bootstrap_with(os.path.join(FIXTURES, "secrets-terraform.yaml"))
