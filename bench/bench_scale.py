"""Cost as the lab grows: labs of 10, 1,000 and 10,000 machines (BENCH_SCALE_SIZES).

For each lab, on loopback, one bootd:
  start     process start to /healthz answering (load, validate, first state.db sync)
  /ipxe     p50/p99 of BENCH_SCALE_BOOTS (200) boots of distinct machines, one at a time,
            a new connection each (as iPXE does), each from the machine's own address
  config    median time of a /config/<token> fetch (the machine config rendered)
  RSS       after those boots and one GET /api/v1/machines     target < 16 MiB at 1,000
  reload    POST /api/v1/reload of a lab.yaml with one machine renamed, and the
            /ipxe latency (p50/p99/max) of boots made by another client meanwhile

Every loop is bounded in count and in time.
"""
import http.client
import os
import statistics
import threading
import time

from bench.bench_http import lab_with_machines, rss_kib
from tests.integration.harness import Bootd, config_path

SIZES = [int(x) for x in os.environ.get("BENCH_SCALE_SIZES", "10,1000,10000").split(",")]
BOOTS = int(os.environ.get("BENCH_SCALE_BOOTS", "200"))
CONFIGS = 20
RSS_LIMIT_KIB = 16 * 1024


def mac_of(i):
    return "52-54-%02x-%02x-%02x-01" % (i >> 16 & 255, i >> 8 & 255, i & 255)


def source_of(i):
    return "127.2.%d.%d" % (i >> 8 & 255, i & 255)


def timed_get(port, path, source):
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    return time.monotonic() - t0, r.status, body


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s))) - 1))] if s else float("nan")


def boot(b, i):
    path = "/ipxe?mac=%s&uuid=&arch=x86_64&platform=pcbios" % mac_of(i)
    t, status, body = timed_get(b.port, path, source_of(i))
    if status != 200 or b"talos.config=" not in body:
        raise SystemExit("bench scale: /ipxe for m-%d answered %d:\n%s" % (i, status, body[:300]))
    return t, body.decode()


def one_lab(n):
    b = Bootd(lab=None)
    lab = lab_with_machines(b.port, n)
    b.write("lab.yaml", lab)
    picks = sorted({(k * 7919) % n for k in range(min(BOOTS, n))})  # spread over the list
    b.neighbours({source_of(i): mac_of(i).replace("-", ":") for i in picks})
    t0 = time.monotonic()
    b.start()
    start_s = time.monotonic() - t0
    try:
        lat, scripts = [], []
        for i in picks:
            t, script = boot(b, i)
            lat.append(t)
            scripts.append((i, script))
        cfg = []
        for i, script in scripts[:CONFIGS]:
            t, status, body = timed_get(b.port, config_path(script), source_of(i))
            if status != 200:
                raise SystemExit("bench scale: config for m-%d answered %d" % (i, status))
            cfg.append(t)
        status, _, _ = b.get("/api/v1/machines",
                             headers={"Authorization": "Bearer " + b.token()})
        rss = rss_kib(b.proc.pid)

        # a reload while another client keeps booting machines
        b.write("lab.yaml", lab.replace("name: m-0,", "name: m-zero,", 1))
        during, stop = [], threading.Event()

        def booter():
            deadline = time.monotonic() + 120
            k = 0
            while not stop.is_set() and time.monotonic() < deadline and k < 20000:
                i = picks[k % len(picks)]
                t1 = time.monotonic()
                t, _ = boot(b, i)
                during.append((t1, t1 + t))
                k += 1

        th = threading.Thread(target=booter)
        th.start()
        time.sleep(0.3)
        r0 = time.monotonic()
        status, body = b.api("POST", "/reload")
        r1 = time.monotonic()
        time.sleep(0.3)
        stop.set()
        th.join(130)
        if status != 200:
            raise SystemExit("bench scale: reload answered %d: %s" % (status, body))
        overlap = [e - s for s, e in during if e >= r0 and s <= r1]
        return {"n": n, "start": start_s, "p50": pct(lat, 50), "p99": pct(lat, 99),
                "cfg": statistics.median(cfg), "rss": rss, "reload": r1 - r0,
                "rl_n": len(overlap), "rl_p50": pct(overlap, 50), "rl_p99": pct(overlap, 99),
                "rl_max": max(overlap) if overlap else float("nan")}
    finally:
        b.cleanup()


def run():
    rows = [one_lab(n) for n in SIZES]
    lines = ["%-8s %8s %12s %12s %9s %9s %9s %26s" % (
        "machines", "start", "/ipxe p50", "/ipxe p99", "config", "RSS", "reload",
        "/ipxe during reload p50/p99/max (n)")]
    ok = True
    for r in rows:
        lines.append("%-8d %6.0fms %10.2fms %10.2fms %7.2fms %6.1fMiB %7.0fms %8.1f/%.1f/%.1f ms (%d)" % (
            r["n"], r["start"] * 1e3, r["p50"] * 1e3, r["p99"] * 1e3, r["cfg"] * 1e3,
            r["rss"] / 1024, r["reload"] * 1e3, r["rl_p50"] * 1e3, r["rl_p99"] * 1e3,
            r["rl_max"] * 1e3, r["rl_n"]))
        if r["n"] == 1000:
            good = r["rss"] < RSS_LIMIT_KIB
            lines.append("RSS with 1,000 machines: %.1f MiB (target < 16 MiB) %s" % (
                r["rss"] / 1024, "ok" if good else "MISSED"))
            ok &= good
    lines.append("load average: %s" % open("/proc/loadavg").read().strip())
    return lines, ok
