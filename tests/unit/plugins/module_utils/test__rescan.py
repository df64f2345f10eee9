# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_rescan.py on a fake sysfs tree.

This kernel has no SCSI, FC or iSCSI initiator: the adapters are files in
tmp_path, and iscsiadm answers come from fixtures (rc 21 recorded here with
Debian 12's iscsiadm, rc 0 constructed from its documented format).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rescan
from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import SnapshotError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from snapshot_tree import FakeRunner, fixture, write  # noqa: E402  pylint: disable=wrong-import-position

LSBLK = ["lsblk", "-J", "-b", "-o", "NAME,KNAME,PKNAME,TYPE,SIZE,WWN,SERIAL,TRAN,HCTL,MODEL,VENDOR,RO,RM,MOUNTPOINT"]
TOOLS = {"iscsiadm": "/usr/sbin/iscsiadm", "udevadm": "/usr/bin/udevadm", "multipath": "/usr/sbin/multipath"}


def fake_sysfs(root, scsi=("host0", "host2", "host10"), fc=("host2",)):
    for host in scsi:
        write(os.path.join(root, "class/scsi_host", host, "scan"), "")
        write(os.path.join(root, "class/scsi_host", host, "proc_name"), "qla2xxx\n")
    for host in fc:
        write(os.path.join(root, "class/fc_host", host, "issue_lip"), "")
    return root


def test_discover_adapters_sorted_by_host_number(tmp_path):
    root = fake_sysfs(str(tmp_path))
    assert _rescan.discover_adapters(root) == [
        {"adapter": "host2", "type": "fc", "path": "%s/class/fc_host/host2/issue_lip" % root},
        {"adapter": "host0", "type": "scsi", "path": "%s/class/scsi_host/host0/scan" % root},
        {"adapter": "host2", "type": "scsi", "path": "%s/class/scsi_host/host2/scan" % root},
        {"adapter": "host10", "type": "scsi", "path": "%s/class/scsi_host/host10/scan" % root},
    ]


def test_discover_nothing_is_not_an_error(tmp_path):
    assert _rescan.discover_adapters(str(tmp_path)) == []


def test_plan_order_and_argv(tmp_path):
    root = fake_sysfs(str(tmp_path), scsi=("host0",), fc=("host0",))
    steps = _rescan.plan_rescan(_rescan.discover_adapters(root), TOOLS, settle_timeout=30)
    assert steps == [
        {"action": "fc_issue_lip", "adapter": "host0", "path": "%s/class/fc_host/host0/issue_lip" % root,
         "value": "1"},
        {"action": "scsi_scan", "adapter": "host0", "path": "%s/class/scsi_host/host0/scan" % root,
         "value": "- - -"},
        {"action": "iscsi_rescan", "argv": ["/usr/sbin/iscsiadm", "-m", "session", "--rescan"]},
        {"action": "udev_settle", "argv": ["/usr/bin/udevadm", "settle", "--timeout=30"]},
        {"action": "multipath_reload", "argv": ["/usr/sbin/multipath", "-r"]},
        {"action": "udev_settle", "argv": ["/usr/bin/udevadm", "settle", "--timeout=30"]},
    ]


def test_plan_toggles_and_absent_tools(tmp_path):
    root = fake_sysfs(str(tmp_path), scsi=("host0",), fc=("host0",))
    adapters = _rescan.discover_adapters(root)
    steps = _rescan.plan_rescan(adapters, TOOLS, fc_issue_lip=False, iscsi_rescan=False,
                                multipath_reload=False)
    assert [s["action"] for s in steps] == ["scsi_scan", "udev_settle"]
    assert _rescan.plan_rescan([], {"iscsiadm": None, "udevadm": None, "multipath": None}) == []
    only_multipath = _rescan.plan_rescan([], {"multipath": "/sbin/multipath"})
    assert only_multipath == [{"action": "multipath_reload", "argv": ["/sbin/multipath", "-r"]}]


@pytest.mark.parametrize("bad", [0, -5, True, "60"])
def test_plan_rejects_bad_settle_timeout(bad):
    with pytest.raises(ValueError, match="settle_timeout must be a whole number of seconds >= 1"):
        _rescan.plan_rescan([], TOOLS, settle_timeout=bad)


def test_run_steps_writes_and_commands(tmp_path):
    root = fake_sysfs(str(tmp_path), scsi=("host0",), fc=("host1",))
    steps = _rescan.plan_rescan(_rescan.discover_adapters(root), TOOLS, settle_timeout=60)
    runner = FakeRunner([
        (["/usr/sbin/iscsiadm", "-m", "session", "--rescan"],
         (0, fixture("iscsiadm_session_rescan_rc0.stdout"), "")),
        (["/usr/bin/udevadm", "settle", "--timeout=60"], (0, "", "")),
        (["/usr/sbin/multipath", "-r"], (0, "", "")),
    ])
    results = _rescan.run_steps(steps, runner)
    assert runner.calls == [
        ["/usr/sbin/iscsiadm", "-m", "session", "--rescan"],
        ["/usr/bin/udevadm", "settle", "--timeout=60"],
        ["/usr/sbin/multipath", "-r"],
        ["/usr/bin/udevadm", "settle", "--timeout=60"],
    ]
    with open(os.path.join(root, "class/scsi_host/host0/scan")) as handle:
        assert handle.read() == "- - -"
    with open(os.path.join(root, "class/fc_host/host1/issue_lip")) as handle:
        assert handle.read() == "1"
    assert [r["status"] for r in results] == ["ok"] * 6
    assert results[2]["sessions"] == [
        {"sid": 1, "target": "iqn.2026-11.lab.example:datastore01", "portal": "192.0.2.10,3260"},
        {"sid": 2, "target": "iqn.2026-11.lab.example:datastore01", "portal": "192.0.2.11,3260"},
    ]


def test_iscsi_no_sessions_rc21_is_not_an_error():
    step = {"action": "iscsi_rescan", "argv": ["/usr/sbin/iscsiadm", "-m", "session", "--rescan"]}
    runner = FakeRunner([(step["argv"], (21, "", fixture("iscsiadm_session_rescan_rc21.stderr")))])
    assert _rescan.run_step(step, runner) == dict(
        step, rc=21, status="no_sessions", sessions=[], detail="iscsiadm: No session found.")


def test_iscsi_other_rc_is_an_error_with_output():
    step = {"action": "iscsi_rescan", "argv": ["/usr/sbin/iscsiadm", "-m", "session", "--rescan"]}
    runner = FakeRunner([(step["argv"], (12, "", "iscsiadm: initiator reported error (12 - iSCSI driver not found)\n"))])
    result = _rescan.run_step(step, runner)
    assert (result["status"], result["detail"]) == (
        "failed", "iscsiadm exited 12: iscsiadm: initiator reported error (12 - iSCSI driver not found)")


def test_settle_timeout_and_multipath_failure():
    settle = {"action": "udev_settle", "argv": ["/usr/bin/udevadm", "settle", "--timeout=5"]}
    reload_ = {"action": "multipath_reload", "argv": ["/usr/sbin/multipath", "-r"]}
    runner = FakeRunner([(settle["argv"], (1, "", "")), (reload_["argv"], (1, "", "DM multipath kernel driver not loaded"))])
    results = _rescan.run_steps([settle, reload_], runner)
    assert [(r["status"], r["detail"]) for r in results] == [
        ("failed", "udevadm settle exited 1; the udev queue did not empty in time: raise settle_timeout"),
        ("failed", "multipath exited 1: DM multipath kernel driver not loaded"),
    ]


def test_write_failure_is_reported_and_others_still_run(tmp_path):
    steps = [
        {"action": "scsi_scan", "adapter": "host0", "path": str(tmp_path / "gone/scan"), "value": "- - -"},
        {"action": "scsi_scan", "adapter": "host1", "path": str(tmp_path / "scan1"), "value": "- - -"},
    ]
    results = _rescan.run_steps(steps, FakeRunner())
    assert results[0]["status"] == "failed"
    assert results[0]["detail"] == "writing '- - -' to %s/gone/scan failed: No such file or directory" % tmp_path
    assert results[1]["status"] == "ok"
    assert (tmp_path / "scan1").read_text() == "- - -"


def test_read_devices_and_changes():
    before_json = fixture("lsblk_san_host.json")
    data = json.loads(before_json)
    data["blockdevices"] = [d for d in data["blockdevices"] if d["name"] != "nvme0n1"]
    data["blockdevices"][0]["size"] = 1
    runner = FakeRunner([(LSBLK, (0, before_json, "")), (LSBLK, (0, json.dumps(data), ""))])
    first = _rescan.read_devices(runner)
    second = _rescan.read_devices(runner)
    assert runner.calls == [LSBLK, LSBLK]
    assert [d["name"] for d in first] == ["sda", "sdb", "mpatha", "sdc", "nvme0n1"]
    assert first[1] == {"name": "sdb", "type": "disk", "size": 10737418240,
                        "wwn": "0x600508b4000156d700012000000b0000", "serial": "PAPNQB5ABCD",
                        "tran": "fc", "hctl": "0:0:0:1"}
    assert _rescan.device_changes(first, second) == {
        "added": [], "removed": ["nvme0n1"], "resized": [{"name": "sda", "before": 480103981056, "after": 1}]}
    assert _rescan.device_changes(second, first)["added"] == ["nvme0n1"]
    assert _rescan.device_changes(first, first) == {"added": [], "removed": [], "resized": []}


def test_read_devices_lsblk_failure():
    runner = FakeRunner([(LSBLK, (1, "", "lsblk: boom\n"))])
    with pytest.raises(SnapshotError, match="lsblk exited 1: lsblk: boom"):
        _rescan.read_devices(runner)
