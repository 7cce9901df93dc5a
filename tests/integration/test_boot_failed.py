"""A UKI boot that never reaches its config is recorded as a failed boot (bootwatch.c):
no config request within --boot-window after the image went out complete, or the same
machine back for a boot image, or its firmware asking DHCP again. Each is a boot-failed
event with the likely cause, a bootd_boots_failed_total count, and a mark on the machine
in bootctl machines until its next config download."""
import json
import re
import time
import unittest

from tests.integration.harness import Bootd
from tests.integration.test_uki import cmdline_of, http_lab


# The client has the last byte a moment before bootd hears that the image went out
# complete; a machine's next request comes seconds later, a test's at once.
SENT = 0.5


def failed(b, name):
    return [e["message"] for e in b.events(name) if e["kind"] == "boot-failed"]


def wait_failed(b, name, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = failed(b, name)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return failed(b, name)


def metric(b, cause):
    text = b.get("/metrics")[2].decode()
    m = re.search(r'^bootd_boots_failed_total\{cause="%s"\} (\d+)$' % cause, text, re.M)
    return int(m.group(1)) if m else None


def config_path(image):
    url = re.search(r"talos\.config=(\S+)", cmdline_of(image)).group(1)
    return url[url.index("/config/"):]


class Window(unittest.TestCase):
    """A short window: the timer's side."""

    @classmethod
    def setUpClass(cls):
        b = Bootd(lab="")
        b.write("lab.yaml", http_lab(b.port))
        cls.b = b.start("--boot-window", "2s")

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def test_no_config_within_the_window_is_a_failed_boot(self):
        b = self.b
        before = metric(b, "no-config")
        status, _, image = b.get("/uki/amd64.efi", source="127.0.0.12")
        self.assertEqual(status, 200)
        time.sleep(1)
        self.assertEqual(failed(b, "w-1"), [], "not before the window has passed")
        got = wait_failed(b, "w-1", 1, 5)
        self.assertEqual(len(got), 1, got)
        self.assertRegex(got[0], r"^UKI \(unsigned\) sent [23] s ago, config never fetched: "
                                 r"the firmware refused the image \(Secure Boot")
        self.assertEqual(metric(b, "no-config"), before + 1)
        status, m = b.api("GET", "/machines/w-1")
        self.assertEqual(m["state"], "booting")
        self.assertEqual(m["boot_failed"]["message"], got[0])
        r = b.bootctl("machines")
        self.assertRegex(r.stdout, r"w-1 .* booting \(boot failed\)")
        r = b.bootctl("machine", "show", "w-1")
        self.assertIn("boot failed", r.stdout)
        self.assertIn("config never fetched", r.stdout)
        time.sleep(2.5)
        self.assertEqual(len(failed(b, "w-1")), 1, "recorded once")

        # the kernel was only slow: the late download says so and clears the mark
        self.assertEqual(b.get(config_path(image), source="127.0.0.12")[0], 200)
        late = [e["message"] for e in b.events("w-1") if e["kind"] == "boot-late"]
        self.assertEqual(len(late), 1, late)
        self.assertIn("slow, not failed", late[0])
        self.assertNotIn("boot_failed", b.api("GET", "/machines/w-1")[1])
        self.assertNotIn("(boot failed)", b.bootctl("machines").stdout)

    def test_config_fetched_in_time_is_no_failure(self):
        b = self.b
        before = metric(b, "no-config")
        # the config asked for at once, often before bootd hears the image went out
        # complete: several boots, so that the order bootd must cope with comes up
        for _ in range(8):
            status, _, image = b.get("/uki/amd64.efi", source="127.0.0.11")
            self.assertEqual(status, 200)
            self.assertEqual(b.get(config_path(image), source="127.0.0.11")[0], 200)
        time.sleep(3)
        self.assertEqual(failed(b, "cp-1"), [])
        self.assertEqual(metric(b, "no-config"), before)

    def test_a_head_is_not_watched(self):
        b = self.b
        self.assertEqual(b.request("HEAD", "/uki/amd64.efi", source="127.0.0.13")[0], 200)
        time.sleep(3)
        self.assertEqual(failed(b, "w-2"), [], "HEAD sends no image")


class Again(unittest.TestCase):
    """A long window: the machine coming back is what shows the failure."""

    @classmethod
    def setUpClass(cls):
        b = Bootd(lab="")
        b.write("lab.yaml", http_lab(b.port))
        cls.b = b.start("--boot-window", "10m")

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def test_asking_for_the_uki_again(self):
        b = self.b
        self.assertEqual(b.get("/uki/amd64.efi", source="127.0.0.12")[0], 200)
        self.assertEqual(failed(b, "w-1"), [])
        time.sleep(SENT)
        # the firmware's next try: HEAD first, which is enough to know
        self.assertEqual(b.request("HEAD", "/uki/amd64.efi", source="127.0.0.12")[0], 200)
        got = failed(b, "w-1")
        self.assertEqual(len(got), 1, got)
        self.assertRegex(got[0], r"^UKI \(unsigned\) sent [01] s ago, config never fetched, and "
                                 r"the machine asked for its UKI again: the firmware refused")
        self.assertEqual(metric(b, "boot-again"), 1)
        # the GET that follows belongs to the same try: no second event
        self.assertEqual(b.get("/uki/amd64.efi", source="127.0.0.12")[0], 200)
        self.assertEqual(len(failed(b, "w-1")), 1)

    def test_firmware_dhcp_again_but_not_the_kernels(self):
        b = self.b
        status, _, image = b.get("/uki/amd64.efi", source="127.0.0.11")
        self.assertEqual(status, 200)
        time.sleep(2.2)  # a lease report this soon may be the one before the download
        mac = "52:54:00:00:00:01"
        # the kernel's own DHCP carries no firmware tag
        r = b.bootctl("dhcp-event", "old", mac, "127.0.0.11", env={"DNSMASQ_TAGS": "lan known"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(failed(b, "cp-1"), [])
        r = b.bootctl("dhcp-event", "old", mac, "127.0.0.11",
                      env={"DNSMASQ_TAGS": "lan known efihttp-amd64 httpclient"})
        self.assertEqual(r.returncode, 0, r.stderr)
        got = failed(b, "cp-1")
        self.assertEqual(len(got), 1, got)
        self.assertIn("config never fetched, and the machine asked DHCP for a boot file again "
                      "(uefi-http firmware)", got[0])
        self.assertEqual(metric(b, "dhcp-again"), 1)
        # its config fetched after all: the verdict was wrong, and the timeline says so
        self.assertEqual(b.get(config_path(image), source="127.0.0.11")[0], 200)
        late = [e for e in b.events("cp-1") if e["kind"] == "boot-late"]
        self.assertEqual(len(late), 1, late)
        self.assertNotIn("boot_failed", b.api("GET", "/machines/cp-1")[1])

    def test_a_lease_report_right_after_the_download_is_not_counted(self):
        b = self.b
        self.assertEqual(b.get("/uki/amd64.efi", source="127.0.0.13")[0], 200)
        # dnsmasq's report of the exchange that preceded the download, arriving late
        r = b.bootctl("dhcp-event", "old", "52:54:00:00:00:03", "127.0.0.13",
                      env={"DNSMASQ_TAGS": "lan efihttp-amd64 httpclient"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(failed(b, "w-2"), [])

    def test_metrics_name_every_cause(self):
        text = self.b.get("/metrics")[2].decode()
        for cause in ("no-config", "boot-again", "dhcp-again"):
            self.assertIn('bootd_boots_failed_total{cause="%s"}' % cause, text)
        json.dumps(text)


class FallThrough(unittest.TestCase):
    def test_falling_through_to_pxe_and_ipxe(self):
        b = Bootd(lab="")
        b.write("lab.yaml", http_lab(b.port))
        b.start("--boot-window", "10m")
        try:
            self.assertEqual(b.get("/uki/amd64.efi", source="127.0.0.11")[0], 200)
            time.sleep(SENT)
            # the firmware's next boot entry: PXE, then iPXE asking for the machine's script
            status, _, _ = b.ipxe("52:54:00:00:00:01", source="127.0.0.11", platform="efi")
            self.assertEqual(status, 200)
            got = failed(b, "cp-1")
            self.assertEqual(len(got), 1, got)
            self.assertIn("config never fetched, and the machine asked for an iPXE boot script",
                          got[0])
            self.assertEqual(metric(b, "boot-again"), 1)
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
