# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade journal: every operation, every corruption case, the lock, atomicity."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _atomic_file
from ansible_collections.clusterops.upgrade.plugins.module_utils import _journal as J

T0 = datetime.datetime(2026, 11, 22, 1, 2, 3, tzinfo=datetime.timezone.utc)
ALICE = 'alice@ctl (pid 123)'
BOB = 'bob@ctl2 (pid 77)'
BAN = {'kind': 'ban', 'id': 'cli-ban-vm1-on-cmp-1', 'node': 'cmp-1', 'resource': 'vm1', 'details': {'cmd': 'ban'}}


def at(minutes=0, seconds=0):
    return T0 + datetime.timedelta(minutes=minutes, seconds=seconds)


def ts(minutes=0, seconds=0):
    return J.format_ts(at(minutes, seconds))


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / 'journal')


def op(root, name, now=None, check_mode=False, **kw):
    params = {'op': name, 'run_id': kw.pop('run_id', 'r-42'), 'journal_root': root}
    params.update(kw)
    return J.run_op(params, now=now or T0, check_mode=check_mode)


def begin(root, now=None, owner=ALICE, host='cmp-1', **kw):
    if kw.get('scope') == 'run':
        host = None
    return op(root, 'begin', now=now, owner=owner, host=host, **kw)


def snapshot(path):
    """Every file and directory under ``path`` with its bytes and mode."""
    found = {}
    if not os.path.exists(path):
        return found
    for base, dirs, files in os.walk(path):
        for name in dirs:
            full = os.path.join(base, name)
            found[full] = ('dir', stat.S_IMODE(os.stat(full).st_mode))
        for name in files:
            full = os.path.join(base, name)
            with open(full, 'rb') as handle:
                found[full] = (handle.read(), stat.S_IMODE(os.stat(full).st_mode))
    return found


def read(path):
    with open(path) as handle:
        return json.load(handle)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------- begin

def test_begin_creates_record_and_lock(root):
    result = begin(root, from_version='6.8.0', to_version='6.8.1')
    host_json = os.path.join(root, 'r-42', 'host.json')
    assert result['changed'] is True
    assert result['lock_action'] == 'acquire'
    assert result['resumed'] is False
    assert result['exists'] is True
    assert result['journal_path'] == host_json
    assert read(host_json) == result['journal'] == {
        'schema_version': 1, 'scope': 'host', 'run_id': 'r-42', 'host': 'cmp-1', 'status': 'running',
        'started_at': ts(), 'updated_at': ts(), 'finished_at': None,
        'from_version': '6.8.0', 'to_version': '6.8.1', 'phase': None, 'phases': [], 'created': [],
        'point_of_no_return': {'passed': False, 'at': None, 'phase': None},
        'lock': {'owner': ALICE, 'acquired_at': ts(), 'released_at': None},
        'history': [{'at': ts(), 'event': 'begun', 'owner': ALICE, 'details': {}}],
    }
    assert read(os.path.join(root, 'lock.json')) == result['lock'] == {
        'schema_version': 1, 'run_id': 'r-42', 'owner': ALICE, 'acquired_at': ts(), 'taken_over_from': None}


def test_files_are_0600_and_dirs_0700(root):
    begin(root)
    assert mode(root) == 0o700
    assert mode(os.path.join(root, 'r-42')) == 0o700
    assert mode(os.path.join(root, 'r-42', 'host.json')) == 0o600
    assert mode(os.path.join(root, 'lock.json')) == 0o600
    op(root, 'set_phase', now=at(1), phase='evacuate')
    assert mode(os.path.join(root, 'r-42', 'host.json')) == 0o600


def test_begin_run_scope_keeps_plan_and_batches(root):
    result = begin(root, scope='run', plan={'mode': 'auto-migrate'}, batches=[['ctl-b'], ['cmp-1', 'cmp-2']])
    record = read(os.path.join(root, 'r-42', 'run.json'))
    assert result['journal_path'] == os.path.join(root, 'r-42', 'run.json')
    assert record['scope'] == 'run'
    assert record['plan'] == {'mode': 'auto-migrate'}
    assert record['batches'] == [['ctl-b'], ['cmp-1', 'cmp-2']]
    assert 'host' not in record


def test_begin_same_run_same_owner_resumes_without_writing(root):
    begin(root, to_version='6.8.1')
    before = snapshot(root)
    result = begin(root, now=at(5), to_version='6.8.1')
    assert result['changed'] is False
    assert result['resumed'] is True
    assert result['lock_action'] == 'keep'
    assert result['journal'] == read(os.path.join(root, 'r-42', 'host.json'))
    assert snapshot(root) == before


