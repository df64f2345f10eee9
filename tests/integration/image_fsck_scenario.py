# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run image_fsck scenarios against real ext4 images in a private mount namespace.

Two halves:

* helpers used by the pytest side (``tests/integration/test_image_fsck.py``) to
  build and corrupt images with mkfs.ext4 / debugfs (no mount needed) and to
  start :func:`main` under ``unshare -m --propagation private``;
* :func:`main`, executed *inside* the namespace: a private tmpfs on ``/run``,
  the state image attached read-write with ``losetup`` and mounted read-only at
  ``/run/initramfs/cos-state`` (as on a Harvester node booted from the
  fallback image), boot markers under ``/run/cos``, then the module itself is
  run as a program (``python image_fsck.py args.json``), as Ansible would run
  it, or ansible-playbook against localhost, or ``e2undo`` with the undo file
  an earlier run wrote. After every run it records the
  image digest, the state mount's ro/rw and the backup directory. It prints one JSON document; the assertions live
  in the pytest file. Loop devices are always detached in ``finally``.

Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, "collections")
MODULE = os.path.join(REPO, "plugins", "modules", "image_fsck.py")
STATE_MOUNT = "/run/initramfs/cos-state"
ACTIVE = STATE_MOUNT + "/cOS/active.img"
C_ENV = {"LANG": "C", "LC_ALL": "C"}

# ---------------------------------------------------------------------------
# Image building (outside the namespace; no mounts)
# ---------------------------------------------------------------------------


def run(argv, check=True, **kwargs):
    env = dict(os.environ)
    env.update(C_ENV)
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: rc %d: %s%s" % (argv, proc.returncode, proc.stdout, proc.stderr))
    return proc


def make_tree(root):
    """A small OS-like tree: a few directories, a script, some binary files."""
    rnd = random.Random(42)
    for sub in ("etc/cos", "usr/sbin", "usr/lib/modules", "var/lib/rancher"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, "etc/hostname"), "w") as handle:
        handle.write("node-1\n")
    with open(os.path.join(root, "etc/cos/bootargs.cfg"), "w") as handle:
        handle.write("set kernel=/boot/vmlinuz\nset initramfs=/boot/initrd\n")
    script = os.path.join(root, "usr/sbin/sshd-gen-keys-start")
    with open(script, "w") as handle:
        handle.write("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o755)
    for index in range(40):
        with open(os.path.join(root, "usr/lib/modules/m%02d.ko" % index), "wb") as handle:
            handle.write(rnd.randbytes(1500 * (index + 1)))
    return root


def mkfs(image, srcdir, size, label):
    if os.path.exists(image):
        os.unlink(image)
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", srcdir, image, size])


def debugfs(image, requests):
    """Run debugfs write requests (a list of strings) against an image."""
    cmdfile = image + ".debugfs"
    with open(cmdfile, "w") as handle:
        handle.write("\n".join(requests) + "\n")
    try:
        run(["debugfs", "-w", "-f", cmdfile, image])
    finally:
        os.unlink(cmdfile)


def _inode_table_block(image):
    out = run(["dumpe2fs", image]).stdout
    block_size = None
    for line in out.splitlines():
        if line.startswith("Block size:"):
            block_size = int(line.split(":")[1])
        if "Inode table at " in line:
            first = line.split("Inode table at ")[1].split("-")[0]
            return int(first), block_size
    raise RuntimeError("no inode table in dumpe2fs output of %s" % image)


def _file_block(image, path):
    out = run(["debugfs", "-R", "blocks %s" % path, image]).stdout.split()
    return int(out[0])


# The corruption kinds of shared/LAB.md, each as a function of the image.
def corrupt(image, kind):
    if kind == "clri_dir":
        debugfs(image, ["clri /usr/lib/modules"])
    elif kind == "wrong_type":
        # a regular file whose mode says "socket"
        debugfs(image, ["set_inode_field /usr/sbin/sshd-gen-keys-start mode 0140755"])
    elif kind == "dir_to_file":
        debugfs(image, ["set_inode_field /etc/cos mode 0100644"])
    elif kind == "deleted_referenced":
        debugfs(image, ["set_inode_field /etc/hostname links_count 0",
                        "set_inode_field /etc/hostname dtime 1700000000",
                        "freei /etc/hostname"])
    elif kind == "freeb":
        block = _file_block(image, "/usr/lib/modules/m39.ko")
        debugfs(image, ["freeb %d 16" % block])
    elif kind == "inode_table_garbage":
        block, block_size = _inode_table_block(image)
        with open(image, "r+b") as handle:
            handle.seek(block * block_size)
            handle.write(random.Random(3).randbytes(4096))
    else:
        raise ValueError("unknown corruption kind %r" % kind)


CORRUPTIONS = ("clri_dir", "wrong_type", "dir_to_file", "deleted_referenced", "freeb",
               "inode_table_garbage")


def build_state_image(workdir, kind=None, active_size="8M", state_size="48M"):
    """active.img (corrupted with ``kind`` unless None) inside a COS_STATE image."""
    tree = make_tree(os.path.join(workdir, "tree"))
    state_src = os.path.join(workdir, "state-src")
    os.makedirs(os.path.join(state_src, "cOS"), exist_ok=True)
    active = os.path.join(state_src, "cOS", "active.img")
    mkfs(active, tree, active_size, "COS_ACTIVE")
    if kind:
        corrupt(active, kind)
    shutil.copyfile(active, os.path.join(state_src, "cOS", "passive.img"))
    state = os.path.join(workdir, "state.img")
    mkfs(state, state_src, state_size, "COS_STATE")
    return state, sha256(active)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_in_namespace(plan, timeout=120):
    """Run :func:`main` with ``plan`` under ``unshare -m --propagation private``."""
    plan_file = os.path.join(plan["workdir"], "plan.json")
    with open(plan_file, "w") as handle:
        json.dump(plan, handle)
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "--",
                           sys.executable, os.path.abspath(__file__), plan_file],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError("scenario failed (rc %d):\n%s\n%s"
                           % (proc.returncode, proc.stdout, proc.stderr))
    return json.loads(proc.stdout)


