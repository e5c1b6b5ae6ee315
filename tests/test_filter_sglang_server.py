"""Unit tests of the sglang_server_argv, sglang_server_flag_names and systemd_exec_quote filters
(plugins/filter/sglang_server.py).

The ExecStart= quoting is checked two ways: against systemd itself (`systemd-analyze verify` at debug log level
dumps each loaded unit, with every command's argv after systemd's own unquoting and specifier expansion; the `$$`
-> `$` step happens later, at exec time, and is applied here as systemd.service(5) documents it), and against a
reference splitter written in this file from systemd.service(5) "Command lines" and systemd.unit(5) "Specifiers".
systemd-analyze is required (scripts/ensure-tools.sh, run by make, installs it): without it the tests fail."""
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("sglang_server_filter", ROOT / "plugins" / "filter" / "sglang_server.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)

argv = plugin.sglang_server_argv
flag_names = plugin.sglang_server_flag_names
quote = plugin.systemd_exec_quote
FILTERS = plugin.FilterModule().filters()

NASTY = 'a b "c" $HOME %h \\x'
# Argv lists that must survive ExecStart= quoting unchanged.
ROUND_TRIPS = [
    ["--model-path", "/models/Qwen3-8B-NVFP4", "--tp-size", "1"],
    [NASTY],
    [""],
    ["", "x", ""],
    [";"], ["a;b"], ["x", ";", "y"],
    ["100%", "%%", "%h", "%"],
    ["$", "$$", "$HOME", "${HOME}", "a$b", "$1"],
    ["\\", "\\\\", "\\x41", "\\n", "end\\"],
    ['"', "'", "it's", 'say "hi"', "'single quoted'"],
    ["  leading and trailing  ", "multiple   spaces"],
    ["é", "naïve 🦙", "\u00a0nbsp"],
    ["--json-model-override-args", '{"rope_scaling":{"factor":4.0,"type":"yarn"}}'],
    ["*", "?", "[a]", "~", "`cmd`", "a|b", "a&b", "<x>", "#hash", "-dash", "@at", "+plus", "!bang", ":colon"],
]


# --- sglang_server_argv: keys, order, value types -------------------------------------------------------------

def test_example_inventory_args_render_in_sorted_key_order():
    args = {"model_path": "/models/Qwen3-8B-NVFP4", "mem_fraction_static": 0.8, "enable_torch_compile": True,
            "quantization": "modelopt_fp4"}
    assert argv(args) == ["--enable-torch-compile", "--mem-fraction-static", "0.8",
                          "--model-path", "/models/Qwen3-8B-NVFP4", "--quantization", "modelopt_fp4"]


def test_order_does_not_depend_on_dict_order():
    items = [("tp_size", 2), ("a0", 1), ("a_b", True), ("zz", "x"), ("ab", [1, 2])]
    expected = argv(dict(items))
    assert argv(dict(reversed(items))) == expected
    # Keys sort "a0" < "a_b" ("0" < "_"); the flag names sort "--a-b" < "--a0" ("-" < "0").
    assert expected == ["--a0", "1", "--a-b", "--ab", "1", "2", "--tp-size", "2", "--zz", "x"]
    assert flag_names(dict(reversed(items))) == ["--a-b", "--a0", "--ab", "--tp-size", "--zz"]


def test_keys_map_underscores_to_dashes():
    assert argv({"mem_fraction_static": 1}) == ["--mem-fraction-static", "1"]
    assert argv({"x": 1, "tp2": 1, "a_1_b": 1}) == ["--a-1-b", "1", "--tp2", "1", "--x", "1"]


@pytest.mark.parametrize("key", ["Model_path", "model-path", "_x", "1x", "", "a b", "a.b", "--tp", "é", "x\n"])
def test_bad_keys_are_refused_naming_the_key(key):
    with pytest.raises(AnsibleFilterError, match=re.escape(repr(key))):
        argv({"ok": 1, key: 1})


def test_non_string_key_and_non_dict_args_are_refused():
    with pytest.raises(AnsibleFilterError, match="bad key 1"):
        argv({1: "x"})
    for bad in (None, ["--tp-size", "1"], "tp_size=1"):
        with pytest.raises(AnsibleFilterError, match="must be a dict"):
            argv(bad)


def test_bools_and_none():
    assert argv({"enable_metrics": True, "disable_radix_cache": False, "chat_template": None}) == ["--enable-metrics"]
    assert argv({"a": False, "b": None}) == [] and argv({}) == []


def test_ints_and_floats():
    assert argv({"port": 30000, "tp_size": 0, "neg": -1}) == ["--neg", "-1", "--port", "30000", "--tp-size", "0"]
    assert argv({"a": 0.8, "b": 1e-05, "c": 1.0, "d": 0.1 + 0.2, "e": 2.5e10, "f": -0.5}) == [
        "--a", "0.8", "--b", "1e-05", "--c", "1.0", "--d", "0.30000000000000004", "--e", "25000000000.0", "--f", "-0.5"]


def test_bool_is_not_treated_as_int():
    assert argv({"x": True}) == ["--x"]  # not ["--x", "1"]
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.x"):
        argv({"x": [True]})


def test_strings_are_one_argv_element_each():
    assert argv({"served_model_name": "my model", "s": NASTY, "e": "", "q": "it's \"q\""}) == [
        "--e", "", "--q", "it's \"q\"", "--s", NASTY, "--served-model-name", "my model"]


@pytest.mark.parametrize("value", ["a\nb", "trailing\n", "cr\r", "tab\there", "nul\x00", "del\x7f", "c1\x85"])
def test_newlines_and_control_characters_are_refused_naming_the_key(value):
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.chat_template"):
        argv({"chat_template": value})
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.cuda_graph_bs"):
        argv({"cuda_graph_bs": ["1", value]})


def test_lists_and_tuples_repeat_no_flag():
    assert argv({"cuda_graph_bs": [1, 2, 4]}) == ["--cuda-graph-bs", "1", "2", "4"]
    assert argv({"x": ("a b", 0.5, "")}) == ["--x", "a b", "0.5", ""]
    assert argv({"cuda_graph_bs": [], "y": ()}) == []
    assert flag_names({"cuda_graph_bs": [], "y": [1]}) == ["--y"]


@pytest.mark.parametrize("item", [True, False, None, [1], {"a": 1}, {1, 2}, b"x"])
def test_lists_refuse_non_scalars_naming_the_key(item):
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.cuda_graph_bs"):
        argv({"cuda_graph_bs": [1, item]})


def test_dicts_become_compact_sorted_json():
    value = {"rope_scaling": {"type": "yarn", "factor": 4.0}, "a": [1, None, True, "x y"]}
    [flag, text] = argv({"json_model_override_args": value})
    assert flag == "--json-model-override-args"
    assert text == '{"a":[1,null,true,"x y"],"rope_scaling":{"factor":4.0,"type":"yarn"}}'
    assert json.loads(text) == value
    assert argv({"j": {}}) == ["--j", "{}"]
    assert argv({"j": {"s": "line\nbreak"}}) == ["--j", '{"s":"line\\nbreak"}']  # JSON escapes it: no raw newline


@pytest.mark.parametrize("value", [{"a": {1, 2}}, {"a": float("nan")}, {"a": b"x"}, {"a": object()}])
def test_dicts_that_are_not_json_are_refused_naming_the_key(value):
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.j"):
        argv({"j": value})


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), frozenset()])
def test_unsupported_value_types_are_refused_naming_the_key(value):
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.weird"):
        argv({"weird": value})


