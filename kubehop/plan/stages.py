"""Build the offline plan: a baseline run of the program at what is deployed,
then one run per stage of the journey, each diffed against the run before it,
exactly as `pulumi preview` would diff it against the stack's state.

A stack with no recorded state (no `--outputs`) starts with the `adopt` stage:
the baseline run itself, diffed against an empty state, so its imports show
(op `import`, with their ids) and any input an import cannot read back is
refused. With `--outputs` (the JSON of `pulumi stack output --json`) the plan
starts from what the stack recorded."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubehop import catalog, config, cutover_record, hops, impact, interlocks, record
from kubehop.addons import moves
from kubehop.catalog import Version
from kubehop.plan import durations, engine, imports, timing
from kubehop.problems import Problem, Problems

# Properties whose change makes the engine replace rather than update.
REPLACE_ON = {
    "command:remote:Command": {"triggers"},
    "command:local:Command": {"triggers"},
    "kubernetes:helm.sh/v3:Release": {"name", "namespace"},
    "aws:ec2/launchTemplate:LaunchTemplate": {"name"},
    "aws:autoscaling/group:Group": {"name"},
}


class PlanError(Problems):
    """Input the plan refuses: printed on stderr, exit 2."""


@dataclass
class StackFile:
    """A `Pulumi.<stack>.yaml`-shaped config: raw values as Pulumi hands them over."""

    raw: dict[str, str]
    secret_keys: list[str]


def _encode(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_stack_file(data: dict) -> StackFile:
    """Secure values cannot be decrypted offline: present, secret, and masked."""
    cfg = (data or {}).get("config") or {}
    if not isinstance(cfg, dict):
        raise PlanError([Problem(key="config", value=type(cfg).__name__, message="is not a mapping of config keys",
                                 fix="use a file shaped like Pulumi.<stack>.yaml: `config:` holding `kubehop:KEY: VALUE`")])
    raw, secret = {}, []
    problems = []
    for key, value in cfg.items():
        # Pulumi keys are NAMESPACE:NAME (pulumi pkg/resource/config/key.go ParseKey refuses others).
        if not isinstance(key, str) or ":" not in key or key.startswith(":") or key.endswith(":"):
            problems.append(Problem(key=f"config.{key}", secret=True, message="is not a NAMESPACE:NAME config key",
                                    fix=f"write it as kubehop:{key} (or remove it)"))
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            raw[key] = engine.offline_secret(key, str(value["secure"]))
            secret.append(key)
        else:
            raw[key] = _encode(value)
    if problems:
        raise PlanError(problems)
    return StackFile(raw, secret)


def set_path(raw: dict[str, str], path: str, value: str) -> None:
    """`pulumi config set --path kubehop:traffic.state maintaining`, offline."""
    key, _, rest = path.partition(".")
    if not rest:
        raw[key] = value
        return
    obj = json.loads(raw.get(key) or "{}")
    cursor = obj
    parts = rest.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    raw[key] = json.dumps(obj)


def _expand(run: engine.Run) -> dict[str, set[str]]:
    """Direct dependencies of every resource, with a component dependency
    standing for all of the component's descendants."""
    children: dict[str, list[str]] = {}
    for urn, res in run.resources.items():
        children.setdefault(res.parent, []).append(urn)

    def descendants(urn: str) -> set[str]:
        out: set[str] = set()
        for child in children.get(urn, []):
            out.add(child)
            out |= descendants(child)
        return out

    deps: dict[str, set[str]] = {}
    for urn, res in run.resources.items():
        direct: set[str] = set()
        for dep in res.dependencies:
            direct.add(dep)
            if dep in run.resources and not run.resources[dep].custom:
                direct |= descendants(dep)
        deps[urn] = direct - {urn}
    return deps


def _closure(deps: dict[str, set[str]]) -> dict[str, set[str]]:
    memo: dict[str, set[str]] = {}

    def visit(urn: str, stack: tuple = ()) -> set[str]:
        if urn in memo:
            return memo[urn]
        out: set[str] = set()
        for dep in deps.get(urn, ()):
            if dep in stack:
                continue
            out.add(dep)
            out |= visit(dep, stack + (urn,))
        memo[urn] = out
        return out

    for urn in deps:
        visit(urn)
    return memo


