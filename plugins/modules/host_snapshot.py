#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to clusterops.upgrade
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: host_snapshot
short_description: Snapshot a host's boot, storage, NICs and mounts, and compare with an earlier snapshot
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Captures, in one call, the facts an upgrade must not break - boot id and boot time, kernel,
    uptime, the product version, block devices (one C(lsblk -J -b) call), NICs (operstate, speed,
    duplex, MTU from sysfs), storage mounts (one C(findmnt -J) call) and multipath maps
    (C(multipath -ll), when the tool exists).
  - With O(compare_to) (a snapshot returned earlier), returns O(compare_to)-relative findings -
    a disk gone or smaller, a NIC down, slower or missing, a mount gone or read-only, a multipath
    path lost - each with a severity (error, warning, info), a kind and a one-line hint.
  - Without O(compare_to) the checks that need no history still run - O(expected_version),
    O(reboot_required_since), fallback boot, NIC speed below O(min_nic_speed_mbps), O(datastores)
    not mounted, faulty multipath paths.
  - With O(reboot_requested_at) and O(compare_to), proves a reboot and returns RV(reboot) -
    C(proven), C(not_rebooted), C(old_version) or C(booted_fallback).
  - Disks are matched by WWN, else serial, else kernel name. Only whole disks (lsblk TYPE C(disk),
    not zram/ram) are compared; multipath maps are compared by WWID.
  - The module only reads the host, except O(dest).
options:
  compare_to:
    description:
      - A snapshot returned earlier by this module (RV(snapshot)), for example the one taken before
        the upgrade and kept in the journal.
    type: dict
  dest:
    description:
      - Also write the snapshot as JSON to this path on the host - atomically (temporary file,
        fsync, rename) and with mode C(0600). Missing parent directories are created with mode C(0700).
      - Not written in check mode.
    type: path
  version_file:
    description:
      - File that holds the product version; its first line is the version unless O(version_regex) is set.
      - Mutually exclusive with O(version_command).
    type: path
  version_command:
    description:
      - Command (an argv list, no shell) whose standard output holds the product version.
      - Mutually exclusive with O(version_file).
    type: list
    elements: str
  version_regex:
    description:
      - Regular expression applied to the version text; its first group (or the whole match) is the version.
    type: str
  expected_version:
    description:
      - The product version the host must run; anything else is a C(version_mismatch) error.
      - Also used by the reboot proof to tell C(old_version).
    type: str
  datastores:
    description:
      - Mount points that must be mounted. When set, only these mount points are checked; when not
        set, every storage mount of O(compare_to) must still be mounted.
      - Absolute paths.
    type: list
    elements: path
    default: []
  nics:
    description:
      - Shell-style patterns of the NIC names to check. When not set, physical NICs, bonds, bridges,
        VLANs and teams are checked, other virtual NICs (veth, tap, tun, ifb) are not.
    type: list
    elements: str
    default: []
  min_nic_speed_mbps:
    description:
      - A checked NIC that is up and negotiated less than this is a C(nic_speed_low) finding - an
        error, or a warning when it was already that slow in O(compare_to).
      - NICs that report no speed (virtual NICs, virtio) are not judged.
    type: int
    default: 1000
  reboot_required_since:
    description:
      - Epoch seconds or ISO 8601 with a UTC offset (for example C(2026-11-20T08:00:00+08:00)). A host
        whose current boot started before this is a C(not_rebooted) error.
    type: raw
  reboot_requested_at:
    description:
      - When a reboot was requested, as epoch seconds or ISO 8601 with a UTC offset, on the host's
        clock (use RV(snapshot.captured_at) of the snapshot taken just before the reboot).
      - Requires O(compare_to); adds RV(reboot) and, unless the reboot is proven, a
        C(reboot_not_proven) error finding.
    type: raw
  fallback_cmdline_markers:
    description:
      - Substrings of the kernel command line that mean the host booted its fallback image
        (a C(booted_fallback) error). The defaults are Harvester's passive and recovery images.
      - Set to an empty list to turn the check off.
    type: list
    elements: str
    default: ['cos-img/filename=/cOS/passive.img', 'cos-img/filename=/cOS/recovery.img']
  fail_on:
    description:
      - Fail the task when there is a finding of this severity or worse. C(never) only reports.
      - The default fails on errors - a post-upgrade check that passes with a missing disk is worse
        than useless. Use C(never) for the snapshot taken before the upgrade, so pre-existing
        problems are recorded rather than blocking.
      - The snapshot is returned (and written to O(dest)) also when the task fails.
    type: str
    choices: [error, warning, info, never]
    default: error
  sysfs_root:
    description:
      - Where sysfs is mounted; tests point this at a recorded tree.
    type: path
    default: /sys
  proc_root:
    description:
      - Where procfs is mounted; tests point this at a recorded tree.
    type: path
    default: /proc
attributes:
  check_mode:
    description: Whether the module can run in check mode, and what it does then.
    support: full
    details: The snapshot and the comparison run (they only read); O(dest) is not written.
  diff_mode:
    description: Whether the module returns a diff.
    support: none
  platform:
    description: The systems the module can act on.
    support: full
    platforms: posix
