# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_snapshot, adapter_rescan and roles/post_upgrade/tasks/reboot_proof.yml
against the lab (issue 8's lab proof), through ansible-playbook and the lab
inventory.

* Every node: a snapshot is complete (nothing in ``incomplete``) and says what
  the node says when asked directly (boot id, host name, kernel, eth0 and its
  speed, the state and log partitions' mounts, the product version, lsblk's
  view); a second snapshot compared with the first has no findings.
* adapter_rescan on a node: a lab node (a container on a kernel without SCSI)
  has no adapters, which is not an error, and nothing changes.
* The reboot task file on a lab node: ``builtin`` (ansible.builtin.reboot,
  the node's container restarts) and ``command`` (``systemctl reboot``, fired
  in the background) are proven - new boot id, booted after the request, the
  expected product version; ``command`` with ``true`` (a method that does
  nothing) is reported as "did not reboot".

What is NOT real here is said in docs/host_snapshot.md: a lab node has no disk
of its own (lsblk lists nothing in the container), no SCSI/FC/iSCSI adapter,
and its NIC is a veth.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, testing  # noqa: E402

from lab_playbook import run_adhoc, run_playbook  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # module fixture: skips when the lab is down, fails when unhealthy

HOSTS = ["ctl-a", "ctl-b", "cmp-1", "cmp-2", "cmp-3", "cmp-4"]
STATE = "/run/initramfs/cos-state"
VERSION_FILE = "/etc/labsphere/version"
SNAPSHOT_ARGS = {"version_file": VERSION_FILE, "datastores": ["/var/log", STATE]}


def on(lab, node, *argv):
    return lab.exec(node, list(argv)).stdout


def boot_id(lab, node):
    return on(lab, node, "cat", "/proc/sys/kernel/random/boot_id").strip()


def quiet_controller(lab):
    """The controller that holds no resource: rebooting it moves nothing."""
    holders = set(node for _role, node in testing.mon_roles(lab.crm_mon()).values())
    spare = [n for n in ("ctl-a", "ctl-b") if n not in holders]
    return spare[0] if spare else "ctl-b"


def test_snapshot_is_complete_and_a_second_one_has_no_findings(lab, tmp_path):
    run = run_playbook("lab_host_snapshot.yml", tmp_path, "snap", {"lab_snapshot_args": SNAPSHOT_ARGS})
    assert run.rc == 0, run.tail()
    assert sorted(run.results) == sorted(HOSTS)
    for node in HOSTS:
        first, second = run.results[node]["first"], run.results[node]["second"]
        snap = first["snapshot"]
        assert snap["incomplete"] == [], node
        # what the node says when asked directly
        assert snap["hostname"] == on(lab, node, "hostname").strip() == node
        assert snap["boot"]["boot_id"] == boot_id(lab, node)
        assert snap["kernel"]["release"] == on(lab, node, "uname", "-r").strip()
        assert (snap["product_version"], snap["product_version_source"]) == (
            config.FROM_VERSION, "file:" + VERSION_FILE)
        assert [n["name"] for n in snap["nics"]] == ["eth0"]
        eth0 = snap["nics"][0]
        assert (eth0["operstate"], eth0["speed_mbps"], eth0["mtu"], eth0["virtual"]) == (
            on(lab, node, "cat", "/sys/class/net/eth0/operstate").strip(),
            int(on(lab, node, "cat", "/sys/class/net/eth0/speed")),
            int(on(lab, node, "cat", "/sys/class/net/eth0/mtu")), True)
        mounts = dict((m["target"], (m["source"], m["fstype"], m["ro"])) for m in snap["mounts"])
        assert (mounts[STATE], mounts["/var/log"]) == (("/dev/cos-state", "ext4", True),
                                                       ("/dev/lab-log", "ext4", False))
        lsblk = json.loads(on(lab, node, "lsblk", "-J", "-b"))["blockdevices"]
        assert [d["name"] for d in snap["block_devices"]] == [d["name"] for d in lsblk]
        assert snap["multipath"] == {"available": False, "maps": []}
        # the same node a moment later: nothing to report
        assert second["findings"] == [], (node, second["findings"])
        assert second["finding_counts"] == {"error": 0, "warning": 0, "info": 0}
        assert second["snapshot"]["boot"]["boot_id"] == snap["boot"]["boot_id"]


def test_adapter_rescan_on_a_node_without_adapters(lab):
    # read-only for the lab: nothing to scan in a container without SCSI
    node = "cmp-3"
    assert on(lab, node, "ls", "/sys/class").split().count("scsi_host") == 0
    proc = run_adhoc(node, "clusterops.upgrade.adapter_rescan")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.split(" | SUCCESS => ", 1)[1])
    assert result == {"adapters": [], "changed": False, "devices_added": [], "devices_after": [],
                      "devices_before": [], "devices_removed": [], "devices_resized": [], "iscsi_sessions": [],
                      "steps": []}


