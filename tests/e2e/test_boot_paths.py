"""End to end: UEFI HTTP Boot of the UKIs bootd assembles per boot — x86-64 under OVMF
with no TFTP in the lab, arm64 under AAVMF with Debian's arm64 kernel, and Secure Boot
with the lab's own keys enrolled in OVMF's secure-boot build (SMM). Real firmware, real
DHCP from bootd's dnsmasq, real HTTP (HEAD then GET) from bootd, real kernels running the
Talos stand-in.

OVMF and AAVMF try PXEv4 and PXEv6 before HTTP boot; with nothing answering PXE each try
times out (about two minutes under software emulation). The VMs here switch the
firmware's PXE off through its fw_cfg knobs (opt/org.tianocore/IPv4PXESupport and
IPv6PXESupport), which is what putting HTTP boot first in the boot order does on a real
machine; test_ovmf_falls_through_pxe_to_http (slow) boots with PXE left on.

The arm64 and Secure Boot tests are slow: they run with E2E_SLOW=1 (make e2e-slow)."""
import os
import shutil
import subprocess
import time
import unittest

from tests.e2e import netlab
from tests.e2e.netlab import Bootd, Lab, VM, sha256, wait_until

SLOW = os.environ.get("E2E_SLOW") == "1"
TIMEOUT = 300
AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd"
AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd"
OVMF_SB_CODE = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
NO_PXE = ["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
          "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"]

MACHINES = {
    "cp-1": ("52:54:00:e2:e1:01", "controlplane", "192.0.2.11", "amd64"),
    "a-1": ("52:54:00:e2:e1:02", "worker", "192.0.2.21", "arm64"),
}
TIMINGS = []


def tearDownModule():
    if TIMINGS:
        print("\n" + "\n".join(TIMINGS))


def config_of(name):
    return "version: v1alpha1\n# %s's own config\nmachine:\n    type: %s\n" % (
        name, MACHINES[name][1])


CONFIGS = {"%s.yaml" % n: config_of(n) for n in MACHINES}


def lab_yaml(boot_extra="", arches=("amd64",)):
    machines = "".join(
        "  - {name: %s, mac: \"%s\", role: %s, ip: %s, arch: %s, config: %s.yaml%s}\n"
        % (n, mac, role, ip, arch, n,
           ", kernel_args: [console=ttyAMA0]" if arch == "arm64" else "")
        for n, (mac, role, ip, arch) in MACHINES.items() if arch in arches)
    return ("cluster:\n  name: e2e\n  talos_version: v1.13.9\n  vip: 192.0.2.10\n"
            "lan:\n  interface: br0\n  dhcp: full\n  range: [192.0.2.100, 192.0.2.149]\n"
            "  subnet: 192.0.2.0/24\n  gateway: 192.0.2.1\n  boot_server: 192.0.2.1\n"
            "  http_port: 8080\n  log_port: 5140\n"
            "images:\n  arch: [%s]\n"
            "boot:\n  method: http\n  hold_retry: 5s\n%s"
            "machines:\n%s" % (", ".join(arches), boot_extra, machines))