notes:
  - Needs C(lsblk) and C(findmnt) (util-linux). util-linux older than 2.27 (no C(-J)) is handled
    with C(-P) output.
  - In a container the kernel's boot id and boot time are the host's. The boot is therefore also
    identified by PID 1's start time, and C(snapshot.boot.booted_at) is PID 1's start, so a
    container restart counts as a reboot.
seealso:
  - module: clusterops.upgrade.adapter_rescan
"""

EXAMPLES = r"""
- name: Record the host before the upgrade (never fail on what was already there)
  clusterops.upgrade.host_snapshot:
    version_command: [rpm, -q, --qf, '%{VERSION}', ics-release]
    datastores: [/datastore/local, /datastore/shared01]
    dest: /var/lib/clusterops-upgrade/{{ run_id }}/snapshot-before.json
    fail_on: never
  register: before

- name: After the upgrade and reboot, compare; fail on any error
  clusterops.upgrade.host_snapshot:
    compare_to: "{{ before.snapshot }}"
    version_command: [rpm, -q, --qf, '%{VERSION}', ics-release]
    expected_version: 6.8.1
    datastores: [/datastore/local, /datastore/shared01]
    reboot_required_since: "{{ upgrade_started_at }}"
    min_nic_speed_mbps: 10000
    nics: [eth2, eth3, bond0]
  register: after

- name: Show what needs attention
  ansible.builtin.debug:
    msg: "{{ item.severity }} {{ item.kind }} {{ item.object }}: {{ item.hint }}"
  loop: "{{ after.findings }}"
"""

RETURN = r"""
snapshot:
  description: The snapshot of the host now. Pass it as O(compare_to) later.
  returned: always
  type: dict
  contains:
    format:
      description: Layout version of the snapshot.
      type: int
      sample: 1
    captured_at:
      description: When the snapshot was taken, epoch seconds on the host's clock.
      type: float
      sample: 1795310323.868
    hostname:
      description: The kernel's host name.
      type: str
      sample: inode-03
    kernel:
      description: Running kernel C(release) and C(version).
      type: dict
      sample: {release: 6.18.44, version: "#1 SMP PREEMPT_DYNAMIC"}
    boot:
      description:
        - C(boot_id), C(boot_time) (kernel btime, epoch seconds), C(init_start_ticks) and
          C(clock_ticks_per_second) (PID 1's start), C(booted_at) (PID 1's start, epoch seconds),
          C(uptime_seconds) and C(cmdline).
      type: dict
    product_version:
      description: The product version read from O(version_file) or O(version_command); null without either.
      type: str
      sample: 6.8.1
    product_version_source:
      description: Where the version came from (C(file:...) or C(command:...)).
      type: str
    block_devices:
      description:
        - Every block device lsblk lists (name, kname, pkname, type, size in bytes, wwn, serial, tran,
          hctl, model, vendor, ro, rm, mountpoint); a multipath map listed under each path appears once.
      type: list
      elements: dict
    nics:
      description:
        - NICs except loopback - name, operstate, speed_mbps (null when the kernel reports none),
          duplex (full, half or null), mtu, mac, virtual (no C(device) link in sysfs) and kind
          (physical, bridge, bond, tun, vlan, virtual ...).
      type: list
      elements: dict
    mounts:
      description: Storage mounts (pseudo filesystems left out unless named in O(datastores)) - target, source, fstype, options, ro.
      type: list
      elements: dict
    datastores:
      description: The O(datastores) in force, normalised.
      type: list
      elements: str
    multipath:
      description: C(available) (the tool and driver exist) and C(maps) (name, wwid, dm, vendor_product, size, paths, active_paths, total_paths).
      type: dict
    incomplete:
      description: Parts that could not be read, each with C(section) and C(reason).
      type: list
      elements: dict
findings:
  description:
    - What needs attention, most severe first. Each has C(severity) (error, warning, info), C(kind),
      C(object), C(before) (the earlier value, or the expectation for threshold checks), C(after)
      (the value now) and C(hint).
    - Kinds - disk_missing, disk_path_lost, capacity_changed, disk_added, disk_renamed, nic_missing,
      nic_down, nic_speed_low, nic_speed_changed, nic_speed_unknown, nic_mtu_changed, nic_added,
      mount_missing, mount_readonly, mount_changed, multipath_map_missing, multipath_path_lost,
      multipath_path_faulty, not_rebooted, booted_fallback, rebooted, kernel_changed,
      version_mismatch, version_changed, reboot_not_proven, capture_incomplete.
  returned: always
  type: list
  elements: dict
  sample:
    - severity: error
      kind: nic_speed_low
      object: eth2
      before: 10000
      after: 100
      hint: "negotiated below 1000 Mb/s: usually a bad or loose cable or a switch port setting"
finding_counts:
  description: Number of findings per severity.
  returned: always
  type: dict
  sample: {error: 1, warning: 0, info: 2}
