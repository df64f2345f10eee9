# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_bundle: malicious archives built in tmp_path are refused before anything is
written; staging is atomic (a failure leaves nothing behind) and idempotent;
free space and the bundle -> host plan give messages naming what is wrong."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import zipfile

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _bundle as b

RPM = b'\xed\xab\xee\xdb' + b'rpm payload ' * 4000


# ------------------------------------------------------------------ builders

def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    """entries: (name, data, unix mode or None). A symlink is mode S_IFLNK with data = target."""
    with zipfile.ZipFile(str(path), 'w', compression) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 6, 7, 8, 10))
            info.compress_type = compression
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            else:
                info.create_system = 0  # made on Windows: no unix mode bits
            archive.writestr(info, data)
    return str(path)


def make_tar(path, entries, mode='w:gz'):
    """entries: (name, type, data or linkname, mode)."""
    with tarfile.open(str(path), mode) as archive:
        for name, kind, payload, perm in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = perm
            info.mtime = 1700000000
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = payload
                archive.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
            else:
                archive.addfile(info)
    return str(path)


F = stat.S_IFREG | 0o644
L = stat.S_IFLNK | 0o777

SAFE_ZIP = [
    ('rpms/', b'', stat.S_IFDIR | 0o755),
    ('rpms/a.rpm', RPM, F),
    ('tools/run.sh', b'#!/bin/sh\necho upgrade\n', stat.S_IFREG | 0o4755),
    ('README', b'notes\n', None),  # no unix mode: 0644
    ('latest.rpm', b'rpms/a.rpm', L),
    ('tools/rpms', b'../rpms', L),
]

SAFE_TAR = [
    ('./', tarfile.DIRTYPE, None, 0o755),
    ('./rpms', tarfile.DIRTYPE, None, 0o750),
    ('./rpms/a.rpm', tarfile.REGTYPE, RPM, 0o644),
    ('./rpms/same.rpm', tarfile.LNKTYPE, 'rpms/a.rpm', 0o644),
    ('./latest.rpm', tarfile.SYMTYPE, 'rpms/a.rpm', 0o777),
]


def zip_bundle(tmp_path, entries, name='P-M001-b1.upgrade.zip'):
    return make_zip(tmp_path / name, entries)


def tar_bundle(tmp_path, entries, name='P-M001-b1.upgrade.tar.gz'):
    return make_tar(tmp_path / name, entries)


# ---------------------------------------------------------- malicious members

