"""bootctl upgrade kubernetes against node twins with a real 3-member etcd and a
kube-apiserver stand-in whose Nodes the twins' kubelets keep (tests/standins/
kube_apiserver.py, talos_node.py): refused while lab.yaml names another version (the
line to change named); once lab.yaml says it, control planes first, one machine at a
time, each machine's new config applied live and its Node followed until it reports the
new kubelet and is Ready before the next; a second run skips every machine; a kubelet
that never becomes Ready stops the job there with the rest untouched."""
import re
import unittest

from tests.integration.day2_lab import DayTwoLab
from tests.integration.harness import wait_for
from tests.integration.test_day2_apply import subprocess_run
from tests.integration.twin_lab import SharedSecrets

CPS = ["127.0.0.95", "127.0.0.96", "127.0.0.97"]
WORKERS = ["127.0.0.98"]
OLD, NEW = "1.36.3", "1.37.0"
SECRETS = SharedSecrets("bootd-day2-k8s-")
setUpModule, tearDownModule = SECRETS.up, SECRETS.down


class KubernetesUpgradeTest(unittest.TestCase):
    def setUp(self):
        self.lab = DayTwoLab(self, SECRETS.path, CPS, WORKERS,
                             extra="  kubernetes_version: %s\n" % OLD, name="day2k", kube=True)
        self.lab.start()

    def boot(self, **per_machine):
        for n, *_ in self.lab.machines:
            self.lab.boot(n, **per_machine.get(n.replace("-", "_"), {}))
        self.lab.wait_etcd(3)
        # bootd has seen the Kubernetes API, every Node is Ready on the old kubelet
        st = wait_for(lambda: self.lab.bootd.api("GET", "/status")[1]["cluster_state"],
                      lambda c: c.get("kubernetes", {}).get("ready"), 60)
        self.assertTrue(st.get("kubernetes", {}).get("ready"), st)
        nodes = wait_for(self.nodes, lambda n: len(n) == 4 and all(
            v == ("v" + OLD, "True") for v in n.values()), 30)
        self.assertEqual(nodes, {n: ("v" + OLD, "True") for n, *_ in self.lab.machines})

    def nodes(self):
        """Node name -> (kubeletVersion, Ready) as the API server holds them."""
        out = {}
        for name in self.lab.api.names("v1", "nodes"):
            n = self.lab.api.get("v1", "nodes", "", name)
            ready = next((c["status"] for c in n["status"].get("conditions", [])
                          if c["type"] == "Ready"), None)
            out[name] = (n["status"]["nodeInfo"]["kubeletVersion"], ready)
        return out

    def bootctl(self, *args, timeout=300):
        return subprocess_run(self.lab, args, timeout)

    def set_version(self, version):
        text = re.sub(r"(?m)^  kubernetes_version: .*$", "  kubernetes_version: " + version,
                      self.lab.lab_text)
        self.lab.bootd.write("lab.yaml", text)
        self.lab.reload()

    def ready_at(self, name, version):
        """When the machine's kubelet first posted version and Ready."""
        return next((t for t, v, ready in self.lab.twins[name].kubelet_log
                     if v == version and ready == "True"), None)

    def test_refused_until_lab_yaml_says_it_then_rolled_control_planes_first(self):
        self.boot()
        line = next(i + 1 for i, s in enumerate(self.lab.lab_text.splitlines())
                    if s.startswith("  kubernetes_version:"))
        r = self.bootctl("upgrade", "kubernetes", "v" + NEW)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("lab.yaml:%d: cluster.kubernetes_version is %s, not %s: change that line "
                      "to \"kubernetes_version: %s\", bootctl reload" % (line, OLD, NEW, NEW),
                      r.stderr)
        self.assertEqual([t.applied for t in self.lab.twins.values()], [[]] * 4)
        self.assertEqual(self.lab.bootd.api("GET", "/cluster/day2")[1], None, "no job started")
        # without the key, the version is the default: the refusal says where to add it
        self.lab.bootd.write("lab.yaml", re.sub(r"(?m)^  kubernetes_version: .*\n", "",
                                                self.lab.lab_text))
        self.lab.reload()
        r = self.bootctl("upgrade", "kubernetes", NEW)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"lab\.yaml sets no cluster\.kubernetes_version \(the default "
                         r"is [0-9.]+\): add \"kubernetes_version: %s\" under cluster:"
                         % re.escape(NEW))
        self.assertEqual(self.lab.bootd.api("GET", "/cluster/day2")[1], None, "no job started")

        self.set_version(NEW)
        r = self.bootctl("upgrade", "kubernetes", NEW, "--timeout", "60s")
        logs = self.lab.bootd.logs()[-3000:]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + logs)
        self.assertIn("upgrade-kubernetes v%s, one machine at a time: cp-1 cp-2 cp-3 w-1" % NEW,
                      r.stdout)
        self.assertEqual(self.nodes(), {n: ("v" + NEW, "True") for n, *_ in self.lab.machines})
        for n, t in self.lab.twins.items():
            # the component images are what Talos applies without a reboot
            self.assertEqual(t.applied, [("NO_REBOOT", False)], n)
            self.assertEqual(t.reboots, 0, n)
            self.assertIn("ghcr.io/siderolabs/kubelet:v" + NEW, t.config_text)
            self.assertIn("registry.k8s.io/kube-apiserver:v" + NEW if t.config.controlplane
                          else "kubelet:v" + NEW, t.config_text)
        order = sorted((t.applied_at[0], n) for n, t in self.lab.twins.items())
        self.assertEqual([n for _, n in order], ["cp-1", "cp-2", "cp-3", "w-1"])
        for (_, n), (nxt, m) in zip(order, order[1:]):
            ready = self.ready_at(n, "v" + NEW)
            self.assertIsNotNone(ready, n)
            self.assertLess(ready, nxt, "%s was changed before %s's Node was Ready on its new "
                            "kubelet" % (m, n))
        ev = [e["kind"] for e in self.lab.bootd.events("cp-2")]
        for k in ("config-applied", "kubelet-upgraded"):
            self.assertIn(k, ev)
        _, _, metrics = self.lab.bootd.get("/metrics")
        self.assertIn(b"bootd_day2_kubelet_upgrades_total 4\n", metrics)
        self.lab.wait_etcd(3, 30)

        # again: every Node reports it and is Ready, no config changed: all skipped
        r = self.bootctl("upgrade", "kubernetes", "v" + NEW, "--timeout", "30s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([len(t.applied) for t in self.lab.twins.values()], [1] * 4)
        ev = [e["kind"] for e in self.lab.bootd.events("w-1")]
        self.assertIn("upgrade-skipped", ev)

    def test_a_kubelet_never_ready_stops_the_job_with_the_rest_untouched(self):
        self.boot(cp_2={"kubelet_broken": "v" + NEW})
        self.set_version(NEW)
        r = self.bootctl("upgrade", "kubernetes", "v" + NEW, "--timeout", "8s")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"cp-2 not on kubelet v%s and Ready after 8s: its Node "
                         r"cp-2 is not Ready \(KubeletNotReady: container runtime network not ready" %
                         re.escape(NEW))
        self.assertEqual({n: len(t.applied) for n, t in self.lab.twins.items()},
                         {"cp-1": 1, "cp-2": 1, "cp-3": 0, "w-1": 0},
                         "nothing after cp-2 was touched")
        nodes = self.nodes()
        self.assertEqual((nodes["cp-1"], nodes["cp-3"], nodes["w-1"]),
                         (("v" + NEW, "True"), ("v" + OLD, "True"), ("v" + OLD, "True")))
        st = self.lab.bootd.api("GET", "/cluster/day2")[1]
        self.assertEqual((st["kind"], st["phase"], st["pos"]), ("upgrade-kubernetes", "failed", 1),
                         st)
        self.assertIn("day2-failed", [e["kind"] for e in self.lab.bootd.events("cp-2")])
        self.lab.wait_etcd(3, 30)  # the cluster is left healthy


if __name__ == "__main__":
    unittest.main()
