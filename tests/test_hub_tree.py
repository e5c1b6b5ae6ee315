"""Tests for library/hub_tree.py, the module that lists a repository's files through every page of the hub's tree.

The module is run the way Ansible runs it (`python library/hub_tree.py args.json`), against the SIMULATED hub
(sim/hub/testhub.py, loopback only) started here with small tree pages, and so is the REAL
`huggingface_hub.HfApi.list_repo_tree` (huggingface_hub 2.4.0, the project's pin): both must see every file
of the repository across several pages (docs/upstream.md, "Hugging Face hub").
"""

import importlib.util
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile

from sglang_sim_helpers import run_ansible_module, start_sim_hub

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "library" / "hub_tree.py"
ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
HUB = ROOT / "sim" / "hub" / "testhub.py"
REPO = "sim-org/Qwen3-8B-NVFP4-sim"
GATED = "sim-org/Gated-sim"
TOKEN = "hf_SIMULATED_hub_tree_test_token"
PAGE = 3

_spec = importlib.util.spec_from_file_location("hub_tree_module", MODULE)
hub_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hub_tree)


# --------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A paging sim hub: {url, manifest, stats()}; sim-org/Gated-sim is gated behind TOKEN."""
    proc, url = start_sim_hub(tmp_path_factory.mktemp("hub-tree"), "--host", "127.0.0.1", "--model", GATED,
                              "--token", TOKEN, "--gated", GATED, "--tree-page-size", str(PAGE))
    try:
        yield Hub(url)
    finally:
        proc.kill()
        proc.wait(10)


class Hub:
    def __init__(self, url):
        self.url = url
        self.manifest = self.json("/_sim/manifest")["repos"]

    def json(self, path, method="GET"):
        import urllib.request
        with urllib.request.urlopen(urllib.request.Request(self.url + path, method=method), timeout=10) as r:
            return json.loads(r.read())

    def reset(self):
        self.json("/_sim/reset", method="POST")

    def tree_requests(self):
        return [e for e in self.json("/_sim/stats")["log"] if "/tree/" in e["path"]]

    def files(self, repo, branch="main"):
        return sorted(self.manifest[repo]["commits"][self.manifest[repo]["branches"][branch]])


def run_module(tmp_path, check_mode=False, **params):
    """The module's result, and its whole stdout (to look for the token)."""
    return run_ansible_module(MODULE, params, tmp_path, check_mode=check_mode, timeout=60)


# --------------------------------------------------------------------------- the module and the real client

@pytest.mark.parametrize("repo,token", [(REPO, ""), (GATED, ""), (GATED, TOKEN)],
                         ids=["public", "gated-metadata-without-token", "gated-with-token"])
