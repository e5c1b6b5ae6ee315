"""One model over two SIMULATED Sparks (multi-node tensor parallel): the head serves once both
ranks have joined, the worker runs with rank 1 and the head's address and answers only a health
check server, only the head is in the router; bad groups and a broken interconnect fail in the preflight; a flag change restarts the
group as one server, and the whole job run again afterwards changes nothing (the scenario's idempotence);
a member's restart brings the group back by itself."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
from playbook_run import flat, play  # noqa: E402

testinfra_hosts = ["ansible://gateway"]

HEAD, WORKER = playbook_run.hosts("sparks")
GROUP = {"members": [HEAD, WORKER], "interface": "eth0", "dist_init_port": 20000}
ARGS = {"model_path": "/models/Qwen3-8B-NVFP4", "served_model_name": "qwen3-8b", "enable_metrics": True, "tp_size": 2}


def on(spark, command, check=True):
    proc = subprocess.run(["docker", "exec", spark, "sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert not check or proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def address(spark):
    return subprocess.run(["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", spark],
                          capture_output=True, text=True, check=True).stdout.strip()


def argv(spark):
    return json.loads(on(spark, "docker inspect --format '{{json .Config.Cmd}}' sglang-main"))


def started_at(spark):
    return on(spark, "docker inspect --format '{{.State.StartedAt}}' sglang-main")


def head_health():
    try:
        return requests.get(f"http://{address(HEAD)}:30000/health", timeout=5).status_code
    except requests.RequestException:
        return None


def wait_head_healthy(seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if head_health() == 200:
            return True
        time.sleep(1)
    return False


def test_the_two_sparks_serve_as_one_server():
    assert head_health() == 200
    head, worker = argv(HEAD), argv(WORKER)
    dist = f"{address(HEAD)}:20000"
    for words, rank in ((head, "0"), (worker, "1")):
        flags = words[words.index("--dist-init-addr"):] if "--dist-init-addr" in words else []
        assert flags[:2] == ["--dist-init-addr", dist], words
        assert words[words.index("--node-rank") + 1] == rank and words[words.index("--nnodes") + 1] == "2"
        assert words[words.index("--tp-size") + 1] == "2"
    env = on(WORKER, "docker inspect --format '{{json .Config.Env}}' sglang-main")
    assert "NCCL_SOCKET_IFNAME=eth0" in env and "GLOO_SOCKET_IFNAME=eth0" in env
    # Only the head serves the API; the worker, as SGLang 0.5.3.post3's rank > 0 (docs/upstream.md,
    # Multi-node), a dummy health server on its port: /health, /metrics (enable_metrics), else 404.
    worker_url = f"http://{address(WORKER)}:30000"
    assert requests.get(worker_url + "/health", timeout=5).status_code == 200
    assert requests.get(worker_url + "/metrics", timeout=5).status_code == 200
    assert requests.get(worker_url + "/v1/models", timeout=5).status_code == 404
    info = requests.get(f"http://{address(HEAD)}:30000/get_server_info", timeout=5).json()
    assert info["nnodes"] == 2 and sorted(info["joined_ranks"]) == [0, 1]
    r = requests.post(f"http://{address(HEAD)}:30000/v1/chat/completions", timeout=60, json={
        "model": "qwen3-8b", "max_tokens": 32, "messages": [{"role": "user", "content": "What is artificial intelligence?"}]})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_only_the_head_is_in_the_router(host):
    workers = json.loads(host.check_output("curl -fsS http://127.0.0.1:30080/workers"))["workers"]
    assert [(w["url"], w["is_healthy"]) for w in workers] == [(f"http://{HEAD}:30000", True)]
    r = json.loads(host.check_output(
        "curl -fsS http://127.0.0.1:30080/v1/chat/completions -H 'Content-Type: application/json' "
        "-d '{\"model\": \"qwen3-8b\", \"max_tokens\": 16, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}'"))
    assert r["choices"][0]["message"]["content"]


BAD_GROUPS = {
    "wrong interface": (dict(GROUP, interface="ib9"), None, f"{HEAD}: sglang_server_multinode.interface ib9 does not exist"),
    "head address not on the interface": (dict(GROUP, head_address="10.254.0.9"), None,
                                          "has no address 10.254.0.9 (sglang_server_multinode.head_address) on eth0"),
    "member not in the inventory": (dict(GROUP, members=[HEAD, "no-such-spark"]), None, "sglang_server_multinode needs members"),
    "dp without dp attention": (GROUP, dict(ARGS, dp_size=2), "dp_size > 1 over several nodes needs enable_dp_attention"),
}


@pytest.mark.parametrize("case", sorted(BAD_GROUPS))
def test_a_bad_group_fails_in_the_preflight_naming_host_and_cause(case):
    group, args, message = BAD_GROUPS[case]
    extra = {"sglang_server_multinode": group, **({"sglang_server_args": args} if args else {})}
    result, out = play("sglang.yml", extra=extra)
    assert result.returncode != 0
    assert message in flat(out), out[-3000:]
    assert "PLAY [Prepare the Spark hosts]" not in out
    assert all(c["changed"] == 0 for c in playbook_run.recap(out).values()), playbook_run.recap(out)


def test_an_unreachable_head_fails_in_the_preflight_and_a_link_local_one_is_warned_about():
    # A link-local address (as NVIDIA's two-Spark netplan gives the CX-7 ports) on the head's interface,
    # which the worker has no route to (a blackhole route).
    on(HEAD, "ip addr add 169.254.0.1/32 dev eth0")
    on(WORKER, "ip route add blackhole 169.254.0.1/32")
    try:
        result, out = play("sglang.yml", extra={"sglang_server_multinode": dict(GROUP, head_address="169.254.0.1")})
    finally:
        on(WORKER, "ip route del blackhole 169.254.0.1/32", check=False)
        on(HEAD, "ip addr del 169.254.0.1/32 dev eth0", check=False)
    assert result.returncode != 0
    assert f"{WORKER}: cannot reach the head {HEAD} at 169.254.0.1:20000 (dist-init port, over eth0)" in flat(out), out[-3000:]
    assert f"{HEAD}: the interconnect address of the head, 169.254.0.1, is link-local (169.254.0.0/16)" in flat(out), out[-3000:]
    assert all(c["changed"] == 0 for c in playbook_run.recap(out).values())
    assert "PLAY [Prepare the Spark hosts]" not in out
    assert on(HEAD, "systemctl is-active sglang-dist-probe-20000", check=False) != "active"


@pytest.mark.parametrize("blocked", [None, 3], ids=["free", "port-plus-3-in-use"])
def test_dp_attention_ports_are_checked_in_the_preflight(blocked):
    """With DP attention the head also listens on dist_init_port + 1 to + 5 (docs/upstream.md, Multi-node):
    the worker must reach all six, and none may be held by another process on the head. Another
    dist_init_port than the running group's, so that its ports are free."""
    group = dict(GROUP, dist_init_port=20100)
    if blocked:
        on(HEAD, "systemd-run --unit sglang-test-blocker --collect --property RuntimeMaxSec=120 /usr/bin/python3 -c "
                 f"\"import socket, time; s = socket.create_server(('', {20100 + blocked})); time.sleep(120)\"")
    try:
        result, out = play("preflight.yml", extra={"sglang_server_multinode": group,
                                                   "sglang_server_args": dict(ARGS, enable_dp_attention=True, dp_size=2)})
    finally:
        on(HEAD, "systemctl stop sglang-test-blocker", check=False)
    assert on(HEAD, "systemctl is-active sglang-dist-probe-20100", check=False) != "active"
    if blocked:
        assert result.returncode != 0
        assert (f"{HEAD}: port 20103 is in use on the head, and SGLang with enable_dp_attention listens on "
                "sglang_server_multinode.dist_init_port + 1 to + 5 (20101, 20102, 20103, 20104, 20105)") in flat(out), out[-3000:]
    else:
        assert result.returncode == 0, out[-3000:]
        assert all(f"ok: [{WORKER}] => (item={port})" in out for port in range(20100, 20106)), out[-3000:]


