#!/usr/bin/env python3
"""SIMULATED Hugging Face hub (test double).

A tiny, dependency-free (standard library only) HTTP server that answers the
subset of the Hugging Face Hub API that the real `hf download`
(huggingface_hub 2.4.0) uses, serving small GENERATED models.  Nothing here is a
real model: every repository, config and weight file is synthetic and marked
as simulated.

Usage:
    python3 testhub.py --host 127.0.0.1 --port 8900 [--data-dir DIR] [--token T]
                       [--gated ORG/NAME ...] [--model ORG/NAME ...] [--weights-size BYTES]
                       [--tree-page-size N] [--interrupt-once BYTES] [--quiet]

    --port 0 picks a free port; the banner's "listening on" line tells which.

Repositories (all deterministic: same arguments -> same bytes, same commit shas):
    sim-org/Qwen3-8B-NVFP4-sim is always served; every --model ORG/NAME adds one.
    Branch `main` -> first commit; branch `v2` -> second commit whose
    config.json differs (so pinning to a sha can be told apart from a branch).

Endpoints:
    GET  /api/models/{repo}                       model info for `main`
    GET  /api/models/{repo}/revision/{rev}        model info (id, sha, siblings, ...)
    GET  /api/models/{repo}/tree/{rev}[/{path}]   file listing (type, path, size, oid, lfs), in pages
                                                  of --tree-page-size entries; a further page is named
                                                  by `Link: <url>; rel="next"` (a `cursor` parameter)
    GET  /api/models/{repo}/refs                  branches
    GET  /api/models/{repo}/auth-check            200 if the request may download (huggingface_hub auth_check)
    HEAD /{repo}/resolve/{rev}/{file}             metadata headers
    GET  /{repo}/resolve/{rev}/{file}             file bytes (Range supported -> 206)
    GET  /api/whoami-v2                           a simulated user (token required)
    GET  /api/agent-harnesses                     empty registry (hf 2.x asks for it)
    GET  /_sim/stats                              {"bytes_served", "requests", "files", "log", ...}
    POST /_sim/reset                              zero the counters
    GET  /_sim/manifest                           repos, branches, shas, files with sha256

Errors carry `X-Error-Code` like the real hub: RepoNotFound (hf maps it to
RepositoryNotFoundError), RevisionNotFound, EntryNotFound, GatedRepo.

Gated repos (--token; with --gated only those named, else every repo) behave like the real
hub's: their metadata (info, revision, tree, refs) is served to anyone, their files (resolve)
and auth-check answer 401 GatedRepo without `Authorization: Bearer`; a wrong token is refused
(401, "Invalid credentials in Authorization header") on every path of a gated repo.

With --data-dir, the generated files are also written to
DIR/<org>/<name>/<sha>/<file>, with DIR/<org>/<name>/refs/<branch> and
DIR/manifest.json, so tests can compare downloads byte for byte.
"""

import argparse
import base64
import email.utils
import hashlib
import json
import os
import struct
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BANNER = "SIMULATED Hugging Face hub (test double)"
DEFAULT_MODEL = "sim-org/Qwen3-8B-NVFP4-sim"
DEFAULT_WEIGHTS_SIZE = 4 * 1024 * 1024
# The real hub's tree pages (huggingface_hub 2.4.0 hf_api.py:4013, _iter_repo_tree_pages: "1000 entries per page").
DEFAULT_TREE_PAGE_SIZE = 1000
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
# Fixed timestamps keep every answer deterministic.
CREATED_AT = "2025-10-01T00:00:00.000Z"
COMMIT_DATES = ["2025-10-01T00:00:00.000Z", "2025-10-15T00:00:00.000Z"]
CHUNK = 64 * 1024
LOG_LIMIT = 2000


# --------------------------------------------------------------------------- #
# Deterministic model generation
# --------------------------------------------------------------------------- #

def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data):
    return (
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:%s\nsize %d\n" % (hashlib.sha256(data).hexdigest(), len(data))
    ).encode()


def _dumps(obj):
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


def qwen3_config(repo_id, revision_no):
    """A Qwen3-8B-like config (the real model's shapes), marked simulated."""
    cfg = {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 12288,
        "max_position_embeddings": 40960,
        "max_window_layers": 36,
        "model_type": "qwen3",
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 151936,
        "simulated": True,
        "sim_repo_id": repo_id,
        "sim_revision": revision_no,
    }
    if "nvfp4" in repo_id.lower():
        cfg["quantization_config"] = {
            "quant_method": "modelopt",
            "quant_algo": "NVFP4",
            "group_size": 16,
            "kv_cache_quant_algo": None,
            "exclude_modules": ["lm_head"],
        }
    if revision_no >= 2:
        # The v2 revision changes something a server would notice.
        cfg["max_position_embeddings"] = 32768
    return cfg


