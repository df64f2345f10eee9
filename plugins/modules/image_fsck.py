#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_fsck
short_description: Check or repair an Elemental / Harvester OS image file (active.img) with e2fsck
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Checks an ext2/3/4 OS image file such as C(/run/initramfs/cos-state/cOS/active.img) with a
    forced read-only C(fsck.ext2 -fn) and, with O(mode=repair), repairs it the way the Harvester
    runbook does it by hand, in this order and only when the check found errors.
  - "Repair order: enough free space for the backup? - sparse backup copy of the image into
    O(backup_dir), verified by reading it back and comparing it with the image, with its size
    and SHA256 recorded - C(mount -o remount,rw) of the state mount - C(fsck.ext2 -fy) -
    C(mount -o remount,ro) in a C(finally), so also when fsck fails - forced read-only
    re-check. The image is never modified without a verified backup, unless O(backup=false)."
  - The check is always forced (C(-f)); without it a damaged image whose superblock still says
    clean is reported clean.
  - Only what the module did is undone. A state mount that was already read-write before the
    run is used as it is and left read-write.
  - "Refuses, with a message that says what to do and without changing anything: an image the
    running system booted from (boot-mode markers C(<boot_markers_root>/cos/*_mode) and
    C(<boot_markers_root>/elemental/*_mode), see O(require_fallback_boot)), a missing image, a
    missing or too small or unwritable O(backup_dir), a state mount that cannot be found, and an
    image that is mounted (directly or through a loop device)."
  - All commands run as argument lists with C(LANG=C).
options:
  image:
    description: The image file to check or repair.
    type: path
    default: /run/initramfs/cos-state/cOS/active.img
  mode:
    description:
      - V(check) runs C(fsck.ext2 -fn) only; it never writes and runs the same in check mode.
      - V(repair) checks first and repairs only when the check found errors. In check mode it
        runs the read-only check and every refusal test, reports RV(would_repair), and changes
        nothing.
    type: str
    choices: [check, repair]
    default: check
  backup:
    description:
      - Make a verified backup copy of the image before repairing it.
      - Set to V(false) only when a copy exists elsewhere; the image is then modified without one.
    type: bool
    default: true
  backup_method:
    description:
      - V(copy) - a sparse copy of the whole image, made before anything is touched, read back
        from disk and compared with the image, with its SHA256 (RV(backup_sha256) equals the
        image's before the repair). It stands on its own (copy it back to restore) and costs a
        read and a write of the image's data plus a SHA256 of its whole size.
      - V(undo) - e2fsck's undo file, C(fsck.ext2 -fy -z FILE). Before e2fsck overwrites a
        block it saves the old content there. Verified after the repair with C(e2undo -n)
        (every saved block's checksum, and that the file belongs to the repaired image).
        It costs about what the repair costs (only the blocks e2fsck rewrites are saved), but
        it is B(not) a copy - it restores the image as it was only with
        C(e2undo FILE IMAGE) applied to the repaired image, before anything else writes to
        it; it gives no digest of the image as it was (RV(backup_sha256) is V(null)); and it
        is verified after the image was modified, not before. Choose it only knowingly, for
        example when the backup directory cannot hold a copy of the image or the copy takes
        too long.
    type: str
    choices: [copy, undo]
    default: copy
  backup_dir:
    description:
      - Directory that receives the backup C(<image name>.<UTC time>.bak) (mode 0600), or with
        O(backup_method=undo) the undo file C(<image name>.<UTC time>.e2undo).
      - Required for O(mode=repair) unless O(backup=false). It must exist, be writable, not be on
        the state mount, and have the image's allocated size plus 4 MiB free.
    type: path
  state_mount:
    description:
      - Mount point of the file system that holds the image (the state partition). It is
        remounted read-write for the repair and read-only again afterwards.
      - Default is the mount point found for the image in C(/proc/self/mountinfo). When given, it
        must be a mount point and hold the image. The root file system is always refused.
    type: path
  require_fallback_boot:
    description:
      - For O(mode=repair), refuse unless the boot-mode markers prove the running system did not
        boot from O(image) (for C(active.img) an C(active_mode) marker refuses, C(passive_mode) or
        C(recovery_mode) allows). No marker, or markers that disagree, also refuse.
      - Set to V(false) only when the system is known not to run from the image.
    type: bool
    default: true
  boot_markers_root:
    description:
      - Directory that holds the C(cos/) and C(elemental/) boot-mode marker directories. Change it
        only for tests or unusual layouts.
    type: path
    default: /run
attributes:
  check_mode:
    support: full
    description: O(mode=check) runs as usual; O(mode=repair) predicts and changes nothing.
  diff_mode:
    support: none
    description: The result reports what changed.
notes:
  - C(changed) is true only when fsck modified the image (its exit status says it corrected
    errors, or the image file was written). Remounting and writing the backup are not counted.
  - Requires C(fsck.ext2) (e2fsprogs) and, for repairs, C(mount); C(e2undo) (e2fsprogs) for
    O(backup_method=undo). C(losetup) is used when present to find loop devices backed by the
    image; otherwise sysfs is read.
  - O(backup_dir) must have the image's allocated size plus 4 MiB free for either method (an
    undo file is usually far smaller, but its size is not known before e2fsck runs).
seealso:
  - name: e2fsck(8)
    description: The exit status table and the C(-f), C(-n) and C(-y) options.
    link: https://man7.org/linux/man-pages/man8/e2fsck.8.html
"""

EXAMPLES = r"""
- name: Check active.img (read-only, also in check mode)
  clusterops.upgrade.image_fsck:
    mode: check
  register: active_img

- name: Repair active.img from the fallback system, backup first
  clusterops.upgrade.image_fsck:
    mode: repair
    backup_dir: /usr/local/clusterops-image-backup
  when: not active_img.clean_before

- name: Repair an image on a state partition mounted somewhere else
  clusterops.upgrade.image_fsck:
    image: /mnt/state/cOS/active.img
    state_mount: /mnt/state
    mode: repair
    backup_dir: /var/lib/clusterops-image-backup
"""

RETURN = r"""
image:
  description: The image that was checked.
  returned: always
  type: str
  sample: /run/initramfs/cos-state/cOS/active.img
clean_before:
  description: The forced read-only check before anything was done found no error (exit status 0).
  returned: when the check ran
  type: bool
  sample: false
clean_after:
  description:
    - Whether the image is clean at the end. For O(mode=repair) after a repair, the result of the
      read-only re-check; when nothing was repaired, equal to RV(clean_before).
    - V(null) in check mode when a repair would run (unknown until it runs).
  returned: when the check ran
  type: bool
  sample: true
fsck_rc:
  description:
    - Exit status of the fsck run that decides the outcome, C(fsck.ext2 -fy) when a repair ran,
      otherwise the C(fsck.ext2 -fn) check.
  returned: when the check ran
  type: int
  sample: 1
fsck_meaning:
  description: What RV(fsck_rc) means, one string per bit of the e2fsck exit status.
  returned: when the check ran
  type: list
  elements: str
  sample: [file system errors corrected]
check_rc:
  description: Exit status of the first, read-only check (C(fsck.ext2 -fn)).
  returned: when the check ran
  type: int
  sample: 4
check_meaning:
  description: What RV(check_rc) means.
  returned: when the check ran
  type: list
  elements: str
  sample: [file system errors left uncorrected]
problems:
  description: The problems the first check reported, one line each (at most 200).
  returned: when the check ran
  type: list
  elements: str
  sample: ["Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.", "Unattached inode 19"]
problems_count:
  description: How many problems the first check reported (RV(problems) is cut at 200).
  returned: when the check ran
  type: int
  sample: 2
fixed:
  description: What C(fsck.ext2 -fy) reported and fixed, one line each (at most 200).
  returned: when a repair ran
  type: list
  elements: str
  sample: ["Entry 'mods' in /usr/lib (17) has deleted/unused inode 18."]
recheck_rc:
  description: Exit status of the read-only re-check after the repair.
  returned: when a repair ran
  type: int
  sample: 0
recheck_meaning:
  description: What RV(recheck_rc) means.
  returned: when a repair ran
  type: list
  elements: str
  sample: [no errors]
problems_after:
  description: The problems the re-check still reported.
  returned: when a repair ran
  type: list
  elements: str
  sample: []
repaired:
  description: A repair ran and the re-check found the image clean.
  returned: always
  type: bool
  sample: true
would_repair:
  description: In check mode with O(mode=repair), whether a real run would repair the image.
  returned: always
  type: bool
  sample: false
backup_method:
  description: How the backup was made, V(copy) or V(undo) (O(backup_method)).
  returned: when a backup was made
  type: str
  sample: copy
backup_path:
  description:
    - The verified backup copy of the image as it was before the repair, or with
      O(backup_method=undo) the verified undo file (restore with C(e2undo BACKUP_PATH IMAGE)).
  returned: when a backup was made
  type: str
  sample: /usr/local/clusterops-image-backup/active.img.20261122T101500Z.bak
backup_sha256:
  description:
    - SHA256 of the backup as read back from disk; equal to the image's before the repair.
    - V(null) with O(backup_method=undo) (no copy of the image is made).
  returned: when a backup was made
  type: str
  sample: 9f2c0d5e0c4c1cbd7b0f6a3b5f7e4c8e6b5b1a0d9d8c7b6a5f4e3d2c1b0a9f8e
backup_size:
  description:
    - Size of the backup in bytes (the image's apparent size; holes are kept), or of the undo file.
  returned: when a backup was made
  type: int
  sample: 3221225472
backup_written:
  description: Bytes actually written for the backup (data regions that are not all zero; the undo file's size).
  returned: when a backup was made
  type: int
  sample: 1610612736
backup_seconds:
  description:
    - Time the backup took, copy and verification included. With O(backup_method=undo), the
      e2fsck run that writes the undo file plus its verification.
  returned: when a backup was made
  type: float
  sample: 4.2
undo_blocks:
  description: With O(backup_method=undo), how many saved blocks C(e2undo -n) verified.
  returned: when an undo file was verified
  type: int
  sample: 7
state_mount:
  description: Mount point of the file system holding the image.
  returned: when found
  type: str
  sample: /run/initramfs/cos-state
state_mount_before:
  description: Whether the state mount was C(ro) or C(rw) before the run.
  returned: when found
  type: str
  sample: ro
state_mount_after:
  description: Whether the state mount is C(ro) or C(rw) at the end (read again from the mount table).
  returned: when found
  type: str
  sample: ro
remounted_rw:
  description: The module remounted the state mount read-write.
  returned: always
  type: bool
  sample: true
remounted_ro:
  description: The module remounted the state mount read-only again after the repair.
  returned: always
  type: bool
  sample: true
mount_restored:
  description: The state mount ends as it was before the run (RV(state_mount_after) equals RV(state_mount_before)).
  returned: when found
  type: bool
  sample: true
boot_mode:
  description: The mode the running system booted in, from the markers; V(null) when none was found or they disagree.
  returned: always
  type: str
  sample: passive
boot_marker:
  description: The marker file RV(boot_mode) was read from.
  returned: always
  type: str
  sample: /run/cos/passive_mode
boot_markers:
  description: Every boot-mode marker found.
  returned: always
  type: list
  elements: str
  sample: [/run/cos/passive_mode]
refusals:
  description: Why the module refused to run (each also in C(msg)).
  returned: on refusal
  type: list
  elements: str
  sample:
    - >-
      booted from the image: this system runs from /run/initramfs/cos-state/cOS/active.img
      (marker /run/cos/active_mode); reboot into the fallback (passive) or recovery system first
commands:
  description: Every command run, in order, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [[fsck.ext2, -fn, /run/initramfs/cos-state/cOS/active.img]]
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._fsck import (
    FsckTool,
    ImageMissing,
    RepairError,
    fsck_clean,
    fsck_could_not_check,
    fsck_meaning,
    fsck_repaired_ok,
    gather_facts,
    mounts_at,
    parse_problems,
    read_mountinfo,
    refusals,
    run_repair,
)

MOUNTINFO = "/proc/self/mountinfo"
SYS_BLOCK = "/sys/block"


def _runner(module):
    def run(argv, env):
        return module.run_command(argv, environ_update=env, expand_user_and_vars=False,
                                  check_rc=False)
    return run


def _mount_access(mountpoint):
    """``ro``/``rw`` of what is mounted at ``mountpoint`` now (the topmost entry)."""
    mounts = mounts_at(mountpoint, read_mountinfo(MOUNTINFO))
    return mounts[-1].access if mounts else None


def _report_repair(result, report, image, mountpoint, access_before):
    """Copy what run_repair reported into the result; return what went wrong."""
    failures = []
    backup = report.get("backup")
    if backup:
        result.update(backup_method=backup["method"], backup_path=backup["path"],
                      backup_sha256=backup["sha256"], backup_size=backup["size"],
                      backup_written=backup["written"], backup_seconds=backup["seconds"])
        if backup["method"] == "undo":
            result["undo_blocks"] = backup["undo_blocks"]
    result.update(remounted_rw=report.get("remounted_rw", False),
                  remounted_ro=report.get("remounted_ro", False))
    try:
        after = _mount_access(mountpoint)
    except (OSError, ValueError):
        after = None
    result.update(state_mount_after=after, mount_restored=after == access_before)
    result["changed"] = bool(report.get("image_modified"))
    repair_rc = report.get("repair_rc")
    if repair_rc is not None:
        fixed, dummy = parse_problems(report.get("repair_output"))
        result.update(fsck_rc=repair_rc, fsck_meaning=fsck_meaning(repair_rc), fixed=fixed)
        if repair_rc > 0 and repair_rc & 3:
            result["changed"] = True
        if not fsck_repaired_ok(repair_rc):
            failures.append("fsck.ext2 -fy %s failed (rc %d: %s)"
                            % (image, repair_rc, ", ".join(fsck_meaning(repair_rc))))
    recheck_rc = report.get("recheck_rc")
    result["clean_after"] = None
    if recheck_rc is not None:
        after_problems, dummy = parse_problems(report.get("recheck_output"))
        result.update(recheck_rc=recheck_rc, recheck_meaning=fsck_meaning(recheck_rc),
                      problems_after=after_problems, clean_after=fsck_clean(recheck_rc))
        if not fsck_clean(recheck_rc):
            failures.append("the re-check still finds errors (rc %d: %s)"
                            % (recheck_rc, ", ".join(fsck_meaning(recheck_rc))))
    if report.get("remount_ro_error"):
        failures.append(report["remount_ro_error"] + "; the state mount is still read-write")
    if report.get("undo_error"):
        failures.append(report["undo_error"])
    return failures


def _fail(module, result, tool, msg, **extra):
    result["commands"] = tool.trail
    result.update(extra)
    module.fail_json(msg=msg, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="path", default="/run/initramfs/cos-state/cOS/active.img"),
            mode=dict(type="str", choices=["check", "repair"], default="check"),
            backup=dict(type="bool", default=True),
            backup_method=dict(type="str", choices=["copy", "undo"], default="copy"),
            backup_dir=dict(type="path"),
            state_mount=dict(type="path"),
            require_fallback_boot=dict(type="bool", default=True),
            boot_markers_root=dict(type="path", default="/run"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    image = p["image"]
    repair = p["mode"] == "repair"
    want_backup = repair and p["backup"]
    want_undo = want_backup and p["backup_method"] == "undo"

    tool = FsckTool(
        _runner(module),
        fsck=module.get_bin_path("fsck.ext2", required=True),
        mount=module.get_bin_path("mount", required=repair) or "mount",
        losetup=module.get_bin_path("losetup"),
        e2undo=module.get_bin_path("e2undo", required=want_undo) or "e2undo",
    )
    result = dict(changed=False, image=image, repaired=False, would_repair=False,
                  remounted_rw=False, remounted_ro=False, boot_mode=None, boot_marker=None,
                  boot_markers=[], commands=tool.trail)

    # read
    try:
        facts = gather_facts(tool, image, state_mount=p["state_mount"],
                             markers_root=p["boot_markers_root"], backup_dir=p["backup_dir"],
                             backup=want_backup, mountinfo=MOUNTINFO, sys_block=SYS_BLOCK)
    except ImageMissing as exc:
        _fail(module, result, tool, "refusing to %s: %s" % (p["mode"], exc), refusals=[str(exc)])
    except (OSError, ValueError) as exc:
        _fail(module, result, tool, "cannot read the host state: %s" % exc)
    boot = facts.boot.as_dict()
    result.update(boot_mode=boot["mode"], boot_marker=boot["marker"], boot_markers=boot["markers"])
    if facts.mount is not None:
        result.update(state_mount=facts.mount.mountpoint, state_mount_before=facts.mount.access)

    # decide
    reasons = refusals(p["mode"], facts, require_fallback_boot=p["require_fallback_boot"],
                       backup=want_backup, backup_dir=p["backup_dir"])
    if reasons:
        _fail(module, result, tool, "refusing to %s %s: %s" % (p["mode"], image, "; ".join(reasons)),
              refusals=reasons)

    check = tool.check(image)
    problems, count = parse_problems(check.output)
    result.update(check_rc=check.rc, check_meaning=fsck_meaning(check.rc),
                  fsck_rc=check.rc, fsck_meaning=fsck_meaning(check.rc),
                  problems=problems, problems_count=count)
    if fsck_could_not_check(check.rc):
        _fail(module, result, tool, "fsck.ext2 -fn %s could not check the image (rc %s: %s): %s"
              % (image, check.rc, ", ".join(fsck_meaning(check.rc)), check.output.strip()[-2000:]))
    clean = fsck_clean(check.rc)
    result.update(clean_before=clean, clean_after=clean)
    if not repair or clean:
        module.exit_json(**result)
    if module.check_mode:
        result.update(changed=True, would_repair=True, clean_after=None)
        module.exit_json(**result)

    # act
    mountpoint = facts.mount.mountpoint
    report = {}
    error = None
    try:
        run_repair(tool, image, mountpoint, was_ro=facts.mount.read_only, report=report,
                   backup_dir=p["backup_dir"], backup=want_backup, method=p["backup_method"])
    except RepairError as exc:
        error = str(exc)
    except Exception as exc:  # report what happened so far, the mount state included
        error = "repair failed: %s: %s" % (type(exc).__name__, exc)
        result["exception"] = traceback.format_exc()

    failures = _report_repair(result, report, image, mountpoint, facts.mount.access)
    if error:
        failures.insert(0, error)
    if failures:
        if report.get("backup", {}).get("method") == "copy":
            failures.append("the image as it was before is saved in %s (sha256 %s)"
                            % (result["backup_path"], result["backup_sha256"]))
        elif report.get("backup"):
            failures.append("the image as it was before can be restored with: e2undo %s %s"
                            % (result["backup_path"], image))
        _fail(module, result, tool, "; ".join(failures))
    result["repaired"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
