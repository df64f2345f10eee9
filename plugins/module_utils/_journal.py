# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade journal: the record of a run, kept on the cluster itself.

Layout under ``journal_root`` (default ``/var/lib/clusterops-upgrade``)::

    lock.json              which run holds this host, its owner, since when
    <run_id>/host.json     this host's record   (scope=host)
    <run_id>/run.json      the run's record     (scope=run, control-plane hosts)

Every file is JSON, mode 0600, directories 0700, written atomically
(temp file + fsync + rename + fsync of the directory). Every read is
validated against ``SCHEMA_VERSION``; a file that fails validation raises
:class:`CorruptJournalError` and is never rewritten.

The decisions (``decide_lock``, ``apply_*``) are pure functions of the
current record, the parameters and the time; :func:`run_op` reads, decides
and - unless in check mode - writes.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re

from ansible_collections.clusterops.upgrade.plugins.module_utils import _atomic_file

SCHEMA_VERSION = 1
DEFAULT_ROOT = '/var/lib/clusterops-upgrade'
DEFAULT_LOCK_TIMEOUT = 4 * 3600
LOCK_FILE = 'lock.json'
RECORD_FILES = {'host': 'host.json', 'run': 'run.json'}
SCOPES = ('host', 'run')
OPS = ('begin', 'set_phase', 'record', 'undo', 'get', 'finish')
RUN_STATUSES = ('running', 'success', 'failed', 'rolled_back')
FINISH_STATUSES = ('success', 'failed', 'rolled_back')
PHASE_STATUSES = ('running', 'done', 'failed', 'skipped')
OBJECT_KINDS = ('ban', 'prefer', 'standby', 'maintenance', 'stopped_vm', 'backup', 'other')
# Objects that are temporary by nature: a finished run should have undone them.
TEMPORARY_KINDS = ('ban', 'prefer', 'standby', 'maintenance', 'stopped_vm')
HISTORY_EVENTS = ('begun', 'resumed', 'reopened', 'taken_over', 'finished')
RUN_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$')
TS_FORMAT = '%Y-%m-%dT%H:%M:%SZ'

# Options each op accepts besides op, run_id, scope and journal_root.
OP_OPTIONS = {
    'begin': ('owner', 'host', 'from_version', 'to_version', 'force', 'lock_timeout', 'plan', 'batches'),
    'set_phase': ('phase', 'phase_status', 'point_of_no_return', 'details', 'plan', 'batches', 'owner', 'host'),
    'record': ('entry', 'owner', 'host'),
    'undo': ('entry', 'owner', 'host'),
    # owner and host are accepted (and ignored) so module_defaults may set them for every op
    'get': ('owner', 'host'),
    'finish': ('status', 'owner', 'host'),
}
OP_REQUIRED = {
    'begin': ('owner',),
    'set_phase': ('phase',),
    'record': ('entry',),
    'undo': ('entry',),
    'get': (),
    'finish': ('status',),
}
# Values of the options that are not None when not given.
DEFAULTS = {'scope': 'host', 'journal_root': DEFAULT_ROOT, 'lock_timeout': DEFAULT_LOCK_TIMEOUT,
            'phase_status': 'running', 'force': False, 'point_of_no_return': False}


class JournalError(Exception):
    """A request the journal refuses; the message says what to do."""


class CorruptJournalError(JournalError):
    """A journal file exists but cannot be trusted. It is left untouched."""

    def __init__(self, path, problem):
        self.path = path
        self.problem = problem
        super(CorruptJournalError, self).__init__(
            'journal file %s is corrupt: %s. It was not modified: inspect it and repair it or move it '
            'aside by hand (the run it describes may still need rolling back)' % (path, problem))


class LockedError(JournalError):
    """``begin`` met a lock it may not take."""


# --------------------------------------------------------------------------- time

def format_ts(moment):
    """UTC timestamp text used everywhere in the journal."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime(TS_FORMAT)


def parse_ts(text):
    """Inverse of :func:`format_ts`; raises ValueError."""
    return datetime.datetime.strptime(text, TS_FORMAT).replace(tzinfo=datetime.timezone.utc)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def format_age(seconds):
    """'40 s', '17 min', '3 h 5 min', '2 d 4 h' (whole units, rounded down)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return '%d s' % seconds
    minutes = seconds // 60
    if minutes < 60:
        return '%d min' % minutes
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return '%d h %d min' % (hours, minutes) if minutes else '%d h' % hours
    days, hours = divmod(hours, 24)
    return '%d d %d h' % (days, hours) if hours else '%d d' % days


