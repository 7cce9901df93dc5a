"""A stand-in for kube-apiserver, for bootd's GitOps tests (a real API server cannot run
on a build machine).

It follows the Kubernetes API reference and the server-side apply documentation
(kubernetes.io/docs/reference/using-api/api-concepts/, .../server-side-apply/):

* TLS 1.3 only, and a client certificate signed by the cluster CA is required, as on a
  Talos 1.14+ API server.
* Discovery: /api, /api/v1, /apis, /apis/<group>/<version> (APIResourceList) for the
  built-in kinds the reference homelab uses, plus every kind that an applied
  CustomResourceDefinition registers once it is Established.
* Server-side apply (PATCH, application/apply-patch+yaml): create or update, field
  ownership per manager in metadata.managedFields, removal of fields the applier owned
  and no longer sends, and 409 Conflict when another manager owns a field the apply would
  change, unless force=true. Lists are owned as a whole (the reference's associative
  list merging is not modelled). Also merge patches (including on /status), GET, LIST,
  DELETE, POST; a merge patch of the object records its fields as the patching
  manager's (operation Update, fieldManager or "kubectl-patch"), taking them from the
  other managers, as the API server does for updates.
* Resource quantities of built-in kinds (resources.limits/requests, PVC and PV capacity,
  Node capacity/allocatable, emptyDir sizeLimit) are stored in their canonical form as
  k8s.io/apimachinery's Quantity.String() writes it (`1000m` -> "1", `1.5Gi` -> "1536Mi",
  `0.5` -> "500m", `2` -> "2"); a value that is not a quantity is a 422, as there.
* It rejects what the real one rejects here: apiVersion/kind not matching the URL, a
  name or namespace differing from the URL, apply without fieldManager, a namespaced
  object in a namespace that does not exist, a CRD whose name is not <plural>.<group>.
* Tests set status through the /status subresource (as controllers do) or with
  set_status(); with auto_ready, workloads get a healthy status when applied, as if
  their controllers had run. put() adds objects the way the cluster itself makes them
  (Nodes registered by kubelets, the DaemonSet Talos applies from an inline manifest).
* /readyz, /healthz and /livez answer 200 "ok", or 500 with the failed check while
  set_ready(False) says the control plane is not up yet (as while etcd starts).
* Nodes (core/v1) as kubelets keep them: a kubelet registers its Node (POST
  /api/v1/nodes) and posts its status (PATCH .../nodes/NAME/status, strategic merge
  patch). A client whose certificate names a node (CN system:node:NAME, O system:nodes)
  may write only its own Node: the NodeRestriction admission plugin's 403 otherwise.
  With node_grace (kube-controller-manager's --node-monitor-grace-period, 40 s there), a
  Node whose kubelet has not posted its status for that long gets its conditions set to
  Unknown ("Kubelet stopped posting node status."), as the node lifecycle controller
  does (pkg/controller/nodelifecycle).

Run in-process (KubeApiServer(...).start()) or as a program:
  python3 -m tests.standins.kube_apiserver --pki DIR [--auto-ready]   (prints the port)
"""
import argparse
import asyncio
import datetime
import fractions
import re
import email.utils
import json
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# (groupVersion, kind, plural, namespaced, has status subresource)
BUILTIN = [
    ("v1", "Namespace", "namespaces", False, True),
    ("v1", "ConfigMap", "configmaps", True, False),
    ("v1", "Secret", "secrets", True, False),
    ("v1", "Service", "services", True, True),
    ("v1", "ServiceAccount", "serviceaccounts", True, False),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, True),
    ("v1", "PersistentVolume", "persistentvolumes", False, True),
    ("v1", "Pod", "pods", True, True),
    ("v1", "Endpoints", "endpoints", True, False),
    ("v1", "Node", "nodes", False, True),
    ("apps/v1", "Deployment", "deployments", True, True),
    ("apps/v1", "StatefulSet", "statefulsets", True, True),
    ("apps/v1", "DaemonSet", "daemonsets", True, True),
    ("apps/v1", "ReplicaSet", "replicasets", True, True),
    ("batch/v1", "Job", "jobs", True, True),
    ("batch/v1", "CronJob", "cronjobs", True, True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False, False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False, False),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", True, False),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True, False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False,
     True),
    ("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", True, False),
    ("networking.k8s.io/v1", "Ingress", "ingresses", True, True),
    ("networking.k8s.io/v1", "IngressClass", "ingressclasses", False, False),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, False),
    ("storage.k8s.io/v1", "StorageClass", "storageclasses", False, False),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, True),
    ("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
     "validatingwebhookconfigurations", False, False),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
     "mutatingwebhookconfigurations", False, False),
]

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


