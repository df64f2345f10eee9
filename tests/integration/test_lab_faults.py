"""labctl's fault tools break a node for real, and each can be undone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import artifacts, config, faults, testing  # noqa: E402
from labkit.testing import installed_nevras, labctl, mon_nodes  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # the module-scoped fixture every test here uses
IMG = faults.ACTIVE_IMG
STATE = faults.STATE_MNT


def _fsck(lab, node: str, *flags: str) -> int:
    return lab.exec(node, ["fsck.ext2", *flags, IMG], check=False).returncode


def _state_opts(lab, node: str) -> list:
    return lab.exec(node, ["findmnt", "-no", "OPTIONS", STATE]).stdout.strip().split(",")


@pytest.mark.parametrize("kind, first_rc", [
    ("clri", 4), ("filetype", 4), ("dir2file", 4), ("orphan", 4), ("bitmap", 4), ("garbage", 12),
])
def test_corrupt_active_img_is_what_fsck_finds_and_repairs(lab, kind, first_rc):
    node = lab.topo.computes[1].name
    try:
        out = labctl("corrupt-active-img", node, kind).stdout
        assert out.strip() == f"{node}: active.img corrupted ({kind}); fsck.ext2 -fn rc={first_rc}"
        assert "ro" in _state_opts(lab, node)
        assert _fsck(lab, node, "-fn") == first_rc
        # The Harvester repair: remount the state partition rw, fsck -yf, back to ro.
        lab.exec(node, ["mount", "-o", "remount,rw", STATE])
        try:
            assert _fsck(lab, node, "-fy") == 1
            assert _fsck(lab, node, "-fn") == 0
        finally:
            lab.exec(node, ["mount", "-o", "remount,ro", STATE])
    finally:
        labctl("reset-active-img", node)
    assert _fsck(lab, node, "-fn") == 0
    assert "ro" in _state_opts(lab, node)


def test_a_damaged_active_img_boots_the_passive_image(lab):
    node = lab.topo.computes[2].name
    boot_ids = [lab.exec(node, ["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()]
    try:
        labctl("corrupt-active-img", node, "clri")
        out = labctl("reboot", node).stdout
        boot_ids.append(out.split()[-1])
        assert lab.exec(node, ["ls", "/run/cos"]).stdout.split() == ["passive_mode"]
        labctl("reset-active-img", node)
        labctl("boot-mode", node, "recovery")
        boot_ids.append(labctl("reboot", node).stdout.split()[-1])
        assert lab.exec(node, ["ls", "/run/cos"]).stdout.split() == ["recovery_mode"]
    finally:
        labctl("reset-active-img", node)
        labctl("boot-mode", node, "auto")
    boot_ids.append(labctl("reboot", node).stdout.split()[-1])
    assert lab.exec(node, ["ls", "/run/cos"]).stdout.split() == ["active_mode"]
    assert len(set(boot_ids)) == 4
    assert boot_ids[-1] == lab.exec(node, ["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()
    reboots = lab.exec(node, ["last", "-x", "reboot"]).stdout
    assert reboots.count("system boot") >= 4
    assert lab.wait_healthy(120) == []


def test_kill_is_a_power_cut_and_start_brings_the_node_back(lab):
    node = lab.topo.computes[-1].name
    observer = lab.topo.controllers[0].name
    try:
        labctl("kill", node)
        assert lab.containers()[node] == "exited"
        assert mon_nodes(lab.crm_mon(observer))[node]["online"] == "false"
    finally:
        labctl("start", node)
    assert lab.containers()[node] == "running"
    assert mon_nodes(lab.crm_mon(observer))[node]["online"] == "true"
    assert lab.wait_healthy(120) == []


def _backups(lab, node: str) -> list:
    return sorted(lab.exec(node, ["ls", "/var/backup-rpm"]).stdout.split())


@pytest.mark.parametrize("action, rpm_after, backup_missing", [
    ("add", "+labsphere-extra-1.0-1.ls8.noarch", None),
    ("remove", "-labsphere-tools-1:1.4-2.ls8.noarch", None),
    ("change", "~labsphere-tools-1:1.4-3.ls8.noarch", None),
    ("delete-backup", None, "labsphere-tools-1.4-2.ls8.noarch.rpm"),
])
def test_tamper_rpm_and_restore(lab, action, rpm_after, backup_missing):
    n = lab.topo.computes[0]
    base = artifacts.baseline(n.role)
    backups = _backups(lab, n.name)
    assert installed_nevras(lab, n.name) == base
    try:
        labctl("tamper-rpm", n.name, action)
        now = installed_nevras(lab, n.name)
        if rpm_after is None:
            assert now == base
        elif rpm_after[0] == "+":
            assert now == sorted(base + [rpm_after[1:]])
        elif rpm_after[0] == "-":
            assert now == sorted(set(base) - {rpm_after[1:]})
        else:
            assert now == sorted([x for x in base if not x.startswith("labsphere-tools-")]
                                 + [rpm_after[1:]])
        expected_backups = [b for b in backups if b != backup_missing]
        assert _backups(lab, n.name) == expected_backups
    finally:
        labctl("tamper-rpm", n.name, "restore")
    assert installed_nevras(lab, n.name) == base
    assert _backups(lab, n.name) == backups
    assert lab.exec(n.name, ["rpm", "-Va"], check=False).returncode == 0


def test_tamper_rpm_refuses_an_unknown_package(lab):
    n = lab.topo.computes[0]
    cp = labctl("tamper-rpm", n.name, "change", "nosuch", check=False)
    assert cp.returncode == 1
    assert f"nosuch is not a package of {n.name}" in cp.stderr
    assert installed_nevras(lab, n.name) == artifacts.baseline(n.role)


def _use_pct(lab, node: str) -> int:
    out = lab.exec(node, ["df", "--output=pcent", "/var/log"]).stdout.split()[-1]
    return int(out.rstrip("%"))


def test_fill_disk_and_empty_it_again(lab):
    node = lab.topo.controllers[-1].name
    before = _use_pct(lab, node)
    assert before < 50
    try:
        assert labctl("fill-disk", node, "99").stdout.strip() == f"{node}: /var/log at 99%"
        assert _use_pct(lab, node) == 99
    finally:
        labctl("fill-disk", node, "0")
    # (journald may have written a little meanwhile)
    assert before <= _use_pct(lab, node) <= before + 1
    assert lab.exec(node, ["test", "-e", faults.FILL_FILE], check=False).returncode == 1


def test_fault_tools_name_the_unknown_node(lab):
    cp = labctl("kill", "cmp-99", check=False)
    assert cp.returncode != 0
    assert "unknown lab node 'cmp-99'" in cp.stderr
    assert sorted(lab.containers()) == sorted(n.name for n in lab.topo.nodes)
    assert config.topology().node(lab.topo.nodes[0].name) == lab.topo.nodes[0]