# --------------------------------------------------------------------- validation

class _Invalid(Exception):
    pass


def _describe(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, int):
        return 'an integer'
    if isinstance(value, float):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'an object'
    return type(value).__name__


def _fail(where, expected, value):
    raise _Invalid('%s must be %s, got %s' % (where, expected, _describe(value)))


def _v_str(value, where):
    if not isinstance(value, str) or not value:
        _fail(where, 'a non-empty string', value)


def _v_opt_str(value, where):
    if value is not None:
        _v_str(value, where)


def _v_bool(value, where):
    if not isinstance(value, bool):
        _fail(where, 'a boolean', value)


def _v_int(value, where):
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, 'an integer', value)


def _v_dict(value, where):
    if not isinstance(value, dict):
        _fail(where, 'an object', value)


def _v_ts(value, where):
    if not isinstance(value, str):
        _fail(where, 'a timestamp string like 2026-11-22T01:02:03Z', value)
    try:
        parse_ts(value)
    except ValueError:
        raise _Invalid('%s must be a timestamp like 2026-11-22T01:02:03Z, got %r' % (where, value))


def _v_opt_ts(value, where):
    if value is not None:
        _v_ts(value, where)


def _v_enum(choices):
    def check(value, where):
        if value not in choices:
            raise _Invalid('%s must be one of %s, got %s' % (where, ', '.join(choices), json.dumps(value)))
    return check


def _v_list_of(item_check):
    def check(value, where):
        if not isinstance(value, list):
            _fail(where, 'a list', value)
        for index, item in enumerate(value):
            item_check(item, '%s[%d]' % (where, index))
    return check


def _v_fields(fields):
    def check(value, where):
        if not isinstance(value, dict):
            _fail(where, 'an object', value)
        for key, key_check in fields:
            name = '%s.%s' % (where, key) if where else key
            if key not in value:
                raise _Invalid('missing key %s' % name)
            key_check(value[key], name)
    return check


def _v_opt(check):
    def optional(value, where):
        if value is not None:
            check(value, where)
    return optional


_v_phase = _v_fields((
    ('name', _v_str),
    ('status', _v_enum(PHASE_STATUSES)),
    ('started', _v_ts),
    ('finished', _v_opt_ts),
    ('details', _v_dict),
))
_v_entry = _v_fields((
    ('kind', _v_enum(OBJECT_KINDS)),
    ('id', _v_str),
    ('node', _v_opt_str),
    ('resource', _v_opt_str),
    ('phase', _v_opt_str),
    ('created_at', _v_ts),
    ('details', _v_dict),
    ('undone_at', _v_opt_ts),
))
_v_event = _v_fields((
    ('at', _v_ts),
    ('event', _v_enum(HISTORY_EVENTS)),
    ('owner', _v_opt_str),
    ('details', _v_dict),
))
_v_ponr = _v_fields((
    ('passed', _v_bool),
    ('at', _v_opt_ts),
    ('phase', _v_opt_str),
))
_v_lock_info = _v_fields((
    ('owner', _v_opt_str),
    ('acquired_at', _v_opt_ts),
    ('released_at', _v_opt_ts),
))
_COMMON_FIELDS = (
    ('scope', _v_enum(SCOPES)),
    ('run_id', _v_str),
    ('status', _v_enum(RUN_STATUSES)),
    ('started_at', _v_ts),
    ('updated_at', _v_ts),
    ('finished_at', _v_opt_ts),
    ('from_version', _v_opt_str),
    ('to_version', _v_opt_str),
    ('phase', _v_opt_str),
    ('phases', _v_list_of(_v_phase)),
    ('created', _v_list_of(_v_entry)),
    ('point_of_no_return', _v_ponr),
    ('lock', _v_lock_info),
    ('history', _v_list_of(_v_event)),
)
_SCOPE_FIELDS = {
    'host': (('host', _v_str),),
    'run': (('plan', _v_dict), ('batches', _v_list_of(_v_list_of(_v_str)))),
}
_v_takeover = _v_fields((('run_id', _v_str), ('owner', _v_str), ('acquired_at', _v_ts)))
_LOCK_FIELDS = (
    ('run_id', _v_str),
    ('owner', _v_str),
    ('acquired_at', _v_ts),
    ('taken_over_from', _v_opt(_v_takeover)),
)