def test_begin_resume_fills_a_missing_version(root):
    begin(root)
    result = begin(root, now=at(5), to_version='6.8.1')
    assert result['changed'] is True
    assert read(os.path.join(root, 'r-42', 'host.json'))['to_version'] == '6.8.1'
    assert result['journal']['updated_at'] == ts(5)


def test_begin_resume_refuses_other_versions(root):
    begin(root, to_version='6.8.1')
    before = snapshot(root)
    with pytest.raises(J.JournalError) as err:
        begin(root, now=at(5), to_version='6.8.2')
    assert str(err.value) == ("run r-42 was begun with to_version=6.8.1; this call says 6.8.2. A run's versions do not "
                              "change: start a new run_id for another upgrade")
    assert snapshot(root) == before


def test_begin_on_run_scope_of_a_host_that_holds_the_lock_keeps_it(root):
    begin(root)
    result = begin(root, now=at(1), scope='run')
    assert result['lock_action'] == 'keep'
    assert result['changed'] is True
    assert result['journal']['lock'] == {'owner': ALICE, 'acquired_at': ts(), 'released_at': None}


def test_begin_refuses_other_host_name(root):
    begin(root)
    with pytest.raises(J.JournalError) as err:
        begin(root, host='cmp-2')
    assert str(err.value) == ('the journal of run r-42 on this machine belongs to host cmp-1, not cmp-2: check the '
                              'inventory or the journal_root')


# --------------------------------------------------------------------- the lock

def test_concurrent_begin_of_another_run_is_refused_with_owner_and_age(root):
    begin(root)
    op(root, 'set_phase', now=at(2), phase='evacuate')
    before = snapshot(root)
    for force in (False, True):
        with pytest.raises(J.LockedError) as err:
            begin(root, now=at(19), run_id='r-43', owner=BOB, force=force)
        assert str(err.value) == (
            'run r-42 is locked by alice@ctl (pid 123) since 2026-11-22T01:02:03Z (19 min ago, last journal write '
            '17 min ago); wait for it to finish before starting run r-43. force=true takes over a lock of another '
            'run only once it has been idle for lock_timeout=14400 s, after checking it is dead')
    assert snapshot(root) == before


def test_concurrent_begin_of_same_run_by_another_owner_is_refused(root):
    begin(root)
    with pytest.raises(J.LockedError) as err:
        begin(root, now=at(17), owner=BOB)
    assert str(err.value) == (
        'run r-42 is locked by alice@ctl (pid 123) since 2026-11-22T01:02:03Z (17 min ago); wait for it or pass '
        'force=true after checking it is dead to resume run r-42 from here')


def test_same_run_other_owner_takes_over_with_force(root):
    begin(root)
    result = begin(root, now=at(17), owner=BOB, force=True)
    assert result['lock_action'] == 'take_over'
    assert result['changed'] is True
    assert read(os.path.join(root, 'lock.json')) == {
        'schema_version': 1, 'run_id': 'r-42', 'owner': BOB, 'acquired_at': ts(17),
        'taken_over_from': {'run_id': 'r-42', 'owner': ALICE, 'acquired_at': ts()}}
    record = read(os.path.join(root, 'r-42', 'host.json'))
    assert record['history'][-1] == {'at': ts(17), 'event': 'taken_over', 'owner': BOB, 'details': {
        'from_owner': ALICE, 'from_run_id': 'r-42', 'locked_since': ts()}}
    assert record['lock'] == {'owner': BOB, 'acquired_at': ts(17), 'released_at': None}
    # the old controller is fenced off
    with pytest.raises(J.JournalError) as err:
        op(root, 'set_phase', now=at(18), phase='x', owner=ALICE)
    assert str(err.value) == ('run r-42 is now locked by %s (since %s), not by %s: another controller took it over; '
                              'this one must stop' % (BOB, ts(17), ALICE))


def test_stale_lock_of_another_run_needs_force(root):
    begin(root, lock_timeout=3600)
    before = snapshot(root)
    with pytest.raises(J.LockedError) as err:
        begin(root, now=at(61), run_id='r-43', owner=BOB, lock_timeout=3600)
    assert str(err.value) == (
        'run r-42 is locked by alice@ctl (pid 123) since 2026-11-22T01:02:03Z (1 h 1 min ago); idle for more than '
        'lock_timeout=3600 s, so it looks stale: pass force=true after checking it is dead to start run r-43 (the '
        'journal of run r-42 stays in place)')
    assert snapshot(root) == before
    result = begin(root, now=at(61), run_id='r-43', owner=BOB, lock_timeout=3600, force=True)
    assert result['lock_action'] == 'take_over'
    assert read(os.path.join(root, 'lock.json'))['taken_over_from'] == {
        'run_id': 'r-42', 'owner': ALICE, 'acquired_at': ts()}
    assert [e['event'] for e in result['journal']['history']] == ['begun', 'taken_over']
    assert read(os.path.join(root, 'r-42', 'host.json'))['status'] == 'running'  # old journal kept
    with pytest.raises(J.JournalError) as err:
        op(root, 'record', now=at(62), entry=BAN)
    assert str(err.value) == ('run r-42 lost the lock of %s to run r-43 of %s (since %s): this controller must stop; '
                              'see the journal of both runs' % (root, BOB, ts(61)))


