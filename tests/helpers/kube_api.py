"""A loopback Kubernetes API server for tests: real kubectl clients talk to it.

One `KubeAPI` is one cluster: an HTTP server on 127.0.0.1 (free port) with its own
kubeconfig file, so which kubeconfig reached which step shows in which server
recorded the request. (client-go sends no bearer token over plain http, so
identity is the server itself, not a token.)

What it serves, modelled on the upstream API server (k8s.io/apiserver, v1.27-v1.33):
- discovery: /version, /api, /apis, /api/v1, /apis/<group>/<version>. Only the
  legacy (unaggregated) documents: kubectl >= 1.26 asks for aggregated discovery
  (Accept: application/json;g=apidiscovery.k8s.io;v=v2...) first and falls back
  to the legacy documents when the answer's Content-Type is plain JSON
  (client-go discovery/aggregated_discovery.go, discovery_client.go).
  /openapi/v2 and /openapi/v3 answer 404, as a server without OpenAPI does;
  kubectl get/patch/scale/annotate/exec do not need them.
- objects a test loads, for GET and LIST (labelSelector with =, ==, !=, in,
  notin, exists, !exists; fieldSelector with = / != on a dotted path, e.g.
  spec.nodeName, metadata.name, status.phase). Lists come back as <Kind>List
  with items lacking kind/apiVersion, as the real server encodes them.
- writes the gates make: PATCH (application/merge-patch+json per RFC 7386;
  application/json-patch+json per RFC 6902; application/strategic-merge-patch+json
  for built-in kinds only: a custom resource answers 415 as the real server does),
  PUT, and the scale subresource (autoscaling/v1 Scale) of deployments,
  statefulsets and replicasets. resourceVersion grows on every write and
  metadata.generation when spec changes.
- exec over WebSocket, subprotocol v5.channel.k8s.io (and v4): channel 1 stdout,
  2 stderr, 3 the metav1.Status that carries the exit code (KEP-4006;
  staging/src/k8s.io/apimachinery/pkg/util/remotecommand/constants.go). kubectl
  1.30+ uses it by default. SPDY (kubectl <= 1.29) is refused with 400: see
  `exec_spdy_refused` in the requests.

Tests change state while a gate polls with `load`, `edit` or `on_read` hooks.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import jsonpatch

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    short: tuple[str, ...] = ()
    scale: bool = False
    builtin: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

BUILTIN = [
    Resource("namespaces", "Namespace", namespaced=False, short=("ns",)),
    Resource("nodes", "Node", namespaced=False, short=("no",)),
    Resource("pods", "Pod", short=("po",)),
    Resource("services", "Service", short=("svc",)),
    Resource("endpoints", "Endpoints", short=("ep",)),
    Resource("configmaps", "ConfigMap", short=("cm",)),
    Resource("events", "Event", short=("ev",)),
    Resource("deployments", "Deployment", "apps", short=("deploy",), scale=True),
    Resource("daemonsets", "DaemonSet", "apps", short=("ds",)),
    Resource("statefulsets", "StatefulSet", "apps", short=("sts",), scale=True),
    Resource("replicasets", "ReplicaSet", "apps", short=("rs",), scale=True),
    Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy", short=("pdb",)),
    Resource("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", short=("hpa",)),
]
# What the addon checks read beyond the built-ins: Helm's release Secrets, the leader Lease
# (coordination.k8s.io/v1) and tigera-operator's cluster-scoped TigeraStatus (a custom resource).
ADDON_RESOURCES = [
    Resource("secrets", "Secret"),
    Resource("leases", "Lease", "coordination.k8s.io"),
    Resource("tigerastatuses", "TigeraStatus", "operator.tigera.io", namespaced=False, builtin=False),
]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    status: int = 0
    multi: dict[str, list[str]] = field(default_factory=dict)  # every value of a repeated parameter

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0]

    def __str__(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in sorted(self.query.items()))
        return f"{self.method} {self.path}{'?' + q if q else ''} -> {self.status}"


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


# --- selectors (k8s.io/apimachinery/pkg/labels and pkg/fields grammar) ---------------------

_SET_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")


def _split_terms(selector: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return terms


def label_matches(selector: str, labels: dict) -> bool:
    for term in _split_terms(selector):
        for op in ("!=", "==", "="):
            if op in term and "(" not in term:
                key, value = (s.strip() for s in term.split(op, 1))
                ok = labels.get(key) != value if op == "!=" else labels.get(key) == value
                break
        else:
            match = _SET_TERM.match(term)
            if not match:
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
            neg, key, op, values = match.groups()
            if op:
                vals = {v.strip() for v in values.split(",") if v.strip()}
                ok = labels.get(key) in vals if op == "in" else labels.get(key) not in vals
            else:
                ok = (key in labels) != bool(neg)
        if not ok:
            return False
    return True


def _path_value(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur).lower() if isinstance(cur, bool) else str(cur)


def field_matches(selector: str, obj: dict) -> bool:
    for term in _split_terms(selector):
        op = "!=" if "!=" in term else "==" if "==" in term else "="
        if op not in term:
            raise ApiError(400, "BadRequest", f"invalid field selector term {term!r}")
        key, value = (s.strip() for s in term.split(op, 1))
        actual = _path_value(obj, key)
        if (actual != value) if op == "!=" else (actual == value):
            continue
        return False
    return True


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- the server ----------------------------------------------------------------------------

ExecHandler = Callable[[str, str, str | None, list[str]], tuple[int, str, str]]


@dataclass
class KubeAPI:
    """One loopback cluster. Use as a context manager or start()/stop()."""

    name: str
    workdir: Path
    minor: int = 29
    patch_version: int = 0
    resources: list[Resource] = field(default_factory=lambda: list(BUILTIN))
    exec_handler: ExecHandler | None = None
    # How long the "container" takes to start the command before its first frame. A real
    # exec goes apiserver -> kubelet -> CRI before any output exists; answering at once
    # races kubectl 1.30-1.33, whose client-go starts reading frames before it has created
    # the stdout/stderr streams and drops what arrives first ("Unknown stream id 1,
    # discarding message": tools/remotecommand/websocket.go, kubernetes#131189, fixed
    # by kubernetes#131203 for later releases). Seen once in CI with kubectl 1.31.
    exec_start_latency: float = 0.2

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict] = {}  # (plural.group, namespace, name)
        self.requests: list[Request] = []
        self.on_read: list[Callable[["KubeAPI", Resource, dict], None]] = []
        self.raw: dict[str, tuple[str, str] | ApiError] = {}  # path -> (content type, body) for get --raw, or an error
        self.refusal: ApiError | None = None  # when set, every object request is answered with it
        self.refusals: dict[str, ApiError] = {}  # method -> the error every object request of it gets
        self.delay = 0.0  # seconds each object request waits before it is answered (a hung server)
        self.on_request: list[Callable[["KubeAPI"], None]] = []  # before each object request (controllers)
        self.on_write: list[Callable[["KubeAPI", Resource, dict], None]] = []  # after each stored write
        self.rv = 1000
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle
    @staticmethod
    def handler_base() -> type:
        """The request handler class (a subclass may serve more, e.g. tests/helpers/kube_apply.py)."""
        return _Handler

    def start(self) -> "KubeAPI":
        api = self

        class Handler(self.handler_base()):
            server_api = api

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.kubeconfig = self.workdir / f"{self.name}.kubeconfig"
        self.kubeconfig.write_text(json.dumps(self.kubeconfig_doc(), indent=2))
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig_doc(self) -> dict:
        user = f"{self.name}-admin"
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": self.name, "preferences": {},
            "clusters": [{"name": self.name, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user}}],
        }

    # -- resources and objects
    def add_resource(self, resource: Resource) -> None:
        self.resources.append(resource)

    def resource_for(self, kind: str, api_version: str | None = None) -> Resource:
        for res in self.resources:
            if res.kind == kind and (api_version is None or res.group_version == api_version):
                return res
        raise KeyError(f"no resource serves kind {kind} ({api_version})")

    def _key(self, res: Resource, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (f"{res.plural}.{res.group}", namespace or "" if res.namespaced else "", name)

    def load(self, *objs: dict) -> None:
        """Store objects (or the items of a List), replacing any of the same name."""
        with self.lock:
            for obj in objs:
                if obj.get("kind", "").endswith("List") and "items" in obj:
                    self.load(*obj["items"])
                    continue
                obj = copy.deepcopy(obj)
                res = self.resource_for(obj["kind"], obj.get("apiVersion"))
                meta = obj.setdefault("metadata", {})
                if res.namespaced:
                    meta.setdefault("namespace", "default")
                    self._ensure_namespace(meta["namespace"])  # a real cluster holds no object without one
                else:
                    meta.pop("namespace", None)
                meta.setdefault("uid", secrets.token_hex(8))
                meta["resourceVersion"] = self._next_rv()
                obj.setdefault("apiVersion", res.group_version)
                self.objects[self._key(res, meta.get("namespace"), meta["name"])] = obj

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        with self.lock:
            res = self.resource_for(kind)
            self.objects.pop(self._key(res, namespace, name), None)

    def _ensure_namespace(self, name: str) -> None:
        res = self.resource_for("Namespace")
        key = self._key(res, None, name)
        if key not in self.objects:
            self.objects[key] = {"kind": "Namespace", "apiVersion": "v1", "metadata": {
                "name": name, "uid": secrets.token_hex(8), "resourceVersion": self._next_rv(),
                "labels": {"kubernetes.io/metadata.name": name}}, "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}}

    def clear(self, kind: str) -> None:
        """Drop every object of a kind (then `load` another state of the cluster)."""
        with self.lock:
            res = self.resource_for(kind)
            for key in [k for k in self.objects if k[0] == f"{res.plural}.{res.group}"]:
                del self.objects[key]

    def replace(self, *objs: dict) -> None:
        """Swap in a new state: every kind named in `objs` (or their items) holds only those."""
        kinds = {item["kind"] for obj in objs for item in (obj["items"] if "items" in obj else [obj])}
        with self.lock:
            for kind in kinds:
                self.clear(kind)
            self.load(*objs)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict:
        res = self.resource_for(kind)
        return copy.deepcopy(self.objects[self._key(res, namespace, name)])

    def edit(self, kind: str, name: str, namespace: str | None, change: Callable[[dict], None]) -> None:
        with self.lock:
            res = self.resource_for(kind)
            obj = self.objects[self._key(res, namespace, name)]
            change(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    # -- what was asked
    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Recorded requests, optionally only one method and a path prefix (discovery excluded)."""
        with self.lock:
            found = [r for r in self.requests if not _is_discovery(r.path)]
        return [r for r in found if (method is None or r.method == method) and (path is None or r.path.startswith(path))]

    def execs(self) -> list[tuple[str, str, list[str]]]:
        """(namespace, pod, command) of every exec asked for, in order."""
        found = []
        for req in self.calls("GET"):
            match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec", req.path)
            if match:
                found.append((match[1], match[2], req.multi.get("command", [])))
        return found

    def writes(self) -> list[Request]:
        return [r for r in self.calls() if r.method in ("PATCH", "PUT", "POST", "DELETE") and "/exec" not in r.path]


