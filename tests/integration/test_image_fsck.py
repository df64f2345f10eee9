# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_fsck against real ext4 images, real loop devices and real remounts.

Every scenario builds a small active.img with mkfs.ext4 -d, corrupts it with
debugfs (the kinds in shared/LAB.md), puts it in a COS_STATE image, and runs
the module inside ``unshare -m --propagation private`` with a private tmpfs
on /run, the state image attached read-write and mounted read-only at
/run/initramfs/cos-state (see image_fsck_scenario.py). Nothing is mocked
except, in one test, an fsck.ext2 that fails with exit status 8 (a script
shadowing the real one on PATH).
"""

from __future__ import annotations

import os
import shutil

import pytest

import image_fsck_scenario as scenario

ACTIVE = scenario.ACTIVE
STATE = scenario.STATE_MOUNT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in (
        "unshare", "losetup", "mount", "mkfs.ext4", "debugfs", "dumpe2fs", "fsck.ext2")),
    reason="needs root, util-linux and e2fsprogs")


def _commands_tail(result):
    return [argv[1:] if os.path.basename(argv[0]) in ("fsck.ext2", "mount") else argv
            for argv in result["commands"]]


def _execute(tmp_path, plan, kind="clri_dir"):
    workdir = str(tmp_path)
    state, original_sha = scenario.build_state_image(workdir, kind)
    plan = dict(plan, workdir=workdir, state_image=state)
    try:
        out = scenario.run_in_namespace(plan)
    finally:
        scenario.detach_all(state)
    assert scenario.loops_of(state) == []
    assert out["image_sha_before"] == original_sha
    return out, original_sha


# (kind, exit status of the first fsck -fn)
KINDS = [
    ("clri_dir", 4),
    ("wrong_type", 4),
    ("dir_to_file", 4),
    ("deleted_referenced", 4),
    ("freeb", 4),
    ("inode_table_garbage", 12),
]


@pytest.mark.parametrize("kind, first_rc", KINDS, ids=[k for k, dummy in KINDS])
def test_check_repair_recheck(tmp_path, kind, first_rc):
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    runs = [
        {"name": "check", "args": {"mode": "check"}},
        {"name": "predict", "args": {"mode": "repair", "backup_dir": backups}, "check_mode": True},
        {"name": "repair", "args": {"mode": "repair", "backup_dir": backups}},
        {"name": "recheck", "args": {"mode": "check"}},
    ]
    if kind == "clri_dir":
        runs.append({"name": "again", "args": {"mode": "repair", "backup_dir": backups}})
    out, original = _execute(tmp_path, {"markers": ["cos/passive_mode"], "runs": runs,
                                        "watch_dir": backups}, kind)
    assert out["state_before"] == "ro"
    check, predict, repair, recheck = (out["runs"][n] for n in ("check", "predict", "repair", "recheck"))

    # check: reports the corruption, touches nothing
    assert check["exit"] == 0
    assert (check["result"]["clean_before"], check["result"]["check_rc"]) == (False, first_rc)
    assert check["result"]["problems_count"] > 0
    assert (check["image_sha"], check["state_access"], check["backups"]) == (original, "ro", {})
    assert (check["result"]["boot_mode"], check["result"]["boot_marker"]) == (
        "passive", "/run/cos/passive_mode")

    # repair in check mode: predicts, runs only the read-only check
    assert predict["exit"] == 0
    assert (predict["result"]["changed"], predict["result"]["would_repair"]) == (True, True)
    assert _commands_tail(predict["result"])[1:] == [["-fn", ACTIVE]]
    assert (predict["image_sha"], predict["state_access"], predict["backups"]) == (original, "ro", {})

    # repair: backup equal to the corrupted image, fixed, state mount ro again
    result = repair["result"]
    assert repair["exit"] == 0, result
    assert _commands_tail(result)[1:] == [
        ["-fn", ACTIVE], ["-o", "remount,rw", STATE], ["-fy", ACTIVE],
        ["-o", "remount,ro", STATE], ["-fn", ACTIVE]]
    assert (result["changed"], result["repaired"], result["fsck_rc"], result["recheck_rc"]) == (
        True, True, 1, 0)
    assert (result["clean_before"], result["clean_after"]) == (False, True)
    assert list(repair["backups"].values()) == [original]
    assert result["backup_sha256"] == original
    assert os.path.basename(result["backup_path"]) == list(repair["backups"])[0]
    assert result["backup_size"] == 8 * 1024 * 1024
    assert (result["remounted_rw"], result["remounted_ro"], result["state_mount_after"],
            result["mount_restored"]) == (True, True, "ro", True)
    assert repair["state_access"] == "ro"
    assert repair["image_sha"] != original

    # re-check from outside: clean
    assert (recheck["result"]["clean_before"], recheck["result"]["check_rc"]) == (True, 0)
    assert recheck["image_sha"] == repair["image_sha"]

    if kind == "clri_dir":  # a second repair is a no-op: no backup, no remount
        again = out["runs"]["again"]
        assert (again["exit"], again["result"]["changed"]) == (0, False)
        assert _commands_tail(again["result"])[1:] == [["-fn", ACTIVE]]
        assert again["backups"] == repair["backups"]
        assert again["image_sha"] == repair["image_sha"]


@pytest.mark.parametrize("kind", ["clri_dir", "inode_table_garbage"])
def test_undo_method_repairs_and_its_undo_file_restores_the_image(tmp_path, kind):
    """backup_method=undo: e2fsck -z writes the undo file, e2undo -n verifies it, and
    e2undo really puts the corrupted image back, byte for byte."""
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    runs = [
        {"name": "repair", "args": {"mode": "repair", "backup_dir": backups, "backup_method": "undo"}},
        {"name": "undo", "e2undo_from": "repair"},
    ]
    out, original = _execute(tmp_path, {"markers": ["cos/passive_mode"], "runs": runs}, kind)
    repair, undo = out["runs"]["repair"], out["runs"]["undo"]
    result = repair["result"]
    assert repair["exit"] == 0, result
    (name,) = list(repair["backups"])
    path = os.path.join(backups, name)
    assert name.startswith("active.img.") and name.endswith(".e2undo")
    assert _commands_tail(result)[1:] == [
        ["-fn", ACTIVE], ["-o", "remount,rw", STATE], ["-fy", "-z", path, ACTIVE],
        ["-o", "remount,ro", STATE], [result["commands"][5][0], "-n", "-v", path, ACTIVE], ["-fn", ACTIVE]]
    assert os.path.basename(result["commands"][5][0]) == "e2undo"
    assert (result["repaired"], result["clean_after"], result["state_mount_after"]) == (True, True, "ro")
    assert (result["backup_method"], result["backup_path"], result["backup_sha256"]) == ("undo", path, None)
    assert result["undo_blocks"] > 0
    assert result["backup_size"] == os.path.getsize(path) < 8 * 1024 * 1024
    assert repair["image_sha"] != original
    # the undo file is a way back: e2undo restores the corrupted image exactly
    assert undo["exit"] == 0, undo["output"]
    assert (undo["image_sha"], undo["state_access"]) == (original, "ro")


def test_fsck_failure_leaves_state_ro_and_reports(tmp_path):
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    runs = [
        {"name": "failing", "args": {"mode": "repair", "backup_dir": backups}, "fake_fsck_fy_rc": 8},
        {"name": "real", "args": {"mode": "repair", "backup_dir": backups}},
    ]
    out, original = _execute(tmp_path, {"markers": ["cos/passive_mode"], "runs": runs})
    failing = out["runs"]["failing"]
    result = failing["result"]
    assert failing["exit"] == 1
    assert result["failed"] is True
    assert result["msg"] == (
        "fsck.ext2 -fy %s failed (rc 8: operational error); the re-check still finds errors "
        "(rc 4: file system errors left uncorrected); the image as it was before is saved in %s "
        "(sha256 %s)" % (ACTIVE, result["backup_path"], original))
    assert _commands_tail(result)[-4:] == [
        ["-o", "remount,rw", STATE], ["-fy", ACTIVE], ["-o", "remount,ro", STATE], ["-fn", ACTIVE]]
    assert (result["remounted_ro"], result["state_mount_after"], result["changed"]) == (True, "ro", False)
    assert (failing["state_access"], failing["image_sha"]) == ("ro", original)
    assert list(failing["backups"].values()) == [original]
    # the real fsck repairs it afterwards, with a second backup
    real = out["runs"]["real"]
    assert (real["exit"], real["result"]["repaired"], real["state_access"]) == (0, True, "ro")
    assert sorted(real["backups"].values()) == [original, original]


def test_refusals_change_nothing(tmp_path):
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    booted = tmp_path / "booted-run"
    (booted / "cos").mkdir(parents=True)
    (booted / "cos" / "active_mode").write_text("")
    small = str(tmp_path / "small")
    runs = [
        {"name": "booted", "args": {"mode": "repair", "backup_dir": backups,
                                    "boot_markers_root": str(booted)}},
        {"name": "backup_dir_missing", "args": {"mode": "repair",
                                                "backup_dir": str(tmp_path / "nope")}},
        {"name": "backup_dir_small", "args": {"mode": "repair", "backup_dir": small}},
        {"name": "image_missing", "args": {"mode": "repair", "backup_dir": backups,
                                           "image": STATE + "/cOS/nothere.img"}},
        {"name": "state_mount_not_found", "args": {"mode": "repair", "backup_dir": backups,
                                                   "state_mount": "/run/initramfs"}},
    ]
    out, original = _execute(tmp_path, {"markers": ["cos/passive_mode"], "runs": runs,
                                        "small_backup_dir": small})
    expected = {
        "booted": "booted from the image: this system runs from %s (marker %s/cos/active_mode); "
                  "reboot into the fallback (passive) or recovery system first" % (ACTIVE, booted),
        "backup_dir_missing": "backup_dir %s does not exist or is not a directory: create it "
                              "first" % (tmp_path / "nope"),
        "backup_dir_small": "backup_dir %s is too small: " % small,
        "image_missing": "refusing to repair: image %s/cOS/nothere.img does not exist (No such "
                         "file or directory)" % STATE,
        "state_mount_not_found": "state mount not found: /run/initramfs is not a mount point "
                                 "(the image %s is on %s)" % (ACTIVE, STATE),
    }
    for name, text in expected.items():
        record = out["runs"][name]
        assert record["exit"] == 1, name
        assert text in record["result"]["msg"], (name, record["result"]["msg"])
        assert (record["image_sha"], record["state_access"]) == (original, "ro"), name
        assert record["backups"] == (None if name == "backup_dir_missing" else {}), name
        assert [argv for argv in _commands_tail(record["result"])
                if os.path.basename(argv[0]) not in ("losetup",)] == [], name
    assert os.listdir(backups) == []


def test_refuse_mounted_image(tmp_path):
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    runs = [{"name": "check", "args": {"mode": "check"}},
            {"name": "repair", "args": {"mode": "repair", "backup_dir": backups}}]
    out, original = _execute(tmp_path, {"markers": ["cos/passive_mode"], "runs": runs,
                                        "mount_image_at": "/run/active-root",
                                        "watch_dir": backups})
    for name in ("check", "repair"):
        record = out["runs"][name]
        assert record["exit"] == 1
        assert record["result"]["refusals"][0].startswith("the image is mounted: /dev/loop")
        assert record["result"]["refusals"][0].endswith(
            "(backing %s) is mounted at /run/active-root; unmount it first, e2fsck must not run "
            "on a mounted file system" % ACTIVE)
        assert (record["image_sha"], record["state_access"], record["backups"]) == (original, "ro", {})


def test_rw_state_mount_stays_rw(tmp_path):
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    runs = [{"name": "repair", "args": {"mode": "repair", "backup_dir": backups}}]
    out, original = _execute(tmp_path, {"markers": ["elemental/recovery_mode"], "runs": runs,
                                        "state_rw": True})
    record = out["runs"]["repair"]
    result = record["result"]
    assert record["exit"] == 0, result
    assert _commands_tail(result)[1:] == [["-fn", ACTIVE], ["-fy", ACTIVE], ["-fn", ACTIVE]]
    assert (result["remounted_rw"], result["remounted_ro"], result["state_mount_before"],
            result["state_mount_after"]) == (False, False, "rw", "rw")
    assert record["state_access"] == "rw"
    assert (result["boot_mode"], result["repaired"], result["backup_sha256"]) == ("recovery", True, original)
