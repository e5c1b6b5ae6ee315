#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: Apache-2.0
"""Verify a downloaded Hugging Face model against the hub's tree listing and record a manifest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: model_manifest
short_description: Verify a model copy against the Hugging Face hub's metadata and write a manifest
description:
  - Checks every file the hub lists for one commit of a model repository (the output of
    C(GET /api/models/{repo}/tree/{revision}?recursive=true), every page of it, as the C(hub_tree)
    module returns it) against the copy in O(path).
  - Files stored with Git LFS (entries with an C(lfs) key) must have the size C(lfs.size) and the
    SHA-256 C(lfs.oid). Other files must have the size C(size) and the git blob SHA-1 C(oid),
    the SHA-1 of the header C(blob <size>), a NUL byte and the content. Directory entries are
    ignored.
  - Files are hashed with a streaming read in 1 MiB chunks, so models of any size can be checked.
  - Symbolic links (as in a Hugging Face cache snapshot, whose files point into C(../../blobs)) are
    followed.
  - On success a JSON manifest is written atomically inside O(path), only when it is absent or
    differs (ignoring its C(verified_at) time), so a second run reports no change.
  - With O(state=check_manifest) the module only compares an existing manifest with the expected
    file list and checks that every file exists with the recorded size; it reads no file contents
    and never changes anything.
author:
  - spark-sglang contributors
options:
  path:
    description:
      - The directory holding the model files, for example a C(hf download --local-dir) target or a
        Hugging Face cache snapshot directory C(.../models--org--name/snapshots/<sha>).
      - The manifest is written in this directory.
    type: path
    required: true
  tree:
    description:
      - The hub's recursive tree listing for O(revision), a list of entries with the keys C(type)
        (C(file) or C(directory)), C(path), C(size), C(oid) and, for LFS files,
        C(lfs) (a dict with C(oid), C(size) and C(pointerSize)).
      - All of it - the hub pages the listing (1000 entries a page, the next one named by a
        C(Link) header), so one C(GET) of it may hold only part of a large repository. C(hub_tree)
        follows the pages.
    type: list
    elements: dict
    required: true
  include:
    description:
      - Only files whose path matches at least one of these patterns are expected.
      - Same semantics as C(hf download --include) (huggingface_hub C(filter_repo_objects)) -
        C(fnmatch) patterns matched case-sensitively against the whole path, where C(*) also
        matches C(/), and a pattern ending with C(/) means C(<dir>/*).
      - An empty list means no include filter (every file is a candidate).
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Files whose path matches any of these patterns are not expected.
      - Same semantics as C(hf download --exclude); see O(include).
    type: list
    elements: str
    default: []
  repo:
    description:
      - The model repository id (C(org/name)); recorded in the manifest and used in messages.
    type: str
    required: true
  revision:
    description:
      - The commit SHA the tree listing belongs to; recorded in the manifest.
    type: str
    required: true
  manifest_name:
    description:
      - File name of the manifest, created inside O(path). Must be a plain file name.
    type: str
    default: .spark-sglang-manifest.json
  state:
    description:
      - V(verified) hashes every expected file, fails listing the problems, and writes the manifest
        when it is absent or different.
      - V(check_manifest) is cheap and read-only - it reports RV(complete=true) only when the
        existing manifest matches O(repo), O(revision) and the expected files (sizes and hashes)
        and every file exists with the recorded size. It does not fail for missing or changed
        files.
    type: str
    choices: [verified, check_manifest]
    default: verified
notes:
  - Uses only the Python standard library on the managed host.
  - In check mode, O(state=verified) still verifies every file (read-only) and reports
    RV(changed=true) when the manifest would be written, without writing it.
  - The tree listing, the patterns and the revision must describe the same download, or the
    verification fails (for example because files excluded by C(hf download) are expected).
  - An empty expected file list (no tree file matches the patterns) is an error.
attributes:
  check_mode:
    support: full
    description: Verifies without writing the manifest.
  diff_mode:
    support: none
    description: No diff is reported.
"""

