#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: Apache-2.0
"""What sglang_server checks on a host before any restart, read in one module run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sglang_host_state
short_description: The GPUs, RDMA devices, listening ports, SGLang units and image of a host, read at once
description:
  - Reads what sglang_server's checks need before any restart, in one module run rather than one task each
    (each task costs a module start on the host).
  - The GPU count from C(nvidia-smi --query-gpu=count --format=csv,noheader) (the first line); fails when
    nvidia-smi fails.
  - Whether C(/dev/infiniband) exists (ConnectX RDMA devices).
  - The listening TCP sockets, as C(ss -Hltn) prints them.
  - For each unit of O(units), what C(systemctl is-active) and C(systemctl is-enabled) answer and the unit file's
    text in O(unit_dir).
  - Whether C(docker image inspect) finds O(image).
  - The image's C(--help) as kept in O(help_cache) by an earlier run, when that file's first line is O(image)
    (image references are digests: one reference, one image, one C(--help)).
  - Read-only; runs in check mode too.
author:
  - spark-sglang maintainers
options:
  units:
    description: systemd unit names, for example C(sglang-main.service).
    type: list
    elements: str
    default: []
  unit_dir:
    description: Where the unit files are.
    type: path
    default: /etc/systemd/system
  image:
    description: The image reference to look for; empty looks for none.
    type: str
    default: ""
  help_cache:
    description: A file whose first line is an image reference and the rest that image's C(--help); empty reads none.
    type: path
    default: ""
attributes:
  check_mode:
    support: full
    description: The module only reads, so it also runs in check mode.
  diff_mode:
    support: none
    description: No diff is reported.
"""

EXAMPLES = r"""
- name: Read the host's state before any restart
  sglang_host_state:
    units: [sglang-main.service]
    image: lmsysorg/sglang@sha256:0123abcd
    help_cache: /etc/sglang/image-flags
  register: host_state
"""

RETURN = r"""
gpu_count:
  description: The GPUs nvidia-smi counts (0 when its first word is not a number).
  returned: always
  type: int
rdma:
  description: Whether /dev/infiniband exists.
  returned: always
  type: bool
listening:
  description: The lines of C(ss -Hltn).
  returned: always
  type: list
  elements: str
units:
  description: >-
    Per unit of O(units), C(active) and C(enabled) (what systemctl is-active and is-enabled printed) and C(content)
    (the unit file's text, empty when there is none).
  returned: always
  type: dict
image_present:
  description: Whether docker knows O(image) (false when O(image) is empty).
  returned: always
  type: bool
help:
  description: >-
    The C(--help) kept in O(help_cache) for O(image); null when the file is missing, is for another image or holds
    no text after the reference.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return ""


def main():
    module = AnsibleModule(argument_spec=dict(units=dict(type="list", elements="str", default=[]),
                                              unit_dir=dict(type="path", default="/etc/systemd/system"),
                                              image=dict(type="str", default=""),
                                              help_cache=dict(type="path", default="")),
                           supports_check_mode=True)
    p = module.params
    rc, out, err = module.run_command(["nvidia-smi", "--query-gpu=count", "--format=csv,noheader"])
    if rc != 0:
        module.fail_json(msg="nvidia-smi --query-gpu=count failed (rc=%d): %s" % (rc, (err or out).strip()))
    count = (out.split() or ["0"])[0]
    rc, listening, err = module.run_command(["ss", "-Hltn"])
    if rc != 0:
        module.fail_json(msg="ss -Hltn failed (rc=%d): %s" % (rc, err.strip()))
    units = {}
    for unit in p["units"]:
        answers = [module.run_command(["systemctl", question, unit])[1].strip() for question in ("is-active", "is-enabled")]
        units[unit] = dict(zip(("active", "enabled"), answers), content=read(os.path.join(p["unit_dir"], unit)))
    image_present = bool(p["image"]) and module.run_command(["docker", "image", "inspect", p["image"]])[0] == 0
    kept_for, _, kept_help = (read(p["help_cache"]) if p["help_cache"] else "").partition("\n")
    module.exit_json(changed=False, gpu_count=int(count) if count.isdigit() else 0, rdma=os.path.exists("/dev/infiniband"),
                     listening=listening.splitlines(), units=units, image_present=image_present,
                     help=kept_help if p["image"] and kept_for == p["image"] and kept_help.strip() else None)


if __name__ == "__main__":
    main()