def test_str_int_float_dict_list_subclasses_like_ansibles_are_accepted():
    class Text(str):
        pass

    class Int(int):
        def __str__(self):
            return "tagged"

    class Float(float):
        def __repr__(self):
            return "tagged"

    class Dict(dict):
        pass

    class List(list):
        pass

    out = argv(Dict({Text("model_path"): Text("/m"), "i": Int(3), "f": Float(0.8), "l": List([Text("a"), Int(1)]),
                     "d": Dict({"k": List([Float(1.5)])})}))
    assert out == ["--d", '{"k":[1.5]}', "--f", "0.8", "--i", "3", "--l", "a", "1", "--model-path", "/m"]
    assert all(type(word) is str for word in out)


# --- sglang_server_flag_names -----------------------------------------------------------------------------------

def test_flag_names_match_what_argv_emits():
    args = {"model_path": "/m", "enable_metrics": True, "disable_cuda_graph": False, "chat_template": None,
            "cuda_graph_bs": [], "tp_size": 1, "json_model_override_args": {"x": 1}, "host": "--not-a-flag"}
    names = flag_names(args)
    assert names == ["--enable-metrics", "--host", "--json-model-override-args", "--model-path", "--tp-size"]
    assert names == sorted(names)
    assert set(names) <= set(argv(args)) and "--not-a-flag" not in names


