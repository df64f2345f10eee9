# -*- coding: utf-8 -*-
# Copyright: contributors to clusterops.upgrade
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host snapshots taken before and after an upgrade, and their comparison.

Three parts, all plain functions on plain data:

* ``capture()`` reads one host: boot identity, kernel, uptime, product version,
  block devices (one ``lsblk`` call), NICs (sysfs), mounts (one ``findmnt`` call)
  and multipath maps (``multipath -ll`` when the tool exists).  Every command goes
  through ``_run()`` (argv list, ``LANG=C``); files are read under ``proc_root`` /
  ``sysfs_root`` so tests can point them at recorded trees.
* ``compare(before, after, options)`` turns two snapshots (or one, for the checks
  that need no history) into findings with a severity.
* ``classify_reboot()`` proves a reboot: ``proven``, ``not_rebooted``,
  ``old_version`` or ``booted_fallback``.
"""

from __future__ import annotations

import datetime
import errno
import fnmatch
import json
import os
import posixpath
import re
import tempfile
import time

SNAPSHOT_FORMAT = 1
C_ENV = {"LANG": "C", "LC_ALL": "C"}

LSBLK_COLUMNS = ("NAME", "KNAME", "PKNAME", "TYPE", "SIZE", "WWN", "SERIAL", "TRAN",
                 "HCTL", "MODEL", "VENDOR", "RO", "RM", "MOUNTPOINT")
FINDMNT_COLUMNS = ("TARGET", "SOURCE", "FSTYPE", "OPTIONS")

# Filesystems that are not storage: never recorded unless named as a datastore.
PSEUDO_FSTYPES = frozenset((
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
    "devpts", "devtmpfs", "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal",
    "fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs", "overlay", "proc", "pstore",
    "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
    "tracefs",
))
# lsblk TYPE values compared as disks, and memory-backed names that are not storage.
DISK_TYPES = frozenset(("disk",))
NOT_STORAGE_PREFIXES = ("zram", "ram")
# NIC kinds compared by default besides physical NICs (they carry the platform's
# management and storage networks); veth/tap/tun and the like come and go with VMs.
TRACKED_VIRTUAL_KINDS = frozenset(("bond", "bridge", "vlan", "team"))
ARPHRD_LOOPBACK = 772
SPEED_UNKNOWN = frozenset((65535, 4294967295))

# Harvester / Elemental boot the passive (fallback) or recovery image with these.
DEFAULT_FALLBACK_MARKERS = ("cos-img/filename=/cOS/passive.img",
                            "cos-img/filename=/cOS/recovery.img")

SEVERITIES = ("error", "warning", "info")
FAIL_ON_CHOICES = SEVERITIES + ("never",)
REBOOT_VERDICTS = ("proven", "not_rebooted", "old_version", "booted_fallback")
# Kernel btime is whole seconds and moves with clock steps: allow this much slack
# when comparing a boot time with the time the reboot was requested.
BOOT_TIME_SLACK = 2.0

DEFAULT_COMPARE_OPTIONS = {
    "min_nic_speed_mbps": 1000,
    "reboot_required_since": None,
    "expected_version": None,
    "datastores": (),
    "nics": (),
    "fallback_cmdline_markers": DEFAULT_FALLBACK_MARKERS,
}


class SnapshotError(Exception):
    """Bad input or an unreadable snapshot; the message names the offending item."""


class ModuleRunner:
    """Adapter from an AnsibleModule to the runner interface used here.

    ``which(name)`` returns the absolute path of a tool or None;
    ``run(argv)`` returns ``(rc, stdout, stderr)``.
    """

    def __init__(self, module):
        self._module = module

    def which(self, name):
        return self._module.get_bin_path(name, required=False)

    def run(self, argv):
        return self._module.run_command(list(argv), environ_update=dict(C_ENV),
                                        expand_user_and_vars=False)


def _run(runner, argv):
    """The one command seam of this file: argv list in, (rc, out, err) out."""
    return runner.run(list(argv))


# ---------------------------------------------------------------------------
# small readers
# ---------------------------------------------------------------------------

def _read_text(path):
    """File contents without the trailing newline; None if unreadable.

    sysfs answers some reads with EINVAL (``speed`` of a down or virtual NIC):
    that is "no value", not an error.
    """
    try:
        with open(path, "r") as handle:
            return handle.read().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path):
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _clean(value):
    """lsblk/findmnt value → stripped string or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    return text or None


def _as_int(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _as_bool(value):
    """lsblk ≥ 2.33 prints true/false, older versions "1"/"0"."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    return str(value).strip() in ("1", "true")


def _pairs(text):
    """Parse ``KEY="value" ...`` lines (lsblk/findmnt -P) into dicts."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = {}
        for key, raw in re.findall(r'([A-Z0-9:_%-]+)="((?:[^"\\]|\\.)*)"', line):
            value = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), raw)
            row[key.lower()] = value
        rows.append(row)
    return rows


