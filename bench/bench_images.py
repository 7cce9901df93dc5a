"""Image downloads: `bootctl image pull` against curl(1), on loopback, in one run.

  pull     kernel + initramfs (2 x 256 MiB) + cmdline from nginx, hashed, verified
           and landed by bootctl, vs curl(1) fetching the same three URLs       target >= 0.9x

Both write to tmpfs (/dev/shm) so that the disk does not decide the result; bootctl
still fsyncs and renames as it always does. Rounds alternate between the two and the
best of each is kept. Every run is bounded by a timeout.
"""
import os
import shutil
import subprocess
import tempfile
import time

from bench.bench_http import Nginx
from tests.integration.harness import (BOOTCTL, CP_CONFIG, VANILLA, WORKER_CONFIG, free_port,
                                       lab_text)

SIZE = 256 << 20
ROUNDS = 5
VERSION = "v1.13.9"


def timed(cmd, env=None):
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if r.returncode:
        raise SystemExit("bench: %s failed:\n%s%s" % (cmd[0], r.stdout, r.stderr))
    return time.monotonic() - t


def run():
    """Returns (lines, ok)."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = tempfile.mkdtemp(prefix="bench-images-", dir=shm)
    www = tempfile.mkdtemp(prefix="bench-images-www-")
    os.chmod(www, 0o755)  # nginx workers drop root
    ng = None
    try:
        image_dir = os.path.join(www, "image", VANILLA, VERSION)
        os.makedirs(image_dir)
        names = {"kernel-amd64": SIZE, "initramfs-amd64.xz": SIZE, "cmdline-metal-amd64": 200}
        for name, size in names.items():
            path = os.path.join(image_dir, name)
            with open(path, "wb") as f:
                for _ in range(0, size, 1 << 20):
                    f.write(os.urandom(min(1 << 20, size)))
            os.chmod(path, 0o644)
        for d in (os.path.join(www, "image"), os.path.join(www, "image", VANILLA), image_dir):
            os.chmod(d, 0o755)
        total = sum(os.path.getsize(os.path.join(image_dir, n)) for n in names)
        ng = Nginx(www)
        factory = "http://127.0.0.1:%d" % ng.port
        lab = os.path.join(root, "lab.yaml")
        with open(lab, "w") as f:
            f.write(lab_text(free_port()).replace("http://127.0.0.1:9", factory))
        for name, text in (("cp.yaml", CP_CONFIG), ("worker.yaml", WORKER_CONFIG)):
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        env = dict(os.environ, BOOTD_URL="http://127.0.0.1:9")  # no bootd to tell
        out = os.path.join(root, "curl")
        state = os.path.join(root, "state")
        pull, curl = [], []
        for _ in range(ROUNDS):
            shutil.rmtree(state, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            lock = os.path.join(root, "images.lock")
            if os.path.exists(lock):
                os.unlink(lock)
            cmd = ["curl", "-sS", "--fail"]
            for n in names:
                cmd += ["-o", os.path.join(out, n), "%s/image/%s/%s/%s" % (factory, VANILLA,
                                                                          VERSION, n)]
            curl.append(timed(cmd))
            shutil.rmtree(out)
            pull.append(timed([BOOTCTL, "image", "pull", "--lab", lab, "--state-dir", state],
                              env=env))
        best_pull, best_curl = min(pull), min(curl)
        ratio = best_curl / best_pull
        line = ("pull %d MiB: bootctl %.0f MiB/s (%.2f s), curl %.0f MiB/s (%.2f s): ratio %.2f "
                "(target >= 0.90) %s" % (
                    total >> 20, total / best_pull / 2**20, best_pull, total / best_curl / 2**20,
                    best_curl, ratio, "ok" if ratio >= 0.9 else "MISSED"))
        return [line], ratio >= 0.9
    finally:
        if ng:
            ng.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)
