"""The admin API, reloads, health and metrics."""
import os
import signal
import stat
import unittest

from tests.integration.harness import Bootd, line_of, read, wait_for


class AdminApi(unittest.TestCase):
    def setUp(self):
        self.b = Bootd().start()

    def tearDown(self):
        self.b.cleanup()

    def test_needs_the_token(self):
        status, h, body = self.b.request("GET", "/api/v1/machines")
        self.assertEqual(status, 401)
        self.assertIn("Bearer", h["www-authenticate"])
        self.assertEqual(self.b.api("GET", "/machines", token="wrong")[0], 401)
        self.assertEqual(self.b.api("GET", "/machines", token=self.b.token()[:-1])[0], 401)
        self.assertEqual(self.b.api("GET", "/machines", token="")[0], 401)
        status, h, _ = self.b.request("GET", "/api/v1/machines",
                                      headers={"Authorization": "Basic " + self.b.token()})
        self.assertEqual(status, 401)
        self.assertEqual(self.b.api("GET", "/machines")[0], 200)

    def test_day2_job_arguments_are_checked(self):
        for kind, arg in (("upgrade-kubernetes", ""), ("upgrade-kubernetes", "v"),
                          ("upgrade-talos", "v"), ("upgrade-talos", "1.14.0"),
                          ("upgrade-talos", "vlatest"), ("upgrade-kubernetes", "1.37.0;x"),
                          ("upgrade-kubernetes", "1" * 41), ("apply", "sometimes")):
            status, j = self.b.api("POST", "/cluster/day2", {"kind": kind, "arg": arg})
            self.assertEqual(status, 400, (kind, arg, j))
            self.assertIn("arg:", j["error"], (kind, arg))
        self.assertIsNone(self.b.api("GET", "/cluster/day2")[1], "no job started")

    def test_token_file_is_private(self):
        mode = os.stat(os.path.join(self.b.state, "admin.token")).st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o600)

    def test_machines_list_and_show(self):
        self.b.ipxe("52-54-00-00-00-01", source="127.0.0.11")
        self.b.ipxe("52-54-00-bb-00-01", source="127.0.0.90")
        status, j = self.b.api("GET", "/machines")
        self.assertEqual(status, 200)
        by_mac = {m["mac"]: m for m in j["machines"]}
        self.assertEqual(by_mac["52:54:00:00:00:01"]["state"], "booting")
        self.assertEqual(by_mac["52:54:00:00:00:01"]["name"], "cp-1")
        self.assertEqual(by_mac["52:54:00:00:00:02"]["state"], "assigned")
        self.assertIsNone(by_mac["52:54:00:00:00:02"]["last_seen"])
        self.assertEqual(by_mac["52:54:00:bb:00:01"]["state"], "discovered")
        self.assertEqual(len(j["machines"]), 4)
        status, m = self.b.api("GET", "/machines/cp-1")
        self.assertEqual(m["mac"], "52:54:00:00:00:01")
        self.assertEqual([e["kind"] for e in m["events"]], ["assigned", "booting"])
        self.assertEqual(self.b.api("GET", "/machines/52-54-00-00-00-01")[1]["name"], "cp-1")
        self.assertEqual(self.b.api("GET", "/machines/nobody")[0], 404)

    def test_adopt(self):
        self.b.ipxe("52-54-00-cc-00-01", source="127.0.0.91")
        status, m = self.b.api("POST", "/machines/adopt",
                               {"mac": "52:54:00:cc:00:01", "name": "w-9", "role": "worker",
                                "ip": "127.0.0.91"})
        self.assertEqual(status, 201, m)
        self.assertEqual((m["name"], m["role"], m["state"]), ("w-9", "worker", "assigned"))
        path = os.path.join(self.b.labdir, "machines.d", "w-9.yaml")
        text = read(path)
        self.assertIn("name: w-9\n", text)
        self.assertIn('mac: "52:54:00:cc:00:01"\n', text)
        self.assertNotIn("w-9", read(self.b.lab_path), "lab.yaml is never rewritten")
        # now it boots
        status, _, body = self.b.ipxe("52-54-00-cc-00-01", source="127.0.0.91")
        self.assertIn(b"/config/", body)
        # conflicts
        self.assertEqual(self.b.api("POST", "/machines/adopt",
                                    {"mac": "52:54:00:cc:00:01", "name": "w-10",
                                     "role": "worker"})[0], 409)
        self.b.ipxe("52-54-00-cc-00-02", source="127.0.0.92")
        self.assertEqual(self.b.api("POST", "/machines/adopt",
                                    {"mac": "52:54:00:cc:00:02", "name": "cp-1",
                                     "role": "worker"})[0], 409)
        self.assertEqual(self.b.api("POST", "/machines/adopt",
                                    {"mac": "52:54:00:cc:00:99", "name": "w-11",
                                     "role": "worker"})[0], 404)
        status, j = self.b.api("POST", "/machines/adopt",
                               {"mac": "52:54:00:cc:00:02", "name": "w-12", "role": "worker",
                                "ip": "127.0.0.11"})
        self.assertEqual(status, 422)
        self.assertIn("machines.d/w-12.yaml", j["error"])
        self.assertIn("127.0.0.11 is already used by cp-1", j["error"])
        self.assertFalse(os.path.exists(os.path.join(self.b.labdir, "machines.d", "w-12.yaml")))
        for bad in ({"mac": "xx", "name": "a", "role": "worker"},
                    {"mac": "52:54:00:cc:00:02", "name": "A!", "role": "worker"},
                    {"mac": "52:54:00:cc:00:02", "name": "a", "role": "boss"},
                    {"name": "a"}):
            self.assertEqual(self.b.api("POST", "/machines/adopt", bad)[0], 400, bad)
        status, _, _ = self.b.request("POST", "/api/v1/machines/adopt", body="{not json",
                                      headers={"Authorization": "Bearer " + self.b.token()})
        self.assertEqual(status, 400)

    def test_broken_reload_keeps_the_old_lab(self):
        good = read(self.b.lab_path)
        self.b.write("lab.yaml", good.replace('mac: "52:54:00:00:00:02"', 'mac: "52:54:00:00:00"'))
        status, j = self.b.api("POST", "/reload")
        self.assertEqual(status, 422)
        line = line_of(good, 'mac: "52:54:00:00:00:02"')
        self.assertIn("lab.yaml:%d:10: machines[1].mac" % line, j["error"])
        self.assertIn("previous lab", j["error"])
        # still serving the old lab
        status, _, body = self.b.ipxe("52-54-00-00-00-02", source="127.0.0.12")
        self.assertIn(b"/config/", body)
        status, st = self.b.api("GET", "/status")
        self.assertIn("machines[1].mac", st["reload_error"])
        self.assertIn(b"bootd_lab_reload_failing 1", self.b.get("/metrics")[2])
        # fixed and reloaded by SIGHUP
        self.b.write("lab.yaml", good.replace("name: w-2", "name: w-3"))
        self.b.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.b.api("GET", "/machines/w-3")[0], lambda s: s == 200)
        self.assertEqual(self.b.api("GET", "/machines/w-3")[0], 200)
        self.assertIsNone(self.b.api("GET", "/status")[1]["reload_error"])

    def test_healthz_and_metrics(self):
        self.assertEqual(self.b.get("/healthz")[:1], (200,))
        self.b.ipxe("52-54-00-00-00-01", source="127.0.0.11")
        self.b.get("/config/" + "0" * 32)
        self.b.get("/nope")
        want = b'bootd_http_requests_total{route="other",status="404"} 1'
        status, h, body = wait_for(lambda: self.b.get("/metrics"), lambda r: want in r[2])
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        for line in ('bootd_http_requests_total{route="ipxe",status="200"} 1',
                     'bootd_http_requests_total{route="config",status="403"} 1',
                     'bootd_http_requests_total{route="other",status="404"} 1',
                     'bootd_config_downloads_total{result="denied"} 1',
                     'bootd_machines{state="booting"} 1',
                     'bootd_machines{state="assigned"} 2',
                     'bootd_http_request_duration_seconds_count{route="ipxe"} 1',
                     'bootd_http_request_duration_seconds_bucket{route="ipxe",le="+Inf"} 1'):
            self.assertIn(line + "\n", text)
        self.assertRegex(text, r'bootd_http_response_bytes_total\{route="ipxe"\} [1-9]')


