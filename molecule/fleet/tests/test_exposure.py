"""Exposure of the SGLang servers on the converged fleet (three SIMULATED Sparks, the gateway running the router):
the serving ports' allow-list (sglang_server_firewall_allow, an nftables table of the role's own) lets the listed
sources in and drops the others, never restarts SGLang, changes nothing on a second run and goes away with an empty
list; an instance given a specific args.host listens on that address only.

Only the first Spark (TARGET) is changed: extra vars apply to every host, so each run is `deploy.yml --limit TARGET`
(as test_fleet.py does for the second); the router on the gateway is reached over HTTP, not through the play, and the
other Sparks keep their converged configuration. Every test puts TARGET back as converged."""
import json
import os
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

NETWORK = "spark-sim-fleet"
SPARKS = playbook_run.hosts("sparks")
GATEWAY = playbook_run.hosts("gateway")[0]
TARGET, ALLOWED, OTHER = SPARKS  # the one changed, a source allowed in, a source kept out
TARGET_WORKER = f"http://{TARGET}:30000"
WORKERS = [f"http://{spark}:30000" for spark in SPARKS]
MODEL = "qwen3-8b"
LIMIT = ("--limit", TARGET)


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def addresses(container):
    """The container's addresses on the fleet network (IPv4, and IPv6 if the network has it)."""
    fmt = f'{{{{with index .NetworkSettings.Networks "{NETWORK}"}}}}{{{{.IPAddress}}}} {{{{.GlobalIPv6Address}}}}{{{{end}}}}'
    found = sh("docker", "inspect", "--format", fmt, container).split()
    assert found, f"{container} has no address on {NETWORK}"
    return found


def on(container, command):
    return sh("docker", "exec", container, "sh", "-c", command)


