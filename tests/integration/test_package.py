"""bootd as a Debian service: the package `make deb` builds, installed into a temporary
root, and the installed unit's ExecStart run with the installed paths."""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from tests.integration import harness

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(harness.BUILD)


def version():
    return harness.read(os.path.join(REPO, "VERSION")).strip()


def unit_settings(text):
    """The [Service] section as (key, value) pairs, in order."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            k, _, v = line.partition("=")
            out.append((k, v))
    return out


def expand(cmd, env):
    """ExecStart's variable rules (systemd.service(5)): ${X} is one word, $X splits."""
    words = []
    for w in shlex.split(cmd):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            words.extend(env.get(m.group(1), "").split())
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                                lambda x: env.get(x.group(1), ""), w))
    return words


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bootd-deb-")
        r = subprocess.run(["scripts/mkdeb.sh", BUILD, cls.tmp], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
        if r.returncode:
            raise AssertionError("make deb failed:\n" + r.stdout + r.stderr)
        cls.deb = r.stdout.strip().splitlines()[-1]
        cls.root = os.path.join(cls.tmp, "root")
        admin = os.path.join(cls.root, "var/lib/dpkg")
        os.makedirs(os.path.join(admin, "info"))
        os.makedirs(os.path.join(admin, "updates"))
        open(os.path.join(admin, "status"), "w").close()
        # a root without libc: dependencies are checked below against this host instead,
        # and the maintainer scripts run outside the root with DPKG_ROOT set
        r = subprocess.run(["dpkg", "--root=" + cls.root, "--force-depends",
                            "--force-script-chrootless", "--log=/dev/null", "-i", cls.deb],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise AssertionError("dpkg -i failed:\n" + r.stdout + r.stderr)
        cls.dpkg_out = r.stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def installed(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def test_files_where_debian_expects_them(self):
        for path in ("/usr/bin/bootd", "/usr/bin/bootctl", "/lib/systemd/system/bootd.service",
                     "/etc/default/bootd", "/usr/share/man/man8/bootd.8.gz",
                     "/usr/share/man/man1/bootctl.1.gz", "/usr/share/man/man5/lab.yaml.5.gz",
                     "/usr/share/bash-completion/completions/bootctl",
                     "/usr/share/doc/bootd/copyright", "/usr/share/doc/bootd/examples/minimal/lab.yaml"):
            self.assertTrue(os.path.lexists(self.installed(path)), path)
        self.assertTrue(os.path.isdir(self.installed("/etc/bootd")))
        self.assertIn("/etc/bootd/lab.yaml", self.dpkg_out)
        conffiles = subprocess.run(["dpkg-deb", "-f", self.deb, "Package"], capture_output=True,
                                   text=True).stdout.strip()
        self.assertEqual(conffiles, "bootd")
        self.assertFalse([p for p in self.walk() if p.endswith("secrets.yaml")])

    def walk(self):
        for d, _, files in os.walk(self.root):
            if "/var/lib/dpkg" in d:
                continue
            for f in files:
                yield os.path.join(d, f)

    def test_nothing_installed_names_the_build_tree(self):
        for path in self.walk():
            if os.path.islink(path):
                continue
            data = harness.read(path, "rb")
            if path.endswith(".gz"):
                data = subprocess.run(["zcat", path], capture_output=True).stdout
            needles = [REPO.encode(), BUILD.encode()]
            # the docs may tell a reader about build/release; nothing else may point there
            if "/usr/share/doc/" not in path:
                needles += [b"build/release", b"build/san"]
            if BUILD.endswith("san") and data[:4] == b"\x7fELF":
                # ASan names each global's object file for its reports: a sanitizer build
                # is a test build, never packaged for users; its scripts are still checked
                needles = [n for n in needles if n not in (BUILD.encode(), b"build/san")]
            for n in needles:
                self.assertNotIn(n, data, "%s names %r" % (path, n))

    def test_depends_name_packages_this_debian_has(self):
        deps = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True,
                              text=True).stdout
        names = [d.split()[0] for d in deps.split(",")]
        for must in ("dnsmasq-base", "ipxe", "libmicrohttpd12", "libsqlite3-0", "libgit2-1.5"):
            self.assertIn(must, names)
        for name in names:
            r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", name], capture_output=True,
                               text=True)
            self.assertIn("installed", r.stdout, name)
        # every library the binaries load is accounted for by a Depends package
        r = subprocess.run(["ldd", self.installed("/usr/bin/bootd")], capture_output=True,
                           text=True)
        self.assertNotIn("not found", r.stdout)

    def test_unit_is_hardened_and_names_installed_paths(self):
        unit = harness.read(self.installed("/lib/systemd/system/bootd.service"))
        s = dict(unit_settings(unit))
        self.assertEqual(s["StateDirectory"], "bootd")
        self.assertEqual(s["ProtectSystem"], "strict")
        self.assertEqual(s["NoNewPrivileges"], "yes")
        self.assertEqual(set(s["CapabilityBoundingSet"].split()),
                         {"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_NET_ADMIN"})
        self.assertTrue(s["ExecStart"].startswith("/usr/bin/bootd "), s["ExecStart"])
        self.assertNotIn("@BINDIR@", unit)
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify",
                                self.installed("/lib/systemd/system/bootd.service")],
                               capture_output=True, text=True, timeout=60)
            # the host lacks the installed paths and man pages; a key systemd does not know
            # or a value it cannot parse is what this is about
            problems = [l for l in (r.stdout + r.stderr).splitlines()
                        if re.search(r"Unknown|Invalid|Failed to parse|ignoring", l)]
            self.assertEqual(problems, [], r.stdout + r.stderr)

    def test_exec_start_runs_the_installed_bootd(self):
        port = harness.free_port()
        labdir = os.path.join(self.tmp, "etc-bootd")
        os.makedirs(labdir, exist_ok=True)
        lab = os.path.join(labdir, "lab.yaml")
        with open(lab, "w") as f:
            f.write(harness.lab_text(port))
        for name, text in (("cp.yaml", harness.CP_CONFIG), ("worker.yaml", harness.WORKER_CONFIG)):
            with open(os.path.join(labdir, name), "w") as f:
                f.write(text)
        # what /etc/default/bootd would say for this lab
        env = {}
        settings = unit_settings(harness.read(self.installed("/lib/systemd/system/bootd.service")))
        for k, v in settings:
            if k == "Environment":
                key, _, val = v.partition("=")
                env[key] = val
        env.update(BOOTD_LAB=lab, BOOTD_OPTS="--listen 127.0.0.1 --port %d --threads 2" % port)
        exec_start = dict(settings)["ExecStart"]
        argv = expand(exec_start, env)
        self.assertEqual(argv[0], "/usr/bin/bootd")
        # the installed root stands in for /: every absolute path of the unit's is in it
        argv = [self.installed(a) if a.startswith(("/usr/", "/var/")) else a for a in argv]
        log = open(os.path.join(self.tmp, "bootd.log"), "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            ok = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2) as r:
                        ok = r.status == 200
                        break
                except OSError:
                    time.sleep(0.1)
            self.assertTrue(ok, harness.read(os.path.join(self.tmp, "bootd.log")))
            state = self.installed("/var/lib/bootd")
            self.assertTrue(os.path.exists(os.path.join(state, "state.db")))
            token = os.path.join(state, "admin.token")
            r = subprocess.run([self.installed("/usr/bin/bootctl"), "machines", "--url",
                                "http://127.0.0.1:%d" % port, "--token-file", token],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("cp-1", r.stdout)
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
        self.assertEqual(proc.returncode, 0)

    def test_versions(self):
        for prog in ("bootd", "bootctl"):
            r = subprocess.run([self.installed("/usr/bin/" + prog), "--version"],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), "%s %s" % (prog, version()))
        self.assertEqual(subprocess.run(["dpkg-deb", "-f", self.deb, "Version"],
                                        capture_output=True, text=True).stdout.strip(), version())

    def test_man_pages_render_cleanly(self):
        for page in ("man8/bootd.8.gz", "man1/bootctl.1.gz", "man5/lab.yaml.5.gz"):
            path = self.installed("/usr/share/man/" + page)
            r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="80"), timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", page)
            self.assertIn(version(), r.stdout)
        lab5 = subprocess.run(["man", "-l", self.installed("/usr/share/man/man5/lab.yaml.5.gz")],
                              capture_output=True, text=True).stdout
        # the page is made from docs/lab-yaml.md: every key there is in it
        for key in ("talos_version", "http_port", "token_grace", "health_timeout", "verify_tls"):
            self.assertIn(key, lab5)

    def test_bash_completion(self):
        comp = self.installed("/usr/share/bash-completion/completions/bootctl")

        def complete(line):
            words = line.split(" ")
            script = (
                "_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; "
                "prev=${COMP_WORDS[COMP_CWORD-1]}; words=(\"${COMP_WORDS[@]}\"); "
                "cword=$COMP_CWORD; }\n"
                "_filedir() { :; }\n"
                "source %s\n"
                "COMP_WORDS=(%s); COMP_CWORD=%d; _bootctl; printf '%%s\\n' \"${COMPREPLY[@]}\"\n"
                % (shlex.quote(comp), " ".join(shlex.quote(w) for w in words), len(words) - 1))
            r = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                               env=dict(os.environ, PATH="/usr/bin:/bin"), timeout=30)
            self.assertEqual(r.stderr, "")
            return set(r.stdout.split())

        self.assertEqual(complete("bootctl mach"), {"machines", "machine"})
        self.assertEqual(complete("bootctl -o json mach"), {"machines", "machine"})
        self.assertEqual(complete("bootctl gitops s"), {"status", "sync"})
        self.assertEqual(complete("bootctl machine adopt 52:54:00:00:00:09 --role "),
                         {"controlplane", "worker"})
        self.assertIn("--wait", complete("bootctl gitops sync --"))
        self.assertEqual(complete("bootctl -o "), {"table", "json"})
        self.assertEqual(complete("bootctl rebuild --etcd-snapshot "), {"latest"})

        # every command and subcommand bootctl's own help lists is completed
        usage = subprocess.run([os.path.join(BUILD, "bootctl"), "--help"], capture_output=True,
                               text=True, timeout=30).stdout
        listed = re.findall(r"^  ([a-z][a-z-]*)(?: ([a-z][a-z|-]*)\b(?![.,]))?", usage, re.M)
        self.assertGreater(len(listed), 30, usage)
        commands = complete("bootctl ")
        for cmd, subs in listed:
            self.assertIn(cmd, commands, "bootctl %s is not completed" % cmd)
            for sub in filter(None, subs.split("|")):
                self.assertIn(sub, complete("bootctl %s " % cmd),
                              "bootctl %s %s is not completed" % (cmd, sub))


