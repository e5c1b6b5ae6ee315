"""The catalogue of malformed inventories (molecule/shared/data/bad_inputs.yml) against the
converged host. Every case's vars must be refused by the fleet preflight with a message naming the
variable (and saying what the case's `says` gives, where it has one), with no host changed and no
byte fetched from the hub.

Each case is a block of its own in one generated playbook: the case's vars on a block that holds the
preflight's tasks for the case's role (taken from the Sparks' play of playbooks/preflight.yml, so they
cannot drift, with the sglang_server tasks whose plan the later roles read), and a rescue that records
the first failed task and its result. The cases go in two such runs side by side. The first case of
each role also runs as extra vars through playbooks/sglang.yml itself, which must stop in the
preflight play (the whole preflight, every role's tasks in order). Once per session; the tally is written to
$MOLECULE_EPHEMERAL_DIRECTORY/reliability/bad_inputs.json and printed in pytest's summary."""
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
from playbook_run import flat, hub_bytes, recap, run_playbook  # noqa: E402

CASES = yaml.safe_load((REPO / "molecule" / "shared" / "data" / "bad_inputs.yml").read_text())
IDS = [case["id"] for case in CASES]
# The roles whose inputs the preflight checks on the sparks (sglang_router runs on the gateway).
ROLES = ("spark_host", "python_venv", "registry_mirror", "model_cache", "sglang_server", "sglang_verify", "sglang_bench")


def role_of(case):
    return next(role for role in ROLES if any(name.startswith(role + "_") for name in case["vars"]))


# The roles whose preflight tasks set facts that a later role's checks read (sglang_server_plan and
# sglang_server_serving_plan, the default instances of sglang_verify and sglang_bench).
NEEDS = {"sglang_verify": ["sglang_server"], "sglang_bench": ["sglang_server"]}
# Through sglang.yml itself: the first case of each role.
THROUGH_SGLANG_YML = [next(c["id"] for c in CASES if role_of(c) == role) for role in ROLES]
BATCHES = 2
# The first failed task of a run: `fatal: [host]: FAILED! =>` (or `failed: [host] (item=...) =>` in a loop),
# then its result as indented YAML.
FAILURE = re.compile(r"^(?:fatal|failed): \[.*\n((?:[ \t]+.*\n|\n)*)", re.M)
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def message_of(result):
    """A failed task's own message: its argument_specs errors or msg (of the first failed item, in a loop).
    Only that: the task's assertion and argument_spec_data would name the variable whatever went wrong."""
    if not isinstance(result, dict):
        return None
    if result.get("results"):
        result = next((item for item in result["results"] if isinstance(item, dict) and item.get("failed")), result)
    return flat(str(result.get("argument_errors") or result.get("msg") or ""))


def problems_with(case, message):
    if message is None:
        return ["no failed task with a message"]
    found = []
    if not re.search(rf"\b{re.escape(case['names'])}\b", message):
        found.append(f"the failure does not name {case['names']}: {message[:500]}")
    if case.get("says") and case["says"] not in message:
        found.append(f"the failure does not say {case['says']!r}: {message[:500]}")
    return found


def preflight_play():
    plays = yaml.safe_load((REPO / "playbooks" / "preflight.yml").read_text())
    play = plays[0]
    assert play["hosts"] == "sparks" and play["tasks"], play
    return play


