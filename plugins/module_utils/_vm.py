# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop and start VMs that are pacemaker resources (ICS "auto shutdown", done as data).

A VM is what the planner calls one: a primitive resource with a utilization (its
memory demand). Stopping sets the resource's ``target-role`` meta attribute to
``Stopped`` (what ``pcs resource disable`` does); starting deletes it again (``pcs
resource enable``), so the configuration is as before. Every command goes through
``_pacemaker.PacemakerCli`` (argv, ``LANG=C``); the state is read with
``_pacemaker.Pacemaker.read`` (crm_mon + cibadmin).

Only VMs this call changes are reported, with ready-made journal entries
(``kind: stopped_vm``), so the upgrade restarts exactly the VMs it stopped: a VM an
operator stopped before (target-role already Stopped) is never listed.
"""

from __future__ import annotations

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker

TARGET_ROLE = 'target-role'


def is_vm(res):
    return bool(res.get('utilization')) and res.get('clone') is None


def is_stopped_by_config(res):
    return (res.get('target_role') or res.get('meta', {}).get(TARGET_ROLE) or '').lower() == 'stopped'


def running_vms(facts, node=None):
    """VM ids running (on ``node``), sorted."""
    return sorted(r['id'] for r in facts['resources']
                  if is_vm(r) and _pacemaker.is_running_role(r['role']) and r['active']
                  and (node is None or node in r['nodes']))


def argv_stop(bins, rid):
    return [bins['crm_resource'], '--resource', rid, '--meta', '--set-parameter', TARGET_ROLE,
            '--parameter-value', 'Stopped']


def argv_start(bins, rid):
    return [bins['crm_resource'], '--resource', rid, '--meta', '--delete-parameter', TARGET_ROLE]


def decide(facts, state, resources=None, node=None):
    """``(targets, skipped)``: the VMs to change and the ones already in the wanted state.

    ``state`` is ``stopped`` or ``started``. ``resources`` names the VMs (each must exist);
    without it, ``node`` selects every VM running there (``stopped`` only)."""
    by_id = dict((r['id'], r) for r in facts['resources'])
    if resources is None:
        if state != 'stopped' or not node:
            raise _pacemaker.PacemakerError('name the VMs (resources) to start; only state=stopped can select '
                                            'the VMs running on a node')
        _pacemaker.require_node(facts, node)
        names = running_vms(facts, node)
    else:
        unknown = [n for n in resources if n not in by_id]
        if unknown:
            raise _pacemaker.PacemakerError('%s: not a resource of this cluster; known VMs: %s' % (
                ', '.join(unknown), ', '.join(sorted(r['id'] for r in facts['resources'] if is_vm(r)))))
        names = list(resources)
    targets, skipped = [], []
    for name in names:
        res = by_id[name]
        if state == 'stopped':
            if is_stopped_by_config(res):
                skipped.append(name)
            else:
                targets.append(name)
        else:
            if is_stopped_by_config(res):
                targets.append(name)
            else:
                skipped.append(name)
    return targets, skipped


def set_power(backend, state, resources=None, node=None, wait=120, check_mode=False):
    """Stop or start VMs and wait until they are. Returns the result data."""
    cli = backend.cli
    facts = backend.read()
    targets, skipped = decide(facts, state, resources, node)
    by_id = dict((r['id'], r) for r in facts['resources'])
    argvs = [argv_stop(cli.bins, t) if state == 'stopped' else argv_start(cli.bins, t) for t in targets]
    result = {
        'changed': bool(targets),
        'vms': targets,
        'unchanged': skipped,
        'running_vms': running_vms(facts, node),
        'planned_commands': [list(a) for a in argvs],
        'commands': [],
        'placement': {},
        'journal_entries': [],
    }
    if state == 'stopped':
        result['journal_entries'] = [
            {'kind': 'stopped_vm', 'id': t, 'resource': t, 'node': (by_id[t]['nodes'] or [node or ''])[0] or None,
             'details': {'target_role_before': by_id[t]['meta'].get(TARGET_ROLE)}}
            for t in targets]
        for entry in result['journal_entries']:
            if entry['node'] is None:
                del entry['node']
    if check_mode or not targets:
        return result
    for argv in argvs:
        cli.run(argv)
        result['commands'].append(list(argv))
    deadline = backend.clock.monotonic() + wait
    while True:
        left = max(1, deadline - backend.clock.monotonic())
        cli.run(_pacemaker.argv_wait(cli.bins, left), check=False)
        now = backend.read()
        now_by_id = dict((r['id'], r) for r in now['resources'])
        if state == 'stopped':
            pending = [t for t in targets if now_by_id[t]['active']]
        else:
            pending = [t for t in targets if not (now_by_id[t]['active']
                                                  and _pacemaker.is_running_role(now_by_id[t]['role']))]
        result['placement'] = dict((t, list(now_by_id[t]['nodes'])) for t in targets)
        if not pending:
            return result
        if backend.clock.monotonic() >= deadline:
            raise _pacemaker.PacemakerError(
                '%s did not %s within wait=%ds: %s' % (
                    ', '.join(pending), 'stop' if state == 'stopped' else 'start', wait,
                    '; '.join('%s is %s' % (t, now_by_id[t]['role']) for t in pending)),
                details=result)
        backend.clock.sleep(backend.pause)
