"""make demo: the whole path (VM → config → bootstrap → Kubernetes → GitOps synced) with
its timeline and what to try next, and nothing left behind: not its lab dir (it held the
cluster secrets), not its network namespaces, not a process."""
import os
import re
import subprocess
import unittest


class Demo(unittest.TestCase):
    def test_demo_shows_the_whole_path_and_cleans_up(self):
        p = subprocess.Popen(["/usr/bin/python3", "-m", "tests.e2e.demo"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, out[-4000:])
        timeline = out.split("timeline (seconds since bootd started):")[1].split("\n\n")[0]
        phases = [l.strip().rsplit(None, 1)[0] for l in timeline.strip().splitlines()]
        self.assertEqual(phases, ["VMs created and started", "every VM booted to its config",
                                  "etcd bootstrapped", "Kubernetes ready, all joined",
                                  "GitOps synced"], out)
        self.assertRegex(out, r"cp-1 has its config \(sha256 [0-9a-f]{12}…\)")
        self.assertRegex(out, r"phase\s+ready .*cilium: 2/2 pods ready")
        # every machine's Talos API answers (the worker's too: its twin is reachable)
        self.assertRegex(out, r"w-1\s+worker\s+joined\s+Ready\s+v1\.13\.9 \(metal\)")
        self.assertIn("Try next:", out)
        root = re.search(r"the namespaces, (\S+) with the secrets", out).group(1)
        self.assertTrue(root.startswith(os.environ.get("TMPDIR", "/tmp")), root)
        self.assertFalse(os.path.exists(root), root)
        netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        self.assertEqual([n for n in netns if n.startswith("bootd-e2e-%d" % p.pid)], [])
        left = subprocess.run(["pgrep", "-f", root], capture_output=True, text=True).stdout
        self.assertEqual(left, "", "processes still running from the demo's dir")


if __name__ == "__main__":
    unittest.main()