def test_flag_names_validate_like_argv():
    with pytest.raises(AnsibleFilterError, match="'Bad'"):
        flag_names({"Bad": 1})
    with pytest.raises(AnsibleFilterError, match="sglang_server_args.x"):
        flag_names({"x": "a\nb"})


# --- systemd_exec_quote -----------------------------------------------------------------------------------------

def reference_split(line):
    """An ExecStart= value split the way systemd.service(5)/systemd.unit(5) document it, in systemd's order:
    specifiers (%%) over the whole line at load time; then words split on whitespace, with double or single quotes
    and C-style backslash escapes; an unquoted lone ";" separates commands (refused here); then, at exec time,
    "$$" -> "$" while any other "$" would expand a variable (refused here)."""
    def specifier(match):
        assert match.group(0) == "%%", f"specifier {match.group(0)!r} would be expanded"
        return "%"
    line = re.sub(r"%.?", specifier, line, flags=re.S)
    escapes = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " ",
               "\\": "\\", '"': '"', "'": "'"}
    words, i = [], 0
    while True:
        while i < len(line) and line[i] in " \t\n\r":
            i += 1
        if i == len(line):
            break
        word, quote_char, bare = "", None, True
        while i < len(line) and (quote_char or line[i] not in " \t\n\r"):
            c = line[i]
            if c == "\\":
                nxt = line[i + 1]
                assert nxt in escapes, f"escape \\{nxt} is not one systemd_exec_quote should produce"
                word += escapes[nxt]
                i += 2
                continue
            if quote_char:
                if c == quote_char:
                    quote_char = None
                else:
                    word += c
            elif c in "\"'":
                quote_char, bare = c, False
            else:
                word += c
            i += 1
        assert quote_char is None, "unterminated quote"
        assert not (bare and word == ";"), "a lone ; would end the command"
        words.append(word)
    return [exec_time_env(word) for word in words]


def exec_time_env(word):
    """systemd.service(5): "$$" passes a literal "$"; any other "$" would be an environment variable reference."""
    assert re.fullmatch(r"(?:[^$]|\$\$)*", word), f"{word!r} holds a $ that systemd would expand"
    return word.replace("$$", "$")


def test_quoting_examples():
    assert quote(["--model-path", "/models/Qwen3-8B-NVFP4", "--tp-size", "1"]) == \
        "--model-path /models/Qwen3-8B-NVFP4 --tp-size 1"
    assert quote([NASTY]) == '"a b \\"c\\" $$HOME %%h \\\\x"'
    assert quote([""]) == '""'
    assert quote([";", "100%", "$x", "it's"]) == '";" "100%%" "$$x" "it\'s"'
    assert quote([]) == ""
    assert quote(("a", "b")) == "a b"


@pytest.mark.parametrize("words", ROUND_TRIPS, ids=lambda words: repr(words)[:40])
def test_quoting_round_trips_through_the_reference_splitter(words):
    assert reference_split(quote(words)) == words


def test_reference_splitter_catches_unsafe_lines():
    for line in ["a ; b", "%h", "$HOME", '"unterminated', "100%"]:
        with pytest.raises(AssertionError):
            reference_split(line)