class InstallTest(unittest.TestCase):
    """make install with another PREFIX: the unit names that PREFIX's bootd."""

    def test_prefix_and_destdir(self):
        dest = tempfile.mkdtemp(prefix="bootd-inst-")
        try:
            r = subprocess.run(["scripts/install.sh", BUILD], cwd=REPO, capture_output=True,
                               text=True, timeout=120,
                               env=dict(os.environ, PREFIX="/opt/bootd", DESTDIR=dest))
            self.assertEqual(r.returncode, 0, r.stderr)
            unit = harness.read(os.path.join(dest, "opt/bootd/lib/systemd/system/bootd.service"))
            self.assertIn("ExecStart=/opt/bootd/bin/bootd ", unit)
            self.assertTrue(os.access(os.path.join(dest, "opt/bootd/bin/bootctl"), os.X_OK))
            self.assertTrue(os.path.exists(os.path.join(dest, "opt/bootd/share/man/man5/lab.yaml.5")))
            # an edited /etc/default/bootd survives a second install
            default = os.path.join(dest, "etc/default/bootd")
            with open(default, "a") as f:
                f.write("BOOTD_OPTS=--debug\n")
            subprocess.run(["scripts/install.sh", BUILD], cwd=REPO, check=True, capture_output=True,
                           env=dict(os.environ, PREFIX="/opt/bootd", DESTDIR=dest))
            self.assertIn("BOOTD_OPTS=--debug", harness.read(default))
        finally:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
