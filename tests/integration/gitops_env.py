"""A GitOps lab for tests: a git repository (file://), the kube-apiserver stand-in with
test PKI, and bootd with a gitops section pointing at both."""
import json
import os
import shutil
import subprocess
import tempfile
import time

from tests.integration.harness import Bootd, lab_text
from tests.standins.kube_apiserver import KubeApiServer
from tests.standins.pki import kubeconfig, make_pki

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(repo, *args):
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def make_repo(path, files):
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    return commit(path, files)


def commit(repo, files, delete=(), message="change"):
    """Writes files ({path: text}), deletes paths, commits; returns the commit id."""
    for name, text in files.items():
        p = os.path.join(repo, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    for name in delete:
        git(repo, "rm", "-q", "-r", name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class GitopsLab:
    def __init__(self, files, groups, auto_ready=True, establish_delay=0.0, gitops_extra="",
                 write_kubeconfig=True):
        self.root = tempfile.mkdtemp(prefix="bootd-gitops-")
        self.pki = make_pki(os.path.join(self.root, "pki"))
        self.api = KubeApiServer(self.pki, auto_ready=auto_ready,
                                 establish_delay=establish_delay).start()
        self.repo = os.path.join(self.root, "repo")
        self.head = make_repo(self.repo, files)
        self.bootd = Bootd(lab="")
        group_text = "".join("    - name: %s\n      paths: [%s]\n" % (g, ", ".join(p))
                             for g, p in groups)
        self.bootd.write("lab.yaml", lab_text(self.bootd.port) + (
            "gitops:\n  repo: file://%s\n  interval: 1h\n  health_timeout: 3s\n"
            "  kustomize: builtin\n%s  groups:\n%s" % (self.repo, gitops_extra, group_text)))
        os.makedirs(self.bootd.state, mode=0o700, exist_ok=True)
        self.kubeconfig = os.path.join(self.bootd.state, "kubeconfig")
        if write_kubeconfig:
            self.write_kubeconfig()

    def write_kubeconfig(self, path=None, **kw):
        return kubeconfig(path or self.kubeconfig, self.api.url, self.pki, **kw)

    def start(self):
        self.bootd.start()
        return self

    def status(self):
        code, j = self.bootd.api("GET", "/gitops")
        assert code == 200, j
        return j

    def wait_idle(self, timeout=30):
        """Waits until a sync has finished and none runs; returns the status."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            if s["last_sync"] and s["state"] != "syncing":
                return s
            if time.monotonic() > deadline:
                raise AssertionError("no sync finished: %s\n%s" % (s, self.bootd.logs()))
            time.sleep(0.05)

    def sync(self, timeout=60):
        """bootctl gitops sync --wait; returns (exit code, status)."""
        r = self.bootd.bootctl("-o", "json", "gitops", "sync", "--wait",
                               "--timeout=%d" % timeout)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            raise AssertionError("bootctl gitops sync: %s %s" % (r.stdout, r.stderr))

    def commit(self, files=None, delete=()):
        self.head = commit(self.repo, files or {}, delete)
        return self.head

    def cleanup(self):
        """Stops everything; fails if bootd did not exit cleanly (sanitizer reports
        included)."""
        self.bootd.stop()
        logs = self.bootd.logs()
        code = self.bootd.proc.returncode if self.bootd.proc else 0
        self.bootd.cleanup()
        self.api.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        bad = [w for w in ("Sanitizer", "runtime error") if w in logs]
        if code != 0 or bad:
            raise AssertionError("bootd exited with %s %s:\n%s" % (code, bad, logs))


def yaml_doc(kind, name, ns=None, api="v1", extra=""):
    meta = "  name: %s\n" % name + ("  namespace: %s\n" % ns if ns else "")
    return "apiVersion: %s\nkind: %s\nmetadata:\n%s%s" % (api, kind, meta, extra)


CRD_WIDGETS = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  replicas: 2
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers: [{name: c, image: "registry.example/app:1"}]
"""


def deployment(name, ns):
    return DEPLOYMENT % (name, ns, name, name)
