# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_checksum: every manifest format and error, every status, the one-pass
archive checks (and when zipfile has to decide), on real files in tmp_path."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess
import tarfile
import zipfile

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.clusterops.upgrade.plugins.module_utils import _checksum as c

H = hashlib.sha256(b'a').hexdigest()
H2 = hashlib.sha256(b'b').hexdigest()
H512 = hashlib.sha512(b'a').hexdigest()
BLOCKS = [61, 4096, c.BLOCK_SIZE]  # 61: odd, splits every header


# ------------------------------------------------------------------ manifests

@pytest.mark.parametrize('text, algorithm, expected', [
    pytest.param('%s  a.zip\n' % H, 'sha256', {'a.zip': H}, id='gnu-text'),
    pytest.param('%s *a.zip\n' % H, 'sha256', {'a.zip': H}, id='gnu-binary'),
    pytest.param('%s a.zip' % H, 'sha256', {'a.zip': H}, id='gnu-single-space-no-newline'),
    pytest.param('SHA256 (a.zip) = %s\n' % H, 'sha256', {'a.zip': H}, id='bsd'),
    pytest.param('SHA512 (a.zip) = %s\n' % H512, 'sha512', {'a.zip': H512}, id='bsd-sha512'),
    pytest.param('%s  a.zip\n' % H512, 'sha512', {'a.zip': H512}, id='gnu-sha512'),
    pytest.param('SHA256(a.zip)= %s\n' % H, 'sha256', {'a.zip': H}, id='openssl'),
    pytest.param('SHA2-256(a.zip)= %s\n' % H, 'sha256', {'a.zip': H}, id='openssl3'),
    pytest.param('%s  a.zip\n' % H.upper(), 'sha256', {'a.zip': H}, id='upper-hex'),
    pytest.param('SHA256 (a.zip) = %s\n' % H.upper(), 'sha256', {'a.zip': H}, id='bsd-upper-hex'),
    pytest.param('%s  a.zip\r\n%s *b.zip\r\n' % (H, H2), 'sha256', {'a.zip': H, 'b.zip': H2}, id='crlf'),
    pytest.param('\ufeff# release 6.8.1\n\n   \n%s  a.zip\n  # trailing comment\n\n' % H, 'sha256',
                 {'a.zip': H}, id='bom-blank-comments'),
    pytest.param('%s  ./a.zip\n%s  x86/b.zip\n' % (H, H2), 'sha256', {'a.zip': H, 'x86/b.zip': H2},
                 id='relative-paths'),
    pytest.param('%s  a.zip\nSHA256 (b.zip) = %s\n' % (H, H2), 'sha256', {'a.zip': H, 'b.zip': H2},
                 id='mixed-gnu-bsd'),
    pytest.param('\\%s  a\\nb.zip\n' % H, 'sha256', {'a\nb.zip': H}, id='gnu-escaped-newline'),
    pytest.param('%s  a.zip\n%s  a.zip\n' % (H, H), 'sha256', {'a.zip': H}, id='same-entry-twice'),
    pytest.param('%s  my bundle.zip\n' % H, 'sha256', {'my bundle.zip': H}, id='space-in-name'),
])
def test_parse_manifest(text, algorithm, expected):
    assert c.parse_manifest(text.encode('utf-8'), algorithm) == expected