EXAMPLES = r"""
- name: Fetch the hub's file listing for the pinned commit, every page
  hub_tree:
    endpoint: https://huggingface.co
    repo: "{{ model_repo }}"
    revision: "{{ model_revision }}"
  register: model_tree
  delegate_to: localhost
  run_once: true

- name: Verify this host's copy of the model and record the manifest
  model_manifest:
    path: /home/spark/gb10/models/Qwen3-8B-NVFP4
    repo: "{{ model_repo }}"
    revision: "{{ model_revision }}"
    tree: "{{ model_tree.tree }}"
    include: ["*.json", "*.safetensors", "tokenizer*"]

- name: Cheap check whether a verified copy is already in place
  model_manifest:
    path: /home/spark/gb10/models/Qwen3-8B-NVFP4
    repo: "{{ model_repo }}"
    revision: "{{ model_revision }}"
    tree: "{{ model_tree.tree }}"
    state: check_manifest
  register: model_manifest_check

- name: Copy the model from the seed host only when it is not complete
  ansible.builtin.debug:
    msg: "the model must be copied"
  when: not model_manifest_check.complete
"""

RETURN = r"""
changed:
  description: Whether the manifest file was written (or, in check mode, would be written).
  returned: always
  type: bool
  sample: true
complete:
  description:
    - With O(state=verified), true when every expected file was verified.
    - With O(state=check_manifest), true when the manifest matches and every file has its recorded size.
  returned: always
  type: bool
  sample: true
files:
  description: The number of expected files (after O(include) and O(exclude)).
  returned: always
  type: int
  sample: 7
bytes:
  description: The total size in bytes of the expected files.
  returned: always
  type: int
  sample: 5712314880
missing:
  description: Paths (relative to O(path)) of expected files that do not exist or are not regular files.
  returned: always
  type: list
  elements: str
  sample: ["config.json"]
mismatched:
  description: Expected files whose size or content hash differs.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file path relative to O(path).
      type: str
    expected:
      description: The expected size (int) or hash (hex string).
      type: raw
    actual:
      description: The actual size (int) or hash (hex string).
      type: raw
    what:
      description: What differs - C(size), C(sha256) (LFS files) or C(git_sha1) (other files).
      type: str
  sample: [{"path": "model.safetensors", "what": "size", "expected": 5712314880, "actual": 1048576}]
manifest:
  description: The path of the manifest file.
  returned: always
  type: str
  sample: /home/spark/gb10/models/Qwen3-8B-NVFP4/.spark-sglang-manifest.json
verified_at:
  description: The C(verified_at) time recorded in the manifest (the current one after a write).
  returned: when a manifest exists or was written
  type: str
  sample: "2025-01-31T12:00:00Z"
msg:
  description: A one-line summary (with O(state=check_manifest), the reason the copy is not complete).
  returned: always
  type: str
  sample: "model sim-org/Qwen3-8B-NVFP4-sim@0123abcd: 7 file(s) verified"
"""

import datetime
import errno
import hashlib
import json
import os
import stat
import tempfile
from fnmatch import fnmatchcase

from ansible.module_utils.basic import AnsibleModule

CHUNK_SIZE = 1024 * 1024
MESSAGE_SAMPLE = 5
HEX = frozenset("0123456789abcdef")


class TreeError(Exception):
    """The tree listing or the parameters are unusable."""


def _sha1():
    try:
        return hashlib.sha1(usedforsecurity=False)  # pylint: disable=unexpected-keyword-arg
    except TypeError:  # Python < 3.9
        return hashlib.sha1()


def _is_hex(value, length):
    return isinstance(value, str) and len(value) == length and set(value.lower()) <= HEX


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _pattern(pattern):
    # huggingface_hub: backslashes are separators, "dir/" means "dir/*".
    pattern = pattern.replace("\\", "/")
    return pattern + "*" if pattern.endswith("/") else pattern


def keep_path(path, include, exclude):
    """huggingface_hub.utils.filter_repo_objects for one path (empty include = no allowlist)."""
    path = path.replace("\\", "/")
    if include and not any(fnmatchcase(path, _pattern(p)) for p in include):
        return False
    if any(fnmatchcase(path, _pattern(p)) for p in exclude):
        return False
    return True


