"""A maintaining run that fails after MirrorMaker stopped is undone by setting
traffic.state back to serving (issue 13 item 1), end to end:

1. the program (mock engine) registers the maintaining steps; they run for real against a
   MariaDB replication pair, the loopback DAPP traffic endpoint, two loopback Kubernetes API
   servers (real kubectl), moto's SSM (the cutover record) and a real Prometheus, until the
   consumer-lag gate times out (lag stays high);
2. the stack keeps the outputs it had (a failed run records nothing, pulumi/pulumi#15754), so
   only the cutover record knows what was changed: the next program run, with
   `traffic.state: serving`, reads it through the `aws:ssm/getParametersByPath` invoke and
   registers the undo steps, and `plan --record` shows the same steps first;
3. those steps run for real: MirrorMaker back on both clusters with their recorded replicas,
   both lag gates, MySQL switched back with the recorded patch, traffic through the canary,
   which deletes the record; the run after that registers no cutover at all.
"""
from __future__ import annotations

import json
import os

import pytest

from kubehop import cutover_record
from kubehop.plan import engine
from kubehop.plan.stages import build, read_stack_file, set_path
from tests.gates.test_cutover import Cluster
from tests.gates.test_mysql import MONITOR_PASSWORD, MONITOR_USER
from tests.gates.test_traffic_canary import TOKEN, DappServer
from tests.helpers import moto_server, step_runner
from tests.helpers.kube_api import KUBECTL_MINORS, kubectl_binary
from tests.helpers.mariadb_server import MariaDBMissing, ReplicationPair
from tests.helpers.prom_harness import Exporter, Prometheus, clean_proxy_env, prometheus_binary
from tests.plan_helpers import prod_b

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")
ME, SIBLING = "aws-uswest2-prod-b", "aws-uswest2-prod-a"
CONTEXT = {ME: "west-b", SIBLING: "west-a"}
STACK = "organization/kubehop/prod-b"
ORIGINAL_SWITCH = {"active": ME, "service": "mysql", "ports": [3306]}
# time only (see tests/helpers/step_runner.py): the lag gate gives up after 2 s, the canary watches 3 s
SHORTEN = {"-kafka-lag-gate": {"--timeout": "2", "--interval": "1"}, "-mirror-lag-gate": {"--timeout": "20", "--interval": "1"},
           "-mirrormaker-stop": {"--interval": "0.2"}, "-mirrormaker-start": {"--interval": "0.2"},
           "-canary": {"--window": "3", "--interval": "1"}}


@pytest.fixture
def world(kube_api, tmp_path, capsys, monkeypatch):
    """Every server the cutover steps talk to, on 127.0.0.1, stopped after the test."""
    clean_proxy_env(monkeypatch)
    binary = prometheus_binary()
    if binary is None:
        pytest.fail("prometheus binary not found (install the Debian package 'prometheus'; CI must install it)")
    try:
        pair = ReplicationPair(tmp_path / "mariadb", MONITOR_USER, MONITOR_PASSWORD)
    except MariaDBMissing as exc:
        pytest.fail(f"{exc} (install the Debian package 'mariadb-server'; CI must install it)")
    exporter = Exporter()
    prom = Prometheus(binary, tmp_path / "prom", exporter)
    dapp = DappServer()
    dapp.state = {SIBLING: {"state": "available", "share": 50}, ME: {"state": "available", "share": 50}}
    dapp.shape = "object"  # GET {url}/{cluster} answers for that cluster
    cluster = Cluster(kube_api, tmp_path)
    cluster.capsys = capsys
    with moto_server.moto_server(AWS_ENDPOINT_URL_SSM="{url}") as ssm_url:
        try:
            pair.start()
            prom.wait_up()
            yield World(cluster, pair, prom, dapp, ssm_url, tmp_path)
        finally:
            dapp.close()
            prom.stop()
            exporter.close()
            pair.stop()


class World:
    def __init__(self, cluster: Cluster, pair: ReplicationPair, prom: Prometheus, dapp: DappServer, ssm_url: str, tmp):
        self.cluster, self.pair, self.prom, self.dapp = cluster, pair, prom, dapp
        import boto3

        self.ssm = boto3.client("ssm", region_name=moto_server.REGION, endpoint_url=ssm_url)
        for ctx in ("west-a", "west-b"):
            cluster.put_workload(ctx, "prod", "deployment", "mirrormaker", 3 if ctx == "west-b" else 2)
        cluster.put("west-b", "prod", "serviceswitch", "dcluster-mysql", {
            "apiVersion": "ops.example.com/v1", "metadata": {"generation": 1}, "spec": dict(ORIGINAL_SWITCH)})
        self.lag(consumer=5000, mirror=5000)
        prom.exporter.set("app_error_ratio", 0.001)
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "kubectl").symlink_to(kubectl_binary(29))
        self.env = step_runner.base_env(bin_dir, {k: os.environ[k] for k in (*moto_server.AWS_ENV, "AWS_ENDPOINT_URL_SSM")}
                                        | {"HOME": str(tmp / "home"), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})

    def lag(self, *, consumer: float, mirror: float) -> None:
        self.prom.exporter.replace([
            ("kafka_consumergroup_lag", {"consumergroup": "orders-consumer", "topic": "events"}, consumer),
            ("kafka_consumergroup_lag", {"consumergroup": "mirror-prod-a", "topic": "events"}, mirror),
        ])
        self.prom.exporter.set("app_error_ratio", 0.001)
        self.prom.sync()

    def config(self, state: str) -> dict:
        data = prod_b()
        cfg = data["config"]
        cfg["kubehop:traffic"]["control"]["url"] = self.dapp.url + "/{cluster}"
        cfg["kubehop:traffic"]["canary"]["prometheusUrl"] = self.prom.url
        cfg["kubehop:kafka"].update(prometheusUrl=self.prom.url, keyGroups=["orders-consumer"], keyTopics=["events"],
                                    lagTimeoutSeconds=60)
        cfg["kubehop:mysql"]["replication"].update(host="127.0.0.1", port=self.pair.replica.port, user=MONITOR_USER)
        cfg["kubehop:verify"]["slo"] = [{"name": "error_rate", "query": "max(app_error_ratio)", "max": 0.01}]
        sf = read_stack_file(data)
        set_path(sf.raw, "kubehop:traffic.state", state)
        apis = self.cluster.apis
        sf.raw.update({"kubehop:kubeconfig": apis["west-b"].kubeconfig.read_text(),
                       "kubehop:siblingKubeconfig": apis["west-a"].kubeconfig.read_text(),
                       "kubehop:trafficToken": TOKEN, "kubehop:mysqlPassword": MONITOR_PASSWORD})
        return sf

    def record(self) -> dict[str, str]:
        pages = self.ssm.get_paginator("get_parameters_by_path").paginate(Path="/kubehop", Recursive=True)
        return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}

    def program(self, state: str, outputs: dict | None) -> engine.Run:
        sf = self.config(state)
        return engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs={STACK: outputs} if outputs else {},
                                  template_versions={}, parameters=self.record(), reveal=True)

    def replicas(self, cluster: str) -> int:
        return self.cluster.obj(CONTEXT[cluster], "prod", "deployment", "mirrormaker")["spec"]["replicas"]