def loops_of(path):
    """Loop devices still attached to ``path`` (for the pytest side's cleanup)."""
    out = run(["losetup", "--associated", path, "--output", "NAME", "--noheadings"],
              check=False).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def detach_all(path):
    for dev in loops_of(path):
        run(["losetup", "--detach", dev], check=False)


# ---------------------------------------------------------------------------
# Inside the namespace
# ---------------------------------------------------------------------------


def _access(mountpoint):
    with open("/proc/self/mountinfo") as handle:
        found = None
        for line in handle:
            fields = line.split()
            if fields[4] == mountpoint:
                found = "ro" if "ro" in fields[5].split(",") else "rw"
    return found


def _listing(directory):
    """{name: sha256} of the backup directory; None when it does not exist."""
    if not directory or not os.path.isdir(directory):
        return None
    return dict((name, sha256(os.path.join(directory, name)))
                for name in sorted(os.listdir(directory)))


def _fake_fsck(bindir, rc):
    """``fsck.ext2`` that fails ``-fy`` with ``rc`` and runs the real one otherwise."""
    os.makedirs(bindir, exist_ok=True)
    real = shutil.which("fsck.ext2", path="/usr/sbin:/sbin:/usr/bin:/bin")
    path = os.path.join(bindir, "fsck.ext2")
    with open(path, "w") as handle:
        handle.write("#!/bin/sh\n"
                     "if [ \"$1\" = -fy ]; then\n"
                     "  echo 'fsck.ext2: simulated operational error' >&2\n"
                     "  exit %d\n"
                     "fi\n"
                     "exec %s \"$@\"\n" % (rc, real))
    os.chmod(path, 0o755)
    return bindir