@pytest.mark.parametrize("words", [["--tp-size", "1", "--model-path", "/models/x"], ["a b", "it's"], ["", "x"],
                                   ['say "hi"', "back\\slash"], ["a;b", "plain-word_1.5"]])
def test_shlex_agrees_on_cases_without_percent_or_dollar(words):
    # POSIX shell and systemd quoting coincide for these characters (no %, $ nor ; on their own).
    assert shlex.split(quote(words)) == words


@pytest.mark.parametrize("word", ["a\nb", "x\r", "tab\t", "\x00", "bell\x07", "del\x7f", "c1\x9b"])
def test_quoting_refuses_newlines_and_control_characters(word):
    with pytest.raises(AnsibleFilterError, match="control character"):
        quote(["ok", word])


@pytest.mark.parametrize("bad", ["a b", b"x", None, 3, {"a": 1}, ["ok", 1], ["ok", None], ["ok", ["x"]]])
def test_quoting_refuses_what_is_not_a_list_of_strings(bad):
    with pytest.raises(AnsibleFilterError, match="systemd_exec_quote"):
        quote(bad)


def test_argv_then_quote_round_trips():
    args = {"model_path": "/models/My Model", "chat_template": NASTY, "cuda_graph_bs": [1, 2, 4],
            "json_model_override_args": {"note": "50% of $MEM", "q": '"'}, "enable_metrics": True, "api_key": ""}
    assert reference_split(quote(argv(args))) == argv(args)


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def systemd_split(command_lines, tmp_path):
    """Each ExecStart= value as systemd loads it: `systemd-analyze verify` at debug level dumps the unit, one
    "Command Line:" per command, re-quoted by systemd (quote_command_line: a word is bare or in double quotes with
    \\-escapes); the exec-time "$$" -> "$" is applied after."""
    unit = tmp_path / "sglang-quote-check.service"
    unit.write_text("[Unit]\nDescription=quote check\n[Service]\nType=oneshot\n"
                    + "".join(f"ExecStart=/bin/echo {line}\n" for line in command_lines))
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="debug", SYSTEMD_LOG_TARGET="console", SYSTEMD_PAGER="cat")
    assert SYSTEMD_ANALYZE, "systemd-analyze is missing: run scripts/ensure-tools.sh (Debian package systemd)"
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", "--generators=no", str(unit)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    dumped = re.findall(r"^\s*Command Line: (.*)$", output, flags=re.M)
    assert len(dumped) == len(command_lines), output
    token = re.compile(r'"((?:[^"\\]|\\.)*)"|([^ "]+)')  # systemd joins the words with single spaces
    split = []
    for line in dumped:
        words = []
        for match in token.finditer(line):
            if match.group(2) is not None:
                words.append(match.group(2))
            else:
                words.append(re.sub(r"\\(.)", r"\1", match.group(1)))
        assert words[0] == "/bin/echo", line
        split.append([exec_time_env(word) for word in words[1:]])
    return split


def test_quoting_round_trips_through_systemd(tmp_path):
    cases = ROUND_TRIPS + [argv({"model_path": "/models/My Model", "chat_template": NASTY, "api_key": "",
                                 "cuda_graph_bs": [1, 2], "json_model_override_args": {"note": "50% of $MEM"}})]
    assert [reference_split(quote(words)) for words in cases] == cases
    assert systemd_split([quote(words) for words in cases], tmp_path) == cases


def test_systemd_check_notices_unquoted_lines(tmp_path):
    # The systemd oracle is sharp: the same words joined naively come back different.
    split = systemd_split(["x" + NASTY.replace("$", ""), "100%%"], tmp_path)  # no $: exec_time_env would refuse it
    assert split[0][:4] == ["xa", "b", "c", "HOME"] and "%h" not in split[0]  # split, unquoted, %h expanded
    assert split[1] == ["100%"]


# --- registration and Ansible's real templar --------------------------------------------------------------------

