# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""adapter_rescan on THIS machine, with what cannot exist here faked.

This kernel has no SCSI, no FC and no iSCSI initiator (shared/LAB.md), and the
machine has no iscsiadm, udevadm or multipath.  So the adapters are a fake sysfs
tree in tmp_path (``sysfs_root``) and the three tools are shell scripts first on
PATH that log their argv and environment and replay recorded output: iscsiadm's
rc 21 "No session found." was recorded here with Debian 12's open-iscsi binary,
its rc 0 output is built from the documented format.  lsblk is the real one, and
the module runs for real (AnsibleModule.run_command, get_bin_path).
"""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import adapter_rescan

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "plugins",
                        "module_utils", "fixtures")
REAL_TOOLS = ("iscsiadm", "udevadm", "multipath")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def fake_tool(bindir, name, log, rc=0, stdout="", stderr=""):
    """A stand-in tool: logs "name LANG LC_ALL args", prints stdout/stderr, exits rc."""
    data = os.path.join(bindir, name + ".data")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "out"), "w") as handle:
        handle.write(stdout)
    with open(os.path.join(data, "err"), "w") as handle:
        handle.write(stderr)
    path = os.path.join(bindir, name)
    with open(path, "w") as handle:
        handle.write('#!/bin/sh\nprintf "%%s %%s %%s %%s\\n" "%s" "$LANG" "$LC_ALL" "$*" >> "%s"\n'
                     'cat "%s/out"\ncat "%s/err" >&2\nexit %d\n' % (name, log, data, data, rc))
    os.chmod(path, 0o755)
    return path


def fake_sysfs(root):
    for rel in ("class/scsi_host/host0/scan", "class/scsi_host/host1/scan", "class/fc_host/host1/issue_lip"):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    return root


def read(path):
    with open(path) as handle:
        return handle.read()


@pytest.fixture
def host(tmp_path, monkeypatch):
    for name in REAL_TOOLS:
        for directory in ("/sbin", "/usr/sbin", "/usr/local/sbin", "/bin", "/usr/bin"):
            if os.path.exists(os.path.join(directory, name)):
                pytest.skip("a real %s exists at %s: these tests must only reach fakes" % (name, directory))
    bindir = str(tmp_path / "bin")
    os.makedirs(bindir)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ["PATH"])
    log = str(tmp_path / "calls.log")
    return {"bin": bindir, "log": log, "sysfs": fake_sysfs(str(tmp_path / "sys"))}


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            adapter_rescan.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def calls(log):
    if not os.path.exists(log):
        return []
    with open(log) as handle:
        return handle.read().splitlines()


def install_tools(host, iscsi_rc, iscsi_out="", iscsi_err=""):
    fake_tool(host["bin"], "iscsiadm", host["log"], iscsi_rc, iscsi_out, iscsi_err)
    fake_tool(host["bin"], "udevadm", host["log"])
    fake_tool(host["bin"], "multipath", host["log"])


def test_rescan_with_iscsi_sessions_rc0(host, capsys):
    install_tools(host, 0, fixture("iscsiadm_session_rescan_rc0.stdout"))
    code, out = run({"sysfs_root": host["sysfs"], "settle_timeout": 30}, capsys)
    assert code == 0
    assert calls(host["log"]) == [
        "iscsiadm C C -m session --rescan",
        "udevadm C C settle --timeout=30",
        "multipath C C -r",
        "udevadm C C settle --timeout=30",
    ]
    assert read(os.path.join(host["sysfs"], "class/fc_host/host1/issue_lip")) == "1"
    assert read(os.path.join(host["sysfs"], "class/scsi_host/host0/scan")) == "- - -"
    assert read(os.path.join(host["sysfs"], "class/scsi_host/host1/scan")) == "- - -"
    assert [s["argv"][0] for s in out["steps"] if "argv" in s] == [
        os.path.join(host["bin"], n) for n in ("iscsiadm", "udevadm", "multipath", "udevadm")]
    assert [s["status"] for s in out["steps"]] == ["ok"] * 7
    assert [(s["sid"], s["portal"]) for s in out["iscsi_sessions"]] == [(1, "192.0.2.10,3260"), (2, "192.0.2.11,3260")]
    # Real lsblk before and after: nothing appeared, so nothing changed.
    assert out["devices_before"] == out["devices_after"]
    assert out["devices_before"]
    assert out["changed"] is False


def test_rescan_without_sessions_rc21(host, capsys):
    install_tools(host, 21, "", fixture("iscsiadm_session_rescan_rc21.stderr"))
    code, out = run({"sysfs_root": host["sysfs"]}, capsys)
    assert code == 0
    iscsi = [s for s in out["steps"] if s["action"] == "iscsi_rescan"][0]
    assert (iscsi["status"], iscsi["rc"], iscsi["detail"]) == ("no_sessions", 21, "iscsiadm: No session found.")
    assert out["iscsi_sessions"] == []
    assert out["changed"] is False


def test_rescan_iscsi_error_fails_after_everything(host, capsys):
    install_tools(host, 12, "", "iscsiadm: initiator reported error (12 - iSCSI driver not found)\n")
    code, out = run({"sysfs_root": host["sysfs"]}, capsys)
    assert code == 1
    assert out["msg"] == ("adapter_rescan: 1 of 7 step(s) failed: iscsi_rescan: iscsiadm exited 12: "
                          "iscsiadm: initiator reported error (12 - iSCSI driver not found)")
    assert len(calls(host["log"])) == 4


def test_check_mode_touches_nothing(host, capsys):
    install_tools(host, 0)
    code, out = run({"sysfs_root": host["sysfs"], "_ansible_check_mode": True}, capsys)
    assert code == 0
    assert calls(host["log"]) == []
    assert read(os.path.join(host["sysfs"], "class/scsi_host/host0/scan")) == ""
    assert read(os.path.join(host["sysfs"], "class/fc_host/host1/issue_lip")) == ""
    assert len(out["steps"]) == 7
    assert out["changed"] is False


def test_this_machine_has_no_adapters_and_no_tools(capsys):
    """The real /sys here has no scsi_host/fc_host: nothing to scan, not an error."""
    for name in REAL_TOOLS:
        for directory in ("/sbin", "/usr/sbin", "/bin", "/usr/bin"):
            if os.path.exists(os.path.join(directory, name)):
                pytest.skip("this host has %s" % name)
    for cls in ("/sys/class/scsi_host", "/sys/class/fc_host"):
        if os.path.isdir(cls) and os.listdir(cls):
            pytest.skip("this host has %s; rescanning them for real is not a test's business" % cls)
    code, out = run({}, capsys)
    assert code == 0
    assert (out["adapters"], out["steps"], out["changed"]) == ([], [], False)
    assert out["devices_before"] == out["devices_after"]
