# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the host_snapshot module: the command seam is mocked, the
proc/sysfs trees are recorded ones in tmp_path."""

from __future__ import annotations

import copy
import json
import os
import stat
import sys

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import host_snapshot

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils"))
from snapshot_tree import fixture, san_host, this_vm  # noqa: E402  pylint: disable=wrong-import-position

LSBLK = ["lsblk", "-J", "-b", "-o", "NAME,KNAME,PKNAME,TYPE,SIZE,WWN,SERIAL,TRAN,HCTL,MODEL,VENDOR,RO,RM,MOUNTPOINT"]
FINDMNT = ["findmnt", "-J", "-l", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"]
C_ENV = {"LANG": "C", "LC_ALL": "C"}


class Commands:
    """Stands in for AnsibleModule.run_command / get_bin_path; records every call."""

    def __init__(self, answers=None, tools=None):
        self.answers = {tuple(LSBLK): (0, fixture("lsblk_this_vm.json"), ""),
                        tuple(FINDMNT): (0, fixture("findmnt_this_vm.json"), "")}
        self.answers.update(dict((tuple(k), v) for k, v in (answers or {}).items()))
        self.tools = dict(tools or {})
        self.calls = []

    def install(self, monkeypatch):
        commands = self

        def run_command(module, args, **kwargs):
            commands.calls.append((list(args), kwargs.get("environ_update")))
            return commands.answers[tuple(args)]

        def get_bin_path(module, arg, required=False, opt_dirs=None):
            return commands.tools.get(arg)

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        return self


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            host_snapshot.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def vm(tmp_path):
    sys_root, proc_root = this_vm(tmp_path)
    return {"sysfs_root": sys_root, "proc_root": proc_root}


def test_snapshot_and_exact_argv(vm, monkeypatch, capsys):
    commands = Commands().install(monkeypatch)
    code, out = run(dict(vm), capsys)
    assert code == 0
    assert commands.calls == [(LSBLK, C_ENV), (FINDMNT, C_ENV)]
    assert out["changed"] is False
    assert out["findings"] == []
    assert out["finding_counts"] == {"error": 0, "warning": 0, "info": 0}
    assert out["snapshot"]["boot"]["boot_id"] == "4df1173c-e056-4ba8-be85-4236d71e9786"
    assert [d["name"] for d in out["snapshot"]["block_devices"]] == ["zram0", "vda"]
    assert "reboot" not in out
    assert "dest" not in out


def test_version_command_argv(vm, monkeypatch, capsys):
    argv = ["rpm", "-q", "--qf", "%{VERSION}", "ics-release"]
    commands = Commands({tuple(argv): (0, "6.8.1\n", "")}).install(monkeypatch)
    code, out = run(dict(vm, version_command=argv, expected_version="6.8.1"), capsys)
    assert code == 0
    assert commands.calls == [(argv, C_ENV), (LSBLK, C_ENV), (FINDMNT, C_ENV)]
    assert out["snapshot"]["product_version"] == "6.8.1"
    assert out["findings"] == []


def test_multipath_tool_is_used_when_present(vm, monkeypatch, capsys):
    commands = Commands({("/usr/sbin/multipath", "-ll"): (0, fixture("multipath_ll.txt"), "")},
                        tools={"multipath": "/usr/sbin/multipath"}).install(monkeypatch)
    code, out = run(dict(vm, fail_on="never"), capsys)
    assert code == 0
    assert commands.calls[-1] == (["/usr/sbin/multipath", "-ll"], C_ENV)
    assert [f["kind"] for f in out["findings"]] == ["multipath_path_faulty", "multipath_path_faulty"]


def test_dest_written_0600(vm, monkeypatch, capsys, tmp_path):
    Commands().install(monkeypatch)
    dest = tmp_path / "journal" / "run-7" / "snapshot-before.json"
    code, out = run(dict(vm, dest=str(dest)), capsys)
    assert code == 0
    assert out["changed"] is True
    assert out["dest"] == str(dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert json.loads(dest.read_text()) == out["snapshot"]


def test_check_mode_writes_nothing(vm, monkeypatch, capsys, tmp_path):
    """Check mode still reads (lsblk, findmnt: read-only probes) but never writes dest."""
    commands = Commands().install(monkeypatch)
    dest = tmp_path / "snap.json"
    code, out = run(dict(vm, dest=str(dest), _ansible_check_mode=True), capsys)
    assert code == 0
    assert out["changed"] is True
    assert not dest.exists()
    assert os.listdir(str(tmp_path)) == ["proc", "sys"]
    assert commands.calls == [(LSBLK, C_ENV), (FINDMNT, C_ENV)]


def test_fail_on_error_by_default_with_snapshot_returned(vm, monkeypatch, capsys, tmp_path):
    Commands().install(monkeypatch)
    first = run(dict(vm), capsys)[1]
    before = copy.deepcopy(first["snapshot"])
    before["block_devices"][1]["size"] *= 2
    before["mounts"].append({"target": "/datastore/shared01", "source": "/dev/mapper/mpatha",
                             "fstype": "xfs", "options": "rw", "ro": False})
    dest = tmp_path / "after.json"
    code, out = run(dict(vm, compare_to=before, dest=str(dest)), capsys)
    assert code == 1
    assert out["failed"] is True
    assert out["msg"] == ("host_snapshot: 2 finding(s) at or above 'error': error capacity_changed vda; "
                          "error mount_missing /datastore/shared01; see 'findings' for hints, or set "
                          "fail_on to report only")
    assert out["finding_counts"] == {"error": 2, "warning": 0, "info": 0}
    assert out["snapshot"]["format"] == 1
    assert json.loads(dest.read_text()) == out["snapshot"]
    code, out = run(dict(vm, compare_to=before, fail_on="never"), capsys)
    assert code == 0
    assert [f["kind"] for f in out["findings"]] == ["capacity_changed", "mount_missing"]


def test_fail_on_warning(tmp_path, monkeypatch, capsys):
    sys_root, proc_root = san_host(tmp_path, speeds={"eth1": "100"})
    Commands().install(monkeypatch)
    first = run(dict(sysfs_root=sys_root, proc_root=proc_root, fail_on="never"), capsys)[1]
    assert [(f["severity"], f["kind"]) for f in first["findings"]] == [("error", "nic_speed_low")]
    # Already that slow before: a warning, which fails only with fail_on=warning.
    code = run(dict(sysfs_root=sys_root, proc_root=proc_root, compare_to=first["snapshot"]), capsys)[0]
    assert code == 0
    code, out = run(dict(sysfs_root=sys_root, proc_root=proc_root, compare_to=first["snapshot"],
                         fail_on="warning"), capsys)
    assert code == 1
    assert out["msg"].startswith("host_snapshot: 1 finding(s) at or above 'warning': warning nic_speed_low eth1;")


def test_reboot_proof_not_rebooted(vm, monkeypatch, capsys):
    Commands().install(monkeypatch)
    first = run(dict(vm), capsys)[1]
    code, out = run(dict(vm, compare_to=first["snapshot"],
                         reboot_requested_at=first["snapshot"]["captured_at"]), capsys)
    assert code == 1
    assert out["reboot"]["verdict"] == "not_rebooted"
    assert [f["kind"] for f in out["findings"]] == ["reboot_not_proven"]
    assert out["msg"].startswith("host_snapshot: 1 finding(s) at or above 'error': error reboot_not_proven inode-03")


def test_reboot_proof_proven_with_iso_request_time(tmp_path, monkeypatch, capsys):
    Commands().install(monkeypatch)
    old_sys, old_proc = this_vm(tmp_path / "old")
    new_sys, new_proc = this_vm(tmp_path / "new", boot_id="9c1e0d52-1111-4222-8333-444455556666",
                                btime=1795309651 + 700)
    first = run(dict(sysfs_root=old_sys, proc_root=old_proc), capsys)[1]
    code, out = run(dict(sysfs_root=new_sys, proc_root=new_proc, compare_to=first["snapshot"],
                         reboot_requested_at="2026-11-22T01:17:31Z"), capsys)
    assert code == 0
    assert out["reboot"]["verdict"] == "proven"
    assert [(f["severity"], f["kind"]) for f in out["findings"]] == [("info", "rebooted")]


@pytest.mark.parametrize("args, message", [
    ({"reboot_requested_at": 1795309651}, "missing parameter(s) required by 'reboot_requested_at': compare_to"),
    ({"version_file": "/etc/x", "version_command": ["cat", "/etc/x"]},
     "parameters are mutually exclusive: version_file|version_command"),
    ({"datastores": ["/datastore/a", "datastore/b"]}, "datastores[1] 'datastore/b' must be an absolute path"),
    ({"version_command": []}, "version_command must not be empty: give an argv list such as"),
    ({"reboot_required_since": "2026-11-22T08:00:00"},
     "reboot_required_since '2026-11-22T08:00:00' has no UTC offset: add Z or +08:00"),
    ({"min_nic_speed_mbps": -10}, "min_nic_speed_mbps must be >= 0, got -10"),
    ({"fail_on": "fatal"}, "value of fail_on must be one of: error, warning, info, never, got: fatal"),
    ({"compare_to": {"format": 99}}, "compare_to is not a host_snapshot snapshot (format 1)"),
])
def test_bad_input_names_the_option_and_runs_nothing(vm, monkeypatch, capsys, tmp_path, args, message):
    commands = Commands().install(monkeypatch)
    dest = tmp_path / "never.json"
    code, out = run(dict(vm, dest=str(dest), **args), capsys)
    assert code == 1
    assert message in out["msg"]
    assert not dest.exists()
    assert commands.calls == []
