"""plugins/filter/http.py: bearer_header, the one rule for a token's HTTP header in the roles."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("http_filter", ROOT / "plugins" / "filter" / "http.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)


def test_a_token_is_sent_as_a_bearer_header():
    assert plugin.bearer_header("hf_abc") == {"Authorization": "Bearer hf_abc"}


def test_no_token_sends_no_header():
    assert plugin.bearer_header("") == {} and plugin.bearer_header(None) == {}


def test_the_roles_build_no_bearer_header_themselves():
    spelled = [f"{p.relative_to(ROOT)}" for p in sorted(ROOT.glob("roles/*/*/*.yml")) if "'Bearer '" in p.read_text()]
    assert not spelled, spelled
    assert plugin.FilterModule().filters() == {"bearer_header": plugin.bearer_header}
