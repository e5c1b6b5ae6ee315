#!/usr/bin/env python3
"""`make demo`: run playbooks/sglang.yml against the SIMULATED fleet of inventory/sim, then print
what it built: the endpoints, an answer through the router, Prometheus's targets, the bench table
and where the fleet report is.

    scripts/demo.py            run the playbook (its output streams as it goes), then the summary
    scripts/demo.py summary    the summary only (the fleet must be up and converged)

Everything is read back from the running fleet (the router, Prometheus) and from the files the
playbook wrote; nothing here is a canned result.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
INVENTORY = REPO / "inventory" / "sim" / "hosts.yml"
REPORTS = REPO / "reports" / "demo"
QUESTION = "What is artificial intelligence?"  # the lesson's request
RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")
BIN = Path(sys.executable).parent  # the venv's tools, also when this runs as .venv/bin/python scripts/demo.py


def tool(name):
    return str(BIN / name) if (BIN / name).exists() else name


def log(msg=""):
    print(msg, flush=True)


def role_default(role, name):
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())[name]


def inventory(path):
    out = subprocess.run([tool("ansible-inventory"), "-i", str(path), "--list"], check=True,
                         capture_output=True, text=True, cwd=REPO).stdout
    data = json.loads(out)
    return data, data["_meta"]["hostvars"]


def var(hostvars, host, role, name):
    """A plain inventory value, else the role's default (the summary does not template Jinja)."""
    value = hostvars[host].get(name)
    return value if value is not None and "{{" not in str(value) else role_default(role, name)


def http(method, url, body=None, key="", timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def run_playbook(inv):
    REPORTS.mkdir(parents=True, exist_ok=True)
    log_file = REPORTS / f"ansible-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    cmd = [tool("ansible-playbook"), "-i", str(inv), "playbooks/sglang.yml"]
    log(f"==> ansible-playbook -i {inv} playbooks/sglang.yml   (SIMULATED fleet; full log: {log_file.relative_to(REPO)})")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_DISPLAY_SKIPPED_HOSTS="false",
               ANSIBLE_FORCE_COLOR="false")
    started = time.monotonic()
    with open(log_file, "w") as out, subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            out.write(line)
            # Progress: every play and task as Ansible starts it, and the recap.
            if line.startswith(("PLAY ", "TASK ", "RUNNING HANDLER", "fatal:", "failed:")) or " : ok=" in line:
                log(line.rstrip())
    minutes = (time.monotonic() - started) / 60
    if proc.returncode != 0:
        log(f"\nDEMO FAILED: ansible-playbook exited {proc.returncode} after {minutes:.1f} min; see {log_file}")
        sys.exit(proc.returncode)
    log(f"==> playbooks/sglang.yml done in {minutes:.1f} min")
    return log_file


def latest_report():
    runs = sorted(p for p in REPORTS.glob("*") if p.is_dir() and RUN_ID.match(p.name))
    return runs[-1] if runs else None


def fleet_tables(report_md):
    """The report's per-profile fleet tables and the gate's verdict, as Markdown lines."""
    lines, keep = [], False
    for line in report_md.read_text().splitlines():
        if line.startswith("## "):
            keep = line.startswith("## Fleet")
        if keep or line.startswith("- verdict:"):
            lines.append(line)
    return lines


def summary(inv):
    data, hostvars = inventory(inv)
    sparks = data.get("sparks", {}).get("hosts", [])
    gateways = data.get("gateway", {}).get("hosts", [])
    if not gateways:
        sys.exit(f"{inv}: no host in group 'gateway': the demo needs the router's host")
    gw = gateways[0]
    gw_addr = hostvars[gw]["ansible_host"]
    router = f"http://{gw_addr}:{var(hostvars, gw, 'sglang_router', 'sglang_router_port')}"
    router_metrics = f"http://{gw_addr}:{var(hostvars, gw, 'sglang_router', 'sglang_router_prometheus_port')}/metrics"
    prometheus = f"http://{gw_addr}:{str(var(hostvars, gw, 'sglang_metrics', 'sglang_metrics_prometheus_listen')).rsplit(':', 1)[1]}"
    model = hostvars[sparks[0]]["sglang_server_args"]["served_model_name"]
    # The router's key: its own when the inventory sets one, else the servers' (the role's default).
    key = hostvars[gw].get("sglang_router_api_key") or hostvars[gw].get("sglang_server_api_key") or ""

    log("\n" + "=" * 78)
    log("spark-sglang demo: a SIMULATED fleet (sim Sparks are containers on this machine; no GPU, no")
    log("internet: the SGLang server, the GPU and the hub are doubles, see docs/simulated-fleet.md)")
    log("=" * 78)
    log("\nEndpoints")
    workers = http("GET", f"{router}/workers", key=key)["workers"]
    for w in workers:
        log(f"  SGLang (simulated)  {w['url']}   healthy={w.get('is_healthy')}   behind the router")
    log(f"  router (real sglang-router)  {router}/v1/chat/completions   workers: {len(workers)}")
    if key:
        log(f"  API key (the sim inventory's test value; every request but /health and /metrics needs it): {key}")
    log(f"  router metrics               {router_metrics}")
    targets = http("GET", f"{prometheus}/api/v1/targets?state=active")["data"]["activeTargets"]
    up = [t for t in targets if t["health"] == "up"]
    jobs = sorted({t["labels"]["job"] for t in targets})
    log(f"  Prometheus (Debian's)        {prometheus}   targets up: {len(up)}/{len(targets)} (jobs: {', '.join(jobs)})")
    log("  Grafana dashboard to import  dashboards/sglang-fleet.json")

    log(f"\nA chat completion through the router (model {model}):")
    log(f"  Q: {QUESTION}")
    answer = http("POST", f"{router}/v1/chat/completions",
                  {"model": model, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 64}, key=key)
    text = answer["choices"][0]["message"]["content"].strip()
    log(f"  A (simulated model): {text[:300]}")

    report = latest_report()
    if report is None:
        log("\nNo bench report under reports/demo/ (was the bench skipped?)")
    else:
        log(f"\nBench (bench_serving profiles of the SIMULATED servers), run {report.name}:")
        for line in fleet_tables(report / "report.md"):
            log(f"  {line}")
        plots = sorted(p.name for p in (report / "plots").glob("*.png"))
        log(f"\nFleet report: {report.relative_to(REPO)}/report.md  (report.csv, summary.json,"
            f" plots/: {', '.join(plots)})")
    log("\nTry it:")
    auth = f" -H 'Authorization: Bearer {key}'" if key else ""
    log(f"  curl -s {router}/v1/chat/completions -H 'Content-Type: application/json'{auth} \\")
    log(f"    -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"{QUESTION}\"}}]}}'")
    log(f"  ssh -i .sim/ssh/id_ed25519 spark@{hostvars[sparks[0]]['ansible_host']}   # a simulated Spark")
    log("  make demo-clean   # removes every container, volume and image of the demo")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run", choices=["run", "summary"])
    p.add_argument("--inventory", default=str(INVENTORY))
    args = p.parse_args()
    if args.command == "run":
        run_playbook(args.inventory)
    try:
        return summary(args.inventory)
    except (urllib.error.URLError, OSError, KeyError) as e:
        sys.exit(f"demo summary: could not read the fleet back: {e!r}")


if __name__ == "__main__":
    sys.exit(main())