def test_recent_journal_write_keeps_lock_fresh(root):
    begin(root, lock_timeout=3600)
    op(root, 'set_phase', now=at(50), phase='evacuate')
    with pytest.raises(J.LockedError) as err:
        begin(root, now=at(61), run_id='r-43', owner=BOB, lock_timeout=3600, force=True)
    assert 'last journal write 11 min ago); wait for it to finish' in str(err.value)


def test_lock_of_a_finished_run_left_behind_is_taken_over(root):
    begin(root)
    lock_bytes = open(os.path.join(root, 'lock.json'), 'rb').read()
    op(root, 'finish', now=at(5), status='success')
    # the controller died between writing finish and removing the lock
    _atomic_file.atomic_write(os.path.join(root, 'lock.json'), lock_bytes)
    result = begin(root, now=at(6), run_id='r-43', owner=BOB)
    assert result['lock_action'] == 'take_over'


def test_begin_race_lost_is_refused(root, monkeypatch):
    real = _atomic_file.create_exclusive

    def competitor_first(path, data, mode=0o600):
        real(path, J.dumps(J.new_lock('r-99', BOB, at())), mode)
        return real(path, data, mode)

    monkeypatch.setattr(_atomic_file, 'create_exclusive', competitor_first)
    with pytest.raises(J.LockedError) as err:
        begin(root, now=at(1))
    assert str(err.value) == ('run r-99 is locked by %s since %s (1 min ago); it was taken while this begin ran: '
                              'wait for it to finish' % (BOB, ts()))
    assert not os.path.exists(os.path.join(root, 'r-42', 'host.json'))
    assert read(os.path.join(root, 'lock.json'))['run_id'] == 'r-99'


def test_write_ops_need_the_lock(root):
    begin(root)
    os.unlink(os.path.join(root, 'lock.json'))
    with pytest.raises(J.JournalError) as err:
        op(root, 'set_phase', phase='x')
    assert str(err.value) == ('run r-42 does not hold the lock of %s (%s is missing): call op=begin to resume the run'
                              % (root, os.path.join(root, 'lock.json')))
    resumed = begin(root, now=at(3))
    assert resumed['lock_action'] == 'acquire'
    assert resumed['journal']['history'][-1] == {'at': ts(3), 'event': 'resumed', 'owner': ALICE, 'details': {}}


@pytest.mark.parametrize('seconds, text', [
    (0, '0 s'), (59, '59 s'), (60, '1 min'), (17 * 60 + 59, '17 min'), (3600, '1 h'), (3600 + 5 * 60, '1 h 5 min'),
    (86400, '1 d'), (2 * 86400 + 4 * 3600 + 59, '2 d 4 h'), (-5, '0 s'),
])
def test_format_age(seconds, text):
    assert J.format_age(seconds) == text


# --------------------------------------------------------------------- set_phase

def phases(result):
    return [(p['name'], p['status'], p['started'], p['finished']) for p in result['journal']['phases']]


def test_set_phase_start_close_and_idempotence(root):
    begin(root)
    first = op(root, 'set_phase', now=at(1), phase='evacuate')
    assert first['changed'] is True
    assert phases(first) == [('evacuate', 'running', ts(1), None)]
    assert first['journal']['phase'] == 'evacuate'
    again = op(root, 'set_phase', now=at(2), phase='evacuate')
    assert again['changed'] is False
    assert again['journal'] == first['journal']
    done = op(root, 'set_phase', now=at(3), phase='evacuate', phase_status='done')
    assert phases(done) == [('evacuate', 'done', ts(1), ts(3))]
    assert done['phases_done'] == ['evacuate']
    assert op(root, 'set_phase', now=at(4), phase='evacuate', phase_status='done')['changed'] is False


def test_starting_a_phase_closes_the_running_one(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='evacuate')
    result = op(root, 'set_phase', now=at(2), phase='apply')
    assert phases(result) == [('evacuate', 'done', ts(1), ts(2)), ('apply', 'running', ts(2), None)]


