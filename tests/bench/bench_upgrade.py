#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time the lab upgrade and split it into the platform's own waits and controller overhead.

    .venv/bin/python tests/bench/bench_upgrade.py [--runs N] [--soak S] [--forks F] [--timings FILE ...]

Each run resets the lab to 6.8.0 (`labctl reset-product`), runs
`ansible-playbook playbooks/upgrade.yml -i inventories/lab` with the timing callback of
tests/bench/callback_plugins (start and end of every task on every host), and splits the wall
time into:

* platform waits - the tasks whose time is the platform's own work: evacuation and return
  (maintenance_mode: standby waits for the live migrations, unstandby), reboots
  (ansible.builtin.reboot), the soak and the settle gates (cluster_soak), the switch-over and
  the freeze (pcs_move, pcs_ban), VM stop/start (vm_power), the rpm transaction (rpm_apply
  when it installs). Their intervals are merged across hosts (batches run hosts in parallel);
* controller overhead - everything else: Ansible and SSH start-up, module transfer, journal
  writes, reads, dry runs, planning, templating, skipped tasks.

A platform task also carries one module start-up. The "net" figure subtracts, from every
platform task, the median duration of the cheapest module task of the same run (a journal
read), and counts it as overhead instead. Both shares are printed; medians over the runs.

`--timings FILE` analyses recorded timing files instead of running (no lab needed). Nothing is
asserted (it is a benchmark): the figures depend on the machine's load, printed with them.
The lab must be up (`labctl up`; LAB_NAME/LAB_SUBNET select it) and is left at 6.8.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABCTL = REPO / "tests" / "lab" / "labctl"
sys.path.insert(0, str(REPO / "tests" / "lab"))

# (action, words in the task name that make it a read-only probe) -> category
PLATFORM = {
    "clusterops.upgrade.maintenance_mode": "migrations / standby",
    "ansible.builtin.reboot": "reboots",
    "clusterops.upgrade.cluster_soak": "soak and settle",
    "clusterops.upgrade.pcs_move": "switch-over",
    "clusterops.upgrade.pcs_ban": "freeze / release",
    "clusterops.upgrade.vm_power": "VM stop / start",
    "clusterops.upgrade.rpm_apply": "rpm transaction",
}
PROBE_WORDS = ("Dry run", "Find the VMs", "rpm set is the new baseline")
BASELINE_ACTION = "clusterops.upgrade.upgrade_journal"


def load(path):
    tasks, play_starts, end = [], [], None
    with open(path) as handle:
        for line in handle:
            data = json.loads(line)
            if data.get("event") == "play_start":
                play_starts.append(data["time"])
            elif data.get("event") == "playbook_end":
                end = data["time"]
            elif "task" in data and "status" in data:
                tasks.append(data)
    return tasks, play_starts, end


def category(task):
    if task["status"] == "skipped":
        return None
    cat = PLATFORM.get(task["action"])
    if cat is None or any(w in task["task"] for w in PROBE_WORDS):
        return None
    if task["action"] == "clusterops.upgrade.rpm_apply" and "Install" not in task["task"]:
        return None
    return cat


def union(intervals):
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def analyse(path):
    tasks, play_starts, end = load(path)
    start = min(play_starts) if play_starts else min(t["start"] for t in tasks)
    end = end or max(t["end"] for t in tasks)
    wall = end - start
    baseline = [t["end"] - t["start"] for t in tasks
                if t["action"] == BASELINE_ACTION and t["status"] == "ok" and "Read" in t["task"]]
    startup = statistics.median(baseline) if baseline else 0.0
    by_cat, intervals, net_intervals = {}, [], []
    for t in tasks:
        cat = category(t)
        if cat is None:
            continue
        intervals.append((t["start"], t["end"]))
        net_start = min(t["end"], t["start"] + startup)
        net_intervals.append((net_start, t["end"]))
        by_cat.setdefault(cat, []).append((t["start"], t["end"]))
    platform = union(intervals)
    net = union(net_intervals)
    return {
        "wall": wall,
        "platform": platform,
        "platform_net": net,
        "overhead_share": (wall - platform) / wall,
        "overhead_share_net": (wall - net) / wall,
        "module_startup": startup,
        "tasks": len(tasks),
        "tasks_run": sum(1 for t in tasks if t["status"] != "skipped"),
        "by_category": dict((c, union(v)) for c, v in by_cat.items()),
    }