def _old_util_linux(rc, err):
    """True when lsblk/findmnt rejected -J (util-linux < 2.27, e.g. EL7)."""
    text = (err or "").lower()
    return rc != 0 and ("invalid option" in text or "unrecognized option" in text
                        or "unknown option" in text)


# ---------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------

def read_boot(proc_root, clock_ticks=None):
    """Boot identity: kernel boot id and boot time, and PID 1's start.

    In a container the kernel's boot id and btime are the host's, so a
    container restart changes neither; PID 1's start (``init_start_ticks``, clock
    ticks since kernel boot) does.  ``booted_at`` is PID 1's start as epoch
    seconds: on a host it is the kernel boot plus the time to start init, in a
    container the container's start.  Returns ``(section, problems)``.
    """
    problems = []
    boot_id = _read_text(posixpath.join(proc_root, "sys/kernel/random/boot_id"))
    if boot_id is None:
        problems.append("cannot read %s/sys/kernel/random/boot_id" % proc_root)
    boot_time = None
    stat = _read_text(posixpath.join(proc_root, "stat"))
    for line in (stat or "").splitlines():
        if line.startswith("btime "):
            boot_time = _as_int(line.split()[1])
    if boot_time is None:
        problems.append("no btime in %s/stat" % proc_root)
    uptime = None
    uptime_text = _read_text(posixpath.join(proc_root, "uptime"))
    if uptime_text:
        try:
            uptime = float(uptime_text.split()[0])
        except (ValueError, IndexError):
            uptime = None
    if uptime is None:
        problems.append("cannot read %s/uptime" % proc_root)
    init_ticks = None
    init_stat = _read_text(posixpath.join(proc_root, "1/stat"))
    if init_stat and ")" in init_stat:
        # Fields after the command name (which may hold spaces and parentheses).
        fields = init_stat.rsplit(")", 1)[1].split()
        if len(fields) > 19:
            init_ticks = _as_int(fields[19])
    if clock_ticks is None:
        clock_ticks = os.sysconf("SC_CLK_TCK")
    booted_at = None
    if boot_time is not None:
        booted_at = float(boot_time)
        if init_ticks is not None and clock_ticks:
            booted_at = round(boot_time + float(init_ticks) / clock_ticks, 2)
    cmdline = _read_text(posixpath.join(proc_root, "cmdline"))
    section = {
        "boot_id": boot_id.strip() if boot_id else None,
        "boot_time": boot_time,
        "init_start_ticks": init_ticks,
        "clock_ticks_per_second": clock_ticks,
        "booted_at": booted_at,
        "uptime_seconds": uptime,
        "cmdline": cmdline.replace("\x00", " ").strip() if cmdline else None,
    }
    return section, problems


def read_kernel(proc_root):
    release = _read_text(posixpath.join(proc_root, "sys/kernel/osrelease"))
    version = _read_text(posixpath.join(proc_root, "sys/kernel/version"))
    hostname = _read_text(posixpath.join(proc_root, "sys/kernel/hostname"))
    return {"release": release, "version": version}, hostname


def read_product_version(runner, version_file=None, version_command=None, version_regex=None):
    """``(version, source, problem)``; version None when no source is configured."""
    if version_file:
        source = "file:%s" % version_file
        text = _read_text(version_file)
        if text is None:
            return None, source, "cannot read version_file %s" % version_file
    elif version_command:
        source = "command:%s" % " ".join(version_command)
        rc, out, err = _run(runner, version_command)
        if rc != 0:
            detail = (err or out or "").strip().splitlines()
            return None, source, "version_command %s exited %d%s" % (
                json.dumps(list(version_command)), rc, (": " + detail[0]) if detail else "")
        text = out
    else:
        return None, None, None
    text = (text or "").strip()
    if version_regex:
        match = re.search(version_regex, text, re.MULTILINE)
        if not match:
            return None, source, "version_regex %r matched nothing in %r" % (version_regex, text[:200])
        text = match.group(1) if match.groups() else match.group(0)
    else:
        text = text.splitlines()[0].strip() if text else ""
    if not text:
        return None, source, "the product version from %s is empty" % source
    return text, source, None


def lsblk_argv(pairs=False):
    return ["lsblk", "-P" if pairs else "-J", "-b", "-o", ",".join(LSBLK_COLUMNS)]


def findmnt_argv(pairs=False):
    if pairs:
        return ["findmnt", "-P", "-o", ",".join(FINDMNT_COLUMNS)]
    return ["findmnt", "-J", "-l", "-o", ",".join(FINDMNT_COLUMNS)]


