"""The lab's cluster is the one docs/lab.md describes (real corosync/pacemaker/pcsd)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, testing  # noqa: E402
from labkit.testing import mon_nodes, mon_roles, vm_names  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # the module-scoped fixture every test here uses


def _nvpairs(elem: ET.Element) -> dict:
    return {nv.get("name"): nv.get("value") for nv in elem.iter("nvpair")}


def test_every_node_is_online_and_active(lab):
    nodes = mon_nodes(lab.crm_mon())
    expected = sorted(n.name for n in lab.topo.nodes)
    assert sorted(nodes) == expected
    assert sorted(n for n, a in nodes.items()
                  if a["online"] == "true" and a["standby"] == "false"
                  and a["maintenance"] == "false") == expected


def test_vip_and_management_group_run_together_on_a_controller(lab):
    roles = mon_roles(lab.crm_mon())
    role, where = roles["lb_float_ip"]
    assert role == "Started"
    assert where in [n.name for n in lab.topo.controllers]
    assert roles["mgmt-api"] == ("Started", where)
    # IPaddr2 really put the address on eth0 of that node, and only there.
    for n in lab.topo.nodes:
        addrs = lab.exec(n.name, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
        assert (f" {lab.topo.vip}/24 " in addrs) == (n.name == where), n.name


def test_every_vm_is_started_on_a_compute_node(lab):
    roles = mon_roles(lab.crm_mon())
    computes = {n.name for n in lab.topo.computes}
    placed = {vm: roles[vm] for vm in vm_names(lab)}
    assert {vm: r[0] for vm, r in placed.items()} == {vm: "Started" for vm in placed}
    assert {r[1] for r in placed.values()} <= computes


def test_placement_settings(lab):
    cib = lab.cib()
    props = _nvpairs(cib.find("configuration/crm_config"))
    assert props["placement-strategy"] == "utilization"
    assert props["stonith-enabled"] == "false"
    assert props["dc-deadtime"] == "2s"
    assert _nvpairs(cib.find("configuration/rsc_defaults")) == {"resource-stickiness": "100"}


def test_utilization_and_node_attributes(lab):
    cib = lab.cib()
    nodes = {n.get("uname"): n for n in cib.find("configuration/nodes").iter("node")}
    for n in lab.topo.nodes:
        attrs = _nvpairs(nodes[n.name].find("instance_attributes"))
        assert attrs["clusterops-role"] == n.attrs["clusterops-role"]
        util = nodes[n.name].find("utilization")
        if n.role == "compute":
            assert _nvpairs(util) == {"memory": str(config.NODE_MEMORY)}
        else:
            assert util is None
    assert [n.name for n in lab.topo.nodes
            if n.attrs["clusterops-role"] == "aio"] == [lab.topo.computes[0].name]
    prims = {p.get("id"): p for p in cib.iter("primitive")}
    for name, memory, migrate in lab.topo.vms:
        p = prims[name]
        assert (p.get("class"), p.get("provider"), p.get("type")) == ("ocf", "pacemaker", "Dummy")
        assert _nvpairs(p.find("utilization")) == {"memory": str(memory)}
        assert _nvpairs(p.find("meta_attributes")) == {
            "allow-migrate": "true" if migrate else "false"}
    assert [v for v, _m, a in lab.topo.vms if not a] == ["vm-04"]


def test_capacity_is_sized_between_half_and_all_but_one_node():
    """With half the compute nodes out (rounded up) the rest cannot hold every
    VM; with one out they can (by sum; the lab tests check the packing)."""
    topo = config.topology()
    demand = sum(m for _v, m, _a in topo.vms)
    computes = len(topo.computes)
    assert computes // 2 * config.NODE_MEMORY < demand
    assert demand <= (computes - 1) * config.NODE_MEMORY
    assert max(m for _v, m, _a in topo.vms) < config.NODE_MEMORY - demand // computes


def test_pcs_stops_and_starts_another_node_through_pcsd(lab):
    """The TECS flow: `pcs cluster stop/start <node>` from a controller."""
    ctl, target = lab.topo.controllers[0].name, lab.topo.computes[-1].name
    try:
        lab.exec(ctl, ["pcs", "cluster", "stop", target], timeout=120)
        assert mon_nodes(lab.crm_mon(ctl))[target]["online"] == "false"
        assert lab.exec(target, ["systemctl", "is-active", "pacemaker", "corosync"],
                        check=False).stdout.split() == ["inactive", "inactive"]
    finally:
        lab.exec(ctl, ["pcs", "cluster", "start", target, "--wait=120"], timeout=180)
    assert mon_nodes(lab.crm_mon(ctl))[target]["online"] == "true"
    assert lab.wait_healthy(120) == []
