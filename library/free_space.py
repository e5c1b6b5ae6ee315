#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: Apache-2.0
"""Free space on the file system that holds (or will hold) each path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: free_space
short_description: Free space where each path lives, or will once it is created
description:
  - For each path of O(paths), finds the nearest existing directory (the path itself when it exists, else its
    closest existing parent), the mount point of the file system that holds it, and the bytes free there for an
    unprivileged user (C(f_bavail) x C(f_frsize) of C(statvfs), what C(df) shows as available).
  - Reads the file system from the managed host itself, not from the mount facts, which leave out an overlay
    root (as in containers).
  - Read-only; runs in check mode too.
author:
  - spark-sglang maintainers
options:
  paths:
    description: Absolute paths; they need not exist yet.
    type: list
    elements: path
    required: true
attributes:
  check_mode:
    support: full
    description: The module only reads, so it also runs in check mode.
  diff_mode:
    support: none
    description: No diff is reported.
"""

EXAMPLES = r"""
- name: Measure free disk space where the models land
  free_space:
    paths: [/home/spark/gb10/models, /home/spark/.cache/huggingface]
  register: disk

- name: Need 20 GB
  ansible.builtin.assert:
    that: disk.min_bytes_free >= 20e9
"""

RETURN = r"""
free:
  description: One entry per path of O(paths), in their order.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: The path asked for., type: str}
    measured: {description: The nearest existing directory, where the space was measured., type: str}
    mount: {description: The mount point of its file system., type: str}
    bytes_free: {description: Bytes free for an unprivileged user., type: int}
min_bytes_free:
  description: The least of the entries' C(bytes_free) (0 with no paths).
  returned: always
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule


def nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def mount_point(path):
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def measure(path):
    measured = nearest_existing(path)
    stat = os.statvfs(measured)
    return {"path": path, "measured": measured, "mount": mount_point(measured),
            "bytes_free": stat.f_bavail * stat.f_frsize}


def main():
    module = AnsibleModule(argument_spec=dict(paths=dict(type="list", elements="path", required=True)),
                           supports_check_mode=True)
    relative = [p for p in module.params["paths"] if not os.path.isabs(p)]
    if relative:
        module.fail_json(msg="paths must be absolute, got %s" % ", ".join(relative))
    free = [measure(p) for p in module.params["paths"]]
    module.exit_json(changed=False, free=free, min_bytes_free=min([f["bytes_free"] for f in free] or [0]))


if __name__ == "__main__":
    main()
