"""Unit tests of the allow-list filters (plugins/filter/sglang_firewall.py)."""
import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("sglang_firewall_filter", ROOT / "plugins" / "filter" / "sglang_firewall.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)
invalid = plugin.sglang_firewall_invalid
networks = plugin.sglang_firewall_networks


@pytest.mark.parametrize("entry", [
    "192.168.1.20", "10.0.0.0/8", "10.1.2.0/24", "0.0.0.0/0", "172.18.0.3/32", "10.0.0.0/255.255.255.0",
    "fd00::/64", "2001:db8::1", "::1", "::/0", "::ffff:192.0.2.1", "2001:DB8::/32",
])
def test_addresses_and_networks_are_valid(entry):
    assert invalid([entry]) == []


@pytest.mark.parametrize("entry", [
    "", " 10.0.0.1", "10.0.0.1 ", "10.0.0.256", "10.0.0", "10.0.0.1/33", "10.0.0.1/24", "10.0.0.0/", "010.0.0.1",
    "fe80::1%eth0", "2001:db8::/129", "2001:db8::1/64", "spark-01", "10.0.0.1,10.0.0.2", "10.0.0.1-10.0.0.9",
    "*", "any", 167772161, None, True, ["10.0.0.1"], {"cidr": "10.0.0.0/8"},
])
def test_anything_else_is_invalid(entry):
    assert invalid([entry]) == [entry]


def test_only_the_bad_entries_are_named_in_order():
    assert invalid(["10.0.0.1", "nope", "fd00::/8", "10.0.0.1/8", "1.2.3.4"]) == ["nope", "10.0.0.1/8"]


def test_an_empty_or_missing_list_has_nothing_invalid():
    assert invalid([]) == [] and invalid(None) == []


@pytest.mark.parametrize("value", ["10.0.0.1", "10.0.0.0/8", {"a": "10.0.0.1"}, 42])
def test_a_value_that_is_not_a_list_is_invalid_as_a_whole(value):
    assert invalid(value) == [value]


def test_networks_split_by_version_merged_and_sorted_single_addresses_bare():
    entries = ["10.0.0.7", "192.168.0.0/16", "10.0.0.0/29", "192.168.4.1", "172.18.0.3/32", "fd00::/64",
               "2001:db8::1", "fd00::5", "10.0.0.7"]
    assert networks(entries, 4) == ["10.0.0.0/29", "172.18.0.3", "192.168.0.0/16"]
    assert networks(entries, 6) == ["2001:db8::1", "fd00::/64"]


def test_adjacent_networks_collapse_and_netmasks_become_prefixes():
    assert networks(["10.0.0.0/25", "10.0.0.128/25", "10.1.0.0/255.255.0.0"], 4) == ["10.0.0.0/24", "10.1.0.0/16"]


def test_a_version_without_entries_gives_an_empty_list():
    assert networks(["10.0.0.1"], 6) == [] and networks([], 4) == [] and networks(None, 4) == []


def test_networks_refuse_invalid_entries_and_versions():
    with pytest.raises(AnsibleFilterError, match="'nope'"):
        networks(["10.0.0.1", "nope"], 4)
    with pytest.raises(AnsibleFilterError, match="version must be 4 or 6"):
        networks(["10.0.0.1"], "4")


def test_the_filters_are_registered():
    assert plugin.FilterModule().filters() == {"sglang_firewall_invalid": invalid, "sglang_firewall_networks": networks}
