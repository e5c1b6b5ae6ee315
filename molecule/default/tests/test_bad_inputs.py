"""The catalogue of malformed inventories (molecule/shared/data/bad_inputs.yml) against the
converged host: each case's vars, as extra vars, must stop playbooks/sglang.yml in the fleet
preflight with a message naming the variable, and no host may change. The runs go three at a time,
once per session; the tally is written to $MOLECULE_EPHEMERAL_DIRECTORY/reliability/bad_inputs.json
and printed in pytest's summary."""
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
from playbook_run import flat, recap, run_playbook  # noqa: E402

CASES = yaml.safe_load((REPO / "molecule" / "shared" / "data" / "bad_inputs.yml").read_text())
IDS = [case["id"] for case in CASES]
WORKERS = 3
# The first failed task: `fatal: [host]: FAILED! =>` (or `failed: [host] (item=...) =>` in a loop),
# then its result as indented YAML.
FAILURE = re.compile(r"^(?:fatal|failed): \[.*\n((?:[ \t]+.*\n|\n)*)", re.M)
# The roles whose inputs the preflight checks on the sparks (sglang_router runs on the gateway).
ROLES = ("spark_host", "python_venv", "registry_mirror", "model_cache", "sglang_server", "sglang_verify", "sglang_bench")


def failure_message(out):
    """The first failed task's own message (its argument_specs errors or msg), or None. Only that:
    the task's assertion and argument_spec_data would name the variable whatever went wrong."""
    match = FAILURE.search(out)
    if not match:
        return None
    try:
        result = yaml.safe_load(textwrap.dedent(match.group(1)))
    except yaml.YAMLError:
        return None
    return flat(str(result.get("argument_errors") or result.get("msg") or "")) if isinstance(result, dict) else None


def attempt(case):
    """Run sglang.yml with the case's vars; return what the test and the report need."""
    start = time.monotonic()
    try:
        result = run_playbook("sglang.yml", extra=case["vars"])
        out, returncode = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as exc:
        out, returncode = f"timed out after {exc.timeout} s", None
    problems = []
    if returncode == 0:
        problems.append("the playbook succeeded")
    if "PLAY [Preflight the whole fleet" not in out or "PLAY [Prepare the Spark hosts]" in out:
        problems.append("it did not stop in the preflight play")
    try:
        changed = {host: counts["changed"] for host, counts in recap(out).items()}
    except AssertionError:
        changed = {}
        problems.append("no PLAY RECAP")
    if any(changed.values()):
        problems.append(f"hosts changed: {changed}")
    message = failure_message(out)
    if message is None:
        problems.append("no failed task with a message")
    elif not re.search(rf"\b{re.escape(case['names'])}\b", message):
        problems.append(f"the failure does not name {case['names']}: {message[:500]}")
    seconds = round(time.monotonic() - start, 1)
    return {"id": case["id"], "refused": not problems, "changed": sum(changed.values()), "seconds": seconds,
            "changed_hosts": [host for host, n in changed.items() if n], "problems": problems, "tail": out[-3000:]}


@pytest.fixture(scope="session")
def outcomes(session_summary):
    """Every case, run once per session; {id: outcome}. Writes the report and the summary line."""
    # Runs at once must not share the jsonfile fact cache (its writes are not atomic); the
    # preflight gathers its facts anyway.
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(WORKERS) as pool:
        patch.setenv("ANSIBLE_CACHE_PLUGIN", "ansible.builtin.memory")
        results = list(pool.map(attempt, CASES))
    refused = sum(r["refused"] for r in results)
    hosts_changed = len({host for r in results for host in r["changed_hosts"]})
    report = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reliability" / "bad_inputs.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({
        "tried": len(results), "refused_cleanly": refused, "hosts_changed": hosts_changed,
        "cases": [{key: r[key] for key in ("id", "refused", "changed", "seconds")} for r in results]}, indent=1) + "\n")
    session_summary(f"bad inputs: {len(results)} tried, {refused} refused cleanly, {hosts_changed} hosts changed")
    return {r["id"]: r for r in results}


def test_catalogue_is_well_formed():
    assert len(CASES) >= 30 and len(set(IDS)) == len(IDS), IDS
    for case in CASES:
        assert set(case) == {"id", "vars", "names", "why"} and case["vars"] and isinstance(case["names"], str), case
    covered = {role for case in CASES for name in case["vars"] for role in ROLES if name.startswith(role + "_")}
    assert covered == set(ROLES), set(ROLES) - covered


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input_is_refused_in_preflight_without_change(case, outcomes):
    outcome = outcomes[case["id"]]
    assert outcome["refused"], f"{case['why']}: {'; '.join(outcome['problems'])}\n{outcome['tail']}"
