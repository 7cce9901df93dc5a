"""make demo: the whole path on this machine, in network namespaces it creates — a control
plane and a worker VM created on the Proxmox stand-in, PXE-booted from bootd to their
configs, Talos's part played by node twins (tests/e2e/whole_lab.py says what is real and
what stands in), bootstrap, Kubernetes, GitOps synced — with the timeline, then what to
try next. Ctrl-C stops it; either way nothing is left behind."""
import os
import signal
import sys

from tests.e2e.whole_lab import WholeLab

# name, MAC, role, address, Proxmox vmid, firmware
MACHINES = [
    ("cp-1", "bc:24:11:de:00:01", "controlplane", "192.0.2.11", 8111, "seabios"),
    ("w-1", "bc:24:11:de:00:21", "worker", "192.0.2.21", 8121, "seabios"),
]

NEXT = """Try next:
  make start                      bootd on loopback with the status page at http://127.0.0.1:8080/
  bootctl validate examples/homelab/lab.yaml
                                  the three-node homelab example, checked as bootd loads it
  make e2e-slow                   the same with 3 control planes, then disaster: an etcd snapshot,
                                  every VM and bootd's state gone, bootctl rebuild, machine replace
                                  (docs/recovery.md)
  make deb && apt-get install ./build/release/bootd_*.deb
                                  bootd as a service (README: Install)"""


def say(msg):
    print("demo: " + msg, flush=True)


def main():
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network namespaces, taps, DHCP); run: sudo make demo")
    # Ctrl-C and SIGTERM both end in the cleanup below, even when started from a shell
    # that ignores SIGINT for background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say("building the lab: namespace with bridge br0 (192.0.2.1/24), a Proxmox API stand-in "
        "whose VMs are QEMU, Git over HTTP, a Kubernetes API stand-in")
    lab = None
    try:
        lab = WholeLab(MACHINES, say=say, keep_dir=False)
        say("VMs are software-emulated here: booting takes a minute or two")
        total = lab.up()
        print("\ntimeline (seconds since bootd started):")
        for phase, secs in lab.timeline:
            print("  %-34s %6.1f" % (phase, secs))
        print("\n$ bootctl status")
        print(lab.bootd.bootctl("status"))
        print("$ bootctl machines show cp-1")
        print(lab.bootd.bootctl("machines", "show", "cp-1"))
        say("VM to GitOps synced in %.0f s; cleaning up (bootd, dnsmasq, the VMs, the node "
            "twins, the namespaces, %s with the secrets)" % (total, lab.lab.root))
        print(NEXT)
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
    finally:
        if lab:
            lab.close()


if __name__ == "__main__":
    main()
