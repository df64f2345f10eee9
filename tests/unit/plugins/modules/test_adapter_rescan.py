# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the adapter_rescan module: fake sysfs tree in tmp_path, the
command seam mocked (exact argv, nothing at all in check mode)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import adapter_rescan

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils"))
from snapshot_tree import fixture, write  # noqa: E402  pylint: disable=wrong-import-position

LSBLK = ["lsblk", "-J", "-b", "-o", "NAME,KNAME,PKNAME,TYPE,SIZE,WWN,SERIAL,TRAN,HCTL,MODEL,VENDOR,RO,RM,MOUNTPOINT"]
ISCSI = ["/usr/sbin/iscsiadm", "-m", "session", "--rescan"]
SETTLE = ["/usr/bin/udevadm", "settle", "--timeout=60"]
MPATH = ["/usr/sbin/multipath", "-r"]
TOOLS = {"iscsiadm": "/usr/sbin/iscsiadm", "udevadm": "/usr/bin/udevadm", "multipath": "/usr/sbin/multipath"}
C_ENV = {"LANG": "C", "LC_ALL": "C"}


def lsblk_without(*names):
    data = json.loads(fixture("lsblk_san_host.json"))
    data["blockdevices"] = [d for d in data["blockdevices"] if d["name"] not in names]
    return json.dumps(data)


class Commands:
    def __init__(self, answers, tools):
        self.answers = dict((tuple(k), list(v)) for k, v in answers)
        self.tools = tools
        self.calls = []

    def install(self, monkeypatch):
        commands = self

        def run_command(module, args, **kwargs):
            commands.calls.append((list(args), kwargs.get("environ_update")))
            queue = commands.answers[tuple(args)]
            return queue.pop(0) if len(queue) > 1 else queue[0]

        def get_bin_path(module, arg, required=False, opt_dirs=None):
            return commands.tools.get(arg)

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        return self


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            adapter_rescan.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def sysfs(tmp_path):
    root = str(tmp_path / "sys")
    write(os.path.join(root, "class/scsi_host/host0/scan"), "")
    write(os.path.join(root, "class/scsi_host/host1/scan"), "")
    write(os.path.join(root, "class/fc_host/host1/issue_lip"), "")
    return root


def read(root, rel):
    with open(os.path.join(root, rel)) as handle:
        return handle.read()


def test_rescan_finds_a_new_disk(tmp_path, monkeypatch, capsys):
    root = sysfs(tmp_path)
    commands = Commands([
        (LSBLK, [(0, lsblk_without("nvme0n1"), ""), (0, fixture("lsblk_san_host.json"), "")]),
        (ISCSI, [(0, fixture("iscsiadm_session_rescan_rc0.stdout"), "")]),
        (SETTLE, [(0, "", "")]),
        (MPATH, [(0, "", "")]),
    ], TOOLS).install(monkeypatch)
    code, out = run({"sysfs_root": root}, capsys)
    assert code == 0
    assert [c[0] for c in commands.calls] == [LSBLK, ISCSI, SETTLE, MPATH, SETTLE, LSBLK]
    assert all(c[1] == C_ENV for c in commands.calls)
    assert read(root, "class/fc_host/host1/issue_lip") == "1"
    assert read(root, "class/scsi_host/host0/scan") == "- - -"
    assert read(root, "class/scsi_host/host1/scan") == "- - -"
    assert out["changed"] is True
    assert out["devices_added"] == ["nvme0n1"]
    assert out["devices_removed"] == []
    assert out["devices_resized"] == []
    assert [(s["action"], s.get("adapter"), s["status"]) for s in out["steps"]] == [
        ("fc_issue_lip", "host1", "ok"), ("scsi_scan", "host0", "ok"), ("scsi_scan", "host1", "ok"),
        ("iscsi_rescan", None, "ok"), ("udev_settle", None, "ok"), ("multipath_reload", None, "ok"),
        ("udev_settle", None, "ok")]
    assert [s["sid"] for s in out["iscsi_sessions"]] == [1, 2]
    assert [a["adapter"] for a in out["adapters"]] == ["host1", "host0", "host1"]


