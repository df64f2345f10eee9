"""Run a command while sampling the lab's crm_mon, then say what the VMs and the VIP went through.

    PYTHONPATH=tests/lab .venv/bin/python -m labkit.watch -- ansible-playbook playbooks/upgrade.yml -i inventories/lab

Used by `make demo` (tools/demo): the upgrade's own output streams to the terminal; afterwards
one summary of the samples (crm_mon --output-as=xml about every second, from any node with
quorum) - which VMs were ever not Started and for how long, where lb_float_ip ran and every
time it was unavailable - and what the cluster looks like now. Exits with the command's status.
"""

from __future__ import annotations

import subprocess
import sys
import time

from . import upgrade
from .lab import Lab


def summary(lab: Lab, sampler: upgrade.Sampler, ops: list) -> list:
    samples = sampler.samples
    good = [s for s in samples if s.roles]
    if not good:
        return ["crm_mon: no sample could be read"]
    span = good[-1].at - good[0].at
    lines = [f"crm_mon sampled {len(good)} times over {span:.0f}s"
             + (f" ({len(samples) - len(good)} samples unreadable)" if len(good) != len(samples) else "")]
    steady, moved = [], []
    for vm, _mem, migrates in lab.topo.vms:
        outages = sampler.outages(vm)
        if not outages:
            steady.append(vm)
            continue
        migrated = [at for at, op, rsc, _n, _r in ops if rsc == vm and op == "migrate_from"]
        text = ", ".join(f"{e - s:.1f}s ({b or '?'} -> {a or '?'}"
                         + (", a sample inside its live migration" if any(s - 2 <= m <= e + 2 for m in migrated)
                            else "") + ")" for s, e, b, a in outages)
        why = "" if migrates else " - it cannot live-migrate: pacemaker restarts it on another host"
        moved.append(f"  {vm} not Started {len(outages)} time(s): {text}{why}")
    lines.append(f"VMs: {len(steady)} of {len(lab.topo.vms)} were Started in every sample")
    lines += moved
    # pacemaker's own record of the run: which VMs were really stopped / started, which migrated
    vms = {vm for vm, _m, _a in lab.topo.vms}
    count = {}
    for _at, op, rsc, _n, _r in ops:
        if rsc in vms:
            count.setdefault(op, set()).add(rsc)
    lines.append(f"pacemaker log: {len([o for o in ops if o[2] in vms and o[1] == 'migrate_from'])} live "
                 f"migration(s) of {len(count.get('migrate_from', ()))} VM(s); VMs started cold (stopped "
                 f"first): {', '.join(sorted(count.get('start', ()))) or 'none'}")
    vip = sampler.outages("lb_float_ip")
    moves = [(at, op, node) for at, op, rsc, node, _r in ops if rsc == "lb_float_ip" and op in ("stop", "start")]
    lines.append("lb_float_ip ran on " + " -> ".join(sampler.nodes_of("lb_float_ip") or ["?"]) + "; "
                 + ("never unavailable" if not vip else "unavailable " + ", ".join(
                     f"{e - s:.1f}s ({b or '?'} -> {a or '?'})" for s, e, b, a in vip))
                 + "; pacemaker log: " + (", ".join(f"{op} on {node}" for _at, op, node in moves) or "never stopped"))
    return lines


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m labkit.watch -- COMMAND...", file=sys.stderr)
        return 2
    lab = Lab()
    t0 = time.time()
    with upgrade.Sampler(lab) as sampler:
        rc = subprocess.call(argv)
    print()
    try:
        ops = upgrade.operations(lab, t0, time.time())
    except Exception as exc:  # a node down: the samples still say what they saw
        print(f"watch: pacemaker log not read: {exc}")
        ops = []
    for line in summary(lab, sampler, ops):
        print(f"watch: {line}")
    try:
        left = upgrade.problems(lab)
    except Exception as exc:  # the lab may be broken: say so, keep the command's status
        left = [f"cannot read the lab: {exc}"]
    print("watch: now: " + ("every node at the new version, every VM running, nothing banned, in standby or "
                            "maintenance" if not left else "; ".join(left)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