def names(steps) -> list[str]:
    return [s.name for s in steps]


def test_an_aborted_maintaining_run_is_undone_by_going_back_to_serving(world, tmp_path):
    recorded = world.program("serving", None).outputs["kubehop"]  # what the stack says: serving
    assert recorded["traffic"] == "serving"

    # 1. the maintaining run: every step up to the consumer-lag gate passes, that gate times out
    maintaining = world.program("maintaining", {"kubehop": recorded})
    steps = step_runner.children(maintaining, "kubehop:index:Cutover", "maintaining")
    ran = step_runner.execute(steps, world.env, shorten=SHORTEN)
    assert [r.name for r in ran] == names(steps)
    assert [r.returncode for r in ran[:-1]] == [0] * (len(ran) - 1), [(r.name, r.stderr[-400:]) for r in ran]
    assert ran[-1].name == f"{ME}-kafka-lag-gate" and ran[-1].returncode == 1
    assert world.dapp.state[ME] == {"state": "maintaining", "share": 0}
    assert world.cluster.obj("west-b", "prod", "serviceswitch", "dcluster-mysql")["spec"]["active"] == SIBLING
    assert world.replicas(ME) == 0 and world.replicas(SIBLING) == 0
    record = {n.rsplit("/cutover/", 1)[1]: json.loads(v) for n, v in world.record().items()}
    assert {k: (v["state"], v["done"]) for k, v in record.items()} == {
        "traffic": ("maintaining", True), "mysql": ("standby", True),
        f"mirrormaker/{ME}": ("stopped", True), f"mirrormaker/{SIBLING}": ("stopped", True)}
    assert record["mysql"]["undo"] == {"spec": {"active": ME}}

    # 2. the operator sets traffic.state back to serving; the stack outputs are still the old ones
    world.lag(consumer=10, mirror=10)
    serving = world.program("serving", {"kubehop": recorded})
    undo = step_runner.children(serving, "kubehop:index:Cutover", "serving")
    # in the undo order: the side-by-side pairs may register either way round
    assert [set(names(undo[:2])), set(names(undo[2:4])), *names(undo[4:])] == [
        {f"{ME}-mirrormaker-start", f"{SIBLING}-mirrormaker-start"}, {f"{ME}-mirror-lag-gate", f"{ME}-consumer-kafka-lag-gate"},
        "dcluster-mysql-mysql-switch-back", f"{ME}-traffic-serve", f"{ME}-canary"]
    # ... and the offline plan shows the same steps first, from the record as the AWS CLI prints it
    record_file = tmp_path / "record.json"
    record_file.write_text(json.dumps({"Parameters": [{"Name": n, "Value": v, "Type": "String"} for n, v in world.record().items()]}))
    sf = world.config("serving")
    plan = build(sf, stack="prod-b", to=None, policy=None, recorded=recorded,
                 cutover=cutover_record.from_cli_json(json.loads(record_file.read_text())))
    first = plan["stages"][0]
    assert first["name"] == "restore"
    assert sorted(s["id"] for s in first["steps"] if s["op"] == "create") == sorted(names(undo))
    assert plan["cutoverRecord"] == {"traffic": "maintaining", "mysql": "standby",
                                     f"mirrormaker/{ME}": "stopped", f"mirrormaker/{SIBLING}": "stopped"}

    # 3. the undo steps run for real
    ran = step_runner.execute(undo, world.env, shorten=SHORTEN)
    assert [(r.name, r.returncode) for r in ran] == [(n, 0) for n in names(undo)], [(r.name, r.stderr[-600:]) for r in ran]
    assert world.replicas(ME) == 3 and world.replicas(SIBLING) == 2  # the counts recorded at the stop
    assert world.cluster.obj("west-b", "prod", "serviceswitch", "dcluster-mysql")["spec"] == ORIGINAL_SWITCH
    assert world.dapp.state[ME] == {"state": "available", "share": 50}  # the canary's final share
    assert world.record() == {}
    after = world.program("serving", {"kubehop": recorded})
    assert step_runner.children(after, "kubehop:index:Cutover", "serving") == []
