"""Talos secrets and configs made by bootctl and served by bootd: the PKI read back with
openssl, every generated document checked against Talos v1.13.9's JSON schema with
python3-jsonschema, and a generated config downloaded through /config/<token>."""
import base64
import copy
import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import jsonschema
import yaml

from tests.integration.harness import BOOTCTL, Bootd, config_path, read, wait_for

FIXTURES = os.path.abspath("tests/fixtures/talos")
REFERENCE_SECRETS = os.path.join(FIXTURES, "secrets-reference.yaml")

LAB = """\
cluster:
  name: it
  talos_version: v1.13.9
  vip: 192.0.2.10
  cni: none
  kube_proxy: false
  cert_sans: [api.it.example]
  inline_manifests: [{name: cilium, file: cilium.yaml}]
lan:
  interface: br0
  dhcp: full
  subnet: 192.0.2.0/24
  range: [192.0.2.100, 192.0.2.199]
  gateway: 192.0.2.1
  dns: [192.0.2.53]
  boot_server: 192.0.2.1
machines:
  - {name: cp-1, mac: "52:54:00:00:00:01", role: controlplane, ip: 192.0.2.11}
  - {name: cp-2, mac: "52:54:00:00:00:03", role: controlplane, ip: 192.0.2.13, addressing: static}
  - {name: w-1, mac: "52:54:00:00:00:02", role: worker, ip: 192.0.2.12, labels: {zone: a}}
"""

CILIUM = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: cilium\n  namespace: kube-system\n"