def test_skipped_and_failed_phases_and_rerun(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='apply')
    op(root, 'set_phase', now=at(2), phase='apply', phase_status='failed')
    op(root, 'set_phase', now=at(3), phase='reboot', phase_status='skipped')
    result = op(root, 'set_phase', now=at(4), phase='apply', details={'attempt': 2})
    assert phases(result) == [('apply', 'failed', ts(1), ts(2)), ('reboot', 'skipped', ts(3), ts(3)),
                              ('apply', 'running', ts(4), None)]
    assert result['journal']['phases'][-1]['details'] == {'attempt': 2}
    assert result['phases_done'] == []


def test_point_of_no_return_is_set_once(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='switch_over', point_of_no_return=True)
    result = op(root, 'set_phase', now=at(2), phase='switch_over', point_of_no_return=True)
    assert result['changed'] is False
    assert result['journal']['point_of_no_return'] == {'passed': True, 'at': ts(1), 'phase': 'switch_over'}


def test_set_phase_updates_run_plan(root):
    begin(root, scope='run')
    result = op(root, 'set_phase', now=at(1), scope='run', phase='plan', batches=[['cmp-1']], plan={'v': 1})
    assert result['journal']['batches'] == [['cmp-1']]
    assert result['journal']['plan'] == {'v': 1}


# --------------------------------------------------------------------- record / undo

def test_record_appends_once(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='evacuate')
    result = op(root, 'record', now=at(2), entry=BAN)
    expected = {'kind': 'ban', 'id': 'cli-ban-vm1-on-cmp-1', 'node': 'cmp-1', 'resource': 'vm1',
                'phase': 'evacuate', 'created_at': ts(2), 'details': {'cmd': 'ban'}, 'undone_at': None}
    assert result['changed'] is True
    assert result['entry'] == expected
    assert result['journal']['created'] == [expected]
    assert result['outstanding'] == [expected]
    again = op(root, 'record', now=at(3), entry=BAN)
    assert again['changed'] is False
    assert again['entry'] == expected
    assert read(os.path.join(root, 'r-42', 'host.json'))['created'] == [expected]


def test_undo_marks_and_is_idempotent(root):
    begin(root)
    op(root, 'record', now=at(1), entry=BAN)
    result = op(root, 'undo', now=at(2), entry={'kind': 'ban', 'id': 'cli-ban-vm1-on-cmp-1'})
    assert result['changed'] is True
    assert result['entry']['undone_at'] == ts(2)
    assert result['outstanding'] == []
    assert read(os.path.join(root, 'r-42', 'host.json'))['created'][0]['undone_at'] == ts(2)
    again = op(root, 'undo', now=at(3), entry={'kind': 'ban', 'id': 'cli-ban-vm1-on-cmp-1', 'node': 'cmp-1'})
    assert again['changed'] is False
    assert again['entry']['undone_at'] == ts(2)
    # recreated later: a new entry
    third = op(root, 'record', now=at(4), entry=BAN)
    assert [e['undone_at'] for e in third['journal']['created']] == [ts(2), None]


def test_undo_unknown_object_is_an_error(root):
    begin(root)
    op(root, 'record', now=at(1), entry=BAN)
    with pytest.raises(J.JournalError) as err:
        op(root, 'undo', now=at(2), entry={'kind': 'standby', 'id': 'cmp-2', 'node': 'cmp-2'})
    assert str(err.value) == ('run r-42 never recorded standby cmp-2 on cmp-2 in %s, so it will not mark it undone; '
                              'active objects: ban cli-ban-vm1-on-cmp-1 on cmp-1'
                              % os.path.join(root, 'r-42', 'host.json'))


def test_undo_ambiguous_needs_node(root):
    begin(root)
    op(root, 'record', now=at(1), entry={'kind': 'stopped_vm', 'id': 'vm7', 'node': 'cmp-1'})
    op(root, 'record', now=at(1), entry={'kind': 'stopped_vm', 'id': 'vm7', 'node': 'cmp-2'})
    with pytest.raises(J.JournalError) as err:
        op(root, 'undo', now=at(2), entry={'kind': 'stopped_vm', 'id': 'vm7'})
    assert str(err.value) == ('entry stopped_vm vm7 matches 2 active objects in %s (nodes cmp-1, cmp-2): give '
                              'entry.node' % os.path.join(root, 'r-42', 'host.json'))
    result = op(root, 'undo', now=at(2), entry={'kind': 'stopped_vm', 'id': 'vm7', 'node': 'cmp-2'})
    assert [e['undone_at'] for e in result['journal']['created']] == [None, ts(2)]


