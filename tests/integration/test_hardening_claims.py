"""A machine's boot script, config token and config go to that machine only: a claim for a
MAC is honoured from its reserved address (full DHCP mode) or from a neighbour whose
link-layer address is that MAC; a failed claim gets no token and supersedes nothing."""
import unittest

from tests.integration.harness import Bootd, config_path, read

W1, W2, CP1 = "52:54:00:00:00:02", "52:54:00:00:00:03", "52:54:00:00:00:01"
ATTACKER, ATTACKER_MAC = "127.0.0.66", "02:00:00:00:00:66"
CP1_UUID = "4c4c4544-0000-1000-8000-000000000001"


class Claims(unittest.TestCase):
    dhcp = "full"

    def setUp(self):
        self.b = Bootd(dhcp=self.dhcp)
        self.b.neighbours({"127.0.0.11": CP1, "127.0.0.12": W1, "127.0.0.13": W2,
                           ATTACKER: ATTACKER_MAC})
        self.b.start()

    def tearDown(self):
        self.b.cleanup()

    def script(self, mac, source, **kw):
        status, _, body = self.b.ipxe(mac, source=source, **kw)
        self.assertEqual(status, 200)
        return body.decode()

    def audits(self, name):
        return [e["message"] for e in self.b.events(name) if e["kind"] == "audit"]

    def assert_foreign_claim_refused(self, mac, name, own_source):
        own = config_path(self.script(mac, own_source))
        self.assertIsNotNone(own)
        foreign = self.script(mac, ATTACKER)
        self.assertIsNone(config_path(foreign), "no token for a foreign claim:\n" + foreign)
        self.assertNotIn("/config/", foreign)
        # nothing superseded: the machine's own token still works, and only for it
        self.assertEqual(self.b.get(own, source=ATTACKER)[0], 403)
        status, _, body = self.b.get(own, source=own_source)
        self.assertEqual(status, 200)
        self.assertIn(b"machine:", body)
        audits = self.audits(name)
        self.assertTrue(any("from %s" % ATTACKER in m and "held, no token" in m for m in audits),
                        audits)

    def test_foreign_claim_without_reservation(self):
        self.assert_foreign_claim_refused(W2, "w-2", "127.0.0.13")

    def test_foreign_claim_for_reserved_machine(self):
        self.assert_foreign_claim_refused(W1, "w-1", "127.0.0.12")

    def test_reserved_address_taken_by_another_mac(self):
        # a host that configured cp-1's address by hand: the neighbour table knows better
        self.b.neighbours({"127.0.0.11": ATTACKER_MAC})
        self.assertIsNone(config_path(self.script(CP1, "127.0.0.11", uuid=CP1_UUID)))

    def test_neighbour_on_another_interface_is_not_the_lab_lan(self):
        self.b.neighbours({"127.0.0.13": W2})
        with open(self.b.neigh_path, "a") as f:
            f.write("127.0.0.67       0x1         0x2         %s     *        eth9\n" % W2)
        self.assertIsNone(config_path(self.script(W2, "127.0.0.67")))

    def test_incomplete_neighbour_entry_proves_nothing(self):
        with open(self.b.neigh_path, "a") as f:
            f.write("127.0.0.68       0x1         0x0         %s     *        lo\n" % W2)
        self.assertIsNone(config_path(self.script(W2, "127.0.0.68")))

    def test_pinned_uuid_is_required_and_never_told(self):
        for uuid in ("", "4c4c4544-0000-1000-8000-0000000000ff"):
            body = self.script(CP1, "127.0.0.11", uuid=uuid)
            self.assertIsNone(config_path(body), body)
            self.assertNotIn(CP1_UUID, body)
        self.assertIsNotNone(config_path(self.script(CP1, "127.0.0.11", uuid=CP1_UUID)))

    def test_repeated_refusals_make_one_event_with_a_count(self):
        for _ in range(30):
            self.script(W2, ATTACKER)
        claims = [m for m in self.audits("w-2") if "held, no token" in m]
        self.assertEqual(len(claims), 1, claims)
        log = self.b.logs()
        self.assertEqual(log.count("held, no token"), 1, log[-2000:])


class ClaimsProxy(Claims):
    dhcp = "proxy"

    def test_reservation_alone_proves_nothing(self):
        # proxy mode: the address is not bootd's to give, only the neighbour table decides
        self.b.neighbours({"127.0.0.13": W2})
        self.assertIsNone(config_path(self.script(W1, "127.0.0.12")))


class Routed(unittest.TestCase):
    """lan.routed: the boot server is not on the machines' L2, so it cannot check claims:
    an explicit choice, honoured for the whole subnet."""

    def test_routed_lab_honours_claims_from_the_subnet(self):
        b = Bootd(dhcp="proxy")
        try:
            b.write("lab.yaml", read(b.lab_path).replace("  dnsmasq: false\n",
                                                         "  dnsmasq: false\n  routed: true\n"))
            b.neighbours({})
            b.start()
            self.assertIsNotNone(config_path(b.ipxe(W2, source=ATTACKER)[2].decode()))
            self.assertIn("lan.routed", b.logs())
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
