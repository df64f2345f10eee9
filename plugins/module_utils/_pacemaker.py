# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pacemaker: read the cluster, decide, change exactly one thing, wait until it settled.

Parts, top to bottom:

* parsers of ``crm_mon --one-shot --inactive --output-as=xml`` (:func:`parse_crm_mon`)
  and of ``cibadmin --query`` (:func:`parse_cib`), merged into the facts
  ``pcs_info`` returns (:func:`build_facts`, layout in docs/pacemaker.md and
  docs/planner.md);
* pure decisions: where a resource runs, which cli-ban / cli-prefer constraints
  exist, what changed between two states (:func:`compare_placement`), the argv
  of every command (``argv_*``);
* the one command seam, :class:`PacemakerCli` (argv lists, ``LANG=C``,
  ``CIB_file`` only for dry runs on a private copy of the CIB);
* the HA-control interface :class:`HaControl` and its pacemaker backend
  :class:`Pacemaker` (ban, clear a ban, move, node standby, node maintenance,
  cluster maintenance-mode), which dry-runs every change with ``crm_simulate`` on a
  copy of the CIB first (that is also the check-mode prediction) and then waits
  with ``crm_resource --wait`` plus ``crm_mon`` until the cluster settled or the
  deadline passed.

Only pacemaker's own command line tools are used (crm_mon, cibadmin, crm_resource,
crm_attribute, crm_simulate); pcs is optional and only asked for its version.
Nothing here runs ``pcs resource clear`` or ``crm_resource --move``/``--clear``:
they also delete constraints we did not create (every cli-prefer of the resource,
and the cli-ban on the destination).
"""

from __future__ import annotations

import abc
import datetime
import math
import os
import re
import shlex
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET

C_ENV = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
TOOLS = ('crm_mon', 'cibadmin', 'crm_resource', 'crm_attribute', 'crm_simulate')
OPTIONAL_TOOLS = ('pcs',)
RUNNING_ROLES = ('Started', 'Promoted', 'Unpromoted', 'Master', 'Slave')
ROLE_ORDER = ('Promoted', 'Master', 'Started', 'Unpromoted', 'Slave', 'Stopped', 'Unknown')
CLI_BAN = 'cli-ban'
CLI_PREFER = 'cli-prefer'
USER = 'user'
TRUE_WORDS = ('true', 'yes', 'y', 'on', '1')
RC_TIMEOUT = 124        # CRM_EX_TIMEOUT, what crm_resource --wait exits with at its timeout
SETTLED_ROUNDS = 2      # a goal still unmet after this many settled reads will not be met
POLL_PAUSE = 1.0
MAX_LISTED = 30

_INSTANCE_RE = re.compile(r'^(.*):\d+$')
_TIME_RE = re.compile(r'^\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?'
                      r'\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$')
_DURATION_RE = re.compile(r'^P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?'
                          r'(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$')
_SAFE_ID_RE = re.compile(r"^[^'\"<>&\s]+$")


class PacemakerError(Exception):
    """A refusal or a failure. ``details`` holds the partial result (what was done, where
    things are) so the module can return it with the failure."""

    def __init__(self, msg, details=None):
        super(PacemakerError, self).__init__(msg)
        self.details = details or {}


class CommandError(PacemakerError):
    def __init__(self, argv, rc, out, err, hint=''):
        text = (err or '').strip() or (out or '').strip() or 'no output'
        msg = '%s failed (rc %d): %s' % (display(argv), rc, _first_lines(text, 6))
        if hint:
            msg += '; ' + hint
        super(CommandError, self).__init__(msg)
        self.argv = argv
        self.rc = rc


def _first_lines(text, count):
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if len(lines) > count:
        lines = lines[:count] + ['...']
    return ' | '.join(lines)


def display(argv, cib_file=None):
    """A command as an operator would type it (``CIB_file=<copy>`` marks dry runs)."""
    text = ' '.join(shlex.quote(str(a)) for a in argv)
    return ('CIB_file=<copy> ' + text) if cib_file else text


def as_bool(value):
    return str(value).strip().lower() in TRUE_WORDS


def _listing(names, limit=MAX_LISTED):
    names = sorted(set(names))
    if len(names) > limit:
        return '%s, ... (%d in all)' % (', '.join(names[:limit]), len(names))
    return ', '.join(names) if names else 'none'


# ---------------------------------------------------------------------------
# Times and durations
# ---------------------------------------------------------------------------

def parse_time(text):
    """A pacemaker date (``2026-11-22 01:50:39 +00:00``, ISO 8601 with ``T`` or ``Z``)
    as an aware datetime; a time without an offset is taken as UTC. ``None`` when the
    text is not such a date (week or ordinal dates are not understood)."""
    if text is None:
        return None
    match = _TIME_RE.match(str(text))
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0))
    except ValueError:
        return None
    offset = datetime.timedelta(0)
    if zone and zone != 'Z':
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return moment.replace(tzinfo=datetime.timezone(offset))


def format_utc(moment):
    if moment is None:
        return None
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_duration(text):
    """Seconds of an ISO 8601 duration as crm_resource --lifetime takes it (``PT15S``,
    ``PT2H``, ``P1D``, ``P1W``; years and months count 365 and 30 days). ``None`` when
    it is not one."""
    match = _DURATION_RE.match(str(text or ''))
    if not match:
        return None
    years, months, weeks, days, hours, minutes, seconds = [int(g or 0) for g in match.groups()]
    total = ((((years * 365 + months * 30 + weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60) + seconds
    return total if total > 0 else None


# ---------------------------------------------------------------------------
# Parsing crm_mon XML
# ---------------------------------------------------------------------------

def _xml(text, what):
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise PacemakerError('%s printed no valid XML (%s); first line: %r'
                             % (what, exc, (text or '').strip().splitlines()[:1]))


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _role_rank(role):
    try:
        return ROLE_ORDER.index(role)
    except ValueError:
        return len(ROLE_ORDER)


def _base_id(rid, in_clone):
    if in_clone:
        match = _INSTANCE_RE.match(rid or '')
        if match:
            return match.group(1)
    return rid


def crm_mon_status(text):
    """``(code, message)`` of the ``<status>`` element crm_mon prints with its result."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None, None
    status = root.find('status')
    if status is None:
        return None, None
    errors = [e.text.strip() for e in status.iter('error') if e.text and e.text.strip()]
    message = status.get('message') or ''
    if errors:
        message = '%s: %s' % (message, '; '.join(errors)) if message else '; '.join(errors)
    return _int(status.get('code')), message


