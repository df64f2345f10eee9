"""playbooks/upgrade.yml against the lab (the one labkit points at: LAB_NAME / LAB_SUBNET).

1. Check mode prints the ordered plan and changes nothing; the migrate-mode upgrade takes
   the lab from 6.8.0 to 6.8.1 while a thread samples ``crm_mon --output-as=xml``: every VM
   that can live-migrate was never started anywhere and stopped only to end a live migration
   (pacemaker's own log), and was running in every sample but those taken inside one of its
   migrations (a few hundred milliseconds between migrate_to, migrate_from and the source's
   stop, when crm_mon may show it in neither place); the one that cannot (vm-04) was only
   down inside a standby of its host, lb_float_ip was only down inside a switch-over, nothing
   is left banned, preferred, in standby or maintenance; the run report passed; a second run
   changes nothing.
2. Shutdown mode: the controller is SIGKILLed while the first batch stops its VMs; the
   resumed run finishes that host first, then a compute node of the next batch loses power
   (`labctl kill`): the run stops with a message saying what to do, the run record says which
   batch failed, the batch's other hosts finished; once the node is back the same command
   resumes and finishes. The VMs the run stopped (and only those - a VM an operator had
   stopped stays stopped) run again at the end, the journals list exactly them.
3. Manual mode refuses hosts that still run VMs (preflight), and a --limit without localhost or
   with compute hosts before the control plane is refused; nothing is written anywhere.

Each test starts from `labctl reset-product` (6.8.0, no journal) and leaves the lab reset.
The file makes two full upgrades (one of them interrupted twice) and three refused ones: about
24 minutes at a load average of 8-12 on the shared 2-core machine (migrate 640 s, shutdown and
manual 779 s; each task's Ansible and SSH start-up, see docs/upgrade.md, "Performance").
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, testing, upgrade  # noqa: E402
from labkit.testing import labctl  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # module fixture: skips when the lab is down, fails when unhealthy

RUN_ID = f"upgrade-{config.FROM_VERSION}-{config.TO_VERSION}"
SOAK = 10
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.fixture
def clean(lab):
    labctl("reset-product", timeout=600)
    yield lab
    labctl("reset-product", timeout=600)


def recap(output: str) -> dict:
    return {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                         "failed": int(m.group(5))} for m in RECAP.finditer(output)}


def results(timings: Path) -> list:
    rows = [json.loads(line) for line in timings.read_text().splitlines()]
    return [r for r in rows if "task" in r and "status" in r]


def within(interval, windows, slack=2.0):
    """The outage [s, e] lies inside one of the task windows (sampling granularity as slack)."""
    s, e = interval
    return any(ws - slack <= s and e <= we + slack for ws, we in windows)


def report(run) -> dict:
    return json.loads((run.report_dir / RUN_ID / "upgrade.json").read_text())


def test_check_mode_then_migrate_upgrade_keeps_vms_running_then_nothing_to_do(clean, tmp_path):
    lab = clean
    variables = upgrade.lab_vars(lab, upgrade_soak_time=SOAK)

    # Check mode: the ordered plan, nothing changed on any host.
    dry = upgrade.run_upgrade(lab, variables, tmp_path, "check", check=True)
    assert dry.rc == 0, dry.output[-3000:]
    for line in ("3. Control plane (ctl-a + ctl-b; lb_float_ip on ", "4. Compute, 4 batch(es), all-in-one first",
                 "Batch 1/4: cmp-1", "apply the bundle (one rpm -U); reboot and prove it; unstandby",
                 "switch over: move lb_float_ip "):
        assert line in dry.output
    for node in [n.name for n in lab.topo.nodes]:
        assert lab.exec(node, ["test", "-e", "/var/lib/clusterops-upgrade"], check=False).returncode == 1
    assert set(upgrade.cluster_state(lab)["versions"].values()) == {config.FROM_VERSION}

    # The upgrade, sampled.
    before = upgrade.cluster_state(lab)
    t0 = time.time()
    with upgrade.Sampler(lab) as sampler:
        run = upgrade.run_upgrade(lab, variables, tmp_path, "migrate")
    ops = upgrade.operations(lab, t0, time.time())
    assert run.rc == 0, run.output[-5000:]
    assert upgrade.problems(lab) == []
    assert report(run)["summary"]["blocked"] is False
    rows = results(run.timings)
    moves = [(r["start"], r["end"]) for r in rows
             if r["action"] == "clusterops.upgrade.pcs_move" and r["status"] == "ok"]
    standbys = {}
    for r in rows:
        if r["action"] == "clusterops.upgrade.maintenance_mode" and "Enter it" in r["task"] and r["status"] == "ok":
            standbys.setdefault(r["host"], []).append((r["start"], r["end"]))
    good = [s for s in sampler.samples if s.roles]
    assert len(good) > 100, f"only {len(good)} crm_mon samples"
    cold = [v for v, _m, migrates in lab.topo.vms if not migrates]
    for vm, _m, migrates in lab.topo.vms:
        outages = upgrade.Sampler.outages(sampler, vm)
        if migrates:
            # Pacemaker's own record: the VM was never started anywhere (so it never stopped),
            # and every stop of it ended a live migration (migrate_to, migrate_from, then the
            # source's stop).
            mine = [(at, op, node) for at, op, rsc, node, _res in ops if rsc == vm]
            assert [o for o in mine if o[1] == "start"] == [], (vm, mine)
            migrated = [at for at, op, _n in mine if op == "migrate_from"]
            assert all(any(0 <= at - m <= 5 for m in migrated) for at, op, _n in mine if op == "stop"), (vm, mine)
            # crm_mon agrees; a sample that fell inside the few hundred milliseconds between a
            # migration's steps may show the VM in neither place: only next to a migrate_from.
            assert all(any(s - 2 <= m <= e + 2 for m in migrated) for s, e, _b, _a in outages), (
                vm, outages, sampler.seen.get(vm), mine)
        else:
            # pacemaker restarts it on another host when its host goes to standby - nowhere else
            hosts = [h for h, wins in standbys.items() for w in wins]
            assert all(within((s, e), [w for wins in standbys.values() for w in wins]) and b != a
                       for s, e, b, a in outages), (vm, outages, hosts)
    assert cold == ["vm-04"]
    vip = sampler.outages("lb_float_ip")
    assert len(moves) == 1
    # pacemaker stopped the VIP once, inside the switch-over, and started it on the other controller
    vip_ops = [(op, node) for at, op, rsc, node, _r in ops if rsc == "lb_float_ip" and within((at, at), moves)]
    assert [op for _a, op, rsc, _n, _r in ops if rsc == "lb_float_ip"] == ["stop", "start"], ops
    assert [op for op, _n in vip_ops] == ["stop", "start"] and vip_ops[0][1] != vip_ops[1][1], vip_ops
    assert all(within((s, e), moves) for s, e, _b, _a in vip), (vip, moves)
    assert len(vip) <= len(moves)
    assert sampler.nodes_of("lb_float_ip") == [before["vip"][1], ({"ctl-a", "ctl-b"} - {before["vip"][1]}).pop()]
    run_record = upgrade.journal(lab, "ctl-a", RUN_ID, "run")
    assert run_record["status"] == "success"
    assert [p["name"] for p in run_record["phases"] if p["status"] == "done"][:3] == ["plan", "soak", "control_plane"]
    for node in [n.name for n in lab.topo.nodes]:
        rec = upgrade.journal(lab, node, RUN_ID)
        assert (rec["status"], [e for e in rec["created"] if e["undone_at"] is None and e["kind"] != "backup"]) == (
            "success", [])

    # A second run right after: nothing changes, nothing is done.
    again = upgrade.run_upgrade(lab, variables, tmp_path, "again")
    assert again.rc == 0, again.output[-3000:]
    assert {h: r["changed"] for h, r in recap(again.output).items()} == dict.fromkeys(
        [n.name for n in lab.topo.nodes] + ["localhost"], 0)
    assert f"Run {RUN_ID} finished successfully at " in again.output
    assert "Nothing to do, nothing changed." in again.output


def test_shutdown_mode_sigkill_then_a_lost_node_then_resume_restarts_exactly_the_stopped_vms(clean, tmp_path):
    lab = clean
    ctl = lab.topo.controllers[0].name
    # An operator's stopped VM must stay stopped (and never be recorded).
    lab.exec(ctl, ["crm_resource", "--resource", "vm-12", "--meta", "--set-parameter", "target-role",
                   "--parameter-value", "Stopped"])
    testing.all_vms_started(lab)
    placement = {vm: node for vm, (role, node) in upgrade.cluster_state(lab)["vms"].items() if role == "Started"}
    assert "vm-12" not in placement
    variables = upgrade.lab_vars(lab, upgrade_soak_time=SOAK, upgrade_evacuation="shutdown")

    # 1. SIGKILL the controller while the first batch (the all-in-one host) stops its VMs.
    killed = upgrade.run_upgrade(lab, variables, tmp_path, "killed",
                                 kill_at=("Batch | Shutdown mode - stop them", 1), kill_delay=2)
    assert killed.killed, killed.output[-3000:]
    record = upgrade.journal(lab, "cmp-1", RUN_ID)
    assert sorted(e["id"] for e in record["created"] if e["kind"] == "stopped_vm") == sorted(
        vm for vm, n in placement.items() if n == "cmp-1")

    # 2. Resume; while the next batch runs, one of its compute nodes loses power.
    victim = {}

    def kill_a_batch_host():
        plan = (tmp_path / "reports" / RUN_ID / "plan.txt").read_text()
        hosts = re.search(r"^   Batch 1/1: (.+)$", plan, re.M).group(1).split(", ")
        victim["node"], victim["batch"] = hosts[-1], hosts
        labctl("kill", victim["node"])

    stopped = upgrade.run_upgrade(lab, variables, tmp_path, "node-lost",
                                  kill_at=("Enter maintenance | Enter it with pacemaker_node", 2), kill_delay=1,
                                  action=kill_a_batch_host)
    node, batch = victim["node"], victim["batch"]
    try:
        assert "the journal holds an unfinished run - resuming it" in stopped.output
        # ansible-playbook exits 4 when a host was unreachable (2 for failed tasks only)
        assert stopped.rc == 4, stopped.output[-3000:]
        assert f"Batch 1/1 ({', '.join(batch)}) did not finish on {node}: no answer - lost during the batch " in (
            stopped.output)
        assert "The run stopped here: no further batch was started." in stopped.output
        assert f"bring {node} back (power it on; in the lab `tests/lab/labctl start <node>`)" in stopped.output
        assert f"then run the playbook again with the same run id ({RUN_ID})" in stopped.output
        for ctl_node in ("ctl-a", "ctl-b"):
            run_record = upgrade.journal(lab, ctl_node, RUN_ID, "run")
            failed = [p for p in run_record["phases"] if p["name"] == "compute-batch-1" and p["status"] == "failed"]
            assert [p["details"]["hosts"] for p in failed] == [batch]
            assert run_record["status"] == "running"
        # The batch's other hosts finished (and started their VMs again); nothing is banned.
        for other in batch[:-1]:
            rec = upgrade.journal(lab, other, RUN_ID)
            assert "node" in [p["name"] for p in rec["phases"] if p["status"] == "done"]
            assert [e["id"] for e in rec["created"] if e["undone_at"] is None and e["kind"] != "backup"] == []
        state = upgrade.cluster_state(lab)
        assert (state["offline"], state["cli_constraints"]) == ([node], [])
    finally:
        labctl("start", node)
    # The lost node's own journal says what it was doing.
    rec = upgrade.journal(lab, node, RUN_ID)
    assert rec["status"] == "running"
    assert {e["kind"] for e in rec["created"] if e["undone_at"] is None} >= {"stopped_vm"}

    # 3. Resume again: everything finishes; exactly the VMs the run stopped run again.
    resumed = upgrade.run_upgrade(lab, variables, tmp_path, "resumed")
    assert resumed.rc == 0, resumed.output[-5000:]
    state = upgrade.cluster_state(lab)
    assert {vm for vm, (role, _n) in state["vms"].items() if role != "Started"} == {"vm-12"}
    assert (state["cli_constraints"], state["standby"], state["offline"]) == ([], [], [])
    assert set(state["versions"].values()) == {config.TO_VERSION}
    recorded = {}
    for compute in [n.name for n in lab.topo.computes]:
        rec = upgrade.journal(lab, compute, RUN_ID)
        entries = [e for e in rec["created"] if e["kind"] == "stopped_vm"]
        assert [e["id"] for e in entries if e["undone_at"] is None] == []
        assert {e["node"] for e in entries} <= {compute}
        recorded[compute] = sorted(e["id"] for e in entries)
    # The first batch stopped exactly the VMs that ran on the all-in-one host; over the run every
    # VM that was running was stopped and started again - never the operator's vm-12.
    assert recorded["cmp-1"] == sorted(vm for vm, n in placement.items() if n == "cmp-1")
    assert set().union(*recorded.values()) == set(placement)
    assert report(resumed)["summary"]["blocked"] is False


def test_manual_mode_refuses_hosts_that_still_run_vms_and_limits_that_break_the_order(clean, tmp_path):
    """ICS "manual": the operator empties the hosts; with VMs running, preflight's running_vms
    check blocks the run before the journal begins - nothing is written anywhere. A --limit
    without localhost, or with a compute host but not the (not yet upgraded) control plane, is
    refused the same way: first, with what to do."""
    lab = clean
    plain = upgrade.lab_vars(lab)
    run = upgrade.run_upgrade(lab, plain, tmp_path, "limit-no-localhost", args=("--limit", "cmp-2"))
    assert run.rc == 2, run.output[-3000:]
    assert ("localhost is not part of this run, so the run was never fixed (settings, run id, bundles) and there is "
            "nothing to plan or report with: a --limit must name localhost too, e.g. --limit 'cmp-2,localhost'. "
            "Nothing was changed.") in run.output
    run = upgrade.run_upgrade(lab, plain, tmp_path, "limit-compute", args=("--limit", "cmp-2,localhost"))
    assert run.rc == 2, run.output[-3000:]
    assert (f"ctl-a, ctl-b (outside this run) not upgraded yet by run {RUN_ID}: ICS upgrades the management pair "
            "before any compute node. Run without the --limit first, or include ctl-a, ctl-b in it. Nothing was "
            "changed.") in run.output
    for node in [n.name for n in lab.topo.nodes]:
        assert lab.exec(node, ["test", "-e", "/var/lib/clusterops-upgrade"], check=False).returncode == 1

    variables = upgrade.lab_vars(lab, upgrade_evacuation="manual")
    run = upgrade.run_upgrade(lab, variables, tmp_path, "manual")
    assert run.rc == 2, run.output[-3000:]
    assert "Preflight found blockers (running_vms) on " in run.output
    preflight = json.loads((run.report_dir / RUN_ID / "preflight.json").read_text())
    failed = {r["host"]: r["evidence"] for r in preflight["results"] if r["id"] == "running_vms" and r["status"] == "fail"}
    running = {}
    for vm, (role, node) in upgrade.cluster_state(lab)["vms"].items():
        running.setdefault(node, []).append(vm)
    assert failed == {node: f"{len(vms)} VM(s) running: {', '.join(sorted(vms))}" for node, vms in running.items()}
    for node in [n.name for n in lab.topo.nodes]:
        assert lab.exec(node, ["test", "-e", "/var/lib/clusterops-upgrade"], check=False).returncode == 1
