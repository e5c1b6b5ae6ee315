"""ansible-playbook against the scenario's converged host: check mode reports no change, and nothing already there
is installed again (wheelhouse, pip, apt) nor the image's --help read again; a venv whose Python is gone is rebuilt, and NVIDIA's own toolkit source added since is used instead of the
role's. (The last test changes the host and converges it again.)
Bad inputs: test_bad_inputs.py."""
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
PLAYBOOK = REPO / "playbooks" / "sglang.yml"

testinfra_hosts = ["ansible://sparks"]


def run_playbook(*args, extra=None, playbook=PLAYBOOK):
    return playbook_run.run_playbook(playbook.name, *args, extra=extra)


def recap(output):
    return playbook_run.recap(output)[playbook_run.hosts("sparks")[0]]


@pytest.fixture(scope="module")
def check_run():
    result = run_playbook("--check", "--diff")
    return result, result.stdout + result.stderr


def test_check_mode_on_converged_host_reports_no_change(check_run):
    result, out = check_run
    assert result.returncode == 0, out[-3000:]
    assert recap(out)["changed"] == 0, out[-3000:]


@pytest.mark.parametrize("task", [
    # python_venv's probe found every requirement installed, and dpkg every OS package.
    "python_venv : Wheelhouse", "python_venv : Install the pinned packages", "python_venv : OS packages for venv and pip",
    # spark_host's preflight asked dpkg: the apt tools and the toolkit at its pinned version are there.
    "spark_host : Install what apt repository management needs (python3-debian for deb822_repository)",
    "spark_host : Install the toolkit packages",
    # The image's --help was kept by an earlier run for this image (test_the_image_flags_are_kept_once_per_image).
    "sglang_server : Read the flags the image accepts"])
def test_a_converged_host_gets_no_install_and_no_help_run(check_run, task):
    """Where nothing is missing the run skips the task (each run is a module start on the host; --help on the real
    image is a container start and an import of SGLang)."""
    _, out = check_run
    block = re.search(rf"^TASK \[{re.escape(task)}\].*?\n(?=TASK |PLAY )", out, re.M | re.S)
    assert block and "skipping: [" in block.group(0) and "ok: [" not in block.group(0), (block or out[-3000:])


def test_the_image_flags_are_kept_once_per_image(host):
    """What the checks compare the flags with: the image's own --help, kept with the image reference it came from,
    for root only (in the role's 0700 configuration directory)."""
    image = host.check_output("docker inspect --format '{{.Config.Image}}' sglang-main")
    kept = host.file("/etc/sglang/image-flags")
    assert (kept.user, kept.group, kept.mode) == ("root", "root", 0o600)
    first, _, text = kept.content_string.partition("\n")
    assert first == image and "--mem-fraction-static" in text and "--model-path" in text, kept.content_string[:500]


VENV = "/home/spark/venv/gb10-training"


OURS = "/etc/apt/sources.list.d/nvidia-container-toolkit.sources"
NVIDIAS = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"


def nvidias_documented_source(host):
    """What NVIDIA's install guide writes (a .gpg keyring and a one-line .list with $(ARCH)), for the URI of
    the role's own source: beside it, apt refuses every source (Conflicting values set for option Signed-By)."""
    uri = host.run(f"sed -n 's/^URIs: //p' {OURS}").stdout.strip()
    assert uri.endswith("/amd64"), uri
    keyring = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
    host.run(f"gpg --dearmor < /usr/share/keyrings/nvidia-container-toolkit-keyring.asc > {keyring}")
    host.run(f"echo 'deb [signed-by={keyring}] {uri[:-len('amd64')]}$(ARCH) /' > {NVIDIAS}")
    assert "Conflicting values set for option Signed-By" in host.run("apt-get update").stderr


def test_host_stage_repairs_a_venv_and_uses_nvidias_own_toolkit_source(host):
    # As after an OS upgrade that removed the interpreter the venv was built with.
    host.run(f"ln -sfn /usr/bin/python3.gone {VENV}/bin/python3")
    assert host.run(f"{VENV}/bin/python -c 'import sys'").rc != 0
    nvidias_documented_source(host)
    result = run_playbook(playbook=REPO / "playbooks" / "host.yml")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert recap(out)["changed"] > 0
    assert "TASK [python_venv : Remove a venv whose Python is gone]" in out
    version = host.run(f"runuser -u spark -- {VENV}/bin/hf version")
    assert version.rc == 0 and "2.4.0" in version.stdout, version.stderr
    # The role's own source is gone, NVIDIA's is kept untouched, and apt works again.
    assert f"uses the toolkit source already on the host ({NVIDIAS}); writes none of its own" in playbook_run.flat(out)
    assert not host.file(OURS).exists and host.file(NVIDIAS).exists
    update = host.run("apt-get update")
    assert update.rc == 0 and "Conflicting" not in update.stderr, update.stderr
