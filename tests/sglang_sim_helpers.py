"""Shared helpers for the sglang-sim contract tests (no conftest.py on purpose).

Processes are started in their own session and always killed by their process
group; every wait is a bounded poll. Only loopback addresses are used.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
# SPARK_SIM_DIR: test a copy of sim/ instead (docs/upstream.md, "Drift").
SIM_DIR = Path(os.environ.get("SPARK_SIM_DIR") or REPO / "sim").resolve()
SIM_PATH = SIM_DIR / "sglang_sim"
# The image runs Debian's python3; use it when present, else the test interpreter.
SIM_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
LOCALHOST = "127.0.0.1"


def free_port():
    return free_ports(1)[0]


def free_ports(count):
    """`count` distinct free ports: all are held open together, so none is handed out twice."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind((LOCALHOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def sim_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGLANG_SIM_")}
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONPATH"] = str(SIM_PATH)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep sim/ clean: the image build copies it
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


MODULE_UTILS = REPO / "module_utils"
# `python module.py args.json`, with the project's module_utils importable as ansible.module_utils.* (as Ansible
# packs them into the module it sends).
_RUN_MODULE = ("import runpy, sys, ansible.module_utils as m; m.__path__.append(sys.argv[1]); "
               "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def load_module(path, name):
    """Import a module file of library/ into this process, the project's module_utils importable."""
    import importlib.util

    import ansible.module_utils
    if str(MODULE_UTILS) not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(MODULE_UTILS))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_ansible_module(path, args, tmp_path, check_mode=False, timeout=90):
    """Run an Ansible module file as Ansible does (`python module.py args.json`, the project's module_utils
    importable); returns (result dict, raw stdout + stderr). The exit code must agree with the result's `failed`."""
    args = dict(args, **({"_ansible_check_mode": True} if check_mode else {}))
    argfile = tmp_path / ("args-%d.json" % time.monotonic_ns())
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, "-c", _RUN_MODULE, str(MODULE_UTILS), str(path), str(argfile)],
                          cwd=str(REPO), capture_output=True, text=True, timeout=timeout)
    argfile.unlink()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, "no JSON from the module (rc=%d): %s %s" % (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert (proc.returncode != 0) == bool(result.get("failed")), (proc.returncode, result)
    return result, proc.stdout + proc.stderr


def start_sim_hub(tmp, *args):
    """The sim hub (sim/hub/testhub.py) on a free port with `args`; returns (process, url). The
    caller kills the process."""
    out = Path(tmp) / "hub.out"
    with open(out, "w") as f:
        proc = subprocess.Popen([sys.executable, str(SIM_DIR / "hub" / "testhub.py"), "--port", "0", "--quiet", *args],
                                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not re.search(r"listening on (\S+)", out.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            pytest.fail("the sim hub did not start: " + out.read_text())
        time.sleep(0.05)
    return proc, re.search(r"listening on (\S+)", out.read_text()).group(1)


def run_module(module, args, env=None, timeout=60, python=SIM_PYTHON, cwd=None):
    """Run `python -m module args` to completion; returns CompletedProcess (text)."""
    return subprocess.run([python, "-m", module, *args], env=sim_env(env), capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


class Proc:
    """A background process with its output in a file, killed by process group."""

    def __init__(self, cmd, env, log_path):
        self.cmd = cmd
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(5) is None:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5)
        else:
            # the leader is gone; make sure nothing it started lives on
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._log.close()


class SimServer(Proc):
    def __init__(self, args, env, log_path, port=None):
        self.port = port or free_port()
        self.url = f"http://{LOCALHOST}:{self.port}"
        cmd = [SIM_PYTHON, "-m", "sglang.launch_server", "--host", LOCALHOST,
               "--port", str(self.port), *args]
        super().__init__(cmd, sim_env(env), log_path)

    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return requests.get(self.url + path, **kw)

    def post(self, path, json=None, **kw):
        kw.setdefault("timeout", 30)
        return requests.post(self.url + path, json=json, **kw)

    def wait_listening(self, timeout=10):
        """Poll until the HTTP port answers; returns the first /health status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise AssertionError(f"server exited {self.poll()}:\n{self.log()}")
            try:
                return requests.get(self.url + "/health", timeout=2).status_code
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"server did not listen within {timeout}s:\n{self.log()}")

    def wait_healthy(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise AssertionError(f"server exited {self.poll()}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not healthy within {timeout}s:\n{self.log()}")


def refused(port, host=LOCALHOST):
    """True when nothing listens on host:port (the connection is refused)."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def metric_value(text, name):
    """Sum of the samples of one metric name (exact match) in Prometheus text."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sample, _, value = line.rpartition(" ")
        if sample.split("{", 1)[0] == name:
            total += float(value)
            found = True
    assert found, f"metric {name} not found"
    return total


def sse_events(resp):
    """Decoded `data:` payloads of an SSE response ('[DONE]' kept as a string)."""
    out = []
    for raw in resp.iter_lines():
        line = raw.decode() if isinstance(raw, bytes) else raw
        if not line.strip():
            continue
        assert line.startswith("data: "), line
        payload = line[len("data: "):]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


@pytest.fixture
def spawn(tmp_path):
    """Factory: spawn(args, env=None) -> started SimServer, killed at teardown."""
    procs = []

    def _spawn(args, env=None, name=None, port=None):
        name = name or f"sim{len(procs)}"
        p = SimServer(list(args), env, tmp_path / f"{name}.log", port=port)
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        p.kill()


def module_server(tmp_path_factory, args, env, name):
    """Start a healthy SimServer for a module-scoped fixture (caller must kill)."""
    p = SimServer(list(args), env, tmp_path_factory.mktemp(name) / f"{name}.log")
    try:
        p.wait_healthy(15)
    except BaseException:
        p.kill()
        raise
    return p
