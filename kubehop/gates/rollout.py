"""`rollout`: has an Auto Scaling group been rolled onto the new worker AMI? (runbook 3, 6.3.3)

Passes when, in one look:
  - the group launches the expected launch template version (with $Latest and
    $Default resolved) and that version's ImageId is --image-id, when given, so
    scale-outs after the gate come up new too;
  - the group has at least DesiredCapacity instances InService;
  - every InService instance is Healthy and runs the new launch template version
    OR the expected image. The image (from ec2:DescribeInstances) is what
    decides the kubelet; it also covers an instance whose reported launch
    template version is stale or symbolic ($Latest) - moto reports every
    instance with the template's default version, so a replacement launched
    from v2 still says v1 although it runs the v2 image;
  - each such instance's Kubernetes node - matched by spec.providerID
    (aws:///<az>/<instance-id>) or else by the instance's private DNS name
    (node name, InternalDNS or Hostname address) - is Ready, not cordoned, and
    runs --kubelet-version.
Otherwise it names the instances left behind: id, launch template version,
image, node and its state. AWS credentials come from the usual boto3 chain,
never from argv.

With --manage-refresh it also steers the group's instance refresh
(kubehop/gates/refresh.py): it fails at once when a refresh it watched fails
or is cancelled, or when an instance on the new image has had no Ready node
for --join-bound seconds after launch; it starts a refresh (with the pool's
preferences) when none is active and the group is not rolled, replaces one
started for an older launch template version, and cancels the active refresh
whenever it fails (the timeout included).
"""
from __future__ import annotations

import argparse
import functools
import sys
from datetime import datetime, timezone

import boto3
from botocore.config import Config

from kubehop.gates.common import GateError, Verdict, add_poll_arguments, poll
from kubehop.gates.refresh import Preferences, RefreshWatch
from kubehop.gates.kube import (
    add_kubectl_arguments,
    is_cordoned,
    kubectl_from_args,
    kubelet_version,
    name_list,
    name_of,
    node_ready,
    version_matches,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rollout",
        help="every instance of an ASG runs the new launch template/AMI and its node is Ready",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--asg", required=True, help="Auto Scaling group name")
    p.add_argument("--region", required=True)
    p.add_argument("--launch-template-version", type=int, metavar="N", help="the new launch template version")
    p.add_argument("--image-id", metavar="AMI", help="the new worker AMI (ami-...)")
    p.add_argument("--endpoint-url", help="AWS endpoint override (tests, VPC endpoints)")
    p.add_argument("--kubelet-version", required=True, metavar="vX.Y.Z", help="kubelet the new nodes must run")
    p.add_argument("--manage-refresh", action="store_true", help="watch, start and cancel the group's instance refresh")
    p.add_argument("--min-healthy-percentage", type=int, default=90, help="preference of a refresh the gate starts")
    p.add_argument("--max-healthy-percentage", type=int, help="preference of a refresh the gate starts")
    p.add_argument("--instance-warmup", type=int, default=300, help="preference of a refresh the gate starts (seconds)")
    p.add_argument("--join-bound", type=float, default=1200, metavar="SECONDS",
                   help="fail when an instance on the new image has no Ready node this long after launch")
    add_kubectl_arguments(p)
    add_poll_arguments(p, timeout=1800, interval=30)
    p.set_defaults(func=run_rollout, _parser=p)


@functools.lru_cache(maxsize=None)
def _session(region: str) -> boto3.session.Session:
    # One session per region and process: it caches the service models, which
    # otherwise cost most of a second per client (matters for in-process tests).
    return boto3.session.Session(region_name=region)


def _clients(args):
    session = _session(args.region)
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=20)
    kw = {"config": config}
    if args.endpoint_url:
        kw["endpoint_url"] = args.endpoint_url
    return session.client("autoscaling", **kw), session.client("ec2", **kw)


def refresh_client(args):
    """The client for the instance-refresh calls, apart from the rest: moto serves no
    instance-refresh API, so tests give this one a botocore Stubber."""
    return _clients(args)[0]


