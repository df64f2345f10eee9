# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade_journal module: argspec, check mode, diff, warnings, error mapping."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import upgrade_journal

RESERVED = {'failed', 'skipped', 'msg', 'rc', 'results', 'stdout', 'stderr', 'stdout_lines', 'stderr_lines',
            'invocation', 'exception', 'warnings', 'deprecations', 'ansible_facts', 'backup_file'}


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

    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, text: warned.append(text))
    return warned


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / 'journal')


def run(args, expect=Exit):
    with patch_module_args(args):
        with pytest.raises(expect) as caught:
            upgrade_journal.main()
    return caught.value.args[0]


def begin_args(root, **kw):
    args = {'op': 'begin', 'run_id': 'r-42', 'journal_root': root, 'owner': 'alice@ctl', 'host': 'cmp-1'}
    args.update(kw)
    return args


def tree(path):
    found = {}
    for base, dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(base, name)
            with open(full, 'rb') as handle:
                found[full] = handle.read()
        for name in dirs:
            found[os.path.join(base, name)] = 'dir'
    return found


def test_begin_writes_and_returns_no_reserved_keys(root):
    result = run(begin_args(root, to_version='6.8.1'))
    assert result['changed'] is True
    assert result['lock_action'] == 'acquire'
    assert result['exists'] is True
    assert result['journal']['to_version'] == '6.8.1'
    assert set(result) == {'changed', 'exists', 'journal', 'journal_path', 'lock', 'phases_done', 'outstanding',
                           'resumed', 'lock_action'}
    assert not RESERVED & set(result)
    path = os.path.join(root, 'r-42', 'host.json')
    with open(path) as handle:
        assert json.load(handle) == result['journal']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_check_mode_begin_writes_nothing(root):
    result = run(begin_args(root, _ansible_check_mode=True))
    assert result['changed'] is True
    assert result['journal']['status'] == 'running'
    assert not os.path.exists(root)


@pytest.mark.parametrize('args', [
    {'op': 'set_phase', 'phase': 'evacuate', 'point_of_no_return': True},
    {'op': 'record', 'entry': {'kind': 'standby', 'id': 'cmp-1', 'node': 'cmp-1'}},
    {'op': 'undo', 'entry': {'kind': 'ban', 'id': 'cli-ban-vm1'}},
    {'op': 'finish', 'status': 'success'},
])
def test_check_mode_other_ops_write_nothing(root, args):
    run(begin_args(root))
    run({'op': 'record', 'run_id': 'r-42', 'journal_root': root, 'entry': {'kind': 'ban', 'id': 'cli-ban-vm1'}})
    before = tree(root)
    full = {'run_id': 'r-42', 'journal_root': root, '_ansible_check_mode': True}
    full.update(args)
    predicted = run(full)
    assert predicted['changed'] is True
    assert tree(root) == before
    del full['_ansible_check_mode']
    assert run(full)['journal'] == predicted['journal']


def test_get_in_check_mode_reads(root):
    written = run(begin_args(root))
    result = run({'op': 'get', 'run_id': 'r-42', 'journal_root': root, '_ansible_check_mode': True})
    assert result['changed'] is False
    assert result['exists'] is True
    assert result['journal'] == written['journal']
    missing = run({'op': 'get', 'run_id': 'r-7', 'journal_root': root, '_ansible_check_mode': True})
    assert missing['exists'] is False
    assert missing['journal'] == {}


def test_diff_has_before_and_after(root):
    first = run(begin_args(root, _ansible_diff=True))
    assert first['diff'] == {'before': {}, 'after': first['journal']}
    second = run({'op': 'set_phase', 'run_id': 'r-42', 'journal_root': root, 'phase': 'apply', '_ansible_diff': True})
    assert second['diff']['before'] == first['journal']
    assert second['diff']['after'] == second['journal']
    assert second['diff']['after']['phase'] == 'apply'
    same = run({'op': 'set_phase', 'run_id': 'r-42', 'journal_root': root, 'phase': 'apply', '_ansible_diff': True})
    assert same['changed'] is False
    assert same['diff']['before'] == same['diff']['after']


def test_locked_begin_fails_naming_owner(root):
    run(begin_args(root))
    result = run(begin_args(root, run_id='r-43', owner='bob@ctl2'), expect=Fail)
    assert result['msg'].startswith('run r-42 is locked by alice@ctl since ')
    assert 'wait for it to finish before starting run r-43' in result['msg']


def test_corrupt_journal_fails_and_is_left_alone(root):
    run(begin_args(root))
    path = os.path.join(root, 'r-42', 'host.json')
    with open(path, 'w') as handle:
        handle.write('{"schema_version": 1,')
    result = run({'op': 'get', 'run_id': 'r-42', 'journal_root': root}, expect=Fail)
    assert result['msg'] == ('journal file %s is corrupt: it is not valid JSON (Expecting property name enclosed in '
                             'double quotes at line 1, column 22); was a write cut short?. It was not modified: '
                             'inspect it and repair it or move it aside by hand (the run it describes may still need '
                             'rolling back)' % path)
    with open(path) as handle:
        assert handle.read() == '{"schema_version": 1,'


def test_option_not_used_by_op_fails(root):
    result = run({'op': 'finish', 'run_id': 'r-42', 'journal_root': root, 'status': 'success', 'phase': 'x'},
                 expect=Fail)
    assert result['msg'] == 'option phase is not used by op=finish (it takes: status, owner, host)'


def test_argspec_choices_are_enforced(root):
    result = run({'op': 'record', 'run_id': 'r-42', 'journal_root': root, 'entry': {'kind': 'vm', 'id': 'x'}},
                 expect=Fail)
    assert 'kind' in result['msg'] and 'vm' in result['msg']


def test_finish_warns_about_objects_left(root, capture):
    run(begin_args(root))
    run({'op': 'record', 'run_id': 'r-42', 'journal_root': root, 'entry': {'kind': 'ban', 'id': 'cli-ban-vm1'}})
    result = run({'op': 'finish', 'run_id': 'r-42', 'journal_root': root, 'status': 'success'})
    assert result['lock_released'] is True
    assert capture == ['run r-42 finished as success but the journal says these objects it created were never '
                       'undone: ban cli-ban-vm1']


def test_path_through_a_file_is_reported(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    result = run(begin_args(str(blocker / 'journal')), expect=Fail)
    assert result['msg'] == ('cannot read journal file %s: a component of its path is not a directory'
                             % (blocker / 'journal' / 'lock.json'))


def test_write_error_is_reported(root, monkeypatch):
    run(begin_args(root))

    def full(src, dst):
        raise OSError(28, 'No space left on device', dst)

    monkeypatch.setattr(os, 'replace', full)
    result = run({'op': 'set_phase', 'run_id': 'r-42', 'journal_root': root, 'phase': 'x'}, expect=Fail)
    assert result['msg'] == ('journal I/O failed on %s: No space left on device (nothing further was written)'
                             % os.path.join(root, 'r-42', 'host.json'))