def test_filters_are_registered():
    filters = plugin.FilterModule().filters()
    assert filters == {"sglang_server_argv": plugin.sglang_server_argv,
                       "sglang_server_flag_names": plugin.sglang_server_flag_names,
                       "systemd_exec_quote": plugin.systemd_exec_quote,
                       "sglang_server_instances_plan": plugin.sglang_server_instances_plan,
                       "sglang_server_parallel_aliases": plugin.sglang_server_parallel_aliases,
                       "sglang_server_gpus_needed": plugin.sglang_server_gpus_needed,
                       "sglang_server_url": plugin.sglang_server_url,
                       "sglang_server_local_url": plugin.sglang_server_local_url,
                       "sglang_server_worker_urls": plugin.sglang_server_worker_urls,
                       "sglang_server_docker_argv": plugin.sglang_server_docker_argv}


def run_ansible(tmp_path, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FILTER_PLUGINS="plugins/filter",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                           "-m", "debug", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split("=>", 1)[1])["msg"]


def test_renders_through_ansibles_templar(tmp_path):
    msg = run_ansible(tmp_path, "-a", "msg={{ {'tp_size': 1, 'enable_metrics': true} | sglang_server_argv }}")
    assert msg == ["--enable-metrics", "--tp-size", "1"]


def test_ansible_vars_render_to_a_quoted_exec_line(tmp_path):
    # Extra vars arrive as Ansible's own (tagged, lazily templated) types; the nested "{{ note }}" must be templated
    # before it is written as JSON.
    extra = {"sargs": {"model_path": "/models/My Model", "cuda_graph_bs": [1, 2], "mem_fraction_static": 0.8,
                       "disable_radix_cache": False, "json_model_override_args": {"note": "{{ note }}"}},
             "note": "50% of $MEM"}
    msg = run_ansible(tmp_path, "-e", json.dumps(extra),
                      "-a", "msg={{ sargs | sglang_server_argv | systemd_exec_quote }}")
    assert msg == ('--cuda-graph-bs 1 2 --json-model-override-args "{\\"note\\":\\"50%% of $$MEM\\"}" '
                   '--mem-fraction-static 0.8 --model-path "/models/My Model"')


# --- sglang_server_instances_plan -------------------------------------------------------------------------------
def test_instances_plan_merges_defaults_inventory_and_instance_args():
    plan = FILTERS["sglang_server_instances_plan"](
        [{"name": "main"}, {"name": "small", "args": {"port": 30001, "model_path": "/models/S"}, "env": {"A": "1"}}],
        {"host": "0.0.0.0", "port": 30000, "mem_fraction_static": 0.8},
        {"model_path": "/models/M", "mem_fraction_static": 0.4})
    assert plan == [
        {"name": "main", "args": {"host": "0.0.0.0", "port": 30000, "mem_fraction_static": 0.4, "model_path": "/models/M"},
         "env": {}},
        {"name": "small", "args": {"host": "0.0.0.0", "port": 30001, "mem_fraction_static": 0.4, "model_path": "/models/S"},
         "env": {"A": "1"}},
    ]


@pytest.mark.parametrize("instances,message", [
    ([{"name": "Main"}], r"sglang_server_instances\[0\]\.name"),
    ([{"name": ""}], r"sglang_server_instances\[0\]\.name"),
    ([{}], r"sglang_server_instances\[0\]\.name"),
    (["main"], r"sglang_server_instances\[0\]\.name"),
    ([{"name": "a"}, {"name": "b/c"}], r"sglang_server_instances\[1\]\.name"),
    ([{"name": "a"}, {"name": "a"}], "used twice"),
])
def test_instances_plan_refuses_bad_names(instances, message):
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS["sglang_server_instances_plan"](instances, {}, {})


# --- sglang_server_parallel_aliases -----------------------------------------------------------------------------
# Which spellings upstream has is checked against server_args.py in tests/test_upstream_contract.py.

