"""Cutover actions run by `pulumi up` through the gate CLI (runbook 6.1.2,
6.2.2, 6.5.1): they change the cluster, unlike gates, but share the CLI, its
exit codes (0 done, 1 failed, 2 bad arguments) and its bounds.

Each action reads the current state first, acts only when needed, then reads
again to verify, so re-running after success (or after a partial failure) is
safe:

* `serviceswitch` merge-patches the MySQL ServiceSwitch object so the
  application is served by the standby side; `--undo-from-record` switches it
  back with the patch recorded before the switch.
* `mirrormaker --action stop|start` scales the Kafka MirrorMaker workload to 0
  (remembering the replica count in an annotation) and back.

With `--record`, each writes its effect to the cutover record before acting and
again once verified (kubehop/cutover_record.py), so a later run knows what to undo.

kubectl talks to the cluster of --kubeconfig/--context, or of $KUBECONFIG.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from kubehop import cutover_record
from kubehop.gates import cutover_log
from kubehop.gates.common import GateError, Verdict, add_poll_arguments, poll

# The same kubectl flags as every kube gate: --kubectl --kubeconfig --context --request-timeout.
from kubehop.gates.kube import Kubectl as KubeClient
from kubehop.gates.kube import KubectlError, add_kubectl_arguments, selector_string

REPLICAS_ANNOTATION = "kubehop.io/replicas-before-stop"

_KINDS = {
    "deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
    "deployment.apps": "deployment", "deployments.apps": "deployment",
    "statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
    "statefulset.apps": "statefulset", "statefulsets.apps": "statefulset",
}


def _say(name: str, message: str) -> None:
    print(f"[{name}] {message}", file=sys.stderr, flush=True)


# --- kubectl -------------------------------------------------------------------

class Kubectl:
    """Bounded kubectl calls against one cluster; every failure is a GateError."""

    def __init__(self, binary: str, *, kubeconfig: str | None, context: str | None, request_timeout: float):
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self.request_timeout = request_timeout
        # One bound for every gate: kube.Kubectl's argv and process backstop.
        self.client = KubeClient(binary, kubeconfig, context, request_timeout)
        self.timeout = self.client.backstop

    @classmethod
    def from_args(cls, args) -> Kubectl:
        return cls(args.kubectl, kubeconfig=args.kubeconfig, context=args.context,
                   request_timeout=args.request_timeout)

    @property
    def cluster(self) -> str:
        if self.context:
            return f"context {self.context}"
        if self.kubeconfig:
            return f"kubeconfig {self.kubeconfig}"
        return "current context"

    def run(self, *args: str, namespace: str | None = None) -> str:
        argv = self.client.base()
        if namespace:
            argv += ["-n", namespace]
        argv += list(args)
        shown = " ".join(args)
        try:
            result = subprocess.run(
                argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=self.timeout
            )
        except FileNotFoundError:
            raise GateError(f"kubectl not found: {self.binary!r} (set --kubectl)") from None
        except PermissionError:
            raise GateError(f"kubectl not executable: {self.binary!r}") from None
        except subprocess.TimeoutExpired:
            raise GateError(f"`kubectl {shown}` ({self.cluster}) timed out after {self.timeout:g}s") from None
        if result.returncode != 0:
            err = (result.stderr.strip() or result.stdout.strip() or "no output")[-2000:]
            raise GateError(f"`kubectl {shown}` ({self.cluster}) failed with exit {result.returncode}: {err}")
        return result.stdout

    def get_json(self, *args: str, namespace: str | None = None) -> dict:
        out = self.run("get", *args, "-o", "json", namespace=namespace)
        try:
            value = json.loads(out)
        except json.JSONDecodeError as exc:
            raise GateError(f"`kubectl get {' '.join(args)}` did not return JSON: {exc}") from None
        if not isinstance(value, dict):
            raise GateError(f"`kubectl get {' '.join(args)}` returned {type(value).__name__}, not an object")
        return value


# --- serviceswitch ---------------------------------------------------------------

def _canonical(value: Any) -> str:
    # JSON equality: True is not 1, key order does not matter.
    return json.dumps(value, sort_keys=True)


def merge_patch_differences(target: Any, patch: dict, path: str = "") -> list[str]:
    """What applying JSON merge patch (RFC 7386) `patch` to `target` would change.

    [] means the object already says what the patch says.
    """
    diffs: list[str] = []
    target_is_obj = isinstance(target, dict)
    for key, want in patch.items():
        where = f"{path}.{key}"
        present = target_is_obj and key in target
        have = target.get(key) if target_is_obj else None
        if want is None:
            if present:
                diffs.append(f"{where}: {json.dumps(have)} -> (removed)")
        elif isinstance(want, dict):
            if present and not isinstance(have, dict):
                diffs.append(f"{where}: {json.dumps(have)} -> {json.dumps(want)}")
            else:
                diffs.extend(merge_patch_differences(have if present else {}, want, where))
                if not present and not any(v is not None for v in want.values()):
                    diffs.append(f"{where}: (absent) -> {{}}")
        elif not present or _canonical(have) != _canonical(want):
            diffs.append(f"{where}: {json.dumps(have) if present else '(absent)'} -> {json.dumps(want)}")
    return diffs


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not value:
        raise argparse.ArgumentTypeError("must be a non-empty JSON object")
    return value


def _ns_name(text: str) -> tuple[str, str]:
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError("must be NAMESPACE/NAME")
    return namespace, name


def _ready_addresses(endpoints: dict) -> list[str]:
    addresses = []
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            addresses.append(str(address.get("ip") or address.get("hostname") or "?"))
    return addresses


def _switch_patch(args, current: dict) -> tuple[dict, str, dict | None]:
    """The merge patch to apply, the MySQL state it brings, and the patch that undoes it.

    Switching to the standby records, before patching, the patch that puts back what the
    object says now; a re-run after a partial switch keeps the first one recorded (the
    object may already be switched by then). `--undo-from-record` applies that patch."""
    recorded = cutover_log.read(args) if args.record else None
    if args.undo_from_record:
        undo = (recorded or {}).get("undo")
        if not isinstance(undo, dict) or not undo:
            raise GateError(f"--undo-from-record: {args.record} holds no undo patch: the switch was never "
                            "recorded. Fix: set the ServiceSwitch back by hand (runbook 6.1.2), then delete the record")
        return undo, cutover_record.REST[cutover_record.MYSQL], undo
    patch = args.patch_json if args.patch_json is not None else {"spec": args.spec_json}
    undo = (recorded or {}).get("undo") or cutover_record.reverse_merge_patch(current, patch)
    return patch, cutover_record.AWAY[cutover_record.MYSQL], undo


def run_serviceswitch(args) -> str:
    name = "serviceswitch"
    if args.undo_from_record and not args.record:
        raise GateError("--undo-from-record needs --record")
    kubectl = Kubectl.from_args(args)
    what = f"{args.resource}/{args.name} in {args.namespace} ({kubectl.cluster})"

    current = kubectl.get_json(args.resource, args.name, namespace=args.namespace)
    patch, state, undo = _switch_patch(args, current)
    cutover_log.write(args, cutover_record.MYSQL, state, done=False, undo=undo)
    diffs = merge_patch_differences(current, patch)
    if not diffs:
        _say(name, f"{what}: already matches {json.dumps(patch, sort_keys=True)}")
        outcome = "already switched"
    else:
        _say(name, f"{what}: patching: {'; '.join(diffs)}")
        kubectl.run("patch", args.resource, args.name, "--type", "merge", "-p", json.dumps(patch),
                    namespace=args.namespace)
        after = kubectl.get_json(args.resource, args.name, namespace=args.namespace)
        left = merge_patch_differences(after, patch)
        if left:
            raise GateError(f"{what}: patch accepted but the object still differs (reverted by an operator "
                            f"or webhook?): {'; '.join(left)}")
        _say(name, f"{what}: verified after patch")
        outcome = "switched"

    if args.verify_endpoints:
        ep_ns, ep_name = args.verify_endpoints

        def check() -> Verdict:
            addresses = _ready_addresses(kubectl.get_json("endpoints", ep_name, namespace=ep_ns))
            if not addresses:
                return Verdict(False, f"endpoints {ep_ns}/{ep_name} has no ready address")
            return Verdict(True, f"endpoints {ep_ns}/{ep_name} -> {', '.join(addresses[:5])}"
                                 + (" ..." if len(addresses) > 5 else ""))

        verdict = poll(name, check, timeout=args.timeout, interval=args.interval, out=sys.stderr)
        outcome = f"{outcome}; {verdict.detail}"
    cutover_log.write(args, cutover_record.MYSQL, state, done=True, undo=undo)
    return f"{what}: {outcome}"


# --- mirrormaker -----------------------------------------------------------------

def _workload(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("/")
    canonical = _KINDS.get(kind.lower())
    if not sep or not name or "/" in name:
        raise argparse.ArgumentTypeError("must be KIND/NAME, e.g. deployment/mirrormaker")
    if canonical is None:
        raise argparse.ArgumentTypeError(f"kind {kind!r} is not supported: use deployment or statefulset")
    return canonical, name


def label_selector(selector: dict | None) -> str:
    """A workload's spec.selector as a `kubectl get -l` string (never empty)."""
    if not selector:
        raise GateError("workload has no spec.selector: cannot find its pods")
    try:
        return selector_string(selector)
    except KubectlError as exc:
        raise GateError(f"{exc}: refusing to match every pod") from None


