"""scalar_options and scalar_type_problems: a role's true/false and number inputs must be YAML booleans and numbers;
below_minimum: its counts and timeouts must not be zero or negative where that means something else;
host_problems and host_port: an address from inventory is a host name or an IP address, nothing more, and goes into
host:port with an IPv6 address in brackets.

Ansible's argument_specs check converts "false", "no" or "120" for the check only: the role then reads the
string, and a non-empty string is true in a Jinja condition ("false" turns an option on) and not a number in
arithmetic. So each role's preflight refuses a string where its argument_specs say bool, int or float."""

import ipaddress
import json
import re

SCALARS = ("bool", "int", "float")
# One label of a DNS name (RFC 1123): letters, digits and inner hyphens.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def scalar_options(specs, entry_point):
    """A role's argument_specs (meta/argument_specs.yml as data) -> {option: type} of its bool, int and float options."""
    options = specs["argument_specs"][entry_point].get("options") or {}
    return {name: spec.get("type") for name, spec in options.items() if spec.get("type") in SCALARS}


def _fits(value, kind):
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, not to an operator
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float))


def scalar_type_problems(types, values):
    """{option: type} and the options' values in that order -> one message per value of another type (None: unset)."""
    words = {"bool": "true or false", "int": "a whole number", "float": "a number"}
    problems = []
    for (name, kind), value in zip(types.items(), values):
        if value is None or _fits(value, kind):
            continue
        # -e name=value on the command line gives a string too; -e as JSON keeps the type.
        shown = (f"the string {value!r} (-e name=value gives a string: pass -e as JSON)" if isinstance(value, str)
                 else f"{value!r} ({type(value).__name__})")
        problems.append(f"{name} must be {words[kind]} (YAML {kind}, unquoted), not {shown}")
    return problems


def below_minimum(minimums, values):
    """{option: least value} and the options' values in that order -> one message per number below its least value
    (a value of another type is scalar_type_problems' to name)."""
    return [f"{name} must be at least {least}, got {value}"
            for (name, least), value in zip(minimums.items(), values)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < least]


def _ip(host):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def host_problems(hosts):
    """{variable: value} -> one message per value that is not a host name, an IPv4 or an IPv6 address: a port, a
    scheme, a path or a space would end up in every daemon.json, env file or argv that names the host."""
    problems = []
    for name, host in hosts.items():
        host = str(host)
        if _ip(host) or (len(host) <= 253 and all(_LABEL.match(label) for label in host.rstrip(".").split("."))):
            continue
        problems.append(f"{name} must be a host name or an IP address, without a port, a scheme or a path, "
                        f"not {json.dumps(host)}")
    return problems


def host_port(host, port):
    """host:port, an IPv6 address in brackets (RFC 3986)."""
    ip = _ip(str(host))
    return f"[{host}]:{port}" if ip and ip.version == 6 else f"{host}:{port}"


class FilterModule:
    def filters(self):
        return {"scalar_options": scalar_options, "scalar_type_problems": scalar_type_problems,
                "below_minimum": below_minimum, "host_problems": host_problems, "host_port": host_port}
