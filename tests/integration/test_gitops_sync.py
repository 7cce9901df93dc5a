"""bootd's GitOps loop against the kube-apiserver stand-in: staged server-side apply,
unchanged objects not re-sent, prune, health, bad input, an unreachable remote."""
import os
import re
import shutil
import time
import unittest

from tests.integration.gitops_env import (CRD_WIDGETS, GitopsLab, deployment, git, yaml_doc)
from tests.integration.git_http import GitHttp
from tests.integration.harness import read

APPS = "apps.example.com"


def patches(api):
    return [p for m, p in api.requests("PATCH")]


class StagedApply(unittest.TestCase):
    """One lab through its life: first sync, resync, change, prune."""

    @classmethod
    def setUpClass(cls):
        cls.lab = GitopsLab({
            "crds/widgets.yaml": CRD_WIDGETS,
            "crds/ns.yaml": yaml_doc("Namespace", "shop"),
            "apps/a-widget.yaml": yaml_doc("Widget", "w1", "shop", api="example.com/v1",
                                           extra="spec: {size: 3}\n"),
            "apps/b-deploy.yaml": deployment("web", "shop"),
            "apps/c-config.yaml": yaml_doc("ConfigMap", "settings", "shop",
                                           extra="data: {mode: fast}\n") + "---\n" +
            yaml_doc("ConfigMap", "extra", "shop", extra="data: {k: v}\n"),
            "apps/sub/gc.yaml": yaml_doc("IngressClass", "lan", api="networking.k8s.io/v1",
                                         extra="spec: {controller: example.com/lb}\n"),
        }, [("crds", ["crds"]), ("apps", ["apps"])], establish_delay=0.4).start()
        cls.first = cls.lab.wait_idle()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def test_1_first_sync_applies_everything_in_stages(self):
        s = self.first
        self.assertIsNone(s["last_error"], s)
        self.assertEqual(s["revision"], self.lab.head)
        self.assertEqual(s["applied_revision"], self.lab.head)
        self.assertEqual(s["last_sync"]["applied"], 7)
        api = self.lab.api
        w = api.get("example.com/v1", "widgets", "shop", "w1")
        self.assertEqual(w["spec"], {"size": 3})
        self.assertEqual(w["metadata"]["labels"]["bootd/managed"], "true")
        self.assertEqual(w["metadata"]["labels"]["bootd/group"], "apps")
        owners = [f["manager"] for f in w["metadata"]["managedFields"]]
        self.assertEqual(owners, ["bootd"])
        order = patches(api)
        idx = {p.rsplit("/", 1)[1].split("?")[0]: i for i, p in enumerate(order)}
        # group crds before group apps; in apps the Class kind before the rest
        self.assertLess(idx["widgets.example.com"], idx["w1"])
        self.assertLess(idx["shop"], idx["web"])
        self.assertLess(idx["lan"], idx["w1"])
        self.assertLess(idx["lan"], idx["web"])
        # the Widget was applied only once its CRD was established (0.4 s after it)
        self.assertTrue(all("fieldManager=bootd" in p and "force=true" in p for p in order))
        cm = api.get("v1", "configmaps", "kube-system", "bootd-gitops-inventory")
        self.assertIn("example.com/Widget/shop/w1 example.com/v1", cm["data"]["inventory"])
        self.assertEqual(cm["data"]["revision"], self.lab.head)

    def test_2_unchanged_objects_are_not_sent_again(self):
        self.lab.api.reset_requests()
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.assertEqual(s["last_sync"]["applied"], 0)
        self.assertEqual(s["last_sync"]["unchanged"], 7)
        self.assertEqual(patches(self.lab.api), [])

    def test_3_a_change_is_applied_and_what_left_git_is_pruned(self):
        api = self.lab.api
        # an object someone else took over is not bootd's to delete
        api.store.objects[("", "configmaps", "shop", "extra")]["metadata"]["labels"] = {}
        self.lab.commit({"apps/c-config.yaml": yaml_doc("ConfigMap", "settings", "shop",
                                                        extra="data: {mode: safe}\n"),
                         "apps/sub/keep.yaml": yaml_doc(
                             "ConfigMap", "kept", "shop",
                             extra="data: {a: b}\n")},
                        delete=["apps/b-deploy.yaml"])
        api.reset_requests()
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.assertEqual(s["revision"], self.lab.head)
        self.assertEqual(s["last_sync"]["applied"], 2)
        self.assertEqual(s["last_sync"]["pruned"], 1)
        self.assertEqual(api.get("v1", "configmaps", "shop", "settings")["data"],
                         {"mode": "safe"})
        self.assertIsNone(api.get("apps/v1", "deployments", "shop", "web"))
        self.assertIsNotNone(api.get("v1", "configmaps", "shop", "extra"))
        pruned = {p["object"]: p["result"] for p in s["last_sync"]["detail"]["pruned"]}
        self.assertEqual(pruned["apps/Deployment/shop/web"], "deleted")
        self.assertIn("left alone", pruned["/ConfigMap/shop/extra"])
        self.assertIn("DELETE", [m for m, p in api.requests()])
        r = self.lab.bootd.bootctl("gitops", "status")
        self.assertIn("revision          " + self.lab.head, r.stdout)
        self.assertRegex(r.stdout, r"last sync .*\(ok, \d+ ms\): 2 applied, \d+ unchanged, "
                                   r"1 pruned, 0 failed, 0 unhealthy")
        self.assertIn("apps/Deployment/shop/web  deleted", r.stdout)

    def test_4_metrics(self):
        status, _, body = self.lab.bootd.get("/metrics")
        text = body.decode()
        self.assertEqual(status, 200)
        self.assertRegex(text, r'bootd_gitops_syncs_total\{result="ok"\} [1-9]')
        self.assertRegex(text, r"bootd_gitops_objects_applied_total [1-9]")
        self.assertIn("bootd_gitops_last_sync_ok 1", text)