def _check_schema_version(data):
    if not isinstance(data, dict):
        _fail('the top level', 'a JSON object', data)
    if 'schema_version' not in data:
        raise _Invalid('missing key schema_version')
    version = data['schema_version']
    _v_int(version, 'schema_version')
    if version != SCHEMA_VERSION:
        hint = ('it was written by a newer clusterops.upgrade: use that version on the controller'
                if version > SCHEMA_VERSION else 'this version of clusterops.upgrade cannot read it')
        raise _Invalid('schema_version is %d, this collection reads %d; %s' % (version, SCHEMA_VERSION, hint))


def validate_record(data, scope=None, run_id=None):
    """Raise ValueError naming the first problem in a journal record."""
    try:
        _check_schema_version(data)
        _v_fields(_COMMON_FIELDS)(data, '')
        _v_fields(_SCOPE_FIELDS[data['scope']])(data, '')
        if scope is not None and data['scope'] != scope:
            raise _Invalid('scope is %s but the file holds a %s record' % (json.dumps(data['scope']), scope))
        if run_id is not None and data['run_id'] != run_id:
            raise _Invalid('run_id is %s but the file is in the directory of run %s'
                           % (json.dumps(data['run_id']), json.dumps(run_id)))
    except _Invalid as exc:
        raise ValueError(str(exc))


def validate_lock(data):
    """Raise ValueError naming the first problem in a lock file."""
    try:
        _check_schema_version(data)
        _v_fields(_LOCK_FIELDS)(data, '')
    except _Invalid as exc:
        raise ValueError(str(exc))


# --------------------------------------------------------------------- file store

def dumps(data):
    return (json.dumps(data, indent=2, sort_keys=True) + '\n').encode('utf-8')


def read_json(path):
    """Parsed JSON of ``path``; None if it does not exist; CorruptJournalError if unreadable as JSON."""
    try:
        raw = _atomic_file.read_bytes(path)
    except IsADirectoryError:
        raise CorruptJournalError(path, 'it is a directory, not a file')
    except NotADirectoryError:
        raise JournalError('cannot read journal file %s: a component of its path is not a directory' % path)
    except OSError as exc:
        raise JournalError('cannot read journal file %s: %s' % (path, exc.strerror or exc))
    if raw is None:
        return None
    if not raw.strip():
        raise CorruptJournalError(path, 'the file is empty')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        raise CorruptJournalError(path, 'it is not UTF-8 text')
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptJournalError(path, 'it is not valid JSON (%s at line %d, column %d); was a write cut short?'
                                  % (exc.msg, exc.lineno, exc.colno))


class JournalStore(object):
    """The files of one journal root. No I/O happens in the constructor."""

    def __init__(self, root):
        self.root = root

    @property
    def lock_path(self):
        return os.path.join(self.root, LOCK_FILE)

    def run_dir(self, run_id):
        return os.path.join(self.root, run_id)

    def record_path(self, run_id, scope):
        return os.path.join(self.root, run_id, RECORD_FILES[scope])

    def load_record(self, run_id, scope):
        path = self.record_path(run_id, scope)
        data = read_json(path)
        if data is None:
            return None
        try:
            validate_record(data, scope=scope, run_id=run_id)
        except ValueError as exc:
            raise CorruptJournalError(path, str(exc))
        return data

    def load_lock(self):
        data = read_json(self.lock_path)
        if data is None:
            return None
        try:
            validate_lock(data)
        except ValueError as exc:
            raise CorruptJournalError(self.lock_path, str(exc))
        return data

    def activity(self, run_id):
        """(latest ``updated_at``, finished) of a run's readable records on this host.

        ``finished`` is True when at least one record exists and none is running.
        Unreadable records are skipped here: they are reported when that run is used.
        """
        latest, states = None, []
        for scope in SCOPES:
            try:
                record = self.load_record(run_id, scope)
            except JournalError:
                continue
            if record is None:
                continue
            states.append(record['status'])
            if latest is None or record['updated_at'] > latest:
                latest = record['updated_at']
        return latest, bool(states) and 'running' not in states

    def write_record(self, record):
        _atomic_file.ensure_dir(self.run_dir(record['run_id']))
        _atomic_file.atomic_write(self.record_path(record['run_id'], record['scope']), dumps(record))

    def create_lock(self, lock):
        _atomic_file.ensure_dir(self.root)
        return _atomic_file.create_exclusive(self.lock_path, dumps(lock))

    def replace_lock(self, lock):
        _atomic_file.ensure_dir(self.root)
        _atomic_file.atomic_write(self.lock_path, dumps(lock))

    def remove_lock(self):
        return _atomic_file.remove(self.lock_path)


