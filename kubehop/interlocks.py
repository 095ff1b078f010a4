"""Production interlocks: refused before anything is registered (runbook 6.6).

They need what is deployed (the stack's last outputs) and the sibling's
traffic state, so they run after config validation, in the program.
"""
from __future__ import annotations

from kubehop import cutover_record
from kubehop.config import ConfigProblem, StackConfig
from kubehop.hops import Hop


def problems(cfg: StackConfig, hop: Hop, sibling_traffic: str | None,
             log: cutover_record.Record | None = None) -> list[ConfigProblem]:
    """Every interlock the requested run would break. `log` is the cluster's cutover record."""
    out: list[ConfigProblem] = []
    log = log or cutover_record.Record()
    if cfg.traffic is None:
        if log.open:
            out.append(ConfigProblem(
                key="kubehop:traffic", message=f"was removed while the cutover record is open ({', '.join(log.summary())})",
                fix="put kubehop:traffic back with state serving so the serving run undoes what the maintenance changed"))
        return out
    wanted = cfg.traffic.state
    deployed = hop.deployed.traffic
    if cfg.cluster.production and hop.moves_control_plane and not (wanted == "maintaining" and deployed == "maintaining"):
        out.append(ConfigProblem(
            key="kubehop:kubernetesVersion", value=str(hop.control_plane),
            message=f"changes the control plane of production cluster {cfg.cluster.name} while it is {deployed if wanted == 'maintaining' else wanted}",
            fix=f"keep kubernetesVersion at {hop.deployed.control_plane}, set kubehop:traffic.state to maintaining and run `pulumi up` first"))
    if wanted == "maintaining" and deployed != "maintaining" and sibling_traffic == "maintaining":
        out.append(ConfigProblem(
            key="kubehop:traffic.state", value=wanted,
            message=f"would take {cfg.cluster.name} out of service while its sibling {cfg.sibling.name if cfg.sibling else ''} is maintaining too",
            fix="bring the sibling back to serving first"))
    if wanted == "serving" and deployed == "maintaining" and hop.moves_control_plane:
        out.append(ConfigProblem(
            key="kubehop:traffic.state", value=wanted,
            message="returns users in the same run that upgrades the control plane",
            fix="finish the version hop while maintaining, then set serving in its own `pulumi up`"))
    if wanted == "serving" and hop.deployed.mirror_maker == "stopped" and cfg.kafka is None:
        out.append(ConfigProblem(
            key="kubehop:kafka", message="was removed while MirrorMaker is stopped: serving would leave it stopped",
            fix="put kubehop:kafka back so the serving run starts MirrorMaker on both clusters"))
    if wanted == "serving" and log.mirrormaker and cfg.kafka is None:
        out.append(ConfigProblem(
            key="kubehop:kafka", message=f"was removed while the cutover record says MirrorMaker was stopped on {', '.join(log.mirrormaker)}",
            fix="put kubehop:kafka back so the serving run starts it again"))
    if wanted == "serving" and log.get(cutover_record.MYSQL) and cfg.mysql is None:
        out.append(ConfigProblem(
            key="kubehop:mysql", message="was removed while the cutover record says the ServiceSwitch was switched",
            fix="put kubehop:mysql back so the serving run switches MySQL back"))
    if wanted == "serving" and cfg.kafka is not None and cfg.sibling is None:
        out.append(ConfigProblem(
            key="kubehop:sibling", message="is required to restart MirrorMaker on both clusters before serving",
            fix="set kubehop:sibling (name, stack)"))
    return out