def tiny_tokenizer():
    words = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>",
             "hello", "world", "simulated", "spark", "gb10", "sglang",
             "the", "a", "is", "model", "token", "!", ".", ","]
    vocab = {w: i for i, w in enumerate(words)}
    added = [
        {"id": vocab[t], "content": t, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
        for t in ("<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>")
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }


def fake_safetensors(repo_id, revision_no, size):
    """A valid safetensors file (U8 tensors) of about `size` bytes of
    deterministic pseudo-random data (SHAKE-256 of the repo id)."""
    size = max(int(size), 64)
    n_tensors = 4
    per = max(size // n_tensors, 16)
    header = {"__metadata__": {"format": "pt", "simulated": "true",
                               "sim_repo_id": repo_id}}
    names = ["model.embed_tokens.weight", "model.layers.0.mlp.weight",
             "model.norm.weight", "lm_head.weight"]
    for i, name in enumerate(names):
        header[name] = {"dtype": "U8", "shape": [per],
                        "data_offsets": [i * per, (i + 1) * per]}
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    # Weights do not change between revisions (only config does), like a
    # config-only fix upstream; so the blob is shared by both commits.
    seed = ("simulated-weights:%s" % repo_id).encode()
    body = hashlib.shake_256(seed).digest(per * n_tensors)
    return struct.pack("<Q", len(hjson)) + hjson + body


def build_files(repo_id, revision_no, weights_size):
    name = repo_id.split("/")[-1]
    readme = (
        "---\nlicense: apache-2.0\ntags:\n- simulated\n- test-double\n---\n\n"
        "# %s (SIMULATED)\n\n"
        "This repository is SIMULATED: it was generated by the project's test hub\n"
        "(`sim/hub/testhub.py`). The weights are deterministic pseudo-random bytes,\n"
        "not a real model. Revision %d.\n" % (name, revision_no)
    ).encode()
    files = {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": readme,
        "config.json": _dumps(qwen3_config(repo_id, revision_no)),
        "generation_config.json": _dumps({
            "bos_token_id": 151643, "eos_token_id": [151645, 151643],
            "do_sample": True, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
            "transformers_version": "4.51.0", "simulated": True}),
        "tokenizer.json": _dumps(tiny_tokenizer()),
        "tokenizer_config.json": _dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 40960,
            "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
            "unk_token": "<unk>", "clean_up_tokenization_spaces": False,
            "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                             "{{ m['content'] }}<|im_end|>\n{% endfor %}"
                             "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
            "simulated": True}),
        "model.safetensors": fake_safetensors(repo_id, revision_no, weights_size),
    }
    if "nvfp4" in repo_id.lower():
        files["hf_quant_config.json"] = _dumps({
            "producer": {"name": "modelopt", "version": "0.0.0-simulated"},
            "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": None,
                             "group_size": 16, "exclude_modules": ["lm_head"]},
            "simulated": True})
    return dict(sorted(files.items()))


class FileEntry(object):
    def __init__(self, path, data):
        self.path = path
        self.data = data
        self.size = len(data)
        self.is_lfs = path.endswith(LFS_SUFFIXES)
        self.sha256 = hashlib.sha256(data).hexdigest()
        if self.is_lfs:
            pointer = lfs_pointer(data)
            self.oid = git_blob_sha1(pointer)  # git stores the pointer
            self.pointer_size = len(pointer)
        else:
            self.oid = git_blob_sha1(data)
            self.pointer_size = None

    @property
    def etag(self):
        return self.sha256 if self.is_lfs else self.oid

    def tree_item(self):
        item = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.is_lfs:
            item["lfs"] = {"oid": self.sha256, "size": self.size,
                           "pointerSize": self.pointer_size}
        return item

    def sibling(self, blobs):
        s = {"rfilename": self.path}
        if blobs:
            s["size"] = self.size
            s["blobId"] = self.oid
            if self.is_lfs:
                s["lfs"] = {"sha256": self.sha256, "size": self.size,
                            "pointerSize": self.pointer_size}
        return s