def test_parallel_aliases_name_the_key_to_write_instead():
    aliases = FILTERS["sglang_server_parallel_aliases"]
    assert aliases({"model_path": "/m", "tp": 2}) == {"tp": "tp_size"}
    assert aliases({"tensor_parallel_size": 2, "data_parallel_size": 2, "dp": 1, "pipeline_parallel_size": 2}) == {
        "data_parallel_size": "dp_size", "dp": "dp_size", "pipeline_parallel_size": "pp_size",
        "tensor_parallel_size": "tp_size"}
    assert list(aliases({"tp": 1, "dp": 1})) == ["dp", "tp"]  # sorted, as the message lists them


def test_parallel_aliases_pass_the_names_the_role_counts():
    aliases = FILTERS["sglang_server_parallel_aliases"]
    assert aliases({"tp_size": 2, "dp_size": 2, "pp_size": 1, "ep_size": 2, "enable_dp_attention": True}) == {}
    assert aliases({}) == {}
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        aliases(["tp"])


# --- sglang_server_gpus_needed ----------------------------------------------------------------------------------
# What upstream does, read in the pinned sources (.cache/upstream/, make upstream), sglang/srt/ of 0.5.3.post3:
# - entrypoints/engine.py:776-800: with dp_size 1, one scheduler process per (pp_rank, tp_rank) of this node, on
#   GPU base_gpu_id + pp_rank_on_node * tp_size_per_node + tp_rank_on_node: tp_size x pp_size GPUs in all.
# - managers/data_parallel_controller.py:146-150: with --enable-dp-attention launch_dp_attention_schedulers, else
#   launch_dp_schedulers; :186-206 one tensor-parallel group per dp rank, the next starting at
#   base_gpu_id += tp_size * pp_size * gpu_id_step (dp_size x tp_size x pp_size GPUs); :325-342 with dp attention
#   ONE group from GPU 0 (launch_tensor_parallel_group(server_args, port_args, 0, ...)), the dp ranks carved out of
#   its tp ranks (layers/dp_attention.py:191-199, attn_tp_size = tp_size // dp_size): tp_size x pp_size GPUs.
# - server_args.py:3147-3149: tp_size * pp_size must divide by nnodes; :3158-3160 dp_size > 1 over several nodes
#   only with dp attention. engine.py:782-790: each node runs its share of the ranks.
# sglang/srt/ of 0.5.23: server_args.py:416-423 --enable-dp-attention is deprecated for --attn-dp-size;
# arg_groups/parallel_hook.py:39-60 turns --dp-size N --enable-dp-attention into attn_dp_size N, dp_size 1;
# managers/data_parallel_controller.py:244-245 attention DP launches the one group (:674-676, from GPU 0),
# otherwise :426-449 one group per replica (dp_size), base_gpu_id += tp_size * pp_size * gpu_id_step;
# parallel_hook.py:287-292 refuses dp_size > 1 with attn_dp_size > 1. So attn_dp_size adds no GPU.

gpus = plugin.sglang_server_gpus_needed


@pytest.mark.parametrize("args,needed", [
    ({}, 1),
    ({"tp_size": 2}, 2),
    ({"tp_size": 2, "pp_size": 2}, 4),
    ({"dp_size": 2}, 2),                                            # two replicas of one GPU each
    ({"tp_size": 2, "dp_size": 2}, 4),
    ({"tp_size": 2, "pp_size": 2, "dp_size": 2}, 8),
])
def test_gpus_without_dp_attention_are_tp_x_pp_per_dp_replica(args, needed):
    assert gpus(args) == needed


@pytest.mark.parametrize("args,needed", [
    ({"tp_size": 4, "dp_size": 4, "enable_dp_attention": True}, 4),   # the dp ranks share the 4 tp GPUs
    ({"tp_size": 8, "dp_size": 2, "enable_dp_attention": True}, 8),
    ({"tp_size": 2, "pp_size": 2, "dp_size": 2, "enable_dp_attention": True}, 4),
    ({"tp_size": 4, "dp_size": 4, "enable_dp_attention": False}, 16),
    ({"tp_size": 4, "dp_size": 4, "enable_dp_attention": None}, 16),   # dropped from argv: not enabled
    ({"tp_size": 4, "attn_dp_size": 4}, 4),                             # 0.5.23's spelling adds no GPU
])
def test_gpus_with_dp_attention_are_the_tp_group_only(args, needed):
    assert gpus(args) == needed


