# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rpm_apply module with AnsibleModule.run_command mocked: exact argv, check mode runs no
transaction, the result keys, diff only with --diff, bad options fail before any command."""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm
from ansible_collections.clusterops.upgrade.plugins.modules import rpm_apply

RPM = '/usr/bin/rpm'
C = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
FS = _rpm.FS
BASE = ['labsphere-common-6.8.0-1.ls8.noarch', 'labsphere-node-6.8.0-1.ls8.noarch',
        'labsphere-tools-1:1.4-2.ls8.noarch']
NEW = ['labsphere-common-6.8.1-1.ls8.noarch', 'labsphere-node-6.8.1-1.ls8.noarch']
RESERVED = {'failed', 'skipped', 'msg', 'rc', 'results', 'stdout', 'stderr', 'invocation', 'warnings'}


def line(text, header=False):
    p = _rpm.parse_nevra(text)
    fields = [p.name, str(p.epoch) if p.epoch else '(none)', p.version, p.release, p.arch]
    if header:
        fields += ['(none)', '(none)']
    return FS.join(fields) + '\n'


@pytest.fixture
def stage(tmp_path):
    root = tmp_path / 'stage'
    (root / 'rpms').mkdir(parents=True)
    for text in NEW:
        (root / 'rpms' / (_rpm.parse_nevra(text).filename())).write_bytes(b'x')
    (root / 'baseline.txt').write_text('\n'.join(BASE) + '\n')
    (root / '.clusterops-bundle.json').write_text(json.dumps({'checksum': 'abc'}))
    return str(root)


def run(monkeypatch, capsys, args, installed, check_mode=False, diff=False):
    calls = []
    installed = list(installed)

    def run_command(self, argv, **kwargs):
        calls.append((list(argv), kwargs))
        if argv[3] == '-qa':
            current = installed.pop(0) if len(installed) > 1 else installed[0]
            return 0, ''.join(line(t) for t in current), ''
        if argv[3] == '-qp':
            names = [os.path.basename(a) for a in argv[7:]]
            return 0, ''.join(line(t, True) for t in NEW if _rpm.parse_nevra(t).filename() in names), ''
        return 0, 'ok\n', ''

    monkeypatch.setattr(rpm_apply.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(rpm_apply.AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    monkeypatch.setattr(_rpm.Rpm, 'check_db', lambda self: '/var/lib/rpm')
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            rpm_apply.main()
    return json.loads(capsys.readouterr().out), calls


def test_apply_with_diff(monkeypatch, capsys, stage):
    result, calls = run(monkeypatch, capsys, {'staged_dir': stage, 'checksum': 'abc'},
                        [BASE, NEW + BASE[2:]], diff=True)
    files = [stage + '/rpms/' + _rpm.parse_nevra(t).filename() for t in NEW]
    assert [c[0] for c in calls if c[0][3] in ('-qa', '-U')] == [
        [RPM, '--dbpath', '/var/lib/rpm', '-qa', '--qf', _rpm.INSTALLED_QF],
        [RPM, '--dbpath', '/var/lib/rpm', '-U'] + files,
        [RPM, '--dbpath', '/var/lib/rpm', '-qa', '--qf', _rpm.INSTALLED_QF]]
    assert all(kw == {'environ_update': C, 'expand_user_and_vars': False} for _a, kw in calls)
    assert result['changed'] is True
    assert result['diff'] == {'before': '\n'.join(sorted(BASE[:2])) + '\n', 'after': '\n'.join(NEW) + '\n'}
    assert not RESERVED & set(result)
    assert set(result) == {'changed', 'diff', 'packages', 'applied', 'already_installed', 'at_target_before',
                           'command', 'rpm_output', 'staged_dir', 'bundle_checksum', 'baseline'}


def test_check_mode_runs_no_transaction(monkeypatch, capsys, stage):
    result, calls = run(monkeypatch, capsys, {'staged_dir': stage}, [BASE], check_mode=True)
    assert [c[0][3] for c in calls] == ['-qp', '-qp', '-qp', '-qa']
    assert (result['changed'], [a['nevra'] for a in result['applied']], 'diff' in result) == (True, NEW, False)


def test_at_target_is_unchanged(monkeypatch, capsys, stage):
    result, calls = run(monkeypatch, capsys, {'staged_dir': stage}, [NEW + BASE[2:]])
    assert (result['changed'], result['command'], result['already_installed']) == (False, [], NEW)


def test_verified_state_fails_on_the_old_set(monkeypatch, capsys, stage):
    result, calls = run(monkeypatch, capsys, {'staged_dir': stage, 'state': 'verified'}, [BASE])
    assert result['failed'] is True
    assert result['changed'] is False
    assert result['msg'].startswith("the installed rpm set is not the upgraded set (baseline with the bundle's "
                                    'packages): 2 changed')
    assert [c[0][3] for c in calls if c[0][3] == '-U'] == []


@pytest.mark.parametrize('args, message', [
    ({'dbpath': 'var/lib/rpm'}, "dbpath must be an absolute path (relative to root when root is set), got 'var/lib/rpm'"),
    ({'rpm_glob': '../x/*.rpm'}, "rpm_glob '../x/*.rpm' must be relative to staged_dir, without .."),
    ({'ignore': ['']}, 'ignore[0] is empty; give a name glob such as gpg-pubkey*'),
])
def test_bad_options_fail_before_any_command(monkeypatch, capsys, stage, args, message):
    result, calls = run(monkeypatch, capsys, dict({'staged_dir': stage}, **args), [BASE])
    assert (result['failed'], result['msg'], calls) == (True, message, [])
