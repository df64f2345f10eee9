# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Soak: wait until the cluster is healthy, then hold it under observation and abort on regression.

TECS upgrades the standby controller, switches over, then waits 20 minutes checking that
everything still works before it touches the other controller. :func:`soak` does that
as data: it probes until every expectation holds (or ``timeout`` runs out), then keeps
probing every ``interval`` seconds for ``hold`` seconds and stops at the first probe that
finds a problem. ``hold: 0`` makes it a settle gate (wait until healthy, no hold).

A probe is one ``crm_mon --one-shot --inactive --output-as=xml`` (through
``_pacemaker.PacemakerCli``, the pacemaker command seam: argv, ``LANG=C``), parsed with
``_pacemaker.parse_crm_mon``, plus one HTTP GET per URL through the ``http`` seam of
:func:`soak` (``http(url, timeout) -> (status or None, error text)``). What is expected
is plain data (:func:`evaluate`), so the decisions are testable without a cluster.
"""

from __future__ import annotations

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker

MAX_PROBES_KEPT = 20


class SoakError(Exception):
    """The cluster did not become healthy, or regressed while held. ``result`` says what was seen."""

    def __init__(self, msg, result):
        super(SoakError, self).__init__(msg)
        self.result = result


def _running(res):
    return res['active'] and res['role'] in _pacemaker.RUNNING_ROLES


def evaluate(state, expect):
    """Problems (sorted texts) of a parsed crm_mon state against the expectations.

    ``expect`` keys: ``resource`` (id or ''), ``resource_node`` (node or ''), ``nodes``
    (names that must be online members; None = every node crm_mon lists), ``failed_actions``
    (True = any failed action is a problem), ``all_started`` (True = every managed resource
    whose target role is not Stopped must run), ``quorum`` (True = the partition must have quorum).
    """
    problems = []
    if expect.get('quorum', True) and not state['quorum']:
        problems.append('no quorum (DC %s)' % (state['dc'] or 'none'))
    by_name = dict((n['name'], n) for n in state['nodes'])
    wanted = expect.get('nodes')
    for name in (sorted(by_name) if wanted is None else wanted):
        node = by_name.get(name)
        if node is None:
            problems.append('node %s is not a member of the cluster' % name)
        elif not node['online']:
            problems.append('node %s is offline' % name)
    resources = dict((r['id'], r) for r in state['resources'])
    rid = expect.get('resource')
    if rid:
        res = resources.get(rid)
        if res is None:
            problems.append('resource %s is not in the cluster' % rid)
        elif not _running(res):
            problems.append('%s is %s' % (rid, res['role']))
        elif expect.get('resource_node') and expect['resource_node'] not in res['nodes']:
            problems.append('%s runs on %s, not on %s' % (rid, ', '.join(res['nodes']), expect['resource_node']))
    if expect.get('all_started', True):
        for res in state['resources']:
            if rid and res['id'] == rid:
                continue
            if (res.get('target_role') or '').lower() == 'stopped' or not res['managed']:
                continue
            if not _running(res):
                problems.append('%s is %s' % (res['id'], res['role']))
    if expect.get('failed_actions', True):
        for failure in state['failed_actions']:
            problems.append('failed action: %s %s on %s (%s%s)' % (
                failure['resource'], failure['task'], failure['node'], failure['exitstatus'] or failure['status'],
                (': ' + failure['exitreason']) if failure['exitreason'] else ''))
    return sorted(problems)


def probe(cli, http, expect, urls, url_timeout):
    """One round: ``(problems, where)``; ``where`` is {resource: [nodes]} of the watched resource."""
    rc, out, err = cli.run(_pacemaker.argv_crm_mon(cli.bins), check=False)
    where = {}
    if rc != 0 and not out.strip().startswith('<'):
        problems = ['crm_mon failed (rc %d): %s' % (rc, (err or out).strip()[:300])]
    else:
        try:
            state = _pacemaker.parse_crm_mon(out)
        except _pacemaker.PacemakerError as exc:
            problems = ['crm_mon: %s' % exc]
        else:
            problems = evaluate(state, expect)
            rid = expect.get('resource')
            if rid:
                res = next((r for r in state['resources'] if r['id'] == rid), None)
                where = {rid: list(res['nodes']) if res else []}
    for url in urls:
        status, error = http(url, url_timeout)
        if status is None:
            problems.append('%s did not answer: %s' % (url, error))
        elif not 200 <= status < 300:
            problems.append('%s answered HTTP %d' % (url, status))
    return problems, where


def soak(cli, http, clock, expect, urls=(), timeout=300, hold=0, interval=5, url_timeout=5):
    """Wait until healthy (at most ``timeout`` s), then stay healthy for ``hold`` s.

    Returns ``{waited, held, rounds, probes, where}``; raises SoakError when the cluster
    is not healthy in time or a probe during the hold finds a problem.
    """
    start = clock.monotonic()
    probes = []
    result = {'waited': 0.0, 'held': 0.0, 'rounds': 0, 'probes': probes, 'where': {}}

    def record(problems, where, phase):
        result['rounds'] += 1
        result['where'] = where
        probes.append({'at': round(clock.monotonic() - start, 1), 'phase': phase, 'problems': problems})
        del probes[:-MAX_PROBES_KEPT]

    while True:
        problems, where = probe(cli, http, expect, urls, url_timeout)
        record(problems, where, 'wait')
        elapsed = clock.monotonic() - start
        if not problems:
            break
        if elapsed >= timeout:
            result['waited'] = round(elapsed, 1)
            raise SoakError('the cluster did not become healthy within %ds: %s' % (timeout, '; '.join(problems)),
                            result)
        clock.sleep(min(interval, max(0.0, timeout - elapsed)) or interval)
    healthy_at = clock.monotonic()
    result['waited'] = round(healthy_at - start, 1)
    while True:
        held = clock.monotonic() - healthy_at
        if held >= hold:
            break
        clock.sleep(min(interval, hold - held))
        problems, where = probe(cli, http, expect, urls, url_timeout)
        record(problems, where, 'hold')
        if problems:
            result['held'] = round(clock.monotonic() - healthy_at, 1)
            raise SoakError('regression after %.0fs of the %ds soak, aborting: %s' % (
                result['held'], hold, '; '.join(problems)), result)
    result['held'] = round(clock.monotonic() - healthy_at, 1)
    return result
