#!/usr/bin/env python3
"""make mutants: plants each curated bug of tests/mutants/ and checks that the tests
named for it fail.

A mutant is one file tests/mutants/NAME.patch: a few header lines, then a unified diff
of one or two lines in code where a bug would leak a config, lose data, break a boot or
delete a user's object:

    # mutant: what the bug does, in one line
    # unit: <Criterion filter, e.g. store/tokens>              (any number of these)
    # integration: <unittest id, e.g. tests.integration.test_assets.Assets.test_ranges>
    --- a/server/route_assets.c
    +++ b/server/route_assets.c
    @@ ...

The working tree is never touched: the tree (tracked and new files, plus the build
directory so that builds are incremental) is copied to a scratch directory once; each
mutant is applied there, built, its tests run, and reverted. A mutant is killed when one
of its tests fails or hangs (timeout). First the named tests run on the unmutated copy:
they must pass, or a kill would mean nothing.

    scripts/mutants.py                 every mutant
    scripts/mutants.py NAME...         some of them (file names without .patch)
    scripts/mutants.py --list          what there is
    scripts/mutants.py --check         fast: every patch applies to the tree and names
                                       tests that exist (make test runs this)
    scripts/mutants.py --new NAME FILE OLD NEW
                                       writes tests/mutants/NAME.patch replacing the
                                       one occurrence of OLD in FILE by NEW (edit its
                                       header afterwards)

Exits 1 naming every survivor, every mutant that no longer applies or builds, and any
named test that fails without a mutant. Not part of make test: it builds once per mutant.
"""
import difflib
import fnmatch
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTANTS = os.environ.get("BOOTD_MUTANTS_DIR") or os.path.join(ROOT, "tests", "mutants")
SAN = os.environ.get("SAN", "0")  # make mutants SAN=1: sanitizer builds (slower)
BUILD = "build/san" if SAN == "1" else "build/release"
TEST_TIMEOUT = int(os.environ.get("MUTANT_TEST_TIMEOUT", "600"))
# the Makefile's interpreter: the Debian one, which has the packages the tests import
PYTHON = os.environ.get("PYTHON") or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                                      else sys.executable)


class Mutant:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-len(".patch")]
        self.what, self.unit, self.integration = "", [], []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    break
                key, _, value = line[1:].strip().partition(":")
                value = value.strip()
                if key == "mutant":
                    self.what = value
                elif key == "unit":
                    self.unit.append(value)
                elif key == "integration":
                    self.integration.append(value)
        if not self.unit and not self.integration:
            raise SystemExit("%s: names no test (# unit: or # integration:)" % path)


def load(names):
    paths = sorted(glob.glob(os.path.join(MUTANTS, "*.patch")))
    mutants = [Mutant(p) for p in paths]
    if names:
        by_name = {m.name: m for m in mutants}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SystemExit("no such mutant: " + ", ".join(missing))
        mutants = [by_name[n] for n in names]
    return mutants


def run(cmd, cwd, timeout=None, env=None):
    """(returncode, output); a timeout counts as a failure (returncode None)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout,
                           errors="replace")
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out + "\n(timed out after %d s)" % timeout


def copy_tree(scratch):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):
            continue  # deleted in the working tree
        dst = os.path.join(scratch, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    build = os.path.join(ROOT, BUILD)
    if os.path.isdir(build):  # timestamps kept: only what a mutant touches recompiles
        shutil.copytree(build, os.path.join(scratch, BUILD), symlinks=True)


def build(scratch):
    return run(["nice", "-n", "10", "make", "-j2", "--no-print-directory", "SAN=" + SAN,
                os.path.join(BUILD, "bootd"), os.path.join(BUILD, "bootctl"),
                os.path.join(BUILD, "unit-tests")], scratch)


def run_tests(scratch, unit, integration):
    """None when every test passed, else (which, output) of the first that failed."""
    env = dict(os.environ, BOOTD_BUILD=BUILD)
    for pattern in unit:
        rc, out = run([os.path.join(BUILD, "unit-tests"), "--filter", pattern, "--jobs", "2"],
                      scratch, TEST_TIMEOUT, env)
        if rc != 0:
            return "unit " + pattern, out
        if "Tested: 0 " in out:
            return "unit " + pattern + " (matches no test)", out
    if integration:
        rc, out = run([PYTHON, "-m", "unittest", *integration], scratch, TEST_TIMEOUT, env)
        if rc != 0:
            return "integration " + " ".join(integration), out
    return None


def apply(scratch, patch, reverse=False):
    cmd = ["git", "apply", "-p1"] + (["-R"] if reverse else []) + [patch]
    return run(cmd, scratch)


def reason(out):
    """The first lines that say what failed: Criterion's assertion, unittest's FAIL/ERROR."""
    lines = [l.strip() for l in out.splitlines()
             if l.startswith(("FAIL:", "ERROR:")) or ("[----]" in l and ":" in l and "Assertion" in l)
             or ("[----]" in l and "CRASH" in l.upper()) or "timed out after" in l]
    return "; ".join(lines[:2])[:300]


def tail(text, n=25):
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-n:])


def new_mutant(name, file, old, new):
    path = os.path.join(ROOT, file)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.count(old) != 1:
        raise SystemExit("%s: %r occurs %d times; it must occur once" % (file, old,
                                                                         text.count(old)))
    mutated = text.replace(old, new)
    diff = difflib.unified_diff(text.splitlines(True), mutated.splitlines(True),
                                "a/" + file, "b/" + file)
    out = os.path.join(MUTANTS, name + ".patch")
    with open(out, "w", encoding="utf-8") as f:
        f.write("# mutant: TODO what the bug does\n# unit: TODO\n# integration: TODO\n")
        f.writelines(diff)
    print(out)


def unit_tests(unit_binary):
    """'suite/test' names from Criterion's --list."""
    out = subprocess.run([unit_binary, "--list"], capture_output=True, text=True,
                         check=True).stdout
    names, suite = [], None
    for line in out.splitlines():
        if not line.startswith(("├", "└", "│")) and line.endswith("tests"):
            suite = line.split(":")[0]
        elif suite and line[:1] in "├└":
            names.append(suite + "/" + line[4:].strip())
    return names


