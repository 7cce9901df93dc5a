"""Tables a LAN host can grow stay bounded: discovered machines per source and in all,
events by count and by age."""
import os
import sqlite3
import time
import unittest

from tests.integration.harness import Bootd


def unknown(i):
    return "/ipxe?mac=02:00:00:%02x:%02x:%02x" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


class Tables(unittest.TestCase):
    def start(self, *args):
        self.b = Bootd().start(*args)
        self.addCleanup(self.b.cleanup)

    def discovered(self):
        status, j = self.b.api("GET", "/machines")
        self.assertEqual(status, 200)
        return [m for m in j["machines"] if not m["in_lab"]]

    def events(self):
        db = sqlite3.connect(os.path.join(self.b.state, "state.db"))
        try:
            return [r[0] for r in db.execute("SELECT message FROM events ORDER BY id")]
        finally:
            db.close()

    def boot_unknown(self, first, n, per_source):
        for i in range(first, first + n):
            src = "127.0.%d.%d" % (20 + i // per_source // 250, i // per_source % 250 + 1)
            status, _, _ = self.b.get(unknown(i), source=src)
            self.assertEqual(status, 200)

    def test_discovered_machines_per_source(self):
        self.start()
        self.boot_unknown(0, 400, per_source=400)
        n = len(self.discovered())
        self.assertLessEqual(n, 30, "one host recorded %d invented machines" % n)
        audits = [e["message"] for e in self.b.events() if e["kind"] == "audit"]
        self.assertEqual(len([m for m in audits if "not recorded" in m]), 1, audits)

    def test_discovered_machines_ceiling(self):
        self.start("--discovered-max", "50")
        self.boot_unknown(0, 300, per_source=3)
        self.assertLessEqual(len(self.discovered()), 50)

    def test_events_by_count(self):
        self.start("--events-max", "200", "--discovered-max", "100000")
        self.boot_unknown(0, 1000, per_source=5)
        self.assertGreaterEqual(len(self.discovered()), 900)
        n = len(self.events())
        self.assertLessEqual(n, 220)
        self.assertGreater(n, 100)

    def test_events_by_age(self):
        self.start("--events-max", "100", "--events-max-age", "1s", "--discovered-max", "100000")
        self.boot_unknown(0, 5, per_source=5)
        time.sleep(1.5)
        self.boot_unknown(1000, 20, per_source=5)
        msgs = self.events()
        self.assertFalse(any(m.startswith("first seen at 127.0.20.1") for m in msgs), msgs[:10])


if __name__ == "__main__":
    unittest.main()
