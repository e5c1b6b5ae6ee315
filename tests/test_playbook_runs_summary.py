"""scripts/playbook_runs.py: the sum of the verify steps' playbook runs that docs/performance.md quotes."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import playbook_runs  # noqa: E402

RUNS = [{"scenario": "default", "test": "molecule/default/tests/test_a.py::test_x (call)", "seconds": 10.0,
         "controller_cpu": 4.0, "task_results": 30},
        {"scenario": "default", "test": "molecule/default/tests/test_a.py::test_y (call)", "seconds": 5.5,
         "controller_cpu": 2.0, "task_results": 12},
        {"scenario": "fleet", "test": "molecule/fleet/tests/test_b.py::test_z (call)", "seconds": 20.0,
         "controller_cpu": 9.0, "task_results": 100}]


def test_runs_are_summed_per_scenario_and_test_file_most_cpu_first(tmp_path):
    assert playbook_runs.summary(json.dumps(r) for r in RUNS) == {
        ("fleet", "test_b.py"): [1, 20.0, 9.0, 100], ("default", "test_a.py"): [2, 15.5, 6.0, 42]}


def test_the_command_prints_the_table_with_its_total(tmp_path):
    log = tmp_path / "runs.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in RUNS))
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "playbook_runs.py"), str(log)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[2:] == ["| fleet | test_b.py | 1 | 20 | 9 | 100 |", "| default | test_a.py | 2 | 16 | 6 | 42 |",
                       "| **total** | | 3 | 36 | 15 | 142 |"]
