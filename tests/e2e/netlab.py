"""A PXE lab on this machine: a network namespace with a bridge on 192.0.2.0/24,
bootd (which runs its own dnsmasq) inside it, and QEMU VMs whose guest is the Talos
stand-in (tests/e2e/guest). Used by the end-to-end tests and by `make demo`.

Everything runs as root. The process enters the lab's namespace itself (setns), so
bootd, dnsmasq and QEMU inherit it and the test talks to bootd on 192.0.2.1 directly.
Every wait is bounded; everything started is stopped and the namespaces deleted on
close, also after a failure.
"""
import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

BUILD = os.environ.get("BOOTD_BUILD", "build/release")
BOOTD = os.path.abspath(os.path.join(BUILD, "bootd"))
BOOTCTL = os.path.abspath(os.path.join(BUILD, "bootctl"))
GUEST_DIR = os.path.abspath(os.path.join(BUILD, "guest"))
HERE = os.path.dirname(os.path.abspath(__file__))
from tests.integration.harness import CMDLINE  # noqa: E402  what Image Factory publishes
VANILLA = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BOOT_SERVER = "192.0.2.1"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def build_guest(arch="amd64"):
    """The stand-in's kernel and initramfs, rebuilt only when their sources change:
    this host's kernel for amd64, Debian's arm64 packages for arm64."""
    out = GUEST_DIR if arch == "amd64" else GUEST_DIR + "-" + arch
    sh(os.path.join(HERE, "guest", "build.sh"), out, *([arm64_root()] if arch == "arm64" else []))
    return os.path.join(out, "kernel"), os.path.join(out, "initramfs")


def arm64_root():
    """Debian's arm64 kernel, busybox and systemd EFI stub, unpacked (downloaded once)."""
    root = os.path.abspath(os.path.join(BUILD, "arm64-root"))
    sh(os.path.join(HERE, "guest", "arm64-root.sh"), root)
    return root


def build_enroll_initramfs(keydir, out):
    """An initramfs that enrolls bootctl gen secureboot's db, KEK and PK via efivarfs."""
    sh(os.path.join(HERE, "guest", "enroll.sh"), keydir, out)
    return out


def add_image(bootd, arch):
    """Puts the stand-in for arch into bootd's image cache (amd64 is there already)."""
    kernel, initramfs = build_guest(arch)
    images = os.path.join(bootd.state, "images", VANILLA, "v1.13.9")
    os.makedirs(images, exist_ok=True)
    shutil.copy(kernel, os.path.join(images, "kernel-" + arch))
    shutil.copy(initramfs, os.path.join(images, "initramfs-%s.xz" % arch))
    with open(os.path.join(images, "cmdline-metal-" + arch), "w") as f:
        f.write(CMDLINE[arch] + "\n")


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def wait_until(what, check, timeout, interval=0.5):
    """Polls check() until it returns something true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(interval)


class Lab:
    """The namespace, its bridge and the processes in it."""

    def __init__(self, name=None):
        self.name = name or "bootd-e2e-%d" % os.getpid()
        self.root = tempfile.mkdtemp(prefix="bootd-lab-")
        self.procs = []
        self.netns = []
        self.taps = 0
        self._orig = os.open("/proc/self/ns/net", os.O_RDONLY)
        self._add_netns(self.name)
        _setns("/run/netns/" + self.name)
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "addr", "add", BOOT_SERVER + "/24", "dev", "br0")
        sh("ip", "link", "set", "br0", "up")

    def _add_netns(self, name):
        sh("ip", "netns", "del", name, check=False)
        sh("ip", "netns", "add", name)
        self.netns.append(name)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def start(self, argv, log, **kw):
        f = open(log, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        f.close()
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def check_logs(self):
        """Fails on sanitizer reports in any log the lab's processes wrote."""
        from tests.integration.harness import sanitizer_report
        for dirpath, _, names in os.walk(self.root):
            for n in names:
                if n.endswith(".log") and not n.startswith("vm-"):
                    with open(os.path.join(dirpath, n), errors="replace") as f:
                        report = sanitizer_report(f.read())
                    if report:
                        raise AssertionError("%s:\n%s" % (n, report))

    def tap(self):
        """A new tap device on the bridge, for one VM."""
        name = "tap%d" % self.taps
        self.taps += 1
        sh("ip", "tuntap", "add", "dev", name, "mode", "tap")
        sh("ip", "link", "set", name, "master", "br0")
        sh("ip", "link", "set", name, "up")
        return name

    def home_router(self, first="192.0.2.150", last="192.0.2.199"):
        """Another namespace on the bridge whose dnsmasq plays the home router's DHCP
        server (addresses only, no boot options), for proxy-DHCP mode."""
        rt = self.name + "-rt"
        self._add_netns(rt)
        sh("ip", "link", "add", "rt0", "type", "veth", "peer", "name", "eth0", "netns", rt)
        sh("ip", "link", "set", "rt0", "master", "br0")
        sh("ip", "link", "set", "rt0", "up")
        sh("ip", "-n", rt, "link", "set", "lo", "up")
        sh("ip", "-n", rt, "addr", "add", "192.0.2.254/24", "dev", "eth0")
        sh("ip", "-n", rt, "link", "set", "eth0", "up")
        conf = self.path("router.conf")
        with open(conf, "w") as f:
            f.write("port=0\ninterface=eth0\nbind-interfaces\npid-file=\nlog-dhcp\n"
                    "dhcp-range=%s,%s,255.255.255.0,1h\ndhcp-option=option:router,192.0.2.254\n"
                    "dhcp-leasefile=%s\n" % (first, last, self.path("router.leases")))
        return self.start(["ip", "netns", "exec", rt, "dnsmasq", "--keep-in-foreground",
                           "--log-facility=-", "--conf-file=" + conf], self.path("router.log"))

    def close(self):
        for p in reversed(self.procs):
            self.stop(p)
        self.check_logs()
        _setns("/proc/self/fd/%d" % self._orig)
        os.close(self._orig)
        for n in self.netns:
            sh("ip", "netns", "del", n, check=False)


