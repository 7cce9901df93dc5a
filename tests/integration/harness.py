"""Starts bootd on loopback with a temporary lab and state dir, and talks to it.

Only 127.0.0.0/8 is used: requests pick their source address (127.0.0.11, ...) to play
different machines.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BUILD = os.environ.get("BOOTD_BUILD", "build/release")
BOOTD = os.path.abspath(os.path.join(BUILD, "bootd"))
BOOTCTL = os.path.abspath(os.path.join(BUILD, "bootctl"))

VANILLA = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"

CP_CONFIG = "version: v1alpha1\nmachine:\n  type: controlplane\n# controlplane config for tests\n"
WORKER_CONFIG = "version: v1alpha1\nmachine:\n  type: worker\n# worker config for tests\n"

LAB = """\
cluster:
  name: it
  talos_version: v1.13.9
  controlplane:
    config: cp.yaml
  worker:
    config: worker.yaml
lan:
  interface: lo
  dnsmasq: false
  dhcp: {dhcp}
  subnet: 127.0.0.0/8
{range}  boot_server: 127.0.0.1
  http_port: {port}
boot:
  token_grace: {grace}
  hold_retry: 7s
  unknown: {unknown}
machines:
  - name: cp-1
    mac: "52:54:00:00:00:01"
    role: controlplane
    ip: 127.0.0.11
    uuid: 4c4c4544-0000-1000-8000-000000000001
  - name: w-1
    mac: "52:54:00:00:00:02"
    role: worker
    ip: 127.0.0.12
  - name: w-2
    mac: "52:54:00:00:00:03"
    role: worker
images:
  factory: http://127.0.0.1:9   # nothing listens: no test pulls from the Internet
