"""The Talos image cache: bootctl image pull | list | import | gc against a loopback
stand-in for Image Factory with faults, and bootd pulling what a booting machine needs."""
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest

from tests.integration.harness import Bootd, VANILLA, lab_text, read, wait_for
from tests.integration.image_server import ImageServer, image_files

VERSION = "v1.13.9"
QEMU_GA = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
QEMU_GA_YAML = ("customization:\n  systemExtensions:\n    officialExtensions:\n"
                "      - siderolabs/qemu-guest-agent\n")


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Lab:
    """A lab dir whose images come from an ImageServer; bootd may or may not run."""

    def __init__(self, server, extra="", timeout="2s"):
        self.b = Bootd(images=False)
        self.server = server
        self.b.write("lab.yaml", lab_text(self.b.port).replace("http://127.0.0.1:9", server.url)
                     + "  timeout: %s\n" % timeout + extra)
        self.cache = os.path.join(self.b.state, "images")
        self.lock = os.path.join(self.b.labdir, "images.lock")

    def bootctl(self, *args, tell=False):
        env = {} if tell else {"BOOTD_URL": "http://127.0.0.1:9"}
        return self.b.bootctl("image", *args, "--lab", self.b.lab_path, "--state-dir",
                              self.b.state, env=env)

    def path(self, name, schematic=VANILLA, version=VERSION):
        return os.path.join(self.cache, schematic, version, name)

    def cached(self, name, **kw):
        with open(self.path(name, **kw), "rb") as f:
            return f.read()

    def lock_lines(self):
        return read(self.lock).splitlines() if os.path.exists(self.lock) else []

    def cleanup(self):
        self.b.cleanup()