@pytest.mark.parametrize('text, algorithm, message, line', [
    pytest.param('%s  a.zip\n%s  /etc/a.zip\n' % (H, H2), 'sha256',
                 "line 2: entry '/etc/a.zip' is an absolute path; manifest names must be relative "
                 "(e.g. 'bundle.zip')", 2, id='absolute'),
    pytest.param('SHA256 (/srv/a.zip) = %s\n' % H, 'sha256',
                 "line 1: entry '/srv/a.zip' is an absolute path; manifest names must be relative "
                 "(e.g. 'bundle.zip')", 1, id='bsd-absolute'),
    pytest.param('%s  C:\\bundles\\a.zip\n' % H, 'sha256',
                 "line 1: entry 'C:\\bundles\\a.zip' is an absolute path; manifest names must be "
                 "relative (e.g. 'bundle.zip')", 1, id='windows-absolute'),
    pytest.param('%s  ../a.zip\n' % H, 'sha256',
                 "line 1: entry '../a.zip' contains a '..' component; manifest names may not point "
                 'outside the release', 1, id='dotdot'),
    pytest.param('# x\n%s  x/../../a.zip\n' % H, 'sha256',
                 "line 2: entry 'x/../../a.zip' contains a '..' component; manifest names may not "
                 'point outside the release', 2, id='dotdot-inside'),
    pytest.param('%s  a.zip\n\nthis is not a checksum line\n' % H, 'sha256',
                 "line 3: not a checksum line in GNU ('<hex>  name') or BSD ('SHA256 (name) = <hex>') "
                 "format: 'this is not a checksum line'", 3, id='unknown-format'),
    pytest.param('SHA256 hash of C:\\a.zip:\n%s\n' % H, 'sha256',
                 "line 1: not a checksum line in GNU ('<hex>  name') or BSD ('SHA256 (name) = <hex>') "
                 "format: 'SHA256 hash of C:\\a.zip:'", 1, id='certutil-output'),
    pytest.param('MD5 (a.zip) = %s\n' % H[:32], 'sha256',
                 "line 1: not a checksum line in GNU ('<hex>  name') or BSD ('SHA256 (name) = <hex>') "
                 "format: 'MD5 (a.zip) = %s'" % H[:32], 1, id='bsd-md5'),
    pytest.param('SHA512 (a.zip) = %s\n' % H512, 'sha256',
                 'line 1: SHA512 entry but algorithm is sha256 (set algorithm: sha512)', 1,
                 id='bsd-wrong-algorithm'),
    pytest.param('%s  a.zip\n' % H512, 'sha256',
                 'line 1: checksum has 128 hex digits but sha256 needs 64 (a sha512 checksum? set '
                 'algorithm: sha512)', 1, id='gnu-sha512-as-sha256'),
    pytest.param('%s  a.zip\n' % H, 'sha512',
                 'line 1: checksum has 64 hex digits but sha512 needs 128 (a sha256 checksum? set '
                 'algorithm: sha256)', 1, id='gnu-sha256-as-sha512'),
    pytest.param('%s  a.zip\n' % H[:40], 'sha256',
                 'line 1: checksum has 40 hex digits but sha256 needs 64', 1, id='sha1-length'),
    pytest.param('%s  a.zip\n%s  ./a.zip\n' % (H, H2), 'sha256',
                 "line 2: 'a.zip' is listed again with a different checksum (first on line 1)", 2,
                 id='conflicting-duplicate'),
    pytest.param('\\%s  a\\qb.zip\n' % H, 'sha256', 'line 1: unknown escape \\q', 1, id='bad-escape'),
])
def test_parse_manifest_errors(text, algorithm, message, line):
    with pytest.raises(c.ManifestError) as err:
        c.parse_manifest(text.encode('utf-8'), algorithm)
    assert str(err.value) == message
    assert err.value.line == line


@pytest.mark.parametrize('data, message', [
    (b'', 'the manifest holds no checksum lines'),
    (b'# only a comment\r\n\r\n', 'the manifest holds no checksum lines'),
    (b'\xff\xfe' + H.encode('utf-16-le'), 'the manifest is not UTF-8 text (byte 0); is it the checksum file?'),
])
def test_parse_manifest_whole_file_errors(data, message):
    with pytest.raises(c.ManifestError) as err:
        c.parse_manifest(data)
    assert str(err.value) == message


def test_parse_manifest_unknown_algorithm():
    with pytest.raises(c.ManifestError) as err:
        c.parse_manifest('%s  a\n' % H, 'md5')
    assert str(err.value) == "unknown algorithm 'md5'; use one of sha256, sha512"


@pytest.mark.parametrize('mapping, expected', [
    ({'a.zip': H.upper()}, {'a.zip': H}),
    ({'./x/a.zip': ' %s ' % H}, {'x/a.zip': H}),
])
def test_normalize_checksums(mapping, expected):
    assert c.normalize_checksums(mapping) == expected


