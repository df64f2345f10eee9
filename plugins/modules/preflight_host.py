#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_host
short_description: Run every host-side preflight check in one call
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Runs all host-side checks of the C(clusterops.upgrade.preflight) role in one module call,
    because every module task costs the controller about half a CPU-second per host.
  - Checks (each returned as one entry of RV(checks), never as a task failure) -
    C(product_version) (the version read from O(version_file) or O(version_command) equals
    O(expected_version)); C(bundle_staged) (copies of the bundles meant for this host in
    O(bundle_dir) and their staged trees in O(staging_dir) match the vendor checksum; skipped while
    nothing is staged); C(rpm_baseline) (the installed rpm set equals the baseline, through the same
    code as M(clusterops.upgrade.rpm_baseline)); C(rpm_backups) (the rollback cache O(backup_dir)
    holds an intact rpm for each baseline package); C(disk_usage) (each of O(disk_paths) is below
    O(disk_threshold) percent, computed as C(df) does); C(datastores) (each of O(datastores) is
    mounted read-write).
  - A check that cannot be judged (nothing configured for it) is returned with status V(skipped)
    and the reason. The module fails only on invalid options.
  - "Commands it may run, all read-only and with C(LANG=C): one C(rpm -qa --qf ...), at most one
    C(rpm -qp) for all backup rpms, O(version_command), and one C(findmnt) when O(datastores) is set."
options:
  host:
    description:
      - Name the results carry (the inventory name). Defaults to the host's short host name.
    type: str
  root:
    description:
      - Directory the host's files are read from - O(version_file), O(rpm_baseline), O(backup_dir),
        O(disk_paths), O(datastores), O(bundle_dir) and O(staging_dir) are taken relative to it and
        rpm gets C(--root). For image roots, chroots and tests. O(version_command) runs as it is.
    type: path
    default: /
  expected_version:
    description:
      - The product version every host must run before the upgrade (the source version).
      - Without it C(product_version) is skipped, but the version is still read and returned for the
        controller's C(version_uniform) check.
    type: str
  version_file:
    description:
      - File whose first line (or the match of O(version_regex)) is the product version.
      - Mutually exclusive with O(version_command).
    type: str
  version_command:
    description:
      - Command (argv list) whose output (or the match of O(version_regex)) is the product version,
        for example V([rpm, -q, --qf, "%{VERSION}", ics-release]).
    type: list
    elements: str
  version_regex:
    description:
      - Python regular expression that picks the version out of the file or the output (group 1 if
        it has one).
    type: str
  rpm_baseline:
    description:
      - Baseline file on the host (JSON as M(clusterops.upgrade.rpm_baseline) writes it, or a vendor
        list with one package per line).
      - Mutually exclusive with O(rpm_baseline_content). Without either, the first bundle meant for
        this host that carries a C(baseline) is used; with none at all the rpm checks are skipped.
    type: str
  rpm_baseline_content:
    description:
      - The baseline itself (same formats as O(rpm_baseline)), for baselines kept on the controller.
    type: str
  rpm_baseline_source:
    description:
      - How the results name O(rpm_baseline_content), for example the controller path it came from.
    type: str
  rpm_ignore:
    description:
      - Shell-style globs of package names left out of the comparison, for example V(gpg-pubkey*).
    type: list
    elements: str
    default: []
  rpm_dbpath:
    description:
      - Passed to rpm as C(--dbpath) (relative to O(root)).
    type: str
    default: /var/lib/rpm
  backup_dir:
    description:
      - The rollback cache of rpm files (ICS keeps it in C(/var/backup-rpm/)). Empty disables the
        C(rpm_backups) check.
    type: str
    default: /var/backup-rpm
  disk_paths:
    description:
      - Paths whose filesystems must stay below O(disk_threshold) - the root and the log partition.
    type: list
    elements: str
    default: [/, /var/log]
  disk_threshold:
    description:
      - Usage in percent at or above which a filesystem fails C(disk_usage) (the runbook says 99 %).
    type: float
    default: 99
  datastores:
    description:
      - Mount points of datastores and storage pools that must be mounted (read-write).
    type: list
    elements: str
    default: []
  bundles:
    description:
      - The bundles of this run, each a dict with C(name) (file name), C(checksum) (the vendor's hex
        digest), optionally C(groups) (inventory groups it is meant for; none - every host),
        C(baseline) (the text of the rpm baseline it carries) and C(baseline_member) (the member's
        name, for the evidence).
      - Only the bundles whose C(groups) meet O(host_groups) are this host's.
    type: list
    elements: dict
    default: []
  host_groups:
    description:
      - The host's inventory groups (C(group_names)), to pick its O(bundles).
    type: list
    elements: str
    default: []
  bundle_dir:
    description:
      - Where the bundle role keeps the copies (C(bundle_dest_dir)); a copy there is verified.
    type: str
    default: ''
  staging_dir:
    description:
      - The versioned staging directory (C(bundle_staging_dir/<version>)); a bundle staged there
        must carry the vendor checksum in its marker.
    type: str
    default: ''
  bundle_algorithm:
    description:
      - Algorithm of the bundle checksums.
    type: str
    choices: [sha256, sha512]
    default: sha256
notes:
  - The result key is RV(checks), and the data the controller needs is RV(host_facts); neither
    collides with the keys Ansible reserves (C(changed), C(failed), C(msg) ...).