# --------------------------------------------------------------------- finish

def test_finish_closes_run_and_releases_lock(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='verify')
    result = op(root, 'finish', now=at(2), status='success')
    assert result['changed'] is True
    assert result['lock_released'] is True
    assert result['lock'] is None
    assert not os.path.exists(os.path.join(root, 'lock.json'))
    record = read(os.path.join(root, 'r-42', 'host.json'))
    assert record['status'] == 'success'
    assert record['finished_at'] == ts(2)
    assert phases(result) == [('verify', 'done', ts(1), ts(2))]
    assert record['lock'] == {'owner': ALICE, 'acquired_at': ts(), 'released_at': ts(2)}
    assert record['history'][-1] == {'at': ts(2), 'event': 'finished', 'owner': ALICE, 'details': {'status': 'success'}}
    assert J.finish_warnings(record) == []
    again = op(root, 'finish', now=at(3), status='success')
    assert again['changed'] is False
    with pytest.raises(J.JournalError) as err:
        op(root, 'finish', now=at(3), status='failed')
    assert str(err.value) == ('run r-42 already finished with status success at %s, not failed: call op=begin to '
                              'reopen a failed run first' % ts(2))


def test_finish_failed_closes_running_phase_failed_and_begin_reopens(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='apply')
    op(root, 'finish', now=at(2), status='failed')
    result = begin(root, now=at(10), owner=BOB)
    assert result['changed'] is True
    assert result['lock_action'] == 'acquire'
    assert result['journal']['status'] == 'running'
    assert result['journal']['finished_at'] is None
    assert phases(result) == [('apply', 'failed', ts(1), ts(2))]
    assert result['journal']['history'][-1] == {'at': ts(10), 'event': 'reopened', 'owner': BOB, 'details': {
        'previous_status': 'failed', 'finished_at': ts(2)}}


def test_finished_run_cannot_begin_or_change(root):
    begin(root)
    op(root, 'finish', now=at(2), status='rolled_back')
    with pytest.raises(J.JournalError) as err:
        begin(root, now=at(3))
    assert str(err.value) == ('run r-42 already finished with status rolled_back at %s (%s); it cannot begin again: '
                              'choose a new run_id' % (ts(2), os.path.join(root, 'r-42', 'host.json')))
    with pytest.raises(J.JournalError) as err:
        op(root, 'record', now=at(3), entry=BAN)
    assert str(err.value) == ('run r-42 finished with status rolled_back at %s: op=record is refused; call op=begin '
                              'to reopen a failed run' % ts(2))


def test_finish_warns_about_temporary_objects_left(root):
    begin(root)
    op(root, 'record', now=at(1), entry=BAN)
    op(root, 'record', now=at(1), entry={'kind': 'backup', 'id': '/var/backup-rpm/x.rpm'})
    result = op(root, 'finish', now=at(2), status='success')
    assert J.finish_warnings(result['journal']) == [
        'run r-42 finished as success but the journal says these objects it created were never undone: '
        'ban cli-ban-vm1-on-cmp-1 on cmp-1']


def test_lock_stays_until_both_records_on_a_control_plane_host_finish(root):
    begin(root)
    begin(root, scope='run')
    first = op(root, 'finish', now=at(1), status='success')
    assert first['lock_released'] is False
    assert os.path.exists(os.path.join(root, 'lock.json'))
    second = op(root, 'finish', now=at(2), scope='run', status='success')
    assert second['lock_released'] is True
    assert not os.path.exists(os.path.join(root, 'lock.json'))


def test_finish_without_lock_is_allowed(root):
    begin(root)
    os.unlink(os.path.join(root, 'lock.json'))
    result = op(root, 'finish', now=at(1), status='failed')
    assert result['changed'] is True
    assert result['lock_released'] is False


# --------------------------------------------------------------------- get

def test_get_missing(root):
    result = op(root, 'get')
    assert result['exists'] is False
    assert result['journal'] == {}
    assert result['lock'] is None
    assert result['changed'] is False
    assert not os.path.exists(root)


def test_get_existing_never_writes(root):
    begin(root)
    op(root, 'record', now=at(1), entry=BAN)
    before = snapshot(root)
    result = op(root, 'get', now=at(9), check_mode=True, owner=ALICE, host='cmp-1')
    assert result['exists'] is True
    assert result['journal'] == read(os.path.join(root, 'r-42', 'host.json'))
    assert result['lock']['owner'] == ALICE
    assert len(result['outstanding']) == 1
    assert snapshot(root) == before