def _op(prev: engine.Registered | None, cur: engine.Registered) -> str | None:
    if prev is None:
        return "import" if cur.import_id else "create"
    if prev.inputs == cur.inputs:
        return None
    changed = {k for k in set(prev.inputs) | set(cur.inputs) if prev.inputs.get(k) != cur.inputs.get(k)}
    return "replace" if changed & REPLACE_ON.get(cur.type, set()) else "update"


def _is_step(res: engine.Registered) -> bool:
    return res.custom and not res.type.startswith("pulumi:providers:")


def _nearest(deps: set[str], closure: dict[str, set[str]]) -> set[str]:
    """Drop the dependencies that another one in the set already waits for."""
    return {d for d in deps if not any(d in closure.get(o, set()) for o in deps if o != d)}


def stage_ops(prev: engine.Run, cur: engine.Run) -> dict[str, str]:
    """What one stage changes: resource URN -> create/update/replace."""
    ops: dict[str, str] = {}
    for urn, res in cur.resources.items():
        if _is_step(res):
            op = _op(prev.resources.get(urn), res)
            if op:
                ops[urn] = op
    return ops


def diff_stage(prev: engine.Run, cur: engine.Run, databases: set[str],
               earlier: dict[str, str] | None = None, ops: dict[str, str] | None = None) -> list[dict]:
    """The steps of one stage in dependency order, each with its nearest
    in-stage dependencies, action, target, op, inputs, impact and risk.

    `earlier` maps resources changed by earlier stages to the stage's name:
    a step's `after` lists the nearest of those it relies on ("stage/id"),
    e.g. a launch template on the image the prepare stage built."""
    earlier = earlier or {}
    ops = stage_ops(prev, cur) if ops is None else ops
    deleted = sorted((urn for urn, res in prev.resources.items() if urn not in cur.resources and _is_step(res)),
                     key=lambda urn: (prev.resources[urn].name, urn))
    direct = _expand(cur)
    closure = _closure(direct)
    order = list(cur.resources)
    ids = {urn: cur.resources[urn].name for urn in ops}
    steps: dict[str, dict] = {}
    for urn in order:
        if urn not in ops:
            continue
        res = cur.resources[urn]
        before = closure.get(urn, set()) & set(ops)
        via_stage = set().union(*(closure.get(b, set()) for b in before)) if before else set()
        prior = _nearest({d for d in closure.get(urn, set()) - set(ops) - via_stage if d in earlier}, closure)
        prior |= {d for d in direct.get(urn, set()) if d in earlier and d not in ops}
        action, target = impact.classify(res.name)
        text, risk = impact.describe(action, target, ops[urn], database=target in databases, resource_type=res.type)
        steps[urn] = {"id": ids[urn], "action": action or "infrastructure", "target": target, "op": ops[urn],
                      "resourceType": res.type, "dependsOn": sorted(ids[d] for d in _nearest(before, closure)),
                      "after": sorted(f"{earlier[d]}/{cur.resources[d].name}" for d in prior),
                      "inputs": res.inputs, "impact": text, "risk": risk,
                      "options": step_options(cur, res, set(ops)),
                      "_after": before}
        if ops[urn] == "import":
            steps[urn]["unreadable"] = imports.unreadable_inputs(res.type, res.inputs, res.ignore_changes)
    ordered = _topological(steps, order)
    for urn in deleted:
        res = prev.resources[urn]
        action, target = impact.classify(res.name)
        text, risk = impact.describe(action, target, "delete")
        ordered.append({"id": res.name, "action": action or "infrastructure", "target": target, "op": "delete",
                        "resourceType": res.type, "dependsOn": [], "after": [], "inputs": {}, "impact": text, "risk": risk})
    return ordered


def step_options(run: engine.Run, res: engine.Registered, in_stage: set[str]) -> dict:
    """The resource options `pulumi preview` acts on: import id, ignoreChanges,
    retainOnDelete, and what it waits for that this stage does not change."""
    beyond = sorted({run.resources[d].name for d in res.dependencies
                     if d in run.resources and d not in in_stage and not run.resources[d].type.startswith("pulumi:")})
    return {"import": res.import_id or None, "ignoreChanges": list(res.ignore_changes),
            "retainOnDelete": res.retain_on_delete, "dependsOn": beyond}


