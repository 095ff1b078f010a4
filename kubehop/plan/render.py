"""Human-readable plan: one table per stage (one `pulumi up` each)."""
from __future__ import annotations

import textwrap

RISK_MARK = {"high": "HIGH", "medium": "med", "low": "low"}


def minutes(value: float) -> str:
    """90.5 -> '1h30m' (rounded to the minute)."""
    whole = int(round(value))
    return f"{whole // 60}h{whole % 60:02d}m" if whole >= 60 else f"{whole}m"


def render(plan: dict) -> str:
    lines = [f"kubehop plan for {plan['cluster']} (stack {plan['stack']}): {plan['from']} -> {plan['to']}, "
             f"worker policy {plan['workerPolicy']}, {len(plan['stages'])} stage(s), one `pulumi up` each.",
             f"  cluster: region {plan['region']}, environment {plan['environment']}, dedicated namespaces: "
             f"{', '.join(plan['dedicatedNamespaces']) or '(none)'}"]
    for warning in plan.get("warnings", []):
        lines.append(f"  warning: {warning}")
    if plan.get("cutoverRecord") is not None:
        entries = ", ".join(f"{k}: {v}" for k, v in plan["cutoverRecord"].items()) or "empty (no transition under way)"
        lines.append(f"  cutover record: {entries}")
    for number, stage in enumerate(plan["stages"], 1):
        settings = ", ".join(f"{k}={v}" for k, v in stage["config"].items())
        lines += ["", f"Stage {number}/{len(plan['stages'])}: {stage['name']}",
                  f"  set:   {settings}",
                  f"  then:  control plane {stage['controlPlane']}, workers {stage['workers']}, images {stage['images'] or '(as adopted)'}",
                  f"  steps: {len(stage['steps'])} (in dependency order; 'needs' lists the step numbers that must finish first)"]
        index = {step["id"]: i for i, step in enumerate(stage["steps"], 1)}
        lines.append(f"  time:  {minutes(stage['estimateMinutes'])} (critical path of {len(stage['criticalPath'])} steps; "
                     f"{minutes(stage['serialMinutes'])} one step at a time){'; in the maintenance window' if stage['inWindow'] else ''}")
        if any(s["action"] == "traffic-serve" for s in stage["steps"]):  # the stage that ends the window
            later = [s["id"] for s in stage["steps"] if not s["inWindow"] and s["op"] != "delete"]
            if later:
                lines.append(f"  after users are back (outside the window): {', '.join(later)}")
        critical = set(stage["criticalPath"])
        header = f"  {'#':>3}  {'action':<24} {'target':<28} {'op':<8} {'risk':<5} {'needs':<12} {'min':>6}  impact"
        lines += [header, "  " + "-" * (len(header) + 20)]
        for i, step in enumerate(stage["steps"], 1):
            after = ",".join(str(index[d]) for d in step["dependsOn"] if d in index) or "-"
            impact = textwrap.shorten(step["impact"], 100, placeholder="…")
            lines.append(f"  {i:>3}  {step['action']:<24} {step['target'][:28]:<28} {step['op']:<8} "
                         f"{RISK_MARK.get(step['risk'], step['risk']):<5} {after[:12]:<12} "
                         f"{step['estimateMinutes']:>5g}{'*' if step['id'] in critical else ' '}  {impact}")
    estimate = plan["estimate"]
    lines += ["", f"Estimated total {minutes(estimate['totalMinutes'])} (one step at a time: {minutes(estimate['serialTotalMinutes'])})"
              + (f"; maintenance window (maintaining -> serving) {minutes(estimate['windowMinutes'])} "
                 f"(one step at a time: {minutes(estimate['serialWindowMinutes'])})" if estimate["windowMinutes"] is not None else "")
              + ". '*' marks each stage's critical path; minutes come from the duration model (kubehop:estimates overrides it)."]
    lines += ["", "Apply each stage in order: set the stage's config (`pulumi config set --path KEY VALUE`), "
              "`pulumi preview`, then `pulumi up`. A failed `pulumi up` resumes at the failed step when re-run."]
    return "\n".join(lines)
