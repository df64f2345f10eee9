#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the upgrade planner: plan quality and planning time.

    .venv/bin/python tests/bench/bench_planner.py [--quick]

For every cluster shape (several seeds each) it prints the batches of the plan
against the lower bound (ratio, lower is better, 1.00 is optimal) and against
one host at a time (how many times fewer waves), the median planning time, then
the averages, and the median of 3 timings for 5,000 hosts / 100,000 VMs. Every
plan is replayed by the independent checker of the unit tests before it counts.
Not a test: no assertion on time; it only prints.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'collections'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'unit', 'plugins', 'module_utils'))

from ansible_collections.clusterops.upgrade.plugins.module_utils._planner import (  # noqa: E402
    plan_upgrade, render_plan_text)
from planner_checker import check_plan, usable_capacity  # noqa: E402

GIB = 1024


def make_cluster(rnd, groups, load, headroom, vm_sizes, vcpu=False, aio=0, pinned=0.0, huge=None,
                 capacity_choices=None):
    """groups: list of (name, host count); load: fraction of usable memory in use."""
    hosts = []
    vms = []
    count = 0
    for gname, nhosts in groups:
        for i in range(nhosts):
            mem = rnd.choice(capacity_choices) if capacity_choices else 512 * GIB
            host = {'name': '%s-h%04d' % (gname, i), 'capacity': {'memory': mem}, 'storage_group': gname}
            if vcpu:
                host['capacity']['vcpu'] = 128
            if aio and len(hosts) < aio:
                host['role'] = 'aio'
            hosts.append(host)
            target = usable_capacity(mem, headroom) * load * rnd.uniform(0.8, 1.2)
            target = min(target, usable_capacity(mem, headroom))
            used = 0
            while True:
                size = vm_sizes(rnd)
                if used + size > target:
                    break
                used += size
                vm = {'name': 'vm%06d' % count, 'host': host['name'], 'demand': {'memory': size}}
                if vcpu:
                    vm['demand']['vcpu'] = max(1, size // (4 * GIB))
                if pinned and rnd.random() < pinned:
                    vm['pinned'] = True
                vms.append(vm)
                count += 1
    if huge:
        vms[0]['demand']['memory'] = 0
        host = hosts[-1]
        vms.append({'name': 'vm-huge', 'host': host['name'],
                    'demand': {'memory': int(usable_capacity(host['capacity']['memory'], headroom) * huge)}})
        # make room on that host for the huge VM
        vms = [v for v in vms if v['host'] != host['name'] or v['name'] == 'vm-huge']
    return hosts, vms


def uniform_sizes(lo, hi):
    return lambda rnd: rnd.randint(lo, hi) * GIB


def skewed_sizes(rnd):
    if rnd.random() < 0.08:
        return rnd.choice((48, 64, 96, 128)) * GIB
    return rnd.choice((1, 2, 2, 4, 4, 4, 8, 8, 16)) * GIB


SHAPES = [
    # name, cluster kwargs, planner options
    ('uniform 32h 50%', dict(groups=[('g', 32)], load=0.50, vm_sizes=uniform_sizes(4, 16)),
     dict(headroom=10)),
    ('uniform 32h 50% mp4', dict(groups=[('g', 32)], load=0.50, vm_sizes=uniform_sizes(4, 16)),
     dict(headroom=10, max_parallel=4)),
    ('32h <=60% load', dict(groups=[('g', 32)], load=0.60, vm_sizes=uniform_sizes(2, 32)),
     dict(headroom=10)),
    ('skewed VM sizes', dict(groups=[('g', 32)], load=0.55, vm_sizes=skewed_sizes), dict(headroom=10)),
    ('several storage groups', dict(groups=[('a', 16), ('b', 12), ('c', 8), ('d', 4)], load=0.45,
                                    vm_sizes=uniform_sizes(2, 24)), dict(headroom=10)),
    ('nearly full', dict(groups=[('g', 32)], load=0.85, vm_sizes=uniform_sizes(2, 16)), dict(headroom=5)),
    ('nearly full, large VMs', dict(groups=[('g', 32)], load=0.80, vm_sizes=uniform_sizes(16, 64)),
     dict(headroom=5)),
    ('large VMs (8-25% of host)', dict(groups=[('g', 32)], load=0.60, vm_sizes=uniform_sizes(40, 128)),
     dict(headroom=10)),
    ('one huge VM', dict(groups=[('g', 24)], load=0.50, vm_sizes=uniform_sizes(4, 16), huge=0.7),
     dict(headroom=10)),
    ('many small hosts', dict(groups=[('g', 200)], load=0.50, vm_sizes=uniform_sizes(1, 8),
                              capacity_choices=[64 * GIB]), dict(headroom=10)),
    ('mixed capacities', dict(groups=[('g', 40)], load=0.55, vm_sizes=uniform_sizes(2, 32),
                              capacity_choices=[256 * GIB, 512 * GIB, 768 * GIB, 1024 * GIB]),
     dict(headroom=10)),
    ('ICS-like aio+vcpu+pinned', dict(groups=[('g', 21)], load=0.50, vm_sizes=uniform_sizes(2, 32), vcpu=True,
                                      aio=1, pinned=0.05), dict(headroom=10)),
    ('shutdown mode mp8', dict(groups=[('g', 64)], load=0.70, vm_sizes=uniform_sizes(2, 32)),
     dict(evacuation='shutdown', max_parallel=8)),
]


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process): the machine is shared, so
    the CPU time says what the planner costs when the wall clock waits for others."""
    wall = time.perf_counter()
    cpu = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_shapes(seeds):
    all_ratios = []
    lines = []
    header = '%-26s %5s %6s %8s %7s %7s %9s %9s %8s' % (
        'shape', 'hosts', 'VMs', 'batches', 'bound', 'ratio', 'max ratio', '1-at-time', 'time ms')
    lines.append(header)
    lines.append('-' * len(header))
    best_vs_serial = []
    for name, shape, options in SHAPES:
        ratios = []
        batches = []
        bounds = []
        serial = []
        times = []
        nh = nv = 0
        for seed in range(seeds):
            rnd = random.Random('%s/%d' % (name, seed))
            hosts, vms = make_cluster(rnd, headroom=options.get('headroom', 0), **shape)
            nh, nv = len(hosts), len(vms)
            plan, took, dummy_cpu = timed(plan_upgrade, hosts, vms, **options)
            check_plan(hosts, vms, plan, **options)
            ratios.append(float(len(plan['batches'])) / plan['lower_bound'])
            batches.append(len(plan['batches']))
            bounds.append(plan['lower_bound'])
            serial.append(float(plan['host_count']) / len(plan['batches']))
            times.append(took * 1000)
        all_ratios.extend(ratios)
        if name == '32h <=60% load':
            best_vs_serial = serial
        lines.append('%-26s %5d %6d %8.1f %7.1f %7.2f %9.2f %8.1fx %8.1f' % (
            name, nh, nv, statistics.mean(batches), statistics.mean(bounds), statistics.mean(ratios),
            max(ratios), statistics.mean(serial), statistics.median(times)))
    lines.append('-' * len(header))
    lines.append('plans: %d, batches / lower bound: average %.3f, worst %.2f (targets: <= 1.10 average, '
                 '<= 1.50 worst)' % (len(all_ratios), statistics.mean(all_ratios), max(all_ratios)))
    lines.append('32 hosts at <= 60%% load: %.1fx to %.1fx fewer waves than one host at a time (target >= 4x)'
                 % (min(best_vs_serial), max(best_vs_serial)))
    return lines


def run_large(repeats=3):
    rnd = random.Random('large')
    groups = [('sg%02d' % i, 500) for i in range(10)]
    hosts, vms = make_cluster(rnd, groups=groups, load=0.55, headroom=10, vm_sizes=uniform_sizes(2, 22))
    # about 20 VMs per host
    times = []
    cpu_times = []
    text_times = []
    plan = None
    for dummy in range(repeats):
        plan, took, cpu = timed(plan_upgrade, hosts, vms, headroom=10)
        times.append(took)
        cpu_times.append(cpu)
        dummy_text, took_text, dummy_cpu = timed(render_plan_text, plan)
        text_times.append(took_text)
    check_plan(hosts, vms, plan, headroom=10)
    moves = sum(len(b['moves']) for b in plan['batch_details'])
    return [
        '%d hosts / %d VMs (10 storage groups, 55%% load, headroom 10%%):' % (len(hosts), len(vms)),
        '  plan in %.2f s wall (median of %d: %s), %.2f s CPU (median: %s); plan text %.2f s more'
        % (statistics.median(times), repeats, ', '.join('%.2f' % t for t in times), statistics.median(cpu_times),
           ', '.join('%.2f' % t for t in cpu_times), statistics.median(text_times)),
        '  load average while measuring: %s' % ' '.join('%.1f' % x for x in os.getloadavg()),
        '  %d batches, lower bound %d (ratio %.2f), %d migrations, checker: valid'
        % (len(plan['batches']), plan['lower_bound'], float(len(plan['batches'])) / plan['lower_bound'], moves),
    ]


def main(argv):
    quick = '--quick' in argv
    seeds = 2 if quick else 5
    print('upgrade planner benchmark (%d seeds per shape; ratio = batches / lower bound)' % seeds)
    for line in run_shapes(seeds):
        print(line)
    print()
    for line in run_large(1 if quick else 3):
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