@pytest.mark.parametrize('mapping, message', [
    ({'/a.zip': H}, "checksums['/a.zip']: entry '/a.zip' is an absolute path; manifest names must be "
                    "relative (e.g. 'bundle.zip')"),
    ({'../a.zip': H}, "checksums['../a.zip']: entry '../a.zip' contains a '..' component; manifest "
                      'names may not point outside the release'),
    ({'a.zip': 'xyz'}, "checksums['a.zip']: 'xyz' is not a hexadecimal checksum"),
    ({}, 'checksums is empty'),
])
def test_normalize_checksums_errors(mapping, message):
    with pytest.raises(c.ManifestError) as err:
        c.normalize_checksums(mapping)
    assert str(err.value) == message


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.text(alphabet='abcXYZ019_-.+ ', min_size=1, max_size=12).filter(
    lambda n: n.strip('.') and not n.startswith(' ') and n not in ('.', '..')), min_size=1, max_size=5,
    unique=True), data=st.data())
def test_manifest_round_trip(names, data):
    """Whatever sha256sum / sha256sum --tag would write, parse_manifest reads back."""
    entries = {}
    lines = []
    for name in names:
        digest = data.draw(st.binary(min_size=32, max_size=32)).hex()
        style = data.draw(st.sampled_from(['gnu', 'gnu-bin', 'bsd']))
        if style == 'gnu':
            lines.append('%s  %s' % (digest, name))
        elif style == 'gnu-bin':
            lines.append('%s *%s' % (digest.upper(), name))
        else:
            lines.append('SHA256 (%s) = %s' % (name, digest))
        entries[name] = digest
    newline = data.draw(st.sampled_from(['\n', '\r\n']))
    assert c.parse_manifest(newline.join(lines) + newline) == entries


# ---------------------------------------------------------------- name lookup

@pytest.mark.parametrize('entries, path, expected', [
    pytest.param({'a.zip': H}, '/srv/bundles/a.zip', ('a.zip', H, ''), id='basename'),
    pytest.param({'rel/a.zip': H}, '/srv/a.zip', ('rel/a.zip', H, ''), id='basename-of-relative-entry'),
    pytest.param({'x86/a.zip': H, 'arm/a.zip': H2}, '/srv/x86/a.zip', ('x86/a.zip', H, ''),
                 id='relative-path-decides'),
    pytest.param({'a.zip': H, 'arm/a.zip': H2}, '/srv/arm/a.zip', ('arm/a.zip', H2, ''),
                 id='longest-suffix-wins'),
    pytest.param({'x86/a.zip': H, 'arm/a.zip': H}, '/srv/a.zip', ('arm/a.zip', H, ''),
                 id='same-checksum-not-ambiguous'),
    pytest.param({'x86/a.zip': H, 'arm/a.zip': H2}, '/srv/a.zip',
                 (None, None, "ambiguous: manifest entries 'arm/a.zip', 'x86/a.zip' have the same basename "
                  'and different checksums'), id='ambiguous'),
    pytest.param({'b.zip': H}, '/srv/a.zip', (None, None, "no manifest entry named 'a.zip'"), id='absent'),
])
def test_find_expected(entries, path, expected):
    assert c.find_expected(entries, path) == expected


# ------------------------------------------------------------ archive builders

def payload(size, seed=1):
    """Incompressible-ish but deterministic bytes."""
    out = bytearray()
    block = hashlib.sha512(b'%d' % seed).digest()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:size])


MEMBERS = [('bundle/', None), ('bundle/rpms/a.rpm', payload(300000)), ('bundle/README', b'upgrade notes\n' * 500),
           ('bundle/empty', b'')]


def make_zip(path, compression=zipfile.ZIP_DEFLATED, force_zip64=False, members=None):
    members = MEMBERS if members is None else members
    with zipfile.ZipFile(str(path), 'w', compression) as archive:
        for name, data in members:
            if data is None:
                archive.writestr(name, b'')
                continue
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.compress_type = compression
            with archive.open(info, 'w', force_zip64=force_zip64) as out:
                out.write(data)
    return path


class _Unseekable(io.RawIOBase):
    def __init__(self, handle):
        self.handle = handle

    def writable(self):
        return True

    def write(self, data):
        return self.handle.write(data)


def make_streamed_zip(path):
    """A zip written to an unseekable stream: every member has a data descriptor."""
    with open(str(path), 'wb') as handle:
        with zipfile.ZipFile(_Unseekable(handle), 'w', zipfile.ZIP_DEFLATED) as archive:
            for name, data in MEMBERS[1:]:
                archive.writestr(name, data)
    return path


