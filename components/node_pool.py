"""A node pool: launch template, the adopted Auto Scaling group, a drain hook,
and a rolling replacement that is waited for (runbook 3.3, 4.2, 6.3.3).

The group is imported from config and retained on delete; its desired
capacity stays with the cluster autoscaler. A new image means a new
launch-template version, pinned by number (never $Latest) on the group, whose
instance refresh replaces the nodes; the termination hook lets the drainer
empty each node first. The rollout gate then waits for every instance.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.steps import gate_step, script
from kubehop.catalog import Version
from kubehop.config import AdoptedTemplate
from kubehop.config import NodePool as NodePoolConfig
from kubehop.node_labels import POOL_LABEL

# Group fields kubehop does not manage: whatever the group has stays as it is, on
# the adoption run and after. In the Terraform schema pulumi-aws bridges
# (terraform-provider-aws internal/service/autoscaling/group.go) `tag`,
# `termination_policies`, `enabled_metrics`, `capacity_rebalance`,
# `max_instance_lifetime`, `suspended_processes` and the rest are Optional but not
# Computed, and `health_check_grace_period`/`metrics_granularity`/
# `protect_from_scale_in` carry defaults: a program that omits them would remove
# or reset them (the autoscaler's discovery tags first). Ignored, an import
# takes the read-back value and no update ever touches them.
UNMANAGED_GROUP_FIELDS = [
    "desiredCapacity", "tags", "terminationPolicies", "enabledMetrics", "metricsGranularity",
    "healthCheckGracePeriod", "healthCheckType", "capacityRebalance", "maxInstanceLifetime",
    "defaultCooldown", "defaultInstanceWarmup", "suspendedProcesses", "protectFromScaleIn",
    "serviceLinkedRoleArn", "loadBalancers", "targetGroupArns", "placementGroup",
    "instanceMaintenancePolicy", "context", "desiredCapacityType", "availabilityZones",
]


# The launch hook's heartbeat: the boot script's join plus its Ready wait
# (KUBEHOP_READY_TIMEOUT, 600 s) fit in it. Without a CompleteLifecycleAction the
# hook's DefaultResult applies at the timeout (AWS Auto Scaling user guide,
# "Amazon EC2 Auto Scaling lifecycle hooks": HeartbeatTimeout 30-7200 s, default
# 3600; for a launch, ABANDON terminates the instance).
LAUNCH_HOOK_TIMEOUT = 900
# A new instance without a Ready node this long after launch fails the rollout gate:
# by then its launch hook has abandoned it (or it slipped past the hook).
JOIN_BOUND = LAUNCH_HOOK_TIMEOUT + 300


def launch_hook_name(pool: NodePoolConfig) -> str:
    return f"kubehop-{pool.name}-ready"


def user_data(cluster: str, pool: NodePoolConfig, kubelet_version: str = "", launch_hook: str = "") -> str:
    """The boot script with the pool's values, each base64-encoded so none can be
    shell code (the config already refused what kubelet would not accept)."""
    labels = ",".join(f"{k}={v}" for k, v in sorted({**pool.labels, POOL_LABEL: pool.name}.items()))
    taints = ",".join(f"{t.key}={t.value}:{t.effect}" for t in pool.taints)
    values = {"CLUSTER": cluster, "LABELS": labels, "TAINTS": taints, "GROUP": pool.asg_name,
              "HOOK": launch_hook, "KUBELET": kubelet_version}
    text = script("node_pool/user_data.sh")
    for name, value in values.items():
        text = text.replace(f"__{name}_B64__", base64.b64encode(value.encode()).decode())
    return base64.b64encode(text.encode()).decode()


def refresh_values(pool: NodePoolConfig) -> tuple[int, int | None, int]:
    """(MinHealthyPercentage, MaxHealthyPercentage, InstanceWarmup): database pools one
    node at a time, launched before the old one goes. One source for the group's refresh
    and for the one the rollout gate starts after a cancel.

    No checkpoints: their pauses checked nothing. The launch hook now holds each
    replacement until its node is Ready, and the gate fails (and cancels the refresh)
    on the first node that never joins."""
    if pool.database:
        return 100, 110, pool.instance_warmup_seconds
    return pool.min_healthy_percentage, None, pool.instance_warmup_seconds


def refresh_preferences(pool: NodePoolConfig) -> aws.autoscaling.GroupInstanceRefreshPreferencesArgs:
    low, high, warmup = refresh_values(pool)
    return aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
        min_healthy_percentage=low, max_healthy_percentage=high, instance_warmup=str(warmup), skip_matching=True)


def refresh_gate_args(pool: NodePoolConfig) -> list[str]:
    low, high, warmup = refresh_values(pool)
    return ["--manage-refresh", "--min-healthy-percentage", str(low), *(["--max-healthy-percentage", str(high)] if high else []),
            "--instance-warmup", str(warmup), "--join-bound", str(JOIN_BOUND)]


def join_token_ttl_hours(pools: list[NodePoolConfig], configured: int) -> int:
    """A token is re-used while half its lifetime is left: make that half cover
    every pool's rollout of this run, one after another."""
    rollout_hours = -(-sum(rollout_timeout(p) for p in pools) // 3600)
    return max(configured, 2 * rollout_hours)


def rollout_timeout(pool: NodePoolConfig) -> int:
    """The pool's own bound."""
    return pool.rollout_timeout_seconds


@dataclass
class NodePoolArgs:
    pool: NodePoolConfig
    cluster: str
    region: str
    ami_id: pulumi.Input[str]
    kubelet_version: Version
    kubeconfig: pulumi.Input[str]
    drain_timeout_seconds: int
    """rollout.workerDrainTimeoutSeconds: NTH's drain bound, the same in the drainer."""
    imds: str = "v2"
    """The cluster's IMDS version: a pool without its own setting follows it."""
    adopted_template: AdoptedTemplate | None = None
    """While the pool still runs its adopted AMI, the group keeps the launch
    template it was imported with; it moves to kubehop's on its first rollout."""
    ready: list[pulumi.Resource] = field(default_factory=list)
    """The stage's prerequisites (addon checks, drainer, join token): the drain hook and
    the launch template wait for these only, so a pool's own steps walk a small graph."""
    after: list[pulumi.Resource] = field(default_factory=list)
    """The previous wave's rollout waits (they waited for `ready`): only what moves the
    group (the launch hook and the group itself) waits for them; empty in the first wave."""
    adopting: bool = False
    """The adoption run: the group is imported, declaring only what the import reads back."""


class NodePool(pulumi.ComponentResource):
    """One pool's rollout; `rolled` is its rollout-wait step."""

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:NodePool", name, None, opts)
        pool = args.pool
        imdsv2 = pool.imdsv2_required if pool.imdsv2_required is not None else args.imds == "v2"
        # the cluster tag tells the cloud-controller-manager which instances are this cluster's
        tags = {f"kubernetes.io/cluster/{args.cluster}": "owned", "kubehop:cluster": args.cluster,
                "kubehop:pool": pool.name, "kubehop:kubernetes-version": str(args.kubelet_version)}
        hook = aws.autoscaling.LifecycleHook(
            f"{pool.name}-drain-hook",
            autoscaling_group_name=pool.asg_name,
            lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
            # NTH drains for drain_timeout_seconds (its nodeTerminationGracePeriod) and then
            # completes the hook; 120 s more so the hook never ends a drain (<= 7200, config)
            heartbeat_timeout=args.drain_timeout_seconds + 120,
            default_result="CONTINUE",
            # the drainer runs first; a drain hook before the previous wave ends only makes a
            # scale-in of this pool drain through NTH, which is ready by then
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.ready)))
        template = aws.ec2.LaunchTemplate(
            f"{pool.name}-launch-template",
            name=f"kubehop-{args.cluster}-{pool.name}",
            image_id=args.ami_id,
            instance_type=pool.instance_type,
            user_data=user_data(args.cluster, pool, f"v{args.kubelet_version}", launch_hook_name(pool)),
            vpc_security_group_ids=pool.security_group_ids or None,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(name=pool.iam_instance_profile) if pool.iam_instance_profile else None,
            # tags in IMDS stay off, explicitly (an account default can turn them on): with them on,
            # tag keys may not contain "/" and a launch with kubernetes.io/cluster/<name> fails
            # (AWS EC2 user guide, "View tags for your EC2 instances using instance metadata";
            # kubernetes/cloud-provider-aws#436, #762). Nothing on a node reads tags from IMDS.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required" if imdsv2 else "optional",
                # hop limit 2, not 1: NTH runs in queue mode, which never uses host networking
                # (NTH v1.25.6 chart values.yaml, useHostNetwork), so its pod reaches IMDS for the
                # node role's credentials through one more hop (README, "Node pools")
                http_put_response_hop_limit=2, instance_metadata_tags="disabled"),
            update_default_version=True,
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                                for kind in ("instance", "volume")],
            # a new kubelet must never be launchable before the control plane is at its version: the
            # template waits for `ready` through the hook (the SDK registers a resource only once each
            # depends_on URN resolved: pulumi/runtime/resource.py prepare_resource). A new template
            # version launches nothing until the group points at it (the group names its version);
            # retained: the adopted group keeps pointing at it after `pulumi destroy`
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hook], retain_on_delete=True))
        # A launch hook completed by the boot script only when its node is Ready at the
        # expected kubelet (user_data.sh): a launching instance waits in Pending:Wait until its
        # hook completes (AWS Auto Scaling user guide, "How lifecycle hooks work in Auto Scaling
        # groups") and the refresh's warm-up starts once it is InService (API reference,
        # RefreshPreferences.InstanceWarmup), so a node that never joins is abandoned, never
        # counted healthy. Only with kubehop's template: the adopted one's
        # boot script would never complete it.
        launch_hooks = [] if args.adopted_template is not None else [aws.autoscaling.LifecycleHook(
            f"{pool.name}-launch-hook",
            name=launch_hook_name(pool),
            autoscaling_group_name=pool.asg_name,
            lifecycle_transition="autoscaling:EC2_INSTANCE_LAUNCHING",
            heartbeat_timeout=LAUNCH_HOOK_TIMEOUT,
            default_result="ABANDON",
            # created only when the group is about to move: an instance the adopted template launches
            # meanwhile would never complete it and be abandoned
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hook, *args.after]))]
        if args.adopted_template is not None:
            template_id, version = pulumi.Output.from_input(args.adopted_template.id), pulumi.Output.from_input(args.adopted_template.version)
        else:
            template_id, version = template.id, template.latest_version.apply(str)
        group = aws.autoscaling.Group(
            f"{pool.name}-node-pool",
            name=pool.asg_name,
            min_size=pool.min_size,
            max_size=pool.max_size,
            vpc_zone_identifiers=pool.subnet_ids,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template_id, version=version),
            # never read back (group.go's read has no instance_refresh): declared on an import it
            # would make the import differ, so it comes in with the next run's previewed update
            instance_refresh=None if args.adopting else aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling", preferences=refresh_preferences(pool)),
            opts=pulumi.ResourceOptions(
                # after the previous wave: through the launch hook when there is one (one edge
                # to the wave's graph, not one per step: each edge costs the SDK's cycle check a
                # walk of its target's whole graph, pulumi/runtime/resource_cycle_breaker.py)
                parent=self, depends_on=launch_hooks or [hook, *args.after], import_=pool.asg_name if args.adopting else None,
                retain_on_delete=True, ignore_changes=UNMANAGED_GROUP_FIELDS))
        self.rolled = gate_step(
            f"{pool.name}-rollout-wait", gate="rollout",
            args=["--asg", pool.asg_name, "--region", args.region, "--launch-template-version", version,
                  "--image-id", args.ami_id, "--kubelet-version", f"v{args.kubelet_version}",
                  *refresh_gate_args(pool),
                  "--timeout", str(rollout_timeout(pool)), "--interval", "30"],
            triggers=[version, args.ami_id],
            secret_env=None, kubeconfig=args.kubeconfig, parent=self, depends_on=[group])
        self.launch_template_version = version
        self.register_outputs({"launchTemplateVersion": version, "amiId": args.ami_id})