def _block_device(raw):
    name = _clean(raw.get("name"))
    return {
        "name": name,
        "kname": _clean(raw.get("kname")) or name,
        "pkname": _clean(raw.get("pkname")),
        "type": _clean(raw.get("type")),
        "size": _as_int(raw.get("size")),
        "wwn": _clean(raw.get("wwn")),
        "serial": _clean(raw.get("serial")),
        "tran": _clean(raw.get("tran")),
        "hctl": _clean(raw.get("hctl")),
        "model": _clean(raw.get("model")),
        "vendor": _clean(raw.get("vendor")),
        "ro": _as_bool(raw.get("ro")),
        "rm": _as_bool(raw.get("rm")),
        "mountpoint": _clean(raw.get("mountpoint")),
    }


def _unique_devices(raws):
    """Normalise, flattening lsblk's tree; a multipath map listed under each of its
    paths is kept once (by kernel name)."""
    seen = set()
    out = []
    stack = list(reversed(raws))
    while stack:
        raw = stack.pop()
        if not isinstance(raw, dict):
            continue
        dev = _block_device(raw)
        if dev["kname"] and dev["kname"] not in seen:
            seen.add(dev["kname"])
            out.append(dev)
        stack.extend(reversed(raw.get("children") or []))
    return out


def parse_lsblk_json(text):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError("lsblk printed invalid JSON: %s" % exc)
    return _unique_devices(data.get("blockdevices") or [])


def parse_lsblk_pairs(text):
    return _unique_devices(_pairs(text))


def read_block_devices(runner):
    """``(devices, problem)`` from one lsblk call (a second, -P, only on old util-linux)."""
    rc, out, err = _run(runner, lsblk_argv())
    if rc == 0:
        try:
            return parse_lsblk_json(out), None
        except SnapshotError as exc:
            return [], str(exc)
    if _old_util_linux(rc, err):
        rc, out, err = _run(runner, lsblk_argv(pairs=True))
        if rc == 0:
            return parse_lsblk_pairs(out), None
    return [], "lsblk exited %d: %s" % (rc, (err or out or "").strip()[:300])


def _mount(raw):
    options = _clean(raw.get("options")) or ""
    return {
        "target": _clean(raw.get("target")),
        "source": _clean(raw.get("source")),
        "fstype": _clean(raw.get("fstype")),
        "options": options,
        "ro": "ro" in options.split(","),
    }


def _flatten_mounts(raws):
    out = []
    stack = list(reversed(raws))
    while stack:
        raw = stack.pop()
        if isinstance(raw, dict):
            out.append(_mount(raw))
            stack.extend(reversed(raw.get("children") or []))
    return out


def parse_findmnt_json(text):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError("findmnt printed invalid JSON: %s" % exc)
    return _flatten_mounts(data.get("filesystems") or [])


def parse_findmnt_pairs(text):
    return [_mount(row) for row in _pairs(text)]


