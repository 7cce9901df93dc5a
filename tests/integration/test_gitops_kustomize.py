"""bootd's built-in kustomize against `kubectl kustomize` (kustomize v5.7): a fixture per
field (tests/fixtures/gitops-kustomize: name prefixes and suffixes with references,
commonLabels, labels, commonAnnotations, images, replicas, generators with hashes and
behavior, patches of every kind, components, namespaces with references) and every
offline folder of the reference homelab render to the same objects; what it does not
handle, and broken input, are errors naming file, line and field."""
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest
from concurrent.futures import ThreadPoolExecutor

import yaml

from tests.integration.harness import BOOTCTL
from tests.integration.kubetools import kubectl

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "gitops-kustomize")
TREE = os.path.join(HERE, "..", "fixtures", "homelab-k8s")


def folders(root):
    return sorted(os.path.relpath(d, root) for d, _, files in os.walk(root)
                  if "kustomization.yaml" in files)


def key(o):
    m = o["metadata"]
    return (o["apiVersion"], o["kind"], m.get("namespace", ""), m["name"])


def by_id(objs):
    return {key(o): o for o in objs}


def builtin(path):
    r = subprocess.run([BOOTCTL, "-o", "json", "gitops", "render", "--kustomize", "builtin", path],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


def kubectl_render(path):
    r = subprocess.run([kubectl(), "kustomize", path], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        return None
    return [o for o in yaml.safe_load_all(r.stdout) if o]


def render_both(root, dirs):
    paths = [os.path.join(root, d) for d in dirs]
    with ThreadPoolExecutor(2) as ex:
        want = list(ex.map(kubectl_render, paths))
        got = list(ex.map(builtin, paths))
    return dict(zip(dirs, zip(want, got)))


class SameAsKubectl(unittest.TestCase):
    def check(self, root, dirs):
        for d, (want, (code, objs, err)) in sorted(render_both(root, dirs).items()):
            with self.subTest(folder=d):
                self.assertIsNotNone(want, "kubectl kustomize failed on " + d)
                self.assertEqual(code, 0, err)
                self.assertEqual(len(objs), len(want))
                got, exp = by_id(objs), by_id(want)
                self.assertEqual(sorted(got, key=str), sorted(exp, key=str))
                for k in exp:
                    self.assertEqual(got[k], exp[k], k)

    def test_every_field_fixture(self):
        dirs = folders(FIXTURES)
        self.assertGreaterEqual(len(dirs), 15)
        self.check(FIXTURES, dirs)

    def test_every_offline_folder_of_the_reference_tree(self):
        offline = [d for d in folders(TREE) if kubectl_render(os.path.join(TREE, d)) is not None]
        self.assertEqual(len(offline), 37)
        self.check(TREE, offline)

    def test_generated_names_and_their_references(self):
        _, objs, err = builtin(os.path.join(FIXTURES, "generator-behavior", "overlay"))
        self.assertIsNotNone(objs, err)
        names = {o["kind"] + "/" + o["metadata"]["name"] for o in objs}
        cm = [n for n in names if n.startswith("ConfigMap/prod-app-env-")]
        self.assertEqual(len(cm), 1, names)
        dep = [o for o in objs if o["kind"] == "Deployment"][0]
        env_from = dep["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        self.assertEqual(env_from[0]["configMapRef"]["name"], cm[0].split("/", 1)[1])
        self.assertTrue(env_from[1]["secretRef"]["name"].startswith("prod-app-secret-"))
        self.assertEqual(dep["metadata"]["namespace"], "prod")


class Refusals(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bootd-kust-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def render(self, kustomization, files=None):
        for name, text in dict(files or {}, **{"kustomization.yaml": kustomization}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(textwrap.dedent(text))
        return builtin(self.dir)

    CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n"

    def assertRefused(self, kustomization, pattern, files=None):
        code, _, err = self.render(kustomization, dict({"cm.yaml": self.CM}, **(files or {})))
        self.assertEqual(code, 1, err)
        self.assertRegex(err, r"kustomization\.yaml:\d+: " + pattern)
        return err

    def test_unhandled_fields_name_file_line_and_field(self):
        err = self.assertRefused("resources: [cm.yaml]\nreplacements:\n  - path: r.yaml\n",
                                 r"replacements: the built-in renderer does not handle this "
                                 r"field; install kustomize or kubectl")
        self.assertIn("kustomization.yaml:2:", err)
        self.assertRefused("resources: [cm.yaml]\nlabels:\n  - pairs: {a: b}\n"
                           "    fields: [{path: x}]\n", r"labels: fields: the built-in")
        self.assertRefused("resources: [cm.yaml]\npatches:\n  - path: p.yaml\n"
                           "    options: {allowNameChange: true}\n",
                           r"patches\[0\]: options: the built-in renderer does not know")
        self.assertRefused("resources: [https://example.com/x.yaml]\n",
                           r"resources\[0\]: \"https://example.com/x.yaml\" is remote")

    def test_bad_input_is_named(self):
        self.assertRefused("resources: [cm.yaml]\nconfigMapGenerator:\n  - name: a\n"
                           "    literals: [k=v]\n",
                           r"configMapGenerator: ConfigMap a exists \(.*cm.yaml:1\); behavior "
                           r"must be merge or replace")
        self.assertRefused("configMapGenerator:\n  - name: a\n    literals: [novalue]\n",
                           r"configMapGenerator: invalid literal source novalue")
        self.assertRefused("configMapGenerator:\n  - name: a\n    literals: [a=1, a=2]\n",
                           r"configMapGenerator: a illegally repeats the key `a`")
        self.assertRefused("configMapGenerator:\n  - name: a\n    files: [../../etc/passwd]\n",
                           r"configMapGenerator: a: \.\./\.\./etc/passwd is not in or below")
        self.assertRefused("resources: [cm.yaml]\npatches:\n  - patch: '[{\"op\": \"remove\", "
                           "\"path\": \"/data\"}]'\n",
                           r"patches\[0\]: a JSON patch needs a target")
        self.assertRefused("resources: [cm.yaml]\npatches:\n  - patch: |\n"
                           "      apiVersion: v1\n      kind: ConfigMap\n"
                           "      metadata: {name: nope}\n",
                           r"patches\[0\]: no resource matches strategic merge patch "
                           r"ConfigMap nope")
        self.assertRefused("resources: [cm.yaml]\npatches:\n  - patch: '[{\"op\": \"remove\", "
                           "\"path\": \"/data/missing\"}]'\n    target: {kind: ConfigMap}\n",
                           r"patches\[0\]: ConfigMap a \(.*\): path /data/missing does not "
                           r"exist")
        self.assertRefused("resources: [cm.yaml]\nreplicas:\n  - name: x\n    count: -1\n",
                           r"replicas: a replicas entry needs a name and a count")

    def test_local_config_objects_are_dropped(self):
        local = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local\n  annotations:\n"
                 "    config.kubernetes.io/local-config: \"true\"\n")
        code, objs, err = self.render("resources: [cm.yaml, local.yaml]\n",
                                      {"cm.yaml": self.CM, "local.yaml": local})
        self.assertEqual(code, 0, err)
        self.assertEqual([o["metadata"]["name"] for o in objs], ["a"])
        self.assertEqual(objs, kubectl_render(self.dir))


if __name__ == "__main__":
    unittest.main()
