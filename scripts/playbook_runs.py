#!/usr/bin/env python3
"""Sum the molecule verify steps' playbook runs (reports/test/playbook-runs.jsonl, one line per run, written by
molecule/shared/playbook_run.py) per scenario and test file: runs, wall seconds, controller CPU seconds and task
results (ok + failed from each run's recap, which does not depend on the machine's speed), and the total.

Usage: scripts/playbook_runs.py [FILE]   (default: reports/test/playbook-runs.jsonl)
"""
import collections
import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "reports" / "test" / "playbook-runs.jsonl"


def summary(lines):
    """{(scenario, test file): [runs, seconds, controller_cpu, task_results]}, most controller CPU first."""
    sums = collections.defaultdict(lambda: [0, 0.0, 0.0, 0])
    for line in lines:
        run = json.loads(line)
        key = (run["scenario"], run["test"].split("::")[0].rsplit("/", 1)[-1])
        for i, value in enumerate((1, run["seconds"], run["controller_cpu"], run["task_results"])):
            sums[key][i] += value
    return dict(sorted(sums.items(), key=lambda item: -item[1][2]))


def table(sums):
    rows = ["| scenario | test file | runs | wall s | controller CPU s | task results |", "|---|---|---|---|---|---|"]
    rows += [f"| {s} | {t} | {n} | {w:.0f} | {c:.0f} | {r} |" for (s, t), (n, w, c, r) in sums.items()]
    n, w, c, r = (sum(v[i] for v in sums.values()) for i in range(4))
    return "\n".join(rows + [f"| **total** | | {n} | {w:.0f} | {c:.0f} | {r} |"])


if __name__ == "__main__":
    print(table(summary(Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT).read_text().splitlines())))
