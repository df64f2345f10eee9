"""Fault tools: break a lab node the way the field reports say nodes break,
and put it back. Each function raises LabError with a message naming the
node and what to do when it cannot act."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import artifacts, config, proc
from .lab import Lab, LabError

STATE_MNT = "/run/initramfs/cos-state"
ACTIVE_IMG = f"{STATE_MNT}/cOS/active.img"
FILL_FILE = "/var/log/labctl-fill"

# debugfs requests per corruption kind (LAB.md: each gives fsck.ext2 -fn rc 4,
# then -fy rc 1, then -fn rc 0; "garbage" gives rc 12 first).
CORRUPTIONS = {
    "clri": "clear the inode of a directory (/usr/lib/systemd)",
    "filetype": "give a regular file the wrong type (/etc/os-release becomes a socket)",
    "dir2file": "turn a directory into a regular file (/usr/sbin)",
    "orphan": "a deleted inode still referenced (/usr/sbin/sshd-gen-keys-start)",
    "bitmap": "mark a used block free (a block of /boot/vmlinuz)",
    "garbage": "random bytes over part of the inode table",
}


def _state_mount_rw(lab: Lab, node: str, rw: bool) -> None:
    lab.exec(node, ["mount", "-o", "remount," + ("rw" if rw else "ro"), STATE_MNT])


def _state_is_rw(lab: Lab, node: str) -> bool:
    opts = lab.exec(node, ["findmnt", "-no", "OPTIONS", STATE_MNT], check=False).stdout
    if not opts.strip():
        raise LabError(f"{node}: {STATE_MNT} is not mounted (was the node rebooted mid-way? "
                       "try `labctl reboot {node}`)")
    return "rw" in opts.strip().split(",")


def _debugfs(lab: Lab, node: str, *requests: str) -> str:
    """Run debugfs requests, read-write, on the node's active.img."""
    script = "".join(r + "\n" for r in requests)
    return lab.exec(node, ["debugfs", "-w", "-f", "-", ACTIVE_IMG], input=script).stdout


def fsck_rc(lab: Lab, node: str) -> int:
    """fsck.ext2 -fn on the node's active.img (read-only check, forced)."""
    return lab.exec(node, ["fsck.ext2", "-fn", ACTIVE_IMG], check=False).returncode


def corrupt_active_img(lab: Lab, node: str, kind: str) -> int:
    if kind not in CORRUPTIONS:
        raise LabError(f"unknown corruption kind {kind!r}: use one of {', '.join(CORRUPTIONS)}")
    was_rw = _state_is_rw(lab, node)
    if not was_rw:
        _state_mount_rw(lab, node, True)
    try:
        if kind == "clri":
            _debugfs(lab, node, "clri /usr/lib/systemd")
        elif kind == "filetype":
            _debugfs(lab, node, "set_inode_field /etc/os-release mode 0140644")
        elif kind == "dir2file":
            _debugfs(lab, node, "set_inode_field /usr/sbin mode 0100644")
        elif kind == "orphan":
            f = "/usr/sbin/sshd-gen-keys-start"
            _debugfs(lab, node, f"set_inode_field {f} links_count 0",
                     f"set_inode_field {f} dtime 1718323887", f"freei {f}")
        elif kind == "bitmap":
            out = lab.exec(node, ["debugfs", "-R", "blocks /boot/vmlinuz", ACTIVE_IMG]).stdout
            blocks = out.split()
            if not blocks:
                raise LabError(f"{node}: /boot/vmlinuz has no blocks in active.img")
            _debugfs(lab, node, f"freeb {blocks[0]}")
        elif kind == "garbage":
            out = lab.exec(node, ["dumpe2fs", ACTIVE_IMG]).stdout
            bs = int(re.search(r"^Block size:\s+(\d+)", out, re.M).group(1))
            first = int(re.search(r"Inode table at (\d+)-", out).group(1))
            # Leave the first inodes (root directory, journal) alone.
            lab.exec(node, ["dd", "if=/dev/urandom", f"of={ACTIVE_IMG}", "bs=256",
                            f"seek={first * bs // 256 + 12}", "count=8", "conv=notrunc,fsync",
                            "status=none"])
        lab.exec(node, ["sync", ACTIVE_IMG])
    finally:
        if not was_rw:
            _state_mount_rw(lab, node, False)
    return fsck_rc(lab, node)


