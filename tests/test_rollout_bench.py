"""scripts/rollout_bench.py's arithmetic: the inventories it makes and the table it prints."""
import importlib.util
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rollout_bench", REPO / "scripts" / "rollout_bench.py")
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)


def test_inventory_lists_the_hosts_with_sim_addresses_and_shares_group_vars(tmp_path):
    hosts_file = rb.make_inventory(tmp_path / "inv", ["spark-sim-01", "spark-sim-03"])
    out = subprocess.run(["ansible-inventory", "-i", str(hosts_file), "--host", "spark-sim-03"],
                         capture_output=True, text=True, check=True).stdout
    assert '"ansible_host": "10.213.77.13"' in out
    assert '"ansible_user": "spark"' in out  # from inventory/sim/group_vars
    assert (tmp_path / "inv" / "group_vars").resolve() == REPO / "inventory" / "sim" / "group_vars"


def test_recap_counts_per_host():
    text = ("PLAY RECAP ***\nspark-sim-01               : ok=12   changed=3    unreachable=0    failed=0\n"
            "spark-sim-02               : ok=11   changed=0    unreachable=0    failed=0\n")
    assert rb.recap(text) == {"spark-sim-01": {"ok": 12, "changed": 3}, "spark-sim-02": {"ok": 11, "changed": 0}}


def test_table_ratios():
    results = {"model_bytes": 100, "image_bytes": 1000,
               "fleets": [{"hosts": 1, "cold_s": 200.0, "noop_s": 50.0, "noop_changed": 0, "hub_bytes": 100,
                           "registry_bytes": 1000, "readiness_lag": {"spark-sim-01": {"seconds": 0.6, "task": "x"}}},
                          {"hosts": 3, "cold_s": 260.0, "noop_s": 65.0, "noop_changed": 0, "hub_bytes": 100,
                           "registry_bytes": 1000, "readiness_lag": {"spark-sim-01": {"seconds": 0.4, "task": "x"},
                                                                     "spark-sim-02": {"seconds": 1.1, "task": "x"}}}],
               "naive": [{"hosts": 3, "cold_s": 650.0, "hub_bytes": 300, "registry_bytes": 3000}]}
    rows = rb.table(results).splitlines()
    assert rows[2] == "| this project | 1 | 200.0 | 1.00 | 50.0 | 0 | 0.25 | 1.00 | 1.00 | 0.6 |"
    assert rows[3] == "| this project | 3 | 260.0 | 1.30 | 65.0 | 0 | 0.25 | 1.00 | 1.00 | 1.1 |"
    assert rows[4] == ("| naive: one host after another (x2.50 of this project) | 3 | 650.0 | 3.25 | - | - | - "
                       "| 3.00 | 3.00 | - |")


def test_hub_tree_follows_every_page_of_the_sim_fleets_hub(tmp_path, monkeypatch):
    """hub_tree (which model_bytes sums) against the hub as sim/infra/hub.args starts it (small tree pages),
    its curl run here instead of inside sim-infra."""
    args = (REPO / "sim" / "infra" / "hub.args").read_text().split()
    assert "--tree-page-size" in args
    out = tmp_path / "hub.out"
    with open(out, "w") as stdout:
        proc = subprocess.Popen([sys.executable, str(REPO / "sim" / "hub" / "testhub.py"), "--host", "127.0.0.1",
                                 "--port", "0", "--quiet", *args], stdout=stdout, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not re.search(r"listening on (http://\S+)", out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        url = re.search(r"listening on (http://\S+)", out.read_text()).group(1)
        real_run = rb.run
        monkeypatch.setattr(rb, "run", lambda cmd, **kw: real_run(cmd[3:], **kw))  # drop `docker exec sim-infra`
        for repo in ("sim-org/Qwen3-8B-NVFP4-sim", "sim-org/Gated-sim"):
            with urllib.request.urlopen(f"{url}/_sim/manifest", timeout=10) as r:
                manifest = json.loads(r.read())["repos"][repo]
            files = manifest["commits"][manifest["branches"]["main"]]
            tree = rb.hub_tree(repo, manifest["branches"]["main"], base=url)
            assert sorted(e["path"] for e in tree) == sorted(files)
            assert sum(e["size"] for e in tree) == sum(f["size"] for f in files.values())
    finally:
        proc.kill()
        proc.wait(10)


def test_next_page_reads_the_link_header():
    head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLink: <http://h/a?cursor=x>; rel="next"\r\n'
    assert rb.next_page(head) == "http://h/a?cursor=x"
    assert rb.next_page("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n") is None
