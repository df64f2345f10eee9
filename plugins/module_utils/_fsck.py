# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check and repair an ext2/3/4 OS image file (Elemental / Harvester ``active.img``).

Plain functions and small classes, importable without Ansible:

* the e2fsck exit-status table and the parsing of its output into problems;
* boot-mode detection from the Elemental/cOS markers (``/run/cos/*_mode``,
  ``/run/elemental/*_mode``);
* mount lookup (``/proc/self/mountinfo``) and loop-device lookup, to find the
  mount point holding the image and to refuse an image that is itself mounted;
* the free-space check for the backup (the copy itself is in ``_image_backup``);
* :class:`FsckTool`, the one command seam of this file (``fsck.ext2``,
  ``mount -o remount``, ``losetup``, ``e2undo``), and :func:`run_repair`, the
  repair order with the read-only remount in a ``finally``.

Two backup methods (``BACKUP_METHODS``): ``copy`` (the default) is a verified,
digest-equal sparse copy of the whole image made before e2fsck touches it
(``_image_backup``); ``undo`` is e2fsck's own undo file (``fsck.ext2 -fy -z
FILE``: the old content of every block e2fsck overwrites, written before the
overwrite), verified afterwards with ``e2undo -n`` (every saved block's
checksum, and that the file matches the repaired image). ``undo`` costs about
as much as the repair itself but is not a copy: it restores the image only
with ``e2undo`` onto the repaired image, and gives no digest of the image as
it was.
"""

from __future__ import annotations

import json
import os
import re
import time

from ansible_collections.clusterops.upgrade.plugins.module_utils._image_backup import (
    BackupError,
    backup_image,
    backup_name,
)

# ---------------------------------------------------------------------------
# e2fsck exit status
# ---------------------------------------------------------------------------

# Bits of the e2fsck exit status (e2fsck(8), "EXIT CODE"). The status is the
# sum (bitwise or) of the conditions that apply: 12 = 4 + 8.
FSCK_EXIT_BITS = (
    (1, "file system errors corrected"),
    (2, "file system errors corrected, system should be rebooted"),
    (4, "file system errors left uncorrected"),
    (8, "operational error"),
    (16, "usage or syntax error"),
    (32, "e2fsck canceled by user request"),
    (128, "shared library error"),
)
FSCK_NO_ERRORS = "no errors"
_KNOWN_BITS = 1 | 2 | 4 | 8 | 16 | 32 | 128
# Bits meaning "e2fsck could not do its job" (as opposed to "it found errors").
FSCK_FAILURE_BITS = 8 | 16 | 32 | 128


def fsck_meaning(rc):
    """Return the list of conditions an e2fsck exit status stands for."""
    if rc is None:
        return []
    if rc < 0:
        return ["killed by signal %d" % -rc]
    if rc == 0:
        return [FSCK_NO_ERRORS]
    meaning = [text for bit, text in FSCK_EXIT_BITS if rc & bit]
    unknown = rc & ~_KNOWN_BITS
    if unknown:
        meaning.append("unknown exit status bits %d" % unknown)
    return meaning


def fsck_clean(rc):
    """A forced check (``-fn``) found nothing to fix."""
    return rc == 0


def fsck_could_not_check(rc):
    """e2fsck failed without reporting file system errors: the state is unknown."""
    return rc is None or rc < 0 or (bool(rc & FSCK_FAILURE_BITS) and not rc & 4)


def fsck_repaired_ok(rc):
    """A ``-fy`` run left no errors and did not fail (0, 1, 2 or 3)."""
    return rc is not None and rc >= 0 and rc & ~3 == 0


# ---------------------------------------------------------------------------
# e2fsck output
# ---------------------------------------------------------------------------

_NOISE = (
    re.compile(r"^e2fsck \d+\.\d+"),                       # version banner
    re.compile(r"^Pass \d+[A-Z]?: "),                       # pass headers
    re.compile(r"^\S+: \d+/\d+ files \(.*\), \d+/\d+ blocks$"),  # summary
    re.compile(r"\*{3,}.*\*{3,}\s*$"),                      # status banners
    re.compile(r"^Restarting e2fsck from the beginning"),
    # -z: "Overwriting existing filesystem; this can be undone using the command:"
    # followed by the indented "e2undo FILE IMAGE"
    re.compile(r"^Overwriting existing filesystem; this can be undone using the command:$"),
    re.compile(r"^e2undo \S"),
)
# The question e2fsck asks about a problem and the answer -n/-y gave it: a
# whole line ("Connect to /lost+found? no") or the end of one, after two
# spaces ("... inode 18.  Clear? no").
_QUESTION = re.compile(r"(?:^|\s{2,}|(?<=[.:]) )[A-Z][^?.]*\? (?:yes|no)(?: to all)?$")

# Messages e2fsck prints under its own name ("e2fsck: Cannot proceed ...").
_PROGRAM_MESSAGE = re.compile(r"^(?:e2fsck|fsck(?:\.ext[234])?): ")

MAX_PROBLEMS = 200


def parse_problems(output, limit=MAX_PROBLEMS):
    """Turn e2fsck output into one line per problem.

    A problem is a paragraph of e2fsck output (lines up to a blank line or up to
    the question e2fsck asks) that is not the banner, a pass header, a status
    banner or the summary; its lines are joined and the question with its
    answer (``Fix? no``) is removed. A message e2fsck prints under its own name
    (``e2fsck: ...``) is a problem of its own. Returns ``(problems, total)``:
    at most ``limit`` problems, and how many there were.
    """
    problems = []
    counter = [0]
    record = []

    def flush():
        text = " ".join(record).strip()
        record[:] = []
        if text:
            counter[0] += 1
            if len(problems) < limit:
                problems.append(text)

    for raw in (output or "").splitlines():
        line = raw.strip()
        if not line or any(rx.search(line) for rx in _NOISE):
            flush()
            continue
        if _PROGRAM_MESSAGE.match(line):
            flush()
            record.append(line)
            flush()
            continue
        question = _QUESTION.search(line)
        if question:
            record.append(line[:question.start()].strip())
            flush()
            continue
        record.append(line)
    flush()
    return problems, counter[0]


# ---------------------------------------------------------------------------
# Boot mode
# ---------------------------------------------------------------------------

BOOT_MODES = ("active", "passive", "recovery")
BOOT_MARKER_DIRS = ("cos", "elemental")

# Which boot mode runs from which image file.
_IMAGE_MODES = {
    "active.img": "active",
    "passive.img": "passive",
    "recovery.img": "recovery",
    "recovery.squashfs": "recovery",
}


class BootMode(object):
    def __init__(self, mode, marker, markers):
        self.mode = mode          # active | passive | recovery | None
        self.marker = marker      # path of the marker the mode comes from
        self.markers = markers    # every marker found, in search order
        self.conflict = len(set(m for m, dummy in markers)) > 1

    def as_dict(self):
        return {"mode": self.mode, "marker": self.marker,
                "markers": [path for dummy, path in self.markers],
                "conflict": self.conflict}


def detect_boot_mode(run_root="/run"):
    """Read the ``<run_root>/{cos,elemental}/{active,passive,recovery}_mode`` markers."""
    found = []
    for directory in BOOT_MARKER_DIRS:
        for mode in BOOT_MODES:
            path = os.path.join(run_root, directory, "%s_mode" % mode)
            if os.path.lexists(path):
                found.append((mode, path))
    if not found:
        return BootMode(None, None, [])
    mode, marker = found[0]
    boot = BootMode(mode, marker, found)
    if boot.conflict:
        boot.mode = None
    return boot


def image_boot_mode(image):
    """The boot mode that runs from ``image`` (by file name), or None."""
    return _IMAGE_MODES.get(os.path.basename(image))


# ---------------------------------------------------------------------------
# Mounts and loop devices
# ---------------------------------------------------------------------------

def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


class Mount(object):
    def __init__(self, dev, root, mountpoint, options, fstype, source, super_options):
        self.dev = dev                  # (major, minor)
        self.root = root
        self.mountpoint = mountpoint
        self.options = options          # per-mount options (list)
        self.fstype = fstype
        self.source = source
        self.super_options = super_options

    @property
    def read_only(self):
        return "ro" in self.options

    @property
    def access(self):
        return "ro" if self.read_only else "rw"

    def __repr__(self):
        return "Mount(%r, %r, %s)" % (self.mountpoint, self.source, self.access)


def parse_mountinfo(text):
    """Parse ``/proc/<pid>/mountinfo`` into :class:`Mount` objects."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 10:
            continue
        sep = fields.index("-", 6)
        major, minor = fields[2].split(":")
        post = fields[sep + 1:]
        mounts.append(Mount(
            dev=(int(major), int(minor)),
            root=_unescape(fields[3]),
            mountpoint=_unescape(fields[4]),
            options=fields[5].split(","),
            fstype=post[0],
            source=_unescape(post[1]) if len(post) > 1 else "",
            super_options=post[2].split(",") if len(post) > 2 else [],
        ))
    return mounts


def read_mountinfo(path="/proc/self/mountinfo"):
    with open(path) as handle:
        return parse_mountinfo(handle.read())


def _is_under(path, top):
    if top == "/":
        return path.startswith("/")
    return path == top or path.startswith(top.rstrip("/") + "/")


def find_mount_for(path, dev, mounts):
    """The mount holding ``path`` (a real path) on device ``dev``: longest prefix wins.

    The last matching entry wins among equal mount points (it is the one on top).
    """
    best = None
    for mount in mounts:
        if mount.dev != dev or not _is_under(path, mount.mountpoint):
            continue
        if best is None or len(mount.mountpoint) >= len(best.mountpoint):
            best = mount
    return best


def mounts_at(mountpoint, mounts):
    """Entries mounted exactly at ``mountpoint`` (the last one is visible)."""
    return [m for m in mounts if m.mountpoint == mountpoint]


def _majmin(text):
    major, minor = text.strip().split(":")
    return int(major), int(minor)


class Loop(object):
    def __init__(self, name, dev, back_file, back_ino, back_dev):
        self.name = name
        self.dev = dev
        self.back_file = back_file
        self.back_ino = back_ino
        self.back_dev = back_dev

    def __repr__(self):
        return "Loop(%r, %r)" % (self.name, self.back_file)


def parse_losetup_json(text):
    """Parse ``losetup --list --json --output NAME,MAJ:MIN,BACK-FILE,BACK-INO,BACK-MAJ:MIN``."""
    if not text or not text.strip():
        return []
    loops = []
    for item in json.loads(text).get("loopdevices", []):
        try:
            back_ino = int(item.get("back-ino"))
        except (TypeError, ValueError):
            back_ino = None
        try:
            back_dev = _majmin(item.get("back-maj:min") or "")
        except ValueError:
            back_dev = None
        loops.append(Loop(
            name=item.get("name"),
            dev=_majmin(item.get("maj:min") or "0:0"),
            back_file=(item.get("back-file") or "").strip() or None,
            back_ino=back_ino,
            back_dev=back_dev,
        ))
    return loops


def read_sysfs_loops(sys_block="/sys/block"):
    """Loop devices from sysfs (path of the backing file only, no inode)."""
    loops = []
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return loops
    for name in names:
        if not name.startswith("loop"):
            continue
        base = os.path.join(sys_block, name)
        try:
            with open(os.path.join(base, "loop", "backing_file")) as handle:
                back = handle.read().strip()
            with open(os.path.join(base, "dev")) as handle:
                dev = _majmin(handle.read())
        except (OSError, ValueError):
            continue
        loops.append(Loop("/dev/" + name, dev, back or None, None, None))
    return loops


def loops_backing(image, image_stat, loops):
    """Loop devices whose backing file is the image (by inode, else by path)."""
    dev = (os.major(image_stat.st_dev), os.minor(image_stat.st_dev))
    real = os.path.realpath(image)
    hits = []
    for loop in loops:
        if loop.back_ino is not None and loop.back_dev is not None:
            if loop.back_ino == image_stat.st_ino and loop.back_dev == dev:
                hits.append(loop)
        elif loop.back_file:
            back = loop.back_file
            if back.endswith(" (deleted)"):
                continue
            if os.path.realpath(back) == real:
                hits.append(loop)
    return hits


def mounts_of_device(dev, mounts):
    """Mounts whose source is block device ``dev`` (a loop, or one of its partitions)."""
    return [m for m in mounts if m.dev == dev]


def mounted_image_users(image, image_stat, loops, mounts):
    """Describe every way the image is in use as a mounted file system.

    Returns a list of strings (empty: not mounted). A loop device that backs
    the image but is not mounted is not listed here (see :func:`loops_backing`).
    """
    users = []
    real = os.path.realpath(image)
    for mount in mounts:
        if mount.source == real or mount.source == image:
            users.append("%s is mounted at %s" % (image, mount.mountpoint))
    for loop in loops_backing(image, image_stat, loops):
        for mount in mounts_of_device(loop.dev, mounts):
            users.append("%s (backing %s) is mounted at %s" % (loop.name, image, mount.mountpoint))
        for mount in mounts:
            # partitions of a loop device: loopNpM, same major, any minor
            if mount.source.startswith(loop.name + "p") and mount.dev != loop.dev:
                users.append("%s (backing %s) is mounted at %s" % (mount.source, image, mount.mountpoint))
    return users


# ---------------------------------------------------------------------------
# Space
# ---------------------------------------------------------------------------

BACKUP_SLACK = 4 * 1024 * 1024


def allocated_bytes(st):
    return st.st_blocks * 512


BACKUP_METHODS = ("copy", "undo")


def backup_required_bytes(image_stat):
    """Free bytes a sparse backup of the image needs: its allocated size plus slack."""
    return min(allocated_bytes(image_stat), image_stat.st_size) + BACKUP_SLACK


def free_bytes(path):
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def is_read_only_fs(path):
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def human_bytes(num):
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024.0
    return str(num)  # pragma: no cover


# ---------------------------------------------------------------------------
# The command seam
# ---------------------------------------------------------------------------

C_ENV = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}


class CommandResult(object):
    def __init__(self, argv, rc, stdout, stderr):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self):
        return (self.stdout or "") + (self.stderr or "")


class FsckTool(object):
    """Every external command of this file goes through :meth:`_run`.

    ``runner(argv, env) -> (rc, stdout, stderr)``; AnsibleModule passes one
    built on ``module.run_command``. Commands are argv lists with ``LANG=C``.
    """

    def __init__(self, runner, fsck="fsck.ext2", mount="mount", losetup="losetup", e2undo="e2undo"):
        self._runner = runner
        self.fsck_bin = fsck
        self.mount_bin = mount
        self.losetup_bin = losetup
        self.e2undo_bin = e2undo
        self.trail = []

    def _run(self, argv):
        argv = [str(arg) for arg in argv]
        self.trail.append(argv)
        rc, out, err = self._runner(argv, dict(C_ENV))
        return CommandResult(argv, rc, out, err)

    def check(self, image):
        """Forced read-only check: ``fsck.ext2 -fn IMAGE``."""
        return self._run([self.fsck_bin, "-fn", image])

    def repair(self, image, undo_file=None):
        """Forced repair answering yes: ``fsck.ext2 -fy [-z UNDO_FILE] IMAGE``."""
        if undo_file:
            return self._run([self.fsck_bin, "-fy", "-z", undo_file, image])
        return self._run([self.fsck_bin, "-fy", image])

    def verify_undo(self, undo_file, image):
        """Dry run of the undo file against the image: ``e2undo -n -v UNDO_FILE IMAGE``.

        Reads every saved block and checks its checksum and that the file
        belongs to the image as it is now; writes nothing.
        """
        return self._run([self.e2undo_bin, "-n", "-v", undo_file, image])

    def remount(self, mountpoint, access):
        if access not in ("ro", "rw"):
            raise ValueError("access must be ro or rw, not %r" % (access,))
        return self._run([self.mount_bin, "-o", "remount,%s" % access, mountpoint])

    def list_loops(self):
        return self._run([self.losetup_bin, "--list", "--json", "--output",
                          "NAME,MAJ:MIN,BACK-FILE,BACK-INO,BACK-MAJ:MIN"])


# ---------------------------------------------------------------------------
# Read the host
# ---------------------------------------------------------------------------

def find_loops(tool, sys_block="/sys/block"):
    """Loop devices via ``losetup`` (exact: inode and device), else sysfs (path only)."""
    result = None
    if tool.losetup_bin:
        try:
            result = tool.list_loops()
        except OSError:
            result = None
    if result is not None and result.rc == 0:
        try:
            return parse_losetup_json(result.stdout)
        except ValueError:
            pass
    return read_sysfs_loops(sys_block)


class ImageMissing(Exception):
    pass


class Facts(object):
    """What was read from the host before anything is decided."""

    def __init__(self, image, image_stat, boot, mount=None, mount_error=None, users=(),
                 backup_free=None, backup_error=None):
        self.image = image
        self.image_stat = image_stat
        self.boot = boot
        self.mount = mount
        self.mount_error = mount_error
        self.users = list(users)
        self.backup_free = backup_free
        self.backup_error = backup_error


def locate_state_mount(image, image_stat, mounts, state_mount=None):
    """Return ``(mount, error)``: the mount that holds the image, or why not."""
    real = os.path.realpath(image)
    dev = (os.major(image_stat.st_dev), os.minor(image_stat.st_dev))
    holder = find_mount_for(real, dev, mounts)
    where = holder.mountpoint if holder else "no mount found for it"
    if state_mount:
        wanted = os.path.realpath(state_mount)
        if not mounts_at(wanted, mounts):
            return None, ("state mount not found: %s is not a mount point (the image %s is on "
                          "%s); set state_mount to the mount point that holds the image"
                          % (state_mount, image, where))
        if holder is None or holder.mountpoint != wanted:
            return None, ("state mount mismatch: %s is not on the file system mounted at "
                          "state_mount %s (it is on %s)" % (image, state_mount, where))
    if holder is None:
        return None, ("state mount not found: no mount point in the mount table holds %s; "
                      "set state_mount to the mount point of the state partition" % image)
    if holder.mountpoint == "/":
        return None, ("%s is on the root file system: refusing to remount / read-write; the "
                      "image must be on its own state partition (such as "
                      "/run/initramfs/cos-state)" % image)
    return holder, None


def check_backup_dir(backup_dir, state_mountpoint):
    """Return ``(free bytes, error)`` for the backup directory."""
    if not backup_dir:
        return None, ("backup_dir is required for mode=repair: set it to a directory on "
                      "another file system with room for the image, or set backup: false "
                      "to repair without a backup")
    if not os.path.isdir(backup_dir):
        return None, ("backup_dir %s does not exist or is not a directory: create it first"
                      % backup_dir)
    real = os.path.realpath(backup_dir)
    if state_mountpoint and _is_under(real, state_mountpoint):
        return None, ("backup_dir %s is on the state mount %s that holds the image: choose "
                      "a directory on another file system" % (backup_dir, state_mountpoint))
    if is_read_only_fs(real) or not os.access(real, os.W_OK):
        return None, "backup_dir %s is not writable" % backup_dir
    return free_bytes(real), None


def gather_facts(tool, image, state_mount=None, markers_root="/run", backup_dir=None,
                 backup=False, mountinfo="/proc/self/mountinfo", sys_block="/sys/block"):
    """Read everything the decision needs. Raises :class:`ImageMissing`."""
    try:
        image_stat = os.stat(image)
    except OSError as exc:
        raise ImageMissing("image %s does not exist (%s); give the path of the OS image "
                           "file, e.g. /run/initramfs/cos-state/cOS/active.img"
                           % (image, exc.strerror))
    if not os.path.isfile(image):
        raise ImageMissing("image %s is not a regular file" % image)
    boot = detect_boot_mode(markers_root)
    mounts = read_mountinfo(mountinfo)
    mount, mount_error = locate_state_mount(image, image_stat, mounts, state_mount)
    users = mounted_image_users(image, image_stat, find_loops(tool, sys_block), mounts)
    facts = Facts(image, image_stat, boot, mount, mount_error, users)
    if backup:
        facts.backup_free, facts.backup_error = check_backup_dir(
            backup_dir, mount.mountpoint if mount else None)
    return facts


# ---------------------------------------------------------------------------
# Decide
# ---------------------------------------------------------------------------

def refusals(mode, facts, require_fallback_boot=True, backup=True, backup_dir=None):
    """Every reason not to go ahead, as messages that say what to do (empty: go)."""
    image = facts.image
    reasons = []
    for user in facts.users:
        reasons.append("the image is mounted: %s; unmount it first, e2fsck must not run "
                       "on a mounted file system" % user)
    if mode != "repair":
        return reasons
    if facts.mount_error:
        reasons.append(facts.mount_error)
    if require_fallback_boot:
        boot = facts.boot
        own = image_boot_mode(image)
        if boot.conflict:
            reasons.append("the boot markers disagree (%s): cannot tell which image this "
                           "system booted from; set require_fallback_boot: false only if you "
                           "know it did not boot from %s"
                           % (", ".join(path for dummy, path in boot.markers), image))
        elif boot.mode is None:
            reasons.append("no boot-mode marker (cos/ or elemental/ *_mode) was found, so it "
                           "cannot be proven that this system runs from a fallback image; set "
                           "require_fallback_boot: false only if you know it did not boot "
                           "from %s" % image)
        elif own is not None and boot.mode == own:
            reasons.append("booted from the image: this system runs from %s (marker %s); "
                           "reboot into the fallback (passive) or recovery system first"
                           % (image, boot.marker))
    if backup:
        if facts.backup_error:
            reasons.append(facts.backup_error)
        elif facts.backup_free is not None:
            need = backup_required_bytes(facts.image_stat)
            if facts.backup_free < need:
                reasons.append("backup_dir %s is too small: %s free, the backup of %s needs "
                               "%s; free space there or choose another backup_dir"
                               % (backup_dir, human_bytes(facts.backup_free), image,
                                  human_bytes(need)))
    return reasons


# ---------------------------------------------------------------------------
# Act
# ---------------------------------------------------------------------------

class RepairError(Exception):
    pass


_REPLAYED = re.compile(r"^Replayed block of size (\d+) from \d+ to \d+$", re.M)


def parse_undo_replay(output):
    """``(blocks, bytes)`` that ``e2undo -v`` says it (would have) replayed."""
    sizes = [int(size) for size in _REPLAYED.findall(output or "")]
    return len(sizes), sum(sizes)


def undo_file_path(image, backup_dir, now=None):
    """A new ``<image name>.<UTC time>.e2undo`` in ``backup_dir`` (never an existing name)."""
    base = backup_name(image, now)[:-len(".bak")] + ".e2undo"
    path = os.path.join(backup_dir, base)
    suffix = 1
    while os.path.lexists(path):
        path = os.path.join(backup_dir, "%s.%d" % (base, suffix))
        suffix += 1
    return path


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _verify_undo(tool, image, undo_file, report, started):
    """Check the undo file e2fsck wrote; fill ``report["backup"]`` or ``report["undo_error"]``."""
    if not os.path.isfile(undo_file):
        report["undo_error"] = ("e2fsck wrote no undo file %s: the image was repaired without a "
                                "way back" % undo_file)
        return
    _fsync_path(undo_file)
    _fsync_path(os.path.dirname(undo_file) or ".")
    res = tool.verify_undo(undo_file, image)
    if res.rc != 0:
        report["undo_error"] = ("the undo file %s does not verify (e2undo -n rc %d: %s): the image "
                                "was repaired without a verified way back"
                                % (undo_file, res.rc, " ".join(res.output.split())[-1000:]))
        return
    blocks, size = parse_undo_replay(res.output)
    undo_size = os.stat(undo_file).st_size
    report["backup"] = {"method": "undo", "path": undo_file, "size": undo_size, "sha256": None,
                        "written": undo_size, "seconds": round(time.monotonic() - started, 3),
                        "undo_blocks": blocks, "undo_bytes": size}


def run_repair(tool, image, mountpoint, was_ro, report, backup_dir=None, backup=True,
               backup_func=backup_image, method="copy"):
    """Back up → remount rw → ``fsck -fy`` → remount ro (finally) → re-check.

    ``method`` ``copy``: a verified sparse copy before anything is touched;
    ``undo``: e2fsck writes an undo file while it repairs (``-z``), verified
    with ``e2undo -n`` after the read-only remount (a failed verification is
    reported as ``report["undo_error"]``).

    ``report`` (a dict) is filled step by step, so the caller keeps the facts
    when an exception escapes. Only a remount done here is undone: a state
    mount that was read-write before stays read-write. Raises
    :class:`RepairError` when the backup or the rw remount fails (the image is
    untouched then); the rc of ``fsck -fy`` and of the re-check are reported,
    judging them is the caller's business.
    """
    if method not in BACKUP_METHODS:
        raise ValueError("backup method must be one of %s, not %r" % (", ".join(BACKUP_METHODS), method))
    report["remounted_rw"] = False
    report["remounted_ro"] = False
    undo_file = None
    started = time.monotonic()
    if backup and method == "copy":
        try:
            result = backup_func(image, backup_dir)
        except (BackupError, OSError) as exc:
            raise RepairError("backup failed, the image was not touched: %s" % exc)
        report["backup"] = dict(result.as_dict(), method="copy")
    elif backup:
        undo_file = undo_file_path(image, backup_dir)
        report["undo_file"] = undo_file
    if was_ro:
        res = tool.remount(mountpoint, "rw")
        if res.rc != 0:
            raise RepairError("mount -o remount,rw %s failed (rc %d): %s; the image was not "
                              "touched" % (mountpoint, res.rc, res.output.strip()))
        report["remounted_rw"] = True
    mtime_before = os.stat(image).st_mtime_ns
    try:
        res = tool.repair(image, undo_file=undo_file)
        report["repair_rc"] = res.rc
        report["repair_output"] = res.output
    finally:
        if report["remounted_rw"]:
            back = tool.remount(mountpoint, "ro")
            report["remounted_ro"] = back.rc == 0
            if back.rc != 0:
                report["remount_ro_error"] = ("mount -o remount,ro %s failed (rc %d): %s"
                                              % (mountpoint, back.rc, back.output.strip()))
        try:
            report["image_modified"] = os.stat(image).st_mtime_ns != mtime_before
        except OSError:
            report["image_modified"] = True
    if undo_file:
        _verify_undo(tool, image, undo_file, report, started)
    recheck = tool.check(image)
    report["recheck_rc"] = recheck.rc
    report["recheck_output"] = recheck.output
    return report