def _run_module(workdir, name, args, check_mode=False, path_prepend=None):
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    args_file = os.path.join(workdir, "args-%s.json" % name)
    with open(args_file, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": module_args}, handle)
    env = dict(os.environ)
    env["PYTHONPATH"] = COLLECTIONS
    if path_prepend:
        env["PATH"] = path_prepend + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, MODULE, args_file], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"unparsable_stdout": proc.stdout}
    return {"exit": proc.returncode, "result": result, "stderr": proc.stderr[-4000:]}


def _run_playbook(workdir, name, playbook, extra_vars, inventory=None, check=False):
    """ansible-playbook with extra vars; by default against localhost (local connection)."""
    vars_file = os.path.join(workdir, "vars-%s.json" % name)
    with open(vars_file, "w") as handle:
        json.dump(extra_vars, handle)
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    })
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([playbook_bin, "-i", inventory or "localhost,", "-c", "local", playbook,
                           "-e", "@" + vars_file] + (["--check"] if check else []),
                          env=env, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return {"exit": proc.returncode, "output": proc.stdout[-12000:]}


def main(plan_file):
    with open(plan_file) as handle:
        plan = json.load(handle)
    workdir = plan["workdir"]
    mounted = []
    loops = []
    out = {"runs": {}}
    try:
        run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=755", "tmpfs", "/run"])
        mounted.append("/run")
        loop = run(["losetup", "--find", "--show", plan["state_image"]]).stdout.strip()
        loops.append(loop)
        os.makedirs(STATE_MOUNT)
        run(["mount", "-o", "rw" if plan.get("state_rw") else "ro", loop, STATE_MOUNT])
        mounted.append(STATE_MOUNT)
        for marker in plan.get("markers", []):
            path = os.path.join("/run", marker)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
        if plan.get("small_backup_dir"):
            os.makedirs(plan["small_backup_dir"], exist_ok=True)
            run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", plan["small_backup_dir"]])
            mounted.append(plan["small_backup_dir"])
        if plan.get("mount_image_at"):
            os.makedirs(plan["mount_image_at"], exist_ok=True)
            image_loop = run(["losetup", "--find", "--show", "--read-only", ACTIVE]).stdout.strip()
            loops.append(image_loop)
            run(["mount", "-o", "ro", image_loop, plan["mount_image_at"]])
            mounted.append(plan["mount_image_at"])
        out["image_sha_before"] = sha256(ACTIVE)
        out["state_before"] = _access(STATE_MOUNT)
        for step in plan["runs"]:
            prepend = None
            if step.get("fake_fsck_fy_rc") is not None:
                prepend = _fake_fsck(os.path.join(workdir, "fakebin"), step["fake_fsck_fy_rc"])
            if step.get("e2undo_from"):
                # put the image back with the undo file an earlier run wrote (remount rw for it)
                undo = out["runs"][step["e2undo_from"]]["result"]["backup_path"]
                run(["mount", "-o", "remount,rw", STATE_MOUNT])
                try:
                    proc = run(["e2undo", undo, ACTIVE], check=False)
                finally:
                    run(["mount", "-o", "remount,ro", STATE_MOUNT])
                record = {"exit": proc.returncode, "output": proc.stdout + proc.stderr}
                backup_dir = os.path.dirname(undo)
            elif step.get("playbook"):
                record = _run_playbook(workdir, step["name"], step["playbook"],
                                       step.get("extra_vars", {}), step.get("inventory"),
                                       step.get("check", False))
                backup_dir = step.get("extra_vars", {}).get("image_repair_backup_dir")
            else:
                record = _run_module(workdir, step["name"], step["args"],
                                     check_mode=step.get("check_mode", False),
                                     path_prepend=prepend)
                backup_dir = step["args"].get("backup_dir") or plan.get("watch_dir")
            record["image_sha"] = sha256(ACTIVE)
            record["state_access"] = _access(STATE_MOUNT)
            record["backups"] = _listing(backup_dir)
            out["runs"][step["name"]] = record
    finally:
        for mountpoint in reversed(mounted):
            subprocess.run(["umount", mountpoint], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for dev in reversed(loops):
            subprocess.run(["losetup", "--detach", dev], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
