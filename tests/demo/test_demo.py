"""The newcomer's path, end to end: `make demo` with no demo running, its summary, Prometheus on
the gateway scraping the simulated fleet, and the README's real-fleet steps run as written against
it. `make demo-clean` after it: test_demo_clean.py.

Run by `make demo-test`, and by `make test` beside the molecule scenarios. Logs of every command:
reports/demo-test/.
"""
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml
from demo_run import BEFORE, REPO, docker_lines, run, tail

SIM_ALL = yaml.safe_load((REPO / "inventory" / "sim" / "group_vars" / "all" / "sim.yml").read_text())
SIM_HOSTS = yaml.safe_load((REPO / "inventory" / "sim" / "hosts.yml").read_text())["all"]["children"]
SPARKS = list(SIM_HOSTS["sparks"]["hosts"])
GATEWAY = list(SIM_HOSTS["gateway"]["hosts"])[0]
GATEWAY_ADDR = SIM_HOSTS["gateway"]["hosts"][GATEWAY]["ansible_host"]
INFRA_ADDR = SIM_ALL["sim_infra_address"]
SIM_MODEL = "sim-org/Qwen3-8B-NVFP4-sim"


@pytest.fixture(scope="module")
def before():
    """Docker volumes and networks that are not the demo's, before it starts (make demo-clean must keep them;
    test_demo_clean.py reads them from BEFORE)."""
    run("demo-down-first", ["sim/fleet.sh", "down"], timeout=300)  # no demo hosts left from an earlier run
    seen = {"volumes": sorted(docker_lines("volume", "ls", "-q")), "networks": sorted(docker_lines("network", "ls", "-q"))}
    BEFORE.write_text(json.dumps(seen) + "\n")
    return seen


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


@pytest.fixture(scope="module")
def demo(before):
    return run("make-demo", ["make", "demo"], timeout=45 * 60)


def test_make_demo_succeeds_and_prints_the_summary(demo):
    assert demo.returncode == 0, tail(demo)
    out = demo.stdout
    assert "a SIMULATED fleet" in out
    healthy = re.findall(r"SGLang \(simulated\)\s+http://(\S+):30000\s+healthy=True", out)
    assert sorted(healthy) == sorted(SIM_HOSTS["sparks"]["hosts"][h]["ansible_host"] for h in SPARKS), out[-3000:]
    assert re.search(rf"router \(real sglang-router\)\s+http://{re.escape(GATEWAY_ADDR)}:30080/v1/chat/completions\s+workers: 2", out)
    assert re.search(r"targets up: (\d+)/\1 ", out), "Prometheus line missing or not every target up"
    answer = re.search(r"A \(simulated model\): (.+)", out)
    assert answer and len(answer.group(1).split()) >= 3
    for host in SPARKS:  # one row per host in the fleet bench table
        assert re.search(rf"^\s+\| {host} \| main \| \d+ \| \d+ \|", out, re.M), f"no bench row for {host}"
    report = re.search(r"Fleet report: (reports/demo/\d{8}T\d{6}Z)/report.md", out)
    assert report, "no report path in the summary"
    assert (REPO / report.group(1) / "report.md").is_file()
    assert sorted(p.name for p in (REPO / report.group(1) / "plots").glob("*.png")) == ["latency.png", "throughput.png"]


