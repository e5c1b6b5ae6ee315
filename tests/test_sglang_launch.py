"""sglang_server's container launcher (roles/sglang_server/files/sglang-launch.py) in front of the
SIMULATED server, which logs the API key at startup as SGLang 0.5.3.post3 and 0.5.23 do (docs/upstream.md):
the key reaches the server but no command line, the server's output comes through with the key and
the hub token masked, and signals and the exit status pass through."""
import importlib.util
import signal
import time
from pathlib import Path

import pytest
import requests

from sglang_sim_helpers import LOCALHOST, SIM_PYTHON, Proc, free_port, sim_env

LAUNCHER = Path(__file__).resolve().parent.parent / "roles" / "sglang_server" / "files" / "sglang-launch.py"
KEY = "sk-launch-test-'quoted'\\key"
TOKEN = "hf_launchtesttoken0123"
SECRETS = {"SGLANG_API_KEY": KEY, "HF_TOKEN": TOKEN}


def launcher_module():
    spec = importlib.util.spec_from_file_location("sglang_launch", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launch(tmp_path, name, env=None, args=()):
    port = free_port()
    proc = Proc([SIM_PYTHON, str(LAUNCHER), "--host", LOCALHOST, "--port", str(port),
                 "--model-path", "org/m", *args],
                sim_env({"SGLANG_SIM_STARTUP_DELAY": "0.3", **SECRETS, **(env or {})}), tmp_path / f"{name}.log")
    proc.url = f"http://{LOCALHOST}:{port}"
    return proc


def children(pid):
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def wait_healthy(proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.log()
        try:
            if requests.get(proc.url + "/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError(proc.log())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    proc = launch(tmp_path_factory.mktemp("launch"), "served")
    wait_healthy(proc)
    yield proc
    proc.kill()


def test_the_key_is_in_force_and_on_no_command_line(served):
    assert requests.get(served.url + "/v1/models", timeout=5).status_code == 401
    assert requests.get(served.url + "/v1/models", timeout=5,
                        headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    server_pids = children(served.popen.pid)
    assert len(server_pids) == 1
    for pid in [served.popen.pid, *server_pids]:
        line = cmdline(pid)
        assert KEY not in line and TOKEN not in line, line
    assert "sglang.launch_server" in cmdline(server_pids[0])


def test_the_startup_line_comes_through_with_the_secrets_masked(served):
    log = served.log()
    startup = [line for line in log.splitlines() if "server_args=ServerArgs(" in line]
    assert len(startup) == 1, log
    quote = repr(KEY)[0]  # the key holds a ' and a \: Python's repr quotes it with "
    assert f"api_key={quote}<masked>{quote}" in startup[0], startup[0]
    assert "sk-launch-test" not in log and TOKEN not in log


def test_the_0_5_23_startup_line_comes_through_with_the_secrets_masked(tmp_path):
    """0.5.23 logs its resolved dict (docs/upstream.md): the key is there repr-escaped, as a dict value."""
    proc = launch(tmp_path, "served-0.5.23", env={"SGLANG_SIM_UPSTREAM": "0.5.23"})
    try:
        wait_healthy(proc)
    finally:
        proc.kill()
    log = proc.log()
    startup = [line for line in log.splitlines() if "server_args={" in line]
    assert len(startup) == 1, log
    quote = repr(KEY)[0]
    assert f"'api_key': {quote}<masked>{quote}" in startup[0], startup[0]
    assert "sk-launch-test" not in log and TOKEN not in log


def test_the_repr_escaped_key_and_the_token_are_masked():
    m = launcher_module()
    hidden = m.secrets(SECRETS)
    line = f"a {KEY} b {KEY!r} c {TOKEN}\n".encode()
    quote = repr(KEY)[0].encode()
    assert m.mask(line, hidden) == b"a <masked> b " + quote + b"<masked>" + quote + b" c <masked>\n"
    assert m.secrets({}) == []


def test_sigterm_reaches_the_server_and_its_status_is_the_launchers(tmp_path):
    proc = launch(tmp_path, "term")
    wait_healthy(proc)
    server = children(proc.popen.pid)[0]
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.log()
    assert "Received SIGTERM: shutting down gracefully" in proc.log()
    assert not Path(f"/proc/{server}").exists()
    proc.kill()


def test_a_failed_start_is_the_launchers_failure(tmp_path):
    proc = launch(tmp_path, "crash", env={"SGLANG_SIM_FAIL": "crash_on_start"})
    assert proc.wait(20) == 1, proc.log()
    assert "simulated crash during startup" in proc.log()
    proc.kill()
