"""/boot.ipxe and /ipxe against a running bootd."""
import unittest

from tests.integration.harness import Bootd, VANILLA, config_path


class BootRoutes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Bootd().start()

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def test_chain_script(self):
        status, h, body = self.b.get("/boot.ipxe")
        self.assertEqual(status, 200)
        self.assertEqual(int(h["content-length"]), len(body))
        text = body.decode()
        self.assertTrue(text.startswith("#!ipxe\n"))
        self.assertIn("http://127.0.0.1:%d/ipxe?mac=${netX/mac:hexhyp}&uuid=${uuid}"
                      "&arch=${buildarch}" % self.b.port, text)

    def test_known_machine_bios(self):
        status, h, body = self.b.ipxe("52-54-00-00-00-02", source="127.0.0.12")
        self.assertEqual(status, 200)
        self.assertEqual(int(h["content-length"]), len(body))
        s = body.decode()
        base = "http://127.0.0.1:%d/assets/%s/v1.13.9/" % (self.b.port, VANILLA)
        self.assertIn("kernel %skernel-amd64 " % base, s)
        self.assertIn("initrd %sinitramfs-amd64.xz" % base, s)
        for arg in ("talos.platform=metal", "slab_nomerge", "pti=on", "console=ttyS0,115200n8"):
            self.assertIn(" %s " % arg, s)
        self.assertNotIn("initrd=initramfs", s, "BIOS needs no initrd= argument")
        self.assertRegex(config_path(s), r"^/config/[0-9a-f]{32}$")
        self.assertIn("# bootd: w-1 (worker, 52:54:00:00:00:02)", s)

    def test_known_machine_uefi_gets_initrd_arg(self):
        status, _, body = self.b.ipxe("52-54-00-00-00-02", source="127.0.0.12", platform="efi")
        self.assertEqual(status, 200)
        self.assertIn("initrd=initramfs-amd64.xz talos.platform=metal", body.decode())

    def test_each_script_has_a_new_token(self):
        a = config_path(self.b.ipxe("52:54:00:00:00:02", source="127.0.0.12")[2].decode())
        b = config_path(self.b.ipxe("52:54:00:00:00:02", source="127.0.0.12")[2].decode())
        self.assertNotEqual(a, b)

    def test_malformed_and_missing_mac(self):
        for q in ("mac=52-54-00-00-00", "mac=zz-54-00-00-00-01", "mac=", "arch=x86_64",
                  "mac=52-54-00-00-00-01&arch=x86;64", "mac=52-54-00-00-00-01&uuid=nope"):
            status, _, body = self.b.get("/ipxe?" + q)
            self.assertEqual(status, 400, q)
            self.assertNotIn(b"/config/", body)

    def test_oversized_query(self):
        status, _, _ = self.b.get("/ipxe?mac=52-54-00-00-00-01&x=" + "a" * 5000)
        self.assertEqual(status, 400)
        status, _, _ = self.b.get("/ipxe?" + "&".join("a%d=1" % i for i in range(40)))
        self.assertEqual(status, 400)
        status, _, _ = self.b.get("/ipxe?mac=52-54-00-00-00-01&x=" + "a" * 100000)
        self.assertEqual(status, 414)

    def test_unknown_machine_is_discovered_and_held(self):
        status, _, body = self.b.ipxe("52-54-00-aa-00-01", source="127.0.0.77")
        s = body.decode()
        self.assertEqual(status, 200)
        self.assertNotIn("/config/", s)
        self.assertNotIn("kernel ", s)
        self.assertIn("sleep 7", s)
        self.assertIn("bootctl machine adopt 52:54:00:aa:00:01", s)
        status, m = self.b.api("GET", "/machines/52:54:00:aa:00:01")
        self.assertEqual(status, 200)
        self.assertEqual(m["state"], "discovered")
        self.assertEqual(m["ip"], "127.0.0.77")
        self.assertFalse(m["in_lab"])
        self.assertEqual([e["kind"] for e in m["events"]], ["discovered"])

    def test_uuid_mismatch_is_held_with_audit(self):
        status, _, body = self.b.ipxe("52-54-00-00-00-01", source="127.0.0.11",
                                      uuid="4c4c4544-0000-1000-8000-0000000000ff")
        self.assertEqual(status, 200)
        self.assertNotIn(b"/config/", body)
        self.assertIn(b"is not the one lab.yaml pins", body)
        self.assertNotIn(b"4c4c4544-0000-1000-8000-000000000001", body)
        kinds = [e["kind"] for e in self.b.events("cp-1")]
        self.assertIn("audit", kinds)

    def test_installed_machine_exits_until_reinstall(self):
        import sqlite3, os
        db = sqlite3.connect(os.path.join(self.b.state, "state.db"))
        db.execute("UPDATE machines SET state = 'installing' WHERE mac = '52:54:00:00:00:03'")
        db.commit()
        db.close()
        status, _, body = self.b.ipxe("52-54-00-00-00-03", source="127.0.0.13")
        self.assertEqual(status, 200)
        self.assertIn(b"\nexit\n", body)
        self.assertNotIn(b"/config/", body)
        status, m = self.b.api("POST", "/machines/w-2/reinstall")
        self.assertEqual(status, 200, m)
        self.assertTrue(m["reinstall"])
        status, _, body = self.b.ipxe("52-54-00-00-00-03", source="127.0.0.13")
        self.assertIn(b"kernel ", body)
        status, m = self.b.api("GET", "/machines/w-2")
        self.assertEqual(m["state"], "booting")
        self.assertFalse(m["reinstall"], "the reinstall request is used up by the boot")

    def test_methods(self):
        self.assertEqual(self.b.request("POST", "/ipxe?mac=52-54-00-00-00-01", body="x")[0], 405)
        self.assertEqual(self.b.request("POST", "/boot.ipxe", body="x")[0], 405)
        self.assertEqual(self.b.get("/nope")[0], 404)


class UnknownExitPolicy(unittest.TestCase):
    def test_unknown_machine_gets_exit(self):
        b = Bootd(unknown="exit").start()
        try:
            status, _, body = b.ipxe("52-54-00-aa-00-02")
            self.assertEqual(status, 200)
            self.assertIn(b"\nexit\n", body)
            self.assertNotIn(b"/config/", body)
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
