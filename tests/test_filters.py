"""Unit tests of the project's filter plugins (plugins/filter)."""
import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "fleet_filters", Path(__file__).resolve().parents[1] / "plugins" / "filter" / "fleet_filters.py")
fleet_filters = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fleet_filters)

MOUNTS = [
    {"mount": "/", "size_available": 10},
    {"mount": "/var", "size_available": 20},
    {"mount": "/var/lib/docker", "size_available": 30},
    {"mount": "/var/lib/dockerish", "size_available": 40},
]


@pytest.mark.parametrize("path,expected", [
    ("/", "/"),
    ("/home/spark/models", "/"),
    ("/var", "/var"),
    ("/var/lib/spark-sglang/hf", "/var"),
    ("/var/lib/docker", "/var/lib/docker"),
    ("/var/lib/docker/volumes/x", "/var/lib/docker"),
    ("/var/lib/dockerish/x", "/var/lib/dockerish"),
    ("/var/lib/docker2", "/var"),       # a sibling with a common prefix is not inside
    ("/var/lib/docker/../x", "/var"),   # normalised first
])
def test_mount_for_path_picks_the_longest_holding_mount(path, expected):
    assert fleet_filters.mount_for_path(MOUNTS, path)["mount"] == expected


def test_mount_for_path_refuses_relative_paths():
    with pytest.raises(ValueError, match="absolute"):
        fleet_filters.mount_for_path(MOUNTS, "var/lib")


def test_mount_for_path_without_a_root_mount_fails_for_outside_paths():
    with pytest.raises(ValueError, match="no mount"):
        fleet_filters.mount_for_path([{"mount": "/data"}], "/srv/x")


def test_filter_is_registered():
    assert fleet_filters.FilterModule().filters()["mount_for_path"] is fleet_filters.mount_for_path
