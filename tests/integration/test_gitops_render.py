"""Rendering the reference homelab tree (tests/fixtures/homelab-k8s, a copy of
shared/cases/homelab/k8s) through bootd: every kustomization that needs no download
renders, with kubectl as bootd's kustomize, to exactly what `kubectl kustomize` prints,
and with bootd's built-in renderer to the same objects one by one. Folders with Helm
charts or remote resources would download from the internet: only the built-in renderer
(without helm, so it refuses them, naming the field) sees those."""
import json
import os
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor

import yaml

from tests.integration.harness import BOOTCTL
from tests.integration.kubetools import kubectl

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.join(HERE, "..", "fixtures", "homelab-k8s")
BUILTIN_FIXTURES = os.path.join(HERE, "..", "fixtures", "gitops-builtin")


def kustomization(d):
    with open(os.path.join(d, "kustomization.yaml")) as f:
        return yaml.safe_load(f) or {}


def needs_download(d):
    k = kustomization(d)
    if "helmCharts" in k:
        return True
    for r in k.get("resources", []):
        if "://" in r or r.startswith("github.com/"):
            return True
        sub = os.path.join(d, r)
        if os.path.isdir(sub) and needs_download(sub):
            return True
    return False


def folders():
    out = []
    for dirpath, _, files in os.walk(TREE):
        if "kustomization.yaml" in files:
            out.append(os.path.relpath(dirpath, TREE))
    return sorted(out)


def key(o):
    m = o["metadata"]
    return (o["apiVersion"], o["kind"], m.get("namespace", ""), m["name"])


def by_id(objs):
    return {key(o): o for o in objs}


def bootd_render(path, tool):
    # no helm for the built-in renderer: the charts would come from the internet
    r = subprocess.run([BOOTCTL, "-o", "json", "gitops", "render", "--kustomize", tool,
                        "--helm", "/nonexistent/helm", path],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


def kubectl_render(path):
    r = subprocess.run([kubectl(), "kustomize", path], capture_output=True, text=True,
                       timeout=120, check=True)
    return [o for o in yaml.safe_load_all(r.stdout) if o]


class ReferenceTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.all = folders()
        cls.offline = [d for d in cls.all if not needs_download(os.path.join(TREE, d))]
        cls.online = [d for d in cls.all if d not in cls.offline]
        with ThreadPoolExecutor(2) as ex:
            cls.want = dict(zip(cls.offline, ex.map(
                lambda d: kubectl_render(os.path.join(TREE, d)), cls.offline)))
            cls.via_kubectl = dict(zip(cls.offline, ex.map(
                lambda d: bootd_render(os.path.join(TREE, d), kubectl()), cls.offline)))

    def test_the_tree_is_what_the_issue_describes(self):
        self.assertEqual(len(self.all), 51)
        helm = [d for d in self.all if "helmCharts" in kustomization(os.path.join(TREE, d))]
        self.assertEqual(len(helm), 12)
        self.assertIn("infra/crds", self.online)  # remote Gateway API CRDs
        self.assertEqual(len(self.offline), 37)

    def test_every_offline_folder_renders_through_bootd_as_kubectl_does(self):
        for d in self.offline:
            with self.subTest(folder=d):
                code, objs, err = self.via_kubectl[d]
                self.assertEqual(code, 0, err)
                self.assertTrue(objs, d)
                self.assertEqual(by_id(objs), by_id(self.want[d]))
                self.assertEqual(len(objs), len(self.want[d]))

    def test_builtin_renderer_equals_kubectl_on_every_offline_folder(self):
        for d in self.offline:
            with self.subTest(folder=d):
                code, objs, err = bootd_render(os.path.join(TREE, d), "builtin")
                self.assertEqual(code, 0, err)
                self.assertEqual(by_id(objs), by_id(self.want[d]))
                self.assertEqual(len(objs), len(self.want[d]))

    def test_builtin_renderer_refuses_downloads_naming_the_field(self):
        for d in self.online:
            with self.subTest(folder=d):
                code, _, err = bootd_render(os.path.join(TREE, d), "builtin")
                self.assertEqual(code, 1)
                self.assertRegex(err, r"kustomization\.yaml:\d+: (helmCharts(\[0\])?: .*helm"
                                      r"|resources\[\d+\]: \"https?://.*\" is remote)")

    def test_builtin_namespace_rules_match_kustomize(self):
        for d in sorted(os.listdir(BUILTIN_FIXTURES)):
            with self.subTest(fixture=d):
                path = os.path.join(BUILTIN_FIXTURES, d)
                code, objs, err = bootd_render(path, "builtin")
                self.assertEqual(code, 0, err)
                want = kubectl_render(path)
                self.assertEqual(by_id(objs), by_id(want))
                self.assertEqual(len(objs), len(want))


if __name__ == "__main__":
    unittest.main()
