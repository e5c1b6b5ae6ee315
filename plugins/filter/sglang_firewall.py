"""sglang_firewall_invalid / sglang_firewall_networks: the serving ports' allow-list (sglang_server_firewall_allow).

Entries are IPv4/IPv6 addresses or networks in CIDR form ("192.168.1.20", "10.0.0.0/24", "fd00::/64"); a netmask
("10.0.0.0/255.255.255.0") is taken too. Refused: anything that is not a string, a network with host bits set
("10.0.0.1/24": which one was meant?), and an IPv6 zone ("fe80::1%eth0", which nftables cannot match on).
Standard library only (ansible.utils.ipaddr needs netaddr, which the controller may not have)."""
import ipaddress

from ansible.errors import AnsibleFilterError


def _network(entry):
    """The ip_network of one entry, or None when it is not a valid address/network."""
    if not isinstance(entry, str) or entry != entry.strip() or "%" in entry:
        return None
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError:
        return None


def sglang_firewall_invalid(entries):
    """The entries that are not valid addresses/networks, in order (all of it when it is not a list)."""
    if entries is None:
        return []
    if isinstance(entries, (str, bytes, dict)) or not isinstance(entries, (list, tuple)):
        return [entries]
    return [entry for entry in entries if _network(entry) is None]


def sglang_firewall_networks(entries, version):
    """The networks of one IP version (4 or 6), merged (duplicates and overlaps collapsed) and sorted, as nftables set
    elements: a single address without its /32 or /128."""
    if version not in (4, 6):
        raise AnsibleFilterError(f"sglang_firewall_networks: version must be 4 or 6, got {version!r}")
    bad = sglang_firewall_invalid(entries)
    if bad:
        raise AnsibleFilterError(f"sglang_firewall_networks: not an IPv4/IPv6 address or network: {bad[0]!r}")
    networks = [n for n in (_network(e) for e in entries or []) if n.version == version]
    return [str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n)
            for n in ipaddress.collapse_addresses(networks)]


class FilterModule:
    def filters(self):
        return {"sglang_firewall_invalid": sglang_firewall_invalid, "sglang_firewall_networks": sglang_firewall_networks}
