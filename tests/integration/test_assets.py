"""/assets: byte ranges, validators, and no way out of the cache."""
import os
import unittest

from tests.integration.harness import Bootd, VANILLA, read


class Assets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Bootd().start()
        cls.dir = os.path.join(cls.b.state, "images", VANILLA, "v1.13.9")
        os.makedirs(cls.dir, exist_ok=True)
        cls.data = os.urandom(300000)
        with open(os.path.join(cls.dir, "kernel-amd64"), "wb") as f:
            f.write(cls.data)
        with open(os.path.join(cls.dir, ".initramfs-amd64.xz.part"), "wb") as f:
            f.write(b"partial")
        os.symlink("/etc/passwd", os.path.join(cls.dir, "passwd"))
        os.symlink(cls.b.state, os.path.join(cls.b.state, "images", "state"))
        cls.url = "/assets/%s/v1.13.9/kernel-amd64" % VANILLA

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def test_whole_file(self):
        status, h, body = self.b.get(self.url)
        self.assertEqual(status, 200)
        self.assertEqual(body, self.data)
        self.assertEqual(int(h["content-length"]), len(self.data))
        self.assertEqual(h["accept-ranges"], "bytes")
        self.assertTrue(h["etag"].startswith('"'))

    def test_head(self):
        status, h, body = self.b.request("HEAD", self.url)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertEqual(int(h["content-length"]), len(self.data))

    def test_ranges(self):
        status, h, body = self.b.get(self.url, headers={"Range": "bytes=100-199"})
        self.assertEqual(status, 206)
        self.assertEqual(body, self.data[100:200])
        self.assertEqual(h["content-range"], "bytes 100-199/%d" % len(self.data))
        status, h, body = self.b.get(self.url, headers={"Range": "bytes=299000-"})
        self.assertEqual((status, body), (206, self.data[299000:]))
        status, h, body = self.b.get(self.url, headers={"Range": "bytes=-10"})
        self.assertEqual((status, body), (206, self.data[-10:]))
        status, h, body = self.b.get(self.url, headers={"Range": "bytes=0-999999999"})
        self.assertEqual((status, body), (206, self.data))

    def test_range_edges(self):
        """Ranges ending at size-1, size and size+1, starting at the last byte or past
        the end, and suffix ranges shorter than, equal to and longer than the file.
        Planted bug this catches: the end clamp written "last > size" instead of
        "last >= size" (a range ending at size is answered with one byte too many, and
        the client waits for a byte that never comes)."""
        d, n = self.data, len(self.data)
        full = "bytes 0-%d/%d" % (n - 1, n)
        last = "bytes %d-%d/%d" % (n - 1, n - 1, n)
        cases = [
            ("bytes=0-%d" % (n - 1), d, full),
            ("bytes=0-%d" % n, d, full),
            ("bytes=0-%d" % (n + 1), d, full),
            ("bytes=10-%d" % n, d[10:], "bytes 10-%d/%d" % (n - 1, n)),
            ("bytes=%d-" % (n - 1), d[-1:], last),
            ("bytes=%d-%d" % (n - 1, n - 1), d[-1:], last),
            ("bytes=%d-%d" % (n - 1, n), d[-1:], last),
            ("bytes=%d-%d" % (n - 2, n - 1), d[-2:], "bytes %d-%d/%d" % (n - 2, n - 1, n)),
            ("bytes=-1", d[-1:], last),
            ("bytes=-%d" % (n - 1), d[1:], "bytes 1-%d/%d" % (n - 1, n)),
            ("bytes=-%d" % n, d, full),
            ("bytes=-%d" % (n + 1), d, full),
        ]
        for rng, want, content_range in cases:
            with self.subTest(range=rng):
                status, h, body = self.b.get(self.url, headers={"Range": rng})
                self.assertEqual(status, 206)
                self.assertEqual(h["content-range"], content_range)
                self.assertEqual(int(h["content-length"]), len(want))
                self.assertEqual(body, want)
        for rng in ("bytes=%d-" % n, "bytes=%d-%d" % (n, n), "bytes=%d-" % (n + 1)):
            with self.subTest(range=rng):
                status, h, _ = self.b.get(self.url, headers={"Range": rng})
                self.assertEqual(status, 416)
                self.assertEqual(h["content-range"], "bytes */%d" % n)

    def test_bad_ranges(self):
        status, h, _ = self.b.get(self.url, headers={"Range": "bytes=300000-"})
        self.assertEqual(status, 416)
        self.assertEqual(h["content-range"], "bytes */%d" % len(self.data))
        self.assertEqual(self.b.get(self.url, headers={"Range": "bytes=-0"})[0], 416)
        # malformed or several ranges: RFC 9110 lets the server send the whole file
        for r in ("bytes=abc", "bytes=5-1", "items=0-1", "bytes=0-1,5-6"):
            status, _, body = self.b.get(self.url, headers={"Range": r})
            self.assertEqual((status, len(body)), (200, len(self.data)), r)

    def test_conditional(self):
        etag = self.b.get(self.url)[1]["etag"]
        status, h, body = self.b.get(self.url, headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        status, _, body = self.b.get(self.url, headers={"If-None-Match": '"other"'})
        self.assertEqual(status, 200)
        # If-Range with a stale tag: the whole (new) file, not a spliced range
        status, _, body = self.b.get(self.url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
        self.assertEqual((status, len(body)), (200, len(self.data)))
        status, _, body = self.b.get(self.url, headers={"Range": "bytes=0-9", "If-Range": etag})
        self.assertEqual((status, body), (206, self.data[:10]))

    def test_no_way_out(self):
        secret = read(os.path.join(self.b.state, "admin.token"), "rb")
        attempts = [
            "/assets/../admin.token", "/assets/%2e%2e/admin.token", "/assets/..%2fadmin.token",
            "/assets/%2E%2E%2Fadmin.token", "/assets/state/admin.token",
            "/assets/%s/v1.13.9/passwd" % VANILLA, "/assets/%s/v1.13.9/kernel-amd64%%00.txt" % VANILLA,
            "/assets/%s/v1.13.9/.initramfs-amd64.xz.part" % VANILLA, "/assets//etc/passwd",
            "/assets/%s/v1.13.9/..\\..\\admin.token" % VANILLA, "/assets/%5c..%5cadmin.token",
            "/assets/%s/v1.13.9" % VANILLA, "/assets/", "/assets/nope",
        ]
        for path in attempts:
            status, _, body = self.b.get(path)
            self.assertIn(status, (400, 404), path)
            self.assertNotIn(secret, body, path)
            self.assertNotIn(b"root:", body, path)

    def test_file_changes_are_seen(self):
        p = os.path.join(self.dir, "cmdline-metal-amd64")
        with open(p, "w") as f:
            f.write("a")
        e1 = self.b.get("/assets/%s/v1.13.9/cmdline-metal-amd64" % VANILLA)[1]["etag"]
        os.replace(self._write_tmp("bb"), p)
        status, h, body = self.b.get("/assets/%s/v1.13.9/cmdline-metal-amd64" % VANILLA)
        self.assertEqual(body, b"bb")
        self.assertNotEqual(h["etag"], e1)

    def _write_tmp(self, text):
        p = os.path.join(self.dir, ".tmp-new")
        with open(p, "w") as f:
            f.write(text)
        return p


if __name__ == "__main__":
    unittest.main()
