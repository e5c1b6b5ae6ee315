"""Callback for measuring the suite's cost: the whole machine's CPU time spent in each task.

The suite is CPU-bound on two cores (docs/performance.md), so what a task costs is the CPU it makes the
controller, Docker and the hosts spend, not its wall time. With the linear strategy one task runs at a
time, so the machine's busy time (/proc/stat) between two task starts belongs to the first of them.
Enabled by ANSIBLE_CALLBACKS_ENABLED=task_cpu and TASK_CPU=<file>: one JSON line per task.
"""
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_cpu
type: aggregate
short_description: machine CPU seconds per task
description: Writes one JSON line per task (name, action, hosts, wall and machine CPU seconds) to TASK_CPU.
requirements: [TASK_CPU set in the environment, Linux /proc/stat]
"""


def busy_seconds():
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]   # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_cpu"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("TASK_CPU")
        self._open = None   # (task, start wall, start busy, hosts)

    def _close(self):
        if self._open and self._path:
            task, wall, busy, hosts = self._open
            line = {"task": task.get_name(), "action": task.action, "hosts": len(hosts),
                    "wall": round(time.time() - wall, 3), "cpu": round(busy_seconds() - busy, 3)}
            with open(self._path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        self._open = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._open = (task, time.time(), busy_seconds(), set())

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_runner_on_start(self, host, task):
        if self._open:
            self._open[3].add(host.get_name())

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_stats(self, stats):
        self._close()
