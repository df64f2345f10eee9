# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durable, atomic file writes shared by the journal and the report writer.

A write goes to a temporary file in the destination's own directory, is
flushed and fsync'ed, renamed over the destination (``os.replace``) and the
directory is fsync'ed so the rename itself survives a power cut. A crash at
any point leaves either the old file or the new one, never a mix; the
temporary file is removed when the write fails.
"""

from __future__ import annotations

import errno
import os
import tempfile

FILE_MODE = 0o600
DIR_MODE = 0o700


def fsync_dir(path):
    """fsync a directory so a rename/unlink/create inside it is durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path, mode=DIR_MODE):
    """Create ``path`` and missing parents with ``mode``; existing ones are left alone.

    Returns the list of directories created, outermost first.
    """
    path = os.path.abspath(path)
    missing = []
    current = path
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise NotADirectoryError(errno.ENOTDIR, 'exists and is not a directory', current)
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        os.chmod(directory, mode)  # mkdir's mode is filtered by the umask
        fsync_dir(os.path.dirname(directory))
        created.append(directory)
    return created


def write_temp(directory, prefix, data, mode=FILE_MODE):
    """Write ``data`` (bytes) to a new fsync'ed temporary file in ``directory``; return its path."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix='.tmp', dir=directory)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def atomic_write(path, data, mode=FILE_MODE):
    """Replace ``path`` with ``data`` (bytes) atomically and durably, file mode ``mode``."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = write_temp(directory, '.' + os.path.basename(path) + '.', data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def create_exclusive(path, data, mode=FILE_MODE):
    """Create ``path`` holding ``data`` only if it does not exist yet.

    The content is complete before the name appears (temp file + hard link),
    so a reader never sees a half-written file. Returns False, writing
    nothing, when ``path`` already exists.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = write_temp(directory, '.' + os.path.basename(path) + '.', data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        _unlink_quietly(tmp)
    fsync_dir(directory)
    return True


def remove(path):
    """Unlink ``path`` durably; True if it existed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return True


def read_bytes(path):
    """The content of ``path``, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def needs_write(path, data, mode=FILE_MODE):
    """True unless ``path`` already holds exactly ``data`` with permission bits ``mode``."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return True
    if current.st_mode & 0o7777 != mode:
        return True
    return read_bytes(path) != data
