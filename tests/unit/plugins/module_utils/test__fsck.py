# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _fsck as f
from ansible_collections.clusterops.upgrade.plugins.module_utils._image_backup import (
    BackupError,
    BackupResult,
)

IMAGE = "/run/initramfs/cos-state/cOS/active.img"
STATE = "/run/initramfs/cos-state"

# ---------------------------------------------------------------------------
# exit status
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rc, meaning", [
    (0, ["no errors"]),
    (1, ["file system errors corrected"]),
    (2, ["file system errors corrected, system should be rebooted"]),
    (3, ["file system errors corrected",
         "file system errors corrected, system should be rebooted"]),
    (4, ["file system errors left uncorrected"]),
    (8, ["operational error"]),
    (12, ["file system errors left uncorrected", "operational error"]),
    (16, ["usage or syntax error"]),
    (32, ["e2fsck canceled by user request"]),
    (128, ["shared library error"]),
    (36, ["file system errors left uncorrected", "e2fsck canceled by user request"]),
    (64, ["unknown exit status bits 64"]),
    (-9, ["killed by signal 9"]),
    (None, []),
])
def test_fsck_meaning(rc, meaning):
    assert f.fsck_meaning(rc) == meaning


@pytest.mark.parametrize("rc, clean, could_not_check, repaired_ok", [
    (0, True, False, True),
    (1, False, False, True),
    (2, False, False, True),
    (3, False, False, True),
    (4, False, False, False),
    (8, False, True, False),
    (12, False, False, False),
    (16, False, True, False),
    (32, False, True, False),
    (128, False, True, False),
    (-15, False, True, False),
])
def test_exit_status_predicates(rc, clean, could_not_check, repaired_ok):
    assert (f.fsck_clean(rc), f.fsck_could_not_check(rc), f.fsck_repaired_ok(rc)) == \
        (clean, could_not_check, repaired_ok)


# ---------------------------------------------------------------------------
# output parsing (outputs recorded from e2fsck 1.47.0 on corrupted images)
# ---------------------------------------------------------------------------

CLRI_DIR_FN = """\
e2fsck 1.47.0 (5-Feb-2023)
Pass 1: Checking inodes, blocks, and sizes
Pass 2: Checking directory structure
Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.  Clear? no

Entry 'mods' in /usr/lib (17) has an incorrect filetype (was 2, should be 0).
Fix? no

Pass 3: Checking directory connectivity
Pass 4: Checking reference counts
Inode 17 ref count is 3, should be 2.  Fix? no

Unattached inode 19
Connect to /lost+found? no

Pass 5: Checking group summary information
Block bitmap differences:  -1624
Fix? no

Directories count wrong for group #0 (10, counted=9).
Fix? no


COS_ACTIVE: ********** WARNING: Filesystem still has errors **********

COS_ACTIVE: 62/2048 files (1.6% non-contiguous), 2850/8192 blocks
"""

GARBAGE_FN = """\
e2fsck 1.47.0 (5-Feb-2023)
Superblock has an invalid journal (inode 8).
Clear? no

fsck.ext2: The journal superblock is corrupt while checking journal for COS_ACTIVE
e2fsck: Cannot proceed with file system check

COS_ACTIVE: ********** WARNING: Filesystem still has errors **********

"""

GARBAGE_FY = """\
e2fsck 1.47.0 (5-Feb-2023)
Superblock has an invalid journal (inode 8).
Clear? yes

*** journal has been deleted ***

Pass 1: Checking inodes, blocks, and sizes
Inode 2 seems to contain garbage.  Clear? yes

Root inode is not a directory.  Clear? yes

Restarting e2fsck from the beginning...
Pass 1: Checking inodes, blocks, and sizes
Root inode is not a directory; aborting.

COS_ACTIVE: ***** FILE SYSTEM WAS MODIFIED *****
COS_ACTIVE: 61/2048 files (1.6% non-contiguous), 2849/8192 blocks
"""

CLEAN = """\
e2fsck 1.47.0 (5-Feb-2023)
Pass 1: Checking inodes, blocks, and sizes
Pass 2: Checking directory structure
Pass 3: Checking directory connectivity
Pass 4: Checking reference counts
Pass 5: Checking group summary information
COS_ACTIVE: 61/2048 files (1.6% non-contiguous), 2849/8192 blocks
"""


