"""/config/<token>: a machine gets its own config, once, from its own address."""
import time
import unittest

from tests.integration.harness import (Bootd, CP_CONFIG, WORKER_CONFIG, config_path, lab_text,
                                       read, wait_for)


def kinds_and_messages(events):
    return [(e["kind"], e["message"]) for e in events]


class ConfigTokens(unittest.TestCase):
    def setUp(self):
        self.b = Bootd(grace="2s").start()

    def tearDown(self):
        self.b.cleanup()

    def script(self, mac, source):
        status, _, body = self.b.ipxe(mac, source=source)
        self.assertEqual(status, 200)
        return config_path(body.decode())

    def test_each_machine_gets_its_own_bytes(self):
        cp = self.script("52-54-00-00-00-01", "127.0.0.11")
        w = self.script("52-54-00-00-00-02", "127.0.0.12")
        status, h, body = self.b.get(cp, source="127.0.0.11")
        self.assertEqual(status, 200)
        self.assertEqual(body.decode(), CP_CONFIG)
        self.assertEqual(int(h["content-length"]), len(CP_CONFIG))
        self.assertEqual(h["cache-control"], "no-store")
        status, _, body = self.b.get(w, source="127.0.0.12")
        self.assertEqual(body.decode(), WORKER_CONFIG)
        # the download is recorded once its last byte has left
        m = wait_for(lambda: self.b.api("GET", "/machines/cp-1")[1],
                     lambda m: m["state"] == "config-served")
        self.assertEqual(m["state"], "config-served")
        self.assertEqual([e["kind"] for e in m["events"]], ["assigned", "booting", "config-served"])

    def test_replay_from_another_address(self):
        cp = self.script("52-54-00-00-00-01", "127.0.0.11")
        status, _, body = self.b.get(cp, source="127.0.0.12")
        self.assertEqual(status, 403)
        self.assertNotIn(b"machine:", body)
        ev = kinds_and_messages(self.b.events("cp-1"))
        self.assertIn(("audit", "config token for cp-1 presented from 127.0.0.12, bound to "
                       "127.0.0.11/32 (replay?)"), ev)
        # the machine itself still gets it
        self.assertEqual(self.b.get(cp, source="127.0.0.11")[0], 200)

    def test_bad_and_malformed_tokens(self):
        status, _, _ = self.b.get("/config/" + "0" * 32, source="127.0.0.11")
        self.assertEqual(status, 403)
        status, _, _ = self.b.get("/config/../lab.yaml", source="127.0.0.11")
        self.assertIn(status, (400, 403))
        status, _, _ = self.b.get("/config/ABCDEF", source="127.0.0.11")
        self.assertEqual(status, 403)
        ev = kinds_and_messages(self.b.events())
        self.assertIn(("audit", "unknown config token from 127.0.0.11"), ev)
        self.assertIn(("audit", "malformed config token from 127.0.0.11"), ev)

    def test_stale_token_after_a_newer_boot(self):
        first = self.script("52-54-00-00-00-02", "127.0.0.12")
        second = self.script("52-54-00-00-00-02", "127.0.0.12")
        self.assertEqual(self.b.get(first, source="127.0.0.12")[0], 403)
        self.assertEqual(self.b.get(second, source="127.0.0.12")[0], 200)
        self.assertIn(("audit", "stale config token for w-1 from 127.0.0.12: a newer boot "
                       "replaced it"), kinds_and_messages(self.b.events("w-1")))

    def test_expires_after_grace_following_first_download(self):
        cp = self.script("52-54-00-00-00-01", "127.0.0.11")
        self.assertEqual(self.b.get(cp, source="127.0.0.11")[0], 200)
        self.assertEqual(self.b.get(cp, source="127.0.0.11")[0], 200, "retries within grace work")
        time.sleep(2.5)
        status, _, _ = self.b.get(cp, source="127.0.0.11")
        self.assertEqual(status, 403)
        msgs = [m for k, m in kinds_and_messages(self.b.events("cp-1")) if k == "audit"]
        self.assertTrue(any(m.startswith("expired config token for cp-1") for m in msgs), msgs)

    def test_machine_removed_from_lab(self):
        w = self.script("52-54-00-00-00-02", "127.0.0.12")
        text = read(self.b.lab_path)
        start = text.index("  - name: w-1")
        end = text.index("  - name: w-2")
        self.b.write("lab.yaml", text[:start] + text[end:])
        status, j = self.b.api("POST", "/reload")
        self.assertEqual(status, 200, j)
        self.assertEqual(self.b.get(w, source="127.0.0.12")[0], 403)
        status, m = self.b.api("GET", "/machines/52:54:00:00:00:02")
        self.assertEqual(m["state"], "discovered")

    def test_no_reservation_binds_to_the_subnet(self):
        # w-2 has no ip in lab.yaml: iPXE and Talos may get different leases
        self.b.neighbours({"127.0.0.40": "52:54:00:00:00:03", "127.0.0.41": "52:54:00:00:00:03"})
        w2 = self.script("52-54-00-00-00-03", "127.0.0.40")
        self.assertEqual(self.b.get(w2, source="127.0.0.41")[0], 200)
        ev = self.b.events("w-2")
        booting = [e["message"] for e in ev if e["kind"] == "booting"][0]
        self.assertIn("bound to 127.0.0.0/8 (no reserved address: lab subnet)", booting)

    def test_missing_config_file_is_an_error_event_not_a_hang(self):
        import os
        os.remove(os.path.join(self.b.labdir, "worker.yaml"))
        w = self.script("52-54-00-00-00-02", "127.0.0.12")
        status, _, body = self.b.get(w, source="127.0.0.12")
        self.assertEqual(status, 500)
        errors = [e["message"] for e in self.b.events("w-1") if e["kind"] == "error"]
        self.assertTrue(any("worker.yaml" in m for m in errors), errors)


