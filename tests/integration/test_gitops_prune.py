"""Prune deletes only what is bootd's: objects removed from git that still carry the
bootd/managed=true label, unless they opt out with the bootd/prune: disabled annotation.

Planted bugs this catches: the bootd/prune: disabled annotation ignored (the annotation
test dropped from ours() in gitops/prune.c), prune by label ignored (an object another
owner relabelled deleted), and prune that deletes nothing at all.
"""
import unittest

from tests.integration.gitops_env import GitopsLab, yaml_doc


def configmap(name, annotations=None):
    extra = "data: {k: v}\n"
    doc = yaml_doc("ConfigMap", name, "default", extra=extra)
    if annotations:
        doc = doc.replace("metadata:\n", "metadata:\n  annotations:\n" + "".join(
            "    %s: %s\n" % kv for kv in annotations.items()), 1)
    return doc


class PruneOptOut(unittest.TestCase):
    def test_only_bootds_objects_without_the_opt_out_are_deleted(self):
        lab = GitopsLab({
            "m/gone.yaml": configmap("gone"),
            "m/pinned.yaml": configmap("pinned", {"bootd/prune": "disabled"}),
            "m/enabled.yaml": configmap("enabled", {"bootd/prune": "enabled"}),
            "m/taken.yaml": configmap("taken"),
            "m/stays.yaml": configmap("stays"),
        }, [("main", ["m"])]).start()
        try:
            s = lab.wait_idle()
            self.assertTrue(s["last_sync"]["ok"], s)
            api = lab.api
            pinned = api.get("v1", "configmaps", "default", "pinned")
            self.assertEqual(pinned["metadata"]["annotations"]["bootd/prune"], "disabled")
            # someone else took "taken" over: no longer labelled bootd/managed=true
            api.store.objects[("", "configmaps", "default", "taken")]["metadata"]["labels"] = {}
            lab.commit(delete=["m/gone.yaml", "m/pinned.yaml", "m/enabled.yaml", "m/taken.yaml"])
            code, s = lab.sync()
            self.assertEqual(code, 0, s)
            self.assertEqual(s["last_sync"]["pruned"], 2, s)
            self.assertIsNone(api.get("v1", "configmaps", "default", "gone"))
            self.assertIsNone(api.get("v1", "configmaps", "default", "enabled"),
                              "only the value disabled opts out")
            self.assertIsNotNone(api.get("v1", "configmaps", "default", "pinned"))
            self.assertIsNotNone(api.get("v1", "configmaps", "default", "taken"))
            self.assertIsNotNone(api.get("v1", "configmaps", "default", "stays"))
            pruned = {p["object"]: p["result"] for p in s["last_sync"]["detail"]["pruned"]}
            self.assertEqual(pruned["/ConfigMap/default/gone"], "deleted")
            self.assertIn("left alone", pruned["/ConfigMap/default/pinned"])
            self.assertIn("left alone", pruned["/ConfigMap/default/taken"])
            deletes = [p for m, p in api.requests() if m == "DELETE"]
            self.assertFalse(any("/pinned" in p or "/taken" in p for p in deletes), deletes)
            # forgotten, not retried: the next sync does not look at them again
            code, s = lab.sync()
            self.assertEqual((code, s["last_sync"]["pruned"]), (0, 0), s)
            self.assertNotIn("pruned", s["last_sync"].get("detail") or {})
        finally:
            lab.cleanup()


if __name__ == "__main__":
    unittest.main()