def _is_discovery(path: str) -> bool:
    return path in ("/api", "/apis", "/version") or path.startswith("/openapi") or bool(
        re.fullmatch(r"/api/v1|/apis/[^/]+/[^/]+|/apis/[^/]+", path))


def kubectl_env(home: Path) -> dict[str, str]:
    """Environment for a real kubectl: no proxies, its discovery cache under `home`."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in (
        "http_proxy", "https_proxy", "all_proxy", "no_proxy", "kubeconfig")}
    env.update(HOME=str(home), KUBECACHEDIR=str(home / "kube-cache"), NO_PROXY="127.0.0.1")
    return env


def kubectl_binary(minor: int | None = None) -> str | None:
    """The real kubectl of a minor (kubectl.1.NN beside kubectl on PATH), or kubectl itself."""
    found = shutil.which("kubectl")
    if not found or minor is None:
        return found
    candidate = Path(os.path.realpath(found)).parent / f"kubectl.1.{minor}"
    return str(candidate) if os.access(candidate, os.X_OK) else None


KUBECTL_MINORS = tuple(m for m in range(27, 34) if kubectl_binary(m))


class _Handler(BaseHTTPRequestHandler):
    server_api: KubeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # -- plumbing
    def _record(self) -> Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        multi = parse_qs(parts.query)
        req = Request(self.command, parts.path, {k: v[-1] for k, v in multi.items()},
                      {k.lower(): v for k, v in self.headers.items()}, body, multi=multi)
        with self.server_api.lock:
            self.server_api.requests.append(req)
        return req

    def _send(self, req: Request, code: int, doc, ctype: str = "application/json") -> None:
        req.status = code
        data = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        req = self._record()
        api = self.server_api
        try:
            if req.token not in (None, api.token):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if req.headers.get("upgrade", "").lower() == "websocket" or "/exec" in req.path and req.method in ("GET", "POST"):
                return self._exec(req)
            ctype, doc = self._route(req)
            self._send(req, 200, doc, ctype)
        except ApiError as exc:
            self._send(req, exc.code, exc.status())

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815

    # -- routing
    def _route(self, req: Request):
        api, path = self.server_api, req.path
        if path == "/version":
            return "application/json", {
                "major": "1", "minor": str(api.minor), "gitVersion": f"v1.{api.minor}.{api.patch_version}",
                "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"}
        if path in api.raw and req.method == "GET":
            if isinstance(api.raw[path], ApiError):  # e.g. a service proxy with no endpoints (503)
                raise api.raw[path]
            return api.raw[path]
        if path == "/api":
            return "application/json", {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": api.url.split("//")[1]}]}
        if path == "/apis":
            return "application/json", {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
        match = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path)
        if match:
            return "application/json", self._resource_list(match)
        if path.startswith("/openapi"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return "application/json", self._object_route(req)

    def _groups(self) -> list[dict]:
        groups: dict[str, list[str]] = {}
        for res in self.server_api.resources:
            if res.group:
                versions = groups.setdefault(res.group, [])
                if res.version not in versions:
                    versions.append(res.version)
        return [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}} for g, vs in groups.items()]

    def _resource_list(self, match) -> dict:
        group, version = ("", "v1") if match.group(1) else (match.group(2), match.group(3))
        served = [r for r in self.server_api.resources if r.group == group and r.version == version]
        if not served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        items = []
        for res in served:
            items.append({"name": res.plural, "singularName": res.singular, "namespaced": res.namespaced,
                          "kind": res.kind, "verbs": VERBS, "shortNames": list(res.short)})
            items.append({"name": f"{res.plural}/status", "singularName": "", "namespaced": res.namespaced,
                          "kind": res.kind, "verbs": ["get", "patch", "update"]})
            if res.scale:
                items.append({"name": f"{res.plural}/scale", "singularName": "", "namespaced": res.namespaced,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
            if res.plural == "pods":
                items.append({"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
                              "verbs": ["create", "get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": served[0].group_version,
                "resources": items}

    def _parse_object_path(self, path: str):
        match = re.fullmatch(
            r"/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
            r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?", path)
        if not match:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group = "" if match["core"] else match["group"]
        version = match["core"] or match["version"]
        ns, plural, name, sub = match["ns"], match["plural"], match["name"], match["sub"]
        if plural == "namespaces" and ns and name is None and not match["sub"]:
            plural, name, ns = "namespaces", ns, None  # /api/v1/namespaces/NAME
        for res in self.server_api.resources:
            if res.plural == plural and res.group == group and res.version == version:
                return res, ns, name, sub
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _object_route(self, req: Request) -> dict:
        api = self.server_api
        res, ns, name, sub = self._parse_object_path(req.path)
        if api.delay:
            time.sleep(api.delay)
        refusal = api.refusals.get(req.method) or api.refusal
        if refusal is not None:
            raise refusal
        with api.lock:
            for tick in api.on_request:
                tick(api)
            if name is None:
                if req.method != "GET":
                    raise ApiError(405, "MethodNotAllowed", f"{req.method} on a collection is not served here")
                return self._list(req, res, ns)
            key = api._key(res, ns, name)
            if key not in api.objects:
                raise ApiError(404, "NotFound", f'{res.plural}{"." + res.group if res.group else ""} "{name}" not found')
            obj = api.objects[key]
            if sub == "scale":
                return self._scale(req, res, obj)
            if sub not in (None, "status"):
                raise ApiError(404, "NotFound", f"subresource {sub} is not served")
            if req.method == "GET":
                for hook in api.on_read:
                    hook(api, res, obj)
                return _with_type(obj, res)
            if req.method == "PATCH":
                new = self._patched(req, res, obj)
            elif req.method == "PUT":
                new = req.json
            else:
                raise ApiError(405, "MethodNotAllowed", f"{req.method} is not served for objects")
            self._store(res, key, obj, new)
            for hook in api.on_write:
                hook(api, res, api.objects[key])
            return _with_type(api.objects[key], res)

    def _list(self, req: Request, res: Resource, ns: str | None) -> dict:
        api = self.server_api
        items = []
        for (plural_group, obj_ns, _), obj in sorted(api.objects.items()):
            if plural_group != f"{res.plural}.{res.group}" or (ns and obj_ns != ns):
                continue
            for hook in api.on_read:
                hook(api, res, obj)
            labels = obj.get("metadata", {}).get("labels") or {}
            if req.query.get("labelSelector") and not label_matches(req.query["labelSelector"], labels):
                continue
            if req.query.get("fieldSelector") and not field_matches(req.query["fieldSelector"], obj):
                continue
            item = copy.deepcopy(obj)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            items.append(item)
        return {"kind": f"{res.kind}List", "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(api.rv)}, "items": items}

    def _patched(self, req: Request, res: Resource, obj: dict) -> dict:
        ctype = req.content_type
        try:
            body = req.json
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid patch body: {exc}") from None
        if ctype == "application/merge-patch+json":
            return merge_patch(obj, body)
        if ctype == "application/json-patch+json":
            try:
                return jsonpatch.apply_patch(obj, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}") from None
        if ctype == "application/strategic-merge-patch+json":
            if not res.builtin:
                # staging/src/k8s.io/apiextensions-apiserver: custom resources accept no strategic merge patch
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            if _has_directives(body):
                raise ApiError(422, "Invalid", "the loopback server does not model $patch directives")
            return merge_patch(obj, body)  # maps merge alike; the gates patch no lists
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}")

    def _store(self, res: Resource, key, old: dict, new: dict) -> None:
        api = self.server_api
        if not isinstance(new, dict) or new.get("metadata", {}).get("name") != old["metadata"]["name"]:
            raise ApiError(422, "Invalid", "metadata.name: Invalid value: the name of the object does not match")
        sent_rv = new.get("metadata", {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{key[2]}": '
                                            "the object has been modified; please apply your changes to the latest version and try again")
        new = copy.deepcopy(new)
        new["kind"], new["apiVersion"] = old.get("kind", res.kind), old.get("apiVersion", res.group_version)
        if new.get("spec") != old.get("spec") and "generation" in old.get("metadata", {}):
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        new["metadata"]["resourceVersion"] = api._next_rv()
        api.objects[key] = new

    def _scale(self, req: Request, res: Resource, obj: dict) -> dict:
        api = self.server_api
        key = api._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if req.method in ("PUT", "PATCH"):
            current = _scale_doc(obj, res)
            new = req.json if req.method == "PUT" else merge_patch(current, req.json) \
                if req.content_type != "application/json-patch+json" else jsonpatch.apply_patch(current, req.json)
            sent_rv = (new.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != obj["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{key[2]}": '
                                                "the object has been modified")
            replicas = (new.get("spec") or {}).get("replicas", 0)  # Go's omitempty drops a 0
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}")
            updated = copy.deepcopy(obj)
            updated.setdefault("spec", {})["replicas"] = replicas
            updated["metadata"].pop("resourceVersion", None)
            self._store(res, key, obj, updated)
            obj = api.objects[key]
        elif req.method == "GET":
            for hook in api.on_read:
                hook(api, res, obj)
        return _scale_doc(obj, res)

    # -- exec over WebSocket (RFC 6455 + KEP-4006 channel framing)
    def _exec(self, req: Request) -> None:
        api = self.server_api
        res, ns, name, sub = self._parse_object_path(req.path)
        if res.plural != "pods" or sub != "exec":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if api._key(res, ns, name) not in api.objects:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        offered = [p.strip() for p in req.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        proto = next((p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io") if p in offered), None)
        if req.headers.get("upgrade", "").lower() != "websocket" or proto is None:
            req.headers["exec_spdy_refused"] = "1"
            raise ApiError(400, "BadRequest", "the loopback API server answers exec over WebSocket "
                                              "(v5.channel.k8s.io) only, not SPDY")
        parts = urlsplit(self.path)
        command = parse_qs(parts.query).get("command", [])
        container = req.query.get("container")
        accept = base64.b64encode(hashlib.sha1((req.headers["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
        req.status = 101
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        handler = api.exec_handler or (lambda *_: (0, "", ""))
        time.sleep(api.exec_start_latency)
        code, out, err = handler(ns, name, container, command)
        sock = self.connection
        if out:
            _ws_send(sock, b"\x01" + out.encode())
        if err:
            _ws_send(sock, b"\x02" + err.encode())
        if code == 0:
            status = {"metadata": {}, "status": "Success"}
        else:
            status = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                      "message": f"command terminated with non-zero exit code: error executing command "
                                 f"{command}, exit code {code}",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        _ws_send(sock, b"\x03" + json.dumps(status).encode())
        _ws_send(sock, struct.pack("!H", 1000), opcode=0x8)
        _ws_drain(sock)
        self.close_connection = True


def _has_directives(doc) -> bool:
    if isinstance(doc, dict):
        return any(k.startswith("$") or _has_directives(v) for k, v in doc.items())
    if isinstance(doc, list):
        return any(_has_directives(v) for v in doc)
    return False


def _with_type(obj: dict, res: Resource) -> dict:
    out = copy.deepcopy(obj)
    out.setdefault("kind", res.kind)
    out.setdefault("apiVersion", res.group_version)
    return out


def _scale_doc(obj: dict, res: Resource) -> dict:
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                         "resourceVersion": meta["resourceVersion"], "uid": meta.get("uid")},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}


def _ws_send(sock: socket.socket, payload: bytes, opcode: int = 0x2) -> None:
    """One unmasked server frame (RFC 6455 5.2): FIN set, binary by default."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    sock.sendall(head + payload)


def _ws_drain(sock: socket.socket) -> None:
    """Read the client's frames (masked) until its close frame or EOF, answering pings."""
    sock.settimeout(5)
    buf = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 2:
                opcode, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
                if n == 126:
                    n, off = struct.unpack("!H", buf[2:4])[0], 4
                elif n == 127:
                    n, off = struct.unpack("!Q", buf[2:10])[0], 10
                masked = buf[1] & 0x80
                total = off + (4 if masked else 0) + n
                if len(buf) < total:
                    break
                mask = buf[off:off + 4] if masked else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[total - n:total]))
                buf = buf[total:]
                if opcode == 0x8:
                    return
                if opcode == 0x9:
                    _ws_send(sock, data, opcode=0xA)
    except OSError:
        return