def _refused_imports(steps: list[dict]) -> list[Problem]:
    """An import that declares what its provider cannot read back would fail
    (engines before 3.174) or rewrite the resource in the same run (from 3.174)."""
    return [Problem(key=f"adopt: {s['id']}", value=s["options"]["import"],
                    message=f"is imported but declares {', '.join(s['unreadable'])}, which an import cannot read back",
                    fix="declare only what the provider reads back on the adoption run (kubehop/plan/imports.py)")
            for s in steps if s.get("unreadable")]


def read_outputs(data: Any) -> dict:
    """The recorded state from `pulumi stack output --json`, checked."""
    state = data.get("kubehop") if isinstance(data, dict) else None
    if state == "[secret]":
        raise PlanError([Problem(key="--outputs", secret=True, message="shows the `kubehop` output as [secret]",
                                 fix="use `pulumi stack output --json --show-secrets`")])
    if not isinstance(state, dict) or not state.get("controlPlaneVersion") or not state.get("workerVersion"):
        raise PlanError([Problem(key="--outputs", secret=True,
                                 message="has no `kubehop` output with controlPlaneVersion and workerVersion",
                                 fix="pass the JSON of `pulumi stack output --json` for a stack kubehop has run on "
                                     "(a stack with no outputs is planned without --outputs, from its adopt config)")])
    try:
        hops.Deployed.from_output(state)
    except (ValueError, KeyError, catalog.CatalogError) as exc:
        raise PlanError([Problem(key="--outputs", secret=True, message=f"holds a recorded state that is not valid ({exc})",
                                 fix="pass the stack's own output JSON")]) from None
    return state


def record_after(cluster: str, parameters: dict[str, str], run: engine.Run) -> dict[str, str]:
    """The cutover record once every step of a stage has run (each maintaining action writes
    its effect, the canary deletes the record): what the next stage's program reads."""
    out, cleared = dict(parameters), []
    for res in run.resources.values():
        parsed = engine.gate_argv(res.inputs.get("create")) if res.type == "command:local:Command" else None
        written = cutover_record.written_by(cluster, *parsed) if parsed else None
        if written and written[1] is None:
            cleared.append(written[0].rstrip("/") + "/")
        elif written:
            out[written[0]] = written[1]
    return {n: v for n, v in out.items() if not any(n.startswith(c) for c in cleared)}


def _topological(steps: dict[str, dict], order: list[str]) -> list[dict]:
    """Dependency levels (a step after everything it waits for), each level by id: the same
    plan every time, though the SDK registers side-by-side resources in any order."""
    level: dict[str, int] = {}

    def depth(urn: str, seen: tuple = ()) -> int:
        if urn not in level:
            before = [b for b in steps[urn]["_after"] if b in steps and b not in seen]
            level[urn] = 1 + max((depth(b, seen + (urn,)) for b in before), default=-1)
        return level[urn]

    pending = [u for u in order if u in steps]
    out = [steps[u] for u in sorted(pending, key=lambda u: (depth(u), steps[u]["id"], u))]
    for step in out:
        step.pop("_after", None)
    return out


def _placeholder(checksum: str) -> bool:
    return set(checksum) == {"0"}


