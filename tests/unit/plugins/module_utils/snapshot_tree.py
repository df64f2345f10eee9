# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded proc/sysfs trees and a fake command runner for the snapshot tests.

The trees hold only the files host_snapshot reads.  ``this_vm`` mirrors the
build VM (a virtio NIC reporting speed -1, two ifb NICs that are down, no SCSI);
``san_host`` is an ICS-like compute node (two physical NICs at 10G/1G, a bond, a
bridge, a veth).
"""

from __future__ import annotations

import json
import os

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

BOOT_ID = "4df1173c-e056-4ba8-be85-4236d71e9786"
BTIME = 1795309651
CLK_TCK = 100


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def init_stat(ticks, comm="systemd"):
    """A /proc/1/stat line whose field 22 (starttime) is ``ticks``."""
    after = ["S"] + ["0"] * 18 + [str(ticks)] + ["0"] * 30
    return "1 (%s) %s\n" % (comm, " ".join(after))


def make_proc(root, boot_id=BOOT_ID, btime=BTIME, uptime="395.19 560.61", init_ticks=30,
              cmdline="BOOT_IMAGE=/vmlinuz-6.18.44 root=/dev/vda ro quiet",
              hostname="inode-03", release="6.18.44", comm="systemd"):
    write(os.path.join(root, "sys/kernel/random/boot_id"), boot_id + "\n")
    write(os.path.join(root, "stat"), "cpu  1 2 3 4\nintr 0\nctxt 12345\nbtime %d\nprocesses 99\n" % btime)
    write(os.path.join(root, "uptime"), uptime + "\n")
    write(os.path.join(root, "1/stat"), init_stat(init_ticks, comm))
    write(os.path.join(root, "cmdline"), cmdline.replace(" ", "\x00") + "\x00")
    write(os.path.join(root, "sys/kernel/osrelease"), release + "\n")
    write(os.path.join(root, "sys/kernel/version"), "#1 SMP PREEMPT_DYNAMIC\n")
    write(os.path.join(root, "sys/kernel/hostname"), hostname + "\n")
    return str(root)


def make_nic(sys_root, name, operstate="up", speed="1000", duplex="full", mtu=1500,
             mac="52:54:00:00:00:01", physical=True, subdirs=(), devtype=None, arphrd=1):
    base = os.path.join(sys_root, "class/net", name)
    os.makedirs(base, exist_ok=True)
    write(os.path.join(base, "operstate"), operstate + "\n")
    if speed is not None:
        write(os.path.join(base, "speed"), speed + "\n")
    if duplex is not None:
        write(os.path.join(base, "duplex"), duplex + "\n")
    write(os.path.join(base, "mtu"), "%d\n" % mtu)
    write(os.path.join(base, "address"), mac + "\n")
    write(os.path.join(base, "type"), "%d\n" % arphrd)
    uevent = "INTERFACE=%s\nIFINDEX=2\n" % name
    if devtype:
        uevent = "DEVTYPE=%s\n" % devtype + uevent
    write(os.path.join(base, "uevent"), uevent)
    if physical:
        os.makedirs(os.path.join(base, "device"), exist_ok=True)
    for sub in subdirs:
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    return base


def this_vm(tmp_path, **proc):
    """The build VM: eth0 virtio (speed -1), ifb0/ifb1 down (no speed), lo."""
    sys_root = os.path.join(str(tmp_path), "sys")
    proc_root = make_proc(os.path.join(str(tmp_path), "proc"), **proc)
    make_nic(sys_root, "lo", operstate="unknown", speed=None, duplex=None, mtu=65536,
             mac="00:00:00:00:00:00", physical=False, arphrd=772)
    make_nic(sys_root, "eth0", speed="-1", duplex="unknown", mtu=1400, mac="02:fc:00:00:00:01")
    make_nic(sys_root, "ifb0", operstate="down", speed=None, duplex=None, mac="6e:3a:8f:da:1b:7d",
             physical=False)
    make_nic(sys_root, "ifb1", operstate="down", speed=None, duplex=None, mac="56:c6:75:23:b4:40",
             physical=False)
    return sys_root, proc_root


def san_host(tmp_path, speeds=None, **proc):
    """An ICS-like node: eth0 10G and eth1 1G physical, bond0, br0, a VM's veth."""
    speeds = dict({"eth0": "10000", "eth1": "1000"}, **(speeds or {}))
    sys_root = os.path.join(str(tmp_path), "sys")
    proc_root = make_proc(os.path.join(str(tmp_path), "proc"), **proc)
    make_nic(sys_root, "lo", operstate="unknown", speed=None, duplex=None, mtu=65536,
             mac="00:00:00:00:00:00", physical=False, arphrd=772)
    make_nic(sys_root, "eth0", speed=speeds["eth0"], mtu=9000, mac="52:54:00:00:00:10")
    make_nic(sys_root, "eth1", speed=speeds["eth1"], mac="52:54:00:00:00:11")
    make_nic(sys_root, "eth2", operstate="down", speed="-1", duplex="unknown", mac="52:54:00:00:00:12")
    make_nic(sys_root, "bond0", speed="20000", mac="52:54:00:00:00:20", physical=False,
             subdirs=("bonding",), devtype="bond")
    make_nic(sys_root, "br0", operstate="up", speed=None, duplex=None, mac="52:54:00:00:00:30",
             physical=False, subdirs=("bridge",), devtype="bridge")
    make_nic(sys_root, "veth1a2b", speed="10000", mac="fe:54:00:00:00:40", physical=False)
    return sys_root, proc_root


class FakeRunner:
    """Answers argv lists from a table and records every call (exact argv)."""

    def __init__(self, responses=(), tools=None):
        self.responses = {}
        for argv, answer in responses:
            self.responses.setdefault(tuple(argv), []).append(answer)
        self.tools = dict(tools or {})
        self.calls = []

    def which(self, name):
        return self.tools.get(name)

    def run(self, argv):
        self.calls.append(list(argv))
        answers = self.responses.get(tuple(argv))
        if not answers:
            raise AssertionError("unexpected command %r" % (argv,))
        return answers.pop(0) if len(answers) > 1 else answers[0]


def json_text(data):
    return json.dumps(data)