def normalize_path(path):
    """Mount targets are compared as normalised absolute paths."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise SnapshotError("datastore path %r must be an absolute path" % (path,))
    return posixpath.normpath(path) if path != "/" else "/"


def storage_mounts(mounts, datastores=()):
    """Keep storage mounts (and every datastore, whatever its type); the last
    mount on a target wins (it is the one visible)."""
    wanted = set(datastores)
    by_target = {}
    for mount in mounts:
        target = mount["target"]
        if not target:
            continue
        if mount["fstype"] in PSEUDO_FSTYPES and target not in wanted:
            continue
        by_target[target] = mount
    return [by_target[t] for t in sorted(by_target)]


def read_mounts(runner, datastores=()):
    rc, out, err = _run(runner, findmnt_argv())
    mounts = None
    if rc == 0:
        try:
            mounts = parse_findmnt_json(out)
        except SnapshotError as exc:
            return [], str(exc)
    elif _old_util_linux(rc, err):
        rc, out, err = _run(runner, findmnt_argv(pairs=True))
        if rc == 0:
            mounts = parse_findmnt_pairs(out)
    if mounts is None:
        return [], "findmnt exited %d: %s" % (rc, (err or out or "").strip()[:300])
    return storage_mounts(mounts, datastores), None


def _nic_kind(path, virtual, uevent):
    if not virtual:
        return "physical"
    if os.path.isdir(posixpath.join(path, "bridge")):
        return "bridge"
    if os.path.isdir(posixpath.join(path, "bonding")):
        return "bond"
    if os.path.exists(posixpath.join(path, "tun_flags")):
        return "tun"
    for line in (uevent or "").splitlines():
        if line.startswith("DEVTYPE="):
            return line.split("=", 1)[1].strip() or "virtual"
    return "virtual"


def read_nics(sysfs_root):
    """NICs from ``<sysfs_root>/class/net``; ``lo`` and loopbacks are skipped.

    ``speed_mbps`` is None when the kernel has no value (EINVAL on read, -1,
    or the unsigned forms of SPEED_UNKNOWN), ``duplex`` None unless full/half.
    ``virtual`` is true when the NIC has no ``device`` link (bridges, bonds,
    veth, tap ...).  Returns ``(nics, problem)``.
    """
    base = posixpath.join(sysfs_root, "class/net")
    try:
        names = sorted(os.listdir(base))
    except OSError as exc:
        return [], "cannot list %s: %s" % (base, exc.strerror or exc)
    nics = []
    for name in names:
        path = posixpath.join(base, name)
        if name == "lo" or _read_int(posixpath.join(path, "type")) == ARPHRD_LOOPBACK:
            continue
        speed = _read_int(posixpath.join(path, "speed"))
        if speed is not None and (speed <= 0 or speed in SPEED_UNKNOWN):
            speed = None
        duplex = _read_text(posixpath.join(path, "duplex"))
        virtual = not os.path.exists(posixpath.join(path, "device"))
        nics.append({
            "name": name,
            "operstate": (_read_text(posixpath.join(path, "operstate")) or "unknown").strip(),
            "speed_mbps": speed,
            "duplex": duplex.strip() if duplex and duplex.strip() in ("full", "half") else None,
            "mtu": _read_int(posixpath.join(path, "mtu")),
            "mac": (_read_text(posixpath.join(path, "address")) or "").strip() or None,
            "virtual": virtual,
            "kind": _nic_kind(path, virtual, _read_text(posixpath.join(path, "uevent"))),
        })
    return nics, None


_MP_HEADER = re.compile(r"^(?P<name>[^\s|`]\S*)(?: \((?P<wwid>[^)]+)\))? (?P<dm>dm-\d+) ?(?P<vp>.*)$")
_MP_PATH = re.compile(r"^[\s|`+-]*(?P<hctl>[0-9#]+:[0-9#]+:[0-9#]+:[0-9#]+)\s+(?P<dev>\S+)\s+"
                      r"(?P<devt>[0-9#]+:[0-9#]+)\s+(?P<rest>.+)$")
_MP_SIZE = re.compile(r"^size=(?P<size>\S+)")
UNHEALTHY_CHECKER_STATES = frozenset(("faulty", "shaky", "i/o timeout", "delayed", "disconnected"))


def parse_multipath_ll(text):
    """Maps from ``multipath -ll``: name, wwid, dm device, vendor/product, size
    and the paths with their dm state, checker state and online state."""
    maps = []
    current = None
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        path = _MP_PATH.match(line)
        if path and current is not None:
            tokens = path.group("rest").split()
            dm_state = tokens[0] if tokens else None
            online = tokens[-1] if len(tokens) > 1 else None
            checker = " ".join(tokens[1:-1]) if len(tokens) > 2 else None
            current["paths"].append({
                "hctl": path.group("hctl"),
                "dev": path.group("dev"),
                "dm_state": dm_state,
                "checker": checker,
                "online": online,
            })
            continue
        size = _MP_SIZE.match(line)
        if size and current is not None:
            current["size"] = size.group("size")
            continue
        header = _MP_HEADER.match(line)
        if header:
            current = {
                "name": header.group("name"),
                "wwid": header.group("wwid") or header.group("name"),
                "dm": header.group("dm"),
                "vendor_product": re.sub(r"\s+,", ",", header.group("vp").strip()) or None,
                "size": None,
                "paths": [],
            }
            maps.append(current)
    for mp in maps:
        mp["active_paths"] = sum(1 for p in mp["paths"] if _path_healthy(p))
        mp["total_paths"] = len(mp["paths"])
    return maps


def _path_healthy(path):
    return (path["dm_state"] == "active" and path["checker"] not in UNHEALTHY_CHECKER_STATES
            and path["online"] == "running")


def read_multipath(runner):
    """``(section, problem)``; no ``multipath`` tool or no dm-multipath driver is
    an empty, available=False section, not a problem."""
    tool = runner.which("multipath")
    if not tool:
        return {"available": False, "maps": []}, None
    rc, out, err = _run(runner, [tool, "-ll"])
    text = "%s\n%s" % (out or "", err or "")
    if "kernel driver not loaded" in text:
        return {"available": False, "maps": []}, None
    if rc != 0:
        return {"available": True, "maps": []}, "multipath -ll exited %d: %s" % (rc, text.strip()[:300])
    return {"available": True, "maps": parse_multipath_ll(out)}, None


def capture(runner, sysfs_root="/sys", proc_root="/proc", version_file=None,
            version_command=None, version_regex=None, datastores=(), now=None):
    """One snapshot of this host (see the module's RETURN for the layout).

    Sections that cannot be read are listed in ``incomplete`` with the reason;
    the rest of the snapshot is still taken.
    """
    datastores = [normalize_path(p) for p in (datastores or ())]
    incomplete = []

    def note(section, problem):
        if problem:
            incomplete.append({"section": section, "reason": problem})

    boot, problems = read_boot(proc_root)
    for problem in problems:
        note("boot", problem)
    kernel, hostname = read_kernel(proc_root)
    version, version_source, problem = read_product_version(
        runner, version_file, version_command, version_regex)
    note("product_version", problem)
    devices, problem = read_block_devices(runner)
    note("block_devices", problem)
    nics, problem = read_nics(sysfs_root)
    note("nics", problem)
    mounts, problem = read_mounts(runner, datastores)
    note("mounts", problem)
    multipath, problem = read_multipath(runner)
    note("multipath", problem)
    return {
        "format": SNAPSHOT_FORMAT,
        "captured_at": round(time.time() if now is None else now, 3),
        "hostname": hostname,
        "kernel": kernel,
        "boot": boot,
        "product_version": version,
        "product_version_source": version_source,
        "block_devices": devices,
        "nics": nics,
        "mounts": mounts,
        "datastores": datastores,
        "multipath": multipath,
        "incomplete": incomplete,
    }


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------

def parse_timestamp(value, name="timestamp"):
    """Epoch seconds (number or numeric string) or ISO 8601 with a UTC offset."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SnapshotError("%s must be epoch seconds or ISO 8601, not a boolean" % name)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        raise SnapshotError("%s %r is neither epoch seconds nor ISO 8601 "
                            "(e.g. 2026-11-20T08:00:00+08:00)" % (name, text))
    if moment.tzinfo is None:
        raise SnapshotError("%s %r has no UTC offset: add Z or +08:00 so the host's "
                            "time zone cannot change its meaning" % (name, text))
    return moment.timestamp()