def test_ops_before_begin(root):
    with pytest.raises(J.JournalError) as err:
        op(root, 'set_phase', phase='x')
    assert str(err.value) == ('no journal for run r-42 at %s: call op=begin first'
                              % os.path.join(root, 'r-42', 'host.json'))


# --------------------------------------------------------------------- check mode

@pytest.mark.parametrize('name, kwargs, changed', [
    ('set_phase', {'phase': 'apply'}, True),
    ('set_phase', {'phase': 'evacuate'}, False),
    ('record', {'entry': {'kind': 'standby', 'id': 'cmp-1', 'node': 'cmp-1'}}, True),
    ('undo', {'entry': {'kind': 'ban', 'id': 'cli-ban-vm1-on-cmp-1'}}, True),
    ('finish', {'status': 'success'}, True),
    ('begin', {'owner': ALICE, 'host': 'cmp-1', 'to_version': '6.8.1'}, True),
    ('begin', {'owner': BOB, 'host': 'cmp-1', 'force': True}, True),
])
def test_check_mode_predicts_and_writes_nothing(root, name, kwargs, changed):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='evacuate')
    op(root, 'record', now=at(1), entry=BAN)
    before = snapshot(root)
    predicted = op(root, name, now=at(5), check_mode=True, **kwargs)
    assert snapshot(root) == before
    assert predicted['changed'] is changed
    real = op(root, name, now=at(5), **kwargs)
    assert real['changed'] is changed
    assert real['journal'] == predicted['journal']


def test_check_mode_begin_creates_nothing(root):
    result = begin(root, check_mode=True)
    assert result['changed'] is True
    assert result['journal']['status'] == 'running'
    assert result['lock']['owner'] == ALICE
    assert not os.path.exists(root)


def test_check_mode_begin_still_refuses_a_held_lock(root):
    begin(root)
    with pytest.raises(J.LockedError):
        begin(root, run_id='r-43', owner=BOB, check_mode=True)


# --------------------------------------------------------------------- corruption

def _valid_record():
    return J.new_record('host', 'r-42', T0, host='cmp-1')


def _corrupt(**changes):
    record = _valid_record()
    record.update(changes)
    return json.dumps(record).encode()


def _without(key):
    record = _valid_record()
    del record[key]
    return json.dumps(record).encode()


_ENTRY = {'kind': 'ban', 'id': 'x', 'node': None, 'resource': None, 'phase': None, 'created_at': '2026-11-22T01:02:03Z',
          'details': {}, 'undone_at': 5}

CORRUPTIONS = [
    ('truncated', json.dumps(_valid_record()).encode()[:57],
     'it is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 58); was a write '
     'cut short?'),
    ('empty', b'', 'the file is empty'),
    ('not utf-8', b'\xff\xfe{', 'it is not UTF-8 text'),
    ('not a dict', b'[1, 2]', 'the top level must be a JSON object, got a list'),
    ('newer schema', _corrupt(schema_version=2),
     'schema_version is 2, this collection reads 1; it was written by a newer clusterops.upgrade: use that version '
     'on the controller'),
    ('older schema', _corrupt(schema_version=0),
     'schema_version is 0, this collection reads 1; this version of clusterops.upgrade cannot read it'),
    ('schema as text', _corrupt(schema_version='1'), 'schema_version must be an integer, got a string'),
    ('no schema', _without('schema_version'), 'missing key schema_version'),
    ('missing field', _without('phases'), 'missing key phases'),
    ('missing host', _without('host'), 'missing key host'),
    ('wrong type', _corrupt(phases={}), 'phases must be a list, got an object'),
    ('bool as int', _corrupt(point_of_no_return={'passed': 1, 'at': None, 'phase': None}),
     'point_of_no_return.passed must be a boolean, got an integer'),
    ('nested wrong type', _corrupt(created=[_ENTRY]), 'created[0].undone_at must be a timestamp string like '
                                                      '2026-11-22T01:02:03Z, got an integer'),
    ('bad status', _corrupt(status='paused'),
     'status must be one of running, success, failed, rolled_back, got "paused"'),
    ('bad timestamp', _corrupt(started_at='yesterday'),
     "started_at must be a timestamp like 2026-11-22T01:02:03Z, got 'yesterday'"),
    ('other run', _corrupt(run_id='r-41'), 'run_id is "r-41" but the file is in the directory of run "r-42"'),
    ('run record in host file', json.dumps(J.new_record('run', 'r-42', T0)).encode(),
     'scope is "run" but the file holds a host record'),
]


