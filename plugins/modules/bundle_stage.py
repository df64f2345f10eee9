#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bundle_stage
short_description: Safely extract an upgrade bundle into a staging directory
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - With O(state=staged), extracts a C(.zip) or C(.tar[.gz|.bz2|.xz]) bundle into O(dest),
    atomically and idempotently.
  - Before anything is written, checks the bundle's checksum against O(checksum), and every
    member of the archive. Refused are members with an absolute path or a C(..) component,
    backslashes or NUL bytes in the name, two members on the same path, members below a file
    or a symbolic link, symbolic links that are absolute or resolve (following the archive's
    own links) outside O(dest), hard links to anything but an earlier regular file of the
    bundle, device files, FIFOs, sockets and unknown member types. The message names each
    offending member.
  - Checks that the filesystem of O(dest) has room for the extracted files plus
    O(free_space_margin), and fails naming the path, the bytes needed and the bytes available.
  - Extraction goes into a temporary directory next to O(dest), which is renamed to O(dest)
    when complete. A marker file C(.clusterops-bundle.json) in O(dest) records the bundle's
    checksum; when O(dest) already holds a bundle with the same checksum nothing is read or
    written. A O(dest) with a different checksum is replaced; a O(dest) without a marker is
    refused.
  - With O(state=inspected), only reads. Given O(src), checks its members and reports their
    extracted size (used on the controller before a bundle is copied anywhere). Given O(dest)
    and O(checksum), reports whether O(dest) already holds that bundle (RV(staged)), and fails
    when O(dest) exists but was not staged by this module (so a later extraction would be
    refused).
options:
  src:
    description:
      - The bundle archive on the host the module runs on. Its name decides the format.
      - Required with O(state=staged).
    type: path
  dest:
    description:
      - The staging directory for this one bundle, for example
        C(/var/lib/clusterops-upgrade/staging/6.8.1/<bundle name>). Parent directories are
        created (mode 0755).
      - Required with O(state=staged).
    type: path
  checksum:
    description:
      - The expected hex digest of O(src) (as verified by M(clusterops.upgrade.package_verify)).
        O(src) is hashed again before extraction and refused when it differs.
      - Required with O(state=staged), and with O(dest) in O(state=inspected).
    type: str
  algorithm:
    description:
      - The algorithm of O(checksum).
    type: str
    choices: [sha256, sha512]
    default: sha256
  free_space_margin:
    description:
      - Bytes that must remain free on the filesystem of O(dest) after the extraction.
    type: int
    default: 0
  state:
    description:
      - V(staged) extracts; V(inspected) only reads (see the description).
    type: str
    choices: [staged, inspected]
    default: staged
notes:
  - Extracted files belong to the user the module runs as; permission bits are kept without
    set-user-ID, set-group-ID and sticky bits, modification times are kept.
  - Every file is flushed to disk (fsync) before the staging directory is renamed into place.
  - A run killed during extraction can leave a C(.<name>.stage-*) directory next to O(dest);
    it is never mistaken for a staged bundle and may be removed.
attributes:
  check_mode:
    support: full
    description:
      - Does all the checks and reports what would change. When O(src) does not exist yet (a
        copy that check mode skipped), predicts an extraction without reading it.
  diff_mode:
    support: none
    description: Not supported.
seealso:
  - module: clusterops.upgrade.package_verify
"""

EXAMPLES = r"""
- name: Check a bundle's members on the controller before copying it anywhere
  clusterops.upgrade.bundle_stage:
    src: /srv/bundles/product-x86_64-M001-b1.upgrade.zip
    state: inspected
  delegate_to: localhost
  run_once: true
  register: inspected

- name: Stage the bundle on the host
  clusterops.upgrade.bundle_stage:
    src: /var/lib/clusterops-upgrade/bundles/product-x86_64-M001-b1.upgrade.zip
    dest: /var/lib/clusterops-upgrade/staging/6.8.1/product-x86_64-M001-b1.upgrade
    checksum: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    free_space_margin: 268435456
"""

RETURN = r"""
dest:
  description: The staging directory (O(dest)), when given.
  returned: when O(dest) is given
  type: str
  sample: /var/lib/clusterops-upgrade/staging/6.8.1/product-x86_64-M001-b1.upgrade
staged:
  description:
    - With O(state=staged), true when O(dest) holds the bundle afterwards (or would, in check mode).
    - With O(state=inspected), true when O(dest) already holds the bundle with O(checksum).
  returned: when O(dest) is given
  type: bool
  sample: true
action:
  description:
    - V(none) (already staged), V(create), V(replace) (O(dest) held another checksum) or
      V(inspect).
  returned: always
  type: str
  sample: create
members:
  description: Number of archive members checked; null when O(src) was not read.
  returned: always
  type: int
  sample: 42
stage_name:
  description: The staging directory name for O(src), its file name without the archive suffix.
  returned: when O(src) was read
  type: str
  sample: product-x86_64-M001-b1.upgrade
bundle_size:
  description: Size of O(src) in bytes; null when O(src) was not read.
  returned: always
  type: int
  sample: 104857600
