#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rpm_baseline
short_description: Capture an rpm baseline, or compare the installed rpm set with one
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - With O(state=captured), writes the installed package set (name, epoch, version,
    release, arch, and optionally each package's header digest) as a JSON baseline,
    atomically (temporary file, fsync, rename) with mode V(0644).
  - With O(state=compared), compares the installed set with a baseline and reports every
    difference by name and architecture - missing, extra and changed packages - plus
    the C(rpm) commands that would restore the baseline from the backup rpms in
    O(backup_dir), and which backup rpms are missing or corrupt. This state changes nothing.
  - The baseline may be a JSON file written by O(state=captured) or a vendor list with one
    package per line, either as plain C(rpm -qa) prints it (C(name-version-release.arch))
    or as C(name-[epoch:]version-release.arch). Blank lines and lines starting with C(#)
    are skipped.
  - Plain C(rpm -qa) never prints epochs, so for a list in which no line states an epoch,
    epochs are not compared (version, release and arch still are). As soon as one line
    states an epoch, a line without one means epoch 0. RV(baseline_format) tells which
    reading was used.
  - Versions are ordered with rpm's own algorithm, including C(~) and C(^).
  - The drift list of changed packages is returned as RV(changed_packages), because
    C(changed) is the boolean Ansible reserves for every task.
  - Exactly one C(rpm -qa) runs to read the installed set, and at most one C(rpm -qp) for
    all files in O(backup_dir) (files it cannot read are asked about again one by one).
options:
  state:
    description:
      - V(captured) writes the baseline file from the installed set.
      - V(compared) compares the installed set with the baseline file and changes nothing.
    type: str
    choices: [captured, compared]
    default: compared
  baseline:
    description:
      - Path of the baseline file on the managed host (not inside O(root)).
      - For V(captured) its directory must exist. The file is only rewritten when its
        content would change.
    type: path
    required: true
  root:
    description:
      - Passed to rpm as C(--root). Use it for chroots and install roots.
      - O(dbpath) is relative to it.
    type: path
  dbpath:
    description:
      - Passed to rpm as C(--dbpath), always. The default is the database RHEL's rpm uses
        (on Debian, plain rpm would use C(~/.rpmdb) instead).
      - The module refuses to run when there is no rpm database there, because rpm would
        silently create an empty one.
    type: path
    default: /var/lib/rpm
  ignore:
    description:
      - Shell-style globs of package names left out of the baseline (V(captured)) and of
        the comparison (V(compared)), for example V(gpg-pubkey*).
    type: list
    elements: str
    default: []
  fail_on_drift:
    description:
      - Only for V(compared). Fail with a readable summary when the installed set differs
        from the baseline, or when O(backup_dir) is set and a backup rpm is missing or corrupt.
      - The task still returns every result key when it fails this way.
      - Defaults to V(true) for V(compared).
    type: bool
  backup_dir:
    description:
      - Only for V(compared). Directory of backup rpms on the managed host, for example
        C(/var/backup-rpm). Its C(*.rpm) files are matched to baseline packages by the
        NEVRA in their rpm header, not by file name.
      - Used for RV(missing_backups), RV(corrupt_backups) and the files in RV(restore_plan).
      - Only headers are read; payloads are not verified (C(rpm -K) does that).
    type: path
  digests:
    description:
      - Only for V(captured). Also record each package's header digest
        (C(sha256header:...), or C(sha1header:...) for packages built before rpm had
        SHA-256 header digests).
      - When the baseline holds digests, V(compared) reports a package with the right
        version but a different build as changed (V(rebuilt)), and accepts only backup
        rpms of that very build.
    type: bool
    default: false
notes:
  - The baseline file is written with mode V(0644); it holds what C(rpm -qa) shows any
    local user.
  - RV(restore_plan) is a list of argv lists, one rpm transaction each, meant to be run in
    order (for example with M(ansible.builtin.command) and C(argv)). See the collection's
    C(docs/rpm_baseline.md) for the order and its reasons.
attributes:
  check_mode:
    description: Can run in check mode and predict whether it would change something, without changing it.
    support: full
    details: V(captured) predicts whether the file would change and writes nothing; V(compared) never changes anything.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when run in diff mode.
    support: full
    details: V(captured) shows the old and the new baseline file.
  platform:
    description: Target operating systems.
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Record the shipped rpm set once, right after installation
  clusterops.upgrade.rpm_baseline:
    state: captured
    baseline: /var/lib/clusterops-upgrade/rpm-baseline.json
    ignore: ['gpg-pubkey*']
    digests: true

- name: Preflight - is the rpm set exactly the shipped one, are all backup rpms there?
  clusterops.upgrade.rpm_baseline:
    state: compared
    baseline: /var/lib/clusterops-upgrade/rpm-baseline.json
    backup_dir: /var/backup-rpm
    ignore: ['gpg-pubkey*']
  register: __preflight_rpm

- name: Compare a chroot with the vendor's list, report but do not fail
  clusterops.upgrade.rpm_baseline:
    baseline: /srv/vendor/ics-6.8.0-rpms.txt
    root: /mnt/sysimage
    fail_on_drift: false
  register: __preflight_rpm_chroot

- name: Put the rpm set back from the backup rpms
  ansible.builtin.command:
    argv: "{{ item }}"
  loop: "{{ __preflight_rpm.restore_plan }}"
  when: __preflight_rpm.restore_plan_complete
  changed_when: true
"""

RETURN = r"""
consistent:
  description: Whether the installed set (minus O(ignore)) equals the baseline.
  returned: state=compared
  type: bool
  sample: false
baseline_format:
  description:
    - How the baseline was read. V(json) is our format; V(nevra) a list that states
      epochs (a line without one means epoch 0); V(nvra) a list without any epoch (epochs
      are not compared).
  returned: state=compared
  type: str
  sample: json
missing:
  description: Baseline packages that are not installed.
  returned: state=compared
  type: list
  elements: dict
  sample:
    - {name: libfoo, epoch: 0, version: "1.2", release: 3.el7, arch: x86_64, nevra: libfoo-1.2-3.el7.x86_64}
  contains:
    name:
      description: Package name.
      type: str
    epoch:
      description: Epoch (0 when the package has none); V(null) when the baseline did not state it.
      type: int
    version:
      description: Version.
      type: str
    release:
      description: Release.
      type: str
    arch:
      description: Architecture; V(null) for C(gpg-pubkey) entries.
      type: str
    nevra:
      description: C(name-[epoch:]version-release.arch), the epoch shown when not 0.
      type: str
    digest:
      description: Header digest, when known.
      type: str
extra:
  description: Installed packages that are not in the baseline (several versions of one name are listed one by one).
  returned: state=compared
  type: list
  elements: dict
  sample:
    - {name: kernel, epoch: 0, version: 3.10.0, release: 1160.el7, arch: x86_64, nevra: kernel-3.10.0-1160.el7.x86_64}
changed_packages:
  description:
    - Same name and arch, another build than the baseline, with both sides. (Named so
      because C(changed) is Ansible's reserved boolean.)
  returned: state=compared
  type: list
  elements: dict
  sample:
    - name: openssl
      arch: x86_64
      change: upgraded
      baseline: {name: openssl, epoch: 1, version: 1.0.2k, release: 19.el7, arch: x86_64, nevra: openssl-1:1.0.2k-19.el7.x86_64}
      installed: {name: openssl, epoch: 1, version: 1.0.2k, release: 25.el7, arch: x86_64, nevra: openssl-1:1.0.2k-25.el7.x86_64}
  contains:
    name:
      description: Package name.
      type: str
    arch:
      description: Architecture.
      type: str
    change:
      description:
        - V(upgraded) (installed is newer), V(downgraded) (installed is older) or
          V(rebuilt) (same version by rpm's ordering, but another build).
      type: str
    baseline:
      description: The baseline package (same keys as in RV(missing)).
      type: dict
    installed:
      description: The installed package (same keys as in RV(missing)).
      type: dict
counts:
  description:
    - For V(compared) - the sizes of both sets (after O(ignore)), of what O(ignore) left out,
      and of each list above.
    - For V(captured) - C(installed), C(ignored_installed) and C(captured) (written to the file).
  returned: always
  type: dict
  sample: {baseline: 812, installed: 813, ignored_baseline: 0, ignored_installed: 3, missing: 0,
           extra: 1, changed_packages: 1, missing_backups: 0, corrupt_backups: 0}
restore_plan:
  description:
    - The rpm commands, as argv lists, that bring the installed set back to the baseline,
      to be run in this order, each one rpm transaction. C(--root) and C(--dbpath) are
      included. Packages come from O(backup_dir), chosen by rpm header.
    - Order - erase extra packages that would be in the way, install the missing ones
      (C(-ivh --oldpackage)), replace the changed ones (C(-Uvh --oldpackage), with
      C(--replacepkgs) when needed), erase the other extra packages.
  returned: state=compared
  type: list
  elements: list
  sample:
    - [/usr/bin/rpm, --dbpath, /var/lib/rpm, -Uvh, --oldpackage, /var/backup-rpm/openssl-1.0.2k-19.el7.x86_64.rpm]
    - [/usr/bin/rpm, --dbpath, /var/lib/rpm, -e, kernel-3.10.0-1160.el7.x86_64]
restore_plan_complete:
  description: Whether RV(restore_plan) covers every difference (a backup rpm was found for every package it needs).
  returned: state=compared
  type: bool
  sample: true
restore_plan_unresolved:
  description: Baseline packages RV(restore_plan) needs but has no backup rpm for.
  returned: state=compared
  type: list
  elements: dict
  sample: []
backups_checked:
  description: Whether O(backup_dir) was checked.
  returned: state=compared
  type: bool
  sample: true
missing_backups:
  description:
    - Baseline packages for which O(backup_dir) holds no rpm with that NEVRA in its header
      (or, with digests, not that build). C(gpg-pubkey) entries are never checked.
    - Each entry has the keys of RV(missing) plus C(file), the conventional file name.
  returned: state=compared
  type: list
  elements: dict
  sample:
    - {name: libfoo, epoch: 0, version: "1.2", release: 3.el7, arch: x86_64, nevra: libfoo-1.2-3.el7.x86_64,
       file: libfoo-1.2-3.el7.x86_64.rpm}
corrupt_backups:
  description:
    - Files in O(backup_dir) that rpm cannot read, whose name is not
      C(NAME-VERSION-RELEASE.ARCH.rpm), whose header is not the package their name claims,
      or that are the right NEVRA but another build than the baseline's digest.
  returned: state=compared
  type: list
  elements: dict
  sample:
    - path: /var/backup-rpm/libfoo-1.2-3.el7.x86_64.rpm
      file: libfoo-1.2-3.el7.x86_64.rpm
      claimed: libfoo-1.2-3.el7.x86_64
      header: {name: libfoo, epoch: 0, version: "1.3", release: 1.el7, arch: x86_64, nevra: libfoo-1.3-1.el7.x86_64}
      reason: the header is libfoo-1.3-1.el7.x86_64 but the name claims libfoo-1.2-3.el7.x86_64
  contains:
    path:
      description: Path of the file.
      type: str
    file:
      description: File name.
      type: str
    claimed:
      description: The C(name-version-release.arch) its name claims, or V(null) if the name does not parse.
      type: str
    header:
      description: The package in its header (keys as in RV(missing)), or V(null) if rpm cannot read it.
      type: dict
    reason:
      description: Why it is corrupt, in words.
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm import (
    BASELINE_MODE,
    BaselineError,
    Rpm,
    RpmError,
    atomic_write,
    compare_host,
    drift_summary,
    filter_ignored,
    load_baseline,
    render_baseline,
)

ARGUMENT_SPEC = dict(
    state=dict(type='str', choices=['captured', 'compared'], default='compared'),
    baseline=dict(type='path', required=True),
    root=dict(type='path'),
    dbpath=dict(type='path', default='/var/lib/rpm'),
    ignore=dict(type='list', elements='str', default=[]),
    fail_on_drift=dict(type='bool'),
    backup_dir=dict(type='path'),
    digests=dict(type='bool', default=False),
)

_ONLY_FOR = (
    ('fail_on_drift', 'compared'),
    ('backup_dir', 'compared'),
)


def _validate(module):
    params = module.params
    state = params['state']
    for option, wanted in _ONLY_FOR:
        if params[option] is not None and state != wanted:
            module.fail_json(msg='%s applies to state=%s only; remove it or set state=%s'
                             % (option, wanted, wanted))
    if params['digests'] and state != 'captured':
        module.fail_json(msg='digests applies to state=captured only (compared uses the digests '
                             'the baseline holds); remove it or set state=captured')
    if not params['dbpath'].startswith('/'):
        module.fail_json(msg='dbpath must be an absolute path (relative to root when root is set), got %r'
                         % params['dbpath'])
    if params['root'] is not None and not os.path.isdir(params['root']):
        module.fail_json(msg='root %s is not a directory' % params['root'])
    if params['backup_dir'] is not None and not os.path.isdir(params['backup_dir']):
        module.fail_json(msg='backup_dir %s is not a directory' % params['backup_dir'])
    for index, pattern in enumerate(params['ignore']):
        if not pattern:
            module.fail_json(msg='ignore[%d] is empty; give a name glob such as gpg-pubkey*' % index)


def _runner(module):
    def run(argv, env_update):
        return module.run_command(argv, environ_update=env_update, expand_user_and_vars=False)
    return run


def _read_existing(module, path):
    if not os.path.exists(path):
        return None
    if not os.path.isfile(path):
        module.fail_json(msg='baseline %s exists and is not a regular file' % path)
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        module.fail_json(msg='baseline %s cannot be read: %s' % (path, exc))


def run_captured(module, rpm):
    path = module.params['baseline']
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        module.fail_json(msg='the directory of baseline %s does not exist; create it first' % path)
    before = _read_existing(module, path)
    installed = rpm.query_installed(digests=module.params['digests'])
    kept, ignored = filter_ignored(installed, module.params['ignore'])
    after = render_baseline(kept)
    changed = before != after
    if changed and not module.check_mode:
        atomic_write(path, after, BASELINE_MODE)
    result = dict(
        changed=changed,
        counts=dict(installed=len(installed), ignored_installed=len(ignored), captured=len(kept)),
    )
    if module._diff:
        result['diff'] = dict(before=before or '', after=after,
                              before_header=path if before is not None else '(absent)', after_header=path)
    module.exit_json(**result)


def run_compared(module, rpm):
    path = module.params['baseline']
    baseline_format, baseline = load_baseline(path)
    result = compare_host(rpm, baseline_format, baseline, ignore=module.params['ignore'],
                          backup_dir=module.params['backup_dir'])
    fail_on_drift = module.params['fail_on_drift']
    if fail_on_drift is None:
        fail_on_drift = True
    problems = not result['consistent'] or result['missing_backups'] or result['corrupt_backups']
    if fail_on_drift and problems:
        module.fail_json(msg=drift_summary(result, path), changed=False, **result)
    module.exit_json(changed=False, **result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    _validate(module)
    rpm = Rpm(runner=_runner(module), binary=module.get_bin_path('rpm', required=True),
              root=module.params['root'], dbpath=module.params['dbpath'])
    try:
        if module.params['state'] == 'captured':
            run_captured(module, rpm)
        else:
            run_compared(module, rpm)
    except (BaselineError, RpmError) as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot write baseline %s: %s' % (module.params['baseline'], exc))


if __name__ == '__main__':
    main()