def parse_crm_mon(text):
    """The cluster state from ``crm_mon --one-shot --inactive --output-as=xml``.

    Returns ``{dc, dc_present, quorum, pacemaker_version, cluster_options, nodes,
    resources, groups, clones, node_attributes, failed_actions, bans,
    nodes_configured, resources_configured}``; ``resources`` are the primitives
    (inside groups and clones too, one entry per primitive with every node it runs on).
    """
    root = _xml(text, 'crm_mon')
    code, message = crm_mon_status(text)
    if code not in (None, 0):
        raise PacemakerError('crm_mon reported status %d: %s' % (code, message or 'no message'))
    summary = root.find('summary')
    dc = summary.find('current_dc') if summary is not None else None
    options = summary.find('cluster_options') if summary is not None else None
    dc_present = dc is not None and as_bool(dc.get('present'))
    state = {
        'dc_present': dc_present,
        'dc': dc.get('name') if dc_present else None,
        'quorum': bool(dc_present and as_bool(dc.get('with_quorum'))),
        'pacemaker_version': dc.get('version') if dc_present else None,
        'cluster_options': dict(options.attrib) if options is not None else {},
        'nodes_configured': None,
        'resources_configured': None,
    }
    if summary is not None:
        nodes_conf = summary.find('nodes_configured')
        rscs_conf = summary.find('resources_configured')
        state['nodes_configured'] = _int(nodes_conf.get('number')) if nodes_conf is not None else None
        state['resources_configured'] = _int(rscs_conf.get('number')) if rscs_conf is not None else None
    state['maintenance_mode'] = as_bool(state['cluster_options'].get('maintenance-mode', 'false'))
    nodes = []
    for node in root.findall('nodes/node'):
        nodes.append({
            'name': node.get('name'),
            'id': node.get('id'),
            'online': as_bool(node.get('online')),
            'standby': as_bool(node.get('standby')),
            'standby_onfail': as_bool(node.get('standby_onfail')),
            'maintenance': as_bool(node.get('maintenance')),
            'pending': as_bool(node.get('pending')),
            'unclean': as_bool(node.get('unclean')),
            'shutdown': as_bool(node.get('shutdown')),
            'expected_up': as_bool(node.get('expected_up')),
            'is_dc': as_bool(node.get('is_dc')),
            'resources_running': _int(node.get('resources_running'), 0),
            'type': node.get('type'),
            'health': node.get('health'),
        })
    state['nodes'] = nodes
    resources, order, groups, clones = {}, [], [], []
    section = root.find('resources')
    if section is not None:
        _walk_resources(section, None, None, resources, order, groups, clones)
    state['resources'] = [resources[rid] for rid in order]
    for entry in state['resources']:
        entry['nodes'] = sorted(set(entry['nodes']))
        entry['failures'] = []
        entry['bans'] = []
    for group in groups:
        members = [resources[m] for m in group['resources']]
        group['nodes'] = sorted(set(n for m in members for n in m['nodes']))
        group['active'] = any(m['active'] for m in members)
        group['role'] = _group_role(members)
    for clone in clones:
        members = [resources[m] for m in clone['resources'] if m in resources]
        clone['nodes'] = sorted(set(n for m in members for n in m['nodes']))
        clone['active'] = any(m['active'] for m in members)
    state['groups'] = groups
    state['clones'] = clones
    attrs = {}
    for node in root.findall('node_attributes/node'):
        attrs[node.get('name')] = dict((a.get('name'), a.get('value')) for a in node.findall('attribute'))
    state['node_attributes'] = attrs
    state['failed_actions'] = [_failure(f) for f in root.findall('failures/failure')]
    state['bans'] = [{'id': b.get('id'), 'resource': b.get('resource'), 'node': b.get('node'),
                      'weight': _int(b.get('weight')), 'promoted_only': as_bool(b.get('promoted-only'))}
                     for b in root.findall('bans/ban')]
    by_id = dict((r['id'], r) for r in state['resources'])
    for failure in state['failed_actions']:
        if failure['resource'] in by_id:
            by_id[failure['resource']]['failures'].append(failure)
    for ban in state['bans']:
        if ban['resource'] in by_id:
            by_id[ban['resource']]['bans'].append({'id': ban['id'], 'node': ban['node'], 'weight': ban['weight']})
    return state


def _group_role(members):
    roles = set(m['role'] for m in members)
    if len(roles) == 1:
        return roles.pop()
    if any(m['active'] for m in members):
        return 'Partial'
    return 'Stopped'


def _walk_resources(elem, group, clone, resources, order, groups, clones):
    for child in elem:
        if child.tag == 'resource':
            _add_instance(child, group, clone, resources, order)
        elif child.tag == 'group':
            gid = _base_id(child.get('id'), clone is not None)
            entry = next((g for g in groups if g['id'] == gid), None)
            if entry is None:
                entry = {'id': gid, 'resources': [], 'managed': as_bool(child.get('managed', 'true')),
                         'disabled': as_bool(child.get('disabled')), 'clone': clone}
                groups.append(entry)
            before = len(order)
            _walk_resources(child, gid, clone, resources, order, groups, clones)
            for rid in order[before:]:
                if rid not in entry['resources']:
                    entry['resources'].append(rid)
            for res in child.findall('resource'):
                rid = _base_id(res.get('id'), clone is not None)
                if rid not in entry['resources']:
                    entry['resources'].append(rid)
        elif child.tag in ('clone', 'bundle'):
            cid = child.get('id')
            entry = {'id': cid, 'kind': child.tag, 'resources': [],
                     'promotable': as_bool(child.get('multi_state')),
                     'unique': as_bool(child.get('unique')),
                     'managed': as_bool(child.get('managed', 'true')),
                     'disabled': as_bool(child.get('disabled')),
                     'failed': as_bool(child.get('failed'))}
            clones.append(entry)
            before = len(order)
            _walk_resources(child, None, cid, resources, order, groups, clones)
            for replica in child.findall('replica'):
                _walk_resources(replica, None, cid, resources, order, groups, clones)
            seen = set(order[before:])
            for res in child.iter('resource'):
                seen.add(_base_id(res.get('id'), True))
            entry['resources'] = [rid for rid in order if rid in seen]


def _add_instance(elem, group, clone, resources, order):
    rid = _base_id(elem.get('id'), clone is not None)
    active = as_bool(elem.get('active'))
    nodes = [n.get('name') for n in elem.findall('node')] if active else []
    role = elem.get('role') or 'Unknown'
    active = active and bool(nodes)
    entry = resources.get(rid)
    if entry is None:
        entry = {
            'id': rid,
            'agent': (elem.get('resource_agent') or '').replace('::', ':'),
            'role': role,
            'target_role': elem.get('target_role'),
            'active': active,
            'managed': as_bool(elem.get('managed', 'true')),
            'failed': as_bool(elem.get('failed')),
            'failure_ignored': as_bool(elem.get('failure_ignored')),
            'blocked': as_bool(elem.get('blocked')),
            'orphaned': as_bool(elem.get('orphaned')),
            'pending': elem.get('pending'),
            'nodes': list(nodes),
            'group': group,
            'clone': clone,
        }
        if clone is not None:
            entry['instances'] = []
        resources[rid] = entry
        order.append(rid)
    else:
        entry['nodes'].extend(nodes)
        entry['active'] = entry['active'] or active
        entry['managed'] = entry['managed'] and as_bool(elem.get('managed', 'true'))
        entry['failed'] = entry['failed'] or as_bool(elem.get('failed'))
        entry['blocked'] = entry['blocked'] or as_bool(elem.get('blocked'))
        if _role_rank(role) < _role_rank(entry['role']):
            entry['role'] = role
    if clone is not None:
        entry['instances'].append({'role': role, 'nodes': nodes})


def _failure(elem):
    op_key = elem.get('op_key') or ''
    resource, task, interval = op_key, elem.get('task'), elem.get('interval')
    parts = op_key.rsplit('_', 2)
    if len(parts) == 3 and parts[2].isdigit():
        resource, task = parts[0], task or parts[1]
        interval = interval if interval is not None else parts[2]
    return {
        'resource': _base_id(resource, True),
        'op_key': op_key,
        'node': elem.get('node'),
        'task': task,
        'interval': interval,
        'exitcode': _int(elem.get('exitcode')),
        'exitstatus': elem.get('exitstatus'),
        'exitreason': elem.get('exitreason'),
        'status': elem.get('status'),
        'call': _int(elem.get('call')),
        'last_rc_change': elem.get('last-rc-change'),
    }