class Commit(object):
    def __init__(self, repo_id, files, date, parent=None):
        self.files = {p: FileEntry(p, d) for p, d in files.items()}
        h = hashlib.sha1()
        h.update(("simulated-commit\nrepo %s\n" % repo_id).encode())
        if parent:
            h.update(("parent %s\n" % parent).encode())
        for p in sorted(self.files):
            h.update(("%s %s\n" % (self.files[p].oid, p)).encode())
        self.sha = h.hexdigest()
        self.date = date


class Repo(object):
    def __init__(self, repo_id, weights_size):
        self.id = repo_id
        c1 = Commit(repo_id, build_files(repo_id, 1, weights_size), COMMIT_DATES[0])
        c2 = Commit(repo_id, build_files(repo_id, 2, weights_size), COMMIT_DATES[1],
                    parent=c1.sha)
        self.commits = {c1.sha: c1, c2.sha: c2}
        self.branches = {"main": c1.sha, "v2": c2.sha}

    def resolve(self, rev):
        if rev in self.branches:
            return self.commits[self.branches[rev]]
        return self.commits.get(rev)


def build_repos(model_ids, weights_size):
    repos = {}
    for mid in [DEFAULT_MODEL] + list(model_ids or []):
        if mid not in repos:
            repos[mid] = Repo(mid, weights_size)
    return repos


def manifest(repos):
    out = {"simulated": True, "repos": {}}
    for rid, repo in repos.items():
        out["repos"][rid] = {
            "branches": dict(repo.branches),
            "commits": {
                sha: {p: {"size": f.size, "sha256": f.sha256, "oid": f.oid, "lfs": f.is_lfs}
                      for p, f in c.files.items()}
                for sha, c in repo.commits.items()
            },
        }
    return out


def write_data_dir(repos, data_dir):
    for rid, repo in repos.items():
        base = os.path.join(data_dir, *rid.split("/"))
        for sha, commit in repo.commits.items():
            for path, f in commit.files.items():
                dest = os.path.join(base, sha, path)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.exists(dest) and os.path.getsize(dest) == f.size:
                    with open(dest, "rb") as fh:
                        if hashlib.sha256(fh.read()).hexdigest() == f.sha256:
                            continue
                with open(dest + ".tmp", "wb") as fh:
                    fh.write(f.data)
                os.replace(dest + ".tmp", dest)
        refs = os.path.join(base, "refs")
        os.makedirs(refs, exist_ok=True)
        for branch, sha in repo.branches.items():
            with open(os.path.join(refs, branch), "w") as fh:
                fh.write(sha)
    with open(os.path.join(data_dir, "manifest.json"), "w") as fh:
        json.dump(manifest(repos), fh, indent=2)
        fh.write("\n")


# --------------------------------------------------------------------------- #
# HTTP server
# --------------------------------------------------------------------------- #

