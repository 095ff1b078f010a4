"""kubehop: one Kubernetes minor per `pulumi up` (see README.md).

Reads and validates the stack config, works out the hop from what is
deployed, and wires the components in the runbook's order:
cutover (maintaining) -> preflight -> control plane -> addons -> workers (images, drainer,
join, node pools) -> verification -> cutover (serving). Nothing is registered when the config or hop is invalid.

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
from components.preflight import Preflight, PreflightArgs
from components.steps import SshTarget
from components.verification import Verification, VerificationArgs
from components.workers import Workers, WorkersArgs
from kubehop import config, cutover_record, hops, interlocks
from kubehop.addons import moves


async def main() -> dict:
    raw, secret_keys = state.raw_config()
    try:
        cfg = config.load(raw, secret_keys)
        current, adopting, previous = await state.deployed(cfg)
        cutover = await state.cutover(cfg)
        hop = hops.plan_hop(current, cfg.version, cfg.target, cfg.worker_policy)
        traffic_state = cfg.traffic.state if cfg.traffic else "serving"
        hops.check_deferred(cfg, hop, traffic_state)
        downgrades = moves.downgrades(cfg, current)
        if downgrades:
            raise config.ConfigErrors(downgrades)
    except config.ConfigErrors as exc:
        raise pulumi.RunError(f"invalid kubehop config:\n{exc}") from None
    except hops.HopError as exc:
        raise pulumi.RunError(f"impossible hop:\n{exc}") from None
    except cutover_record.RecordError as exc:
        raise pulumi.RunError(f"unreadable cutover record:\n{exc}") from None
    blocked = interlocks.problems(cfg, hop, await state.sibling_traffic(cfg), cutover)
    if blocked:
        raise pulumi.RunError("refused by a production interlock:\n" + "\n".join(map(str, blocked)))

    secrets = pulumi.Config("kubehop")
    kubeconfig = secrets.require_secret("kubeconfig")
    ssh_key = secrets.require_secret("sshPrivateKey")
    provider = k8s.Provider("cluster", kubeconfig=kubeconfig)
    # every AWS resource is in the cluster's region, whatever the default provider's aws:region
    aws_provider = aws.Provider("cluster-region", region=cfg.cluster.region)
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

    deferred = hops.deferred_pools(cfg, traffic_state)  # `rollout: after-serving` pools kept while maintaining
    workers = Workers("workers", WorkersArgs(cfg, hop, dict(current.amis), kubeconfig, provider, aws_provider, masters,
                                             control_plane.last, list(addons.checks.values()), adopting,
                                             deployed=current, deferred=deferred))

    # until they roll, the verification (which comes before them) holds those pools to what they run
    in_window = workers.in_window
    kept = {p.name: str(current.pool_version(p.name)) for p in cfg.node_pools if p not in in_window
            and current.pool_version(p.name) != hop.workers}
    verification = Verification("verification", VerificationArgs(cfg.verify, hop, kubeconfig,
                                                                 after=[control_plane.last, *addons.last, *workers.last],
                                                                 join=workers.join,
                                                                 join_margin_minutes=cfg.control_plane.join_token_margin_minutes,
                                                                 kept=kept))
    records["nodes"] = verification.nodes
    records.update({f"verify:{step._name}": step for step in verification.steps})

    # back to serving after a completed maintaining run, or after one that failed part way
    # (the stack still says serving, the cutover record names what was changed)
    serving = None
    if cfg.traffic and traffic_state == "serving" and (current.traffic == "maintaining" or cutover.open):
        serving = Cutover("serving", CutoverArgs(cfg, "serving", kubeconfig, secrets.get_secret("siblingKubeconfig"),
                                                 secrets.get_secret("trafficToken"), secrets.get_secret("mysqlPassword"),
                                                 after=verification.done, record=cutover))
        records.update(serving.records)
    # pools that roll after serving: once users are back (after the canary), outside the window
    workers.after_serving([serving.last] if serving else verification.done)
    records.update(workers.records)

    # What is deployed now, for the next run's hop rules: moved only by the
    # stdout of steps that ran in this `pulumi up` (kubehop/record.py), so a
    # failed, targeted or refreshed run never records a hop that did not happen.
    records.update({f"addon:{name}": check for name, check in addons.checks.items()})
    return {state.OUTPUT: state.recorded(previous, records, workers.built), "cluster": cfg.cluster.name, "hop": hop.name,
            "etcdSnapshot": control_plane.snapshot}


pulumi.run(main)