extracted_size:
  description:
    - Bytes the extraction needs on disk (file sizes rounded up to 4 KiB, plus 4 KiB per
      directory); null when O(src) was not read.
  returned: always
  type: int
  sample: 110100480
problems:
  description: Each unsafe member and why (the task fails when there is any).
  returned: always
  type: list
  elements: str
  sample: ["member '../etc/passwd': '..' component escapes the staging directory"]
space:
  description: The free-space check of the filesystem of O(dest) (see M(clusterops.upgrade.free_space)).
  returned: when O(state=staged) and the bundle had to be extracted
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._bundle import (
    MARKER_FORMAT,
    BundleError,
    extracted_bytes,
    inspect_bundle,
    space_problems,
    space_report,
    stage,
    stage_decision,
    stage_name,
)
from ansible_collections.clusterops.upgrade.plugins.module_utils._checksum import (
    check_hex,
    scan_file,
)


def _read_src(module, result):
    """Check ``src``'s members (and checksum when given); fill ``result``; return members."""
    params = module.params
    src = params['src']
    if params['checksum']:
        try:
            scan = scan_file(src, params['algorithm'], verify_archive=False)
        except (IOError, OSError) as exc:
            module.fail_json(msg='cannot read src %s: %s' % (src, exc.strerror or exc), **result)
        if scan.checksum != params['checksum']:
            module.fail_json(msg='src %s has %s %s, expected %s: refusing to stage it' % (
                src, params['algorithm'], scan.checksum, params['checksum']), **result)
    try:
        members, problems = inspect_bundle(src)
    except BundleError as exc:
        module.fail_json(msg=str(exc), **result)
    result['members'] = len(members)
    try:
        result['stage_name'] = stage_name(src)
    except BundleError as exc:
        module.fail_json(msg=str(exc), **result)
    result['bundle_size'] = os.path.getsize(src)
    result['extracted_size'] = extracted_bytes(members)
    result['problems'] = problems
    if problems:
        module.fail_json(msg='%s is unsafe to extract: %s' % (src, '; '.join(problems)), **result)
    return members


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path'),
            dest=dict(type='path'),
            checksum=dict(type='str'),
            algorithm=dict(type='str', default='sha256', choices=['sha256', 'sha512']),
            free_space_margin=dict(type='int', default=0),
            state=dict(type='str', default='staged', choices=['staged', 'inspected']),
        ),
        required_if=[
            ('state', 'staged', ('src', 'dest', 'checksum')),
            ('state', 'inspected', ('src', 'dest'), True),
        ],
        required_by={'dest': ('checksum',)},
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, action='inspect', members=None, bundle_size=None,
                  extracted_size=None, problems=[])
    if params['dest']:
        result['dest'] = params['dest']
    if params['free_space_margin'] < 0:
        module.fail_json(msg='free_space_margin must be 0 or more, got %d' % params['free_space_margin'])
    if params['checksum']:
        try:
            params['checksum'] = check_hex(params['checksum'], params['algorithm'])
        except ValueError as exc:
            module.fail_json(msg='checksum: %s' % exc)

    if params['state'] == 'inspected':
        if params['dest']:
            try:
                result['staged'] = stage_decision(params['dest'], params['checksum']) == 'present'
            except BundleError as exc:
                module.fail_json(msg=str(exc), **result)
        if params['src']:
            _read_src(module, result)
        module.exit_json(**result)

    src, dest = params['src'], params['dest']
    try:
        decision = stage_decision(dest, params['checksum'])
    except BundleError as exc:
        module.fail_json(msg=str(exc), **result)
    result['action'] = 'none' if decision == 'present' else decision
    if decision == 'present':
        result['staged'] = True
        module.exit_json(msg='%s already holds this bundle' % dest, **result)
    if module.check_mode and not os.path.exists(src):
        result.update(changed=True, staged=True)
        module.exit_json(msg='would extract %s into %s once it is there (it is not yet; check mode)' % (
            src, dest), **result)
    members = _read_src(module, result)
    report = space_report([{'path': os.path.dirname(os.path.abspath(dest)), 'bytes': result['extracted_size'],
                            'what': 'extraction of %s' % os.path.basename(src)}],
                          params['free_space_margin'])
    result['space'] = report
    shortfalls = space_problems(report)
    if shortfalls:
        module.fail_json(msg='; '.join(shortfalls), **result)
    result.update(changed=True, staged=True)
    if not module.check_mode:
        marker = {
            'format': MARKER_FORMAT, 'checksum': params['checksum'], 'algorithm': params['algorithm'],
            'bundle': os.path.basename(src), 'members': len(members),
        }
        try:
            stage(src, dest, members, marker)
        except (BundleError, IOError, OSError) as exc:
            result.update(changed=False, staged=False)
            module.fail_json(msg='staging %s into %s failed (%s was left as it was): %s' % (
                src, dest, dest, exc), **result)
    module.exit_json(msg='%s %s into %s' % ('would extract' if module.check_mode else 'extracted', src, dest),
                     **result)


if __name__ == '__main__':
    main()