# ------------------------------------------------------------------ pure decisions

def new_lock(run_id, owner, now, previous=None):
    taken = None
    if previous is not None:
        taken = {'run_id': previous['run_id'], 'owner': previous['owner'], 'acquired_at': previous['acquired_at']}
    return {'schema_version': SCHEMA_VERSION, 'run_id': run_id, 'owner': owner,
            'acquired_at': format_ts(now), 'taken_over_from': taken}


def describe_lock(lock, now, last_write=None):
    """'run r-42 is locked by alice@ctl (pid 123) since <ts> (17 min ago[, last journal write ...])'."""
    acquired = parse_ts(lock['acquired_at'])
    text = 'run %s is locked by %s since %s (%s ago' % (
        lock['run_id'], lock['owner'], lock['acquired_at'], format_age((now - acquired).total_seconds()))
    if last_write is not None and last_write > lock['acquired_at']:
        text += ', last journal write %s ago' % format_age((now - parse_ts(last_write)).total_seconds())
    return text + ')'


def decide_lock(lock, run_id, owner, now, lock_timeout, force, last_write=None, holder_finished=False):
    """What ``begin`` does with the host's lock: 'acquire', 'keep' or 'take_over'.

    ``last_write`` is the latest journal write of the lock holder's run; the
    lock is stale when neither it nor the lock itself is younger than
    ``lock_timeout`` seconds. A lock of the same run held by another owner
    can be taken over with ``force`` (the caller resumes that run); a lock of
    another run only when stale and with ``force``, or without force when
    every record of that run on this host is finished (it died between
    writing ``finish`` and removing the lock). Raises LockedError.
    """
    if lock is None:
        return 'acquire'
    if lock['run_id'] == run_id and lock['owner'] == owner:
        return 'keep'
    if lock['run_id'] != run_id and holder_finished:
        return 'take_over'
    activity = lock['acquired_at']
    if last_write is not None and last_write > activity:
        activity = last_write
    idle = (now - parse_ts(activity)).total_seconds()
    stale = idle >= lock_timeout
    held = describe_lock(lock, now, last_write)
    if lock['run_id'] == run_id:
        if force:
            return 'take_over'
        raise LockedError('%s; wait for it or pass force=true after checking it is dead to resume run %s from here'
                          % (held, run_id))
    if stale and force:
        return 'take_over'
    if stale:
        raise LockedError('%s; idle for more than lock_timeout=%d s, so it looks stale: pass force=true after '
                          'checking it is dead to start run %s (the journal of run %s stays in place)'
                          % (held, lock_timeout, run_id, lock['run_id']))
    raise LockedError('%s; wait for it to finish before starting run %s. force=true takes over a lock of another '
                      'run only once it has been idle for lock_timeout=%d s, after checking it is dead'
                      % (held, run_id, lock_timeout))


def new_record(scope, run_id, now, host=None):
    stamp = format_ts(now)
    record = {
        'schema_version': SCHEMA_VERSION,
        'scope': scope,
        'run_id': run_id,
        'status': 'running',
        'started_at': stamp,
        'updated_at': stamp,
        'finished_at': None,
        'from_version': None,
        'to_version': None,
        'phase': None,
        'phases': [],
        'created': [],
        'point_of_no_return': {'passed': False, 'at': None, 'phase': None},
        'lock': {'owner': None, 'acquired_at': None, 'released_at': None},
        'history': [],
    }
    if scope == 'host':
        record['host'] = host
    else:
        record['plan'] = {}
        record['batches'] = []
    return record


def _event(record, now, event, owner=None, details=None):
    record['history'].append({'at': format_ts(now), 'event': event, 'owner': owner, 'details': details or {}})


def _stamp_if_changed(before, after, now):
    """Set updated_at when ``after`` differs from ``before``; return whether it did."""
    if before == after:
        return False
    after['updated_at'] = format_ts(now)
    return True