"""


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# What the harness's machines look like on the wire: cp-1 and w-1 at their reserved
# addresses, w-2 (no reservation) at 127.0.0.13.
NEIGHBOURS = {"127.0.0.11": "52:54:00:00:00:01", "127.0.0.12": "52:54:00:00:00:02",
              "127.0.0.13": "52:54:00:00:00:03"}
UUIDS = {"52:54:00:00:00:01": "4c4c4544-0000-1000-8000-000000000001"}


def sanitizer_report(log):
    """The part of a log where ASan, LSan or UBSan reported something, or None."""
    for marker in SANITIZER_MARKERS:
        i = log.find(marker)
        if i >= 0:
            return log[max(0, i - 200):i + 3000]
    return None
# What Image Factory publishes as cmdline-metal-<arch> for Talos v1.13.
CMDLINE = {
    "amd64": "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on "
             "consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 "
             "module.sig_enforce=1 proc_mem.force_override=never",
    "arm64": "talos.platform=metal console=ttyAMA0 console=tty0 init_on_alloc=1 slab_nomerge "
             "consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 "
             "module.sig_enforce=1 proc_mem.force_override=never",
}


def seed_images(cache, schematic=VANILLA, version="v1.13.9", archs=("amd64", "arm64")):
    """Puts small stand-in image files in a cache, so that machines boot without a pull."""
    d = os.path.join(cache, schematic, version)
    os.makedirs(d, exist_ok=True)
    for arch in archs:
        for name, data in (("kernel-" + arch, b"kernel stand-in\n"),
                           ("initramfs-%s.xz" % arch, b"initramfs stand-in\n"),
                           ("cmdline-metal-" + arch, CMDLINE[arch].encode() + b"\n")):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def line_of(text, needle):
    """1-based line number of the first line containing needle."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def wait_for(fetch, ok, timeout=5.0):
    """Calls fetch() until ok(value) holds or timeout passes; returns the last value.
    bootd records some things just after the response has left."""
    deadline = time.monotonic() + timeout
    while True:
        v = fetch()
        if ok(v) or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def free_ports(n):
    """n ports that no socket on any address holds, all below the kernel's ephemeral range.

    A service a test restarts on its port (bootd, a node twin's Talos API, etcd) must find
    the port free again: a port from the ephemeral range can meanwhile be any client
    socket's source port (a request bound to 127.0.0.11:0, say), and a bound client in
    TIME_WAIT keeps the port from the listener for a minute."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    socks = []
    try:
        for _ in range(1000):
            if len(socks) == n:
                return [s.getsockname()[1] for s in socks]
            s = socket.socket()
            try:
                s.bind(("0.0.0.0", random.randrange(10000, ephemeral_low)))
            except OSError:
                s.close()
                continue
            socks.append(s)
        raise RuntimeError("no %d free ports below %d in 1000 tries" % (n, ephemeral_low))
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


def lab_text(port, dhcp="full", grace="10m", unknown="hold"):
    rng = "  range: [127.0.1.1, 127.0.1.250]\n" if dhcp == "full" else ""
    return LAB.format(port=port, dhcp=dhcp, range=rng, grace=grace, unknown=unknown)


class Bootd:
    """One bootd process with its own lab dir and state dir."""

    def __init__(self, lab=None, images=True, **lab_args):
        self.root = tempfile.mkdtemp(prefix="bootd-it-")
        self.labdir = os.path.join(self.root, "lab")
        self.state = os.path.join(self.root, "state")
        os.makedirs(self.labdir)
        self.port = free_port()
        self.lab_path = os.path.join(self.labdir, "lab.yaml")
        self.write("lab.yaml", lab if lab is not None else lab_text(self.port, **lab_args))
        self.write("cp.yaml", CP_CONFIG)
        self.write("worker.yaml", WORKER_CONFIG)
        self.proc = None
        self.log_path = os.path.join(self.root, "bootd.log")
        # loopback has no neighbours: bootd reads who is who from this file instead
        self.neigh_path = os.path.join(self.root, "neigh")
        self.neighbours(NEIGHBOURS)
        if images:
            seed_images(os.path.join(self.state, "images"))

    def write(self, name, text, mode=None):
        path = os.path.join(self.labdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(path, mode)
        return path

    def neighbours(self, entries):
        """Sets the neighbour table bootd sees (/proc/net/arp's format): address -> MAC."""
        lines = ["IP address       HW type     Flags       HW address            Mask     Device"]
        for ip, mac in entries.items():
            lines.append("%-16s 0x1         0x2         %-21s *        lo" % (ip, mac))
        with open(self.neigh_path + ".new", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(self.neigh_path + ".new", self.neigh_path)

    def start(self, *extra, wait=True, env=None):
        self.log = open(self.log_path, "ab")
        e = dict(os.environ, BOOTD_NEIGH_TABLE=self.neigh_path)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [BOOTD, "--lab", self.lab_path, "--state-dir", self.state, "--listen", "127.0.0.1",
             "--port", str(self.port), "--threads", "2", *extra],
            stdout=self.log, stderr=self.log, env=e)
        if wait:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError("bootd exited early:\n" + self.logs())
                try:
                    if self.get("/healthz")[0] == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            raise AssertionError("bootd did not come up:\n" + self.logs())
        return self

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def cleanup(self):
        self.stop()
        report = sanitizer_report(self.logs()) if self.proc else None
        shutil.rmtree(self.root, ignore_errors=True)
        if report:
            raise AssertionError("bootd under sanitizers reported:\n" + report)

    def token(self):
        with open(os.path.join(self.state, "admin.token")) as f:
            return f.read().strip()

    def request(self, method, path, headers=None, body=None, source="127.0.0.1"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                       source_address=(source, 0))
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def api(self, method, path, body=None, token=None):
        headers = {"Authorization": "Bearer " + (token if token is not None else self.token())}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        status, hdrs, data = self.request(method, "/api/v1" + path, headers=headers, body=body)
        return status, json.loads(data) if data else None

    def ipxe(self, mac, source="127.0.0.1", arch="x86_64", platform="pcbios", uuid=None):
        if uuid is None:  # iPXE always sends ${uuid}
            uuid = UUIDS.get(mac.lower().replace("-", ":"), "")
        return self.get("/ipxe?mac=%s&uuid=%s&arch=%s&platform=%s" % (mac, uuid, arch, platform),
                        source=source)

    def events(self, name=None):
        status, j = self.api("GET", "/machines/%s/events" % name if name else "/events")
        assert status == 200, j
        return j["events"]

    def bootctl(self, *args, env=None):
        e = dict(os.environ)
        e.update({"BOOTD_URL": "http://127.0.0.1:%d" % self.port,
                  "BOOTD_TOKEN_FILE": os.path.join(self.state, "admin.token"),
                  "HOME": self.root})
        e.update(env or {})
        return subprocess.run([BOOTCTL, *args], capture_output=True, text=True, env=e, timeout=30)


def config_url(script):
    """The talos.config URL in a machine script."""
    for word in script.split():
        if word.startswith("talos.config="):
            return word[len("talos.config="):]
    return None


def config_path(script):
    url = config_url(script)
    return url[url.index("/config/"):] if url else None
