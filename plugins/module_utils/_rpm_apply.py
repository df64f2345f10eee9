# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply the rpms of a staged, verified upgrade bundle: decide, then one transaction.

Plain functions that take data and return data, plus :func:`apply_bundle`, which
runs the whole read -> decide -> act sequence through an :class:`_rpm.Rpm` (the rpm
command seam of ``_rpm.py``: argv lists, ``LANG=C``).

* :func:`plan_apply` compares the installed set with the bundle's packages and the
  bundle's pre-upgrade baseline and says what to install, what is already at the
  target, and what is wrong (nothing is installed when something is wrong);
* :func:`apply_argv` is the one ``rpm -U`` transaction of the packages still to
  apply, so a host where an earlier run was interrupted half-way (some packages at
  the target already) finishes with the rest and a host at the target runs nothing.
"""

from __future__ import annotations

import glob
import os

from ansible_collections.clusterops.upgrade.plugins.module_utils import _bundle, _rpm

MAX_LISTED = 10


class ApplyError(Exception):
    """The bundle cannot be applied. The message says why and what to do; ``result`` holds
    what was done when the transaction itself failed (None: nothing was changed)."""

    def __init__(self, msg, result=None):
        super(ApplyError, self).__init__(msg)
        self.result = result


def _listing(items, limit=MAX_LISTED):
    shown = list(items[:limit])
    if len(items) > limit:
        shown.append('... and %d more' % (len(items) - limit))
    return ', '.join(shown)


def _label(pkg):
    return pkg.name + ('.' + pkg.arch if pkg.arch else '')


def plan_apply(installed, targets, baseline=None, ignore=()):
    """What the transaction must do.

    ``installed``: the installed packages (:class:`_rpm.Package`); ``targets``: ``{path:
    Package}``, the package files of the bundle; ``baseline``: the packages a host must
    have before the upgrade (the bundle's ``baseline.txt``) or None; ``ignore``: name
    globs left out of the baseline comparison.

    Returns ``{'to_apply': [(path, package, installed_package_or_None)], 'at_target':
    [package], 'problems': [text]}``; the lists are sorted by package name.
    """
    problems = []
    by_key = {}
    for path, pkg in sorted(targets.items()):
        if pkg.key in by_key:
            problems.append('the bundle holds %s twice (%s and %s)' % (
                _label(pkg), os.path.basename(by_key[pkg.key][0]), os.path.basename(path)))
            continue
        by_key[pkg.key] = (path, pkg)
    installed_by_key = {}
    for pkg in installed:
        installed_by_key.setdefault(pkg.key, []).append(pkg)
    base_by_key = {}
    for pkg in baseline or ():
        base_by_key.setdefault(pkg.key, []).append(pkg)

    to_apply, at_target = [], []
    for key in sorted(by_key):
        path, pkg = by_key[key]
        have = installed_by_key.get(key, [])
        if any(h.same_build_as(pkg) and (h.epoch or 0) == (pkg.epoch or 0) for h in have):
            at_target.append(pkg)
            continue
        if len(have) > 1:
            problems.append('%s is installed in %d versions (%s); the upgrade replaces exactly one' % (
                _label(pkg), len(have), ', '.join(h.nevra() for h in have)))
            continue
        current = have[0] if have else None
        if current is not None and _rpm.compare_evr(current, pkg) > 0:
            problems.append('%s is installed at %s, newer than the bundle\'s %s: a downgrade is not an '
                            'upgrade (roll back with the rollback playbook instead)' % (
                                _label(pkg), current.evr(), pkg.evr()))
            continue
        if baseline is not None and current is not None and key in base_by_key:
            want = base_by_key[key]
            if not any(current.same_build_as(b) for b in want):
                problems.append('%s is installed at %s, neither the baseline %s nor the target %s' % (
                    _label(pkg), current.evr(), ', '.join(b.evr() for b in want), pkg.evr()))
                continue
        if baseline is not None and current is None and key in base_by_key:
            problems.append('%s (baseline %s) is not installed' % (
                _label(pkg), ', '.join(b.evr() for b in base_by_key[key])))
            continue
        to_apply.append((path, pkg, current))

    if baseline is not None:
        others_base, _ign = _rpm.filter_ignored([b for b in baseline if b.key not in by_key], ignore)
        others_inst, _ign = _rpm.filter_ignored([i for i in installed if i.key not in by_key], ignore)
        parts = _drift_parts(_rpm.diff_packages(others_base, others_inst), 'baseline')
        if parts:
            problems.append('the packages the bundle does not update differ from its baseline: %s'
                            % '; '.join(parts))
    return {'to_apply': to_apply, 'at_target': at_target, 'problems': problems}


def _drift_parts(drift, wanted_word):
    """'N missing (...)', 'N extra (...)', 'N changed (name: X installed, <wanted_word> Y)'."""
    parts = []
    if drift.missing:
        parts.append('%d missing (%s)' % (len(drift.missing), _listing([p.nevra() for p in drift.missing])))
    if drift.extra:
        parts.append('%d extra (%s)' % (len(drift.extra), _listing([p.nevra() for p in drift.extra])))
    if drift.changed:
        parts.append('%d changed (%s)' % (len(drift.changed), _listing(
            ['%s: %s installed, %s %s' % (_label(c.installed), c.installed.nevra(), wanted_word, c.baseline.nevra())
             for c in drift.changed])))
    return parts


def expected_set(baseline, targets):
    """The rpm set a host must have after the upgrade: the baseline with every package the
    bundle holds put in place of its name+arch (and the bundle's new packages added)."""
    keys = set(pkg.key for pkg in targets.values())
    return [b for b in baseline if b.key not in keys] + sorted(targets.values(), key=lambda p: p.key)


def verify_set(installed, targets, baseline=None, ignore=()):
    """Problems (texts) that keep ``installed`` from being the upgraded set."""
    if baseline is None:
        left = plan_apply(installed, targets, None, ignore)
        return left['problems'] + ['%s is not installed' % pkg.nevra() for _p, pkg, _c in left['to_apply']]
    want, _ign = _rpm.filter_ignored(expected_set(baseline, targets), ignore)
    have, _ign = _rpm.filter_ignored(installed, ignore)
    parts = _drift_parts(_rpm.diff_packages(want, have), 'expected')
    return ['the installed rpm set is not the upgraded set (baseline with the bundle\'s packages): %s'
            % '; '.join(parts)] if parts else []


def apply_argv(rpm, to_apply):
    """The one transaction: ``rpm [--root R] --dbpath D -U FILE...`` (files sorted by path)."""
    return rpm.base_argv() + ['-U'] + sorted(path for path, _pkg, _cur in to_apply)


def staged_files(staged_dir, rpm_glob):
    """The package files of a staged bundle, sorted; ApplyError when there are none."""
    pattern = os.path.join(staged_dir, rpm_glob)
    files = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    if not files:
        raise ApplyError('no package file matches %s: is %s the staged bundle (role '
                         'clusterops.upgrade.bundle) and rpm_glob right?' % (pattern, staged_dir))
    return files


def check_marker(staged_dir, checksum=None):
    """The staging marker proves the directory is a complete, verified extraction."""
    try:
        marker = _bundle.read_marker(staged_dir)
    except _bundle.BundleError as exc:
        raise ApplyError(str(exc))
    if marker is None:
        raise ApplyError('%s does not exist: stage the bundle first (role clusterops.upgrade.bundle)' % staged_dir)
    if not marker:
        raise ApplyError('%s has no %s: it was not staged (and verified) by clusterops.upgrade.bundle_stage; '
                         'stage the bundle with the bundle role' % (staged_dir, _bundle.MARKER))
    if checksum and marker.get('checksum') != checksum:
        raise ApplyError('%s holds the bundle with checksum %s, not the verified %s: stage the bundle again '
                         '(role clusterops.upgrade.bundle)' % (staged_dir, marker.get('checksum'), checksum))
    return marker


def resolve_baseline(staged_dir, baseline):
    """The baseline path: '' = none, relative = inside the staged bundle."""
    if not baseline:
        return None
    return baseline if os.path.isabs(baseline) else os.path.join(staged_dir, baseline)


def apply_bundle(rpm, staged_dir, checksum=None, rpm_glob='rpms/*.rpm', baseline='baseline.txt',
                 ignore=('gpg-pubkey*',), check_mode=False, verify_only=False):
    """Read -> decide -> act. Returns the module's result data (without ``changed``).

    ``verify_only``: read only; ApplyError unless the installed set is the upgraded set."""
    marker = check_marker(staged_dir, checksum)
    files = staged_files(staged_dir, rpm_glob)
    base_path = resolve_baseline(staged_dir, baseline)
    base_pkgs = None
    if base_path is not None:
        try:
            _fmt, base_pkgs = _rpm.load_baseline(base_path)
        except _rpm.BaselineError as exc:
            raise ApplyError(str(exc))
    headers = rpm.read_headers(files)
    bad = ['%s: %s' % (os.path.basename(p), headers[p].error) for p in files if headers[p].package is None]
    if bad:
        raise ApplyError('rpm cannot read %s in the staged bundle %s: stage the bundle again' % (
            _listing(bad), staged_dir))
    targets = dict((p, headers[p].package) for p in files)
    installed = rpm.query_installed()
    if verify_only:
        problems = verify_set(installed, targets, base_pkgs, ignore)
        if problems:
            raise ApplyError('%s (bundle staged in %s)' % ('; '.join(problems), staged_dir))
        return {
            'staged_dir': staged_dir, 'bundle_checksum': marker.get('checksum'), 'baseline': base_path,
            'packages': [pkg.nevra() for _p, pkg in sorted(targets.items())], 'at_target_before': True,
            'already_installed': [pkg.nevra() for _p, pkg in sorted(targets.items())], 'applied': [],
            'command': [], 'rpm_output': '',
        }
    plan = plan_apply(installed, targets, base_pkgs, ignore)
    if plan['problems']:
        raise ApplyError('the bundle staged in %s cannot be applied on this host, nothing was changed: %s'
                         % (staged_dir, '; '.join(plan['problems'])))
    result = {
        'staged_dir': staged_dir,
        'bundle_checksum': marker.get('checksum'),
        'baseline': base_path,
        'packages': [pkg.nevra() for _p, pkg in sorted(targets.items())],
        'at_target_before': not plan['to_apply'],
        'already_installed': [pkg.nevra() for pkg in plan['at_target']],
        'applied': [{'nevra': pkg.nevra(), 'from': cur.nevra() if cur is not None else None}
                    for _p, pkg, cur in plan['to_apply']],
        'command': apply_argv(rpm, plan['to_apply']) if plan['to_apply'] else [],
        'rpm_output': '',
    }
    if not plan['to_apply'] or check_mode:
        return result
    rc, out, err = rpm.run(result['command'][len(rpm.base_argv()):])
    result['rpm_output'] = (out or '') + (err or '')
    if rc != 0:
        raise ApplyError('rpm -U failed (rc=%d): %s' % (rc, (err or out or '').strip()[-2000:]), result)
    after = rpm.query_installed()
    left = plan_apply(after, targets, None, ignore)['to_apply']
    if left:
        raise ApplyError('rpm -U returned 0 but %s is not installed afterwards' % _listing(
            [pkg.nevra() for _p, pkg, _c in left]), result)
    return result