def iso_utc(epoch):
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(float(epoch), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def validate_snapshot(snapshot, name):
    if not isinstance(snapshot, dict) or snapshot.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError("%s is not a host_snapshot snapshot (format %d): pass the "
                            "'snapshot' returned by clusterops.upgrade.host_snapshot"
                            % (name, SNAPSHOT_FORMAT))
    for key in ("boot", "block_devices", "nics", "mounts", "multipath"):
        if key not in snapshot:
            raise SnapshotError("%s has no %r section: pass a whole snapshot" % (name, key))
    return snapshot


def _finding(severity, kind, obj, before, after, hint):
    return {"severity": severity, "kind": kind, "object": obj,
            "before": before, "after": after, "hint": hint}


def _incomplete(snapshot):
    return set(item["section"] for item in (snapshot or {}).get("incomplete") or [])


def disk_key(dev):
    """Identity of a disk: WWN, else serial, else kernel name."""
    if dev.get("wwn"):
        return "wwn:%s" % dev["wwn"]
    if dev.get("serial"):
        return "serial:%s" % dev["serial"]
    return "name:%s" % dev.get("name")


def storage_disks(devices):
    return [d for d in devices or []
            if d.get("type") in DISK_TYPES
            and not str(d.get("name") or "").startswith(NOT_STORAGE_PREFIXES)]


def _group_disks(devices):
    groups = {}
    for dev in storage_disks(devices):
        groups.setdefault(disk_key(dev), []).append(dev)
    return groups


def _disk_view(devs):
    sizes = [d["size"] for d in devs if d.get("size") is not None]
    return {
        "names": sorted(d["name"] for d in devs),
        "size": max(sizes) if sizes else None,
        "wwn": devs[0].get("wwn"),
        "serial": devs[0].get("serial"),
        "tran": devs[0].get("tran"),
    }


def _disk_label(key, devs):
    names = ",".join(sorted(d["name"] for d in devs))
    return names if key.startswith("name:") else "%s (%s)" % (names, key)


def _compare_disks(before, after):
    findings = []
    old = _group_disks(before["block_devices"])
    new = _group_disks(after["block_devices"])
    for key in sorted(old):
        b = old[key]
        a = new.get(key, [])
        label = _disk_label(key, b)
        if not a:
            findings.append(_finding(
                "error", "disk_missing", label, _disk_view(b), None,
                "the disk is gone: check the LUN mapping, cabling and HBA, then run "
                "clusterops.upgrade.adapter_rescan"))
            continue
        if len(a) < len(b):
            findings.append(_finding(
                "error", "disk_path_lost", label, len(b), len(a),
                "fewer paths to this disk than before: check cabling and zoning, then "
                "run clusterops.upgrade.adapter_rescan"))
        size_b = _disk_view(b)["size"]
        size_a = _disk_view(a)["size"]
        if size_b is not None and size_a is not None and size_a != size_b:
            if size_a < size_b:
                findings.append(_finding(
                    "error", "capacity_changed", label, size_b, size_a,
                    "the disk is smaller than before: check the LUN on the array before "
                    "anything writes to it"))
            else:
                findings.append(_finding(
                    "info", "capacity_changed", label, size_b, size_a,
                    "the disk grew: expected only if the LUN was expanded"))
        names_b = sorted(d["name"] for d in b)
        names_a = sorted(d["name"] for d in a)
        if len(a) == len(b) and names_a != names_b and not key.startswith("name:"):
            findings.append(_finding(
                "info", "disk_renamed", label, names_b, names_a,
                "same disk under a new kernel name: refer to disks by WWN or serial"))
    for key in sorted(set(new) - set(old)):
        findings.append(_finding(
            "info", "disk_added", _disk_label(key, new[key]), None, _disk_view(new[key]),
            "a disk that was not there before: expected only if storage was added"))
    return findings


def _nic_tracked(nic, patterns):
    if patterns:
        return any(fnmatch.fnmatchcase(nic["name"], p) for p in patterns)
    return not nic.get("virtual") or nic.get("kind") in TRACKED_VIRTUAL_KINDS


def _nic_up(nic):
    return nic.get("operstate") in ("up", "unknown")


def _compare_nics(before, after, opts):
    findings = []
    patterns = list(opts["nics"] or ())
    minimum = opts["min_nic_speed_mbps"]
    old = dict((n["name"], n) for n in (before["nics"] if before else []))
    new = dict((n["name"], n) for n in after["nics"])
    if before is not None:
        for name in sorted(old):
            b = old[name]
            if not _nic_tracked(b, patterns):
                continue
            a = new.get(name)
            if a is None:
                findings.append(_finding(
                    "error", "nic_missing", name, b, None,
                    "the interface is gone: check its driver and firmware after the upgrade "
                    "(ip link, dmesg)"))
                continue
            if _nic_up(b) and not _nic_up(a):
                findings.append(_finding(
                    "error", "nic_down", name, b["operstate"], a["operstate"],
                    "the interface was up before: check the cable, the switch port and the "
                    "network configuration"))
                continue
            if a["mtu"] is not None and b["mtu"] is not None and a["mtu"] != b["mtu"]:
                findings.append(_finding(
                    "warning", "nic_mtu_changed", name, b["mtu"], a["mtu"],
                    "the MTU differs from before: check the network configuration "
                    "(jumbo frames on storage networks)"))
            if not (_nic_up(a) and _nic_up(b)):
                continue
            sb, sa = b["speed_mbps"], a["speed_mbps"]
            if sb is not None and sa is None:
                findings.append(_finding(
                    "warning", "nic_speed_unknown", name, sb, None,
                    "the interface no longer reports a speed: check its driver (ethtool)"))
            elif sb is not None and sa < sb and sa >= minimum:
                findings.append(_finding(
                    "warning", "nic_speed_changed", name, sb, sa,
                    "the negotiated speed dropped: check the cable and the switch port"))
        for name in sorted(set(new) - set(old)):
            if _nic_tracked(new[name], patterns):
                findings.append(_finding(
                    "info", "nic_added", name, None, new[name],
                    "an interface that was not there before"))
    for name in sorted(new):
        a = new[name]
        if not _nic_tracked(a, patterns) or not _nic_up(a) or a["speed_mbps"] is None:
            continue
        if a["speed_mbps"] < minimum:
            b = old.get(name)
            prior = b["speed_mbps"] if b else None
            severity = "warning" if prior is not None and prior < minimum else "error"
            findings.append(_finding(
                severity, "nic_speed_low", name, prior, a["speed_mbps"],
                "negotiated below %d Mb/s: usually a bad or loose cable or a switch port "
                "setting (ICS runbook: 100M means a cable problem)" % minimum))
    return findings


def _compare_mounts(before, after, opts):
    findings = []
    now = dict((m["target"], m) for m in after["mounts"])
    then = dict((m["target"], m) for m in (before["mounts"] if before else []))
    datastores = [normalize_path(p) for p in (opts["datastores"] or ())]
    expected = datastores if datastores else sorted(then)
    for target in expected:
        b = then.get(target)
        a = now.get(target)
        if a is None:
            findings.append(_finding(
                "error", "mount_missing", target, b, None,
                "not mounted: mount it (mount -a, or the platform's datastore page) "
                "before starting VMs"))
            continue
        if b is None:
            continue
        if a["ro"] and not b["ro"]:
            findings.append(_finding(
                "error", "mount_readonly", target, b["options"], a["options"],
                "now read-only: look for filesystem or storage errors (dmesg) before "
                "starting VMs"))
        if (a["source"], a["fstype"]) != (b["source"], b["fstype"]):
            findings.append(_finding(
                "warning", "mount_changed", target,
                {"source": b["source"], "fstype": b["fstype"]},
                {"source": a["source"], "fstype": a["fstype"]},
                "a different device or filesystem type is mounted here: check fstab / "
                "the datastore definition"))
    return findings


def _compare_multipath(before, after):
    findings = []
    now = dict((m["wwid"], m) for m in after["multipath"]["maps"])
    if before is not None:
        then = dict((m["wwid"], m) for m in before["multipath"]["maps"])
        for wwid in sorted(then):
            b = then[wwid]
            a = now.get(wwid)
            label = "%s (%s)" % (b["name"], wwid) if b["name"] != wwid else wwid
            if a is None:
                findings.append(_finding(
                    "error", "multipath_map_missing", label, b, None,
                    "the multipath map is gone: run clusterops.upgrade.adapter_rescan "
                    "(rescan and multipath reload)"))
            elif a["active_paths"] < b["active_paths"]:
                findings.append(_finding(
                    "error", "multipath_path_lost", label, b["active_paths"], a["active_paths"],
                    "fewer active paths than before: check cabling and zoning, then run "
                    "clusterops.upgrade.adapter_rescan"))
    for wwid in sorted(now):
        a = now[wwid]
        bad = sorted(p["dev"] for p in a["paths"] if not _path_healthy(p))
        if bad:
            label = "%s (%s)" % (a["name"], wwid) if a["name"] != wwid else wwid
            findings.append(_finding(
                "warning", "multipath_path_faulty", label, None, bad,
                "paths that are failed, faulty or offline: check them with multipath -ll"))
    return findings


def boot_changed(before, after):
    """True when ``after`` is a later boot than ``before`` (host reboot or, in a
    container, a restart of its init)."""
    b, a = before["boot"], after["boot"]
    if b.get("boot_id") and a.get("boot_id") and b["boot_id"] != a["boot_id"]:
        return True
    return (b.get("init_start_ticks") is not None and a.get("init_start_ticks") is not None
            and b["init_start_ticks"] != a["init_start_ticks"])


def detect_boot_mode(snapshot, markers=DEFAULT_FALLBACK_MARKERS):
    """``fallback`` when the kernel command line holds one of ``markers``."""
    cmdline = snapshot["boot"].get("cmdline") or ""
    return "fallback" if any(m and m in cmdline for m in markers or ()) else "normal"


def _compare_boot(before, after, opts):
    findings = []
    host = after.get("hostname") or "host"
    since = opts["reboot_required_since"]
    booted_at = after["boot"].get("booted_at")
    if since is not None and booted_at is not None and booted_at < since:
        findings.append(_finding(
            "error", "not_rebooted", host, iso_utc(since), iso_utc(booted_at),
            "the host has not booted since %s: reboot it (ICS runbook 3.6: every node "
            "is rebooted after the upgrade)" % iso_utc(since)))
    if detect_boot_mode(after, opts["fallback_cmdline_markers"]) == "fallback":
        findings.append(_finding(
            "error", "booted_fallback", host, None, after["boot"].get("cmdline"),
            "the host booted the fallback image: the new image did not boot "
            "(repair it with the clusterops.upgrade.repair_image playbook)"))
    if before is not None:
        if boot_changed(before, after):
            findings.append(_finding(
                "info", "rebooted", host, before["boot"].get("boot_id"),
                after["boot"].get("boot_id"), "the host booted since the earlier snapshot"))
        kb = (before.get("kernel") or {}).get("release")
        ka = (after.get("kernel") or {}).get("release")
        if kb and ka and kb != ka:
            findings.append(_finding("info", "kernel_changed", host, kb, ka,
                                     "a different kernel is running"))
    return findings


def _compare_version(before, after, opts):
    host = after.get("hostname") or "host"
    expected = opts["expected_version"]
    now = after.get("product_version")
    if expected:
        if now != expected:
            return [_finding(
                "error", "version_mismatch", host, expected, now,
                "the product version is not %s: finish or redo the upgrade on this host"
                % expected)]
        return []
    then = before.get("product_version") if before else None
    if then and now and then != now:
        return [_finding("info", "version_changed", host, then, now,
                         "the product version changed")]
    return []


def compare_options(options=None):
    opts = dict(DEFAULT_COMPARE_OPTIONS)
    for key, value in (options or {}).items():
        if key not in opts:
            raise SnapshotError("unknown compare option %r (known: %s)"
                                % (key, ", ".join(sorted(opts))))
        if value is not None:
            opts[key] = value
    minimum = opts["min_nic_speed_mbps"]
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise SnapshotError("min_nic_speed_mbps must be a whole number of Mb/s >= 0, got %r"
                            % (minimum,))
    opts["reboot_required_since"] = parse_timestamp(opts["reboot_required_since"],
                                                    "reboot_required_since")
    return opts


def sort_findings(findings):
    rank = dict((s, i) for i, s in enumerate(SEVERITIES))
    return sorted(findings, key=lambda f: (rank[f["severity"]], f["kind"], str(f["object"])))


def compare(before, after, options=None):
    """Findings for ``after`` (and ``before`` when given), most severe first.

    Without ``before`` only the checks that need no history run: expected
    version, ``reboot_required_since``, fallback boot, NIC speed, datastores,
    faulty multipath paths and sections that could not be captured.
    """
    opts = compare_options(options)
    validate_snapshot(after, "the new snapshot")
    if before is not None:
        validate_snapshot(before, "compare_to")
    findings = []
    skip = _incomplete(after)
    for item in after.get("incomplete") or []:
        findings.append(_finding(
            "error", "capture_incomplete", item["section"], None, item["reason"],
            "this part of the host could not be read, so it was not checked"))
    if before is not None:
        skip_before = _incomplete(before)
        for section in sorted(skip_before - skip):
            findings.append(_finding(
                "warning", "capture_incomplete", section, "not captured earlier", None,
                "the earlier snapshot lacks this part, so it was not compared"))
        skip = skip | skip_before
    prior = before
    if "boot" not in skip:
        findings.extend(_compare_boot(prior, after, opts))
    if "product_version" not in skip:
        findings.extend(_compare_version(prior, after, opts))
    if "block_devices" not in skip and prior is not None:
        findings.extend(_compare_disks(prior, after))
    if "nics" not in skip:
        findings.extend(_compare_nics(prior, after, opts))
    if "mounts" not in skip:
        findings.extend(_compare_mounts(prior, after, opts))
    if "multipath" not in skip:
        findings.extend(_compare_multipath(prior, after))
    return sort_findings(findings)


def count_by_severity(findings):
    counts = dict((s, 0) for s in SEVERITIES)
    for finding in findings:
        counts[finding["severity"]] += 1
    return counts


def findings_at_or_above(findings, level):
    """Findings whose severity is ``level`` or worse; none for ``never``."""
    if level == "never":
        return []
    if level not in SEVERITIES:
        raise SnapshotError("fail_on must be one of %s, got %r" % (", ".join(FAIL_ON_CHOICES), level))
    limit = SEVERITIES.index(level)
    return [f for f in findings if SEVERITIES.index(f["severity"]) <= limit]


def classify_reboot(before, after, requested_at, expected_version=None, boot_mode="normal"):
    """Prove a reboot that was requested at ``requested_at`` (epoch seconds, host clock).

    ``not_rebooted``: same boot as ``before``, or the boot is older than the
    request.  ``booted_fallback``: rebooted, but into the fallback image
    (``boot_mode`` from ``detect_boot_mode``).  ``old_version``: rebooted, but
    the product version is not ``expected_version``.  Otherwise ``proven``.
    """
    validate_snapshot(before, "the snapshot taken before the reboot")
    validate_snapshot(after, "the snapshot taken after the reboot")
    requested = parse_timestamp(requested_at, "reboot_requested_at")
    if requested is None:
        raise SnapshotError("reboot_requested_at is required to prove a reboot")
    if boot_mode not in ("normal", "fallback"):
        raise SnapshotError("boot_mode must be normal or fallback, got %r" % (boot_mode,))
    booted_at = after["boot"].get("booted_at")
    result = {
        "verdict": "proven",
        "reasons": [],
        "boot_id_before": before["boot"].get("boot_id"),
        "boot_id_after": after["boot"].get("boot_id"),
        "booted_at": iso_utc(booted_at),
        "requested_at": iso_utc(requested),
        "boot_mode": boot_mode,
        "product_version": after.get("product_version"),
        "expected_version": expected_version or None,
    }
    reasons = result["reasons"]
    if not boot_changed(before, after):
        reasons.append("same boot as before the request (boot id %s, PID 1 started at %s)"
                       % (result["boot_id_after"], iso_utc(booted_at)))
    elif booted_at is None or booted_at + BOOT_TIME_SLACK < requested:
        reasons.append("the running system booted at %s, before the reboot was requested "
                       "at %s" % (iso_utc(booted_at), iso_utc(requested)))
    if reasons:
        result["verdict"] = "not_rebooted"
        return result
    if boot_mode == "fallback":
        result["verdict"] = "booted_fallback"
        reasons.append("the kernel command line shows the fallback image: %s"
                       % after["boot"].get("cmdline"))
        return result
    if expected_version and after.get("product_version") != expected_version:
        result["verdict"] = "old_version"
        reasons.append("rebooted, but the product version is %s, not %s"
                       % (after.get("product_version"), expected_version))
        return result
    reasons.append("a new boot (boot id %s), started at %s, after the request at %s"
                   % (result["boot_id_after"], iso_utc(booted_at), iso_utc(requested)))
    return result


REBOOT_HINTS = {
    "not_rebooted": "the host did not reboot: check the reboot method and the console",
    "old_version": "the host rebooted into the old version: the upgrade did not take "
                   "effect, redo it on this host",
    "booted_fallback": "the host booted the fallback image: the new image did not boot "
                       "(repair it with the clusterops.upgrade.repair_image playbook)",
}


def reboot_findings(result, hostname=None):
    """One ``reboot_not_proven`` error finding unless ``result`` is proven."""
    if result["verdict"] == "proven":
        return []
    return [_finding("error", "reboot_not_proven", hostname or "host", result["verdict"],
                     "; ".join(result["reasons"]), REBOOT_HINTS[result["verdict"]])]


def write_json_atomic(path, data, mode=0o600):
    """Write ``data`` as JSON to ``path``: temp file in the same directory, fsync,
    chmod ``mode``, rename.  Missing parent directories are made with mode 0700."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