def _replicas(obj: dict) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)  # the API defaults a missing count to 1


def _recorded(obj: dict) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)


def _observed(obj: dict) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def run_mirrormaker(args) -> str:
    name = f"mirrormaker-{args.action}"
    kind, wl_name = args.workload
    ref = f"{kind}/{wl_name}"
    kubectl = Kubectl.from_args(args)
    what = f"{ref} in {args.namespace} ({kubectl.cluster})"
    ns = args.namespace

    def get() -> dict:
        return kubectl.get_json(kind, wl_name, namespace=ns)

    obj = get()
    current = _replicas(obj)
    recorded = _recorded(obj)

    effect_state = {"stop": "stopped", "start": "running"}[args.action]
    cutover_log.write(args, cutover_record.MIRRORMAKER, effect_state, done=False)
    if args.action == "stop":
        if args.replicas is not None:
            raise GateError("--replicas applies to --action start only")
        if current > 0:
            # Record first: if the scale fails, start still knows the count.
            _say(name, f"{what}: recording {current} replicas in {REPLICAS_ANNOTATION}, scaling to 0")
            kubectl.run("annotate", "--overwrite", ref, f"{REPLICAS_ANNOTATION}={current}", namespace=ns)
            kubectl.run("scale", ref, f"--current-replicas={current}", "--replicas=0", namespace=ns)
            outcome = f"stopped (was {current} replicas, recorded in {REPLICAS_ANNOTATION})"
        else:
            if recorded is None:
                _say(name, f"{what}: already at 0 replicas with no recorded count: "
                           f"start will need --replicas")
                outcome = "already stopped (no recorded replica count)"
            else:
                _say(name, f"{what}: already at 0 replicas (recorded {recorded})")
                outcome = f"already stopped (recorded {recorded} replicas)"
        selector = label_selector((obj.get("spec") or {}).get("selector"))

        def stopped() -> Verdict:
            live = get()
            spec = _replicas(live)
            status = (live.get("status") or {}).get("replicas") or 0
            pods = kubectl.get_json("pods", "-l", selector, namespace=ns).get("items") or []
            names = [(p.get("metadata") or {}).get("name", "?") for p in pods]
            detail = f"spec.replicas={spec} status.replicas={status} pods={len(pods)}"
            if names:
                detail += f" ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"
            if spec != 0:
                return Verdict(False, f"{detail}: scaled back up by someone else?")
            return Verdict(_observed(live) and status == 0 and not pods, detail)

        poll(name, stopped, timeout=args.timeout, interval=args.interval, out=sys.stderr)
        cutover_log.write(args, cutover_record.MIRRORMAKER, effect_state, done=True)
        return f"{what}: {outcome}; no pods left"

    # start
    if args.replicas is not None:
        if args.replicas < 1:
            raise GateError("--replicas must be at least 1 to start")
        target = args.replicas
        source = "--replicas"
    elif current > 0:
        # running: a stop that got no further than its record never scaled it (the count is
        # annotated before the scale), and an annotation from an earlier cycle is no order to rescale
        target, source = current, "its running count"
    elif recorded is None:
        raise GateError(f"{what}: no {REPLICAS_ANNOTATION} annotation and no --replicas: "
                        "don't know how many replicas to start")
    else:
        try:
            target = int(recorded)
        except ValueError:
            raise GateError(f"{what}: {REPLICAS_ANNOTATION}={recorded!r} is not a number; pass --replicas") from None
        if target < 1:
            raise GateError(f"{what}: {REPLICAS_ANNOTATION}={recorded!r} is not a positive count; pass --replicas")
        source = REPLICAS_ANNOTATION
    if current != target:
        _say(name, f"{what}: scaling {current} -> {target} replicas (from {source})")
        kubectl.run("scale", ref, f"--current-replicas={current}", f"--replicas={target}", namespace=ns)
        outcome = f"started ({target} replicas from {source})"
    else:
        _say(name, f"{what}: already at {target} replicas")
        outcome = f"already started ({target} replicas)"

    def started() -> Verdict:
        live = get()
        spec = _replicas(live)
        status = live.get("status") or {}
        ready = status.get("readyReplicas") or 0
        total = status.get("replicas") or 0
        detail = f"spec.replicas={spec} status.replicas={total} ready={ready} want={target}"
        if spec != target:
            return Verdict(False, f"{detail}: spec changed by someone else?")
        return Verdict(_observed(live) and ready == target and total == target, detail)

    poll(name, started, timeout=args.timeout, interval=args.interval, out=sys.stderr)
    cutover_log.write(args, cutover_record.MIRRORMAKER, effect_state, done=True)
    return f"{what}: {outcome}; {target} ready"


