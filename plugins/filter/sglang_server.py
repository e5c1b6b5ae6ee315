"""sglang_server_argv / sglang_server_flag_names / systemd_exec_quote: inventory dict -> SGLang argv -> ExecStart=.

`sglang_server_args` in inventory is a dict of snake_case keys; `sglang_server_argv` is the one place that turns it
into the argv of `python3 -m sglang.launch_server`, and `systemd_exec_quote` puts an argv on a unit's ExecStart= line
so that systemd splits it back into exactly those words, with no specifier (%) or environment ($) expansion.
`sglang_server_gpus_needed` counts the GPUs an instance takes per node, `sglang_server_parallel_aliases` finds the
parallelism keys spelled otherwise than the ones it counts. `sglang_server_url` and `sglang_server_local_url` are the
one rule for an instance's URL (server, verify, bench and the router's worker list use them);
`sglang_server_docker_argv` is the container's `docker run` argv, SGLang's argv at its end."""
import json
import re
import unicodedata

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
# A word is quoted when it is empty or holds one of these (or whitespace): systemd would otherwise split it, unquote
# it, C-unescape it, expand it, or take a lone ";" as a command separator.
_NEEDS_QUOTES = set("\"'\\$%;")


def _control_char(text):
    """The first control character in text (C0, DEL, C1; newline, CR and tab included), or None."""
    return next((c for c in text if unicodedata.category(c) == "Cc"), None)


