"""A stand-in for the Proxmox VE API (pveproxy on :8006), for bootd's VM tests: Proxmox VE
cannot run on a build machine.

It follows pve-docs' API schema (api-viewer/apidata.js), the qm.conf option syntax, and the
handlers' behaviour summarised in shared/proxmox/FACTS.md (qemu-server API2/Qemu.pm,
pve-http-server, pve-manager HTTPServer.pm), for the calls bootd and the bpg Terraform
provider make:

* HTTPS only, with a self-signed certificate for 127.0.0.1 (pveproxy's default is
  self-signed); GET /nodes carries each node's ssl_fingerprint (SHA-256 of the leaf, AA:BB:..).
* Base path /api2/json. Every success is {"data": ...}. Errors: 400 "Parameter verification
  failed." with {"errors": {param: why}} for bad or unknown parameters; 500 with the
  handler's die text as message and its first line as reason phrase ("VM is locked (..)",
  "... already exists ...", "... does not exist", "VM N is running - destroy failed",
  "no such cluster node 'x'"); 501 for an unknown method/path.
* Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET. Anything else is a 401, sent after a
  delay (3 s in PVE; --auth-delay). No CSRF token is needed with API tokens.
* Bodies: application/x-www-form-urlencoded or application/json for POST/PUT; query
  strings for GET/DELETE. Booleans 0/1 (also yes/no/on/off/true/false, as PVE's schema).
* /access: roles (privileges checked against PVE's list; built-in roles cannot change),
  users (pam and pve realms), ACLs (PUT adds or, with delete=1, removes entries), API tokens
  (the secret is shown once, at creation; "Token already exists." after that); a new token
  authenticates at once.
* VMs: GET /cluster/resources, /cluster/nextid[?vmid=N], /nodes/{n}/qemu,
  POST /nodes/{n}/qemu (create; checks vmid range, net[n], scsi[n], efidisk0, boot order,
  smbios1, tags, memory, machine, bios, ostype, scsihw syntax; allocates STORAGE:SIZE disks
  as vm-<vmid>-disk-<k>; fills smbios1 uuid and MACs when missing), GET/PUT/POST .../config
  (digest, delete=), .../status/current, .../status/{start,stop,shutdown,reset,reboot},
  PUT .../resize (a "resize" task as on PVE 8: grows a disk and its volume; "shrinking disks
  is not supported"; the same size is a no-op),
  DELETE /nodes/{n}/qemu/{vmid}?purge&destroy-unreferenced-disks (frees only volumes whose
  name owner is that vmid, as destroy_vm does).
* Tasks: every asynchronous call answers a UPID
  (UPID:node:pid:pstart:starttime:type:id:user@realm!token:). A task is "running" for
  --task-polls status reads (or --task-seconds), then "stopped" with exitstatus "OK" or the
  error text; its log is readable at .../tasks/{upid}/log ([{n, t}]). With --first-poll-400
  the first status read of a task is a 400 (bpg retries that: a task is not visible at once).
  A VM is locked ("create", ...) while its task runs. Starting a running VM is a task that
  fails with "VM N already running"; a start fails when the NIC's bridge does not exist.
* Storage: GET/POST /nodes/{n}/storage/{s}/content, DELETE .../content/{volid} (sizes in KiB,
  or with K/M/G/T suffix; the owner vmid is parsed from the volume name; an existing name is a
  500 "already exists").

Not simulated: tickets/cookies and CSRF, ACLs and privilege separation (every valid token may
do everything), HA, pools, clones, snapshots, backups, migration, pending changes (a config
change takes effect at once), hotplug rules, disk move, SDN, LXC containers, clusters
of several real hosts (nodes are names in one process), groups, realms other than pam and
pve, token expiry. Disk contents are
not stored (sizes only), unless --qemu is given.

Test hooks (not PVE behaviour; Python API, or the /_standin/... control routes that need no
token): lock a VM for a while, make the next task of a type fail with an exitstatus and log,
make the next config writes fail with "got timeout", "guard" an owner vmid so that deleting
one of its volumes is refused and recorded as a violation (tests assert there are none).

Run in-process (ProxmoxApi(dir).start()) or as a program:
  python3 -m tests.standins.proxmox_api --dir DIR [--node host3] [--storage local-lvm]
      [--bridge vmbr0] [--token 'root@pam!bootd=SECRET'] [--auth-delay 3] [--guard 9999]
It writes DIR/pve.crt, DIR/pve.key and DIR/token (0600, the token in bootd's token_file
format: USER@REALM!ID=SECRET), then prints ONE line of JSON on stdout:
  {"url": "https://127.0.0.1:PORT", "port": PORT, "fingerprint": "AA:..", "ca_file":
   "DIR/pve.crt", "token_file": "DIR/token", "node": "host3"}
and serves until SIGTERM/SIGINT.
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid as uuidlib

DEFAULT_TOKEN = "root@pam!bootd=5f1d2c6e-9a8b-4c3d-8e7f-0a1b2c3d4e5f"
NOT_IN_SCHEMA = "property is not defined in schema and the schema does not allow additional properties"
OWNER_RE = re.compile(r"(?:^|-|/)vm-([1-9][0-9]{2,8})(?:-|$)")
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "ne2k_pci", "pcnet", "i82551")
SCSIHW = ("lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi")
OSTYPES = ("other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11",
           "l24", "l26", "solaris")
MACHINE_RE = re.compile(r"^(pc|pc(-i440fx)?-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|q35|"
                        r"pc-q35-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|virt(?:-\d+(\.\d+)+)?(\+pve\d+)?)$")
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
                         r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$")
TAG_RE = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.I)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DISK_KEYS = {"scsi": 31, "virtio": 16, "sata": 6, "ide": 4}
BOOLS = {"1": 1, "0": 0, "yes": 1, "no": 0, "on": 1, "off": 0, "true": 1, "false": 0}
REASONS = {200: "OK", 400: "Bad Request", 401: "No ticket", 404: "Not Found",
           500: "Internal Server Error", 501: "Not Implemented"}


PRIVILEGES = {
    "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate",
    "Datastore.Audit", "Pool.Allocate", "Pool.Audit", "SDN.Allocate", "SDN.Audit", "SDN.Use",
    "Sys.Audit", "Sys.Console", "Sys.Modify", "Sys.PowerMgmt", "Sys.Syslog", "User.Modify",
    "Permissions.Modify", "Realm.Allocate", "Realm.AllocateUser", "Group.Allocate",
    "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU",
    "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory",
    "VM.Config.Network", "VM.Config.Options", "VM.Console", "VM.Migrate", "VM.Monitor",
    "VM.PowerMgmt", "VM.Snapshot", "VM.Snapshot.Rollback", "Mapping.Audit", "Mapping.Use",
}
BUILTIN_ROLES = {"Administrator": PRIVILEGES, "NoAccess": set(), "PVEAuditor": {"VM.Audit", "Sys.Audit", "Datastore.Audit"}}
USERID_RE = re.compile(r"^[^\s:/@]{1,60}@(pam|pve)$")


class PveError(Exception):
    def __init__(self, code, message, errors=None):
        super().__init__(message)
        self.code, self.message, self.errors = code, message, errors


def param_error(errors):
    return PveError(400, "Parameter verification failed.", errors)


def die(text):
    return PveError(500, text)


def parse_bool(name, v):
    if str(v).lower() not in BOOLS:
        raise param_error({name: "type check ('boolean') failed - got '%s'" % v})
    return BOOLS[str(v).lower()]


def parse_int(name, v, lo=None, hi=None):
    if not re.fullmatch(r"-?\d+", str(v)):
        raise param_error({name: "type check ('integer') failed - got '%s'" % v})
    n = int(v)
    if lo is not None and n < lo:
        raise param_error({name: "value must have a minimum value of %d" % lo})
    if hi is not None and n > hi:
        raise param_error({name: "value must have a maximum value of %d" % hi})
    return n


def property_list(name, text, default_key, schema, aliases=None):
    """Parses PVE's property-string syntax "[default_key=]v,key=v,..." against schema
    {key: check(v) -> normalised v}. aliases: {alias key: (key for the alias' name, key
    for its value)}, as net[n]'s "virtio=MAC" means model=virtio,macaddr=MAC."""
    out = {}
    for i, part in enumerate(str(text).split(",")):
        if part == "":
            raise param_error({name: "invalid format - empty property"})
        k, sep, v = part.partition("=")
        if not sep:
            if i != 0 or default_key is None:
                raise param_error({name: "invalid format - value without key, but schema "
                                         "does not define a default key"})
            k, v = default_key, part
        if aliases and k in aliases:
            kk, vk = aliases[k]
            if kk in out or vk in out:
                raise param_error({name: "invalid format - duplicate key in comma-separated list property: %s" % vk})
            try:
                out[kk], out[vk] = k, schema[vk](v)
            except ValueError as e:
                raise param_error({name: "invalid format - format error\n%s.%s: %s" % (name, vk, e)})
            continue
        if k not in schema:
            raise param_error({name: "invalid format - format error\n%s.%s: property is not defined in schema and the schema does not allow additional properties" % (name, k)})
        if k in out:
            raise param_error({name: "invalid format - duplicate key in comma-separated list property: %s" % k})
        try:
            out[k] = schema[k](v)
        except ValueError as e:
            raise param_error({name: "invalid format - format error\n%s.%s: %s" % (name, k, e)})
    return out


