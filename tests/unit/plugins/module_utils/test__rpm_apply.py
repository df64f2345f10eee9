# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decision tables of _rpm_apply and the whole read -> decide -> act sequence with the
rpm seam answered by a fake: exact argv, nothing run in check mode, refusals that change
nothing, a half-applied host finishing with the rest, a host at the target running nothing."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm, _rpm_apply
from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm_apply import ApplyError

FS = _rpm.FS
C = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
RPM = '/usr/bin/rpm'
BASE = ['labsphere-common-6.8.0-1.ls8.noarch', 'labsphere-node-6.8.0-1.ls8.noarch',
        'labsphere-tools-1:1.4-2.ls8.noarch']
NEW = ['labsphere-common-6.8.1-1.ls8.noarch', 'labsphere-node-6.8.1-1.ls8.noarch']


def pkg(text):
    p = _rpm.parse_nevra(text)
    return p._replace(epoch=p.epoch or 0)


def pkgs(texts):
    return [pkg(t) for t in texts]


def targets(texts, where='/s/rpms'):
    return dict(('%s/%s' % (where, pkg(t).filename()), pkg(t)) for t in texts)


# ------------------------------------------------------------------ plan_apply

def test_plan_from_the_baseline_applies_every_bundle_package():
    plan = _rpm_apply.plan_apply(pkgs(BASE), targets(NEW), pkgs(BASE))
    assert plan['problems'] == []
    assert [(os.path.basename(p), t.nevra(), c.nevra()) for p, t, c in plan['to_apply']] == [
        ('labsphere-common-6.8.1-1.ls8.noarch.rpm', 'labsphere-common-6.8.1-1.ls8.noarch',
         'labsphere-common-6.8.0-1.ls8.noarch'),
        ('labsphere-node-6.8.1-1.ls8.noarch.rpm', 'labsphere-node-6.8.1-1.ls8.noarch',
         'labsphere-node-6.8.0-1.ls8.noarch')]
    assert plan['at_target'] == []


def test_plan_at_the_target_applies_nothing():
    installed = pkgs(NEW + BASE[2:])
    plan = _rpm_apply.plan_apply(installed, targets(NEW), pkgs(BASE))
    assert (plan['to_apply'], [p.nevra() for p in plan['at_target']], plan['problems']) == (
        [], ['labsphere-common-6.8.1-1.ls8.noarch', 'labsphere-node-6.8.1-1.ls8.noarch'], [])


def test_plan_half_applied_host_gets_the_rest():
    installed = pkgs(['labsphere-common-6.8.1-1.ls8.noarch'] + BASE[1:])
    plan = _rpm_apply.plan_apply(installed, targets(NEW), pkgs(BASE))
    assert [t.nevra() for _p, t, _c in plan['to_apply']] == ['labsphere-node-6.8.1-1.ls8.noarch']
    assert [p.nevra() for p in plan['at_target']] == ['labsphere-common-6.8.1-1.ls8.noarch']
    assert plan['problems'] == []


@pytest.mark.parametrize('installed, problem', [
    (BASE + ['labsphere-extra-1.0-1.ls8.noarch'],
     'the packages the bundle does not update differ from its baseline: 1 extra (labsphere-extra-1.0-1.ls8.noarch)'),
    (BASE[:2],
     'the packages the bundle does not update differ from its baseline: 1 missing (labsphere-tools-1:1.4-2.ls8.noarch)'),
    (BASE[:2] + ['labsphere-tools-1:1.4-3.ls8.noarch'],
     'the packages the bundle does not update differ from its baseline: 1 changed (labsphere-tools.noarch: '
     'labsphere-tools-1:1.4-3.ls8.noarch installed, baseline labsphere-tools-1:1.4-2.ls8.noarch)'),
    (['labsphere-common-6.7.9-1.ls8.noarch'] + BASE[1:],
     'labsphere-common.noarch is installed at 6.7.9-1.ls8, neither the baseline 6.8.0-1.ls8 nor the target '
     '6.8.1-1.ls8'),
    (['labsphere-common-6.9.0-1.ls8.noarch'] + BASE[1:],
     "labsphere-common.noarch is installed at 6.9.0-1.ls8, newer than the bundle's 6.8.1-1.ls8: a downgrade is "
     'not an upgrade (roll back with the rollback playbook instead)'),
    (BASE[1:],
     'labsphere-common.noarch (baseline 6.8.0-1.ls8) is not installed'),
    (['labsphere-common-6.8.0-1.ls8.noarch', 'labsphere-common-6.7.0-1.ls8.noarch'] + BASE[1:],
     'labsphere-common.noarch is installed in 2 versions (labsphere-common-6.8.0-1.ls8.noarch, '
     'labsphere-common-6.7.0-1.ls8.noarch); the upgrade replaces exactly one'),
])
def test_plan_refuses_a_drifted_host(installed, problem):
    plan = _rpm_apply.plan_apply(pkgs(installed), targets(NEW), pkgs(BASE))
    assert plan['problems'] == [problem]


