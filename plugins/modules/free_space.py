#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: free_space
short_description: Fail early when filesystems lack room for what is about to be written
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Takes a list of byte requirements, each for a path (which need not exist yet; its closest
    existing ancestor is measured), groups them by filesystem, adds O(margin) once per
    filesystem and compares the sum with the space available to unprivileged users
    (C(f_bavail)).
  - Fails when any filesystem is short, naming the paths, the bytes needed with their
    breakdown, and the bytes available. Never changes anything.
options:
  requirements:
    description: What is about to be written.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: A directory or file path that will receive the bytes.
        type: path
        required: true
      bytes:
        description: How many bytes.
        type: int
        required: true
      what:
        description: A label for messages (for example C(copy of a.zip)).
        type: str
  margin:
    description: Bytes that must remain free on each filesystem afterwards.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
seealso:
  - module: clusterops.upgrade.bundle_stage
"""

EXAMPLES = r"""
- name: Make sure the bundle copy and its extraction fit
  clusterops.upgrade.free_space:
    requirements:
      - path: /var/lib/clusterops-upgrade/bundles
        bytes: 2147483648
        what: copy of product-M001-b1.upgrade.zip
      - path: /var/lib/clusterops-upgrade/staging/6.8.1
        bytes: 2300000000
        what: extraction of product-M001-b1.upgrade.zip
    margin: 268435456
"""

RETURN = r"""
filesystems:
  description: One entry per filesystem, in the order first met.
  returned: always
  type: list
  elements: dict
  contains:
    paths:
      description: The requirement paths on this filesystem.
      type: list
      elements: str
      sample: [/var/lib/clusterops-upgrade/bundles]
    checked:
      description: The existing directory that was measured.
      type: str
      sample: /var/lib
    needed:
      description: Bytes needed, margin included.
      type: int
      sample: 4715868160
    available:
      description: Bytes available.
      type: int
      sample: 53687091200
    enough:
      description: Whether C(available >= needed).
      type: bool
      sample: true
    breakdown:
      description: What the needed bytes are for.
      type: list
      elements: str
      sample: ["copy of a.zip 2147483648", "margin 268435456"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._bundle import (
    space_problems,
    space_report,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            requirements=dict(type='list', elements='dict', required=True, options=dict(
                path=dict(type='path', required=True),
                bytes=dict(type='int', required=True),
                what=dict(type='str'),
            )),
            margin=dict(type='int', default=0),
        ),
        supports_check_mode=True,
    )
    for index, req in enumerate(module.params['requirements']):
        if req['bytes'] < 0:
            module.fail_json(msg='requirements[%d] (%s): bytes must be 0 or more, got %d' % (
                index, req['path'], req['bytes']))
    if module.params['margin'] < 0:
        module.fail_json(msg='margin must be 0 or more, got %d' % module.params['margin'])
    try:
        report = space_report(module.params['requirements'], module.params['margin'])
    except OSError as exc:
        module.fail_json(msg='cannot measure free space at %s: %s' % (exc.filename, exc.strerror))
    problems = space_problems(report)
    if problems:
        module.fail_json(msg='; '.join(problems), filesystems=report)
    module.exit_json(changed=False, filesystems=report)


if __name__ == '__main__':
    main()
