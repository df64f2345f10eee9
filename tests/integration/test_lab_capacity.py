"""Capacity is real in the lab: VMs are pacemaker resources with memory
utilization, and compute nodes have a memory capacity.

One compute node out at a time: every VM keeps running (live migration).
Half of them out at once (two of the default four): pacemaker has to stop VMs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import testing  # noqa: E402
from labkit.testing import all_vms_started, mon_roles, standby, vm_names  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # the module-scoped fixture every test here uses

# Runs inside a controller: pacemaker's own scheduler on copies of the live
# CIB, one copy per standby combination. Prints {combination: [stopped VMs]}.
SIMULATE = r"""
import itertools, json, os, shutil, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

env = dict(os.environ, LANG="C", LC_ALL="C")
work = tempfile.mkdtemp()
base = os.path.join(work, "base.xml")
with open(base, "w") as f:
    subprocess.run(["cibadmin", "--query"], stdout=f, check=True, env=env)
result = {}
nodes = sys.argv[1:]
for k in (1, (len(nodes) + 1) // 2):
    for combo in itertools.combinations(nodes, k):
        cib, out = os.path.join(work, "cib.xml"), os.path.join(work, "out.xml")
        shutil.copy(base, cib)
        for node in combo:
            subprocess.run(["crm_attribute", "--node", node, "--name", "standby",
                            "--update", "on", "--lifetime", "forever"],
                           env=dict(env, CIB_file=cib), check=True)
        subprocess.run(["crm_simulate", "--xml-file", cib, "--simulate", "--quiet",
                        "--save-output", out], env=env, check=True, stdout=subprocess.DEVNULL)
        mon = subprocess.run(["crm_mon", "-1", "--output-as=xml"], env=dict(env, CIB_file=out),
                             check=True, capture_output=True, text=True).stdout
        result[" ".join(combo)] = sorted(
            r.get("id") for r in ET.fromstring(mon).iter("resource")
            if r.get("id").startswith("vm-") and r.get("role") != "Started")
shutil.rmtree(work)
print(json.dumps(result))
"""


def test_scheduler_dry_run_one_node_fits_half_the_nodes_do_not(lab):
    computes = [n.name for n in lab.topo.computes]
    half = (len(computes) + 1) // 2
    out = lab.exec(lab.topo.controllers[0].name, ["python3", "-", *computes],
                   input=SIMULATE, timeout=600).stdout
    result = json.loads(out)
    singles = {k: v for k, v in result.items() if len(k.split()) == 1}
    halves = {k: v for k, v in result.items() if len(k.split()) == half}
    assert singles == {n: [] for n in computes}
    assert len(halves) == math.comb(len(computes), half)
    # Every way of taking half the compute nodes out at once stops some VM.
    assert sorted(k for k, v in halves.items() if not v) == []


def test_one_compute_node_at_a_time_keeps_every_vm_running(lab):
    computes = [n.name for n in lab.topo.computes]
    for node in computes[1:3]:
        with standby(lab, [node]):
            roles = mon_roles(lab.crm_mon())
            placed = {vm: roles[vm] for vm in vm_names(lab)}
            assert [vm for vm, (role, _n) in placed.items() if role != "Started"] == []
            assert [vm for vm, (_r, where) in placed.items() if where == node] == []
    roles = all_vms_started(lab)
    assert [vm for vm in vm_names(lab) if roles[vm][0] != "Started"] == []


def test_half_the_compute_nodes_at_once_stop_vms_and_unstandby_restarts_them(lab):
    computes = [n.name for n in lab.topo.computes]
    half = computes[1:1 + (len(computes) + 1) // 2]
    with standby(lab, half):
        roles = mon_roles(lab.crm_mon())
        stopped = [vm for vm in vm_names(lab) if roles[vm][0] == "Stopped"]
        # Capacity ran out: pacemaker stopped VMs (and `standby --wait` still
        # returned 0), and nothing runs on the nodes in standby.
        assert stopped != []
        assert [vm for vm in vm_names(lab) if roles[vm][1] in half] == []
    roles = all_vms_started(lab)
    assert [vm for vm in vm_names(lab) if roles[vm][0] != "Started"] == []