MALICIOUS = [
    pytest.param('zip', [('../evil.sh', b'x', F)],
                 ["member '../evil.sh': '..' component escapes the staging directory"], id='zip-dotdot'),
    pytest.param('zip', [('rpms/../../evil.sh', b'x', None)],
                 ["member 'rpms/../../evil.sh': '..' component escapes the staging directory"],
                 id='zip-dotdot-inside'),
    pytest.param('zip', [('/etc/cron.d/evil', b'x', F)],
                 ["member '/etc/cron.d/evil': absolute path"], id='zip-absolute'),
    pytest.param('zip', [('..\\evil.sh', b'x', None)],
                 ["member '..\\evil.sh': backslash in the name"], id='zip-backslash'),
    pytest.param('zip', [('link', b'../../../etc/passwd', L)],
                 ["member 'link': symlink to '../../../etc/passwd' points outside the staging directory"],
                 id='zip-symlink-outside'),
    pytest.param('zip', [('link', b'/etc/passwd', L)],
                 ["member 'link': symlink to the absolute path '/etc/passwd' points outside the staging "
                  'directory'], id='zip-symlink-absolute'),
    pytest.param('zip', [('a', b'.', L), ('x', b'a/..', L)],
                 ["member 'x': symlink to 'a/..' points outside the staging directory"],
                 id='zip-symlink-chain-escape'),
    pytest.param('zip', [('d', b'sub', L), ('sub/', b'', stat.S_IFDIR | 0o755), ('d/evil', b'x', F)],
                 ["member 'd/evil': lies below 'd', which is a symlink, not a directory"],
                 id='zip-write-through-symlink'),
    pytest.param('zip', [('dev/sda', b'', stat.S_IFCHR | 0o600)],
                 ["member 'dev/sda': device members are not allowed in a bundle"], id='zip-device'),
    pytest.param('zip', [('a.txt', b'1', F), ('./a.txt', b'2', F)],
                 ["member './a.txt': lands on the same path as member 'a.txt'"], id='zip-duplicate'),
    pytest.param('zip', [('.clusterops-bundle.json', b'{}', F)],
                 ["member '.clusterops-bundle.json': the name is reserved for the staging marker"],
                 id='zip-marker-name'),
    pytest.param('tar', [('../evil.sh', tarfile.REGTYPE, b'x', 0o755)],
                 ["member '../evil.sh': '..' component escapes the staging directory"], id='tar-dotdot'),
    pytest.param('tar', [('/etc/evil', tarfile.REGTYPE, b'x', 0o644)],
                 ["member '/etc/evil': absolute path"], id='tar-absolute'),
    pytest.param('tar', [('link', tarfile.SYMTYPE, '../outside', 0o777)],
                 ["member 'link': symlink to '../outside' points outside the staging directory"],
                 id='tar-symlink-outside'),
    pytest.param('tar', [('hard', tarfile.LNKTYPE, '../../etc/shadow', 0o644)],
                 ["member 'hard': hard link to '../../etc/shadow': '..' component escapes the staging "
                  'directory'], id='tar-hardlink-outside'),
    pytest.param('tar', [('hard', tarfile.LNKTYPE, 'later', 0o644), ('later', tarfile.REGTYPE, b'x', 0o644)],
                 ["member 'hard': hard link to 'later', which is not an earlier regular file of the bundle"],
                 id='tar-hardlink-forward'),
    pytest.param('tar', [('dev/sda', tarfile.BLKTYPE, None, 0o600), ('dev/null', tarfile.CHRTYPE, None, 0o666)],
                 ["member 'dev/sda': device members are not allowed in a bundle",
                  "member 'dev/null': device members are not allowed in a bundle"], id='tar-device'),
    pytest.param('tar', [('pipe', tarfile.FIFOTYPE, None, 0o600)],
                 ["member 'pipe': fifo members are not allowed in a bundle"], id='tar-fifo'),
]


@pytest.mark.parametrize('fmt, entries, problems', MALICIOUS)
def test_malicious_members_are_refused(tmp_path, fmt, entries, problems):
    path = (zip_bundle if fmt == 'zip' else tar_bundle)(tmp_path, entries)
    members, found = b.inspect_bundle(path)
    assert found == problems


def test_safe_bundles_have_no_problems(tmp_path):
    for path in (zip_bundle(tmp_path, SAFE_ZIP), tar_bundle(tmp_path, SAFE_TAR)):
        members, problems = b.inspect_bundle(path)
        assert problems == []


# ------------------------------------------------------------------- staging

