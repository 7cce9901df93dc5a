"""Real QEMU behind the Proxmox API stand-in: each VM the stand-in starts becomes a QEMU
process in the PXE lab (tests/e2e/netlab.py), built from its Proxmox config the way
qemu-server would: net0's MAC on a tap in the lab bridge, SeaBIOS or OVMF per `bios` (a
copy of the OVMF variables per VM, standing in for the efidisk), an empty sparse disk of
scsi0's size on virtio-scsi, and the `boot: order=` list as bootindex values, so an empty
disk falls through to the network. stop and shutdown end the process, reset sends
system_reset over the QEMU monitor. A guest that powers itself off (the Talos stand-in does,
after fetching its config) leaves a stopped VM, as on Proxmox.

Use: ProxmoxApi(...).state.backend = QemuBackend(lab), under flock /work/notes/qemu.lock
like every QEMU test.
"""
import os
import re
import shutil
import socket
import time

from tests.e2e.netlab import OVMF_CODE, OVMF_VARS


def _size_bytes(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", text or "")
    if not m:
        return 1 << 30
    return int(m.group(1)) * 1024 ** ("BKMGT".index(m.group(2) or "B"))


def _prop(value, key):
    for i, part in enumerate(value.split(",")):
        k, sep, v = part.partition("=")
        if sep and k == key:
            return v
        if i == 0 and key == "file" and not sep:
            return part
    return None


class QemuBackend:
    def __init__(self, lab):
        self.lab = lab
        self.procs = {}

    def argv(self, vmid, config):
        net0 = config.get("net0", "")
        model, _, rest = net0.partition("=")
        mac = rest.split(",")[0]
        tap = self.lab.tap()
        disk = self.lab.path("vm-%d-disk-0.raw" % vmid)
        if not os.path.exists(disk):
            with open(disk, "wb") as f:
                f.truncate(_size_bytes(_prop(config.get("scsi0", ""), "size")))
        order = []
        m = re.search(r"(?:^|,)order=([^,]*)", config.get("boot", ""))
        if m:
            order = m.group(1).split(";")
        bootindex = lambda dev: (",bootindex=%d" % order.index(dev)) if dev in order else ""
        memory = int(re.sub(r"^current=", "", config.get("memory", "512")).split(",")[0])
        log = self.lab.path("vm-%d.log" % vmid)
        argv = ["qemu-system-x86_64", "-m", str(min(memory, 512)), "-nographic",
                "-serial", "file:" + log, "-smp", "1",
                "-monitor", "unix:%s,server,nowait" % self.lab.path("vm-%d.mon" % vmid),
                "-smbios", "type=1,uuid=%s" % (_prop(config.get("smbios1", ""), "uuid") or ""),
                "-netdev", "tap,id=net0,ifname=%s,script=no,downscript=no" % tap,
                "-device", "virtio-scsi-pci,id=scsihw0",
                "-drive", "file=%s,if=none,id=drive-scsi0,format=raw" % disk,
                "-device", "scsi-hd,bus=scsihw0.0,drive=drive-scsi0%s" % bootindex("scsi0")]
        nic = "virtio-net-pci" if model == "virtio" else model
        if config.get("bios") == "ovmf":
            vars_copy = self.lab.path("vm-%d-efivars.fd" % vmid)
            if not os.path.exists(vars_copy):
                shutil.copy(OVMF_VARS, vars_copy)
            argv += ["-machine", "q35",
                     "-drive", "if=pflash,format=raw,readonly=on,file=" + OVMF_CODE,
                     "-drive", "if=pflash,format=raw,file=" + vars_copy,
                     # OVMF's own PXE (no option ROM) fetches ipxe.efi, as on Proxmox
                     "-device", "%s,netdev=net0,mac=%s,romfile=%s" % (nic, mac, bootindex("net0"))]
        else:
            if config.get("machine", "").startswith("q35"):
                argv += ["-machine", "q35"]
            argv += ["-device", "%s,netdev=net0,mac=%s%s" % (nic, mac, bootindex("net0"))]
        return argv

    def start(self, vmid, vm):
        self.stop(vmid)
        self.procs[vmid] = self.lab.start(self.argv(vmid, vm["config"]),
                                          self.lab.path("qemu-%d.out" % vmid))

    def stop(self, vmid):
        p = self.procs.pop(vmid, None)
        if p:
            self.lab.stop(p)

    def running(self, vmid):
        p = self.procs.get(vmid)
        return p is not None and p.poll() is None

    def reset(self, vmid):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.lab.path("vm-%d.mon" % vmid))
            s.sendall(b"system_reset\n")
            time.sleep(0.2)

    def console(self, vmid):
        try:
            with open(self.lab.path("vm-%d.log" % vmid), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
