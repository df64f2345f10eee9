# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: image_fsck repair (backup included) vs a bare ``fsck.ext2 -fy``.

    .venv/bin/python tests/bench/bench_image_repair.py [--runs N] [--data-mib M] [--keep]

Needs root (loop device, mounts). Builds once, under a work directory in /tmp:

* a 1 GiB ext4 image filled by ``mkfs.ext4 -d`` with ~M MiB of real files
  (default 400 MiB, deterministic random content, many directories, sizes
  spread like an OS tree), then corrupted with debugfs (``clri`` on a
  directory holding ~100 files, plus a block bitmap ``freeb``);
* a 2 GiB COS_STATE image, attached read-write to one loop device and mounted
  at /run/initramfs/cos-state inside a private mount namespace (the script
  re-executes itself under ``unshare -m --propagation private`` with a tmpfs
  on /run), as on a Harvester node booted from the fallback image.

Each run, for each cache state (cold: the image's pages dropped with
POSIX_FADV_DONTNEED before the timed part, as after a reboot; warm: the image
just read):

* ``copy``     the module run as Ansible runs it (``python image_fsck.py
               args.json``, mode=repair, backup_method=copy, the default):
               check, verified sparse backup with SHA256, remount rw,
               fsck -fy, remount ro, re-check;
* ``undo``     the same with backup_method=undo: no copy, ``fsck.ext2 -fy -z
               FILE`` writes e2fsck's undo file, ``e2undo -n`` verifies it;
* ``fsck``     the baseline: ``fsck.ext2 -fy`` on a fresh copy of the same
               corrupted image, in the same state file system;
* ``runbook``  the vendor runbook by hand: ``cp --sparse=always`` of the image to
               the backup directory, then ``fsck.ext2 -fy`` (no verification,
               no digest).

For each method two times are taken: the whole module process, and its
**repair step** - backup, remount rw, fsck -fy, remount ro (and, for undo,
the e2undo verification) - which is what "repair wall time, backup included"
compares with a bare ``fsck.ext2 -fy``. The step is timed in-process with the
module's own code (``run_repair``), up to the start of the re-check; the
whole process adds Python start-up, the forced read-only pre-check and the
re-check.