def _tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ('link', os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ('dir', stat.S_IMODE(info.st_mode))
            else:
                with open(full, 'rb') as handle:
                    out[rel] = ('file', stat.S_IMODE(info.st_mode), handle.read())
    return out


def _stage(path, dest, checksum='c1'):
    members, problems = b.inspect_bundle(path)
    assert problems == []
    b.stage(path, dest, members, {'format': 1, 'checksum': checksum, 'bundle': os.path.basename(path)})


def test_stage_zip(tmp_path):
    path = zip_bundle(tmp_path, SAFE_ZIP)
    dest = str(tmp_path / 'staging' / '6.8.1' / 'P-M001-b1.upgrade')
    _stage(path, dest)
    tree = _tree(dest)
    marker = json.loads(tree.pop('.clusterops-bundle.json')[2].decode())
    assert marker == {'format': 1, 'checksum': 'c1', 'bundle': 'P-M001-b1.upgrade.zip'}
    assert tree == {
        'rpms': ('dir', 0o755),
        'rpms/a.rpm': ('file', 0o644, RPM),
        'tools': ('dir', 0o755),
        'tools/run.sh': ('file', 0o755, b'#!/bin/sh\necho upgrade\n'),  # set-user-ID dropped
        'tools/rpms': ('link', '../rpms'),
        'README': ('file', 0o644, b'notes\n'),
        'latest.rpm': ('link', 'rpms/a.rpm'),
    }
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755
    assert sorted(os.listdir(os.path.dirname(dest))) == ['P-M001-b1.upgrade']


def test_stage_tar_with_hardlink(tmp_path):
    path = tar_bundle(tmp_path, SAFE_TAR)
    dest = str(tmp_path / 'staging' / 'v' / 'P')
    _stage(path, dest)
    tree = _tree(dest)
    tree.pop('.clusterops-bundle.json')
    assert tree == {
        'rpms': ('dir', 0o750),
        'rpms/a.rpm': ('file', 0o644, RPM),
        'rpms/same.rpm': ('file', 0o644, RPM),
        'latest.rpm': ('link', 'rpms/a.rpm'),
    }
    assert os.stat(os.path.join(dest, 'rpms/a.rpm')).st_ino == os.stat(os.path.join(dest, 'rpms/same.rpm')).st_ino
    assert os.stat(os.path.join(dest, 'rpms/a.rpm')).st_mtime == 1700000000


def test_stage_decisions(tmp_path):
    path = zip_bundle(tmp_path, SAFE_ZIP)
    dest = str(tmp_path / 'staging' / 'P')
    assert b.stage_decision(dest, 'c1') == 'create'
    _stage(path, dest, 'c1')
    assert b.stage_decision(dest, 'c1') == 'present'
    assert b.stage_decision(dest, 'c2') == 'replace'
    inode = os.stat(dest).st_ino
    _stage(path, dest, 'c2')
    assert os.stat(dest).st_ino != inode
    assert b.read_marker(dest)['checksum'] == 'c2'
    assert sorted(os.listdir(str(tmp_path / 'staging'))) == ['P']


def test_dest_without_marker_is_refused(tmp_path):
    dest = tmp_path / 'staging' / 'P'
    dest.mkdir(parents=True)
    (dest / 'operator-notes.txt').write_text('mine')
    with pytest.raises(b.BundleError) as err:
        b.stage_decision(str(dest), 'c1')
    assert str(err.value) == ('%s exists but was not staged by clusterops.upgrade.bundle_stage (no '
                              '.clusterops-bundle.json); remove it or choose another staging directory' % dest)


def test_dest_that_is_a_file_is_refused(tmp_path):
    dest = tmp_path / 'P'
    dest.write_text('x')
    with pytest.raises(b.BundleError) as err:
        b.read_marker(str(dest))
    assert str(err.value) == '%s exists and is not a directory; remove it or choose another staging directory' % dest


def test_flipped_byte_fails_extraction_and_leaves_nothing(tmp_path):
    path = make_zip(tmp_path / 'P-M001.zip', [('a.rpm', RPM, F), ('b.rpm', RPM, F)], zipfile.ZIP_STORED)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo('b.rpm')
    data = bytearray(open(path, 'rb').read())
    data[info.header_offset + 30 + len('b.rpm') + 100] ^= 0x01
    open(path, 'wb').write(bytes(data))
    members, problems = b.inspect_bundle(path)   # the central directory is intact
    assert problems == []
    dest = tmp_path / 'staging' / 'P'
    with pytest.raises(b.BundleError) as err:
        b.stage(path, str(dest), members, {'checksum': 'c1'})
    assert str(err.value) == "%s is damaged: Bad CRC-32 for file 'b.rpm'" % path
    assert not dest.exists()
    assert os.listdir(str(tmp_path / 'staging')) == []


def test_flipped_byte_keeps_the_previous_stage(tmp_path):
    good = make_zip(tmp_path / 'good.zip', [('a.rpm', RPM, F)], zipfile.ZIP_STORED)
    dest = str(tmp_path / 'staging' / 'P')
    _stage(good, dest, 'c1')
    before = _tree(dest)
    bad = make_zip(tmp_path / 'bad.zip', [('a.rpm', RPM, F)], zipfile.ZIP_STORED)
    data = bytearray(open(bad, 'rb').read())
    data[200] ^= 0x01
    open(bad, 'wb').write(bytes(data))
    members, problems = b.inspect_bundle(bad)
    with pytest.raises(b.BundleError):
        b.stage(bad, dest, members, {'checksum': 'c2'})
    assert _tree(dest) == before
    assert sorted(os.listdir(str(tmp_path / 'staging'))) == ['P']


def test_truncated_zip_cannot_be_inspected(tmp_path):
    path = zip_bundle(tmp_path, SAFE_ZIP)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(b.BundleError) as err:
        b.inspect_bundle(path)
    assert str(err.value) == '%s is not a readable zip archive: File is not a zip file' % path


def test_truncated_tar_cannot_be_inspected(tmp_path):
    path = tar_bundle(tmp_path, SAFE_TAR)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(b.BundleError) as err:
        b.inspect_bundle(path)
    assert str(err.value).startswith('%s is not a readable tar archive: ' % path)


def test_bundle_swapped_after_the_check_is_refused(tmp_path):
    path = zip_bundle(tmp_path, SAFE_ZIP)
    members, problems = b.inspect_bundle(path)
    make_zip(path, SAFE_ZIP[:-1] + [('tools/rpms', b'../../..', L)])
    dest = tmp_path / 'staging' / 'P'
    with pytest.raises(b.BundleError) as err:
        b.stage(path, str(dest), members, {'checksum': 'c1'})
    assert str(err.value) == 'the bundle changed since it was checked'
    assert os.listdir(str(tmp_path / 'staging')) == []


def test_tar_swapped_after_the_check_is_refused(tmp_path):
    path = tar_bundle(tmp_path, SAFE_TAR)
    members, problems = b.inspect_bundle(path)
    make_tar(path, SAFE_TAR[:-1] + [('./latest.rpm', tarfile.SYMTYPE, '../../etc', 0o777)])
    with pytest.raises(b.BundleError) as err:
        b.stage(path, str(tmp_path / 'staging' / 'P'), members, {'checksum': 'c1'})
    assert str(err.value) == "%s changed since it was checked (member './latest.rpm')" % path
    assert os.listdir(str(tmp_path / 'staging')) == []


@pytest.mark.parametrize('name, expected', [
    ('InCloudSphere_V6R08B011-x86_64-M001-b1.upgrade.zip', 'InCloudSphere_V6R08B011-x86_64-M001-b1.upgrade'),
    ('p.tar.gz', 'p'), ('p.TGZ', 'p'), ('p.tar.xz', 'p'), ('p.tbz2', 'p'), ('p.tar', 'p'),
])
def test_stage_name(name, expected):
    assert b.stage_name('/srv/' + name) == expected


@pytest.mark.parametrize('name, message', [
    ('p.rpm', "'p.rpm' is not a bundle archive: the name must end in .zip, .tar, .tar.gz, .tgz, "
              '.tar.bz2, .tbz2, .tar.xz or .txz'),
    ('.zip', "'.zip' gives an empty or hidden staging name"),
])
def test_stage_name_errors(name, message):
    with pytest.raises(b.BundleError) as err:
        b.stage_name(name)
    assert str(err.value) == message


def test_extracted_bytes():
    members = [b.Member('d/', 'dir'), b.Member('d/a', 'file', 1), b.Member('d/b', 'file', 4096),
               b.Member('d/c', 'file', 4097), b.Member('l', 'symlink', 0, 'd/a')]
    assert b.extracted_bytes(members) == 4096 + 4096 + 4096 + 8192 + 4096


# --------------------------------------------------------------------- space

class FakeVfs(object):
    def __init__(self, avail_blocks, frsize=4096):
        self.f_bavail = avail_blocks
        self.f_frsize = frsize


def test_space_report_groups_by_filesystem(tmp_path):
    (tmp_path / 'bundles').mkdir()
    reqs = [{'path': str(tmp_path / 'bundles'), 'bytes': 1000, 'what': 'copy of a.zip'},
            {'path': str(tmp_path / 'staging' / '6.8.1'), 'bytes': 5000, 'what': 'extraction of a.zip'}]
    report = b.space_report(reqs, margin=100, statvfs=lambda path: FakeVfs(1))
    assert report == [{
        'paths': [str(tmp_path / 'bundles'), str(tmp_path / 'staging' / '6.8.1')],
        'checked': str(tmp_path / 'bundles'), 'needed': 6100, 'available': 4096,
        'breakdown': ['copy of a.zip 1000', 'extraction of a.zip 5000', 'margin 100'], 'enough': False,
    }]
    assert b.space_problems(report) == [
        'not enough free space for %s, %s (filesystem of %s): needs 6100 bytes (copy of a.zip 1000 + '
        'extraction of a.zip 5000 + margin 100), 4096 available' % (
            tmp_path / 'bundles', tmp_path / 'staging' / '6.8.1', tmp_path / 'bundles')]


def test_space_report_enough(tmp_path):
    report = b.space_report([{'path': str(tmp_path), 'bytes': 4000}], margin=96,
                            statvfs=lambda path: FakeVfs(1))
    assert (report[0]['enough'], b.space_problems(report)) == (True, [])


def test_space_report_real_statvfs(tmp_path):
    report = b.space_report([{'path': str(tmp_path / 'x' / 'y'), 'bytes': 1}], margin=0)
    vfs = os.statvfs(str(tmp_path))
    assert report[0]['checked'] == str(tmp_path)
    assert report[0]['available'] > 0
    assert abs(report[0]['available'] - vfs.f_bavail * vfs.f_frsize) < 64 << 20


def test_nearest_existing(tmp_path):
    assert b.nearest_existing(str(tmp_path / 'a' / 'b' / 'c')) == str(tmp_path)


# ---------------------------------------------------------------------- plan

GROUP_MAP = {r'-M\d{3}-': 'control_plane', r'-S\d{3}-': 'compute'}
M = 'ICS_V6R08B011-x86_64-M001-b1.upgrade.zip'
S = 'ICS_V6R08B011-x86_64-S001-b1.upgrade.zip'


def test_plan_by_group():
    plan = b.plan_bundles([M, S], GROUP_MAP, {
        'cp1': {'groups': ['control_plane'], 'bundles': None},
        'cn1': {'groups': ['compute', 'rack1'], 'bundles': None},
        'aio': {'groups': ['compute', 'control_plane'], 'bundles': None},
    })
    assert plan == {'bundles': {M: ['control_plane'], S: ['compute']},
                    'hosts': {'aio': [M, S], 'cn1': [S], 'cp1': [M]}}


def test_plan_host_choice():
    plan = b.plan_bundles([M, S], GROUP_MAP, {'aio': {'groups': ['compute', 'control_plane'], 'bundles': [S]}})
    assert plan['hosts'] == {'aio': [S]}


@pytest.mark.parametrize('names, group_map, hosts, message', [
    pytest.param([M, 'ICS-x86_64-X001-b1.zip'], GROUP_MAP, {'cp1': {'groups': ['control_plane']}},
                 "bundle 'ICS-x86_64-X001-b1.zip' matches no pattern of bundle_group_map ('-M\\d{3}-' -> "
                 "control_plane, '-S\\d{3}-' -> compute): rename it to the vendor's naming or add a pattern for it",
                 id='no-rule'),
    pytest.param([M, S], GROUP_MAP, {'st1': {'groups': ['storage']}, 'cp1': {'groups': ['control_plane']}},
                 "host 'st1' is in none of the groups the bundles map to (compute, control_plane); its groups: "
                 '[storage]. Add it to one of them or leave it out of the play', id='host-in-no-group'),
    pytest.param([M, S], GROUP_MAP, {'cp1': {'groups': ['control_plane'], 'bundles': [S]}},
                 "host 'cp1' is in groups [control_plane], but bundle '%s' is for compute: refusing to stage a "
                 'bundle meant for another role' % S, id='wrong-role'),
    pytest.param([M], GROUP_MAP, {'cp1': {'groups': ['control_plane'], 'bundles': ['other.zip']}},
                 "host 'cp1': bundle_host_bundles names 'other.zip', which is not one of the bundles being "
                 'staged (%s)' % M, id='unknown-choice'),
    pytest.param([M], {'-M(': 'control_plane'}, {'cp1': {'groups': ['control_plane']}},
                 "bundle_group_map pattern '-M(' is not a valid regular expression: missing ), unterminated "
                 'subpattern at position 2', id='bad-regex'),
])
def test_plan_errors(names, group_map, hosts, message):
    with pytest.raises(b.BundleError) as err:
        b.plan_bundles(names, group_map, hosts)
    assert str(err.value) == message


def test_plan_lists_every_problem():
    with pytest.raises(b.BundleError) as err:
        b.plan_bundles([M, S], GROUP_MAP, {'cp1': {'groups': ['control_plane'], 'bundles': [S]},
                                           'st1': {'groups': ['storage']}})
    assert str(err.value) == (
        "host 'cp1' is in groups [control_plane], but bundle '%s' is for compute: refusing to stage a bundle "
        "meant for another role; host 'st1' is in none of the groups the bundles map to (compute, "
        'control_plane); its groups: [storage]. Add it to one of them or leave it out of the play' % S)


# ------------------------------------------------------------------ property

from hypothesis import HealthCheck, event, given, settings, strategies as st  # noqa: E402

# Names are mostly plain (so archives get accepted and extracted); targets roam freely.
_NAME = st.lists(st.sampled_from(['a', 'b', 'c', 'a', 'b', '..', '.']), min_size=1, max_size=3).map('/'.join)
_TARGET = st.lists(st.sampled_from(['a', 'b', '..', '.', 'c']), min_size=1, max_size=4).map('/'.join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(st.sampled_from(['file', 'dir', 'symlink', 'hardlink']), _NAME, _TARGET),
                        min_size=1, max_size=6))
