# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rpm_baseline module with its one seam (AnsibleModule.run_command) mocked:
exact argv, nothing written in check mode, errors that change nothing."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm
from ansible_collections.clusterops.upgrade.plugins.modules import rpm_baseline

RPM = '/usr/bin/rpm'
C = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
FS = _rpm.FS


def qa(*nevras):
    """rpm -qa output for these packages, as our query format prints it."""
    lines = []
    for text in nevras:
        p = _rpm.parse_nevra(text)
        lines.append(FS.join((p.name, str(p.epoch) if p.epoch else '(none)', p.version, p.release,
                              p.arch or '(none)')))
    return ''.join(line + '\n' for line in lines)


@pytest.fixture
def root(tmp_path):
    db = tmp_path / 'root' / 'var' / 'lib' / 'rpm'
    db.mkdir(parents=True)
    (db / 'rpmdb.sqlite').write_bytes(b'')
    return str(tmp_path / 'root')


def run_module(monkeypatch, capsys, args, replies):
    calls = []
    replies = list(replies)

    def run_command(self, args, **kwargs):
        calls.append((args, kwargs))
        return replies.pop(0)

    monkeypatch.setattr(rpm_baseline.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(rpm_baseline.AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            rpm_baseline.main()
    return json.loads(capsys.readouterr().out), calls


def qa_call(root, digests=False):
    return ([RPM, '--root', root, '--dbpath', '/var/lib/rpm', '-qa', '--qf',
             _rpm.INSTALLED_DIGEST_QF if digests else _rpm.INSTALLED_QF],
            {'environ_update': C, 'expand_user_and_vars': False})


BASE = ('bash-4.2.46-34.el7.x86_64', 'glibc-2.17-326.el7.x86_64', 'kernel-3.10.0-1160.el7.x86_64')


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return path


# --------------------------------------------------------------------------
# compared
# --------------------------------------------------------------------------

def test_compared_consistent_one_command(monkeypatch, capsys, root, tmp_path):
    baseline = write(str(tmp_path / 'list.txt'), '\n'.join(BASE) + '\n')
    result, calls = run_module(monkeypatch, capsys, {'baseline': baseline, 'root': root},
                               [(0, qa(*BASE), '')])
    assert calls == [qa_call(root)]
    assert (result['changed'], result['consistent'], result['baseline_format']) == (False, True, 'nvra')
    assert 'failed' not in result
    assert (result['missing'], result['extra'], result['changed_packages'], result['restore_plan']) == ([], [], [], [])


def test_compared_drift_fails_with_summary(monkeypatch, capsys, root, tmp_path):
    baseline = write(str(tmp_path / 'list.txt'), '\n'.join(BASE) + '\n')
    installed = qa('bash-4.2.46-35.el7_9.x86_64', BASE[1], BASE[2], 'kernel-3.10.0-1062.el7.x86_64')
    result, calls = run_module(monkeypatch, capsys, {'baseline': baseline, 'root': root}, [(0, installed, '')])
    assert calls == [qa_call(root)]
    assert result['failed'] is True
    assert result['msg'] == (
        'the installed rpm set differs from the baseline %s: 1 extra (kernel-3.10.0-1062.el7.x86_64); '
        '1 changed (bash.x86_64: bash-4.2.46-35.el7_9.x86_64 installed, baseline bash-4.2.46-34.el7.x86_64). '
        'restore_plan is incomplete: no backup rpm for bash-4.2.46-34.el7.x86_64.' % baseline)
    assert [c['change'] for c in result['changed_packages']] == ['upgraded']
    assert result['restore_plan'] == [[RPM, '--root', root, '--dbpath', '/var/lib/rpm', '-e',
                                       'kernel-3.10.0-1062.el7.x86_64']]


def test_compared_fail_on_drift_false_reports(monkeypatch, capsys, root, tmp_path):
    baseline = write(str(tmp_path / 'list.txt'), '\n'.join(BASE) + '\n')
    result, calls = run_module(
        monkeypatch, capsys,
        {'baseline': baseline, 'root': root, 'fail_on_drift': False, 'ignore': ['gpg-pubkey*']},
        [(0, qa(*BASE[1:]) + qa('gpg-pubkey-f4a80eb5-53a7ff4b'), '')])
    assert 'failed' not in result
    assert (result['consistent'], [p['nevra'] for p in result['missing']]) == (False, ['bash-4.2.46-34.el7.x86_64'])
    assert result['counts'] == {'baseline': 3, 'installed': 2, 'ignored_baseline': 0, 'ignored_installed': 1,
                                'missing': 1, 'extra': 0, 'changed_packages': 0, 'missing_backups': 0,
                                'corrupt_backups': 0}


def test_compared_in_check_mode_runs_only_the_query(monkeypatch, capsys, root, tmp_path):
    baseline = write(str(tmp_path / 'list.txt'), '\n'.join(BASE) + '\n')
    result, calls = run_module(monkeypatch, capsys,
                               {'baseline': baseline, 'root': root, '_ansible_check_mode': True},
                               [(0, qa(*BASE), '')])
    assert (calls, result['consistent']) == ([qa_call(root)], True)


def test_compared_with_backup_dir(monkeypatch, capsys, root, tmp_path):
    baseline = write(str(tmp_path / 'list.txt'), '\n'.join(BASE) + '\n')
    backups = tmp_path / 'backup'
    backups.mkdir()
    for name in ('bash-4.2.46-34.el7.x86_64.rpm', 'glibc-2.17-326.el7.x86_64.rpm'):
        (backups / name).write_bytes(b'not really a package')
    installed = qa('bash-4.2.46-35.el7_9.x86_64', *BASE[1:])
    result, calls = run_module(
        monkeypatch, capsys, {'baseline': baseline, 'root': root, 'backup_dir': str(backups)},
        [(0, installed, ''),
         (2, '', ''),
         (1, '', 'error: %s/bash-4.2.46-34.el7.x86_64.rpm: not an rpm package\n' % backups),
         (1, '', '')])
    bash, glibc = str(backups / 'bash-4.2.46-34.el7.x86_64.rpm'), str(backups / 'glibc-2.17-326.el7.x86_64.rpm')
    qp = [RPM, '--root', root, '--dbpath', '/var/lib/rpm', '-qp', '--nomanifest', '--qf', _rpm.HEADER_QF]
    kw = {'environ_update': C, 'expand_user_and_vars': False}
    assert calls == [qa_call(root), (qp + [bash, glibc], kw), (qp + [bash], kw), (qp + [glibc], kw)]
    assert result['failed'] is True
    assert [(c['file'], c['reason']) for c in result['corrupt_backups']] == [
        ('bash-4.2.46-34.el7.x86_64.rpm', 'rpm cannot read it: error: %s: not an rpm package' % bash),
        ('glibc-2.17-326.el7.x86_64.rpm', 'rpm cannot read it: not a package file (rpm exit status 1)'),
    ]
    assert [m['file'] for m in result['missing_backups']] == [
        'bash-4.2.46-34.el7.x86_64.rpm', 'glibc-2.17-326.el7.x86_64.rpm', 'kernel-3.10.0-1160.el7.x86_64.rpm']
    assert (result['restore_plan'], result['restore_plan_complete']) == ([], False)


def test_compared_baseline_with_digests_queries_digests(monkeypatch, capsys, root, tmp_path):
    baseline = write(str(tmp_path / 'b.json'), _rpm.render_baseline(
        [_rpm.Package('bash', 0, '4.2.46', '34.el7', 'x86_64', 'sha256header:aa')]))
    out = FS.join(('bash', '(none)', '4.2.46', '34.el7', 'x86_64', 'bb', '(none)')) + '\n'
    result, calls = run_module(monkeypatch, capsys, {'baseline': baseline, 'root': root, 'fail_on_drift': False},
                               [(0, out, '')])
    assert calls == [qa_call(root, digests=True)]
    assert [(c['change'], c['installed']['digest']) for c in result['changed_packages']] == [
        ('rebuilt', 'sha256header:bb')]


@pytest.mark.parametrize('content, message', [
    ('{\n  "schema_version": 1,\n  "packages": [\n    {"name": "bash" "epoch": 0}\n  ]\n}\n',
     "line 4 column 21: not valid JSON: Expecting ',' delimiter"),
    ('bash-4.2.46-34.el7.x86_64\nbash 4.2.46\n',
     "line 2: 'bash 4.2.46' is not a package NEVRA (one package per line, no spaces)"),
])
def test_compared_malformed_baseline_fails_before_any_command(monkeypatch, capsys, root, tmp_path, content, message):
    baseline = write(str(tmp_path / 'bad.txt'), content)
    result, calls = run_module(monkeypatch, capsys, {'baseline': baseline, 'root': root}, [])
    assert (result['failed'], result['msg'], calls) == (True, '%s: %s' % (baseline, message), [])
    assert open(baseline).read() == content


def test_compared_missing_baseline(monkeypatch, capsys, root, tmp_path):
    missing = str(tmp_path / 'nope.json')
    result, calls = run_module(monkeypatch, capsys, {'baseline': missing, 'root': root}, [])
    assert (result['msg'], calls) == ('baseline %s cannot be read: No such file or directory' % missing, [])


def test_compared_without_database_runs_nothing(monkeypatch, capsys, tmp_path):
    baseline = write(str(tmp_path / 'list.txt'), '\n'.join(BASE) + '\n')
    result, calls = run_module(monkeypatch, capsys, {'baseline': baseline, 'root': str(tmp_path)}, [])
    assert calls == []
    assert result['msg'].startswith('no rpm database at %s/var/lib/rpm ' % tmp_path)
    assert not os.path.exists(str(tmp_path / 'var'))


def test_default_dbpath_without_root(monkeypatch, capsys, tmp_path):
    db = tmp_path / 'db'
    db.mkdir()
    (db / 'Packages').write_bytes(b'')
    baseline = write(str(tmp_path / 'list.txt'), BASE[0] + '\n')
    result, calls = run_module(monkeypatch, capsys, {'baseline': baseline, 'dbpath': str(db)},
                               [(0, qa(BASE[0]), '')])
    assert calls == [([RPM, '--dbpath', str(db), '-qa', '--qf', _rpm.INSTALLED_QF],
                      {'environ_update': C, 'expand_user_and_vars': False})]
    assert result['consistent'] is True


@pytest.mark.parametrize('args, message', [
    ({'state': 'compared', 'digests': True},
     'digests applies to state=captured only (compared uses the digests the baseline holds); '
     'remove it or set state=captured'),
    ({'state': 'captured', 'backup_dir': '/tmp'}, 'backup_dir applies to state=compared only; '
                                                  'remove it or set state=compared'),
    ({'state': 'captured', 'fail_on_drift': False}, 'fail_on_drift applies to state=compared only; '
                                                    'remove it or set state=compared'),
    ({'dbpath': 'var/lib/rpm'}, "dbpath must be an absolute path (relative to root when root is set), "
                                "got 'var/lib/rpm'"),
    ({'root': '/nonexistent-root-dir'}, 'root /nonexistent-root-dir is not a directory'),
    ({'backup_dir': '/nonexistent-backup-dir'}, 'backup_dir /nonexistent-backup-dir is not a directory'),
    ({'ignore': ['gpg-pubkey*', '']}, 'ignore[1] is empty; give a name glob such as gpg-pubkey*'),
])
def test_bad_options_fail_before_any_command(monkeypatch, capsys, tmp_path, args, message):
    args = dict(args, baseline=str(tmp_path / 'b.json'))
    result, calls = run_module(monkeypatch, capsys, args, [])
    assert (result['failed'], result['msg'], calls) == (True, message, [])
    assert os.listdir(str(tmp_path)) == []


# --------------------------------------------------------------------------
# captured
# --------------------------------------------------------------------------

def test_captured_check_mode_writes_nothing(monkeypatch, capsys, root, tmp_path):
    path = str(tmp_path / 'b.json')
    result, calls = run_module(
        monkeypatch, capsys,
        {'state': 'captured', 'baseline': path, 'root': root, '_ansible_check_mode': True, '_ansible_diff': True},
        [(0, qa(*BASE), '')])
    assert calls == [qa_call(root)]
    assert result['changed'] is True
    assert result['diff'] == {'before': '', 'after': _rpm.render_baseline([_rpm.parse_nevra(t)._replace(epoch=0)
                                                                           for t in BASE]),
                              'before_header': '(absent)', 'after_header': path}
    assert sorted(os.listdir(str(tmp_path))) == ['root']


def test_captured_writes_atomically_then_is_idempotent(monkeypatch, capsys, root, tmp_path):
    path = str(tmp_path / 'b.json')
    args = {'state': 'captured', 'baseline': path, 'root': root, 'ignore': ['gpg-pubkey*'], 'digests': True}
    out = ''.join(FS.join((n, '(none)', v, r, a, 'd' + n, '(none)')) + '\n'
                  for n, v, r, a in (('bash', '4', '1', 'x86_64'), ('gpg-pubkey', 'a', 'b', '(none)')))
    result, calls = run_module(monkeypatch, capsys, args, [(0, out, '')])
    assert calls == [qa_call(root, digests=True)]
    assert (result['changed'], result['counts']) == (True, {'installed': 2, 'ignored_installed': 1, 'captured': 1})
    assert 'diff' not in result
    assert open(path).read() == _rpm.render_baseline([_rpm.Package('bash', 0, '4', '1', 'x86_64', 'sha256header:dbash')])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(str(tmp_path))) == ['b.json', 'root']
    before = os.stat(path)

    result, calls = run_module(monkeypatch, capsys, args, [(0, out, '')])
    assert result['changed'] is False
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_captured_check_mode_predicts_no_change(monkeypatch, capsys, root, tmp_path):
    path = write(str(tmp_path / 'b.json'), _rpm.render_baseline([_rpm.Package('bash', 0, '4', '1', 'x86_64')]))
    mtime = os.stat(path).st_mtime_ns
    result, calls = run_module(
        monkeypatch, capsys,
        {'state': 'captured', 'baseline': path, 'root': root, '_ansible_check_mode': True, '_ansible_diff': True},
        [(0, qa('bash-4-1.x86_64'), '')])
    assert (result['changed'], result['diff']['before'] == result['diff']['after']) == (False, True)
    assert os.stat(path).st_mtime_ns == mtime


def test_captured_check_mode_predicts_change_of_existing_file(monkeypatch, capsys, root, tmp_path):
    old = _rpm.render_baseline([_rpm.Package('bash', 0, '4', '1', 'x86_64')])
    path = write(str(tmp_path / 'b.json'), old)
    result, calls = run_module(
        monkeypatch, capsys,
        {'state': 'captured', 'baseline': path, 'root': root, '_ansible_check_mode': True},
        [(0, qa('bash-5-1.x86_64'), '')])
    assert (result['changed'], len(calls), open(path).read()) == (True, 1, old)


def test_captured_needs_existing_directory(monkeypatch, capsys, root, tmp_path):
    path = str(tmp_path / 'no' / 'b.json')
    result, calls = run_module(monkeypatch, capsys, {'state': 'captured', 'baseline': path, 'root': root}, [])
    assert (result['msg'], calls) == ('the directory of baseline %s does not exist; create it first' % path, [])


def test_captured_query_failure_writes_nothing(monkeypatch, capsys, root, tmp_path):
    path = str(tmp_path / 'b.json')
    result, calls = run_module(monkeypatch, capsys, {'state': 'captured', 'baseline': path, 'root': root},
                               [(1, '', 'error: cannot open Packages index\n')])
    assert result['msg'] == 'rpm -qa failed (rc=1): error: cannot open Packages index'
    assert sorted(os.listdir(str(tmp_path))) == ['root']