# ---------------------------------------------------------------------------
# Parsing the CIB
# ---------------------------------------------------------------------------

def _nvpairs(parent, tag):
    """name -> value of every nvpair in the ``tag`` sets of ``parent`` (first set wins)."""
    values = {}
    if parent is None:
        return values
    for block in parent.findall(tag):
        for pair in block.findall('nvpair'):
            name = pair.get('name')
            if name is not None and name not in values:
                values[name] = pair.get('value')
    return values


def _section(root, name):
    if root.tag == name:
        return root
    if root.tag == 'cib':
        return root.find('configuration/' + name)
    return root.find(name)


def parse_cib(text, now=None):
    """The configuration from ``cibadmin --query`` (or one of its sections).

    Returns ``{properties, resource_defaults, nodes, resources, location_constraints,
    other_constraints, transient_attributes}``: node attributes and utilization,
    resource meta attributes and utilization with their parents, and every
    ``rsc_location`` with its kind (``cli-ban``, ``cli-prefer`` or ``user``), node,
    score, rules and lifetime (``expired`` is judged against ``now``, default: now).
    """
    root = _xml(text, 'cibadmin --query')
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cib = {'properties': {}, 'resource_defaults': {}, 'nodes': {}, 'resources': {},
           'location_constraints': [], 'other_constraints': [], 'transient_attributes': {}}
    crm_config = _section(root, 'crm_config')
    if crm_config is not None:
        cib['properties'] = _nvpairs(crm_config, 'cluster_property_set')
    defaults = _section(root, 'rsc_defaults')
    if defaults is not None:
        cib['resource_defaults'] = _nvpairs(defaults, 'meta_attributes')
    nodes = _section(root, 'nodes')
    if nodes is not None:
        for node in nodes.findall('node'):
            name = node.get('uname') or node.get('id')
            cib['nodes'][name] = {'id': node.get('id'), 'attributes': _nvpairs(node, 'instance_attributes'),
                                  'utilization': _nvpairs(node, 'utilization')}
    resources = _section(root, 'resources')
    if resources is not None:
        _walk_cib_resources(resources, None, cib['resources'])
    constraints = _section(root, 'constraints')
    if constraints is not None:
        for elem in constraints:
            if elem.tag == 'rsc_location':
                cib['location_constraints'].append(parse_location(elem, now))
            elif isinstance(elem.tag, str):
                cib['other_constraints'].append({'type': elem.tag, 'id': elem.get('id')})
    status = root.find('status') if root.tag == 'cib' else None
    if status is not None:
        for state in status.findall('node_state'):
            attrs = {}
            for block in state.findall('transient_attributes'):
                attrs.update(_nvpairs(block, 'instance_attributes'))
            cib['transient_attributes'][state.get('uname') or state.get('id')] = attrs
    return cib


def _walk_cib_resources(elem, parent, out):
    for child in elem:
        if child.tag not in ('primitive', 'group', 'clone', 'master', 'bundle'):
            continue
        rid = child.get('id')
        agent = None
        if child.tag == 'primitive':
            parts = [child.get('class'), child.get('provider'), child.get('type')]
            agent = ':'.join(p for p in parts if p)
        out[rid] = {'kind': 'clone' if child.tag == 'master' else child.tag, 'agent': agent, 'parent': parent,
                    'meta': _nvpairs(child, 'meta_attributes'), 'utilization': _nvpairs(child, 'utilization')}
        _walk_cib_resources(child, rid, out)


def parse_location(elem, now):
    """One ``rsc_location`` as a dictionary (see :func:`parse_cib`)."""
    cid = elem.get('id') or ''
    if cid.startswith('cli-ban-'):
        kind = CLI_BAN
    elif cid.startswith('cli-prefer-'):
        kind = CLI_PREFER
    else:
        kind = USER
    rules = []
    node = elem.get('node')
    score = elem.get('score')
    ends = []
    for rule in elem.findall('rule'):
        entry = {'id': rule.get('id'), 'score': rule.get('score'), 'score_attribute': rule.get('score-attribute'),
                 'boolean_op': rule.get('boolean-op', 'and'), 'role': rule.get('role'),
                 'expressions': [], 'date_expressions': []}
        for expr in rule.findall('expression'):
            entry['expressions'].append({'attribute': expr.get('attribute'), 'operation': expr.get('operation'),
                                         'value': expr.get('value'), 'type': expr.get('type')})
            if node is None and expr.get('attribute') == '#uname' and expr.get('operation') == 'eq':
                node = expr.get('value')
        for expr in rule.findall('date_expression'):
            entry['date_expressions'].append({'id': expr.get('id'), 'operation': expr.get('operation'),
                                              'start': expr.get('start'), 'end': expr.get('end')})
            if expr.get('operation') == 'lt' and expr.get('end'):
                ends.append(expr.get('end'))
        if score is None:
            score = entry['score']
        rules.append(entry)
    resources = [r.get('id') for r in elem.findall('resource_set/resource_ref')]
    lifetime_end = ends[0] if ends else None
    end = parse_time(lifetime_end) if lifetime_end else None
    if lifetime_end is None:
        expired = False
    elif end is None:
        expired = None
    else:
        expired = now >= end
    return {
        'id': cid,
        'kind': kind,
        'resource': elem.get('rsc'),
        'resource_pattern': elem.get('rsc-pattern'),
        'resources': resources,
        'node': node,
        'score': score,
        'role': elem.get('role'),
        'rules': rules,
        'lifetime_end': lifetime_end,
        'expires_at': format_utc(end),
        'expired': expired,
    }


def describe_location(con):
    """One line for diffs and messages."""
    what = con['resource'] or con['resource_pattern'] or ','.join(con['resources'])
    text = '%s: %s %s' % (con['id'], what, con['score'])
    if con['node']:
        text += ' on %s' % con['node']
    elif con['rules']:
        parts = []
        for rule in con['rules']:
            exprs = ['%s %s%s' % (e['attribute'], e['operation'], (' ' + e['value']) if e['value'] else '')
                     for e in rule['expressions']]
            parts.append((' %s ' % rule['boolean_op']).join(exprs))
        text += ' where ' + '; '.join(parts)
    if con['role'] and con['role'] != 'Started':
        text += ' (role %s)' % con['role']
    if con['lifetime_end']:
        text += ' until %s%s' % (con['lifetime_end'], ' (expired)' if con['expired'] else '')
    return text


# ---------------------------------------------------------------------------
# Facts: crm_mon + CIB
# ---------------------------------------------------------------------------

def _meta_chain(rid, cib):
    """Meta attributes of a resource, then of its parents (group, clone)."""
    chain = []
    seen = set()
    while rid is not None and rid in cib['resources'] and rid not in seen:
        seen.add(rid)
        chain.append(cib['resources'][rid]['meta'])
        rid = cib['resources'][rid]['parent']
    return chain


def _effective_meta(rid, cib, name, default=None):
    for meta in _meta_chain(rid, cib):
        if name in meta:
            return meta[name]
    return cib['resource_defaults'].get(name, default)