def make_tar(path, mode):
    with tarfile.open(str(path), mode) as archive:
        for name, data in MEMBERS:
            info = tarfile.TarInfo(name.rstrip('/'))
            info.mtime = 1700000000
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo('bundle/latest')
        link.type = tarfile.SYMTYPE
        link.linkname = 'rpms/a.rpm'
        archive.addfile(link)
    return path


GOOD_ARCHIVES = {
    'a.zip': make_zip,
    'stored.zip': lambda p: make_zip(p, zipfile.ZIP_STORED),
    'zip64.zip': lambda p: make_zip(p, force_zip64=True),
    'streamed.zip': make_streamed_zip,
    'empty.zip': lambda p: make_zip(p, members=[]),
    'a.tar': lambda p: make_tar(p, 'w'),
    'a.tar.gz': lambda p: make_tar(p, 'w:gz'),
    'a.tgz': lambda p: make_tar(p, 'w:gz'),
    'a.tar.bz2': lambda p: make_tar(p, 'w:bz2'),
    'a.tar.xz': lambda p: make_tar(p, 'w:xz'),
}


_BUILT = {}


def built(tmp_path, name, build):
    """Build an archive once per test session (compression is the slow part), copy it to tmp_path."""
    key = (name, build)
    if key not in _BUILT:
        scratch = tmp_path / ('.build-' + name)
        build(scratch)
        _BUILT[key] = scratch.read_bytes()
        scratch.unlink()
    path = tmp_path / name
    path.write_bytes(_BUILT[key])
    return path


@pytest.mark.parametrize('block_size', BLOCKS)
@pytest.mark.parametrize('name', sorted(GOOD_ARCHIVES))
def test_good_archives_verified_in_one_read(tmp_path, name, block_size):
    path = built(tmp_path, name, GOOD_ARCHIVES[name])
    data = path.read_bytes()
    result = c.scan_file(str(path), block_size=block_size)
    assert (result.size, result.checksum, result.archive_check, result.archive_detail, result.reads) == (
        len(data), hashlib.sha256(data).hexdigest(), 'ok', '', 1)


def test_multi_stream_gzip_and_zero_padding(tmp_path):
    one = make_tar(tmp_path / 'one.tar.gz', 'w:gz').read_bytes()
    path = tmp_path / 'multi.tar.gz'
    path.write_bytes(one + gzip.compress(b'more') + b'\x00' * 1024)
    result = c.scan_file(str(path), block_size=4096)
    assert (result.archive_check, result.reads) == ('ok', 1)


@pytest.mark.parametrize('name, build', [
    pytest.param('sfx.zip', lambda p: p.write_bytes(b'#!/bin/sh\nexit 0\n' + make_zip(p).read_bytes()),
                 id='self-extractor-stub'),
    pytest.param('bzip2.zip', lambda p: make_zip(p, zipfile.ZIP_BZIP2), id='bzip2-members'),
    pytest.param('lzma.zip', lambda p: make_zip(p, zipfile.ZIP_LZMA), id='lzma-members'),
])
def test_zip_the_stream_cannot_vouch_for_is_read_again(tmp_path, name, build):
    path = tmp_path / name
    build(path)
    result = c.scan_file(str(path))
    assert (result.archive_check, result.archive_detail, result.reads) == ('ok', '', 2)


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path, size):
    path.write_bytes(path.read_bytes()[:size])


def member_offset(path, name):
    with zipfile.ZipFile(str(path)) as archive:
        info = archive.getinfo(name)
    return info.header_offset + 30 + len(name.encode()) + len(info.extra) + 1000