seealso:
  - module: clusterops.upgrade.rpm_baseline
  - module: clusterops.upgrade.run_report
  - module: clusterops.upgrade.host_snapshot
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  platform:
    description: Target operating systems.
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Run the host checks (the preflight role does this for you)
  clusterops.upgrade.preflight_host:
    host: "{{ inventory_hostname }}"
    expected_version: 6.8.0
    version_command: [rpm, -q, --qf, "%{VERSION}", ics-release]
    rpm_baseline: /var/lib/clusterops-upgrade/rpm-baseline.json
    backup_dir: /var/backup-rpm
    disk_paths: [/, /var/log]
    datastores: [/datastore/local]
  register: __preflight_host
  ignore_unreachable: true

- name: Show the checks that failed
  ansible.builtin.debug:
    msg: "{{ __preflight_host.checks | selectattr('status', 'equalto', 'fail') | list }}"
"""

RETURN = r"""
checks:
  description:
    - One result per check, in the shape M(clusterops.upgrade.run_report) takes (without the
      optional C(title), which the role adds on the controller).
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Check id - C(product_version), C(bundle_staged), C(rpm_baseline), C(rpm_backups), C(disk_usage), C(datastores).
      type: str
    host:
      description: O(host).
      type: str
    severity:
      description: V(blocker) or V(warning).
      type: str
    status:
      description: V(pass), V(fail) or V(skipped).
      type: str
    evidence:
      description: What was seen (for V(skipped), why it was not checked).
      type: str
    remedy:
      description: One line - what to do (empty unless the check failed).
      type: str
    data:
      description: Structured evidence of a failed check (usage numbers, the rpm restore plan, missing backups).
      type: dict
  sample:
    - id: disk_usage
      host: cmp-4
      severity: blocker
      status: fail
      evidence: "/var/log is 99 % full (limit: below 99 %); / is 23 % full"
      remedy: free space on /var/log (old logs, core files, leftover packages) until usage is below 99 %
host_facts:
  description: What the controller-side checks need from this host.
  returned: success
  type: dict
  contains:
    host:
      description: O(host).
      type: str
    product_version:
      description: The version read, or null.
      type: str
    version_source:
      description: Where it was read (C(file:...) or C(command:...)), or null.
      type: str
    bundles:
      description: Names of the bundles meant for this host.
      type: list
      elements: str
    rpm:
      description:
        - Null when the rpm set was not compared; else C(baseline_source), C(backups_checked) and
          C(missing_backups) (entries as M(clusterops.upgrade.rpm_baseline) returns them, with C(file)) -
          what the role needs to copy missing backup rpms from a peer.
      type: dict
  sample:
    host: cmp-2
    product_version: 6.8.0
    version_source: file:/etc/labsphere/version
    bundles: [LabSphere_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade.zip]
    rpm:
      baseline_source: baseline.txt in LabSphere_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade.zip
      backups_checked: true
      missing_backups: []
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._preflight import (
    HostRunner,
    host_checks,
    validate_host_options,
)
from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm import Rpm, RpmError

ARGUMENT_SPEC = dict(
    host=dict(type='str'),
    root=dict(type='path', default='/'),
    expected_version=dict(type='str'),
    version_file=dict(type='str'),
    version_command=dict(type='list', elements='str'),
    version_regex=dict(type='str'),
    rpm_baseline=dict(type='str'),
    rpm_baseline_content=dict(type='str'),
    rpm_baseline_source=dict(type='str'),
    rpm_ignore=dict(type='list', elements='str', default=[]),
    rpm_dbpath=dict(type='str', default='/var/lib/rpm'),
    backup_dir=dict(type='str', default='/var/backup-rpm'),
    disk_paths=dict(type='list', elements='str', default=['/', '/var/log']),
    disk_threshold=dict(type='float', default=99),
    datastores=dict(type='list', elements='str', default=[]),
    bundles=dict(type='list', elements='dict', default=[]),
    host_groups=dict(type='list', elements='str', default=[]),
    bundle_dir=dict(type='str', default=''),
    staging_dir=dict(type='str', default=''),
    bundle_algorithm=dict(type='str', choices=['sha256', 'sha512'], default='sha256'),
)


def _rpm_runner(module):
    def run(argv, env_update):
        return module.run_command(argv, environ_update=env_update, expand_user_and_vars=False)
    return run


class _LazyRpm(object):
    """An ``_rpm.Rpm`` whose binary is looked up only when a baseline needs it."""

    def __init__(self, module, root, dbpath):
        self._module = module
        self._root = None if root in (None, '', '/') else root
        self._dbpath = dbpath
        self._rpm = None

    def _get(self):
        if self._rpm is None:
            binary = self._module.get_bin_path('rpm', required=False)
            if binary is None:
                raise RpmError('rpm is not installed on this host (no rpm in PATH)')
            self._rpm = Rpm(runner=_rpm_runner(self._module), binary=binary, root=self._root, dbpath=self._dbpath)
        return self._rpm

    def __getattr__(self, name):
        return getattr(self._get(), name)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    opts = dict(module.params)
    opts['host'] = opts['host'] or os.uname()[1].split('.')[0]
    problems = validate_host_options(opts)
    if problems:
        module.fail_json(msg='; '.join(problems))
    if not opts['root'].startswith('/') or not os.path.isdir(opts['root']):
        module.fail_json(msg='root must be an existing directory given as an absolute path, got %r' % opts['root'])
    rpm = _LazyRpm(module, opts['root'], opts['rpm_dbpath'])
    checks, facts = host_checks(opts, rpm, HostRunner(module))
    for check in checks:
        # Every byte returned is handled by the controller for every host: the
        # titles are added there, and structured data is kept for failures only.
        check.pop('title', None)
        if check['status'] != 'fail':
            check.pop('data', None)
    module.exit_json(changed=False, checks=checks, host_facts=facts)


if __name__ == '__main__':
    main()
