#!/usr/bin/env python3
"""Rollout benchmark of the SIMULATED fleet (`make bench`).

For sim fleets of each size (default 1 and 3 hosts, reached over SSH as a real fleet is), from
bare hosts: the cold converge of playbooks/sglang.yml up to verified (the bench stage off), a
no-op re-run, the bytes the test hub and the upstream registry served against one copy of the
model and the image, and the readiness lag (the simulated server logs when /health turns 200;
the play moves on when the task waiting for it ends). Then the naive baseline: the same hosts
converged one after another, each a fleet of its own (its own hub download and image pull).

Writes reports/rollout-bench/<UTC id>/{results.json,table.md,*.log,*.timeline.jsonl} and prints
the table. It replaces any simulated fleet of `make demo` (same containers): run `make demo` again
after it.
"""
import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIM_INVENTORY = REPO / "inventory" / "sim"
INFRA = "spark-sim-infra"
INSTANCE = "main"  # inventory/sim serves one instance per host
READY = "The server is fired up and ready to roll!"
# The bench stage measures serving, not provisioning; the smoke test needs a preloaded image.
PLAY_ARGS = ["-e", json.dumps({"sglang_bench_enabled": False, "spark_host_smoke_test": False})]


def log(msg):
    print(f"rollout-bench: {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def sim_vars():
    """Subnet and sim-infra address of inventory/sim (the bench's fleets live on the same network)."""
    text = (SIM_INVENTORY / "group_vars" / "all" / "sim.yml").read_text()
    return {k: re.search(rf"^{k}: (\S+)", text, re.M).group(1) for k in ("sim_network_subnet", "sim_infra_address")}


def make_inventory(path, hosts):
    """An inventory of these sim hosts that shares inventory/sim's group_vars."""
    path.mkdir(parents=True, exist_ok=True)
    prefix = sim_vars()["sim_infra_address"].rsplit(".", 1)[0]
    lines = ["# SIMULATED fleet made by scripts/rollout_bench.py", "all:", "  children:", "    sparks:", "      hosts:"]
    for name in hosts:
        lines += [f"        {name}:", f"          ansible_host: {prefix}.{10 + int(name.rsplit('-', 1)[1])}"]
    (path / "hosts.yml").write_text("\n".join(lines) + "\n")
    link = path / "group_vars"
    if not link.exists():
        link.symlink_to(SIM_INVENTORY / "group_vars")
    return path / "hosts.yml"


def fleet(action, inventory):
    env = dict(os.environ, SIM_INVENTORY=str(inventory), SIM_PRELOAD_IMAGE="0")
    subprocess.run([str(REPO / "sim" / "fleet.sh"), action], check=True, env=env)


def playbook(inventory, out_dir, label):
    """Run sglang.yml; returns (seconds, recap). Progress: the PLAY lines; the whole log in out_dir."""
    timeline = out_dir / f"{label}.timeline.jsonl"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "scripts" / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_timeline", BENCH_TIMELINE=str(timeline),
               # Facts of an earlier fleet with the same host names must not be reused.
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(out_dir / "facts" / label.split(".")[0]))
    cmd = ["ansible-playbook", "-i", str(inventory), str(REPO / "playbooks" / "sglang.yml"), *PLAY_ARGS]
    start = time.monotonic()
    with open(out_dir / f"{label}.log", "w", encoding="utf-8") as logf:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = []
        for line in proc.stdout:
            logf.write(line)
            output.append(line)
            if line.startswith("PLAY ["):
                log(f"  {label}: " + line.strip(" *\n"))
        rc = proc.wait()
    seconds = time.monotonic() - start
    text = "".join(output)
    if rc != 0:
        sys.exit(f"rollout-bench: {label} failed (exit {rc}); see {out_dir / (label + '.log')}\n{text[-3000:]}")
    return seconds, recap(text)


def recap(text):
    counts = {}
    for host, ok, changed in re.findall(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)", text, re.M):
        counts[host] = {"ok": int(ok), "changed": int(changed)}
    return counts


def infra_curl(url, *headers, dump_headers=False):
    """GET url from inside sim-infra; with dump_headers the response's header block comes first."""
    return run(["docker", "exec", INFRA, "curl", "-fsS", *(["-D", "-"] if dump_headers else []),
                *sum((["-H", h] for h in headers), []), url])


