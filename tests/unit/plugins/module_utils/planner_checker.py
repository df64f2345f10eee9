# -*- coding: utf-8 -*-
# Copyright: (c) 2026, clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An independent checker for upgrade plans.

Written from the specification (docs/planner.md), not from the planner: it shares
no code with plugins/module_utils/_planner.py. It replays a plan move by move on
its own model of the cluster and raises PlanViolation at the first broken rule.
"""

from __future__ import annotations

import math
from decimal import Decimal


class PlanViolation(AssertionError):
    pass


def _fail(message, *args):
    raise PlanViolation(message % args)


def usable_capacity(capacity, headroom):
    """Spec: floor(capacity * (100 - headroom) / 100)."""
    return int(math.floor(Decimal(capacity) * (Decimal(100) - Decimal(str(headroom))) / Decimal(100)))


def check_plan(hosts, vms, plan, evacuation='migrate', headroom=0, max_parallel=None, aio_first=True,
               order=None):
    """Replay `plan` against the cluster described by `hosts` and `vms`; return replay statistics."""
    info = {}
    for h in hosts:
        info[h['name']] = h
    resources = sorted(hosts[0]['capacity']) if hosts else ['memory']
    usable = {}
    for name, h in info.items():
        usable[name] = {}
        for res in resources:
            usable[name][res] = usable_capacity(int(h['capacity'][res]), headroom)
    group = {}
    for name, h in info.items():
        group[name] = h.get('storage_group') or 'default'
    demand = {}
    where = {}
    pinned = {}
    migratable = {}
    for vm in vms:
        demand[vm['name']] = {}
        for res in resources:
            demand[vm['name']][res] = int((vm.get('demand') or {}).get(res, 0))
        where[vm['name']] = vm['host']
        pinned[vm['name']] = bool(vm.get('pinned', False))
        migratable[vm['name']] = bool(vm.get('migratable', True))
    home_group = {}
    for vm, host in where.items():
        home_group[vm] = group[host]

    running = set(where)
    initial = {}
    for name in info:
        initial[name] = dict((res, 0) for res in resources)
    for vm, host in where.items():
        for res in resources:
            initial[host][res] += demand[vm][res]

    # ---- every pending host exactly once, nothing else
    pending = set(n for n, h in info.items() if not h.get('upgraded', False))
    batches = plan['batches']
    details = plan['batch_details']
    if len(batches) != len(details):
        _fail('%d batches but %d batch_details', len(batches), len(details))
    seen = {}
    for number, batch in enumerate(batches):
        if details[number]['hosts'] != batch:
            _fail('batch %d: batch_details hosts %r differ from batches %r', number + 1,
                  details[number]['hosts'], batch)
        if not batch:
            _fail('batch %d is empty', number + 1)
        for host in batch:
            if host not in info:
                _fail('batch %d names unknown host %s', number + 1, host)
            if host not in pending:
                _fail('batch %d schedules host %s, which is already upgraded', number + 1, host)
            if host in seen:
                _fail('host %s is in batch %d and batch %d', host, seen[host] + 1, number + 1)
            seen[host] = number
    missing = pending - set(seen)
    if missing:
        _fail('hosts never upgraded: %s', ', '.join(sorted(missing)))
    if plan['host_count'] != len(pending):
        _fail('host_count %r, expected %d', plan['host_count'], len(pending))

    # ---- batch sizes
    for number, batch in enumerate(batches):
        if max_parallel is not None and len(batch) > max_parallel:
            _fail('batch %d has %d hosts, max_parallel is %d', number + 1, len(batch), max_parallel)
        for host in batch:
            limit = info[host].get('max_parallel')
            if limit is not None and len(batch) > limit:
                _fail('batch %d has %d hosts but host %s allows at most %d', number + 1, len(batch), host, limit)

    # ---- aio first, then the order
    if aio_first:
        aio_batches = [seen[h] for h in seen if info[h].get('role', 'compute') == 'aio']
        compute_batches = [seen[h] for h in seen if info[h].get('role', 'compute') != 'aio']
        if aio_batches and compute_batches and max(aio_batches) >= min(compute_batches):
            _fail('an all-in-one host is upgraded in batch %d, not before every compute host (first compute '
                  'batch %d)', max(aio_batches) + 1, min(compute_batches) + 1)
    # order: listed entries in sequence, then the unlisted hosts; with aio_first the
    # rule holds among the aio hosts and among the compute hosts (aio first overall)
    tiers = []
    for entry in order or []:
        names = [entry] if isinstance(entry, str) else list(entry)
        tiers.append([n for n in names if n in pending])
    listed = set(n for tier in tiers for n in tier)
    tiers.append(sorted(n for n in pending if n not in listed))

    def same_class(a, b):
        if not aio_first:
            return True
        return (info[a].get('role', 'compute') == 'aio') == (info[b].get('role', 'compute') == 'aio')

    for i, early in enumerate(tiers):
        for late in tiers[i + 1:]:
            for a in early:
                for b in late:
                    if same_class(a, b) and seen[a] >= seen[b]:
                        _fail('order: host %s (batch %d) must go before host %s (batch %d)',
                              a, seen[a] + 1, b, seen[b] + 1)

    # ---- replay
    load = {}
    for name in info:
        load[name] = dict(initial[name])
    moves_done = 0
    for number, batch in enumerate(batches):
        item = details[number]
        label = 'batch %d' % (number + 1)
        out = set(batch)
        aboard = sorted(vm for vm in running if where[vm] in out)
        if evacuation == 'shutdown':
            must_stop = list(aboard)
        else:
            must_stop = [vm for vm in aboard if pinned[vm] or not migratable[vm]]
        must_move = sorted(set(aboard) - set(must_stop))
        stop_pairs = sorted((s['vm'], s['host']) for s in item['stop'])
        if stop_pairs != sorted((vm, where[vm]) for vm in must_stop):
            _fail('%s: stop %r, expected %r', label, stop_pairs, sorted((vm, where[vm]) for vm in must_stop))
        restart_pairs = sorted((s['vm'], s['host']) for s in item['restart'])
        if restart_pairs != stop_pairs:
            _fail('%s: restart %r differs from stop %r', label, restart_pairs, stop_pairs)
        moved = sorted(m['vm'] for m in item['moves'])
        if moved != must_move:
            _fail('%s: moves cover %r, expected the migratable VMs %r', label, moved, must_move)
        occupied = set(where[vm] for vm in aboard)
        expected_evacuate = sorted(h for h in batch if h in occupied)
        if sorted(item['evacuate']) != expected_evacuate:
            _fail('%s: evacuate %r, expected %r', label, item['evacuate'], expected_evacuate)
        # stop first: the VMs that cannot move
        for vm in must_stop:
            running.discard(vm)
            for res in resources:
                load[where[vm]][res] -= demand[vm][res]
        received = set()
        for move in item['moves']:
            vm, source, target = move['vm'], move['source'], move['target']
            if where[vm] != source:
                _fail('%s: %s moves from %s but runs on %s', label, vm, source, where[vm])
            if source not in out:
                _fail('%s: %s moves away from %s, which is not in the batch', label, vm, source)
            if target not in info:
                _fail('%s: %s moves to unknown host %s', label, vm, target)
            if target in out:
                _fail('%s: %s moves to %s, a host of the same batch', label, vm, target)
            if group[target] != home_group[vm]:
                _fail('%s: %s moves to %s in storage group %s, but it belongs to %s', label, vm, target,
                      group[target], home_group[vm])
            if pinned[vm] or not migratable[vm] or evacuation == 'shutdown':
                _fail('%s: %s is moved but must not be', label, vm)
            for res in resources:
                load[source][res] -= demand[vm][res]
                load[target][res] += demand[vm][res]
                if load[target][res] > usable[target][res]:
                    _fail('%s: moving %s to %s takes %s to %d, over its usable %d', label, vm, target, res,
                          load[target][res], usable[target][res])
            where[vm] = target
            received.add(target)
            moves_done += 1
        for host in batch:
            for res in resources:
                if load[host][res] != 0:
                    _fail('%s: host %s still carries %s=%d while it is upgraded', label, host, res,
                          load[host][res])
        # the proof: what is left on the hosts still in service
        proof = item['free_after']
        for host in received:
            if host not in proof:
                _fail('%s: host %s received VMs but is missing from free_after', label, host)
        for host, amounts in proof.items():
            if host in out:
                _fail('%s: free_after lists %s, which is being upgraded', label, host)
            for res in resources:
                if amounts[res] != usable[host][res] - load[host][res]:
                    _fail('%s: free_after says %s has %s=%r free, the replay says %d', label, host, res,
                          amounts[res], usable[host][res] - load[host][res])
        # back in service: restart what was stopped, where it was
        for vm, host in restart_pairs:
            running.add(vm)
            for res in resources:
                load[host][res] += demand[vm][res]
        for host in batch:
            for res in resources:
                if load[host][res] > max(usable[host][res], initial[host][res]):
                    _fail('%s: host %s restarts with %s=%d, over its usable %d', label, host, res,
                          load[host][res], usable[host][res])
    if running != set(where):
        _fail('VMs left stopped at the end: %s', ', '.join(sorted(set(where) - running)))
    for vm, host in where.items():
        if group[host] != home_group[vm]:
            _fail('%s ends in storage group %s', vm, group[host])
    if pending and not 1 <= plan['lower_bound'] <= len(batches):
        _fail('lower_bound %r is not between 1 and the %d batches of a valid plan', plan['lower_bound'],
              len(batches))
    return {'moves': moves_done, 'batches': len(batches)}
