"""Record real pacemaker outputs from the lab as unit-test fixtures.

`labctl record-fixtures [DIR]` (default tests/unit/plugins/module_utils/
fixtures/pacemaker/). Every temporary change (ban, standby, maintenance) is
undone in `finally`, and the lab must be healthy again at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import config, faults, proc
from .lab import Lab, LabError

DEFAULT_DIR = config.ROOT / "tests/unit/plugins/module_utils/fixtures/pacemaker"


def _settle(lab: Lab, node: str) -> None:
    # crm_resource --wait: until the cluster has no pending actions.
    lab.exec(node, ["crm_resource", "--wait", "--timeout=120s"], timeout=150)


def record(lab: Lab, out: Path) -> list:
    out.mkdir(parents=True, exist_ok=True)
    ctl = lab.topo.controllers[0].name
    cmps = [n.name for n in lab.topo.computes]
    written = []
    notes = {}

    def save(name: str, argv: list, note: str) -> None:
        cp = lab.exec(ctl, argv, check=False, timeout=120)
        if cp.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed (rc={cp.returncode}): {cp.stderr.strip()}")
        (out / name).write_text(cp.stdout)
        written.append(name)
        notes[name] = (" ".join(argv), note)

    crm_mon = ["crm_mon", "-1", "--output-as=xml"]
    probs = lab.problems()
    if probs:
        raise LabError("record-fixtures needs a healthy lab: " + "; ".join(probs))
    _settle(lab, ctl)
    save("crm_mon_healthy.xml", crm_mon, "healthy lab: 6 nodes online, all resources started")
    save("cibadmin_constraints.xml", ["cibadmin", "--query", "--scope", "constraints"],
         "the lab's location rules (mgmt on controllers, VMs on compute nodes)")
    save("cibadmin_utilization.xml", ["cibadmin", "--query", "--xpath", "//utilization"],
         "every utilization block: node capacities and VM demands")
    save("cibadmin_nodes.xml", ["cibadmin", "--query", "--scope", "nodes"],
         "nodes with attributes (clusterops-role) and utilization")
    save("cibadmin_resources.xml", ["cibadmin", "--query", "--scope", "resources"],
         "the mgmt group and the VM primitives")
    save("crm_simulate_utilization.xml", ["crm_simulate", "-L", "-U", "--output-as=xml"],
         "placement with remaining capacity per node, from the live CIB")
    save("pcs_version.txt", ["pcs", "--version"], "pcs version")
    save("crm_resource_locate_lb_float_ip.txt", ["crm_resource", "--locate", "-r", "lb_float_ip"],
         "where the VIP runs")

    vip_node = lab.exec(ctl, ["crm_resource", "--locate", "-r", "lb_float_ip"]).stdout.split()[-1]
    try:
        lab.exec(ctl, ["pcs", "resource", "ban", "lb_float_ip", vip_node, "--wait=60"], timeout=90)
        save("crm_mon_ban.xml", crm_mon,
             f"after `pcs resource ban lb_float_ip {vip_node} --wait=60` (cli-ban constraint)")
        save("cibadmin_constraints_ban.xml", ["cibadmin", "--query", "--scope", "constraints"],
             "constraints with the cli-ban-lb_float_ip-on-<node> ban")
    finally:
        lab.exec(ctl, ["pcs", "resource", "clear", "lb_float_ip"], check=False)
        _settle(lab, ctl)

    try:
        lab.exec(ctl, ["pcs", "node", "standby", cmps[1], "--wait=120"], timeout=150)
        save("crm_mon_standby.xml", crm_mon, f"{cmps[1]} in standby, its VMs migrated away")
    finally:
        lab.exec(ctl, ["pcs", "node", "unstandby", cmps[1], "--wait=120"], check=False, timeout=150)

    try:
        lab.exec(ctl, ["pcs", "node", "standby", cmps[1], cmps[2], "--wait=120"], timeout=150)
        save("crm_mon_two_standby_vms_stopped.xml", crm_mon,
             f"{cmps[1]} and {cmps[2]} in standby at once: capacity runs out, VMs Stopped")
    finally:
        lab.exec(ctl, ["pcs", "node", "unstandby", cmps[1], cmps[2], "--wait=120"], check=False,
                 timeout=150)

    try:
        lab.exec(ctl, ["pcs", "node", "maintenance", cmps[2]])
        _settle(lab, ctl)
        save("crm_mon_node_maintenance.xml", crm_mon, f"`pcs node maintenance {cmps[2]}`")
    finally:
        lab.exec(ctl, ["pcs", "node", "unmaintenance", cmps[2]], check=False)

    try:
        lab.exec(ctl, ["pcs", "property", "set", "maintenance-mode=true"])
        _settle(lab, ctl)
        save("crm_mon_maintenance_mode.xml", crm_mon, "cluster property maintenance-mode=true")
    finally:
        lab.exec(ctl, ["pcs", "property", "set", "maintenance-mode=false"], check=False)

    victim = cmps[-1]
    try:
        faults.kill(lab, victim)
        time.sleep(2)
        _settle(lab, ctl)
        save("crm_mon_node_offline.xml", crm_mon, f"{victim} killed (podman kill): OFFLINE")
    finally:
        faults.start(lab, victim)

    probs = lab.wait_healthy(120)
    if probs:
        raise LabError("the lab did not return to healthy after recording: " + "; ".join(probs))
    readme = ["# Pacemaker outputs recorded from the lab\n",
              "Recorded with `tests/lab/labctl record-fixtures` on the lab of docs/lab.md "
              "(pacemaker 2.1.5, corosync 3.1.7, pcs 0.11.5; 2 controllers, 4 compute nodes, "
              f"{len(lab.topo.vms)} VMs as ocf:pacemaker:Dummy with memory utilization). "
              "Every change was undone afterwards.\n",
              "| file | command | lab state |", "|---|---|---|"]
    for name in written:
        cmd, note = notes[name]
        readme.append(f"| `{name}` | `{cmd}` | {note} |")
    (out / "README.md").write_text("\n".join(readme) + "\n")
    proc.log(f"recorded {len(written)} outputs in {out}")
    return written