QUANTITY_MAPS = ("limits", "requests", "capacity", "allocatable", "hard", "default",
                 "defaultRequest", "max", "min", "maxLimitRequestRatio", "podFixed")
QUANTITY_RE = re.compile(r"^([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)"
                         r"(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)$")
DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
              "E": 18}
BINARY_SI = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


def canonical_quantity(text):
    """Quantity.String() of a parsed quantity, or None when text is not a quantity."""
    if isinstance(text, bool):
        return None
    m = QUANTITY_RE.match(str(text))
    if not m:
        return None
    sign, number, suffix = m.groups()
    value = fractions.Fraction(number) * (-1 if sign == "-" else 1)
    if suffix in BINARY_SI[1:]:
        value *= 1024 ** BINARY_SI.index(suffix)
        fmt = "BinarySI"
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        value *= fractions.Fraction(10) ** int(suffix[1:])
        fmt = "DecimalExponent"
    else:
        value *= fractions.Fraction(10) ** DECIMAL_SI[suffix]
        fmt = "DecimalSI"
    nano = fractions.Fraction(1, 10 ** 9)  # precision is nanos, rounded up (away from 0)
    scaled = value / nano
    if scaled.denominator != 1:
        up = -(-abs(scaled.numerator) // scaled.denominator)
        value = up * nano * (1 if value > 0 else -1)
    if value == 0:
        return "0"
    if fmt == "BinarySI" and (abs(value) < 1024 or value.denominator != 1):
        fmt = "DecimalSI"  # as apimachinery: small or fractional binary values go decimal
    if fmt == "BinarySI":
        k = 0
        while k < 6 and value % (1024 ** (k + 1)) == 0:
            k += 1
        return "%d%s" % (value // 1024 ** k, BINARY_SI[k])
    exp = -9
    while exp < 18 and (value / fractions.Fraction(10) ** (exp + 3)).denominator == 1:
        exp += 3
    mantissa = value / fractions.Fraction(10) ** exp
    if fmt == "DecimalExponent":
        return "%d%s" % (mantissa, "e%d" % exp if exp else "")
    return "%d%s" % (mantissa, {v: k for k, v in DECIMAL_SI.items()}[exp])


def canonical_quantities(obj, path=()):
    """Rewrites obj's quantity fields in place; ApiError 422 names a field that is not one."""
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            canonical_quantities(v, path + ("[%d]" % i,))
        return
    if not isinstance(obj, dict):
        return
    for k, v in obj.items():
        here = path + (k,)
        in_map = len(path) > 0 and path[-1] in QUANTITY_MAPS
        if (in_map or k == "sizeLimit") and not isinstance(v, (dict, list)):
            q = canonical_quantity(v)
            if q is None:
                raise ApiError(422, "Invalid", "%s: Invalid value: \"%s\": quantities must "
                               "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*"
                               "[-+]?[0-9]*)$'" % (".".join(here), v))
            obj[k] = q
        else:
            canonical_quantities(v, here)


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


_now = [0, ""]


def now():
    t = int(time.time())
    if t != _now[0]:
        _now[:] = [t, datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")]
    return _now[1]


_date = [0, ""]


def http_date():
    t = int(time.time())
    if t != _date[0]:
        _date[:] = [t, email.utils.formatdate(t, usegmt=True)]
    return _date[1]


def clone(o):
    """A deep copy of JSON data (copy.deepcopy is several times slower)."""
    if isinstance(o, dict):
        return {k: clone(v) for k, v in o.items()}
    if isinstance(o, list):
        return [clone(v) for v in o]
    return o


# ---- field sets: leaf paths of an object; lists are atomic leaves ----

SKIP_TOP = {"apiVersion", "kind", "status"}
SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
             "managedFields"}


def leaf_paths(obj, prefix=()):
    out = set()
    for k, v in obj.items():
        p = prefix + (k,)
        if not prefix and k in SKIP_TOP:
            continue
        if prefix == ("metadata",) and k in SKIP_META:
            continue
        if isinstance(v, dict) and v:
            out |= leaf_paths(v, p)
        else:
            out.add(p)
    return out


def get_path(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return None, False
        obj = obj[k]
    return obj, True


def del_path(obj, path):
    parents = []
    for k in path[:-1]:
        if not isinstance(obj, dict) or k not in obj:
            return
        parents.append((obj, k))
        obj = obj[k]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)
    for parent, k in reversed(parents):  # drop maps left empty
        if parent[k] == {}:
            del parent[k]


def merge(dst, src):
    """JSON merge patch (RFC 7386): maps merge, null deletes, anything else replaces."""
    for k, v in src.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = clone(v)
    return dst


def fields_v1(paths):
    tree = {}
    for p in sorted(paths):
        node = tree
        for k in p:
            node = node.setdefault("f:" + k, {})
    return tree


def dotted(path):
    return "." + ".".join(path)


class Store:
    """Objects and their owners, behind one lock."""

    def __init__(self, auto_ready=False, establish_delay=0.0, node_grace=None):
        self.lock = threading.RLock()
        self.node_grace = node_grace
        self.heartbeats = {}  # Node name -> monotonic time its kubelet last posted status
        self.objects = {}   # (gv-group, plural, ns, name) -> object
        self.owners = {}    # same key -> {manager: set(paths)}
        self.resources = {}  # gv -> {kind: (plural, namespaced, status)}
        self.crds = {}      # crd name -> (time applied, obj)
        self.rv = 1000
        self.auto_ready = auto_ready
        self.ready = True  # /readyz
        self.establish_delay = establish_delay
        self.requests = []  # (method, path)
        self.served_cache = None  # dropped whenever a CRD changes
        self.mf_cache = {}        # key -> ([(manager, field set)], managedFields)
        self.updaters = {}        # key -> managers whose fields came from updates
        for gv, kind, plural, ns, st in BUILTIN:
            self.resources.setdefault(gv, {})[kind] = (plural, ns, st)
        for name in ("default", "kube-system", "kube-public"):
            self.objects[("", "namespaces", "", name)] = {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": str(uuid.uuid4()), "resourceVersion": "1",
                             "creationTimestamp": now()},
                "status": {"phase": "Active"}}

    # -- discovery --

    def served(self):
        """gv -> {kind: (plural, namespaced, status)} including established CRDs."""
        with self.lock:
            pending = any(time.monotonic() - t0 < self.establish_delay
                          for t0, _ in self.crds.values())
            if pending:  # changes by itself once the CRD is established
                self.served_cache = None
                return self.compute_served()
            if self.served_cache is None:
                self.served_cache = self.compute_served()
            return self.served_cache

    def compute_served(self):
        with self.lock:
            out = {gv: dict(k) for gv, k in self.resources.items()}
            for name, (t0, crd) in self.crds.items():
                if time.monotonic() - t0 < self.establish_delay:
                    continue
                spec = crd.get("spec", {})
                names = spec.get("names", {})
                for v in spec.get("versions", []):
                    if v.get("served", True):
                        gv = "%s/%s" % (spec["group"], v["name"])
                        out.setdefault(gv, {})[names["kind"]] = (
                            names["plural"], spec.get("scope") == "Namespaced",
                            "status" in (v.get("subresources") or {}))
            return out

    def resource_for(self, gv, plural):
        for kind, (pl, namespaced, st) in self.served().get(gv, {}).items():
            if pl == plural:
                return kind, namespaced, st
        return None

    # -- helpers --

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def crd_status(self, name):
        t0, crd = self.crds[name]
        established = time.monotonic() - t0 >= self.establish_delay
        names = crd.get("spec", {}).get("names", {})
        return {"acceptedNames": names, "storedVersions": [
            v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "lastTransitionTime": now(), "message": "no conflicts found"},
                {"type": "Established", "status": "True" if established else "False",
                 "reason": "InitialNamesAccepted" if established else "Installing",
                 "lastTransitionTime": now(), "message": ""}]}

    def view(self, key):
        """The object as the API returns it; shares nested data with the store, so it must
        be serialised before the lock is released."""
        obj = dict(self.objects[key])
        obj["metadata"] = dict(obj["metadata"])
        if obj["kind"] == "CustomResourceDefinition" and key[1] == "customresourcedefinitions":
            obj["status"] = self.crd_status(key[3])
        managed = self.managed_fields(key, obj["apiVersion"])
        if managed:
            obj["metadata"]["managedFields"] = managed
        return obj

    def managed_fields(self, key, api_version):
        """metadata.managedFields, remade only when the owners changed."""
        owners = self.owners.get(key, {})
        # field sets are replaced, never changed in place: the same set objects (kept
        # alive by the cache) mean the same fields
        state = sorted(owners.items())
        cached = self.mf_cache.get(key)
        if cached and len(cached[0]) == len(state) and all(
                a[0] == b[0] and a[1] is b[1] for a, b in zip(cached[0], state)):
            return cached[1]
        updaters = self.updaters.get(key, set())
        mf = [{"manager": m, "operation": "Update" if m in updaters else "Apply",
               "apiVersion": api_version, "time": now(),
               "fieldsType": "FieldsV1", "fieldsV1": fields_v1(p)}
              for m, p in state if p]
        self.mf_cache[key] = (state, mf)
        return mf

    def ready_status(self, obj):
        spec = obj.get("spec", {})
        n = spec.get("replicas", 1)
        gen = obj["metadata"].get("generation", 1)
        if obj["kind"] == "Deployment":
            return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n,
                    "readyReplicas": n, "availableReplicas": n,
                    "conditions": [{"type": "Available", "status": "True"},
                                   {"type": "Progressing", "status": "True",
                                    "reason": "NewReplicaSetAvailable"}]}
        if obj["kind"] == "StatefulSet":
            return {"observedGeneration": gen, "replicas": n, "readyReplicas": n,
                    "currentReplicas": n, "updatedReplicas": n,
                    "currentRevision": "r1", "updateRevision": "r1"}
        return {"observedGeneration": gen, "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
                "numberAvailable": 3, "numberReady": 3}

    # -- operations --

    def check_body(self, body, gv, kind, ns, name, namespaced):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        if body.get("apiVersion") != gv or body.get("kind") != kind:
            raise ApiError(400, "BadRequest",
                           "the API version in the data (%s) does not match the expected API "
                           "version (%s) or kind (%s != %s)" % (body.get("apiVersion"), gv,
                                                                body.get("kind"), kind))
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if name is not None and meta.get("name") != name:
            raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the "
                           "name on the URL (%s)" % (meta.get("name"), name))
        if namespaced:
            if meta.get("namespace", ns) != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does "
                               "not match the namespace sent on the request")
            meta["namespace"] = ns
            if ("", "namespaces", "", ns) not in self.objects:
                raise ApiError(404, "NotFound", 'namespaces "%s" not found' % ns,
                               {"name": ns, "kind": "namespaces"})
        else:
            meta.pop("namespace", None)  # as BeforeCreate does for cluster-wide kinds
        if kind == "CustomResourceDefinition":
            spec = body.get("spec", {})
            want = "%s.%s" % (spec.get("names", {}).get("plural"), spec.get("group"))
            if meta.get("name") != want:
                raise ApiError(422, "Invalid", 'CustomResourceDefinition.apiextensions.k8s.io '
                               '"%s" is invalid: metadata.name: Invalid value: "%s": must be '
                               'spec.names.plural+"."+spec.group' % (meta.get("name"),
                                                                      meta.get("name")))

    def store(self, key, obj, created, has_status):
        meta = obj["metadata"]
        old = self.objects.get(key)
        if created:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            meta["generation"] = 1
            meta["resourceVersion"] = self.bump()
        else:
            spec_changed = {k: v for k, v in obj.items() if k not in ("metadata", "status")} != \
                {k: v for k, v in old.items() if k not in ("metadata", "status")}
            if obj != old:
                meta["resourceVersion"] = self.bump()
            if spec_changed:
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        if self.auto_ready and obj["kind"] in WORKLOADS:
            obj["status"] = self.ready_status(obj)
        self.objects[key] = obj
        if obj["kind"] == "CustomResourceDefinition":
            prev = self.crds.get(meta["name"])
            self.crds[meta["name"]] = (prev[0] if prev else time.monotonic(), obj)
            self.served_cache = None

    def apply(self, key, gv, kind, namespaced, has_status, body, manager, force, dry_run):
        if not manager:
            raise ApiError(400, "BadRequest",
                           "PATCH request with apply-patch content type requires fieldManager")
        self.check_body(body, gv, kind, key[2], key[3], namespaced)
        if any(b[0] == gv and b[1] == kind for b in BUILTIN):
            canonical_quantities(body)
        body.pop("status", None) if has_status else None
        applied = leaf_paths(body)
        owners = self.owners.setdefault(key, {}) if not dry_run else \
            clone(self.owners.get(key, {}))
        live = self.objects.get(key)
        created = live is None
        new = clone(live) if live else {"apiVersion": gv, "kind": kind,
                                                "metadata": {}}
        conflicts = []
        for m, paths in owners.items():
            if m == manager:
                continue
            for p in paths:
                for q in applied:
                    if p[:len(q)] == q or q[:len(p)] == p:
                        if get_path(new, q) != get_path(body, q):
                            conflicts.append((m, q))
        if conflicts and not force:
            causes = [{"type": "FieldManagerConflict",
                       "message": 'conflict with "%s": %s' % (m, dotted(q)), "field": dotted(q)}
                      for m, q in sorted(set(conflicts))]
            raise ApiError(409, "Conflict", "Apply failed with %d conflict%s: %s" % (
                len(causes), "" if len(causes) == 1 else "s",
                ", ".join(c["message"] for c in causes)), {"causes": causes})
        for m, q in conflicts:  # force: the applier takes the field over
            owners[m] = {p for p in owners[m] if not (p[:len(q)] == q or q[:len(p)] == p)}
        mine_before = owners.get(manager, set())
        others = set().union(*[p for m, p in owners.items() if m != manager]) if owners else set()
        for p in mine_before - applied:
            if p not in others:
                del_path(new, p)
        new["apiVersion"], new["kind"] = gv, kind
        merge(new, {k: v for k, v in body.items() if k != "metadata"})
        meta = new.setdefault("metadata", {})
        for k, v in body["metadata"].items():
            if isinstance(v, dict) and isinstance(meta.get(k), dict):
                merge(meta[k], v)
            else:
                meta[k] = clone(v)
        owners[manager] = applied
        if dry_run:
            return new, created
        self.store(key, new, created, has_status)
        return self.view(key), created

    def patch_merge(self, key, kind, patch, subresource, manager=None):
        if key not in self.objects:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (key[1], key[3]))
        obj = self.objects[key]
        if subresource != "status" and isinstance(patch, dict):
            manager = manager or "kubectl-patch"
            changed = leaf_paths(patch)
            owners = self.owners.setdefault(key, {})
            for m in list(owners):
                if m != manager:
                    owners[m] = {p for p in owners[m] if not any(
                        p[:len(q)] == q or q[:len(p)] == p for q in changed)}
            owners[manager] = owners.get(manager, set()) | changed
            self.updaters.setdefault(key, set()).add(manager)
        if subresource == "status":
            obj.setdefault("status", {})
            merge(obj["status"], patch.get("status", {}))
            if obj["kind"] == "CustomResourceDefinition":
                pass  # the stand-in owns CRD conditions
        else:
            patched = merge(clone(obj), patch)
            patched["metadata"]["name"] = obj["metadata"]["name"]
            self.store(key, patched, False, True)
        obj["metadata"]["resourceVersion"] = self.bump()
        return self.view(key)

    # -- the node lifecycle controller --

    def node_posted(self, name):
        self.heartbeats[name] = time.monotonic()

    def nodes_unknown(self):
        """Nodes whose kubelet went quiet for node_grace: every condition Unknown
        (tryUpdateNodeHealth in the node lifecycle controller)."""
        if self.node_grace is None:
            return
        for name, t in self.heartbeats.items():
            obj = self.objects.get(("", "nodes", "", name))
            if obj is None or time.monotonic() - t < self.node_grace:
                continue
            changed = False
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c.get("status") != "Unknown":
                    c.update(status="Unknown", reason="NodeStatusUnknown",
                             message="Kubelet stopped posting node status.",
                             lastTransitionTime=now())
                    changed = True
            if changed:
                obj["metadata"]["resourceVersion"] = self.bump()

    def delete(self, key):
        if key not in self.objects:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (key[1], key[3]))
        obj = self.objects.pop(key)
        self.owners.pop(key, None)
        self.updaters.pop(key, None)
        if obj["kind"] == "Namespace" and key[1] == "namespaces":
            for k in [k for k in self.objects if k[2] == key[3]]:
                self.objects.pop(k)
                self.owners.pop(k, None)
        if obj["kind"] == "CustomResourceDefinition":
            crd = self.crds.pop(key[3], None)
            self.served_cache = None
            if crd:
                group = crd[1]["spec"]["group"]
                plural = crd[1]["spec"]["names"]["plural"]
                for k in [k for k in self.objects if k[0] == group and k[1] == plural]:
                    self.objects.pop(k)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": key[3], "kind": key[1], "uid": obj["metadata"].get("uid")}}