def test_plan_ignores_globs_and_needs_no_baseline():
    installed = pkgs(BASE + ['gpg-pubkey-f4a80eb5-53a7ff4b'])
    plan = _rpm_apply.plan_apply(installed, targets(NEW), pkgs(BASE), ignore=['gpg-pubkey*'])
    assert plan['problems'] == []
    plan = _rpm_apply.plan_apply(pkgs(['labsphere-extra-1.0-1.ls8.noarch']), targets(NEW), None)
    assert ([t.nevra() for _p, t, c in plan['to_apply']], plan['problems']) == (
        ['labsphere-common-6.8.1-1.ls8.noarch', 'labsphere-node-6.8.1-1.ls8.noarch'], [])


def test_plan_refuses_a_bundle_with_a_package_twice():
    two = {'/s/a.rpm': pkg(NEW[0]), '/s/b.rpm': pkg('labsphere-common-6.8.2-1.ls8.noarch')}
    assert _rpm_apply.plan_apply(pkgs(BASE), two, None)['problems'] == [
        'the bundle holds labsphere-common.noarch twice (a.rpm and b.rpm)']


def test_expected_set_and_verify():
    assert [p.nevra() for p in _rpm_apply.expected_set(pkgs(BASE), targets(NEW))] == [
        'labsphere-tools-1:1.4-2.ls8.noarch'] + NEW
    assert _rpm_apply.verify_set(pkgs(NEW + BASE[2:]), targets(NEW), pkgs(BASE)) == []
    assert _rpm_apply.verify_set(pkgs(BASE), targets(NEW), pkgs(BASE)) == [
        "the installed rpm set is not the upgraded set (baseline with the bundle's packages): 2 changed "
        '(labsphere-common.noarch: labsphere-common-6.8.0-1.ls8.noarch installed, expected '
        'labsphere-common-6.8.1-1.ls8.noarch, labsphere-node.noarch: labsphere-node-6.8.0-1.ls8.noarch installed, '
        'expected labsphere-node-6.8.1-1.ls8.noarch)']
    assert _rpm_apply.verify_set(pkgs(BASE), targets(NEW), None) == [
        'labsphere-common-6.8.1-1.ls8.noarch is not installed', 'labsphere-node-6.8.1-1.ls8.noarch is not installed']


# ------------------------------------------------------------------ apply_bundle

def record(text):
    p = pkg(text)
    return FS.join((p.name, str(p.epoch) if p.epoch else '(none)', p.version, p.release, p.arch)) + '\n'


def header_record(text):
    p = pkg(text)
    return FS.join((p.name, str(p.epoch) if p.epoch else '(none)', p.version, p.release, p.arch,
                    '(none)', '(none)')) + '\n'


class FakeRpm(object):
    """The rpm seam: answers rpm -qa from ``installed`` (a list per call), rpm -qp per file."""

    def __init__(self, installed, headers, upgrade_rc=0):
        self.installed = list(installed)
        self.headers = headers
        self.upgrade_rc = upgrade_rc
        self.calls = []

    def __call__(self, argv, env):
        self.calls.append((list(argv), dict(env)))
        args = argv[5:]
        if args[0] == '-qa':
            current = self.installed.pop(0) if len(self.installed) > 1 else self.installed[0]
            return 0, ''.join(record(t) for t in current), ''
        if args[0] == '-qp':
            files = list(args[4:])
            return 0, ''.join(header_record(self.headers[os.path.basename(f)]) for f in files
                              if os.path.basename(f) in self.headers), ''
        if args[0] == '-U':
            return self.upgrade_rc, 'Preparing...\n', 'error: boom\n' if self.upgrade_rc else ''
        raise AssertionError(argv)


@pytest.fixture
def staged(tmp_path):
    root = tmp_path / 'root'
    (root / 'var' / 'lib' / 'rpm').mkdir(parents=True)
    (root / 'var' / 'lib' / 'rpm' / 'rpmdb.sqlite').write_bytes(b'')
    stage = tmp_path / 'stage'
    (stage / 'rpms').mkdir(parents=True)
    for text in NEW:
        (stage / 'rpms' / pkg(text).filename()).write_bytes(b'not a real package')
    (stage / 'baseline.txt').write_text('\n'.join(BASE) + '\n')
    (stage / '.clusterops-bundle.json').write_text(json.dumps({'checksum': 'abc', 'algorithm': 'sha256'}))
    return str(root), str(stage)


def headers():
    return dict((pkg(t).filename(), t) for t in NEW)


def argv_of(calls):
    return [argv for argv, env in calls]


