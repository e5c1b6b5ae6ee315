"""Unit tests of owned_path_problems (plugins/filter/paths.py): a role's own directories, not the system's."""
import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "paths_filter", Path(__file__).resolve().parents[1] / "plugins" / "filter" / "paths.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)


@pytest.mark.parametrize("path", ["/", "/etc", "/etc/", "/opt", "/data", "/var/lib", "/usr/local", "/home/spark",
                                  "/etc/systemd", "/etc/docker", "/var/lib/../lib", "//etc"])
def test_a_system_directory_is_refused_naming_the_variable(path):
    assert plugin.owned_path_problems({"x_dir": path}) == [
        f"x_dir: {path} is a system directory; the role sets its owner and mode and may remove it, so give it a "
        "directory of its own"]


@pytest.mark.parametrize("path", ["/etc/sglang", "/etc/sglang-router", "/var/lib/spark-sglang/registry",
                                  "/home/spark/gb10/models", "/opt/sglang", "/data/models"])
def test_a_directory_of_its_own_passes(path):
    assert plugin.owned_path_problems({"x_dir": path}) == []


def test_relative_paths_and_control_characters_are_refused_each_by_name():
    assert plugin.owned_path_problems({"a_dir": "etc/sglang", "b_dir": "/etc/sglang\nExecStartPre=/bin/sh",
                                       "c_dir": "/etc/sglang\t", "d_dir": "/etc/sglang"}) == [
        "a_dir must be an absolute path (etc/sglang)",
        'b_dir must not hold a control character ("/etc/sglang\\nExecStartPre=/bin/sh")',
        'c_dir must not hold a control character ("/etc/sglang\\t")',
    ]


def test_the_filter_is_registered():
    assert plugin.FilterModule().filters() == {"owned_path_problems": plugin.owned_path_problems}
