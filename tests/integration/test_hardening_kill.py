"""bootd killed (-9) in the middle of boots, 100 times: nothing a client was told is lost,
including the config-served mark of a config that was downloaded in full."""
import os
import random
import signal
import sqlite3
import threading
import unittest

from tests.integration.harness import Bootd, config_path

MACHINES = (("52-54-00-00-00-01", "127.0.0.11", "cp-1"), ("52-54-00-00-00-02", "127.0.0.12", "w-1"))
ROUNDS = 100


class KillStorm(unittest.TestCase):
    def test_kill_9_during_boots(self):
        b = Bootd()
        self.addCleanup(b.cleanup)
        rng = random.Random(14)
        lost = []
        for rnd in range(ROUNDS):
            b.start()
            done = {}

            def client(mac, src, name):
                try:
                    st, _, body = b.ipxe(mac, source=src)
                    path = config_path(body.decode()) if st == 200 else None
                    if not path:
                        return
                    st, h, cfg = b.get(path, source=src)
                    if st == 200 and len(cfg) == int(h["content-length"]):
                        done[name] = path
                except OSError:
                    pass

            ts = [threading.Thread(target=client, args=m) for m in MACHINES]
            for t in ts:
                t.start()
            threading.Event().wait(rng.uniform(0.0, 0.03))
            b.proc.send_signal(signal.SIGKILL)
            b.proc.wait()
            b.log.close()
            for t in ts:
                t.join(15)
            db = sqlite3.connect(os.path.join(b.state, "state.db"))
            try:
                self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                for name in done:
                    state = db.execute("SELECT state FROM machines WHERE name = ?",
                                       (name,)).fetchone()[0]
                    if state != "config-served":
                        lost.append((rnd, name, state))
            finally:
                db.close()
        self.assertEqual(lost, [], "config-served marks lost after kill -9")


if __name__ == "__main__":
    unittest.main()
