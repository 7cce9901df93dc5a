"""make demo: a VM PXE-boots from bootd serving examples/minimal, in a network namespace
on this machine, and its timeline is printed. Ctrl-C stops it and cleans up."""
import os
import shutil
import signal
import sys
import time

import hashlib

from tests.e2e.netlab import BOOT_SERVER, Bootd, Lab, VM, wait_until

LAB = "examples/minimal/lab.yaml"
MAC = "52:54:00:12:34:56"  # cp-1 in examples/minimal/lab.yaml


NEXT = """Try next:
  make start                      bootd on loopback with the status page at http://127.0.0.1:8080/
  bootctl validate examples/homelab/lab.yaml
                                  the three-node homelab example, checked as bootd loads it
  make deb && apt-get install ./build/release/bootd_*.deb
                                  bootd as a service (README: Install)"""


def say(msg):
    print("demo: " + msg, flush=True)


def follow(bootd, vm, timeout):
    """Prints state changes and the stand-in's console lines until the VM powers off."""
    seen_state, seen_lines = None, 0
    deadline = time.monotonic() + timeout
    while vm.proc.poll() is None:
        if time.monotonic() > deadline:
            raise SystemExit("demo: the VM did not finish within %d s" % timeout)
        m = bootd.machine("cp-1")
        if m and m["state"] != seen_state:
            seen_state = m["state"]
            say("%5.1f s  cp-1 is %s" % (time.monotonic() - vm.started, seen_state))
        lines = [l for l in vm.console().splitlines() if "talos-standin:" in l or "bootd:" in l]
        for line in lines[seen_lines:]:
            say("%5.1f s  console: %s" % (time.monotonic() - vm.started, line.strip()))
        seen_lines = len(lines)
        time.sleep(0.5)


def main():
    if os.geteuid() != 0:
        sys.exit("demo: needs root (a network namespace, a tap device, DHCP); run: sudo make demo")
    # Ctrl-C and SIGTERM both end in the cleanup below, even when started from a shell
    # that ignores SIGINT for background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say("building the lab: namespace, bridge br0 with %s/24, bootd on %s" % (BOOT_SERVER, LAB))
    lab = Lab()
    try:
        with open(LAB) as f:
            bootd = Bootd(lab, lab_yaml=f.read())
        say("generating the cluster secrets (bootctl gen secrets; a few seconds)")
        bootd.gen("secrets")
        expected = hashlib.sha256(bootd.gen("config", "--machine", "cp-1", "-o", "-")).hexdigest()
        bootd.start()
        say("bootd is up (it runs dnsmasq for DHCP and TFTP); log: %s" % bootd.log)
        say("powering on a BIOS VM with MAC %s (software-emulated: about 30 s)" % MAC)
        vm = VM(lab, MAC, "bios", "cp-1")
        follow(bootd, vm, 300)
        m = wait_until("the timeline", lambda: bootd.machine("cp-1"), 10)
        got = vm.config_sha256(1)
        say("the VM powered off; its state is %s" % m["state"])
        say("config it downloaded: sha256 %s: %s" % (
            got, "cp-1's own generated config" if got == expected else "NOT cp-1's config"))
        print()
        print(bootd.bootctl("machines", "show", "cp-1"))
        print(bootd.bootctl("logs", "cp-1"))
        say("done; cleaning up (bootd, dnsmasq, the VM, the namespace, %s with the secrets)"
            % lab.root)
        print(NEXT)
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
    finally:
        # the lab dir holds the demo's cluster secrets: nothing of it stays behind
        try:
            lab.close()
        finally:
            shutil.rmtree(lab.root, ignore_errors=True)


if __name__ == "__main__":
    main()