def _set_versions(record, from_version, to_version):
    for key, value in (('from_version', from_version), ('to_version', to_version)):
        if value is None or record[key] == value:
            continue
        if record[key] is not None:
            raise JournalError('run %s was begun with %s=%s; this call says %s. A run\'s versions do not change: '
                               'start a new run_id for another upgrade' % (record['run_id'], key, record[key], value))
        record[key] = value


def _set_plan(record, plan, batches):
    if plan is not None:
        record['plan'] = copy.deepcopy(plan)
    if batches is not None:
        record['batches'] = copy.deepcopy(batches)


def apply_begin(record, params, now, lock_action, lock):
    """The record after ``begin``; ``record`` None means a new run. Returns (record, changed, resumed)."""
    scope, run_id, owner = params['scope'], params['run_id'], params['owner']
    if record is not None and record['status'] in ('success', 'rolled_back'):
        raise JournalError('run %s already finished with status %s at %s (%s); it cannot begin again: choose a '
                           'new run_id' % (run_id, record['status'], record['finished_at'],
                                           os.path.join(params['journal_root'], run_id, RECORD_FILES[scope])))
    if record is not None and scope == 'host' and params.get('host') and record['host'] != params['host']:
        raise JournalError('the journal of run %s on this machine belongs to host %s, not %s: check the inventory '
                           'or the journal_root' % (run_id, record['host'], params['host']))
    before = record
    after = copy.deepcopy(record) if record is not None else new_record(scope, run_id, now, params.get('host'))
    resumed = record is not None
    if record is None:
        _event(after, now, 'begun', owner)
    elif record['status'] == 'failed':
        after['status'] = 'running'
        after['finished_at'] = None
        _event(after, now, 'reopened', owner, {'previous_status': 'failed', 'finished_at': record['finished_at']})
    elif lock_action == 'acquire':
        _event(after, now, 'resumed', owner)
    if lock_action == 'take_over':
        _event(after, now, 'taken_over', owner, {'from_owner': lock['owner'], 'from_run_id': lock['run_id'],
                                                 'locked_since': lock['acquired_at']})
    if lock_action in ('acquire', 'take_over'):
        after['lock'] = {'owner': owner, 'acquired_at': format_ts(now), 'released_at': None}
    elif after['lock']['owner'] is None or after['lock']['released_at'] is not None:
        # 'keep': another scope of this run on this host holds the lock already.
        after['lock'] = {'owner': lock['owner'], 'acquired_at': lock['acquired_at'], 'released_at': None}
    _set_versions(after, params.get('from_version'), params.get('to_version'))
    if scope == 'run':
        _set_plan(after, params.get('plan'), params.get('batches'))
    if before is None:
        return after, True, False
    return after, _stamp_if_changed(before, after, now), resumed


def apply_set_phase(record, name, status, now, details=None, point_of_no_return=False, plan=None, batches=None):
    """The record after ``set_phase``. Returns (record, changed).

    Starting a phase (status running) closes a running one as done; a phase
    that ran before is started again as a new history entry. A final status
    closes the named phase if it runs, is a no-op if its latest entry already
    has that status, and otherwise adds a closed entry (e.g. skipped).
    """
    after = copy.deepcopy(record)
    phases = after['phases']
    stamp = format_ts(now)
    current = phases[-1] if phases else None
    latest = None
    for entry in reversed(phases):
        if entry['name'] == name:
            latest = entry
            break

    def close_running():
        if current is not None and current['status'] == 'running' and current is not latest:
            current['status'] = 'done'
            current['finished'] = stamp

    target = latest
    if status == 'running':
        if latest is None or latest['status'] != 'running':
            close_running()
            target = {'name': name, 'status': 'running', 'started': stamp, 'finished': None, 'details': {}}
            phases.append(target)
    elif latest is not None and latest['status'] == 'running':
        latest['status'] = status
        latest['finished'] = stamp
    elif latest is None or latest['status'] != status:
        close_running()
        target = {'name': name, 'status': status, 'started': stamp, 'finished': stamp, 'details': {}}
        phases.append(target)
    if details:
        target['details'].update(copy.deepcopy(details))
    after['phase'] = phases[-1]['name']
    if point_of_no_return and not after['point_of_no_return']['passed']:
        after['point_of_no_return'] = {'passed': True, 'at': stamp, 'phase': name}
    if after['scope'] == 'run':
        _set_plan(after, plan, batches)
    return after, _stamp_if_changed(record, after, now)