def hub_token():
    args = (REPO / "sim" / "infra" / "hub.args").read_text().split()
    return args[args.index("--token") + 1]


def next_page(head):
    """The rel="next" URL of a response's Link header (curl -D's header block), or None."""
    links = re.findall(r"^link:\s*(.*)$", head, re.I | re.M)
    found = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', links[-1]) if links else None
    return found.group(1) if found else None


def hub_tree(repo, revision, base="http://127.0.0.1:8081"):
    """Every entry of the hub's tree listing: its pages, by Link rel="next", as huggingface_hub reads them."""
    url, entries = f"{base}/api/models/{repo}/tree/{revision}?recursive=true", []
    while url:
        # run() reads text, so the header block's CRLFs arrive as newlines.
        head, _, body = infra_curl(url, f"Authorization: Bearer {hub_token()}", dump_headers=True).partition("\n\n")
        entries += json.loads(body)
        url = next_page(head)
    return entries


def model_bytes(hosts_file):
    """One copy of every model the sim inventory lists, from the hub's own file tree."""
    refs = json.loads((REPO / ".sim" / "hub-refs.json").read_text())
    text = (SIM_INVENTORY / "group_vars" / "sparks" / "sim.yml").read_text()
    total = 0
    for repo in re.findall(r"- repo: (\S+)", text):
        total += sum(e["size"] for e in hub_tree(repo, refs[repo]["main"]) if e["type"] == "file")
    return total


def image_bytes():
    digest = (REPO / ".sim" / "images" / "sglang-sim.digest").read_text().strip()
    manifest = json.loads(infra_curl(f"http://127.0.0.1:5000/v2/lmsysorg/sglang/manifests/{digest}",
                                     "Accept: application/vnd.docker.distribution.manifest.v2+json"))
    return manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])


def served_bytes():
    """(hub bytes, registry blob bytes) served since sim-infra started."""
    hub = json.loads(infra_curl("http://127.0.0.1:8081/_sim/stats"))["bytes_served"]
    logs = subprocess.run(["docker", "logs", INFRA], capture_output=True, text=True, check=True)
    registry = sum(int(n) for n in re.findall(r'"GET /v2/[^ ]+/blobs/sha256:[0-9a-f]{64} HTTP/1\.1" 200 (\d+)',
                                              logs.stdout + logs.stderr))
    return hub, registry


def ready_time(host):
    """When the instance's /health turned 200 (the simulated server's ready line, docker's timestamp)."""
    logs = run(["docker", "exec", host, "sh", "-c", f"docker logs --timestamps sglang-{INSTANCE} 2>&1"])
    stamps = [line.split()[0] for line in logs.splitlines() if READY in line]
    if not stamps:
        return None
    whole, _, frac = stamps[-1].rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp() + float(f"0.{frac or 0}")


def readiness_lags(out_dir, label, hosts):
    """Per host: from ready to the end of the task that was running then (when the play moved on)."""
    tasks = [json.loads(line) for line in (out_dir / f"{label}.timeline.jsonl").read_text().splitlines()]
    lags = {}
    for host in hosts:
        ready = ready_time(host)
        waiting = [t for t in tasks if t["host"] == host and t["start"] <= ready <= t["end"]] if ready else []
        if waiting:
            lags[host] = {"seconds": round(waiting[-1]["end"] - ready, 2), "task": waiting[-1]["task"]}
    return lags


def fleet_run(size, out_dir):
    hosts = [f"spark-sim-{i:02d}" for i in range(1, size + 1)]
    inventory = make_inventory(out_dir / f"inventory-{size}", hosts)
    fleet("down", inventory)
    fleet("up", inventory)
    log(f"fleet of {size}: cold converge (bare to verified)")
    cold, cold_recap = playbook(inventory, out_dir, f"fleet{size}.cold")
    lags = readiness_lags(out_dir, f"fleet{size}.cold", hosts)
    hub, registry = served_bytes()
    log(f"fleet of {size}: no-op re-run")
    noop, noop_recap = playbook(inventory, out_dir, f"fleet{size}.noop")
    return {"hosts": size, "cold_s": round(cold, 1), "noop_s": round(noop, 1),
            "noop_changed": sum(c["changed"] for c in noop_recap.values()),
            "cold_changed": sum(c["changed"] for c in cold_recap.values()),
            "hub_bytes": hub, "registry_bytes": registry, "readiness_lag": lags}


