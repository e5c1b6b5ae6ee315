"""testinfra checks of one converged SIMULATED Spark (molecule scenario `default`)."""
import json

testinfra_hosts = ["ansible://sparks"]

SIM_IMAGE = "spark-sim/sglang:sim"


def test_systemd_is_pid1_and_booted(host):
    assert host.process.get(pid=1).comm == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_inner_docker_engine_runs(host):
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    assert host.run("docker info --format '{{.Driver}}'").stdout.strip() == "overlay2"


def test_login_user_is_not_root_and_in_docker_group(host):
    spark = host.user("spark")
    assert spark.exists and spark.uid != 0
    assert "sudo" in spark.groups
    assert "docker" in spark.groups


def test_login_user_reaches_docker_without_sudo(host):
    result = host.run("runuser -u spark -- docker run --rm --gpus all %s true", SIM_IMAGE)
    assert result.rc == 0, result.stderr


VENV = "/home/spark/venv/gb10-training"


def test_operator_venv_belongs_to_the_user(host):
    venv = host.file(VENV)
    assert venv.is_directory and venv.user == "spark"


def test_operator_venv_hf_runs(host):
    result = host.run(f"runuser -u spark -- {VENV}/bin/hf version")
    assert result.rc == 0, result.stderr
    assert "2.4.0" in result.stdout


def test_operator_venv_installed_from_the_wheelhouse(host):
    wheels = host.file("/var/cache/spark-sglang/wheelhouse")
    assert wheels.is_directory
    assert any(name.startswith("huggingface_hub-2.4.0") for name in wheels.listdir())


def test_operator_venv_has_hf_xet_from_the_wheelhouse(host):
    # huggingface_hub 2.4.0 requires hf-xet on x86_64 and aarch64 (docs/upstream.md, "Hugging Face hub"):
    # the real hub serves Xet-backed repos through it, so an offline host needs it from the wheelhouse.
    wheels = host.file("/var/cache/spark-sglang/wheelhouse").listdir()
    assert any(name.startswith("hf_xet-") and name.endswith(".whl") for name in wheels), wheels
    result = host.run(f"runuser -u spark -- {VENV}/bin/python -c 'import hf_xet'")
    assert result.rc == 0, result.stderr


def test_toolkit_repository_is_signed(host):
    keyring = host.file("/usr/share/keyrings/nvidia-container-toolkit-keyring.asc")
    assert keyring.is_file and "BEGIN PGP PUBLIC KEY BLOCK" in keyring.content_string
    source = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.sources").content_string
    assert "Signed-By: /usr/share/keyrings/nvidia-container-toolkit-keyring.asc" in source
    assert "URIs: http://sim-infra:8080/stable/deb/amd64" in source


def test_toolkit_package_installed(host):
    assert host.package("nvidia-container-toolkit").is_installed
    assert "simulated" in host.run("nvidia-ctk --version").stdout.lower()


def test_daemon_json_has_nvidia_runtime(host):
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"


def test_gpus_all_container_runs(host):
    result = host.run(f"docker run --rm --gpus all {SIM_IMAGE} true")
    assert result.rc == 0, result.stderr


def test_gpus_all_container_sees_the_gpu(host):
    result = host.run(f"docker run --rm --gpus all {SIM_IMAGE} nvidia-smi -L")
    assert result.rc == 0, result.stderr
    assert "NVIDIA GB10" in result.stdout


def test_container_without_gpus_sees_no_gpu(host):
    # The stub hook only injects nvidia-smi for --gpus containers, as the real one does.
    result = host.run(f"docker run --rm {SIM_IMAGE} sh -c 'command -v nvidia-smi'")
    assert result.rc != 0