def test_apply_one_transaction_exact_argv(staged):
    root, stage = staged
    fake = FakeRpm([BASE, NEW + BASE[2:]], headers())
    result = _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage, checksum='abc')
    files = [stage + '/rpms/' + pkg(t).filename() for t in NEW]
    base = [RPM, '--root', root, '--dbpath', '/var/lib/rpm']
    assert argv_of(fake.calls) == [
        base + ['-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, files[0], files[1]],
        base + ['-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, files[0]],
        base + ['-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, files[1]],
        base + ['-qa', '--qf', _rpm.INSTALLED_QF],
        base + ['-U'] + files,
        base + ['-qa', '--qf', _rpm.INSTALLED_QF],
    ]
    assert all(env == C for _argv, env in fake.calls)
    assert result['applied'] == [
        {'nevra': NEW[0], 'from': BASE[0]}, {'nevra': NEW[1], 'from': BASE[1]}]
    assert (result['at_target_before'], result['already_installed'], result['command']) == (
        False, [], base + ['-U'] + files)


def test_apply_check_mode_runs_no_transaction(staged):
    root, stage = staged
    fake = FakeRpm([BASE], headers())
    result = _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage, checksum='abc', check_mode=True)
    assert [a for a in argv_of(fake.calls) if '-U' in a] == []
    assert [a['nevra'] for a in result['applied']] == NEW


def test_apply_at_target_runs_nothing_but_reads(staged):
    root, stage = staged
    fake = FakeRpm([NEW + BASE[2:]], headers())
    result = _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage)
    assert [a[5] for a in argv_of(fake.calls)] == ['-qp', '-qp', '-qp', '-qa']
    assert (result['applied'], result['at_target_before'], result['command']) == ([], True, [])


def test_apply_half_done_host_gets_only_the_rest(staged):
    root, stage = staged
    half = ['labsphere-common-6.8.1-1.ls8.noarch'] + BASE[1:]
    fake = FakeRpm([half, NEW + BASE[2:]], headers())
    result = _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage)
    assert result['command'][-2:] == ['-U', stage + '/rpms/labsphere-node-6.8.1-1.ls8.noarch.rpm']
    assert result['already_installed'] == ['labsphere-common-6.8.1-1.ls8.noarch']


def test_apply_refuses_drift_and_runs_no_transaction(staged):
    root, stage = staged
    fake = FakeRpm([BASE + ['labsphere-extra-1.0-1.ls8.noarch']], headers())
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage)
    assert str(err.value) == (
        'the bundle staged in %s cannot be applied on this host, nothing was changed: the packages the bundle does '
        'not update differ from its baseline: 1 extra (labsphere-extra-1.0-1.ls8.noarch)' % stage)
    assert err.value.result is None
    assert [a for a in argv_of(fake.calls) if '-U' in a] == []


def test_apply_reports_a_failed_transaction(staged):
    root, stage = staged
    fake = FakeRpm([BASE], headers(), upgrade_rc=1)
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage)
    assert str(err.value) == 'rpm -U failed (rc=1): error: boom'
    assert err.value.result['rpm_output'] == 'Preparing...\nerror: boom\n'


def test_apply_notices_packages_missing_after_the_transaction(staged):
    root, stage = staged
    fake = FakeRpm([BASE, BASE], headers())
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage)
    assert str(err.value) == ('rpm -U returned 0 but labsphere-common-6.8.1-1.ls8.noarch, '
                              'labsphere-node-6.8.1-1.ls8.noarch is not installed afterwards')


@pytest.mark.parametrize('marker, checksum, message', [
    (None, None, '{stage} has no .clusterops-bundle.json: it was not staged (and verified) by '
                 'clusterops.upgrade.bundle_stage; stage the bundle with the bundle role'),
    ({'checksum': 'other'}, 'abc', '{stage} holds the bundle with checksum other, not the verified abc: stage the '
                                   'bundle again (role clusterops.upgrade.bundle)'),
])
def test_apply_refuses_an_unverified_stage(staged, marker, checksum, message):
    root, stage = staged
    path = os.path.join(stage, '.clusterops-bundle.json')
    if marker is None:
        os.unlink(path)
    else:
        with open(path, 'w') as handle:
            json.dump(marker, handle)
    fake = FakeRpm([BASE], headers())
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage, checksum=checksum)
    assert str(err.value) == message.format(stage=stage)
    assert fake.calls == []


def test_apply_refuses_a_missing_stage_and_an_empty_one(tmp_path, staged):
    root, stage = staged
    fake = FakeRpm([BASE], headers())
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), missing)
    assert str(err.value) == '%s does not exist: stage the bundle first (role clusterops.upgrade.bundle)' % missing
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage, rpm_glob='none/*.rpm')
    assert str(err.value) == ('no package file matches %s/none/*.rpm: is %s the staged bundle (role '
                              'clusterops.upgrade.bundle) and rpm_glob right?' % (stage, stage))
    assert fake.calls == []


def test_verify_only_reads_and_fails_on_the_old_set(staged):
    root, stage = staged
    fake = FakeRpm([NEW + BASE[2:]], headers())
    result = _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage, verify_only=True)
    assert (result['applied'], result['packages']) == ([], NEW)
    fake = FakeRpm([BASE], headers())
    with pytest.raises(ApplyError) as err:
        _rpm_apply.apply_bundle(_rpm.Rpm(fake, RPM, root=root), stage, verify_only=True)
    assert str(err.value).startswith("the installed rpm set is not the upgraded set (baseline with the bundle's "
                                     'packages): 2 changed (labsphere-common.noarch: ')
    assert [a for a in argv_of(fake.calls) if '-U' in a] == []
