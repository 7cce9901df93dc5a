"""make lint's layering check on a small tree made here: it passes a tree that follows
docs/architecture.md and names every include that points sideways, upwards or into
another folder's internal.h."""
import os
import subprocess
import sys
import tempfile
import unittest

LINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lint.py")


def tree(files):
    root = tempfile.mkdtemp(prefix="bootd-lint-")
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def lint(root):
    env = dict(os.environ, BOOTD_LINT_ROOT=root, BUILD="no-build")
    return subprocess.run([sys.executable, LINT, "--no-cppcheck"], env=env, capture_output=True,
                          text=True, check=False)


GOOD = {
    "lib/bd.h": "",
    "lab/lab.h": '#include "../lib/bd.h"\n',
    "talos/internal.h": '#include "talos.h"\n',
    "talos/talos.h": '#include "../lab/lab.h"\n',
    "talos/secrets.c": '#include "internal.h"\n',
    "cluster/cluster.h": '#include "../talos/talos.h"\n',
}


class LayeringTest(unittest.TestCase):
    def test_a_tree_that_follows_the_rules_passes(self):
        r = lint(tree(GOOD))
        self.assertEqual(r.returncode, 0, r.stdout)

    def refused(self, name, text):
        """lint's output on GOOD plus one file, which it must refuse."""
        r = lint(tree(dict(GOOD, **{name: text})))
        self.assertEqual(r.returncode, 1)
        return r.stdout

    def test_an_unused_name_in_a_test_is_named(self):
        out = self.refused("tests/test_x.py", "import os\n\n\ndef test():\n    r = 1\n")
        self.assertIn("tests/test_x.py:1:1: 'os' imported but unused", out)
        self.assertIn("tests/test_x.py:5:5: local variable 'r' is assigned to but never used",
                      out)

    def test_a_sideways_include_is_named(self):
        out = self.refused("boot/ipxe.c", '#include "boot.h"\n#include "../talos/talos.h"\n')
        self.assertIn('boot/ipxe.c:2: include "../talos/talos.h": boot/ may not use talos/', out)

    def test_an_upward_include_is_named(self):
        out = self.refused("lab/check.c", '#include "../cluster/cluster.h"\n')
        self.assertIn("lab/ may not use cluster/", out)

    def test_another_folders_internal_header_is_named(self):
        out = self.refused("cluster/reconcile.c", '#include "../talos/internal.h"\n')
        self.assertIn('cluster/reconcile.c:1: include "../talos/internal.h": only talos/talos.h '
                      'is public', out)


if __name__ == "__main__":
    unittest.main()
