"""HTTP under floods: idle connections from one host cannot take every connection, and
nothing is read from an unauthenticated request's body."""
import socket
import time
import unittest

from tests.integration.harness import Bootd
from tests.integration.hardening import SANITIZED, open_idle, rss_kib


class Floods(unittest.TestCase):
    def setUp(self):
        self.b = Bootd().start()

    def tearDown(self):
        self.b.cleanup()

    def ipxe_answers(self):
        t = time.monotonic()
        status, _, body = self.b.ipxe("52-54-00-00-00-02", source="127.0.0.12")
        return status, time.monotonic() - t

    def test_idle_connections_from_one_host(self):
        socks = open_idle(self.b.port, 4200, source="127.0.0.66")
        try:
            time.sleep(0.5)
            status, took = self.ipxe_answers()
            self.assertEqual(status, 200)
            self.assertLess(took, 2)
        except OSError as e:
            self.fail("/ipxe did not answer with 4200 idle connections open: %s" % e)
        finally:
            for s in socks:
                s.close()

    def test_trickling_heads_from_many_hosts(self):
        # 4200 connections from 70 addresses, each sending a byte of its request head every
        # 2 s: never idle, never done; they must not hold every connection for long
        socks = []
        for i in range(70):
            socks += open_idle(self.b.port, 60, source="127.0.5.%d" % (i + 1))
        try:
            start = time.monotonic()
            head = b"GET /ipxe?mac=52-54-00-00-00-0"
            sent = 0
            answered = None
            while time.monotonic() - start < 25 and answered is None:
                for s in socks:
                    try:
                        s.send(head[sent % len(head):sent % len(head) + 1])
                    except OSError:
                        pass
                sent += 1
                try:
                    c = socket.create_connection(("127.0.0.1", self.b.port), timeout=2,
                                                 source_address=("127.0.0.12", 0))
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if c.recv(20).startswith(b"HTTP/1.1 200"):
                        answered = time.monotonic() - start
                    c.close()
                except OSError:
                    time.sleep(1)
            print("\nanswered after %s s with 4200 trickling connections" % answered)
            self.assertIsNotNone(answered, "no answer in 25 s")
            self.assertLess(answered, 15)
        finally:
            for s in socks:
                s.close()

    def test_unauthenticated_bodies_are_not_read(self):
        body = b"{" + b" " * (64 * 1024 - 2) + b"}"
        head = ("POST /api/v1/machines/adopt HTTP/1.1\r\nHost: x\r\nContent-Type: "
                "application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
        before = rss_kib(self.b.proc.pid)
        socks, deadline = [], time.monotonic() + 60
        try:
            for i in range(3000):
                if time.monotonic() > deadline:
                    break
                s = socket.socket()
                s.settimeout(2)
                s.bind(("127.0.%d.%d" % (10 + i // 50, i % 50 + 1), 0))
                try:
                    s.connect(("127.0.0.1", self.b.port))
                    s.sendall(head + body)
                except OSError:
                    pass  # refused or closed early: what bootd should do
                socks.append(s)
            time.sleep(0.5)
            grew = (rss_kib(self.b.proc.pid) - before) / 1024
            print("\nRSS with %d unauthenticated 64 KiB bodies sent: +%.1f MiB" % (len(socks), grew))
            if not SANITIZED:
                self.assertLess(grew, 16)
            status, took = self.ipxe_answers()
            self.assertEqual(status, 200)
        finally:
            for s in socks:
                s.close()

    def test_wrong_token_gets_401_before_the_body(self):
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=5)
        s.sendall(b"POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
                  b"Content-Length: 1000000\r\n\r\n")
        # no body sent: the answer must not wait for it
        data = s.recv(4096)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:100])


if __name__ == "__main__":
    unittest.main()