def enum(*values):
    def check(v):
        if v not in values:
            raise ValueError("value '%s' does not have a value in the enumeration '%s'" % (v, ", ".join(values)))
        return v
    return check


def pattern(rx, what):
    def check(v):
        if not re.fullmatch(rx, v):
            raise ValueError("value does not match the regex pattern (%s)" % what)
        return v
    return check


def int_range(lo, hi):
    def check(v):
        if not re.fullmatch(r"\d+", v) or not lo <= int(v) <= hi:
            raise ValueError("value must be an integer between %d and %d" % (lo, hi))
        return v
    return check


def boolean(v):
    if v.lower() not in BOOLS:
        raise ValueError("type check ('boolean') failed - got '%s'" % v)
    return str(BOOLS[v.lower()])


def anything(v):
    return v


NET_SCHEMA = {"model": enum(*NIC_MODELS), "macaddr": pattern(MAC_RE.pattern[1:-1], "mac-addr"),
              "bridge": pattern(r"[-_.\w\d]+", "pve-bridge-id"), "tag": int_range(1, 4094),
              "firewall": boolean, "link_down": boolean, "mtu": int_range(1, 65520),
              "queues": int_range(0, 64), "rate": pattern(r"\d+(\.\d+)?", "number"),
              "trunks": pattern(r"\d+(-\d+)?(;\d+(-\d+)?)*", "pve-vlan-id-or-range")}
DISK_SCHEMA = {"file": anything, "size": pattern(r"\d+(\.\d+)?[KMGT]?", "disk-size"),
               "iothread": boolean, "discard": enum("ignore", "on"), "ssd": boolean,
               "cache": enum("none", "writethrough", "writeback", "unsafe", "directsync"),
               "backup": boolean, "replicate": boolean, "format": enum("raw", "qcow2", "vmdk"),
               "wwn": pattern(r"(?:0x)?[a-fA-F0-9]{16}", "wwn"), "serial": anything,
               "aio": enum("native", "threads", "io_uring"), "import-from": anything}
EFI_SCHEMA = {"file": anything, "efitype": enum("2m", "4m"), "format": enum("raw", "qcow2", "vmdk"),
              "pre-enrolled-keys": boolean, "ms-cert": enum("2011", "2023", "2023w", "2023k"),
              "size": pattern(r"\d+(\.\d+)?[KMGT]?", "disk-size"), "import-from": anything}
SMBIOS_SCHEMA = {"uuid": pattern(UUID_RE.pattern[1:-1], "uuid"), "base64": boolean,
                 "family": anything, "manufacturer": anything, "product": anything,
                 "serial": anything, "sku": anything, "version": anything}


def size_bytes(text, default_unit="K"):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", str(text))
    if not m:
        raise ValueError(text)
    unit = m.group(2) or default_unit
    return int(float(m.group(1)) * 1024 ** ("BKMGT".index(unit)))