def expected_files(tree, include, exclude):
    """Return {path: {"size": int, "sha256"|"git_sha1": hex}} for the kept file entries."""
    files = {}
    for index, entry in enumerate(tree):
        kind = entry.get("type")
        if kind == "directory":
            continue
        path = entry.get("path")
        where = "tree entry %d (%r)" % (index, path)
        if kind != "file":
            raise TreeError("%s has type %r, expected 'file' or 'directory'" % (where, kind))
        if not isinstance(path, str) or not path:
            raise TreeError("%s has no path" % where)
        parts = path.split("/")
        if path.startswith("/") or "\\" in path or "\0" in path or any(p in ("", ".", "..") for p in parts):
            raise TreeError("%s has an unsafe path" % where)
        lfs = entry.get("lfs")
        if lfs:
            if not isinstance(lfs, dict) or not _is_hex(lfs.get("oid"), 64) or not _is_size(lfs.get("size")):
                raise TreeError("%s has an invalid lfs record (needs a sha256 oid and a size)" % where)
            record = {"size": lfs["size"], "sha256": lfs["oid"].lower()}
        else:
            if not _is_hex(entry.get("oid"), 40) or not _is_size(entry.get("size")):
                raise TreeError("%s needs a git sha1 oid and a size" % where)
            record = {"size": entry["size"], "git_sha1": entry["oid"].lower()}
        if not keep_path(path, include, exclude):
            continue
        if path in files and files[path] != record:
            raise TreeError("%s is listed twice with different contents" % where)
        files[path] = record
    return files


def _stat_file(full):
    """os.stat following symlinks; None when absent, dangling or not a regular file."""
    try:
        st = os.stat(full)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    return st if stat.S_ISREG(st.st_mode) else None


