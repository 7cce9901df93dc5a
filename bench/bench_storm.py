"""Boot storm: many machines pulling their initramfs at once, bootd against nginx, on
loopback, in one run, from the same file (one inode, linked into both trees).

  storm      50 clients at once, each pulling a 100 MiB file whole
  storm+rng  the same, with every other client resuming: it fetches the first part,
             then the rest with a Range request (as iPXE and curl do after a drop)
  single     one client

For each: aggregate throughput (all bytes / wall time of the round) and the p99 of each
client's time-to-last-byte (start of its first request to the last byte of its last).
Targets: throughput >= 1.0x nginx, p99 <= 1.2x nginx, 0 failures.

Clients are curl(1) processes, one per machine, spread over 127.0.0.2-11 (five per
address, as machines have their own addresses), each with --max-time; rounds are fixed
in number (BENCH_STORM_ROUNDS, default 3) and alternate between the servers. Throughput
keeps each side's best round; p99 pools every client of every round.
"""
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time

from bench.bench_http import Nginx, lab_with_machines
from tests.integration.harness import Bootd, VANILLA

MIB = 1 << 20
SIZE = int(os.environ.get("BENCH_STORM_MIB", "100")) * MIB
CLIENTS = int(os.environ.get("BENCH_STORM_CLIENTS", "50"))
ROUNDS = int(os.environ.get("BENCH_STORM_ROUNDS", "3"))
MAX_TIME = 120  # seconds, per curl process
NAME = "initramfs-amd64.xz"


def source_of(i):
    return "127.0.0.%d" % (2 + i % 10)


def curl(url, source, rng=None):
    """One transfer; returns bytes received, or raises on any failure."""
    cmd = ["curl", "-sS", "--fail", "--max-time", str(MAX_TIME), "--interface", source,
           "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url]
    if rng:
        cmd[1:1] = ["-r", rng]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=MAX_TIME + 10)
    if p.returncode:
        raise RuntimeError("curl %s: exit %d: %s" % (url, p.returncode, p.stderr.strip()))
    code, got = p.stdout.split()
    if code != ("206" if rng else "200"):
        raise RuntimeError("curl %s: HTTP %s" % (url, code))
    return int(got)


def client(url, i, resume, out):
    t0 = time.monotonic()
    try:
        if resume:
            # a drop after a third of the file, then the rest
            cut = SIZE // 3 + i * 4096
            got = curl(url, source_of(i), "0-%d" % (cut - 1))
            got += curl(url, source_of(i), "%d-" % cut)
        else:
            got = curl(url, source_of(i))
        if got != SIZE:
            raise RuntimeError("got %d bytes of %d" % (got, SIZE))
        out[i] = (time.monotonic() - t0, None)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
        out[i] = (time.monotonic() - t0, str(e))


def storm(url, n, resume):
    """One round: n clients started together. Returns (MiB/s, [ttlb s], [errors])."""
    out = [None] * n
    threads = [threading.Thread(target=client, args=(url, i, resume and i % 2 == 1, out))
               for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(MAX_TIME * 2 + 30)
    wall = time.monotonic() - t0
    errors = [r[1] for r in out if r is None or r[1]]
    times = [r[0] for r in out if r and not r[1]]
    return n * SIZE / MIB / wall, times, errors


def p99(samples):
    s = sorted(samples)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)] if s else float("nan")


def run():
    lines = []
    ok = True
    b = Bootd(lab=None)
    b.write("lab.yaml", lab_with_machines(b.port, 3))
    nginx_root = tempfile.mkdtemp(prefix="bench-storm-")
    os.chmod(nginx_root, 0o755)  # nginx workers drop root
    ng = None
    try:
        asset_dir = os.path.join(b.state, "images", VANILLA, "v1.13.9")
        os.makedirs(asset_dir, exist_ok=True)
        ng_file = os.path.join(nginx_root, NAME)
        with open(ng_file, "wb") as f:
            for _ in range(SIZE // MIB):
                f.write(os.urandom(MIB))
        os.chmod(ng_file, 0o644)
        bd_file = os.path.join(asset_dir, NAME)
        if os.path.exists(bd_file):
            os.unlink(bd_file)
        try:
            os.link(ng_file, bd_file)  # the very same file for both
        except OSError:
            shutil.copyfile(ng_file, bd_file)
        b.start()
        ng = Nginx(nginx_root)
        urls = {"bootd": "http://127.0.0.1:%d/assets/%s/v1.13.9/%s" % (b.port, VANILLA, NAME),
                "nginx": "http://127.0.0.1:%d/%s" % (ng.port, NAME)}
        for label, n, resume in (("storm", CLIENTS, False), ("storm+rng", CLIENTS, True),
                                 ("single", 1, False)):
            rate = {"bootd": [], "nginx": []}
            times = {"bootd": [], "nginx": []}
            errors = {"bootd": [], "nginx": []}
            for _ in range(ROUNDS):
                for side in ("nginx", "bootd"):
                    r, t, e = storm(urls[side], n, resume)
                    rate[side].append(r)
                    times[side] += t
                    errors[side] += e
            bd, ng_ = max(rate["bootd"]), max(rate["nginx"])
            bp, np_ = p99(times["bootd"]), p99(times["nginx"])
            ratio, tail = bd / ng_, bp / np_
            good = ratio >= 1.0 and tail <= 1.2 and not errors["bootd"] and not errors["nginx"]
            lines.append("%s %d x %d MiB: bootd %.0f MiB/s (p99 %.0f ms, %d failed), nginx "
                         "%.0f MiB/s (p99 %.0f ms, %d failed): ratio %.2f (target >= 1.00), "
                         "p99 %.2fx (target <= 1.20) %s" % (
                             label, n, SIZE // MIB, bd, bp * 1e3, len(errors["bootd"]), ng_,
                             np_ * 1e3, len(errors["nginx"]), ratio, tail,
                             "ok" if good else "MISSED"))
            for side in ("bootd", "nginx"):
                for e in errors[side][:3]:
                    lines.append("  %s failure: %s" % (side, e))
            ok &= good
        lines.append("load average: %s" % open("/proc/loadavg").read().strip())
    finally:
        if ng:
            ng.stop()
        b.cleanup()
        shutil.rmtree(nginx_root, ignore_errors=True)
    return lines, ok
