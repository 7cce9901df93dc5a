"""Tokens with scopes: the viewer token reads, the admin token does everything."""
import os
import unittest

from tests.integration.harness import Bootd


class Scopes(unittest.TestCase):
    def setUp(self):
        self.b = Bootd().start()
        with open(os.path.join(self.b.state, "viewer.token")) as f:
            self.viewer = f.read().strip()

    def tearDown(self):
        self.b.cleanup()

    def test_viewer_reads(self):
        self.assertNotEqual(self.viewer, self.b.token())
        self.assertEqual(os.stat(os.path.join(self.b.state, "viewer.token")).st_mode & 0o777,
                         0o600)
        # /overview and /watch: what the status page signs in to with the viewer token
        for path in ("/status", "/machines", "/machines/cp-1", "/events", "/overview", "/watch"):
            status, _ = self.b.api("GET", path, token=self.viewer)
            self.assertEqual(status, 200, path)

    def test_viewer_changes_nothing_and_gets_no_secrets(self):
        for method, path in (("POST", "/reload"), ("POST", "/machines/cp-1/reinstall"),
                             ("POST", "/machines/adopt"), ("GET", "/cluster/kubeconfig"),
                             ("GET", "/cluster/etcd-snapshot"), ("GET", "/%63luster/kubeconfig")):
            status, j = self.b.api(method, path, token=self.viewer,
                                   body={} if method == "POST" else None)
            self.assertEqual(status, 403, (method, path, j))
            self.assertIn("viewer token only reads", j["error"])
        m = self.b.api("GET", "/machines/cp-1")[1]
        self.assertFalse(m["reinstall"])

    def test_admin_still_does_everything(self):
        self.assertEqual(self.b.api("POST", "/reload")[0], 200)


if __name__ == "__main__":
    unittest.main()
