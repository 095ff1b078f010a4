"""Steps around an addon release: `crd-apply` (CRDs the chart cannot upgrade) and
`ingress-1.12` (the Ingresses ingress-nginx v1.12 would stop routing)."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import urllib.error
import urllib.request

from kubehop.gates.common import GateError
from kubehop.gates.kube import KubectlError, add_kubectl_arguments, kubectl_from_args, name_list, ns_name

PLACEHOLDER = re.compile(r"^(0+|x+|placeholder.*)$", re.IGNORECASE)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def register(subparsers) -> None:
    p = subparsers.add_parser("crd-apply", help="server-side apply a checksum-verified CRD bundle")
    p.add_argument("--url", required=True, help="https URL of the CRD manifest (e.g. Calico's operator-crds.yaml)")
    p.add_argument("--sha256", required=True, help="expected sha256 of the manifest (from the catalog)")
    p.add_argument("--field-manager", default="kubehop")
    p.add_argument("--timeout", type=float, default=300)
    add_kubectl_arguments(p)
    p.set_defaults(func=run_crd_apply, _parser=p)
    q = subparsers.add_parser("ingress-1.12", help="no Ingress uses what ingress-nginx v1.12 refuses")
    add_kubectl_arguments(q)
    q.set_defaults(func=run_ingress_112, _parser=q)


def verified(body: bytes, sha256: str) -> bytes:
    """The manifest, only when its checksum is a real one and matches."""
    if PLACEHOLDER.match(sha256) or not SHA256.match(sha256):
        raise GateError(f"--sha256 {sha256!r} is a placeholder or not a sha256: record the real checksum in the catalog")
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        raise GateError(f"checksum mismatch: got {actual}, the catalog records {sha256}")
    return body


def run_crd_apply(args) -> str:
    if not args.url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        args._parser.error("--url must be https:// (or loopback http:// in tests)")
    try:
        with urllib.request.urlopen(args.url, timeout=60) as resp:
            body = verified(resp.read(), args.sha256.lower())
    except (urllib.error.URLError, OSError) as exc:
        raise GateError(f"{args.url}: {getattr(exc, 'reason', exc)}") from None
    k = kubectl_from_args(args)
    # Tigera's upgrade procedure: `kubectl apply --server-side --force-conflicts -f operator-crds.yaml`
    # (server-side apply takes the fields Helm's client-side install owns). Idempotent.
    argv = k.base() + ["apply", "--server-side", "--force-conflicts", f"--field-manager={args.field_manager}", "-f", "-"]
    try:
        proc = subprocess.run(argv, input=body.decode(), capture_output=True, text=True, timeout=args.timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GateError(f"kubectl apply: {exc}") from None
    if proc.returncode != 0:
        raise GateError(f"kubectl apply --server-side exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    print(proc.stdout, file=sys.stderr)
    return f"{args.url} applied ({len(proc.stdout.splitlines())} objects)"


# What ingress-nginx controller-v1.12.0 stops routing, read in its sources at tag
# controller-v1.12.0 (kubernetes/ingress-nginx) and changelog/controller-1.12.0-beta.0.md:
# - "Enable security features by default (#11819)": --enable-annotation-validation on and
#   `annotations-risk-level` High (internal/ingress/controller/config/config.go defaults), so an
#   Ingress with an annotation whose Risk is Critical is refused. The Critical ones at that tag:
#   configuration-snippet (annotations/snippet), server-snippet (serversnippet), stream-snippet
#   (streamsnippet), auth-snippet (authreq), modsecurity-snippet (modsecurity).
CRITICAL = ("nginx.ingress.kubernetes.io/configuration-snippet", "nginx.ingress.kubernetes.io/server-snippet",
            "nginx.ingress.kubernetes.io/auth-snippet", "nginx.ingress.kubernetes.io/stream-snippet",
            "nginx.ingress.kubernetes.io/modsecurity-snippet")
# - "Remove global-rate-limit feature (#11851)": these annotations (annotations/globalratelimit
#   at controller-v1.11.8) are gone.
REMOVED = ("nginx.ingress.kubernetes.io/global-rate-limit", "nginx.ingress.kubernetes.io/global-rate-limit-window",
           "nginx.ingress.kubernetes.io/global-rate-limit-key", "nginx.ingress.kubernetes.io/global-rate-limit-ignored-cidrs")
# - #11819 also turns `allow-cross-namespace-resources` off: these annotations are denied when their
#   `namespace/name` value names another namespace (annotations/auth, authtls, authreq, fastcgi, proxyssl).
CROSS_NAMESPACE = ("nginx.ingress.kubernetes.io/auth-secret", "nginx.ingress.kubernetes.io/auth-tls-secret",
                   "nginx.ingress.kubernetes.io/auth-proxy-set-headers",
                   "nginx.ingress.kubernetes.io/fastcgi-params-configmap", "nginx.ingress.kubernetes.io/proxy-ssl-secret")
# - and `strict-validate-path-type` on: a non-empty path whose pathType is not
#   ImplementationSpecific must match validPathType (internal/ingress/inspector/rules.go,
#   inspector.go ValidatePathType): "/" then letters, digits, "_", "-" and "/" only.
PATH_OK = re.compile(r"^/[A-Za-z0-9_\-/]*$")
# (Lua plugins, also removed, are controller config, not an Ingress's: nothing to list per Ingress.)


def ingress_breaks(ing: dict) -> list[str]:
    """Why ingress-nginx v1.12 would stop routing this Ingress (empty: it keeps working)."""
    meta = ing.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    found = [f"{ns_name(ing)}: annotation {a}" for a in CRITICAL + REMOVED if a in annotations]
    for a in CROSS_NAMESPACE:
        ns = str(annotations.get(a, "")).split("/", 1)[0] if "/" in str(annotations.get(a, "")) else None
        if ns is not None and ns != meta.get("namespace", "default"):
            found.append(f"{ns_name(ing)}: annotation {a} names namespace {ns} (cross-namespace references are off)")
    for rule in (ing.get("spec") or {}).get("rules") or []:
        for path in ((rule.get("http") or {}).get("paths")) or []:
            kind, value = path.get("pathType"), path.get("path", "")
            if value and kind != "ImplementationSpecific" and not PATH_OK.match(value):
                found.append(f"{ns_name(ing)}: path {value!r} ({kind}) is not a plain path: strict path validation "
                             "allows letters, digits, _, - and / only (regex or dots need ImplementationSpecific)")
    return found


def run_ingress_112(args) -> str:
    k = kubectl_from_args(args)
    try:
        items = k.items("ingresses.networking.k8s.io", kind="Ingress", all_namespaces=True)
    except KubectlError as exc:
        raise GateError(str(exc)) from None
    broken = [why for ing in items for why in ingress_breaks(ing)]
    if broken:
        raise GateError("ingress-nginx v1.12 would stop routing: " + name_list(broken))
    return f"{len(items)} Ingresses use nothing v1.12 refuses"