def human_size(n):
    for unit, p in (("T", 4), ("G", 3), ("M", 2), ("K", 1)):
        if n % 1024 ** p == 0:
            return "%d%s" % (n // 1024 ** p, unit)
    return str(n)


def owner_of(volname):
    m = OWNER_RE.search(volname)
    return int(m.group(1)) if m else None


class Task:
    def __init__(self, upid, node, kind, vmid, user, polls, seconds, first_400, work):
        self.upid, self.node, self.type, self.id, self.user = upid, node, kind, vmid, user
        self.polls_left, self.deadline = polls, time.monotonic() + seconds
        self.first_400 = first_400
        self.work = work  # runs when the task ends; returns log lines, raises to fail
        self.status, self.exitstatus = "running", None
        self.log = ["task started by %s" % user]
        self.starttime = int(time.time())
        self.pid = 0x10000 + (hash(upid) & 0xFFFF)


class State:
    """Everything the stand-in knows; guarded by one lock."""

    def __init__(self, nodes, storages, bridges, token, task_polls, task_seconds, first_poll_400,
                 auth_delay, guard):
        self.lock = threading.RLock()
        self.nodes = list(nodes)
        # node -> storage -> volname -> {"size": bytes, "format": str}
        self.volumes = {n: {s: {} for s in storages} for n in nodes}
        self.bridges = set(bridges)
        self.tokens = {token}
        self.vms = {}  # vmid -> {"node", "config": {k: str}, "status", "lock"}
        self.tasks = {}
        self.task_polls, self.task_seconds = task_polls, task_seconds
        self.first_poll_400 = first_poll_400
        self.auth_delay = auth_delay
        self.guard = set(guard)
        self.violations = []
        self.fail_next = {}  # task type -> (exitstatus, [log lines])
        self.config_timeouts = 0
        self.locks = {}  # vmid -> (lock name, monotonic deadline)
        self.requests = []
        self.fingerprint = ""
        self.seq = 0
        self.backend = None  # optional: start(vmid, vm), stop(vmid), reset(vmid), running(vmid)
        self.roles = {r: set(p) for r, p in BUILTIN_ROLES.items()}
        self.users = {token.split("!")[0]: {"tokens": {}}}
        self.acl = set()  # (path, role, user)

    # -- helpers --

    def check_node(self, node):
        if node not in self.nodes:
            raise die("no such cluster node '%s'" % node)

    def vm(self, node, vmid):
        self.check_node(node)
        vm = self.vms.get(vmid)
        if vm is None or vm["node"] != node:
            raise die("Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist" % (node, vmid))
        return vm

    def current_lock(self, vmid):
        vm = self.vms.get(vmid)
        held = self.locks.get(vmid)
        if held and time.monotonic() < held[1]:
            return held[0]
        if held:
            del self.locks[vmid]
        return vm.get("lock") if vm else None

    def check_unlocked(self, vmid):
        lock = self.current_lock(vmid)
        if lock:
            raise die("VM is locked (%s)" % lock)

    def upid(self, node, kind, vmid, user):
        self.seq += 1
        return "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, 0x1000 + self.seq, 0x2000 + self.seq,
                                                   int(time.time()), kind, vmid, user)

    def task(self, node, kind, vmid, user, work):
        t = Task(self.upid(node, kind, "" if vmid is None else vmid, user), node, kind,
                 vmid, user, self.task_polls, self.task_seconds, self.first_poll_400, work)
        self.tasks[t.upid] = t
        return t.upid

    def finish(self, t):
        fail = self.fail_next.pop(t.type, None)
        try:
            if fail:
                t.log.extend(fail[1])
                raise die(fail[0])
            t.log.extend(t.work() or [])
            t.exitstatus = "OK"
        except PveError as e:
            t.log.append(e.message.rstrip("\n"))
            t.exitstatus = e.message.rstrip("\n")
            vm = self.vms.get(t.id)
            if t.type == "qmcreate" and vm and vm.get("lock") == "create":
                del self.vms[t.id]  # a failed create leaves no VM behind
        t.log.append("TASK OK" if t.exitstatus == "OK" else "TASK ERROR: " + t.exitstatus)
        t.status = "stopped"

    def tick(self):
        # a guest that powered itself off leaves a stopped VM, as on PVE
        for vmid, vm in self.vms.items():
            if vm["status"] == "running" and self.backend and not self.backend.running(vmid):
                vm["status"] = "stopped"
        now = time.monotonic()
        for t in list(self.tasks.values()):
            if t.status == "running" and (t.polls_left <= 0 or now >= t.deadline):
                self.finish(t)

    def alloc(self, node, storage, vmid, size):
        vols = self.volumes[node].get(storage)
        if vols is None:
            raise die("storage '%s' does not exist" % storage)
        k = 0
        while "vm-%d-disk-%d" % (vmid, k) in vols:
            k += 1
        name = "vm-%d-disk-%d" % (vmid, k)
        vols[name] = {"size": size, "format": "raw"}
        return "%s:%s" % (storage, name), size

    def volume(self, node, volid):
        storage, sep, name = volid.partition(":")
        vols = self.volumes[node].get(storage)
        if not sep or vols is None or name not in vols:
            return None
        return vols[name]

    def free(self, node, volid, log):
        storage, _, name = volid.partition(":")
        owner = owner_of(name)
        if owner in self.guard:
            self.violations.append(volid)
            raise die("stand-in guard: volume '%s' (owner %d) must never be deleted" % (volid, owner))
        vols = self.volumes[node].get(storage, {})
        if vols.pop(name, None) is not None:
            log.append("Removed volume '%s'" % volid)


