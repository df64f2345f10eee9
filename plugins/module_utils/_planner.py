# -*- coding: utf-8 -*-
# Copyright: (c) 2026, clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity-aware planning of compute upgrade batches.

Pure logic: data in, data out, no Ansible and no commands. ``plan_upgrade()``
splits the hosts that still need the upgrade into ordered batches and, for every
batch, says which VM goes where, which VMs stop and restart, and what every
remaining host has left after the moves (the proof that the batch fits).
``lower_bound()`` gives a number of batches no valid plan can go below.
``pcs_facts_to_input()`` turns ``pcs_info``-style facts into planner input.

The model (see docs/planner.md for the reasoning):

* usable capacity of a host = floor(capacity * (100 - headroom) / 100), per resource;
* while a batch is upgraded its hosts are out of service: in ``migrate`` and
  ``manual`` mode every migratable, unpinned VM on them moves to an in-service
  host of the same storage group that has room, the others stop and restart on
  their own host after the batch; in ``shutdown`` mode every VM on them stops and
  restarts there after the batch;
* a moved VM stays where it went (pacemaker with resource stickiness); a host that
  received VMs may be upgraded later, and its VMs then move again;
* a host never receives a VM that would take it over its usable capacity.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right, insort
from fractions import Fraction

MODES = ('migrate', 'shutdown', 'manual')
ROLES = ('compute', 'aio')
PRIMARY_RESOURCE = 'memory'
DEFAULT_STORAGE_GROUP = 'default'

HOST_KEYS = ('name', 'capacity', 'storage_group', 'role', 'upgraded', 'max_parallel')
VM_KEYS = ('name', 'host', 'demand', 'migratable', 'pinned')

_INF = float('inf')
_LIST_LIMIT = 5


class PlannerError(ValueError):
    """The input is invalid or no safe plan exists; the message says why."""


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------

def _names(items, limit=_LIST_LIMIT):
    items = list(items)
    text = ', '.join(items[:limit])
    if len(items) > limit:
        text += ' and %d more' % (len(items) - limit)
    return text


def _fmt_amounts(resources, values):
    return ' '.join('%s=%s' % (r, v) for r, v in zip(resources, values))


