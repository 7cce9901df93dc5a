"""make mutants' fast check, which make test runs: every curated mutant still applies to
the tree and names tests that exist (a mutant that no longer applies, or whose test was
renamed, would otherwise only show up in the slow make mutants run)."""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RUNNER = os.path.join(ROOT, "scripts", "mutants.py")

STALE = """# mutant: a patch whose code is gone
# unit: store/tokens
--- a/server/route_admin.c
+++ b/server/route_admin.c
@@ -1,2 +1,2 @@
-this line is not in route_admin.c
+nor is this one
 /* or this */
"""

MISSING_TESTS = """# mutant: names tests that do not exist
# unit: store/no_such_test
# integration: tests.integration.test_assets.Assets.test_no_such_thing
--- a/server/route_admin.c
+++ b/server/route_admin.c
@@ -1,2 +1,2 @@
-/* /api/v1/...: the admin API behind a bearer token. */
+/* /api/v1/...: the admin API behind a bearer token! */
 #include "server.h"
"""


def check(env=None):
    return subprocess.run([sys.executable, RUNNER, "--check"], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, **(env or {})), timeout=120)


class MutantsCheck(unittest.TestCase):
    def test_every_mutant_applies_and_names_tests_that_exist(self):
        r = check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"mutants: ([3-9]\d|\d{3,}) checked, 0 problems")

    def test_stale_mutants_and_missing_tests_are_named(self):
        with tempfile.TemporaryDirectory(prefix="bootd-mutants-check-") as d:
            for name, text in (("stale", STALE), ("missing", MISSING_TESTS)):
                with open(os.path.join(d, name + ".patch"), "w") as f:
                    f.write(text)
            r = check({"BOOTD_MUTANTS_DIR": d})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("stale: does not apply: error: patch failed: server/route_admin.c:1", r.stdout)
        self.assertIn("missing: unit filter store/no_such_test matches no test", r.stdout)
        self.assertIn("missing: tests.integration.test_assets.Assets.test_no_such_thing",
                      r.stdout)
        self.assertNotIn("missing: does not apply", r.stdout)
        self.assertIn("2 checked, 3 problems", r.stdout)


if __name__ == "__main__":
    unittest.main()