Copies are made before the clock starts. Prints the medians, the ratios to
the bare fsck (target <= 1.3), where the copy's time goes, and the floor any
digest-equal copy has (SHA256 of the image's size; cp of its data). Never
run by pytest; no timing assertion anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODULE = os.path.join(REPO, "plugins", "modules", "image_fsck.py")
COLLECTIONS = os.path.join(REPO, "collections")
STATE_MOUNT = "/run/initramfs/cos-state"
ACTIVE = STATE_MOUNT + "/cOS/active.img"
BASELINE = STATE_MOUNT + "/cOS/baseline.img"
ENV = dict(os.environ, LANG="C", LC_ALL="C")


def sh(argv, **kwargs):
    proc = subprocess.run(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, **kwargs)
    if proc.returncode != 0 and not kwargs.get("input"):
        raise RuntimeError("%s: rc %d\n%s%s" % (argv, proc.returncode, proc.stdout, proc.stderr))
    return proc


def make_tree(root, data_mib):
    """Deterministic OS-like tree: ~data_mib MiB in many small and some large files."""
    rnd = random.Random(2026)
    budget = data_mib << 20
    count = 0
    directory = 0
    while budget > 0:
        path = os.path.join(root, "usr", "lib", "pkg%03d" % (directory // 10), "d%04d" % directory)
        os.makedirs(path)
        for index in range(100):
            size = min(int(rnd.lognormvariate(8.6, 1.7)), 16 << 20, max(budget, 0))
            with open(os.path.join(path, "f%03d" % index), "wb") as handle:
                handle.write(rnd.randbytes(size))
            budget -= size
            count += 1
            if budget <= 0:
                break
        directory += 1
    # the directory clri will hit
    victim = os.path.join(root, "usr", "lib", "victim")
    os.makedirs(victim)
    for index in range(100):
        with open(os.path.join(victim, "m%03d.ko" % index), "wb") as handle:
            handle.write(rnd.randbytes(4096 + 97 * index))
    return count + 100


def build(workdir, data_mib):
    master = os.path.join(workdir, "master.img")
    if os.path.exists(master):
        return master
    tree = os.path.join(workdir, "tree")
    shutil.rmtree(tree, ignore_errors=True)
    started = time.monotonic()
    files = make_tree(tree, data_mib)
    partial = master + ".partial"
    sh(["mkfs.ext4", "-q", "-F", "-L", "COS_ACTIVE", "-d", tree, partial, "1G"])
    shutil.rmtree(tree)
    blocks = sh(["debugfs", "-R", "blocks /usr/lib/pkg000/d0000/f000", partial]).stdout.split()
    cmds = os.path.join(workdir, "corrupt.debugfs")
    with open(cmds, "w") as handle:
        handle.write("clri /usr/lib/victim\nfreeb %s 4\n" % blocks[0])
    sh(["debugfs", "-w", "-f", cmds, partial])
    rc = subprocess.run(["fsck.ext2", "-fn", partial], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, check=False).returncode
    if rc != 4:
        raise RuntimeError("corrupted master image: fsck.ext2 -fn rc %d, expected 4" % rc)
    os.rename(partial, master)
    st = os.stat(master)
    print("built %s: %d files, %d MiB allocated of %d MiB, in %.1f s"
          % (master, files, st.st_blocks * 512 >> 20, st.st_size >> 20, time.monotonic() - started))
    return master


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(4 << 20)
        while handle.readinto(buf):
            pass


def remount(access):
    sh(["mount", "-o", "remount,%s" % access, STATE_MOUNT])


def fresh_copy(master, dest):
    """Copy the corrupted master onto the state file system (made rw for that)."""
    remount("rw")
    try:
        if os.path.exists(dest):
            os.unlink(dest)
        sh(["cp", "--sparse=always", master, dest])
        sh(["sync", "-f", dest])
    finally:
        remount("ro")


def prepare(path, cache):
    if cache == "cold":
        drop_cache(path)
    else:
        warm(path)


def time_module(workdir, backups, cache, master, method):
    fresh_copy(master, ACTIVE)
    prepare(ACTIVE, cache)
    args = os.path.join(workdir, "args.json")
    with open(args, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {"mode": "repair", "backup_dir": backups,
                                           "backup_method": method}}, handle)
    env = dict(ENV, PYTHONPATH=COLLECTIONS)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, MODULE, args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    elapsed = time.monotonic() - started
    result = json.loads(proc.stdout)
    if (proc.returncode != 0 or not result.get("repaired") or result.get("state_mount_after") != "ro"
            or result.get("backup_method") != method):
        raise RuntimeError("module run failed: %s" % proc.stdout[-3000:])
    os.unlink(result["backup_path"])
    return elapsed, result["backup_seconds"]


def _import_utils():
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.clusterops.upgrade.plugins.module_utils import _fsck, _image_backup
    return _fsck, _image_backup


class _TimedRunner(object):
    """The module's command seam run with subprocess; notes when each command starts."""

    def __init__(self):
        self.starts = []
        self.seconds = {}

    def __call__(self, argv, env):
        started = time.monotonic()
        self.starts.append((list(argv), started))
        proc = subprocess.run(argv, env=dict(os.environ, **env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=False)
        key = _command_kind(argv)
        self.seconds[key] = self.seconds.get(key, 0.0) + time.monotonic() - started
        return proc.returncode, proc.stdout, proc.stderr


def _command_kind(argv):
    name = os.path.basename(argv[0])
    if name == "mount":
        return "remounts"
    if name == "e2undo":
        return "e2undo -n"
    if name == "fsck.ext2" and argv[1] == "-fy":
        return "fsck -fy" + (" -z" if "-z" in argv else "")
    return name + " " + argv[1]


def time_step(backups, cache, master, method):
    """The repair step alone, in-process: backup, remount rw, fsck -fy, remount ro
    (+ e2undo -n for undo), up to the start of the re-check."""
    fsck_utils, dummy = _import_utils()
    fresh_copy(master, ACTIVE)
    prepare(ACTIVE, cache)
    runner = _TimedRunner()
    tool = fsck_utils.FsckTool(runner, fsck=shutil.which("fsck.ext2"), mount=shutil.which("mount"),
                               e2undo=shutil.which("e2undo"))
    report = {}
    started = time.monotonic()
    fsck_utils.run_repair(tool, ACTIVE, STATE_MOUNT, True, report, backup_dir=backups, method=method)
    recheck = [t for argv, t in runner.starts if argv[1:] == ["-fn", ACTIVE]][-1]
    if report.get("repair_rc") != 1 or report.get("recheck_rc") != 0 or "backup" not in report:
        raise RuntimeError("repair step failed: %s" % dict((k, v) for k, v in report.items()
                                                           if not k.endswith("_output")))
    os.unlink(report["backup"]["path"])
    parts = dict(runner.seconds)
    parts.pop("fsck.ext2 -fn", None)  # the re-check, after the step
    if method == "copy":
        parts["backup copy"] = report["backup"]["seconds"]
    return recheck - started, parts


def time_fsck(cache, master):
    fresh_copy(master, BASELINE)
    remount("rw")
    try:
        prepare(BASELINE, cache)
        started = time.monotonic()
        rc = subprocess.run(["fsck.ext2", "-fy", BASELINE], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, check=False).returncode
        elapsed = time.monotonic() - started
    finally:
        remount("ro")
    if rc != 1:
        raise RuntimeError("baseline fsck.ext2 -fy rc %d, expected 1" % rc)
    return elapsed


def time_runbook(backups, cache, master):
    fresh_copy(master, BASELINE)
    prepare(BASELINE, cache)
    backup = os.path.join(backups, "runbook.bak")
    started = time.monotonic()
    sh(["cp", "--sparse=always", BASELINE, backup])
    remount("rw")
    try:
        rc = subprocess.run(["fsck.ext2", "-fy", BASELINE], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, check=False).returncode
    finally:
        remount("ro")
    elapsed = time.monotonic() - started
    os.unlink(backup)
    if rc != 1:
        raise RuntimeError("runbook fsck.ext2 -fy rc %d, expected 1" % rc)
    return elapsed


def backup_phases(workdir, master):
    """Where the copy's time goes (cold image), and the floor of any digest-equal copy."""
    dummy, ib = _import_utils()
    out = {}
    dest = os.path.join(workdir, "backups", "phases.bak")
    for variant in ("module", "copy_file_range"):
        fresh_copy(master, ACTIVE)
        drop_cache(ACTIVE)
        src = os.open(ACTIVE, os.O_RDONLY)
        dst = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            size = os.fstat(src).st_size
            t0 = time.monotonic()
            if variant == "module":
                written, ranges = ib.sparse_copy(src, dst, size)
            else:  # the kernel copies each data extent (no user-space buffer, no zero test)
                ranges = []
                try:
                    for start, end in ib.data_extents(src, size):
                        pos = start
                        while pos < end:
                            pos += os.copy_file_range(src, dst, end - pos, pos, pos)
                        ranges.append([start, end])
                except OSError as exc:
                    # EXDEV: the backup is never on the state partition, and between two
                    # file systems without a copy_file_range of their own (ext4) the
                    # kernel refuses it
                    out[variant] = {"error": "%s (errno %d)" % (exc.strerror, exc.errno)}
                    continue
                os.ftruncate(dst, size)
                written = sum(end - start for start, end in ranges)
            t1 = time.monotonic()
            os.fsync(dst)
            t2 = time.monotonic()
            ib.verify_and_hash(src, dst, size, ranges)
            t3 = time.monotonic()
        finally:
            os.close(src)
            os.close(dst)
            os.unlink(dest)
        if variant in out:
            continue
        out[variant] = {"copy": t1 - t0, "fsync": t2 - t1, "verify_sha256": t3 - t2,
                        "written_mib": written >> 20}
    # floors: hashing the image's size, and copying its data without any check
    zeros = bytes(64 << 20)
    t4 = time.monotonic()
    digest = hashlib.sha256()
    for dummy in range(size // len(zeros)):
        digest.update(zeros)
    out["sha256_of_image_size"] = time.monotonic() - t4
    fresh_copy(master, ACTIVE)
    drop_cache(ACTIVE)
    t5 = time.monotonic()
    sh(["cp", "--sparse=always", ACTIVE, dest])
    out["cp_sparse"] = time.monotonic() - t5
    os.unlink(dest)
    return out


def inside(workdir, runs, master):
    """Runs in the private mount namespace."""
    state = os.path.join(workdir, "state.img")
    backups = os.path.join(workdir, "backups")
    os.makedirs(backups, exist_ok=True)
    if os.path.exists(state):
        os.unlink(state)
    sh(["mkfs.ext4", "-q", "-F", "-L", "COS_STATE", state, "2G"])
    mounted = []
    loop = None
    try:
        sh(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", "/run"])
        mounted.append("/run")
        loop = sh(["losetup", "--find", "--show", state]).stdout.strip()
        os.makedirs(STATE_MOUNT)
        sh(["mount", "-o", "ro", loop, STATE_MOUNT])
        mounted.append(STATE_MOUNT)
        remount("rw")
        os.makedirs(os.path.dirname(ACTIVE))
        remount("ro")
        os.makedirs("/run/cos")
        open("/run/cos/passive_mode", "w").close()
        samples = {"phases": backup_phases(workdir, master)}
        for run in range(runs):
            for cache in ("cold", "warm"):
                times = {}
                for method in ("copy", "undo"):
                    times[method], times[method + "_backup"] = time_module(workdir, backups, cache,
                                                                           master, method)
                    times[method + "_step"], parts = time_step(backups, cache, master, method)
                    for part, value in parts.items():
                        samples.setdefault(cache, {}).setdefault("%s_part:%s" % (method, part), []).append(value)
                times["fsck"] = time_fsck(cache, master)
                times["runbook"] = time_runbook(backups, cache, master)
                for key, value in times.items():
                    samples.setdefault(cache, {}).setdefault(key, []).append(value)
                print("run %d %-4s fsck -fy %6.3f s | copy: step %6.3f s module %6.3f s | "
                      "undo: step %6.3f s module %6.3f s | runbook cp+fsck %6.3f s"
                      % (run + 1, cache, times["fsck"], times["copy_step"], times["copy"],
                         times["undo_step"], times["undo"], times["runbook"]), flush=True)
        return samples
    finally:
        for mountpoint in reversed(mounted):
            subprocess.run(["umount", mountpoint], check=False)
        if loop:
            subprocess.run(["losetup", "--detach", loop], check=False)
        if os.path.exists(state):
            os.unlink(state)


def report(samples, data_mib):
    print()
    load = " ".join("%.1f" % x for x in os.getloadavg())
    print("image: 1 GiB, ~%d MiB of files, clri on a directory of 100 files + freeb; "
          "medians of %d runs; load average at the end %s" % (data_mib, len(samples["cold"]["fsck"]), load))
    print("cold: the image's pages dropped before the timed part (as after a reboot); "
          "warm: just read")
    print("step = backup + remount rw + fsck -fy + remount ro (+ e2undo -n); module = the whole "
          "module process (adds Python, the forced pre-check and the re-check)")
    print("%-5s %8s %9s | %8s %8s %9s %9s | %8s %8s %9s %9s" % (
        "cache", "fsck s", "runbook s", "copy st", "copy mod", "st/fsck", "mod/fsck",
        "undo st", "undo mod", "st/fsck", "mod/fsck"))
    med = {}
    for cache in ("cold", "warm"):
        m = med[cache] = dict((key, statistics.median(values)) for key, values in samples[cache].items())
        print("%-5s %8.3f %9.3f | %8.3f %8.3f %8.2fx %8.2fx | %8.3f %8.3f %8.2fx %8.2fx" % (
            cache, m["fsck"], m["runbook"], m["copy_step"], m["copy"], m["copy_step"] / m["fsck"],
            m["copy"] / m["fsck"], m["undo_step"], m["undo"], m["undo_step"] / m["fsck"],
            m["undo"] / m["fsck"]))
    phases = samples["phases"]
    cold = med["cold"]
    print()
    for cache in ("cold", "warm"):
        for method in ("copy", "undo"):
            parts = sorted((key.split(":", 1)[1], value) for key, value in med[cache].items()
                           if key.startswith(method + "_part:"))
            print("%s step, %s (medians): %s" % (method, cache, ", ".join(
                "%s %.3f s" % (name, value) for name, value in parts)))
    print()
    for variant in ("module", "copy_file_range"):
        ph = phases[variant]
        if "error" in ph:
            print("copy phases (%s copy): not possible here: %s" % (variant, ph["error"]))
            continue
        print("copy phases (%s copy, one cold run, in-process): copy %.3f s (%d MiB written), fsync %.3f s, "
              "read back + compare + SHA256 %.3f s"
              % (variant, ph["copy"], ph["written_mib"], ph["fsync"], ph["verify_sha256"]))
    print("floors of a digest-equal copy: SHA256 over the image's 1 GiB alone %.3f s = %.1fx fsck; "
          "cp --sparse=always of the image alone (no check, no digest) %.3f s = %.1fx fsck"
          % (phases["sha256_of_image_size"], phases["sha256_of_image_size"] / cold["fsck"],
             phases["cp_sparse"], phases["cp_sparse"] / cold["fsck"]))
    print()
    for method, label in (("copy", "default, backup_method=copy"), ("undo", "backup_method=undo")):
        ratio = cold[method + "_step"] / cold["fsck"]
        print("ratio repair step/fsck, %s (cold, the case after a reboot): %.2fx - target <= 1.30x: %s"
              % (label, ratio, "met" if ratio <= 1.3 else "NOT met"))
    print("of which fsck.ext2 -fy -z alone (undo file written, no remount, no verification) / fsck "
          "(cold): %.2fx" % (cold["undo_part:fsck -fy -z"] / cold["fsck"]))
    print("whole module/fsck (cold): copy %.2fx, undo %.2fx"
          % (cold["copy"] / cold["fsck"], cold["undo"] / cold["fsck"]))


def main():
    parser = argparse.ArgumentParser(
        description="image_fsck repair (backup included) vs a bare fsck.ext2 -fy")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-mib", type=int, default=400)
    parser.add_argument("--workdir", default="/tmp/clusterops-bench-image-repair")
    parser.add_argument("--keep", action="store_true", help="keep the master image for next time")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_image_repair: needs root (loop device, mounts)")
    os.makedirs(opts.workdir, exist_ok=True)
    if opts.inside:
        master = os.path.join(opts.workdir, "master.img")
        samples = inside(opts.workdir, opts.runs, master)
        with open(os.path.join(opts.workdir, "samples.json"), "w") as handle:
            json.dump(samples, handle)
        return
    try:
        build(opts.workdir, opts.data_mib)
        rc = subprocess.run(["unshare", "-m", "--propagation", "private", "--", sys.executable,
                             os.path.abspath(__file__), "--inside", "--runs", str(opts.runs),
                             "--workdir", opts.workdir], check=False).returncode
        if rc != 0:
            sys.exit("bench_image_repair: the namespace part failed (rc %d)" % rc)
        with open(os.path.join(opts.workdir, "samples.json")) as handle:
            report(json.load(handle), opts.data_mib)
    finally:
        if not opts.keep:
            shutil.rmtree(opts.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
