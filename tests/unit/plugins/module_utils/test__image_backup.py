# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _image_backup as b

CHUNK = 64 * 1024


def _sparse_file(path, layout, size):
    """``layout``: list of (offset, bytes) written into a file truncated to ``size``."""
    with open(str(path), "wb") as handle:
        handle.truncate(size)
        for offset, data in layout:
            handle.seek(offset)
            handle.write(data)
    return str(path)


def _sha(path):
    return hashlib.sha256(open(str(path), "rb").read()).hexdigest()


LAYOUT = [
    (0, b"\x11" * 5000),                       # data at the start, short of a chunk
    (3 * CHUNK, b"\x00" * CHUNK),              # an allocated all-zero chunk
    (5 * CHUNK + 7, os.urandom(2 * CHUNK)),    # unaligned data across chunks
    (20 * CHUNK - 3, b"end"),                  # the last bytes
]
SIZE = 20 * CHUNK


def test_data_extents_sees_holes(tmp_path):
    path = _sparse_file(tmp_path / "img", [(0, b"a" * 4096), (10 * CHUNK, b"b" * 4096)], 16 * CHUNK)
    fd = os.open(path, os.O_RDONLY)
    try:
        extents = list(b.data_extents(fd, 16 * CHUNK))
        assert extents[0][0] == 0
        assert extents[-1][1] >= 10 * CHUNK + 4096
        assert sum(end - start for start, end in extents) < 16 * CHUNK  # holes seen
        assert list(b.data_extents(fd, 16 * CHUNK, 12 * CHUNK, 16 * CHUNK)) == []
    finally:
        os.close(fd)


def test_sparse_copy_keeps_content_skips_zero_chunks(tmp_path):
    src = _sparse_file(tmp_path / "src", LAYOUT, SIZE)
    dst = str(tmp_path / "dst")
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        written, ranges = b.sparse_copy(sfd, dfd, SIZE, CHUNK)
        digest = b.verify_and_hash(sfd, dfd, SIZE, ranges, CHUNK)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert os.path.getsize(dst) == SIZE
    assert _sha(dst) == _sha(src) == digest
    # the all-zero chunk at 3*CHUNK was not written
    assert all(not (start <= 3 * CHUNK < end) for start, end in ranges)
    assert written == sum(end - start for start, end in ranges)
    assert written < SIZE // 2
    assert os.stat(dst).st_blocks * 512 < SIZE // 2


def test_verify_detects_a_changed_byte(tmp_path):
    src = _sparse_file(tmp_path / "src", LAYOUT, SIZE)
    dst = str(tmp_path / "dst")
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        dummy, ranges = b.sparse_copy(sfd, dfd, SIZE, CHUNK)
        os.pwrite(dfd, b"\x99", 5 * CHUNK + 100)
        with pytest.raises(b.BackupError) as err:
            b.verify_and_hash(sfd, dfd, SIZE, ranges, CHUNK)
        assert str(err.value) == ("the backup differs from the image in the %d bytes at offset %d"
                                  % (CHUNK, 5 * CHUNK))
    finally:
        os.close(sfd)
        os.close(dfd)


def test_verify_detects_data_in_a_hole_and_size(tmp_path):
    src = _sparse_file(tmp_path / "src", LAYOUT, SIZE)
    dst = str(tmp_path / "dst")
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        dummy, ranges = b.sparse_copy(sfd, dfd, SIZE, CHUNK)
        os.pwrite(dfd, b"\x01", 12 * CHUNK + 5)
        with pytest.raises(b.BackupError) as err:
            b.verify_and_hash(sfd, dfd, SIZE, ranges, CHUNK)
        assert str(err.value) == ("the backup has data at offset %d where the image has none"
                                  % (12 * CHUNK))
        os.ftruncate(dfd, SIZE - 1)
        with pytest.raises(b.BackupError) as err:
            b.verify_and_hash(sfd, dfd, SIZE, ranges, CHUNK)
        assert str(err.value) == "backup size %d differs from image size %d" % (SIZE - 1, SIZE)
    finally:
        os.close(sfd)
        os.close(dfd)


def test_verify_hashes_zero_data_outside_written_ranges(tmp_path):
    # An allocated zero block in the backup outside the written ranges is fine
    # and its zeros count in the digest.
    src = _sparse_file(tmp_path / "src", LAYOUT, SIZE)
    dst = str(tmp_path / "dst")
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        dummy, ranges = b.sparse_copy(sfd, dfd, SIZE, CHUNK)
        os.pwrite(dfd, b"\x00" * 8192, 12 * CHUNK)
        assert b.verify_and_hash(sfd, dfd, SIZE, ranges, CHUNK) == _sha(src)
    finally:
        os.close(sfd)
        os.close(dfd)


def test_backup_image(tmp_path):
    src = _sparse_file(tmp_path / "active.img", LAYOUT, SIZE)
    backups = tmp_path / "bk"
    backups.mkdir()
    first = b.backup_image(src, str(backups), now=0, chunk=CHUNK)
    second = b.backup_image(src, str(backups), now=0, chunk=CHUNK)
    assert first.path == str(backups / "active.img.19700101T000000Z.bak")
    assert second.path == str(backups / "active.img.19700101T000000Z.bak.1")
    assert (first.size, first.sha256) == (SIZE, _sha(src))
    assert _sha(first.path) == _sha(second.path) == _sha(src)
    assert os.stat(first.path).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(str(backups))) == ["active.img.19700101T000000Z.bak",
                                                "active.img.19700101T000000Z.bak.1"]
    assert first.as_dict()["written"] == first.written


def test_backup_image_failure_leaves_no_partial(tmp_path, monkeypatch):
    src = _sparse_file(tmp_path / "active.img", LAYOUT, SIZE)
    backups = tmp_path / "bk"
    backups.mkdir()

    def broken(src_fd, dst_fd, size, ranges, chunk=b.CHUNK, from_disk=True):
        raise b.BackupError("the backup differs from the image")
    monkeypatch.setattr(b, "verify_and_hash", broken)
    with pytest.raises(b.BackupError):
        b.backup_image(src, str(backups), now=0, chunk=CHUNK)
    assert os.listdir(str(backups)) == []


def test_backup_image_missing_source_and_dir(tmp_path):
    with pytest.raises(b.BackupError) as err:
        b.backup_image(str(tmp_path / "none.img"), str(tmp_path))
    assert str(err.value) == "cannot open %s: No such file or directory" % (tmp_path / "none.img")
    src = _sparse_file(tmp_path / "active.img", LAYOUT, SIZE)
    with pytest.raises(b.BackupError) as err:
        b.backup_image(src, str(tmp_path / "nodir"), now=0)
    assert str(err.value) == ("cannot create %s: No such file or directory"
                              % (tmp_path / "nodir" / "active.img.19700101T000000Z.bak.partial"))


def test_sha256_file(tmp_path):
    src = _sparse_file(tmp_path / "x", LAYOUT, SIZE)
    assert b.sha256_file(src, chunk=CHUNK) == _sha(src)
