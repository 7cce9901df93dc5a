"""Self-heal against the kube-apiserver stand-in, with the real kubectl as a second
client: a field edited in the cluster is set back, a deleted object comes back, an
object annotated bootd/self-heal: disabled is left alone; each correction is an event
and counts in bootd_gitops_drift_corrected_total. Also: a lab reload syncs only when the
gitops section changed."""
import re
import subprocess
import time
import unittest

from tests.integration.gitops_env import GitopsLab, deployment, yaml_doc
from tests.integration.kubetools import kubectl


class SelfHeal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = GitopsLab({
            "apps/ns.yaml": yaml_doc("Namespace", "shop"),
            "apps/web.yaml": deployment("web", "shop"),
            "apps/cm.yaml": yaml_doc("ConfigMap", "settings", "shop",
                                     extra="data: {mode: fast, size: \"3\"}\n"),
            "apps/free.yaml": yaml_doc("ConfigMap", "free", "shop", extra="data: {a: b}\n"),
            # the API server keeps these as "1", "1536Mi", "500m": not drift
            "apps/sized.yaml": deployment("sized", "shop").replace(
                'image: "registry.example/app:1"}',
                'image: "registry.example/app:1", resources: {limits: {cpu: 1000m, '
                'memory: 1.5Gi}, requests: {cpu: 0.5}}}'),
        }, [("apps", ["apps"])]).start()
        s = cls.lab.wait_idle()
        assert s["last_error"] is None, s

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def kubectl(self, *args):
        r = subprocess.run([kubectl(), "--kubeconfig", self.lab.kubeconfig, *args],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def metric(self):
        _, _, body = self.lab.bootd.get("/metrics")
        m = re.search(r"^bootd_gitops_drift_corrected_total (\d+)$", body.decode(), re.M)
        self.assertIsNotNone(m, body.decode())
        return int(m.group(1))

    def test_1_nothing_drifted_nothing_sent(self):
        before = self.metric()
        self.lab.api.reset_requests()
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.assertEqual(s["last_sync"]["drifted"], 0)
        self.assertEqual(self.lab.api.requests("PATCH"), [])
        self.assertEqual(self.metric(), before)
        live = self.lab.api.get("apps/v1", "deployments", "shop", "sized")
        res = live["spec"]["template"]["spec"]["containers"][0]["resources"]
        self.assertEqual(res, {"limits": {"cpu": "1", "memory": "1536Mi"},
                               "requests": {"cpu": "500m"}}, "stored canonical, as the API server does")

    def test_2_edited_and_deleted_objects_are_set_back(self):
        before = self.metric()
        self.kubectl("-n", "shop", "patch", "deployment", "web", "--type", "merge",
                     "-p", '{"spec":{"replicas":5}}')
        self.kubectl("-n", "shop", "patch", "configmap", "settings", "--type", "merge",
                     "-p", '{"data":{"mode":"slow","extra":"x"}}')
        self.kubectl("-n", "shop", "delete", "configmap", "free")
        self.assertEqual(self.lab.api.get("apps/v1", "deployments", "shop", "web")["spec"]
                         ["replicas"], 5)
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.assertEqual(s["last_sync"]["drifted"], 3, s)
        api = self.lab.api
        self.assertEqual(api.get("apps/v1", "deployments", "shop", "web")["spec"]["replicas"], 2)
        cm = api.get("v1", "configmaps", "shop", "settings")
        self.assertEqual(cm["data"]["mode"], "fast")
        self.assertIsNotNone(api.get("v1", "configmaps", "shop", "free"))
        drifted = {d["object"]: d["drift"] for d in s["last_sync"]["detail"]["drifted"]}
        # kubectl patch made the field kubectl-patch's: no longer bootd's
        self.assertEqual(drifted["Deployment shop/web"],
                         "spec.replicas is no longer managed by bootd")
        self.assertRegex(drifted["ConfigMap shop/free"], r"deleted")
        self.assertEqual(self.metric(), before + 3)
        out = self.lab.bootd.bootctl("gitops", "status").stdout
        self.assertRegex(out, r"0 unhealthy, 3 drifted")
        self.assertRegex(out, r"Deployment shop/web\s+apps/web\.yaml:1\s+spec\.replicas is no "
                              r"longer managed by bootd")
        events = [e for e in self.lab.bootd.events() if e["kind"] == "drift"]
        self.assertTrue(any("Deployment shop/web" in e["message"] for e in events), events)
        # and the next check finds nothing left to correct
        code, s = self.lab.sync()
        self.assertEqual(s["last_sync"]["drifted"], 0, s)

    def test_3_annotated_objects_are_left_alone(self):
        self.kubectl("-n", "shop", "annotate", "configmap", "settings",
                     "bootd/self-heal=disabled")
        self.kubectl("-n", "shop", "patch", "configmap", "settings", "--type", "merge",
                     "-p", '{"data":{"mode":"manual"}}')
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.assertEqual(s["last_sync"]["drifted"], 0, s)
        cm = self.lab.api.get("v1", "configmaps", "shop", "settings")
        self.assertEqual(cm["data"]["mode"], "manual")
        self.kubectl("-n", "shop", "annotate", "configmap", "settings", "bootd/self-heal-")
        code, s = self.lab.sync()
        self.assertEqual(s["last_sync"]["drifted"], 1, s)
        self.assertEqual(self.lab.api.get("v1", "configmaps", "shop", "settings")["data"]
                         ["mode"], "fast")

    def test_4_a_field_taken_over_by_another_manager_is_drift(self):
        # kubectl apply --server-side --force-conflicts takes the field over
        r = subprocess.run([kubectl(), "--kubeconfig", self.lab.kubeconfig, "apply",
                            "--server-side", "--force-conflicts", "--field-manager", "ops",
                            "-f", "-"],
                           input=yaml_doc("ConfigMap", "settings", "shop",
                                          extra="data: {size: \"4\"}\n"),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        code, s = self.lab.sync()
        self.assertEqual(s["last_sync"]["drifted"], 1, s)
        self.assertEqual(self.lab.api.get("v1", "configmaps", "shop", "settings")["data"]
                         ["size"], "3")


class SelfHealOnInterval(unittest.TestCase):
    def test_drift_is_corrected_without_being_asked(self):
        lab = GitopsLab({"apps/cm.yaml": yaml_doc("ConfigMap", "c", "default",
                                                  extra="data: {a: b}\n")},
                        [("apps", ["apps"])])
        try:
            with open(lab.bootd.lab_path) as f:
                text = f.read()
            lab.bootd.write("lab.yaml", text.replace("interval: 1h", "interval: 1s"))
            lab.start()
            lab.wait_idle()
            lab.api.store.delete(("", "configmaps", "default", "c"))
            deadline = time.monotonic() + 20
            while lab.api.get("v1", "configmaps", "default", "c") is None:
                self.assertLess(time.monotonic(), deadline, lab.bootd.logs())
                time.sleep(0.1)
        finally:
            lab.cleanup()


class SyncOnlyOnChange(unittest.TestCase):
    def test_reload_without_gitops_change_does_not_sync(self):
        lab = GitopsLab({"apps/cm.yaml": yaml_doc("ConfigMap", "c", "default",
                                                  extra="data: {a: b}\n")},
                        [("apps", ["apps"])])
        try:
            lab.start()
            lab.wait_idle()
            with open(lab.bootd.lab_path) as f:
                text = f.read()
            first = lab.status()["last_sync"]["started"]
            # a change outside gitops: (a comment and the log level are enough)
            lab.bootd.write("lab.yaml", text + "\n# touched\n")
            r = lab.bootd.bootctl("reload")
            self.assertEqual(r.returncode, 0, r.stderr)
            time.sleep(1.0)
            self.assertEqual(lab.status()["last_sync"]["started"], first)
            lab.bootd.write("lab.yaml", text.replace("health_timeout: 3s",
                                                     "health_timeout: 4s"))
            r = lab.bootd.bootctl("reload")
            self.assertEqual(r.returncode, 0, r.stderr)
            deadline = time.monotonic() + 20
            while lab.status()["last_sync"]["started"] == first:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        finally:
            lab.cleanup()


if __name__ == "__main__":
    unittest.main()
