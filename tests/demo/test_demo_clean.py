"""`make demo-clean` after the demo (tests/demo/test_demo.py): no container, volume, network or image of the
demo is left, .sim/ and reports/demo/ are gone, and nothing that was there before the demo is touched.

It removes the sim images and .sim/, which the molecule scenarios use too: `make test` runs it last, after
every other stage (scripts/test_suite.py); `make demo-test` right after test_demo.py."""
import json

from demo_run import BEFORE, REPO, docker_lines, run, tail


def test_demo_clean_leaves_no_container_volume_network_or_image():
    assert BEFORE.is_file(), f"{BEFORE} is missing: run tests/demo/test_demo.py first"
    before = {k: set(v) for k, v in json.loads(BEFORE.read_text()).items()}
    # Something to clean: the demo's hosts are up (a clean of nothing would prove nothing).
    assert docker_lines("ps", "-aq", "--filter", "label=org.spark-sim.fleet=demo"), "no demo host is running"
    p = run("make-demo-clean", ["make", "demo-clean"], timeout=600)
    assert p.returncode == 0, tail(p)
    assert run("leftovers", ["sim/fleet.sh", "leftovers"], timeout=120).stdout.strip() == ""
    assert docker_lines("ps", "-aq", "--filter", "label=org.spark-sim.fleet=demo") == set()
    assert docker_lines("images", "-q", "--filter", "label=org.spark-sim.simulated=true") == set()
    assert docker_lines("volume", "ls", "-q") - before["volumes"] == set()
    assert docker_lines("network", "ls", "-q") - before["networks"] == set()
    assert not (REPO / ".sim").exists() and not (REPO / "reports" / "demo").exists()