class TokenLifetimes(unittest.TestCase):
    """Both lifetimes of a config token: token_max_age for one never downloaded,
    token_grace after its first download (which max age no longer limits).
    Planted bugs this catches: the max age counted in the wrong unit (a token meant to
    live 4 h living 4,000 h: "token_max_age_s * 1000" made "* 1000 * 1000"), the grace
    likewise, and max age applied to a token already downloaded."""

    def setUp(self):
        self.b = Bootd()
        self.b.write("lab.yaml", lab_text(self.b.port, grace="4s").replace(
            "  token_grace: 4s\n", "  token_grace: 4s\n  token_max_age: 2s\n"))
        self.b.start()

    def tearDown(self):
        self.b.cleanup()

    def script(self, mac, source):
        status, _, body = self.b.ipxe(mac, source=source)
        self.assertEqual(status, 200)
        return config_path(body.decode())

    def test_max_age_then_grace(self):
        cp = self.script("52-54-00-00-00-01", "127.0.0.11")
        w = self.script("52-54-00-00-00-02", "127.0.0.12")
        self.assertEqual(self.b.get(cp, source="127.0.0.11")[0], 200)
        time.sleep(2.5)
        # w-1 never downloaded: past token_max_age
        self.assertEqual(self.b.get(w, source="127.0.0.12")[0], 403)
        msgs = [e["message"] for e in self.b.events("w-1") if e["kind"] == "audit"]
        self.assertIn("expired config token for w-1 from 127.0.0.12: never used in 2 s", msgs)
        # cp-1 downloaded within max age: its grace (4 s) counts now, not max age
        self.assertEqual(self.b.get(cp, source="127.0.0.11")[0], 200)
        time.sleep(2.0)
        self.assertEqual(self.b.get(cp, source="127.0.0.11")[0], 403)
        msgs = [e["message"] for e in self.b.events("cp-1") if e["kind"] == "audit"]
        self.assertTrue(any(m.startswith("expired config token for cp-1 from 127.0.0.11: first "
                                         "downloaded") for m in msgs), msgs)


if __name__ == "__main__":
    unittest.main()
