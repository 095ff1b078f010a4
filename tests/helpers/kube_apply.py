"""Server-side apply on the loopback API server (tests/helpers/kube_api.py), for
`kubectl apply --server-side` as the real kubectl sends it.

What kubectl does, observed against this server with kubectl 1.27-1.33 and read
in k8s.io/cli-runtime (pkg/resource/query_param_verifier_v3.go) and
k8s.io/kubectl (pkg/cmd/apply):
- before applying it asks whether the server validates fields itself: kubectl
  looks up the PATCH operation of the object's group/version in the OpenAPI v3
  document (`/openapi/v3` lists a `serverRelativeURL` per group/version) and
  checks that it takes the `fieldValidation` query parameter; served here for
  every group this server knows. (kubectl that only reads OpenAPI v2, which is
  protobuf, is refused: the test says which.)
- then one PATCH per object to the object's URL, Content-Type
  application/apply-patch+yaml, query fieldManager=<manager>, force=true with
  --force-conflicts, fieldValidation=Strict.

What the server does (k8s.io/apiserver pkg/endpoints/handlers/patch.go
applyPatcher; sigs.k8s.io/structured-merge-diff merge rules):
- no fieldManager: 422 (an apply needs a manager);
- an object that does not exist is created from the applied configuration;
- a field owned by another manager whose value the apply changes is a
  conflict (409, "Apply failed with N conflicts: conflict with "<manager>" ...")
  unless force=true, which moves ownership to the applier;
- fields the applier owned before and no longer applies are removed, unless
  another manager owns them;
- `metadata.managedFields` lists each manager's fields (FieldsV1).
Simplification, said where it matters: lists are atomic fields here (the real
server merges `listType: map` lists such as a CRD's `spec.versions` by key);
for whole-object CRD applies the outcome is the same.
"""
from __future__ import annotations

import copy
import secrets
from typing import Any

import yaml

from tests.helpers.kube_api import ApiError, KubeAPI, Request, Resource, _Handler, _with_type

APPLY = "application/apply-patch+yaml"
CRDS = Resource("customresourcedefinitions", "CustomResourceDefinition", "apiextensions.k8s.io",
                namespaced=False, short=("crd",))
Path = tuple[str, ...]


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every field of an object down to scalars and (atomic) lists."""
    if isinstance(obj, dict) and obj:
        out: dict[Path, Any] = {}
        for key, value in obj.items():
            out.update(leaves(value, prefix + (key,)))
        return out
    return {prefix: obj}


def _managed(obj: dict) -> dict[Path, Any]:
    """The fields an apply configuration sets (identity and status excluded)."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k in ("labels", "annotations")}
    return leaves({**body, **({"metadata": meta} if meta else {})})