class Api:
    def __init__(self, state):
        self.s = state

    # -- validation of VM options (POST create, PUT/POST config) --

    def check_options(self, params, vmid, node, creating):
        out, errors = {}, {}
        for k, v in params.items():
            try:
                out[k] = self.check_option(k, v, vmid, node, creating)
            except PveError as e:
                if e.code != 400:
                    raise
                errors.update(e.errors)
        if errors:
            raise param_error(errors)
        return out

    def check_option(self, k, v, vmid, node, creating):
        if k == "name":
            if not DNS_NAME_RE.match(v):
                raise param_error({k: "invalid format - value does not look like a valid DNS name"})
            return v
        if k == "memory":
            m = re.fullmatch(r"(?:current=)?(\d+)", v)
            if not m:
                raise param_error({k: "invalid format - value without key, but schema does not define a default key" if "=" not in v else "invalid format - format error"})
            if int(m.group(1)) < 16:
                raise param_error({k: "invalid format - format error\nmemory.current: value must have a minimum value of 16"})
            return m.group(1)
        if k in ("cores", "sockets"):
            return str(parse_int(k, v, 1, 1024 if k == "cores" else 4))
        if k == "cpu":
            property_list(k, v, "cputype", {"cputype": anything, "flags": anything, "hidden": boolean})
            return v
        if k == "machine":
            t = v[5:] if v.startswith("type=") else v
            if not MACHINE_RE.match(t):
                raise param_error({k: "invalid format - value does not match the regex pattern"})
            return v
        if k == "bios":
            if v not in ("seabios", "ovmf"):
                raise param_error({k: "value 'foo' does not have a value in the enumeration 'seabios, ovmf'".replace("foo", v)})
            return v
        if k == "ostype":
            if v not in OSTYPES:
                raise param_error({k: "value '%s' does not have a value in the enumeration '%s'" % (v, ", ".join(OSTYPES))})
            return v
        if k == "scsihw":
            if v not in SCSIHW:
                raise param_error({k: "value '%s' does not have a value in the enumeration '%s'" % (v, ", ".join(SCSIHW))})
            return v
        if k == "agent":
            property_list(k, v, "enabled", {"enabled": boolean, "fstrim_cloned_disks": boolean,
                                            "type": enum("virtio", "isa")})
            return v
        if k in ("onboot", "protection", "acpi"):
            return str(parse_bool(k, v))
        if k == "description":
            if len(v.encode()) > 8192:
                raise param_error({k: "value may only be 8192 characters long"})
            return v
        if k == "tags":
            tags = [t for t in re.split(r"[;, ]", v) if t]
            for t in tags:
                if not TAG_RE.match(t):
                    raise param_error({k: "invalid format - invalid tag '%s'" % t})
            return ";".join(tags)
        if k == "smbios1":
            property_list(k, v, None, SMBIOS_SCHEMA)
            return v
        if re.fullmatch(r"net\d+", k):
            if int(k[3:]) > 31:
                raise param_error({k: NOT_IN_SCHEMA})
            p = property_list(k, v, "model", NET_SCHEMA, {m: ("model", "macaddr") for m in NIC_MODELS})
            if "model" not in p:
                raise param_error({k: "invalid format - format error\n%s.model: property is missing and it is not optional" % k})
            mac = p.get("macaddr")
            if mac and int(mac[:2], 16) & 1:
                raise param_error({k: "invalid format - format error\n%s.macaddr: value '%s' is a multicast address" % (k, mac)})
            if not mac:
                mac = "BC:24:11:%02X:%02X:%02X" % tuple(os.urandom(3))
            s = "%s=%s" % (p["model"], mac.upper())
            for key in ("bridge", "firewall", "link_down", "mtu", "queues", "rate", "tag", "trunks"):
                if key in p:
                    s += ",%s=%s" % (key, p[key])
            return s
        m = re.fullmatch(r"(scsi|virtio|sata|ide)(\d+)", k)
        if m:
            if int(m.group(2)) >= DISK_KEYS[m.group(1)]:
                raise param_error({k: NOT_IN_SCHEMA})
            return self.check_disk(k, v, vmid, node, DISK_SCHEMA)
        if k == "efidisk0":
            return self.check_disk(k, v, vmid, node, EFI_SCHEMA)
        if k == "boot":
            p = property_list(k, v, "legacy", {"legacy": pattern(r"[acdn]{1,4}", "[acdn]{1,4}"),
                                               "order": pattern(r"[a-z]+\d+(;[a-z]+\d+)*", "pve-qm-bootdev-list")})
            return v
        raise param_error({k: NOT_IN_SCHEMA})

    def check_disk(self, k, v, vmid, node, schema):
        p = property_list(k, v, "file", schema)
        f = p.get("file")
        if not f:
            raise param_error({k: "invalid format - format error\n%s.file: property is missing and it is not optional" % k})
        storage, sep, rest = f.partition(":")
        if not sep:
            raise param_error({k: "invalid format - format error\n%s.file: invalid volume '%s'" % (k, f)})
        if storage not in self.s.volumes[node]:
            raise die("storage '%s' does not exist" % storage)
        if not re.fullmatch(r"\d+(\.\d+)?", rest) and self.s.volume(node, f) is None:
            raise die("volume '%s' does not exist" % f)
        return v

    def materialise_disks(self, node, vmid, opts, log):
        """STORAGE:SIZE -> a new volume vm-<vmid>-disk-<k>, as PVE allocates on create/update."""
        for k, v in list(opts.items()):
            if not (re.fullmatch(r"(scsi|virtio|sata|ide)\d+", k) or k == "efidisk0"):
                continue
            parts = v.split(",")
            f = parts[0][5:] if parts[0].startswith("file=") else parts[0]
            storage, _, rest = f.partition(":")
            extra = [x for x in parts[1:] if not x.startswith("size=")]
            if re.fullmatch(r"\d+(\.\d+)?", rest):
                size = 528 * 1024 if k == "efidisk0" else int(float(rest) * 1024 ** 3)
                volid, size = self.s.alloc(node, storage, vmid, size)
                log.append("%s: allocated volume '%s'" % (k, volid))
            else:
                volid = f
                size = self.s.volume(node, f)["size"]
            opts[k] = ",".join([volid] + extra + ["size=%s" % human_size(size)])

    # -- routing --

    def handle(self, method, path, query, body, auth):
        s = self.s
        with s.lock:
            s.tick()
            s.requests.append((method, path, dict(query, **body)))
        if path.startswith("/_standin/"):
            return self.control(method, path[len("/_standin/"):], dict(query, **body))
        if not path.startswith("/api2/json/"):
            raise PveError(501, "Method '%s %s' not implemented" % (method, path))
        user = self.authenticate(auth)
        params = dict(query)
        params.update(body)
        with s.lock:
            return self.route(method, path[len("/api2/json"):].rstrip("/"), params, user)

    def authenticate(self, auth):
        m = re.fullmatch(r"PVEAPIToken=(([^@\s]+@[^!\s]+)![^=\s]+)=(\S+)", auth or "")
        if not m or "%s=%s" % (m.group(1), m.group(3)) not in self.s.tokens:
            time.sleep(self.s.auth_delay)
            raise PveError(401, "authentication failure" if m else "No ticket")
        return m.group(1)

    def route(self, method, path, p, user):
        s = self.s
        seg = [urllib.parse.unquote(x) for x in path.split("/")[1:]]
        if seg == ["version"] and method == "GET":
            return {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"}
        if seg == ["nodes"] and method == "GET":
            return [{"node": n, "status": "online", "ssl_fingerprint": s.fingerprint,
                     "maxcpu": 8, "maxmem": 34359738368, "level": "", "type": "node",
                     "id": "node/" + n} for n in s.nodes]
        if seg == ["cluster", "resources"] and method == "GET":
            return self.resources(p.get("type"))
        if seg == ["cluster", "nextid"] and method == "GET":
            return self.nextid(p.get("vmid"))
        if seg and seg[0] == "access":
            return self.access(method, seg[1:], p, user)
        if len(seg) >= 2 and seg[0] == "nodes":
            node = seg[1]
            s.check_node(node)
            rest = seg[2:]
            if rest == ["qemu"]:
                if method == "GET":
                    return [self.vm_summary(vmid, vm) for vmid, vm in sorted(s.vms.items())
                            if vm["node"] == node]
                if method == "POST":
                    return self.create(node, p, user)
            if len(rest) >= 2 and rest[0] == "qemu":
                vmid = parse_int("vmid", rest[1], 100, 999999999)
                return self.qemu(method, node, vmid, rest[2:], p, user)
            if len(rest) == 3 and rest[0] == "tasks" and method == "GET":
                return self.task_route(node, rest[1], rest[2:], p)
            if len(rest) >= 3 and rest[0] == "storage" and rest[2] == "content":
                return self.storage(method, node, rest[1], rest[3:], p, user)
        raise PveError(501, "Method '%s %s' not implemented" % (method, "/api2/json" + path))

    def resources(self, kind):
        s = self.s
        if kind not in (None, "vm", "storage", "node", "sdn"):
            raise param_error({"type": "value '%s' does not have a value in the enumeration 'vm, storage, node, sdn'" % kind})
        out = []
        if kind in (None, "vm"):
            for vmid, vm in sorted(s.vms.items()):
                d = self.vm_summary(vmid, vm)
                d.update({"id": "qemu/%d" % vmid, "type": "qemu", "node": vm["node"]})
                out.append(d)
        if kind in (None, "node"):
            out += [{"id": "node/" + n, "type": "node", "node": n, "status": "online"} for n in s.nodes]
        if kind in (None, "storage"):
            out += [{"id": "storage/%s/%s" % (n, st), "type": "storage", "node": n, "storage": st,
                     "status": "available"} for n in s.nodes for st in s.volumes[n]]
        return out

    def vm_summary(self, vmid, vm):
        c = vm["config"]
        d = {"vmid": vmid, "name": c.get("name", "VM%d" % vmid), "status": vm["status"],
             "template": 0, "maxmem": int(c.get("memory", "512")) * 1024 * 1024,
             "cpus": int(c.get("cores", "1")) * int(c.get("sockets", "1"))}
        if c.get("tags"):
            d["tags"] = c["tags"]
        lock = self.s.current_lock(vmid)
        if lock:
            d["lock"] = lock
        return d

    def nextid(self, want):
        s = self.s
        if want is not None:
            n = parse_int("vmid", want, 100, 999999999)
            if n in s.vms:
                raise param_error({"vmid": "VM %d already exists" % n})
            return str(n)
        n = 100
        while n in s.vms:
            n += 1
        return str(n)

    def create(self, node, p, user):
        s = self.s
        if "vmid" not in p:
            raise param_error({"vmid": "property is missing and it is not optional"})
        vmid = parse_int("vmid", p.pop("vmid"), 100, 999999999)
        start = parse_bool("start", p.pop("start")) if "start" in p else 0
        for k in ("pool", "unique", "archive", "storage", "force", "live-restore", "bwlimit"):
            if k in p:
                raise param_error({k: "stand-in: option not simulated"})
        opts = self.check_options(p, vmid, node, True)
        if "boot" in opts:
            self.check_boot_devices(opts["boot"], opts)
        if vmid in s.vms:
            raise die("unable to create VM %d - VM %d already exists on node '%s'" %
                      (vmid, vmid, s.vms[vmid]["node"]))
        if "smbios1" not in opts:
            opts["smbios1"] = "uuid=%s" % uuidlib.uuid4()
        opts.setdefault("vmgenid", str(uuidlib.uuid4()))
        opts.setdefault("meta", "creation-qemu=9.2.0,ctime=%d" % int(time.time()))
        vm = {"node": node, "config": {}, "status": "stopped", "lock": "create"}
        s.vms[vmid] = vm

        def work():
            log = []
            try:
                self.materialise_disks(node, vmid, opts, log)
            except PveError:
                del s.vms[vmid]
                raise
            vm["config"] = opts
            vm["lock"] = None
            if start:
                log += self.do_start(vmid, vm)
            return log
        return s.task(node, "qmcreate", vmid, user, work)

    def check_boot_devices(self, boot, opts):
        m = re.search(r"(?:^|,)order=([^,]*)", boot)
        if not m:
            return
        for dev in m.group(1).split(";"):
            if dev not in opts:
                raise param_error({"boot": "invalid bootorder: device '%s' does not exist'" % dev})

    def qemu(self, method, node, vmid, rest, p, user):
        s = self.s
        vm = s.vm(node, vmid)
        if rest == [] and method == "DELETE":
            return self.destroy(node, vmid, vm, p, user)
        if rest == ["config"]:
            if method == "GET":
                c = dict(vm["config"])
                lock = s.current_lock(vmid)
                if lock:
                    c["lock"] = lock
                c["digest"] = self.digest(vm)
                return c
            if method in ("PUT", "POST"):
                return self.update(node, vmid, vm, p, user, method == "POST")
        if rest == ["status", "current"] and method == "GET":
            d = self.vm_summary(vmid, vm)
            d.update({"qmpstatus": vm["status"], "uptime": 0})
            if vm["status"] == "running":
                d["pid"] = 4242
            return d
        if len(rest) == 2 and rest[0] == "status" and method == "POST":
            return self.power(node, vmid, vm, rest[1], p, user)
        if rest == ["resize"] and method == "PUT":
            return self.resize(node, vmid, vm, p, user)
        raise PveError(501, "Method '%s /nodes/%s/qemu/%d/%s' not implemented" % (method, node, vmid, "/".join(rest)))

    @staticmethod
    def digest(vm):
        text = "".join("%s: %s\n" % kv for kv in sorted(vm["config"].items()))
        return hashlib.sha1(text.encode()).hexdigest()

    def update(self, node, vmid, vm, p, user, asynchronous):
        s = self.s
        digest = p.pop("digest", None)
        delete = [k for k in re.split(r"[,; ]", p.pop("delete", "")) if k]
        p.pop("skiplock", None)
        p.pop("background_delay", None)
        for k in ("revert", "force"):
            if k in p:
                raise param_error({k: "stand-in: option not simulated"})
        if s.config_timeouts > 0:
            s.config_timeouts -= 1
            time.sleep(0.1)
            raise die("can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout" % vmid)
        s.check_unlocked(vmid)
        if digest and digest != self.digest(vm):
            raise die("detected modified configuration - file changed by other user? Try again.")
        opts = self.check_options(p, vmid, node, False)
        for k in delete:
            if k in opts:
                raise param_error({"delete": "cannot set and delete '%s' at the same time" % k})
        merged = dict(vm["config"])
        merged.update(opts)
        for k in delete:
            merged.pop(k, None)
        if "boot" in merged:
            self.check_boot_devices(merged["boot"], merged)
        log = []
        self.materialise_disks(node, vmid, opts, log)
        for k in delete:
            old = vm["config"].get(k)
            if old and (re.fullmatch(r"(scsi|virtio|sata|ide)\d+", k) or k == "efidisk0"):
                n = 0
                while "unused%d" % n in vm["config"]:
                    n += 1
                vm["config"]["unused%d" % n] = old.split(",")[0]
            vm["config"].pop(k, None)
        vm["config"].update(opts)
        if asynchronous:
            return s.task(node, "qmconfig", vmid, user, lambda: log)
        return None

    RESIZE_DISKS = (["%s%d" % (bus, i) for bus, n in (("ide", 4), ("scsi", 31), ("virtio", 16),
                                                      ("sata", 6)) for i in range(n)]
                    + ["efidisk0", "tpmstate0"])

    def resize(self, node, vmid, vm, p, user):
        """qemu-server's resize_vm (PVE 8): the parameters are checked at once; the rest
        runs in a "resize" task under the config lock: digest, lock, the disk, the size
        (absolute, or "+" added; bytes without a unit), never smaller, equal a no-op."""
        s = self.s
        errors = {k: NOT_IN_SCHEMA for k in p if k not in ("disk", "size", "digest", "skiplock")}
        for k in ("disk", "size"):
            if k not in p:
                errors[k] = "property is missing and it is not optional"
        if "disk" in p and p["disk"] not in self.RESIZE_DISKS:
            errors["disk"] = "value '%s' does not have a value in the enumeration '%s'" % (
                p["disk"], ", ".join(self.RESIZE_DISKS))
        m = re.fullmatch(r"(\+)?(\d+(?:\.\d+)?)([KMGT])?", p.get("size", ""))
        if "size" in p and not m:
            errors["size"] = "value does not match the regex pattern"
        if errors:
            raise param_error(errors)
        disk, digest = p["disk"], p.get("digest")

        def work():
            if digest and digest != self.digest(vm):
                raise die("detected modified configuration - file changed by other user? Try again.")
            s.check_unlocked(vmid)
            value = vm["config"].get(disk)
            if not value:
                raise die("disk '%s' does not exist" % disk)
            volid = value.split(",")[0]
            vol = s.volume(node, volid)
            if vol is None:
                raise die("no such volume '%s'" % volid)
            size = vol["size"]
            new = float(m.group(2)) * 1024 ** ("BKMGT".index(m.group(3) or "B"))
            new = int(new + size if m.group(1) else new)
            if new < size:
                raise die("shrinking disks is not supported")
            if new == size:
                return []
            vol["size"] = new
            parts = [x for x in value.split(",") if not x.startswith("size=")]
            vm["config"][disk] = ",".join(parts + ["size=%s" % human_size(new)])
            return ["resized %s (%s) to %s" % (disk, volid, human_size(new))]
        return s.task(node, "resize", vmid, user, work)

    def do_start(self, vmid, vm):
        s = self.s
        if vm["status"] == "running":
            raise die("VM %d already running" % vmid)
        for k, v in sorted(vm["config"].items()):
            if re.fullmatch(r"net\d+", k):
                m = re.search(r"(?:^|,)bridge=([^,]+)", v)
                if m and m.group(1) not in s.bridges:
                    raise die("bridge '%s' does not exist" % m.group(1))
        if s.backend:
            s.backend.start(vmid, vm)
        vm["status"] = "running"
        return []

    def power(self, node, vmid, vm, action, p, user):
        s = self.s
        allowed = {"start": ("timeout", "skiplock", "machine", "force-cpu"),
                   "stop": ("timeout", "keepActive", "overrule-shutdown", "skiplock"),
                   "shutdown": ("timeout", "forceStop", "keepActive", "skiplock"),
                   "reset": ("skiplock",), "reboot": ("timeout",)}
        if action not in allowed:
            raise PveError(501, "Method 'POST /nodes/%s/qemu/%d/status/%s' not implemented" % (node, vmid, action))
        for k in p:
            if k not in allowed[action]:
                raise param_error({k: NOT_IN_SCHEMA})
        if "skiplock" not in p:
            s.check_unlocked(vmid)

        def work():
            if action == "start":
                return self.do_start(vmid, vm)
            if vm["status"] != "running":
                if action in ("reset", "reboot"):
                    raise die("VM %d not running" % vmid)
                return ["VM %d is not running" % vmid] if action == "shutdown" else []
            if action in ("stop", "shutdown"):
                if s.backend:
                    s.backend.stop(vmid)
                vm["status"] = "stopped"
            elif s.backend:
                s.backend.reset(vmid)
            return []
        kind = {"start": "qmstart", "stop": "qmstop", "shutdown": "qmshutdown",
                "reset": "qmreset", "reboot": "qmreboot"}[action]
        return s.task(node, kind, vmid, user, work)

    def destroy(self, node, vmid, vm, p, user):
        s = self.s
        for k in p:
            if k not in ("purge", "destroy-unreferenced-disks", "skiplock"):
                raise param_error({k: NOT_IN_SCHEMA})
        unref = parse_bool("destroy-unreferenced-disks", p.get("destroy-unreferenced-disks", "0"))
        if "skiplock" not in p:
            s.check_unlocked(vmid)
        if vm["status"] == "running":
            raise die("VM %d is running - destroy failed" % vmid)

        def work():
            log = []
            vm["lock"] = "destroyed"
            # destroy_vm: only volumes whose name owner is this VM are freed
            for k, v in sorted(vm["config"].items()):
                if re.fullmatch(r"(scsi|virtio|sata|ide)\d+|efidisk0|unused\d+", k):
                    volid = v.split(",")[0]
                    volid = volid[5:] if volid.startswith("file=") else volid
                    if owner_of(volid.partition(":")[2]) == vmid:
                        s.free(node, volid, log)
            if unref:
                for storage, vols in s.volumes[node].items():
                    for name in sorted(vols):
                        if owner_of(name) == vmid:
                            s.free(node, "%s:%s" % (storage, name), log)
            if s.backend:
                s.backend.stop(vmid)
            del s.vms[vmid]
            return log
        return s.task(node, "qmdestroy", vmid, user, work)

    def task_route(self, node, upid, rest, p):
        s = self.s
        t = s.tasks.get(upid)
        if t is None or t.node != node:
            raise param_error({"upid": "unable to parse worker upid '%s'" % upid} if not upid.startswith("UPID:")
                              else {"upid": "no such task"})
        if rest == ["status"]:
            if t.first_400:
                t.first_400 = False
                raise param_error({"upid": "no such task"})
            if t.status == "running":
                t.polls_left -= 1
                if t.polls_left <= 0:
                    s.finish(t)
            d = {"status": t.status, "type": t.type, "id": str(t.id if t.id is not None else ""),
                 "node": t.node, "pid": t.pid, "pstart": 0x2000, "starttime": t.starttime,
                 "upid": t.upid, "user": t.user}
            if t.status == "stopped":
                d["exitstatus"] = t.exitstatus
            return d
        if rest == ["log"]:
            start = parse_int("start", p.get("start", "0"), 0)
            limit = parse_int("limit", p.get("limit", "50"), 0)
            lines = [{"n": i + 1, "t": line} for i, line in enumerate(t.log)]
            return lines[start:start + limit]
        raise PveError(501, "not implemented")

    def storage(self, method, node, storage, rest, p, user):
        s = self.s
        vols = s.volumes[node].get(storage)
        if vols is None:
            raise die("storage '%s' does not exist" % storage)
        if not rest and method == "GET":
            if p.get("content") not in (None, "images"):
                return []
            want = parse_int("vmid", p["vmid"], 100, 999999999) if "vmid" in p else None
            out = []
            for name, v in sorted(vols.items()):
                owner = owner_of(name)
                if want is not None and owner != want:
                    continue
                d = {"volid": "%s:%s" % (storage, name), "format": v["format"], "size": v["size"],
                     "content": "images", "ctime": int(time.time())}
                if owner:
                    d["vmid"] = owner
                out.append(d)
            return out
        if not rest and method == "POST":
            for k in ("vmid", "filename", "size"):
                if k not in p:
                    raise param_error({k: "property is missing and it is not optional"})
            for k in p:
                if k not in ("vmid", "filename", "size", "format"):
                    raise param_error({k: NOT_IN_SCHEMA})
            vmid = parse_int("vmid", p["vmid"], 100, 999999999)
            name = p["filename"]
            fmt = p.get("format", "raw")
            if fmt not in ("raw", "qcow2", "subvol", "vmdk"):
                raise param_error({"format": "value '%s' does not have a value in the enumeration 'raw, qcow2, subvol, vmdk'" % fmt})
            try:
                size = size_bytes(p["size"])
            except ValueError:
                raise param_error({"size": "value does not match the regex pattern"})
            if owner_of(name) != vmid:
                raise die("illegal name '%s' - should be 'vm-%d-*'" % (name, vmid))
            if name in vols:
                raise die("volume '%s:%s' already exists" % (storage, name))
            vols[name] = {"size": size, "format": fmt}
            return "%s:%s" % (storage, name)
        if len(rest) == 1 and method == "DELETE":
            volid = rest[0] if ":" in rest[0] else "%s:%s" % (storage, rest[0])
            if s.volume(node, volid) is None:
                raise die("volume '%s' does not exist" % volid)
            for vmid, vm in s.vms.items():
                for k, v in vm["config"].items():
                    if v.split(",")[0] == volid and not k.startswith("unused"):
                        raise die("volume '%s' is still in use by VM %d (%s)" % (volid, vmid, k))
            log = []
            s.free(node, volid, log)  # synchronous here; PVE runs it in an imgdel task
            return s.task(node, "imgdel", None, user, lambda: log)
        raise PveError(501, "not implemented")

    # -- /access: roles, users, ACLs, tokens (pve-access-control API2/Role.pm, User.pm, ACL.pm) --

    def access(self, method, seg, p, user):
        s = self.s
        if seg == ["roles"] and method == "GET":
            return [{"roleid": r, "privs": ",".join(sorted(v)), "special": int(r in BUILTIN_ROLES)}
                    for r, v in sorted(s.roles.items())]
        if seg == ["roles"] and method == "POST":
            role = p.get("roleid")
            if not role or not re.fullmatch(r"[A-Za-z0-9.\-_]+", role):
                raise param_error({"roleid": "property is missing and it is not optional" if not role
                                   else "invalid format - value does not match the regex pattern"})
            if role in s.roles:
                raise die("role '%s' already exists" % role)
            s.roles[role] = self.privs(p.get("privs", ""))
            return None
        if len(seg) == 2 and seg[0] == "roles":
            role = seg[1]
            if role not in s.roles:
                raise die("role '%s' does not exist" % role)
            if method == "GET":
                return {k: 1 for k in sorted(s.roles[role])}
            if method == "PUT":
                if role in BUILTIN_ROLES:
                    raise die("cannot modify built-in role '%s'" % role)
                privs = self.privs(p.get("privs", ""))
                s.roles[role] = s.roles[role] | privs if parse_bool("append", p.get("append", "0")) else privs
                return None
        if seg == ["users"] and method == "POST":
            uid = p.get("userid", "")
            if not USERID_RE.match(uid):
                raise param_error({"userid": "invalid format - value does not look like a valid user name"})
            if uid in s.users:
                raise die("create user failed: user '%s' already exists" % uid)
            s.users[uid] = {"tokens": {}, "comment": p.get("comment", "")}
            return None
        if len(seg) >= 2 and seg[0] == "users":
            uid = seg[1]
            if uid not in s.users:
                raise die("no such user ('%s')" % uid)
            if len(seg) == 2 and method == "GET":
                return {"enable": 1, "expire": 0, "comment": s.users[uid].get("comment", ""),
                        "tokens": {t: {"privsep": v["privsep"]} for t, v in s.users[uid]["tokens"].items()}}
            if len(seg) == 4 and seg[2] == "token":
                return self.token(method, uid, seg[3], p)
        if seg == ["acl"] and method == "GET":
            return [{"path": a[0], "roleid": a[1], "ugid": a[2], "type": "user", "propagate": 1}
                    for a in sorted(s.acl)]
        if seg == ["acl"] and method == "PUT":
            for k in ("path", "roles"):
                if k not in p:
                    raise param_error({k: "property is missing and it is not optional"})
            for role in p["roles"].split(","):
                if role not in s.roles:
                    raise die("role '%s' does not exist" % role)
                for u in [x for x in p.get("users", "").split(",") if x]:
                    if u not in s.users:
                        raise die("user '%s' does not exist" % u)
                    if parse_bool("delete", p.get("delete", "0")):
                        s.acl.discard((p["path"], role, u))
                    else:
                        s.acl.add((p["path"], role, u))
            return None
        raise PveError(501, "Method '%s /api2/json/access/%s' not implemented" % (method, "/".join(seg)))

    @staticmethod
    def privs(text):
        out = set()
        for priv in [x for x in re.split(r"[,; ]", text) if x]:
            if priv not in PRIVILEGES:
                raise die("invalid privilege '%s'" % priv)
            out.add(priv)
        return out

    def token(self, method, uid, tid, p):
        s = self.s
        tokens = s.users[uid]["tokens"]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9.\-_]+", tid):
            raise param_error({"tokenid": "invalid format - value does not match the regex pattern"})
        full = "%s!%s" % (uid, tid)
        if method == "POST":
            if tid in tokens:
                raise die("Token already exists.")
            secret = str(uuidlib.uuid4())
            privsep = parse_bool("privsep", p.get("privsep", "1"))
            tokens[tid] = {"privsep": privsep, "secret": secret}
            s.tokens.add("%s=%s" % (full, secret))
            return {"full-tokenid": full, "info": {"privsep": privsep, "expire": 0}, "value": secret}
        if tid not in tokens:
            raise die("no such token '%s' for user '%s'" % (tid, uid))
        if method == "GET":
            return {"privsep": tokens[tid]["privsep"], "expire": 0}
        if method == "DELETE":
            s.tokens.discard("%s=%s" % (full, tokens.pop(tid)["secret"]))
            return None
        raise PveError(501, "not implemented")

    # -- test hooks over HTTP (no token needed; not part of PVE) --

    def control(self, method, what, p):
        s = self.s
        with s.lock:
            if what == "state" and method == "GET":
                return {"vms": {str(k): {"node": v["node"], "status": v["status"], "config": v["config"]}
                                for k, v in s.vms.items()},
                        "volumes": s.volumes, "violations": s.violations}
            if what == "lock" and method == "POST":
                s.locks[int(p["vmid"])] = (p.get("lock", "backup"), time.monotonic() + float(p.get("seconds", "2")))
                return None
            if what == "fail" and method == "POST":
                s.fail_next[p["type"]] = (p["exitstatus"], p.get("log", "").split("\n") if p.get("log") else [])
                return None
        raise PveError(501, "no such control route")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"

    def log_message(self, *args):
        pass

    def do(self):
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            body = {}
            if raw:
                if self.command in ("GET", "DELETE"):
                    raise param_error({"body": "GET and DELETE take their parameters in the query string"})
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype == "application/json":
                    try:
                        doc = json.loads(raw)
                    except ValueError:
                        raise PveError(400, "malformed JSON body")
                    if not isinstance(doc, dict):
                        raise PveError(400, "JSON body must be an object")
                    body = {k: str(int(v)) if isinstance(v, bool) else str(v) for k, v in doc.items()}
                elif ctype == "application/x-www-form-urlencoded":
                    body = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True))
                else:
                    raise PveError(415, "unsupported content type '%s'" % ctype)
            data = api.handle(self.command, url.path, query, body, self.headers.get("Authorization"))
            self.send(200, "OK", {"data": data})
        except PveError as e:
            msg = e.message if e.message.endswith("\n") else e.message + "\n"
            doc = {"data": None, "message": msg}
            if e.errors:
                doc["errors"] = e.errors
            self.send(e.code, msg.splitlines()[0] if msg.strip() else REASONS.get(e.code, "Error"), doc)

    def send(self, code, reason, doc):
        data = json.dumps(doc).encode()
        self.send_response(code, reason)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=0")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do