def build_facts(mon, cib, pcs_version=None):
    """The facts ``pcs_info`` returns: ``parse_crm_mon()`` merged with ``parse_cib()``."""
    facts = {
        'dc': mon['dc'],
        'dc_present': mon['dc_present'],
        'quorum': mon['quorum'],
        'pacemaker_version': mon['pacemaker_version'],
        'pcs_version': pcs_version,
        'maintenance_mode': mon['maintenance_mode'],
        'cluster_options': dict(mon['cluster_options']),
        'cluster_properties': dict(cib['properties']),
        'resource_defaults': dict(cib['resource_defaults']),
        'nodes_configured': mon['nodes_configured'],
        'resources_configured': mon['resources_configured'],
        'failed_actions': list(mon['failed_actions']),
    }
    nodes = []
    for node in mon['nodes']:
        entry = dict(node)
        conf = cib['nodes'].get(node['name'], {})
        entry['attributes'] = dict(conf.get('attributes', {}))
        entry['utilization'] = dict(conf.get('utilization', {}))
        entry['transient_attributes'] = dict(cib['transient_attributes'].get(node['name'], {}))
        nodes.append(entry)
    facts['nodes'] = nodes
    resources = []
    seen = set()
    for res in mon['resources']:
        resources.append(_enrich(dict(res), cib))
        seen.add(res['id'])
    for rid, conf in sorted(cib['resources'].items()):
        if conf['kind'] == 'primitive' and rid not in seen:
            parent = conf['parent']
            group = parent if parent and cib['resources'].get(parent, {}).get('kind') == 'group' else None
            resources.append(_enrich({'id': rid, 'agent': conf['agent'], 'role': 'Stopped', 'target_role': None,
                                      'active': False, 'managed': True, 'failed': False, 'failure_ignored': False,
                                      'blocked': False, 'orphaned': False, 'pending': None, 'nodes': [],
                                      'group': group, 'clone': None, 'failures': [], 'bans': []}, cib))
    facts['resources'] = resources
    facts['groups'] = [dict(g, meta=dict(cib['resources'].get(g['id'], {}).get('meta', {}))) for g in mon['groups']]
    facts['clones'] = [dict(c, meta=dict(cib['resources'].get(c['id'], {}).get('meta', {}))) for c in mon['clones']]
    facts['location_constraints'] = list(cib['location_constraints'])
    facts['cli_bans'] = [c['id'] for c in cib['location_constraints'] if c['kind'] == CLI_BAN]
    facts['cli_prefers'] = [c['id'] for c in cib['location_constraints'] if c['kind'] == CLI_PREFER]
    facts['other_constraints'] = list(cib['other_constraints'])
    return facts


def _enrich(res, cib):
    conf = cib['resources'].get(res['id'], {})
    res['meta'] = dict(conf.get('meta', {}))
    res['utilization'] = dict(conf.get('utilization', {}))
    res['allow_migrate'] = as_bool(_effective_meta(res['id'], cib, 'allow-migrate', 'false'))
    if not res.get('agent') and conf.get('agent'):
        res['agent'] = conf['agent']
    return res


# ---------------------------------------------------------------------------
# Lookups and decisions (pure)
# ---------------------------------------------------------------------------

def node_names(state):
    return [n['name'] for n in state['nodes']]


def resource_ids(state):
    ids = [r['id'] for r in state['resources']]
    ids += [g['id'] for g in state.get('groups', [])]
    ids += [c['id'] for c in state.get('clones', [])]
    return ids


def find_node(state, name):
    for node in state['nodes']:
        if node['name'] == name:
            return node
    return None


def resource_view(state, rid):
    """``{id, kind, members, nodes, active, roles}`` of a primitive, group or clone, or None."""
    for res in state['resources']:
        if res['id'] == rid:
            return {'id': rid, 'kind': 'primitive', 'members': [rid], 'nodes': list(res['nodes']),
                    'active': res['active'], 'role': res['role'], 'managed': res['managed'],
                    'group': res['group'], 'clone': res['clone']}
    for kind, items in (('group', state.get('groups', [])), ('clone', state.get('clones', []))):
        for item in items:
            if item['id'] == rid:
                members = [r for r in state['resources'] if r['id'] in item['resources']]
                return {'id': rid, 'kind': kind, 'members': [m['id'] for m in members],
                        'nodes': sorted(set(n for m in members for n in m['nodes'])),
                        'active': any(m['active'] for m in members),
                        'role': item.get('role') or _group_role(members) if members else 'Stopped',
                        'managed': all(m['managed'] for m in members), 'group': None,
                        'clone': item.get('clone') if kind == 'group' else None}
    return None


def where(state, rid):
    view = resource_view(state, rid)
    return list(view['nodes']) if view else []


def require_resource(state, rid):
    view = resource_view(state, rid)
    if view is None:
        raise PacemakerError('resource %r is not in the cluster; known resources, groups and clones: %s'
                             % (rid, _listing(resource_ids(state))))
    return view


def require_node(state, name):
    node = find_node(state, name)
    if node is None:
        raise PacemakerError('node %r is not a node of this cluster; known nodes: %s'
                             % (name, _listing(node_names(state))))
    return node


def require_member(state, name, what):
    """The node exists, is online and clean (a ban or move target)."""
    node = require_node(state, name)
    if not node['online'] or node['unclean']:
        raise PacemakerError('node %s is %s; %s is refused while it is not a clean cluster member: bring it back '
                             'first (pcs cluster start %s) and check crm_mon'
                             % (name, 'unclean' if node['unclean'] else 'offline', what, name))
    return node


def require_quorum(state, allow_no_quorum):
    if state['quorum'] or allow_no_quorum:
        return
    if state['dc_present']:
        seen = 'the partition this node sees (DC %s) has no quorum' % state['dc']
    else:
        seen = 'this node sees no DC (no cluster leader), so the cluster has no quorum it can trust'
    raise PacemakerError('%s; refusing to change the cluster. Restore quorum first (corosync-quorumtool -s '
                         'shows the votes), or set allow_no_quorum: true if you are sure' % seen)


def constraints_of(state, rid, kind=None, node=None):
    """Location constraints of resource ``rid`` (all kinds, or only ``kind``; on ``node``)."""
    found = []
    for con in state.get('location_constraints', []):
        if con['resource'] != rid and rid not in con['resources']:
            continue
        if kind is not None and con['kind'] != kind:
            continue
        if node is not None and con['node'] != node:
            continue
        found.append(con)
    return found


def constraint(state, cid):
    for con in state.get('location_constraints', []):
        if con['id'] == cid:
            return con
    return None


def ban_id(rid, node):
    return 'cli-ban-%s-on-%s' % (rid, node)


def prefer_id(rid):
    return 'cli-prefer-%s' % rid


def is_running_role(role):
    return role in RUNNING_ROLES


def active_on(state, node):
    """Managed primitives active on ``node``: ``[(id, role), ...]``."""
    return [(r['id'], r['role']) for r in state['resources'] if r['active'] and node in r['nodes']]


