"""`plan --format mermaid`: each stage's step DAG as a Mermaid flowchart in
Markdown (GitHub renders ```mermaid blocks in pull requests), the critical
path highlighted.

Syntax used (flowchart, `A --> B`, `classDef`/`class`, `linkStyle N`, `#quot;`
entity codes in labels) is Mermaid's documented flowchart syntax:
https://mermaid.js.org/syntax/flowchart.html
"""
from __future__ import annotations

import re

from kubehop.plan.render import minutes

CRITICAL_STYLE = "fill:#ffe0e0,stroke:#c62828,stroke-width:3px"
CRITICAL_LINK = "stroke:#c62828,stroke-width:3px"


def _label(text: str) -> str:
    """Mermaid labels in quotes: no quote, bracket or markup can break out."""
    return re.sub(r'["<>\[\]{}|#]', lambda m: f"#{ord(m.group())};", text)


def stage_chart(stage: dict) -> str:
    """One flowchart, top to bottom; node ids are s1, s2, ... in plan order."""
    steps = [s for s in stage["steps"] if s["op"] != "delete"]
    node = {s["id"]: f"s{i}" for i, s in enumerate(steps, 1)}
    critical = set(stage["criticalPath"])
    lines = ["flowchart TD"]
    for step in steps:
        lines.append(f'  {node[step["id"]]}["{_label(step["action"])} {_label(step["target"])}'
                     f'<br/>{step["op"]}, {step["estimateMinutes"]:g} min"]')
    links, hot = 0, []
    path = stage["criticalPath"]
    on_path = {(a, b) for a, b in zip(path, path[1:], strict=False)}
    for step in steps:
        for dep in step["dependsOn"]:
            if dep in node:
                lines.append(f"  {node[dep]} --> {node[step['id']]}")
                if (dep, step["id"]) in on_path:
                    hot.append(str(links))
                links += 1
    lines.append(f"  classDef critical {CRITICAL_STYLE}")
    if critical & set(node):
        lines.append("  class " + ",".join(node[i] for i in path if i in node) + " critical")
    if hot:
        lines.append(f"  linkStyle {','.join(hot)} {CRITICAL_LINK}")
    return "\n".join(lines)


def render(plan: dict) -> str:
    """Markdown: a heading and a mermaid block per stage, then the estimates."""
    estimate = plan["estimate"]
    out = [f"## kubehop plan: {plan['cluster']} {plan['from']} -> {plan['to']} ({plan['workerPolicy']})", ""]
    if estimate["windowMinutes"] is not None:
        out.append(f"Maintenance window (maintaining -> serving): **{minutes(estimate['windowMinutes'])}**; ")
    out += [f"total **{minutes(estimate['totalMinutes'])}**. The critical path of each stage is red.", ""]
    total = len(plan["stages"])
    for number, stage in enumerate(plan["stages"], 1):
        window = ", in the window" if stage["inWindow"] else ""
        out += [f"### Stage {number}/{total}: {stage['name']} ({minutes(stage['estimateMinutes'])}{window})", "",
                "```mermaid", stage_chart(stage), "```", ""]
    return "\n".join(out)