@pytest.mark.parametrize('name, content, problem', CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
@pytest.mark.parametrize('operation', ['begin', 'set_phase', 'record', 'get', 'finish'])
def test_corrupt_record_is_reported_never_replaced(root, name, content, problem, operation):
    begin(root)
    path = os.path.join(root, 'r-42', 'host.json')
    with open(path, 'wb') as handle:
        handle.write(content)
    before = snapshot(root)
    kwargs = {'begin': {'owner': ALICE, 'host': 'cmp-1'}, 'set_phase': {'phase': 'x'}, 'record': {'entry': BAN},
              'get': {}, 'finish': {'status': 'failed'}}[operation]
    with pytest.raises(J.CorruptJournalError) as err:
        op(root, operation, now=at(1), **kwargs)
    assert err.value.path == path
    assert err.value.problem == problem
    assert str(err.value) == ('journal file %s is corrupt: %s. It was not modified: inspect it and repair it or move it '
                              'aside by hand (the run it describes may still need rolling back)' % (path, problem))
    assert snapshot(root) == before


def test_directory_in_place_of_the_record(root):
    os.makedirs(os.path.join(root, 'r-42', 'host.json'))
    before = snapshot(root)
    with pytest.raises(J.CorruptJournalError) as err:
        begin(root)
    assert err.value.problem == 'it is a directory, not a file'
    assert err.value.path == os.path.join(root, 'r-42', 'host.json')
    assert snapshot(root) == before


def test_file_in_place_of_the_run_directory(root):
    os.makedirs(root)
    with open(os.path.join(root, 'r-42'), 'w') as handle:
        handle.write('x')
    with pytest.raises(J.JournalError) as err:
        op(root, 'get')
    assert str(err.value) == ('cannot read journal file %s: a component of its path is not a directory'
                              % os.path.join(root, 'r-42', 'host.json'))


@pytest.mark.parametrize('content, problem', [
    (b'{"schema_version": 1,\n "run_id": "r-1"',
     'it is not valid JSON (Expecting \',\' delimiter at line 2, column 17); was a write cut short?'),
    (json.dumps({'schema_version': 1, 'run_id': 'r-1', 'owner': 'x', 'acquired_at': 7,
                 'taken_over_from': None}).encode(),
     'acquired_at must be a timestamp string like 2026-11-22T01:02:03Z, got an integer'),
    (json.dumps({'schema_version': 1, 'run_id': 'r-1', 'owner': 'x', 'acquired_at': '2026-11-22T01:02:03Z'}).encode(),
     'missing key taken_over_from'),
])
def test_corrupt_lock_is_reported(root, content, problem):
    os.makedirs(root)
    path = os.path.join(root, 'lock.json')
    with open(path, 'wb') as handle:
        handle.write(content)
    for operation, kwargs in (('begin', {'owner': ALICE, 'host': 'cmp-1'}), ('get', {})):
        with pytest.raises(J.CorruptJournalError) as err:
            op(root, operation, **kwargs)
        assert err.value.path == path
        assert err.value.problem == problem
    with open(path, 'rb') as handle:
        assert handle.read() == content


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads files whatever their mode; this case cannot be set up as root')
def test_unreadable_record(root):
    begin(root)
    path = os.path.join(root, 'r-42', 'host.json')
    os.chmod(path, 0)
    with pytest.raises(J.JournalError) as err:
        op(root, 'get')
    assert str(err.value) == 'cannot read journal file %s: Permission denied' % path


# --------------------------------------------------------------------- atomicity

def test_crash_before_rename_keeps_old_file(root, monkeypatch):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='evacuate')
    before = snapshot(root)

    def crash(src, dst):
        raise OSError(5, 'Input/output error', dst)

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError):
        op(root, 'record', now=at(2), entry=BAN)
    assert snapshot(root) == before  # old content, no temporary file left behind
    monkeypatch.undo()
    assert read(os.path.join(root, 'r-42', 'host.json'))['created'] == []


def test_failed_record_write_on_begin_releases_the_new_lock(root, monkeypatch):
    def crash(src, dst):
        raise OSError(28, 'No space left on device', dst)

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError):
        begin(root)
    assert sorted(os.listdir(root)) == ['r-42']
    assert os.listdir(os.path.join(root, 'r-42')) == []


def test_atomic_write_fsyncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, 'fsync', spy)
    _atomic_file.atomic_write(str(tmp_path / 'f.json'), b'{}')
    assert synced == [False, True]
    assert (tmp_path / 'f.json').read_bytes() == b'{}'
    assert mode(str(tmp_path / 'f.json')) == 0o600


def test_create_exclusive_refuses_existing(tmp_path):
    path = str(tmp_path / 'lock.json')
    assert _atomic_file.create_exclusive(path, b'one') is True
    assert _atomic_file.create_exclusive(path, b'two') is False
    assert (tmp_path / 'lock.json').read_bytes() == b'one'
    assert os.listdir(str(tmp_path)) == ['lock.json']


