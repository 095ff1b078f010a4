"""No node leaves without a drain: aws-node-termination-handler in queue mode.

An instance refresh (or a scale-in) terminates instances; each pool's
termination lifecycle hook holds the instance while NTH, reading the
lifecycle events from an SQS queue, cordons and drains the node through the
eviction API (PodDisruptionBudgets honoured), then completes the hook.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from kubehop import catalog

def event_patterns(groups: list[str]) -> dict[str, dict]:
    """The events NTH drains on; terminations only from this cluster's groups
    (a sibling in the same region has its own queue). EC2 events cannot be
    filtered by group: NTH drops those for nodes it does not know."""
    return {
        "asg-termination": {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
                            "detail": {"AutoScalingGroupName": sorted(groups)}},
        "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    }


def queue_policy(queue_arn: str, rule_arns: list[str]) -> str:
    """EventBridge may send to the queue, and only for these rules."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Principal": {"Service": "events.amazonaws.com"},
        "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}}}]})


@dataclass
class DrainerArgs:
    cluster: str
    region: str
    provider: k8s.Provider
    groups: list[str]
    pod_grace_seconds: int = 300
    node_grace_seconds: int = 900


class Drainer(pulumi.ComponentResource):
    """Queue, event rules and the NTH release; `ready` must precede any rollout."""

    def __init__(self, name: str, args: DrainerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Drainer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue("node-termination-queue", name=f"kubehop-{args.cluster}-nth",
                              message_retention_seconds=300, sqs_managed_sse_enabled=True, opts=child)
        rules = {name: aws.cloudwatch.EventRule(f"node-termination-{name}", event_pattern=json.dumps(pattern), opts=child)
                 for name, pattern in event_patterns(args.groups).items()}
        # only this cluster's rules may send (aws:SourceArn: AWS EventBridge user guide, "Amazon SQS
        # permissions" for EventBridge targets; IAM condition keys, aws:SourceArn)
        policy = aws.sqs.QueuePolicy("node-termination-queue-policy", queue_url=queue.url, opts=child,
                                     policy=pulumi.Output.all(queue.arn, *[r.arn for r in rules.values()]).apply(
                                         lambda arns: queue_policy(arns[0], list(arns[1:]))))
        targets = [aws.cloudwatch.EventTarget(f"node-termination-{name}-target", rule=rule.name, arn=queue.arn, opts=child)
                   for name, rule in rules.items()]
        pin = catalog.NTH_CHART
        release = k8s.helm.v3.Release(
            "aws-node-termination-handler-addon",
            name="aws-node-termination-handler", chart=catalog.NTH_OCI_CHART, version=pin.chart_version,
            namespace="kube-system",
            # values as named in the chart's values.yaml at v1.25.6 (deleteSqsMsgIfNodeNotFound
            # exists from app v1.20.0; checkTagBeforeDraining replaces checkASGTagBeforeDraining)
            values={"enableSqsTerminationDraining": True, "queueURL": queue.url, "awsRegion": args.region,
                    "podTerminationGracePeriod": args.pod_grace_seconds,
                    "nodeTerminationGracePeriod": args.node_grace_seconds,
                    "deleteSqsMsgIfNodeNotFound": True, "checkTagBeforeDraining": False},
            atomic=True, cleanup_on_fail=True, max_history=10,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        # a termination event reaches the queue only once the policy lets EventBridge send and
        # the targets exist: a rollout before that terminates nodes NTH never hears about
        self.ready: list[pulumi.Resource] = [policy, *targets, release]
        """What every rollout waits for."""
        self.register_outputs({"queueUrl": queue.url})