class Bootd:
    """bootd serving a lab.yaml in the lab, with the stand-in as its Talos image."""

    def __init__(self, lab, lab_yaml=None, files=None, state=None, lab_path=None):
        """Writes lab_yaml (and files) into a new directory, or serves lab_path as it is."""
        self.lab = lab
        self.dir = tempfile.mkdtemp(prefix="lab-", dir=lab.root)
        self.state = state or os.path.join(self.dir, "state")
        self.lab_path = os.path.abspath(lab_path or os.path.join(self.dir, "lab.yaml"))
        if lab_yaml is not None:
            with open(self.lab_path, "w") as f:
                f.write(lab_yaml)
        for name, text in (files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        add_image(self, "amd64")
        self.log = os.path.join(self.dir, "bootd.log")
        self.proc = None

    def gen(self, *args):
        """bootctl gen ... on this lab; returns stdout."""
        return subprocess.run([BOOTCTL, "gen", *args[:1], self.lab_path, *args[1:]],
                              check=True, capture_output=True, timeout=120).stdout

    def start(self, *extra):
        self.proc = self.lab.start([BOOTD, "--lab", self.lab_path, "--state-dir", self.state,
                                    *extra], self.log)
        wait_until("bootd to answer", self._healthy, 20, 0.1)
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("bootd exited:\n" + self.logs())
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def logs(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def get(self, path, token=None, method="GET"):
        c = http.client.HTTPConnection(BOOT_SERVER, 8080, timeout=30)
        try:
            c.request(method, path, headers={"Authorization": "Bearer " + token} if token else {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def token(self):
        with open(os.path.join(self.state, "admin.token")) as f:
            return f.read().strip()

    def api(self, path):
        status, body = self.get("/api/v1" + path, self.token())
        return status, json.loads(body)

    def api_post(self, path):
        status, body = self.get("/api/v1" + path, self.token(), "POST")
        return status, json.loads(body)

    def machine(self, name):
        status, m = self.api("/machines/" + name)
        return m if status == 200 else None

    def env(self):
        """The environment bootctl talks to this bootd with."""
        return dict(os.environ, BOOTD_URL="http://%s:8080" % BOOT_SERVER,
                    BOOTD_TOKEN_FILE=os.path.join(self.state, "admin.token"))

    def bootctl(self, *args):
        return subprocess.run([BOOTCTL, *args], capture_output=True, text=True, env=self.env(),
                              timeout=30).stdout

    STATES = ["discovered", "assigned", "booting", "config-served", "installing", "ready",
              "joined"]

    def wait_state(self, name, state, timeout):
        """Waits until the machine is in state or a later one; returns the machine."""
        def reached():
            m = self.machine(name)
            if m and self.STATES.index(m["state"]) >= self.STATES.index(state):
                return m
            return None
        return wait_until("%s to reach %s" % (name, state), reached, timeout)


class VM:
    """A QEMU VM that network-boots from the bridge: BIOS (SeaBIOS with QEMU's iPXE NIC
    ROM) or UEFI (OVMF's own PXE, which TFTPs ipxe.efi)."""

    def __init__(self, lab, mac, firmware="bios", name=None, memory_mib=512):
        self.lab = lab
        self.mac = mac
        self.firmware = firmware
        self.name = name or mac.replace(":", "")
        self.log = lab.path("vm-%s.log" % self.name)
        tap = lab.tap()
        # -nographic makes SeaBIOS (and iPXE through it) write to the serial console,
        # which is the log
        argv = ["qemu-system-x86_64", "-m", str(memory_mib), "-nographic", "-monitor", "none",
                "-serial", "file:" + self.log, "-no-reboot",
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap]
        if firmware == "uefi":
            vars_copy = lab.path("vars-%s.fd" % self.name)
            shutil.copy(OVMF_VARS, vars_copy)
            argv += ["-machine", "q35",
                     "-drive", "if=pflash,format=raw,readonly=on,file=" + OVMF_CODE,
                     "-drive", "if=pflash,format=raw,file=" + vars_copy,
                     # no option ROM: the firmware's own PXE fetches ipxe.efi over TFTP
                     "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % mac]
        else:
            argv += ["-device", "virtio-net-pci,netdev=n0,mac=%s" % mac, "-boot", "n"]
        self.started = time.monotonic()
        self.proc = lab.start(argv, lab.path("qemu-%s.out" % self.name))

    def console(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, text, timeout):
        return wait_until("'%s' on %s's console" % (text, self.name),
                          lambda: text in self.console(), timeout)

    def config_sha256(self, timeout):
        """The sha256 the stand-in computed over the config it downloaded."""
        def found():
            for line in self.console().splitlines():
                if "config sha256=" in line:
                    return line.split("config sha256=")[1].split()[0]
            return None
        return wait_until("%s to download its config" % self.name, found, timeout)

    def wait_off(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not power off within %ds" % (self.name, timeout))

    def stop(self):
        self.lab.stop(self.proc)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()
