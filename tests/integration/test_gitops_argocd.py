"""gitops.argocd: true: Applications and ApplicationSets become bootd's own ordered groups
(sync waves, depth first; git directory generators with exclude; path templating;
CreateNamespace; the destination namespace for objects without one) instead of being
applied. `bootctl gitops plan` prints them; a sync applies them in that order. The
reference homelab's k8s/sets tree expands into ArgoCD's order."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.gitops_env import GitopsLab
from tests.integration.harness import BOOTCTL
from tests.integration.kubetools import helm
from tests.integration.test_gitops_helm import ChartRepo

CHART_APP = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: demo
  annotations: {argocd.argoproj.io/sync-wave: "2"}
spec:
  project: everything
  sources:
    - repoURL: %s
      chart: demo
      targetRevision: 0.1.0
      helm:
        releaseName: rel
        valueFiles: [$values/values/demo.yaml]
        valuesObject: {replicas: 4}
    - repoURL: https://git.example/lab
      targetRevision: main
      ref: values
  destination: {name: in-cluster, namespace: demo}
  syncPolicy:
    syncOptions: [CreateNamespace=true]
"""

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "gitops-argocd")
TREE = os.path.join(HERE, "..", "fixtures", "homelab-k8s")


def plan(root, *paths):
    r = subprocess.run([BOOTCTL, "-o", "json", "gitops", "plan", "--kustomize", "builtin",
                        "--root", root, *paths], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(r.stderr)
    return json.loads(r.stdout)["groups"]


def read_tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p) as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


class Fixture(unittest.TestCase):
    def test_plan_is_in_wave_then_name_order_depth_first(self):
        groups = plan(FIXTURE, "sets")
        self.assertEqual([(g["name"], g["paths"], g["wave"], g["depth"]) for g in groups], [
            ("sets", ["sets"], 0, 0),
            ("platform", ["platform"], -1, 1),
            ("apps", ["apps"], 1, 1),
            ("app-alpha", ["apps/alpha"], 0, 2),
            ("app-beta", ["apps/beta"], 0, 2),
            ("app-zeta", ["apps/zeta"], 0, 2),
        ])
        by = {g["name"]: g for g in groups}
        self.assertEqual(by["platform"]["namespace"], "platform-system")
        self.assertTrue(by["platform"]["create_namespace"])
        self.assertEqual(by["app-alpha"]["namespace"], "alpha")
        self.assertRegex(by["app-alpha"]["from"], r"apps/appset\.yaml:\d+")
        self.assertEqual(by["app-beta"]["parent"], "apps")

    def test_plan_prints_a_table(self):
        r = subprocess.run([BOOTCTL, "gitops", "plan", "--kustomize", "builtin", "--root",
                            FIXTURE, "sets"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"ORDER\s+GROUP\s+WAVE\s+NAMESPACE\s+PATHS")
        self.assertRegex(r.stdout, r"\n3\s+apps\s+1\s+argocd\s+apps\n")
        self.assertRegex(r.stdout, r"\n4\s+  app-alpha\s+0\s+alpha \(created\)\s+apps/alpha\n")

    def test_a_sync_applies_the_groups_not_the_argocd_objects(self):
        lab = GitopsLab(read_tree(FIXTURE), [("root", ["sets"])], gitops_extra="  argocd: true\n")
        try:
            lab.start()
            s = lab.wait_idle(timeout=60)
            self.assertIsNone(s["last_error"], s)
            api = lab.api
            self.assertEqual(api.get("v1", "configmaps", "platform-system",
                                     "platform-settings")["data"], {"tier": "platform"})
            for app in ("alpha", "beta", "zeta"):
                cm = api.get("v1", "configmaps", app, app)
                self.assertIsNotNone(cm, app)
                self.assertEqual(cm["metadata"]["labels"]["bootd/group"], "app-" + app)
                self.assertIsNotNone(api.get("v1", "namespaces", "", app))
            self.assertIsNone(api.get("v1", "namespaces", "", "skip"))
            # a plain directory source is read without its subdirectories, as ArgoCD does
            self.assertIsNone(api.get("v1", "configmaps", "platform-system", "nested"))
            self.assertIsNone(api.get("v1", "configmaps", "skip", "skip"))
            order = [p.split("?")[0].rsplit("/", 1)[1] for _, p in api.requests("PATCH")]
            self.assertLess(order.index("platform-settings"), order.index("alpha"))
            self.assertLess(order.index("alpha"), order.index("beta"))
            self.assertFalse(any("argoproj" in p for _, p in api.requests()))
        finally:
            lab.cleanup()


class HelmChartApplication(unittest.TestCase):
    def test_a_chart_application_is_rendered_with_helm_and_applied(self):
        root = tempfile.mkdtemp(prefix="bootd-argo-helm-")
        repo = ChartRepo(root)
        files = read_tree(FIXTURE)
        files["sets/demo.yaml"] = CHART_APP % repo.url
        files["sets/kustomization.yaml"] = files["sets/kustomization.yaml"].replace(
            "platform.yaml]", "platform.yaml, demo.yaml]")
        files["values/demo.yaml"] = "image: demo:3.0\ngreeting: moin\n"
        lab = GitopsLab(files, [("root", ["sets"])],
                        gitops_extra="  argocd: true\n  helm: %s\n" % helm())
        try:
            lab.start()
            s = lab.wait_idle(timeout=120)
            self.assertIsNone(s["last_error"], s)
            dep = lab.api.get("apps/v1", "deployments", "demo", "rel-web")
            self.assertEqual(dep["spec"]["replicas"], 4)
            self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]["image"], "demo:3.0")
            self.assertEqual(dep["metadata"]["labels"]["bootd/group"], "demo")
            self.assertEqual(lab.api.get("v1", "configmaps", "demo", "rel-config")["data"]
                             ["GREETING"], "moin")
            order = [p.split("?")[0].rsplit("/", 1)[1] for _, p in lab.api.requests("PATCH")]
            self.assertLess(order.index("zeta"), order.index("rel-web"))  # wave 2 after 1
        finally:
            lab.cleanup()
            repo.stop()
            shutil.rmtree(root, ignore_errors=True)


class ReferenceTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="bootd-argo-")
        shutil.copytree(TREE, os.path.join(cls.root, "k8s"))
        cls.groups = plan(cls.root, "k8s/sets")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_infrastructure_before_applications_depth_first(self):
        names = [g["name"] for g in self.groups]
        self.assertEqual(names[:2], ["k8s/sets", "infrastructure"])
        self.assertLess(names.index("infrastructure"), names.index("applications"))
        # everything below infrastructure comes before applications
        for g in self.groups[2:names.index("applications")]:
            self.assertGreaterEqual(g["depth"], 2, g)
        # a parent comes right before its subtree, siblings by wave then name
        index = {g["name"]: i for i, g in enumerate(self.groups)}
        for i, g in enumerate(self.groups[1:], 1):
            self.assertLess(index[g["parent"]], i)
            kids = [k for k in self.groups if k.get("parent") == g["parent"]]
            self.assertEqual(kids, sorted(kids, key=lambda k: (k["wave"], k["name"])))

    def test_every_directory_the_generators_match_is_a_group(self):
        paths = {p for g in self.groups for p in g["paths"]}
        for sub in ("infra/controllers", "infra/network", "apps/media", "apps/dev"):
            for d in sorted(os.listdir(os.path.join(TREE, sub))):
                if os.path.isdir(os.path.join(TREE, sub, d)):
                    self.assertIn("k8s/%s/%s" % (sub, d), paths)
        self.assertIn("k8s/infra", paths)
        self.assertIn("k8s/apps", paths)
        # Cilium and ArgoCD are Helm charts; planned, though they do not render offline
        by = {g["name"]: g for g in self.groups}
        self.assertEqual(by["cilium"]["paths"], ["k8s/infra/network/cilium"])
        self.assertEqual(by["argocd"]["paths"], ["k8s/infra/controllers/argocd"])


if __name__ == "__main__":
    unittest.main()