@pytest.mark.parametrize("args,needed", [
    ({"tp_size": 2, "nnodes": 2}, 1),                                   # two Sparks, one GPU each
    ({"tp_size": 4, "nnodes": 2}, 2),
    ({"tp_size": 2, "pp_size": 2, "nnodes": 2}, 2),
    ({"tp_size": 4, "dp_size": 4, "enable_dp_attention": True, "nnodes": 2}, 2),
])
def test_gpus_over_several_nodes_are_counted_per_node(args, needed):
    assert gpus(args) == needed


@pytest.mark.parametrize("key,value", [("tp_size", "2"), ("dp_size", 1.5), ("pp_size", True), ("nnodes", None)])
def test_gpus_refuse_a_size_that_is_no_integer_naming_it(key, value):
    with pytest.raises(AnsibleFilterError, match=re.escape(f"sglang_server_args.{key} must be an integer")):
        gpus({key: value})


def test_gpus_through_ansibles_templar(tmp_path):
    extra = {"sargs": {"tp_size": 4, "dp_size": 4, "enable_dp_attention": True}}
    assert run_ansible(tmp_path, "-e", json.dumps(extra), "-a", "msg={{ sargs | sglang_server_gpus_needed }}") == 4


# --- sglang_server_url / sglang_server_local_url / sglang_server_worker_urls: the one instance-URL rule ---------

@pytest.mark.parametrize("args,url", [
    ({"port": 30000}, "http://127.0.0.1:30000"),                          # no host: every address
    ({"host": "0.0.0.0", "port": 30000}, "http://127.0.0.1:30000"),
    ({"host": "::", "port": 30001}, "http://127.0.0.1:30001"),
    ({"host": "10.0.0.11", "port": 30000}, "http://10.0.0.11:30000"),     # a specific address: only that one answers
    ({"host": "fd00::5", "port": 30000}, "http://[fd00::5]:30000"),       # IPv6 in brackets
    ({"host": "spark-1.lan", "port": 30000}, "http://spark-1.lan:30000"),
])
def test_local_url_is_loopback_unless_one_address_is_bound(args, url):
    assert plugin.sglang_server_local_url(args) == url


def test_local_url_takes_another_port():
    assert plugin.sglang_server_local_url({"host": "fd00::5", "port": 30000}, "30010") == "http://[fd00::5]:30010"
    assert plugin.sglang_server_local_url({"port": 30000}, None) == "http://127.0.0.1:30000"


@pytest.mark.parametrize("host,port", [("", 30000), ("10.0.0.1", "x"), ("10.0.0.1", None)])
def test_url_refuses_a_missing_host_or_port(host, port):
    with pytest.raises(AnsibleFilterError, match="sglang_server_url needs a host and a port"):
        plugin.sglang_server_url(host, port)


def test_worker_urls_bracket_an_ipv6_advertised_address():
    plan = [{"name": "main", "args": {"port": 30000}}, {"name": "second", "args": {"port": 30001}}]
    assert plugin.sglang_server_worker_urls(plan, "fd00::11") == ["http://[fd00::11]:30000", "http://[fd00::11]:30001"]
    assert plugin.sglang_server_worker_urls(plan, "10.0.0.11") == ["http://10.0.0.11:30000", "http://10.0.0.11:30001"]
    assert plugin.sglang_server_url("[fd00::11]", 30000) == "http://[fd00::11]:30000"