def _warnings(cfg: config.StackConfig, stages: list[hops.Stage], runs: list[engine.Run]) -> list[str]:
    """What the operator should fix before the stages run, though the plan can be made."""
    warnings = []
    for run in runs:  # what each run records each release runs at, against its minor
        state = run.outputs.get("kubehop") or {}
        for warning in moves.outside_range(Version.parse(state["controlPlaneVersion"]).minor_str, state.get("addons") or {}):
            if warning not in warnings:
                warnings.append(warning)
    images = cfg.node_images
    if images and _placeholder(images.cni_plugins_sha256):
        warnings.append(f"kubehop:nodeImages.cniPluginsSha256 is a placeholder: the image build refuses it; set the sha256 "
                        f"published with CNI plugins v{catalog.CNI_PLUGINS_VERSION} (cni-plugins-linux-amd64)")
    if images and images.spark and _placeholder(images.spark.hadoop_sha512):
        warnings.append("kubehop:nodeImages.spark.hadoopSha512 is a placeholder: the Spark image build refuses it; "
                        "set the sha512 from the Apache Hadoop release page")
    unpinned = config.unpinned_host_keys(cfg)
    if unpinned:
        optout = " (accepted by kubehop:ssh.allowUnpinnedHostKeys)" if cfg.ssh.allow_unpinned_host_keys else ""
        warnings.append(f"SSH host keys are not pinned for {', '.join(unpinned)}{optout}: set kubehop:controlPlane.nodes[].hostKey "
                        "(and ssh.bastion.hostKey) from `ssh-keyscan -t ed25519 HOST`, or the steps trust any host")
    for name, addon in catalog.ADDONS.items():
        if addon.warning and cfg.addons.get(name).enabled:
            warnings.append(addon.warning)
    for stage in stages:
        if stage.hop and stage.hop.moves_control_plane:
            removed = catalog.release(stage.hop.control_plane.minor_str).removed_apis
            if removed:
                warnings.append(f"{stage.name}: APIs no longer served: {', '.join(removed)}; migrate manifests before this hop")
    return warnings


def build(stack_file: StackFile, *, stack: str, to: str | None, policy: str | None,
          sibling_state: str = "serving", recorded: dict | None = None,
          cutover: dict[str, str] | None = None) -> dict:
    """The whole plan as the JSON-ready dict `kubehop plan --json` prints.

    `recorded` is the stack's `kubehop` output (from `--outputs`); without it
    the stack has no state and the plan starts with the adopt stage.
    `cutover` is the cluster's cutover record (SSM parameter name -> value, from
    `--record`): an open record with `traffic.state: serving` as written makes the
    first stage `restore`, the run that undoes a maintaining run that failed part way."""
    raw = dict(stack_file.raw)
    if policy is not None:
        if policy not in hops.POLICIES:
            raise PlanError([Problem(key="--worker-policy", value=policy, message="is not a worker policy",
                                     fix=f"use one of {', '.join(hops.POLICIES)}")])
        raw["kubehop:workerPolicy"] = policy
    try:
        cfg = config.load(raw, set(stack_file.secret_keys))
    except config.ConfigErrors as exc:
        raise PlanError(exc.problems) from None
    if recorded is not None:
        deployed = hops.Deployed.from_output(recorded)
    else:
        deployed = hops.Deployed.from_output(record.adopted_state(cfg))
    parameters = dict(cutover or {})
    try:
        log = cutover_record.decode(cfg.cluster.name, parameters.items())
    except cutover_record.RecordError as exc:
        raise PlanError(exc.problems) from None
    _check_as_written(cfg, deployed, sibling_state, log)
    restore = log.open and cfg.traffic is not None and cfg.traffic.state == "serving"
    try:
        goal = catalog.resolve(to) if to else cfg.target
    except (ValueError, catalog.CatalogError) as exc:
        raise PlanError([Problem(key="--to", value=to, message=str(exc),
                                 fix=f"use a catalog minor ({', '.join(catalog.known_minors())}), e.g. --to 1.29")]) from None
    try:
        stages = hops.journey(deployed, goal, cfg.worker_policy, production=cfg.cluster.production and cfg.traffic is not None,
                              prepare_images=bool(cfg.node_pools))
    except hops.HopError as exc:
        raise PlanError(exc.problems) from None

    baseline = dict(raw)
    baseline["kubehop:kubernetesVersion"] = str(deployed.control_plane)
    baseline.pop("kubehop:targetVersion", None)
    if cfg.traffic:
        # after a maintaining run that failed part way its steps are what the stack holds
        set_path(baseline, "kubehop:traffic.state", "maintaining" if restore else deployed.traffic)
    if log.open and not restore:
        # resuming the maintaining run: every maintaining step shows (those that passed are
        # unchanged in the real preview; the others run again, each idempotent)
        parameters = {}
    self_name = f"organization/kubehop/{stack}"
    sibling = {cfg.sibling.stack: {"kubehop": {"traffic": sibling_state}}} if cfg.sibling else {}
    versions: dict[str, tuple[str, int]] = {}
    own = {self_name: {"kubehop": recorded}} if recorded is not None else {}
    prev = _run(baseline, stack_file.secret_keys, stack, {**sibling, **own}, versions,
                "baseline" if recorded is not None else "adopt", parameters)
    if cutover is None:  # no record given: the one kubehop's own steps would have written
        parameters = record_after(cfg.cluster.name, parameters, prev)
    if restore:
        stages = [hops.Stage("restore", {"kubehop:traffic.state": "serving"}), *stages]
    runs = [prev]
    databases = {p.name for p in cfg.node_pools if p.database}
    current = baseline
    out_stages = []
    changed_in: dict[str, str] = {}  # resource -> the last stage that changed it
    if recorded is None:
        out_stages.append(adopt_stage(prev, databases, changed_in))
    for stage in stages:
        current = dict(current)
        for key, value in stage.config.items():
            set_path(current, key, value)
        outputs = {**sibling, self_name: prev.outputs}
        run = _run(current, stack_file.secret_keys, stack, outputs, versions, stage.name, parameters)
        parameters = record_after(cfg.cluster.name, parameters, run)
        state = run.outputs.get("kubehop", {})
        ops = stage_ops(prev, run)
        steps = diff_stage(prev, run, databases, changed_in, ops)
        changed_in.update({urn: stage.name for urn in ops})
        out_stages.append({
            "name": stage.name,
            "config": dict(stage.config),
            "controlPlane": state.get("controlPlaneVersion"),
            "workers": state.get("workerVersion"),
            "images": state.get("imageVersion"),
            "steps": steps,
        })
        prev = run
        runs.append(run)
    plan = {"cluster": cfg.cluster.name, "stack": stack, "region": cfg.cluster.region,
            "environment": cfg.cluster.environment, "dedicatedNamespaces": list(cfg.cluster.dedicated_namespaces), "from": str(deployed.control_plane), "to": str(goal),
            "workerPolicy": cfg.worker_policy, "warnings": _warnings(cfg, stages, runs),
            "cutoverRecord": log.summary() if cutover is not None else None, "stages": out_stages}
    return timing.annotate(plan, durations.from_config(cfg))