def compare_placement(before, after):
    """What happened between two states: ``{moved: [{id, from, to}], stopped: [ids],
    started: [ids]}`` over the primitives (a clone losing one of several instances is
    not "stopped")."""
    old = dict((r['id'], r) for r in before['resources'])
    new = dict((r['id'], r) for r in after['resources'])
    moved, stopped, started = [], [], []
    for rid in sorted(set(old) | set(new)):
        was = old.get(rid)
        now = new.get(rid)
        was_nodes = was['nodes'] if was and was['active'] else []
        now_nodes = now['nodes'] if now and now['active'] else []
        if was_nodes and not now_nodes:
            stopped.append(rid)
        elif now_nodes and not was_nodes:
            started.append(rid)
        elif was_nodes != now_nodes:
            moved.append({'id': rid, 'from': was_nodes, 'to': now_nodes})
    return {'moved': moved, 'stopped': stopped, 'started': started}


def waited(wait, settled):
    """How a failed wait ended, for messages."""
    if settled:
        return 'the cluster settled (wait=%ss) without it' % wait
    return 'wait=%ss ran out' % wait


def describe_placement(state, rids):
    parts = []
    for rid in rids:
        view = resource_view(state, rid)
        if view is None:
            parts.append('%s is gone' % rid)
        elif view['active']:
            parts.append('%s is %s%s on %s' % (rid, view['role'], '' if view['managed'] else ' (unmanaged)',
                                               ', '.join(view['nodes'])))
        else:
            parts.append('%s is %s' % (rid, view['role']))
    return '; '.join(parts)


def location_diff(state, rid):
    lines = [describe_location(c) for c in sorted(constraints_of(state, rid), key=lambda c: c['id'])]
    return '\n'.join(lines) + ('\n' if lines else '')


def parse_transition_summary(text):
    """The ``Transition Summary`` lines of crm_simulate's text output, stripped."""
    lines = []
    inside = False
    for line in (text or '').splitlines():
        if line.strip().startswith('Transition Summary'):
            inside = True
            continue
        if inside:
            stripped = line.strip()
            if stripped.startswith('*'):
                lines.append(' '.join(stripped.lstrip('* ').split()))
            elif stripped and not line.startswith(' '):
                break
    return lines


# ---------------------------------------------------------------------------
# Argv of every command (pure)
# ---------------------------------------------------------------------------

def _checked_id(value, what):
    if not _SAFE_ID_RE.match(value or ''):
        raise PacemakerError('%s %r contains characters pacemaker ids cannot contain' % (what, value))
    return value


def argv_crm_mon(bins):
    return [bins['crm_mon'], '--one-shot', '--inactive', '--output-as=xml']


def argv_cib_query(bins):
    return [bins['cibadmin'], '--query']


def argv_ban(bins, rid, node, lifetime=None):
    argv = [bins['crm_resource'], '--ban', '--resource', rid, '--node', node]
    if lifetime:
        argv += ['--lifetime', lifetime]
    return argv


def argv_delete_location(bins, cid):
    return [bins['cibadmin'], '--delete', '--xpath',
            "/cib/configuration/constraints/rsc_location[@id='%s']" % _checked_id(cid, 'constraint id')]


def argv_create_prefer(bins, rid, node):
    elem = ET.Element('rsc_location', {'id': prefer_id(rid), 'rsc': rid, 'role': 'Started', 'node': node,
                                       'score': 'INFINITY'})
    text = ET.tostring(elem, encoding='unicode')
    return [bins['cibadmin'], '--create', '--scope', 'constraints', '--xml-text', text]


def argv_node_attribute(bins, node, name, value, lifetime='forever'):
    argv = [bins['crm_attribute'], '--node', node, '--name', name, '--lifetime', lifetime]
    return argv + (['--delete'] if value is None else ['--update', value])


def argv_property(bins, name, value):
    argv = [bins['crm_attribute'], '--type', 'crm_config', '--name', name]
    return argv + (['--delete'] if value is None else ['--update', value])


def argv_wait(bins, seconds):
    return [bins['crm_resource'], '--wait', '--timeout', '%ds' % max(1, int(math.ceil(seconds)))]


def argv_simulate(bins, source, target):
    return [bins['crm_simulate'], '--xml-file', source, '--simulate', '--save-output', target]


def argv_pcs_version(bins):
    return [bins['pcs'], '--version']


# ---------------------------------------------------------------------------
# The command seam
# ---------------------------------------------------------------------------

class PacemakerCli(object):
    """Every command of this file goes through :meth:`run`.

    ``runner(argv, env) -> (rc, stdout, stderr)``: a module passes one built on
    ``AnsibleModule.run_command`` (see :func:`module_runner`), tests a fake.
    ``env`` is ``LANG=C``/``LC_ALL=C``, plus ``CIB_file`` for dry runs on a copy.
    """

    def __init__(self, runner, binaries=None):
        self._runner = runner
        self.bins = dict((name, name) for name in TOOLS + OPTIONAL_TOOLS)
        self.bins.update(binaries or {})
        self.calls = []

    def run(self, argv, cib_file=None, check=True, hint=''):
        argv = [str(a) for a in argv]
        env = dict(C_ENV)
        if cib_file:
            env['CIB_file'] = cib_file
        self.calls.append((argv, cib_file))
        rc, out, err = self._runner(argv, env)
        if check and rc != 0:
            raise CommandError(argv, rc, out, err, hint)
        return rc, out or '', err or ''

    def has(self, tool):
        return bool(self.bins.get(tool))


def module_runner(module):
    """A runner for :class:`PacemakerCli` on top of ``AnsibleModule.run_command``."""
    def run(argv, env):
        return module.run_command(argv, environ_update=env, expand_user_and_vars=False, check_rc=False)
    return run


def module_cli(module):
    """A :class:`PacemakerCli` with the tools found on the host (``PacemakerError`` when
    crm_mon or cibadmin is missing)."""
    bins = {}
    for tool in TOOLS + OPTIONAL_TOOLS:
        bins[tool] = module.get_bin_path(tool)
    missing = [t for t in ('crm_mon', 'cibadmin') if not bins[t]]
    if missing:
        raise PacemakerError('%s not found on this host: run the task on a pacemaker cluster node '
                             '(the pacemaker command line tools, e.g. package pacemaker-cli-utils)'
                             % ' and '.join(missing))
    return PacemakerCli(module_runner(module), bins)


