# -*- coding: utf-8 -*-
# Copyright: contributors to clusterops.upgrade
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Storage adapter rescans: find what is there, plan, run, and diff block devices.

``discover_adapters()`` lists SCSI hosts and FC hosts under ``sysfs_root``;
``plan_rescan()`` turns them and the tools present into an ordered list of
steps; ``run_steps()`` carries them out (sysfs writes through ``write_sysfs``,
commands through ``_run``, argv lists with ``LANG=C``); ``device_changes()``
compares the block devices seen before and after.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re

from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import (
    lsblk_argv,
    parse_lsblk_json,
    SnapshotError,
)

SCSI_SCAN_VALUE = "- - -"
FC_LIP_VALUE = "1"
ISCSI_NO_SESSIONS_RC = 21  # ISCSI_ERR_NO_OBJS_FOUND: "No session found."
RESCAN_DEVICE_TYPES = frozenset(("disk", "mpath"))
NOT_STORAGE_PREFIXES = ("zram", "ram")

_ISCSI_SESSION = re.compile(
    r"Rescanning session \[sid: (?P<sid>\d+), target: (?P<target>[^,\]]+), "
    r"portal: (?P<portal>[^\]]+)\]")


def _run(runner, argv):
    """The one command seam of this file: argv list in, (rc, out, err) out."""
    return runner.run(list(argv))


def write_sysfs(path, value):
    """Write ``value`` to a sysfs attribute (unbuffered, one write)."""
    with open(path, "w", buffering=1) as handle:
        handle.write(value)


def _host_sort_key(name):
    digits = re.sub(r"\D", "", name)
    return (int(digits) if digits else -1, name)


def discover_adapters(sysfs_root="/sys"):
    """SCSI hosts with a ``scan`` file and FC hosts with an ``issue_lip`` file.

    Returns a list of ``{"adapter": "host3", "type": "fc"|"scsi", "path": ...}``
    (FC first, each sorted by host number).  No adapters is an empty list.
    """
    found = []
    patterns = (("fc", "class/fc_host/host*/issue_lip"), ("scsi", "class/scsi_host/host*/scan"))
    for kind, pattern in patterns:
        paths = glob.glob(posixpath.join(sysfs_root, pattern))
        for path in sorted(paths, key=lambda p: _host_sort_key(p.split("/")[-2])):
            found.append({"adapter": path.split("/")[-2], "type": kind, "path": path})
    return found


def plan_rescan(adapters, tools, fc_issue_lip=True, iscsi_rescan=True,
                multipath_reload=True, settle_timeout=60):
    """Ordered steps: FC LIP, SCSI host scans, iSCSI session rescan, udev settle,
    multipath reload, udev settle again (so the new maps' devices exist).

    ``tools`` maps ``iscsiadm``/``multipath``/``udevadm`` to their paths (None
    when absent); absent tools are simply not planned.
    """
    if isinstance(settle_timeout, bool) or not isinstance(settle_timeout, int) or settle_timeout < 1:
        raise ValueError("settle_timeout must be a whole number of seconds >= 1, got %r"
                         % (settle_timeout,))
    steps = []
    for adapter in adapters:
        if adapter["type"] == "fc" and fc_issue_lip:
            steps.append({"action": "fc_issue_lip", "adapter": adapter["adapter"],
                          "path": adapter["path"], "value": FC_LIP_VALUE})
    for adapter in adapters:
        if adapter["type"] == "scsi":
            steps.append({"action": "scsi_scan", "adapter": adapter["adapter"],
                          "path": adapter["path"], "value": SCSI_SCAN_VALUE})
    if iscsi_rescan and tools.get("iscsiadm"):
        steps.append({"action": "iscsi_rescan",
                      "argv": [tools["iscsiadm"], "-m", "session", "--rescan"]})
    settle = None
    if tools.get("udevadm"):
        settle = [tools["udevadm"], "settle", "--timeout=%d" % settle_timeout]
        steps.append({"action": "udev_settle", "argv": list(settle)})
    if multipath_reload and tools.get("multipath"):
        steps.append({"action": "multipath_reload", "argv": [tools["multipath"], "-r"]})
        if settle:
            steps.append({"action": "udev_settle", "argv": list(settle)})
    return steps


def parse_iscsi_rescan(text):
    """Sessions named in ``iscsiadm -m session --rescan`` output."""
    sessions = []
    for match in _ISCSI_SESSION.finditer(text or ""):
        sessions.append({"sid": int(match.group("sid")), "target": match.group("target").strip(),
                         "portal": match.group("portal").strip()})
    return sessions


def _detail(out, err):
    text = "\n".join(t.strip() for t in (err, out) if t and t.strip())
    return text[:1000]


def _colon(text):
    return ": " + text if text else ""


def run_step(step, runner, writer=write_sysfs):
    """Carry out one step; returns the step with ``status`` ok/no_sessions/failed
    and, where there is one, ``detail``."""
    result = dict(step)
    if "path" in step:
        try:
            writer(step["path"], step["value"])
        except OSError as exc:
            result.update(status="failed", detail="writing %r to %s failed: %s"
                          % (step["value"], step["path"], exc.strerror or exc))
        else:
            result["status"] = "ok"
        return result
    rc, out, err = _run(runner, step["argv"])
    result["rc"] = rc
    if step["action"] == "iscsi_rescan":
        if rc == 0:
            result.update(status="ok", sessions=parse_iscsi_rescan(out))
        elif rc == ISCSI_NO_SESSIONS_RC:
            result.update(status="no_sessions", sessions=[], detail=_detail(out, err))
        else:
            result.update(status="failed", detail="iscsiadm exited %d%s" % (rc, _colon(_detail(out, err))))
        return result
    if rc == 0:
        result["status"] = "ok"
    elif step["action"] == "udev_settle":
        result.update(status="failed", detail="udevadm settle exited %d%s; the udev queue did not "
                      "empty in time: raise settle_timeout" % (rc, _colon(_detail(out, err))))
    else:
        result.update(status="failed", detail="%s exited %d%s"
                      % (os.path.basename(step["argv"][0]), rc, _colon(_detail(out, err))))
    return result


def run_steps(steps, runner, writer=write_sysfs):
    """Every step is attempted, also after a failure: a partial rescan still
    finds what it can, and the caller reports the failures together."""
    return [run_step(step, runner, writer) for step in steps]


def read_devices(runner):
    """Block devices relevant to a rescan (disks and multipath maps)."""
    rc, out, err = _run(runner, lsblk_argv())
    if rc != 0:
        raise SnapshotError("lsblk exited %d%s" % (rc, _colon(_detail(out, err))))
    devices = []
    for dev in parse_lsblk_json(out):
        if dev["type"] in RESCAN_DEVICE_TYPES and not (dev["name"] or "").startswith(NOT_STORAGE_PREFIXES):
            devices.append({"name": dev["name"], "type": dev["type"], "size": dev["size"],
                            "wwn": dev["wwn"], "serial": dev["serial"], "tran": dev["tran"],
                            "hctl": dev["hctl"]})
    return devices


def device_changes(before, after):
    """Names added, removed, and resized (same name, other size)."""
    old = dict((d["name"], d) for d in before)
    new = dict((d["name"], d) for d in after)
    resized = []
    for name in sorted(set(old) & set(new)):
        if old[name]["size"] != new[name]["size"]:
            resized.append({"name": name, "before": old[name]["size"], "after": new[name]["size"]})
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "resized": resized,
    }