def adopt_stage(adoption: engine.Run, databases: set[str], changed_in: dict[str, str]) -> dict:
    """The first `pulumi up` of a stack with no state: the adoption run against
    an empty state. Its imports must declare only what an import reads back."""
    ops = stage_ops(engine.Run(), adoption)
    steps = diff_stage(engine.Run(), adoption, databases, {}, ops)
    refused = _refused_imports(steps)
    if refused:
        raise PlanError(refused)
    changed_in.update({urn: "adopt" for urn in ops})
    state = adoption.outputs.get("kubehop", {})
    return {"name": "adopt", "config": {}, "controlPlane": state.get("controlPlaneVersion"),
            "workers": state.get("workerVersion"), "images": state.get("imageVersion"), "steps": steps}


def _check_as_written(cfg: config.StackConfig, deployed: hops.Deployed, sibling_state: str,
                      log: cutover_record.Record) -> None:
    """Refuse what `pulumi preview` would refuse for the config as it is now."""
    try:
        hop = hops.plan_hop(deployed, cfg.version, cfg.target, cfg.worker_policy)
    except hops.HopError as exc:
        raise PlanError(exc.problems) from None
    blocked = moves.downgrades(cfg, deployed) + interlocks.problems(cfg, hop, sibling_state if cfg.sibling else None, log)
    if blocked:
        raise PlanError(blocked)


def _run(raw: dict[str, str], secret_keys: list[str], stack: str, outputs: dict, versions: dict, label: str,
         parameters: dict[str, str]) -> engine.Run:
    try:
        return engine.run_program(raw, secret_keys, stack=stack, stack_outputs=outputs, template_versions=versions,
                                  parameters=parameters)
    except Exception as exc:  # the program refused (interlock, bad hop): report it
        message = str(exc).strip() or type(exc).__name__
        raise PlanError([Problem(key=f"stage {label}", value=None, secret=True, message=f"the program refused: {message}",
                                 fix="correct the config the message names")]) from None