def check(mutants):
    """Problems that make a mutant meaningless, found without building anything."""
    import unittest
    problems = []
    # the build make integration tests (BOOTD_BUILD), else the one the mutants use
    unit_binary = os.path.join(ROOT, os.environ.get("BOOTD_BUILD") or BUILD, "unit-tests")
    names = unit_tests(unit_binary) if os.path.exists(unit_binary) else None
    sys.path.insert(0, ROOT)
    loader = unittest.TestLoader()
    for m in mutants:
        rc, out = run(["git", "apply", "--check", "-p1", m.path], ROOT)
        if rc != 0:
            problems.append("%s: does not apply: %s" % (m.name, out.strip()))
        for pattern in m.unit:
            if names is not None and not fnmatch.filter(names, pattern):
                problems.append("%s: unit filter %s matches no test" % (m.name, pattern))
        for test_id in m.integration:
            loader.errors = []
            try:
                found = loader.loadTestsFromName(test_id).countTestCases()
            except (ImportError, AttributeError) as e:
                loader.errors, found = [str(e)], 0
            if loader.errors or found == 0:
                why = loader.errors[0].strip().splitlines()[-1] if loader.errors else "no test"
                problems.append("%s: %s: %s" % (m.name, test_id, why))
    return problems


def main(argv):
    if argv[:1] == ["--new"]:
        if len(argv) != 5:
            raise SystemExit("usage: mutants.py --new NAME FILE OLD NEW")
        return new_mutant(*argv[1:])
    keep = "--keep" in argv
    argv = [a for a in argv if a != "--keep"]
    if argv[:1] == ["--list"]:
        for m in load([]):
            print("%-28s %s" % (m.name, m.what))
        return 0
    if argv[:1] == ["--check"]:
        mutants = load(argv[1:])
        problems = check(mutants)
        for p in problems:
            print(p)
        print("mutants: %d checked, %d problems" % (len(mutants), len(problems)))
        return 1 if problems else 0
    mutants = load(argv)
    scratch = tempfile.mkdtemp(prefix="bootd-mutants-")
    started = time.monotonic()
    problems = []
    try:
        print("mutants: copying the tree to %s" % scratch, flush=True)
        copy_tree(scratch)
        rc, out = build(scratch)
        if rc != 0:
            print("mutants: the unmutated tree does not build:\n" + tail(out))
            return 1
        unit = sorted({u for m in mutants for u in m.unit})
        integration = sorted({i for m in mutants for i in m.integration})
        print("mutants: the named tests on the unmutated tree (%d unit filters, %d integration "
              "tests)" % (len(unit), len(integration)), flush=True)
        failed = run_tests(scratch, unit, integration)
        if failed:
            print("mutants: %s fails without any mutant; fix that first:\n%s" %
                  (failed[0], tail(failed[1], 60)))
            return 1
        killed = []
        for m in mutants:
            t0 = time.monotonic()
            patch = m.path
            rc, out = apply(scratch, patch)
            if rc != 0:
                problems.append("%s: no longer applies (the code moved; update the patch):\n%s"
                                % (m.name, tail(out)))
                print("%-28s DOES NOT APPLY" % m.name, flush=True)
                continue
            try:
                rc, out = build(scratch)
                if rc != 0:
                    problems.append("%s: does not build:\n%s" % (m.name, tail(out)))
                    print("%-28s DOES NOT BUILD" % m.name, flush=True)
                    continue
                failed = run_tests(scratch, m.unit, m.integration)
            finally:
                rc, out = apply(scratch, patch, reverse=True)
                if rc != 0:
                    print("mutants: cannot revert %s:\n%s" % (m.name, tail(out)))
                    return 1
            took = time.monotonic() - t0
            if failed:
                killed.append(m)
                print("%-28s killed by %s (%.0f s)\n%30s%s" % (m.name, failed[0], took, "",
                                                                 reason(failed[1])), flush=True)
            else:
                problems.append("%s: SURVIVED: %s" % (m.name, m.what))
                print("%-28s SURVIVED (%.0f s)" % (m.name, took), flush=True)
        n = len(mutants)
        print("\nmutation score: %d/%d killed (%.0f %%) in %.0f min" % (
            len(killed), n, 100.0 * len(killed) / max(n, 1), (time.monotonic() - started) / 60))
        for p in problems:
            print("  " + p)
        return 1 if problems else 0
    finally:
        if keep:
            print("mutants: scratch copy kept in %s" % scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
