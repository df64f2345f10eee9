# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run_report module: files, modes, idempotence, check mode, errors."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import run_report

CHECKS = [
    {'id': 'disk_usage', 'host': 'ctl-a', 'severity': 'blocker', 'status': 'fail', 'evidence': '/ at 99 %',
     'remedy': 'free space on /'},
    {'id': 'disk_usage', 'host': 'ctl-b', 'severity': 'blocker', 'status': 'pass', 'evidence': '/ at 30 %',
     'remedy': 'free space on /'},
    {'id': 'ntp_offset', 'host': 'ctl-b', 'severity': 'warning', 'status': 'fail', 'evidence': '2 s',
     'remedy': 'sync clocks'},
]


class Exit(Exception):
    pass


class Fail(Exception):
    pass


@pytest.fixture(autouse=True)
def capture(monkeypatch):
    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)


def run(args, expect=Exit):
    with patch_module_args(args):
        with pytest.raises(expect) as caught:
            run_report.main()
    return caught.value.args[0]


def args_for(dest, **kw):
    args = {'dest_dir': dest, 'checks': CHECKS, 'run_id': 'r-42', 'generated_at': '2026-11-22T01:02:03Z'}
    args.update(kw)
    return args


def test_writes_three_files_0600_in_a_0700_dir(tmp_path):
    dest = str(tmp_path / 'reports' / 'r-42')
    result = run(args_for(dest))
    paths = {'md': os.path.join(dest, 'preflight.md'), 'json': os.path.join(dest, 'preflight.json'),
             'junit': os.path.join(dest, 'preflight.junit.xml')}
    assert result['changed'] is True
    assert result['paths'] == paths
    assert result['files_changed'] == [paths['md'], paths['json'], paths['junit']]
    assert result['blocked'] is True
    assert result['summary']['failed_blockers'] == ['disk_usage']
    assert set(result) == {'changed', 'paths', 'files_changed', 'blocked', 'summary'}
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.dirname(dest)).st_mode) == 0o700
    with open(paths['json']) as handle:
        assert json.load(handle)['summary'] == result['summary']
    with open(paths['md']) as handle:
        assert handle.read().startswith('# Preflight report\n\nRun `r-42`, generated 2026-11-22T01:02:03Z\n')
    suite = ET.parse(paths['junit']).getroot().find('testsuite')
    assert (suite.get('tests'), suite.get('failures')) == ('3', '1')


def test_second_run_is_idempotent(tmp_path):
    dest = str(tmp_path / 'out')
    run(args_for(dest))
    again = run(args_for(dest))
    assert again['changed'] is False
    assert again['files_changed'] == []


def test_waiver_unblocks_and_is_shown(tmp_path):
    dest = str(tmp_path / 'out')
    result = run(args_for(dest, waive=['disk_usage'], formats=['md']))
    assert result['blocked'] is False
    assert result['summary']['waived_checks'] == ['disk_usage']
    assert os.listdir(dest) == ['preflight.md']
    with open(os.path.join(dest, 'preflight.md')) as handle:
        text = handle.read()
    assert '| `disk_usage` | blocker | WAIVED | 1 | 0 | 1 | 0 | ctl-a |' in text
    assert '- `disk_usage`: waived on ctl-a\n' in text


def test_check_mode_writes_nothing(tmp_path):
    dest = str(tmp_path / 'out')
    result = run(args_for(dest, _ansible_check_mode=True))
    assert result['changed'] is True
    assert result['files_changed'] == [result['paths']['md'], result['paths']['json'], result['paths']['junit']]
    assert result['blocked'] is True
    assert not os.path.exists(dest)
    run(args_for(dest))
    before = contents(dest)
    changed = run(args_for(dest, title='Other', _ansible_check_mode=True))
    assert changed['changed'] is True
    assert contents(dest) == before


def contents(directory):
    found = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), 'rb') as handle:
            found[name] = handle.read()
    return found


def test_mode_drift_is_repaired(tmp_path):
    dest = str(tmp_path / 'out')
    run(args_for(dest))
    path = os.path.join(dest, 'preflight.json')
    os.chmod(path, 0o644)
    result = run(args_for(dest))
    assert result['files_changed'] == [path]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize('extra, message', [
    ({'checks': [{'id': 'a', 'host': 'h', 'severity': 'blocker', 'status': 'maybe'}]},
     "checks[0] (check a on h) has status 'maybe'; use one of pass, fail, waived, skipped"),
    ({'basename': '../x'}, 'basename must be a plain file name (no "/", not starting with "."), got \'../x\''),
    ({'formats': []}, 'formats is empty: name at least one of md, json, junit'),
    ({'generated_at': 'now'}, "generated_at must be a UTC timestamp like 2026-11-22T01:02:03Z, got 'now'"),
])
def test_bad_input_fails_and_writes_nothing(tmp_path, extra, message):
    dest = str(tmp_path / 'out')
    result = run(args_for(dest, **extra), expect=Fail)
    assert result['msg'] == message
    assert not os.path.exists(dest)


def test_dest_dir_that_is_a_file(tmp_path):
    dest = tmp_path / 'file'
    dest.write_text('x')
    result = run(args_for(str(dest)), expect=Fail)
    assert result['msg'] == 'dest_dir %s exists and is not a directory: choose another dest_dir' % dest
    assert dest.read_text() == 'x'
