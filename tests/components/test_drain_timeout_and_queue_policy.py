"""One worker drain timeout (rollout.workerDrainTimeoutSeconds) feeds NTH's drain
and every pool's termination hook; the queue takes messages only from the
cluster's own EventBridge rules; the launch templates keep IMDS hop limit 2."""
from __future__ import annotations

import copy
import json

import pytest

from kubehop import config
from kubehop.plan import engine
from kubehop.plan.stages import read_stack_file
from tests.plan_helpers import prod_b


def _run(data: dict) -> dict:
    sf = read_stack_file(data)
    run = engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs={}, template_versions={})
    return {r.name: r for r in run.resources.values()}


@pytest.fixture(scope="module")
def by_name() -> dict:
    data = copy.deepcopy(prod_b())
    data["config"]["kubehop:rollout"] = {"workerDrainTimeoutSeconds": 1800}
    return _run(data)


def test_one_drain_timeout_feeds_nth_and_every_termination_hook(by_name):
    assert by_name["aws-node-termination-handler-addon"].inputs["values"]["nodeTerminationGracePeriod"] == 1800
    for pool in ("workers", "databases", "spark"):
        assert by_name[f"{pool}-drain-hook"].inputs["heartbeatTimeout"] == 1800 + 120


@pytest.mark.parametrize("value", [7081, 59])
def test_a_drain_timeout_the_hook_cannot_cover_is_refused(value):
    data = copy.deepcopy(prod_b())
    data["config"]["kubehop:rollout"] = {"workerDrainTimeoutSeconds": value}
    sf = read_stack_file(data)
    with pytest.raises(config.ConfigErrors) as info:
        config.load(sf.raw, set(sf.secret_keys))
    assert [p.key for p in info.value.problems] == ["kubehop:rollout.workerDrainTimeoutSeconds"]


def test_the_queue_takes_messages_only_from_the_clusters_rules(by_name):
    policy = json.loads(by_name["node-termination-queue-policy"].inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    rules = sorted(r.name for r in by_name.values() if r.type == "aws:cloudwatch/eventRule:EventRule")
    # the mock engine's ARNs end with the resource name (kubehop/plan/engine.py)
    assert [a.rsplit(":", 1)[-1] for a in statement["Condition"]["ArnEquals"]["aws:SourceArn"]] == rules
    assert len(rules) == 3


def test_launch_templates_keep_hop_limit_2_for_nth_in_queue_mode(by_name):
    for pool in ("workers", "databases", "spark"):
        assert by_name[f"{pool}-launch-template"].inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
