"""The lab's one disk: a sparse file with a GPT, two partitions per node,
attached to ONE loop device (partitions added with partx/BLKPG).

Per node:  <node>-state  ext4 "COS_STATE" holding cOS/active.img + cOS/passive.img
           <node>-log    ext4 "LAB_LOG"   mounted on the node's /var/log
Partitions of a loop device do not use loop device numbers, so the whole lab
holds a single loop device however many nodes it has.
"""

from __future__ import annotations

import binascii
import os
import shutil
import struct
import tempfile
import time
import uuid
from pathlib import Path

from . import config, proc

MiB = 1024 * 1024
SECTOR = 512
STATE_SIZE = 48 * MiB
LOG_SIZE = 64 * MiB
IMG_SIZE = 16 * MiB  # active.img / passive.img
LINUX_FS = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
ACTIVE_OS_VERSION = config.FROM_VERSION
PASSIVE_OS_VERSION = "6.7.3"


def _crc(b: bytes) -> int:
    return binascii.crc32(b) & 0xFFFFFFFF


def write_gpt(path: Path, size: int, parts: list) -> list:
    """Write a GPT to `path` (created sparse, `size` bytes).

    parts: [(name, size_bytes)]; returns [(name, offset_bytes, size_bytes)] in order.
    """
    total = size // SECTOR
    entries = bytearray(128 * 128)
    layout = []
    lba = 2048
    for i, (name, psize) in enumerate(parts):
        n = psize // SECTOR
        last = lba + n - 1
        if last > total - 34:
            raise ValueError(f"partition {name} does not fit in {size} bytes")
        struct.pack_into("<16s16sQQQ72s", entries, i * 128, LINUX_FS.bytes_le,
                         uuid.uuid4().bytes_le, lba, last, 0, name.encode("utf-16-le")[:72])
        layout.append((name, lba * SECTOR, n * SECTOR))
        lba = (last + 1 + 2047) // 2048 * 2048
    entries = bytes(entries)
    disk_guid = uuid.uuid4().bytes_le

    def header(current, backup, entries_lba):
        h = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0,
                                  current, backup, 34, total - 34, disk_guid, entries_lba,
                                  128, 128, _crc(entries)))
        struct.pack_into("<I", h, 16, _crc(bytes(h)))
        return bytes(h).ljust(SECTOR, b"\0")

    mbr = bytearray(SECTOR)
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                     min(total - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(bytes(mbr))
        f.write(header(1, total - 1, 2))
        f.write(entries)
        f.seek((total - 33) * SECTOR)
        f.write(entries)
        f.write(header(total - 1, 1, total - 33))
    return layout


def _sparse_copy_into(src: Path, dst: Path, offset: int) -> None:
    """Copy src into dst at offset, skipping all-zero blocks (dst stays sparse)."""
    block = 1 << 16
    zero = bytes(block)
    with open(src, "rb") as s, open(dst, "r+b") as d:
        pos = 0
        while True:
            chunk = s.read(block)
            if not chunk:
                break
            if chunk != zero[:len(chunk)]:
                d.seek(offset + pos)
                d.write(chunk)
            pos += len(chunk)


def _os_tree(root: Path, version: str, slot: str) -> None:
    """A small root filesystem to stand in for an OS image."""
    files = {
        "etc/os-release": (f'NAME="LabSphere OS"\nVERSION="{version}"\nVERSION_ID="{version}"\n'
                           f'ID=labsphere-os\nIMAGE_SLOT="{slot}"\n'),
        "etc/hostname": "localhost\n",
        "etc/fstab": "# managed by the OS image\n",
        "usr/sbin/sshd-gen-keys-start": "#!/bin/sh\nexec ssh-keygen -A\n",
        "usr/lib/systemd/system/sshd.service": "[Service]\nExecStart=/usr/sbin/sshd -D\n",
        "usr/lib/os-image/VERSION": version + "\n",
        "boot/vmlinuz": "kernel " + version + "\n" * 2000,
        "boot/initrd": "initrd " + version + "\n" * 4000,
    }
    for i in range(40):
        files[f"usr/share/labsphere-os/data/file{i:02d}.txt"] = f"{version} {i}\n" * (50 + i * 10)
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "usr/sbin/sshd-gen-keys-start").chmod(0o755)
    for d in ("var/lib", "home", "root", "tmp", "run", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)


def mkfs(image: Path, size: int, label: str, tree: Path | None) -> None:
    with open(image, "wb") as f:
        f.truncate(size)
    argv = ["mkfs.ext4", "-q", "-F", "-L", label, "-E", "nodiscard"]
    if tree is not None:
        argv += ["-d", str(tree)]
    proc.run(argv + [str(image)])


