"""Certificates for the stand-ins, made with the openssl command from a CA in a bootd
secrets bundle (secrets.yaml, talosctl's layout: base64 of the PEM texts): apid server
certificates naming a node's address, and client certificates with chosen organizations
and extended key usages (to see apid's checks refuse them)."""
import base64
import os
import subprocess

import yaml


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def bundle_ca(secrets_path, name, out_dir):
    """Writes the bundle's CA `name` (os, k8s, etcd) as <name>-ca.crt/.key; returns both paths."""
    with open(secrets_path) as f:
        certs = yaml.safe_load(f)["certs"][name]
    paths = []
    for part in ("crt", "key"):
        path = os.path.join(out_dir, "%s-ca.%s" % (name, part))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(certs[part]))
        paths.append(path)
    return paths


def self_signed_ca(out_dir, name, subject="/O=talos"):
    """A CA of its own (for a certificate from the wrong CA)."""
    crt, key = os.path.join(out_dir, name + ".crt"), os.path.join(out_dir, name + ".key")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", crt, "-days", "2", "-subj", subject,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,digitalSignature")
    return crt, key


def issue(ca, out_dir, name, subject, eku, sans=()):
    """A P-256 leaf signed by ca (crt, key paths): returns (crt PEM, key PEM) texts.
    eku: e.g. "clientAuth", "serverAuth", "serverAuth,clientAuth" or None for none."""
    p = lambda ext: os.path.join(out_dir, "%s.%s" % (name, ext))
    ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    if eku:
        ext += "extendedKeyUsage=%s\n" % eku
    if sans:
        ext += "subjectAltName=%s\n" % ",".join(
            ("IP:" if s.replace(".", "").isdigit() else "DNS:") + s for s in sans)
    with open(p("ext"), "w") as f:
        f.write(ext)
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", p("key"), "-out", p("csr"), "-subj", subject)
    _run("x509", "-req", "-in", p("csr"), "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
         "-out", p("crt"), "-days", "2", "-extfile", p("ext"))
    with open(p("crt")) as c, open(p("key")) as k:
        return c.read(), k.read()