# --- CLI -------------------------------------------------------------------------

def register(subparsers) -> None:
    sw = subparsers.add_parser(
        "serviceswitch",
        help="merge-patch the MySQL ServiceSwitch object (idempotent, verified)",
        description="Merge-patch a ServiceSwitch (runbook 6.1.2) unless it already says what the patch says; "
                    "re-read to verify. Optionally wait for a Service's endpoints to have a ready address.",
    )
    sw.add_argument("--namespace", required=True)
    sw.add_argument("--name", required=True, help="the ServiceSwitch object")
    sw.add_argument("--resource", default="serviceswitch",
                    help="kubectl resource name, e.g. serviceswitch or serviceswitches.<group>")
    spec = sw.add_mutually_exclusive_group(required=True)
    spec.add_argument("--patch-json", type=_json_object, help='JSON merge patch, e.g. \'{"spec":{"active":"prod-a"}}\'')
    spec.add_argument("--spec-json", type=_json_object, help='shorthand for --patch-json \'{"spec": SPEC}\'')
    spec.add_argument("--undo-from-record", action="store_true",
                      help="switch back: apply the patch --record kept from before the switch")
    cutover_log.add_record_arguments(sw)
    sw.add_argument("--verify-endpoints", type=_ns_name, metavar="NAMESPACE/SERVICE",
                    help="after switching, wait until this Service's endpoints have a ready address")
    add_kubectl_arguments(sw)
    add_poll_arguments(sw, timeout=120, interval=5)
    sw.set_defaults(func=run_serviceswitch)

    mm = subparsers.add_parser(
        "mirrormaker",
        help="stop (scale to 0, remember count) or start (restore count) Kafka MirrorMaker",
        description="Stop: record spec.replicas in the kubehop.io/replicas-before-stop annotation, scale to 0 and "
                    "wait until no pods are left. Start: scale to --replicas or the recorded count and wait "
                    "until that many are ready. Both do nothing when already there.",
    )
    mm.add_argument("--action", required=True, choices=("stop", "start"))
    mm.add_argument("--namespace", required=True)
    mm.add_argument("--workload", required=True, type=_workload, metavar="KIND/NAME",
                    help="deployment/NAME or statefulset/NAME")
    mm.add_argument("--replicas", type=int, default=None,
                    help="start only: replica count to start (default: the recorded count)")
    add_kubectl_arguments(mm)
    cutover_log.add_record_arguments(mm)
    add_poll_arguments(mm, timeout=600, interval=5)
    mm.set_defaults(func=run_mirrormaker)
