"""/uki/<arch>.efi (UEFI HTTP Boot) against a running bootd: which machine a request is,
HEAD before GET, the per-boot command line and token, and signatures sbverify accepts.

On loopback there are no neighbours, so machines are told apart by their reserved
addresses (full DHCP mode), as bootd does when its neighbour table has no entry."""
import os
import re
import subprocess
import unittest

from tests.integration.harness import Bootd, lab_text


def http_lab(port, extra=""):
    text = lab_text(port)
    text = text.replace("boot:\n", "boot:\n  method: http\n" + extra)
    text = text.replace("    role: controlplane\n", "    role: controlplane\n    arch: amd64\n")
    return text.replace("images:\n", "images:\n  arch: [amd64, arm64]\n")


def cmdline_of(image):
    """The .cmdline section's text (the PE section table read by hand)."""
    lfanew = int.from_bytes(image[0x3c:0x40], "little")
    coff = lfanew + 4
    nsec = int.from_bytes(image[coff + 2:coff + 4], "little")
    opt_size = int.from_bytes(image[coff + 16:coff + 18], "little")
    table = coff + 20 + opt_size
    for i in range(nsec):
        sh = image[table + 40 * i:table + 40 * (i + 1)]
        if sh[:8].rstrip(b"\0") == b".cmdline":
            size = int.from_bytes(sh[8:12], "little")
            ptr = int.from_bytes(sh[20:24], "little")
            return image[ptr:ptr + size].decode().rstrip(" ")
    raise AssertionError("no .cmdline section")


