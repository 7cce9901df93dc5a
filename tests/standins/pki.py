"""Test PKI made with the openssl command: a cluster CA, an API server certificate for
127.0.0.1, and client certificates, as Talos's Kubernetes PKI lays them out (ECDSA
P-256, clientAuth/serverAuth EKUs); CAs taken from a bootd secrets bundle, and leaves
signed by them (apid's server certificate, clients with chosen organizations and
extended key usages). Also writes kubeconfig files that point at them."""
import base64
import os
import shutil
import subprocess

import yaml


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed_ca(d, name, subject):
    """A P-256 CA, d/<name>.crt and .key; returns both paths."""
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", crt, "-days", "2", "-subj", subject,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,digitalSignature")
    return crt, key


def issue(ca, d, name, subject, eku, sans=()):
    """A P-256 leaf d/<name>.crt and .key signed by ca (crt, key paths); returns the PEM
    texts. eku: "clientAuth", "serverAuth", "serverAuth,clientAuth", or None for none;
    sans: IPv4 addresses and DNS names."""
    p = lambda ext: os.path.join(d, "%s.%s" % (name, ext))
    ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    if eku:
        ext += "extendedKeyUsage=%s\n" % eku
    if sans:
        ext += "subjectAltName=%s\n" % ",".join(
            ("IP:" if s.replace(".", "").isdigit() else "DNS:") + s for s in sans)
    with open(p("ext"), "w") as f:
        f.write(ext)
    # the leaf's key follows the CA's, as Talos's NewKeyPair picks it: Ed25519 under an
    # Ed25519 CA (talosctl's os CA), else P-256
    if _is_ed25519(ca[1]):
        newkey = ["-newkey", "ed25519"]
    else:
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    _run("req", *newkey, "-nodes", "-keyout", p("key"), "-out", p("csr"), "-subj", subject)
    _run("x509", "-req", "-in", p("csr"), "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
         "-out", p("crt"), "-days", "2", "-extfile", p("ext"))
    with open(p("crt")) as c, open(p("key")) as k:
        return c.read(), k.read()


def _is_ed25519(key_path):
    out = subprocess.run(["openssl", "pkey", "-in", key_path, "-noout", "-text_pub"],
                         check=True, capture_output=True, text=True).stdout
    return out.startswith("ED25519")


def bundle_ca(secrets_path, name, d):
    """A CA of a bootd secrets bundle (secrets.yaml: base64 of the PEM texts), `name` being
    os, k8s or etcd, written as d/<name>-ca.crt and .key (0600); returns both paths.
    talosctl's "ED25519 PRIVATE KEY" block holds PKCS#8, which openssl reads as
    "PRIVATE KEY"."""
    with open(secrets_path) as f:
        certs = yaml.safe_load(f)["certs"][name]
    if "cert" in certs:  # the Terraform provider's layout
        certs = {"crt": certs["cert"], "key": certs["key"]}
    paths = []
    for part in ("crt", "key"):
        path = os.path.join(d, "%s-ca.%s" % (name, part))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(certs[part]).replace(b"ED25519 PRIVATE KEY", b"PRIVATE KEY"))
        paths.append(path)
    return paths


def make_pki(d, ca=None):
    """Creates ca.{crt,key} (or copies the given CA's), server.{crt,key} for 127.0.0.1,
    admin.{crt,key} and other-ca.{crt,key} under d."""
    os.makedirs(d, exist_ok=True)
    if ca:
        for src, dst in zip(ca, ("ca.crt", "ca.key")):
            shutil.copyfile(src, os.path.join(d, dst))
        ca = (os.path.join(d, "ca.crt"), os.path.join(d, "ca.key"))
    else:
        ca = self_signed_ca(d, "ca", "/O=kubernetes/CN=ca")
    self_signed_ca(d, "other-ca", "/O=kubernetes/CN=other-ca")
    issue(ca, d, "server", "/CN=kube-apiserver", "serverAuth", ["127.0.0.1", "localhost"])
    issue(ca, d, "admin", "/O=system:masters/CN=admin", "clientAuth")
    return d


def kubeconfig(path, server, pki_dir, ca="ca.crt", cert="admin.crt", key="admin.key"):
    """Writes a kubeconfig (0600) with the certificates inline."""
    def b64(name):
        with open(os.path.join(pki_dir, name), "rb") as f:
            return base64.b64encode(f.read()).decode()
    text = """apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: admin@lab
  context: {cluster: lab, user: admin}
current-context: admin@lab
""" % (server, b64(ca), b64(cert), b64(key))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