CORRUPT = [
    pytest.param('stored.zip', lambda p: make_zip(p, zipfile.ZIP_STORED),
                 lambda p: flip(p, member_offset(p, 'bundle/rpms/a.rpm')),
                 "member 'bundle/rpms/a.rpm': bad CRC-32", 2, id='zip-stored-flipped-byte'),
    pytest.param('a.zip', make_zip, lambda p: flip(p, member_offset(p, 'bundle/rpms/a.rpm')),
                 None, 2, id='zip-deflated-flipped-byte'),
    pytest.param('a.zip', make_zip, lambda p: truncate(p, 200000),
                 "zip archive is truncated: the file ends inside member 'bundle/rpms/a.rpm' (byte 200000)", 2,
                 id='zip-truncated-in-member'),
    pytest.param('a.zip', make_zip, lambda p: truncate(p, os.path.getsize(str(p)) - 10),
                 'zip archive has no end-of-central-directory record (truncated?)', 2,
                 id='zip-truncated-in-central-directory'),
    pytest.param('notzip.zip', lambda p: p.write_bytes(payload(5000)), None, 'File is not a zip file', 2,
                 id='not-a-zip'),
    pytest.param('a.tar.gz', lambda p: make_tar(p, 'w:gz'), lambda p: truncate(p, 2000),
                 'gz stream is truncated: it ends before its end marker', 1, id='tgz-truncated'),
    pytest.param('a.tar.gz', lambda p: make_tar(p, 'w:gz'),
                 lambda p: p.write_bytes(p.read_bytes() + b'garbage'),
                 'gz: trailing data after the compressed stream', 1, id='tgz-trailing-garbage'),
    pytest.param('a.tar.xz', lambda p: make_tar(p, 'w:xz'), lambda p: flip(p, 3000),
                 None, 1, id='txz-flipped-byte'),
    pytest.param('a.tar.bz2', lambda p: make_tar(p, 'w:bz2'), lambda p: flip(p, 3000),
                 None, 1, id='tbz2-flipped-byte'),
    pytest.param('a.tar', lambda p: make_tar(p, 'w'), lambda p: flip(p, 265),
                 "tar header at byte 0 ('bundle/') has a bad checksum", 1, id='tar-bad-header-checksum'),
    pytest.param('a.tar', lambda p: make_tar(p, 'w'), lambda p: truncate(p, 100000),
                 "tar archive is truncated: it ends inside member 'bundle/rpms/a.rpm'", 1,
                 id='tar-truncated-in-member'),
    pytest.param('a.tar', lambda p: make_tar(p, 'w'), lambda p: truncate(p, 512 * 2 + 300032),
                 'tar archive is truncated: no end-of-archive block after 2 members', 1,
                 id='tar-truncated-at-member-boundary'),
]


@pytest.mark.parametrize('name, build, damage, detail, reads', CORRUPT)
def test_corrupt_archives(tmp_path, name, build, damage, detail, reads):
    path = built(tmp_path, name, build)
    if damage:
        damage(path)
    result = c.scan_file(str(path), block_size=4096)
    assert result.archive_check == 'corrupt'
    assert result.reads == reads
    if detail is not None:
        assert result.archive_detail == detail
    else:
        assert result.archive_detail != ''


def test_flipped_gzip_byte_names_the_format(tmp_path):
    path = make_tar(tmp_path / 'a.tar.gz', 'w:gz')
    flip(path, 5000)
    result = c.scan_file(str(path))
    assert result.archive_check == 'corrupt'
    assert result.archive_detail.startswith('gz data is corrupt near compressed byte ')


@pytest.mark.parametrize('block_size', BLOCKS)
@pytest.mark.parametrize('algorithm', ['sha256', 'sha512'])
def test_hash_matches_hashlib(tmp_path, algorithm, block_size):
    path = tmp_path / 'plain.bin'
    data = payload(3 * 4096 + 17)
    path.write_bytes(data)
    result = c.scan_file(str(path), algorithm, block_size=block_size)
    assert (result.checksum, result.size, result.archive_check) == (
        hashlib.new(algorithm, data).hexdigest(), len(data), 'not_an_archive')


def test_hash_matches_sha256sum(tmp_path):
    path = tmp_path / 'plain.bin'
    path.write_bytes(payload(1 << 20 | 5))
    out = subprocess.run(['sha256sum', str(path)], check=True, stdout=subprocess.PIPE,
                         env={'LANG': 'C', 'LC_ALL': 'C', 'PATH': os.environ.get('PATH', '/usr/bin')}).stdout
    assert c.scan_file(str(path)).checksum == out.split()[0].decode()


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=20000), block_size=st.integers(min_value=1, max_value=5000))
def test_hash_any_block_size(tmp_path_factory, data, block_size):
    path = tmp_path_factory.mktemp('h') / 'x.bin'
    path.write_bytes(data)
    assert c.scan_file(str(path), block_size=block_size).checksum == hashlib.sha256(data).hexdigest()


