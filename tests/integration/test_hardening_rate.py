"""Slow clients cannot hold connections: a body trickled in, or an answer read a few
bytes at a time, is cut once it moves slower than bootd's floor (4 KiB/s over 10 s),
which frees the slots it held; a download at an ordinary (if slow) speed is not.

Planted bugs this catches (each checked by planting it, watching a test here fail, and
reverting):
- no rate floor (MIN_RATE 0): slow readers and slow bodies keep their connections, and
  the source address stays locked out by its 64-connection cap;
- the floor set far too high (1 MiB/s): the 120 KiB/s download is cut.
"""
import os
import socket
import time
import unittest

from tests.integration.harness import VANILLA, Bootd

BIG = 32 << 20  # far more than the socket buffers on both sides hold
PER_ADDR = 64   # bootd's per-address connection cap
KERNEL = "/assets/%s/v1.13.9/kernel-amd64" % VANILLA


def connect(port, source, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:  # before connect, so the window the client offers stays small
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


class SlowClients(unittest.TestCase):
    def setUp(self):
        self.b = Bootd()
        with open(os.path.join(self.b.state, "images", VANILLA, "v1.13.9", "kernel-amd64"),
                  "wb") as f:
            f.write(os.urandom(1 << 20) * (BIG >> 20))
        self.b.start()

    def tearDown(self):
        self.b.cleanup()

    def ipxe_status(self, source):
        try:
            return self.b.ipxe("52-54-00-00-00-02", source=source)[0]
        except OSError:
            return None  # the address's connections are all taken

    def hold_until_cut(self, socks, trickle, source, opened, limit_s=20):
        """Runs trickle(sock) once a second on every connection until the source address
        is served again (bootd cut its connections), or limit_s passes; returns the
        seconds that took from opened. limit_s stays well below the 30 s after which
        libmicrohttpd drops a connection it could not write to (a reader that stopped),
        so that only the rate floor can pass this. (A cut reader may not see its end at
        once: the end waits behind the data it does not read. What matters is that bootd
        let go of the slot.)"""
        start = opened
        # all slots of this address are taken: it cannot even ask for a boot script
        self.assertIsNone(self.ipxe_status(source), "the per-address cap held")
        self.assertEqual(self.ipxe_status("127.0.0.12"), 200, "others are served meanwhile")
        served = None
        while served is None and time.monotonic() - start < limit_s:
            time.sleep(1)
            for s in socks:
                try:
                    trickle(s)
                except OSError:
                    pass
            if self.ipxe_status(source) == 200:
                served = time.monotonic() - start
        for s in socks:
            s.close()
        self.assertIsNotNone(served, "the slow connections still held every slot of %s after"
                             " %d s" % (source, limit_s))
        return served

    def test_slow_readers_are_cut_and_their_slots_freed(self):
        source = "127.0.0.70"
        socks, opened = [], time.monotonic()
        for _ in range(PER_ADDR):
            s = connect(self.b.port, source, rcvbuf=4096)
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % KERNEL).encode())
            socks.append(s)
        got = [0]

        def read_a_little(s):
            s.settimeout(0.01)
            try:
                got[0] += len(s.recv(256))  # 256 bytes a second: a slow-read attack
            except socket.timeout:
                pass

        took = self.hold_until_cut(socks, read_a_little, source, opened)
        print("\n%d slow readers cut after %.1f s (%d bytes read in all)"
              % (len(socks), took, got[0]))
        self.assertLess(got[0], BIG, "no reader got the whole file")
        self.assertEqual(self.ipxe_status(source), 200, "the address keeps its slots")

    def test_slow_bodies_are_cut_and_their_slots_freed(self):
        source = "127.0.0.71"
        token = self.b.token()
        heads = [
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            # a body behind the right token is held to the same floor
            "POST /api/v1/machines/adopt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{" % token,
        ]
        socks, opened = [], time.monotonic()
        for i in range(PER_ADDR):
            s = connect(self.b.port, source)
            s.sendall(heads[i % 2].encode())
            socks.append(s)

        def send_a_little(s):
            s.settimeout(0.01)
            s.send(b" " * 64)  # 64 bytes a second: a slow-body attack

        took = self.hold_until_cut(socks, send_a_little, source, opened)
        print("\n%d slow bodies cut after %.1f s" % (len(socks), took))
        self.assertEqual(self.ipxe_status(source), 200, "the address keeps its slots")

    def test_a_slow_but_ordinary_download_completes(self):
        # 120 KiB/s for 15 s (longer than the rate window), through a small receive
        # window so that the answer waits on this reader all along
        want = 1800 * 1024
        s = connect(self.b.port, "127.0.0.72", rcvbuf=4096)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nRange: bytes=0-%d\r\n\r\n"
                   % (KERNEL, want - 1)).encode())
        data, start = b"", time.monotonic()
        while time.monotonic() - start < 40:
            chunk = s.recv(12 * 1024)
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if body and len(body) >= want:
                break
            time.sleep(0.1)
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 206"), head[:80])
        self.assertEqual(len(body), want, "the download was cut after %d bytes, %.1f s"
                         % (len(body), time.monotonic() - start))
        self.assertGreater(time.monotonic() - start, 12, "it took longer than one window")


if __name__ == "__main__":
    unittest.main()