def bootctl(*args, cwd=None):
    return subprocess.run([BOOTCTL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def openssl(*args, stdin=None):
    r = subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout.decode()


def pem(b64):
    return base64.b64decode(b64)


class Cert:
    """What openssl says about one certificate."""

    def __init__(self, data):
        self.pem = data
        self.text = openssl("x509", "-noout", "-text", stdin=data)
        dates = openssl("x509", "-noout", "-startdate", "-enddate", stdin=data)
        fmt = "%b %d %H:%M:%S %Y GMT"
        found = dict(line.split("=", 1) for line in dates.splitlines())
        self.not_before = datetime.datetime.strptime(" ".join(found["notBefore"].split()), fmt)
        self.not_after = datetime.datetime.strptime(" ".join(found["notAfter"].split()), fmt)

    def ext(self, name):
        """The value lines of an X509v3 extension, and whether it is critical."""
        m = re.search(r"X509v3 %s:( critical)? *\n\s+(.*)" % re.escape(name), self.text)
        return (m.group(2).strip(), bool(m.group(1))) if m else (None, False)

    def subject(self):
        return re.search(r"Subject: (.*)", self.text).group(1).strip()

    def days(self):
        return (self.not_after - self.not_before).total_seconds() / 86400


def verify(ca_pem, leaf_pem):
    with tempfile.TemporaryDirectory() as d:
        ca, leaf = os.path.join(d, "ca.crt"), os.path.join(d, "leaf.crt")
        with open(ca, "wb") as f:
            f.write(ca_pem)
        with open(leaf, "wb") as f:
            f.write(leaf_pem)
        return openssl("verify", "-CAfile", ca, leaf)


# --- the JSON schema ------------------------------------------------------------------
#
# Talos v1.13 still reads fields its published schema leaves out ("docgen:nodoc",
# deprecated): gen config itself writes `persist: true`, and the homelab's patches use
# the legacy machine.network. The schema says additionalProperties: false, so those
# documents would fail it although Talos accepts them. Rather than skip any document,
# the check runs against a copy of the schema that adds exactly these fields, typed as
# Talos's Go structs declare them (talos@v1.13.9 pkg/machinery/config/types/v1alpha1/
# v1alpha1_types.go: Config.ConfigPersist *bool; MachineConfig.MachineNetwork
# *NetworkConfig with hostname, interfaces, nameservers; Device; DeviceVIPConfig), and
# checks everything else as published.

LEGACY_DEFS = {
    "legacy.NetworkConfig": {
        "type": "object",
        "properties": {
            "hostname": {"type": "string"},
            "interfaces": {"type": "array", "items": {"$ref": "#/$defs/legacy.Device"}},
            "nameservers": {"type": "array", "items": {"type": "string"}},
            "searchDomains": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    },
    "legacy.Device": {
        "type": "object",
        "properties": {
            "interface": {"type": "string"},
            # v1alpha1_types.go NetworkDeviceSelector (the link by its MAC, bus path...)
            "deviceSelector": {"type": "object", "properties": {
                "busPath": {"type": "string"}, "hardwareAddr": {"type": "string"},
                "permanentAddr": {"type": "string"}, "pciID": {"type": "string"},
                "driver": {"type": "string"}, "physical": {"type": "boolean"}},
                "additionalProperties": False},
            "addresses": {"type": "array", "items": {"type": "string"}},
            "dhcp": {"type": "boolean"},
            "mtu": {"type": "integer"},
            "vip": {"type": "object", "properties": {"ip": {"type": "string"}},
                    "required": ["ip"], "additionalProperties": False},
        },
        "additionalProperties": False,
    },
}


def talos_schema():
    with open(os.path.join(FIXTURES, "config.schema.v1.13.9.json")) as f:
        schema = json.load(f)
    defs = schema["$defs"]
    for name in ("persist",):
        assert name not in defs["v1alpha1.Config"]["properties"], "the schema now has " + name
    assert "network" not in defs["v1alpha1.MachineConfig"]["properties"]
    extended = copy.deepcopy(schema)
    extended["$defs"]["v1alpha1.Config"]["properties"]["persist"] = {"type": "boolean", "const": True}
    extended["$defs"]["v1alpha1.MachineConfig"]["properties"]["network"] = {
        "$ref": "#/$defs/legacy.NetworkConfig"}
    extended["$defs"].update(LEGACY_DEFS)
    return schema, extended


class Schema:
    published, extended = talos_schema()
    validator = jsonschema.Draft202012Validator(extended)

    @classmethod
    def errors(cls, text):
        """Every document of a config checked against the schema; messages or []."""
        found = []
        for doc in yaml.safe_load_all(text):
            errs = list(cls.validator.iter_errors(doc))
            if errs:
                kind = doc.get("kind", "v1alpha1")
                best = jsonschema.exceptions.best_match(errs)
                # oneOf hides the reason; say which kind's definition it failed and why
                ref = "v1alpha1.Config" if kind == "v1alpha1" else None
                for name, d in cls.extended["$defs"].items():
                    if d.get("properties", {}).get("kind", {}).get("enum") == [kind]:
                        ref = name
                why = []
                if ref:
                    sub = jsonschema.Draft202012Validator(
                        dict(cls.extended, **{"$ref": "#/$defs/" + ref}))
                    why = [e.message for e in sub.iter_errors(doc)]
                found.append("%s: %s %s" % (kind, best.message[:200], why[:3]))
        return found


class SchemaHandling(unittest.TestCase):
    def test_published_schema_refuses_persist_and_the_extension_accepts_only_it(self):
        """The handling above is needed, and narrow: the published schema refuses
        gen config's own output, the extended one accepts it, and a typo still fails."""
        text = read(os.path.join(FIXTURES, "v1.13-base-controlplane.yaml"))
        doc = next(yaml.safe_load_all(text))
        published = jsonschema.Draft202012Validator(Schema.published)
        self.assertTrue(list(published.iter_errors(doc)), "the published schema takes persist now")
        self.assertEqual(Schema.errors(text), [])
        doc["machine"]["instal"] = doc["machine"].pop("install")
        self.assertTrue(list(Schema.validator.iter_errors(doc)))
        doc = next(yaml.safe_load_all(text))
        doc["persist"] = False
        self.assertTrue(list(Schema.validator.iter_errors(doc)), "persist must stay true")

    def test_homelab_results_fit_the_schema(self):
        # tests/fixtures/homelab/*.yaml are bootd's output for the homelab's own patches
        # (test_talos_patch.c compares them byte for byte)
        for name in ("ctrl-00.yaml", "work-00.yaml"):
            text = read(os.path.join("tests/fixtures/homelab", name))
            self.assertEqual(Schema.errors(text), [], name)


class Generated(unittest.TestCase):
    """One generated bundle (RSA-4096 takes a moment), checked every way."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="bootd-talos-")
        cls.lab = os.path.join(cls.dir, "lab.yaml")
        with open(cls.lab, "w") as f:
            f.write(LAB)
        with open(os.path.join(cls.dir, "cilium.yaml"), "w") as f:
            f.write(CILIUM)
        r = bootctl("gen", "secrets", cls.lab)
        assert r.returncode == 0, r.stderr
        cls.secrets_path = os.path.join(cls.dir, "secrets.yaml")
        cls.secrets_text = read(cls.secrets_path)
        cls.secrets = yaml.safe_load(cls.secrets_text)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_bundle_layout_is_talosctls(self):
        self.assertEqual(os.stat(self.secrets_path).st_mode & 0o777, 0o600)
        keys = re.findall(r"^( *)([a-z0-9]+):", self.secrets_text, re.M)
        self.assertEqual([(len(i) // 4, k) for i, k in keys], [
            (0, "cluster"), (1, "id"), (1, "secret"),
            (0, "secrets"), (1, "bootstraptoken"), (1, "secretboxencryptionsecret"),
            (0, "trustdinfo"), (1, "token"),
            (0, "certs"),
            (1, "etcd"), (2, "crt"), (2, "key"),
            (1, "k8s"), (2, "crt"), (2, "key"),
            (1, "k8saggregator"), (2, "crt"), (2, "key"),
            (1, "k8sserviceaccount"), (2, "key"),
            (1, "os"), (2, "crt"), (2, "key")])
        self.assertEqual(len(base64.urlsafe_b64decode(self.secrets["cluster"]["id"])), 32)
        self.assertEqual(len(base64.b64decode(self.secrets["cluster"]["secret"])), 32)
        self.assertRegex(self.secrets["secrets"]["bootstraptoken"], r"^[a-z0-9]{6}\.[a-z0-9]{16}$")

    def test_cas_as_talos_makes_them(self):
        """etcd, Kubernetes and aggregator CAs ECDSA P-256, the os CA Ed25519, as
        `talosctl gen secrets` makes them."""
        subjects = {"etcd": "O = etcd", "k8s": "O = kubernetes", "k8saggregator": "CN = front-proxy",
                    "os": "O = talos"}
        for name, subject in subjects.items():
            ca = Cert(pem(self.secrets["certs"][name]["crt"]))
            self.assertEqual(ca.subject(), subject, name)
            key = pem(self.secrets["certs"][name]["key"])
            if name == "os":
                self.assertIn("Signature Algorithm: ED25519", ca.text)
                self.assertIn("Public Key Algorithm: ED25519", ca.text)
                # talosctl's block type for a PKCS#8 body, which openssl reads as PRIVATE KEY
                self.assertTrue(key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----\n"))
                key = key.replace(b"ED25519 PRIVATE KEY", b"PRIVATE KEY")
            else:
                self.assertIn("Signature Algorithm: ecdsa-with-SHA256", ca.text)
                self.assertIn("ASN1 OID: prime256v1", ca.text)
                self.assertTrue(key.startswith(b"-----BEGIN EC PRIVATE KEY-----"))
                # RFC 5758 3.2: no parameters after ecdsa-with-SHA256
                parsed = openssl("asn1parse", stdin=ca.pem).splitlines()
                algs = [i for i, l in enumerate(parsed) if ":ecdsa-with-SHA256" in l]
                self.assertEqual(len(algs), 2, name)
                for i in algs:
                    self.assertNotIn("NULL", parsed[i + 1], "\n".join(parsed))
            self.assertEqual(ca.ext("Key Usage"), ("Digital Signature, Certificate Sign", True))
            self.assertEqual(ca.ext("Extended Key Usage"),
                             ("TLS Web Server Authentication, TLS Web Client Authentication", False))
            self.assertEqual(ca.ext("Basic Constraints"), ("CA:TRUE", True))
            self.assertIsNotNone(ca.ext("Subject Key Identifier")[0])
            self.assertAlmostEqual(ca.days(), 3650, delta=0.01)  # 87600h
            self.assertLess(abs((ca.not_before - datetime.datetime.utcnow()).total_seconds()), 600)
            self.assertIn(": OK", verify(ca.pem, ca.pem))  # self-signed, signature valid
            pub_of_key = openssl("pkey", "-pubout", stdin=key)
            pub_of_crt = openssl("x509", "-noout", "-pubkey", stdin=ca.pem)
            self.assertEqual(pub_of_key, pub_of_crt, name)

    def test_service_account_key_is_rsa_4096_pkcs1(self):
        key = pem(self.secrets["certs"]["k8sserviceaccount"]["key"])
        self.assertTrue(key.startswith(b"-----BEGIN RSA PRIVATE KEY-----"))
        out = openssl("rsa", "-check", "-noout", "-text", stdin=key)
        self.assertIn("Private-Key: (4096 bit", out)
        self.assertIn("RSA key ok", out)

    def test_an_existing_bundle_is_never_replaced(self):
        r = bootctl("gen", "secrets", self.lab)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exists; bootctl never replaces a secrets bundle", r.stderr)
        self.assertEqual(read(self.secrets_path), self.secrets_text)

    def test_talosconfig(self):
        out = os.path.join(self.dir, "talosconfig")
        r = bootctl("gen", "talosconfig", self.lab, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        tc = yaml.safe_load(read(out))
        self.assertEqual(tc["context"], "it")
        ctx = tc["contexts"]["it"]
        self.assertEqual(ctx["endpoints"], ["192.0.2.11", "192.0.2.13"])
        self.assertEqual(ctx["ca"], self.secrets["certs"]["os"]["crt"])
        crt = Cert(pem(ctx["crt"]))
        self.assertIn(": OK", verify(pem(self.secrets["certs"]["os"]["crt"]), crt.pem))
        self.assertEqual(crt.subject(), "O = os:admin")
        self.assertEqual(crt.ext("Extended Key Usage"), ("TLS Web Client Authentication", False))
        self.assertEqual(crt.ext("Key Usage"), ("Digital Signature", True))
        self.assertIsNone(crt.ext("Basic Constraints")[0])
        self.assertAlmostEqual(crt.days(), 365, delta=0.01)
        # a key of the os CA's kind, in talosctl's block type
        self.assertIn("Public Key Algorithm: ED25519", crt.text)
        key = pem(ctx["key"])
        self.assertTrue(key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----\n"))
        pub_of_key = openssl("pkey", "-pubout", stdin=key.replace(b"ED25519 PRIVATE KEY", b"PRIVATE KEY"))
        self.assertEqual(pub_of_key, openssl("x509", "-noout", "-pubkey", stdin=crt.pem))

    def test_kubeconfig(self):
        r = bootctl("gen", "kubeconfig", self.lab, "-o", "-")
        self.assertEqual(r.returncode, 0, r.stderr)
        kc = yaml.safe_load(r.stdout)
        self.assertEqual(kc["current-context"], "admin@it")
        cluster = kc["clusters"][0]["cluster"]
        self.assertEqual(cluster["server"], "https://192.0.2.10:6443")
        self.assertEqual(cluster["certificate-authority-data"], self.secrets["certs"]["k8s"]["crt"])
        user = kc["users"][0]["user"]
        crt = Cert(pem(user["client-certificate-data"]))
        self.assertIn(": OK", verify(pem(self.secrets["certs"]["k8s"]["crt"]), crt.pem))
        self.assertEqual(crt.subject(), "O = system:masters, CN = admin")
        self.assertEqual(crt.ext("Extended Key Usage"), ("TLS Web Client Authentication", False))
        self.assertAlmostEqual(crt.days(), 365, delta=0.01)

    def test_configs_fit_the_schema_and_carry_the_lab(self):
        out = os.path.join(self.dir, "configs")
        os.makedirs(out)
        r = bootctl("gen", "config", self.lab, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(out)), ["cp-1.yaml", "cp-2.yaml", "w-1.yaml"])
        kinds = set()
        for name in os.listdir(out):
            path = os.path.join(out, name)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            text = read(path)
            self.assertEqual(Schema.errors(text), [], name)
            docs = list(yaml.safe_load_all(text))
            kinds |= {d.get("kind", "v1alpha1") for d in docs}
            cfg = docs[0]
            self.assertEqual(cfg["machine"]["ca"]["crt"], self.secrets["certs"]["os"]["crt"])
            self.assertEqual(cfg["cluster"]["controlPlane"]["endpoint"], "https://192.0.2.10:6443")
            self.assertEqual(cfg["cluster"]["network"]["cni"], {"name": "none"})
        # every kind bootd writes went through the schema
        self.assertEqual(kinds, {"v1alpha1", "HostnameConfig", "LinkAliasConfig", "DHCPv4Config",
                                 "LinkConfig", "ResolverConfig", "Layer2VIPConfig"})
        cp = list(yaml.safe_load_all(read(os.path.join(out, "cp-1.yaml"))))
        self.assertEqual(cp[0]["cluster"]["inlineManifests"], [{"name": "cilium", "contents": CILIUM}])
        self.assertTrue(cp[0]["cluster"]["proxy"]["disabled"])
        r = bootctl("gen", "config", self.lab, "--machine", "w-1")
        self.assertEqual(r.stdout, read(os.path.join(out, "w-1.yaml")))


class NothingHalfWritten(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bootd-talos-")
        shutil.copy(REFERENCE_SECRETS, os.path.join(self.dir, "secrets.yaml"))
        os.chmod(os.path.join(self.dir, "secrets.yaml"), 0o600)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_one_bad_machine_patch_writes_no_config(self):
        lab = LAB.replace("  inline_manifests: [{name: cilium, file: cilium.yaml}]\n", "").replace(
            "labels: {zone: a}}", "labels: {zone: a}, patches: [bad.yaml]}")
        with open(os.path.join(self.dir, "lab.yaml"), "w") as f:
            f.write(lab)
        with open(os.path.join(self.dir, "bad.yaml"), "w") as f:
            f.write("machine:\n  network:\n    interfaces:\n      - {interface: eth0, vip: {ip: 192.0.2.10}}\n")
        out = os.path.join(self.dir, "out")
        os.makedirs(out)
        r = bootctl("gen", "config", os.path.join(self.dir, "lab.yaml"), "-o", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("w-1: after patch %s/bad.yaml: machine.network.interfaces[0].vip: a worker "
                      "cannot hold a VIP" % self.dir, r.stderr)
        self.assertEqual(os.listdir(out), [])

    def test_imported_talosctl_bundle_serves_configs_and_talosconfig(self):
        with open(os.path.join(self.dir, "lab.yaml"), "w") as f:
            f.write(LAB)
        with open(os.path.join(self.dir, "cilium.yaml"), "w") as f:
            f.write(CILIUM)
        r = bootctl("gen", "config", "lab.yaml", cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = yaml.safe_load_all(read(os.path.join(self.dir, "cp-1.yaml")))
        bundle = yaml.safe_load(read(REFERENCE_SECRETS))
        self.assertEqual(next(cfg)["machine"]["ca"], bundle["certs"]["os"])
        # talosctl's Ed25519 os CA signs bootd's os:admin certificate
        r = bootctl("gen", "talosconfig", "lab.yaml", cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        tc = yaml.safe_load(read(os.path.join(self.dir, "talosconfig")))
        crt = Cert(pem(tc["contexts"]["it"]["crt"]))
        self.assertIn(": OK", verify(pem(bundle["certs"]["os"]["crt"]), crt.pem))
        self.assertIn("Signature Algorithm: ED25519", crt.text)


GENERATED_LAB = """\
cluster:
  name: it
  talos_version: v1.13.9
  endpoint: https://127.0.0.11:6443
lan:
  interface: lo
  dhcp: full
  subnet: 127.0.0.0/8
  range: [127.0.1.1, 127.0.1.250]
  boot_server: 127.0.0.1
  http_port: {port}
machines:
  - name: cp-1
    mac: "52:54:00:00:00:01"
    role: controlplane
    ip: 127.0.0.11
  - name: w-1
    mac: "52:54:00:00:00:02"
    role: worker
    ip: 127.0.0.12
"""


class ServedByBootd(unittest.TestCase):
    """bootd on loopback renders a machine's config from lab.yaml and secrets.yaml."""

    def setUp(self):
        self.b = Bootd(lab="")
        self.b.write("lab.yaml", GENERATED_LAB.replace("{port}", str(self.b.port)))
        self.b.write("secrets.yaml", read(REFERENCE_SECRETS), mode=0o600)

    def tearDown(self):
        self.b.cleanup()

    def fetch(self, mac, ip):
        status, _, body = self.b.ipxe(mac, source=ip)
        self.assertEqual(status, 200)
        return self.b.get(config_path(body.decode()), source=ip)

    def test_config_token_gets_the_generated_config(self):
        self.b.start()
        status, headers, body = self.fetch("52-54-00-00-00-01", "127.0.0.11")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/yaml")
        r = bootctl("gen", "config", self.b.lab_path, "--machine", "cp-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(body.decode(), r.stdout)
        docs = list(yaml.safe_load_all(body))
        self.assertEqual(docs[0]["machine"]["type"], "controlplane")
        self.assertEqual(docs[1], {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off",
                                   "hostname": "cp-1"})
        status, _, body = self.fetch("52-54-00-00-00-02", "127.0.0.12")
        self.assertEqual(yaml.safe_load_all(body).__next__()["machine"]["type"], "worker")
        m = wait_for(lambda: self.b.api("GET", "/machines/cp-1")[1],
                     lambda m: m["state"] == "config-served")
        self.assertEqual(m["state"], "config-served")

    def test_readable_secrets_keep_bootd_from_starting(self):
        os.chmod(os.path.join(self.b.labdir, "secrets.yaml"), 0o644)
        self.b.start(wait=False)
        self.assertNotEqual(self.b.proc.wait(10), 0)
        self.assertIn("run: chmod 600 %s" % os.path.join(self.b.labdir, "secrets.yaml"), self.b.logs())

    def test_a_broken_patch_is_refused_on_reload_and_the_old_config_served(self):
        self.b.start()
        _, _, before = self.fetch("52-54-00-00-00-02", "127.0.0.12")
        self.b.write("bad.yaml", "machine:\n  certSANs: {not: a list}\n")
        self.b.write("lab.yaml", GENERATED_LAB.replace("{port}", str(self.b.port)).replace(
            "  endpoint:", "  patches: [bad.yaml]\n  endpoint:"))
        status, j = self.b.api("POST", "/reload")
        self.assertNotEqual(status, 200)
        self.assertIn("bad.yaml: machine.certSANs: cannot merge a mapping into a list", json.dumps(j))
        status, _, after = self.fetch("52-54-00-00-00-02", "127.0.0.12")
        self.assertEqual(status, 200)
        self.assertEqual(after, before)


if __name__ == "__main__":
    unittest.main()