def _as_int(value, what):
    """An integer from an int, an integral float or a decimal string."""
    if isinstance(value, bool):
        raise PlannerError('%s must be an integer, got %r' % (what, value))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise PlannerError('%s must be an integer, got %r' % (what, value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 10)
        except ValueError:
            pass
    raise PlannerError('%s must be an integer, got %r' % (what, value))


def _as_bool(value, what):
    if isinstance(value, bool):
        return value
    raise PlannerError('%s must be true or false, got %r' % (what, value))


def _check_keys(item, allowed, what):
    if not isinstance(item, dict):
        raise PlannerError('%s must be a dictionary, got %r' % (what, item))
    unknown = sorted(k for k in item if k not in allowed)
    if unknown:
        raise PlannerError('%s has unknown key(s) %s; allowed keys: %s'
                           % (what, ', '.join(map(str, unknown)), ', '.join(allowed)))


def _name_of(item, what):
    name = item.get('name')
    if not isinstance(name, str) or not name:
        raise PlannerError('%s needs a non-empty string name, got %r' % (what, name))
    return name


def _largest(hosts, amounts, names):
    """The host with the most of the primary resource (then the others); ties: first name."""
    return min(hosts, key=lambda h: (tuple(-x for x in amounts[h]), names[h]))


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def _usable(capacity, headroom):
    """floor(capacity * (100 - headroom) / 100), exactly (no float rounding)."""
    return (capacity * (100 - headroom)) // 100


class _Cluster(object):
    """Validated input as parallel arrays indexed by host / VM number.

    Hosts and VMs are numbered in name order, so the plan never depends on the
    order of the input lists.
    """

    def __init__(self, hosts, vms, evacuation, headroom, max_parallel):
        if evacuation not in MODES:
            raise PlannerError('evacuation must be one of %s, got %r' % (', '.join(MODES), evacuation))
        self.mode = evacuation
        if isinstance(headroom, bool) or not isinstance(headroom, (int, float, str)):
            raise PlannerError('headroom must be a number of percent in [0, 100), got %r' % (headroom,))
        try:
            frac = Fraction(str(headroom).strip())
        except (ValueError, ZeroDivisionError):
            raise PlannerError('headroom must be a number of percent in [0, 100), got %r' % (headroom,))
        if not 0 <= frac < 100:
            raise PlannerError('headroom must be a number of percent in [0, 100), got %r' % (headroom,))
        self.headroom = frac
        if max_parallel is None:
            self.max_parallel = None
        else:
            mp = _as_int(max_parallel, 'max_parallel')
            if mp < 1:
                raise PlannerError('max_parallel must be at least 1 (or null for no limit), got %r' % (max_parallel,))
            self.max_parallel = mp
        self.weights = None
        self._load_hosts(hosts)
        self._load_vms(vms)

    def _load_hosts(self, hosts):
        if not isinstance(hosts, (list, tuple)):
            raise PlannerError('hosts must be a list, got %r' % (hosts,))
        by_name = {}
        for pos, item in enumerate(hosts):
            what = 'hosts[%d]' % pos
            _check_keys(item, HOST_KEYS, what)
            name = _name_of(item, what)
            if name in by_name:
                raise PlannerError('host %s is listed twice in hosts; host names must be unique' % name)
            by_name[name] = item
        names = sorted(by_name)
        resources = None
        first = None
        self.host_names = names
        self.host_index = {}
        self.capacity = []
        self.group_name = []
        self.role = []
        self.upgraded = []
        self.host_max = []
        for idx, name in enumerate(names):
            item = by_name[name]
            self.host_index[name] = idx
            cap = item.get('capacity')
            if not isinstance(cap, dict) or PRIMARY_RESOURCE not in cap:
                raise PlannerError('host %s needs a capacity dictionary with at least %r, got %r'
                                   % (name, PRIMARY_RESOURCE, cap))
            keys = sorted(str(k) for k in cap)
            if resources is None:
                resources = [PRIMARY_RESOURCE] + [k for k in keys if k != PRIMARY_RESOURCE]
                first = name
            elif sorted(resources) != keys:
                raise PlannerError('host %s declares capacity for %s but host %s declares %s; every host '
                                   'must declare the same resources' % (name, ', '.join(keys), first,
                                                                        ', '.join(sorted(resources))))
            values = []
            for res in resources:
                value = _as_int(cap[res], 'host %s capacity.%s' % (name, res))
                if value <= 0:
                    raise PlannerError('host %s has capacity.%s=%s: a capacity must be greater than zero '
                                       '(remove the host from the plan if it cannot run VMs)'
                                       % (name, res, value))
                values.append(value)
            self.capacity.append(tuple(values))
            group = item.get('storage_group')
            if group is None:
                group = DEFAULT_STORAGE_GROUP
            if not isinstance(group, str) or not group:
                raise PlannerError('host %s: storage_group must be a non-empty string, got %r' % (name, group))
            self.group_name.append(group)
            role = item.get('role')
            if role is None:
                role = 'compute'
            if role not in ROLES:
                raise PlannerError('host %s: role must be one of %s, got %r' % (name, ', '.join(ROLES), role))
            self.role.append(role)
            upgraded = item.get('upgraded')
            self.upgraded.append(False if upgraded is None else _as_bool(upgraded, 'host %s upgraded' % name))
            hmax = item.get('max_parallel')
            if hmax is None:
                self.host_max.append(_INF)
            else:
                hmax = _as_int(hmax, 'host %s max_parallel' % name)
                if hmax < 1:
                    raise PlannerError('host %s: max_parallel must be at least 1, got %s' % (name, hmax))
                self.host_max.append(hmax)
        self.resources = resources or [PRIMARY_RESOURCE]
        self.nres = len(self.resources)
        self.usable = [tuple(_usable(c, self.headroom) for c in cap) for cap in self.capacity]
        group_names = sorted(set(self.group_name))
        gindex = dict((g, i) for i, g in enumerate(group_names))
        self.groups = group_names
        self.group = [gindex[g] for g in self.group_name]
        self.group_hosts = [[] for dummy in group_names]
        for idx in range(len(names)):
            self.group_hosts[self.group[idx]].append(idx)

    def _load_vms(self, vms):
        # written for speed: 100,000 VMs are validated here
        if not isinstance(vms, (list, tuple)):
            raise PlannerError('vms must be a list, got %r' % (vms,))
        allowed = frozenset(VM_KEYS)
        by_name = {}
        for pos, item in enumerate(vms):
            if not isinstance(item, dict) or not allowed.issuperset(item):
                _check_keys(item, VM_KEYS, 'vms[%d]' % pos)
            name = item.get('name')
            if not isinstance(name, str) or not name:
                _name_of(item, 'vms[%d]' % pos)
            if name in by_name:
                raise PlannerError('VM %s is listed twice in vms; VM names must be unique' % name)
            by_name[name] = item
        names = sorted(by_name)
        resources = self.resources
        known = frozenset(resources)
        nres = self.nres
        shutdown = self.mode == 'shutdown'
        self.vm_names = names
        vm_host = self.vm_host = []
        demand = self.demand = []
        movable = self.movable = []
        vm_pinned = self.vm_pinned = []
        vm_migratable = self.vm_migratable = []
        load = [[0] * nres for dummy in self.host_names]
        host_index = self.host_index
        empty = {}
        for name in names:
            item = by_name[name]
            host = item.get('host')
            hidx = host_index.get(host) if isinstance(host, str) else None
            if hidx is None:
                raise PlannerError('VM %s is on host %r, which is not in hosts; add the host or fix the VM'
                                   % (name, host))
            dem = item.get('demand')
            if dem is None:
                dem = empty
            elif not isinstance(dem, dict):
                raise PlannerError('VM %s: demand must be a dictionary, got %r' % (name, dem))
            if not known.issuperset(dem):
                key = sorted(str(k) for k in dem if k not in known)[0]
                raise PlannerError('VM %s demands %r but no host declares a capacity for it (hosts declare %s)'
                                   % (name, key, ', '.join(resources)))
            values = []
            for res in resources:
                value = dem.get(res, 0)
                if not isinstance(value, int) or isinstance(value, bool):
                    value = _as_int(value, 'VM %s demand.%s' % (name, res))
                if value < 0:
                    raise PlannerError('VM %s has demand.%s=%s: a demand cannot be negative' % (name, res, value))
                values.append(value)
            values = tuple(values)
            migratable = item.get('migratable', True)
            if not isinstance(migratable, bool):
                migratable = True if migratable is None else _as_bool(migratable, 'VM %s migratable' % name)
            pinned = item.get('pinned', False)
            if not isinstance(pinned, bool):
                pinned = False if pinned is None else _as_bool(pinned, 'VM %s pinned' % name)
            vm_host.append(hidx)
            demand.append(values)
            vm_pinned.append(pinned)
            vm_migratable.append(migratable)
            movable.append(migratable and not pinned and not shutdown)
            hl = load[hidx]
            for r in range(nres):
                hl[r] += values[r]
        # biggest first, then name: the order VMs are placed in
        self.size_key = [tuple(-x for x in d) + (j,) for j, d in enumerate(demand)]
        self.initial_load = [tuple(x) for x in load]


# --------------------------------------------------------------------------
# stages: aio first and the operator's order
# --------------------------------------------------------------------------

def _stages(cl, aio_first, order):
    """Lists of host indices; every batch lies inside one stage, stages run in order."""
    aio_first = _as_bool(aio_first, 'aio_first')
    if order is None:
        order = []
    if not isinstance(order, (list, tuple)):
        raise PlannerError('order must be a list of host names (or lists of host names), got %r' % (order,))
    tier_of = {}
    for pos, entry in enumerate(order):
        members = entry if isinstance(entry, (list, tuple)) else [entry]
        if not members:
            raise PlannerError('order[%d] is an empty list' % pos)
        for name in members:
            if not isinstance(name, str) or name not in cl.host_index:
                raise PlannerError('order[%d] names %r, which is not in hosts' % (pos, name))
            if name in tier_of:
                raise PlannerError('host %s appears twice in order' % name)
            tier_of[name] = pos
    last = len(order)
    pending = [i for i in range(len(cl.host_names)) if not cl.upgraded[i]]
    keys = {}
    for idx in pending:
        tier = tier_of.get(cl.host_names[idx], last)
        rank = 0 if (aio_first and cl.role[idx] == 'aio') else 1
        keys[idx] = (rank, tier)
    if aio_first:
        # all-in-one hosts go first; order applies among the aio hosts and among the
        # compute hosts. Only an order that lists a compute host before a listed aio
        # host contradicts that.
        aio = [i for i in pending if cl.role[i] == 'aio' and cl.host_names[i] in tier_of]
        compute = [i for i in pending if cl.role[i] != 'aio' and cl.host_names[i] in tier_of]
        if aio and compute:
            late_aio = max(aio, key=lambda i: (keys[i][1], cl.host_names[i]))
            early_compute = min(compute, key=lambda i: (keys[i][1], cl.host_names[i]))
            if keys[late_aio][1] > keys[early_compute][1]:
                raise PlannerError('order puts compute host %s before all-in-one host %s, but aio_first is true '
                                   'and all-in-one hosts go first; list %s earlier in order or set aio_first: false'
                                   % (cl.host_names[early_compute], cl.host_names[late_aio],
                                      cl.host_names[late_aio]))
    stages = {}
    for idx in pending:
        stages.setdefault(keys[idx], []).append(idx)
    return [stages[k] for k in sorted(stages)]


# --------------------------------------------------------------------------
# lower bound
# --------------------------------------------------------------------------

def _count_bound(caps):
    """Exact minimum number of batches when batch size <= min(cap of its members)."""
    caps = sorted(caps)
    i = batches = 0
    n = len(caps)
    while i < n:
        batches += 1
        if caps[i] == _INF:
            break
        i += int(caps[i])
    return batches


def _bin_bound(items, size):
    """Lower bound on the bins of capacity `size` needed to pack `items` (ints >= 0)."""
    n = len(items)
    if n == 0:
        return 0
    if size <= 0:
        return 1 if max(items) <= 0 else n  # n: infeasible anyway, caught by the precheck
    a = sorted(items)
    bound = -(-sum(a) // size)
    # no bin holds more items than the smallest ones that fit together
    acc = fit = 0
    for w in a:
        if acc + w > size:
            break
        acc += w
        fit += 1
    if fit:
        bound = max(bound, -(-n // fit))
    # Martello and Toth's L2
    prefix = [0]
    for w in a:
        prefix.append(prefix[-1] + w)
    big = bisect_right(a, size // 2)  # first index with 2*w > size
    big_count = n - big
    seen = None
    for alpha in [0] + a[:big]:
        if alpha == seen:
            continue
        seen = alpha
        i1 = bisect_right(a, size - alpha)  # J1 = a[i1:], J2 = a[big:i1]
        j2n = max(0, i1 - big)
        j2s = prefix[max(i1, big)] - prefix[big]
        lo = bisect_left(a, alpha)
        j3s = prefix[big] - prefix[lo]
        rest = j3s - (j2n * size - j2s)
        extra = -(-rest // size) if rest > 0 else 0
        bound = max(bound, big_count + extra)
    return bound


def _host_weights(cl):
    """(weight per host, slack per group), see docs/planner.md; computed once per cluster.

    weight = max(usable, initial load) - load that cannot move;
    slack = sum over the group of max(usable, initial load) - initial load.
    """
    if cl.weights is None:
        cl.weights = _compute_weights(cl)
    return cl.weights


def _compute_weights(cl, rounded=False):
    nres = cl.nres
    stay = [[0] * nres for dummy in cl.host_names]
    for j, h in enumerate(cl.vm_host):
        if not cl.movable[j]:
            dem = cl.demand[j]
            row = stay[h]
            for r in range(nres):
                row[r] += dem[r]
    usable = cl.usable
    if rounded:
        # A host only ever carries VMs of its own storage group, so its load is a
        # multiple of the gcd of that group's demands: round usable down to it.
        unit = [[0] * nres for dummy in cl.groups]
        for j, h in enumerate(cl.vm_host):
            row = unit[cl.group[h]]
            dem = cl.demand[j]
            for r in range(nres):
                row[r] = _gcd(row[r], dem[r])
        usable = []
        for h in range(len(cl.host_names)):
            row = unit[cl.group[h]]
            usable.append(tuple((u // row[r]) * row[r] if row[r] else u for r, u in enumerate(cl.usable[h])))
    cap = [tuple(max(u, l) for u, l in zip(usable[h], cl.initial_load[h])) for h in range(len(cl.host_names))]
    weight = [tuple(cap[h][r] - stay[h][r] for r in range(nres)) for h in range(len(cl.host_names))]
    slack = []
    for hosts in cl.group_hosts:
        slack.append(tuple(sum(cap[h][r] - cl.initial_load[h][r] for h in hosts) for r in range(nres)))
    return weight, slack


def _lower_bound(cl, stages):
    total = 0
    weight = slack = None
    if cl.mode != 'shutdown':
        weight, slack = _compute_weights(cl, rounded=True)
    mp = cl.max_parallel if cl.max_parallel is not None else _INF
    for stage in stages:
        best = _count_bound([min(mp, cl.host_max[h]) for h in stage])
        if weight is not None:
            per_group = {}
            for h in stage:
                per_group.setdefault(cl.group[h], []).append(h)
            for g in sorted(per_group):
                hosts = per_group[g]
                for r in range(cl.nres):
                    best = max(best, _bin_bound([weight[h][r] for h in hosts], slack[g][r]))
        total += best
    return total


def lower_bound(hosts, vms, evacuation='migrate', headroom=0, max_parallel=None, aio_first=True, order=None):
    """The lower bound alone (see docs/planner.md for why it is one)."""
    cl = _Cluster(hosts, vms, evacuation, headroom, max_parallel)
    return _lower_bound(cl, _stages(cl, aio_first, order))


# --------------------------------------------------------------------------
# the scheduler
# --------------------------------------------------------------------------

# Strategies tried in turn: (hosts over their usable capacity go last, candidate
# order, where a VM goes). The first is the default; the others rescue the cases
# where packing VMs greedily paints itself into a corner.
_STRATEGIES = (
    (True, 'weight', 'best'),
    (True, 'weight', 'worst'),
    (False, 'weight', 'best'),
    (True, 'light', 'best'),
    (True, 'light', 'worst'),
)
# exact packing is tried on batches with at most this many VMs to move and while
# (free room / size unit) * VMs stays under this many bits
_PACK_ITEMS = 256
_PACK_BITS = 1 << 24
# up to this size every strategy runs and the plan with the fewest batches wins
_SMALL_HOSTS = 64
_SMALL_VMS = 4000


class _Scheduler(object):

    def __init__(self, cl, strategy=_STRATEGIES[0]):
        self.cl = cl
        self.over_last, self.candidate_order, self.fit = strategy
        n = len(cl.host_names)
        nres = cl.nres
        self.nres = nres
        self.free = [[u - l for u, l in zip(cl.usable[h], cl.initial_load[h])] for h in range(n)]
        self.vm_host = list(cl.vm_host)
        self.host_vms = [[] for dummy in range(n)]
        for j, h in enumerate(cl.vm_host):
            self.host_vms[h].append(j)
        self.mload = [[0] * nres for dummy in range(n)]  # load of the VMs that can move
        for j, h in enumerate(cl.vm_host):
            if cl.movable[j]:
                row = self.mload[h]
                for r in range(nres):
                    row[r] += cl.demand[j][r]
        self.done = list(cl.upgraded)
        self.out = [False] * n       # in the current batch (out of service)
        self.received = [0] * n      # batch number in which the host last received a VM
        self.batch_no = 0
        # targets: per group, two sorted lists of (free primary, host): upgraded hosts first
        self.tiers = [[[], []] for dummy in cl.groups]
        for h in range(n):
            self.tiers[cl.group[h]][0 if self.done[h] else 1].append((self.free[h][0], h))
        for pair in self.tiers:
            pair[0].sort()
            pair[1].sort()
        self.weight, self.slack = _host_weights(cl)
        mp = cl.max_parallel
        self.mp = _INF if mp is None else mp

    # ---- target lists
    def _unlist(self, h):
        lst = self.tiers[self.cl.group[h]][0 if self.done[h] else 1]
        key = (self.free[h][0], h)
        i = bisect_left(lst, key)
        del lst[i]

    def _list(self, h):
        insort(self.tiers[self.cl.group[h]][0 if self.done[h] else 1], (self.free[h][0], h))

    def _find(self, g, dem):
        """A target for demand `dem` in group g: upgraded hosts first, then best
        (least room that fits) or worst (most room) fit on the primary resource."""
        free = self.free
        nres = self.nres
        d0 = dem[0]
        best = self.fit == 'best'
        for lst in self.tiers[g]:
            if best:
                i = bisect_left(lst, (d0, -1))
                end = len(lst)
                while i < end:
                    h = lst[i][1]
                    if nres == 1:
                        return h
                    row = free[h]
                    r = 1
                    while r < nres and row[r] >= dem[r]:
                        r += 1
                    if r == nres:
                        return h
                    i += 1
            else:
                i = len(lst) - 1
                while i >= 0 and lst[i][0] >= d0:
                    h = lst[i][1]
                    row = free[h]
                    r = 1
                    while r < nres and row[r] >= dem[r]:
                        r += 1
                    if r == nres:
                        return h
                    i -= 1
        return None

    def _add_load(self, h, dem, sign):
        lst = self.tiers[self.cl.group[h]][0 if self.done[h] else 1]
        row = self.free[h]
        i = bisect_left(lst, (row[0], h))
        del lst[i]
        if sign > 0:
            for r in range(self.nres):
                row[r] -= dem[r]
        else:
            for r in range(self.nres):
                row[r] += dem[r]
        insort(lst, (row[0], h))

    # ---- batch building
    def _weight(self, h):
        """What taking h out costs its group: its movable load plus its own free room."""
        free = self.free[h]
        return [m + (f if f > 0 else 0) for m, f in zip(self.mload[h], free)]

    def _budget(self, g):
        """Free room of the in-service hosts of group g (never negative per host)."""
        free = self.free
        out = self.out
        total = [0] * self.nres
        for h in self.cl.group_hosts[g]:
            if not out[h]:
                row = free[h]
                for r in range(self.nres):
                    if row[r] > 0:
                        total[r] += row[r]
        return total

    def _place_hosts(self, hosts, placed):
        """Place the movable VMs of `hosts` (already out of service, in priority order),
        biggest VM first.

        When a VM fits nowhere, the batch gives up hosts from its lowest priority
        upwards (their VMs are taken back and they return to service, so their room
        counts again) until the VM fits or its own host is the one given up. The
        hosts given up are returned.
        """
        cl = self.cl
        demand = cl.demand
        movable = cl.movable
        size_key = cl.size_key
        host_vms = self.host_vms
        vms = [size_key[j] for h in hosts for j in host_vms[h] if movable[j]]
        vms.sort()
        active = list(hosts)
        dropped = []
        dropped_set = set()
        vm_host = self.vm_host
        group = cl.group
        # fast path for the common case (one resource, best fit): find and update in place
        fast = self.nres == 1 and self.fit == 'best'
        tiers = self.tiers
        free = self.free
        received = self.received
        batch_no = self.batch_no
        for key in vms:
            j = key[-1]
            src = vm_host[j]
            if src in dropped_set:
                continue
            d = demand[j]
            g = group[src]
            if fast:
                d0 = d[0]
                probe = (d0, -1)
                tgt = None
                for lst in tiers[g]:
                    i = bisect_left(lst, probe)
                    if i < len(lst):
                        tgt = lst[i][1]
                        del lst[i]
                        row = free[tgt]
                        row[0] -= d0
                        insort(lst, (row[0], tgt))
                        break
                if tgt is not None:
                    received[tgt] = batch_no
                    placed.setdefault(src, []).append((j, tgt))
                    continue
            tgt = self._find(g, d)
            while tgt is None:
                victim = active.pop()
                for j2, t2 in placed.pop(victim, ()):
                    self._add_load(t2, demand[j2], -1)
                dropped_set.add(victim)
                dropped.append(victim)
                self.out[victim] = False
                self._list(victim)
                if victim == src:
                    break
                tgt = self._find(g, d)
            if tgt is None:
                continue
            self._add_load(tgt, d, +1)
            self.received[tgt] = self.batch_no
            placed.setdefault(src, []).append((j, tgt))
        return dropped

    def _place_group(self, g, hosts, placed):
        """Best fit first; when that gives hosts up on a small single-resource batch,
        try an exact packing (subset sums, hole by hole) before accepting the loss."""
        dropped = self._place_hosts(hosts, placed)
        if not dropped or self.nres != 1:
            return dropped
        cl = self.cl
        movers = [j for h in hosts for j in self.host_vms[h] if cl.movable[j]]
        if len(movers) > _PACK_ITEMS:
            return dropped
        for h in hosts:
            for j, t in placed.pop(h, ()):
                self._add_load(t, cl.demand[j], -1)
        for h in dropped:
            self._unlist(h)
            self.out[h] = True
        assignment = self._subset_pack(g, movers)
        if assignment is None:
            return self._place_hosts(hosts, placed)
        for j, t in assignment:
            self._add_load(t, cl.demand[j], +1)
            self.received[t] = self.batch_no
            placed.setdefault(self.vm_host[j], []).append((j, t))
        return []

    def _subset_pack(self, g, movers):
        """Fill the free room of group g's in-service hosts one host at a time (upgraded
        hosts first, then the least room first: big holes stay flexible for the end),
        each with the subset of the VMs still to place that fills it best (subset sums
        on a bitset, in units of the gcd of the sizes). Returns [(vm, host)] or None
        when some VM is left over."""
        demand = self.cl.demand
        sizes = dict((j, demand[j][0]) for j in movers)
        unit = 0
        for d in sizes.values():
            unit = _gcd(unit, d)
        unit = unit or 1
        left = sorted(movers, key=lambda j: (-sizes[j], j))
        zero = [j for j in left if sizes[j] == 0]
        left = [j for j in left if sizes[j] > 0]
        holes = []
        for tier in self.tiers[g]:
            holes.extend(tier)  # already sorted by room, then host
        assignment = []
        for free0, h in holes:
            if not left:
                break
            cap = free0 // unit
            if cap <= 0:
                continue
            scaled = [sizes[j] // unit for j in left]
            if sum(scaled) <= cap:
                chosen = list(range(len(left)))
            else:
                if cap * len(left) > _PACK_BITS:
                    return None
                mask = (1 << (cap + 1)) - 1
                rows = [1]
                for w in scaled:
                    prev = rows[-1]
                    rows.append((prev | (prev << w)) & mask)
                target = rows[-1].bit_length() - 1
                chosen = []
                for i in range(len(left), 0, -1):
                    if target and not (rows[i - 1] >> target) & 1:
                        chosen.append(i - 1)
                        target -= scaled[i - 1]
            taken = set(chosen)
            for i in sorted(taken):
                assignment.append((left[i], h))
            left = [j for i, j in enumerate(left) if i not in taken]
        if left:
            return None
        if zero:
            room = [h for free0, h in holes if free0 >= 0]
            if not room:
                return None
            assignment.extend((j, room[0]) for j in zero)
        return assignment

    def _next_batch(self, cands, remaining_w):
        """Choose, place and return (hosts, placed moves) for the next batch of a stage
        (migrate and manual modes).

        1. Choose: groups in order of need; in each, candidates in priority order join
           while the group's aggregate condition holds (first-fit decreasing):
           sum over the batch of (movable load + own free room) <= free room of the group.
        2. Place the VMs of the batch, biggest first, best fit (see _place_group).
        3. If hosts had to be given up, try the remaining candidates one by one.
        """
        cl = self.cl
        nres = self.nres
        # group order: the group that needs the most batches first
        need = []
        for g, lst in cands.items():
            if not lst.alive:
                continue
            ratio = 0.0
            for r in range(nres):
                s = self.slack[g][r]
                if remaining_w[g][r] > 0:
                    ratio = max(ratio, _INF if s <= 0 else float(remaining_w[g][r]) / s)
            need.append((-ratio, -lst.alive, cl.groups[g], g))
        need.sort()
        order = [item[3] for item in need]
        batch = []
        cap = self.mp
        # seed with the most constrained host when per-host limits exist
        seed = None
        for g in order:
            h = cands[g].first()
            if h is not None and (seed is None or cl.host_max[h] < cl.host_max[seed]):
                seed = h
        if seed is not None and cl.host_max[seed] != _INF:
            cap = min(cap, cl.host_max[seed])
            order.remove(cl.group[seed])
            order.insert(0, cl.group[seed])
        for g in order:
            if len(batch) >= cap:
                break
            bud = self._budget(g)
            for h in cands[g].iterate():
                if len(batch) >= cap:
                    break
                newcap = min(cap, cl.host_max[h])
                if len(batch) + 1 > newcap:
                    continue
                w = self._weight(h)
                if any(w[r] > bud[r] for r in range(nres)):
                    continue
                for r in range(nres):
                    bud[r] -= w[r]
                batch.append(h)
                cap = newcap
        placed = {}
        for h in batch:
            self.out[h] = True
            self._unlist(h)
        by_group = {}
        for h in batch:
            by_group.setdefault(cl.group[h], []).append(h)
        dropped = []
        for g in sorted(by_group):
            dropped.extend(self._place_group(g, by_group[g], placed))
        if dropped:
            dropped_set = set(dropped)
            batch = [h for h in batch if h not in dropped_set]
            cap = self.mp
            for h in batch:
                cap = min(cap, cl.host_max[h])
            # refill: try the hosts that neither left nor received VMs, one by one,
            # until a few attempts in a row have failed
            misses = max(8, 2 * len(dropped))
            for g in order:
                if len(batch) >= cap or misses <= 0:
                    break
                bud = self._budget(g)
                for h in cands[g].iterate():
                    if len(batch) >= cap or misses <= 0:
                        break
                    if self.out[h] or self.received[h] == self.batch_no:
                        continue
                    newcap = min(cap, cl.host_max[h])
                    if len(batch) + 1 > newcap:
                        continue
                    own = self.free[h]
                    need = self.mload[h]
                    if any(need[r] > bud[r] - (own[r] if own[r] > 0 else 0) for r in range(nres)):
                        continue
                    self.out[h] = True
                    self._unlist(h)
                    if self._place_hosts([h], placed):
                        misses -= 1
                        continue
                    misses = max(8, 2 * len(dropped))
                    for r in range(nres):
                        bud[r] -= need[r] + (own[r] if own[r] > 0 else 0)
                    batch.append(h)
                    cap = newcap
        return batch, placed

    def _commit(self, batch, placed):
        cl = self.cl
        names = cl.host_names
        vm_names = cl.vm_names
        demand = cl.demand
        resources = cl.resources
        nres = self.nres
        moves = [(j, src, tgt) for src in placed for j, tgt in placed[src]]
        moves.sort()
        in_batch = set(batch)
        # proof: what every in-service host of the touched groups has left
        free_after = {}
        for g in sorted(set(cl.group[h] for h in batch)):
            for h in cl.group_hosts[g]:
                if h not in in_batch:
                    free_after[names[h]] = dict(zip(resources, self.free[h]))
        stop_items = []
        evacuate = []
        movable = cl.movable
        for h in sorted(batch):
            stay = [j for j in self.host_vms[h] if not movable[j]]
            for j in sorted(stay):
                stop_items.append((j, h))
            if self.host_vms[h]:
                evacuate.append(names[h])
            self.host_vms[h] = stay
        free = self.free
        mload = self.mload
        host_vms = self.host_vms
        vm_host = self.vm_host
        for j, src, tgt in moves:
            d = demand[j]
            row = free[src]
            srow = mload[src]
            trow = mload[tgt]
            for r in range(nres):
                row[r] += d[r]
                srow[r] -= d[r]
                trow[r] += d[r]
            vm_host[j] = tgt
            host_vms[tgt].append(j)
        for h in batch:
            self.out[h] = False
            self.done[h] = True
            self._list(h)
        stop_items.sort()
        return {
            'hosts': [names[h] for h in sorted(batch)],
            'moves': [{'vm': vm_names[j], 'source': names[src], 'target': names[tgt]} for j, src, tgt in moves],
            'stop': [{'vm': vm_names[j], 'host': names[h]} for j, h in stop_items],
            'restart': [{'vm': vm_names[j], 'host': names[h]} for j, h in stop_items],
            'evacuate': evacuate,
            'free_after': free_after,
        }

    def run(self, stages):
        cl = self.cl
        details = []
        for stage in stages:
            if cl.mode == 'shutdown':
                # no capacity needed: the fewest batches the size limits allow
                hosts = sorted(stage, key=lambda x: (cl.host_max[x], cl.host_names[x]))
                i = 0
                while i < len(hosts):
                    self.batch_no += 1
                    size = min(self.mp, cl.host_max[hosts[i]])
                    batch = hosts[i:] if size == _INF else hosts[i:i + int(size)]
                    i += len(batch)
                    details.append(self._commit(batch, {}))
                continue
            cands = {}
            remaining_w = {}
            for h in stage:
                cands.setdefault(cl.group[h], []).append(h)
            for g in list(cands):
                hosts = cands[g]
                remaining_w[g] = [sum(self.weight[h][r] for h in hosts) for r in range(self.nres)]
                cands[g] = _Candidates(self._order_key, hosts)
            left = len(stage)
            while left:
                self.batch_no += 1
                batch, placed = self._next_batch(cands, remaining_w)
                if not batch:
                    first = min((lst.first() for lst in cands.values() if lst.first() is not None),
                                key=self._order_key)
                    raise PlannerError(self._diagnose(first))
                for h in batch:
                    cands[cl.group[h]].remove(h)
                    w = remaining_w[cl.group[h]]
                    for r in range(self.nres):
                        w[r] -= self.weight[h][r]
                left -= len(batch)
                details.append(self._commit(batch, placed))
        return details

    def _order_key(self, h):
        """Candidates: most constrained by per-host limits first; hosts already over their
        usable capacity last (draining them shrinks what their group can carry); then
        biggest weight (first-fit decreasing), the fewest VMs to move, the name."""
        cl = self.cl
        g = cl.group[h]
        norm = 0.0
        for r in range(self.nres):
            s = self.slack[g][r]
            w = self.weight[h][r]
            if w > 0:
                norm = max(norm, _INF if s <= 0 else float(w) / s)
        moving = 0
        for j in self.host_vms[h]:
            if cl.movable[j]:
                moving += cl.demand[j][0]
        over = self.over_last and any(l > u for l, u in zip(cl.initial_load[h], cl.usable[h]))
        if self.candidate_order == 'light':
            return (cl.host_max[h], over, moving, -norm, cl.host_names[h])
        return (cl.host_max[h], over, -norm, moving, cl.host_names[h])

    def _diagnose(self, h):
        cl = self.cl
        name = cl.host_names[h]
        g = cl.group[h]
        group = cl.groups[g]
        res = cl.resources
        others = [x for x in cl.group_hosts[g] if x != h]
        vms = sorted((j for j in self.host_vms[h] if cl.movable[j]),
                     key=lambda j: (tuple(-x for x in cl.demand[j]), cl.vm_names[j]))
        if not others:
            return ('host %s is the only host in storage group %s, so its VMs %s cannot migrate anywhere; '
                    'use evacuation: shutdown, add a host to the group, or empty the host by hand'
                    % (name, group, _names(cl.vm_names[j] for j in vms)))
        for j in vms:
            d = cl.demand[j]
            if not any(all(cl.usable[x][r] >= d[r] for r in range(self.nres)) for x in others):
                big = _largest(others, cl.usable, cl.host_names)
                return ('VM %s on host %s needs %s, more than the usable capacity of any other host in storage '
                        'group %s (largest: %s with %s at headroom %s%%); it fits nowhere'
                        % (cl.vm_names[j], name, _fmt_amounts(res, d), group, cl.host_names[big],
                           _fmt_amounts(res, cl.usable[big]), _headroom_out(cl.headroom)))
        need = [0] * self.nres
        for j in vms:
            for r in range(self.nres):
                need[r] += cl.demand[j][r]
        have = [sum(max(0, self.free[x][r]) for x in others) for r in range(self.nres)]
        if any(need[r] > have[r] for r in range(self.nres)):
            return _shortfall(cl, name, group, need, have)
        for j in vms:
            d = cl.demand[j]
            if not any(all(self.free[x][r] >= d[r] for r in range(self.nres)) for x in others):
                big = _largest(others, self.free, cl.host_names)
                return ('VM %s on host %s needs %s but no other host of storage group %s has that much free in '
                        'one place (largest free: %s with %s); the free capacity is too fragmented'
                        % (cl.vm_names[j], name, _fmt_amounts(res, d), group, cl.host_names[big],
                           _fmt_amounts(res, self.free[big])))
        return ('no placement found that evacuates host %s (storage group %s) without exceeding a host\'s '
                'usable capacity' % (name, group))


class _Candidates(object):
    """Hosts of one group in one stage, in a fixed order, with cheap removal."""

    def __init__(self, key, hosts):
        self.items = sorted(hosts, key=key)
        self.removed = set()
        self.alive = len(self.items)
        self.start = 0

    def first(self):
        items = self.items
        while self.start < len(items) and items[self.start] in self.removed:
            self.start += 1
        return items[self.start] if self.start < len(items) else None

    def iterate(self):
        self.first()
        removed = self.removed
        for h in self.items[self.start:]:
            if h not in removed:
                yield h

    def remove(self, h):
        self.removed.add(h)
        self.alive -= 1
        if len(self.removed) > 64 and len(self.removed) * 2 > len(self.items):
            removed = self.removed
            self.items = [x for x in self.items if x not in removed]
            self.removed = set()
            self.start = 0


def _shortfall(cl, host, group, need, have):
    return ('host %s cannot be evacuated: its migratable VMs need %s but the other hosts of storage group %s have '
            'only %s free at headroom %s%%; add capacity, lower headroom, or use evacuation: shutdown'
            % (host, _fmt_amounts(cl.resources, need), group, _fmt_amounts(cl.resources, have),
               _headroom_out(cl.headroom)))


def _precheck(cl, stages):
    """Fail early, and clearly, on what no plan can fix (migrate and manual modes)."""
    weight, slack = _host_weights(cl)
    res = cl.resources
    nres = cl.nres
    scheduled = [h for stage in stages for h in stage]
    movers = {}
    for j, h in enumerate(cl.vm_host):
        if cl.movable[j] and not cl.upgraded[h]:
            movers.setdefault(h, []).append(j)
    lonely = []
    too_big = []
    # per group, hosts by usable primary capacity, biggest first
    by_size = [sorted(hosts, key=lambda x: (-cl.usable[x][0], x)) for hosts in cl.group_hosts]
    for h in sorted(movers, key=lambda x: cl.host_names[x]):
        ranked = by_size[cl.group[h]]
        if len(ranked) < 2:
            lonely.append(h)
            continue
        for j in movers[h]:
            d = cl.demand[j]
            fits = False
            for x in ranked:
                u = cl.usable[x]
                if u[0] < d[0]:
                    break
                if x != h and all(u[r] >= d[r] for r in range(nres)):
                    fits = True
                    break
            if not fits:
                too_big.append((j, h, [x for x in ranked if x != h]))
    if lonely:
        h = lonely[0]
        return ('host %s is the only host in storage group %s, so its VMs %s cannot migrate anywhere; use '
                'evacuation: shutdown, add a host to the group, or empty the host by hand'
                % (cl.host_names[h], cl.groups[cl.group[h]],
                   _names(sorted(cl.vm_names[j] for j in movers[h]))))
    if too_big:
        too_big.sort(key=lambda t: cl.vm_names[t[0]])
        lines = []
        for j, h, others in too_big[:_LIST_LIMIT]:
            big = _largest(others, cl.usable, cl.host_names)
            lines.append('VM %s on host %s needs %s, more than the usable capacity of any other host in storage '
                         'group %s (largest: %s with %s)'
                         % (cl.vm_names[j], cl.host_names[h], _fmt_amounts(res, cl.demand[j]),
                            cl.groups[cl.group[h]], cl.host_names[big], _fmt_amounts(res, cl.usable[big])))
        more = '' if len(too_big) <= _LIST_LIMIT else ' (and %d more)' % (len(too_big) - _LIST_LIMIT)
        return ('%s%s; these VMs fit nowhere at headroom %s%%: use a bigger host, lower headroom, or mark '
                'them not migratable so they are stopped and restarted'
                % ('; '.join(lines), more, _headroom_out(cl.headroom)))
    for h in scheduled:
        g = cl.group[h]
        w = weight[h]
        for r in range(nres):
            if w[r] > slack[g][r] and h in movers:
                need = [sum(cl.demand[j][x] for j in movers[h]) for x in range(nres)]
                others = [x for x in cl.group_hosts[g] if x != h]
                room = [sum(max(cl.usable[x][k], cl.initial_load[x][k]) - cl.initial_load[x][k] for x in others)
                        for k in range(nres)]
                return _shortfall(cl, cl.host_names[h], cl.groups[g], need, room)
    return None


# --------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------

def plan_upgrade(hosts, vms, evacuation='migrate', headroom=0, max_parallel=None, aio_first=True, order=None):
    """Plan the upgrade batches. Raises PlannerError when no safe plan exists.

    Returns a dict with ``batches`` (lists of host names, in order), ``batch_details``
    (per batch: hosts, moves, stop, restart, evacuate, free_after), ``lower_bound``,
    ``host_count`` (the batches of one-host-at-a-time), ``already_upgraded``,
    ``resources``, ``warnings`` and the options used.
    """
    # Planning allocates many small objects that never form cycles: pausing the
    # cyclic garbage collector saves a fifth of the time on big clusters.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _plan(hosts, vms, evacuation, headroom, max_parallel, aio_first, order)
    finally:
        if paused:
            gc.enable()


def _plan(hosts, vms, evacuation, headroom, max_parallel, aio_first, order):
    cl = _Cluster(hosts, vms, evacuation, headroom, max_parallel)
    stages = _stages(cl, aio_first, order)
    if cl.mode != 'shutdown':
        problem = _precheck(cl, stages)
        if problem:
            raise PlannerError(problem)
    bound = _lower_bound(cl, stages)
    details = _schedule(cl, stages, bound)
    warnings = []
    for h, name in enumerate(cl.host_names):
        over = [r for r in range(cl.nres) if cl.initial_load[h][r] > cl.usable[h][r]]
        if over:
            res = [cl.resources[r] for r in over]
            used = _fmt_amounts(res, [cl.initial_load[h][r] for r in over])
            usable = _fmt_amounts(res, [cl.usable[h][r] for r in over])
            warnings.append('host %s already uses %s, above its usable %s at headroom %s%%; the plan never adds '
                            'to it' % (name, used, usable, _headroom_out(cl.headroom)))
    for number, item in enumerate(details, 1):
        item['number'] = number
    return {
        'batches': [item['hosts'] for item in details],
        'batch_details': details,
        'lower_bound': bound,
        'host_count': sum(len(s) for s in stages),
        'already_upgraded': [n for i, n in enumerate(cl.host_names) if cl.upgraded[i]],
        'resources': list(cl.resources),
        'evacuation': cl.mode,
        'headroom': _headroom_out(cl.headroom),
        'max_parallel': cl.max_parallel,
        'aio_first': bool(aio_first),
        'warnings': warnings,
    }


def _schedule(cl, stages, bound):
    """Run the strategies; small clusters get all of them, big ones stop at the first plan."""
    if cl.mode == 'shutdown':
        return _Scheduler(cl).run(stages)
    small = len(cl.host_names) <= _SMALL_HOSTS and len(cl.vm_names) <= _SMALL_VMS
    best = error = None
    for strategy in _STRATEGIES:
        try:
            details = _Scheduler(cl, strategy).run(stages)
        except PlannerError as exc:
            if error is None:
                error = exc
            continue
        if best is None or len(details) < len(best):
            best = details
        if not small or len(best) <= bound:
            break
    if best is None:
        raise error
    return best


def _headroom_out(frac):
    return int(frac) if frac.denominator == 1 else float(frac)


def render_plan_text(plan):
    """A readable rendering of a plan returned by plan_upgrade()."""
    batches = plan['batch_details']
    mode = plan['evacuation']
    lines = []
    lines.append('Upgrade plan: %d host(s) in %d batch(es); lower bound %d; one host at a time would take %d.'
                 % (plan['host_count'], len(batches), plan['lower_bound'], plan['host_count']))
    lines.append('Evacuation: %s, headroom %s%%, max_parallel %s, aio_first %s.'
                 % (mode, plan['headroom'], 'unlimited' if plan['max_parallel'] is None else plan['max_parallel'],
                    'yes' if plan['aio_first'] else 'no'))
    if plan['already_upgraded']:
        lines.append('Already upgraded (not scheduled, valid targets): %s.' % ', '.join(plan['already_upgraded']))
    for text in plan['warnings']:
        lines.append('Warning: %s.' % text)
    who = 'the operator' if mode == 'manual' else 'the play'
    for item in batches:
        lines.append('')
        lines.append('Batch %d/%d: %s' % (item['number'], len(batches), ', '.join(item['hosts'])))
        if mode == 'manual' and item['evacuate']:
            lines.append('  %s must empty: %s' % (who, ', '.join(item['evacuate'])))
        for move in item['moves']:
            lines.append('  migrate %s: %s -> %s' % (move['vm'], move['source'], move['target']))
        for stop in item['stop']:
            lines.append('  stop %s on %s, restart it there after the batch' % (stop['vm'], stop['host']))
        if not item['moves'] and not item['stop']:
            lines.append('  no VM to move or stop')
        if item['free_after']:
            lines.append('  free after the moves (capacity minus headroom minus load):')
            for host in sorted(item['free_after']):
                amounts = item['free_after'][host]
                lines.append('    %s: %s' % (host, ' '.join('%s=%s' % (r, amounts[r]) for r in plan['resources'])))
    return '\n'.join(lines) + '\n'


_TRUE = ('1', 'true', 'yes', 'on', 'y')
_FALSE = ('0', 'false', 'no', 'off', 'n', '')


def _attr_bool(value, what):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PlannerError('%s must be a boolean-like value (true/false/yes/no/1/0), got %r' % (what, value))


_RUNNING = ('started', 'promoted', 'unpromoted', 'master', 'slave', 'migrating')


def pcs_facts_to_input(facts, storage_attribute='storage_group', aio_attribute='aio',
                       upgraded_attribute='upgraded', pinned_attribute='pinned', role_attribute='clusterops-role'):
    """Map pcs_info-style facts to ``{'hosts': [...], 'vms': [...]}`` (see docs/planner.md).

    nodes: [{name, online, standby, maintenance, utilization: {memory: N}, attributes: {...}}]
    resources: [{id, agent, role, nodes: [...], allow_migrate, utilization: {memory: N}, meta?: {...}}]
    """
    if not isinstance(facts, dict):
        raise PlannerError('facts must be the dictionary pcs_info returns, got %r' % (facts,))
    nodes = facts.get('nodes')
    resources = facts.get('resources', [])
    if not isinstance(nodes, list) or not nodes:
        raise PlannerError('facts.nodes must be a non-empty list of nodes')
    if not isinstance(resources, list):
        raise PlannerError('facts.resources must be a list')
    hosts = []
    unavailable = []
    no_capacity = set()
    for pos, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise PlannerError('facts.nodes[%d] must be a dictionary' % pos)
        name = node.get('name')
        if not isinstance(name, str) or not name:
            raise PlannerError('facts.nodes[%d] has no name' % pos)
        util = node.get('utilization') or {}
        if not isinstance(util, dict) or PRIMARY_RESOURCE not in util:
            # Not a VM host (e.g. a controller): pacemaker places no VM with a
            # utilization demand on a node without that capacity.
            no_capacity.add(name)
            continue
        state = [s for s in ('standby', 'maintenance') if node.get(s)]
        if node.get('online') is False:
            state.insert(0, 'offline')
        if state:
            unavailable.append('%s (%s)' % (name, ', '.join(state)))
            continue
        attrs = node.get('attributes') or {}
        if not isinstance(attrs, dict):
            raise PlannerError('node %s: attributes must be a dictionary' % name)
        host = {
            'name': name,
            'capacity': dict((str(k), _as_int(v, 'node %s utilization %s' % (name, k))) for k, v in util.items()),
            'storage_group': str(attrs.get(storage_attribute, DEFAULT_STORAGE_GROUP)) or DEFAULT_STORAGE_GROUP,
            'role': 'aio' if (str(attrs.get(role_attribute, '')).strip().lower() == 'aio' or
                              _attr_bool(attrs.get(aio_attribute, False),
                                         'node %s attribute %s' % (name, aio_attribute))) else 'compute',
            'upgraded': _attr_bool(attrs.get(upgraded_attribute, False),
                                   'node %s attribute %s' % (name, upgraded_attribute)),
        }
        hosts.append(host)
    if unavailable:
        raise PlannerError('node(s) %s are not in service; the planner needs every node online and active: '
                           'bring them back (pcs node unstandby / pcs node unmaintenance) or finish the run that '
                           'took them out' % _names(unavailable, 20))
    known = set(h['name'] for h in hosts)
    vms = []
    for pos, rsc in enumerate(resources):
        if not isinstance(rsc, dict):
            raise PlannerError('facts.resources[%d] must be a dictionary' % pos)
        util = rsc.get('utilization') or {}
        if not util:
            continue  # not a VM: no capacity to plan for
        rid = rsc.get('id')
        role = str(rsc.get('role', '')).lower()
        if role not in _RUNNING:
            continue  # stopped: needs no capacity now
        where = rsc.get('nodes') or []
        if len(where) != 1:
            raise PlannerError('resource %s runs on %d nodes (%s); the planner models VMs as primitives running on '
                               'one node' % (rid, len(where), ', '.join(map(str, where))))
        if where[0] in no_capacity:
            raise PlannerError('resource %s runs on node %s, which has no utilization %s capacity; set it with '
                               'pcs node utilization %s %s=<MiB>' % (rid, where[0], PRIMARY_RESOURCE, where[0],
                                                                     PRIMARY_RESOURCE))
        if where[0] not in known:
            raise PlannerError('resource %s runs on node %s, which is not among the nodes' % (rid, where[0]))
        meta = rsc.get('meta') or {}
        vms.append({
            'name': rid,
            'host': where[0],
            'demand': dict((str(k), _as_int(v, 'resource %s utilization %s' % (rid, k))) for k, v in util.items()),
            'migratable': _attr_bool(rsc.get('allow_migrate', False), 'resource %s allow_migrate' % rid),
            'pinned': _attr_bool(rsc.get('pinned', meta.get(pinned_attribute, False)),
                                 'resource %s %s' % (rid, pinned_attribute)),
        })
    return {'hosts': hosts, 'vms': vms}