def group_launch_template(group: dict) -> dict | None:
    spec = group.get("LaunchTemplate")
    if not spec:
        spec = ((group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
            "LaunchTemplateSpecification"
        )
    return spec or None


def resolve_template(ec2, spec: dict) -> tuple[str, int, str | None, datetime | None]:
    """(template label, version number the group launches, that version's ImageId and CreateTime)."""
    ident = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else {
        "LaunchTemplateName": spec["LaunchTemplateName"]
    }
    version = str(spec.get("Version") or "$Default")
    if version in ("$Latest", "$Default"):
        key = "LatestVersionNumber" if version == "$Latest" else "DefaultVersionNumber"
        lookup = {"LaunchTemplateIds": [ident["LaunchTemplateId"]]} if "LaunchTemplateId" in ident else {
            "LaunchTemplateNames": [ident["LaunchTemplateName"]]
        }
        number = int(ec2.describe_launch_templates(**lookup)["LaunchTemplates"][0][key])
    else:
        number = int(version)
    versions = ec2.describe_launch_template_versions(**ident, Versions=[str(number)])["LaunchTemplateVersions"]
    image = (versions[0].get("LaunchTemplateData") or {}).get("ImageId") if versions else None
    created = versions[0].get("CreateTime") if versions else None
    label = spec.get("LaunchTemplateName") or spec.get("LaunchTemplateId")
    return label, number, image, created


def describe_instances(ec2, ids: list[str]) -> dict[str, dict]:
    found = {}
    if not ids:
        return found
    for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                found[inst["InstanceId"]] = inst
    return found


def index_nodes(nodes: list[dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """({instance id: node} from providerID, {dns name: node} from name and addresses)."""
    by_id, by_dns = {}, {}
    for node in nodes:
        provider = (node.get("spec") or {}).get("providerID") or ""
        if provider.startswith("aws://"):
            by_id[provider.rstrip("/").rsplit("/", 1)[-1]] = node
        by_dns[name_of(node)] = node
        for addr in (node.get("status") or {}).get("addresses") or []:
            if addr.get("type") in ("InternalDNS", "Hostname") and addr.get("address"):
                by_dns.setdefault(addr["address"], node)
    return by_id, by_dns


def _wanted(args) -> str:
    parts = ([f"launch template v{args.launch_template_version}"] if args.launch_template_version is not None else []) \
        + ([f"image {args.image_id}"] if args.image_id else [])
    return "either " + " or ".join(parts) if len(parts) > 1 else parts[0]


def _template_problems(ec2, group: dict, args) -> tuple[list[str], datetime | None]:
    """The group's launch template must be the wanted version/image; also that version's CreateTime."""
    spec = group_launch_template(group)
    if spec is None:
        return [f"group {args.asg} launches from no launch template"], None
    problems = []
    label, number, lt_image, created = resolve_template(ec2, spec)
    if args.launch_template_version is not None and number != args.launch_template_version:
        problems.append(f"group {args.asg} launches {label} version {number} ({spec.get('Version')}), want {args.launch_template_version}")
    if args.image_id and lt_image != args.image_id:
        problems.append(f"{label} version {number} uses image {lt_image}, want {args.image_id}")
    return problems, created


def _is_new(inst: dict, ec2_inst: dict, args) -> bool:
    lt_version = str((inst.get("LaunchTemplate") or {}).get("Version", "-"))
    new_version = args.launch_template_version is not None and lt_version == str(args.launch_template_version)
    return new_version or (bool(args.image_id) and ec2_inst.get("ImageId") == args.image_id)


def _behind(inst: dict, ec2_inst: dict, node: dict | None, args) -> str | None:
    """Why an InService instance is not rolled (None when it is), naming its state."""
    iid = inst["InstanceId"]
    lt_version = str((inst.get("LaunchTemplate") or {}).get("Version", "-"))
    image = ec2_inst.get("ImageId", "unknown image")
    dns = ec2_inst.get("PrivateDnsName") or ""
    why = [] if _is_new(inst, ec2_inst, args) else [f"not on {_wanted(args)}"]
    state = (ec2_inst.get("State") or {}).get("Name", "not found")
    if state != "running":
        why.append(f"EC2 state {state}")
    if inst.get("HealthStatus") not in (None, "Healthy"):
        why.append(f"ASG health {inst.get('HealthStatus')}")
    if node is None:
        node_state = "no node"
        why.append(f"no Kubernetes node (providerID or {dns or 'private DNS name'})")
    else:
        ready, state = node_ready(node)
        kubelet = kubelet_version(node) or "unknown"
        node_state = f"{name_of(node)} {state} kubelet {kubelet}"
        if not ready:
            why.append(f"node {state}")
        if not version_matches(kubelet, args.kubelet_version):
            why.append(f"kubelet {kubelet}, want {args.kubelet_version}")
        if is_cordoned(node):
            why.append("node cordoned")
            node_state += " cordoned"
    return f"{iid} [LT v{lt_version}, {image}, node {node_state}]: {', '.join(why)}" if why else None


def _never_joined(inst: dict, ec2_inst: dict, node: dict | None, args, now: datetime) -> str | None:
    """A new instance whose node is not Ready --join-bound seconds after launch: the image is bad."""
    launched = ec2_inst.get("LaunchTime")
    if not launched or not _is_new(inst, ec2_inst, args) or (node is not None and node_ready(node)[0]):
        return None
    age = (now - launched).total_seconds()
    if age < args.join_bound:
        return None
    seen = "no Kubernetes node" if node is None else f"node {name_of(node)} {node_ready(node)[1]}"
    return (f"{inst['InstanceId']} ({ec2_inst.get('ImageId')}, {inst.get('LifecycleState')}, launched {age:.0f}s ago): "
            f"{seen} after the {args.join_bound:g}s bound")


def run_rollout(args) -> str:
    if args.launch_template_version is None and not args.image_id:
        args._parser.error("give --launch-template-version, --image-id, or both")
    autoscaling, ec2 = _clients(args)
    k = kubectl_from_args(args)
    watch = RefreshWatch(refresh_client(args), args.asg, Preferences(
        args.min_healthy_percentage, args.max_healthy_percentage, args.instance_warmup), args.launch_template_version) \
        if args.manage_refresh else None

    def look() -> Verdict:
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[args.asg])["AutoScalingGroups"]
        if not groups:
            return Verdict(False, f"Auto Scaling group {args.asg} not found in {args.region}")
        group = groups[0]
        problems, created = _template_problems(ec2, group, args)
        desired = group.get("DesiredCapacity", 0)
        members = group.get("Instances", [])
        in_service = [i for i in members if i.get("LifecycleState") == "InService"]
        if len(in_service) < desired:
            others = [f"{i['InstanceId']} {i.get('LifecycleState')}" for i in members if i.get("LifecycleState") != "InService"]
            problems.append(f"{len(in_service)}/{desired} instances InService" + (f" (others: {', '.join(others)})" if others else ""))
        details = describe_instances(ec2, [i["InstanceId"] for i in members])
        by_id, by_dns = index_nodes(k.items("nodes", kind="Node"))

        def node_of(inst: dict) -> dict | None:
            dns = details.get(inst["InstanceId"], {}).get("PrivateDnsName") or ""
            return by_id.get(inst["InstanceId"]) or (by_dns.get(dns) if dns else None)

        behind = [line for i in in_service if (line := _behind(i, details.get(i["InstanceId"], {}), node_of(i), args))]
        if behind:
            problems.append(f"{len(behind)}/{len(in_service)} instances not rolled: {name_list(behind)}")
        if not problems:
            return Verdict(True, f"group {args.asg}: {len(in_service)}/{desired} InService on the new launch template/image, "
                                 f"nodes Ready at {args.kubelet_version}")
        if watch is None:
            return Verdict(False, "; ".join(problems))
        now = datetime.now(timezone.utc)
        unjoined = [line for i in members if (line := _never_joined(i, details.get(i["InstanceId"], {}), node_of(i), args, now))]
        if unjoined:
            return Verdict(False, f"new instances never became Ready nodes: {name_list(unjoined)}; " + "; ".join(problems), final=True)
        happened, final = watch.steer(created)
        return Verdict(False, "; ".join([happened, *problems]), final=final)

    try:
        return poll(f"rollout {args.asg}", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail
    except GateError as exc:
        if watch is None:
            raise
        try:
            done = watch.cancel()
        except Exception as cancel_exc:  # still report the gate's own failure
            done = f"cancelling the refresh failed ({type(cancel_exc).__name__}: {cancel_exc}); cancel it by hand"
        raise GateError(f"{exc}; {done}") from None
