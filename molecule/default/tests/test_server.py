"""sglang_server on one converged SIMULATED Spark: units, argv, readiness, secrets, api key."""
import json

testinfra_hosts = ["ansible://sparks"]

API_KEY = "sim-api-key-not-a-secret"
INSTANCES = {
    "main": {"port": 30000, "served": "qwen3-8b", "mem": "0.8"},
    "second": {"port": 30001, "served": "qwen3-8b-second", "mem": "0.4"},
}


def expected_flags(name):
    i = INSTANCES[name]
    return ["--enable-metrics", "--host", "0.0.0.0", "--mem-fraction-static", i["mem"],
            "--model-path", "/models/Qwen3-8B-NVFP4", "--port", str(i["port"]), "--served-model-name", i["served"]]


def curl(host, path, port=30000, key=None, data=None):
    cmd = f"curl -sS -o /tmp/body -w '%{{http_code}}' http://127.0.0.1:{port}{path}"
    if key:
        cmd += f" -H 'Authorization: Bearer {key}'"
    if data is not None:
        cmd += f" -H 'Content-Type: application/json' -d '{json.dumps(data)}'"
    status = host.check_output(cmd)
    return int(status), host.file("/tmp/body").content_string


def test_units_enabled_and_active(host):
    for name in INSTANCES:
        unit = host.service(f"sglang-{name}")
        assert unit.is_enabled and unit.is_running


def test_health_is_200(host):
    for name, i in INSTANCES.items():
        assert curl(host, "/health", i["port"])[0] == 200, name


def test_container_argv_is_the_rendered_flags(host):
    for name in INSTANCES:
        args = json.loads(host.check_output(f"docker inspect --format '{{{{json .Args}}}}' sglang-{name}"))
        assert args[args.index("sglang-launch-server") + 1:] == expected_flags(name)


def test_server_echoes_the_flags(host):
    for name, i in INSTANCES.items():
        status, body = curl(host, "/get_server_info", i["port"], key=API_KEY)  # 0.5.3.post3 has no /server_info
        assert status == 200
        info = json.loads(body)
        assert info["model_path"] == "/models/Qwen3-8B-NVFP4"
        assert info["served_model_name"] == i["served"]
        assert info["port"] == i["port"] and str(info["mem_fraction_static"]) == i["mem"]
        assert info["enable_metrics"] is True
        assert info["api_key"] == API_KEY  # as upstream: shown to whoever holds the key (docs/upstream.md)


def test_env_file_is_0600_and_the_secrets_file_holds_the_key(host):
    for name in INSTANCES:
        env = host.file(f"/etc/sglang/{name}.env")
        assert env.mode == 0o600 and env.user == "root"
        assert "HF_HUB_OFFLINE=1" in env.content_string and API_KEY not in env.content_string
        secrets = host.file(f"/etc/sglang/{name}.secrets")
        assert secrets.mode == 0o600 and secrets.user == "root"
        assert f"SGLANG_API_KEY={API_KEY}" in secrets.content_string


def test_no_secret_in_unit_or_docker_argv(host):
    for name in INSTANCES:
        assert API_KEY not in host.check_output(f"systemctl cat sglang-{name}")
        inspect = json.loads(host.check_output(f"docker inspect sglang-{name}"))[0]
        assert API_KEY not in json.dumps([inspect["Path"], inspect["Args"], inspect["Config"]["Cmd"]])


def test_api_key_is_enforced(host):
    request = {"model": "qwen3-8b", "messages": [{"role": "user", "content": "What is artificial intelligence?"}],
               "max_tokens": 16}
    assert curl(host, "/v1/chat/completions", data=request)[0] == 401
    assert curl(host, "/v1/chat/completions", key="wrong", data=request)[0] == 401
    status, body = curl(host, "/v1/chat/completions", key=API_KEY, data=request)
    assert status == 200
    reply = json.loads(body)
    assert reply["choices"][0]["message"]["content"].strip()
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")


def test_container_has_gpu_and_offline_hub(host):
    env = json.loads(host.check_output("docker inspect --format '{{json .Config.Env}}' sglang-main"))
    assert "HF_HUB_OFFLINE=1" in env
    assert "NVIDIA GB10" in host.check_output("docker exec sglang-main nvidia-smi -L")


def test_last_good_copy_matches_the_running_unit(host):
    for name in INSTANCES:
        assert host.file(f"/etc/sglang/last-good/{name}.service").content_string == \
            host.file(f"/etc/systemd/system/sglang-{name}.service").content_string
        assert host.file(f"/etc/sglang/last-good/{name}.env").mode == 0o600