def _entry_key(entry):
    return (entry['kind'], entry['id'], entry.get('node'))


def apply_record(record, entry, now):
    """Append a created object unless an active identical one (kind, id, node) is there.

    Returns (record, the stored entry, changed).
    """
    for existing in record['created']:
        if existing['undone_at'] is None and _entry_key(existing) == _entry_key(entry):
            return record, existing, False
    after = copy.deepcopy(record)
    stored = {
        'kind': entry['kind'],
        'id': entry['id'],
        'node': entry.get('node'),
        'resource': entry.get('resource'),
        'phase': after['phase'],
        'created_at': format_ts(now),
        'details': copy.deepcopy(entry.get('details') or {}),
        'undone_at': None,
    }
    after['created'].append(stored)
    after['updated_at'] = format_ts(now)
    return after, stored, True


def _describe_entry(entry):
    text = '%s %s' % (entry['kind'], entry['id'])
    if entry.get('node'):
        text += ' on %s' % entry['node']
    return text


def apply_undo(record, entry, now, path):
    """Mark the matching active created object undone. Returns (record, entry, changed).

    Matches kind and id, and node when given. Undoing an object already
    undone is a no-op; an unknown object is an error listing what is active.
    """
    def matches(existing):
        if existing['kind'] != entry['kind'] or existing['id'] != entry['id']:
            return False
        return entry.get('node') is None or existing['node'] == entry['node']

    active = [i for i, e in enumerate(record['created']) if e['undone_at'] is None and matches(e)]
    if len(active) > 1:
        raise JournalError('entry %s matches %d active objects in %s (nodes %s): give entry.node'
                           % (_describe_entry(entry), len(active), path,
                              ', '.join(str(record['created'][i]['node']) for i in active)))
    if not active:
        done = [e for e in record['created'] if matches(e)]
        if done:
            return record, done[-1], False
        listed = [_describe_entry(e) for e in record['created'] if e['undone_at'] is None]
        raise JournalError('run %s never recorded %s in %s, so it will not mark it undone; active objects: %s'
                           % (record['run_id'], _describe_entry(entry), path, '; '.join(listed) or 'none'))
    after = copy.deepcopy(record)
    stored = after['created'][active[0]]
    stored['undone_at'] = format_ts(now)
    after['updated_at'] = format_ts(now)
    return after, stored, True


def apply_finish(record, status, now, owner=None):
    """Close the run with ``status``; the running phase closes as done (success) or failed."""
    after = copy.deepcopy(record)
    stamp = format_ts(now)
    if after['phases'] and after['phases'][-1]['status'] == 'running':
        after['phases'][-1]['status'] = 'done' if status == 'success' else 'failed'
        after['phases'][-1]['finished'] = stamp
    after['status'] = status
    after['finished_at'] = stamp
    if after['lock']['owner'] is not None and after['lock']['released_at'] is None:
        after['lock']['released_at'] = stamp
    _event(after, now, 'finished', owner, {'status': status})
    after['updated_at'] = stamp
    return after


def phases_done(record):
    if not record:
        return []
    names = []
    for entry in record['phases']:
        if entry['status'] == 'done' and entry['name'] not in names:
            names.append(entry['name'])
    return names


def outstanding(record):
    """Created objects not undone yet (backups included: they are meant to stay)."""
    if not record:
        return []
    return [e for e in record['created'] if e['undone_at'] is None]


def finish_warnings(record):
    """Warnings for a run closed as success with temporary objects still in place."""
    if not record or record['status'] != 'success':
        return []
    left = [e for e in outstanding(record) if e['kind'] in TEMPORARY_KINDS]
    return ['run %s finished as success but the journal says these objects it created were never undone: %s'
            % (record['run_id'], '; '.join(_describe_entry(e) for e in left))] if left else []


# ------------------------------------------------------------------ parameters

