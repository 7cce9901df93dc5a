"""One bootd per port and per state dir, and a state dir nobody else can read."""
import os
import stat
import unittest

from tests.integration.harness import Bootd, lab_text


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class Instances(unittest.TestCase):
    def setUp(self):
        self.a = Bootd().start()
        self.b = Bootd()

    def tearDown(self):
        self.b.cleanup()
        self.a.cleanup()

    def second_exits(self):
        self.b.start(wait=False)
        try:
            rc = self.b.proc.wait(10)
        except Exception:
            rc = None
        self.assertIsNotNone(rc, "a second bootd kept running:\n" + self.b.logs())
        self.assertNotEqual(rc, 0)
        # the first one is untouched
        self.assertEqual(self.a.get("/healthz")[0], 200)
        return self.b.logs()

    def test_second_bootd_on_the_same_state_dir(self):
        self.b.state = self.a.state
        log = self.second_exits()
        self.assertIn("in use by another bootd (pid %d)" % self.a.proc.pid, log)

    def test_second_bootd_on_the_same_port(self):
        self.b.port = self.a.port
        self.b.write("lab.yaml", lab_text(self.a.port))
        log = self.second_exits()
        self.assertIn("cannot listen", log)


class PrivateState(unittest.TestCase):
    def test_state_dir_and_files_made_private(self):
        b = Bootd()
        try:
            os.makedirs(b.state, exist_ok=True)
            os.chmod(b.state, 0o777)
            db = os.path.join(b.state, "state.db")
            open(db, "w").close()
            os.chmod(db, 0o666)
            tmp = os.path.join(b.state, "admin.token.tmp-a1B2c3")
            open(tmp, "w").close()
            b.start()
            self.assertEqual(mode(b.state), 0o700)
            for name in ("state.db", "state.db-wal", "state.db-shm", "admin.token"):
                self.assertEqual(mode(os.path.join(b.state, name)), 0o600, name)
            self.assertFalse(os.path.exists(tmp), "a stale temporary file stays")
            self.assertIn("made private", b.logs())
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