def test_a_flag_change_restarts_the_group_and_it_comes_back():
    before = {s: started_at(s) for s in (HEAD, WORKER)}
    result, out = play("deploy.yml", extra={"sglang_server_args": dict(ARGS, mem_fraction_static=0.75)})
    assert result.returncode == 0, out[-4000:]
    assert all(started_at(s) != before[s] for s in (HEAD, WORKER))
    assert "--mem-fraction-static" in argv(WORKER) and head_health() == 200
    assert f"{HEAD}: changed (main replaced)" in out and f"{WORKER}: changed (main replaced)" in out
    result, out = play("deploy.yml")
    assert result.returncode == 0 and head_health() == 200, out[-4000:]
    # The scenario's run without change (molecule's idempotence step is left out of its sequence: this is it):
    # the whole job, after the change and its undoing, changes nothing on any host.
    result, out = play("sglang.yml")
    counts = playbook_run.recap(out)
    assert result.returncode == 0 and set(counts) == {HEAD, WORKER, *playbook_run.hosts("gateway")}, out[-4000:]
    assert all(c["changed"] == 0 for c in counts.values()), counts
    # A fleet of groups only: the deploy's play for single servers has no hosts, and says so without a warning.
    assert "host pattern" not in out and "template error" not in out, [l for l in out.splitlines() if "WARNING" in l]


def test_a_member_restart_brings_the_group_back_by_itself():
    head_before = started_at(HEAD)
    on(WORKER, "systemctl restart sglang-main")
    # The head loses rank 1, exits, and systemd starts it again; it serves once rank 1 rejoins.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and on(HEAD, "docker inspect --format {{.State.StartedAt}} sglang-main", check=False) in ("", head_before):
        time.sleep(1)
    assert started_at(HEAD) != head_before
    assert wait_head_healthy()
