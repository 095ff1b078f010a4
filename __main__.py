"""kubehop: one Kubernetes minor per `pulumi up` (see README.md).

Reads and validates the stack config, works out the hop from what is
deployed, and wires the components in the runbook's order:
cutover (maintaining) -> preflight -> control plane -> addons -> node pools -> verification
-> cutover (serving). Nothing is registered when the config or hop is invalid.
"""
import pulumi
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

raw, secret_keys = state.raw_config()
try:
    cfg = config.load(raw, secret_keys)
    current, adopting = state.deployed(cfg)
    hop = hops.plan_hop(current, cfg.version, cfg.target, cfg.worker_policy)
except config.ConfigErrors as exc:
    raise pulumi.RunError(f"invalid kubehop config:\n{exc}") from None
except hops.HopError as exc:
    raise pulumi.RunError(f"impossible hop:\n{exc}") from None
blocked = interlocks.problems(cfg, hop, state.sibling_traffic(cfg))
if blocked:
    raise pulumi.RunError("refused by a production interlock:\n" + "\n".join(map(str, blocked)))

secrets = pulumi.Config("kubehop")
kubeconfig = secrets.require_secret("kubeconfig")
ssh_key = secrets.require_secret("sshPrivateKey")
provider = k8s.Provider("cluster", kubeconfig=kubeconfig)
traffic_state = cfg.traffic.state if cfg.traffic else "serving"

first: list[pulumi.Resource] = []
if cfg.traffic and traffic_state == "maintaining":
    maintaining = Cutover("maintaining", CutoverArgs(
        cfg, "maintaining", kubeconfig, secrets.get_secret("siblingKubeconfig"), secrets.get_secret("trafficToken"),
        secrets.get_secret("mysqlPassword"), after=[]))
    first = [maintaining.last]

preflight = Preflight("preflight", PreflightArgs(hop, kubeconfig, cfg.verify.ignore_pdbs, adopting, after=first))
masters = SshTarget.for_masters(cfg, ssh_key)
control_plane = ControlPlane("control-plane", ControlPlaneArgs(cfg.control_plane, hop, masters, after=preflight.steps))
addons = Addons("addons", AddonsArgs(cfg, hop, kubeconfig, provider, after=control_plane.last))

amis: dict[str, pulumi.Input[str]] = dict(current.amis)
rolled: list[pulumi.Resource] = []
images: dict[str, NodeImage] = {}
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
    drainer = Drainer("drainer", DrainerArgs(cfg.cluster.name, cfg.cluster.region, provider,
                                             [p.asg_name for p in cfg.node_pools]))
    first_master = cfg.control_plane.nodes[0].name
    join = NodeJoin("node-join", NodeJoinArgs(
        cfg.cluster.name, cfg.cluster.region, first_master, masters[first_master],
        join_token_ttl_hours(cfg.node_pools, cfg.control_plane.join_token_ttl_hours),
        triggers=[str(hop.workers), *[amis[role] for role in roles]],
        after=[control_plane.last]))
    ready: list[pulumi.Resource] = [control_plane.last, *addons.checks.values(), drainer.ready, join.step]
    rolled_by: dict[str, pulumi.Resource] = {}
    waits = waves.waits_for(cfg.node_pools, cfg.rollout)
    for pool in cfg.node_pools:  # in waves; database pools one at a time (kubehop/waves.py)
        on_adopted_ami = amis[pool.role] == cfg.adopt.amis.get(pool.role)
        node_pool = NodePool(pool.name, NodePoolArgs(
            pool, cfg.cluster.name, cfg.cluster.region, amis[pool.role], hop.workers, kubeconfig,
            cfg.control_plane.drain_timeout_seconds, cfg.cluster.imds,
            cfg.adopt.launch_templates[pool.name] if on_adopted_ami else None,
            after=ready + [rolled_by[name] for name in waits[pool.name]]))
        rolled_by[pool.name] = node_pool.rolled
        rolled.append(node_pool.rolled)

verification = Verification("verification", VerificationArgs(cfg.verify, hop, kubeconfig,
                                                             after=[control_plane.last, *addons.last, *rolled]))

finished = [step.id for step in verification.steps] + [image.ami_id for image in images.values()]
if cfg.traffic and traffic_state == "serving" and current.traffic == "maintaining":
    serving = Cutover("serving", CutoverArgs(cfg, "serving", kubeconfig, secrets.get_secret("siblingKubeconfig"),
                                             secrets.get_secret("trafficToken"), secrets.get_secret("mysqlPassword"),
                                             after=verification.steps))
    finished.append(serving.last.id)

# What is deployed now, for the next run's hop rules. It resolves only when the
# last steps have finished, so a failed `pulumi up` leaves the previous value in
# place and the re-run resumes the same hop instead of believing it done.
deployed_now = {
    "controlPlaneVersion": str(hop.control_plane),
    "workerVersion": str(hop.workers),
    "imageVersion": str(hop.image) if images else (str(current.image) if current.image else None),
    "traffic": traffic_state,
    "mirrorMaker": hops.mirror_maker_after(current, traffic_state, cfg.kafka is not None),
    "addons": {**current.addons, **addons.charts},
}
pulumi.export(state.OUTPUT, pulumi.Output.all(pulumi.Output.from_input(amis), *finished)
              .apply(lambda done: {**deployed_now, "amis": done[0]}))
pulumi.export("cluster", cfg.cluster.name)
pulumi.export("hop", hop.name)