class Clock(object):
    def monotonic(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(seconds)

    def now(self):
        return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------------------
# The HA-control interface and its pacemaker backend
# ---------------------------------------------------------------------------

class HaControl(abc.ABC):
    """What an HA backend offers (the PkgMgr shape: one small class per platform).

    Every change method returns a result dictionary (see docs/pacemaker.md) and raises
    :class:`PacemakerError` on a refusal (nothing changed) or a failure (``details``
    says what was done). With ``check_mode`` it predicts and changes nothing.
    """

    @abc.abstractmethod
    def facts(self):
        """The cluster as data (nodes, resources, constraints, quorum)."""

    @abc.abstractmethod
    def ban(self, resource, node, lifetime=None, wait=60, allow_stopped=False, check_mode=False):
        """Keep ``resource`` off ``node``."""

    @abc.abstractmethod
    def clear_ban(self, resource, node=None, wait=60, check_mode=False):
        """Remove the cli-ban constraints of ``resource`` (on ``node``), nothing else."""

    @abc.abstractmethod
    def move(self, resource, node, wait=60, allow_stopped=False, check_mode=False):
        """Move ``resource`` to ``node`` and leave no constraint behind."""

    @abc.abstractmethod
    def set_node_standby(self, node, enabled, wait=300, allow_stopped=False, check_mode=False):
        """Node standby on/off, evacuating its resources."""

    @abc.abstractmethod
    def set_node_maintenance(self, node, enabled, wait=60, check_mode=False):
        """Node maintenance on/off (its resources unmanaged, left where they are)."""

    @abc.abstractmethod
    def set_cluster_maintenance(self, enabled, wait=60, check_mode=False):
        """The cluster's maintenance-mode property."""


def _new_result():
    return {'changed': False, 'commands': [], 'planned_commands': [], 'transition_summary': [],
            'settled': None, 'moved_resources': [], 'stopped_resources': [], 'started_resources': [],
            'journal_entries': [], 'warnings': []}


class Pacemaker(HaControl):
    """HA control through pacemaker's command line tools (see the module docstring)."""

    def __init__(self, cli, clock=None, allow_no_quorum=False, pause=POLL_PAUSE):
        self.cli = cli
        self.clock = clock or Clock()
        self.allow_no_quorum = allow_no_quorum
        self.pause = pause
        self._cib_text = None

    # -- reading ------------------------------------------------------------
    def read_mon(self, cib_file=None):
        rc, out, err = self.cli.run(argv_crm_mon(self.cli.bins), cib_file=cib_file, check=False)
        if rc != 0:
            code, message = crm_mon_status(out)
            raise PacemakerError('crm_mon could not read the cluster on this host (rc %d: %s); run the task on a '
                                 'node where pacemaker runs (pcs cluster start, systemctl status pacemaker)'
                                 % (rc, message or _first_lines(err or out, 3) or 'no output'))
        return parse_crm_mon(out)

    def read(self):
        """Facts of the live cluster; keeps the CIB text for dry runs."""
        mon = self.read_mon()
        rc, out, err = self.cli.run(argv_cib_query(self.cli.bins))
        self._cib_text = out
        return build_facts(mon, parse_cib(out, self.clock.now()))

    def pcs_version(self):
        if not self.cli.has('pcs'):
            return None
        rc, out, err = self.cli.run(argv_pcs_version(self.cli.bins), check=False)
        if rc != 0:
            return None
        lines = out.strip().splitlines()
        return lines[0].strip() if lines else None

    def facts(self):
        facts = self.read()
        facts['pcs_version'] = self.pcs_version()
        return facts

    # -- dry run ------------------------------------------------------------
    def simulate(self, mutations):
        """Apply ``mutations`` (argv lists) to a private copy of the CIB read last, let
        crm_simulate run the transition, and return ``(facts_after, summary_lines)``."""
        if not self.cli.has('crm_simulate'):
            raise PacemakerError('crm_simulate not found on this host; the dry run (and check mode) needs it')
        tmpdir = tempfile.mkdtemp(prefix='clusterops-pcmk-')
        try:
            source = os.path.join(tmpdir, 'cib.xml')
            target = os.path.join(tmpdir, 'simulated.xml')
            fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'w') as handle:
                handle.write(self._cib_text)
            for argv in mutations:
                self.cli.run(argv, cib_file=source)
            rc, out, err = self.cli.run(argv_simulate(self.cli.bins, source, target))
            mon = self.read_mon(cib_file=target)
            with open(target) as handle:
                cib = parse_cib(handle.read(), self.clock.now())
            return build_facts(mon, cib), parse_transition_summary(out)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    # -- waiting ------------------------------------------------------------
    def settle(self, goal, wait):
        """Wait until the cluster settled and ``goal(state)`` holds, or ``wait`` seconds
        passed. Returns ``(state, settled, goal_met)``; ``state`` is crm_mon parsed."""
        deadline = self.clock.monotonic() + wait
        settled_rounds = 0
        while True:
            remaining = deadline - self.clock.monotonic()
            settled = False
            if remaining > 0:
                rc, out, err = self.cli.run(argv_wait(self.cli.bins, remaining), check=False)
                if rc not in (0, RC_TIMEOUT):
                    raise CommandError(argv_wait(self.cli.bins, remaining), rc, out, err)
                settled = rc == 0
            state = self.read_mon()
            met = bool(goal(state))
            if settled and met:
                return state, True, True
            if settled:
                settled_rounds += 1
                if settled_rounds >= SETTLED_ROUNDS:
                    return state, True, False
            if self.clock.monotonic() >= deadline:
                return state, settled, met
            self.clock.sleep(self.pause)

    # -- helpers ------------------------------------------------------------
    def _begin(self):
        facts = self.read()
        require_quorum(facts, self.allow_no_quorum)
        return facts

    def _run_live(self, result, mutations):
        for argv in mutations:
            result['changed'] = True
            self.cli.run(argv)
            result['commands'].append(display(argv))

    @staticmethod
    def _placement(result, before, after):
        change = compare_placement(before, after)
        result['moved_resources'] = change['moved']
        result['stopped_resources'] = change['stopped']
        result['started_resources'] = change['started']
        return change

    def _dry_run(self, result, before, mutations, allow_stopped, what):
        predicted, summary = self.simulate(mutations)
        result['transition_summary'] = summary
        change = compare_placement(before, predicted)
        result['would_stop'] = change['stopped']
        if change['stopped'] and not allow_stopped:
            raise PacemakerError(
                '%s would stop %s (pacemaker\'s dry run on a copy of the CIB: %s); nothing was changed. Make room '
                'or free capacity first, or set allow_stopped: true to accept it'
                % (what, _listing(change['stopped']), '; '.join(summary) or 'no summary'), dict(result))
        return predicted

    # -- ban ----------------------------------------------------------------
    def ban(self, resource, node, lifetime=None, wait=60, allow_stopped=False, check_mode=False):
        facts = self._begin()
        require_resource(facts, resource)
        require_member(facts, node, 'a ban on it')
        if lifetime is not None and parse_duration(lifetime) is None:
            raise PacemakerError('lifetime %r is not an ISO 8601 duration such as PT15M, PT2H or P1D' % (lifetime,))
        cid = ban_id(resource, node)
        result = _new_result()
        result.update({'constraints_created': [], 'constraints_removed': [], 'constraints_pre_existing': [],
                       'resource_nodes_before': where(facts, resource), 'lifetime_end': None})
        diff_before = location_diff(facts, resource)
        existing = constraint(facts, cid)
        if existing is not None and existing['expired'] is not True:
            result['constraints_pre_existing'] = [cid]
            result['resource_nodes'] = where(facts, resource)
            result['lifetime_end'] = existing['lifetime_end']
            if lifetime and not existing['lifetime_end']:
                result['warnings'].append('%s already exists without a lifetime; it is left as it is (not ours)'
                                          % cid)
            result['diff'] = {'before': diff_before, 'after': diff_before}
            return result
        mutations = []
        if existing is not None:
            mutations.append(argv_delete_location(self.cli.bins, cid))
            result['constraints_removed'] = [cid]
        mutations.append(argv_ban(self.cli.bins, resource, node, lifetime))
        result['planned_commands'] = [display(a) for a in mutations]
        predicted = self._dry_run(result, facts, mutations, allow_stopped,
                                  'banning %s from %s' % (resource, node))
        result['constraints_created'] = [cid]
        result['journal_entries'] = [{'kind': 'ban', 'id': cid, 'node': node, 'resource': resource}]
        if check_mode:
            result['changed'] = True
            self._placement(result, facts, predicted)
            result['resource_nodes'] = where(predicted, resource)
            made = constraint(predicted, cid)
            result['lifetime_end'] = made['lifetime_end'] if made else None
            result['diff'] = {'before': diff_before, 'after': location_diff(predicted, resource)}
            return result
        self._run_live(result, mutations)
        settled = met = None
        if wait > 0:
            state, settled, met = self.settle(lambda s: node not in where(s, resource), wait)
        after = self.read()
        result['settled'] = settled
        self._placement(result, facts, after)
        result['resource_nodes'] = where(after, resource)
        made = constraint(after, cid)
        result['lifetime_end'] = made['lifetime_end'] if made else None
        result['diff'] = {'before': diff_before, 'after': location_diff(after, resource)}
        if met is False:
            raise PacemakerError('%s did not leave %s - %s: %s. The ban %s stays in place (pcs_ban state=absent '
                                 'removes it)' % (resource, node, waited(wait, settled),
                                                  describe_placement(after, [resource]), cid), result)
        self._check_stopped(result, allow_stopped, 'banning %s from %s' % (resource, node),
                            'the ban %s stays in place (pcs_ban state=absent removes it)' % cid)
        if settled is False:
            result['warnings'].append('the cluster had not settled within wait=%ss' % wait)
        return result

    def _check_stopped(self, result, allow_stopped, what, left):
        if result['stopped_resources'] and not allow_stopped:
            raise PacemakerError('%s stopped %s instead of moving them (the dry run had not predicted it); %s'
                                 % (what, _listing(result['stopped_resources']), left), result)

    def clear_ban(self, resource, node=None, wait=60, check_mode=False):
        facts = self._begin()
        targets = constraints_of(facts, resource, kind=CLI_BAN, node=node)
        if not targets:
            require_resource(facts, resource)
            if node is not None:
                require_node(facts, node)
        result = _new_result()
        result.update({'constraints_created': [], 'constraints_removed': [c['id'] for c in targets],
                       'constraints_pre_existing': [], 'resource_nodes_before': where(facts, resource),
                       'lifetime_end': None})
        diff_before = location_diff(facts, resource)
        if not targets:
            result['resource_nodes'] = where(facts, resource)
            result['diff'] = {'before': diff_before, 'after': diff_before}
            return result
        mutations = [argv_delete_location(self.cli.bins, c['id']) for c in targets]
        result['planned_commands'] = [display(a) for a in mutations]
        if check_mode:
            predicted, summary = self.simulate(mutations)
            result['changed'] = True
            result['transition_summary'] = summary
            self._placement(result, facts, predicted)
            result['resource_nodes'] = where(predicted, resource)
            result['diff'] = {'before': diff_before, 'after': location_diff(predicted, resource)}
            return result
        self._run_live(result, mutations)
        if wait > 0:
            state, settled, met = self.settle(_always, wait)
            result['settled'] = settled
        after = self.read()
        self._placement(result, facts, after)
        result['resource_nodes'] = where(after, resource)
        result['diff'] = {'before': diff_before, 'after': location_diff(after, resource)}
        return result

    # -- move ---------------------------------------------------------------
    def move(self, resource, node, wait=60, allow_stopped=False, check_mode=False):
        facts = self._begin()
        view = require_resource(facts, resource)
        target = require_member(facts, node, 'a move to it')
        if view['kind'] == 'clone' or view['clone']:
            raise PacemakerError('%s is a clone (or inside one); moving clone instances is not supported: ban the '
                                 'instance from the node it should leave instead (pcs_ban)' % resource)
        result = _new_result()
        result.update({'resource_nodes_before': list(view['nodes']), 'prefer_created': None, 'prefer_removed': None})
        diff_before = location_diff(facts, resource)
        if view['active'] and view['nodes'] == [node]:
            result['resource_nodes'] = [node]
            result['diff'] = {'before': diff_before, 'after': diff_before}
            return result
        for flag in ('standby', 'maintenance'):
            if target[flag]:
                raise PacemakerError('node %s is in %s; nothing can be moved to it. Take it out first '
                                     '(clusterops.upgrade.maintenance_mode state=disabled)' % (node, flag))
        pid = prefer_id(resource)
        if constraint(facts, pid) is not None:
            raise PacemakerError('%s already exists (%s): an operator or an earlier move left it, so it is not ours '
                                 'and pcs_move will neither replace nor remove it. Delete it first if it is stale '
                                 '(pcs constraint delete %s)'
                                 % (pid, describe_location(constraint(facts, pid)), pid))
        blocking = [c for c in constraints_of(facts, resource, kind=CLI_BAN, node=node) if c['expired'] is not True]
        if blocking:
            raise PacemakerError('%s forbids %s on %s; remove that ban first (clusterops.upgrade.pcs_ban '
                                 'state=absent) if the move is meant' % (blocking[0]['id'], resource, node))
        create = argv_create_prefer(self.cli.bins, resource, node)
        remove = argv_delete_location(self.cli.bins, pid)
        result['planned_commands'] = [display(create), display(remove)]
        predicted = self._dry_run(result, facts, [create], allow_stopped, 'moving %s to %s' % (resource, node))
        landed = resource_view(predicted, resource)
        if not (landed and landed['active'] and landed['nodes'] == [node]):
            raise PacemakerError('pacemaker\'s dry run does not put %s on %s (%s; transition: %s); nothing was '
                                 'changed. Check the constraints and utilization that keep it away (pcs_info)'
                                 % (resource, node, describe_placement(predicted, [resource]),
                                    '; '.join(result['transition_summary']) or 'none'), result)
        result['prefer_created'] = pid
        result['prefer_removed'] = pid
        if check_mode:
            result['changed'] = True
            self._placement(result, facts, predicted)
            result['resource_nodes'] = [node]
            result['diff'] = {'before': diff_before, 'after': diff_before}
            return result
        goal = _is_only_on(resource, node)
        met = None
        settled = None
        start = self.clock.monotonic()
        self._run_live(result, [create])
        try:
            if wait > 0:
                state, settled, met = self.settle(goal, wait)
        finally:
            self._run_live(result, [remove])
        if wait > 0:
            remaining = max(wait - (self.clock.monotonic() - start), 5)
            state, settled_after, still = self.settle(goal, remaining)
            if met:
                settled, met = settled_after, still
        after = self.read()
        result['settled'] = settled
        self._placement(result, facts, after)
        result['resource_nodes'] = where(after, resource)
        result['diff'] = {'before': diff_before, 'after': location_diff(after, resource)}
        if met is False:
            raise PacemakerError('%s is not running on %s - %s: %s. The temporary %s was removed again'
                                 % (resource, node, waited(wait, settled), describe_placement(after, [resource]),
                                    pid), result)
        self._check_stopped(result, allow_stopped, 'moving %s to %s' % (resource, node),
                            'no constraint was left behind')
        return result

    # -- node standby -------------------------------------------------------
    def _node_attr_mutations(self, facts, node, name, enabled):
        """Argv lists that set (``on``, permanent) or delete a node attribute."""
        if enabled:
            return [argv_node_attribute(self.cli.bins, node, name, 'on')]
        mutations = []
        entry = find_node(facts, node)
        if name in entry['attributes']:
            mutations.append(argv_node_attribute(self.cli.bins, node, name, None))
        if name in entry['transient_attributes']:
            mutations.append(argv_node_attribute(self.cli.bins, node, name, None, lifetime='reboot'))
        if not mutations:
            # crm_mon says it is on but the CIB read a moment earlier has no such attribute:
            # delete the permanent one, as pcs does
            mutations.append(argv_node_attribute(self.cli.bins, node, name, None))
        return mutations

    def set_node_standby(self, node, enabled, wait=300, allow_stopped=False, check_mode=False):
        facts = self._begin()
        entry = require_node(facts, node)
        result = _new_result()
        result.update({'node': node, 'enabled_before': entry['standby'], 'enabled': entry['standby'],
                       'remaining_resources': [], 'would_stop': []})
        diff_before = 'node %s standby: %s\n' % (node, 'on' if entry['standby'] else 'off')
        result['diff'] = {'before': diff_before, 'after': diff_before}
        if entry['standby'] == enabled:
            result['remaining_resources'] = _remaining(facts, node) if enabled else []
            return result
        mutations = self._node_attr_mutations(facts, node, 'standby', enabled)
        result['planned_commands'] = [display(a) for a in mutations]
        what = 'putting %s in standby' % node if enabled else 'taking %s out of standby' % node
        if enabled:
            predicted = self._dry_run(result, facts, mutations, allow_stopped, what)
            result['journal_entries'] = [{'kind': 'standby', 'id': 'pacemaker_node:%s' % node, 'node': node,
                                          'details': {'backend': 'pacemaker_node'}}]
        elif check_mode:
            predicted, result['transition_summary'] = self.simulate(mutations)
        result['diff']['after'] = 'node %s standby: %s\n' % (node, 'on' if enabled else 'off')
        if check_mode:
            result['changed'] = True
            result['enabled'] = enabled
            self._placement(result, facts, predicted)
            result['remaining_resources'] = _remaining(predicted, node) if enabled else []
            return result
        self._run_live(result, mutations)
        goal = _has_left(node) if enabled else _always
        settled = met = None
        if wait > 0:
            state, settled, met = self.settle(goal, wait)
        after = self.read()
        result['settled'] = settled
        result['enabled'] = find_node(after, node)['standby']
        self._placement(result, facts, after)
        result['remaining_resources'] = _remaining(after, node) if enabled else []
        if met is False:
            still = [r['id'] for r in result['remaining_resources']]
            raise PacemakerError('%s: resources still on %s - %s: %s. The node stays in standby (state=disabled '
                                 'takes it out)' % (what, node, waited(wait, settled), describe_placement(after, still)),
                                 result)
        if enabled:
            self._check_stopped(result, allow_stopped, what,
                                'the node stays in standby (state=disabled takes it out and lets them start again)')
        if settled is False:
            result['warnings'].append('the cluster had not settled within wait=%ss' % wait)
        return result

    # -- node maintenance ---------------------------------------------------
    def set_node_maintenance(self, node, enabled, wait=60, check_mode=False):
        facts = self._begin()
        entry = require_node(facts, node)
        result = _new_result()
        result.update({'node': node, 'enabled_before': entry['maintenance'], 'enabled': entry['maintenance'],
                       'remaining_resources': [], 'unmanaged_resources': []})
        diff_before = 'node %s maintenance: %s\n' % (node, 'on' if entry['maintenance'] else 'off')
        result['diff'] = {'before': diff_before, 'after': diff_before}
        if entry['maintenance'] == enabled:
            result['unmanaged_resources'] = [rid for rid, role in active_on(facts, node)] if enabled else []
            return result
        mutations = self._node_attr_mutations(facts, node, 'maintenance', enabled)
        result['planned_commands'] = [display(a) for a in mutations]
        result['diff']['after'] = 'node %s maintenance: %s\n' % (node, 'on' if enabled else 'off')
        if enabled:
            result['journal_entries'] = [{'kind': 'maintenance', 'id': 'pacemaker_node_maintenance:%s' % node,
                                          'node': node, 'details': {'backend': 'pacemaker_node_maintenance'}}]
        result['unmanaged_resources'] = [rid for rid, role in active_on(facts, node)] if enabled else []
        if check_mode:
            result['changed'] = True
            result['enabled'] = enabled
            return result
        self._run_live(result, mutations)
        settled = None
        if wait > 0:
            state, settled, met = self.settle(_always, wait)
        after = self.read()
        result['settled'] = settled
        result['enabled'] = find_node(after, node)['maintenance']
        self._placement(result, facts, after)
        return result

    # -- cluster maintenance-mode ------------------------------------------
    def set_cluster_maintenance(self, enabled, wait=60, check_mode=False):
        facts = self._begin()
        current = facts['maintenance_mode']
        result = _new_result()
        result.update({'node': None, 'enabled_before': current, 'enabled': current})
        diff_before = _property_line(facts['cluster_properties'], 'maintenance-mode')
        result['diff'] = {'before': diff_before, 'after': diff_before}
        if current == enabled:
            return result
        if enabled:
            mutations = [argv_property(self.cli.bins, 'maintenance-mode', 'true')]
        else:
            # back to the default (false) rather than an explicit false: the CIB as before the change
            mutations = [argv_property(self.cli.bins, 'maintenance-mode', None)]
        result['planned_commands'] = [display(a) for a in mutations]
        result['diff']['after'] = _property_line({'maintenance-mode': 'true'} if enabled else {}, 'maintenance-mode')
        if enabled:
            result['journal_entries'] = [{'kind': 'maintenance', 'id': 'pacemaker_cluster:maintenance-mode',
                                          'details': {'backend': 'pacemaker_cluster'}}]
        if check_mode:
            result['changed'] = True
            result['enabled'] = enabled
            return result
        self._run_live(result, mutations)
        settled = None
        if wait > 0:
            state, settled, met = self.settle(lambda s: s['maintenance_mode'] == enabled, wait)
        after = self.read()
        result['settled'] = settled
        result['enabled'] = after['maintenance_mode']
        self._placement(result, facts, after)
        return result


