#!/usr/bin/env python3
"""Run the test suite's stages, some side by side, and print a timing table at the end.

A stage starts once the stages it needs have passed (it is skipped if one did not) and one of the
--jobs slots is free; the last stage waits for every other one. Each stage's output goes to
reports/test/<stage>.log and is printed whole when the stage ends, so the log reads stage by stage.
The table (each stage's result, start, wall time and the CPU time of its processes, and the total)
is printed at the end and kept in reports/test/timings.md; after it, the last lines of each failed stage.
The CPU column counts the stage's own processes on this machine (Ansible, molecule, pytest), not Docker's
or the sim hosts'. Exit status 0 only if every chosen stage passed.

Usage: scripts/test_suite.py [--jobs N] [STAGE ...]   (no STAGE: all of them, as `make test` runs it)
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOGS = REPO / "reports" / "test"
BIN = REPO / ".venv" / "bin"


def molecule(scenario):
    return [str(BIN / "molecule"), "test", "-s", scenario]


SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))
# name: (command, the stages it needs). In order of priority: the longest first.
STAGES = {
    "venv": (["make", "venv"], []),
    # Beside the venv: the image build needs none of it (make sim-images), and both mostly wait on downloads.
    "images": (["make", "sim-images"], []),
    **{f"molecule-{s}": (molecule(s), ["venv", "images"]) for s in SCENARIOS},
    "demo": ([str(BIN / "pytest"), "tests/demo/test_demo.py"], ["venv", "images"]),
    "lint": (["make", "lint"], ["venv"]),
    "pytest": (["make", "pytest"], ["venv"]),
}
# make demo-clean removes the sim images and .sim/, which the other stages use: it runs after all of them.
LAST = ("demo-clean", [str(BIN / "pytest"), "tests/demo/test_demo_clean.py"])
# Stages that start only once these have ended, passed or not: lint and pytest need only the venv, but beside
# the image build they slow it down, and every scenario waits for the images; later they fill the cores the
# last scenarios leave idle.
AFTER = {"lint": ["images"], "pytest": ["images"]}


def can_start(name, needs, done, chosen):
    """Whether a stage may start: the stages it needs have passed and those it comes after have ended."""
    return (all(d in done for d in needs[name])
            and all(a in done for a in AFTER.get(name, []) if a in chosen))


def stage_env(environ=os.environ):
    """The stages' environment: the venv's tools first on PATH. make puts them there, but on a fresh clone
    `python3 scripts/test_suite.py` starts before the venv exists, and a pyenv shim then puts its own
    interpreter's bin first: molecule's verify ran that interpreter's pytest, without testinfra."""
    return {**environ, "PATH": f"{BIN}{os.pathsep}{environ.get('PATH', '')}",
            # Each pytest (molecule's verify too) lists its slowest tests: where the suite's time goes.
            "PYTEST_ADDOPTS": environ.get("PYTEST_ADDOPTS", "--durations=15")}


def busy_seconds(stat="/proc/stat"):
    """The machine's CPU time spent busy so far, over all cores (user, nice, system, irq, softirq, steal):
    the whole work of a run, Docker's and the sim hosts' included, which the per-stage column leaves out."""
    with open(stat) as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def failure_tails(results, logs=LOGS, lines=12):
    """The last lines of each failed stage's log (pytest's summary of failed tests), printed after the table:
    CI's record keeps only the end of the output, where the table alone does not say which test failed."""
    return "".join(f"\n=== the last {lines} lines of {name}'s log ({logs / name}.log):\n"
                   + "".join((logs / f"{name}.log").read_text(errors="replace").splitlines(True)[-lines:])
                   for name, result in results.items() if result.startswith("FAIL"))


def clock(seconds):
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("TEST_JOBS", "4")))
    parser.add_argument("stages", nargs="*", metavar="STAGE", help=", ".join([*STAGES, LAST[0]]))
    args = parser.parse_args()
    chosen = args.stages or [*STAGES, LAST[0]]
    unknown = set(chosen) - {*STAGES, LAST[0]}
    if unknown:
        parser.error(f"no stage {', '.join(sorted(unknown))}")
    commands = {**{n: c for n, (c, _) in STAGES.items()}, LAST[0]: LAST[1]}
    needs = {n: [d for d in STAGES[n][1] if d in chosen] if n in STAGES else [o for o in chosen if o != n]
             for n in chosen}

    LOGS.mkdir(parents=True, exist_ok=True)
    start, busy = time.monotonic(), busy_seconds()
    pending, running, done = list(chosen), {}, {}  # done: name -> (result, started, seconds, cpu seconds)
    while pending or running:
        for name in list(pending):
            if name != LAST[0] and any(done.get(d, ("PASS",))[0] != "PASS" for d in needs[name]):
                pending.remove(name)
                done[name] = ("SKIPPED", None, 0.0, 0.0)
                print(f"=== {name}: skipped, a stage it needs did not pass", flush=True)
            elif can_start(name, needs, done, chosen) and len(running) < args.jobs:
                pending.remove(name)
                log = open(LOGS / f"{name}.log", "w")
                running[name] = (subprocess.Popen(commands[name], cwd=REPO, env=stage_env(), stdout=log,
                                                  stderr=subprocess.STDOUT),
                                 log, time.monotonic())
                print(f"=== {name}: started at {clock(time.monotonic() - start)}: {' '.join(commands[name])}", flush=True)
        for name, (proc, log, began) in list(running.items()):
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # the usage covers its reaped descendants
            if pid == 0:
                continue
            proc.returncode = os.waitstatus_to_exitcode(status)
            log.close()
            del running[name]
            result = "PASS" if proc.returncode == 0 else f"FAIL (exit {proc.returncode})"
            done[name] = (result, began - start, time.monotonic() - began, usage.ru_utime + usage.ru_stime)
            print(f"=== {name}: {result} after {clock(done[name][2])}; its output ({LOGS / name}.log):", flush=True)
            sys.stdout.write((LOGS / f"{name}.log").read_text(errors="replace"))
            print(f"=== end of {name}: {result}", flush=True)
        time.sleep(1)

    passed = all(done[n][0] == "PASS" for n in chosen)
    rows = ["| stage | result | started | wall | CPU |", "|---|---|---|---|---|"]
    rows += [f"| {n} | {done[n][0]} | {'-' if done[n][1] is None else clock(done[n][1])} | {clock(done[n][2])} "
             f"| {clock(done[n][3])} |" for n in chosen]
    rows.append(f"| **total** | {'PASS' if passed else 'FAIL'} | | {clock(time.monotonic() - start)} "
                f"| {clock(sum(d[3] for d in done.values()))} |")
    rows.append(f"| **machine** (all {os.cpu_count()} cores busy, Docker and the sim hosts included) | | | | "
                f"{clock(busy_seconds() - busy)} |")
    table = "\n".join(rows)
    title = f"{args.jobs} stages at a time; wall and CPU time, min:s"
    (LOGS / "timings.md").write_text(f"# Timing of scripts/test_suite.py ({title})\n\n{table}\n")
    print(f"\nTiming ({title}):\n{table}", flush=True)
    sys.stdout.write(failure_tails({n: done[n][0] for n in chosen}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