def test_parse_problems_clri_dir():
    assert f.parse_problems(CLRI_DIR_FN) == ([
        "Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.",
        "Entry 'mods' in /usr/lib (17) has an incorrect filetype (was 2, should be 0).",
        "Inode 17 ref count is 3, should be 2.",
        "Unattached inode 19",
        "Block bitmap differences:  -1624",
        "Directories count wrong for group #0 (10, counted=9).",
    ], 6)


def test_parse_problems_program_messages_stand_alone():
    assert f.parse_problems(GARBAGE_FN) == ([
        "Superblock has an invalid journal (inode 8).",
        "fsck.ext2: The journal superblock is corrupt while checking journal for COS_ACTIVE",
        "e2fsck: Cannot proceed with file system check",
    ], 3)


def test_parse_problems_drops_banners_and_restarts():
    assert f.parse_problems(GARBAGE_FY) == ([
        "Superblock has an invalid journal (inode 8).",
        "Inode 2 seems to contain garbage.",
        "Root inode is not a directory.",
        "Root inode is not a directory; aborting.",
    ], 4)


def test_parse_problems_clean_and_empty():
    assert f.parse_problems(CLEAN) == ([], 0)
    assert f.parse_problems("") == ([], 0)
    assert f.parse_problems(None) == ([], 0)


def test_parse_problems_limit_keeps_count():
    text = "".join("Unattached inode %d\nConnect to /lost+found? no\n\n" % i for i in range(10, 20))
    assert f.parse_problems(text, limit=3) == (
        ["Unattached inode 10", "Unattached inode 11", "Unattached inode 12"], 10)


# ---------------------------------------------------------------------------
# boot markers
# ---------------------------------------------------------------------------