class Uki(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        b = Bootd(lab="")
        b.write("lab.yaml", http_lab(b.port, "  secureboot: {cert: sb/db.crt, key: sb/db.key}\n"))
        r = b.bootctl("gen", "secureboot", b.lab_path, "-o", os.path.join(b.labdir, "sb"))
        assert r.returncode == 0, r.stderr
        cls.b = b.start()

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def test_head_then_get_mints_one_token_and_sbverify_accepts(self):
        before = len([e for e in self.b.events("w-1") if e["kind"] == "booting"])
        status, h, body = self.b.request("HEAD", "/uki/amd64.efi", source="127.0.0.12")
        self.assertEqual(status, 200, body)
        size = int(h["content-length"])
        self.assertEqual(len([e for e in self.b.events("w-1") if e["kind"] == "booting"]), before,
                         "HEAD records no boot")
        status, h, image = self.b.get("/uki/amd64.efi", source="127.0.0.12")
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "application/efi")
        self.assertEqual(len(image), size, "GET sends what HEAD announced")
        self.assertEqual(image[:2], b"MZ")
        booting = [e for e in self.b.events("w-1") if e["kind"] == "booting"]
        self.assertEqual(len(booting), before + 1)
        self.assertIn("UKI", booting[-1]["message"])

        line = cmdline_of(image)
        self.assertIn("talos.platform=metal", line)
        self.assertNotIn("initrd=", line)
        url = re.search(r"talos\.config=(\S+)", line).group(1)
        path = url[url.index("/config/"):]
        self.assertEqual(self.b.get(path, source="127.0.0.13")[0], 403, "bound to w-1's address")
        self.assertEqual(self.b.get(path, source="127.0.0.12")[0], 200)

        efi = os.path.join(self.b.root, "w-1.efi")
        with open(efi, "wb") as f:
            f.write(image)
        crt = os.path.join(self.b.labdir, "sb", "db.crt")
        r = subprocess.run(["sbverify", "--cert", crt, efi], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        other = os.path.join(self.b.labdir, "sb", "KEK.crt")
        self.assertNotEqual(subprocess.run(["sbverify", "--cert", other, efi],
                                           capture_output=True).returncode, 0)

    def test_each_boot_has_its_own_token(self):
        a = cmdline_of(self.b.get("/uki/amd64.efi", source="127.0.0.11")[2])
        b = cmdline_of(self.b.get("/uki/amd64.efi", source="127.0.0.11")[2])
        self.assertNotEqual(a, b)
        self.assertEqual(re.sub(r"/config/\w+", "", a), re.sub(r"/config/\w+", "", b))

    def test_requests_from_no_machine_are_refused(self):
        for method in ("HEAD", "GET"):
            status, _, body = self.b.request(method, "/uki/amd64.efi", source="127.0.0.99")
            self.assertEqual(status, 403, method)
            self.assertNotIn(b"/config/", body)
        self.assertEqual(self.b.get("/uki/riscv64.efi", source="127.0.0.11")[0], 404)

    def test_wrong_architecture_is_refused(self):
        status, _, body = self.b.get("/uki/arm64.efi", source="127.0.0.11")
        self.assertEqual(status, 403)
        self.assertIn(b"lab.yaml says arch amd64", body)
        # a machine without arch: its firmware's word, and no arm64 stub on this host
        status, _, body = self.b.get("/uki/arm64.efi", source="127.0.0.12")
        self.assertEqual(status, 500)
        errors = [e["message"] for e in self.b.events("w-1") if e["kind"] == "error"]
        self.assertTrue(any("boot.efi_stub.arm64" in m for m in errors), errors)


    def test_the_neighbour_table_names_the_machine(self):
        b = self.b
        # w-2 has no reserved address: its link-layer address is all there is
        status, _, image = b.get("/uki/amd64.efi", source="127.0.0.13")
        self.assertEqual(status, 200, image)
        booting = [e for e in b.events("w-2") if e["kind"] == "booting"]
        self.assertIn("UKI", booting[-1]["message"])
        # and it has the last word over a reservation someone else uses
        from tests.integration.harness import NEIGHBOURS
        b.neighbours(dict(NEIGHBOURS, **{"127.0.0.12": "52:54:00:00:00:03"}))
        try:
            before = len([e for e in b.events("w-1") if e["kind"] == "booting"])
            self.assertEqual(b.get("/uki/amd64.efi", source="127.0.0.12")[0], 200)
            self.assertEqual(len([e for e in b.events("w-1") if e["kind"] == "booting"]), before)
            self.assertEqual(b.api("GET", "/machines/w-2")[1]["ip"], "127.0.0.12",
                             "the UKI went to w-2, seen at .12")
        finally:
            b.neighbours(NEIGHBOURS)

    def test_admin_download_without_a_token(self):
        b = self.b
        kinds = [e["kind"] for e in b.events("w-1")]
        out = os.path.join(b.root, "usb.efi")
        r = b.bootctl("machine", "uki", "w-1", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("maintenance mode", r.stdout)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        crt = os.path.join(b.labdir, "sb", "db.crt")
        v = subprocess.run(["sbverify", "--cert", crt, out], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        with open(out, "rb") as f:
            line = cmdline_of(f.read())
        self.assertIn("talos.platform=metal", line)
        self.assertNotIn("talos.config=", line)
        self.assertEqual([e["kind"] for e in b.events("w-1")], kinds, "nothing recorded")

    def test_admin_download_with_a_token_is_a_boot(self):
        b = self.b
        out = os.path.join(b.root, "usb-token.efi")
        r = b.bootctl("machine", "uki", "w-1", "-o", out, "--config-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        crt = os.path.join(b.labdir, "sb", "db.crt")
        v = subprocess.run(["sbverify", "--cert", crt, out], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        with open(out, "rb") as f:
            line = cmdline_of(f.read())
        booting = [e for e in b.events("w-1") if e["kind"] == "booting"][-1]
        self.assertIn("admin API", booting["message"])
        self.assertIn("127.0.0.12/32", booting["message"])
        url = re.search(r"talos\.config=(\S+)", line).group(1)
        path = url[url.index("/config/"):]
        self.assertEqual(b.get(path, source="127.0.0.13")[0], 403, "the claim checks hold")
        self.assertEqual(b.get(path, source="127.0.0.12")[0], 200)

    def test_admin_download_is_for_the_admin_only(self):
        b = self.b
        viewer = os.path.join(b.state, "viewer.token")
        r = b.bootctl("machine", "uki", "w-1", "-o", os.path.join(b.root, "v.efi"),
                      env={"BOOTD_TOKEN_FILE": viewer})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("admin token", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(b.root, "v.efi")))
        with open(viewer) as f:
            status, _ = b.api("GET", "/machines/w-1/uki", token=f.read().strip())
        self.assertEqual(status, 403)
        r = b.bootctl("machine", "uki", "nobody", "-o", os.path.join(b.root, "n.efi"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("nobody", r.stderr)
        r = b.bootctl("machine", "uki", "w-1", "-o", os.path.join(b.root, "n.efi"),
                      "--arch", "arm64")
        self.assertEqual(r.returncode, 1, "w-1 has no arm64 image: no stub on this host")


class UnsignedUki(unittest.TestCase):
    def test_without_a_key_the_image_is_unsigned(self):
        b = Bootd(lab="")
        b.write("lab.yaml", http_lab(b.port))
        b.start()
        try:
            status, _, image = b.get("/uki/amd64.efi", source="127.0.0.12")
            self.assertEqual(status, 200)
            efi = os.path.join(b.root, "w-1.efi")
            with open(efi, "wb") as f:
                f.write(image)
            r = subprocess.run(["sbverify", "--list", efi], capture_output=True, text=True)
            self.assertIn("No signature table present", r.stdout + r.stderr)
        finally:
            b.cleanup()

    def test_a_key_others_can_read_is_refused(self):
        b = Bootd(lab="")
        b.write("lab.yaml", http_lab(b.port, "  secureboot: {cert: sb/db.crt, key: sb/db.key}\n"))
        b.bootctl("gen", "secureboot", b.lab_path, "-o", os.path.join(b.labdir, "sb"))
        os.chmod(os.path.join(b.labdir, "sb", "db.key"), 0o644)
        b.start()
        try:
            status, _, body = b.get("/uki/amd64.efi", source="127.0.0.12")
            self.assertEqual(status, 500)
            self.assertNotIn(b"/config/", body)
            errors = [e["message"] for e in b.events("w-1") if e["kind"] == "error"]
            self.assertTrue(any("db.key" in m for m in errors), errors)
            self.assertNotIn("booting", [e["kind"] for e in b.events("w-1")], "no token minted")
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
