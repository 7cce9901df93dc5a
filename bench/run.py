#!/usr/bin/env python3
"""make bench: every bench/bench_*.py, each comparing bootd against a yardstick measured
in the same run. A module's run() returns (lines, ok); the exit code is 1 if any target
was missed. BENCH_ONLY=http,images runs a subset."""
import importlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    only = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
    names = sorted(f[len("bench_"):-3] for f in os.listdir(here)
                   if f.startswith("bench_") and f.endswith(".py"))
    ok = True
    for name in names:
        if only and name not in only:
            continue
        mod = importlib.import_module("bench.bench_" + name)
        lines, good = mod.run()
        for line in lines:
            print("bench %s: %s" % (name, line), flush=True)
        ok &= good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
