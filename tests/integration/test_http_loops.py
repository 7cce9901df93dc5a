"""The HTTP loops: the acceptor keeps the per-address cap for all of them, and a reload of
a large lab runs off the loops, so requests on the same loop keep being answered."""
import socket
import threading
import time
import unittest

from bench.bench_http import lab_with_machines
from tests.integration.harness import Bootd


def healthz(port, source="127.0.0.1", timeout=5):
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return c.recv(64)
    except (ConnectionResetError, BrokenPipeError):
        return b""  # closed unanswered
    finally:
        c.close()


class PerAddressCap(unittest.TestCase):
    def setUp(self):
        self.b = Bootd().start()

    def tearDown(self):
        self.b.cleanup()

    def test_65th_connection_from_one_address_is_closed(self):
        held = []
        try:
            for _ in range(64):
                held.append(socket.create_connection(("127.0.0.1", self.b.port), timeout=5,
                                                     source_address=("127.0.7.1", 0)))
            time.sleep(0.3)  # all of them accepted and counted
            # the 65th is closed unanswered, whichever loop would have taken it
            self.assertEqual(healthz(self.b.port, "127.0.7.1"), b"")
            # another address is served meanwhile
            self.assertTrue(healthz(self.b.port, "127.0.7.2").startswith(b"HTTP/1.1 200"))
            # one closed: its place is free again
            held.pop().close()
            time.sleep(0.3)
            self.assertTrue(healthz(self.b.port, "127.0.7.1").startswith(b"HTTP/1.1 200"))
        finally:
            for s in held:
                s.close()


class ReloadOffTheLoop(unittest.TestCase):
    def test_requests_on_the_only_loop_are_answered_during_a_reload(self):
        b = Bootd(lab=None)
        self.addCleanup(b.cleanup)
        lab = lab_with_machines(b.port, 10000)
        b.write("lab.yaml", lab)
        b.start("--threads", "1")  # one loop: a reload on it would hold every request
        b.write("lab.yaml", lab.replace("name: m-0,", "name: m-zero,", 1))
        result = {}

        def reload():
            result["status"] = b.api("POST", "/reload")[0]

        t = threading.Thread(target=reload)
        answered = 0
        t.start()
        deadline = time.monotonic() + 60
        while t.is_alive() and time.monotonic() < deadline:
            if healthz(b.port).startswith(b"HTTP/1.1 200") and t.is_alive():
                answered += 1
        t.join(60)
        self.assertEqual(result.get("status"), 200)
        print("\n/healthz answered %d times during one reload of 10,000 machines" % answered)
        self.assertGreater(answered, 0, "nothing was answered while the reload ran")
        self.assertEqual(b.api("GET", "/machines/m-zero")[0], 200)


if __name__ == "__main__":
    unittest.main()