class Health(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = GitopsLab({
            "base/ns.yaml": yaml_doc("Namespace", "web"),
            "apps/deploy.yaml": deployment("site", "web"),
            "later/cm.yaml": yaml_doc("ConfigMap", "after", "web", extra="data: {a: b}\n"),
        }, [("base", ["base"]), ("apps", ["apps"]), ("later", ["later"])],
            auto_ready=False).start()
        cls.first = cls.lab.wait_idle()

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def test_unhealthy_stops_later_groups_then_recovers(self):
        s = self.first
        self.assertFalse(s["last_sync"]["ok"])
        self.assertIn("group apps: 0 failed, 1 not healthy within 3s", s["last_error"])
        unhealthy = s["last_sync"]["detail"]["unhealthy"]
        self.assertEqual(unhealthy[0]["object"], "Deployment web/site")
        self.assertEqual(unhealthy[0]["source"], "apps/deploy.yaml:1")
        self.assertIn("InProgress: updated: 0/2", unhealthy[0]["status"])
        self.assertIsNone(s["applied_revision"])
        self.assertIsNone(self.lab.api.get("v1", "configmaps", "web", "after"))
        r = self.lab.bootd.bootctl("gitops", "status")
        self.assertIn("UNHEALTHY", r.stdout)
        self.assertIn("Deployment web/site", r.stdout)
        # its controller catches up
        self.lab.api.set_status("apps/v1", "deployments", "web", "site", {
            "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
            "availableReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]})
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.assertEqual(s["applied_revision"], self.lab.head)
        self.assertIsNotNone(self.lab.api.get("v1", "configmaps", "web", "after"))
        # a rollout that cannot finish is Failed
        self.lab.api.set_status("apps/v1", "deployments", "web", "site", {
            "observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})
        code, s = self.lab.sync()
        self.assertEqual(code, 1)
        self.assertLess(s["last_sync"]["duration_ms"], 3000,
                        "a Failed object is not waited for until health_timeout (3s)")
        self.assertIn("Failed: progress deadline exceeded",
                      s["last_sync"]["detail"]["unhealthy"][0]["status"])


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = GitopsLab({
            "m/ns.yaml": yaml_doc("Namespace", "bad"),
            "m/cm.yaml": yaml_doc("ConfigMap", "one", "bad", extra="data: {v: '1'}\n"),
        }, [("main", ["m"])]).start()
        cls.good = cls.lab.wait_idle()["revision"]

    @classmethod
    def tearDownClass(cls):
        cls.lab.cleanup()

    def assert_nothing_applied(self, s, needle):
        self.assertEqual(s["last_sync"]["applied"], 0)
        self.assertIn(needle, s["last_error"])
        self.assertEqual(s["applied_revision"], self.good)
        self.assertEqual(s["revision"], self.lab.head)
        self.assertEqual(patches(self.lab.api), [])
        self.assertEqual(self.lab.api.get("v1", "configmaps", "bad", "one")["data"], {"v": "1"})

    def test_broken_yaml_names_file_and_line_and_keeps_the_last_revision(self):
        self.lab.commit({"m/cm.yaml": yaml_doc("ConfigMap", "one", "bad",
                                               extra="data: {v: '2'}\n"),
                         "m/z.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
                                     "data:\n  a: [1, 2\n"})
        self.lab.api.reset_requests()
        code, s = self.lab.sync()
        self.assertEqual(code, 1)
        self.assert_nothing_applied(s, "m/z.yaml:7:")
        self.assertIn("nothing applied", s["last_error"])
        self.lab.commit(delete=["m/z.yaml"])

    def test_object_without_name_is_refused_before_any_apply(self):
        self.lab.commit({"m/cm.yaml": yaml_doc("ConfigMap", "one", "bad",
                                               extra="data: {v: '3'}\n"),
                         "m/noname.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {}\n"})
        self.lab.api.reset_requests()
        code, s = self.lab.sync()
        self.assertEqual(code, 1)
        self.assert_nothing_applied(s, "m/noname.yaml:1: object of kind Secret has no "
                                       "metadata.name")
        self.lab.commit(delete=["m/noname.yaml"],
                        files={"m/cm.yaml": yaml_doc("ConfigMap", "one", "bad",
                                                     extra="data: {v: '1'}\n")})

    def test_unknown_kind_fails_that_object_only(self):
        self.lab.commit({"m/gadget.yaml": yaml_doc("Gadget", "g", "bad", api="example.com/v1"),
                         "m/pod.yaml": yaml_doc("Podd", "p", "bad"),
                         "m/cm2.yaml": yaml_doc("ConfigMap", "two", "bad")})
        code, s = self.lab.sync()
        self.assertEqual(code, 1)
        self.assertEqual(s["last_sync"]["failed"], 2)
        self.assertIsNotNone(self.lab.api.get("v1", "configmaps", "bad", "two"))
        failed = {f["object"]: f["error"] for f in s["last_sync"]["detail"]["failed"]}
        self.assertIn("apiVersion example.com/v1 is not served by the API server "
                      "(GET /apis/example.com/v1: 404)", failed["Gadget bad/g"])
        self.assertIn("kind Podd is not served in v1 (discovery lists: ", failed["Podd bad/p"])
        self.assertIn("ConfigMap", failed["Podd bad/p"])
        self.lab.commit(delete=["m/gadget.yaml", "m/pod.yaml", "m/cm2.yaml"])
        code, s = self.lab.sync()
        self.assertEqual(code, 0, s)
        self.good = s["revision"]


class Remote(unittest.TestCase):
    def setUp(self):
        self.lab = GitopsLab({"m/cm.yaml": yaml_doc("ConfigMap", "c", "default")},
                             [("main", ["m"])]).start()
        self.rev = self.lab.wait_idle()["revision"]

    def tearDown(self):
        self.lab.cleanup()

    def test_unreachable_remote_keeps_the_last_revision(self):
        text = read(self.lab.bootd.lab_path).replace(
            "repo: file://" + self.lab.repo, "repo: file://%s/gone" % self.lab.root)
        self.lab.bootd.write("lab.yaml", text)
        code, j = self.lab.bootd.api("POST", "/reload")
        self.assertEqual(code, 200, j)
        s = self.lab.wait_idle()
        deadline = time.monotonic() + 10
        while "keeping revision" not in (s["last_error"] or "") and time.monotonic() < deadline:
            time.sleep(0.05)
            s = self.lab.status()
        self.assertIn("git: fetching file://%s/gone" % self.lab.root, s["last_error"])
        self.assertIn("keeping revision %s" % self.rev[:12], s["last_error"])
        self.assertEqual(s["revision"], self.rev)
        self.assertEqual(s["consecutive_failures"] >= 1, True)
        self.assertIsNotNone(self.lab.api.get("v1", "configmaps", "default", "c"))

    def test_ref_can_be_a_tag_or_a_commit(self):
        git(self.lab.repo, "tag", "v1")
        first = self.lab.head
        self.lab.commit({"m/cm2.yaml": yaml_doc("ConfigMap", "c2", "default")})
        for ref, want in (("v1", first), (first[:10], first), ("main", self.lab.head)):
            text = re.sub(r"  ref: .*\n", "", read(self.lab.bootd.lab_path))
            self.lab.bootd.write("lab.yaml", text.replace("  interval:", "  ref: %s\n  interval:"
                                                          % ref))
            self.assertEqual(self.lab.bootd.api("POST", "/reload")[0], 200)
            code, s = self.lab.sync()
            self.assertEqual((code, s["revision"]), (0, want), s)
            head = git(os.path.join(self.lab.bootd.state, "gitops"), "rev-parse", "HEAD")
            self.assertEqual(head, want)
        self.assertIsNotNone(self.lab.api.get("v1", "configmaps", "default", "c2"))


class StateLoss(unittest.TestCase):
    def test_a_fresh_state_dir_prunes_from_the_cluster_inventory(self):
        lab = GitopsLab({"m/a.yaml": yaml_doc("ConfigMap", "a", "default"),
                         "m/b.yaml": yaml_doc("ConfigMap", "b", "default")},
                        [("main", ["m"])]).start()
        try:
            self.assertTrue(lab.wait_idle()["last_sync"]["ok"])
            lab.bootd.stop()
            for name in os.listdir(lab.bootd.state):
                if name.startswith("state.db") or name == "gitops":
                    path = os.path.join(lab.bootd.state, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
            lab.commit(delete=["m/b.yaml"])
            lab.bootd.start()
            s = lab.wait_idle()
            self.assertTrue(s["last_sync"]["ok"], s)
            self.assertEqual(s["last_sync"]["pruned"], 1)
            self.assertIsNone(lab.api.get("v1", "configmaps", "default", "b"))
            self.assertIsNotNone(lab.api.get("v1", "configmaps", "default", "a"))
        finally:
            lab.cleanup()


class Token(unittest.TestCase):
    def test_https_style_token_is_the_password(self):
        lab = GitopsLab({"m/cm.yaml": yaml_doc("ConfigMap", "c", "default")}, [("main", ["m"])])
        server = GitHttp(os.path.dirname(lab.repo), "s3cret-token")
        try:
            token = lab.bootd.write("git.token", "wrong-token\n", mode=0o600)
            text = read(lab.bootd.lab_path).replace(
                "repo: file://" + lab.repo,
                "repo: %s\n  token_file: git.token" % server.url("repo"))
            lab.bootd.write("lab.yaml", text)
            lab.start()
            s = lab.wait_idle()
            self.assertIn("the server refused the credentials from %s" % token, s["last_error"])
            self.assertGreaterEqual(server.denied, 2)
            lab.bootd.write("git.token", "s3cret-token\n", mode=0o600)
            code, s = lab.sync()
            self.assertEqual(code, 0, s)
            self.assertEqual(s["revision"], lab.head)
            self.assertIsNotNone(lab.api.get("v1", "configmaps", "default", "c"))
            os.chmod(token, 0o644)
            code, s = lab.sync()
            self.assertIn("gitops.token_file: %s: readable by group or others" % token,
                          s["last_error"])
        finally:
            server.stop()
            lab.cleanup()


class Target(unittest.TestCase):
    def setUp(self):
        self.lab = GitopsLab({"m/cm.yaml": yaml_doc("ConfigMap", "c", "default")},
                             [("main", ["m"])], write_kubeconfig=False).start()

    def tearDown(self):
        self.lab.cleanup()

    def test_waits_for_a_kubeconfig_then_syncs_on_the_webhook(self):
        s = self.lab.status()
        self.assertEqual(s["state"], "waiting")
        self.assertIn("a kubeconfig at %s" % self.lab.kubeconfig, s["waiting_for"])
        self.assertEqual(self.lab.bootd.api("POST", "/gitops/sync", token="wrong")[0], 401)
        self.lab.write_kubeconfig()
        os.chmod(self.lab.kubeconfig, 0o644)
        code, s = self.lab.bootd.api("POST", "/gitops/sync")
        self.assertEqual(code, 202)
        self.assertIn("run: chmod 600", s["waiting_for"])
        os.chmod(self.lab.kubeconfig, 0o600)
        self.assertEqual(self.lab.bootd.api("POST", "/gitops/sync")[0], 202)
        s = self.lab.wait_idle()
        self.assertTrue(s["last_sync"]["ok"], s)
        self.assertEqual(s["server"], self.lab.api.url)

    def test_wrong_ca_is_a_clear_tls_error(self):
        self.lab.write_kubeconfig(ca="other-ca.crt")
        self.assertEqual(self.lab.bootd.api("POST", "/gitops/sync")[0], 202)
        s = self.lab.wait_idle()
        self.assertFalse(s["last_sync"]["ok"])
        self.assertRegex(s["last_sync"]["detail"]["failed"][0]["error"],
                         r"(?i)certificate|SSL")


if __name__ == "__main__":
    unittest.main()
