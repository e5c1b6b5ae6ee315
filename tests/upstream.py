"""Read the pinned upstream packages (`make upstream` unpacks them into .cache/upstream/) with `ast`.

Nothing upstream is imported (sglang needs torch) or copied: the contract tests parse the real
files at test time. A missing file fails the test, naming the make target.
"""

import ast
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = REPO / ".cache" / "upstream"
_spec = importlib.util.spec_from_file_location("fetch_upstream", REPO / "scripts" / "fetch_upstream.py")
_fetch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fetch)
PINS = _fetch.PINS

SGLANG_OLD = "sglang-" + PINS["sglang"][0]  # what lmsysorg/sglang:spark ships
SGLANG_NEW = "sglang-" + PINS["sglang"][1]
ROUTER = "sglang_router-" + PINS["sglang_router"][0]
HUB = "huggingface_hub-" + PINS["huggingface_hub"][0]


def source(package, relpath):
    """The text of one upstream file, e.g. source(SGLANG_OLD, "sglang/srt/server_args.py")."""
    path = UPSTREAM / package / relpath
    if not (UPSTREAM / package / ".complete").is_file() or not path.is_file():
        pytest.fail(f"upstream file {path.relative_to(REPO)} is missing or incompletely unpacked: "
                    "run `make upstream` (pip download of the pins in scripts/fetch_upstream.py)")
    return path.read_text(encoding="utf-8")


def tree(package, relpath):
    return ast.parse(source(package, relpath))


def function(node, name):
    found = [n for n in ast.walk(node)
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    assert found, f"no function {name} upstream"
    return found[0]


def string(node, env=None):
    """A str constant, or an f-string whose parts are constants or names in env; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id in (env or {}):
                parts.append(env[v.value.id])
            elif isinstance(v, ast.Constant):
                parts.append(v.value)
            else:
                return None
        return "".join(parts)
    return None


def _module_lists(module):
    """Module-level NAME = [str, ...] (choices lists)."""
    out = {}
    for n in module.body:
        if isinstance(n, ast.Assign) and isinstance(n.value, (ast.List, ast.Tuple)) and len(n.targets) == 1:
            values = [string(e) for e in n.value.elts]
            if isinstance(n.targets[0], ast.Name) and None not in values:
                out[n.targets[0].id] = values
    return out


def argparse_options(module, scope=None, env=None):
    """Every add_argument(...) in scope (default: module): {option string: spec}. The spec has the
    call's option strings, action and type (None where not a plain name), choices (None where not
    static) and line."""
    lists = _module_lists(module)
    out = {}
    for call in ast.walk(scope or module):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "add_argument"):
            continue
        options = tuple(s for s in (string(a, env) for a in call.args) if s and s.startswith("-"))
        kw = {k.arg: k.value for k in call.keywords}
        action = kw.get("action")
        action = string(action) if action is not None and string(action) else (
            action.id if isinstance(action, ast.Name) else ("store" if action is None else None))
        typ = kw.get("type")
        choices = kw.get("choices")
        if isinstance(choices, ast.Name):
            choices = lists.get(choices.id)
        elif isinstance(choices, (ast.List, ast.Tuple)):
            choices = [string(e) for e in choices.elts]
        else:
            choices = None
        spec = {"options": options, "action": action, "line": call.lineno,
                "type": typ.id if isinstance(typ, ast.Name) else None,
                "choices": choices if choices and None not in choices else None}
        for o in options:
            out[o] = spec
    return out


_METHODS = {"get": {"GET"}, "post": {"POST"}, "put": {"PUT"}, "delete": {"DELETE"}}


def fastapi_routes(module):
    """{path: {methods}} of every @app.get/post/put/delete/api_route(...) with a literal path."""
    out = {}
    for fn in ast.walk(module):
        for d in getattr(fn, "decorator_list", []):
            if not (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                    and isinstance(d.func.value, ast.Name) and d.func.value.id == "app" and d.args):
                continue
            path = string(d.args[0])
            kw = {k.arg: k.value for k in d.keywords}
            if d.func.attr == "api_route" and "methods" in kw:
                methods = {string(e) for e in kw["methods"].elts}
            else:
                methods = _METHODS.get(d.func.attr)
            if path and methods:
                out.setdefault(path, set()).update(methods)
    return out


def prometheus_metrics(module):
    """{name: type} of every Gauge/Counter/Histogram/Summary(name="...") call."""
    out = {}
    for call in ast.walk(module):
        if not isinstance(call, ast.Call):
            continue
        kind = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
        if kind not in ("Gauge", "Counter", "Histogram", "Summary"):
            continue
        kw = {k.arg: k.value for k in call.keywords}
        name = string(kw["name"]) if "name" in kw else (string(call.args[0]) if call.args else None)
        if name:
            out[name] = kind.lower()
    return out


def dict_literal_keys(scope, var):
    """The str keys of the dict literal(s) assigned to `var` in scope."""
    keys = []
    for n in ast.walk(scope):
        if (isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == var for t in n.targets)):
            keys += [string(k) for k in n.value.keys if k is not None]
    assert keys, f"no dict literal assigned to {var} upstream"
    return keys


def dataclass_fields(module, name):
    cls = next(n for n in ast.walk(module) if isinstance(n, ast.ClassDef) and n.name == name)
    return [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def annotated_cli_options(package, directory="sglang/srt/arg_groups/fields"):
    """0.5.23's options declared as fields: every `name: A[T, "help"]` or `A[T, Arg(...)]` of a class in the
    directory, as `add_cli_args_from_dataclass` (sglang/srt/arg_groups/arg_utils.py) registers it: `Arg.cli_name`
    or `--` + the name with `-` for `_`, plus `Arg.aliases`, unless `Arg(no_cli=True)`.
    {option string: {"options": (...), "field": name}}."""
    out = {}
    for path in sorted((UPSTREAM / package / directory).glob("*.py")):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            for node in cls.body:
                ann = getattr(node, "annotation", None)
                if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                        and isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) and ann.value.id == "A"
                        and isinstance(ann.slice, ast.Tuple) and len(ann.slice.elts) == 2):
                    continue
                meta = ann.slice.elts[1]
                if isinstance(meta, ast.Call) and isinstance(meta.func, ast.Name) and meta.func.id == "Arg":
                    kw = {k.arg: k.value for k in meta.keywords}
                    if isinstance(kw.get("no_cli"), ast.Constant) and kw["no_cli"].value is True:
                        continue
                    name = string(kw["cli_name"]) if "cli_name" in kw else None
                    aliases = [string(e) for e in kw["aliases"].elts] if isinstance(kw.get("aliases"), ast.List) else []
                elif string(meta) is not None:
                    name, aliases = None, []
                else:
                    continue  # Derived(...) and the like: no CLI input
                options = (name or "--" + node.target.id.replace("_", "-"), *aliases)
                for option in options:
                    out[option] = {"options": options, "field": node.target.id}
    return out
