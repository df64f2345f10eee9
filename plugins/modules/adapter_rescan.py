#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to clusterops.upgrade
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: adapter_rescan
short_description: Rescan a host's storage adapters and report the block devices that appeared or went
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - The equivalent of ICS's "scan all adapters" after an upgrade. Rescans what the host has, in this
    order - FC hosts (write C(1) to C(/sys/class/fc_host/host*/issue_lip)), SCSI hosts (write C(- - -)
    to C(/sys/class/scsi_host/host*/scan)), iSCSI sessions (C(iscsiadm -m session --rescan)), then
    waits for udev (C(udevadm settle)), reloads multipath (C(multipath -r)) and waits for udev again.
  - Steps whose adapter or tool is absent are left out; a host with no adapters at all is not an error.
    iSCSI exit code 21 (no sessions) is not an error.
  - Every step is attempted, also after one fails; the task fails afterwards, naming the failed steps.
  - Reports the disks and multipath maps (lsblk) before and after. C(changed) is true only when
    devices appeared, disappeared or changed size.
options:
  fc_issue_lip:
    description:
      - Issue a LIP on FC hosts before the SCSI scan. A LIP briefly resets the FC link; turn it off
        where the array vendor advises against it.
    type: bool
    default: true
  iscsi_rescan:
    description: Rescan the iSCSI sessions when C(iscsiadm) exists.
    type: bool
    default: true
  multipath_reload:
    description: Run C(multipath -r) when C(multipath) exists.
    type: bool
    default: true
  settle_timeout:
    description: Seconds C(udevadm settle) may wait for the udev queue to empty.
    type: int
    default: 60
  sysfs_root:
    description: Where sysfs is mounted; tests point this at a fake tree.
    type: path
    default: /sys
attributes:
  check_mode:
    description: Whether the module can run in check mode, and what it does then.
    support: full
    details:
      - Reports the steps that would run (RV(steps)) and runs no command and writes nothing.
      - C(changed) is false, since what a rescan finds cannot be known beforehand.
  diff_mode:
    description: Whether the module returns a diff.
    support: none
  platform:
    description: The systems the module can act on.
    support: full
    platforms: linux
notes:
  - The module's tests run on a fake sysfs tree and a fake C(iscsiadm), because the kernel of the
    build machine has no SCSI and no iSCSI initiator; see C(docs/host_snapshot.md) in the collection.
seealso:
  - module: clusterops.upgrade.host_snapshot
"""

EXAMPLES = r"""
- name: Rescan all storage adapters after the reboot
  clusterops.upgrade.adapter_rescan:
  register: rescan

- name: Rescan without resetting FC links, waiting longer for udev
  clusterops.upgrade.adapter_rescan:
    fc_issue_lip: false
    settle_timeout: 180

- name: Then compare the disks with the snapshot taken before the upgrade
  clusterops.upgrade.host_snapshot:
    compare_to: "{{ before.snapshot }}"
"""

RETURN = r"""
steps:
  description:
    - The steps in the order run (or planned, in check mode). Each has C(action) (fc_issue_lip,
      scsi_scan, iscsi_rescan, udev_settle, multipath_reload), either C(adapter), C(path) and C(value)
      or C(argv), and after running C(status) (ok, no_sessions, failed), C(rc) for commands,
      C(detail) when there is something to say and C(sessions) for the iSCSI rescan.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: scsi_scan, adapter: host0, path: /sys/class/scsi_host/host0/scan, value: "- - -", status: ok}
adapters:
  description: The adapters found (C(adapter), C(type) fc or scsi, C(path)).
  returned: always
  type: list
  elements: dict
iscsi_sessions:
  description: The iSCSI sessions rescanned (C(sid), C(target), C(portal)).
  returned: always
  type: list
  elements: dict
devices_before:
  description: Disks and multipath maps before the rescan (name, type, size, wwn, serial, tran, hctl).
  returned: unless in check mode
  type: list
  elements: dict
devices_after:
  description: Disks and multipath maps after the rescan.
  returned: unless in check mode
  type: list
  elements: dict
devices_added:
  description: Names of the devices that appeared.
  returned: unless in check mode
  type: list
  elements: str
devices_removed:
  description: Names of the devices that went.
  returned: unless in check mode
  type: list
  elements: str
devices_resized:
  description: Devices whose size changed (C(name), C(before), C(after) in bytes).
  returned: unless in check mode
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._rescan import (
    device_changes,
    discover_adapters,
    plan_rescan,
    read_devices,
    run_steps,
)
from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import (
    ModuleRunner,
    SnapshotError,
)

TOOLS = ("iscsiadm", "udevadm", "multipath")


def _describe(step):
    where = " " + step["adapter"] if step.get("adapter") else ""
    return "%s%s: %s" % (step["action"], where, step.get("detail", ""))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fc_issue_lip=dict(type="bool", default=True),
            iscsi_rescan=dict(type="bool", default=True),
            multipath_reload=dict(type="bool", default=True),
            settle_timeout=dict(type="int", default=60),
            sysfs_root=dict(type="path", default="/sys"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["settle_timeout"] < 1:
        module.fail_json(msg="settle_timeout must be at least 1 second, got %d" % params["settle_timeout"])
    runner = ModuleRunner(module)

    adapters = discover_adapters(params["sysfs_root"])
    tools = dict((name, runner.which(name)) for name in TOOLS)
    steps = plan_rescan(adapters, tools, fc_issue_lip=params["fc_issue_lip"],
                        iscsi_rescan=params["iscsi_rescan"],
                        multipath_reload=params["multipath_reload"],
                        settle_timeout=params["settle_timeout"])
    result = dict(changed=False, adapters=adapters, steps=steps, iscsi_sessions=[])
    if module.check_mode:
        module.exit_json(**result)

    try:
        before = read_devices(runner)
    except SnapshotError as exc:
        module.fail_json(msg="cannot list block devices before the rescan: %s" % exc, **result)
    result["devices_before"] = before
    result["steps"] = run_steps(steps, runner)
    for step in result["steps"]:
        result["iscsi_sessions"].extend(step.get("sessions") or [])
    try:
        after = read_devices(runner)
    except SnapshotError as exc:
        module.fail_json(msg="cannot list block devices after the rescan: %s" % exc, **result)
    changes = device_changes(before, after)
    result.update(devices_after=after, devices_added=changes["added"],
                  devices_removed=changes["removed"], devices_resized=changes["resized"])
    result["changed"] = bool(changes["added"] or changes["removed"] or changes["resized"])

    failed = [s for s in result["steps"] if s["status"] == "failed"]
    if failed:
        module.fail_json(
            msg="adapter_rescan: %d of %d step(s) failed: %s" % (
                len(failed), len(steps),
                "; ".join(_describe(s) for s in failed)),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