def run_once(timings, soak, extra, forks=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests" / "bench" / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="upgrade_timings", UPGRADE_TIMINGS_FILE=str(timings),
               ANSIBLE_INVENTORY_IGNORE="known_hosts,ssh_config", ANSIBLE_NOCOLOR="1",
               LANG="C.UTF-8", LC_ALL="C.UTF-8")
    if forks:
        env["ANSIBLE_FORKS"] = str(forks)
    subprocess.run([str(LABCTL), "reset-product"], check=True, env=env, stdout=subprocess.DEVNULL)
    from labkit import config  # noqa: E402  (after sys.path)
    from labkit.lab import Lab  # noqa: E402
    lab = Lab()
    variables = {"upgrade_version_file": "/etc/labsphere/version", "upgrade_datastores": ["/var/log"],
                 "upgrade_soak_urls": [f"http://{lab.topo.vip}:{dict(config.SERVICES)['gateway']}/health"],
                 "upgrade_soak_time": soak, "upgrade_report_dir": tempfile.mkdtemp(prefix="bench-upgrade-")}
    variables.update(extra)
    vars_file = Path(tempfile.mkstemp(suffix=".json")[1])
    vars_file.write_text(json.dumps(variables))
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(REPO / "inventories" / "lab"),
                           str(REPO / "playbooks" / "upgrade.yml"), "-e", f"@{vars_file}"],
                          cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    elapsed = time.monotonic() - t0
    vars_file.unlink()
    if proc.returncode != 0:
        raise SystemExit(f"the upgrade failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--soak", type=int, default=20)
    ap.add_argument("--forks", type=int, default=None, help="ANSIBLE_FORKS for the runs (default: ansible.cfg's)")
    ap.add_argument("--timings", nargs="*", help="analyse these timing files instead of running")
    args = ap.parse_args()
    files = [Path(f) for f in args.timings or []]
    if not files:
        out = Path(tempfile.mkdtemp(prefix="bench-upgrade-timings-"))
        for i in range(args.runs):
            path = out / f"run{i + 1}.jsonl"
            elapsed = run_once(path, args.soak, {}, args.forks)
            print(f"run {i + 1}/{args.runs}: {elapsed:.0f}s (load average {os.getloadavg()[0]:.1f}); timings {path}",
                  flush=True)
            files.append(path)
    results = [analyse(f) for f in files]
    for i, r in enumerate(results, 1):
        cats = ", ".join(f"{c} {s:.0f}s" for c, s in sorted(r["by_category"].items(), key=lambda kv: -kv[1]))
        print(f"run {i}: wall {r['wall']:.0f}s, platform {r['platform']:.0f}s ({cats}); overhead "
              f"{100 * r['overhead_share']:.0f}% (net of module start-up {r['module_startup']:.1f}s per task: "
              f"{100 * r['overhead_share_net']:.0f}%); {r['tasks_run']} task results run, {r['tasks']} in all")

    def med(key):
        return statistics.median(r[key] for r in results)

    print(f"\nmedian of {len(results)} run(s): wall {med('wall'):.0f}s, platform waits {med('platform'):.0f}s, "
          f"controller overhead {med('wall') - med('platform'):.0f}s = {100 * med('overhead_share'):.0f}% of the "
          f"wall time ({100 * med('overhead_share_net'):.0f}% counting each platform task's module start-up as "
          f"overhead); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
