# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""host_snapshot on THIS machine: real lsblk, findmnt, /proc and /sys.

Nothing is mocked.  The expected values are read independently from the
kernel's files, so the tests hold on any Linux host; on the build VM they cover
a virtio disk, a NIC that reports speed -1 (virtio) and NICs whose speed read
fails with EINVAL (ifb).  A NIC that does report a speed is made for real in a
private network namespace (a veth pair; the kernel reports 10000 Mb/s).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import host_snapshot

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE = os.path.join(REPO, "plugins", "modules", "host_snapshot.py")
COLLECTIONS = os.path.join(REPO, "collections")


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            host_snapshot.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def expected_speed(name):
    """What the kernel says, read here independently of the module."""
    raw = read("/sys/class/net/%s/speed" % name)
    if raw is None:
        return None  # EINVAL: the kernel has no speed for this NIC
    value = int(raw)
    return value if 0 < value < 65535 else None


def test_snapshot_is_complete(capsys):
    code, out = run({"fail_on": "never"}, capsys)
    assert code == 0
    snap = out["snapshot"]
    assert snap["incomplete"] == []

    boot = snap["boot"]
    assert boot["boot_id"] == read("/proc/sys/kernel/random/boot_id")
    btime = [line for line in read("/proc/stat").splitlines() if line.startswith("btime ")][0]
    assert boot["boot_time"] == int(btime.split()[1])
    assert boot["boot_time"] <= boot["booted_at"] <= time.time()
    assert 0 < boot["uptime_seconds"] <= float(read("/proc/uptime").split()[0])
    assert snap["kernel"]["release"] == os.uname().release
    assert snap["hostname"] == read("/proc/sys/kernel/hostname")

    # Every whole disk the kernel has is there with its size in bytes.
    devices = dict((d["name"], d) for d in snap["block_devices"])
    disks = [name for name in os.listdir("/sys/block")
             if not name.startswith(("loop", "ram")) and int(read("/sys/block/%s/size" % name)) > 0]
    assert disks, "this host has no disk with a size"
    for name in disks:
        assert devices[name]["size"] == int(read("/sys/block/%s/size" % name)) * 512
        assert devices[name]["type"] == "disk"
    virtio = [n for n in disks if "/virtio" in os.path.realpath("/sys/block/%s/device" % n)]
    for name in virtio:
        assert devices[name]["vendor"] == "0x1af4"  # virtio's PCI vendor id

    # Every NIC but lo, with the speed the kernel reports (or none).
    nics = dict((n["name"], n) for n in snap["nics"])
    assert sorted(nics) == sorted(n for n in os.listdir("/sys/class/net") if n != "lo")
    for name, nic in nics.items():
        assert nic["speed_mbps"] == expected_speed(name), name
        assert nic["operstate"] == read("/sys/class/net/%s/operstate" % name)
        assert nic["virtual"] is (not os.path.exists("/sys/class/net/%s/device" % name))
        assert nic["mtu"] == int(read("/sys/class/net/%s/mtu" % name))

    # The root filesystem, as findmnt itself reports it.
    root = json.loads(subprocess.run(["findmnt", "-J", "-o", "SOURCE,FSTYPE", "/"], check=True,
                                     capture_output=True, text=True).stdout)["filesystems"][0]
    mounts = dict((m["target"], m) for m in snap["mounts"])
    assert (mounts["/"]["source"], mounts["/"]["fstype"]) == (root["source"], root["fstype"])
    assert all(m["fstype"] not in ("proc", "sysfs", "tmpfs", "cgroup", "overlay") for m in snap["mounts"])

    if shutil.which("multipath") is None and not os.path.exists("/usr/sbin/multipath"):
        assert snap["multipath"] == {"available": False, "maps": []}


def test_this_vm_has_nics_without_a_speed(capsys):
    """The build VM's virtio eth0 reports -1 and its ifb NICs refuse the read."""
    out = run({"fail_on": "never"}, capsys)[1]
    without = [n["name"] for n in out["snapshot"]["nics"] if n["speed_mbps"] is None]
    if not without:
        pytest.skip("every NIC of this host reports a speed")
    for name in without:
        assert expected_speed(name) is None