def _scalar(key, value):
    """One argv element from a str/int/float; bool, None and anything else are refused (naming the key)."""
    if isinstance(value, bool) or value is None:
        raise AnsibleFilterError(f"sglang_server_args.{key}: {value!r} is not allowed here (only in a top-level value)")
    if isinstance(value, str):
        bad = _control_char(value)
        if bad is not None:
            raise AnsibleFilterError(f"sglang_server_args.{key}: value contains a control character {bad!r} "
                                     "(a newline or control character cannot be put safely in a unit file)")
        return str(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    raise AnsibleFilterError(f"sglang_server_args.{key}: unsupported value type {type(value).__name__}")


def _plain(value):
    """A deep copy in plain Python types: Ansible hands filters lazy/tagged dict and list subclasses, which json's
    C encoder would read without templating their items."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _render(args):
    """[(flag, [value words])] in sorted key order, leaving out the flags that are dropped (False, None, [])."""
    if not isinstance(args, dict):
        raise AnsibleFilterError(f"sglang_server_args must be a dict, got {type(args).__name__}")
    for key in args:
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise AnsibleFilterError(f"sglang_server_args: bad key {key!r} (must match ^[a-z][a-z0-9_]*$)")
    rendered = []
    for key in sorted(args):
        value = args[key]
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            rendered.append((flag, []))
        elif isinstance(value, (list, tuple)):
            if value:
                rendered.append((flag, [_scalar(key, item) for item in value]))
        elif isinstance(value, dict):
            try:
                text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise AnsibleFilterError(f"sglang_server_args.{key}: cannot be written as JSON: {exc}") from exc
            rendered.append((flag, [text]))
        else:
            rendered.append((flag, [_scalar(key, value)]))
    return rendered


def sglang_server_argv(args):
    """The argv after `python3 -m sglang.launch_server`, from the inventory dict (see the module docstring)."""
    argv = []
    for flag, values in _render(args):
        argv.append(flag)
        argv.extend(values)
    return argv


def sglang_server_flag_names(args):
    """The sorted `--flag` names sglang_server_argv emits for args (to check against the image's --help)."""
    return sorted(flag for flag, _ in _render(args))


def _quote_word(word):
    if not isinstance(word, str):
        raise AnsibleFilterError(f"systemd_exec_quote: argv element {word!r} is not a string")
    bad = _control_char(word)
    if bad is not None:
        raise AnsibleFilterError(f"systemd_exec_quote: argv element {word!r} contains a control character {bad!r}")
    word = str(word).replace("%", "%%").replace("$", "$$")
    if word and not any(c.isspace() or c in _NEEDS_QUOTES for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_exec_quote(argv):
    """One string for an ExecStart= line that systemd splits back into exactly argv.

    A word is wrapped in double quotes when it is empty or holds whitespace, a quote, a backslash, $, % or ;
    (inside, \\ -> \\\\ and " -> \\"); % -> %% and $ -> $$ everywhere, so no specifier or environment variable is
    expanded. Control characters (newlines included) are refused. Meant for the words after the executable: on the
    first word systemd reads the prefixes -@:+! even inside quotes."""
    if isinstance(argv, (str, bytes)) or not isinstance(argv, (list, tuple)):
        raise AnsibleFilterError(f"systemd_exec_quote needs a list of strings, got {type(argv).__name__}")
    return " ".join(_quote_word(word) for word in argv)


NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


def sglang_server_instances_plan(instances, default_args, args):
    """Each instance with its flags merged: role defaults < sglang_server_args < the instance's args.

    Refuses (naming the variable) an instance without a valid, unique name: the name becomes
    the unit sglang-<name>.service and the container sglang-<name>."""
    plan, seen = [], set()
    for index, instance in enumerate(instances or []):
        name = instance.get("name") if isinstance(instance, dict) else None
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise AnsibleFilterError(f"sglang_server_instances[{index}].name must match {NAME_RE.pattern}, got {name!r}")
        if name in seen:
            raise AnsibleFilterError(f"sglang_server_instances: the name {name!r} is used twice")
        seen.add(name)
        merged = dict(default_args or {})
        merged.update(args or {})
        merged.update(instance.get("args") or {})
        plan.append({"name": name, "args": merged, "env": dict(instance.get("env") or {})})
    return plan


# The other spellings SGLang takes for the parallelism flags the role counts, and the key to write instead. The long
# ones are option strings of the same argument (0.5.3.post3 server_args.py:1760 --tensor-parallel-size, :1767
# --pipeline-parallel-size, :2071 --data-parallel-size); --tp and --dp are no options at all, only argparse
# abbreviations of --tp-size and --dp-size. Refused rather than read: two spellings of one flag in the merged args
# would both reach the command line, where argparse keeps the last one without a word.
PARALLEL_ALIASES = {"tensor_parallel_size": "tp_size", "tp": "tp_size", "pipeline_parallel_size": "pp_size",
                    "data_parallel_size": "dp_size", "dp": "dp_size"}


def sglang_server_parallel_aliases(args):
    """{key: the key to write instead} for each key of args that spells tp_size, pp_size or dp_size another way."""
    if not isinstance(args, dict):
        raise AnsibleFilterError(f"sglang_server_args must be a dict, got {type(args).__name__}")
    return {key: PARALLEL_ALIASES[key] for key in sorted(args) if key in PARALLEL_ALIASES}


def _size(args, key):
    value = args.get(key, 1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnsibleFilterError(f"sglang_server_args.{key} must be an integer, got {value!r}")
    return value


def sglang_server_gpus_needed(args):
    """The GPUs one instance takes on each of its nodes: tp_size x pp_size, times dp_size unless enable_dp_attention,
    divided by nnodes.

    SGLang starts one scheduler per GPU: tp_size x pp_size of them for one model replica, and without dp attention
    one such group per dp rank, each from the GPU after the last. With --enable-dp-attention the dp ranks split that
    one group instead, so dp_size adds no GPU. 0.5.23 spells this --attn-dp-size (which adds no GPU either) and
    turns --dp-size N --enable-dp-attention into it (sglang/srt/ of 0.5.3.post3: entrypoints/engine.py:776-800,
    managers/data_parallel_controller.py:146-147, :204-206, :340-341; of 0.5.23: arg_groups/parallel_hook.py:39-60,
    managers/data_parallel_controller.py:244-245, :445-449, :674-676)."""
    if not isinstance(args, dict):
        raise AnsibleFilterError(f"sglang_server_args must be a dict, got {type(args).__name__}")
    replicas = 1 if args.get("enable_dp_attention") is True else _size(args, "dp_size")
    return _size(args, "tp_size") * _size(args, "pp_size") * replicas // _size(args, "nnodes")


def sglang_server_docker_argv(instance, container):
    """The argv after `docker` that runs an instance. `container` holds image, gpus, shm_size, ipc_host, ulimits,
    rdma (whether /dev/infiniband is there), network_host, volumes ("host:container[:ro]"), env_file, and secrets and
    launcher (their paths in the container). The shell in the container exports the secrets file and execs the
    launcher, which runs launch_server with the instance's flags ("$@")."""
    name, port = instance["name"], instance["args"]["port"]
    argv = ["run", "--rm", "--name", f"sglang-{name}", "--label", f"org.spark-sglang.instance={name}",
            "--gpus", str(container["gpus"]), "--shm-size", str(container["shm_size"])]
    argv += ["--ipc=host"] if boolean(container["ipc_host"]) else []
    argv += [f"--ulimit={limit}" for limit in container["ulimits"]]
    argv += ["--device", "/dev/infiniband"] if boolean(container["rdma"]) else []
    argv += ["--network", "host"] if boolean(container["network_host"]) else ["--publish", f"{port}:{port}"]
    for volume in container["volumes"]:
        argv += ["--volume", volume]
    shell = f'set -a; . {container["secrets"]}; set +a; exec python3 {container["launcher"]} "$@"'
    argv += ["--env-file", container["env_file"], container["image"], "sh", "-c", shell, "sglang-launch-server"]
    return argv + sglang_server_argv(instance["args"])


# Bind addresses that mean every address of the host: the project reaches such an instance on loopback.
_WILDCARDS = ("0.0.0.0", "::")


def sglang_server_url(host, port):
    """http://host:port, an IPv6 address in brackets (RFC 3986)."""
    host = str(host)
    if not host or not str(port).isdigit():
        raise AnsibleFilterError(f"sglang_server_url needs a host and a port, got {host!r} and {port!r}")
    return f"http://[{host}]:{port}" if ":" in host and not host.startswith("[") else f"http://{host}:{port}"


def sglang_server_local_url(args, port=None):
    """Where the project reaches an instance from its own host: loopback, unless args.host binds one address only
    (then that address). `port` replaces args.port (a multi-node worker's health port)."""
    host = str(args.get("host") or "0.0.0.0")
    return sglang_server_url("127.0.0.1" if host in _WILDCARDS else host, args["port"] if port is None else port)


def sglang_server_worker_urls(instances, host):
    """The URLs the router reaches these instances at, on the host's advertised address."""
    return [sglang_server_url(host, instance["args"]["port"]) for instance in instances]


class FilterModule:
    def filters(self):
        return {
            "sglang_server_argv": sglang_server_argv,
            "sglang_server_flag_names": sglang_server_flag_names,
            "systemd_exec_quote": systemd_exec_quote,
            "sglang_server_instances_plan": sglang_server_instances_plan,
            "sglang_server_parallel_aliases": sglang_server_parallel_aliases,
            "sglang_server_gpus_needed": sglang_server_gpus_needed,
            "sglang_server_url": sglang_server_url,
            "sglang_server_local_url": sglang_server_local_url,
            "sglang_server_worker_urls": sglang_server_worker_urls,
            "sglang_server_docker_argv": sglang_server_docker_argv,
        }