class Headers(dict):
    """Request headers by lower-case name."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Api:
    """One request in, one answer out: (status, JSON bytes)."""

    def __init__(self, store):
        self.store = store
        self.headers = Headers()

    def handle(self, method, target, headers, raw, user=None):
        """user: the common name of the client's certificate."""
        st = self.store
        url = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.headers = headers
        self.user = user or ""
        with st.lock:
            st.requests.append((method, target))
            st.nodes_unknown()
            try:
                code, obj = self.route(st, method, url.path, q, raw)
            except ApiError as e:
                code, obj = e.code, e.status()
            return code, json.dumps(obj).encode()

    def route(self, st, method, path, q, raw):
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0-standin",
                         "platform": "linux/amd64"}
        if path in ("/readyz", "/healthz", "/livez"):
            if not st.ready:
                return 500, "[-]etcd failed: reason withheld\n%s check failed" % path[1:]
            return 200, "ok"
        served = st.served()
        if path == "/openapi/v3":
            return 200, {"paths": {("api/" if "/" not in gv else "apis/") + gv: {
                "serverRelativeURL": "/openapi/v3/%s%s?hash=%d" % (
                    "api/" if "/" not in gv else "apis/", gv, st.rv)} for gv in served}}
        if path.startswith("/openapi/v3/"):
            return 200, self.openapi_gv(served, path[len("/openapi/v3/"):])
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                         "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups = {}
            for gv in sorted(served):
                if "/" in gv:
                    g, v = gv.split("/")
                    groups.setdefault(g, []).append({"groupVersion": gv, "version": v})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": vs, "preferredVersion": vs[0]}
                for g, vs in sorted(groups.items())]}
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            gv, rest = (parts[1] if len(parts) > 1 else ""), parts[2:]
        else:
            if len(parts) < 3:
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource")
            gv, rest = parts[1] + "/" + parts[2], parts[3:]
        if gv not in served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "method not allowed")
            res = []
            for kind, (plural, namespaced, has_status) in sorted(served[gv].items()):
                res.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                            "kind": kind, "verbs": VERBS})
                if has_status:
                    res.append({"name": plural + "/status", "singularName": "",
                                "namespaced": namespaced, "kind": kind,
                                "verbs": ["get", "patch", "update"]})
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                         "resources": res}
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        sub = rest[2] if len(rest) > 2 else None
        found = st.resource_for(gv, plural)
        if not found or len(rest) > 3 or (sub and sub != "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        kind, namespaced, has_status = found
        if namespaced != bool(ns) and name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group = gv.split("/")[0] if "/" in gv else ""
        key = (group, plural, ns, name)
        if kind == "Node" and method != "GET":
            node = self.node_admit(method, name, raw)
            code, obj = self.route_object(st, method, q, raw, gv, kind, namespaced, has_status,
                                          group, plural, ns, name, sub, key)
            if method == "POST" or sub == "status":  # the kubelet posted its status
                st.node_posted(node)
            elif method == "DELETE":
                st.heartbeats.pop(node, None)
            return code, obj
        return self.route_object(st, method, q, raw, gv, kind, namespaced, has_status, group,
                                 plural, ns, name, sub, key)

    def route_object(self, st, method, q, raw, gv, kind, namespaced, has_status, group, plural,
                     ns, name, sub, key):
        if name is None:
            if method == "GET":
                items = [st.view(k) for k in sorted(st.objects)
                         if k[0] == group and k[1] == plural and (not ns or k[2] == ns)]
                return 200, {"kind": kind + "List", "apiVersion": gv,
                             "metadata": {"resourceVersion": str(st.rv)}, "items": items}
            if method == "POST":
                body = self.parse(raw, "application/json")
                st.check_body(body, gv, kind, ns, None, namespaced)
                key = (group, plural, ns, body["metadata"].get("name"))
                if key in st.objects:
                    raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (plural,
                                                                                    key[3]))
                st.owners[key] = {q.get("fieldManager", "kubectl-create"): leaf_paths(body)}
                st.store(key, body, True, has_status)
                return 201, st.view(key)
            raise ApiError(405, "MethodNotAllowed", "method not allowed")
        if method == "GET":
            if key not in st.objects:
                raise ApiError(404, "NotFound", '%s.%s "%s" not found' % (plural, group, name))
            return 200, st.view(key)
        if method == "DELETE":
            return 200, st.delete(key)
        if method == "PATCH":
            ctype = (self.headers.get("content-type") or "").split(";")[0].strip()
            body = self.parse(raw, ctype)
            if ctype == "application/apply-patch+yaml":
                if sub:
                    raise ApiError(415, "UnsupportedMediaType", "the stand-in applies only to "
                                   "the main resource")
                obj, created = st.apply(key, gv, kind, namespaced, has_status, body,
                                        q.get("fieldManager"), q.get("force") == "true",
                                        q.get("dryRun") == "All")
                return (201 if created else 200), obj
            if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                return 200, st.patch_merge(key, kind, body, sub, q.get("fieldManager"))
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media "
                           "types include: application/json-patch+json, "
                           "application/merge-patch+json, application/apply-patch+yaml")
        raise ApiError(405, "MethodNotAllowed", "method not allowed")

    def node_admit(self, method, name, raw):
        """NodeRestriction: a kubelet (CN system:node:NAME) writes only its own Node; the
        name of the Node a write is for."""
        me = self.user[len("system:node:"):] if self.user.startswith("system:node:") else None
        target = name
        if target is None and method == "POST":
            body = self.parse(raw, "application/json")
            target = (body.get("metadata") or {}).get("name") if isinstance(body, dict) else None
        if me is not None and target != me:
            raise ApiError(403, "Forbidden", 'nodes "%s" is forbidden: node "%s" is not allowed '
                           'to modify node "%s"' % (target, me, target),
                           {"name": target, "kind": "nodes"})
        return target

    @staticmethod
    def openapi_gv(served, rel):
        """The PATCH operations of a group version, enough for a client to see that the
        server validates fields itself (the fieldValidation parameter); no schemas."""
        gv = rel.split("/", 1)[1] if rel.startswith(("api/", "apis/")) else ""
        if gv not in served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version = gv.split("/") if "/" in gv else ("", gv)
        root = "/apis/" + gv if "/" in gv else "/api/" + gv
        paths = {}
        for kind, (plural, namespaced, _) in served[gv].items():
            p = root + ("/namespaces/{namespace}/" if namespaced else "/") + plural + "/{name}"
            paths[p] = {"patch": {
                "x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                    "kind": kind},
                "x-kubernetes-action": "patch",
                "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                               for n in ("dryRun", "fieldManager", "fieldValidation",
                                         "force")]}}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
                "paths": paths, "components": {"schemas": {}}}

    @staticmethod
    def parse(raw, ctype):
        try:
            text = raw.decode()
            if ctype.endswith("yaml") and not text.lstrip().startswith("{"):
                return yaml.load(text, Loader=SafeLoader)
            return json.loads(text)  # JSON is YAML too; its parser is the fast one
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(400, "BadRequest", "error decoding the body: %s" % e)




REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 415: "Unsupported Media Type",
           422: "Unprocessable Entity"}


class Server:
    """HTTP/1.1 with keep-alive over TLS on one asyncio loop in its own thread: requests
    are served one at a time, whichever connection they come on, as a single-core server
    would (threads would contend for the interpreter lock instead)."""

    def __init__(self, store, ctx):
        self.api = Api(store)
        self.ctx = ctx
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: None)  # failed handshakes
        self.server = self.loop.run_until_complete(asyncio.start_server(
            self.connection, "127.0.0.1", 0, ssl=ctx, ssl_handshake_timeout=10))
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = None

    async def connection(self, reader, writer):
        try:
            while await self.one_request(reader, writer):
                pass
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    async def one_request(self, reader, writer):
        line = await reader.readline()
        if not line:
            return False
        parts = line.decode("iso-8859-1").split()
        headers = Headers()
        for _ in range(100):
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, sep, value = h.decode("iso-8859-1").partition(":")
            if not sep:
                parts = []
                break
            headers[name.strip().lower()] = value.strip()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.respond(writer, 400, b'{"message": "bad request"}', True)
            return False
        n = int(headers.get("content-length") or 0)
        raw = await reader.readexactly(n) if n else b""
        cert = writer.get_extra_info("peercert") or {}
        cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), "")
        code, data = self.api.handle(parts[0], parts[1], headers, raw, cn)
        close = headers.get("connection", "").lower() == "close" or parts[2] == "HTTP/1.0"
        self.respond(writer, code, data, close)
        await writer.drain()
        return not close

    @staticmethod
    def respond(writer, code, data, close):
        # status line, headers and body in one write: one TLS record where it fits
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nDate: %s\r\n%s\r\n" % (
                         code, REASONS.get(code, "Error").encode(), len(data),
                         http_date().encode(), b"Connection: close\r\n" if close else b"")
                     + data)

    def serve_forever(self):
        self.loop.run_forever()

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        def shut():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(shut)
        if self.thread:
            self.thread.join(10)
        self.loop.close()


