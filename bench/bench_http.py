"""HTTP serving: bootd against nginx, on loopback, in one run.

  assets   bootd vs nginx (sendfile) serving the same 64 MiB file        target >= 0.9x
  /ipxe    bootd's per-machine script vs nginx serving a static file
           of the same size                                              target >= 0.5x
  RSS      bootd with 1,000 machines in lab.yaml                         target < 16 MiB

Every load is bounded: wrk runs a fixed duration with a fixed connection count.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from tests.integration.harness import Bootd, VANILLA, free_port

DURATION = os.environ.get("BENCH_DURATION", "8s")
ROUNDS = 3


def wrk(url, conns):
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d" + DURATION, "--latency", url],
                         capture_output=True, text=True, timeout=120).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    mult = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[tr.group(2)]
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit("bench: %s answered %s errors:\n%s" % (url, non2xx.group(1), out))
    return {"rps": rps, "bytes": float(tr.group(1)) * mult, "p99_ms": float(p99.group(1)) * unit}


def best(runs, key):
    return max(runs, key=lambda r: r[key])


class Nginx:
    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="bench-nginx-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes %d;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %s;
  proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server { listen 127.0.0.1:%d; root %s; }
}
""" % (os.cpu_count(), self.dir, self.dir, self.dir, self.dir, self.dir, self.dir, self.dir,
       self.port, root))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench: nginx did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def lab_with_machines(port, n):
    lines = ["cluster:\n  name: bench\n  talos_version: v1.13.9\n  endpoint: https://127.0.0.2:6443\n"
             "  controlplane: {config: cp.yaml}\n  worker: {config: worker.yaml}\n"
             "lan:\n  interface: lo\n  dnsmasq: false\n  dhcp: proxy\n  subnet: 127.0.0.0/8\n"
             "  boot_server: 127.0.0.1\n  http_port: %d\nmachines:\n" % port]
    for i in range(n):
        lines.append("  - {name: m-%d, mac: '52:54:%02x:%02x:%02x:01', role: %s, ip: 127.1.%d.%d}\n"
                     % (i, i >> 16 & 255, i >> 8 & 255, i & 255,
                        "controlplane" if i < 3 else "worker", i >> 8, i & 255))
    return "".join(lines)


def run():
    """Returns (lines, ok)."""
    results = []
    ok = True
    b = Bootd(lab=None)
    b.write("lab.yaml", lab_with_machines(b.port, 3))
    b.neighbours({"127.0.0.1": "52:54:00:00:01:01"})  # wrk plays m-1, from 127.0.0.1
    b.start()
    nginx_root = tempfile.mkdtemp(prefix="bench-root-")
    os.chmod(nginx_root, 0o755)  # nginx workers drop root
    try:
        asset_dir = os.path.join(b.state, "images", VANILLA, "v1.13.9")
        os.makedirs(asset_dir, exist_ok=True)
        blob = os.urandom(64 << 20)
        for d in (asset_dir, nginx_root):
            with open(os.path.join(d, "kernel-amd64"), "wb") as f:
                f.write(blob)
            os.chmod(os.path.join(d, "kernel-amd64"), 0o644)
        del blob
        ipxe_path = "/ipxe?mac=52-54-00-00-01-01&uuid=&arch=x86_64&platform=pcbios"
        script = b.get(ipxe_path)[2]
        with open(os.path.join(nginx_root, "script.ipxe"), "wb") as f:
            f.write(script)
        os.chmod(os.path.join(nginx_root, "script.ipxe"), 0o644)
        ng = Nginx(nginx_root)
        try:
            ng_url = "http://127.0.0.1:%d" % ng.port
            bd_url = "http://127.0.0.1:%d" % b.port
            runs = {"ng_asset": [], "bd_asset": [], "ng_small": [], "bd_ipxe": []}
            for _ in range(ROUNDS):  # interleaved, so both see the same machine state
                runs["ng_asset"].append(wrk(ng_url + "/kernel-amd64", 4))
                runs["bd_asset"].append(wrk(bd_url + "/assets/%s/v1.13.9/kernel-amd64" % VANILLA, 4))
                runs["ng_small"].append(wrk(ng_url + "/script.ipxe", 32))
                runs["bd_ipxe"].append(wrk(bd_url + ipxe_path, 32))
        finally:
            ng.stop()
        nga, bda = best(runs["ng_asset"], "bytes"), best(runs["bd_asset"], "bytes")
        ngs, bdi = best(runs["ng_small"], "rps"), best(runs["bd_ipxe"], "rps")
        ratio_asset = bda["bytes"] / nga["bytes"]
        ratio_ipxe = bdi["rps"] / ngs["rps"]
        results.append("assets 64 MiB: bootd %.0f MiB/s (p99 %.1f ms), nginx %.0f MiB/s (p99 %.1f ms):"
                       " ratio %.2f (target >= 0.90) %s" % (
                           bda["bytes"] / 2**20, bda["p99_ms"], nga["bytes"] / 2**20, nga["p99_ms"],
                           ratio_asset, "ok" if ratio_asset >= 0.9 else "MISSED"))
        results.append("/ipxe (%d B): bootd %.0f req/s (p99 %.2f ms), nginx static %.0f req/s "
                       "(p99 %.2f ms): ratio %.2f (target >= 0.50) %s" % (
                           len(script), bdi["rps"], bdi["p99_ms"], ngs["rps"], ngs["p99_ms"],
                           ratio_ipxe, "ok" if ratio_ipxe >= 0.5 else "MISSED"))
        ok &= ratio_asset >= 0.9 and ratio_ipxe >= 0.5
    finally:
        b.cleanup()
        shutil.rmtree(nginx_root, ignore_errors=True)

    big = Bootd(lab=None)
    big.write("lab.yaml", lab_with_machines(big.port, 1000))
    big.neighbours({"127.0.%d.%d" % (20 + i // 250, i % 250 + 1): "52:54:00:%02x:%02x:01"
                    % (i >> 8, i & 255) for i in range(0, 1000, 10)})
    big.start()
    try:
        for i in range(0, 1000, 10):
            big.get("/ipxe?mac=52-54-00-%02x-%02x-01&arch=x86_64" % (i >> 8, i & 255),
                    source="127.0.%d.%d" % (20 + i // 250, i % 250 + 1))
        big.get("/api/v1/machines", headers={"Authorization": "Bearer " + big.token()})
        rss = rss_kib(big.proc.pid)
        results.append("RSS with 1,000 machines: %.1f MiB (target < 16 MiB) %s" % (
            rss / 1024, "ok" if rss < 16 * 1024 else "MISSED"))
        ok &= rss < 16 * 1024
    finally:
        big.cleanup()

    return results, ok