def reset_active_img(lab: Lab, node: str) -> int:
    pristine = config.STATE / "active.img.pristine"
    if not pristine.exists():
        raise LabError(f"{pristine} is missing: run `labctl up` (the lab builds it)")
    was_rw = _state_is_rw(lab, node)
    if not was_rw:
        _state_mount_rw(lab, node, True)
    try:
        proc.podman("exec", "-i", lab.container(node), "dd", f"of={ACTIVE_IMG}", "bs=1M",
                    "conv=fsync", "status=none", input=pristine.read_bytes(), text=False)
    finally:
        if not was_rw:
            _state_mount_rw(lab, node, False)
    return fsck_rc(lab, node)


def set_boot_mode(lab: Lab, node: str, mode: str) -> None:
    if mode not in ("auto", "active", "passive", "recovery"):
        raise LabError(f"boot mode {mode!r}: use auto, active, passive or recovery")
    if mode == "auto":
        lab.exec(node, ["rm", "-f", "/var/lib/labctl/boot-mode"])
    else:
        lab.exec(node, ["mkdir", "-p", "/var/lib/labctl"])
        lab.exec(node, ["sh", "-c", 'printf "%s\\n" "$1" >/var/lib/labctl/boot-mode', "sh", mode])


# ------------------------------------------------------------ node lifecycle
def _boot_id(lab: Lab, node: str) -> str:
    return lab.exec(node, ["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()


def wait_member(lab: Lab, node: str, online: bool, timeout: float = 90) -> None:
    """Wait until `node` is (or is no longer) an online cluster member.

    Coming back is judged by the node itself (its own pacemaker must see it
    online); going away by the other nodes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if online:
                observer = node
            else:
                observer = next((n for n in lab.running_nodes() if n != node), None)
            if observer and observer in lab.running_nodes():
                mon = lab.crm_mon(observer)
                x = next((n for n in mon.iter("node") if n.get("name") == node), None)
                is_on = x is not None and x.get("online") == "true"
                if is_on == online:
                    return
        except (LabError, proc.CommandError, ET.ParseError):
            pass
        if time.monotonic() > deadline:
            state = "online" if online else "offline"
            raise LabError(f"{node} did not become {state} in the cluster within {timeout:.0f}s")
        time.sleep(1)


def kill(lab: Lab, node: str, wait: bool = True) -> None:
    """Power cut: SIGKILL the node's container (podman does not restart it)."""
    lab.topo.node(node)
    proc.podman("kill", lab.container(node))
    if wait:
        wait_member(lab, node, False)


def wait_ssh(lab: Lab, node: str, timeout: float = 90) -> None:
    """Wait until real SSH (the lab key, the recorded host key) reaches the node: after a
    power cut the host's neighbour cache may still hold the old container's MAC for a while."""
    from . import inventory
    deadline = time.monotonic() + timeout
    while True:
        cp = proc.run(inventory.ssh_argv(node, "true"), check=False, timeout=30)
        if cp.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{node}: ssh does not answer within {timeout:.0f}s: {cp.stderr.strip()}")
        time.sleep(1)


def start(lab: Lab, node: str, wait: bool = True) -> None:
    lab.topo.node(node)
    proc.podman("start", lab.container(node))
    if wait:
        wait_member(lab, node, True)
        if (config.INVENTORY_DIR / "ssh_config").exists():
            wait_ssh(lab, node)


def _host_boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def reboot(lab: Lab, node: str, wait: bool = True, timeout: float = 120) -> str:
    """`systemctl reboot` inside the node; podman restarts the container.

    Returns the node's new boot id (lab-init gives every boot its own)."""
    before = _boot_id(lab, node)
    host = _host_boot_id()
    lab.exec(node, ["systemctl", "reboot"], check=False)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(1)
        try:
            now = _boot_id(lab, node)
            if now and now not in (before, host):
                break
        except proc.CommandError:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"{node} did not come back from reboot within {timeout:.0f}s")
    if wait:
        wait_member(lab, node, True)
    return now


# ------------------------------------------------------------------- rpm db
def _rpm_names(lab: Lab, node: str) -> list:
    out = lab.exec(node, ["rpm", "-qa", "--qf", "%{NAME}\\n"]).stdout
    return sorted(out.split())


def _copy_in(lab: Lab, node: str, path: Path, dest_dir: str) -> str:
    proc.podman("cp", str(path), f"{lab.container(node)}:{dest_dir}/{path.name}")
    return f"{dest_dir}/{path.name}"


def tamper_rpm(lab: Lab, node: str, action: str, pkg: str | None, rpm_dir: Path) -> str:
    """add / remove / change a package, delete-backup, or restore the baseline.

    Returns a one-line description of what was done."""
    n = lab.topo.node(node)
    if action == "add":
        name = pkg or artifacts.EXTRA[0]
        if name != artifacts.EXTRA[0]:
            raise LabError(f"tamper-rpm add: only {artifacts.EXTRA[0]} can be added")
        f = artifacts.rpm_file(rpm_dir, name, artifacts.EXTRA[2], artifacts.EXTRA[3])
        lab.exec(node, ["rpm", "-i", "--nodeps", _copy_in(lab, node, f, "/tmp")])
        lab.exec(node, ["rm", "-f", f"/tmp/{f.name}"])
        return f"{node}: installed {f.name} (not in the baseline)"
    if action == "remove":
        name = pkg or artifacts.TOOLS[0]
        if name not in _rpm_names(lab, node):
            raise LabError(f"{node}: package {name} is not installed")
        lab.exec(node, ["rpm", "-e", "--nodeps", name])
        return f"{node}: erased {name} from the rpm database"
    if action == "change":
        name = pkg or artifacts.TOOLS[0]
        if name == artifacts.TOOLS[0]:
            f = artifacts.rpm_file(rpm_dir, name, artifacts.TOOLS_CHANGED[2],
                                   artifacts.TOOLS_CHANGED[3])
        elif name in artifacts.ROLE_PACKAGES[n.role]:
            f = artifacts.rpm_file(rpm_dir, name, config.TO_VERSION)
        else:
            raise LabError(f"tamper-rpm change: {name} is not a package of {node}; use one of "
                           + ", ".join((artifacts.TOOLS[0],) + artifacts.ROLE_PACKAGES[n.role]))
        lab.exec(node, ["rpm", "-U", "--oldpackage", "--nodeps", _copy_in(lab, node, f, "/tmp")])
        lab.exec(node, ["rm", "-f", f"/tmp/{f.name}"])
        return f"{node}: replaced {name} by {f.name}"
    if action == "delete-backup":
        name = pkg or artifacts.TOOLS[0]
        out = lab.exec(node, ["sh", "-c", 'ls /var/backup-rpm/"$1"-[0-9]*.rpm 2>/dev/null', "sh",
                              name], check=False).stdout.split()
        if not out:
            raise LabError(f"{node}: no /var/backup-rpm/{name}-*.rpm to delete")
        lab.exec(node, ["rm", "-f", *out])
        return f"{node}: deleted {' '.join(out)}"
    if action == "restore":
        wanted = artifacts.node_rpms(rpm_dir, n.role)
        wanted_names = set(artifacts.ROLE_PACKAGES[n.role]) | {artifacts.TOOLS[0]}
        extra = [p for p in _rpm_names(lab, node) if p not in wanted_names]
        if extra:
            lab.exec(node, ["rpm", "-e", "--nodeps", *extra])
        lab.exec(node, ["sh", "-c", "rm -f /var/backup-rpm/*.rpm"])
        for f in wanted:
            _copy_in(lab, node, f, "/var/backup-rpm")
        lab.exec(node, ["rpm", "-U", "--oldpackage", "--replacepkgs", "--nodeps",
                        *[f"/var/backup-rpm/{f.name}" for f in wanted]])
        return f"{node}: rpm database and /var/backup-rpm back to the {config.FROM_VERSION} baseline"
    raise LabError(f"tamper-rpm action {action!r}: use add, remove, change, delete-backup or restore")


# ---------------------------------------------------------------- disk full
def _df(lab: Lab, node: str, path: str) -> tuple:
    out = lab.exec(node, ["df", "-B1", "--output=size,used,avail,pcent,target", path]).stdout
    size, used, avail, pcent, target = out.splitlines()[1].split()
    return int(size), int(used), int(avail), int(pcent.rstrip("%")), target


def fill_disk(lab: Lab, node: str, pct: int, path: str = "/var/log") -> int:
    """Fill the node's log partition (mounted on /var/log) so `df` shows PCT %.

    PCT 0 removes the filler. Returns the Use% df reports afterwards."""
    if not 0 <= pct <= 100:
        raise LabError(f"fill-disk: PCT must be 0..100, not {pct}")
    if path != "/var/log":
        raise LabError("fill-disk: only /var/log (the node's own log partition) can be filled; "
                       "the node's / is the host's disk")
    lab.exec(node, ["rm", "-f", FILL_FILE])
    lab.exec(node, ["sync", "-f", path])
    if pct > 0:
        _size, used, avail, _p, target = _df(lab, node, path)
        if target != "/var/log":
            raise LabError(f"{node}: /var/log is not the lab log partition (df says {target})")
        usable = used + avail
        # df rounds Use% up: aim at the middle of the PCT bucket.
        want = int(usable * (pct - 0.5) / 100)
        if want > used:
            n = min(want - used, avail)
            lab.exec(node, ["fallocate", "-l", str(n), FILL_FILE])
            lab.exec(node, ["sync", "-f", path])
    return _df(lab, node, path)[3]


# ------------------------------------------------------------ product reset
JOURNAL_ROOT = "/var/lib/clusterops-upgrade"


def _cluster_cleanup(lab: Lab, node: str) -> list:
    """Remove what an upgrade (finished, failed or killed) may leave in the cluster:
    every cli-ban/cli-prefer constraint, node standby/maintenance, the cluster's
    maintenance-mode, a target-role on the VMs, failed actions. Returns what it did."""
    done = []
    cons = ET.fromstring(lab.exec(node, ["cibadmin", "--query", "--scope", "constraints"]).stdout)
    for loc in cons.iter("rsc_location"):
        cid = loc.get("id", "")
        if cid.startswith(("cli-ban-", "cli-prefer-")):
            lab.exec(node, ["cibadmin", "--delete", "--xpath",
                            f"/cib/configuration/constraints/rsc_location[@id='{cid}']"])
            done.append(f"deleted {cid}")
    mon = lab.crm_mon(node)
    for x in mon.iter("node"):
        name = x.get("name")
        if not name or x.get("online") is None:
            continue
        for attr in ("standby", "maintenance"):
            if x.get(attr) == "true":
                lab.exec(node, ["crm_attribute", "--node", name, "--name", attr, "--lifetime", "forever",
                                "--delete"])
                done.append(f"{attr} off on {name}")
    summary = mon.find("summary/cluster_options")
    if summary is not None and summary.get("maintenance-mode") == "true":
        lab.exec(node, ["crm_attribute", "--type", "crm_config", "--name", "maintenance-mode", "--delete"])
        done.append("maintenance-mode off")
    for vm, _mem, _mig in lab.topo.vms:
        cp = lab.exec(node, ["crm_resource", "--resource", vm, "--meta", "--get-parameter", "target-role"],
                      check=False)
        if cp.returncode == 0 and cp.stdout.strip():
            lab.exec(node, ["crm_resource", "--resource", vm, "--meta", "--delete-parameter", "target-role"])
            done.append(f"target-role of {vm} removed")
    lab.exec(node, ["crm_resource", "--cleanup"], check=False)
    return done


def reset_product(lab: Lab, rpm_dir: Path, timeout: float = 180) -> list:
    """Put the lab back to a clean 6.8.0 after an upgrade test: every node running and
    a cluster member, the rpm database and /var/backup-rpm at the 6.8.0 baseline (the
    `tamper-rpm restore` logic), the upgrade journals, bundles and staging removed
    ({JOURNAL_ROOT}), nothing left banned, preferred, in standby or maintenance, every
    VM started. Returns one line per node and what was cleaned in the cluster."""
    lines = []
    stopped = [n for n, s in lab.containers().items() if s != "running"]
    for name in stopped:
        start(lab, name)
        lines.append(f"{name}: started")
    for n in lab.topo.nodes:
        lines.append(tamper_rpm(lab, n.name, "restore", None, rpm_dir))
        lab.exec(n.name, ["rm", "-rf", JOURNAL_ROOT])
    observer = lab.topo.controllers[0].name
    lines += [f"cluster: {d}" for d in _cluster_cleanup(lab, observer)]
    lab.exec(observer, ["crm_resource", "--wait", f"--timeout={int(timeout)}s"], check=False,
             timeout=timeout + 30)
    probs = lab.wait_healthy(timeout)
    if probs:
        raise LabError("the lab is not healthy after reset-product: " + "; ".join(probs))
    for n in lab.topo.nodes:
        wait_ssh(lab, n.name)
    lines.append(f"lab at {config.FROM_VERSION}, journals removed, healthy, ssh answering")
    return lines