def check_params(params):
    """Raise JournalError for a parameter set no op accepts. Missing keys count as not given."""
    op = params.get('op')
    if op not in OPS:
        raise JournalError('op must be one of %s, got %r' % (', '.join(OPS), op))
    if params['scope'] not in SCOPES:
        raise JournalError('scope must be one of %s, got %r' % (', '.join(SCOPES), params['scope']))
    run_id = params['run_id']
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise JournalError('run_id %r is not usable as a directory name: use 1-80 characters from A-Z a-z 0-9 . _ - '
                           'starting with a letter or digit' % (run_id,))
    if not params.get('journal_root') or not os.path.isabs(params['journal_root']):
        raise JournalError('journal_root must be an absolute path, got %r' % (params.get('journal_root'),))
    allowed = OP_OPTIONS[op]
    for key in sorted(set(OP_OPTIONS['begin'] + OP_OPTIONS['set_phase'] + OP_OPTIONS['finish'] + ('entry',))):
        value = params.get(key)
        if key not in allowed and value is not None and value is not False and value != DEFAULTS.get(key):
            raise JournalError('option %s is not used by op=%s (it takes: %s)'
                               % (key, op, ', '.join(allowed) or 'no other option'))
    for key in OP_REQUIRED[op]:
        if params.get(key) in (None, ''):
            raise JournalError('op=%s needs option %s' % (op, key))
    if params['scope'] == 'host':
        if op == 'begin' and not params.get('host'):
            raise JournalError('op=begin with scope=host needs option host (the inventory name of this host)')
        if params.get('plan') is not None or params.get('batches') is not None:
            raise JournalError('options plan and batches belong to the run record: use them with scope=run')
    if params.get('phase_status') is not None and params['phase_status'] not in PHASE_STATUSES:
        raise JournalError('phase_status must be one of %s, got %r' % (', '.join(PHASE_STATUSES), params['phase_status']))
    if op == 'finish' and params['status'] not in FINISH_STATUSES:
        raise JournalError('status must be one of %s, got %r' % (', '.join(FINISH_STATUSES), params['status']))
    if params.get('lock_timeout') is not None and params['lock_timeout'] < 0:
        raise JournalError('lock_timeout must be 0 or more seconds, got %r' % params['lock_timeout'])
    entry = params.get('entry')
    if entry is not None and op in ('record', 'undo'):
        if entry.get('kind') not in OBJECT_KINDS:
            raise JournalError('entry.kind must be one of %s, got %r' % (', '.join(OBJECT_KINDS), entry.get('kind')))
        if not entry.get('id'):
            raise JournalError('entry.id is required: the name of the object (constraint id, VM, backup path...)')
        if op == 'undo':
            for key in ('resource', 'details'):
                if entry.get(key):
                    raise JournalError('entry.%s is not used by op=undo (it matches on kind, id and node)' % key)
    batches = params.get('batches')
    if batches is not None:
        try:
            _v_list_of(_v_list_of(_v_str))(batches, 'batches')
        except _Invalid as exc:
            raise JournalError('%s (a list of batches, each a list of host names)' % exc)


# ------------------------------------------------------------------ read, decide, act

def _result(store, params, record, lock, changed, before=None):
    return {
        'changed': changed,
        'exists': record is not None,
        'journal': record or {},
        'journal_path': store.record_path(params['run_id'], params['scope']),
        'lock': lock,
        'phases_done': phases_done(record),
        'outstanding': outstanding(record),
        'before': before or {},
    }


def _require_holder(store, lock, params, record, allow_missing=False):
    """Write ops need the lock held by this run (and by ``owner`` when given)."""
    run_id = params['run_id']
    if lock is None:
        if allow_missing:
            return
        raise JournalError('run %s does not hold the lock of %s (%s is missing): call op=begin to resume the run'
                           % (run_id, store.root, store.lock_path))
    if lock['run_id'] != run_id:
        raise JournalError('run %s lost the lock of %s to run %s of %s (since %s): this controller must stop; '
                           'see the journal of both runs' % (run_id, store.root, lock['run_id'], lock['owner'],
                                                             lock['acquired_at']))
    owner = params.get('owner')
    if owner is not None and lock['owner'] != owner:
        raise JournalError('run %s is now locked by %s (since %s), not by %s: another controller took it over; '
                           'this one must stop' % (run_id, lock['owner'], lock['acquired_at'], owner))


