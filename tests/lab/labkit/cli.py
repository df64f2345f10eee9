"""labctl's command line (see tests/lab/labctl and docs/lab.md)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from . import config, faults, inventory, proc
from .lab import Lab, LabError


def placement(mon: ET.Element, cib: ET.Element) -> dict:
    """{node: {"capacity": int|None, "used": int, "resources": [ids]}} from
    crm_mon XML (where things run) and the CIB (utilization)."""
    demand = {}
    for prim in cib.iter("primitive"):
        util = prim.find("utilization")
        if util is not None:
            for nv in util.iter("nvpair"):
                if nv.get("name") == "memory":
                    demand[prim.get("id")] = int(nv.get("value"))
    result = {}
    for node in cib.find("configuration/nodes").iter("node"):
        cap = None
        util = node.find("utilization")
        if util is not None:
            for nv in util.iter("nvpair"):
                if nv.get("name") == "memory":
                    cap = int(nv.get("value"))
        result[node.get("uname")] = {"capacity": cap, "used": 0, "resources": []}
    for res in mon.iter("resource"):
        if res.get("role") not in ("Started", "Promoted", "Unpromoted", "Migrating"):
            continue
        for where in res.iter("node"):
            slot = result.setdefault(where.get("name"),
                                     {"capacity": None, "used": 0, "resources": []})
            slot["resources"].append(res.get("id"))
            slot["used"] += demand.get(res.get("id"), 0)
    return result


def cmd_status(lab: Lab, _args) -> int:
    state = lab.load_state()
    topo = lab.topo
    print(f"lab {topo.prefix}: {len(topo.nodes)} nodes on network {topo.network} "
          f"({topo.subnet}), lb_float_ip {topo.vip}")
    if not state:
        print("state: DOWN (no lab state; run `make lab-up`)")
        return 1
    print(f"image: {state.get('image')}")
    print(f"loop device: {state.get('loop')} (disk {state.get('disk')})")
    print(f"inventory: {inventory.host_path()}")
    print(f"upgrade_bundle_dir: {state.get('bundle_dir')}")
    print(f"services packages: {state.get('services_dir')}")
    containers = lab.containers()
    running = [n for n in containers if containers[n] == "running"]
    if not running:
        print("containers: none running")
        return 1
    observer = lab.some_running()
    print(f"\n--- crm_mon -1 (on {observer})")
    print(lab.exec(observer, ["crm_mon", "-1"], check=False).stdout.rstrip())
    mon, cib = lab.crm_mon(observer), lab.cib(observer)
    place = placement(mon, cib)
    states = {n.get("name"): n for n in mon.iter("node") if n.get("online") is not None}
    print("\n--- placement and product version")
    print(f"{'NODE':7} {'ROLE':11} {'IP':13} {'CONTAINER':10} {'CLUSTER':12} {'PRODUCT':8} "
          f"{'MEMORY used/capacity':22} RESOURCES")
    for n in topo.nodes:
        cstate = containers.get(n.name, "missing")
        x = states.get(n.name)
        if x is None:
            cl = "?"
        elif x.get("online") != "true":
            cl = "offline"
        elif x.get("standby") == "true":
            cl = "standby"
        elif x.get("maintenance") == "true":
            cl = "maintenance"
        else:
            cl = "online"
        version = "-"
        if cstate == "running":
            cp = lab.exec(n.name, ["cat", "/etc/labsphere/version"], check=False)
            version = cp.stdout.strip() if cp.returncode == 0 else "missing"
        p = place.get(n.name, {"capacity": None, "used": 0, "resources": []})
        if p["capacity"]:
            mem = f"{p['used']}/{p['capacity']} ({100 * p['used'] // p['capacity']}%)"
        else:
            mem = "-"
        role = n.attrs.get("clusterops-role", n.role)
        print(f"{n.name:7} {role:11} {n.ip:13} {cstate:10} {cl:12} {version:8} {mem:22} "
              + " ".join(sorted(p["resources"])))
    probs = lab.problems()
    print("\nhealth: " + ("OK" if not probs else "NOT healthy: " + "; ".join(probs)))
    return 0


def cmd_is_up(lab: Lab, _args) -> int:
    if not lab.load_state():
        print("lab is down")
        return 1
    probs = lab.problems()
    for p in probs:
        print(p)
    return 1 if probs else 0


def cmd_ssh(lab: Lab, args) -> int:
    lab.topo.node(args.node)
    if not inventory.exists():
        raise LabError("no lab inventory: run `labctl up` first")
    argv = inventory.ssh_argv(args.node, *args.argv)
    os.execvpe(argv[0], argv, proc.env())
    return 1


def cmd_exec(lab: Lab, args) -> int:
    argv = ["podman", "exec"] + (["-it"] if sys.stdin.isatty() else ["-i"])
    argv += [lab.container(args.node), *args.argv]
    os.execvpe(argv[0], argv, proc.env())
    return 1


@contextlib.contextmanager
def exclusive():
    """One `labctl up/down/record-fixtures` at a time on this machine."""
    config.STATE.mkdir(parents=True, exist_ok=True)
    with open(config.STATE / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            proc.log("another labctl up/down is running; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="labctl", description="The clusterops.upgrade test lab.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build (cached) and start the lab; quick when already healthy")
    d = sub.add_parser("down", help="remove containers, network, loop device, inventory")
    d.add_argument("--check", action="store_true", help="then fail if anything is left")
    sub.add_parser("status", help="cluster, VM placement with memory, product version per node")
    sub.add_parser("is-up", help="exit 0 iff the lab runs and is healthy")
    w = sub.add_parser("wait", help="wait until the lab is healthy")
    w.add_argument("--timeout", type=float, default=120)
    s = sub.add_parser("ssh", help="real ssh into a node (lab key, known_hosts)")
    s.add_argument("node")
    s.add_argument("argv", nargs=argparse.REMAINDER)
    e = sub.add_parser("exec", help="podman exec into a node")
    e.add_argument("node")
    e.add_argument("argv", nargs=argparse.REMAINDER)
    for name, hlp in (("kill", "podman kill a node (power cut); wait until the cluster sees it gone"),
                      ("start", "start a killed node and wait until it is a cluster member"),
                      ("reboot", "systemctl reboot inside a node; wait until it is back")):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("node")
        p.add_argument("--no-wait", action="store_true")
    c = sub.add_parser("corrupt-active-img", help="damage cOS/active.img: "
                       + ", ".join(faults.CORRUPTIONS))
    c.add_argument("node")
    c.add_argument("kind", choices=sorted(faults.CORRUPTIONS))
    r = sub.add_parser("reset-active-img", help="put the pristine active.img back")
    r.add_argument("node")
    b = sub.add_parser("boot-mode", help="mode of the next boot: auto|active|passive|recovery")
    b.add_argument("node")
    b.add_argument("mode", choices=("auto", "active", "passive", "recovery"))
    t = sub.add_parser("tamper-rpm", help="add|remove|change a package, delete-backup, restore")
    t.add_argument("node")
    t.add_argument("action", choices=("add", "remove", "change", "delete-backup", "restore"))
    t.add_argument("package", nargs="?")
    sub.add_parser("reset-product", help="back to a clean 6.8.0 after an upgrade: rpm db and backups, "
                   "journals removed, no ban/standby/maintenance, VMs started")
    f = sub.add_parser("fill-disk", help="fill the node's /var/log partition to PCT%% (0 empties)")
    f.add_argument("node")
    f.add_argument("pct", type=int)
    rf = sub.add_parser("record-fixtures", help="record real pacemaker outputs for unit tests")
    rf.add_argument("dir", nargs="?", type=Path)
    args = ap.parse_args(argv)
    lab = Lab()
    lock = exclusive() if args.command in ("up", "down", "record-fixtures") \
        else contextlib.nullcontext()
    try:
        with lock:
            return _dispatch(lab, args)
    except (LabError, proc.CommandError) as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 1


def _dispatch(lab: Lab, args) -> int:
    if args.command == "up":
        lab.up()
        return 0
    if args.command == "down":
        lab.down()
        if args.check:
            left = lab.leftovers()
            for item in left:
                print(f"left behind: {item}")
            return 1 if left else 0
        return 0
    if args.command == "status":
        return cmd_status(lab, args)
    if args.command == "is-up":
        return cmd_is_up(lab, args)
    if args.command == "wait":
        probs = lab.wait_healthy(args.timeout)
        for p in probs:
            print(p)
        return 1 if probs else 0
    if args.command == "ssh":
        return cmd_ssh(lab, args)
    if args.command == "exec":
        return cmd_exec(lab, args)
    if args.command == "kill":
        faults.kill(lab, args.node, wait=not args.no_wait)
    elif args.command == "start":
        faults.start(lab, args.node, wait=not args.no_wait)
    elif args.command == "reboot":
        print(f"{args.node}: new boot id {faults.reboot(lab, args.node, wait=not args.no_wait)}")
    elif args.command == "corrupt-active-img":
        rc = faults.corrupt_active_img(lab, args.node, args.kind)
        print(f"{args.node}: active.img corrupted ({args.kind}); fsck.ext2 -fn rc={rc}")
    elif args.command == "reset-active-img":
        rc = faults.reset_active_img(lab, args.node)
        print(f"{args.node}: pristine active.img restored; fsck.ext2 -fn rc={rc}")
    elif args.command == "boot-mode":
        faults.set_boot_mode(lab, args.node, args.mode)
        print(f"{args.node}: next boot mode {args.mode} (labctl reboot {args.node})")
    elif args.command == "tamper-rpm":
        state = lab.load_state()
        if not state.get("rpm_dir"):
            raise LabError("the lab is down: run `labctl up` first")
        print(faults.tamper_rpm(lab, args.node, args.action, args.package,
                                Path(state["rpm_dir"])))
    elif args.command == "record-fixtures":
        from . import record
        record.record(lab, args.dir or record.DEFAULT_DIR)
    elif args.command == "reset-product":
        state = lab.load_state()
        if not state.get("rpm_dir"):
            raise LabError("the lab is down: run `labctl up` first")
        for line in faults.reset_product(lab, Path(state["rpm_dir"])):
            print(line)
    elif args.command == "fill-disk":
        print(f"{args.node}: /var/log at {faults.fill_disk(lab, args.node, args.pct)}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