def _get(obj: dict, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _set(obj: dict, path: Path, value: Any) -> None:
    for key in path[:-1]:
        obj = obj.setdefault(key, {})
    obj[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict, path: Path) -> None:
    parents = []
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            return
        parents.append((obj, key))
        obj = obj[key]
    obj.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            parent.pop(key)


def fields_v1(paths: set[Path]) -> dict:
    """FieldsV1 encoding: nested `f:<field>` keys, `{}` at each owned field."""
    root: dict = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return root


class ApplyKubeAPI(KubeAPI):
    """A KubeAPI that also answers server-side apply and the OpenAPI v3 lookups
    kubectl makes before it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.owners: dict[tuple, dict[str, set[Path]]] = {}  # object key -> manager -> fields
        self.operations: dict[tuple, dict[str, str]] = {}  # object key -> manager -> Apply or Update
        if CRDS not in self.resources:
            self.add_resource(CRDS)

    @staticmethod
    def handler_base() -> type:
        return _ApplyHandler

    def load_owned(self, manager: str, *objs: dict) -> None:
        """Store objects as `manager` wrote them with a plain update (e.g. Helm's
        client-side install of a chart's crds/)."""
        self.load(*objs)
        with self.lock:
            for obj in objs:
                res = self.resource_for(obj["kind"], obj.get("apiVersion"))
                key = self._key(res, (obj.get("metadata") or {}).get("namespace"), obj["metadata"]["name"])
                self.owners[key] = {manager: set(_managed(obj))}
                self.operations[key] = {manager: "Update"}
                self._write_managed_fields(key)

    def _write_managed_fields(self, key) -> None:
        obj, operations = self.objects[key], self.operations.get(key, {})
        obj["metadata"]["managedFields"] = [
            {"manager": m, "operation": operations.get(m, "Apply"), "apiVersion": obj.get("apiVersion"),
             "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
            for m, paths in sorted(self.owners.get(key, {}).items()) if paths]


class _ApplyHandler(_Handler):
    def _route(self, req: Request):
        if req.path == "/openapi/v3" or req.path.startswith("/openapi/v3/"):
            return "application/json", self._openapi_v3(req.path)
        if req.method == "PATCH" and req.content_type == APPLY:
            return "application/json", self._apply(req)
        return super()._route(req)

    # -- OpenAPI v3: just enough for kubectl's fieldValidation check
    def _openapi_v3(self, path: str) -> dict:
        api = self.server_api
        gvs = sorted({("api/v1" if not r.group else f"apis/{r.group}/{r.version}") for r in api.resources})
        if path == "/openapi/v3":
            return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash=0"} for gv in gvs}}
        gv = path[len("/openapi/v3/"):]
        if gv not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        paths = {}
        for res in api.resources:
            if ("api/v1" if not res.group else f"apis/{res.group}/{res.version}") != gv:
                continue
            where = f"/{gv}" + ("/namespaces/{namespace}" if res.namespaced else "") + f"/{res.plural}/{{name}}"
            paths[where] = {"patch": {
                "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
                "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                               for n in ("dryRun", "fieldManager", "fieldValidation", "force")]}}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v1.{api.minor}.0"}, "paths": paths}

    # -- server-side apply
    def _apply(self, req: Request) -> dict:
        api = self.server_api
        res, ns, name, sub = self._parse_object_path(req.path)
        manager = req.query.get("fieldManager")
        if not manager:
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                           "is required for apply patch")
        force = req.query.get("force") == "true"
        try:
            applied = yaml.load(req.body.decode(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"error decoding YAML: {exc}") from None
        if not isinstance(applied, dict) or (applied.get("metadata") or {}).get("name") != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        want = _managed(applied)
        with api.lock:
            key = api._key(res, ns, name)
            owners = api.owners.setdefault(key, {})
            current = api.objects.get(key)
            if current is None:
                obj = copy.deepcopy(applied)
                meta = obj.setdefault("metadata", {})
                meta.update(uid=secrets.token_hex(8), generation=1, creationTimestamp="2026-12-02T00:00:00Z")
                if res.namespaced:
                    meta["namespace"] = ns or "default"
            else:
                obj = copy.deepcopy(current)
                conflicts = [(m, p) for m, paths in owners.items() if m != manager for p in paths
                             if p in want and _get(obj, p) != want[p]]
                if conflicts and not force:
                    listed = "; ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in sorted(conflicts))
                    raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflicts: {listed}")
                for m, p in conflicts:
                    owners[m].discard(p)
                others = set().union(*(paths for m, paths in owners.items() if m != manager))
                for p in owners.get(manager, set()) - set(want) - others:
                    _remove(obj, p)
                for p, value in want.items():
                    _set(obj, p, value)
                if obj.get("spec") != current.get("spec"):
                    obj["metadata"]["generation"] = int(current["metadata"].get("generation") or 1) + 1
            unchanged = current is not None and obj == current and owners.get(manager) == set(want)
            owners[manager] = set(want)
            obj["kind"], obj["apiVersion"] = res.kind, res.group_version
            if unchanged:  # a no-op apply writes nothing (resourceVersion stays)
                return _with_type(current, res)
            obj["metadata"]["resourceVersion"] = api._next_rv()
            api.objects[key] = obj
            api.operations.setdefault(key, {})[manager] = "Apply"
            api._write_managed_fields(key)
            return _with_type(api.objects[key], res)
