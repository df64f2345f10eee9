# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight_host module with its seam (AnsibleModule.run_command) mocked: one call
runs every host check; exact argv (rpm -qa, rpm -qp, the version command, findmnt),
all with LANG=C; the same read-only commands in check mode and nothing written;
invalid options fail before any command runs."""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm
from ansible_collections.clusterops.upgrade.plugins.modules import preflight_host

RPM = '/usr/bin/rpm'
RPM_ENV = {'environ_update': {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}, 'expand_user_and_vars': False}
SNAP_ENV = {'environ_update': {'LANG': 'C', 'LC_ALL': 'C'}, 'expand_user_and_vars': False}
BASE = ['labsphere-common-6.8.0-1.ls8.noarch', 'labsphere-node-6.8.0-1.ls8.noarch']


def qa(*nevras):
    lines = []
    for text in nevras:
        p = _rpm.parse_nevra(text)
        lines.append(_rpm.FS.join((p.name, '(none)', p.version, p.release, p.arch)))
    return ''.join(line + '\n' for line in lines)


@pytest.fixture
def root(tmp_path):
    path = tmp_path / 'root'
    (path / 'var' / 'lib' / 'rpm').mkdir(parents=True)
    (path / 'var' / 'lib' / 'rpm' / 'rpmdb.sqlite').write_bytes(b'')
    (path / 'var' / 'backup-rpm').mkdir()
    (path / 'var' / 'log').mkdir()
    (path / 'etc').mkdir()
    (path / 'etc' / 'version').write_text('6.8.0\n')
    return str(path)


def run_module(monkeypatch, capsys, args, replies, rpm_installed=True, check_mode=False):
    calls = []
    replies = list(replies)

    def run_command(self, argv, **kwargs):
        calls.append((argv, kwargs))
        return replies.pop(0)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return '/usr/bin/' + name if rpm_installed else None

    monkeypatch.setattr(preflight_host.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(preflight_host.AnsibleModule, 'get_bin_path', get_bin_path)
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            preflight_host.main()
    assert replies == [], 'not every prepared reply was used'
    return json.loads(capsys.readouterr().out), calls


def statuses(result):
    return [(c['id'], c['status']) for c in result['checks']]


def args_for(root, **extra):
    args = {'host': 'cmp-1', 'root': root, 'expected_version': '6.8.0', 'version_file': '/etc/version',
            'rpm_baseline_content': '\n'.join(BASE) + '\n', 'disk_paths': ['/var/log'],
            'datastores': ['/srv/ds']}
    args.update(extra)
    return args


FINDMNT = (['findmnt', '-J', '-l', '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS'], SNAP_ENV)


def findmnt_reply(*targets):
    return (0, json.dumps({'filesystems': [{'target': t, 'source': '/dev/vdb', 'fstype': 'ext4', 'options': 'rw'}
                                           for t in targets]}), '')


@pytest.mark.parametrize('check_mode', [False, True])
def test_one_call_runs_every_check_with_exact_argv(monkeypatch, capsys, root, check_mode):
    backup = os.path.join(root, 'var/backup-rpm/labsphere-common-6.8.0-1.ls8.noarch.rpm')
    with open(backup, 'w') as f:
        f.write('junk')
    listing = sorted(os.listdir(os.path.join(root, 'var/backup-rpm')))
    result, calls = run_module(monkeypatch, capsys, args_for(root), [
        (0, qa(*BASE), ''),
        (1, '', 'error: junk: not an rpm package\n'),
        (1, '', 'error: junk: not an rpm package\n'),
        findmnt_reply(root + '/srv/ds'),
    ], check_mode=check_mode)
    qp = [RPM, '--root', root, '--dbpath', '/var/lib/rpm', '-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, backup]
    assert calls == [
        ([RPM, '--root', root, '--dbpath', '/var/lib/rpm', '-qa', '--qf', _rpm.INSTALLED_QF], RPM_ENV),
        (qp, RPM_ENV),
        (qp, RPM_ENV),
        FINDMNT,
    ]
    assert result['changed'] is False
    assert statuses(result) == [('product_version', 'pass'), ('bundle_staged', 'skipped'), ('rpm_baseline', 'pass'),
                                ('rpm_backups', 'fail'), ('disk_usage', 'pass'), ('datastores', 'pass')]
    backups = result['checks'][3]
    assert backups['evidence'] == (
        '/var/backup-rpm: 2 missing (labsphere-common-6.8.0-1.ls8.noarch.rpm, labsphere-node-6.8.0-1.ls8.noarch.rpm); '
        '1 corrupt (labsphere-common-6.8.0-1.ls8.noarch.rpm: rpm cannot read it: error: junk: not an rpm package)')
    assert result['host_facts']['rpm']['missing_backups'][1]['file'] == 'labsphere-node-6.8.0-1.ls8.noarch.rpm'
    # read-only, in check mode as well: nothing was written or removed
    assert sorted(os.listdir(os.path.join(root, 'var/backup-rpm'))) == listing


def test_version_command_and_regex(monkeypatch, capsys, root):
    args = args_for(root, version_file=None, version_command=['rpm', '-q', '--qf', '%{VERSION}', 'ics-release'],
                    version_regex=r'^(\d+\.\d+\.\d+)', rpm_baseline_content=None, datastores=[], disk_paths=[])
    result, calls = run_module(monkeypatch, capsys, args, [(0, '6.8.0-b6\n', '')])
    assert calls == [(['rpm', '-q', '--qf', '%{VERSION}', 'ics-release'], SNAP_ENV)]
    assert result['checks'][0]['evidence'] == (
        'version 6.8.0 (from command:rpm -q --qf %{VERSION} ics-release) equals the expected 6.8.0')
    assert result['host_facts']['product_version'] == '6.8.0'


def test_nothing_configured_runs_no_command(monkeypatch, capsys, root):
    result, calls = run_module(monkeypatch, capsys, {'host': 'h', 'root': root, 'disk_paths': []}, [])
    assert calls == []
    assert [c['status'] for c in result['checks']] == ['skipped'] * 6


def test_rpm_not_installed_is_a_failed_check_not_a_crash(monkeypatch, capsys, root):
    result, calls = run_module(monkeypatch, capsys, args_for(root, datastores=[]), [], rpm_installed=False)
    assert calls == []
    assert result['checks'][2]['evidence'] == (
        'the rpm set could not be read: rpm is not installed on this host (no rpm in PATH)')
    assert result['checks'][2]['status'] == 'fail'


def test_unreadable_baseline_file(monkeypatch, capsys, root):
    args = args_for(root, rpm_baseline_content=None, rpm_baseline='/etc/baseline.json', datastores=[])
    result, calls = run_module(monkeypatch, capsys, args, [])
    assert calls == []
    assert (result['checks'][2]['status'], result['checks'][2]['evidence']) == (
        'fail', 'cannot read the baseline: baseline %s/etc/baseline.json cannot be read: No such file or directory'
        % root)


def test_default_host_name_is_the_short_host_name(monkeypatch, capsys, root):
    monkeypatch.setattr(preflight_host.os, 'uname', lambda: ('Linux', 'cmp-7.lab.example', '6.18', '#1', 'x86_64'))
    result, _calls = run_module(monkeypatch, capsys, {'root': root, 'disk_paths': []}, [])
    assert set(c['host'] for c in result['checks']) == {'cmp-7'}
    assert result['host_facts']['host'] == 'cmp-7'


@pytest.mark.parametrize('extra, message', [
    ({'disk_threshold': 0}, 'disk_threshold must be a percentage above 0 and at most 100, got 0'),
    ({'datastores': ['srv/ds']}, "datastores[0] must be an absolute path, got 'srv/ds'"),
    ({'version_command': ['cat', '/etc/version']},
     'version_file and version_command are mutually exclusive; give one of them'),
    ({'bundles': [{'name': 'a.zip', 'sha': 'x'}]},
     'bundles[0] (a.zip) has unknown key(s) sha; known: name, checksum, groups, baseline, baseline_member'),
    ({'root': '/nonexistent/root'},
     "root must be an existing directory given as an absolute path, got '/nonexistent/root'"),
])
def test_bad_options_fail_before_any_command(monkeypatch, capsys, root, extra, message):
    args = args_for(root)
    args.update(extra)
    result, calls = run_module(monkeypatch, capsys, args, [])
    assert calls == []
    assert result['failed'] is True
    assert result['msg'] == message