# --------------------------------------------------------------------- parameters

@pytest.mark.parametrize('params, message', [
    ({'op': 'begin', 'run_id': '../etc', 'owner': ALICE, 'host': 'h'},
     "run_id '../etc' is not usable as a directory name: use 1-80 characters from A-Z a-z 0-9 . _ - starting with "
     "a letter or digit"),
    ({'op': 'begin', 'run_id': 'r-1', 'owner': ALICE, 'host': 'h', 'phase': 'x'},
     'option phase is not used by op=begin (it takes: owner, host, from_version, to_version, force, lock_timeout, '
     'plan, batches)'),
    ({'op': 'get', 'run_id': 'r-1', 'force': True}, 'option force is not used by op=get (it takes: owner, host)'),
    ({'op': 'begin', 'run_id': 'r-1', 'host': 'h'}, 'op=begin needs option owner'),
    ({'op': 'begin', 'run_id': 'r-1', 'owner': ALICE},
     'op=begin with scope=host needs option host (the inventory name of this host)'),
    ({'op': 'begin', 'run_id': 'r-1', 'owner': ALICE, 'host': 'h', 'batches': [['a']]},
     'options plan and batches belong to the run record: use them with scope=run'),
    ({'op': 'begin', 'run_id': 'r-1', 'owner': ALICE, 'scope': 'run', 'batches': ['a']},
     'batches[0] must be a list, got a string (a list of batches, each a list of host names)'),
    ({'op': 'get', 'run_id': 'r-1', 'journal_root': 'relative/dir'},
     "journal_root must be an absolute path, got 'relative/dir'"),
    ({'op': 'record', 'run_id': 'r-1', 'entry': {'kind': 'vm', 'id': 'x'}},
     'entry.kind must be one of ban, prefer, standby, maintenance, stopped_vm, backup, other, got \'vm\''),
    ({'op': 'undo', 'run_id': 'r-1', 'entry': {'kind': 'ban', 'id': 'x', 'details': {'a': 1}}},
     'entry.details is not used by op=undo (it matches on kind, id and node)'),
    ({'op': 'finish', 'run_id': 'r-1', 'status': 'ok'},
     "status must be one of success, failed, rolled_back, got 'ok'"),
    ({'op': 'begin', 'run_id': 'r-1', 'owner': ALICE, 'host': 'h', 'lock_timeout': -1},
     'lock_timeout must be 0 or more seconds, got -1'),
    ({'op': 'rewind', 'run_id': 'r-1'}, "op must be one of begin, set_phase, record, undo, get, finish, got 'rewind'"),
])
def test_bad_parameters_change_nothing(root, params, message):
    params = dict(params)
    params.setdefault('journal_root', root)
    with pytest.raises(J.JournalError) as err:
        J.run_op(params, now=T0)
    assert str(err.value) == message
    assert not os.path.exists(root)


def test_validators_accept_what_the_journal_writes(root):
    begin(root)
    op(root, 'set_phase', now=at(1), phase='evacuate', point_of_no_return=True, details={'a': [1]})
    op(root, 'record', now=at(2), entry=BAN)
    op(root, 'undo', now=at(3), entry=BAN_KEY)
    record = read(os.path.join(root, 'r-42', 'host.json'))
    J.validate_record(record, scope='host', run_id='r-42')
    J.validate_lock(read(os.path.join(root, 'lock.json')))


BAN_KEY = {'kind': 'ban', 'id': 'cli-ban-vm1-on-cmp-1', 'node': 'cmp-1'}


def _race(root, index, queue):
    try:
        result = J.run_op({'op': 'begin', 'run_id': 'r-%d' % index, 'journal_root': root, 'owner': 'p%d' % index,
                           'host': 'cmp-1'}, now=T0)
        queue.put(('won', index, result['lock_action']))
    except J.LockedError:
        queue.put(('refused', index, None))


def test_racing_begins_of_different_runs_let_exactly_one_win(root):
    import multiprocessing
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    workers = [context.Process(target=_race, args=(root, index, queue)) for index in range(6)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=60) for worker in workers]
    for worker in workers:
        worker.join(60)
    winners = [o for o in outcomes if o[0] == 'won']
    assert len(winners) == 1
    assert winners[0][2] == 'acquire'
    assert read(os.path.join(root, 'lock.json'))['run_id'] == 'r-%d' % winners[0][1]
    assert sorted(os.listdir(root)) == sorted(['lock.json', 'r-%d' % winners[0][1]])
