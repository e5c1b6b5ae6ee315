"""Callback for scripts/rollout_bench.py: one JSON line per host per task (start, end, outcome).

Enabled only by the benchmark (ANSIBLE_CALLBACKS_ENABLED=bench_timeline, BENCH_TIMELINE=<file>);
the default callback keeps printing progress.
"""
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timeline
type: aggregate
short_description: per-host task timeline for the rollout benchmark
description: Writes one JSON line per host and task to the file named by BENCH_TIMELINE.
requirements: [BENCH_TIMELINE set in the environment]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("BENCH_TIMELINE")
        self._starts = {}

    def v2_runner_on_start(self, host, task):
        self._starts[(host.get_name(), task._uuid)] = time.time()

    def _record(self, result, outcome):
        if not self._path:
            return
        host, task = result._host.get_name(), result._task
        end = time.time()
        line = {"host": host, "task": task.get_name(), "action": task.action, "outcome": outcome,
                "changed": bool(result._result.get("changed")),
                "start": self._starts.pop((host, task._uuid), end), "end": end}
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