def test_whatever_passes_the_checks_stays_inside(tmp_path, entries):
    """Random names and link targets: a bundle the checks accept never puts or points anything
    outside the staging directory."""
    case = tmp_path / ('case-%d' % len(os.listdir(str(tmp_path))))
    outside = case / 'outside'
    outside.mkdir(parents=True)
    kinds = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE,
             'hardlink': tarfile.LNKTYPE}
    payloads = {'file': lambda target: b'x', 'dir': lambda target: None,
                'symlink': lambda target: target, 'hardlink': lambda target: target}
    tar_entries = [(name, kinds[kind], payloads[kind](target), 0o755) for kind, name, target in entries]
    path = make_tar(case / 'b.tar', tar_entries, mode='w')
    members, problems = b.inspect_bundle(path)
    event('refused' if problems else 'accepted, with links' if any(
        m.kind in ('symlink', 'hardlink') for m in members) else 'accepted')
    if problems:
        return
    dest = case / 'staging' / 'x'
    b.stage(path, str(dest), members, {'checksum': 'c'})
    root = os.path.realpath(str(dest))
    for dirpath, dirnames, filenames in os.walk(str(dest)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            resolved = os.path.realpath(full)
            assert resolved == root or resolved.startswith(root + os.sep), (full, resolved)
    assert os.listdir(str(outside)) == []
    assert sorted(os.listdir(str(case / 'staging'))) == ['x']
