"""What each step does to the cluster and how risky it is, as the runbook rates it.

The offline plan attaches these to every step; the step's action is the last
part of its resource name (e.g. `master0-kubeadm-apply`).
"""
from __future__ import annotations

from kubehop.addons import SPECS as ADDONS

# action -> (impact, risk)
ACTIONS: dict[str, tuple[str, str]] = {
    "preflight": ("Read-only check before anything moves: no client still requests an API the target minor removes; no PodDisruptionBudget would block every drain.", "low"),
    "sibling-state": ("Reads the sibling's live state from the traffic control: it must be available with at least the canary's final share, else users would have nowhere to go. Changes nothing.", "low"),
    "node-preflight": ("Reads the master's containerd version and config and the kubelet flag files: containerd too old or a kubelet flag the target removed stops the hop before anything moves. Changes nothing.", "low"),
    "etcd-snapshot": ("Reads all of etcd over TLS and writes a verified snapshot on the first master; the way back if the upgrade fails. No effect on workloads.", "low"),
    "package-repo": ("Switches the node's pkgs.k8s.io apt repository to the target minor so kubeadm/kubelet/kubectl install the exact patch. No effect on running components.", "low"),
    "kubeadm-install": ("Installs kubeadm at the exact patch and holds it. Running components are untouched.", "low"),
    "kubeadm-plan": ("Pre-flight: checks etcd and apiserver health, component versions, config and image availability. Read-only.", "low"),
    "kubeadm-apply": ("Rewrites the static pods (apiserver, controller-manager, scheduler, etcd) and renews certificates; the API is unavailable for seconds while pods restart. Workloads keep running.", "high"),
    "kubeadm-node": ("Upgrades this master's static pods and kubelet config to match the cluster (HA consistency); its apiserver restarts while the others serve. From kubeadm 1.28 the last master's run also upgrades CoreDNS and kube-proxy.", "medium"),
    "drain": ("Cordons the node and evicts its pods through the eviction API (PodDisruptionBudgets honoured, DaemonSets kept, emptyDir data deleted).", "medium"),
    "kubelet-upgrade": ("Installs kubelet and kubectl at the exact patch and restarts kubelet: the node is NotReady for a short time.", "medium"),
    "uncordon": ("Makes the node schedulable again and waits until it is Ready at the new version.", "low"),
    "join-token": ("Publishes a fresh kubeadm bootstrap token, the API endpoint and the CA hash in SSM Parameter Store for the nodes this run launches (token never on a command line).", "low"),
    "join-token-timer": ("Installs a systemd timer on the first master that renews the join token every third of its TTL between runs, so nodes the autoscaler launches later still join.", "low"),
    "join-token-margin": ("Read-only: the published join token still has at least controlPlane.joinTokenMarginMinutes left (the renewal timer works).", "low"),
    "addon-crds": ("Server-side apply (--force-conflicts) of the target version's CRDs, checksum verified, before the chart: Helm never upgrades a chart's crds/.", "medium"),
    "addon-preflight": ("Read-only: lists the objects the next release would break (e.g. Ingresses ingress-nginx 1.12 stops routing); fails the hop while any exist.", "low"),
    "addon": ("Helm upgrade of the addon (atomic: rolled back on failure).", "medium"),
    "addon-check": ("Waits until the addon is rolled out and does its job; fails the hop otherwise.", "low"),
    "image-build": ("Packer builds a new AMI on a temporary EC2 instance; the cluster is untouched. Every future node of the pool uses it.", "medium"),
    "launch-template": ("New launch-template version with the new AMI; nodes launched from it join at the new kubelet version.", "medium"),
    "node-pool": ("Points the Auto Scaling group at the new launch-template version and starts an instance refresh: nodes are drained (termination hook + drainer) and replaced.", "high"),
    "rollout-wait": ("Waits until every instance runs the new launch template/AMI and its node is Ready at the expected kubelet version.", "low"),
    "drain-hook": ("Termination lifecycle hook: terminating instances wait for the drainer.", "low"),
    "launch-hook": ("Launch lifecycle hook: a new instance counts only once its node is Ready at the new kubelet; one that never joins is abandoned.", "low"),
    "traffic-maintain": ("Marks the cluster maintaining: user traffic moves to the sibling cluster.", "high"),
    "mysql-replication-check": ("Checks MySQL replication (IO and SQL threads running, lag under the limit) before the switch.", "low"),
    "mysql-switch": ("Records the patch that undoes it, then patches the ServiceSwitch so MySQL endpoints point at the standby in the sibling cluster.", "high"),
    "mysql-switch-back": ("Applies the patch recorded before the switch: MySQL endpoints point where they did before the maintenance.", "high"),
    "mirrormaker-stop": ("Stops Kafka MirrorMaker (scaled to 0, replica count recorded): cross-cluster mirroring pauses.", "medium"),
    "mirrormaker-start": ("Starts Kafka MirrorMaker again with the recorded replica count.", "medium"),
    "kafka-lag-gate": ("Waits until the key consumer groups' lag is under the threshold (1000).", "low"),
    "mirror-lag-gate": ("Waits until MirrorMaker lag is under the threshold (1000).", "low"),
    "traffic-serve": ("Marks the cluster available again (no user share yet).", "medium"),
    "canary": ("Sends the canary share of users to the cluster for the window while watching the SLO queries; on a breach routes them back to the sibling and fails. Once passed, deletes the cutover record: the maintenance is over.", "high"),
    "verify": ("Post-hop check; fails the stage when the cluster is not healthy.", "low"),
}

