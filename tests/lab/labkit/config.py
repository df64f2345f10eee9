"""Lab topology, names, addresses and paths.

Everything a caller may want to override comes from the environment:

LAB_CONTROLLERS  number of controllers (ctl-a, ctl-b, ...)      default 2
LAB_COMPUTES     number of compute nodes (cmp-1 ... cmp-N)     default 4
LAB_VMS          number of "VMs" (vm-01 ... vm-NN)              default 12
LAB_SUBNET       the lab network, a /24                        default 10.89.77.0/24
LAB_NAME         prefix of containers, network and image       default clusterops-lab
"""

from __future__ import annotations

import ipaddress
import os
import string
from dataclasses import dataclass, field
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent
ROOT = LAB_DIR.parent.parent
CACHE = LAB_DIR / ".cache"
STATE = LAB_DIR / ".state"
IMAGE_DIR = LAB_DIR / "image"
CONTAINERS_CONF = LAB_DIR / "containers.conf"
INVENTORY_DIR = ROOT / "inventories" / "lab"

# Product versions packaged as RPMs; the lab installs FROM_VERSION.
FROM_VERSION = "6.8.0"
TO_VERSION = "6.8.1"
BUNDLE_PREFIX = "LabSphere_V6R08B011-V6R08B111-b1-x86_64"
BUNDLES = {"management": f"{BUNDLE_PREFIX}-M001-b1.upgrade.zip",
           "compute": f"{BUNDLE_PREFIX}-S001-b1.upgrade.zip"}

# SequoiaCM-style services on the controllers, in dependency order.
SERVICES = (("registry", 8810), ("auth", 8830), ("gateway", 8080))

HACLUSTER_PASSWORD = "hacluster"  # lab only; the network is private to the host
CLUSTER_NAME = "labsphere"

# Node memory capacity and VM sizes (arbitrary units, read as MiB). The
# demand is 2.5 compute nodes' worth: one compute node out fits, two do not.
NODE_MEMORY = 16384
VM_SIZES = (2048, 4096, 3072, 4096, 2048, 3072, 4096, 3072, 2048, 4096, 3072, 4096)


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r}: expected a whole number between {low} and {high}")
    if not low <= value <= high:
        raise SystemExit(f"{name}={value}: expected a number between {low} and {high}")
    return value


@dataclass(frozen=True)
class Node:
    name: str
    role: str  # controller | compute
    ip: str
    node_id: int
    attrs: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_controller(self) -> bool:
        return self.role == "controller"


@dataclass(frozen=True)
class Topology:
    prefix: str
    subnet: ipaddress.IPv4Network
    nodes: tuple
    vms: tuple  # (name, memory, allow_migrate)

    @property
    def network(self) -> str:
        return self.prefix

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def vip(self) -> str:
        return str(self.subnet.network_address + 10)

    @property
    def controllers(self) -> list:
        return [n for n in self.nodes if n.role == "controller"]

    @property
    def computes(self) -> list:
        return [n for n in self.nodes if n.role == "compute"]

    def container(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        names = ", ".join(n.name for n in self.nodes)
        raise SystemExit(f"unknown lab node {name!r}: the lab has {names}")

    def as_dict(self) -> dict:
        return {
            "prefix": self.prefix,
            "subnet": str(self.subnet),
            "vip": self.vip,
            "nodes": [{"name": n.name, "role": n.role, "ip": n.ip, "id": n.node_id,
                       "attrs": dict(n.attrs)} for n in self.nodes],
            "vms": [{"name": v, "memory": m, "allow_migrate": a} for v, m, a in self.vms],
        }


def topology() -> Topology:
    controllers = _env_int("LAB_CONTROLLERS", 2, 1, 4)
    computes = _env_int("LAB_COMPUTES", 4, 3, 8)
    vm_count = _env_int("LAB_VMS", round(len(VM_SIZES) * computes / 4), 1, 40)
    prefix = os.environ.get("LAB_NAME", "clusterops-lab")
    if not prefix.replace("-", "").isalnum():
        raise SystemExit(f"LAB_NAME={prefix!r}: use letters, digits and '-' only")
    raw_subnet = os.environ.get("LAB_SUBNET", "10.89.77.0/24")
    try:
        subnet = ipaddress.IPv4Network(raw_subnet)
    except ValueError as exc:
        raise SystemExit(f"LAB_SUBNET={raw_subnet!r}: {exc}")
    if subnet.prefixlen != 24:
        raise SystemExit(f"LAB_SUBNET={raw_subnet!r}: the lab expects a /24")
    base = subnet.network_address
    nodes = []
    for i in range(controllers):
        nodes.append(Node(f"ctl-{string.ascii_lowercase[i]}", "controller", str(base + 11 + i),
                          len(nodes) + 1, {"clusterops-role": "controller"}))
    for i in range(computes):
        # The first compute node is an all-in-one node (ICS: upgrade it first).
        role_attr = "aio" if i == 0 else "compute"
        nodes.append(Node(f"cmp-{i + 1}", "compute", str(base + 21 + i), len(nodes) + 1,
                          {"clusterops-role": role_attr}))
    vms = []
    for i in range(vm_count):
        # vm-04 cannot live-migrate (stop + start elsewhere).
        vms.append((f"vm-{i + 1:02d}", VM_SIZES[i % len(VM_SIZES)], i != 3))
    return Topology(prefix, subnet, tuple(nodes), tuple(vms))