def test_module_and_real_list_repo_tree_see_every_file_across_pages(hub, tmp_path, repo, token):
    files = hub.files(repo)
    pages = -(-len(files) // PAGE)
    assert pages >= 2, files
    sha = hub.manifest[repo]["branches"]["main"]

    hub.reset()
    result, output = run_module(tmp_path, endpoint=hub.url, repo=repo, revision=sha, token=token)
    assert not result.get("failed"), result
    assert result["changed"] is False and result["status"] == 200
    assert (result["pages"], result["files"]) == (pages, len(files))
    assert sorted(e["path"] for e in result["tree"] if e["type"] == "file") == files
    requests = hub.tree_requests()
    assert len(requests) == pages and all("recursive=true" in e["path"] for e in requests)
    assert all(e["auth"] == bool(token) for e in requests)
    assert not token or token not in output

    hub.reset()
    listing = list(HfApi(endpoint=hub.url).list_repo_tree(repo, recursive=True, revision=sha, token=token or False))
    assert sorted(e.path for e in listing if isinstance(e, RepoFile)) == files
    assert len(hub.tree_requests()) == pages
    # The same entries, in the shape model_manifest reads (sizes, blob ids, LFS hashes).
    by_path = {e["path"]: e for e in result["tree"]}
    for e in listing:
        assert (by_path[e.path]["size"], by_path[e.path]["oid"]) == (e.size, e.blob_id), e.path
        assert by_path[e.path].get("lfs", {}).get("oid") == (e.lfs.sha256 if e.lfs else None), e.path


def test_a_page_in_check_mode_and_by_branch(hub, tmp_path):
    result, _ = run_module(tmp_path, check_mode=True, endpoint=hub.url + "/", repo=REPO, revision="v2")
    assert not result.get("failed") and result["changed"] is False, result
    assert sorted(e["path"] for e in result["tree"]) == hub.files(REPO, "v2")


def test_not_recursive_asks_without_recursive(hub, tmp_path):
    hub.reset()
    result, _ = run_module(tmp_path, endpoint=hub.url, repo=REPO, revision="main", recursive=False)
    assert not result.get("failed"), result
    assert not any("recursive" in e["path"] for e in hub.tree_requests())


def test_hub_errors_fail_naming_the_model_and_never_show_the_token(hub, tmp_path):
    result, output = run_module(tmp_path, endpoint=hub.url, repo=GATED, revision="main", token="hf_wrong_token_x")
    assert result["failed"] and result["status"] == 401 and GATED in result["msg"], result
    assert "hf_wrong_token_x" not in output
    result, _ = run_module(tmp_path, endpoint=hub.url, repo=REPO, revision="0" * 40)
    assert result["failed"] and result["error_code"] == "RevisionNotFound" and "HTTP 404" in result["msg"], result
    result, _ = run_module(tmp_path, endpoint=hub.url, repo="../etc", revision="main")
    assert result["failed"] and "org/name" in result["msg"], result
    result, _ = run_module(tmp_path, endpoint="http://127.0.0.1:9", repo=REPO, revision="main", timeout=5)
    assert result["failed"] and result["status"] == -1 and REPO in result["msg"], result


# --------------------------------------------------------------------------- a hub that names odd next pages

class OddHub(BaseHTTPRequestHandler):
    """Page 1 names page 2 by `link`; page 2 names itself (a loop)."""
    link = ""
    auth = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).auth.append(self.headers.get("Authorization"))
        body = json.dumps([{"type": "file", "path": self.path, "size": 1, "oid": "a" * 40}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Link", self.link if "page=2" not in self.path else '</page=2>; rel="next"')
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def odd_hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), OddHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    OddHub.auth = []
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_next_page_elsewhere_is_refused_and_gets_no_token(odd_hub, tmp_path):
    OddHub.link = '<http://127.0.0.2:1/api/models/o/m/tree/main?cursor=x>; rel="next"'
    result, output = run_module(tmp_path, endpoint=odd_hub, repo="o/m", revision="main", token="hf_secret_tok")
    assert result["failed"] and "not on the endpoint" in result["msg"] and result["pages"] == 1, result
    assert OddHub.auth == ["Bearer hf_secret_tok"] and "hf_secret_tok" not in output


def test_a_next_page_loop_is_refused(odd_hub, tmp_path):
    OddHub.link = '</page=2>; rel="next"'  # relative: resolved against the page's URL
    result, _ = run_module(tmp_path, endpoint=odd_hub, repo="o/m", revision="main")
    assert result["failed"] and "earlier page" in result["msg"] and result["pages"] == 2, result


@pytest.mark.parametrize("header,expected", [
    ('<https://h/a?cursor=1>; rel="next"', "https://h/a?cursor=1"),
    ('<https://h/p>; rel="prev", <https://h/n>; rel="next"', "https://h/n"),
    ("<https://h/n>; rel=next", "https://h/n"),
    ('<https://h/n>; title="x"; rel="last next"', "https://h/n"),
    ('<https://h/p>; rel="prev"', None),
    ("", None),
    (None, None),
])
def test_next_link_parses_link_headers(header, expected):
    assert hub_tree.next_link(header) == expected


# --------------------------------------------------------------------------- docs

def test_documentation_renders_with_ansible_doc():
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "--json", "hub_tree"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["hub_tree"]
    assert set(doc["doc"]["options"]) == {"endpoint", "repo", "revision", "recursive", "token", "timeout",
                                          "max_pages"}
    assert {"changed", "tree", "pages", "files", "status"} <= set(doc["return"])
    assert yaml.safe_load(doc["examples"])
