"""What the browser tests need: Debian's chromium (scripts/packages.txt) and playwright-core
from the npm registry, installed once into build/tools/ui (never a browser download:
playwright-core drives /usr/bin/chromium)."""
import fcntl
import os
import shutil
import subprocess

PACKAGE = "playwright-core@1.64.1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "build", "tools", "ui")
MODULES = os.path.join(TOOLS, "node_modules")
CHROMIUM = os.environ.get("BOOTD_CHROMIUM", "/usr/bin/chromium")


def missing():
    """Why the browser tests cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return "%s is missing: run make deps (chromium is in scripts/packages.txt)" % CHROMIUM
    if not shutil.which("node") or not shutil.which("npm"):
        return "node and npm are missing: run make deps"
    return None


def node_modules():
    """A node_modules folder holding playwright-core; installs it on first use."""
    if os.path.isdir(os.path.join(MODULES, "playwright-core")):
        return MODULES
    os.makedirs(TOOLS, exist_ok=True)
    with open(os.path.join(TOOLS, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(os.path.join(MODULES, "playwright-core")):
            subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                            "--prefix", TOOLS, PACKAGE], check=True, capture_output=True,
                           timeout=600)
    return MODULES
