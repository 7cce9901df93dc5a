"""A stand-in for Talos's apid (the Talos API on port 50000), for bootd's bootstrap tests:
Talos itself cannot run on a build machine.

It follows Talos v1.13.9's api/machine/machine.proto and api/common/common.proto (the
messages are built below from descriptors with those field numbers and encoded by
google.protobuf, not by hand), and apid's transport (internal/app/apid/service.go,
pkg/grpc/middleware/authz, siderolabs/crypto tls defaults):

* TLS 1.2 or later, ALPN "h2" required (grpc-go closes connections that did not
  negotiate it), a client certificate signed by the os CA required.
* A client certificate whose extended key usage is not exactly [clientAuth] is refused
  at the TLS layer (apid's verifyExtKeyUsage): the connection is closed.
* The os CA may be Ed25519 (talosctl's default; apid serves and verifies with it like
  any other key type): client certificates signed by it are accepted, and the
  signature algorithm of each accepted one is kept in `client_sig_algs`.
* Roles come from the certificate's organizations; a method the roles do not allow
  answers PermissionDenied "not authorized" (machined's RBAC table).
* Version answers VersionResponse; Bootstrap answers FailedPrecondition "bootstrap is
  not available yet" for the first `not_ready` calls, then succeeds once, then answers
  AlreadyExists "etcd data directory is not empty"; Kubeconfig streams one common.Data
  holding a gzipped tar with the single entry "kubeconfig" and no end-of-archive blocks;
  EtcdSnapshot streams the snapshot in 1 KiB common.Data chunks (Talos's stream chunker).

The TLS side is Python's ssl module (so the checks above can be made the way apid makes
them); behind it a grpcio server on a loopback port speaks the gRPC itself.

Use in-process: Apid(host, port, ca_pem, crt_pem, key_pem).start() ... .stop(), or as a
program (prints the port):
  python3 -m tests.standins.talos_apid --host 127.0.0.11 --ca CA --crt CRT --key KEY
"""
import argparse
import asyncio
import gzip
import hashlib
import os
import socket
import ssl
import sys
import tarfile
import threading
import time
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def _file(name, package, deps, messages):
    """A FileDescriptorProto; messages: {name: [(field, number, type, type_name, repeated)]}."""
    fd = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    fd.dependency.extend(deps)
    for mname, fields in messages.items():
        m = fd.message_type.add(name=mname)
        for fname, num, ftype, tname, repeated in fields:
            f = m.field.add(name=fname, number=num, type=ftype,
                            label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if tname:
                f.type_name = tname
    return fd


S, B, BOOL, I32, MSG = F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_BOOL, F.TYPE_INT32, F.TYPE_MESSAGE
_POOL = descriptor_pool.DescriptorPool()
for _fd in (
    _file("google/rpc/status.proto", "google.rpc", [], {
        "Status": [("code", 1, I32, None, False), ("message", 2, S, None, False)],
    }),
    _file("google/protobuf/empty.proto", "google.protobuf", [], {"Empty": []}),
    _file("common/common.proto", "common", ["google/rpc/status.proto"], {
        "Metadata": [("hostname", 1, S, None, False), ("error", 2, S, None, False),
                     ("status", 3, MSG, ".google.rpc.Status", False)],
        "Data": [("metadata", 1, MSG, ".common.Metadata", False), ("bytes", 2, B, None, False)],
    }),
    _file("machine/machine.proto", "machine", ["common/common.proto"], {
        "BootstrapRequest": [("recover_etcd", 1, BOOL, None, False),
                             ("recover_skip_hash_check", 2, BOOL, None, False)],
        "Bootstrap": [("metadata", 1, MSG, ".common.Metadata", False)],
        "BootstrapResponse": [("messages", 1, MSG, ".machine.Bootstrap", True)],
        "VersionInfo": [("tag", 1, S, None, False), ("sha", 2, S, None, False),
                        ("built", 3, S, None, False), ("go_version", 4, S, None, False),
                        ("os", 5, S, None, False), ("arch", 6, S, None, False)],
        "PlatformInfo": [("name", 1, S, None, False), ("mode", 2, S, None, False)],
        "FeaturesInfo": [("rbac", 1, BOOL, None, False)],
        "Version": [("metadata", 1, MSG, ".common.Metadata", False),
                    ("version", 2, MSG, ".machine.VersionInfo", False),
                    ("platform", 3, MSG, ".machine.PlatformInfo", False),
                    ("features", 4, MSG, ".machine.FeaturesInfo", False)],
        "VersionResponse": [("messages", 1, MSG, ".machine.Version", True)],
        "EtcdSnapshotRequest": [],
    }),
):
    _POOL.Add(_fd)
_FACTORY = message_factory.MessageFactory(_POOL)


def message(full_name):
    return _FACTORY.GetPrototype(_POOL.FindMessageTypeByName(full_name))


Empty = message("google.protobuf.Empty")
Data = message("common.Data")
BootstrapRequest = message("machine.BootstrapRequest")
BootstrapResponse = message("machine.BootstrapResponse")
VersionResponse = message("machine.VersionResponse")
EtcdSnapshotRequest = message("machine.EtcdSnapshotRequest")

# machined's RBAC table (internal/app/machined/pkg/system/services/machined.go)
ROLES = {
    "Version": {"os:admin", "os:operator", "os:reader"},
    "Bootstrap": {"os:admin"},
    "Kubeconfig": {"os:admin"},
    "EtcdSnapshot": {"os:admin", "os:operator", "os:etcd:backup"},
}


def kubeconfig_archive(text):
    """What machined's Kubeconfig sends: gzip(tar header + file), the tar never closed."""
    data = text.encode()
    info = tarfile.TarInfo("kubeconfig")
    info.size, info.mode, info.mtime, info.type = len(data), 0o600, int(time.time()), tarfile.REGTYPE
    return gzip.compress(info.tobuf(format=tarfile.USTAR_FORMAT) + data)


def etcd_snapshot(pages=64, seed=b"bootd"):
    """A stand-in bbolt file (whole 4 KiB pages) followed by its SHA-256, as etcd sends."""
    db = b"".join(hashlib.sha512(seed + i.to_bytes(4, "big")).digest() * 64 for i in range(pages))
    return db + hashlib.sha256(db).digest()


def client_identity(der):
    """(organizations, ok EKU) of a client certificate, as apid judges them."""
    cert = x509.load_der_x509_certificate(der)
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    try:
        eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    return orgs, eku == [ExtendedKeyUsageOID.CLIENT_AUTH]


class Apid:
    roles = ROLES  # a twin that answers more methods extends both

    def __init__(self, host, port, ca_pem, crt_pem, key_pem, not_ready=0, hostname="node",
                 kubeconfig="apiVersion: v1\nkind: Config\n", snapshot=None, tag="v1.13.9"):
        self.host, self.port = host, port
        self.not_ready = not_ready
        self.hostname, self.tag = hostname, tag
        self.kubeconfig = kubeconfig
        self.snapshot = snapshot if snapshot is not None else etcd_snapshot()
        self.lock = threading.Lock()
        self.calls = {m: 0 for m in self.roles}
        self.bootstrapped = False
        self.connections = 0          # TLS connections accepted
        self.refused = []             # why connections were closed at the TLS layer
        self.client_sig_algs = []     # signature algorithm of each accepted client cert
        self.denied = []              # (method, organizations) answered PermissionDenied
        self._peers = {}              # upstream local port -> organizations
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ctx.set_alpn_protocols(["h2"])
        self._ctx.verify_mode = ssl.CERT_REQUIRED
        self._ctx.load_verify_locations(cadata=ca_pem)
        self._certfiles = []
        crt_path, key_path = self._temp(crt_pem), self._temp(key_pem)
        self._ctx.load_cert_chain(crt_path, key_path)

    def _temp(self, text):
        import tempfile
        fd, path = tempfile.mkstemp(prefix="apid-", suffix=".pem")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self._certfiles.append(path)
        return path

    # ---- gRPC methods ----

    def _authorize(self, method, context):
        self.calls[method] += 1
        port = int(context.peer().rsplit(":", 1)[1])
        orgs = self._peers.get(port, [])
        if not self.roles[method] & set(orgs):
            self.denied.append((method, orgs))
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not authorized")

    def _version(self, request, context):
        with self.lock:
            self._authorize("Version", context)
        resp = VersionResponse()
        v = resp.messages.add()
        v.version.tag, v.version.sha, v.version.arch = self.tag, "deadbeef", "amd64"
        v.version.os, v.version.go_version = "linux", "go1.24"
        v.platform.name, v.platform.mode = "metal", "metal"
        v.features.rbac = True
        return resp

    def _bootstrap(self, request, context):
        with self.lock:
            self._authorize("Bootstrap", context)
            if request.recover_etcd:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no recovery snapshot")
            if self.calls["Bootstrap"] <= self.not_ready:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "bootstrap is not available yet")
            if self.bootstrapped:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "etcd data directory is not empty")
            self.bootstrapped = True
        resp = BootstrapResponse()
        resp.messages.add()
        return resp

    def _kubeconfig(self, request, context):
        with self.lock:
            self._authorize("Kubeconfig", context)
        yield Data(bytes=kubeconfig_archive(self.kubeconfig))

    def _etcd_snapshot(self, request, context):
        with self.lock:
            self._authorize("EtcdSnapshot", context)
        for i in range(0, len(self.snapshot), 1024):
            yield Data(bytes=self.snapshot[i:i + 1024])

    # ---- TLS in front ----

    async def _serve_conn(self, reader, writer):
        tls = writer.get_extra_info("ssl_object")
        why = None
        if tls.selected_alpn_protocol() != "h2":
            why = "no ALPN h2"
        else:
            orgs, eku_ok = client_identity(tls.getpeercert(binary_form=True))
            if not eku_ok:
                why = "client certificate extended key usage is not exactly clientAuth"
        if why:
            with self.lock:
                self.refused.append(why)
            writer.transport.abort()
            return
        with self.lock:
            self.connections += 1
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            self.client_sig_algs.append(cert.signature_algorithm_oid._name)
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self._grpc_port)
        except OSError:
            writer.transport.abort()
            return
        self._peers[up_w.get_extra_info("sockname")[1]] = orgs

        async def pump(r, w):
            try:
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                try:
                    w.close()
                except (ConnectionError, RuntimeError):
                    pass

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))

    def _run_loop(self, ready):
        asyncio.set_event_loop(self._loop)

        async def start():
            self._server = await asyncio.start_server(self._serve_conn, self.host, self.port,
                                                      ssl=self._ctx)
            self.port = self._server.sockets[0].getsockname()[1]

        try:
            self._loop.run_until_complete(start())
        except OSError as e:
            self._start_error = e
            return
        finally:
            ready.set()
        self._loop.run_forever()

    def _handlers(self):
        return {
            "Version": grpc.unary_unary_rpc_method_handler(
                self._version, Empty.FromString, VersionResponse.SerializeToString),
            "Bootstrap": grpc.unary_unary_rpc_method_handler(
                self._bootstrap, BootstrapRequest.FromString, BootstrapResponse.SerializeToString),
            "Kubeconfig": grpc.unary_stream_rpc_method_handler(
                self._kubeconfig, Empty.FromString, Data.SerializeToString),
            "EtcdSnapshot": grpc.unary_stream_rpc_method_handler(
                self._etcd_snapshot, EtcdSnapshotRequest.FromString, Data.SerializeToString),
        }

    def start(self):
        service = grpc.method_handlers_generic_handler("machine.MachineService", self._handlers())
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                 options=[("grpc.so_reuseport", 0)])
        self._grpc.add_generic_rpc_handlers((service,))
        self._grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("apid stand-in did not start")
        if getattr(self, "_start_error", None):
            self._thread.join(10)
            self._loop.close()
            self._loop = None
            self._grpc.stop(0)
            self._grpc = None
            raise RuntimeError("apid stand-in cannot listen on %s:%d: %s"
                               % (self.host, self.port, self._start_error))
        return self

    def stop(self):
        async def close():
            self._server.close()
            await self._server.wait_closed()

        if getattr(self, "_loop", None):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._loop = None
        if getattr(self, "_grpc", None):
            self._grpc.stop(None).wait(10)
            self._grpc = None
        for p in self._certfiles:
            os.unlink(p)
        self._certfiles = []


class ConnectionCounter:
    """A TCP port that accepts and at once closes every connection, counting them: apid
    down, with its connection attempts visible."""

    def __init__(self, host, port=0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ca", required=True, help="the os CA certificate (PEM file)")
    ap.add_argument("--crt", required=True, help="this node's certificate")
    ap.add_argument("--key", required=True, help="its key")
    ap.add_argument("--snapshot-pages", type=int, default=64, help="4 KiB pages of etcd data")
    a = ap.parse_args()
    read = lambda p: open(p).read()
    apid = Apid(a.host, a.port, read(a.ca), read(a.crt), read(a.key),
                snapshot=etcd_snapshot(a.snapshot_pages)).start()
    print(apid.port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        apid.stop()


if __name__ == "__main__":
    sys.exit(main())