def proof_vars(node, **extra):
    variables = {"lab_hosts": node, "post_upgrade_expected_version": config.FROM_VERSION,
                 "post_upgrade_version_file": VERSION_FILE, "post_upgrade_reboot_timeout": 300}
    variables.update(extra)
    return variables


def test_reboot_proof_on_a_lab_node(lab, tmp_path):
    node = quiet_controller(lab)
    try:
        # builtin: ansible.builtin.reboot restarts the node's container
        first = boot_id(lab, node)
        run = run_playbook("lab_reboot_proof.yml", tmp_path, "builtin", proof_vars(node))
        assert run.rc == 0, run.tail()
        outcome = run.results[node]
        second = boot_id(lab, node)
        assert second != first
        proof = outcome["proof"]
        assert (outcome["proven"], outcome["msg"], proof["verdict"]) == (True, "", "proven")
        assert (proof["boot_id_before"], proof["boot_id_after"]) == (first, second)
        assert (proof["product_version"], proof["expected_version"]) == (config.FROM_VERSION, config.FROM_VERSION)
        assert proof["booted_at"] > proof["requested_at"]  # ISO 8601 UTC strings of one format
        assert proof["reasons"] == ["a new boot (boot id %s), started at %s, after the request at %s"
                                    % (second, proof["booted_at"], proof["requested_at"])]
        assert "%s: reboot proven: a new boot (boot id %s)" % (node, second) in run.output
        assert lab.wait_healthy(120) == []

        # command: a configured method (systemctl reboot, fired in the background)
        run = run_playbook("lab_reboot_proof.yml", tmp_path, "command", proof_vars(
            node, post_upgrade_reboot_method="command", post_upgrade_reboot_command=["systemctl", "reboot"],
            post_upgrade_reboot_command_delay=15))
        assert run.rc == 0, run.tail()
        third = boot_id(lab, node)
        assert third != second
        assert (run.results[node]["proof"]["verdict"], run.results[node]["proof"]["boot_id_after"]) == (
            "proven", third)
        assert lab.wait_healthy(120) == []

        # a method that does nothing: "did not reboot"
        run = run_playbook("lab_reboot_proof.yml", tmp_path, "noop", proof_vars(
            node, post_upgrade_reboot_method="command", post_upgrade_reboot_command=["true"],
            post_upgrade_reboot_command_delay=0))
        assert run.rc == 0, run.tail()
        outcome = run.results[node]
        assert boot_id(lab, node) == third
        assert (outcome["proven"], outcome["proof"]["verdict"]) == (False, "not_rebooted")
        assert outcome["msg"].startswith(
            "%s: reboot not proven, did not reboot (not_rebooted): same boot as before the request "
            "(boot id %s, PID 1 started at " % (node, third))
    finally:
        testing.all_vms_started(lab)
        assert lab.wait_healthy(120) == []
