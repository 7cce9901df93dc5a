"""GitOps apply: bootd against `kubectl apply --server-side`, same stand-in, same run.

  1,000 objects (500 ConfigMaps, 500 Deployments) applied to a fresh kube-apiserver
  stand-in (TLS 1.3, client certificates):
    kubectl   `kubectl apply --server-side -f DIR` (v1.35, from npm), process start to exit
    bootd     from `POST /api/v1/gitops/sync` to the sync reported done: git fetch,
              checkout, render, discovery, staged server-side apply, health, inventory
                                                                        target >= 2.0x
  Also reported: the self-heal check of the same 1,000 unchanged objects (a resync of
  the same revision: every object read back and compared with Git, nothing re-sent).

Each side gets its own fresh stand-in process; rounds alternate and the best of each
counts. Every wait is bounded.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tests.integration.gitops_env import commit, make_repo
from tests.integration.harness import Bootd, lab_text
from tests.integration.kubetools import kubectl
from tests.standins.pki import kubeconfig, make_pki

N = 1000
ROUNDS = 3
FILES = 10


def manifests():
    """{path: text}: the Namespace and N objects in FILES multi-document files."""
    docs = []
    for i in range(N // 2):
        docs.append("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n"
                    "  namespace: bench\ndata:\n  index: \"%d\"\n  text: some value %d\n"
                    % (i, i, i))
        docs.append("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%d\n"
                    "  namespace: bench\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n"
                    "      app: app-%d\n  template:\n    metadata:\n      labels:\n"
                    "        app: app-%d\n    spec:\n      containers:\n      - name: c\n"
                    "        image: registry.example/app:%d\n" % (i, i, i, i))
    per = len(docs) // FILES
    files = {"m/00-ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n"}
    for f in range(FILES):
        files["m/objects-%02d.yaml" % f] = "---\n".join(docs[f * per:(f + 1) * per])
    return files


class Standin:
    def __init__(self, pki):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.standins.kube_apiserver", "--pki", pki, "--auto-ready"],
            stdout=subprocess.PIPE, text=True)
        self.url = "https://127.0.0.1:%s" % self.proc.stdout.readline().strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def run_kubectl(root, pki, files):
    d = os.path.join(root, "kubectl-dir")
    for name, text in files.items():
        p = os.path.join(d, os.path.basename(name))
        os.makedirs(d, exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    api = Standin(pki)
    try:
        kc = kubeconfig(os.path.join(root, "kubeconfig-kubectl"), api.url, pki)
        # the Namespace first, as the object files need it: not timed
        subprocess.run([kubectl(), "--kubeconfig", kc, "apply", "--server-side", "-f",
                        os.path.join(d, "00-ns.yaml")], check=True, capture_output=True)
        t0 = time.monotonic()
        r = subprocess.run([kubectl(), "--kubeconfig", kc, "apply", "--server-side", "-f", d],
                           capture_output=True, text=True, timeout=600)
        dt = time.monotonic() - t0
        if r.returncode != 0 or r.stdout.count("serverside-applied") != N + 1:
            raise SystemExit("bench: kubectl apply failed:\n%s" % r.stderr[-2000:])
        return dt
    finally:
        api.stop()
        shutil.rmtree(d, ignore_errors=True)


def wait_sync(b, head, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, s = b.api("GET", "/gitops")
        if s["state"] != "syncing" and s["last_sync"] and s["revision"] == head:
            return s
        time.sleep(0.01)
    raise SystemExit("bench: bootd did not finish the sync in %ds" % timeout)


def run_bootd(root, pki, files):
    repo = os.path.join(root, "repo")
    shutil.rmtree(repo, ignore_errors=True)
    make_repo(repo, {"m/README": "objects arrive in the next commit\n"})
    api = Standin(pki)
    b = Bootd(lab="")
    try:
        b.write("lab.yaml", lab_text(b.port) + (
            "gitops:\n  repo: file://%s\n  interval: 1h\n  kustomize: builtin\n"
            "  groups:\n    - name: bench\n      paths: [m]\n" % repo))
        os.makedirs(b.state, mode=0o700, exist_ok=True)
        kubeconfig(os.path.join(b.state, "kubeconfig"), api.url, pki)
        b.start()
        wait_sync(b, subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], text=True,
                                    capture_output=True).stdout.strip())
        head = commit(repo, files)
        t0 = time.monotonic()
        code, _ = b.api("POST", "/gitops/sync")
        s = wait_sync(b, head)
        dt = time.monotonic() - t0
        if not s["last_sync"]["ok"] or s["last_sync"]["applied"] != N + 1:
            raise SystemExit("bench: bootd sync failed: %s" % s)
        t1 = time.monotonic()
        before = s["last_sync"]["finished"]
        b.api("POST", "/gitops/sync")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            s = b.api("GET", "/gitops")[1]
            if s["state"] != "syncing" and s["last_sync"]["finished"] != before:
                break
            time.sleep(0.01)
        resync = time.monotonic() - t1
        if s["last_sync"]["unchanged"] != N + 1 or s["last_sync"]["drifted"] != 0:
            raise SystemExit("bench: the self-heal check re-sent objects: %s" % s["last_sync"])
        return dt, s["last_sync"]["duration_ms"], resync
    finally:
        b.cleanup()
        api.stop()


def run():
    """Returns (lines, ok)."""
    root = tempfile.mkdtemp(prefix="bench-gitops-")
    try:
        pki = make_pki(os.path.join(root, "pki"))
        files = manifests()
        kubectl()  # fetched before anything is timed
        k_times, b_times, resyncs = [], [], []
        for _ in range(ROUNDS):
            k_times.append(run_kubectl(root, pki, files))
            dt, _, resync = run_bootd(root, pki, files)
            b_times.append(dt)
            resyncs.append(resync)
        k, bd = min(k_times), min(b_times)
        ratio = k / bd
        ok = ratio >= 2.0
        return ["apply %d objects: bootd %.2f s (%.0f objects/s), kubectl apply --server-side "
                "%.2f s (%.0f objects/s): %.1fx faster (target >= 2.0x) %s"
                % (N, bd, N / bd, k, N / k, ratio, "ok" if ok else "MISSED"),
                "self-heal check of %d unchanged objects (read back, compared with Git, "
                "nothing re-sent): %.2f s" % (N, min(resyncs))], ok
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    lines, good = run()
    print("\n".join(lines))
    sys.exit(0 if good else 1)
