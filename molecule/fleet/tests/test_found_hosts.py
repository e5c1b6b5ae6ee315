"""Hosts found as real ones are (molecule/shared/prepare.yml, `sim_found_as` in molecule.yml): one with
NVIDIA's documented toolkit source, one with the toolkit preinstalled and pinned from its own repository
(as DGX OS ships it). The converged fleet kept both as they were found, and apt still works on them."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
from playbook_run import flat, recap, run_playbook  # noqa: E402

HOST_VARS = yaml.safe_load((Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "molecule.yml").read_text())[
    "provisioner"]["inventory"]["host_vars"]
FOUND = {v["sim_found_as"]: host for host, v in HOST_VARS.items() if "sim_found_as" in v}
OURS = "/etc/apt/sources.list.d/nvidia-container-toolkit.sources"
NVIDIAS = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
TOOLKIT_URI = "http://sim-infra:8080/stable/deb"


def sh(host, command):
    return subprocess.run(["docker", "exec", host, "sh", "-c", command], capture_output=True, text=True, timeout=120)


def test_the_scenario_has_both_kinds_of_found_host():
    assert set(FOUND) == {"nvidia_list", "dgx_os"} and set(FOUND.values()) <= set(playbook_run.hosts("sparks"))


def test_a_host_with_nvidias_source_keeps_it_writes_none_and_apt_works():
    host = FOUND["nvidia_list"]
    assert sh(host, f"test -e {OURS}").returncode == 1
    listed = sh(host, f"cat {NVIDIAS}").stdout
    assert f"{TOOLKIT_URI}/$(ARCH) /" in listed and "nvidia-container-toolkit-keyring.gpg" in listed, listed
    policy = sh(host, "apt-cache policy nvidia-container-toolkit")
    assert policy.returncode == 0 and "Conflicting" not in policy.stderr, policy.stderr
    assert "Installed: 1.17.8-1~sim" in policy.stdout and f"{TOOLKIT_URI}/amd64" in policy.stdout, policy.stdout


def test_a_dgx_os_like_host_keeps_its_own_pinned_toolkit_and_gets_no_source():
    host = FOUND["dgx_os"]
    sources = sh(host, f"grep -rlF {TOOLKIT_URI} /etc/apt")
    assert sources.returncode == 1 and sources.stdout == "", sources.stdout  # the role added no source
    policy = sh(host, "apt-cache policy nvidia-container-toolkit")
    assert policy.returncode == 0, policy.stderr
    assert "1.17.8-1~sim 1001" in policy.stdout and "file:/opt/sim-os-repo" in policy.stdout, policy.stdout  # pinned
    # The toolkit in use all the same: Docker has the nvidia runtime (nvidia-ctk wrote it).
    assert '"nvidia"' in sh(host, "cat /etc/docker/daemon.json").stdout


def test_a_version_the_preinstalled_toolkit_is_not_fails_in_the_preflight_naming_it():
    host = FOUND["dgx_os"]
    result = run_playbook("preflight.yml", "--limit", host, extra={"spark_host_toolkit_version": "1.16.0-1"})
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert (f"{host}: spark_host_toolkit_version is 1.16.0-1, but the host has nvidia-container-toolkit "
            "1.17.8-1~sim from its own repositories") in flat(out), out[-3000:]
    assert recap(out)[host]["changed"] == 0
