"""Shared pieces of the hardening tests: floods with bounded counts and times, a neighbour
table for loopback, and raw sockets for misbehaving clients."""
import http.client
import os
import socket
import threading
import time

from tests.integration.harness import BUILD

# ASan's quarantine keeps freed memory: RSS figures mean nothing under sanitizers.
SANITIZED = os.path.basename(os.path.abspath(BUILD)) == "san"

CP1_UUID = "4c4c4544-0000-1000-8000-000000000001"


def flood(port, paths, threads=4, source="127.0.0.1", deadline_s=120):
    """GETs every path in paths over keep-alive connections; returns the statuses seen.
    Bounded by len(paths) and deadline_s."""
    statuses = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
        seen = {}
        for i in range(k, len(paths), threads):
            if time.monotonic() > stop_at:
                break
            try:
                c.request("GET", paths[i])
                r = c.getresponse()
                r.read()
                seen[r.status] = seen.get(r.status, 0) + 1
            except (OSError, http.client.HTTPException):
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                               source_address=(source, 0))
                seen["error"] = seen.get("error", 0) + 1
        c.close()
        with lock:
            for k2, v in seen.items():
                statuses[k2] = statuses.get(k2, 0) + v

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


class Sampler:
    """Samples a file's size every 10 ms in a thread; peak is the largest seen."""

    def __init__(self, path):
        self.path, self.peak, self._stop = path, 0, threading.Event()
        self._t = threading.Thread(target=self._run)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, os.path.getsize(self.path))
            except OSError:
                pass
            self._stop.wait(0.01)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def neigh_table(path, entries, dev="lo"):
    """Writes a neighbour table in /proc/net/arp's format: entries maps address -> MAC."""
    lines = ["IP address       HW type     Flags       HW address            Mask     Device"]
    for ip, mac in entries.items():
        lines.append("%-16s 0x1         0x2         %-21s *        %s" % (ip, mac, dev))
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def start_with_env(b, env, *extra):
    """Bootd.start with extra environment for bootd."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return b.start(*extra)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_idle(port, n, source="127.0.0.1"):
    """n connected sockets that send nothing; the caller closes them."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            break
        socks.append(s)
    return socks
