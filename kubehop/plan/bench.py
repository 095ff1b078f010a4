"""`make bench`: how long the offline plan takes to answer, and the window and
total it estimates under the default duration model, for prod-b and for a
generated cluster with 7 masters and 40 pools. A change that serializes
something shows as a longer window; one that slows the plan as wall time.

"Answers" is what a user waits for: `python -m kubehop plan ... --to 1.29` run
as a fresh process, wall time, best of three (the criterion: under 3x prod-b's).
The build alone (in-process CPU, imports excluded) is printed beside it: it grows
with the number of resources the program registers (about 3.5 ms each in the
SDK's mock engine, 78 for prod-b and 291 for 7x40 per run), so its ratio is near
the resource ratio."""
from __future__ import annotations

import contextlib
import copy
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from kubehop.plan import engine
from kubehop.plan.stages import build, read_stack_file


def prod_b() -> dict:
    return yaml.safe_load((engine.PROJECT_DIR / "Pulumi.prod-b.yaml").read_text())


def generated(masters: int = 7, pools: int = 40) -> dict:
    """prod-b with `masters` masters and `pools` pools: every fifth a database
    pool, every fourth a Spark pool, the rest stateless workers."""
    data = copy.deepcopy(prod_b())
    cfg = data["config"]
    cfg["kubehop:controlPlane"]["nodes"] = [{"name": f"master{i}", "host": f"10.42.{i + 1}.10"} for i in range(masters)]
    template = cfg["kubehop:nodePools"][0]
    out, templates = [], {}
    for i in range(pools):
        pool = copy.deepcopy(template)
        pool.pop("labels", None)
        pool.pop("taints", None)
        pool.update(name=f"pool{i:02d}", asgName=f"aws-uswest2-prod-b-pool{i:02d}", maxSize=10)
        if i % 5 == 4:
            pool["database"] = True
        elif i % 4 == 3:
            pool["role"] = "spark"
        out.append(pool)
        templates[pool["name"]] = {"id": f"lt-0{i:016x}", "version": "1"}
    cfg["kubehop:nodePools"] = out
    cfg["kubehop:adopt"]["launchTemplates"] = templates
    return data


def timed_plan(data: dict, stack: str = "prod-b", to: str = "1.29", policy: str | None = None) -> tuple[float, dict]:
    """(CPU seconds, plan) of one plan build, the runtime's own output kept off stdout.

    The plan is one CPU-bound process (the SDK's executor threads included, which
    process_time counts), so its CPU time is its wall time on an idle machine;
    unlike wall time it does not grow with what other processes run beside it."""
    started = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        plan = build(read_stack_file(data), stack=stack, to=to, policy=policy)
    return time.process_time() - started, plan


def cli_seconds(data: dict, to: str = "1.29", runs: int = 3) -> float:
    """Wall seconds of `python -m kubehop plan` answering for this config, best of `runs`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Pulumi.bench.yaml"
        path.write_text(yaml.safe_dump(data))
        argv = [sys.executable, "-m", "kubehop", "plan", "--stack", "prod-b", "--config", str(path), "--to", to, "--json"]
        best = float("inf")
        for _ in range(runs):
            started = time.monotonic()
            subprocess.run(argv, cwd=engine.PROJECT_DIR, check=True, capture_output=True, timeout=600)
            best = min(best, time.monotonic() - started)
        return best


def main() -> int:
    rows = []
    for label, data in (("prod-b", prod_b()), ("7 masters / 40 pools", generated())):
        # the best of three runs: the machine is shared, the first run also warms imports
        seconds, plan = min((timed_plan(data) for _ in range(3)), key=lambda run: run[0])
        answer = cli_seconds(data)
        est = plan["estimate"]
        rows.append((label, answer, seconds))
        print(f"{label:<22} answers in {answer:6.2f}s (build {seconds:5.2f}s CPU)  window {est['windowMinutes']:7.1f} min "
              f"(serial {est['serialWindowMinutes']:7.1f})  total {est['totalMinutes']:7.1f} min "
              f"(serial {est['serialTotalMinutes']:7.1f})  steps {sum(len(s['steps']) for s in plan['stages'])}")
    ratio, build = rows[1][1] / rows[0][1], rows[1][2] / rows[0][2]
    print(f"plan answer-time ratio (7x40 / prod-b): {ratio:.2f} (must stay under 3); build alone {build:.2f}")
    return 0 if ratio < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
