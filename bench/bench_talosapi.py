"""bootd's Talos API client against grpcio's (Python's gRPC on the gRPC C core), both
talking to the same apid stand-in process over mutual TLS on loopback:

  Version call     one call on a new connection (TLS handshake, HTTP/2, the call), as
                   bootd's reconciler makes them; median of many.      target <= 1.5x grpcio
  etcd snapshot    the EtcdSnapshot stream (8 MiB in 1 KiB messages, as Talos chunks it)
                   written to a file; best of three.                   target <= 1.25x grpcio

bootd's side runs bench/talosapi_driver.c, built here against the same libbootd.a.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import grpc

from bench.bench_talos import build_driver
from tests.standins import pki, talos_apid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CALLS = int(os.environ.get("BENCH_TALOSAPI_CALLS", "200"))
PAGES = 2048  # 8 MiB
HOST = "127.0.0.11"
VERSION_TARGET, SNAPSHOT_TARGET = 1.5, 1.25

LAB = """cluster: {name: bench, talos_version: v1.13.9}
lan: {interface: lo, dnsmasq: false, dhcp: proxy, subnet: 127.0.0.0/8, boot_server: 127.0.0.1}
machines:
  - {name: cp-1, mac: "52:54:00:00:00:01", role: controlplane, ip: %s}
""" % HOST


def driver(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit("bench talosapi: %s: %s" % (" ".join(cmd), r.stderr))
    return [int(x) for x in r.stdout.split()]


def grpc_version(port, creds):
    """One Version call on a new channel; ns."""
    t0 = time.monotonic_ns()
    with grpc.secure_channel("%s:%d" % (HOST, port), creds) as ch:
        ch.unary_unary("/machine.MachineService/Version",
                       request_serializer=talos_apid.Empty.SerializeToString,
                       response_deserializer=talos_apid.VersionResponse.FromString)(
            talos_apid.Empty(), timeout=10)
    return time.monotonic_ns() - t0


def grpc_snapshot(port, creds, path):
    t0 = time.monotonic_ns()
    with grpc.secure_channel("%s:%d" % (HOST, port), creds) as ch, open(path, "wb") as f:
        stream = ch.unary_stream("/machine.MachineService/EtcdSnapshot",
                                 request_serializer=talos_apid.EtcdSnapshotRequest.SerializeToString,
                                 response_deserializer=talos_apid.Data.FromString)
        for msg in stream(talos_apid.EtcdSnapshotRequest(), timeout=120):
            f.write(msg.bytes)
    return time.monotonic_ns() - t0


def line(what, ours, theirs, target, unit):
    ratio = ours / theirs
    good = ratio <= target
    return good, "%s: bootd %s, grpcio %s; ratio %.2f (target <= %.2f) %s" % (
        what, unit(ours), unit(theirs), ratio, target, "ok" if good else "MISSED")


def run():
    """Returns (lines, ok)."""
    build_dir = os.path.join(ROOT, os.environ.get("BOOTD_BUILD", "build/release"))
    tmp = tempfile.mkdtemp(prefix="bench-talosapi-")
    lines, ok, apid = [], True, None
    try:
        exe = os.path.join(tmp, "talosapi_driver")
        build_driver(build_dir, exe, "talosapi_driver.c")
        lab = os.path.join(tmp, "lab.yaml")
        with open(lab, "w") as f:
            f.write(LAB)
        subprocess.run([os.path.join(build_dir, "bootctl"), "gen", "secrets", lab], check=True,
                       capture_output=True, timeout=300)
        ca = pki.bundle_ca(os.path.join(tmp, "secrets.yaml"), "os", tmp)
        pki.issue(ca, tmp, "apid", "/CN=cp-1", "serverAuth", [HOST])
        crt, key = pki.issue(ca, tmp, "client", "/O=os:admin", "clientAuth")
        apid = subprocess.Popen([sys.executable, "-m", "tests.standins.talos_apid", "--host", HOST,
                                 "--ca", ca[0], "--crt", os.path.join(tmp, "apid.crt"),
                                 "--key", os.path.join(tmp, "apid.key"),
                                 "--snapshot-pages", str(PAGES)],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = int(apid.stdout.readline())
        with open(ca[0], "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read(), key.encode(), crt.encode())

        ours = statistics.median(driver([exe, "version", lab, HOST, str(port), str(CALLS)]))
        theirs = statistics.median(grpc_version(port, creds) for _ in range(CALLS))
        good, text = line("Version call on a new connection, median of %d" % CALLS, ours, theirs,
                          VERSION_TARGET, lambda ns: "%.2f ms" % (ns / 1e6))
        ok &= good
        lines.append(text)

        size = PAGES * 4096 + 32
        best_ours = best_theirs = None
        for _ in range(3):
            t = driver([exe, "snapshot", lab, HOST, str(port), os.path.join(tmp, "ours.db")])[0]
            best_ours = t if best_ours is None else min(best_ours, t)
            t = grpc_snapshot(port, creds, os.path.join(tmp, "theirs.db"))
            best_theirs = t if best_theirs is None else min(best_theirs, t)
        mbs = lambda ns: "%.0f MB/s" % (size / (ns / 1e9) / 1e6)
        good, text = line("etcd snapshot of %d MiB, best of 3" % (size >> 20), best_ours,
                          best_theirs, SNAPSHOT_TARGET, mbs)
        ok &= good
        lines.append(text)
    finally:
        if apid:
            apid.stdin.close()
            apid.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return lines, ok