def _load_existing(store, params):
    record = store.load_record(params['run_id'], params['scope'])
    if record is None:
        raise JournalError('no journal for run %s at %s: call op=begin first'
                           % (params['run_id'], store.record_path(params['run_id'], params['scope'])))
    if record['status'] != 'running' and params['op'] != 'finish':
        raise JournalError('run %s finished with status %s at %s: op=%s is refused; call op=begin to reopen a '
                           'failed run' % (params['run_id'], record['status'], record['finished_at'], params['op']))
    if params['scope'] == 'host' and params.get('host') and params['host'] != record['host']:
        raise JournalError('the journal of run %s on this machine belongs to host %s, not %s'
                           % (params['run_id'], record['host'], params['host']))
    return record


def run_op(params, now=None, check_mode=False):
    """Carry out one journal operation. ``params`` holds the module's options.

    Returns a dict: changed, exists, journal, journal_path, lock, phases_done,
    outstanding, before (the record before, for diff) and per op: resumed and
    lock_action (begin), entry (record/undo), lock_released (finish).
    Raises JournalError (CorruptJournalError, LockedError) and OSError.
    """
    params = dict(DEFAULTS, **dict((k, v) for k, v in params.items() if v is not None))
    check_params(params)
    now = now or utc_now()
    store = JournalStore(params['journal_root'])
    op = params['op']
    lock = store.load_lock()
    if op == 'get':
        record = store.load_record(params['run_id'], params['scope'])
        return _result(store, params, record, lock, False, before=record)
    if op == 'begin':
        return _begin(store, params, now, lock, check_mode)
    record = _load_existing(store, params)
    if op == 'finish':
        return _finish(store, params, now, lock, record, check_mode)
    _require_holder(store, lock, params, record)
    path = store.record_path(params['run_id'], params['scope'])
    extra = {}
    if op == 'set_phase':
        after, changed = apply_set_phase(record, params['phase'], params.get('phase_status') or 'running', now,
                                         params.get('details'), bool(params.get('point_of_no_return')),
                                         params.get('plan'), params.get('batches'))
    elif op == 'record':
        after, extra['entry'], changed = apply_record(record, params['entry'], now)
    else:
        after, extra['entry'], changed = apply_undo(record, params['entry'], now, path)
    if changed and not check_mode:
        store.write_record(after)
    result = _result(store, params, after, lock, changed, before=record)
    result.update(extra)
    return result


def _begin(store, params, now, lock, check_mode):
    run_id = params['run_id']
    record = store.load_record(run_id, params['scope'])
    last, holder_finished = store.activity(lock['run_id']) if lock is not None else (None, False)
    timeout = params.get('lock_timeout')
    action = decide_lock(lock, run_id, params['owner'], now, DEFAULT_LOCK_TIMEOUT if timeout is None else timeout,
                         bool(params.get('force')), last, holder_finished)
    after, changed, resumed = apply_begin(record, params, now, action, lock)
    new = lock
    if action in ('acquire', 'take_over'):
        new = new_lock(run_id, params['owner'], now, previous=lock if action == 'take_over' else None)
        changed = True
    if changed and not check_mode:
        if action == 'acquire':
            if not store.create_lock(new):
                raced = store.load_lock()
                raise LockedError('%s; it was taken while this begin ran: wait for it to finish'
                                  % (describe_lock(raced, now) if raced else 'the lock'))
        elif action == 'take_over':
            store.replace_lock(new)
        try:
            if after != record:
                store.write_record(after)
        except BaseException:
            if action == 'acquire':
                store.remove_lock()
            raise
    result = _result(store, params, after, new, changed, before=record)
    result.update({'resumed': resumed, 'lock_action': action})
    return result


def _finish(store, params, now, lock, record, check_mode):
    run_id, status = params['run_id'], params['status']
    other_scope = 'run' if params['scope'] == 'host' else 'host'
    if record['status'] != 'running':
        if record['status'] != status:
            raise JournalError('run %s already finished with status %s at %s, not %s: call op=begin to reopen a '
                               'failed run first' % (run_id, record['status'], record['finished_at'], status))
        after, changed = record, False
    else:
        _require_holder(store, lock, params, record, allow_missing=True)
        after, changed = apply_finish(record, status, now, params.get('owner') or (lock or {}).get('owner')), True
    release = False
    if lock is not None and lock['run_id'] == run_id:
        other = store.load_record(run_id, other_scope)
        release = other is None or other['status'] != 'running'
    if not check_mode:
        if changed:
            store.write_record(after)
        if release:
            store.remove_lock()
    result = _result(store, params, after, None if release else lock, changed or release, before=record)
    result['lock_released'] = release
    return result