def test_verify_archive_false_skips_the_check(tmp_path):
    path = tmp_path / 'a.zip'
    path.write_bytes(b'not a zip at all')
    result = c.scan_file(str(path), verify_archive=False)
    assert (result.archive_check, result.reads) == ('disabled', 1)


@pytest.mark.parametrize('name, expected', [
    ('A.ZIP', ('zip', None)), ('x.tar', ('tar', None)), ('x.tgz', ('tar', 'gz')), ('x.tar.gz', ('tar', 'gz')),
    ('x.tbz2', ('tar', 'bz2')), ('x.tar.bz2', ('tar', 'bz2')), ('x.txz', ('tar', 'xz')),
    ('x.tar.xz', ('tar', 'xz')), ('x.rpm', (None, None)), ('x.tar.zst', (None, None)),
])
def test_archive_kind(name, expected):
    assert c.archive_kind('/srv/' + name) == expected


# ------------------------------------------------------------------- statuses

def _status_ok(tmp_path):
    path = make_zip(tmp_path / 'a.zip')
    return str(path), {'a.zip': hashlib.sha256(path.read_bytes()).hexdigest()}


def _status_mismatch(tmp_path):
    path = make_zip(tmp_path / 'a.zip')
    return str(path), {'a.zip': H}


def _status_missing(tmp_path):
    return str(tmp_path / 'a.zip'), {'a.zip': H}


def _status_not_in_manifest(tmp_path):
    path = make_zip(tmp_path / 'a.zip')
    return str(path), {'b.zip': H}


def _status_corrupt(tmp_path):
    path = make_zip(tmp_path / 'a.zip')
    truncate(path, 200000)
    return str(path), {'a.zip': hashlib.sha256(path.read_bytes()).hexdigest()}


def _status_unreadable_dir(tmp_path):
    (tmp_path / 'a.zip').mkdir()
    return str(tmp_path / 'a.zip'), {'a.zip': H}


def _status_unreadable_fifo(tmp_path):
    os.mkfifo(str(tmp_path / 'a.zip'))
    return str(tmp_path / 'a.zip'), {'a.zip': H}


@pytest.mark.parametrize('setup, status, detail', [
    (_status_ok, 'ok', ''),
    (_status_mismatch, 'mismatch', None),
    (_status_missing, 'missing', 'file does not exist'),
    (_status_not_in_manifest, 'not_in_manifest', "no manifest entry named 'a.zip'"),
    (_status_corrupt, 'corrupt_archive',
     "zip archive is truncated: the file ends inside member 'bundle/rpms/a.rpm' (byte 200000)"),
    (_status_unreadable_dir, 'unreadable', 'cannot read: not a regular file'),
    (_status_unreadable_fifo, 'unreadable', 'cannot read: not a regular file'),
])
def test_verify_file_status(tmp_path, setup, status, detail):
    path, entries = setup(tmp_path)
    result = c.verify_file(path, entries)
    assert result['status'] == status
    if detail is not None:
        assert result['detail'] == detail
    assert set(result) == {'path', 'size', 'checksum', 'expected', 'status', 'detail', 'entry',
                           'archive_check', 'reads'}


def test_verify_file_mismatch_fields(tmp_path):
    path, entries = _status_mismatch(tmp_path)
    actual = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    result = c.verify_file(path, entries)
    assert result == {
        'path': path, 'size': os.path.getsize(path), 'checksum': actual, 'expected': H,
        'status': 'mismatch', 'detail': 'sha256 is %s, expected %s' % (actual, H), 'entry': 'a.zip',
        'archive_check': 'ok', 'reads': 1,
    }


def test_verify_file_missing_fields(tmp_path):
    path, entries = _status_missing(tmp_path)
    assert c.verify_file(path, entries) == {
        'path': path, 'size': None, 'checksum': None, 'expected': H, 'status': 'missing',
        'detail': 'file does not exist', 'entry': 'a.zip', 'archive_check': 'not_run', 'reads': 0,
    }


def test_mismatch_outranks_corrupt_archive(tmp_path):
    path = make_zip(tmp_path / 'a.zip')
    truncate(path, 200000)
    assert c.verify_file(str(path), {'a.zip': H})['status'] == 'mismatch'


