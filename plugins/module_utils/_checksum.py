# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checksum manifests and one-pass file verification.

Plain functions and classes, no AnsibleModule: the ``package_verify`` module
and the ``bundle_stage`` module use them, tests call them directly.

Manifests
    ``parse_manifest()`` reads the formats vendors publish:

    * GNU coreutils: ``<hex>  name`` (text mode) and ``<hex> *name`` (binary
      mode), including the ``\\`` prefixed escaped form for names holding a
      backslash or a newline;
    * BSD / ``sha256sum --tag``: ``SHA256 (name) = <hex>`` (and ``SHA512``),
      plus the OpenSSL spelling ``SHA256(name)= <hex>`` / ``SHA2-256(name)= <hex>``.

    Either hex case, CRLF line ends, a UTF-8 byte-order mark, blank lines and
    ``#`` comments are accepted. Anything else is an error naming the line.

One pass
    ``scan_file()`` reads a file once, in large blocks into one reused buffer
    (``readinto``), and feeds every block both to the hash and to an archive
    checker:

    * ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2``, ``.tar.xz``/``.txz``:
      the blocks go through the decompressor (its own integrity checks: gzip
      CRC32, bzip2 block CRCs, xz check) and a tar header walker (header
      checksums, member sizes, end-of-archive marker) in the same pass. There
      is never a second read.
    * ``.zip``: the blocks go through a streaming zip reader that walks the
      local headers, inflates each member and checks its CRC-32 and sizes,
      then keeps only the central directory (the file's tail) and checks that
      it describes exactly the members that were streamed. When all of that
      holds the verdict comes from that single pass. When the stream cannot
      decide (data before the first member such as a self-extractor stub, a
      compression method other than stored/deflate, a stored member with a
      data descriptor, a central directory that disagrees with the local
      headers) or when it finds an error, ``zipfile`` (the same reader that
      extraction uses) re-reads the archive and gives the verdict: a second
      read, reported as ``reads: 2``.
"""

from __future__ import annotations

import bz2
import errno
import hashlib
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib

ALGORITHMS = {'sha256': 64, 'sha512': 128}
BLOCK_SIZE = 1 << 20
# Upper bound for decompressed output produced per decompressor call, so a
# small highly compressed block cannot expand into a huge buffer.
_OUT_CHUNK = 1 << 22

STATUS_OK = 'ok'
STATUS_MISMATCH = 'mismatch'
STATUS_MISSING = 'missing'
STATUS_NOT_IN_MANIFEST = 'not_in_manifest'
STATUS_CORRUPT = 'corrupt_archive'
STATUS_UNREADABLE = 'unreadable'
STATUSES = (STATUS_OK, STATUS_MISMATCH, STATUS_MISSING, STATUS_NOT_IN_MANIFEST,
            STATUS_CORRUPT, STATUS_UNREADABLE)

# archive_check values in a scan result
ARCHIVE_OK = 'ok'
ARCHIVE_CORRUPT = 'corrupt'
ARCHIVE_NONE = 'not_an_archive'
ARCHIVE_DISABLED = 'disabled'
ARCHIVE_NOT_RUN = 'not_run'


class ManifestError(ValueError):
    """A manifest (or checksums mapping) that cannot be trusted."""

    def __init__(self, message, line=None):
        super(ManifestError, self).__init__(message)
        self.line = line


# ---------------------------------------------------------------- manifests

_HEX_RE = re.compile(r'^[0-9A-Fa-f]+$')
_GNU_RE = re.compile(r'^(?P<hex>[0-9A-Fa-f]+) (?P<mode>[ *]?)(?P<name>.+)$')
_BSD_RE = re.compile(
    r'^(?P<tag>SHA256|SHA512|SHA2-256|SHA2-512|SHA-256|SHA-512) ?'
    r'\((?P<name>.+)\) ?= ?(?P<hex>[0-9A-Fa-f]+)$')
_BSD_TAGS = {
    'SHA256': 'sha256', 'SHA2-256': 'sha256', 'SHA-256': 'sha256',
    'SHA512': 'sha512', 'SHA2-512': 'sha512', 'SHA-512': 'sha512',
}
_WINDOWS_ABS_RE = re.compile(r'^[A-Za-z]:[\\/]')


def _unescape(name):
    """Undo coreutils' escaping (``\\\\``, ``\\n``, ``\\r``) of a name."""
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == '\\' and i + 1 < len(name):
            nxt = name[i + 1]
            if nxt in ('\\', 'n', 'r'):
                out.append({'\\': '\\', 'n': '\n', 'r': '\r'}[nxt])
                i += 2
                continue
            raise ValueError('unknown escape \\%s' % nxt)
        out.append(ch)
        i += 1
    return ''.join(out)


def normalize_entry_name(name):
    """Return the relative POSIX form of a manifest name, or raise ValueError.

    ``./a.zip`` becomes ``a.zip``. Absolute paths (``/x``, ``C:\\x``) and any
    ``..`` component are refused: a manifest names files of a release, never
    a place on the machine that checks them.
    """
    if not name or '\x00' in name:
        raise ValueError('entry name is empty or holds a NUL byte')
    if name.startswith('/') or name.startswith('\\') or _WINDOWS_ABS_RE.match(name):
        raise ValueError("entry '%s' is an absolute path; manifest names must be relative "
                         "(e.g. 'bundle.zip')" % name)
    parts = re.split(r'[\\/]', name)
    if '..' in parts:
        raise ValueError("entry '%s' contains a '..' component; manifest names may not "
                         "point outside the release" % name)
    parts = [p for p in parts if p not in ('', '.')]
    if not parts:
        raise ValueError("entry '%s' does not name a file" % name)
    return '/'.join(parts)


def check_hex(value, algorithm):
    """Return ``value`` as lower-case hex of the right length, or raise ValueError."""
    value = value.strip()
    want = ALGORITHMS[algorithm]
    if not _HEX_RE.match(value):
        raise ValueError("'%s' is not a hexadecimal checksum" % value)
    if len(value) != want:
        hint = ''
        for other, length in sorted(ALGORITHMS.items()):
            if length == len(value):
                hint = ' (a %s checksum? set algorithm: %s)' % (other, other)
        raise ValueError('checksum has %d hex digits but %s needs %d%s' % (len(value), algorithm, want, hint))
    return value.lower()


def _short(text, limit=80):
    return text if len(text) <= limit else text[:limit - 3] + '...'


def parse_manifest(data, algorithm='sha256'):
    """Parse a checksum manifest (bytes or str); return ``{name: hex}``.

    Names are normalized with ``normalize_entry_name()``; hex is lower case.
    Raises ManifestError naming the line for anything that is not a blank
    line, a comment, or a GNU/BSD checksum line for ``algorithm``.
    """
    if algorithm not in ALGORITHMS:
        raise ManifestError('unknown algorithm %r; use one of %s' % (algorithm, ', '.join(sorted(ALGORITHMS))))
    if isinstance(data, bytes):
        try:
            data = data.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise ManifestError('the manifest is not UTF-8 text (byte %d); is it the checksum file?' % exc.start)
    if data.startswith('\ufeff'):
        data = data[1:]
    entries = {}
    first_line = {}
    # split('\n') rather than splitlines(): a name may not hold form feeds or
    # other exotic separators, and CR is stripped per line below.
    for number, raw in enumerate(data.split('\n'), start=1):
        line = raw[:-1] if raw.endswith('\r') else raw
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        escaped = line.startswith('\\')
        body = line[1:] if escaped else line
        match = _BSD_RE.match(body)
        if match:
            tag_algorithm = _BSD_TAGS[match.group('tag')]
            if tag_algorithm != algorithm:
                raise ManifestError('line %d: %s entry but algorithm is %s (set algorithm: %s)' % (
                    number, match.group('tag'), algorithm, tag_algorithm), number)
        else:
            match = _GNU_RE.match(body)
        if not match:
            raise ManifestError(
                "line %d: not a checksum line in GNU ('<hex>  name') or BSD "
                "('SHA256 (name) = <hex>') format: '%s'" % (number, _short(line)), number)
        name = match.group('name')
        try:
            if escaped:
                name = _unescape(name)
            name = normalize_entry_name(name)
            digest = check_hex(match.group('hex'), algorithm)
        except ValueError as exc:
            raise ManifestError('line %d: %s' % (number, exc), number)
        if name in entries and entries[name] != digest:
            raise ManifestError("line %d: '%s' is listed again with a different checksum (first on line %d)" % (
                number, name, first_line[name]), number)
        entries[name] = digest
        first_line.setdefault(name, number)
    if not entries:
        raise ManifestError('the manifest holds no checksum lines')
    return entries


def normalize_checksums(mapping, algorithm='sha256'):
    """Validate a ``{name: hex}`` mapping given inline; same rules as a manifest."""
    out = {}
    for key in sorted(mapping):
        try:
            name = normalize_entry_name(str(key))
            out[name] = check_hex(str(mapping[key]), algorithm)
        except ValueError as exc:
            raise ManifestError("checksums['%s']: %s" % (key, exc))
    if not out:
        raise ManifestError('checksums is empty')
    return out


def find_expected(entries, path):
    """Find the manifest entry for ``path``; return ``(entry_name, hex, reason)``.

    A file matches the entries with the same basename. When several do, the
    one whose relative path is the longest suffix of ``path`` wins (so
    ``x86/a.zip`` picks ``/srv/x86/a.zip``). Equal checksums are not ambiguous.
    ``reason`` explains a miss (``hex`` is then None).
    """
    parts = [p for p in path.replace('\\', '/').split('/') if p not in ('', '.')]
    base = parts[-1] if parts else path
    candidates = [name for name in entries if name.rsplit('/', 1)[-1] == base]
    if not candidates:
        return None, None, "no manifest entry named '%s'" % base
    if len(set(entries[c] for c in candidates)) == 1:
        best = [c for c in candidates if _is_suffix(c.split('/'), parts)] or candidates
        return sorted(best, key=lambda c: (-c.count('/'), c))[0], entries[candidates[0]], ''
    suffixed = [c for c in candidates if _is_suffix(c.split('/'), parts)]
    if suffixed:
        longest = max(c.count('/') for c in suffixed)
        best = [c for c in suffixed if c.count('/') == longest]
        if len(best) == 1:
            return best[0], entries[best[0]], ''
    return None, None, 'ambiguous: manifest entries %s have the same basename and different checksums' % (
        ', '.join("'%s'" % c for c in sorted(candidates)))


def _is_suffix(short, long_):
    return len(short) <= len(long_) and long_[len(long_) - len(short):] == short


# ---------------------------------------------------------- archive checkers

class ArchiveError(Exception):
    """The archive is definitely damaged (as far as the stream can tell)."""


class _Undecided(Exception):
    """The streaming checker cannot decide; ``zipfile`` must."""


def archive_kind(path):
    """``('zip', None)``, ``('tar', compression)`` or ``(None, None)`` from the file name."""
    name = os.path.basename(path).lower()
    if name.endswith('.zip'):
        return 'zip', None
    for suffixes, compression in (
            (('.tar',), None),
            (('.tar.gz', '.tgz'), 'gz'),
            (('.tar.bz2', '.tbz2', '.tbz'), 'bz2'),
            (('.tar.xz', '.txz'), 'xz')):
        for suffix in suffixes:
            if name.endswith(suffix):
                return 'tar', compression
    return None, None


class _Decompressor(object):
    """Push-style decompressor for gzip / bzip2 / xz with multi-stream support.

    ``feed(data, sink)`` calls ``sink(chunk)`` with bounded chunks of output.
    ``finish()`` raises ArchiveError if the compressed stream is incomplete.
    """

    _MAGIC = {'gz': b'\x1f\x8b', 'bz2': b'BZh', 'xz': b'\xfd7zXZ\x00'}

    def __init__(self, kind):
        self.kind = kind
        self.obj = None
        self.padding = False  # after a complete stream: only NUL padding may follow
        self.pending = b''    # start of a possible next stream (magic not complete yet)
        self.streams = 0
        self.total_in = 0

    def _new(self):
        if self.kind == 'gz':
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.kind == 'bz2':
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def feed(self, data, sink):
        self.total_in += len(data)
        try:
            self._feed(data, sink)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            raise ArchiveError('%s data is corrupt near compressed byte %d: %s' % (
                self.kind, self.total_in, exc))

    def _feed(self, data, sink):
        while len(data):
            if self.obj is None:
                if self.padding or (self.streams and not self.pending and data[0:1] == b'\x00'):
                    # NUL padding after the last stream (tape blocking, xz stream padding)
                    if bytes(data).strip(b'\x00'):
                        raise ArchiveError('%s: unexpected data after the end of the compressed stream'
                                           % self.kind)
                    self.padding = True
                    return
                magic = self._MAGIC[self.kind]
                head = self.pending + bytes(data[:len(magic) - len(self.pending)])
                if len(head) < len(magic) and magic.startswith(head):
                    self.pending = head
                    return
                if not head.startswith(magic):
                    what = 'trailing data after the compressed stream' if self.streams else 'not a %s stream' % self.kind
                    raise ArchiveError('%s: %s' % (self.kind, what))
                self.obj = self._new()
                if self.pending:
                    first, self.pending = self.pending, b''
                    rest = self._run(first, sink)
                    if rest is not None:
                        data = rest + bytes(data)
                    continue
            rest = self._run(data, sink)
            if rest is None:
                return
            data = rest

    def _run(self, data, sink):
        """Decompress ``data``; return the bytes after a finished stream, or None."""
        obj = self.obj
        if self.kind == 'gz':
            out = obj.decompress(data, _OUT_CHUNK)
            if out:
                sink(out)
            while not obj.eof and (obj.unconsumed_tail or len(out) == _OUT_CHUNK):
                out = obj.decompress(obj.unconsumed_tail, _OUT_CHUNK)
                if out:
                    sink(out)
        else:
            out = obj.decompress(data, _OUT_CHUNK)
            if out:
                sink(out)
            while not obj.eof and not obj.needs_input:
                out = obj.decompress(b'', _OUT_CHUNK)
                if out:
                    sink(out)
        if not obj.eof:
            return None
        self.streams += 1
        rest = obj.unused_data
        self.obj = None
        return rest if rest else None

    def finish(self):
        if self.obj is not None or self.pending:
            raise ArchiveError('%s stream is truncated: it ends before its end marker' % self.kind)
        if not self.streams:
            raise ArchiveError('%s stream is empty' % self.kind)


def _tar_number(field):
    """Decode a tar numeric field (octal text or GNU base-256)."""
    if field[0:1] and field[0] & 0x80:
        value = field[0] & 0x3f
        for byte in field[1:]:
            value = (value << 8) | byte
        if field[0] & 0x40:
            value -= 1 << (6 + 8 * (len(field) - 1))
        return value
    text = field.split(b'\x00', 1)[0].strip()
    if not text:
        return 0
    return int(text, 8)


class TarStream(object):
    """Walk tar headers in a stream: checksums, sizes, the end-of-archive block."""

    _NO_DATA = frozenset(b'123456')  # links, devices, directories, fifos

    def __init__(self):
        self.header = bytearray()
        self.skip = 0
        self.sparse_ext = False
        self.ended = False
        self.members = 0
        self.offset = 0
        self.current = ''

    def feed(self, data):
        view = memoryview(data)
        pos = 0
        end = len(view)
        while pos < end:
            if self.ended:
                self.offset += end - pos
                return
            if self.skip:
                step = min(self.skip, end - pos)
                self.skip -= step
                pos += step
                self.offset += step
                continue
            take = min(512 - len(self.header), end - pos)
            self.header += view[pos:pos + take]
            pos += take
            self.offset += take
            if len(self.header) == 512:
                block = bytes(self.header)
                self.header = bytearray()
                self._block(block)

    def _block(self, block):
        if self.sparse_ext:
            self.sparse_ext = block[504] != 0
            return
        if not block.strip(b'\x00'):
            self.ended = True
            return
        try:
            stored = _tar_number(block[148:156])
        except ValueError:
            raise ArchiveError('tar header at byte %d has an unreadable checksum field' % (self.offset - 512))
        name = block[:100].split(b'\x00', 1)[0].decode('utf-8', 'replace')
        if stored != sum(block[:148]) + 256 + sum(block[156:]) and stored != (
                sum(struct.unpack('148b', block[:148])) + 256 + sum(struct.unpack('356b', block[156:]))):
            raise ArchiveError("tar header at byte %d ('%s') has a bad checksum" % (self.offset - 512, name))
        try:
            size = _tar_number(block[124:136])
        except ValueError:
            raise ArchiveError("tar header at byte %d ('%s') has an unreadable size" % (self.offset - 512, name))
        if size < 0:
            raise ArchiveError("tar header at byte %d ('%s') has a negative size" % (self.offset - 512, name))
        kind = block[156]
        self.members += 1
        self.current = name
        if kind in self._NO_DATA:
            size = 0
        if kind == ord('S') and block[482]:
            self.sparse_ext = True
        self.skip = (size + 511) // 512 * 512

    def finish(self):
        if self.ended:
            return
        if self.skip or self.header or self.sparse_ext:
            raise ArchiveError("tar archive is truncated: it ends inside member '%s'" % self.current)
        raise ArchiveError('tar archive is truncated: no end-of-archive block after %d members' % self.members)


class TarChecker(object):
    """Decompressor (optional) + TarStream, fed with the raw file blocks."""

    def __init__(self, compression):
        self.walker = TarStream()
        self.decoder = _Decompressor(compression) if compression else None

    def feed(self, data):
        if self.decoder is None:
            self.walker.feed(data)
        else:
            self.decoder.feed(data, self.walker.feed)

    def finish(self):
        if self.decoder is not None:
            self.decoder.finish()
        self.walker.finish()


_ZIP_LOCAL = b'PK\x03\x04'
_ZIP_CENTRAL = b'PK\x01\x02'
_ZIP_END = b'PK\x05\x06'
_ZIP64_END = b'PK\x06\x06'
_ZIP_DESCRIPTOR = b'PK\x07\x08'
_ZIP_TAIL_LIMIT = 64 << 20
_LOCAL_FMT = struct.Struct('<4sHHHHHIIIHH')
_CENTRAL_FMT = struct.Struct('<4sHHHHHHIIIHHHHHII')
_END_FMT = struct.Struct('<4sHHHHIIH')


def _zip64_values(extra, wanted):
    """Read the zip64 extra field (id 1): ``wanted`` 8-byte values, in order."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack('<HH', extra[pos:pos + 4])
        if tag == 1:
            body = extra[pos + 4:pos + 4 + length]
            if len(body) < 8 * wanted:
                raise _Undecided('short zip64 extra field')
            return list(struct.unpack('<%dQ' % wanted, body[:8 * wanted]))
        pos += 4 + length
    raise _Undecided('missing zip64 extra field')


class ZipStream(object):
    """Check a zip archive from a stream of its bytes, in file order.

    Local header → member data (inflated, CRC-32 and sizes checked) → next
    header … → central directory, kept in memory and compared with what was
    streamed. Raises ArchiveError for damage and _Undecided when only
    ``zipfile`` can tell.
    """

    def __init__(self):
        self.offset = 0          # absolute offset of the next byte fed
        self.state = 'sig'
        self.buf = bytearray()
        self.need = 4
        self.members = {}        # local header offset -> facts seen in the stream
        self.member = None
        self.tail = None
        self.tail_offset = None

    # -- feeding
    def feed(self, data):
        view = memoryview(data)
        pos = 0
        end = len(view)
        while pos < end:
            if self.state == 'tail':
                if len(self.tail) + end - pos > _ZIP_TAIL_LIMIT:
                    raise _Undecided('central directory larger than %d bytes' % _ZIP_TAIL_LIMIT)
                self.tail += view[pos:end]
                self.offset += end - pos
                return
            if self.state == 'data':
                used = self._data(view[pos:end])
                pos += used
                self.offset += used
                continue
            take = min(self.need - len(self.buf), end - pos)
            self.buf += view[pos:pos + take]
            pos += take
            self.offset += take
            if len(self.buf) == self.need:
                self._header()

    def _header(self):
        if self.state == 'sig':
            sig = bytes(self.buf[:4])
            if sig == _ZIP_LOCAL:
                self.state = 'local'
                self.need = 30
                return
            if sig in (_ZIP_CENTRAL, _ZIP_END, _ZIP64_END):
                self.state = 'tail'
                self.tail = bytearray(self.buf)
                self.tail_offset = self.offset - len(self.buf)
                self.buf = bytearray()
                return
            raise _Undecided('unexpected bytes %r at offset %d' % (sig, self.offset - 4))
        if self.state == 'local':
            nlen, elen = struct.unpack('<HH', bytes(self.buf[26:30]))
            self.state = 'local_rest'
            self.need = 30 + nlen + elen
            if nlen + elen:
                return
        if self.state == 'local_rest':
            self._start_member(bytes(self.buf))
            self.buf = bytearray()
            return
        if self.state == 'desc':
            self._descriptor()

    def _start_member(self, raw):
        (_sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, elen) = _LOCAL_FMT.unpack(raw[:30])
        name = raw[30:30 + nlen]
        extra = raw[30 + nlen:30 + nlen + elen]
        zip64 = False
        if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
            usize, csize = _zip64_values(extra, 2)
            zip64 = True
        if flags & 1:
            raise _Undecided('member %r is encrypted' % name)
        if method not in (0, 8):
            raise _Undecided('member %r uses compression method %d' % (name, method))
        descriptor = bool(flags & 8)
        if descriptor and method == 0:
            raise _Undecided('stored member %r has a data descriptor' % name)
        offset = self.offset - len(raw)
        self.member = {
            'offset': offset, 'name': name, 'method': method, 'descriptor': descriptor,
            'zip64': zip64, 'crc': crc, 'csize': csize, 'usize': usize,
            'seen_c': 0, 'seen_u': 0, 'crc_calc': 0,
            'inflate': zlib.decompressobj(-zlib.MAX_WBITS) if method == 8 else None,
        }
        self.members[offset] = self.member
        if not descriptor and csize == 0:
            self._end_member_data()
        else:
            self.state = 'data'

    def _emit(self, member, out):
        member['crc_calc'] = zlib.crc32(out, member['crc_calc'])
        member['seen_u'] += len(out)
        if not member['descriptor'] and member['seen_u'] > member['usize']:
            raise ArchiveError('member %s inflates to more than its declared %d bytes' % (
                _zip_name(member), member['usize']))

    def _data(self, view):
        """Consume member data from ``view``; return how many bytes were used."""
        member = self.member
        if member['descriptor']:
            chunk = view
        else:
            chunk = view[:member['csize'] - member['seen_c']]
        inflate = member['inflate']
        if inflate is None:
            self._emit(member, chunk)
            used = len(chunk)
        else:
            try:
                out = inflate.decompress(chunk, _OUT_CHUNK)
                if out:
                    self._emit(member, out)
                while not inflate.eof and (inflate.unconsumed_tail or len(out) == _OUT_CHUNK):
                    out = inflate.decompress(inflate.unconsumed_tail, _OUT_CHUNK)
                    if out:
                        self._emit(member, out)
            except zlib.error as exc:
                raise ArchiveError('member %s: deflate data is corrupt: %s' % (_zip_name(member), exc))
            used = len(chunk) - len(inflate.unused_data) if inflate.eof else len(chunk)
            if inflate.eof and not member['descriptor'] and inflate.unused_data:
                raise ArchiveError('member %s: deflate stream ends before its compressed size' % _zip_name(member))
        member['seen_c'] += used
        if member['descriptor']:
            if inflate.eof:
                member['csize'] = member['seen_c']
                self.state = 'desc'
                self.need = 4
        elif member['seen_c'] == member['csize']:
            self._end_member_data()
        return used

    def _end_member_data(self):
        member = self.member
        if member['inflate'] is not None and not member['inflate'].eof:
            raise ArchiveError('member %s: deflate stream is incomplete' % _zip_name(member))
        if member['seen_u'] != member['usize']:
            raise ArchiveError('member %s: %d bytes instead of %d' % (
                _zip_name(member), member['seen_u'], member['usize']))
        if member['crc_calc'] != member['crc']:
            raise ArchiveError('member %s: bad CRC-32' % _zip_name(member))
        member['inflate'] = None
        self.state = 'sig'
        self.need = 4

    def _descriptor(self):
        member = self.member
        if self.need == 4:
            size = 24 if member['zip64'] else 16
            if bytes(self.buf) == _ZIP_DESCRIPTOR:
                self.need = size
            else:
                self.need = size - 4
            return
        raw = bytes(self.buf[-(self.need if self.need in (12, 20) else self.need - 4):])
        if member['zip64']:
            crc, csize, usize = struct.unpack('<IQQ', raw)
        else:
            crc, csize, usize = struct.unpack('<III', raw)
        self.buf = bytearray()
        member['crc'], member['usize'] = crc, usize
        if csize != member['csize']:
            raise _Undecided('data descriptor of %s disagrees with the stream' % _zip_name(member))
        member['descriptor'] = False
        self._end_member_data()

    # -- the end
    def finish(self):
        if self.state != 'tail':
            where = ("inside member %s" % _zip_name(self.member)) if self.state in ('data', 'desc') else (
                'before the central directory')
            raise ArchiveError('zip archive is truncated: the file ends %s (byte %d)' % (where, self.offset))
        tail = bytes(self.tail)
        entries, cd_offset = _parse_central(tail, self.tail_offset)
        if cd_offset != self.tail_offset:
            raise _Undecided('central directory offset %d, streamed members end at %d' % (
                cd_offset, self.tail_offset))
        if len(entries) != len(self.members):
            raise _Undecided('central directory lists %d members, the stream holds %d' % (
                len(entries), len(self.members)))
        for entry in entries:
            member = self.members.get(entry['offset'])
            if member is None or any(member[k] != entry[k] for k in ('name', 'method', 'crc', 'csize', 'usize')):
                raise _Undecided('central directory entry %r disagrees with its local header' % entry['name'])
        return len(entries)


def _zip_name(member):
    return "'%s'" % member['name'].decode('utf-8', 'replace')


def _parse_central(tail, tail_offset):
    """Parse the end record and central directory held in ``tail``."""
    end = -1
    low = max(0, len(tail) - 22 - 0xFFFF)
    pos = len(tail) - 22
    while pos >= low:
        if tail[pos:pos + 4] == _ZIP_END:
            comment_len = struct.unpack('<H', tail[pos + 20:pos + 22])[0]
            if pos + 22 + comment_len == len(tail):
                end = pos
                break
        pos -= 1
    if end < 0:
        raise ArchiveError('zip archive has no end-of-central-directory record (truncated?)')
    (_sig, disk, cd_disk, _n_disk, total, cd_size, cd_offset, _clen) = _END_FMT.unpack(tail[end:end + 22])
    if 0xFFFF in (disk, cd_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = end - 20
        if loc < 0 or tail[loc:loc + 4] != b'PK\x06\x07':
            raise _Undecided('zip64 end locator not found')
        z64_offset = struct.unpack('<Q', tail[loc + 8:loc + 16])[0] - tail_offset
        if z64_offset < 0 or tail[z64_offset:z64_offset + 4] != _ZIP64_END:
            raise _Undecided('zip64 end record not in the tail')
        disk, cd_disk, _n_disk, total, cd_size, cd_offset = struct.unpack(
            '<IIQQQQ', tail[z64_offset + 16:z64_offset + 56])
    if disk or cd_disk:
        raise _Undecided('multi-disk zip')
    entries = []
    pos = cd_offset - tail_offset
    if pos != 0:
        return entries, cd_offset
    stop = pos + cd_size
    while pos < stop:
        if tail[pos:pos + 4] != _ZIP_CENTRAL or pos + 46 > len(tail):
            raise ArchiveError('zip central directory is damaged at byte %d' % (tail_offset + pos))
        fields = _CENTRAL_FMT.unpack(tail[pos:pos + 46])
        (_s, _vm, _vn, _fl, method, _t, _d, crc, csize, usize, nlen, elen, clen,
         _disk, _ia, _ea, offset) = fields
        name = tail[pos + 46:pos + 46 + nlen]
        extra = tail[pos + 46 + nlen:pos + 46 + nlen + elen]
        wanted = [usize == 0xFFFFFFFF, csize == 0xFFFFFFFF, offset == 0xFFFFFFFF]
        if any(wanted):
            values = _zip64_values(extra, sum(wanted))
            if wanted[0]:
                usize = values.pop(0)
            if wanted[1]:
                csize = values.pop(0)
            if wanted[2]:
                offset = values.pop(0)
        entries.append({'name': name, 'method': method, 'crc': crc, 'csize': csize,
                        'usize': usize, 'offset': offset})
        pos += 46 + nlen + elen + clen
    if len(entries) != total:
        raise ArchiveError('zip central directory holds %d entries, its end record says %d' % (len(entries), total))
    return entries, cd_offset


def zipfile_check(path, block_size=BLOCK_SIZE):
    """Read every member through ``zipfile`` (CRC-32 checked); return None or a reason."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    while member.read(block_size):
                        pass
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError,
            RuntimeError, ValueError, struct.error) as exc:
        return str(exc) or exc.__class__.__name__
    return None


