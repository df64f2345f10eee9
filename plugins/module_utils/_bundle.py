# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upgrade bundles: safe inspection and extraction, staging, space, host mapping.

Plain functions, no AnsibleModule. Used by the ``bundle_stage`` and
``free_space`` modules and the ``bundle_plan`` filter.

Safety rules for members (all checked before anything is written):

* the name is relative, holds no ``..`` component, no NUL byte and no
  backslash, and is not the staging marker;
* no two members land on the same path, and no member sits below a member
  that is a file or a symbolic link (nothing is ever written through a link);
* a symbolic link is relative and, resolved inside the archive (following the
  archive's own links), stays inside the staging directory;
* a hard link points to an earlier regular-file member;
* device files, FIFOs, sockets and unknown member types are refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib

from ansible_collections.clusterops.upgrade.plugins.module_utils._checksum import (
    archive_kind,
)

MARKER = '.clusterops-bundle.json'
MARKER_FORMAT = 1
_COPY_BLOCK = 1 << 20
_FS_BLOCK = 4096
_LINK_TARGET_LIMIT = 4096
_MAX_LINK_DEPTH = 40

KIND_FILE = 'file'
KIND_DIR = 'dir'
KIND_SYMLINK = 'symlink'
KIND_HARDLINK = 'hardlink'


class BundleError(Exception):
    """A bundle, a staging directory or a plan that must not be used."""


class Member(object):
    """One archive member, as the checks and the extraction see it."""

    __slots__ = ('raw_name', 'name', 'kind', 'size', 'target', 'mode', 'mtime')

    def __init__(self, raw_name, kind, size=0, target=None, mode=None, mtime=None):
        self.raw_name = raw_name
        self.name = None          # normalized by check_members()
        self.kind = kind
        self.size = size
        self.target = target
        self.mode = mode
        self.mtime = mtime

    def key(self):
        return (self.raw_name, self.kind, self.size, self.target)

    def __repr__(self):
        return 'Member(%r, %r, %r, %r)' % (self.raw_name, self.kind, self.size, self.target)


# ------------------------------------------------------------------ reading

def stage_name(path):
    """The directory name a bundle is staged under: its file name without the archive suffix."""
    base = os.path.basename(path)
    kind, _compression = archive_kind(base)
    if kind is None:
        raise BundleError("'%s' is not a bundle archive: the name must end in .zip, .tar, .tar.gz, "
                          ".tgz, .tar.bz2, .tbz2, .tar.xz or .txz" % base)
    lower = base.lower()
    name = ''
    for suffix in ('.tar.gz', '.tar.bz2', '.tar.xz', '.zip', '.tar', '.tgz', '.tbz2', '.tbz', '.txz'):
        if lower.endswith(suffix):
            name = base[:-len(suffix)]
            break
    if not name or name.startswith('.'):
        raise BundleError("'%s' gives an empty or hidden staging name" % base)
    return name


def _zip_member(archive, info):
    mode = (info.external_attr >> 16) & 0xFFFF
    is_unix = info.create_system == 3 and mode != 0
    try:
        mtime = time.mktime(info.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        mtime = None
    if is_unix:
        fmt = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            if info.file_size > _LINK_TARGET_LIMIT:
                return Member(info.filename, 'invalid', target='symlink target longer than %d bytes'
                              % _LINK_TARGET_LIMIT)
            target = archive.read(info).decode('utf-8', 'surrogateescape')
            return Member(info.filename, KIND_SYMLINK, 0, target, mode & 0o777, mtime)
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            return Member(info.filename, 'device', mode=mode & 0o777)
        if stat.S_ISFIFO(mode):
            return Member(info.filename, 'fifo', mode=mode & 0o777)
        if stat.S_ISSOCK(mode):
            return Member(info.filename, 'socket', mode=mode & 0o777)
        if stat.S_ISDIR(mode) or info.filename.endswith('/'):
            return Member(info.filename, KIND_DIR, 0, None, mode & 0o777, mtime)
        if fmt not in (0, stat.S_IFREG):
            return Member(info.filename, 'unknown type 0o%o' % fmt)
        return Member(info.filename, KIND_FILE, info.file_size, None, mode & 0o777, mtime)
    if info.filename.endswith('/'):
        return Member(info.filename, KIND_DIR, 0, None, None, mtime)
    return Member(info.filename, KIND_FILE, info.file_size, None, None, mtime)


def _tar_member(info):
    if info.isreg():
        kind = KIND_FILE
    elif info.isdir():
        kind = KIND_DIR
    elif info.issym():
        kind = KIND_SYMLINK
    elif info.islnk():
        kind = KIND_HARDLINK
    elif info.ischr() or info.isblk():
        kind = 'device'
    elif info.isfifo():
        kind = 'fifo'
    else:
        kind = 'unknown type %r' % info.type
    target = info.linkname if kind in (KIND_SYMLINK, KIND_HARDLINK) else None
    size = info.size if kind == KIND_FILE else 0
    return Member(info.name, kind, size, target, info.mode & 0o777, info.mtime)


def read_members(path):
    """List the members of a zip or tar bundle (reading the whole archive)."""
    kind, _compression = archive_kind(path)
    try:
        if kind == 'zip':
            with zipfile.ZipFile(path) as archive:
                return [_zip_member(archive, info) for info in archive.infolist()]
        if kind == 'tar':
            with tarfile.open(path, 'r:*') as archive:
                return [_tar_member(info) for info in archive.getmembers()]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename:
            raise BundleError('cannot read %s: %s' % (path, exc.strerror))
        raise BundleError('%s is not a readable %s archive: %s' % (path, kind, exc))
    raise BundleError("'%s' is not a bundle archive (.zip or .tar[.gz|.bz2|.xz])" % os.path.basename(path))


# ------------------------------------------------------------------- checks

def _normalize(raw):
    """Return the normalized relative name, or raise ValueError saying why not."""
    if not raw or '\x00' in raw:
        raise ValueError('empty name or NUL byte')
    if '\\' in raw:
        raise ValueError('backslash in the name')
    if raw.startswith('/') or re.match(r'^[A-Za-z]:', raw):
        raise ValueError('absolute path')
    parts = raw.split('/')
    if '..' in parts:
        raise ValueError("'..' component escapes the staging directory")
    parts = [p for p in parts if p not in ('', '.')]
    return '/'.join(parts)


def _resolve(parts, links, depth=0):
    """Resolve a relative path inside the archive; None if it leaves it."""
    if depth > _MAX_LINK_DEPTH:
        return None
    stack = []
    for part in parts:
        if part in ('', '.'):
            continue
        if part == '..':
            if not stack:
                return None
            stack.pop()
            continue
        stack.append(part)
        target = links.get('/'.join(stack))
        if target is not None:
            if target.startswith('/'):
                return None
            resolved = _resolve(stack[:-1] + target.split('/'), links, depth + 1)
            if resolved is None:
                return None
            stack = resolved
    return stack


def check_members(members):
    """Normalize member names in place; return the list of problems (empty: safe)."""
    problems = []
    seen = {}
    links = {}
    kinds = {}
    for member in members:
        label = "member '%s'" % member.raw_name
        try:
            name = _normalize(member.raw_name)
        except ValueError as exc:
            problems.append('%s: %s' % (label, exc))
            continue
        if not name:
            if member.kind == KIND_DIR:
                member.name = ''
                continue
            problems.append('%s: does not name anything below the staging directory' % label)
            continue
        member.name = name
        if member.kind not in (KIND_FILE, KIND_DIR, KIND_SYMLINK, KIND_HARDLINK):
            detail = member.target if member.kind == 'invalid' else (
                '%s members are not allowed in a bundle' % member.kind)
            problems.append('%s: %s' % (label, detail))
            continue
        if name == MARKER or name.startswith(MARKER + '/'):
            problems.append('%s: the name is reserved for the staging marker' % label)
            continue
        if name in seen:
            if not (member.kind == KIND_DIR and kinds[name] == KIND_DIR):
                problems.append("%s: lands on the same path as member '%s'" % (label, seen[name]))
            continue
        seen[name] = member.raw_name
        kinds[name] = member.kind
        if member.kind == KIND_SYMLINK:
            links[name] = member.target or ''
    for member in members:
        if not member.name or member.name not in kinds:
            continue
        label = "member '%s'" % member.raw_name
        parts = member.name.split('/')
        for depth in range(1, len(parts)):
            parent = '/'.join(parts[:depth])
            if kinds.get(parent) in (KIND_FILE, KIND_SYMLINK, KIND_HARDLINK):
                problems.append("%s: lies below '%s', which is a %s, not a directory" % (
                    label, parent, kinds[parent]))
                break
        if member.kind == KIND_SYMLINK:
            target = member.target or ''
            if not target or '\x00' in target:
                problems.append('%s: symlink with an empty target' % label)
            elif target.startswith('/'):
                problems.append("%s: symlink to the absolute path '%s' points outside the staging "
                                'directory' % (label, target))
            elif _resolve(parts[:-1] + target.split('/'), links) is None:
                problems.append("%s: symlink to '%s' points outside the staging directory" % (label, target))
        elif member.kind == KIND_HARDLINK:
            try:
                target = _normalize(member.target or '')
            except ValueError as exc:
                problems.append("%s: hard link to '%s': %s" % (label, member.target, exc))
                continue
            if kinds.get(target) != KIND_FILE or _index(members, target) > _index(members, member.name):
                problems.append("%s: hard link to '%s', which is not an earlier regular file of the "
                                'bundle' % (label, member.target))
    return problems


def _index(members, name):
    for number, member in enumerate(members):
        if member.name == name:
            return number
    return len(members)


def extracted_bytes(members):
    """Disk space the extraction needs: sizes rounded up to 4 KiB, plus a block per entry."""
    total = 0
    for member in members:
        if member.kind == KIND_FILE:
            total += (member.size + _FS_BLOCK - 1) // _FS_BLOCK * _FS_BLOCK
        total += _FS_BLOCK if member.kind == KIND_DIR else 0
    return total + _FS_BLOCK


def inspect_bundle(path):
    """Read and check a bundle; return ``(members, problems)``."""
    members = read_members(path)
    return members, check_members(members)


# ------------------------------------------------------------------- space

def nearest_existing(path):
    """The path itself or its closest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def space_report(requirements, margin=0, statvfs=os.statvfs):
    """Group byte requirements by filesystem and compare with the free space.

    ``requirements``: list of dicts ``{'path', 'bytes', 'what'}``; ``margin`` is
    added once per filesystem. Returns a list of dicts, one per filesystem, in
    first-seen order: ``paths``, ``checked`` (the existing directory whose
    filesystem was measured), ``needed``, ``available``, ``enough`` and
    ``breakdown`` (what the bytes are for, the margin last).
    """
    groups = []
    by_dev = {}
    for req in requirements:
        anchor = nearest_existing(req['path'])
        dev = os.stat(anchor).st_dev
        group = by_dev.get(dev)
        if group is None:
            vfs = statvfs(anchor)
            group = {'paths': [], 'checked': anchor, 'needed': 0,
                     'available': vfs.f_bavail * vfs.f_frsize, 'breakdown': []}
            by_dev[dev] = group
            groups.append(group)
        if req['path'] not in group['paths']:
            group['paths'].append(req['path'])
        group['needed'] += int(req['bytes'])
        group['breakdown'].append('%s %d' % (req.get('what') or req['path'], int(req['bytes'])))
    for group in groups:
        group['needed'] += margin
        group['breakdown'].append('margin %d' % margin)
        group['enough'] = group['available'] >= group['needed']
    return groups


def space_problems(report):
    """Messages for each filesystem of a space_report() without enough room."""
    out = []
    for group in report:
        if group['enough']:
            continue
        out.append('not enough free space for %s (filesystem of %s): needs %d bytes (%s), %d available' % (
            ', '.join(group['paths']), group['checked'], group['needed'],
            ' + '.join(group['breakdown']), group['available']))
    return out


# ------------------------------------------------------------------ staging

def read_marker(dest):
    """``None`` when ``dest`` does not exist, else the marker dict (``{}`` if absent/unreadable)."""
    if not os.path.lexists(dest):
        return None
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise BundleError('%s exists and is not a directory; remove it or choose another staging '
                          'directory' % dest)
    try:
        with open(os.path.join(dest, MARKER), 'rb') as handle:
            data = json.loads(handle.read().decode('utf-8'))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stage_decision(dest, checksum):
    """``'present'`` (already staged with this checksum), ``'create'`` or ``'replace'``."""
    marker = read_marker(dest)
    if marker is None:
        return 'create'
    if not marker:
        raise BundleError('%s exists but was not staged by clusterops.upgrade.bundle_stage (no %s); '
                          'remove it or choose another staging directory' % (dest, MARKER))
    if marker.get('checksum') == checksum:
        return 'present'
    return 'replace'


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_stream(source, path, size, mode):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(path, flags, 0o600)
    written = 0
    with os.fdopen(fd, 'wb') as out:
        while True:
            block = source.read(_COPY_BLOCK)
            if not block:
                break
            written += len(block)
            if written > size:
                break
            out.write(block)
        out.flush()
        os.fchmod(out.fileno(), mode)
        os.fsync(out.fileno())
    if written != size:
        raise BundleError("member '%s' holds %d bytes, its header says %d" % (os.path.basename(path), written, size))


class _Extractor(object):
    """Write checked members below ``root`` (a fresh directory)."""

    def __init__(self, root):
        self.root = root
        self.dirs = []

    def path(self, member):
        return os.path.join(self.root, *member.name.split('/'))

    def parent(self, member):
        target = os.path.dirname(self.path(member))
        missing = []
        probe = target
        while not os.path.isdir(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        for path in reversed(missing):
            os.mkdir(path, 0o700)
            self.dirs.append((path, 0o755, None))
        return target

    def put(self, member, source=None):
        if not member.name:
            return
        path = self.path(member)
        if member.kind == KIND_DIR:
            if not os.path.isdir(path):
                self.parent(member)
                os.mkdir(path, 0o700)
            self.dirs = [d for d in self.dirs if d[0] != path]
            self.dirs.append((path, member.mode if member.mode else 0o755, member.mtime))
            return
        self.parent(member)
        if member.kind == KIND_FILE:
            _write_stream(source, path, member.size, member.mode if member.mode else 0o644)
        elif member.kind == KIND_SYMLINK:
            os.symlink(member.target, path)
        elif member.kind == KIND_HARDLINK:
            os.link(os.path.join(self.root, *_normalize(member.target).split('/')), path)
            return
        if member.mtime is not None:
            try:
                os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
            except (NotImplementedError, OSError):
                pass

    def finish(self):
        for path, mode, mtime in sorted(self.dirs, key=lambda d: -d[0].count(os.sep)):
            os.chmod(path, mode)
            if mtime is not None:
                os.utime(path, (mtime, mtime))


def extract(src, members, root):
    """Extract the checked ``members`` of ``src`` into the fresh directory ``root``.

    The archive is read again; every member must equal the checked list, so a
    bundle swapped between the check and the extraction is refused.
    """
    kind, _compression = archive_kind(src)
    writer = _Extractor(root)
    expected = list(members)
    try:
        if kind == 'zip':
            with zipfile.ZipFile(src) as archive:
                infos = archive.infolist()
                _same(expected, [_zip_member(archive, info) for info in infos])
                for member, info in zip(expected, infos):
                    if member.kind == KIND_FILE:
                        with archive.open(info) as source:
                            writer.put(member, source)
                    else:
                        writer.put(member)
        else:
            with tarfile.open(src, 'r|*') as archive:
                number = 0
                for info in archive:
                    if number >= len(expected) or _tar_member(info).key() != expected[number].key():
                        raise BundleError("%s changed since it was checked (member '%s')" % (src, info.name))
                    member = expected[number]
                    number += 1
                    if member.kind == KIND_FILE:
                        writer.put(member, archive.extractfile(info))
                    else:
                        writer.put(member)
                if number != len(expected):
                    raise BundleError('%s changed since it was checked (%d members instead of %d)' % (
                        src, number, len(expected)))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, NotImplementedError) as exc:
        raise BundleError('%s is damaged: %s' % (src, exc))
    writer.finish()


def _same(expected, actual):
    if [m.key() for m in expected] != [m.key() for m in actual]:
        raise BundleError('the bundle changed since it was checked')


def stage(src, dest, members, marker):
    """Extract into a temporary sibling of ``dest`` and rename it into place.

    ``marker`` (a dict) is written into the new tree before the rename, so a
    directory with a marker is always complete.
    """
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    name = os.path.basename(os.path.abspath(dest))
    tmp = tempfile.mkdtemp(prefix='.%s.stage-' % name, dir=parent)
    old = None
    try:
        extract(src, members, tmp)
        data = json.dumps(marker, sort_keys=True, indent=2).encode('utf-8') + b'\n'
        fd = os.open(os.path.join(tmp, MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o755)
        _fsync_dir(tmp)
        if os.path.lexists(dest):
            old = tempfile.mkdtemp(prefix='.%s.old-' % name, dir=parent)
            os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError:
            if old is not None:
                os.rename(old, dest)
                old = None
            raise
        tmp = None
        _fsync_dir(parent)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------ host mapping

def plan_bundles(names, group_map, hosts):
    """Map bundles to groups and hosts; raise BundleError listing every problem.

    ``names``: bundle file names. ``group_map``: ``{regex: group}``; a bundle
    goes to the group of every pattern it matches (``re.search``). ``hosts``:
    ``{host: {'groups': [...], 'bundles': None or [names]}}``; ``bundles``
    overrides which of the mapped bundles the host gets.

    Returns ``{'bundles': {name: [groups]}, 'hosts': {host: [names]}}``.
    """
    problems = []
    compiled = []
    for pattern in sorted(group_map):
        try:
            compiled.append((re.compile(pattern), str(group_map[pattern]), pattern))
        except re.error as exc:
            problems.append("bundle_group_map pattern '%s' is not a valid regular expression: %s" % (pattern, exc))
    if problems:
        raise BundleError('; '.join(problems))
    bundle_groups = {}
    for name in names:
        groups = sorted(set(group for regex, group, _p in compiled if regex.search(name)))
        if not groups and compiled:
            problems.append("bundle '%s' matches no pattern of bundle_group_map (%s): rename it to the "
                            "vendor's naming or add a pattern for it" % (
                                name, ', '.join("'%s' -> %s" % (p, g) for _r, g, p in compiled)))
        bundle_groups[name] = groups
    all_groups = sorted(set(g for groups in bundle_groups.values() for g in groups))
    host_bundles = {}
    for host in sorted(hosts):
        info = hosts[host] or {}
        host_groups = set(info.get('groups') or [])
        wanted = info.get('bundles')
        if wanted is None:
            mine = [n for n in names if host_groups.intersection(bundle_groups.get(n, []))]
        else:
            if isinstance(wanted, str):
                wanted = [wanted]
            mine = []
            for name in wanted:
                name = os.path.basename(str(name))
                if name not in bundle_groups:
                    problems.append("host '%s': bundle_host_bundles names '%s', which is not one of the "
                                    'bundles being staged (%s)' % (host, name, ', '.join(names)))
                elif not host_groups.intersection(bundle_groups[name]):
                    problems.append("host '%s' is in groups [%s], but bundle '%s' is for %s: refusing to "
                                    'stage a bundle meant for another role' % (
                                        host, ', '.join(sorted(host_groups)), name,
                                        ', '.join(bundle_groups[name]) or 'no group'))
                else:
                    mine.append(name)
        if not mine and wanted is None:
            problems.append("host '%s' is in none of the groups the bundles map to (%s); its groups: [%s]. "
                            'Add it to one of them or leave it out of the play' % (
                                host, ', '.join(all_groups) or 'none', ', '.join(sorted(host_groups))))
        host_bundles[host] = mine
    if problems:
        raise BundleError('; '.join(problems))
    return {'bundles': bundle_groups, 'hosts': host_bundles}
