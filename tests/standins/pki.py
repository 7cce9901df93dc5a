"""Test PKI made with the openssl command: a cluster CA, an API server certificate for
127.0.0.1, and client certificates, as Talos's Kubernetes PKI lays them out (ECDSA
P-256, clientAuth/serverAuth EKUs). Also writes kubeconfig files that point at them."""
import base64
import os
import subprocess


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ext(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def make_pki(d):
    """Creates ca.{crt,key}, server.{crt,key}, admin.{crt,key}, other-ca.crt under d."""
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)
    for name in ("ca", "other-ca"):
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p(name + ".key"), "-out", p(name + ".crt"), "-days", "2",
             "-subj", "/O=kubernetes/CN=%s" % name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,digitalSignature")
    leaves = {
        "server": ("/CN=kube-apiserver",
                   "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"),
        "admin": ("/O=system:masters/CN=admin",
                  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=clientAuth\n"),
    }
    for name, (subj, ext) in leaves.items():
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", subj)
        _run("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
             "-CAcreateserial", "-out", p(name + ".crt"), "-days", "2",
             "-extfile", _ext(p(name + ".ext"), ext))
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
