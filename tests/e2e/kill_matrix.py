#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill the upgrade with SIGKILL at 10 different points, resume each time, check the cluster.

    .venv/bin/python tests/e2e/kill_matrix.py [--only N ...] [--soak S] [--out DIR]

For every point: `labctl reset-product` (6.8.0, no journal), run
`ansible-playbook playbooks/upgrade.yml -i inventories/lab` in its own session, and the moment
the point's task starts (plus a delay) SIGKILL the whole process group - the controller, its
workers and their ssh connections, as a killed AWX job or a lost shell would. Wait until every
node answers again (a node that was rebooting comes back by itself), then run the
same command again (it must resume from the journal and finish, rc 0) and check, with the
lab's own tools: every node at 6.8.1, every VM Started (none lost), lb_float_ip running,
nothing banned or preferred, no node in standby or maintenance, the journals finished with
nothing outstanding, the run report passed.

Not collected by pytest (a standalone script: each point costs one upgrade, 5-9 minutes at a load average of 5-10 on
the shared 2-core machine). Prints one line per point and a table at the end; exits 1 when a
point failed. The lab must be up (`labctl up`; LAB_NAME/LAB_SUBNET select it); it is left
upgraded (6.8.1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))

from labkit import config, faults, upgrade  # noqa: E402
from labkit.lab import Lab  # noqa: E402
from labkit.testing import labctl  # noqa: E402

RUN_ID = f"upgrade-{config.FROM_VERSION}-{config.TO_VERSION}"

# (label, start of the task name (without the role prefix), n-th start of it, seconds after the start)
POINTS = [
    ("preflight host checks", "Run every host-side check", 1, 1.0),
    ("journal begun, snapshots being written", "Journal | Snapshot the host before it changes", 1, 1.0),
    ("bundles being copied", "Copy the bundles the host does not hold a verified copy of", 1, 1.0),
    ("first controller frozen (ban being placed)", "Freeze failover | Ban the resource from", 1, 0.5),
    ("first controller rebooting", "Reboot proof | Reboot with ansible.builtin.reboot", 1, 3.0),
    # (the controller without the VIP goes first: its pass skips the move and the soak, so the
    # switch-over and the soak are the second starts of those tasks)
    ("switch-over in flight", "Controller | Move ", 2, 1.0),
    ("during the soak", "Controller | Soak - ", 2, 4.0),
    ("compute batch 1 entering standby (VMs migrating)", "Enter maintenance | Enter it with pacemaker_node", 1, 1.0),
    ("compute batch 2 rpm transaction", "Apply | Install the bundle's packages", 4, 0.5),
    ("compute batch 3 leaving standby", "Release | Leave maintenance / standby this run entered", 5, 0.5),
]


def check(lab: Lab, resumed: upgrade.Run) -> list:
    problems = upgrade.problems(lab)
    for n in lab.topo.nodes:
        rec = upgrade.journal(lab, n.name, RUN_ID)
        if rec is None:
            problems.append(f"{n.name}: no journal")
            continue
        left = [e["id"] for e in rec["created"] if e["undone_at"] is None and e["kind"] != "backup"]
        if rec["status"] != "success" or left:
            problems.append(f"{n.name}: journal {rec['status']}, outstanding {left}")
    run = upgrade.journal(lab, lab.topo.controllers[0].name, RUN_ID, "run")
    if not run or run["status"] != "success":
        problems.append(f"run record: {run and run['status']}")
    try:
        report = json.loads((resumed.report_dir / RUN_ID / "upgrade.json").read_text())
        if report["summary"]["blocked"]:
            problems.append(f"report blocked: {report['summary']['failed_blockers']}")
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"no run report: {exc}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", type=int, nargs="*", help="point numbers (1-10) to run")
    ap.add_argument("--soak", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lab = Lab()
    out = args.out or upgrade.tmpdir("kill-matrix-")
    variables = upgrade.lab_vars(lab, upgrade_soak_time=args.soak)
    rows = []
    for number, (label, task, nth, delay) in enumerate(POINTS, 1):
        if args.only and number not in args.only:
            continue
        workdir = out / f"point{number:02d}"
        labctl("reset-product", timeout=900)
        t0 = time.monotonic()
        killed = upgrade.run_upgrade(lab, variables, workdir, "killed", kill_at=(task, nth), kill_delay=delay)
        # the task in flight when the kill came: the last task header the playbook printed
        headers = re.findall(r"^TASK \[(.*)\] \**$", killed.output, re.M)
        inflight = headers[-1] if headers else "-"
        hit = upgrade.same_task(inflight, task)
        # As an operator would: wait until every node is back (a node the killed job was
        # rebooting comes back by itself) before running the playbook again.
        for n in lab.topo.nodes:
            faults.wait_member(lab, n.name, True, timeout=300)
            faults.wait_ssh(lab, n.name, timeout=300)
        before = upgrade.problems(lab)
        resumed = upgrade.run_upgrade(lab, variables, workdir, "resumed")
        problems = [] if resumed.rc == 0 else [f"resume rc {resumed.rc}: see {workdir}/resumed.log"]
        if not hit:
            problems.append(f"killed in '{inflight}', not in '{task}'")
        problems += check(lab, resumed)
        ok = killed.killed and not problems
        rows.append((number, label, killed.killed, inflight, len(before), round(killed.seconds), round(resumed.seconds),
                     ok, problems))
        print(f"point {number:2d} {'PASS' if ok else 'FAIL'}: {label}: killed={killed.killed} after "
              f"{killed.seconds:.0f}s in '{inflight}'; left after the kill: {'; '.join(before) or 'nothing'}; resumed in "
              f"{resumed.seconds:.0f}s (rc {resumed.rc}); {'; '.join(problems) or 'cluster at 6.8.1, every VM running, '
              'nothing banned or in standby, journals finished'} [{time.monotonic() - t0:.0f}s, load "
              f"{os.getloadavg()[0]:.1f}]", flush=True)
    print("\n| # | kill point | killed | at task | deviations after the kill | kill s | resume s | result |")
    print("|--:|---|---|---|--:|--:|--:|---|")
    for number, label, was_killed, last, nbefore, ks, rs, ok, problems in rows:
        print(f"| {number} | {label} | {was_killed} | {last.split(' : ')[-1][:60]} | {nbefore} | {ks} | {rs} | "
              f"{'PASS' if ok else 'FAIL: ' + '; '.join(problems)} |")
    print(f"\n{sum(1 for r in rows if r[7])}/{len(rows)} passed; logs under {out}")
    return 0 if all(r[7] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
