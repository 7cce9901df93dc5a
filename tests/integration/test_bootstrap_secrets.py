"""cluster.bootstrap_secrets and bootctl secrets export: Secrets from 0600 files applied
(server-side, fieldManager bootd, their namespace first) as soon as the Kubernetes API
answers and before the API is handed to GitOps; a file that holds something else is an
event naming file:line:col and nothing is handed over; a readable file is refused when
the lab loads; export saves a live Secret as such a file, without the server's
bookkeeping."""
import os
import stat
import unittest

import yaml

from tests.integration import test_bootstrap
from tests.integration.harness import wait_for
from tests.integration.test_bootstrap import CP, W, Lab

KEY = """\
apiVersion: v1
kind: Secret
metadata:
  name: sealed-secrets-key
  namespace: sealed
  labels: {sealedsecrets.bitnami.com/sealed-secrets-key: active}
type: kubernetes.io/tls
data:
  tls.crt: Y2VydA==
  tls.key: a2V5
"""


def setUpModule():
    test_bootstrap.setUpModule()


def tearDownModule():
    test_bootstrap.tearDownModule()


class BootstrapSecretsTest(unittest.TestCase):
    def lab(self, text, mode=0o600):
        lab = Lab(self, kube=True, extra="  bootstrap_secrets: [keys/sealed.yaml]\n")
        lab.bootd.write("keys/sealed.yaml", text, mode=mode)
        lab.node("cp-1", True, CP)
        lab.node("w-1", True, W)
        lab.apid(CP)
        lab.apid(W)
        return lab

    def test_applied_when_the_api_answers_then_exported(self):
        lab = self.lab(KEY)
        lab.start()
        lab.wait_cluster(lambda c: c["kubernetes"]["ready"])
        s = wait_for(lambda: lab.api.get("v1", "secrets", "sealed", "sealed-secrets-key"),
                     lambda s: s is not None, 10)
        self.assertIsNotNone(s, lab.bootd.logs())
        self.assertEqual(s["data"], {"tls.crt": "Y2VydA==", "tls.key": "a2V5"})
        self.assertIn("bootd", [m["manager"] for m in s["metadata"]["managedFields"]])
        kinds = [e["kind"] for e in lab.bootd.events()]
        self.assertIn("secrets-applied", kinds)
        self.assertLess(kinds.index("kubernetes-ready"), kinds.index("secrets-applied"))

        out = os.path.join(lab.bootd.root, "backup", "sealed-key.yaml")
        os.makedirs(os.path.dirname(out))
        r = lab.bootd.bootctl("secrets", "export", "sealed/sealed-secrets-key", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        doc = yaml.safe_load(open(out))
        self.assertEqual(doc, yaml.safe_load(KEY), "applies again as it is, no bookkeeping")
        r = lab.bootd.bootctl("secrets", "export", "sealed/nope", "-o", out + ".2")
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(out + ".2"))
        r = lab.bootd.bootctl("secrets", "export", "no-slash", "-o", out)
        self.assertEqual(r.returncode, 2)

    def test_not_a_secret_is_an_event_and_holds_gitops_back(self):
        lab = self.lab(KEY + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: sealed}\n")
        lab.start()
        lab.wait_cluster(lambda c: c["kubernetes"]["ready"])
        ev = wait_for(lambda: [e for e in lab.bootd.events() if e["kind"] == "secrets-failed"],
                      lambda v: v, 10)
        self.assertTrue(ev, lab.bootd.logs())
        self.assertRegex(ev[0]["message"], r"keys/sealed\.yaml:\d+:\d+: .*only v1 Secrets, not v1 ConfigMap")
        self.assertIsNone(lab.api.get("v1", "secrets", "sealed", "sealed-secrets-key"),
                          "nothing of a bad file is applied")
        self.assertFalse(os.path.exists(os.path.join(lab.bootd.state, "kubeconfig")),
                         "the API is not handed over")

    def test_a_readable_file_is_refused_when_the_lab_loads(self):
        lab = self.lab(KEY, mode=0o644)
        r = lab.bootd.bootctl("validate", lab.bootd.lab_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cluster.bootstrap_secrets[0]", r.stdout + r.stderr)
        self.assertIn("chmod", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
