"""Run kubectl and read what it prints: the one way kube gates see a cluster.

Every read is `kubectl ... get ... -o json`; anything else (a non-zero exit, a
timeout, output that is not the JSON a real kubectl prints for that request)
raises KubectlError, which poll() counts as a failed look: fail closed.
No secrets go on argv: credentials stay in the kubeconfig kubectl reads.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from kubehop import node_labels

# Names shown for a failing look are capped so one progress line stays readable.
MAX_NAMED = 20


class KubectlError(Exception):
    """kubectl failed, timed out, or printed something we cannot trust."""


def add_kubectl_arguments(parser) -> None:
    """Flags every kube gate takes to find and drive kubectl."""
    parser.add_argument("--kubectl", default="kubectl", help="kubectl binary (default: kubectl on PATH)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig path, passed through to kubectl")
    parser.add_argument("--context", default=None, help="kubeconfig context, passed through to kubectl")
    parser.add_argument(
        "--request-timeout", type=float, default=30,
        help="seconds kubectl may take per API request (default 30; 0: no limit)",
    )


def kubectl_from_args(args) -> "Kubectl":
    return Kubectl(
        binary=args.kubectl,
        kubeconfig=args.kubeconfig,
        context=args.context,
        request_timeout=args.request_timeout,
    )


def _tail(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= limit else last[: limit - 3] + "..."


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Kubectl:
    binary: str = "kubectl"
    kubeconfig: str | None = None
    context: str | None = None
    request_timeout: float = 30
    server: str | None = None
    """`--server`: this one API server instead of the kubeconfig's (its CA and credentials kept)."""

    @property
    def backstop(self) -> float:
        """Seconds the whole kubectl process may take: its API timeout plus start-up
        (kubeconfig, credential plugins: up to 15 s, never more than the API timeout itself);
        with --request-timeout 0 (no API limit), 5 minutes. The one bound for every gate."""
        if self.request_timeout <= 0:
            return 300.0
        return self.request_timeout + min(15.0, max(1.0, self.request_timeout))

    def base(self) -> list[str]:
        argv = [self.binary]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        if self.server:
            argv += ["--server", self.server]
        if self.request_timeout and self.request_timeout > 0:
            argv.append(f"--request-timeout={self.request_timeout:g}s")
        return argv

    def _run(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
        argv = self.base() + list(args)
        try:
            return subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
            )
        except FileNotFoundError as exc:
            raise KubectlError(f"kubectl binary not found: {self.binary}") from exc
        except subprocess.TimeoutExpired as exc:
            raise KubectlError(f"kubectl {' '.join(args[:3])} timed out after {timeout:g}s") from exc

    def get(
        self,
        resource: str,
        name: str | None = None,
        *,
        kind: str,
        namespace: str | None = None,
        all_namespaces: bool = False,
        selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict:
        """`kubectl get` one object (name given) or a list, checked against `kind`.

        For a list, returns the List object; its items are checked to be of `kind`.
        """
        for word in (resource, name, namespace):
            if word and word.startswith("-"):  # would read as a flag (e.g. a name "--server=...")
                raise KubectlError(f"refusing {word!r}: a resource, name or namespace cannot start with '-'")
        args = ["get", resource]
        if name:
            args.append(name)
        if all_namespaces:
            args.append("--all-namespaces")
        elif namespace:
            args += ["--namespace", namespace]
        if selector:
            args += ["--selector", selector]
        if field_selector:
            args += ["--field-selector", field_selector]
        args += ["--output", "json"]
        what = f"{resource}/{name}" if name else resource
        if namespace and not all_namespaces:
            what = f"{what} in {namespace}"
        proc = self._run(args, timeout=self.backstop)
        if proc.returncode != 0:
            raise KubectlError(f"kubectl get {what} exited {proc.returncode}: {_tail(proc.stderr) or 'no output'}")
        try:
            data = json.loads(proc.stdout)
        except ValueError as exc:
            raise KubectlError(f"kubectl get {what} printed no JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise KubectlError(f"kubectl get {what} printed JSON that is not an object")
        if name:
            if data.get("kind") != kind:
                raise KubectlError(f"kubectl get {what}: expected kind {kind}, got {data.get('kind')!r}")
            _require_metadata(data, what)
            return data
        if data.get("kind") not in ("List", f"{kind}List") or not isinstance(data.get("items"), list):
            raise KubectlError(f"kubectl get {what}: expected a List with items, got kind {data.get('kind')!r}")
        for item in data["items"]:
            if not isinstance(item, dict) or item.get("kind", kind) != kind:
                raise KubectlError(f"kubectl get {what}: list holds something that is not a {kind}")
            _require_metadata(item, what)
        return data

    def at(self, server: str) -> "Kubectl":
        """The same client aimed at one API server (kubectl's global --server flag)."""
        return replace(self, server=server)

    def kubeconfig_server(self) -> str:
        """The server URL of the context in use (`kubectl config view --minify`)."""
        proc = self._run(["config", "view", "--minify", "--output", "jsonpath={.clusters[0].cluster.server}"],
                         timeout=self.backstop)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise KubectlError(f"kubectl config view found no server: {_tail(proc.stderr) or 'no output'}")
        return proc.stdout.strip()

    def raw(self, path: str) -> str:
        """`kubectl get --raw PATH`: the API server's answer as text."""
        proc = self._run(["get", "--raw", path], timeout=self.backstop)
        if proc.returncode != 0:
            raise KubectlError(f"kubectl get --raw {path} exited {proc.returncode}: {_tail(proc.stderr) or 'no output'}")
        return proc.stdout

    def items(self, resource: str, *, kind: str, **kw) -> list[dict]:
        return list(self.get(resource, kind=kind, **kw)["items"])

    def exec(self, namespace: str, pod: str, command: Sequence[str], *, timeout: float) -> ExecResult:
        """`kubectl exec -n NS POD -- command...`: the command's exit status, no shell.

        The status comes from the exec's error stream, which client-go creates first
        (tools/remotecommand v2.go createStreams); kubectl 1.30-1.33 could still drop a
        frame that beat stream creation (kubernetes#131189). A real exec answers only
        after kubelet and the runtime start the command, so that window stays closed.
        """
        if namespace.startswith("-") or pod.startswith("-"):
            raise KubectlError(f"refusing pod {namespace}/{pod}: a name cannot start with '-'")
        args = ["exec", "--namespace", namespace, pod, "--", *command]
        proc = self._run(args, timeout=timeout)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)


def _require_metadata(obj: dict, what: str) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise KubectlError(f"kubectl get {what}: object without metadata.name")


# --- small readers over kubectl JSON -------------------------------------------------------

def name_of(obj: dict) -> str:
    return obj["metadata"]["name"]


def ns_name(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}" if meta.get("namespace") else meta["name"]


def labels_of(obj: dict) -> dict:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def condition(obj: dict, ctype: str) -> dict | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype:
            return cond
    return None


def node_ready(node: dict) -> tuple[bool, str]:
    """(Ready?, why not): the Ready condition must be status "True"."""
    cond = condition(node, "Ready")
    if cond is None:
        return False, "no Ready condition"
    if cond.get("status") == "True":
        return True, "Ready"
    reason = cond.get("reason") or "unknown reason"
    status = "NotReady" if cond.get("status") == "False" else f"Ready={cond.get('status')}"
    return False, f"{status} ({reason})"


CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def is_control_plane(node: dict) -> bool:
    labels = labels_of(node)
    return any(label in labels for label in CONTROL_PLANE_LABELS)


def kubelet_version(node: dict) -> str | None:
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")
    return version if isinstance(version, str) and version else None


def is_cordoned(node: dict) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def taint_keys(node: dict) -> list[str]:
    return [t.get("key", "") for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]


def _norm_version(version: str) -> str:
    version = version.strip()
    return version if version.startswith("v") else "v" + version


def version_matches(actual: str | None, expected: str) -> bool:
    """v1.27.16 matches v1.27.16 exactly; a shorter expectation (v1.27) matches any v1.27.x."""
    if not actual:
        return False
    actual, expected = _norm_version(actual), _norm_version(expected)
    return actual == expected or actual.startswith(expected + ".")


def image_tag(image: str) -> str | None:
    """The tag of an image reference: registry:5000/a/b:v1.2@sha256:... -> v1.2 (None if untagged)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def parse_time(text: str) -> datetime:
    """A Kubernetes RFC 3339 timestamp (metadata.creationTimestamp and friends)."""
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_GO_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))? ([+-]\d{4})(?: [A-Za-z0-9+-]+)?"
)


def parse_go_time(text: str) -> datetime:
    """Go's time.String() form, as cluster-autoscaler writes it: 2024-05-01 10:00:00.123 +0000 UTC."""
    match = _GO_TIME.search(text or "")
    if not match:
        raise ValueError(f"not a Go timestamp: {text!r}")
    day, clock, frac, offset = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    sign = 1 if offset[0] == "+" else -1
    tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    return datetime.fromisoformat(f"{day}T{clock}").replace(microsecond=micro, tzinfo=tz)


def selector_string(selector: dict) -> str:
    """A LabelSelector object (matchLabels/matchExpressions) as a -l string."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise KubectlError(f"unknown selector operator {op!r}")
    if not parts:
        raise KubectlError("workload has an empty selector")
    return ",".join(parts)


def selector_matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --- pods ----------------------------------------------------------------------------------

BAD_WAITING_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"}
)


def container_statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def bad_waiting_reasons(pod: dict) -> list[str]:
    """Reasons like 'CrashLoopBackOff (container app)' for containers stuck in a bad wait."""
    found = []
    for cs in container_statuses(pod):
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason in BAD_WAITING_REASONS:
            found.append(f"{reason} (container {cs.get('name', '?')}, restarts {cs.get('restartCount', 0)})")
    return found


def pod_ready(pod: dict) -> tuple[bool, str]:
    """(Running and Ready?, why not)."""
    problems = bad_waiting_reasons(pod)
    if problems:
        return False, ", ".join(problems)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        return False, f"phase {phase or 'unknown'}"
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        waiting = [
            f"{cs.get('name')}: {((cs.get('state') or {}).get('waiting') or {}).get('reason', 'not ready')}"
            for cs in container_statuses(pod) if not cs.get("ready")
        ]
        return False, "not Ready" + (f" ({', '.join(waiting)})" if waiting else "")
    return True, "Ready"


def is_terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


# --- workloads -----------------------------------------------------------------------------

WORKLOAD_KINDS = {
    "deployment": ("deployments", "Deployment"),
    "deployments": ("deployments", "Deployment"),
    "deploy": ("deployments", "Deployment"),
    "daemonset": ("daemonsets", "DaemonSet"),
    "daemonsets": ("daemonsets", "DaemonSet"),
    "ds": ("daemonsets", "DaemonSet"),
    "statefulset": ("statefulsets", "StatefulSet"),
    "statefulsets": ("statefulsets", "StatefulSet"),
    "sts": ("statefulsets", "StatefulSet"),
}


def parse_workload(text: str) -> tuple[str, str, str]:
    """'deployment/name' -> (resource, Kind, name); ValueError if malformed."""
    kind, sep, name = text.partition("/")
    if not sep or not name or "/" in name or kind.lower() not in WORKLOAD_KINDS:
        raise ValueError(f"workload must be deployment/NAME, daemonset/NAME or statefulset/NAME, got {text!r}")
    resource, kind_name = WORKLOAD_KINDS[kind.lower()]
    return resource, kind_name, name


def workload_rolled_out(obj: dict) -> tuple[bool, str]:
    """Is this Deployment/DaemonSet/StatefulSet fully rolled out and Ready? (ok, detail)

    Counts the API omits when zero are read as zero; a workload that wants no
    replicas at all does not count as running.
    """
    kind = obj.get("kind")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if not isinstance(generation, int) or not isinstance(observed, int):
        return False, "generation not observed yet"
    if observed < generation:
        return False, f"controller has not seen generation {generation} (observed {observed})"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        counts = {
            "updated": status.get("updatedNumberScheduled", 0),
            "ready": status.get("numberReady", 0),
            "available": status.get("numberAvailable", 0),
        }
        if desired < 1:
            return False, "schedules no pods (desiredNumberScheduled 0)"
    elif kind in ("Deployment", "StatefulSet"):
        desired = spec.get("replicas", 1)
        counts = {
            "updated": status.get("updatedReplicas", 0),
            "ready": status.get("readyReplicas", 0),
            "available": status.get("availableReplicas", 0),
        }
        if desired < 1:
            return False, "scaled to 0 replicas"
        total = status.get("replicas", 0)
        if total > desired:
            return False, f"{total - desired} old replica(s) still running"
        if kind == "StatefulSet":
            cur, upd = status.get("currentRevision"), status.get("updateRevision")
            if upd and cur != upd:
                return False, f"revision {cur} not yet replaced by {upd}"
        if kind == "Deployment":
            progressing = condition(obj, "Progressing")
            if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
                return False, "ProgressDeadlineExceeded: " + (progressing.get("message") or "")
    else:
        return False, f"unsupported kind {kind!r}"
    short = [f"{key} {value}/{desired}" for key, value in counts.items() if value != desired]
    if short:
        return False, ", ".join(short)
    return True, f"{desired}/{desired} updated, ready, available"


def template_images(obj: dict, container: str | None = None) -> list[tuple[str, str]]:
    """[(container name, image)] of the pod template, optionally one container."""
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    pairs = [(c.get("name", "?"), c.get("image", "")) for c in containers if isinstance(c, dict)]
    if container is not None:
        pairs = [pair for pair in pairs if pair[0] == container]
    return pairs


# --- connectivity probes -------------------------------------------------------------------

def parse_ns_name(text: str, what: str = "pod") -> tuple[str, str]:
    ns, sep, name = text.partition("/")
    if not sep or not ns or not name or "/" in name:
        raise ValueError(f"{what} must be NAMESPACE/NAME, got {text!r}")
    # Kubernetes names (kubehop/node_labels.py, apimachinery's rules): also what keeps a name
    # from reading as a kubectl flag
    if not node_labels.LABEL_RE.fullmatch(ns):
        raise ValueError(f"{what} {text!r}: the namespace must be a DNS-1123 label")
    if len(name) > node_labels.SUBDOMAIN_MAX or not node_labels.SUBDOMAIN_RE.fullmatch(name):
        raise ValueError(f"{what} {text!r}: the name must be a DNS-1123 subdomain (lowercase letters, digits, '-', '.')")
    return ns, name


def parse_pod_target(text: str) -> tuple[str, str, int | None]:
    """'ns/pod' or 'ns/pod:port' -> (ns, pod, port or None)."""
    ref, sep, port = text.partition(":")
    ns, pod = parse_ns_name(ref)
    return ns, pod, (parse_port(port) if sep else None)


def parse_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def render_probe(template: str, *, address: str, port: int | None) -> list[str]:
    """Split the template first, then fill each word, so an address can never add words."""
    words = shlex.split(template)
    if not words:
        raise ValueError("empty probe command")
    values = {"ip": address, "host": address, "port": "" if port is None else str(port)}
    return [word.format(**values) for word in words]


def check_probe_template(template: str, *, needs_port: bool) -> None:
    """ValueError unless the template is usable (checked once, up front)."""
    words = shlex.split(template)
    joined = " ".join(words)
    if not words:
        raise ValueError("empty probe command")
    if "{ip}" not in joined and "{host}" not in joined:
        raise ValueError(f"probe command {template!r} has no {{ip}} placeholder")
    if needs_port and "{port}" not in joined:
        raise ValueError(f"probe command {template!r} has no {{port}} placeholder")
    try:
        render_probe(template, address="192.0.2.1", port=1)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"probe command {template!r}: unknown placeholder {exc}") from exc


def running_pod_ip(k: Kubectl, ns: str, pod: str) -> str:
    obj = k.get("pods", pod, kind="Pod", namespace=ns)
    status = obj.get("status") or {}
    if status.get("phase") != "Running":
        raise KubectlError(f"pod {ns}/{pod} is {status.get('phase') or 'in no phase'}, not Running")
    ip = status.get("podIP")
    if not ip:
        raise KubectlError(f"pod {ns}/{pod} has no podIP")
    return ip


# kubectl exec ends stderr with this line when the command exits non-zero (client-go
# tools/remotecommand errorDecoderV4 makes a CodeExitError "command terminated with exit code %d",
# which kubectl prints; seen with kubectl 1.30-1.33): the probe's own last words are before it.
_EXIT_LINE = re.compile(r"^command terminated with exit code \d+\s*$", re.M)


def run_probe(
    k: Kubectl, ns: str, pod: str, argv: list[str], *, timeout: float
) -> tuple[bool, str]:
    """Run argv inside ns/pod; (exit 0?, detail)."""
    try:
        result = k.exec(ns, pod, argv, timeout=timeout)
    except KubectlError as exc:
        return False, str(exc)
    if result.returncode == 0:
        return True, "ok"
    why = _tail(_EXIT_LINE.sub("", result.stderr)) or _tail(result.stdout) or _tail(result.stderr) or "no output"
    return False, f"`{' '.join(argv)}` exited {result.returncode}: {why}"


def name_list(names: Iterable[str], limit: int = MAX_NAMED) -> str:
    names = list(names)
    shown = "; ".join(names[:limit])
    return shown + (f"; ... and {len(names) - limit} more" if len(names) > limit else "")


def pods_started(pods: list[dict]) -> datetime | None:
    """When the newest running container of these pods started."""
    starts = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            started = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
            if started:
                starts.append(parse_time(started))
    return max(starts) if starts else None