def naive_run(size, out_dir):
    """Each host a fleet of its own, one after another (every host downloads and pulls itself)."""
    hosts = [f"spark-sim-{i:02d}" for i in range(1, size + 1)]
    fleet("down", make_inventory(out_dir / f"inventory-{size}", hosts))
    fleet("up", out_dir / f"inventory-{size}" / "hosts.yml")
    total = 0.0
    for name in hosts:
        log(f"naive {size}: {name} alone")
        seconds, _ = playbook(make_inventory(out_dir / f"inventory-naive-{name}", [name]), out_dir, f"naive{size}.{name}")
        total += seconds
    hub, registry = served_bytes()
    return {"hosts": size, "cold_s": round(total, 1), "hub_bytes": hub, "registry_bytes": registry}


def table(results):
    one_model, one_image = results["model_bytes"], results["image_bytes"]
    fleets = results["fleets"]
    base = fleets[0]["cold_s"]
    rows = ["| run | hosts | cold converge (s) | T(N)/T(1) | no-op re-run (s) | no-op changed | no-op/cold "
            "| hub bytes / model | registry bytes / image | readiness lag max (s) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for f in fleets:
        lag = max((v["seconds"] for v in f["readiness_lag"].values()), default=None)
        rows.append(f"| this project | {f['hosts']} | {f['cold_s']} | {f['cold_s'] / base:.2f} | {f['noop_s']} "
                    f"| {f['noop_changed']} | {f['noop_s'] / f['cold_s']:.2f} | {f['hub_bytes'] / one_model:.2f} "
                    f"| {f['registry_bytes'] / one_image:.2f} | {lag if lag is not None else 'n/a'} |")
    for n in results["naive"]:
        same = next((f for f in fleets if f["hosts"] == n["hosts"]), None)
        ratio = f" (x{n['cold_s'] / same['cold_s']:.2f} of this project)" if same else ""
        rows.append(f"| naive: one host after another{ratio} | {n['hosts']} | {n['cold_s']} | {n['cold_s'] / base:.2f} "
                    f"| - | - | - | {n['hub_bytes'] / one_model:.2f} | {n['registry_bytes'] / one_image:.2f} | - |")
    return "\n".join(rows) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1,3", help="fleet sizes, comma separated (default 1,3)")
    p.add_argument("--naive", type=int, default=3, help="size of the naive baseline fleet (0: skip; default 3)")
    p.add_argument("--out", default=str(REPO / "reports" / "rollout-bench"))
    p.add_argument("--keep", action="store_true", help="leave the last fleet running")
    a = p.parse_args()
    sizes = sorted({int(s) for s in a.sizes.split(",")})
    if sizes[0] < 1 or sizes[-1] > 9:
        sys.exit("rollout-bench: --sizes must be within 1..9 (host addresses .11-.19)")
    out_dir = Path(a.out) / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True)
    log(f"SIMULATED fleets of {sizes} hosts; reports in {out_dir}")
    results = {"simulated": True, "sizes": sizes, "machine": machine(), "fleets": [], "naive": []}
    for size in sizes:
        results["fleets"].append(fleet_run(size, out_dir))
        results.setdefault("model_bytes", model_bytes(None))
        results.setdefault("image_bytes", image_bytes())
    if a.naive:
        results["naive"].append(naive_run(a.naive, out_dir))
    if not a.keep:
        fleet("down", out_dir / f"inventory-{sizes[-1]}" / "hosts.yml")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    md = table(results)
    (out_dir / "table.md").write_text(md)
    print("\n" + md + f"\nmodel: {results['model_bytes']} bytes, image: {results['image_bytes']} bytes; "
          f"results: {out_dir / 'results.json'}")


def machine():
    return {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "kernel": os.uname().release, "python": sys.version.split()[0],
            "ansible": run(["ansible", "--version"]).splitlines()[0]}


if __name__ == "__main__":
    main()
