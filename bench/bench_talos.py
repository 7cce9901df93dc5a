"""Talos configs and secrets, timed in process by bench/talos_driver.c (built here
against the same libbootd.a bootd links):

  config render   one machine's config as /config/<token> renders it, median of many,
                  for the homelab's control plane (template patches, Cilium manifests,
                  12 KB) and a plain worker                             target < 1 ms
  secrets bundle  `bootctl gen secrets`'s work, median of a few runs; RSA-4096 key
                  search dominates and varies from run to run           (no target)

No yardstick runs beside these: the render target is absolute (a machine waiting on
its config should not notice bootd), so the lines print the median and the target.
"""
import os
import shutil
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RENDERS = int(os.environ.get("BENCH_TALOS_RENDERS", "2000"))
BUNDLES = int(os.environ.get("BENCH_TALOS_BUNDLES", "5"))
TARGET_US = 1000.0
QEMU_GUEST_AGENT = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"


def build_driver(build, out, source="talos_driver.c"):
    """Compiles bench/<source> against libbootd.a of build into out."""
    libs = subprocess.run(["pkg-config", "--libs", "libmicrohttpd", "libcurl", "libcjson",
                           "yaml-0.1", "sqlite3", "libgit2"],
                          capture_output=True, text=True, check=True).stdout.split()
    flags = ["-O2"]
    if "san" in os.path.basename(build):
        flags += ["-fsanitize=address,undefined"]
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", *flags, "-o", out,
                    os.path.join(HERE, source), os.path.join(build, "libbootd.a"),
                    *libs, "-lmbedtls", "-lmbedx509", "-lmbedcrypto", "-lz", "-pthread"],
                   check=True, timeout=120)


def samples(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit("bench talos: %s: %s" % (" ".join(cmd), r.stderr))
    return [int(x) for x in r.stdout.split()], r.stderr.strip()


def homelab_copy(tmp):
    lab = os.path.join(tmp, "homelab")
    shutil.copytree(os.path.join(ROOT, "examples", "homelab"), lab)
    secrets = os.path.join(lab, "secrets.yaml")
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "talos", "secrets-reference.yaml"), secrets)
    os.chmod(secrets, 0o600)
    return os.path.join(lab, "lab.yaml")


def run():
    """Returns (lines, ok)."""
    build = os.path.join(ROOT, os.environ.get("BOOTD_BUILD", "build/release"))
    tmp = tempfile.mkdtemp(prefix="bench-talos-")
    lines, ok = [], True
    try:
        driver = os.path.join(tmp, "talos_driver")
        build_driver(build, driver)
        lab = homelab_copy(tmp)
        for machine, what in (("ctrl-00", "homelab control plane"), ("work-00", "homelab worker")):
            ns, size = samples([driver, "render", lab, QEMU_GUEST_AGENT, machine, str(RENDERS)])
            median_us = statistics.median(ns) / 1000
            p99_us = sorted(ns)[int(len(ns) * 0.99) - 1] / 1000
            good = median_us < TARGET_US
            ok &= good
            lines.append("config render, %s (%s): median %.0f us, p99 %.0f us over %d renders; "
                         "target < %.0f us: ratio %.2f %s" % (
                             what, size, median_us, p99_us, len(ns), TARGET_US,
                             median_us / TARGET_US, "ok" if good else "MISSED"))
        ns, _ = samples([driver, "secrets", str(BUNDLES)])
        lines.append("secrets bundle generation: median %.2f s over %d (min %.2f s, max %.2f s; "
                     "RSA-4096 key search dominates), no target" % (
                         statistics.median(ns) / 1e9, len(ns), min(ns) / 1e9, max(ns) / 1e9))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lines, ok
