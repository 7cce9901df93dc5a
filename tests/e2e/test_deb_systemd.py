"""The Debian package under a real systemd: `make deb`'s package installed with dpkg in a
systemd-nspawn container booted from this machine's own Debian (a throw-away overlay
over /, its own network namespace with only loopback), then what the README tells a new
user to run: `bootctl gen secrets`, `systemctl enable --now bootd`. The unit must come up
active and enabled with its hardening in force, bootd answering on the lab's port and
its state in /var/lib/bootd (0700)."""
import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BOOTD_BUILD", "build/release")

TRY_SERVICE = """\
[Unit]
Description=what a new user does after installing bootd
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh /root/try.sh
StandardOutput=append:/root/out/try.log
StandardError=append:/root/out/try.log
"""

TRY = """\
set -x
dpkg -i /root/bootd.deb
cat > /etc/bootd/lab.yaml <<'LAB'
cluster:
  name: nspawn
  talos_version: v1.13.9
lan:
  interface: lo
  dnsmasq: false
  dhcp: proxy
  subnet: 127.0.0.0/8
  boot_server: 127.0.0.1
  http_port: 8080
machines:
  - {name: cp-1, mac: "52:54:00:00:00:01", role: controlplane, ip: 127.0.0.9}
LAB
bootctl gen secrets /etc/bootd/lab.yaml
systemctl enable --now bootd
for i in $(seq 1 20); do curl -sS http://127.0.0.1:8080/healthz && break; sleep 0.5; done
echo
{
  echo "active=$(systemctl is-active bootd)"
  echo "enabled=$(systemctl is-enabled bootd)"
  echo "healthz=$(curl -sS http://127.0.0.1:8080/healthz)"
  echo "statedir=$(stat -c %a /var/lib/bootd)"
  echo "token=$(stat -c %a /var/lib/bootd/admin.token)"
  systemctl show bootd -p ProtectSystem -p NoNewPrivileges -p ExecMainPID -p User
  echo "cmdline=$(tr '\\0' ' ' < /proc/$(systemctl show bootd -p ExecMainPID --value)/cmdline)"
} > /root/out/result
BOOTD_TOKEN_FILE=/var/lib/bootd/admin.token bootctl status
journalctl -u bootd --no-pager | tail -20
systemctl poweroff
"""


class SystemdUnit(unittest.TestCase):
    def test_enable_now_under_systemd(self):
        nspawn = shutil.which("systemd-nspawn")
        self.assertTrue(nspawn, "systemd-nspawn is missing (package systemd-container: make deps)")
        tmp = tempfile.mkdtemp(prefix="bootd-nspawn-")
        self.addCleanup(shutil.rmtree, tmp, True)
        r = subprocess.run(["scripts/mkdeb.sh", BUILD, tmp], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        deb = r.stdout.strip().splitlines()[-1]
        for d in ("upper", "work", "root", "out"):
            os.makedirs(os.path.join(tmp, d))
        for name, text in (("try.service", TRY_SERVICE), ("try.sh", TRY)):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        root = os.path.join(tmp, "root")
        # nspawn refuses / itself: a writable overlay over it, thrown away afterwards
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=/,upperdir=%s/upper,workdir=%s/work" % (tmp, tmp), root],
                       check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["umount", "-l", root], capture_output=True)
        with open("/proc/sys/kernel/random/uuid") as f:  # its own machine id, not the host's
            uuid = f.read().strip()
        # no D-Bus and no machined on a build machine: not registered, no scope of its own
        p = subprocess.run(
            ["timeout", "240", nspawn, "-D", root, "--private-network", "--register=no",
             "--keep-unit", "--link-journal=no", "--uuid=" + uuid, "--machine=bootd-try",
             "--bind-ro=%s:/root/bootd.deb" % deb, "--bind-ro=%s/try.sh:/root/try.sh" % tmp,
             "--bind-ro=%s/try.service:/etc/systemd/system/bootd-try.service" % tmp,
             "--bind=%s/out:/root/out" % tmp, "-b", "--", "systemd.wants=bootd-try.service"],
            capture_output=True, text=True)
        log = ""
        if os.path.exists(os.path.join(tmp, "out", "try.log")):
            with open(os.path.join(tmp, "out", "try.log")) as f:
                log = f.read()
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-2000:] + log)
        self.assertTrue(os.path.exists(os.path.join(tmp, "out", "result")), log)
        with open(os.path.join(tmp, "out", "result")) as f:
            result = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
        self.assertEqual(result["active"], "active", log)
        self.assertEqual(result["enabled"], "enabled", log)
        self.assertEqual(result["healthz"], "ok", log)
        self.assertEqual(result["statedir"], "700")
        self.assertEqual(result["token"], "600")
        self.assertEqual(result["ProtectSystem"], "strict")
        self.assertEqual(result["NoNewPrivileges"], "yes")
        self.assertEqual(result["cmdline"].split(),
                         ["/usr/bin/bootd", "--lab", "/etc/bootd/lab.yaml", "--state-dir",
                          "/var/lib/bootd"])
        self.assertIn("Created symlink /etc/systemd/system/multi-user.target.wants/bootd.service",
                      log)


if __name__ == "__main__":
    unittest.main()
