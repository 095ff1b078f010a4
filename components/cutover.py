"""Production choreography around the hops (runbook 6.1, 6.2, 6.5).

Each action that takes the cluster out of service writes the cutover record
(kubehop/cutover_record.py) before it acts; the serving phase is registered
while that record is open and undoes exactly what it names, so a maintaining
run that failed part way is undone by setting traffic.state back to serving.

`maintaining` (registered while traffic.state is maintaining): check MySQL
replication, check live that the sibling is serving (its recorded state can be
stale while its own run is under way), move users to the sibling, switch MySQL to the standby through
ServiceSwitch, stop MirrorMaker on both clusters (side by side), wait for
consumer lag < 1k. `serving` (registered on the run that returns from
maintaining): start MirrorMaker on both clusters, wait for mirror and consumer
lag (side by side), mark the
cluster available, then a canary share watched against the SLO queries.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi

from components.steps import gate_step
from kubehop import cutover_record
from kubehop.gates.traffic import CONTROL_STATE
from kubehop.config import StackConfig


@dataclass
class CutoverArgs:
    config: StackConfig
    phase: str
    """"maintaining" or "serving": which set of steps this run registers."""
    kubeconfig: pulumi.Input[str]
    sibling_kubeconfig: pulumi.Input[str] | None
    traffic_token: pulumi.Input[str] | None
    mysql_password: pulumi.Input[str] | None
    after: list[pulumi.Resource]
    record: cutover_record.Record = field(default_factory=cutover_record.Record)
    """The cutover record read at the start of the run: which effects the serving phase undoes."""


class Cutover(pulumi.ComponentResource):
    """The steps of one traffic transition; `last` is the final one."""

    def __init__(self, name: str, args: CutoverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Cutover", name, None, opts)
        self.args = args
        self.cfg = args.config
        self.last: pulumi.Resource | None = None
        self.records: dict[str, pulumi.Resource] = {}
        """The steps whose stdout records this transition (kubehop/record.py)."""
        self._previous = list(args.after)
        if args.phase == "maintaining":
            self._maintaining()
        else:
            self._serving()
        self.register_outputs({"phase": args.phase})

    # -- building blocks -------------------------------------------------
    def _step(self, name: str, gate: str, gate_args: list[str], *, kubeconfig=None, secret_env=None):
        step = gate_step(name, gate=gate, args=gate_args, triggers=[self.args.phase], parent=self,
                         depends_on=self._previous, kubeconfig=kubeconfig, secret_env=secret_env)
        self._previous = [step]
        self.last = step
        return step

    def _log(self, effect: str, target: str | None = None) -> list[str]:
        """Arguments that make a cutover action write its effect to the cutover record."""
        return ["--record", cutover_record.parameter(self.cfg.cluster.name, effect, target),
                "--record-region", self.cfg.cluster.region]

    def _record(self, key: str, step: pulumi.Resource) -> pulumi.Resource:
        self.records[key] = step
        return step

    def _traffic(self, name: str, state: str, share: int, log: list[str] = ()):
        argv = ["--cluster", self.cfg.cluster.name, "--state", state, "--share", str(share), *self._control_args(), *log]
        return self._step(name, "traffic-set", argv, secret_env=self._token_env())

    def _control_args(self) -> list[str]:
        return self.cfg.traffic.control.argv()

    def _token_env(self):
        return {"KUBEHOP_TRAFFIC_TOKEN": self.args.traffic_token} if self.args.traffic_token is not None else None

    def _side_by_side(self, *builders):
        """Steps that read or change independent things start together; the next
        step waits for all of them."""
        start, done = self._previous, []
        for build in builders:
            self._previous = start
            done.append(build())
        self._previous = done

    def _mirrormaker(self, action: str, targets: list[str] | None = None):
        """MirrorMaker of each cluster on its own: the two clusters' workloads are independent.
        `targets`: only these clusters (the ones the record says were stopped)."""
        kafka, cluster = self.cfg.kafka, self.cfg.cluster.name
        self._side_by_side(*(
            (lambda target=target, workload=workload, kubeconfig=kubeconfig: self._record(
                f"mirrormaker:{target}", self._step(
                    f"{target}-mirrormaker-{action}", "mirrormaker",
                    ["--action", action, "--namespace", workload.namespace, "--workload", workload.workload,
                     *self._log(cutover_record.MIRRORMAKER, target)],
                    kubeconfig=kubeconfig)))
            for target, workload, kubeconfig in (
                (cluster, kafka.mirror_maker, self.args.kubeconfig),
                (self.cfg.sibling.name, kafka.sibling_mirror_maker, self.args.sibling_kubeconfig))
            if targets is None or target in targets))

    def _lag(self, name: str, gate: str, query: str):
        kafka = self.cfg.kafka
        argv = ["--prometheus-url", kafka.prometheus_url, "--query", query, "--threshold", str(kafka.threshold),
                "--timeout", str(kafka.lag_timeout_seconds), "--interval", "30"]
        # each gate is told what must be there: the key consumer groups, or the topics MirrorMaker copies
        expected = kafka.key_groups if gate == "kafka-lag" else kafka.key_topics
        if expected:
            argv += ["--groups", ",".join(expected)]
        return self._step(name, gate, argv)

    # -- phases ------------------------------------------------------------
    def _maintaining(self) -> None:
        cfg, cluster = self.cfg, self.cfg.cluster.name
        if cfg.mysql:
            rep = cfg.mysql.replication
            self._step(f"{cluster}-mysql-replication-check", "mysql-replication",
                       ["--host", rep.host, "--port", str(rep.port), "--user", rep.user, "--max-lag", str(rep.max_lag_seconds),
                        "--timeout", "300", "--interval", "10"],
                       secret_env={"KUBEHOP_MYSQL_PASSWORD": self.args.mysql_password})
        if cfg.sibling:
            # the sibling must be back at least as far as kubehop brings a cluster back (the canary's final share)
            self._step(f"{cfg.sibling.name}-sibling-state", "sibling-state",
                       ["--cluster", cfg.sibling.name, "--min-share", str(max(1, cfg.traffic.canary.final_share)),
                        *self._control_args(), "--timeout", "300", "--interval", "15",
                        "--sibling-record-path", cutover_record.path(cfg.sibling.name),
                        "--record-region", cfg.sibling.region or cfg.cluster.region],
                       secret_env=self._token_env())
        self._record("traffic:maintaining",
                     self._traffic(f"{cluster}-traffic-maintain", CONTROL_STATE["maintaining"], 0,
                                   self._log(cutover_record.TRAFFIC)))
        if cfg.mysql:
            switch = cfg.mysql.service_switch
            self._step(f"{switch.name}-mysql-switch", "serviceswitch",
                       [*self._switch_args(), "--spec-json", json.dumps(switch.standby_spec, sort_keys=True)],
                       kubeconfig=self.args.kubeconfig)
        if cfg.kafka:
            self._mirrormaker("stop")
            self._lag(f"{cluster}-kafka-lag-gate", "kafka-lag", cfg.kafka.consumer_lag_query)

    def _switch_args(self) -> list[str]:
        switch = self.cfg.mysql.service_switch
        return ["--namespace", switch.namespace, "--name", switch.name, "--resource", switch.resource,
                *self._log(cutover_record.MYSQL)]

    def _serving(self) -> None:
        """Undo what the record names, in the reverse of the maintaining order: MirrorMaker,
        lag, MySQL, then users through the canary. Without a record (a transition begun
        before kubehop kept one) the stack's own state stands for it: both MirrorMakers."""
        cfg, cluster, log = self.cfg, self.cfg.cluster.name, self.args.record
        targets = log.mirrormaker if log.open else None
        if cfg.kafka and targets != []:
            self._mirrormaker("start", targets)
            # mirror lag and consumer lag are separate Prometheus signals: waited for side by side
            self._side_by_side(
                lambda: self._lag(f"{cluster}-mirror-lag-gate", "mirror-lag", cfg.kafka.mirror_lag_query),
                lambda: self._lag(f"{cluster}-consumer-kafka-lag-gate", "kafka-lag", cfg.kafka.consumer_lag_query))
        if cfg.mysql and log.get(cutover_record.MYSQL):
            self._step(f"{cfg.mysql.service_switch.name}-mysql-switch-back", "serviceswitch",
                       [*self._switch_args(), "--undo-from-record"], kubeconfig=self.args.kubeconfig)
        self._traffic(f"{cluster}-traffic-serve", CONTROL_STATE["serving"], 0)
        canary = cfg.traffic.canary
        argv = ["--cluster", cluster, "--canary-share", str(canary.share), "--final-share", str(canary.final_share),
                "--window", str(canary.window_seconds), *self._control_args(),
                "--prometheus-url", canary.prometheus_url or cfg.kafka.prometheus_url]
        for slo in cfg.verify.slo:
            argv += ["--query", slo.objective]
        argv += ["--clear-records", cutover_record.path(cluster), "--record-region", cfg.cluster.region]
        # users are back only once the canary has passed: that step records "serving"
        self._record("traffic:serving", self._step(f"{cluster}-canary", "canary", argv, secret_env=self._token_env()))