def test_nothing_new_is_not_changed_and_rc21_is_fine(tmp_path, monkeypatch, capsys):
    root = sysfs(tmp_path)
    Commands([
        (LSBLK, [(0, fixture("lsblk_san_host.json"), "")]),
        (ISCSI, [(21, "", fixture("iscsiadm_session_rescan_rc21.stderr"))]),
        (SETTLE, [(0, "", "")]),
        (MPATH, [(0, "", "")]),
    ], TOOLS).install(monkeypatch)
    code, out = run({"sysfs_root": root}, capsys)
    assert code == 0
    assert out["changed"] is False
    assert out["iscsi_sessions"] == []
    assert out["steps"][3]["status"] == "no_sessions"
    assert out["steps"][3]["detail"] == "iscsiadm: No session found."


def test_no_adapters_no_tools_is_not_an_error(tmp_path, monkeypatch, capsys):
    commands = Commands([(LSBLK, [(0, fixture("lsblk_this_vm.json"), "")])], {}).install(monkeypatch)
    code, out = run({"sysfs_root": str(tmp_path)}, capsys)
    assert code == 0
    assert [c[0] for c in commands.calls] == [LSBLK, LSBLK]
    assert out["changed"] is False
    assert out["steps"] == []
    assert out["adapters"] == []
    assert out["devices_before"] == [{"name": "vda", "type": "disk", "size": 274877906944, "wwn": None,
                                      "serial": None, "tran": None, "hctl": None}]


def test_check_mode_runs_nothing_and_writes_nothing(tmp_path, monkeypatch, capsys):
    root = sysfs(tmp_path)
    commands = Commands([], TOOLS).install(monkeypatch)
    code, out = run({"sysfs_root": root, "fc_issue_lip": False, "_ansible_check_mode": True}, capsys)
    assert code == 0
    assert commands.calls == []
    assert read(root, "class/scsi_host/host0/scan") == ""
    assert read(root, "class/fc_host/host1/issue_lip") == ""
    assert out["changed"] is False
    assert [(s["action"], s.get("adapter")) for s in out["steps"]] == [
        ("scsi_scan", "host0"), ("scsi_scan", "host1"), ("iscsi_rescan", None),
        ("udev_settle", None), ("multipath_reload", None), ("udev_settle", None)]
    assert "status" not in out["steps"][0]
    assert "devices_before" not in out


def test_failed_iscsi_fails_after_all_steps(tmp_path, monkeypatch, capsys):
    root = sysfs(tmp_path)
    commands = Commands([
        (LSBLK, [(0, fixture("lsblk_san_host.json"), "")]),
        (ISCSI, [(15, "", "iscsiadm: session exists\n")]),
        (SETTLE, [(0, "", "")]),
        (MPATH, [(0, "", "")]),
    ], TOOLS).install(monkeypatch)
    code, out = run({"sysfs_root": root}, capsys)
    assert code == 1
    assert out["msg"] == "adapter_rescan: 1 of 7 step(s) failed: iscsi_rescan: iscsiadm exited 15: iscsiadm: session exists"
    assert [c[0] for c in commands.calls] == [LSBLK, ISCSI, SETTLE, MPATH, SETTLE, LSBLK]
    assert read(root, "class/scsi_host/host1/scan") == "- - -"
    assert out["devices_after"] == out["devices_before"]


def test_bad_settle_timeout(tmp_path, monkeypatch, capsys):
    commands = Commands([], TOOLS).install(monkeypatch)
    code, out = run({"sysfs_root": str(tmp_path), "settle_timeout": 0}, capsys)
    assert code == 1
    assert out["msg"] == "settle_timeout must be at least 1 second, got 0"
    assert commands.calls == []