def _markers(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return str(root)


def test_boot_mode_none(tmp_path):
    boot = f.detect_boot_mode(str(tmp_path))
    assert boot.as_dict() == {"mode": None, "marker": None, "markers": [], "conflict": False}


@pytest.mark.parametrize("names, mode, marker", [
    (["cos/passive_mode"], "passive", "cos/passive_mode"),
    (["cos/active_mode"], "active", "cos/active_mode"),
    (["elemental/recovery_mode"], "recovery", "elemental/recovery_mode"),
    (["cos/passive_mode", "elemental/passive_mode"], "passive", "cos/passive_mode"),
])
def test_boot_mode_found(tmp_path, names, mode, marker):
    root = _markers(tmp_path, *names)
    boot = f.detect_boot_mode(root)
    assert (boot.mode, boot.marker, boot.conflict) == (mode, os.path.join(root, marker), False)
    assert boot.as_dict()["markers"] == [os.path.join(root, name) for name in names]


def test_boot_mode_conflict(tmp_path):
    root = _markers(tmp_path, "cos/active_mode", "elemental/passive_mode")
    boot = f.detect_boot_mode(root)
    assert (boot.mode, boot.conflict) == (None, True)
    assert boot.as_dict()["markers"] == [os.path.join(root, "cos/active_mode"),
                                         os.path.join(root, "elemental/passive_mode")]


@pytest.mark.parametrize("image, mode", [
    (IMAGE, "active"),
    ("/x/cOS/passive.img", "passive"),
    ("/x/cOS/recovery.img", "recovery"),
    ("/x/cOS/recovery.squashfs", "recovery"),
    ("/x/other.img", None),
])
def test_image_boot_mode(image, mode):
    assert f.image_boot_mode(image) == mode


# ---------------------------------------------------------------------------
# mounts and loops
# ---------------------------------------------------------------------------

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=16384k
41 30 7:3 / /run/initramfs/cos-state ro,relatime shared:20 - ext4 /dev/loop3 ro
42 30 7:4 / /run/my\\040mount rw,relatime - ext4 /dev/loop4 rw
43 41 7:3 / /run/initramfs/cos-state rw,relatime - ext4 /dev/loop3 rw
"""


def test_parse_mountinfo():
    mounts = f.parse_mountinfo(MOUNTINFO)
    assert [(m.dev, m.mountpoint, m.access, m.fstype, m.source) for m in mounts] == [
        ((254, 0), "/", "rw", "ext4", "/dev/vda"),
        ((0, 25), "/run", "rw", "tmpfs", "tmpfs"),
        ((7, 3), STATE, "ro", "ext4", "/dev/loop3"),
        ((7, 4), "/run/my mount", "rw", "ext4", "/dev/loop4"),
        ((7, 3), STATE, "rw", "ext4", "/dev/loop3"),
    ]


def test_find_mount_for_longest_prefix_same_device_last_wins():
    mounts = f.parse_mountinfo(MOUNTINFO)
    found = f.find_mount_for(IMAGE, (7, 3), mounts)
    assert (found.mountpoint, found.access) == (STATE, "rw")
    assert f.find_mount_for(IMAGE, (254, 0), mounts).mountpoint == "/"
    assert f.find_mount_for("/run/initramfs/cos-statex/a.img", (7, 3), mounts) is None


def test_mounts_at():
    mounts = f.parse_mountinfo(MOUNTINFO)
    assert [m.access for m in f.mounts_at(STATE, mounts)] == ["ro", "rw"]
    assert f.mounts_at("/nowhere", mounts) == []


LOSETUP_JSON = """{
   "loopdevices": [
      {
         "name": "/dev/loop0",
         "maj:min": "  7:0  ",
         "back-file": "/tmp/ifx/small/a.img",
         "back-ino": 2253593,
         "back-maj:min": "     254:0  "
      },
      {
         "name": "/dev/loop1",
         "maj:min": "7:1",
         "back-file": null,
         "back-ino": null,
         "back-maj:min": null
      }
   ]
}"""


def test_parse_losetup_json():
    loops = f.parse_losetup_json(LOSETUP_JSON)
    assert [(lo.name, lo.dev, lo.back_file, lo.back_ino, lo.back_dev) for lo in loops] == [
        ("/dev/loop0", (7, 0), "/tmp/ifx/small/a.img", 2253593, (254, 0)),
        ("/dev/loop1", (7, 1), None, None, None),
    ]
    assert f.parse_losetup_json("") == []
    assert f.parse_losetup_json("  \n") == []


def _stat_dev(st):
    return "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))


def test_mounted_image_users_by_inode(tmp_path):
    image = tmp_path / "active.img"
    image.write_bytes(b"x")
    st = os.stat(str(image))
    loops = f.parse_losetup_json(json.dumps({"loopdevices": [
        {"name": "/dev/loop5", "maj:min": "7:5", "back-file": "/elsewhere/active.img",
         "back-ino": st.st_ino, "back-maj:min": _stat_dev(st)},
        {"name": "/dev/loop6", "maj:min": "7:6", "back-file": str(image),
         "back-ino": st.st_ino + 1, "back-maj:min": _stat_dev(st)},
    ]}))
    mounts = f.parse_mountinfo(
        "50 22 7:5 / /mnt/active ro - ext4 /dev/loop5 ro\n"
        "51 22 7:6 / /mnt/other ro - ext4 /dev/loop6 ro\n")
    assert [lo.name for lo in f.loops_backing(str(image), st, loops)] == ["/dev/loop5"]
    assert f.mounted_image_users(str(image), st, loops, mounts) == [
        "/dev/loop5 (backing %s) is mounted at /mnt/active" % image]


def test_mounted_image_users_attached_but_unmounted_is_not_a_user(tmp_path):
    image = tmp_path / "active.img"
    image.write_bytes(b"x")
    st = os.stat(str(image))
    loops = [f.Loop("/dev/loop5", (7, 5), str(image), st.st_ino,
                    (os.major(st.st_dev), os.minor(st.st_dev)))]
    assert f.mounted_image_users(str(image), st, loops, f.parse_mountinfo(MOUNTINFO)) == []


def test_mounted_image_users_by_path_and_direct_source(tmp_path):
    image = tmp_path / "active.img"
    image.write_bytes(b"x")
    st = os.stat(str(image))
    loops = [f.Loop("/dev/loop7", (7, 7), str(image), None, None),
             f.Loop("/dev/loop2", (7, 2), str(image) + " (deleted)", None, None)]
    mounts = f.parse_mountinfo(
        "50 22 7:7 / /mnt/a ro - ext4 /dev/loop7 ro\n"
        "51 22 7:2 / /mnt/b ro - ext4 /dev/loop2 ro\n"
        "52 22 0:40 / /mnt/c ro - fuse %s ro\n" % image)
    assert f.mounted_image_users(str(image), st, loops, mounts) == [
        "%s is mounted at /mnt/c" % image,
        "/dev/loop7 (backing %s) is mounted at /mnt/a" % image,
    ]


def test_read_sysfs_loops(tmp_path):
    for name, back, dev in (("loop0", "/a/active.img\n", "7:0\n"), ("loop1", None, "7:1\n")):
        base = tmp_path / name
        base.mkdir()
        (base / "dev").write_text(dev)
        if back:
            (base / "loop").mkdir()
            (base / "loop" / "backing_file").write_text(back)
    (tmp_path / "vda").mkdir()
    loops = f.read_sysfs_loops(str(tmp_path))
    assert [(lo.name, lo.dev, lo.back_file) for lo in loops] == [("/dev/loop0", (7, 0), "/a/active.img")]


class Recorder(object):
    """A runner: records (argv, env), answers from a table or raises."""

    def __init__(self, answers=None, default=(0, "", "")):
        self.calls = []
        self.answers = answers or {}
        self.default = default

    def __call__(self, argv, env):
        self.calls.append((list(argv), dict(env)))
        answer = self.answers.get(tuple(argv), self.default)
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    @property
    def argvs(self):
        return [argv for argv, dummy in self.calls]


def test_find_loops_losetup_then_sysfs(tmp_path):
    listing = ("losetup", "--list", "--json", "--output",
               "NAME,MAJ:MIN,BACK-FILE,BACK-INO,BACK-MAJ:MIN")
    tool = f.FsckTool(Recorder({listing: (0, LOSETUP_JSON, "")}))
    assert [lo.name for lo in f.find_loops(tool, str(tmp_path))] == ["/dev/loop0", "/dev/loop1"]
    (tmp_path / "loop3" / "loop").mkdir(parents=True)
    (tmp_path / "loop3" / "dev").write_text("7:3\n")
    (tmp_path / "loop3" / "loop" / "backing_file").write_text("/x.img\n")
    for answer in ((1, "", "losetup: boom"), OSError(2, "No such file")):
        tool = f.FsckTool(Recorder({listing: answer}))
        assert [lo.name for lo in f.find_loops(tool, str(tmp_path))] == ["/dev/loop3"]


# ---------------------------------------------------------------------------
# the seam
# ---------------------------------------------------------------------------

def test_tool_argv_and_env():
    runner = Recorder()
    tool = f.FsckTool(runner, fsck="/usr/sbin/fsck.ext2", mount="/usr/bin/mount",
                      losetup="/usr/sbin/losetup")
    tool.check(IMAGE)
    tool.repair(IMAGE)
    tool.remount(STATE, "rw")
    tool.remount(STATE, "ro")
    tool.list_loops()
    assert runner.argvs == [
        ["/usr/sbin/fsck.ext2", "-fn", IMAGE],
        ["/usr/sbin/fsck.ext2", "-fy", IMAGE],
        ["/usr/bin/mount", "-o", "remount,rw", STATE],
        ["/usr/bin/mount", "-o", "remount,ro", STATE],
        ["/usr/sbin/losetup", "--list", "--json", "--output",
         "NAME,MAJ:MIN,BACK-FILE,BACK-INO,BACK-MAJ:MIN"],
    ]
    assert all(env == {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"} for dummy, env in runner.calls)
    assert tool.trail == runner.argvs
    with pytest.raises(ValueError):
        tool.remount(STATE, "rx")
    assert len(runner.calls) == 5


# ---------------------------------------------------------------------------
# state mount, backup dir, refusals
# ---------------------------------------------------------------------------

def _mountinfo_for(tmp_path, access="ro", mountpoint=None):
    st = os.stat(str(tmp_path))
    mountpoint = mountpoint or str(tmp_path)
    return f.parse_mountinfo(
        "22 1 254:99 / / rw - ext4 /dev/vdz rw\n"
        "60 22 %d:%d / %s %s,relatime - ext4 /dev/loop3 %s\n"
        % (os.major(st.st_dev), os.minor(st.st_dev), mountpoint, access, access))


def _image(tmp_path, size=64 * 1024):
    state = tmp_path / "state"
    (state / "cOS").mkdir(parents=True)
    image = state / "cOS" / "active.img"
    with open(str(image), "wb") as handle:
        handle.write(b"\x01" * 4096)
        handle.truncate(size)
    return str(image), state


def test_locate_state_mount_detected_and_given(tmp_path):
    image, state = _image(tmp_path)
    st = os.stat(image)
    mounts = _mountinfo_for(state)
    mount, error = f.locate_state_mount(image, st, mounts)
    assert (mount.mountpoint, mount.access, error) == (str(state), "ro", None)
    mount, error = f.locate_state_mount(image, st, mounts, state_mount=str(state))
    assert (mount.mountpoint, error) == (str(state), None)


def test_locate_state_mount_refusals(tmp_path):
    image, state = _image(tmp_path)
    st = os.stat(image)
    mounts = _mountinfo_for(state)
    mount, error = f.locate_state_mount(image, st, mounts, state_mount=str(tmp_path / "nope"))
    assert mount is None
    assert error == ("state mount not found: %s is not a mount point (the image %s is on %s); "
                     "set state_mount to the mount point that holds the image"
                     % (tmp_path / "nope", image, state))
    mount, error = f.locate_state_mount(image, st, mounts, state_mount="/")
    assert error == ("state mount mismatch: %s is not on the file system mounted at state_mount / "
                     "(it is on %s)" % (image, state))
    mount, error = f.locate_state_mount(image, st, f.parse_mountinfo(
        "22 1 1:99 / / rw - ext4 /dev/vdz rw\n"))
    assert error == ("state mount not found: no mount point in the mount table holds %s; set "
                     "state_mount to the mount point of the state partition" % image)
    mount, error = f.locate_state_mount(image, st, _mountinfo_for(state, mountpoint="/"))
    assert error.startswith("%s is on the root file system: refusing to remount / read-write" % image)


def test_check_backup_dir(tmp_path, monkeypatch):
    image, state = _image(tmp_path)
    backups = tmp_path / "backups"
    assert f.check_backup_dir(None, str(state))[1].startswith("backup_dir is required for mode=repair")
    assert f.check_backup_dir(str(backups), str(state)) == (
        None, "backup_dir %s does not exist or is not a directory: create it first" % backups)
    inside = state / "bk"
    inside.mkdir()
    assert f.check_backup_dir(str(inside), str(state)) == (
        None, "backup_dir %s is on the state mount %s that holds the image: choose a directory "
              "on another file system" % (inside, state))
    backups.mkdir()
    # free space moves while other work writes to the disk: pin the reading to see
    # that the result is the reading of the backup directory itself
    seen = []
    monkeypatch.setattr(f, "free_bytes", lambda path: seen.append(path) or 123456789)
    free, error = f.check_backup_dir(str(backups), str(state))
    assert error is None
    assert free == 123456789
    assert seen == [os.path.realpath(str(backups))]


def _facts(tmp_path, boot_names=(), backup_free=10 ** 12, backup_error=None, users=()):
    image, state = _image(tmp_path)
    st = os.stat(image)
    boot = f.detect_boot_mode(_markers(tmp_path / "run", *boot_names))
    mount, error = f.locate_state_mount(image, st, _mountinfo_for(state))
    return f.Facts(image, st, boot, mount, error, users, backup_free, backup_error)


def test_refusals_none_on_passive(tmp_path):
    facts = _facts(tmp_path, ["cos/passive_mode"])
    assert f.refusals("repair", facts, backup_dir="/b") == []
    assert f.refusals("check", facts) == []


def test_refusal_booted_from_image(tmp_path):
    facts = _facts(tmp_path, ["cos/active_mode"])
    marker = str(tmp_path / "run" / "cos" / "active_mode")
    assert f.refusals("repair", facts, backup_dir="/b") == [
        "booted from the image: this system runs from %s (marker %s); reboot into the fallback "
        "(passive) or recovery system first" % (facts.image, marker)]
    assert f.refusals("repair", facts, require_fallback_boot=False, backup_dir="/b") == []
    assert f.refusals("check", facts) == []


def test_refusal_no_marker_and_conflict(tmp_path):
    facts = _facts(tmp_path)
    assert f.refusals("repair", facts, backup_dir="/b") == [
        "no boot-mode marker (cos/ or elemental/ *_mode) was found, so it cannot be proven that "
        "this system runs from a fallback image; set require_fallback_boot: false only if you "
        "know it did not boot from %s" % facts.image]
    facts = _facts(tmp_path / "b", ["cos/passive_mode", "elemental/active_mode"])
    reasons = f.refusals("repair", facts, backup_dir="/b")
    assert len(reasons) == 1
    assert reasons[0].startswith("the boot markers disagree (")


def test_refusal_backup_too_small_and_missing(tmp_path):
    facts = _facts(tmp_path, ["cos/passive_mode"], backup_free=1024)
    need = f.backup_required_bytes(facts.image_stat)
    assert need == 4096 + f.BACKUP_SLACK
    assert f.refusals("repair", facts, backup_dir="/b") == [
        "backup_dir /b is too small: 1.0 KiB free, the backup of %s needs %s; free space there "
        "or choose another backup_dir" % (facts.image, f.human_bytes(need))]
    assert f.refusals("repair", facts, backup=False) == []
    facts.backup_error = "backup_dir /b does not exist or is not a directory: create it first"
    assert f.refusals("repair", facts, backup_dir="/b") == [facts.backup_error]


def test_refusal_image_mounted_applies_to_check_too(tmp_path):
    facts = _facts(tmp_path, ["cos/passive_mode"], users=["/dev/loop5 (backing x) is mounted at /m"])
    expected = ["the image is mounted: /dev/loop5 (backing x) is mounted at /m; unmount it "
                "first, e2fsck must not run on a mounted file system"]
    assert f.refusals("check", facts) == expected
    assert f.refusals("repair", facts, backup_dir="/b") == expected


def test_gather_facts_image_missing(tmp_path):
    with pytest.raises(f.ImageMissing) as err:
        f.gather_facts(f.FsckTool(Recorder()), str(tmp_path / "none.img"))
    assert str(err.value).startswith("image %s does not exist (No such file or directory)"
                                     % (tmp_path / "none.img"))


def test_gather_facts_reads_everything(tmp_path):
    image, state = _image(tmp_path)
    st = os.stat(image)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 254:99 / / rw - ext4 /dev/vdz rw\n"
        "60 22 %d:%d / %s ro,relatime - ext4 /dev/loop3 ro\n"
        % (os.major(st.st_dev), os.minor(st.st_dev), state))
    backups = tmp_path / "bk"
    backups.mkdir()
    runner = Recorder(default=(0, "", ""))
    facts = f.gather_facts(f.FsckTool(runner), image, markers_root=_markers(
        tmp_path / "run", "elemental/passive_mode"), backup_dir=str(backups), backup=True,
        mountinfo=str(mountinfo), sys_block=str(tmp_path / "nosys"))
    assert (facts.mount.mountpoint, facts.mount.access, facts.mount_error) == (str(state), "ro", None)
    assert (facts.boot.mode, facts.users, facts.backup_error) == ("passive", [], None)
    assert facts.backup_free == f.free_bytes(str(backups))
    assert runner.argvs == [["losetup", "--list", "--json", "--output",
                             "NAME,MAJ:MIN,BACK-FILE,BACK-INO,BACK-MAJ:MIN"]]


# ---------------------------------------------------------------------------
# run_repair: order, finally, undo only what was done
# ---------------------------------------------------------------------------

def _backup_ok(calls):
    def backup(image, backup_dir):
        calls.append(("backup", image, backup_dir))
        return BackupResult(os.path.join(backup_dir, "active.img.x.bak"), 65536, "ab" * 32, 4096, 0.01)
    return backup


def _repair_tool(answers):
    return f.FsckTool(Recorder(answers), fsck="fsck.ext2", mount="mount")


def test_run_repair_order(tmp_path):
    image, state = _image(tmp_path)
    calls = []
    tool = _repair_tool({("fsck.ext2", "-fy", image): (1, "Fix? yes\n", ""),
                         ("fsck.ext2", "-fn", image): (0, "", "")})
    report = {}
    f.run_repair(tool, image, str(state), True, report, backup_dir="/bk", backup_func=_backup_ok(calls))
    assert calls == [("backup", image, "/bk")]
    assert tool.trail == [
        ["mount", "-o", "remount,rw", str(state)],
        ["fsck.ext2", "-fy", image],
        ["mount", "-o", "remount,ro", str(state)],
        ["fsck.ext2", "-fn", image],
    ]
    assert (report["remounted_rw"], report["remounted_ro"], report["repair_rc"],
            report["recheck_rc"], report["image_modified"]) == (True, True, 1, 0, False)
    assert report["backup"]["sha256"] == "ab" * 32


def test_run_repair_remounts_ro_when_fsck_returns_8(tmp_path):
    image, state = _image(tmp_path)
    tool = _repair_tool({("fsck.ext2", "-fy", image): (8, "", "fsck.ext2: boom"),
                         ("fsck.ext2", "-fn", image): (4, "", "")})
    report = {}
    f.run_repair(tool, image, str(state), True, report, backup_dir="/bk", backup_func=_backup_ok([]))
    assert tool.trail == [
        ["mount", "-o", "remount,rw", str(state)],
        ["fsck.ext2", "-fy", image],
        ["mount", "-o", "remount,ro", str(state)],
        ["fsck.ext2", "-fn", image],
    ]
    assert (report["repair_rc"], report["remounted_ro"], report["recheck_rc"]) == (8, True, 4)


def test_run_repair_remounts_ro_when_fsck_raises(tmp_path):
    image, state = _image(tmp_path)
    tool = _repair_tool({("fsck.ext2", "-fy", image): OSError(7, "Argument list too long")})
    report = {}
    with pytest.raises(OSError):
        f.run_repair(tool, image, str(state), True, report, backup_dir="/bk",
                     backup_func=_backup_ok([]))
    assert tool.trail == [
        ["mount", "-o", "remount,rw", str(state)],
        ["fsck.ext2", "-fy", image],
        ["mount", "-o", "remount,ro", str(state)],
    ]
    assert (report["remounted_rw"], report["remounted_ro"]) == (True, True)
    assert "repair_rc" not in report


def test_run_repair_leaves_rw_mount_alone(tmp_path):
    image, state = _image(tmp_path)
    tool = _repair_tool({})
    report = {}
    f.run_repair(tool, image, str(state), False, report, backup=False)
    assert tool.trail == [["fsck.ext2", "-fy", image], ["fsck.ext2", "-fn", image]]
    assert (report["remounted_rw"], report["remounted_ro"], "backup" in report) == (False, False, False)


def test_run_repair_backup_failure_touches_nothing(tmp_path):
    image, state = _image(tmp_path)

    def failing(image, backup_dir):
        raise BackupError("no space left")
    tool = _repair_tool({})
    with pytest.raises(f.RepairError) as err:
        f.run_repair(tool, image, str(state), True, {}, backup_dir="/bk", backup_func=failing)
    assert str(err.value) == "backup failed, the image was not touched: no space left"
    assert tool.trail == []


def test_run_repair_remount_rw_failure_stops(tmp_path):
    image, state = _image(tmp_path)
    tool = _repair_tool({("mount", "-o", "remount,rw", str(state)): (32, "", "write-protected")})
    report = {}
    with pytest.raises(f.RepairError) as err:
        f.run_repair(tool, image, str(state), True, report, backup=False)
    assert str(err.value) == ("mount -o remount,rw %s failed (rc 32): write-protected; the image "
                              "was not touched" % state)
    assert tool.trail == [["mount", "-o", "remount,rw", str(state)]]
    assert report["remounted_rw"] is False


def test_run_repair_reports_failed_ro_remount(tmp_path):
    image, state = _image(tmp_path)
    tool = _repair_tool({("mount", "-o", "remount,ro", str(state)): (32, "", "busy")})
    report = {}
    f.run_repair(tool, image, str(state), True, report, backup=False)
    assert report["remounted_ro"] is False
    assert report["remount_ro_error"] == "mount -o remount,ro %s failed (rc 32): busy" % state


def test_run_repair_sees_image_modified(tmp_path):
    image, state = _image(tmp_path)

    def runner(argv, env):
        if argv[1] == "-fy":
            st = os.stat(image)
            os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
        return 0, "", ""
    tool = f.FsckTool(runner)
    report = {}
    f.run_repair(tool, image, str(state), True, report, backup=False)
    assert report["image_modified"] is True


# ---------------------------------------------------------------------------
# backup_method=undo: e2fsck's undo file, verified with e2undo -n
# ---------------------------------------------------------------------------

# fsck.ext2 -fy -z and e2undo -n -v output, shortened from what e2fsprogs 1.47.0 printed here
UNDO_FY = """\
Overwriting existing filesystem; this can be undone using the command:
    e2undo /bk/active.img.x.e2undo /run/initramfs/cos-state/cOS/active.img

Pass 1: Checking inodes, blocks, and sizes
Pass 2: Checking directory structure
Entry 'd' in / (2) has deleted/unused inode 12.  Clear? yes

Pass 5: Checking group summary information

COS_ACTIVE: ***** FILE SYSTEM WAS MODIFIED *****
COS_ACTIVE: 11/4096 files (0.0% non-contiguous), 2325/16384 blocks
"""
UNDO_REPLAY = """\
Replayed block of size 4096 from 5 to 145
Replayed block of size 28672 from 7 to 1272
Replayed block of size 4096 from 6 to 4242
"""
UNDO_BAD = "checksum error in filesystem block 129 (undo blk 14)\n"


def test_parse_problems_drops_the_undo_banner():
    assert f.parse_problems(UNDO_FY) == (["Entry 'd' in / (2) has deleted/unused inode 12."], 1)


@pytest.mark.parametrize("output, expected", [
    (UNDO_REPLAY, (3, 36864)),
    ("", (0, 0)),
    (None, (0, 0)),
    (UNDO_BAD, (0, 0)),
])
def test_parse_undo_replay(output, expected):
    assert f.parse_undo_replay(output) == expected


def test_tool_undo_argv():
    runner = Recorder()
    tool = f.FsckTool(runner, fsck="/usr/sbin/fsck.ext2", e2undo="/usr/sbin/e2undo")
    tool.repair(IMAGE, undo_file="/bk/a.e2undo")
    tool.verify_undo("/bk/a.e2undo", IMAGE)
    assert runner.argvs == [
        ["/usr/sbin/fsck.ext2", "-fy", "-z", "/bk/a.e2undo", IMAGE],
        ["/usr/sbin/e2undo", "-n", "-v", "/bk/a.e2undo", IMAGE],
    ]
    assert all(env == {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"} for dummy, env in runner.calls)


def test_undo_file_path_is_new(tmp_path):
    first = f.undo_file_path("/x/cOS/active.img", str(tmp_path), now=0)
    assert first == str(tmp_path / "active.img.19700101T000000Z.e2undo")
    open(first, "w").close()
    assert f.undo_file_path("/x/cOS/active.img", str(tmp_path), now=0) == first + ".1"


def _undo_runner(image, writes=True, verify=(0, UNDO_REPLAY, "")):
    """fsck -fy -z writes the undo file (when ``writes``); e2undo answers ``verify``."""
    calls = []

    def runner(argv, env):
        calls.append(list(argv))
        if argv[:3] == ["fsck.ext2", "-fy", "-z"]:
            if writes:
                with open(argv[3], "wb") as handle:
                    handle.write(b"E2UNDO02" + b"\0" * 4088)
            return 1, UNDO_FY, ""
        if argv[0] == "e2undo":
            return verify
        return 0, "", ""
    return runner, calls


def test_run_repair_undo_order_and_report(tmp_path):
    image, state = _image(tmp_path)
    backups = tmp_path / "bk"
    backups.mkdir()
    runner, calls = _undo_runner(image)
    report = {}

    def no_copy(image, backup_dir):
        raise AssertionError("backup_method=undo must not copy the image")
    f.run_repair(f.FsckTool(runner), image, str(state), True, report, backup_dir=str(backups),
                 backup_func=no_copy, method="undo")
    (undo,) = [str(p) for p in backups.iterdir()]
    assert undo.startswith(str(backups / "active.img.")) and undo.endswith(".e2undo")
    assert calls == [
        ["mount", "-o", "remount,rw", str(state)],
        ["fsck.ext2", "-fy", "-z", undo, image],
        ["mount", "-o", "remount,ro", str(state)],
        ["e2undo", "-n", "-v", undo, image],
        ["fsck.ext2", "-fn", image],
    ]
    backup = dict(report["backup"])
    assert backup.pop("seconds") >= 0
    assert backup == {"method": "undo", "path": undo, "size": 4096, "sha256": None, "written": 4096,
                      "undo_blocks": 3, "undo_bytes": 36864}
    assert (report["repair_rc"], report["remounted_ro"], "undo_error" in report) == (1, True, False)


@pytest.mark.parametrize("writes, verify, error", [
    (True, (1, "", UNDO_BAD),
     "the undo file {undo} does not verify (e2undo -n rc 1: checksum error in filesystem block 129 "
     "(undo blk 14)): the image was repaired without a verified way back"),
    (False, None, "e2fsck wrote no undo file {undo}: the image was repaired without a way back"),
])
def test_run_repair_undo_not_verified(tmp_path, writes, verify, error):
    image, state = _image(tmp_path)
    backups = tmp_path / "bk"
    backups.mkdir()
    runner, calls = _undo_runner(image, writes=writes, verify=verify)
    report = {}
    f.run_repair(f.FsckTool(runner), image, str(state), True, report, backup_dir=str(backups),
                 method="undo")
    undo = report["undo_file"]
    assert report["undo_error"] == error.format(undo=undo)
    assert "backup" not in report
    # the mount went back to ro before the verification, and the re-check still ran
    assert calls[2] == ["mount", "-o", "remount,ro", str(state)]
    assert calls[-1] == ["fsck.ext2", "-fn", image]
    assert (report["remounted_ro"], report["recheck_rc"]) == (True, 0)


def test_run_repair_rejects_an_unknown_method(tmp_path):
    image, state = _image(tmp_path)
    tool = _repair_tool({})
    with pytest.raises(ValueError) as err:
        f.run_repair(tool, image, str(state), True, {}, backup_dir="/bk", method="snapshot")
    assert str(err.value) == "backup method must be one of copy, undo, not 'snapshot'"
    assert tool.trail == []