def hash_file(full, kind):
    """Stream the file once; return (size_read, hexdigest) for kind 'sha256' or 'git_sha1'."""
    with open(full, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if kind == "sha256":
            digest = hashlib.sha256()
        else:
            digest = _sha1()
            digest.update(b"blob " + str(size).encode("ascii") + b"\0")
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        read = 0
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            digest.update(view[:count])
            read += count
    if read != size:  # changed while reading: the git header would be wrong
        return read, None
    return read, digest.hexdigest()


def verify(root, files, hashing):
    """Return (missing, mismatched). Without hashing only existence and sizes are checked."""
    missing, mismatched = [], []
    for path in sorted(files):
        record = files[path]
        full = os.path.join(root, *path.split("/"))
        st = _stat_file(full)
        if st is None:
            missing.append(path)
            continue
        if st.st_size != record["size"]:
            mismatched.append({"path": path, "what": "size", "expected": record["size"], "actual": st.st_size})
            continue
        if not hashing:
            continue
        kind = "sha256" if "sha256" in record else "git_sha1"
        read, actual = hash_file(full, kind)
        if read != record["size"]:
            mismatched.append({"path": path, "what": "size", "expected": record["size"], "actual": read})
        elif actual != record[kind]:
            mismatched.append({"path": path, "what": kind, "expected": record[kind], "actual": actual})
    return missing, mismatched


def _short(value):
    if isinstance(value, str) and len(value) > 12:
        return value[:12] + ".."
    return str(value)


def problem_message(label, missing, mismatched):
    parts = []
    if missing:
        names = ", ".join(missing[:MESSAGE_SAMPLE])
        if len(missing) > MESSAGE_SAMPLE:
            names += ", ... (%d more)" % (len(missing) - MESSAGE_SAMPLE)
        parts.append("%d file(s) missing (%s)" % (len(missing), names))
    if mismatched:
        names = ", ".join("%s: %s expected %s got %s" % (m["path"], m["what"], _short(m["expected"]),
                                                         _short(m["actual"]))
                          for m in mismatched[:MESSAGE_SAMPLE])
        if len(mismatched) > MESSAGE_SAMPLE:
            names += ", ... (%d more)" % (len(mismatched) - MESSAGE_SAMPLE)
        parts.append("%d mismatched (%s)" % (len(mismatched), names))
    return "%s: %s" % (label, ", ".join(parts))


def read_manifest(manifest):
    """The parsed manifest dict, or None when it is absent or unreadable as a JSON object."""
    try:
        with open(manifest, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, IOError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def comparable(data):
    return dict((k, v) for k, v in data.items() if k != "verified_at")


def write_manifest(manifest, data):
    directory, name = os.path.split(manifest)
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, manifest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            tree=dict(type="list", elements="dict", required=True),
            include=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            repo=dict(type="str", required=True),
            revision=dict(type="str", required=True),
            manifest_name=dict(type="str", default=".spark-sglang-manifest.json"),
            state=dict(type="str", choices=["verified", "check_manifest"], default="verified"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    root = p["path"]
    name = p["manifest_name"]
    label = "model %s@%s" % (p["repo"], p["revision"])
    manifest = os.path.join(root, name)
    result = dict(changed=False, complete=False, files=0, bytes=0, missing=[], mismatched=[], manifest=manifest)

    if not name or "/" in name or "\\" in name or name in (".", ".."):
        module.fail_json(msg="%s: manifest_name must be a plain file name, got %r" % (label, name), **result)
    try:
        files = expected_files(p["tree"], p["include"] or [], p["exclude"] or [])
    except TreeError as exc:
        module.fail_json(msg="%s: invalid tree listing: %s" % (label, exc), **result)
    if not files:
        module.fail_json(msg="%s: no file in the tree listing matches include=%r exclude=%r"
                         % (label, p["include"], p["exclude"]), **result)
    if name in files:
        module.fail_json(msg="%s: manifest_name %r is a file of the model" % (label, name), **result)
    result["files"] = len(files)
    result["bytes"] = sum(r["size"] for r in files.values())
    wanted = {"repo": p["repo"], "revision": p["revision"], "files": files}

    if p["state"] == "check_manifest":
        current = read_manifest(manifest)
        if current is None:
            result["msg"] = "%s: no readable manifest %s" % (label, manifest)
        else:
            if isinstance(current.get("verified_at"), str):
                result["verified_at"] = current["verified_at"]
            if comparable(current) != wanted:
                if (current.get("repo"), current.get("revision")) != (p["repo"], p["revision"]):
                    result["msg"] = "%s: the manifest records %s@%s" % (label, current.get("repo"),
                                                                        current.get("revision"))
                else:
                    result["msg"] = "%s: the manifest's file list differs from the expected one" % label
            else:
                result["missing"], result["mismatched"] = verify(root, files, hashing=False)
                if result["missing"] or result["mismatched"]:
                    result["msg"] = problem_message(label, result["missing"], result["mismatched"])
                else:
                    result["complete"] = True
                    result["msg"] = "%s: manifest matches, %d file(s) present" % (label, len(files))
        module.exit_json(**result)

    if not os.path.isdir(root):
        module.fail_json(msg="%s: %s is not a directory" % (label, root), **result)
    try:
        missing, mismatched = verify(root, files, hashing=True)
    except (OSError, IOError) as exc:
        module.fail_json(msg="%s: cannot read %s: %s" % (label, getattr(exc, "filename", root), exc), **result)
    result["missing"], result["mismatched"] = missing, mismatched
    if missing or mismatched:
        module.fail_json(msg=problem_message(label, missing, mismatched), **result)
    result["complete"] = True

    current = read_manifest(manifest)
    if current is not None and comparable(current) == wanted:
        if isinstance(current.get("verified_at"), str):
            result["verified_at"] = current["verified_at"]
        result["msg"] = "%s: %d file(s) verified, manifest up to date" % (label, len(files))
        module.exit_json(**result)

    result["changed"] = True
    if module.check_mode:
        result["msg"] = "%s: %d file(s) verified, manifest would be written" % (label, len(files))
        module.exit_json(**result)
    data = dict(wanted, verified_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        write_manifest(manifest, data)
    except (OSError, IOError) as exc:
        module.fail_json(msg="%s: cannot write %s: %s" % (label, manifest, exc), **result)
    result["verified_at"] = data["verified_at"]
    result["msg"] = "%s: %d file(s) verified, manifest written" % (label, len(files))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