# ------------------------------------------------------------------ scanning

class ScanResult(object):
    """What one pass over a file found."""

    __slots__ = ('size', 'checksum', 'archive_check', 'archive_detail', 'reads')

    def __init__(self, size, checksum, archive_check, archive_detail='', reads=1):
        self.size = size
        self.checksum = checksum
        self.archive_check = archive_check
        self.archive_detail = archive_detail
        self.reads = reads


def _open_regular(path):
    """Open ``path`` read-only without blocking on FIFOs; refuse non-regular files."""
    flags = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, 'not a regular file')
        if hasattr(os, 'set_blocking'):
            os.set_blocking(fd, True)
        if hasattr(os, 'posix_fadvise'):
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except OSError:
                pass
    except Exception:
        os.close(fd)
        raise
    return fd


# The stream readers raise _Undecided on purpose; the others mean a structure
# they could not parse (a zip's verdict then comes from zipfile).
_READER_TROUBLE = (_Undecided, struct.error, ValueError, IndexError, KeyError)


def _trouble(kind, exc):
    if isinstance(exc, _Undecided):
        return str(exc)
    return '%s structure could not be parsed: %s' % (kind, exc)


def scan_file(path, algorithm='sha256', verify_archive=True, block_size=BLOCK_SIZE):
    """Hash ``path`` and (optionally) check its archive structure in one read.

    Returns a ScanResult. OSError propagates (the caller maps it to
    ``missing``/``unreadable``).
    """
    digest = hashlib.new(algorithm)
    kind, compression = archive_kind(path)
    checker = None
    if verify_archive and kind == 'zip':
        checker = ZipStream()
    elif verify_archive and kind == 'tar':
        checker = TarChecker(compression)
    problem = None
    undecided = None
    size = 0
    buf = bytearray(block_size)
    view = memoryview(buf)
    fd = _open_regular(path)
    with os.fdopen(fd, 'rb', buffering=0) as handle:
        readinto = handle.readinto
        update = digest.update
        while True:
            count = readinto(buf)
            if not count:
                break
            chunk = view if count == block_size else view[:count]
            update(chunk)
            size += count
            if checker is not None:
                try:
                    checker.feed(chunk)
                except ArchiveError as exc:
                    problem, checker = str(exc), None
                except _READER_TROUBLE as exc:
                    undecided, checker = _trouble(kind, exc), None
    if checker is not None:
        try:
            checker.finish()
        except ArchiveError as exc:
            problem = str(exc)
        except _READER_TROUBLE as exc:
            undecided = _trouble(kind, exc)
    if undecided and kind == 'tar':
        problem, undecided = undecided, None
    checksum = digest.hexdigest()
    if not verify_archive:
        return ScanResult(size, checksum, ARCHIVE_DISABLED)
    if kind is None:
        return ScanResult(size, checksum, ARCHIVE_NONE)
    if kind == 'tar':
        if problem:
            return ScanResult(size, checksum, ARCHIVE_CORRUPT, problem)
        return ScanResult(size, checksum, ARCHIVE_OK)
    if problem is None and undecided is None:
        return ScanResult(size, checksum, ARCHIVE_OK)
    # zip: the stream could not vouch for the archive; zipfile decides.
    verdict = zipfile_check(path, block_size)
    if verdict is None:
        return ScanResult(size, checksum, ARCHIVE_OK, reads=2)
    return ScanResult(size, checksum, ARCHIVE_CORRUPT, problem or verdict, reads=2)


