"""plugins/filter/inputs.py: booleans and numbers from inventory must be YAML booleans and numbers, not strings
that argument_specs would convert for its own check only."""
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from inputs import below_minimum, host_port, host_problems, scalar_options, scalar_type_problems  # noqa: E402

SPEC = {"argument_specs": {"validate": {"options": {
    "r_on": {"type": "bool"}, "r_count": {"type": "int"}, "r_share": {"type": "float"}, "r_name": {"type": "str"},
    "r_list": {"type": "list", "elements": "int"}}}}}


def test_only_bool_int_and_float_options_are_picked():
    assert scalar_options(SPEC, "validate") == {"r_on": "bool", "r_count": "int", "r_share": "float"}


@pytest.mark.parametrize("values", [[True, 120, 0.8], [False, 0, 1], [None, None, None]])
def test_booleans_and_numbers_pass(values):
    assert scalar_type_problems(scalar_options(SPEC, "validate"), values) == []


@pytest.mark.parametrize("values,says", [
    (["false", 1, 0.5], "r_on must be true or false (YAML bool, unquoted), not the string 'false' (-e name=value gives a string: pass -e as JSON)"),
    (["no", 1, 0.5], "r_on must be true or false (YAML bool, unquoted), not the string 'no' (-e name=value gives a string: pass -e as JSON)"),
    ([1, 1, 0.5], "r_on must be true or false (YAML bool, unquoted), not 1 (int)"),
    ([True, "120", 0.5], "r_count must be a whole number (YAML int, unquoted), not the string '120' (-e name=value gives a string: pass -e as JSON)"),
    ([True, True, 0.5], "r_count must be a whole number (YAML int, unquoted), not True (bool)"),
    ([True, 1.5, 0.5], "r_count must be a whole number (YAML int, unquoted), not 1.5 (float)"),
    ([True, 1, "0.8"], "r_share must be a number (YAML float, unquoted), not the string '0.8' (-e name=value gives a string: pass -e as JSON)"),
], ids=["false-string", "no-string", "bool-as-int", "int-string", "int-as-bool", "int-as-float", "float-string"])
def test_a_string_or_another_type_is_refused_naming_the_option(values, says):
    assert scalar_type_problems(scalar_options(SPEC, "validate"), values) == [says]


def role_entry(role):
    return "preflight" if role == "spark_host" else "validate"


ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_checks_its_scalars_in_its_preflight_and_its_own_defaults_pass(role):
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    types = scalar_options(specs, role_entry(role))
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / f"{role_entry(role)}.yml").read_text())
    check = next(t for t in tasks if t["name"] == "Check that true/false and numbers are not quoted")
    assert f"scalar_options('{role_entry(role)}')" in check["vars"][f"{role}_scalars"]
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    # A default that is a template is a string here; Ansible renders it to its type (the molecule runs check those).
    literal = {name: kind for name, kind in types.items() if not str(defaults.get(name, "")).startswith("{{")}
    assert scalar_type_problems(literal, [defaults.get(name) for name in literal]) == []


def test_a_count_or_timeout_below_its_least_value_is_named():
    least = {"a_count": 1, "a_wait": 0, "a_other": 1}
    assert below_minimum(least, [0, -5, "x"]) == ["a_count must be at least 1, got 0", "a_wait must be at least 0, got -5"]
    assert below_minimum(least, [1, 0, 3]) == []


@pytest.mark.parametrize("host", ["spark-01", "spark-01.lab.example", "10.213.77.11", "fd00::11", "mirror."])
def test_a_host_name_or_an_address_passes(host):
    assert host_problems({"x_address": host}) == []


@pytest.mark.parametrize("host", ["10.213.77.11:5001", "http://mirror", "mirror/v2", "two words", "-lead", "a\nb", "",
                                  "[fd00::11]", "under_score"])
def test_a_port_scheme_path_space_or_newline_is_refused_naming_the_variable(host):
    assert host_problems({"x_address": host}) == [
        f"x_address must be a host name or an IP address, without a port, a scheme or a path, not {json.dumps(host)}"]


def test_host_port_brackets_ipv6_only():
    assert [host_port(h, 5001) for h in ("fd00::11", "10.0.0.1", "mirror")] == ["[fd00::11]:5001", "10.0.0.1:5001",
                                                                                 "mirror:5001"]