def test_the_demo_fleet_demands_its_api_key(demo):
    assert demo.returncode == 0, "make demo failed"
    key = SIM_ALL["sglang_server_api_key"]
    body = json.dumps({"model": "qwen3-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode()
    urls = [f"http://{GATEWAY_ADDR}:30080"] + [f"http://{SIM_HOSTS['sparks']['hosts'][h]['ansible_host']}:30000" for h in SPARKS]
    for base in urls:
        for headers, expected in (({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": f"Bearer {key}"}, 200)):
            req = urllib.request.Request(f"{base}/v1/chat/completions", data=body, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            assert status == expected, (base, headers.keys(), status)
    # The router has the key from its 0600 secrets file: not in its unit, not on its command line.
    script = ("pid=$(systemctl show -p MainPID --value sglang-router); systemctl cat sglang-router;"
              " tr '\\0' ' ' </proc/$pid/cmdline; stat -c '%a %U' /etc/sglang-router/router.secrets")
    out = subprocess.run(["docker", "exec", GATEWAY, "sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert "ExecStart=" in out and key not in out
    assert out.strip().endswith("600 root")


def test_prometheus_on_the_gateway_scrapes_every_instance_and_the_router(demo):
    assert demo.returncode == 0, "make demo failed"
    prometheus = f"http://{GATEWAY_ADDR}:9090"
    targets = get_json(f"{prometheus}/api/v1/targets?state=active")["data"]["activeTargets"]
    by_job = {}
    for t in targets:
        by_job.setdefault(t["labels"]["job"], []).append(t)
    assert sorted(t["labels"]["host"] for t in by_job["sglang"]) == sorted(SPARKS)
    assert [t["labels"]["host"] for t in by_job["sglang-router"]] == [GATEWAY]
    assert [(t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"] == []
    # Scraped samples, not only targets: the servers' request counters, one series per instance.
    series = get_json(f"{prometheus}/api/v1/query?query=sglang:num_requests_total")["data"]["result"]
    assert sorted(s["metric"]["host"] for s in series) == sorted(SPARKS)
    # The scrape configs for an operator's own Prometheus, written on the controller.
    exported = yaml.safe_load((REPO / "reports" / "demo" / "prometheus" / "sglang-scrape-configs.yml").read_text())
    assert [c["job_name"] for c in exported] == ["sglang", "sglang-router"]


def dashboard_queries():
    dash = json.loads((REPO / "dashboards" / "sglang-fleet.json").read_text())
    for panel in dash["panels"]:
        for p in [panel, *panel.get("panels", [])]:
            for target in p.get("targets", []):
                yield p["title"], target["expr"]


def test_every_grafana_panel_query_returns_series_from_the_demo_prometheus(demo):
    """The shipped dashboard against a real Prometheus that scrapes with the generated config."""
    assert demo.returncode == 0, "make demo failed"
    queries = list(dashboard_queries())
    assert len(queries) >= 10
    empty = []
    for title, expr in queries:
        # Grafana's variables as "All", and a window that covers the demo's bench traffic.
        expr = expr.replace("$__rate_interval", "10m").replace("$sglang_instance", ".*").replace("$host", ".*")
        answer = get_json(f"http://{GATEWAY_ADDR}:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", (title, expr, answer)
        if not answer["data"]["result"]:
            empty.append((title, expr))
    assert empty == [], f"panels with no data: {empty}"


def readme_steps():
    """The ```sh blocks of the README's "Your real fleet" section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your real fleet", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_readme_real_fleet_steps_run_as_written_against_the_sim_inventory(demo, tmp_path):
    assert demo.returncode == 0, "make demo failed"
    steps = readme_steps()
    assert len(steps) >= 6 and "cp -r inventory/example inventory/myfleet" in steps[0], steps[:1]
    # The one block that differs: the sim inventory instead of the example, a sim box, the sim's
    # model and its registry. The token comes from the vault of step 3, not the sim's plain value.
    sim_names = f"""
cp -r inventory/sim {tmp_path}/myfleet
export INVENTORY={tmp_path}/myfleet BOX={SPARKS[0]}
export MODEL={SIM_MODEL} IMAGE={INFRA_ADDR}:5000/lmsysorg/sglang:spark-sim
sed -i '/^model_cache_token:/d' "$INVENTORY/group_vars/sparks/sim.yml"
"""
    script = "set -euo pipefail\n" + sim_names + "\n".join(f"echo '>>> README block {i}'\n{s}" for i, s in enumerate(steps[1:], 2))
    # The sim's upstream registry speaks plain HTTP: skopeo is told so, as for any insecure registry.
    (tmp_path / "home" / ".config" / "containers").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "containers" / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{INFRA_ADDR}:5000"\ninsecure = true\n')
    token = SIM_ALL.get("model_cache_token") or yaml.safe_load(
        (REPO / "inventory" / "sim" / "group_vars" / "sparks" / "sim.yml").read_text())["model_cache_token"]
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": f"{REPO}/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "HF_TOKEN": token,
        "HF_ENDPOINT": f"http://{INFRA_ADDR}:8081",
        "ANSIBLE_FORCE_COLOR": "false",
    }
    p = run("readme-steps", ["bash", "-c", script], timeout=40 * 60, env=env)
    out = p.stdout
    assert p.returncode == 0, tail(p, 60)

    # Step 2: every host answers over SSH and becomes root.
    assert out.count("ping: pong") == len(SPARKS) + 1
    assert len(re.findall(r"\| CHANGED \| rc=0 >>\nroot$", out, re.M)) == len(SPARKS) + 1
    # Step 3: the token went into the vault, encrypted, and comes back out of it.
    vault = (tmp_path / "myfleet" / "group_vars" / "sparks" / "vault.yml").read_text()
    assert vault.startswith("model_cache_token: !vault |") and token not in vault
    assert re.search(rf"model_cache_token\|length['\"]?: {len(token)}$", out, re.M), "token length not read back"
    assert token not in out
    # Step 4: the digest and the commit the sim inventory pins.
    assert (REPO / ".sim" / "images" / "sglang-sim.digest").read_text().strip() in out.split()
    refs = json.loads((REPO / ".sim" / "hub-refs.json").read_text())
    assert refs[SIM_MODEL]["main"] in out.split()
    # Steps 6 and 7: every playbook run ends without a failed or unreachable host.
    recaps = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M)
    assert recaps and all(u == "0" and f == "0" for _, _, u, f in recaps), recaps
    # The demo had converged the fleet: the README's runs (the whole job again, check mode, one
    # stage, one box) change nothing.
    assert all(c == "0" for _, c, _, _ in recaps), recaps
    # Warnings the operator would see on every run: a task name that cannot be rendered, a play pattern
    # that matches nothing.
    warned = [line for line in (out + p.stderr).splitlines() if "template error" in line or "host pattern" in line]
    assert not warned, warned[:5]
    runs = out.count("PLAY RECAP")
    assert runs == 6, f"{runs} playbook runs, expected preflight, sglang, check, tags, deploy check, deploy"
    # The whole job again (run 2) and its check mode (run 3) cover every host of the fleet: the suite's check-mode
    # run of a fleet with a gateway (molecule's fleet scenario leaves it to this test).
    for recap in out.split("PLAY RECAP")[2:4]:
        assert set(re.findall(r"^(\S+)\s+: ok=", recap.split("\n\n", 1)[0], re.M)) == {*SPARKS, GATEWAY}, recap[:2000]
    # The whole job checks each role's inputs once, in its preflight: the stages after it do not check them again.
    whole_job = out.split("PLAY RECAP")[1]
    for task in ("sglang_server : Merge each instance's flags", "model_cache : Ask the hub which commit each revision is",
                 "spark_host : Query the GPU through nvidia-smi", "sglang_router : Check the router settings"):
        assert whole_job.count(f"TASK [{task}]") == 1, (task, whole_job.count(f"TASK [{task}]"))
