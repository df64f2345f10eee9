"""Verify the lab_smoke scenario with testinfra over real SSH (ssh://).

The hosts, the SSH client key and the recorded host keys all come from the
lab's generated inventory (inventories/lab/ssh_config)."""

from pathlib import Path
import xml.etree.ElementTree as ET

import yaml

INVENTORY = Path(__file__).resolve().parents[4] / "inventories" / "lab"
SSH_CONFIG = INVENTORY / "ssh_config"


def _groups():
    data = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    children = data["all"]["children"]
    return {g: list(children[g]["hosts"]) for g in ("control_plane", "compute")}


GROUPS = _groups()
NODES = GROUPS["control_plane"] + GROUPS["compute"]
testinfra_hosts = [f"ssh://{n}?ssh_config={SSH_CONFIG}" for n in NODES]


def test_marker_file(host):
    marker = host.file("/var/lib/clusterops-lab/molecule/lab_smoke")
    assert marker.is_file
    assert marker.mode == 0o644
    assert marker.content_string == "converged by molecule scenario lab_smoke\n"


def test_connected_to_the_right_node(host):
    assert host.check_output("hostname") in NODES


def test_node_attribute_set_on_last_compute_node(host):
    node = GROUPS["compute"][-1]
    out = host.check_output(
        f"crm_attribute --node {node} --name clusterops-molecule --lifetime forever --query --quiet")
    assert out == "converged"


def test_cluster_still_healthy(host):
    mon = ET.fromstring(host.check_output("crm_mon -1 --output-as=xml"))
    online = sorted(n.get("name") for n in mon.iter("node")
                    if n.get("online") == "true" and n.get("standby") == "false")
    assert online == sorted(NODES)