def test_every_role_reaches_an_instance_through_the_filter():
    """One copy of the rule: no task or vars file of the roles that reach an instance spells its URL itself."""
    spelled = re.compile(r"http://\{\{|http://127\.0\.0\.1:\{\{ *sglang_server_instance|'host': '127\.0\.0\.1'|'http://' ~")
    found = [f"{path.relative_to(ROOT)}:{n}" for role in ("sglang_server", "sglang_verify", "sglang_bench")
             for path in sorted((ROOT / "roles" / role).glob("*/*.yml"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if spelled.search(line)]
    assert not found, found


def test_local_url_through_ansibles_templar(tmp_path):
    # As roles/sglang_server/vars/main.yml calls it: no wait port is none, which keeps args.port.
    extra = {"sargs": {"host": "fd00::5", "port": 30000}}
    msg = "msg={{ sargs | sglang_server_local_url(wait_port | default(none)) ~ '/health' }}"
    assert run_ansible(tmp_path, "-e", json.dumps(extra), "-a", msg) == "http://[fd00::5]:30000/health"


# --- sglang_server_docker_argv: the container's docker run argv -------------------------------------------------

CONTAINER = {"image": "lmsysorg/sglang@sha256:" + "a" * 64, "gpus": "all", "shm_size": "32g", "ipc_host": True,
             "ulimits": ["memlock=-1", "stack=67108864"], "rdma": False, "network_host": True,
             "volumes": ["/root/.cache/huggingface:/root/.cache/huggingface", "/root/gb10/models:/models",
                         "/etc/sglang/main.secrets:/run/secrets/sglang:ro",
                         "/etc/sglang/sglang-launch.py:/run/sglang-launch.py:ro"],
             "env_file": "/etc/sglang/main.env", "secrets": "/run/secrets/sglang", "launcher": "/run/sglang-launch.py"}
SHELL = 'set -a; . /run/secrets/sglang; set +a; exec python3 /run/sglang-launch.py "$@"'


def test_docker_argv_with_the_roles_defaults():
    instance = {"name": "main", "args": {"model_path": "/models/Qwen3-8B-NVFP4", "port": 30000}}
    assert plugin.sglang_server_docker_argv(instance, CONTAINER) == [
        "run", "--rm", "--name", "sglang-main", "--label", "org.spark-sglang.instance=main",
        "--gpus", "all", "--shm-size", "32g", "--ipc=host", "--ulimit=memlock=-1", "--ulimit=stack=67108864",
        "--network", "host",
        "--volume", "/root/.cache/huggingface:/root/.cache/huggingface", "--volume", "/root/gb10/models:/models",
        "--volume", "/etc/sglang/main.secrets:/run/secrets/sglang:ro",
        "--volume", "/etc/sglang/sglang-launch.py:/run/sglang-launch.py:ro",
        "--env-file", "/etc/sglang/main.env", CONTAINER["image"], "sh", "-c", SHELL, "sglang-launch-server",
        "--model-path", "/models/Qwen3-8B-NVFP4", "--port", "30000"]


def test_docker_argv_publishes_the_port_without_host_networking_and_adds_the_rdma_devices():
    container = dict(CONTAINER, ipc_host="false", network_host=False, rdma=True, ulimits=[], gpus=1)
    argv = plugin.sglang_server_docker_argv({"name": "second", "args": {"port": 30001}}, container)
    assert argv[:12] == ["run", "--rm", "--name", "sglang-second", "--label", "org.spark-sglang.instance=second",
                         "--gpus", "1", "--shm-size", "32g", "--device", "/dev/infiniband"]
    assert argv[12:14] == ["--publish", "30001:30001"] and "--network" not in argv and "--ipc=host" not in argv
    assert argv[-2:] == ["--port", "30001"]


def test_docker_argv_through_ansibles_templar_on_the_units_execstart(tmp_path):
    extra = {"inst": {"name": "main", "args": {"port": 30000, "served_model_name": "a b"}}, "c": CONTAINER}
    line = run_ansible(tmp_path, "-e", json.dumps(extra),
                       "-a", "msg={{ inst | sglang_server_docker_argv(c) | systemd_exec_quote }}")
    assert line.startswith("run --rm --name sglang-main ") and line.endswith('--port 30000 --served-model-name "a b"')
    # The shell's "$@" reaches the container: quoted for systemd, $ doubled (no expansion by systemd).
    assert ' sh -c "set -a; . /run/secrets/sglang; set +a; exec python3 /run/sglang-launch.py \\"$$@\\"" ' in line, line