def test_second_snapshot_has_no_findings(capsys):
    code, first = run({"fail_on": "never"}, capsys)
    assert code == 0
    code, second = run({"compare_to": first["snapshot"]}, capsys)
    assert code == 0
    assert second["findings"] == []
    assert second["finding_counts"] == {"error": 0, "warning": 0, "info": 0}


def test_doctored_before_on_real_data(capsys):
    code, first = run({"fail_on": "never"}, capsys)
    assert code == 0
    before = copy.deepcopy(first["snapshot"])
    disk = [d for d in before["block_devices"] if d["type"] == "disk" and d["size"]][-1]
    disk["size"] *= 2
    before["block_devices"].append(dict(disk, name="sdq", kname="sdq", serial="GONE-0001"))
    before["mounts"].append({"target": "/datastore/shared01", "source": "/dev/mapper/mpatha",
                             "fstype": "xfs", "options": "rw,noatime", "ro": False})
    since = int(time.time()) + 5
    code, out = run({"compare_to": before, "reboot_required_since": since}, capsys)
    assert code == 1
    host = out["snapshot"]["hostname"]
    assert [(f["severity"], f["kind"], f["object"]) for f in out["findings"]] == [
        ("error", "capacity_changed", disk["name"]),
        ("error", "disk_missing", "sdq (serial:GONE-0001)"),
        ("error", "mount_missing", "/datastore/shared01"),
        ("error", "not_rebooted", host),
    ]
    assert out["findings"][0]["before"] == disk["size"]
    assert out["findings"][0]["after"] == disk["size"] // 2


def test_dest_through_ansible_playbook(tmp_path):
    """The module through ansible-playbook: dest written 0600, then compared."""
    dest = tmp_path / "journal" / "snapshot.json"
    playbook = tmp_path / "snap.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Before
      clusterops.upgrade.host_snapshot:
        dest: %(dest)s
        fail_on: never
      register: before
    - name: After
      clusterops.upgrade.host_snapshot:
        compare_to: "{{ lookup('ansible.builtin.file', '%(dest)s') | from_json }}"
      register: after
    - name: Nothing changed
      ansible.builtin.assert:
        that:
          - after.findings == []
          - before.changed
          - after.snapshot.boot.boot_id == before.snapshot.boot.boot_id
""" % {"dest": dest})
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", os.path.join(REPO, "inventories", "localhost", "hosts.yml"), str(playbook)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert json.loads(dest.read_text())["format"] == 1


def _netns_ready():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(["unshare", "-n", "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0


def test_nic_with_a_real_speed_in_a_network_namespace(tmp_path):
    """A real veth pair in a private netns (and a private mount ns for its sysfs)."""
    if not _netns_ready():
        pytest.skip("needs root, unshare, ip and veth support")
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir()
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "sysfs_root": str(sysfs), "nics": ["v*"], "min_nic_speed_mbps": 100000, "fail_on": "never"}}))
    script = ('ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up && '
              'mount -t sysfs sysfs "$1" && exec "$2" "$3" "$4"')
    proc = subprocess.run(
        ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c", script, "sh",
         str(sysfs), sys.executable, MODULE, str(args)],
        env=dict(os.environ, PYTHONPATH=COLLECTIONS), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert os.listdir(str(sysfs)) == []  # the sysfs mount stayed inside the namespace
    assert [(n["name"], n["operstate"], n["speed_mbps"], n["duplex"], n["virtual"]) for n in out["snapshot"]["nics"]] == [
        ("v0", "up", 10000, "full", True), ("v1", "up", 10000, "full", True)]
    assert [(f["severity"], f["kind"], f["object"], f["after"]) for f in out["findings"]] == [
        ("error", "nic_speed_low", "v0", 10000), ("error", "nic_speed_low", "v1", 10000)]