def tasks_for(play, role):
    """The preflight play's tasks of the role and of the roles it needs, in the play's order."""
    roles = {role, *NEEDS.get(role, [])}
    tasks = [task for task in play["tasks"]
             if (task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role"))["name"] in roles]
    assert tasks, role
    return tasks


def batch_playbook(cases, results):
    """One play: per case a block with the case's vars and its role's preflight tasks, and a rescue that records."""
    play = preflight_play()
    record = ("{{ catalogue_refusals | default({}) | combine({'%s': {'task': ansible_failed_task.name, "
              "'result': ansible_failed_result}}) }}")
    tasks = [{"name": f"Case {case['id']}", "vars": case["vars"], "block": tasks_for(play, role_of(case)),
              "rescue": [{"name": f"Record the refusal of {case['id']}",
                          "ansible.builtin.set_fact": {"catalogue_refusals": record % case["id"]}}]}
             for case in cases]
    tasks.append({"name": "Write the refusals on the controller", "delegate_to": "localhost", "become": False,
                  "changed_when": False,
                  "ansible.builtin.copy": {"content": "{{ catalogue_refusals | default({}) | to_json }}",
                                           "dest": str(results), "mode": "0600"}})
    return [{"name": "The catalogue's bad inputs, one block each", "hosts": play["hosts"],
             "gather_facts": play["gather_facts"], "tasks": tasks}]


def run_batch(index, cases):
    """Run one batch; returns {id: outcome}."""
    work = EPHEMERAL / "reliability" / f"bad_inputs_batch{index}"
    work.mkdir(parents=True, exist_ok=True)
    playbook, results = work / "catalogue.yml", work / "refusals.json"
    results.unlink(missing_ok=True)
    playbook.write_text(yaml.safe_dump(batch_playbook(cases, results), sort_keys=False))
    start = time.monotonic()
    run = run_playbook(str(playbook), timeout=1800)
    out = run.stdout + run.stderr
    seconds = round((time.monotonic() - start) / len(cases), 1)
    counts = recap(out)
    refusals = json.loads(results.read_text()) if results.is_file() else {}
    outcomes = {}
    for case in cases:
        problems = [] if run.returncode == 0 else [f"the batch run failed (exit {run.returncode})"]
        problems += [f"hosts changed in the batch: {counts}"] if any(c["changed"] for c in counts.values()) else []
        refusal = refusals.get(case["id"])
        if refusal is None:
            problems.append("no task failed: the input was accepted")
        else:
            problems += problems_with(case, message_of(refusal["result"]))
        outcomes[case["id"]] = {"id": case["id"], "refused": not problems, "problems": problems, "seconds": seconds,
                                "changed": sum(c["changed"] for c in counts.values()),
                                "task": (refusal or {}).get("task"), "tail": out[-3000:]}
    return outcomes


def through_sglang_yml(case):
    """Run sglang.yml with the case's vars as extra vars; it must stop in the preflight play."""
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
        changed = sum(counts["changed"] for counts in recap(out).values())
    except AssertionError:
        changed = None
        problems.append("no PLAY RECAP")
    if changed:
        problems.append(f"{changed} changes")
    match = FAILURE.search(out)
    try:
        result = yaml.safe_load(textwrap.dedent(match.group(1))) if match else None
    except yaml.YAMLError:
        result = None
    problems += problems_with(case, message_of(result))
    return {"id": case["id"], "refused": not problems, "problems": problems, "changed": changed,
            "seconds": round(time.monotonic() - start, 1), "tail": out[-3000:]}


@pytest.fixture(scope="session")
def outcomes(session_summary):
    """Every case once per session: {"batch": {id: outcome}, "sglang.yml": {id: outcome}, "hub_bytes": (before, after)}.
    Writes the report and the summary line."""
    before = hub_bytes()
    batches = [CASES[i::BATCHES] for i in range(BATCHES)]
    # Runs at once must not share the jsonfile fact cache (its writes are not atomic); each run gathers its facts.
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(BATCHES + 1) as pool:
        patch.setenv("ANSIBLE_CACHE_PLUGIN", "ansible.builtin.memory")
        batch_runs = [pool.submit(run_batch, i, cases) for i, cases in enumerate(batches)]
        whole = list(pool.map(through_sglang_yml, [c for c in CASES if c["id"] in THROUGH_SGLANG_YML]))
        batch = {k: v for run in batch_runs for k, v in run.result().items()}
    after = hub_bytes()
    refused = sum(o["refused"] for o in batch.values())
    report = EPHEMERAL / "reliability" / "bad_inputs.json"
    report.write_text(json.dumps({
        "tried": len(batch), "refused_cleanly": refused, "changed": sum(o["changed"] for o in batch.values()),
        "hub_bytes_served": after - before,
        "cases": [{key: batch[i][key] for key in ("id", "refused", "task", "seconds")} for i in IDS],
        "through_sglang_yml": [{key: o[key] for key in ("id", "refused", "changed", "seconds")} for o in whole]},
        indent=1) + "\n")
    session_summary(f"bad inputs: {len(batch)} tried, {refused} refused cleanly in the preflight's tasks, "
                    f"{sum(o['refused'] for o in whole)} of {len(whole)} stopped sglang.yml in its preflight, "
                    f"{after - before} bytes from the hub")
    return {"batch": batch, "sglang.yml": {o["id"]: o for o in whole}, "hub_bytes": (before, after)}


def test_catalogue_is_well_formed():
    assert len(CASES) >= 30 and len(set(IDS)) == len(IDS), IDS
    for case in CASES:
        assert {"id", "vars", "names", "why"} <= set(case) <= {"id", "vars", "names", "why", "says"}, case
        assert case["vars"] and isinstance(case["names"], str) and isinstance(case.get("says", ""), str), case
    covered = {role for case in CASES for name in case["vars"] for role in ROLES if name.startswith(role + "_")}
    assert covered == set(ROLES), set(ROLES) - covered


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input_is_refused_in_preflight_without_change(case, outcomes):
    outcome = outcomes["batch"][case["id"]]
    assert outcome["refused"], f"{case['why']}: {'; '.join(outcome['problems'])}\n{outcome['tail']}"


@pytest.mark.parametrize("case_id", THROUGH_SGLANG_YML)
def test_sglang_yml_stops_in_its_preflight_on_a_bad_input(case_id, outcomes):
    outcome = outcomes["sglang.yml"][case_id]
    assert outcome["refused"], f"{case_id}: {'; '.join(outcome['problems'])}\n{outcome['tail']}"


def test_no_bad_input_fetched_anything_from_the_hub(outcomes):
    before, after = outcomes["hub_bytes"]
    assert after == before
