"""proxmox.csi: bootd makes the Proxmox CSI plugin's credentials on Proxmox (role, user,
token; tests/standins/proxmox_api.py) and applies the Secret the plugin's chart reads
(server-side, fieldManager bootd, its namespace first) as soon as the Kubernetes API
answers (tests/standins/kube_apiserver.py), before GitOps; idempotent across restarts,
the secret never in bootd's log."""
import base64
import os
import stat
import unittest

import yaml

from tests.integration import test_bootstrap
from tests.integration.harness import wait_for
from tests.integration.test_bootstrap import CP, W, Lab
from tests.standins.proxmox_api import ProxmoxApi


def setUpModule():
    test_bootstrap.setUpModule()


def tearDownModule():
    test_bootstrap.tearDownModule()


class CsiSecretTest(unittest.TestCase):
    def lab(self, csi="{}", cluster=""):
        self.pve = ProxmoxApi(os.path.join(test_bootstrap._SECRETS, "pve-%d" % id(self)),
                              auth_delay=0.2).start()
        self.addCleanup(self.pve.stop)
        after = ("proxmox:\n  api: %s\n  token_file: %s\n  node: host3\n  ca_file: %s\n"
                 "  poll: 0s\n%s  csi: %s\n" % (self.pve.url, self.pve.token_file, self.pve.crt,
                                                cluster, csi))
        lab = Lab(self, kube=True, after=after)
        lab.node("cp-1", True, CP)
        lab.node("w-1", True, W)
        lab.apid(CP)
        lab.apid(W)
        return lab

    def secret(self, lab, ns="csi-proxmox", name="proxmox-csi-plugin"):
        s = wait_for(lambda: lab.api.get("v1", "secrets", ns, name), lambda s: s is not None, 15)
        self.assertIsNotNone(s, lab.bootd.logs())
        cfg = yaml.safe_load(base64.b64decode(s["data"]["config.yaml"]))
        return s, cfg["clusters"][0]

    def token_writes(self):
        return [r for r in self.pve.requests() if r[0] in ("POST", "DELETE") and "/token/" in r[1]]

    def test_the_plugins_secret_is_applied_once_the_api_answers(self):
        lab = self.lab()
        lab.start()
        lab.wait_cluster(lambda c: c["kubernetes"]["ready"])
        s, c = self.secret(lab)
        self.assertEqual(s["type"], "Opaque")
        self.assertIn("bootd", [m["manager"] for m in s["metadata"]["managedFields"]])
        self.assertEqual(c["url"], self.pve.url + "/api2/json")
        self.assertEqual(c["token_id"], "kubernetes-csi@pve!csi")
        self.assertEqual(c["region"], "it")
        self.assertIs(c["insecure"], False)
        self.assertIn("kubernetes-csi@pve!csi=" + c["token_secret"], self.pve.state.tokens)
        self.assertIn(("/", "CSI", "kubernetes-csi@pve"), self.pve.state.acl)
        self.assertIsNotNone(lab.api.get("v1", "namespaces", "", "csi-proxmox"))
        kept = os.path.join(lab.bootd.labdir, "proxmox-csi.token")
        self.assertEqual(stat.S_IMODE(os.stat(kept).st_mode), 0o600)
        kinds = [e["kind"] for e in lab.bootd.events()]
        self.assertLess(kinds.index("kubernetes-ready"), kinds.index("secrets-applied"))
        self.assertTrue(os.path.exists(os.path.join(lab.bootd.state, "kubeconfig")),
                        "the API is handed over after the Secret")
        self.assertNotIn(c["token_secret"], lab.bootd.logs())
        self.assertNotIn(c["token_secret"], str(lab.bootd.events()))
        # a restart applies the same Secret again: the kept token, no new one
        self.pve.reset_requests()
        lab.bootd.stop()
        lab.start()
        lab.wait_cluster(lambda c: c["kubernetes"]["ready"])
        wait_for(lambda: [r for r in self.pve.requests() if "/access/users" in r[1]], lambda v: v, 15)
        wait_for(lambda: [e for e in lab.bootd.events() if e["kind"] == "secrets-applied"],
                 lambda v: len(v) >= 1, 15)
        _, again = self.secret(lab)
        self.assertEqual(again["token_secret"], c["token_secret"])
        self.assertEqual(self.token_writes(), [])
        self.assertNotIn(c["token_secret"], lab.bootd.logs())

    def test_namespace_name_and_region_from_lab_yaml(self):
        lab = self.lab(csi="{namespace: storage, secret: pve-csi}", cluster="  cluster: pve-lab\n")
        lab.start()
        lab.wait_cluster(lambda c: c["kubernetes"]["ready"])
        _, c = self.secret(lab, "storage", "pve-csi")
        self.assertEqual(c["region"], "pve-lab")
        self.assertIsNone(lab.api.get("v1", "secrets", "csi-proxmox", "proxmox-csi-plugin"))

    def test_proxmox_failing_is_an_event_and_holds_gitops_back(self):
        lab = self.lab()
        self.pve.stop()
        lab.start()
        lab.wait_cluster(lambda c: c["kubernetes"]["ready"])
        ev = wait_for(lambda: [e for e in lab.bootd.events() if e["kind"] == "secrets-failed"],
                      lambda v: v, 15)
        self.assertTrue(ev, lab.bootd.logs())
        self.assertIn("proxmox.csi", ev[0]["message"])
        self.assertFalse(os.path.exists(os.path.join(lab.bootd.state, "kubeconfig")),
                         "the API is not handed over")


if __name__ == "__main__":
    unittest.main()