def curl(source, url):
    """(curl's exit status, HTTP status) of a GET from inside a sim host, bounded to 3 s."""
    r = subprocess.run(["docker", "exec", source, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", url],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip()


def started_at():
    return on(TARGET, "docker inspect --format '{{.State.StartedAt}}' sglang-main")


def table():
    """`nft list table inet sglang_server` on the target: (exit status, output)."""
    r = subprocess.run(["docker", "exec", TARGET, "nft", "list", "table", "inet", "sglang_server"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def router():
    return f"http://{addresses(GATEWAY)[0]}:30080"


def healthy_workers():
    return sorted(w["url"] for w in requests.get(router() + "/workers", timeout=10).json()["workers"] if w["is_healthy"])


def wait_all_healthy(seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthy_workers() == WORKERS:
            return True
        time.sleep(1)
    return False


def chat_through_the_router(times=3):
    """A few completions through the round-robin router: one of each three goes to every worker."""
    for _ in range(times):
        r = requests.post(router() + "/v1/chat/completions", timeout=60, json={
            "model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "What is artificial intelligence?"}]})
        assert r.status_code == 200, r.text


def deploy(extra=None):
    """deploy.yml on the target only; returns (output, the target's changed count)."""
    result, out = play("deploy.yml", *LIMIT, extra=extra)
    assert result.returncode == 0, out[-4000:]
    return out, playbook_run.recap(out)[TARGET]["changed"]


def listening(port=30000):
    """The local addresses listening on the port on the target (ss -ltnH)."""
    return sorted(line.split()[3] for line in on(TARGET, f"ss -ltnH 'sport = :{port}'").splitlines())


@pytest.fixture
def restore_target():
    """Whatever a test did, the target ends as converged (no allow-list, the inventory's flags) and every worker
    is healthy in the router again."""
    yield
    result, out = play("deploy.yml", *LIMIT)
    assert result.returncode == 0, out[-4000:]
    assert table()[0] != 0 and listening() == ["0.0.0.0:30000"]
    assert wait_all_healthy(), healthy_workers()


def test_a_bad_allow_list_entry_fails_the_preflight_naming_it():
    # The preflight is read-only: every Spark (the extra var is everyone's) fails with its own message.
    result, out = play("preflight.yml", extra={"sglang_server_firewall_allow": ["10.0.0.0/8", "10.0.0.1/33", ALLOWED]})
    assert result.returncode != 0
    assert all(playbook_run.recap(out)[s]["failed"] == 1 for s in SPARKS), out[-3000:]
    text = flat(out)
    assert f"{TARGET}: sglang_server_firewall_allow must be a list of IPv4/IPv6 addresses" in text, out[-3000:]
    assert f'"10.0.0.1/33", "{ALLOWED}"' in text and '"10.0.0.0/8"' not in text, out[-3000:]


def test_the_allow_list_admits_only_its_sources_without_restarting_sglang(restore_target):
    gateway, allowed = addresses(GATEWAY), addresses(ALLOWED)
    before = started_at()
    assert curl(OTHER, TARGET_WORKER + "/health") == (0, "200")  # reachable before

    out, changed = deploy({"sglang_server_firewall_allow": gateway + allowed})
    assert changed > 0, out[-3000:]
    assert f"{TARGET}: unchanged" in flat(out), out[-3000:]  # no instance replaced
    rc, listed = table()
    assert rc == 0 and "hook prerouting priority -200" in listed and all(a in listed for a in gateway + allowed), listed
    assert on(TARGET, "systemctl is-active nftables-sglang-server.service") == "active"
    assert on(TARGET, "systemctl is-enabled nftables-sglang-server.service") == "enabled"

    assert curl(ALLOWED, TARGET_WORKER + "/health") == (0, "200")
    assert curl(GATEWAY, TARGET_WORKER + "/health") == (0, "200")
    assert curl(TARGET, "http://127.0.0.1:30000/health") == (0, "200")  # loopback always
    # Dropped, not refused: curl runs into its 3 s limit (exit 28) while the server is up for the others.
    assert curl(OTHER, TARGET_WORKER + "/health") == (28, "000")
    # The other Sparks have no table: OTHER still serves ALLOWED.
    assert curl(ALLOWED, f"http://{OTHER}:30000/health") == (0, "200")

    # A second run changes nothing. It also lasts longer than the router needs to drop a worker it cannot
    # reach (health checks every second, three failures), so the router's view after it counts.
    out, changed = deploy({"sglang_server_firewall_allow": gateway + allowed})
    assert changed == 0, out[-3000:]
    assert TARGET_WORKER in healthy_workers()
    chat_through_the_router()

    # A new list reloads the table only: ALLOWED is out now, SGLang still runs as before.
    out, changed = deploy({"sglang_server_firewall_allow": gateway})
    assert changed > 0 and f"{TARGET}: unchanged" in flat(out), out[-3000:]
    assert curl(ALLOWED, TARGET_WORKER + "/health") == (28, "000")
    assert curl(GATEWAY, TARGET_WORKER + "/health") == (0, "200")
    assert started_at() == before
    assert TARGET_WORKER in healthy_workers()

    # An empty list removes the table and its unit; everyone reaches the server again.
    out, changed = deploy({"sglang_server_firewall_allow": []})
    assert changed > 0, out[-3000:]
    assert table()[0] != 0
    assert on(TARGET, "ls /etc/systemd/system/nftables-sglang-server.service /etc/nftables.d/sglang_server.nft"
                      " 2>/dev/null | wc -l") == "0"
    assert curl(OTHER, TARGET_WORKER + "/health") == (0, "200")
    assert curl(ALLOWED, TARGET_WORKER + "/health") == (0, "200")
    assert started_at() == before


def test_a_specific_host_address_is_the_only_one_listening(restore_target):
    address = addresses(TARGET)[0]
    assert listening() == ["0.0.0.0:30000"]
    bind = {"sglang_server_instances": [{"name": "main", "args": {"host": address}}]}

    out, changed = deploy(bind)
    assert changed > 0 and f"{TARGET}: changed (main replaced)" in flat(out), out[-3000:]
    assert listening() == [f"{address}:30000"]
    assert curl(TARGET, "http://127.0.0.1:30000/health") == (7, "000")  # nothing on loopback: refused
    assert curl(TARGET, f"http://{address}:30000/health") == (0, "200")
    assert curl(ALLOWED, TARGET_WORKER + "/health") == (0, "200")
    # The router reaches it by name, which resolves to that address.
    assert wait_all_healthy(), healthy_workers()

    # A run without change waits on /health at that address (not 127.0.0.1) and changes nothing.
    out, changed = deploy(bind)
    assert changed == 0 and f"{TARGET}: unchanged" in flat(out), out[-3000:]

    # verify and bench reach it at that address too, through the one instance-URL rule (bench used 127.0.0.1).
    result, out = play("verify.yml", *LIMIT, extra=bind)
    assert result.returncode == 0 and playbook_run.recap(out)[TARGET]["failed"] == 0, out[-3000:]
    reports = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "bench-at-a-specific-address"
    tiny = {"sglang_bench_profiles": {"tiny": {"dataset_name": "sharegpt", "num_prompts": 2, "max_concurrency": 1}},
            "sglang_bench_run": ["tiny"], "sglang_bench_baseline": "none", "sglang_bench_reports_dir": str(reports)}
    result, out = play("bench.yml", *LIMIT, extra={**bind, **tiny})
    assert result.returncode == 0, out[-3000:]
    [lines] = reports.glob(f"*/{TARGET}/main/tiny.jsonl")
    assert json.loads(lines.read_text().splitlines()[0])["completed"] == 2
