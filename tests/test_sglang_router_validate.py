"""sglang_router's input checks (roles/sglang_router/tasks/validate.yml, run by the fleet preflight on the gateway)
on this machine: one rule per item, each failure named; policy and log level are argument_specs choices. And the
gateway's other role, sglang_metrics: quoted booleans and numbers of both are refused."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FAILED = re.compile(r"^(?:fatal|failed): \[gw\].*? => (\{.*\})$", re.M)


def preflight(tmp_path, extra, role="sglang_router"):
    """Run the role's validate tasks (the router's by default) on a gateway `gw` whose group `sparks` holds one planned
    worker; returns the first failure's msg, or None."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "gateway": {"hosts": {"gw": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                     "sglang_router_venv": str(tmp_path / "router-venv")}}},
        "sparks": {"hosts": {"w1": {"sglang_server_worker_urls": ["http://10.0.0.11:30000"]}}}}}}))
    playbook = tmp_path / "validate.yml"
    playbook.write_text(yaml.safe_dump([{"name": "router inputs", "hosts": "gateway", "gather_facts": False, "tasks": [
        {"name": "Validate", "ansible.builtin.import_role": {"name": role, "tasks_from": "validate"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook),
                          "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                         check=False)
    found = FAILED.search(run.stdout)
    assert (run.returncode == 0) == (found is None), run.stdout[-3000:] + run.stderr[-3000:]
    if not found:
        return None
    result = json.loads(found.group(1))
    return " ".join(str(result.get("msg", "")).split())


def test_valid_settings_pass(tmp_path):
    assert preflight(tmp_path, {}) is None


@pytest.mark.parametrize("extra,says", [
    ({"sglang_router_port": 29000}, "gw: sglang_router_port and sglang_router_prometheus_port must be two different "
                                   "ports in 1-65535 (got 29000, 29000)"),
    ({"sglang_router_port": 70000}, "must be two different ports in 1-65535 (got 70000, 29000)"),
    ({"sglang_router_venv": "venv"}, "gw: sglang_router_venv must be an absolute path"),
    ({"sglang_router_worker_group": "nosuch"}, "gw: sglang_router_worker_group nosuch is not an inventory group"),
    ({"sglang_router_policy": "fastest"}, "sglang_router_policy"),
    ({"sglang_router_log_level": "loud"}, "sglang_router_log_level"),
    ({"sglang_router_config_dir": "/etc"}, "gw: sglang_router_config_dir: /etc is a system directory; the role sets its "
                                           "owner and mode and may remove it, so give it a directory of its own"),
    ({"sglang_router_config_dir": "/etc/sglang-router\nExecStartPre=/bin/sh"},
     'gw: sglang_router_config_dir must not hold a control character ("/etc/sglang-router\\nExecStartPre=/bin/sh")'),
], ids=["same-ports", "port-too-big", "venv-relative", "unknown-group", "policy-choice", "log-level-choice",
        "config-dir-system", "config-dir-newline"])
def test_each_bad_setting_is_refused_naming_it(tmp_path, extra, says):
    message = preflight(tmp_path, extra)
    assert message is not None and says in message, message


@pytest.mark.parametrize("role,extra,says", [
    ("sglang_router", {"sglang_router_health_check_interval": "1"},
     "gw: sglang_router_health_check_interval must be a whole number (YAML int, unquoted), not the string '1'"),
    ("sglang_router", {"sglang_router_port": "30080"}, "gw: sglang_router_port must be a whole number"),
    ("sglang_metrics", {"sglang_metrics_prometheus_install": "false"},
     "gw: sglang_metrics_prometheus_install must be true or false (YAML bool, unquoted), not the string 'false'"),
    ("sglang_metrics", {"sglang_metrics_targets_timeout": "30"}, "gw: sglang_metrics_targets_timeout must be a whole number"),
    ("sglang_router", {"sglang_router_extra_args": {"api_key": "s3cret-key"}},
     "gw: sglang_router_extra_args must not carry api_key (it would be written into the unit"),
    ("sglang_metrics", {"sglang_metrics_prometheus_listen": "0.0.0.0:9090 --web.enable-admin-api"},
     'gw: sglang_metrics_prometheus_listen must be address:port (a host name, an IPv4 address or [an IPv6 address], '
     'or none for every address), not "0.0.0.0:9090 --web.enable-admin-api"'),
], ids=["router-interval-quoted", "router-port-quoted", "metrics-install-quoted-false", "metrics-timeout-quoted",
        "router-key-in-extra-args", "metrics-listen-with-a-flag"])
def test_a_quoted_boolean_or_number_or_a_smuggled_setting_is_refused_naming_it(tmp_path, role, extra, says):
    assert preflight(tmp_path, {}, role) is None
    message = preflight(tmp_path, extra, role)
    assert message is not None and message.startswith(says), message
    assert "s3cret-key" not in message


@pytest.mark.parametrize("listen", ["[::]:9090", ":9090", "127.0.0.1:9091", "gateway-1.lab:9090"])
def test_a_prometheus_listen_address_passes(tmp_path, listen):
    assert preflight(tmp_path, {"sglang_metrics_prometheus_listen": listen}, "sglang_metrics") is None


def test_two_bad_settings_are_both_named(tmp_path):
    message = preflight(tmp_path, {"sglang_router_venv": "venv", "sglang_router_worker_group": "nosuch"})
    assert message == ("gw: sglang_router_venv must be an absolute path; "
                       "sglang_router_worker_group nosuch is not an inventory group"), message


def test_a_venv_path_that_holds_something_else_is_refused_and_left_as_it_is(tmp_path):
    # As sglang_router_venv: /opt would be: a directory the role did not make, which python_venv would have removed.
    other = tmp_path / "opt"
    (other / "someone-elses").mkdir(parents=True)
    message = preflight(tmp_path, {"sglang_router_venv": str(other)})
    assert message == (f"gw: sglang_router_venv: {other} exists and is not a venv; the role makes the venv in a path "
                       "of its own and removes nothing it did not make"), message
    assert [p.name for p in other.iterdir()] == ["someone-elses"]


def test_a_broken_venv_the_role_did_not_mark_is_not_removed(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to("/usr/bin/python3.gone")
    message = preflight(tmp_path, {"sglang_router_venv": str(venv)})
    assert message == (f"gw: sglang_router_venv: {venv} is a venv this project did not make, and its Python is gone; "
                       "the role does not remove it: remove it yourself or choose another path"), message
    assert (venv / "pyvenv.cfg").is_file()


def test_a_control_character_in_the_venv_path_is_refused(tmp_path):
    message = preflight(tmp_path, {"sglang_router_venv": "/opt/router\nExecStartPre=/bin/sh"})
    assert message == 'gw: sglang_router_venv must not hold a control character ("/opt/router\\nExecStartPre=/bin/sh")', message