def make_cert(d):
    crt, key = os.path.join(d, "pve.crt"), os.path.join(d, "pve.key")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=host3",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True)
    return crt, key


def fingerprint_of(crt):
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


class _Server(http.server.ThreadingHTTPServer):
    """Keeps its open connections, so that stop() can close kept-alive ones too."""

    def __init__(self, *a):
        self.conns, self.conns_lock = set(), threading.Lock()
        super().__init__(*a)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)


class ProxmoxApi:
    """One stand-in server. dir receives pve.crt/pve.key and the token file."""

    def __init__(self, dir, nodes=("host3",), storages=("local-lvm",), bridges=("vmbr0",),
                 token=DEFAULT_TOKEN, task_polls=2, task_seconds=2.0, first_poll_400=True,
                 auth_delay=3.0, guard=(9999,)):
        os.makedirs(dir, exist_ok=True)
        self.dir = dir
        self.state = State(nodes, storages, bridges, token, task_polls, task_seconds,
                           first_poll_400, auth_delay, guard)
        self.crt, self.key = make_cert(dir)
        self.fingerprint = self.state.fingerprint = fingerprint_of(self.crt)
        self.token = token
        self.token_file = os.path.join(dir, "token")
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(self.crt, self.key)
        self._listen(0)
        self.port = self.httpd.server_address[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self.thread = None

    def _listen(self, port):
        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = self.ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.api = Api(self.state)

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """pveproxy going away: the listener and every open connection closed."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.httpd.conns_lock:
            for c in list(self.httpd.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def resume(self):
        """Test hook: after stop() (pveproxy down), the same API on the same port again;
        the VMs, volumes and tasks are as they were."""
        self._listen(self.port)
        return self.start()

    def info(self):
        return {"url": self.url, "port": self.port, "fingerprint": self.fingerprint,
                "ca_file": self.crt, "token_file": self.token_file, "node": self.state.nodes[0]}

    # -- for tests --

    def vm(self, vmid):
        with self.state.lock:
            vm = self.state.vms.get(vmid)
            return None if vm is None else {"node": vm["node"], "status": vm["status"],
                                            "config": dict(vm["config"])}

    def vmids(self):
        with self.state.lock:
            return sorted(self.state.vms)

    def volumes(self, node=None, storage=None):
        """{volid: size in bytes} on a node (default the first) and storage (default all)."""
        s = self.state
        with s.lock:
            node = node or s.nodes[0]
            return {"%s:%s" % (st, n): v["size"] for st, vols in s.volumes[node].items()
                    if storage in (None, st) for n, v in vols.items()}

    def add_volume(self, volid, size, node=None):
        s = self.state
        with s.lock:
            storage, _, name = volid.partition(":")
            s.volumes[node or s.nodes[0]][storage][name] = {"size": size, "format": "raw"}

    def add_vm(self, vmid, config, node=None, status="stopped"):
        """A VM made by someone else (no task), config as PVE stores it."""
        s = self.state
        with s.lock:
            s.vms[vmid] = {"node": node or s.nodes[0], "config": dict(config), "status": status, "lock": None}

    def set_config(self, vmid, **kv):
        with self.state.lock:
            self.state.vms[vmid]["config"].update({k: str(v) for k, v in kv.items()})

    def lock_vm(self, vmid, lock="backup", seconds=2.0):
        with self.state.lock:
            self.state.locks[vmid] = (lock, time.monotonic() + seconds)

    def fail_next_task(self, kind, exitstatus, log=()):
        with self.state.lock:
            self.state.fail_next[kind] = (exitstatus, list(log))

    def config_timeouts(self, n):
        with self.state.lock:
            self.state.config_timeouts = n

    def violations(self):
        with self.state.lock:
            return list(self.state.violations)

    def requests(self, method=None, prefix=""):
        with self.state.lock:
            return [r for r in self.state.requests
                    if (method is None or r[0] == method) and r[1].startswith(prefix)]

    def reset_requests(self):
        with self.state.lock:
            self.state.requests.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="where pve.crt, pve.key and token go")
    ap.add_argument("--node", action="append", help="node name (repeatable; default host3)")
    ap.add_argument("--storage", action="append", help="storage on every node (default local-lvm)")
    ap.add_argument("--bridge", action="append", help="bridge that exists (default vmbr0)")
    ap.add_argument("--token", default=DEFAULT_TOKEN, help="USER@REALM!ID=SECRET")
    ap.add_argument("--auth-delay", type=float, default=3.0, help="seconds before a 401")
    ap.add_argument("--task-polls", type=int, default=2)
    ap.add_argument("--task-seconds", type=float, default=2.0)
    ap.add_argument("--no-first-poll-400", action="store_true")
    ap.add_argument("--guard", type=int, action="append",
                    help="owner vmid whose volumes must never be deleted (default 9999)")
    a = ap.parse_args()
    srv = ProxmoxApi(a.dir, nodes=a.node or ["host3"], storages=a.storage or ["local-lvm"],
                     bridges=a.bridge or ["vmbr0"], token=a.token, task_polls=a.task_polls,
                     task_seconds=a.task_seconds, first_poll_400=not a.no_first_poll_400,
                     auth_delay=a.auth_delay, guard=a.guard or [9999])
    print(json.dumps(srv.info()), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.httpd.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