def build_os_images(work: Path) -> tuple:
    """active.img and passive.img: small ext4 images with an OS-like tree."""
    active, passive = work / "active.img", work / "passive.img"
    for img, version, slot, label in ((active, ACTIVE_OS_VERSION, "active", "COS_ACTIVE"),
                                      (passive, PASSIVE_OS_VERSION, "passive", "COS_PASSIVE")):
        tree = work / f"tree-{slot}"
        _os_tree(tree, version, slot)
        mkfs(img, IMG_SIZE, label, tree)
        shutil.rmtree(tree)
    return active, passive


def build_disk(path: Path, nodes: list) -> dict:
    """Create the lab disk; returns {node: {"state": (offset,size), "log": (...)}}."""
    parts = []
    for n in nodes:
        parts += [(f"{n}-state", STATE_SIZE), (f"{n}-log", LOG_SIZE)]
    size = 2 * MiB + sum(s for _name, s in parts) + 2 * MiB
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = write_gpt(path, size, parts)
    result = {}
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="disk-build-") as tmp:
        work = Path(tmp)
        active, passive = build_os_images(work)
        state_tree = work / "state"
        (state_tree / "cOS").mkdir(parents=True)
        shutil.copy(active, state_tree / "cOS" / "active.img")
        shutil.copy(passive, state_tree / "cOS" / "passive.img")
        (state_tree / "grub_oem_env").write_text("# lab\n")
        state_img, log_img = work / "state.img", work / "log.img"
        mkfs(state_img, STATE_SIZE, "COS_STATE", state_tree)
        mkfs(log_img, LOG_SIZE, "LAB_LOG", None)
        for idx, n in enumerate(nodes):
            _sparse_copy_into(state_img, path, layout[2 * idx][1])
            _sparse_copy_into(log_img, path, layout[2 * idx + 1][1])
            # Each node gets 2 partitions: numbers 2i+1 (state) and 2i+2 (log).
            result[n] = {"state": 2 * idx + 1, "log": 2 * idx + 2}
        # The pristine active.img, for `labctl reset-active-img`.
        shutil.copy(active, path.parent / "active.img.pristine")
    return result


def attach(path: Path, partitions: int, timeout: float = 10.0) -> str:
    """Attach `path` read-write to a free loop device with partition scan."""
    existing = attached_to(path)
    if existing:
        return existing[0]
    free = free_loops()
    if len(free) < 3:
        raise SystemExit(f"only {len(free)} free loop device(s) ({', '.join(free) or 'none'}): "
                         "the lab needs one and leaves at least two for others; "
                         "detach unused ones (losetup -a) and retry")
    dev = proc.run(["losetup", "--find", "--show", "--partscan", str(path)]).stdout.strip()
    # This kernel has no partition-table parsers: partx reads the GPT in user
    # space and adds the partitions with BLKPG (they vanish on detach).
    try:
        proc.run(["partx", "--add", dev])
    except proc.CommandError:
        detach(dev)
        raise
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(f"{dev}p{i}") for i in range(1, partitions + 1)):
        if time.monotonic() > deadline:
            detach(dev)
            raise SystemExit(f"{dev}: partitions did not appear within {timeout:.0f}s")
        time.sleep(0.05)
    return dev


def attached_to(path: Path) -> list:
    """Loop devices backed by `path`, even if the file was deleted meanwhile."""
    devs = []
    sys_block = Path("/sys/block")
    for d in sorted(sys_block.glob("loop*")):
        try:
            backing = (d / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue
        if backing == str(path) or backing == f"{path} (deleted)":
            devs.append(f"/dev/{d.name}")
    return devs


def free_loops() -> list:
    used = set()
    out = proc.run(["losetup", "-a", "-O", "NAME", "-n"], check=False).stdout
    for line in out.splitlines():
        used.add(line.strip())
    devs = sorted(p for p in os.listdir("/dev") if p.startswith("loop") and p[4:].isdigit())
    return [f"/dev/{d}" for d in devs if f"/dev/{d}" not in used]


def detach(dev: str) -> None:
    proc.run(["losetup", "-d", dev], check=False)


def remove_stale_partition_nodes(dev: str) -> None:
    """Drop /dev/loopNpM nodes the kernel no longer knows (devtmpfs may keep
    them when a partition was still open at detach time)."""
    base = os.path.basename(dev)
    known = set()
    with open("/proc/partitions") as f:
        for line in f.read().splitlines()[2:]:
            parts = line.split()
            if parts:
                known.add(parts[-1])
    for name in os.listdir("/dev"):
        if name.startswith(base + "p") and name[len(base) + 1:].isdigit() and name not in known:
            try:
                os.unlink(f"/dev/{name}")
            except FileNotFoundError:
                pass