class Startup(unittest.TestCase):
    def test_refuses_a_readable_admin_token(self):
        b = Bootd()
        try:
            path = b.write("token", "x" * 32, mode=0o644)
            b.start("--admin-token-file", path, wait=False)
            self.assertEqual(b.proc.wait(10), 1)
            self.assertIn("run: chmod 600 " + path, b.logs())
        finally:
            b.cleanup()

    def test_refuses_a_broken_lab_with_its_position(self):
        b = Bootd(lab="cluster:\n  name: x\n  talos_version: 1.13\n")
        try:
            b.start(wait=False)
            self.assertEqual(b.proc.wait(10), 1)
            self.assertIn("lab.yaml:3:18: cluster.talos_version: \"1.13\" is not a version", b.logs())
        finally:
            b.cleanup()

    def test_port_in_use_is_named(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        b = Bootd()
        try:
            b.port = s.getsockname()[1]
            b.start(wait=False)
            self.assertEqual(b.proc.wait(10), 1)
            self.assertIn("cannot listen on 127.0.0.1:%d" % b.port, b.logs())
        finally:
            s.close()
            b.cleanup()

    def test_state_survives_a_restart(self):
        b = Bootd().start()
        try:
            b.ipxe("52-54-00-dd-00-01", source="127.0.0.95")
            b.stop(signal.SIGKILL)
            b.start()
            status, m = b.api("GET", "/machines/52:54:00:dd:00:01")
            self.assertEqual((status, m["state"]), (200, "discovered"))
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
