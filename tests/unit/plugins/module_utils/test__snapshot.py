# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_snapshot.py on recorded trees and outputs."""

from __future__ import annotations

import copy
import errno
import json
import os
import stat
import sys

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _snapshot
from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import (
    SnapshotError,
    capture,
    classify_reboot,
    compare,
    count_by_severity,
    detect_boot_mode,
    findings_at_or_above,
    parse_findmnt_json,
    parse_findmnt_pairs,
    parse_lsblk_json,
    parse_lsblk_pairs,
    parse_multipath_ll,
    parse_timestamp,
    reboot_findings,
    write_json_atomic,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from snapshot_tree import BOOT_ID, BTIME, FakeRunner, fixture, make_nic, san_host, this_vm  # noqa: E402  pylint: disable=wrong-import-position

LSBLK = ["lsblk", "-J", "-b", "-o", "NAME,KNAME,PKNAME,TYPE,SIZE,WWN,SERIAL,TRAN,HCTL,MODEL,VENDOR,RO,RM,MOUNTPOINT"]
LSBLK_P = ["lsblk", "-P", "-b", "-o", "NAME,KNAME,PKNAME,TYPE,SIZE,WWN,SERIAL,TRAN,HCTL,MODEL,VENDOR,RO,RM,MOUNTPOINT"]
FINDMNT = ["findmnt", "-J", "-l", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"]
FINDMNT_P = ["findmnt", "-P", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"]
VDA_SIZE = 274877906944
VM_OPTIONS = "rw,relatime,discard,resv_strict,resuid=65534,resgid=65534"

SAN_MOUNTS = {"filesystems": [
    {"target": "/", "source": "/dev/sda2", "fstype": "xfs", "options": "rw,relatime"},
    {"target": "/proc", "source": "proc", "fstype": "proc", "options": "rw,relatime"},
    {"target": "/run", "source": "tmpfs", "fstype": "tmpfs", "options": "rw,nosuid"},
    {"target": "/boot", "source": "/dev/sda1", "fstype": "xfs", "options": "rw,relatime"},
    {"target": "/datastore/shared01", "source": "/dev/mapper/mpatha", "fstype": "xfs",
     "options": "rw,noatime"},
    {"target": "/datastore/nfs01", "source": "192.0.2.20:/export/vm", "fstype": "nfs4",
     "options": "rw,relatime,vers=4.1"},
    {"target": "/var/lib/containers/storage/overlay/abc/merged", "source": "overlay",
     "fstype": "overlay", "options": "rw"},
]}


def vm_runner(tools=None):
    return FakeRunner([(LSBLK, (0, fixture("lsblk_this_vm.json"), "")),
                       (FINDMNT, (0, fixture("findmnt_this_vm.json"), ""))], tools)


def san_runner(lsblk=None, mounts=None, multipath=None):
    responses = [(LSBLK, (0, lsblk or fixture("lsblk_san_host.json"), "")),
                 (FINDMNT, (0, json.dumps(mounts or SAN_MOUNTS), ""))]
    tools = {}
    if multipath is not None:
        tools["multipath"] = "/usr/sbin/multipath"
        responses.append((["/usr/sbin/multipath", "-ll"], (0, multipath, "")))
    return FakeRunner(responses, tools)


def vm_snapshot(tmp_path, now=1795310000.0, **proc):
    sys_root, proc_root = this_vm(tmp_path, **proc)
    return capture(vm_runner(), sysfs_root=sys_root, proc_root=proc_root, now=now)


def san_snapshot(tmp_path, speeds=None, multipath=None, **kwargs):
    sys_root, proc_root = san_host(tmp_path, speeds=speeds)
    return capture(san_runner(multipath=multipath), sysfs_root=sys_root, proc_root=proc_root,
                   now=1795310000.0, **kwargs)


# ---------------------------------------------------------------------------
# capture
# ---------------------------------------------------------------------------

def test_capture_this_vm_recorded(tmp_path):
    runner = vm_runner()
    sys_root, proc_root = this_vm(tmp_path)
    snap = capture(runner, sysfs_root=sys_root, proc_root=proc_root, now=1795310000.0)

    assert runner.calls == [LSBLK, FINDMNT]
    assert snap["format"] == 1
    assert snap["captured_at"] == 1795310000.0
    assert snap["hostname"] == "inode-03"
    assert snap["kernel"] == {"release": "6.18.44", "version": "#1 SMP PREEMPT_DYNAMIC"}
    assert snap["boot"] == {
        "boot_id": BOOT_ID,
        "boot_time": BTIME,
        "init_start_ticks": 30,
        "clock_ticks_per_second": os.sysconf("SC_CLK_TCK"),
        "booted_at": round(BTIME + 30.0 / os.sysconf("SC_CLK_TCK"), 2),
        "uptime_seconds": 395.19,
        "cmdline": "BOOT_IMAGE=/vmlinuz-6.18.44 root=/dev/vda ro quiet",
    }
    assert snap["product_version"] is None
    assert snap["product_version_source"] is None
    assert [d["name"] for d in snap["block_devices"]] == ["zram0", "vda"]
    assert snap["block_devices"][1] == {
        "name": "vda", "kname": "vda", "pkname": None, "type": "disk", "size": VDA_SIZE,
        "wwn": None, "serial": None, "tran": None, "hctl": None, "model": None,
        "vendor": "0x1af4", "ro": False, "rm": False, "mountpoint": "/"}
    assert snap["nics"] == [
        {"name": "eth0", "operstate": "up", "speed_mbps": None, "duplex": None, "mtu": 1400,
         "mac": "02:fc:00:00:00:01", "virtual": False, "kind": "physical"},
        {"name": "ifb0", "operstate": "down", "speed_mbps": None, "duplex": None, "mtu": 1500,
         "mac": "6e:3a:8f:da:1b:7d", "virtual": True, "kind": "virtual"},
        {"name": "ifb1", "operstate": "down", "speed_mbps": None, "duplex": None, "mtu": 1500,
         "mac": "56:c6:75:23:b4:40", "virtual": True, "kind": "virtual"},
    ]
    assert snap["mounts"] == [
        {"target": "/", "source": "/dev/vda", "fstype": "ext4", "options": VM_OPTIONS, "ro": False},
        {"target": "/var/lib/containers/storage/overlay",
         "source": "/dev/vda[/var/lib/containers/storage/overlay]", "fstype": "ext4",
         "options": VM_OPTIONS, "ro": False},
    ]
    assert snap["datastores"] == []
    assert snap["multipath"] == {"available": False, "maps": []}
    assert snap["incomplete"] == []


def test_nic_speed_einval_is_null(tmp_path, monkeypatch):
    """sysfs answers EINVAL for the speed of a down/virtual NIC: no value, no error."""
    sys_root, proc_root = this_vm(tmp_path)
    make_nic(sys_root, "ifb0", operstate="down", speed="", duplex="", physical=False)
    real_open = open

    def einval_open(path, *args, **kwargs):
        if str(path).endswith(("/ifb0/speed", "/ifb0/duplex")):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_snapshot, "open", einval_open, raising=False)
    nics, problem = _snapshot.read_nics(sys_root)
    assert problem is None
    assert [(n["name"], n["speed_mbps"], n["duplex"]) for n in nics] == [
        ("eth0", None, None), ("ifb0", None, None), ("ifb1", None, None)]


@pytest.mark.parametrize("raw, expected", [
    ("1000", 1000), ("100", 100), ("25000", 25000), ("-1", None), ("0", None),
    ("65535", None), ("4294967295", None), ("garbage", None), (None, None),
])
def test_nic_speed_values(tmp_path, raw, expected):
    sys_root = str(tmp_path / "sys")
    make_nic(sys_root, "eth9", speed=raw)
    nics, problem = _snapshot.read_nics(sys_root)
    assert problem is None
    assert nics[0]["speed_mbps"] == expected


def test_nic_kinds_on_san_host(tmp_path):
    sys_root = san_host(tmp_path)[0]
    nics, problem = _snapshot.read_nics(sys_root)
    assert problem is None
    assert [(n["name"], n["kind"], n["virtual"], n["speed_mbps"], n["duplex"]) for n in nics] == [
        ("bond0", "bond", True, 20000, "full"),
        ("br0", "bridge", True, None, None),
        ("eth0", "physical", False, 10000, "full"),
        ("eth1", "physical", False, 1000, "full"),
        ("eth2", "physical", False, None, None),
        ("veth1a2b", "virtual", True, 10000, "full"),
    ]


def test_no_net_class_is_incomplete(tmp_path):
    proc_root = this_vm(tmp_path)[1]
    snap = capture(vm_runner(), sysfs_root=str(tmp_path / "nosys"), proc_root=proc_root, now=1.0)
    assert snap["nics"] == []
    assert [i["section"] for i in snap["incomplete"]] == ["nics"]
    assert snap["incomplete"][0]["reason"].startswith("cannot list %s/nosys/class/net" % tmp_path)


def test_boot_in_container_uses_pid1_start(tmp_path):
    """A container keeps the host's boot id and btime; PID 1's start is its boot."""
    proc_root = this_vm(tmp_path, init_ticks=123456, comm="systemd (x)")[1]
    boot, problems = _snapshot.read_boot(proc_root, clock_ticks=100)
    assert problems == []
    assert boot["init_start_ticks"] == 123456
    assert boot["booted_at"] == BTIME + 1234.56


def test_boot_unreadable(tmp_path):
    boot, problems = _snapshot.read_boot(str(tmp_path / "noproc"), clock_ticks=100)
    assert boot["boot_id"] is None
    assert boot["booted_at"] is None
    assert problems == [
        "cannot read %s/noproc/sys/kernel/random/boot_id" % tmp_path,
        "no btime in %s/noproc/stat" % tmp_path,
        "cannot read %s/noproc/uptime" % tmp_path,
    ]


def test_lsblk_pairs_fallback_on_old_util_linux(tmp_path):
    runner = FakeRunner([
        (LSBLK, (1, "", "lsblk: invalid option -- 'J'\nTry 'lsblk --help' for more information.\n")),
        (LSBLK_P, (0, fixture("lsblk_this_vm.pairs"), "")),
    ])
    devices, problem = _snapshot.read_block_devices(runner)
    assert problem is None
    assert runner.calls == [LSBLK, LSBLK_P]
    assert devices == parse_lsblk_json(fixture("lsblk_this_vm.json"))


def test_lsblk_failure_is_incomplete():
    runner = FakeRunner([(LSBLK, (32, "", "lsblk: failed to access sysfs directory\n"))])
    devices, problem = _snapshot.read_block_devices(runner)
    assert devices == []
    assert problem == "lsblk exited 32: lsblk: failed to access sysfs directory"
    assert runner.calls == [LSBLK]


def test_findmnt_pairs_fallback_matches_json():
    runner = FakeRunner([
        (FINDMNT, (1, "", "findmnt: unrecognized option '--json'\n")),
        (FINDMNT_P, (0, fixture("findmnt_this_vm.pairs"), "")),
    ])
    mounts, problem = _snapshot.read_mounts(runner)
    assert problem is None
    assert runner.calls == [FINDMNT, FINDMNT_P]
    assert mounts == _snapshot.storage_mounts(parse_findmnt_json(fixture("findmnt_this_vm.json")))
    assert len(parse_findmnt_pairs(fixture("findmnt_this_vm.pairs"))) == 20


def test_parse_lsblk_san_host_dedups_multipath():
    devices = parse_lsblk_json(fixture("lsblk_san_host.json"))
    assert [(d["name"], d["kname"], d["type"], d["pkname"]) for d in devices] == [
        ("sda", "sda", "disk", None), ("sda1", "sda1", "part", "sda"),
        ("sdb", "sdb", "disk", None), ("mpatha", "dm-2", "mpath", "sdb"),
        ("sdc", "sdc", "disk", None), ("nvme0n1", "nvme0n1", "disk", None),
        ("sr0", "sr0", "rom", None)]
    assert devices[0]["vendor"] == "ATA"
    assert devices[2]["wwn"] == "0x600508b4000156d700012000000b0000"
    assert devices[2]["hctl"] == "0:0:0:1"


def test_parse_lsblk_el8_string_values():
    devices = parse_lsblk_json(fixture("lsblk_el8_strings.json"))
    assert [(d["name"], d["size"], d["ro"], d["rm"], d["model"], d["vendor"]) for d in devices] == [
        ("sda", 599550590976, False, False, "PERC H730P Mini", "DELL"),
        ("sda1", 1073741824, False, False, None, None),
        ("sdb", 4000787030016, True, False, "VIRTUAL-DISK", "IET"),
    ]


def test_parse_lsblk_pairs_escapes():
    text = 'NAME="sdq" KNAME="sdq" TYPE="disk" SIZE="512" MODEL="Disk\\x20\\x22A\\x22" RO="0"\n'
    assert parse_lsblk_pairs(text)[0]["model"] == 'Disk "A"'


def test_lsblk_invalid_json():
    with pytest.raises(SnapshotError, match="lsblk printed invalid JSON"):
        parse_lsblk_json("{nope")


def test_parse_multipath_ll():
    maps = parse_multipath_ll(fixture("multipath_ll.txt"))
    assert maps == [
        {"name": "mpatha", "wwid": "3600508b4000156d700012000000b0000", "dm": "dm-2",
         "vendor_product": "HP,HSV210", "size": "10G",
         "paths": [
             {"hctl": "0:0:0:1", "dev": "sdb", "dm_state": "active", "checker": "ready", "online": "running"},
             {"hctl": "1:0:0:1", "dev": "sdd", "dm_state": "active", "checker": "ready", "online": "running"},
             {"hctl": "0:0:1:1", "dev": "sdc", "dm_state": "active", "checker": "ready", "online": "running"},
             {"hctl": "1:0:1:1", "dev": "sde", "dm_state": "failed", "checker": "faulty", "online": "offline"},
         ],
         "active_paths": 3, "total_paths": 4},
        {"name": "3600a09806c5742304b5d2f656c533466", "wwid": "3600a09806c5742304b5d2f656c533466",
         "dm": "dm-3", "vendor_product": "NETAPP,LUN C-Mode", "size": "20G",
         "paths": [
             {"hctl": "2:0:0:7", "dev": "sdf", "dm_state": "active", "checker": "i/o pending",
              "online": "running"},
             {"hctl": "#:#:#:#", "dev": "-", "dm_state": "active", "checker": "faulty", "online": "running"},
         ],
         "active_paths": 1, "total_paths": 2},
    ]


def test_multipath_absent_runs_nothing():
    runner = FakeRunner()
    assert _snapshot.read_multipath(runner) == ({"available": False, "maps": []}, None)
    assert runner.calls == []


def test_multipath_without_kernel_driver_is_not_a_problem():
    runner = FakeRunner([(["/sbin/multipath", "-ll"], (1, "", "DM multipath kernel driver not loaded\n"))],
                        tools={"multipath": "/sbin/multipath"})
    assert _snapshot.read_multipath(runner) == ({"available": False, "maps": []}, None)
    assert runner.calls == [["/sbin/multipath", "-ll"]]


def test_multipath_failure_is_a_problem():
    runner = FakeRunner([(["/sbin/multipath", "-ll"], (1, "", "libdevmapper: ioctl failed\n"))],
                        tools={"multipath": "/sbin/multipath"})
    section, problem = _snapshot.read_multipath(runner)
    assert section == {"available": True, "maps": []}
    assert problem == "multipath -ll exited 1: libdevmapper: ioctl failed"


def test_product_version_from_file_with_regex(tmp_path):
    path = tmp_path / "ics-release"
    path.write_text("InCloud Sphere ICS6.8.1 (V6R08B012-b3-x86_64)\n")
    assert _snapshot.read_product_version(FakeRunner(), str(path), None, r"ICS(\d+\.\d+\.\d+)") == (
        "6.8.1", "file:%s" % path, None)
    assert _snapshot.read_product_version(FakeRunner(), str(path), None, None) == (
        "InCloud Sphere ICS6.8.1 (V6R08B012-b3-x86_64)", "file:%s" % path, None)


def test_product_version_from_command_exact_argv():
    argv = ["rpm", "-q", "--qf", "%{VERSION}", "ics-release"]
    runner = FakeRunner([(argv, (0, "6.8.1", ""))])
    assert _snapshot.read_product_version(runner, None, argv, None) == (
        "6.8.1", "command:rpm -q --qf %{VERSION} ics-release", None)
    assert runner.calls == [argv]


def test_product_version_problems(tmp_path):
    argv = ["rpm", "-q", "ics-release"]
    runner = FakeRunner([(argv, (1, "package ics-release is not installed\n", ""))])
    assert _snapshot.read_product_version(runner, None, argv, None) == (
        None, "command:rpm -q ics-release",
        'version_command ["rpm", "-q", "ics-release"] exited 1: package ics-release is not installed')
    missing = str(tmp_path / "missing")
    assert _snapshot.read_product_version(FakeRunner(), missing, None, None) == (
        None, "file:%s" % missing, "cannot read version_file %s" % missing)
    path = tmp_path / "v"
    path.write_text("6.8.1\n")
    assert _snapshot.read_product_version(FakeRunner(), str(path), None, r"ICS(\d)") == (
        None, "file:%s" % path, "version_regex 'ICS(\\\\d)' matched nothing in '6.8.1'")


def test_capture_san_host_with_datastores_and_multipath(tmp_path):
    snap = san_snapshot(tmp_path, multipath=fixture("multipath_ll.txt"),
                        datastores=["/datastore/shared01/", "/run"])
    assert [m["target"] for m in snap["mounts"]] == [
        "/", "/boot", "/datastore/nfs01", "/datastore/shared01", "/run"]
    assert snap["datastores"] == ["/datastore/shared01", "/run"]
    assert [m["name"] for m in snap["multipath"]["maps"]] == [
        "mpatha", "3600a09806c5742304b5d2f656c533466"]
    assert snap["incomplete"] == []


def test_capture_rejects_relative_datastore(tmp_path):
    sys_root, proc_root = this_vm(tmp_path)
    with pytest.raises(SnapshotError, match="datastore path 'datastore' must be an absolute path"):
        capture(vm_runner(), sysfs_root=sys_root, proc_root=proc_root, datastores=["datastore"])


# ---------------------------------------------------------------------------
# compare: doctored snapshots give exactly the expected findings
# ---------------------------------------------------------------------------

def kinds(findings):
    return [(f["severity"], f["kind"], f["object"]) for f in findings]


def test_same_snapshot_twice_has_no_findings(tmp_path):
    snap = vm_snapshot(tmp_path)
    assert compare(snap, copy.deepcopy(snap)) == []
    assert compare(None, snap) == []


def test_doctored_disk_missing(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    extra = dict(after["block_devices"][1], name="vdb", kname="vdb", size=107374182400,
                 serial="DATA01", mountpoint=None)
    before["block_devices"].append(extra)
    assert compare(before, after) == [{
        "severity": "error", "kind": "disk_missing", "object": "vdb (serial:DATA01)",
        "before": {"names": ["vdb"], "size": 107374182400, "wwn": None, "serial": "DATA01", "tran": None},
        "after": None,
        "hint": "the disk is gone: check the LUN mapping, cabling and HBA, then run "
                "clusterops.upgrade.adapter_rescan"}]


def test_doctored_disk_smaller(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    before["block_devices"][1]["size"] = VDA_SIZE * 2
    assert compare(before, after) == [{
        "severity": "error", "kind": "capacity_changed", "object": "vda",
        "before": VDA_SIZE * 2, "after": VDA_SIZE,
        "hint": "the disk is smaller than before: check the LUN on the array before anything "
                "writes to it"}]


def test_doctored_disk_larger_is_info(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    before["block_devices"][1]["size"] = VDA_SIZE // 2
    assert kinds(compare(before, after)) == [("info", "capacity_changed", "vda")]


def test_doctored_nic_at_100(tmp_path):
    before = san_snapshot(tmp_path / "b")
    after = san_snapshot(tmp_path / "a", speeds={"eth1": "100"})
    assert compare(before, after) == [{
        "severity": "error", "kind": "nic_speed_low", "object": "eth1", "before": 1000, "after": 100,
        "hint": "negotiated below 1000 Mb/s: usually a bad or loose cable or a switch port setting "
                "(ICS runbook: 100M means a cable problem)"}]


def test_nic_already_slow_before_is_a_warning(tmp_path):
    before = san_snapshot(tmp_path / "b", speeds={"eth1": "100"})
    after = san_snapshot(tmp_path / "a", speeds={"eth1": "100"})
    assert kinds(compare(before, after)) == [("warning", "nic_speed_low", "eth1")]
    assert kinds(compare(None, after)) == [("error", "nic_speed_low", "eth1")]


def test_nic_speed_drop_above_threshold_and_threshold_option(tmp_path):
    before = san_snapshot(tmp_path / "b")
    after = san_snapshot(tmp_path / "a", speeds={"eth0": "1000"})
    assert compare(before, after)[0]["kind"] == "nic_speed_changed"
    assert kinds(compare(before, after)) == [("warning", "nic_speed_changed", "eth0")]
    assert kinds(compare(before, after, {"min_nic_speed_mbps": 10000})) == [
        ("error", "nic_speed_low", "eth0"), ("warning", "nic_speed_low", "eth1")]


def test_nic_patterns_select_what_is_checked(tmp_path):
    after = san_snapshot(tmp_path)
    # veth is not checked by default, but is when named.
    assert compare(None, after, {"min_nic_speed_mbps": 15000}) == compare(
        None, after, {"min_nic_speed_mbps": 15000, "nics": ["eth*", "bond*", "br*"]})
    assert kinds(compare(None, after, {"min_nic_speed_mbps": 15000})) == [
        ("error", "nic_speed_low", "eth0"), ("error", "nic_speed_low", "eth1")]
    assert kinds(compare(None, after, {"min_nic_speed_mbps": 15000, "nics": ["veth*"]})) == [
        ("error", "nic_speed_low", "veth1a2b")]


def test_nic_down_missing_mtu_added(tmp_path):
    before = san_snapshot(tmp_path)
    after = copy.deepcopy(before)
    nics = dict((n["name"], n) for n in after["nics"])
    nics["eth0"]["operstate"] = "down"
    nics["bond0"]["mtu"] = 9000
    after["nics"] = [n for n in after["nics"] if n["name"] != "br0"]
    after["nics"].append(dict(nics["eth1"], name="eth3"))
    after["nics"].append(dict(nics["eth1"], name="vnet7", virtual=True, kind="tun"))
    assert compare(before, after) == [
        {"severity": "error", "kind": "nic_down", "object": "eth0", "before": "up", "after": "down",
         "hint": "the interface was up before: check the cable, the switch port and the network "
                 "configuration"},
        {"severity": "error", "kind": "nic_missing", "object": "br0",
         "before": [n for n in before["nics"] if n["name"] == "br0"][0], "after": None,
         "hint": "the interface is gone: check its driver and firmware after the upgrade (ip link, dmesg)"},
        {"severity": "warning", "kind": "nic_mtu_changed", "object": "bond0", "before": 1500, "after": 9000,
         "hint": "the MTU differs from before: check the network configuration (jumbo frames on "
                 "storage networks)"},
        {"severity": "info", "kind": "nic_added", "object": "eth3", "before": None,
         "after": dict(nics["eth1"], name="eth3"), "hint": "an interface that was not there before"},
    ]


def test_nic_speed_unknown_after(tmp_path):
    before = san_snapshot(tmp_path / "b")
    after = san_snapshot(tmp_path / "a", speeds={"eth1": "-1"})
    assert kinds(compare(before, after)) == [("warning", "nic_speed_unknown", "eth1")]


def test_doctored_mount_gone(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    gone = {"target": "/datastore/shared01", "source": "/dev/mapper/mpatha", "fstype": "xfs",
            "options": "rw,noatime", "ro": False}
    before["mounts"].append(gone)
    assert compare(before, after) == [{
        "severity": "error", "kind": "mount_missing", "object": "/datastore/shared01",
        "before": gone, "after": None,
        "hint": "not mounted: mount it (mount -a, or the platform's datastore page) before starting VMs"}]


def test_datastores_limit_and_need_no_history(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    before["mounts"].append({"target": "/mnt/iso", "source": "/dev/loop0", "fstype": "iso9660",
                             "options": "ro", "ro": True})
    # Only the datastores are checked when they are configured.
    assert compare(before, after, {"datastores": ["/"]}) == []
    assert kinds(compare(None, after, {"datastores": ["/", "/datastore/local/"]})) == [
        ("error", "mount_missing", "/datastore/local")]


def test_mount_readonly_and_changed(tmp_path):
    before = vm_snapshot(tmp_path)
    after = copy.deepcopy(before)
    after["mounts"][0].update(options="ro,relatime", ro=True, source="/dev/vdb")
    assert kinds(compare(before, after)) == [("error", "mount_readonly", "/"), ("warning", "mount_changed", "/")]
    assert compare(before, after)[1]["after"] == {"source": "/dev/vdb", "fstype": "ext4"}


def test_doctored_boot_older_than_reboot_required_since(tmp_path):
    snap = vm_snapshot(tmp_path)
    booted_at = snap["boot"]["booted_at"]
    since = "2026-11-22T02:00:00+00:00"
    assert compare(None, snap, {"reboot_required_since": since}) == [{
        "severity": "error", "kind": "not_rebooted", "object": "inode-03",
        "before": "2026-11-22T02:00:00Z", "after": _snapshot.iso_utc(booted_at),
        "hint": "the host has not booted since 2026-11-22T02:00:00Z: reboot it (ICS runbook 3.6: "
                "every node is rebooted after the upgrade)"}]
    assert _snapshot.iso_utc(booted_at) == "2026-11-22T01:07:31Z"
    # Booted after the threshold: fine.  Epoch seconds work too.
    assert compare(snap, snap, {"reboot_required_since": booted_at - 60}) == []
    assert kinds(compare(None, snap, {"reboot_required_since": str(booted_at + 1)})) == [
        ("error", "not_rebooted", "inode-03")]


def test_rebooted_and_kernel_changed_are_info(tmp_path):
    before = vm_snapshot(tmp_path / "b")
    after = vm_snapshot(tmp_path / "a", boot_id="9c1e0d52-1111-4222-8333-444455556666",
                        btime=BTIME + 3600, release="6.18.45")
    assert kinds(compare(before, after)) == [
        ("info", "kernel_changed", "inode-03"), ("info", "rebooted", "inode-03")]


def test_version_mismatch_and_changed(tmp_path):
    before = vm_snapshot(tmp_path)
    before["product_version"] = "6.8.0"
    after = copy.deepcopy(before)
    assert compare(before, after, {"expected_version": "6.8.1"}) == [{
        "severity": "error", "kind": "version_mismatch", "object": "inode-03",
        "before": "6.8.1", "after": "6.8.0",
        "hint": "the product version is not 6.8.1: finish or redo the upgrade on this host"}]
    after["product_version"] = "6.8.1"
    assert compare(before, after, {"expected_version": "6.8.1"}) == []
    assert kinds(compare(before, after)) == [("info", "version_changed", "inode-03")]


def test_booted_fallback(tmp_path):
    snap = vm_snapshot(tmp_path, cmdline="BOOT_IMAGE=(loop0)/boot/vmlinuz cos-img/filename=/cOS/passive.img")
    assert kinds(compare(None, snap)) == [("error", "booted_fallback", "inode-03")]
    assert compare(None, snap)[0]["hint"] == (
        "the host booted the fallback image: the new image did not boot (repair it with the "
        "clusterops.upgrade.repair_image playbook)")
    assert compare(None, snap, {"fallback_cmdline_markers": []}) == []
    assert detect_boot_mode(snap) == "fallback"


def test_san_disks_paths_and_multipath(tmp_path):
    before = san_snapshot(tmp_path / "b", multipath=fixture("multipath_ll.txt"))
    after = copy.deepcopy(before)
    # One FC path (sdc) gone, the NVMe disk renamed, a faulty multipath path recovers
    # on one map and the other map is gone.
    after["block_devices"] = [d for d in after["block_devices"] if d["name"] != "sdc"]
    for dev in after["block_devices"]:
        if dev["name"] == "nvme0n1":
            dev["name"] = dev["kname"] = "nvme1n1"
    mpatha = after["multipath"]["maps"][0]
    mpatha["paths"] = mpatha["paths"][:2]
    mpatha["active_paths"], mpatha["total_paths"] = 2, 2
    after["multipath"]["maps"] = [mpatha]
    findings = compare(before, after)
    assert kinds(findings) == [
        ("error", "disk_path_lost", "sdb,sdc (wwn:0x600508b4000156d700012000000b0000)"),
        ("error", "multipath_map_missing", "3600a09806c5742304b5d2f656c533466"),
        ("error", "multipath_path_lost", "mpatha (3600508b4000156d700012000000b0000)"),
        ("info", "disk_renamed", "nvme0n1 (wwn:eui.0025388b91b4c2a1)"),
    ]
    assert (findings[0]["before"], findings[0]["after"]) == (2, 1)
    assert (findings[2]["before"], findings[2]["after"]) == (3, 2)
    assert (findings[3]["before"], findings[3]["after"]) == (["nvme0n1"], ["nvme1n1"])


def test_faulty_multipath_paths_are_warnings(tmp_path):
    snap = san_snapshot(tmp_path, multipath=fixture("multipath_ll.txt"))
    assert [(f["severity"], f["kind"], f["object"], f["after"]) for f in compare(None, snap)] == [
        ("warning", "multipath_path_faulty", "3600a09806c5742304b5d2f656c533466", ["-"]),
        ("warning", "multipath_path_faulty", "mpatha (3600508b4000156d700012000000b0000)", ["sde"]),
    ]


def test_disk_added_is_info(tmp_path):
    before = san_snapshot(tmp_path)
    after = copy.deepcopy(before)
    after["block_devices"].append(dict(before["block_devices"][0], name="sdz", kname="sdz",
                                       wwn="0x5000000000000001", serial="NEW1"))
    assert kinds(compare(before, after)) == [("info", "disk_added", "sdz (wwn:0x5000000000000001)")]


def test_zram_and_partitions_are_not_compared(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    before["block_devices"][0]["size"] = 8589934592  # zram0 resized
    before["block_devices"].append({"name": "vda1", "kname": "vda1", "pkname": "vda", "type": "part",
                                    "size": 1, "wwn": None, "serial": None})
    assert compare(before, after) == []


def test_incomplete_sections_are_reported_not_compared(tmp_path):
    after = vm_snapshot(tmp_path)
    before = copy.deepcopy(after)
    before["block_devices"].append(dict(after["block_devices"][1], name="vdb", kname="vdb"))
    after["block_devices"] = []
    after["incomplete"] = [{"section": "block_devices", "reason": "lsblk exited 32: boom"}]
    before["incomplete"] = [{"section": "multipath", "reason": "multipath -ll exited 1"}]
    assert compare(before, after) == [
        {"severity": "error", "kind": "capture_incomplete", "object": "block_devices", "before": None,
         "after": "lsblk exited 32: boom",
         "hint": "this part of the host could not be read, so it was not checked"},
        {"severity": "warning", "kind": "capture_incomplete", "object": "multipath",
         "before": "not captured earlier", "after": None,
         "hint": "the earlier snapshot lacks this part, so it was not compared"},
    ]


@pytest.mark.parametrize("options, message", [
    ({"min_nic_speed": 100}, "unknown compare option 'min_nic_speed'"),
    ({"min_nic_speed_mbps": "fast"}, "min_nic_speed_mbps must be a whole number"),
    ({"min_nic_speed_mbps": -1}, "min_nic_speed_mbps must be a whole number"),
    ({"reboot_required_since": "2026-11-22 08:00"}, "has no UTC offset: add Z or \\+08:00"),
    ({"reboot_required_since": "yesterday"}, "'yesterday' is neither epoch seconds nor ISO 8601"),
])
def test_bad_compare_options(tmp_path, options, message):
    snap = vm_snapshot(tmp_path)
    with pytest.raises(SnapshotError, match=message):
        compare(None, snap, options)


def test_compare_rejects_something_else():
    with pytest.raises(SnapshotError, match="compare_to is not a host_snapshot snapshot"):
        compare({"boot": {}}, {"format": 1, "boot": {}, "block_devices": [], "nics": [],
                               "mounts": [], "multipath": {"maps": []}})


@pytest.mark.parametrize("value, expected", [
    (1795309651, 1795309651.0),
    ("1795309651.5", 1795309651.5),
    ("2026-11-22T01:07:31Z", 1795309651.0),
    ("2026-11-22T09:07:31+08:00", 1795309651.0),
    ("", None),
    (None, None),
])
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


def test_severity_helpers():
    findings = [{"severity": "info"}, {"severity": "error"}, {"severity": "warning"}, {"severity": "error"}]
    assert count_by_severity(findings) == {"error": 2, "warning": 1, "info": 1}
    assert findings_at_or_above(findings, "error") == [{"severity": "error"}, {"severity": "error"}]
    assert len(findings_at_or_above(findings, "warning")) == 3
    assert len(findings_at_or_above(findings, "info")) == 4
    assert findings_at_or_above(findings, "never") == []
    with pytest.raises(SnapshotError, match="fail_on must be one of error, warning, info, never"):
        findings_at_or_above(findings, "fatal")


# ---------------------------------------------------------------------------
# classify_reboot
# ---------------------------------------------------------------------------

NEW_BOOT = "9c1e0d52-1111-4222-8333-444455556666"


def reboot_pair(tmp_path, **after_proc):
    before = vm_snapshot(tmp_path / "b", now=BTIME + 600.0)
    after = vm_snapshot(tmp_path / "a", **after_proc)
    return before, after, before["captured_at"]


def test_classify_proven(tmp_path):
    before, after, requested = reboot_pair(tmp_path, boot_id=NEW_BOOT, btime=BTIME + 700)
    after["product_version"] = "6.8.1"
    result = classify_reboot(before, after, requested, expected_version="6.8.1")
    assert result == {
        "verdict": "proven",
        "reasons": ["a new boot (boot id %s), started at 2026-11-22T01:19:11Z, after the request at "
                    "2026-11-22T01:17:31Z" % NEW_BOOT],
        "boot_id_before": BOOT_ID, "boot_id_after": NEW_BOOT,
        "booted_at": "2026-11-22T01:19:11Z", "requested_at": "2026-11-22T01:17:31Z",
        "boot_mode": "normal", "product_version": "6.8.1", "expected_version": "6.8.1"}
    assert reboot_findings(result, "inode-03") == []


def test_classify_not_rebooted_same_boot(tmp_path):
    before, after, requested = reboot_pair(tmp_path)
    result = classify_reboot(before, after, requested)
    assert result["verdict"] == "not_rebooted"
    assert result["reasons"] == ["same boot as before the request (boot id %s, PID 1 started at "
                                 "2026-11-22T01:07:31Z)" % BOOT_ID]
    assert reboot_findings(result, "inode-03") == [{
        "severity": "error", "kind": "reboot_not_proven", "object": "inode-03",
        "before": "not_rebooted", "after": result["reasons"][0],
        "hint": "the host did not reboot: check the reboot method and the console"}]


def test_classify_not_rebooted_boot_older_than_request(tmp_path):
    """A different boot that started before the request is not the requested reboot."""
    before, after, requested = reboot_pair(tmp_path, boot_id=NEW_BOOT, btime=BTIME + 100)
    result = classify_reboot(before, after, requested)
    assert result["verdict"] == "not_rebooted"
    assert result["reasons"] == ["the running system booted at 2026-11-22T01:09:11Z, before the "
                                 "reboot was requested at 2026-11-22T01:17:31Z"]


def test_classify_container_restart_is_a_reboot(tmp_path):
    """Same kernel boot id (a container), but PID 1 restarted after the request."""
    before, after, requested = reboot_pair(tmp_path, init_ticks=70000)
    assert after["boot"]["boot_id"] == before["boot"]["boot_id"]
    assert classify_reboot(before, after, requested)["verdict"] == "proven"


def test_classify_old_version(tmp_path):
    before, after, requested = reboot_pair(tmp_path, boot_id=NEW_BOOT, btime=BTIME + 700)
    before["product_version"] = after["product_version"] = "6.8.0"
    result = classify_reboot(before, after, requested, expected_version="6.8.1")
    assert (result["verdict"], result["reasons"]) == (
        "old_version", ["rebooted, but the product version is 6.8.0, not 6.8.1"])
    assert reboot_findings(result)[0]["hint"] == (
        "the host rebooted into the old version: the upgrade did not take effect, redo it on this host")


def test_classify_booted_fallback(tmp_path):
    before, after, requested = reboot_pair(
        tmp_path, boot_id=NEW_BOOT, btime=BTIME + 700, cmdline="root=LABEL=COS_STATE cos-img/filename=/cOS/passive.img")
    mode = detect_boot_mode(after)
    result = classify_reboot(before, after, requested, expected_version="6.8.1", boot_mode=mode)
    assert (result["verdict"], result["boot_mode"]) == ("booted_fallback", "fallback")
    assert result["reasons"] == ["the kernel command line shows the fallback image: "
                                 "root=LABEL=COS_STATE cos-img/filename=/cOS/passive.img"]


def test_classify_needs_a_request_time(tmp_path):
    before, after = reboot_pair(tmp_path)[:2]
    with pytest.raises(SnapshotError, match="reboot_requested_at is required"):
        classify_reboot(before, after, None)
    with pytest.raises(SnapshotError, match="boot_mode must be normal or fallback"):
        classify_reboot(before, after, 1.0, boot_mode="rescue")


# ---------------------------------------------------------------------------
# write_json_atomic
# ---------------------------------------------------------------------------

def test_write_json_atomic(tmp_path):
    dest = tmp_path / "run-1" / "snap.json"
    write_json_atomic(str(dest), {"b": 1, "a": [1, 2]})
    assert json.loads(dest.read_text()) == {"a": [1, 2], "b": 1}
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    write_json_atomic(str(dest), {"c": 3})
    assert json.loads(dest.read_text()) == {"c": 3}
    assert sorted(os.listdir(str(dest.parent))) == ["snap.json"]


def test_write_json_atomic_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(TypeError):
        write_json_atomic(str(tmp_path / "x.json"), {"bad": object()})
    assert os.listdir(str(tmp_path)) == []
