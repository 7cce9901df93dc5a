#!/usr/bin/env python3
"""make lint: the rules of docs/architecture.md that a compiler does not check.

1. Layering: a folder includes its own headers and the public header of the folders its
   row below names (DESIGN.md's table); never another folder's internal.h, never a
   folder further up. Tests and benchmarks are exempt (they are white-box).
2. Prefixes: every global symbol a folder exports starts with its prefix (read with nm
   from the built libraries, when they are built).
3. cppcheck on every folder.

Prints each violation as file:line: message and exits 1 if there is any."""
import os
import re
import subprocess
import sys

ROOT = os.environ.get("BOOTD_LINT_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# folder -> the folders it may include (its own is always allowed)
ALLOWED = {
    "lib": [],
    "lab": ["lib"],
    "state": ["lib", "lab"],
    "boot": ["lib", "lab"],
    "netsvc": ["lib", "lab"],
    "images": ["lib", "lab"],
    "talos": ["lib", "lab"],
    "proxmox": ["lib", "lab"],
    "kube": ["lib"],
    "gitops": ["lib", "lab", "state", "kube"],
    "cluster": ["lib", "lab", "state", "boot", "netsvc", "images", "talos", "proxmox", "kube",
                "gitops"],
    "server": ["lib", "lab", "state", "boot", "netsvc", "images", "talos", "proxmox", "kube",
               "gitops", "cluster"],
    "cli": ["lib", "lab", "state", "boot", "netsvc", "images", "talos", "proxmox", "kube",
            "gitops", "cluster"],
}
PUBLIC = {"lib": "bd.h"}  # default: <folder>.h
# What a folder's exported symbols start with (server/ and cli/ are programs).
PREFIXES = {
    "lib": ("bd_",), "lab": ("lab_",), "state": ("state_",), "boot": ("boot_",),
    "netsvc": ("netsvc_",), "images": ("images_",), "talos": ("talos_",),
    "proxmox": ("proxmox_",), "kube": ("kube_",), "gitops": ("gitops_",),
    "cluster": ("cluster_",), "server": ("server_",), "cli": ("cli_",),
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def check_includes(problems):
    for folder, ok in ALLOWED.items():
        d = os.path.join(ROOT, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(folder, name)
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    parts = inc.split("/")
                    if len(parts) == 1:
                        continue  # its own folder
                    if len(parts) != 3 or parts[0] != "..":
                        problems.append("%s:%d: include \"%s\": reach another folder as "
                                        "../folder/header.h" % (path, n, inc))
                        continue
                    other, header = parts[1], parts[2]
                    if other not in ok:
                        problems.append("%s:%d: include \"%s\": %s/ may not use %s/ (it may use: "
                                        "%s)" % (path, n, inc, folder, other,
                                                 " ".join(ok) or "nothing"))
                    elif header != PUBLIC.get(other, other + ".h"):
                        problems.append("%s:%d: include \"%s\": only %s/%s is public" %
                                        (path, n, inc, other, PUBLIC.get(other, other + ".h")))


def check_prefixes(problems, build):
    """Global symbols defined in each folder's objects."""
    for folder, prefixes in PREFIXES.items():
        src = os.path.join(ROOT, folder)
        if not os.path.isdir(src):
            continue
        for name in sorted(os.listdir(src)):
            obj = os.path.join(ROOT, build, folder, name[:-2] + ".o")
            if not name.endswith(".c") or name == "main.c" or not os.path.exists(obj):
                continue
            out = subprocess.run(["nm", "--defined-only", "-g", obj],
                                 capture_output=True, text=True, check=False).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) != 3 or parts[1] not in "TDBR":
                    continue
                sym = parts[2]
                if sym.startswith("__"):
                    continue  # the compiler's own (sanitizer bookkeeping)
                if not sym.startswith(prefixes):
                    problems.append("%s/%s: exports %s: name it %s..." %
                                    (folder, name, sym, prefixes[0]))


def check_cppcheck(problems):
    folders = [f for f in ALLOWED if os.path.isdir(os.path.join(ROOT, f))]
    # variableScope is taste: a buffer declared at the top of a function is fine here.
    cmd = ["cppcheck", "--quiet", "--std=c11", "--library=scripts/cppcheck.cfg",
           "--enable=style,warning,portability,performance", "--inline-suppr",
           "--error-exitcode=1", "-D_GNU_SOURCE", "-D__GNUC__",
           "--suppress=missingIncludeSystem", "--suppress=variableScope",
           "--template={file}:{line}: {id}: {message}", "-j", "2"] + folders
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        problems.append("cppcheck is not installed (make deps installs it)")
        return
    for line in (r.stdout + r.stderr).splitlines():
        if line.strip() and ": " in line:
            problems.append(line)
    if r.returncode != 0 and not problems:
        problems.append("cppcheck failed: %s" % r.stderr.strip())


def check_pyflakes(problems):
    # the tests are the proof of every behaviour: an unused name there is often an
    # assertion that was meant and never written
    dirs = [d for d in ("tests", "scripts") if os.path.isdir(os.path.join(ROOT, d))]
    if not dirs:
        return
    r = subprocess.run([sys.executable, "-m", "pyflakes", *dirs], cwd=ROOT,
                       capture_output=True, text=True, check=False)
    if "No module named pyflakes" in r.stderr:
        problems.append("pyflakes is not installed (make deps installs it)")
        return
    problems.extend(line for line in (r.stdout + r.stderr).splitlines() if line.strip())


def main():
    build = os.environ.get("BUILD", "build/release")
    problems = []
    check_includes(problems)
    check_prefixes(problems, build)
    if "--no-cppcheck" not in sys.argv:
        check_cppcheck(problems)
    check_pyflakes(problems)
    for p in problems:
        print(p)
    if problems:
        print("lint: %d problem(s)" % len(problems))
        return 1
    print("lint: layering, prefixes, cppcheck and pyflakes clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