def test_unreadable_permission(tmp_path, monkeypatch):
    path = tmp_path / 'a.zip'
    path.write_bytes(b'x')

    def denied(*_args, **_kwargs):
        raise PermissionError(13, 'Permission denied', str(path))

    monkeypatch.setattr(c.os, 'open', denied)
    result = c.verify_file(str(path), {'a.zip': H})
    assert (result['status'], result['detail']) == ('unreadable', 'cannot read: Permission denied')


def test_verify_files_message_lists_each_offender(tmp_path):
    good = make_zip(tmp_path / 'good.zip')
    entries = {'good.zip': hashlib.sha256(good.read_bytes()).hexdigest(), 'gone.zip': H}
    paths = [str(good), str(tmp_path / 'gone.zip'), str(tmp_path / 'extra.bin')]
    (tmp_path / 'extra.bin').write_bytes(b'x')
    results, verified, message = c.verify_files(paths, entries)
    assert verified is False
    assert [r['status'] for r in results] == ['ok', 'missing', 'not_in_manifest']
    assert message == ('2 of 3 file(s) failed verification: %s/gone.zip: missing (file does not exist); '
                       "%s/extra.bin: not_in_manifest (no manifest entry named 'extra.bin')" % (tmp_path, tmp_path))


def test_verify_files_all_ok(tmp_path):
    good = make_zip(tmp_path / 'good.zip')
    results, verified, message = c.verify_files([str(good)], {'good.zip': hashlib.sha256(good.read_bytes()).hexdigest()})
    assert (verified, message, results[0]['status']) == (True, '1 file(s) verified', 'ok')


def test_tar_numbers():
    assert c._tar_number(b'0000644\x00') == 0o644
    assert c._tar_number(b'\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00') == 256
    assert c._tar_number(b'\x00' * 12) == 0


def test_stat_of_fixture_is_regular(tmp_path):
    # guard for the unreadable tests: a regular file is never refused
    path = tmp_path / 'x.bin'
    path.write_bytes(b'1')
    assert stat.S_ISREG(os.stat(str(path)).st_mode)
    assert c.scan_file(str(path)).size == 1


def test_bz2_and_xz_stream_helpers_agree_with_stdlib():
    data = payload(100000)
    for kind, packed in (('bz2', bz2.compress(data)), ('xz', lzma.compress(data)), ('gz', gzip.compress(data))):
        out = []
        decoder = c._Decompressor(kind)
        for start in range(0, len(packed), 333):
            decoder.feed(packed[start:start + 333], out.append)
        decoder.finish()
        assert b''.join(out) == data


SMALL = [('a/', None), ('a/x.bin', payload(3000, 2)), ('a/t.txt', b'text ' * 400)]


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(['a.zip', 'stored.zip', 'streamed.zip', 'a.tar', 'a.tar.gz', 'a.tar.xz']),
       flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), max_size=3),
       cut=st.one_of(st.none(), st.integers(min_value=0)))
def test_damage_never_crashes_and_ok_means_zipfile_agrees(tmp_path_factory, kind, flips, cut):
    """Random flipped bytes and truncations: always a verdict, never an exception; a zip the
    one-pass reader calls ok is one zipfile reads without error too."""
    base = tmp_path_factory.mktemp('fuzz')
    builders = {
        'a.zip': lambda p: make_zip(p, members=SMALL),
        'stored.zip': lambda p: make_zip(p, zipfile.ZIP_STORED, members=SMALL),
        'streamed.zip': make_streamed_zip,
        'a.tar': lambda p: make_tar(p, 'w'),
        'a.tar.gz': lambda p: make_tar(p, 'w:gz'),
        'a.tar.xz': lambda p: make_tar(p, 'w:xz'),
    }
    path = built(base, kind, builders[kind])
    data = bytearray(path.read_bytes())
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    if cut is not None:
        data = data[:cut % (len(data) + 1)]
    path.write_bytes(bytes(data))
    result = c.scan_file(str(path), block_size=997)
    assert result.archive_check in ('ok', 'corrupt')
    if kind.endswith('.zip') and result.archive_check == 'ok':
        assert c.zipfile_check(str(path)) is None
    if kind.endswith('.zip') and result.archive_check == 'corrupt':
        assert result.reads == 2