def verify_file(path, entries, algorithm='sha256', verify_archive=True, block_size=BLOCK_SIZE):
    """Verify one file against ``entries`` (``{name: hex}``); return a result dict."""
    result = {
        'path': path, 'size': None, 'checksum': None, 'expected': None,
        'status': STATUS_OK, 'detail': '', 'entry': None,
        'archive_check': ARCHIVE_NOT_RUN, 'reads': 0,
    }
    entry, expected, reason = find_expected(entries, path)
    result['entry'] = entry
    result['expected'] = expected
    try:
        scan = scan_file(path, algorithm, verify_archive, block_size)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            result['status'] = STATUS_MISSING
            result['detail'] = 'file does not exist'
        else:
            result['status'] = STATUS_UNREADABLE
            result['detail'] = 'cannot read: %s' % (exc.strerror or exc)
        return result
    result.update(size=scan.size, checksum=scan.checksum, archive_check=scan.archive_check, reads=scan.reads)
    if expected is None:
        result['status'] = STATUS_NOT_IN_MANIFEST
        result['detail'] = reason
    elif scan.checksum != expected:
        result['status'] = STATUS_MISMATCH
        result['detail'] = '%s is %s, expected %s' % (algorithm, scan.checksum, expected)
    elif scan.archive_check == ARCHIVE_CORRUPT:
        result['status'] = STATUS_CORRUPT
        result['detail'] = scan.archive_detail
    return result


def verify_files(paths, entries, algorithm='sha256', verify_archive=True, block_size=BLOCK_SIZE):
    """Verify every path; return ``(results, verified, message)``."""
    results = [verify_file(p, entries, algorithm, verify_archive, block_size) for p in paths]
    bad = [r for r in results if r['status'] != STATUS_OK]
    if not bad:
        return results, True, '%d file(s) verified' % len(results)
    lines = ['%s: %s (%s)' % (r['path'], r['status'], r['detail']) for r in bad]
    message = '%d of %d file(s) failed verification: %s' % (len(bad), len(results), '; '.join(lines))
    return results, False, message