def _is_only_on(resource, node):
    def goal(state):
        view = resource_view(state, resource)
        return bool(view and view['active'] and view['nodes'] == [node])
    return goal


def _property_line(properties, name):
    if name in properties:
        return '%s=%s\n' % (name, properties[name])
    return '%s not set (default false)\n' % name


def _always(state):
    return True


def _has_left(node):
    def goal(state):
        return not [r for r in state['resources'] if r['active'] and r['managed'] and node in r['nodes']]
    return goal


def _remaining(state, node):
    return [{'id': r['id'], 'role': r['role'], 'managed': r['managed']}
            for r in state['resources'] if r['active'] and node in r['nodes']]


# ---------------------------------------------------------------------------
# Module glue (shared by pcs_ban, pcs_move, maintenance_mode)
# ---------------------------------------------------------------------------

def exit_with(module, result):
    """Warnings to Ansible's warnings, the diff only with --diff, the rest returned."""
    result = dict(result)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    diff = result.pop('diff', None)
    if module._diff and diff is not None:
        result['diff'] = diff
    module.exit_json(**result)


def fail_with(module, exc):
    details = dict(exc.details)
    for warning in details.pop('warnings', []):
        module.warn(warning)
    diff = details.pop('diff', None)
    if module._diff and diff is not None:
        details['diff'] = diff
    details.pop('msg', None)
    module.fail_json(msg=str(exc), **details)
