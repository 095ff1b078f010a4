"""Estimated time of a plan: per step, per stage (its critical path) and the
maintenance window.

A stage is one `pulumi up`; the engine runs a step as soon as every resource
it depends on is done, so a stage lasts as long as its longest dependency
chain (the critical path over the recorded `dependsOn` DAG). Stages run one
after another. The window is the time users are on the sibling cluster: from
the start of `traffic-maintain` in the maintaining stage to the end of
`traffic-serve` in the serving stage.
"""
from __future__ import annotations

from kubehop.plan.durations import Model

MAINTAIN, SERVE = "traffic-maintain", "traffic-serve"


def _round(value: float) -> float:
    return round(value, 2)


def schedule(steps: list[dict], model: Model) -> dict[str, tuple[float, float]]:
    """Earliest (start, finish) of every step; `steps` are in dependency order."""
    times: dict[str, tuple[float, float]] = {}
    for step in steps:
        start = max((times[d][1] for d in step["dependsOn"] if d in times), default=0.0)
        times[step["id"]] = (start, start + model.minutes(step["action"], step["target"], step["op"]))
    return times


def critical_path(steps: list[dict], times: dict[str, tuple[float, float]]) -> list[str]:
    """The chain of steps that ends last, first step first."""
    if not steps:
        return []
    by_id = {s["id"]: s for s in steps}
    # ties are broken by id, not by list order: the mock engine's registration
    # order of independent steps varies between processes, the plan must not
    end = max(f for _, f in times.values())
    current = min(i for i in times if abs(times[i][1] - end) < 1e-9)
    path = [current]
    while True:
        start = times[current][0]
        feeding = [d for d in by_id[current]["dependsOn"] if d in times and abs(times[d][1] - start) < 1e-9]
        if not feeding or start == 0:
            break
        current = min(feeding)
        path.append(current)
    return path[::-1]


def _ancestors(steps: list[dict], step_id: str) -> set[str]:
    by_id = {s["id"]: s for s in steps}
    seen: set[str] = set()
    todo = list(by_id[step_id]["dependsOn"])
    while todo:
        current = todo.pop()
        if current in by_id and current not in seen:
            seen.add(current)
            todo.extend(by_id[current]["dependsOn"])
    return seen


def _find(steps: list[dict], action: str) -> str | None:
    return next((s["id"] for s in steps if s["action"] == action and s["op"] != "delete"), None)


def annotate(plan: dict, model: Model) -> dict:
    """Add `estimateMinutes` (and `startMinute`) to every step, `criticalPath`,
    `estimateMinutes` and `serialMinutes` to every stage, and the plan's
    `estimate` (window and total, scheduled and serial)."""
    total = serial_total = 0.0
    window = serial_window = 0.0
    inside = False
    has_window = False
    for stage in plan["stages"]:
        steps = stage["steps"]
        times = schedule(steps, model)
        for step in steps:
            start, finish = times[step["id"]]
            step["estimateMinutes"] = _round(finish - start)
            step["startMinute"] = _round(start)
        length = max((f for _, f in times.values()), default=0.0)
        serial = sum(f - s for s, f in times.values())
        stage["criticalPath"] = critical_path(steps, times)
        stage["estimateMinutes"] = _round(length)
        stage["serialMinutes"] = _round(serial)
        total += length
        serial_total += serial
        maintain, serve = _find(steps, MAINTAIN), _find(steps, SERVE)
        in_window: set[str] = set()
        if maintain:
            inside = has_window = True
            before = _ancestors(steps, maintain)
            window += length - times[maintain][0]
            serial_window += sum(f - s for i, (s, f) in times.items() if i not in before)
            in_window = set(times) - before
        elif serve and inside:
            needed = _ancestors(steps, serve) | {serve}
            window += times[serve][1]
            serial_window += sum(f - s for i, (s, f) in times.items() if i in needed)
            inside = False
            in_window = needed  # the canary and what rolls after serving are outside
        elif inside:
            window += length
            serial_window += serial
            in_window = set(times)
        stage["inWindow"] = bool(maintain or serve or inside)
        for step in steps:
            step["inWindow"] = step["id"] in in_window
    plan["estimate"] = {
        "windowMinutes": _round(window) if has_window else None,
        "totalMinutes": _round(total),
        "serialWindowMinutes": _round(serial_window) if has_window else None,
        "serialTotalMinutes": _round(serial_total),
    }
    return plan
