"""`plan --format html`: one self-contained page (no network, no external
script or stylesheet) with every stage, its step DAG drawn on a time axis
(each step a bar from its earliest start to its finish, an arrow from each
step it waits for, the critical path in red) and the estimates.

A small inline script counts what the browser laid out and writes it into the
page footer, so a headless browser's DOM dump shows the page really rendered.
"""
from __future__ import annotations

from html import escape

from kubehop.plan.render import minutes

ROW, LEFT, WIDTH, TOP = 22, 330, 760, 28

STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.summary td{padding:2px 12px 2px 0}
svg{border:1px solid #ddd;background:#fff}
rect.step{fill:#90caf9;stroke:#1565c0}
rect.step.critical{fill:#ef9a9a;stroke:#c62828;stroke-width:2}
path.dep{stroke:#9e9e9e;fill:none;marker-end:url(#arrow)}
path.dep.critical{stroke:#c62828;stroke-width:2}
text{font:12px system-ui,sans-serif}
text.axis{fill:#777;font-size:11px}
.window{color:#b71c1c;font-weight:600}
"""

SCRIPT = """
(function(){
  var bars=document.querySelectorAll('rect.step'), shown=0, critical=0;
  bars.forEach(function(b){
    var r=b.getBoundingClientRect();
    if(r.width>0&&r.height>0){shown++; if(b.classList.contains('critical'))critical++;}
  });
  var out=document.getElementById('rendered');
  out.textContent='rendered '+document.querySelectorAll('svg.stage').length+' stages, '+shown+' step bars, '+critical+' on critical paths';
  out.dataset.bars=shown; out.dataset.critical=critical;
})();
"""


def _svg(stage: dict) -> str:
    steps = [s for s in stage["steps"] if s["op"] != "delete"]
    length = max(stage["estimateMinutes"], 1.0)
    scale = WIDTH / length
    row = {s["id"]: i for i, s in enumerate(steps)}
    critical = set(stage["criticalPath"])
    path = stage["criticalPath"]
    hot = set(zip(path, path[1:], strict=False))
    height = TOP + ROW * len(steps) + 10
    parts = [f'<svg class="stage" width="{LEFT + WIDTH + 40}" height="{height}" role="img" '
             f'aria-label="{escape(stage["name"])}">',
             '<defs><marker id="arrow" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="6" markerHeight="6" '
             'orient="auto"><path d="M0,0L6,3L0,6z" fill="#9e9e9e"/></marker></defs>']
    ticks = 10 if length >= 60 else 5
    for minute in range(0, int(length) + 1, max(1, int(length // ticks) or 1)):
        x = LEFT + minute * scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#eee"/>'
                     f'<text class="axis" x="{x:.1f}" y="{TOP - 10}">{minute}m</text>')
    for step in steps:
        y = TOP + row[step["id"]] * ROW
        x = LEFT + step["startMinute"] * scale
        w = max(step["estimateMinutes"] * scale, 2.0)
        cls = "step critical" if step["id"] in critical else "step"
        parts.append(f'<text x="4" y="{y + 14}">{escape(step["action"])} {escape(step["target"][:28])}</text>'
                     f'<rect class="{cls}" data-step="{escape(step["id"])}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}">'
                     f'<title>{escape(step["id"])}: {step["op"]}, {step["estimateMinutes"]:g} min from minute '
                     f'{step["startMinute"]:g}</title></rect>')
        for dep in step["dependsOn"]:
            if dep not in row:
                continue
            source = next(s for s in steps if s["id"] == dep)
            x0 = LEFT + (source["startMinute"] + source["estimateMinutes"]) * scale
            y0 = TOP + row[dep] * ROW + ROW / 2
            dcls = "dep critical" if (dep, step["id"]) in hot else "dep"
            parts.append(f'<path class="{dcls}" d="M{x0:.1f},{y0:.1f} C{x0 + 12:.1f},{y0:.1f} {x - 12:.1f},{y + ROW / 2:.1f} '
                         f'{x:.1f},{y + ROW / 2:.1f}"/>')
    parts.append("</svg>")
    return "".join(parts)


def render(plan: dict) -> str:
    """The whole page as one string."""
    estimate = plan["estimate"]
    title = f"kubehop plan: {plan['cluster']} {plan['from']} -> {plan['to']}"
    rows = [f"<tr><td>worker policy</td><td>{escape(plan['workerPolicy'])}</td></tr>",
            f"<tr><td>stages</td><td>{len(plan['stages'])} (one <code>pulumi up</code> each)</td></tr>",
            f'<tr><td>estimated total</td><td id="total">{minutes(estimate["totalMinutes"])}</td></tr>']
    if estimate["windowMinutes"] is not None:
        rows.append(f'<tr><td>maintenance window</td><td class="window" id="window">{minutes(estimate["windowMinutes"])}'
                    f" (maintaining -> serving)</td></tr>")
    body = [f"<h1>{escape(title)}</h1>", '<table class="summary">', *rows, "</table>"]
    total = len(plan["stages"])
    for number, stage in enumerate(plan["stages"], 1):
        window = ' <span class="window">in the maintenance window</span>' if stage["inWindow"] else ""
        critical = " &rarr; ".join(escape(i) for i in stage["criticalPath"]) or "(nothing to do)"
        body += [f'<section class="stage" id="stage-{number}">',
                 f'<h2>Stage {number}/{total}: {escape(stage["name"])} &mdash; '
                 f'<span class="estimate">{minutes(stage["estimateMinutes"])}</span>{window}</h2>',
                 f"<p>{len(stage['steps'])} steps; one at a time they would take {minutes(stage['serialMinutes'])}. "
                 f"Critical path: {critical}</p>", _svg(stage), "</section>"]
    body.append('<p id="rendered">not rendered by a browser</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + f"<script>{SCRIPT}</script></body></html>\n")
