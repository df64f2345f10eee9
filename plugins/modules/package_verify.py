#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_verify
short_description: Verify upgrade bundles against their vendor checksums
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Computes the SHA-256 (or SHA-512) checksum of each file in O(path) and compares it with
    the expected checksum from O(checksums) or from a vendor manifest O(checksum_file).
  - With O(verify_archive), also checks the archive while the file is read for the checksum.
    A C(.zip) has every member inflated and its CRC-32 and sizes checked; a C(.tar),
    C(.tar.gz)/C(.tgz), C(.tar.bz2)/C(.tbz2) or C(.tar.xz)/C(.txz) is read through its
    decompressor (with the compression format's own integrity checks) and its tar headers
    are walked to the end-of-archive block. Other files are only hashed.
  - Each file is read once. Only for a C(.zip) that the streaming reader cannot vouch for
    (data before the first member, a compression method other than stored or deflate, a
    central directory that disagrees with the local headers, or any error) is the archive
    read a second time through Python's C(zipfile) for the final verdict; RV(files[].reads)
    says how many reads a file took.
  - A manifest entry matches a file by basename (C(a.zip) matches C(/srv/bundles/a.zip)).
    When several entries share the basename (C(x86/a.zip), C(arm/a.zip)), the entry whose
    relative path is the longest suffix of the file's path wins.
  - Fails when any file is not V(ok), with a message that lists each offending file and why.
    Never changes anything.
options:
  path:
    description:
      - The files to verify (on the host the module runs on).
    type: list
    elements: path
    required: true
  checksums:
    description:
      - Expected checksums as a mapping of file name (or relative path) to hex digest.
      - Mutually exclusive with O(checksum_file).
    type: dict
  checksum_file:
    description:
      - A checksum manifest on the same host as O(path), as vendors publish it.
      - "GNU format: C(<hex>  name), C(<hex> *name) (and C(<hex> name)); BSD format:
        C(SHA256 (name\\) = <hex>), C(SHA512 (name\\) = <hex>), also the OpenSSL spelling
        C(SHA2-256(name\\)= <hex>)."
      - Either hex case, CRLF line ends, blank lines and C(#) comments are accepted. An entry
        with an absolute path or a C(..) component, a line in any other format, or a digest of
        the wrong length for O(algorithm) is an error naming the line number.
      - Mutually exclusive with O(checksums).
    type: path
  algorithm:
    description:
      - The checksum algorithm of the manifest.
    type: str
    choices: [sha256, sha512]
    default: sha256
  verify_archive:
    description:
      - Also check the archive structure (see the description) in the same read.
    type: bool
    default: true
notes:
  - "Runs on the controller (C(delegate_to: localhost)) as well as on targets with Python 3.9
    or later. Reads with 1 MiB blocks into one reused buffer."
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
seealso:
  - module: clusterops.upgrade.bundle_stage
"""

EXAMPLES = r"""
- name: Verify the bundles on the controller against the vendor manifest
  clusterops.upgrade.package_verify:
    path:
      - /srv/bundles/InCloudSphere_V6R08B011-V6R08B111-b1-x86_64-M001-b1.upgrade.zip
      - /srv/bundles/InCloudSphere_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade.zip
    checksum_file: /srv/bundles/SHA256SUMS
  delegate_to: localhost
  run_once: true

- name: Verify a copy on the target against a known checksum
  clusterops.upgrade.package_verify:
    path: [/var/lib/clusterops-upgrade/bundles/product-M001-b1.upgrade.zip]
    checksums:
      product-M001-b1.upgrade.zip: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
"""

RETURN = r"""
verified:
  description: True when every file's status is V(ok).
  returned: always
  type: bool
  sample: true
files:
  description: One entry per O(path), in order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file, as given.
      type: str
      sample: /srv/bundles/product-M001-b1.upgrade.zip
    size:
      description: Size in bytes; null when the file could not be read.
      type: int
      sample: 1048576
    checksum:
      description: The computed hex digest (lower case); null when the file could not be read.
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    expected:
      description: The expected hex digest; null when no entry matched.
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    entry:
      description: The manifest entry (or O(checksums) key) that matched; null when none did.
      type: str
      sample: product-M001-b1.upgrade.zip
    status:
      description:
        - V(ok), V(mismatch), V(missing), V(not_in_manifest), V(corrupt_archive) or V(unreadable).
        - A file that is both mismatched and damaged reports V(mismatch).
      type: str
      sample: ok
    detail:
      description: Why the status is not V(ok) (empty when it is).
      type: str
      sample: "member 'rpms/a.rpm': bad CRC-32"
    archive_check:
      description:
        - V(ok), V(corrupt), V(not_an_archive) (the name has no archive suffix), V(disabled)
          (O(verify_archive=false)) or V(not_run) (the file could not be read).
      type: str
      sample: ok
    reads:
      description: How many times the file was read (1; 2 when C(zipfile) had to decide).
      type: int
      sample: 1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._checksum import (
    ManifestError,
    normalize_checksums,
    parse_manifest,
    verify_files,
)


def load_expected(module):
    """The ``{name: hex}`` mapping from the options, or fail naming the problem."""
    params = module.params
    algorithm = params['algorithm']
    if params['checksum_file']:
        source = params['checksum_file']
        try:
            with open(source, 'rb') as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            module.fail_json(msg='cannot read checksum_file %s: %s' % (source, exc.strerror or exc))
        try:
            return parse_manifest(data, algorithm)
        except ManifestError as exc:
            module.fail_json(msg='checksum_file %s: %s' % (source, exc))
    try:
        return normalize_checksums(params['checksums'], algorithm)
    except ManifestError as exc:
        module.fail_json(msg=str(exc))
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='list', elements='path', required=True),
            checksums=dict(type='dict'),
            checksum_file=dict(type='path'),
            algorithm=dict(type='str', default='sha256', choices=['sha256', 'sha512']),
            verify_archive=dict(type='bool', default=True),
        ),
        mutually_exclusive=[('checksums', 'checksum_file')],
        required_one_of=[('checksums', 'checksum_file')],
        supports_check_mode=True,
    )
    if not module.params['path']:
        module.fail_json(msg='path is empty: give at least one file to verify')
    entries = load_expected(module)
    files, verified, message = verify_files(
        module.params['path'], entries, module.params['algorithm'], module.params['verify_archive'])
    if not verified:
        module.fail_json(msg=message, files=files, verified=False, changed=False)
    module.exit_json(changed=False, files=files, verified=True, msg=message)


if __name__ == '__main__':
    main()