class Pull(unittest.TestCase):
    def setUp(self):
        self.files = image_files(VANILLA, VERSION, "amd64")
        self.srv = ImageServer(self.files)
        self.lab = Lab(self.srv)

    def tearDown(self):
        self.lab.cleanup()
        self.srv.stop()

    def url(self, name):
        return "/image/%s/%s/%s" % (VANILLA, VERSION, name)

    def pull_ok(self):
        r = self.lab.bootctl("pull")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def test_first_pull_records_hashes_then_verifies(self):
        r = self.pull_ok()
        self.assertEqual(r.stdout.count("downloaded"), 3, r.stdout)
        for path, data in self.files.items():
            name = path.rsplit("/", 1)[1]
            self.assertEqual(self.lab.cached(name), data)
            self.assertIn("%s  %s/%s/%s" % (sha(data), VANILLA, VERSION, name),
                          self.lab.lock_lines())
        self.assertEqual(len(self.lab.lock_lines()), 3)
        # sha256sum(1) understands the lock file, run from the cache
        check = subprocess.run(["sha256sum", "-c", self.lab.lock], cwd=self.lab.cache,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        before = len(self.srv.requests)
        r = self.pull_ok()
        self.assertEqual(r.stdout.count("verified"), 3, r.stdout)
        self.assertEqual(len(self.srv.requests), before, "nothing is downloaded again")
        hidden = [n for n in os.listdir(os.path.dirname(self.lab.path("x")))
                  if n.endswith(".part")]
        self.assertEqual(hidden, [])

    def test_json_output(self):
        r = self.lab.b.bootctl("-o", "json", "image", "pull", "--lab", self.lab.b.lab_path,
                               "--state-dir", self.lab.b.state,
                               env={"BOOTD_URL": "http://127.0.0.1:9"})
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j[0]["schematic"], VANILLA)
        self.assertEqual([f["name"] for f in j[0]["files"]],
                         ["kernel-amd64", "initramfs-amd64.xz", "cmdline-metal-amd64"])
        self.assertTrue(all(f["downloaded"] and f["recorded"] for f in j[0]["files"]))

    def test_cut_connection_is_resumed(self):
        self.srv.faults[self.url("kernel-amd64")] = ("cut", 120000)
        self.pull_ok()
        self.assertEqual(self.srv.gets("kernel-amd64"), [None, "bytes=120000-"])
        data = self.files[self.url("kernel-amd64")]
        self.assertEqual(self.lab.cached("kernel-amd64"), data)
        self.assertIn("%s  %s/%s/kernel-amd64" % (sha(data), VANILLA, VERSION),
                      self.lab.lock_lines(), "the hash covers both parts")

    def test_stalled_server_times_out_and_the_next_pull_resumes(self):
        self.srv.faults[self.url("initramfs-amd64.xz")] = ("stall", 200000)
        t = time.monotonic()
        r = self.lab.bootctl("pull")
        took = time.monotonic() - t
        self.assertEqual(r.returncode, 1)
        self.assertIn("initramfs-amd64.xz: %s%s: no data for 2 s, the server stalled "
                      "(images.timeout); 200000 bytes kept" % (self.srv.url,
                                                               self.url("initramfs-amd64.xz")),
                      r.stderr)
        self.assertLess(took, 20)
        self.assertFalse(os.path.exists(self.lab.path("kernel-amd64")),
                         "nothing lands while the image is incomplete")
        self.assertEqual(self.lab.lock_lines(), [])
        self.assertEqual(os.path.getsize(self.lab.path(".initramfs-amd64.xz.part")), 200000)
        del self.srv.faults[self.url("initramfs-amd64.xz")]
        self.pull_ok()
        self.assertEqual(self.srv.gets("initramfs-amd64.xz")[-1], "bytes=200000-")
        data = self.files[self.url("initramfs-amd64.xz")]
        self.assertEqual(self.lab.cached("initramfs-amd64.xz"), data)
        self.assertIn("%s  %s/%s/initramfs-amd64.xz" % (sha(data), VANILLA, VERSION),
                      self.lab.lock_lines(), "the hash covers what the first pull kept")

    def test_wrong_bytes_are_refused_and_old_files_stay(self):
        self.pull_ok()
        lock = read(self.lab.lock)
        old = {n: self.lab.cached(n) for n in ("initramfs-amd64.xz", "cmdline-metal-amd64")}
        with open(self.lab.path("kernel-amd64"), "r+b") as f:
            f.write(b"damaged")  # the cache rots; the pull fetches it again
        damaged = self.lab.cached("kernel-amd64")
        self.srv.faults[self.url("kernel-amd64")] = ("wrong",)
        r = self.lab.bootctl("pull")
        self.assertEqual(r.returncode, 1)
        self.assertIn("kernel-amd64: sha256 %s does not match %s pinned in %s; refused" % (
            sha(bytes(b ^ 0x5a for b in self.files[self.url("kernel-amd64")])),
            sha(self.files[self.url("kernel-amd64")]), self.lab.lock), r.stderr)
        self.assertEqual(read(self.lab.lock), lock, "the lock file is unchanged")
        self.assertEqual(self.lab.cached("kernel-amd64"), damaged, "nothing was replaced")
        for n, data in old.items():
            self.assertEqual(self.lab.cached(n), data)
        self.assertFalse(os.path.exists(self.lab.path(".kernel-amd64.part")))
        del self.srv.faults[self.url("kernel-amd64")]
        self.pull_ok()
        self.assertEqual(self.lab.cached("kernel-amd64"), self.files[self.url("kernel-amd64")])

    def test_pinned_lock_from_git_refuses_other_bytes_on_a_fresh_cache(self):
        with open(self.lab.lock, "w") as f:
            for path, data in self.files.items():
                f.write("%s  %s/%s/%s\n" % (sha(data), VANILLA, VERSION, path.rsplit("/", 1)[1]))
        self.srv.faults[self.url("cmdline-metal-amd64")] = ("wrong",)
        r = self.lab.bootctl("pull")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cmdline-metal-amd64: sha256", r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.lab.path("x")))),
                         [".initramfs-amd64.xz.part", ".kernel-amd64.part", ".lock"],
                         "no file lands; the good downloads wait as partial files")
        del self.srv.faults[self.url("cmdline-metal-amd64")]
        self.pull_ok()
        size = len(self.files[self.url("kernel-amd64")])
        self.assertEqual(self.srv.gets("kernel-amd64"), [None, "bytes=%d-" % size],
                         "a complete partial file is not downloaded again (416)")
        for path, data in self.files.items():
            self.assertEqual(self.lab.cached(path.rsplit("/", 1)[1]), data)

    def test_missing_file_is_a_clear_404(self):
        del self.srv.files[self.url("cmdline-metal-amd64")]
        r = self.lab.bootctl("pull")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cmdline-metal-amd64: %s%s: HTTP 404: no such asset" % (
            self.srv.url, self.url("cmdline-metal-amd64")), r.stderr)
        self.assertFalse(os.path.exists(self.lab.path("kernel-amd64")))
        self.assertEqual(self.lab.lock_lines(), [])

    def test_unreachable_factory(self):
        self.lab.b.write("lab.yaml", read(self.lab.b.lab_path).replace(self.srv.url,
                                                                       "http://127.0.0.1:9"))
        r = self.lab.bootctl("pull")
        self.assertEqual(r.returncode, 1)
        self.assertIn("kernel-amd64: http://127.0.0.1:9/image/", r.stderr)

    def test_two_pulls_share_one_download(self):
        self.srv.rate = 2 << 20  # slow enough that the second starts during the first
        runs = []
        threads = [threading.Thread(target=lambda: runs.append(self.lab.bootctl("pull")))
                   for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join(60)
        self.assertEqual([r.returncode for r in runs], [0, 0], [r.stderr for r in runs])
        for name in ("kernel-amd64", "initramfs-amd64.xz", "cmdline-metal-amd64"):
            self.assertEqual(len(self.srv.gets(name)), 1, name)
        self.assertTrue(any("another download of this image is running" in r.stderr
                            for r in runs))
        self.assertTrue(any(r.stdout.count("verified") == 3 for r in runs))

    @unittest.skipUnless(os.geteuid() == 0, "mounting a small tmpfs needs root")
    def test_full_disk(self):
        assets = tempfile.mkdtemp(prefix="bootd-full-")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", assets]).returncode:
            os.rmdir(assets)
            self.skipTest("cannot mount tmpfs")
        try:
            d = os.path.join(assets, VANILLA, VERSION)
            os.makedirs(d)
            with open(os.path.join(d, "cmdline-metal-amd64"), "wb") as f:
                f.write(b"old cmdline\n")
            r = self.lab.b.bootctl("image", "pull", "--lab", self.lab.b.lab_path,
                                   "--assets", assets, env={"BOOTD_URL": "http://127.0.0.1:9"})
            self.assertEqual(r.returncode, 1)
            self.assertIn("No space left on device; the partial download was removed, the "
                          "cached files are unchanged", r.stderr)
            self.assertEqual(sorted(os.listdir(d)),
                             [".kernel-amd64.part", ".lock", "cmdline-metal-amd64"],
                             "the complete kernel waits for the next pull")
            with open(os.path.join(d, "cmdline-metal-amd64"), "rb") as f:
                self.assertEqual(f.read(), b"old cmdline\n")
        finally:
            subprocess.run(["umount", assets])
            os.rmdir(assets)


class CustomSchematic(unittest.TestCase):
    def test_schematic_is_registered_when_the_factory_does_not_know_it(self):
        srv = ImageServer(image_files(QEMU_GA, VERSION, "amd64"), require_registration=True)
        lab = Lab(srv, extra="  schematic: schematic.yaml\n")
        try:
            lab.b.write("schematic.yaml", QEMU_GA_YAML)
            r = lab.bootctl("pull")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("(schematic %s)" % QEMU_GA, r.stdout)
            self.assertEqual(srv.posted, [b"customization:\n    systemExtensions:\n"
                                          b"        officialExtensions:\n"
                                          b"            - siderolabs/qemu-guest-agent\n"])
            self.assertTrue(os.path.exists(lab.path("kernel-amd64", schematic=QEMU_GA)))
            self.assertEqual(srv.gets("kernel-amd64"), [None, None], "404, then the file")
        finally:
            lab.cleanup()
            srv.stop()

    def test_unknown_field_is_refused_before_any_request(self):
        srv = ImageServer()
        lab = Lab(srv, extra="  schematic: schematic.yaml\n")
        try:
            lab.b.write("schematic.yaml", "customization:\n  systemExtension: {}\n")
            r = lab.bootctl("pull")
            self.assertEqual(r.returncode, 1)
            self.assertIn("schematic.yaml:2:3: customization: unknown field \"systemExtension\"",
                          r.stderr)
            self.assertEqual(srv.requests, [])
        finally:
            lab.cleanup()
            srv.stop()


class ListImportGc(unittest.TestCase):
    def setUp(self):
        self.srv = ImageServer()
        self.lab = Lab(self.srv)
        self.src = os.path.join(self.lab.b.root, "from-usb")
        os.makedirs(self.src)

    def tearDown(self):
        self.lab.cleanup()
        self.srv.stop()

    def stick(self, name, data):
        p = os.path.join(self.src, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def test_import_verifies_like_a_download(self):
        kernel = b"K" * 0x202 + b"HdrS" + b"K" * 500  # the x86 boot header at 0x202
        files = [self.stick("kernel-amd64", kernel),
                 self.stick("initramfs-amd64.xz", b"\xfd7zXZ\x00stand-in"),
                 self.stick("cmdline-metal-amd64", b"talos.platform=metal\n")]
        r = self.lab.bootctl("import", *files)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("imported"), 3)
        self.assertEqual(len(self.lab.lock_lines()), 3)
        self.assertEqual(self.lab.cached("kernel-amd64"), kernel)
        r = self.lab.bootctl("import", self.stick("kernel-amd64", kernel.replace(b"K", b"X")))
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not match", r.stderr)
        self.assertEqual(self.lab.cached("kernel-amd64"), kernel)
        # what a file holds, not only its name: a text file named like a kernel is refused
        r = self.lab.bootctl("import", self.stick("kernel-arm64", b"K" * 1000))
        self.assertEqual(r.returncode, 1)
        self.assertIn("kernel-arm64: not an arm64 Linux kernel", r.stderr)
        r = self.lab.bootctl("import", self.stick("initramfs-arm64.xz", b"<html>404</html>"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an initramfs", r.stderr)
        self.assertEqual(len(self.lab.lock_lines()), 3)
        r = self.lab.bootctl("import", self.stick("bzImage", b"x"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("bzImage: not a name Image Factory gives an image file", r.stderr)
        self.assertEqual(self.lab.bootctl("import").returncode, 2)

    def test_list_and_gc(self):
        for version, arch in ((VERSION, "amd64"), (VERSION, "arm64"), ("v1.12.0", "amd64")):
            d = os.path.join(self.lab.cache, VANILLA, version)
            os.makedirs(d, exist_ok=True)
            for name in ("kernel-", "initramfs-", "cmdline-metal-"):
                name = name + arch + (".xz" if name == "initramfs-" else "")
                with open(os.path.join(d, name), "wb") as f:
                    f.write(b"x" * 1024)
        r = self.lab.b.bootctl("-o", "json", "image", "list", "--lab", self.lab.b.lab_path,
                               "--state-dir", self.lab.b.state)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [(e["version"], e["arch"], e["files"], e["used"]) for e in json.loads(r.stdout)]
        self.assertEqual(rows, [("v1.12.0", "amd64", 3, False), (VERSION, "amd64", 3, True),
                                (VERSION, "arm64", 3, False)])
        r = self.lab.bootctl("list")
        self.assertIn("USED BY LAB", r.stdout)
        r = self.lab.bootctl("gc", "--dry-run")
        self.assertIn("would remove %s/v1.12.0 (0.0 MiB)" % VANILLA, r.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.lab.cache, VANILLA, "v1.12.0")))
        r = self.lab.bootctl("gc")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("freed 4 entries", r.stdout)
        self.assertEqual(sorted(os.listdir(os.path.join(self.lab.cache, VANILLA))), [VERSION])
        self.assertEqual(sorted(os.listdir(os.path.join(self.lab.cache, VANILLA, VERSION))),
                         ["cmdline-metal-amd64", "initramfs-amd64.xz", "kernel-amd64"])


class BootdPulls(unittest.TestCase):
    """A machine whose image is missing is held while bootd pulls it."""

    def setUp(self):
        self.files = image_files(VANILLA, VERSION, "amd64")
        self.srv = ImageServer(self.files, rate=400000)  # downloads take about 2 s
        self.lab = Lab(self.srv)
        self.b = self.lab.b.start()

    def tearDown(self):
        self.lab.cleanup()
        self.srv.stop()

    def script(self, mac, source):
        return self.b.ipxe(mac, source=source)[2].decode()

    def test_held_while_pulling_then_booted_from_the_cached_image(self):
        macs = (("52-54-00-00-00-01", "127.0.0.11"), ("52-54-00-00-00-02", "127.0.0.12"),
                ("52-54-00-00-00-03", "127.0.0.13"))
        for mac, ip in macs:
            s = self.script(mac, ip)
            self.assertNotIn("kernel ", s)
            self.assertNotIn("/config/", s)
            self.assertIn("image (schematic 376567988ad3) is being downloaded", s)
            self.assertIn("sleep 7", s)
        s = wait_for(lambda: self.script(*macs[1]), lambda s: "kernel " in s, timeout=15)
        self.assertIn("kernel ", s)
        self.assertIn(" bootd.test=%s-amd64 " % VERSION, s, "the cached cmdline is the base")
        for name in ("kernel-amd64", "initramfs-amd64.xz", "cmdline-metal-amd64"):
            self.assertEqual(len(self.srv.gets(name)), 1, "three machines, one download")
        status, _, body = self.b.get("/assets/%s/%s/kernel-amd64" % (VANILLA, VERSION))
        self.assertEqual((status, body), (200, self.files["/image/%s/%s/kernel-amd64" % (
            VANILLA, VERSION)]))
        self.assertEqual(len(self.lab.lock_lines()), 3)

    def test_failed_pull_is_an_error_event(self):
        del self.srv.files["/image/%s/%s/initramfs-amd64.xz" % (VANILLA, VERSION)]
        self.script("52-54-00-00-00-02", "127.0.0.12")
        ev = wait_for(lambda: self.b.events("w-1"),
                      lambda ev: any(e["kind"] == "error" for e in ev), timeout=15)
        errors = [e for e in ev if e["kind"] == "error"]
        self.assertEqual(len(errors), 1, ev)
        self.assertEqual(errors[0]["source"], "images")
        self.assertIn("pulling the Talos %s amd64 image failed: initramfs-amd64.xz" % VERSION,
                      errors[0]["message"])
        self.assertIn("HTTP 404", errors[0]["message"])
        s = self.script("52-54-00-00-00-02", "127.0.0.12")
        self.assertIn("failed: initramfs-amd64.xz", s)
        self.assertIn("bootd tries again in", s)
        self.assertEqual(len(self.srv.gets("initramfs-amd64.xz")), 1, "no retry storm")

    def test_arch_not_in_lab_is_held(self):
        s = self.b.ipxe("52-54-00-00-00-02", source="127.0.0.12", arch="arm64")[2].decode()
        self.assertIn("images.arch in lab.yaml does not list arm64", s)
        self.assertEqual(self.srv.requests, [])

    def test_bootctl_changes_reach_a_running_bootd(self):
        d = os.path.dirname(self.lab.path("x"))
        src = os.path.join(self.lab.b.root, "usb")
        os.makedirs(src)
        paths = []
        for path, data in self.files.items():
            name = path.rsplit("/", 1)[1]
            paths.append(os.path.join(src, name))
            with open(paths[-1], "wb") as f:
                f.write(data.replace(b"bootd.test=", b"bootd.imported=") if
                        name.startswith("cmdline") else data)
        # bootd serves the image before bootctl imports a different cmdline
        seed = dict(self.files)
        os.makedirs(d, exist_ok=True)
        for path, data in seed.items():
            with open(os.path.join(d, path.rsplit("/", 1)[1]), "wb") as f:
                f.write(data)
        self.b.api("POST", "/images/refresh")
        s = self.script("52-54-00-00-00-02", "127.0.0.12")
        self.assertIn(" bootd.test=", s)
        r = self.lab.bootctl("import", *paths, tell=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("now serves the changed cache", r.stderr)
        s = self.script("52-54-00-00-00-02", "127.0.0.12")
        self.assertIn(" bootd.imported=", s)
        self.assertNotIn(" bootd.test=", s)
        self.assertEqual(self.srv.requests, [])


if __name__ == "__main__":
    unittest.main()
