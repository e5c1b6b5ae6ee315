"""playbooks/teardown.yml on the converged host, as the scenario's last test (pytest runs the files in name
order; molecule's destroy follows): it removes the role's units and files and nothing else of the host's, and a
second run changes nothing."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402

testinfra_hosts = ["ansible://sparks"]

CONFIG = "/etc/sglang"
# One line each, without quotes: written with printf %s.
THEIRS = {"/etc/systemd/system/sglang-mine.service": "# a unit of the operator, not of the role",
          f"{CONFIG}/notes.txt": "notes of the operator"}


def test_teardown_removes_what_the_role_made_and_leaves_the_rest(host):
    for path, content in THEIRS.items():
        host.check_output(f"printf %s '{content}' > {path}")
    result, out = playbook_run.play("teardown.yml")
    assert result.returncode == 0, out[-3000:]
    for name in ("main", "second"):
        assert not host.file(f"/etc/systemd/system/sglang-{name}.service").exists
        assert not host.service(f"sglang-{name}").is_running
        assert not host.file(f"{CONFIG}/{name}.env").exists and not host.file(f"{CONFIG}/{name}.secrets").exists
    assert not host.file(f"{CONFIG}/last-good").exists and not host.file(f"{CONFIG}/sglang-launch.py").exists
    assert host.check_output("docker ps --all --filter name=sglang- --format '{{.Names}}'") == ""
    # What the role did not make is there as it was, and so is the directory that holds it.
    for path, content in THEIRS.items():
        assert host.file(path).content_string == content, path
    result, out = playbook_run.play("teardown.yml")
    assert result.returncode == 0 and all(c["changed"] == 0 for c in playbook_run.recap(out).values()), out[-3000:]