class Stats(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.bytes_served = 0
            self.requests = 0
            self.resolve_gets = 0
            self.interrupted = 0
            self.files = {}
            self.log = []

    def request(self, entry):
        with self.lock:
            self.requests += 1
            self.log.append(entry)
            if len(self.log) > LOG_LIMIT:
                del self.log[: len(self.log) - LOG_LIMIT]

    def served(self, key, n):
        with self.lock:
            self.bytes_served += n
            self.files[key] = self.files.get(key, 0) + n

    def snapshot(self):
        with self.lock:
            return {"simulated": True, "bytes_served": self.bytes_served,
                    "requests": self.requests, "resolve_gets": self.resolve_gets,
                    "interrupted": self.interrupted,
                    "files": dict(self.files), "log": list(self.log)}


def parse_range(header, size):
    """Return (start, end_inclusive) or None for 'no range', or 'bad' for 416."""
    if not header:
        return None
    header = header.strip()
    if not header.startswith("bytes=") or "," in header:
        return None  # unsupported forms: serve the whole file (allowed by RFC 9110)
    spec = header[len("bytes="):].strip()
    start_s, _, end_s = spec.partition("-")
    try:
        if start_s == "":
            n = int(end_s)
            if n <= 0:
                return "bad"
            return (max(size - n, 0), size - 1)
        start = int(start_s)
        end = int(end_s) if end_s else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "bad"
    return (start, min(end, size - 1))


def encode_cursor(offset):
    return base64.urlsafe_b64encode(("sim-tree:%d" % offset).encode()).decode().rstrip("=")


def decode_cursor(cursor):
    """The offset an encode_cursor() string names, or None."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        return None
    prefix, _, offset = text.partition(":")
    return int(offset) if prefix == "sim-tree" and offset.isdigit() else None


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SimulatedHFHub/1.0"

    # set on the class by make_server()
    repos = {}
    token = None
    gated = frozenset()   # with --gated, only these repos need the token
    tree_page_size = DEFAULT_TREE_PAGE_SIZE
    stats = None
    quiet = False
    interrupt_once = 0
    interrupted_keys = set()
    interrupt_lock = threading.Lock()

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("[sim-hub] %s - %s\n" % (self.address_string(), fmt % args))

    # ---- helpers -------------------------------------------------------- #
    def _send(self, status, body=b"", ctype="application/json", headers=None, head=False):
        if isinstance(body, (dict, list)):
            body = (json.dumps(body) + "\n").encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Simulated", "true")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
        self._status = status

    def _error(self, status, code, message, head=False, extra=None):
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        headers.update(extra or {})
        self._send(status, {"error": message, "simulated": True}, headers=headers, head=head)

    def _authorized(self, head=False, repo_id=None, kind="files"):
        """kind: "metadata" (info, revision, tree, refs: public without a token, as on the real
        hub), "files" (resolve), "auth-check" or "user" (whoami): these need the token."""
        if not self.token:
            return True
        if self.gated and repo_id not in self.gated:
            return True
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer " + self.token:
            return True
        if auth:
            self._send(401, {"error": "Invalid credentials in Authorization header"},
                       headers={"X-Error-Message": "Invalid credentials in Authorization header"},
                       head=head)
            return False
        if kind == "metadata":
            return True
        self._error(401, "GatedRepo",
                    "Access to this simulated repository requires a token "
                    "(Authorization: Bearer ...).", head=head)
        return False

    def _record(self):
        entry = {"method": self.command, "path": self.path,
                 "status": getattr(self, "_status", None),
                 "range": self.headers.get("Range"),
                 "auth": bool(self.headers.get("Authorization")),
                 "user_agent": self.headers.get("User-Agent", "")}
        if not self.path.startswith("/_sim/"):
            self.stats.request(entry)

    # ---- dispatch ------------------------------------------------------- #
    def do_HEAD(self):
        self._dispatch(head=True)

    def do_GET(self):
        self._dispatch(head=False)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_sim/reset":
            self.stats.reset()
            with self.interrupt_lock:
                self.interrupted_keys.clear()
            self._send(200, {"reset": True, "simulated": True})
        else:
            self._error(405, "MethodNotAllowed", "Only GET/HEAD are simulated here.")
        self._record()

    def _dispatch(self, head):
        self._status = None
        try:
            self._route(head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._record()

    def _route(self, head):
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        raw = [s for s in split.path.split("/") if s != ""]
        parts = [urllib.parse.unquote(s) for s in raw]

        if split.path == "/_sim/stats":
            return self._send(200, self.stats.snapshot(), head=head)
        if split.path == "/_sim/manifest":
            return self._send(200, manifest(self.repos), head=head)
        if split.path in ("/", "/_sim/health"):
            return self._send(200, {"status": "ok", "simulated": True, "banner": BANNER,
                                    "repos": sorted(self.repos)}, head=head)

        if split.path == "/api/agent-harnesses":
            # hf 2.x fetches this registry (best effort, cached a day); an empty
            # one means "no agent detected" and keeps 404s out of the log.
            return self._send(200, {"standardEnvVars": [], "harnesses": {}}, head=head)

        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            target = "%s/%s" % (parts[2], parts[3])
            kind = "auth-check" if parts[4:] == ["auth-check"] else "metadata"
        elif len(parts) >= 2:
            target = "%s/%s" % (parts[0], parts[1])
            kind = "user" if parts[0] == "api" else "files"
        else:
            target, kind = None, "files"
        if not self._authorized(head, target, kind):
            return

        if parts[:2] == ["api", "whoami-v2"]:
            return self._send(200, {"type": "user", "name": "sim-user", "fullname": "Simulated User",
                                    "auth": {"accessToken": {"displayName": "sim", "role": "read"}},
                                    "simulated": True}, head=head)

        if len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
            repo_id = "%s/%s" % (parts[2], parts[3])
            repo = self.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound",
                                   "Repository not found (simulated hub serves: %s)" % ", ".join(sorted(self.repos)),
                                   head=head)
            rest = parts[4:]
            if not rest:
                return self._model_info(repo, "main", query, head)
            if rest[0] == "revision" and len(rest) >= 2:
                return self._model_info(repo, "/".join(rest[1:]), query, head)
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo, rest[1], "/".join(rest[2:]), split, head)
            if rest == ["auth-check"]:
                # huggingface_hub's auth_check reads only the status (401/403 + X-Error-Code above).
                return self._send(200, {"simulated": True}, head=head)
            if rest[0] == "refs":
                return self._send(200, {
                    "branches": [{"name": b, "ref": "refs/heads/" + b, "targetCommit": s}
                                 for b, s in sorted(repo.branches.items())],
                    "tags": [], "converts": []}, head=head)
            return self._error(404, "EntryNotFound", "Unknown simulated API path", head=head)

        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id = "%s/%s" % (parts[0], parts[1])
            repo = self.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", head=head)
            return self._resolve(repo, parts[3], "/".join(parts[4:]), head)

        return self._error(404, "EntryNotFound", "Not found on the simulated hub", head=head)

    # ---- endpoints ------------------------------------------------------ #
    def _commit_or_404(self, repo, rev, head):
        commit = repo.resolve(rev)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
        return commit

    def _model_info(self, repo, rev, query, head):
        commit = self._commit_or_404(repo, rev, head)
        if commit is None:
            return
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        org, name = repo.id.split("/", 1)
        body = {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": org,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": CREATED_AT,
            "private": False,
            "gated": "manual" if self.token and (not self.gated or repo.id in self.gated) else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "library_name": "transformers",
            "pipeline_tag": "text-generation",
            "tags": ["transformers", "safetensors", "qwen3", "text-generation", "simulated"],
            "config": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"},
            "cardData": {"tags": ["simulated"]},
            "siblings": [f.sibling(blobs) for f in commit.files.values()],
            "simulated": True,
        }
        if blobs:
            body["usedStorage"] = sum(f.size for f in commit.files.values())
        self._send(200, body, head=head)

    def _tree(self, repo, rev, sub, split, head):
        commit = self._commit_or_404(repo, rev, head)
        if commit is None:
            return
        query = urllib.parse.parse_qs(split.query)
        sub = sub.strip("/")
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        items = []
        dirs = set()
        for path, f in commit.files.items():
            if sub and not path.startswith(sub + "/"):
                continue
            rel = path[len(sub) + 1:] if sub else path
            if "/" in rel and not recursive:
                d = (sub + "/" if sub else "") + rel.split("/", 1)[0]
                dirs.add(d)
                continue
            items.append(f.tree_item())
        if sub and not items and not dirs:
            return self._error(404, "EntryNotFound", "%s does not exist on %s" % (sub, rev),
                               head=head, extra={"X-Repo-Commit": commit.sha})
        listing = [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                    "size": 0, "path": d} for d in sorted(dirs)] + items
        # Pages like the real hub's (huggingface_hub follows `Link: <url>; rel="next"`,
        # utils/_pagination.py): the next page's URL keeps every query parameter and adds an
        # opaque cursor.
        start = 0
        if "cursor" in query:
            start = decode_cursor(query["cursor"][0])
            if start is None or start >= len(listing):
                return self._error(400, "BadRequest", "Invalid cursor", head=head)
        end = start + self.tree_page_size
        headers = {}
        if end < len(listing):
            params = [(k, v) for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)
                      if k != "cursor"] + [("cursor", encode_cursor(end))]
            host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
            headers["Link"] = '<http://%s%s?%s>; rel="next"' % (host, split.path, urllib.parse.urlencode(params))
        self._send(200, listing[start:end], headers=headers, head=head)

    def _resolve(self, repo, rev, path, head):
        commit = self._commit_or_404(repo, rev, head)
        if commit is None:
            return
        f = commit.files.get(path)
        if f is None:
            return self._error(404, "EntryNotFound", "%s does not exist on %s" % (path, rev),
                               head=head, extra={"X-Repo-Commit": commit.sha})
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": '"%s"' % f.etag,
            "Accept-Ranges": "bytes",
            "Last-Modified": email.utils.formatdate(0, usegmt=True),
            "Content-Disposition": 'inline; filename="%s"' % path.split("/")[-1],
        }
        if f.is_lfs:
            headers["X-Linked-Etag"] = '"%s"' % f.sha256
            headers["X-Linked-Size"] = str(f.size)
        ctype = "application/json" if path.endswith(".json") else "application/octet-stream"

        rng = parse_range(self.headers.get("Range"), f.size)
        if rng == "bad":
            headers["Content-Range"] = "bytes */%d" % f.size
            return self._send(416, b"", ctype, headers=headers, head=head)
        start, end, status = 0, f.size - 1, 200
        if rng is not None:
            start, end = rng
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, f.size)
        length = end - start + 1 if f.size else 0

        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Simulated", "true")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self._status = status
        if head:
            return

        with self.stats.lock:
            self.stats.resolve_gets += 1
        key = "%s/%s" % (repo.id, path)
        # Fault injection (--interrupt-once N): cut the first full GET of each
        # LFS file after N bytes, so clients must resume with a Range request.
        cut = None
        if self.interrupt_once and f.is_lfs and rng is None and self.interrupt_once < length:
            with self.interrupt_lock:
                if key not in self.interrupted_keys:
                    self.interrupted_keys.add(key)
                    cut = self.interrupt_once
        limit = cut if cut is not None else length
        pos, sent = start, 0
        try:
            while sent < limit:
                n = min(CHUNK, limit - sent)
                self.wfile.write(f.data[pos:pos + n])
                pos += n
                sent += n
        finally:
            self.stats.served(key, sent)
        if cut is not None:
            with self.stats.lock:
                self.stats.interrupted += 1
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass


def make_server(host, port, repos, token=None, quiet=False, interrupt_once=0, gated=(),
                tree_page_size=DEFAULT_TREE_PAGE_SIZE):
    handler = type("BoundHubHandler", (HubHandler,), {
        "repos": repos, "token": token or None, "gated": frozenset(gated), "stats": Stats(), "quiet": quiet,
        "tree_page_size": int(tree_page_size),
        "interrupt_once": int(interrupt_once or 0), "interrupted_keys": set(),
        "interrupt_lock": threading.Lock(),
    })
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv=None):
    ap = argparse.ArgumentParser(description=BANNER)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8900, help="0 = pick a free port")
    ap.add_argument("--data-dir", help="also write the generated repos here (+ manifest.json)")
    ap.add_argument("--token", help="require Authorization: Bearer TOKEN")
    ap.add_argument("--gated", action="append", default=[], metavar="ORG/NAME",
                    help="with --token: only these repos need it (repeatable); default all")
    ap.add_argument("--model", action="append", default=[], metavar="ORG/NAME",
                    help="serve another generated model (repeatable); %s is always served" % DEFAULT_MODEL)
    ap.add_argument("--weights-size", type=int, default=DEFAULT_WEIGHTS_SIZE,
                    help="approximate size in bytes of model.safetensors (default %(default)s)")
    ap.add_argument("--tree-page-size", type=int, default=DEFAULT_TREE_PAGE_SIZE, metavar="N",
                    help="entries per page of a tree listing; further pages by Link rel=next "
                         "(default %(default)s, the real hub's)")
    ap.add_argument("--interrupt-once", type=int, default=0, metavar="BYTES",
                    help="fault injection: cut the first full GET of each LFS file after BYTES")
    ap.add_argument("--quiet", action="store_true", help="no access log on stderr")
    ap.add_argument("--show-refs", action="store_true",
                    help="print {repo: {branch: commit sha}} as JSON and exit (for test inventories)")
    args = ap.parse_args(argv)

    for mid in args.model:
        if mid.count("/") != 1 or not all(mid.split("/")):
            ap.error("--model must look like ORG/NAME: %r" % mid)

    repos = build_repos(args.model, args.weights_size)
    if args.show_refs:
        print(json.dumps({rid: dict(repo.branches) for rid, repo in sorted(repos.items())}, indent=1))
        return 0
    if args.data_dir:
        write_data_dir(repos, args.data_dir)
    if args.tree_page_size < 1:
        ap.error("--tree-page-size must be at least 1: %r" % args.tree_page_size)
    unknown = [g for g in args.gated if g not in repos]
    if unknown or (args.gated and not args.token):
        ap.error("--gated needs --token and a served repo: %r" % (unknown or args.gated))
    server = make_server(args.host, args.port, repos, args.token, args.quiet, args.interrupt_once, args.gated,
                         args.tree_page_size)
    host, port = server.server_address[:2]
    print("%s" % BANNER)
    print("  not the real huggingface.co; serves generated, simulated models only")
    for rid, repo in repos.items():
        print("  repo %s  main=%s  v2=%s" % (rid, repo.branches["main"], repo.branches["v2"]))
    if args.token:
        print("  gated (files and auth-check need Authorization: Bearer ...): %s"
              % (", ".join(args.gated) or "every repo"))
    print("  tree listings in pages of %d entries" % args.tree_page_size)
    print("listening on http://%s:%d" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
