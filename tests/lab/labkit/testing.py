"""Helpers for pytest tests that run against the lab (marked @pytest.mark.lab).

    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
    from labkit.testing import lab, labctl, mon_roles  # noqa: F401  (lab is a fixture)

The `lab` fixture skips when the lab is down (no state file) and fails when it
is up but unhealthy: a broken lab must not pass for a missing one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from . import config, proc
from .lab import STATE_FILE, Lab

LABCTL = config.LAB_DIR / "labctl"


@pytest.fixture(scope="module")
def lab() -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    if not STATE_FILE.exists():
        pytest.skip("the lab is down (make lab-up)")
    the_lab = Lab()
    problems = the_lab.wait_healthy(90)
    assert problems == [], f"the lab is up but not healthy: {problems}"
    return the_lab


def labctl(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run tests/lab/labctl as a user would."""
    cp = subprocess.run([str(LABCTL), *args], capture_output=True, text=True, timeout=timeout,
                        env=proc.env(), check=False)
    if check and cp.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} rc={cp.returncode}\n{cp.stdout}\n{cp.stderr}")
    return cp


def mon_roles(mon: ET.Element) -> dict:
    """{resource id: (role, node or None)} from crm_mon XML."""
    out = {}
    for r in mon.iter("resource"):
        where = [n.get("name") for n in r.iter("node")]
        out[r.get("id")] = (r.get("role"), where[0] if where else None)
    return out


def mon_nodes(mon: ET.Element) -> dict:
    """{node name: attributes} of the <nodes> section of crm_mon XML."""
    nodes = mon.find("nodes")
    return {n.get("name"): dict(n.attrib) for n in nodes.iter("node")}


def vm_names(lab: Lab) -> list:
    return [v for v, _m, _a in lab.topo.vms]


def all_vms_started(lab: Lab, timeout: float = 120) -> dict:
    """Wait until every VM is Started again; returns the final roles."""
    ctl = lab.topo.controllers[0].name
    lab.exec(ctl, ["crm_resource", "--wait", f"--timeout={int(timeout)}s"], check=False,
             timeout=timeout + 30)
    return mon_roles(lab.crm_mon())


@contextlib.contextmanager
def standby(lab: Lab, nodes: list):
    """Put `nodes` in standby at once; always put them back and wait for the
    VMs to start again."""
    ctl = lab.topo.controllers[0].name
    try:
        lab.exec(ctl, ["pcs", "node", "standby", *nodes, "--wait=120"], timeout=180)
        yield
    finally:
        lab.exec(ctl, ["pcs", "node", "unstandby", *nodes, "--wait=120"], check=False,
                 timeout=180)
        all_vms_started(lab)


def installed_nevras(lab: Lab, node: str) -> list:
    """The node's rpm database as sorted NEVRA strings (`rpm -qa`)."""
    out = lab.exec(node, ["rpm", "-qa", "--qf", "%{NEVRA}\\n"]).stdout
    return sorted(out.split())