reboot:
  description:
    - The reboot proof. C(verdict) is C(proven), C(not_rebooted), C(old_version) or C(booted_fallback);
      C(reasons) says why; also C(boot_id_before), C(boot_id_after), C(booted_at), C(requested_at),
      C(boot_mode), C(product_version), C(expected_version).
  returned: when O(reboot_requested_at) is set
  type: dict
  sample:
    verdict: proven
    reasons: ["a new boot (boot id 9c1e...), started at 2026-11-22T01:20:11Z, after the request at 2026-11-22T01:19:58Z"]
dest:
  description: The file the snapshot was written to (or would be, in check mode).
  returned: when O(dest) is set
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import (
    DEFAULT_FALLBACK_MARKERS,
    FAIL_ON_CHOICES,
    ModuleRunner,
    SnapshotError,
    capture,
    classify_reboot,
    compare,
    count_by_severity,
    detect_boot_mode,
    findings_at_or_above,
    normalize_path,
    parse_timestamp,
    reboot_findings,
    sort_findings,
    validate_snapshot,
    write_json_atomic,
)


def _argument_spec():
    return dict(
        compare_to=dict(type="dict"),
        dest=dict(type="path"),
        version_file=dict(type="path"),
        version_command=dict(type="list", elements="str"),
        version_regex=dict(type="str"),
        expected_version=dict(type="str"),
        datastores=dict(type="list", elements="path", default=[]),
        nics=dict(type="list", elements="str", default=[]),
        min_nic_speed_mbps=dict(type="int", default=1000),
        reboot_required_since=dict(type="raw"),
        reboot_requested_at=dict(type="raw"),
        fallback_cmdline_markers=dict(type="list", elements="str",
                                      default=list(DEFAULT_FALLBACK_MARKERS)),
        fail_on=dict(type="str", choices=list(FAIL_ON_CHOICES), default="error"),
        sysfs_root=dict(type="path", default="/sys"),
        proc_root=dict(type="path", default="/proc"),
    )


def _validate(params):
    """Check what the argspec cannot; raise SnapshotError naming the option."""
    for index, path in enumerate(params["datastores"]):
        try:
            normalize_path(path)
        except SnapshotError:
            raise SnapshotError("datastores[%d] %r must be an absolute path" % (index, path))
    if params["version_command"] is not None and not params["version_command"]:
        raise SnapshotError("version_command must not be empty: give an argv list such as "
                            "[rpm, -q, --qf, '%{VERSION}', ics-release]")
    if params["min_nic_speed_mbps"] < 0:
        raise SnapshotError("min_nic_speed_mbps must be >= 0, got %d" % params["min_nic_speed_mbps"])
    if params["compare_to"] is not None:
        validate_snapshot(params["compare_to"], "compare_to")
    since = parse_timestamp(params["reboot_required_since"], "reboot_required_since")
    requested = parse_timestamp(params["reboot_requested_at"], "reboot_requested_at")
    return since, requested


def main():
    module = AnsibleModule(
        argument_spec=_argument_spec(),
        mutually_exclusive=[("version_file", "version_command")],
        required_by={"reboot_requested_at": ("compare_to",)},
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False)
    try:
        since, requested = _validate(params)
        snapshot = capture(
            ModuleRunner(module),
            sysfs_root=params["sysfs_root"],
            proc_root=params["proc_root"],
            version_file=params["version_file"],
            version_command=params["version_command"],
            version_regex=params["version_regex"],
            datastores=params["datastores"],
        )
        options = {
            "min_nic_speed_mbps": params["min_nic_speed_mbps"],
            "reboot_required_since": since,
            "expected_version": params["expected_version"],
            "datastores": params["datastores"],
            "nics": params["nics"],
            "fallback_cmdline_markers": params["fallback_cmdline_markers"],
        }
        findings = compare(params["compare_to"], snapshot, options)
        result["snapshot"] = snapshot
        if requested is not None:
            reboot = classify_reboot(
                params["compare_to"], snapshot, requested,
                expected_version=params["expected_version"],
                boot_mode=detect_boot_mode(snapshot, params["fallback_cmdline_markers"]))
            result["reboot"] = reboot
            findings = sort_findings(findings + reboot_findings(reboot, snapshot.get("hostname")))
    except SnapshotError as exc:
        module.fail_json(msg=str(exc))

    result["findings"] = findings
    result["finding_counts"] = count_by_severity(findings)
    if params["dest"]:
        result["dest"] = params["dest"]
        result["changed"] = True
        if not module.check_mode:
            try:
                write_json_atomic(params["dest"], snapshot)
            except (OSError, ValueError) as exc:
                result["changed"] = False
                module.fail_json(msg="cannot write the snapshot to dest %s: %s"
                                 % (params["dest"], exc), **result)

    blocking = findings_at_or_above(findings, params["fail_on"])
    if blocking:
        listed = "; ".join("%s %s %s" % (f["severity"], f["kind"], f["object"]) for f in blocking[:10])
        more = " (and %d more)" % (len(blocking) - 10) if len(blocking) > 10 else ""
        module.fail_json(
            msg="host_snapshot: %d finding(s) at or above %r: %s%s; see 'findings' for hints, "
                "or set fail_on to report only" % (len(blocking), params["fail_on"], listed, more),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