class EfiVM(VM):
    """A VM whose own UEFI firmware network-boots: OVMF (x86-64), OVMF's secure-boot
    build with SMM, or AAVMF (arm64). No option ROM: the firmware's HTTP boot client
    does the work."""

    def __init__(self, lab, mac, kind, name, vars_file=None, pxe=False):
        self.lab = lab
        self.mac = mac
        self.firmware = kind
        self.name = name
        self.log = lab.path("vm-%s.log" % name)
        tap = lab.tap()
        vars_copy = lab.path("vars-%s.fd" % name)
        if kind == "aavmf":
            shutil.copy(vars_file or AAVMF_VARS, vars_copy)
            argv = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "1024",
                    "-drive", "if=pflash,format=raw,readonly=on,file=" + AAVMF_CODE]
        else:
            shutil.copy(vars_file or netlab.OVMF_VARS, vars_copy)
            secure = kind == "ovmf-secboot"
            argv = ["qemu-system-x86_64", "-m", "512",
                    "-machine", "q35,smm=on" if secure else "q35",
                    "-drive", "if=pflash,format=raw,readonly=on,file=" +
                    (OVMF_SB_CODE if secure else netlab.OVMF_CODE)]
            if secure:
                argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        argv += ["-drive", "if=pflash,format=raw,file=" + vars_copy,
                 "-nographic", "-monitor", "none", "-serial", "file:" + self.log, "-no-reboot",
                 "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
                 "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % mac]
        if not pxe:
            argv += NO_PXE
        self.started = time.monotonic()
        self.proc = lab.start(argv, lab.path("qemu-%s.out" % name))


class HttpBootCase(unittest.TestCase):
    def setUp(self):
        self.lab = Lab()
        self.addCleanup(self.lab.close)

    def start_bootd(self, yaml, files=None, arm64=False):
        all_files = dict(CONFIGS)
        all_files.update(files or {})
        self.bootd = Bootd(self.lab, yaml, all_files)
        if arm64:
            netlab.add_image(self.bootd, "arm64")
        return self.bootd.start()

    def assert_booted(self, vm, name, kind):
        got = vm.config_sha256(TIMEOUT)
        self.assertEqual(got, sha256(config_of(name)), "%s got another config" % name)
        served = time.monotonic() - vm.started
        m = self.bootd.wait_state(name, "installing", 30)
        kinds = [e["kind"] for e in m["events"]]
        for k in ("booting", "config-served", "installing"):
            self.assertIn(k, kinds, m["events"])
        self.assertNotIn("boot-failed", kinds, "a boot that fetched its config did not fail")
        booting = [e for e in m["events"] if e["kind"] == "booting"][-1]
        self.assertIn("UKI", booting["message"])
        logs = self.bootd.bootctl("logs", name)
        self.assertIn("[talos] config sha256=" + got, logs)
        vm.wait_off(60)
        TIMINGS.append("e2e %s %s (%s): power-on to config served %.1f s"
                       % (self.id().split(".")[-1], name, kind, served))
        return m


class HttpBoot(HttpBootCase):
    def test_ovmf_http_boot_with_no_tftp(self):
        self.start_bootd(lab_yaml())
        conf_path = os.path.join(self.bootd.state, "dnsmasq", "dnsmasq.conf")
        wait_until("dnsmasq.conf", lambda: os.path.exists(conf_path), 10)
        with open(conf_path) as f:
            conf = f.read()
        self.assertNotIn("enable-tftp", conf)
        self.assertIn("dhcp-option-force=tag:httpclient,60,HTTPClient", conf)
        self.assertIn("http://192.0.2.1:8080/uki/amd64.efi", conf)
        vm = EfiVM(self.lab, MACHINES["cp-1"][0], "ovmf", "cp-1")
        m = self.assert_booted(vm, "cp-1", "ovmf http")
        # what DHCP saw and what the machine asked for, kept apart
        self.assertEqual((m["firmware"], m["arch"]), ("uefi-http", "x86_64"), m)
        console = vm.console()
        self.assertIn("URI: http://192.0.2.1:8080/uki/amd64.efi", console)
        self.assertIn("Kernel command line: ", console)
        self.assertNotIn("initrd=", console.split("Kernel command line: ")[1].splitlines()[0])

    @unittest.skipUnless(SLOW, "slow: E2E_SLOW=1")
    def test_ovmf_falls_through_pxe_to_http(self):
        """PXE left on: no PXE answer for an HTTP lab, the firmware moves on to HTTP."""
        self.start_bootd(lab_yaml())
        vm = EfiVM(self.lab, MACHINES["cp-1"][0], "ovmf", "cp-1", pxe=True)
        self.assert_booted(vm, "cp-1", "ovmf pxe timeouts, then http")


@unittest.skipUnless(SLOW, "slow: E2E_SLOW=1")
class Arm64(HttpBootCase):
    def setUp(self):
        # downloads Debian's arm64 packages once: before entering the lab's namespace,
        # which has no way out
        self.root = netlab.arm64_root()
        super().setUp()

    def test_aavmf_http_boot_of_an_arm64_uki(self):
        root = self.root
        stub = os.path.join(root, "usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
        self.start_bootd(lab_yaml("  efi_stub: {arm64: %s}\n" % stub, ("amd64", "arm64")),
                         arm64=True)
        vm = EfiVM(self.lab, MACHINES["a-1"][0], "aavmf", "a-1")
        m = self.assert_booted(vm, "a-1", "aavmf http")
        self.assertIn("http://192.0.2.1:8080/uki/arm64.efi", vm.console())
        self.assertEqual((m["firmware"], m["arch"]), ("uefi-http", "arm64"), m)


@unittest.skipUnless(SLOW, "slow: E2E_SLOW=1")
class SecureBoot(HttpBootCase):
    def enroll(self, keys):
        """OVMF's secure-boot build with empty variables (setup mode) boots a Linux that
        writes the lab's db, KEK and PK; the variables file then has Secure Boot on."""
        vars_file = self.lab.path("enrolled-vars.fd")
        shutil.copy(netlab.OVMF_VARS, vars_file)
        kernel, _ = netlab.build_guest()
        initrd = netlab.build_enroll_initramfs(keys, self.lab.path("enroll.img"))
        log = self.lab.path("vm-enroll.log")
        subprocess.run(
            ["timeout", "240", "qemu-system-x86_64", "-machine", "q35,smm=on", "-m", "512",
             "-global", "driver=cfi.pflash01,property=secure,value=on",
             "-drive", "if=pflash,format=raw,readonly=on,file=" + OVMF_SB_CODE,
             "-drive", "if=pflash,format=raw,file=" + vars_file,
             "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0",
             "-nographic", "-monitor", "none", "-serial", "file:" + log, "-no-reboot",
             "-net", "none"], check=True, capture_output=True)
        with open(log, errors="replace") as f:
            console = f.read()
        for v in ("db", "KEK", "PK"):
            self.assertIn("enroll: %s accepted" % v, console)
        self.assertIn("enroll: setup mode 0", console)
        return vars_file

    def sb_bootd(self, keydir, *args):
        """A fresh bootd whose lab signs with keys made by bootctl gen secureboot in
        keydir (None: unsigned)."""
        extra = ("  secureboot: {cert: %s/db.crt, key: %s/db.key}\n" % (keydir, keydir)
                 if keydir else "")
        if getattr(self, "bootd", None):
            self.lab.stop(self.bootd.proc)
        self.bootd = Bootd(self.lab, lab_yaml(extra), CONFIGS)
        if keydir:
            self.bootd.gen("secureboot", "-o", os.path.join(self.bootd.dir, keydir))
        return self.bootd.start(*args)

    def test_signed_uki_boots_and_others_are_refused(self):
        self.sb_bootd("secureboot")
        t0 = time.monotonic()
        vars_file = self.enroll(os.path.join(self.bootd.dir, "secureboot"))
        TIMINGS.append("e2e secure boot: enrolling db, KEK, PK %.1f s" % (time.monotonic() - t0))
        vm = EfiVM(self.lab, MACHINES["cp-1"][0], "ovmf-secboot", "cp-1", vars_file)
        self.assert_booted(vm, "cp-1", "ovmf secure boot, signed")
        self.assertIn("Secure boot enabled", vm.console())

        # unsigned, and signed with a key the firmware does not have: both refused
        for label, keydir in (("unsigned", None), ("other-key", "other")):
            # a short window: the firmware goes on to its next boot entry and tells nobody
            self.sb_bootd(keydir, "--boot-window", "15s")
            vm = EfiVM(self.lab, MACHINES["cp-1"][0], "ovmf-secboot", "cp-1-" + label,
                       vars_file)
            t0 = time.monotonic()
            vm.wait_console("Access Denied", TIMEOUT)
            TIMINGS.append("e2e secure boot: %s UKI refused after %.1f s"
                           % (label, time.monotonic() - t0))
            vm.stop()
            self.assertNotIn("config sha256=", vm.console(), label)
            m = self.bootd.machine("cp-1")
            kinds = [e["kind"] for e in m["events"]]
            self.assertIn("booting", kinds, label)
            self.assertNotIn("config-served", kinds, label)
            # bootd saw the image go out and no config asked for: a failed boot of its own
            failed = wait_until(
                "a failed boot recorded (%s)" % label,
                lambda: [e for e in self.bootd.machine("cp-1")["events"]
                         if e["kind"] == "boot-failed"], 45, 0.5)
            self.assertEqual(len(failed), 1, failed)
            self.assertIn("config never fetched", failed[0]["message"])
            self.assertIn("Secure Boot", failed[0]["message"])
            self.assertIn("unsigned" if label == "unsigned" else "CN=", failed[0]["message"])
            self.assertEqual(self.bootd.machine("cp-1")["boot_failed"]["message"],
                             failed[0]["message"])
            self.assertRegex(self.bootd.bootctl("machines"), r"cp-1 .*booting \(boot failed\)")
            metrics = self.bootd.get("/metrics")[1].decode()
            self.assertIn('bootd_boots_failed_total{cause="no-config"} 1', metrics)


if __name__ == "__main__":
    unittest.main()
