"""Every admin route refuses every request without the exact admin token.

Planted bugs this catches (each checked by planting it, watching a test here fail, and
reverting; tests/mutants/ keeps them as mutants):
- the auth check skipped for /api/v1/cluster/* (kubeconfig, etcd snapshot, bootstrap);
- a token accepted when it only starts with the admin token (a prefix compare);
- "Basic <token>" accepted as if it were a bearer token;
- the scheme compared case-sensitively ("bearer <token>" refused: RFC 9110 11.1 says the
  auth-scheme is case-insensitive, and some clients send it in lower case).
"""
import unittest

from tests.integration.harness import Bootd

# (method, path, body): one of each kind of admin route, including those that leak the
# cluster's secrets (kubeconfig, etcd snapshot) or change it (bootstrap, reinstall).
ROUTES = [
    ("GET", "/status", None),
    ("POST", "/reload", None),
    ("POST", "/images/refresh", None),
    ("GET", "/machines", None),
    ("GET", "/machines/cp-1", None),
    ("GET", "/machines/cp-1/events", None),
    ("GET", "/machines/cp-1/logs", None),
    ("POST", "/machines/cp-1/reinstall", None),
    ("POST", "/machines/adopt", '{"mac": "52:54:00:aa:00:01", "name": "x", "role": "worker"}'),
    ("POST", "/dhcp/events", '{"action": "add", "mac": "52:54:00:aa:00:02", "ip": "127.0.0.99"}'),
    ("GET", "/events", None),
    ("GET", "/gitops", None),
    ("GET", "/gitops/status", None),
    ("POST", "/gitops/sync", None),
    ("GET", "/cluster/kubeconfig", None),
    ("GET", "/cluster/etcd-snapshot", None),
    ("POST", "/cluster/bootstrap", None),
    ("GET", "/no-such-route", None),
]


class AdminAuth(unittest.TestCase):
    def setUp(self):
        self.b = Bootd().start()
        self.token = self.b.token()

    def tearDown(self):
        self.b.cleanup()

    def refusals(self):
        t = self.token
        return {
            "no header": {},
            "wrong token": {"Authorization": "Bearer " + "0" * len(t)},
            "token plus a suffix": {"Authorization": "Bearer " + t + "x"},
            "token cut short": {"Authorization": "Bearer " + t[:-1]},
            "empty bearer": {"Authorization": "Bearer "},
            "Basic": {"Authorization": "Basic " + t},
            "no scheme": {"Authorization": t},
            "no space after the scheme": {"Authorization": "Bearer" + t},
            "bearer in lower case, wrong token": {"Authorization": "bearer " + "0" * len(t)},
        }

    def test_every_route_refuses_without_the_exact_token(self):
        for method, path, body in ROUTES:
            for what, headers in self.refusals().items():
                with self.subTest(route="%s %s" % (method, path), auth=what):
                    h = dict(headers)
                    if body:
                        h["Content-Type"] = "application/json"
                    status, hdrs, data = self.b.request(method, "/api/v1" + path, headers=h,
                                                        body=body)
                    self.assertEqual(status, 401, data)
                    self.assertTrue(hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs)
                    self.assertNotIn(b"apiVersion", data)

    def test_nothing_happened_behind_the_refusals(self):
        self.test_every_route_refuses_without_the_exact_token()
        status, m = self.b.api("GET", "/machines/cp-1")
        self.assertEqual(status, 200)
        self.assertFalse(m["reinstall"], "a refused reinstall changed nothing")
        status, j = self.b.api("GET", "/machines")
        macs = {x["mac"] for x in j["machines"]}
        self.assertNotIn("52:54:00:aa:00:02", macs, "a refused DHCP event recorded nothing")

    def test_the_exact_token_opens_every_route(self):
        # so that the list above names routes that exist and answer behind the check
        for method, path, body in ROUTES:
            if path == "/no-such-route":
                continue
            with self.subTest(route="%s %s" % (method, path)):
                h = {"Authorization": "Bearer " + self.token}
                if body:
                    h["Content-Type"] = "application/json"
                status, _, data = self.b.request(method, "/api/v1" + path, headers=h, body=body)
                self.assertNotEqual(status, 401, data)
                self.assertNotIn(b"no such API route", data)

    def test_the_scheme_is_case_insensitive(self):
        for scheme in ("bearer", "BEARER", "bEaReR", "Bearer "):
            with self.subTest(scheme=scheme):
                h = {"Authorization": scheme + " " + self.token}
                status, _, data = self.b.request("GET", "/api/v1/status", headers=h)
                self.assertEqual(status, 200, data)
                status, _, data = self.b.request("POST", "/api/v1/reload", headers=h)
                self.assertEqual(status, 200, data)


if __name__ == "__main__":
    unittest.main()
