#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rpm_apply
short_description: Apply the rpms of a staged, verified upgrade bundle in one rpm transaction
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Upgrades a host from the package files of an upgrade bundle that the role C(clusterops.upgrade.bundle)
    verified and staged (its staging marker must be there, with the verified checksum when O(checksum) is given).
  - Before anything is installed, the installed set is compared with the bundle's pre-upgrade baseline
    (O(baseline), the vendor's C(baseline.txt)) - the packages the bundle does not update must equal it, and each
    package it updates must be at the baseline's version or already at the bundle's - so a host whose rpm set
    drifted is refused, naming every difference, and nothing is changed.
  - Idempotent and resumable - packages already at the bundle's version are left out; a host at the target runs
    no rpm transaction (C(changed=false)); a host where an earlier run was interrupted half-way gets the rest.
  - The packages still to apply are installed in B(one) C(rpm -U) transaction (argv, C(LANG=C)); afterwards the
    installed set is read again and every bundle package must be installed.
  - O(state=verified) only reads - it fails unless the installed set is the upgraded set (the baseline with the
    bundle's packages in place of the old ones), the post-upgrade check "rpm set == the new baseline".
options:
  staged_dir:
    description:
      - The staging directory of the bundle on the host (C(staged_dir) of the C(bundle_staged) fact the bundle role
        publishes), holding the staging marker C(.clusterops-bundle.json).
    type: path
    required: true
  checksum:
    description:
      - The bundle's verified checksum; the staging marker must record exactly this one.
    type: str
  state:
    description:
      - V(applied) installs what is missing; V(verified) only checks that the host is at the target.
    type: str
    choices: [applied, verified]
    default: applied
  rpm_glob:
    description: Shell pattern, relative to O(staged_dir), of the package files to apply.
    type: str
    default: rpms/*.rpm
  baseline:
    description:
      - The bundle's list of the exact rpm set a host must have before the upgrade (one NEVRA per line, or the
        JSON of C(clusterops.upgrade.rpm_baseline)); relative paths are inside O(staged_dir).
      - Empty - no comparison (only the bundle's own packages are looked at).
    type: str
    default: baseline.txt
  ignore:
    description: Name globs left out of the baseline comparison.
    type: list
    elements: str
    default: ['gpg-pubkey*']
  root:
    description: Install root (C(rpm --root)); the host's own root when not set.
    type: path
  dbpath:
    description: The rpm database directory (C(rpm --dbpath)), relative to O(root).
    type: path
    default: /var/lib/rpm
notes:
  - The result key for the installed packages is RV(applied), not C(changed); C(changed) is Ansible's.
attributes:
  check_mode:
    description: Reads the installed set and the package headers and reports what would be installed; runs no C(rpm -U).
    support: full
  diff_mode:
    description: Shows the versions of the bundle's packages before and after.
    support: full
"""

EXAMPLES = r"""
- name: Apply the compute bundle
  clusterops.upgrade.rpm_apply:
    staged_dir: "{{ bundle_staged[item].staged_dir }}"
    checksum: "{{ bundle_staged[item].checksum }}"
  loop: "{{ bundle_staged.keys() | list }}"

- name: After the upgrade, the rpm set must be the new baseline
  clusterops.upgrade.rpm_apply:
    staged_dir: /var/lib/clusterops-upgrade/staging/6.8.1/LabSphere_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade
    state: verified
"""

RETURN = r"""
packages:
  description: The packages of the bundle (NEVRA).
  returned: always
  type: list
  elements: str
  sample: [labsphere-common-6.8.1-1.ls8.noarch, labsphere-node-6.8.1-1.ls8.noarch]
applied:
  description: The packages installed by this run (or that would be, in check mode), with the version they replaced.
  returned: always
  type: list
  elements: dict
  sample: [{nevra: labsphere-node-6.8.1-1.ls8.noarch, from: labsphere-node-6.8.0-1.ls8.noarch}]
already_installed:
  description: Packages of the bundle that were already at the bundle's version.
  returned: always
  type: list
  elements: str
at_target_before:
  description: Every package of the bundle was already installed before the task.
  returned: always
  type: bool
command:
  description: The C(rpm -U) argv that ran (or would run); empty when nothing is to be installed.
  returned: always
  type: list
  elements: str
rpm_output:
  description: What rpm printed.
  returned: always
  type: str
staged_dir:
  description: The staging directory used.
  returned: always
  type: str
bundle_checksum:
  description: The checksum the staging marker records.
  returned: always
  type: str
baseline:
  description: The baseline file compared against, or null.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm import Rpm, RpmError
from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm_apply import ApplyError, apply_bundle

ARGUMENT_SPEC = dict(
    staged_dir=dict(type='path', required=True),
    checksum=dict(type='str'),
    state=dict(type='str', choices=['applied', 'verified'], default='applied'),
    rpm_glob=dict(type='str', default='rpms/*.rpm'),
    baseline=dict(type='str', default='baseline.txt'),
    ignore=dict(type='list', elements='str', default=['gpg-pubkey*']),
    root=dict(type='path'),
    dbpath=dict(type='path', default='/var/lib/rpm'),
)


def _runner(module):
    def run(argv, env_update):
        return module.run_command(argv, environ_update=env_update, expand_user_and_vars=False)
    return run


def _validate(module):
    params = module.params
    if not params['dbpath'].startswith('/'):
        module.fail_json(msg='dbpath must be an absolute path (relative to root when root is set), got %r'
                         % params['dbpath'])
    if params['root'] is not None and not os.path.isdir(params['root']):
        module.fail_json(msg='root %s is not a directory' % params['root'])
    if os.path.isabs(params['rpm_glob']) or '..' in params['rpm_glob'].split('/'):
        module.fail_json(msg='rpm_glob %r must be relative to staged_dir, without ..' % params['rpm_glob'])
    for index, pattern in enumerate(params['ignore']):
        if not pattern:
            module.fail_json(msg='ignore[%d] is empty; give a name glob such as gpg-pubkey*' % index)


def _versions(nevras, applied=None):
    lines = []
    for item in applied or []:
        lines.append(item['from'] or '(not installed: %s)' % item['nevra'])
    return '\n'.join(sorted(lines + list(nevras))) + '\n'


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    _validate(module)
    params = module.params
    rpm = Rpm(runner=_runner(module), binary=module.get_bin_path('rpm', required=True),
              root=params['root'], dbpath=params['dbpath'])
    try:
        result = apply_bundle(rpm, params['staged_dir'], checksum=params['checksum'], rpm_glob=params['rpm_glob'],
                              baseline=params['baseline'], ignore=params['ignore'],
                              check_mode=module.check_mode, verify_only=params['state'] == 'verified')
    except ApplyError as exc:
        extra = dict(exc.result) if exc.result else {}
        module.fail_json(msg=str(exc), changed=bool(exc.result), **extra)
    except RpmError as exc:
        module.fail_json(msg=str(exc))
    changed = bool(result['applied'])
    if module._diff:
        result['diff'] = dict(before=_versions(result['already_installed'], result['applied']),
                              after=_versions(result['packages']))
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
