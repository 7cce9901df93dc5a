"""make demo leaves nothing behind: not its lab dir (it held the cluster secrets), not
its network namespace."""
import os
import re
import subprocess
import unittest


class Demo(unittest.TestCase):
    def test_demo_cleans_up(self):
        p = subprocess.Popen(["/usr/bin/python3", "-m", "tests.e2e.demo"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, out[-4000:])
        self.assertIn("cp-1's own generated config", out)
        self.assertIn("Try next:", out)
        root = re.search(r"the namespace, (\S+) with the secrets", out).group(1)
        self.assertTrue(root.startswith("/tmp/") or root.startswith(os.environ.get("TMPDIR", "/tmp")))
        self.assertFalse(os.path.exists(root), root)
        netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        self.assertNotIn("bootd-e2e-%d" % p.pid, netns)


if __name__ == "__main__":
    unittest.main()
