#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: Apache-2.0
"""List a Hugging Face model's files at one revision, following every page of the hub's tree listing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hub_tree
short_description: The whole file listing of a Hugging Face hub repository, every page of it
description:
  - C(GET {endpoint}/api/models/{repo}/tree/{revision}) (with C(?recursive=true) unless
    O(recursive=false)), then every further page the hub names in a C(Link) header with
    C(rel="next"), as huggingface_hub's C(list_repo_tree) does (its C(utils/_pagination.py)). The
    hub caps a page at 1000 entries, so one request lists a large repository only in part.
  - Returns the entries of all pages in order, in the shape C(model_manifest) takes as its
    C(tree).
  - Every page is asked with the same C(Authorization) header. A next page on another scheme,
    host or port than O(endpoint) is refused, so the token goes to the hub only.
  - Read-only; RV(changed) is always false.
author:
  - spark-sglang contributors
options:
  endpoint:
    description: The hub's base URL, for example C(https://huggingface.co) (a mirror's, or the test hub's).
    type: str
    required: true
  repo:
    description: The model repository id, C(org/name).
    type: str
    required: true
  revision:
    description: A commit sha, branch or tag. A commit sha lists exactly what C(hf download --revision) of it gets.
    type: str
    required: true
  recursive:
    description: List the files of every directory (C(recursive=true)), not only the top level.
    type: bool
    default: true
  token:
    description: A hub token, sent as C(Authorization Bearer). Empty sends none. It never appears in results.
    type: str
    default: ""
  timeout:
    description: Seconds allowed for each page.
    type: int
    default: 30
  max_pages:
    description: Give up after this many pages (a guard against a hub that never stops naming a next page).
    type: int
    default: 10000
notes:
  - Uses Ansible's C(fetch_url), so proxies and certificate checks behave as in C(ansible.builtin.uri).
  - Register the result in a task with C(no_log) when a token is passed; the module masks it, the
    task's arguments would still show it at high verbosity.
attributes:
  check_mode:
    support: full
    description: The listing is read-only, so it also runs in check mode.
  diff_mode:
    support: none
    description: No diff is reported.
"""

EXAMPLES = r"""
- name: List each model's files at its commit, every page
  hub_tree:
    endpoint: https://huggingface.co
    repo: nvidia/Qwen3-8B-NVFP4
    revision: "{{ model_sha }}"
    token: "{{ hub_token }}"
  register: model_tree
  no_log: true

- name: Verify this host's copy against it
  model_manifest:
    path: /home/spark/gb10/models/Qwen3-8B-NVFP4
    repo: nvidia/Qwen3-8B-NVFP4
    revision: "{{ model_sha }}"
    tree: "{{ model_tree.tree }}"
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
tree:
  description: The entries of every page, in order - C(type) (C(file) or C(directory)), C(path),
    C(size), C(oid) and, for LFS files, C(lfs).
  returned: success
  type: list
  elements: dict
  sample: [{"type": "file", "path": "config.json", "size": 1234, "oid": "5b7c0e..."}]
pages:
  description: The number of pages read.
  returned: always
  type: int
  sample: 2
files:
  description: The number of C(file) entries in RV(tree).
  returned: success
  type: int
  sample: 8
status:
  description: The HTTP status of the last page asked (null without a response).
  returned: always
  type: int
  sample: 200
error_code:
  description: The hub's C(X-Error-Code) of a failed page (for example C(RepoNotFound), C(RevisionNotFound), C(GatedRepo)).
  returned: on an HTTP error that carries one
  type: str
  sample: RevisionNotFound
"""

import json
import re
from urllib.parse import quote, urljoin, urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

# One link of an RFC 8288 Link header: <target> followed by ;-separated parameters.
LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,]+)*)')


def next_link(header):
    """The target of the rel="next" link in a Link header value, or None."""
    for target, params in LINK.findall(header or ""):
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return target
    return None


def origin(url):
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(
        parts.scheme.lower())


def first_url(endpoint, repo, revision, recursive):
    url = "%s/api/models/%s/tree/%s" % (endpoint.rstrip("/"), repo, quote(revision, safe=""))
    return url + "?recursive=true" if recursive else url


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoint=dict(type="str", required=True),
            repo=dict(type="str", required=True),
            revision=dict(type="str", required=True),
            recursive=dict(type="bool", default=True),
            token=dict(type="str", default="", no_log=True),
            timeout=dict(type="int", default=30),
            max_pages=dict(type="int", default=10000),
        ),
        supports_check_mode=True,
    )
    p = module.params
    label = "%s@%s" % (p["repo"], p["revision"])
    headers = {"Accept": "application/json"}
    if p["token"]:
        headers["Authorization"] = "Bearer " + p["token"]
    result = dict(changed=False, pages=0, status=None)
    if not re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", p["repo"]):
        module.fail_json(msg="hub_tree: repo must be org/name, got %r" % p["repo"], **result)
    home = origin(p["endpoint"])
    url = first_url(p["endpoint"], p["repo"], p["revision"], p["recursive"])
    seen, tree = set(), []
    while url:
        if result["pages"] >= p["max_pages"]:
            module.fail_json(msg="hub_tree: %s: more than max_pages=%d pages" % (label, p["max_pages"]), **result)
        if url in seen:
            module.fail_json(msg="hub_tree: %s: page %d names an earlier page as the next one" % (
                label, result["pages"] + 1), **result)
        seen.add(url)
        response, info = fetch_url(module, url, headers=headers, method="GET", timeout=p["timeout"])
        result["status"] = info.get("status")
        result["pages"] += 1
        if result["status"] == -1:
            module.fail_json(msg="hub_tree: %s: page %d of the tree: %s" % (
                label, result["pages"], info.get("msg")), **result)
        if result["status"] != 200:
            code = info.get("x-error-code")
            if code:
                result["error_code"] = code
            module.fail_json(msg="hub_tree: %s: page %d of the tree: HTTP %s%s" % (
                label, result["pages"], result["status"], " (%s)" % code if code else ""), **result)
        try:
            page = json.loads(response.read())
        except ValueError as exc:
            module.fail_json(msg="hub_tree: %s: page %d is not JSON: %s" % (label, result["pages"], exc), **result)
        if not isinstance(page, list) or not all(isinstance(entry, dict) for entry in page):
            module.fail_json(msg="hub_tree: %s: page %d is not a list of entries" % (label, result["pages"]), **result)
        tree.extend(page)
        target = next_link(info.get("link"))
        url = urljoin(url, target) if target else None
        if url and origin(url) != home:
            module.fail_json(msg="hub_tree: %s: page %d names a next page on %s://%s:%s, not on the endpoint" % (
                (label, result["pages"]) + origin(url)), **result)
    module.exit_json(tree=tree, files=sum(1 for entry in tree if entry.get("type") == "file"), **result)


if __name__ == "__main__":
    main()
