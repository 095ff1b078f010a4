"""kubehop: one Kubernetes minor per `pulumi up` (see README.md).

Reads and validates the stack config, works out the hop from what is
deployed, and wires the components in the runbook's order:
cutover (maintaining) -> preflight -> control plane -> addons -> node pools -> verification
-> cutover (serving). Nothing is registered when the config or hop is invalid.

The program is an async entrypoint (`pulumi.run`) so that it can await its own
last outputs through the SDK's supported `get_output_details` before it
registers anything else.
"""
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import state
from components.addons import Addons, AddonsArgs
from components.control_plane import ControlPlane, ControlPlaneArgs
from components.cutover import Cutover, CutoverArgs
from components.drainer import Drainer, DrainerArgs
from components.node_image import NodeImage, NodeImageArgs
from components.node_pool import NodePool, NodePoolArgs, join_token_ttl_hours
from components.preflight import Preflight, PreflightArgs
from components.node_join import NodeJoin, NodeJoinArgs
from components.steps import SshTarget
from components.verification import Verification, VerificationArgs
from kubehop import config, hops, interlocks, waves
from kubehop.addons import moves


async def main() -> dict:
    raw, secret_keys = state.raw_config()
    try:
        cfg = config.load(raw, secret_keys)
        current, adopting, previous = await state.deployed(cfg)
        hop = hops.plan_hop(current, cfg.version, cfg.target, cfg.worker_policy)
        downgrades = moves.downgrades(cfg, current)
        if downgrades:
            raise config.ConfigErrors(downgrades)
    except config.ConfigErrors as exc:
        raise pulumi.RunError(f"invalid kubehop config:\n{exc}") from None
    except hops.HopError as exc:
        raise pulumi.RunError(f"impossible hop:\n{exc}") from None
    blocked = interlocks.problems(cfg, hop, await state.sibling_traffic(cfg))
    if blocked:
        raise pulumi.RunError("refused by a production interlock:\n" + "\n".join(map(str, blocked)))

    secrets = pulumi.Config("kubehop")
    kubeconfig = secrets.require_secret("kubeconfig")
    ssh_key = secrets.require_secret("sshPrivateKey")
    provider = k8s.Provider("cluster", kubeconfig=kubeconfig)
    # every AWS resource is in the cluster's region, whatever the default provider's aws:region
    aws_provider = aws.Provider("cluster-region", region=cfg.cluster.region)
    in_region = pulumi.ResourceOptions(providers=[aws_provider])
    traffic_state = cfg.traffic.state if cfg.traffic else "serving"
    records: dict[str, pulumi.Resource] = {}  # what each recorded fact is proven by (kubehop/record.py)

    first: list[pulumi.Resource] = []
    if cfg.traffic and traffic_state == "maintaining":
        maintaining = Cutover("maintaining", CutoverArgs(
            cfg, "maintaining", kubeconfig, secrets.get_secret("siblingKubeconfig"), secrets.get_secret("trafficToken"),
            secrets.get_secret("mysqlPassword"), after=[]))
        first = [maintaining.last]
        records.update(maintaining.records)

    preflight = Preflight("preflight", PreflightArgs(hop, kubeconfig, cfg.verify.ignore_pdbs, adopting,
                                                     apiservers=len(cfg.control_plane.nodes), after=first))
    masters = SshTarget.for_masters(cfg, ssh_key)
    control_plane = ControlPlane("control-plane", ControlPlaneArgs(cfg.control_plane, hop, masters, after=preflight.steps))
    addons = Addons("addons", AddonsArgs(cfg, hop, kubeconfig, provider, after=control_plane.last, adopting=adopting))

    amis: dict[str, pulumi.Input[str]] = dict(current.amis)
    rolled_by: dict[str, pulumi.Resource] = {}
    images: dict[str, NodeImage] = {}
    join: NodeJoin | None = None
    if cfg.node_pools:
        roles = sorted({p.role for p in cfg.node_pools})
        if hop.builds_images:
            images = {"worker": NodeImage("worker-image", NodeImageArgs("worker", hop.image, cfg.node_images,
                                                                        cfg.cluster.region, cfg.cluster.name))}
            if "spark" in roles:
                images["spark"] = NodeImage("spark-image", NodeImageArgs("spark", hop.image, cfg.node_images, cfg.cluster.region,
                                                                         cfg.cluster.name, base_ami=images["worker"].ami_id))
            if hop.rolls_to_built_images:
                amis.update({role: image.ami_id for role, image in images.items()})
        drain_seconds = cfg.rollout.worker_drain_timeout_seconds  # one timeout: NTH's drain and the hooks'
        drainer = Drainer("drainer", DrainerArgs(cfg.cluster.name, cfg.cluster.region, provider,
                                                 [p.asg_name for p in cfg.node_pools], node_grace_seconds=drain_seconds),
                          opts=in_region)
        first_master = cfg.control_plane.nodes[0].name
        join = NodeJoin("node-join", NodeJoinArgs(
            cfg.cluster.name, cfg.cluster.region, first_master, masters[first_master],
            join_token_ttl_hours(cfg.node_pools, cfg.control_plane.join_token_ttl_hours),
            triggers=[str(hop.workers), *[amis[role] for role in roles]],
            after=[control_plane.last]))
        # the join token waits for the control plane's last step; every wave waits for the one before
        ready: list[pulumi.Resource] = [*addons.checks.values(), *drainer.ready, join.step]
        waits = waves.waits_for(cfg.node_pools, cfg.rollout)
        for pool in cfg.node_pools:  # in waves; database pools one at a time (kubehop/waves.py)
            # only the nearest steps: a pool's hooks and template wait for `ready`, its group for the
            # previous wave's rollout waits (which waited for `ready`: the SDK sends a registration
            # only once every depends_on URN resolved, pulumi/runtime/resource.py prepare_resource).
            # Each edge costs a walk of its target's whole graph (pulumi/runtime/
            # resource_cycle_breaker.py _reachable), so few edges reach the growing chain of waves.
            after = [rolled_by[name] for name in waits[pool.name]]
            on_adopted_ami = amis[pool.role] == cfg.adopt.amis.get(pool.role)
            node_pool = NodePool(pool.name, NodePoolArgs(
                pool, cfg.cluster.name, cfg.cluster.region, amis[pool.role], hop.workers, kubeconfig,
                drain_seconds, cfg.cluster.imds,
                cfg.adopt.launch_templates[pool.name] if on_adopted_ami else None,
                ready=ready, after=after, adopting=adopting), opts=in_region)
            rolled_by[pool.name] = node_pool.rolled
            records[f"rollout:{pool.role}:{pool.name}"] = node_pool.rolled

    # the last wave and the last database pool stand for every pool (they waited for the others)
    last_pools = [rolled_by[name] for name in waves.finishing(cfg.node_pools, cfg.rollout)]
    verification = Verification("verification", VerificationArgs(cfg.verify, hop, kubeconfig,
                                                                 after=[control_plane.last, *addons.last, *last_pools],
                                                                 join=join, join_margin_minutes=cfg.control_plane.join_token_margin_minutes))
    records["nodes"] = verification.nodes
    records.update({f"verify:{step._name}": step for step in verification.steps})

    if cfg.traffic and traffic_state == "serving" and current.traffic == "maintaining":
        serving = Cutover("serving", CutoverArgs(cfg, "serving", kubeconfig, secrets.get_secret("siblingKubeconfig"),
                                                 secrets.get_secret("trafficToken"), secrets.get_secret("mysqlPassword"),
                                                 after=verification.done))
        records.update(serving.records)

    # What is deployed now, for the next run's hop rules: moved only by the
    # stdout of steps that ran in this `pulumi up` (kubehop/record.py), so a
    # failed, targeted or refreshed run never records a hop that did not happen.
    records.update({f"addon:{name}": check for name, check in addons.checks.items()})
    built = {role: image.built_version for role, image in images.items()}
    return {state.OUTPUT: state.recorded(previous, records, built), "cluster": cfg.cluster.name, "hop": hop.name,
            "etcdSnapshot": control_plane.snapshot}


pulumi.run(main)