# resources that are not steps of the runbook: what they are for, by type
INFRASTRUCTURE: dict[str, str] = {
    "aws:sqs/queue:Queue": "SQS queue the node termination handler (queue mode) reads instance lifecycle and interruption events from.",
    "aws:sqs/queuePolicy:QueuePolicy": "Lets EventBridge deliver to the drainer's queue, and nothing else send to it.",
    "aws:cloudwatch/eventRule:EventRule": "EventBridge rule matching the pools' ASG termination, spot interruption or rebalance events.",
    "aws:cloudwatch/eventTarget:EventTarget": "Sends the rule's events to the drainer's queue.",
}

ADDON_RISK = {
    **{name: (spec.risk, spec.impact) for name, spec in ADDONS.items()},
    "aws-node-termination-handler": ("medium", "Drains nodes before ASG terminations; without it instance refresh kills pods undrained."),
}

# Longest first so `addon-check` wins over `addon`.
ORDERED = sorted(ACTIONS, key=len, reverse=True)


def classify(name: str) -> tuple[str, str]:
    """(action, target) from a step's resource name; ('', name) when unknown."""
    for action in ORDERED:
        if name.endswith("-" + action):
            return action, name[: -len(action) - 1]
    return "", name


def describe(action: str, target: str, op: str, *, database: bool = False, resource_type: str = "") -> tuple[str, str]:
    """Impact text and risk for a step (by its action, else its resource type); deletes of steps
    are bookkeeping only."""
    if op == "delete":
        return ("Removes the finished step from the stack's state; its delete does nothing to the cluster.", "low")
    if op == "import":
        # the engine reads the existing resource into the state; with inputs equal to what the
        # provider reads back there is no diff and nothing is changed (kubehop/plan/imports.py)
        return ("Imported as it runs today: Pulumi reads it into the stack's state and changes nothing; "
                "kubehop's settings come in as an update on the next run.", "low")
    impact, risk = ACTIONS.get(action, (INFRASTRUCTURE.get(resource_type, ""), "low"))
    if action == "addon" and target in ADDON_RISK:
        risk, text = ADDON_RISK[target]
        impact = f"{impact} {text}"
    if action == "node-pool" and database:
        impact += " Database pool (MySQL/Kafka/YugabyteDB/ClickHouse): one node at a time, each replacement Ready before the next."
    return impact, risk