def tls_context(pki_dir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(pki_dir + "/server.crt", pki_dir + "/server.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki_dir + "/ca.crt")
    return ctx


class KubeApiServer:
    def __init__(self, pki_dir, auto_ready=False, establish_delay=0.0, node_grace=None):
        self.store = Store(auto_ready=auto_ready, establish_delay=establish_delay,
                           node_grace=node_grace)
        self.httpd = Server(self.store, tls_context(pki_dir))
        self.port = self.httpd.port
        self.url = "https://127.0.0.1:%d" % self.port

    def start(self):
        self.httpd.start()
        return self

    def stop(self):
        self.httpd.stop()

    # -- for tests --

    def get(self, gv, plural, ns, name):
        group = gv.split("/")[0] if "/" in gv else ""
        with self.store.lock:
            key = (group, plural, ns, name)
            return self.store.view(key) if key in self.store.objects else None

    def names(self, gv, plural, ns=None):
        group = gv.split("/")[0] if "/" in gv else ""
        with self.store.lock:
            return sorted(k[3] for k in self.store.objects
                          if k[0] == group and k[1] == plural and (ns is None or k[2] == ns))

    def set_ready(self, ready):
        with self.store.lock:
            self.store.ready = ready

    def put(self, obj):
        """Creates or replaces an object, status and all, as the cluster would."""
        gv, kind = obj["apiVersion"], obj["kind"]
        group = gv.split("/")[0] if "/" in gv else ""
        with self.store.lock:
            plural, namespaced, has_status = self.store.served()[gv][kind]
            meta = obj.setdefault("metadata", {})
            key = (group, plural, meta.get("namespace", "") if namespaced else "", meta["name"])
            self.store.store(key, clone(obj), key not in self.store.objects, has_status)

    def set_status(self, gv, plural, ns, name, status):
        group = gv.split("/")[0] if "/" in gv else ""
        with self.store.lock:
            obj = self.store.objects[(group, plural, ns, name)]
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self.store.bump()

    def requests(self, method=None):
        with self.store.lock:
            return [r for r in self.store.requests if method is None or r[0] == method]

    def reset_requests(self):
        with self.store.lock:
            self.store.requests.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pki", required=True, help="directory with ca.crt, server.crt/key")
    ap.add_argument("--auto-ready", action="store_true")
    a = ap.parse_args()
    srv = KubeApiServer(a.pki, auto_ready=a.auto_ready)
    print(srv.port, flush=True)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
