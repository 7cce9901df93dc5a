"""state.db's write-ahead log stays bounded while bootd runs, under any load."""
import os
import unittest

from tests.integration.harness import Bootd
from tests.integration.hardening import CP1_UUID, Sampler, flood

FLOOD = 20000
WAL_PEAK_MAX = 64 << 20   # 4000 pages trigger a truncating checkpoint; commits keep coming
WAL_END_MAX = 32 << 20


class WalBounded(unittest.TestCase):
    def setUp(self):
        self.b = Bootd().start()

    def tearDown(self):
        self.b.cleanup()

    def test_wal_checkpointed_during_a_boot_storm(self):
        # every boot of a known machine mints a token and adds an event: one commit each batch
        path = "/ipxe?mac=52-54-00-00-00-01&uuid=%s&arch=x86_64&platform=pcbios" % CP1_UUID
        wal = os.path.join(self.b.state, "state.db-wal")
        with Sampler(wal) as s:
            statuses = flood(self.b.port, [path] * FLOOD, source="127.0.0.11")
        self.assertEqual(statuses.get(200), FLOOD, statuses)
        db = os.path.getsize(os.path.join(self.b.state, "state.db"))
        end = os.path.getsize(wal)
        print("\nWAL after %d boots: peak %.1f MiB, end %.1f MiB; state.db %.1f MiB"
              % (FLOOD, s.peak / 2**20, end / 2**20, db / 2**20))
        self.assertLess(s.peak, WAL_PEAK_MAX)
        self.assertLess(end, WAL_END_MAX)
        self.assertGreater(db, 4096, "pages reached state.db itself")


if __name__ == "__main__":
    unittest.main()
