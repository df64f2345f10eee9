# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rpm sets: parse, compare with a baseline, check the backup rpms, plan the restore.

Plain functions and small classes that take data and return data. The only
external command is ``rpm``, run through :meth:`Rpm.run` (the seam), always as an
argv list with ``LANG=C``/``LC_ALL=C``.

Vocabulary:

* a *package* is a :class:`Package` (name, epoch, version, release, arch, digest);
  ``epoch`` is an int (a package without an Epoch tag has epoch 0) or ``None``
  when the source did not state it (lists printed by plain ``rpm -qa``);
  ``arch`` is ``None`` for ``gpg-pubkey`` entries, which have no architecture;
* a package is identified by *name + arch*; one name+arch may be installed at
  several versions (kernels);
* versions are ordered with rpm's own algorithm (:func:`rpmvercmp`, including
  ``~`` and ``^``), implemented here so a comparison never costs a process.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import itertools
import json
import operator
import os
import re
import struct
import tempfile
from collections import defaultdict, namedtuple

DEFAULT_DBPATH = '/var/lib/rpm'
C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
BASELINE_SCHEMA = 'clusterops.upgrade.rpm_baseline'
BASELINE_SCHEMA_VERSION = 1
BASELINE_MODE = 0o644

# Field separator in our query formats: a control character that cannot occur
# in a name, version, release or arch.
FS = '\x1f'
_NONE = '(none)'
_BASE_TAGS = ('%{NAME}', '%{EPOCH}', '%{VERSION}', '%{RELEASE}', '%{ARCH}')
_DIGEST_TAGS = ('%{SHA256HEADER}', '%{SHA1HEADER}')
INSTALLED_QF = FS.join(_BASE_TAGS) + '\n'
INSTALLED_DIGEST_QF = FS.join(_BASE_TAGS + _DIGEST_TAGS) + '\n'
# Package files are always read with their header digests: they map the
# records of one batched query back to the files (see Rpm.read_headers).
HEADER_QF = INSTALLED_DIGEST_QF

# Architectures accepted as the ``.arch`` suffix of a NEVRA line. A vendor list
# line without one of these (other than gpg-pubkey) is refused rather than
# guessed: ``foo-1.0-1.el7`` must not become arch ``el7``.
KNOWN_ARCHES = frozenset((
    'noarch', 'src', 'nosrc',
    'i386', 'i486', 'i586', 'i686', 'athlon', 'geode', 'pentium3', 'pentium4',
    'x86_64', 'amd64', 'ia32e', 'em64t', 'x86_64_v2', 'x86_64_v3', 'x86_64_v4',
    'aarch64', 'armv5tel', 'armv5tejl', 'armv6l', 'armv6hl', 'armv7l', 'armv7hl',
    'armv7hnl', 'armv8l', 'armv8hl',
    'ppc', 'ppc64', 'ppc64le', 'ppc64p7', 'ppc64iseries', 'ppc64pseries',
    's390', 's390x', 'sparc', 'sparcv8', 'sparcv9', 'sparcv9v', 'sparc64', 'sparc64v',
    'mips', 'mipsel', 'mips64', 'mips64el', 'mipsr6', 'mipsr6el', 'mips64r6', 'mips64r6el',
    'riscv64', 'loongarch64', 'sw_64', 'alpha', 'alphaev5', 'alphaev56', 'alphaev6',
    'alphaev67', 'ia64',
))
_PUBKEY = 'gpg-pubkey'
_NAME_RE = re.compile(r'^[A-Za-z0-9_+%{}][A-Za-z0-9._+%{}-]*$')
_VR_RE = re.compile(r'^[A-Za-z0-9._+~^%{}]+$')
_EPOCH_RE = re.compile(r'^[0-9]+$')
_ENVRA_RE = re.compile(r'^([0-9]+|\(none\)):(.+)$')
# Largest argv (bytes) given to one ``rpm -qp`` call; ARG_MAX on Linux is
# larger, this leaves room for the environment.
_ARGV_BUDGET = 512 * 1024


class RpmError(Exception):
    """rpm could not be run or printed something we cannot read."""


class NevraError(ValueError):
    """A string is not a package NEVRA."""


class BaselineError(ValueError):
    """A baseline file is malformed. The message names the file and the line."""


# --------------------------------------------------------------------------
# Packages and version comparison
# --------------------------------------------------------------------------

_PackageBase = namedtuple('_PackageBase', 'name epoch version release arch digest', defaults=(None,))


class Package(_PackageBase):
    """One package: name, epoch (int or None = not stated), version, release,
    arch (None for gpg-pubkey) and an optional header digest (``algo:hex``)."""

    __slots__ = ()

    @property
    def key(self):
        return (self.name, self.arch)

    def evr(self):
        if self.epoch:
            return '%d:%s-%s' % (self.epoch, self.version, self.release)
        return '%s-%s' % (self.version, self.release)

    def nevra(self):
        text = '%s-%s' % (self.name, self.evr())
        return text + '.' + self.arch if self.arch else text

    def nvra(self):
        text = '%s-%s-%s' % (self.name, self.version, self.release)
        return text + '.' + self.arch if self.arch else text

    def filename(self):
        """The conventional file name of this package (rpm never puts the epoch there)."""
        return self.nvra() + '.rpm'

    def erase_label(self):
        """The argument that makes ``rpm -e`` remove exactly this package."""
        return self.nevra()

    def same_build_as(self, other):
        """Same version and release strings and, when both are known, the same epoch."""
        if self.version != other.version or self.release != other.release:
            return False
        if self.epoch is None or other.epoch is None:
            return True
        return self.epoch == other.epoch

    def to_dict(self):
        data = {
            'name': self.name, 'epoch': self.epoch, 'version': self.version,
            'release': self.release, 'arch': self.arch, 'nevra': self.nevra(),
        }
        if self.digest:
            data['digest'] = self.digest
        return data


_ALNUM = frozenset('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ')
_DIGITS = frozenset('0123456789')
_ALPHA = _ALNUM - _DIGITS


def rpmvercmp(a, b):
    """Compare two version (or release) strings as rpm does: -1, 0 or 1.

    Segments of digits compare numerically (leading zeros ignored, more digits
    win), segments of letters compare as strings, a digit segment is newer than a
    letter segment, any other character only separates segments. ``~`` sorts
    before everything, even the end of the string (``1.0~rc1 < 1.0``); ``^`` sorts
    after the end of the string but before any further segment
    (``1.0 < 1.0^git1 < 1.0.1``). Only ASCII letters and digits form segments.
    """
    if a == b:
        return 0
    la, lb = len(a), len(b)
    i = j = 0
    while i < la or j < lb:
        while i < la and a[i] not in _ALNUM and a[i] != '~' and a[i] != '^':
            i += 1
        while j < lb and b[j] not in _ALNUM and b[j] != '~' and b[j] != '^':
            j += 1
        ca = a[i] if i < la else ''
        cb = b[j] if j < lb else ''
        if ca == '~' or cb == '~':
            if ca != '~':
                return 1
            if cb != '~':
                return -1
            i += 1
            j += 1
            continue
        if ca == '^' or cb == '^':
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != '^':
                return 1
            if cb != '^':
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if ca in _DIGITS:
            while i < la and a[i] in _DIGITS:
                i += 1
            while j < lb and b[j] in _DIGITS:
                j += 1
            numeric = True
        else:
            while i < la and a[i] in _ALPHA:
                i += 1
            while j < lb and b[j] in _ALPHA:
                j += 1
            numeric = False
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:
            # segments of different kinds: the numeric one is newer
            return 1 if numeric else -1
        if numeric:
            seg_a = seg_a.lstrip('0')
            seg_b = seg_b.lstrip('0')
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def compare_evr(a, b):
    """Order two packages by epoch, version, release (-1, 0, 1).

    An unknown epoch (None) is taken to be the other side's epoch.
    """
    if a.epoch is not None and b.epoch is not None and a.epoch != b.epoch:
        return 1 if a.epoch > b.epoch else -1
    rc = rpmvercmp(a.version, b.version)
    if rc:
        return rc
    return rpmvercmp(a.release, b.release)


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

def _parse_epoch(text, what):
    if text == _NONE:
        return 0
    if not _EPOCH_RE.match(text):
        raise NevraError('%r: the epoch %r is not a number' % (what, text))
    return int(text)


def parse_nevra(text):
    """Parse one package string into a :class:`Package`.

    Accepted: ``name-version-release.arch`` (plain ``rpm -qa``),
    ``name-epoch:version-release.arch``, ``epoch:name-version-release.arch``,
    ``(none)`` for the epoch or the arch, a trailing ``.rpm``, and ``gpg-pubkey``
    entries without an arch. Names may contain dashes; version and release may not.
    The epoch is ``None`` when the string does not state one.
    """
    s = text.strip()
    if not s or any(c.isspace() for c in s):
        raise NevraError('%r is not a package NEVRA (one package per line, no spaces)' % text)
    if s.endswith('.rpm'):
        s = s[:-4]
    epoch = None
    m = _ENVRA_RE.match(s)
    if m:
        epoch = _parse_epoch(m.group(1), text)
        s = m.group(2)
    head, dot, tail = s.rpartition('.')
    arch = None
    if dot and (tail in KNOWN_ARCHES or tail == _NONE):
        arch = None if tail == _NONE else tail
        s = head
    elif not s.startswith(_PUBKEY + '-'):
        raise NevraError(
            '%r does not end in a known architecture (.x86_64, .noarch, .i686, ...); '
            'write it as name-[epoch:]version-release.arch' % text)
    rest, dash, release = s.rpartition('-')
    name, dash2, version = rest.rpartition('-')
    if not (dash and dash2 and name and version and release):
        raise NevraError('%r is not name-[epoch:]version-release.arch' % text)
    if ':' in version:
        if epoch is not None:
            raise NevraError('%r states the epoch twice' % text)
        epoch_text, version = version.split(':', 1)
        epoch = _parse_epoch(epoch_text, text)
    if not _NAME_RE.match(name):
        raise NevraError('%r: %r is not a valid package name' % (text, name))
    for what, value in (('version', version), ('release', release)):
        if not _VR_RE.match(value):
            raise NevraError('%r: %r is not a valid %s' % (text, value, what))
    if arch is None and name != _PUBKEY and tail != _NONE:
        raise NevraError('%r has no architecture' % text)
    return Package(name, epoch, version, release, arch)


def _decode(data, source):
    if isinstance(data, str):
        return data
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as exc:
        line = data.count(b'\n', 0, exc.start) + 1
        raise BaselineError('%s: line %d: not UTF-8 text' % (source, line))


def parse_baseline(data, source='baseline'):
    """Parse a baseline (our JSON, or a vendor list with one NEVRA per line).

    Returns ``(format, packages)`` where format is ``json``, ``nevra`` or ``nvra``.
    A list in which no line states an epoch is what plain ``rpm -qa`` prints
    (``nvra``): rpm never prints epochs there, so epochs are not compared for it.
    As soon as one line states an epoch (``nevra``), a line without one means
    epoch 0. Raises :class:`BaselineError` naming the line.
    """
    text = _decode(data, source)
    if text.startswith('\ufeff'):
        text = text[1:]
    if text.lstrip()[:1] in ('{', '['):
        return 'json', _parse_json_baseline(text, source)
    packages = []
    stated = False
    seen = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        try:
            pkg = parse_nevra(line)
        except NevraError as exc:
            raise BaselineError('%s: line %d: %s' % (source, number, exc))
        stated = stated or pkg.epoch is not None
        if pkg not in seen:
            seen.add(pkg)
            packages.append(pkg)
    if not packages:
        raise BaselineError('%s: no packages in it (expected our JSON or one NEVRA per line)' % source)
    if stated:
        packages = [p if p.epoch is not None else p._replace(epoch=0) for p in packages]
        return 'nevra', _dedupe(packages)
    return 'nvra', packages


def _dedupe(packages):
    """Drop repeated packages, keep the first occurrence's order."""
    return list(dict.fromkeys(packages))


_ENTRY_FIELDS = operator.itemgetter('name', 'epoch', 'version', 'release', 'arch')
# Package from a 6-tuple without a Python-level call per package
_new_package = functools.partial(tuple.__new__, Package)


def _json_entries_bulk(entries):
    """All entries as Packages when every one is exactly in the shape we write
    (and none has a digest), else None. Checks whole columns at C speed; the
    per-entry path handles everything else and names what is wrong."""
    try:
        rows = list(map(_ENTRY_FIELDS, entries))
    except (KeyError, TypeError):
        return None
    if not rows:
        return []
    if set(map(len, entries)) != {5}:   # a digest (or anything else) on some entry
        return None
    names, epochs, versions, releases, arches = zip(*rows)
    for column in (names, versions, releases):
        if set(map(type, column)) != {str} or not all(column):
            return None
    if set(map(type, epochs)) != {int} or min(epochs) < 0:
        return None
    if not set(map(type, arches)) <= {str, type(None)} or '' in arches or _NONE in arches:
        return None
    return list(map(_new_package, zip(names, epochs, versions, releases, arches, itertools.repeat(None))))


def _parse_json_baseline(text, source):
    try:
        doc = json.loads(text)
    except ValueError as exc:
        # json.JSONDecodeError carries the position; other ValueErrors may not
        where = ''
        if getattr(exc, 'lineno', None) is not None:
            where = ' line %s column %s:' % (exc.lineno, exc.colno)
        raise BaselineError('%s:%s not valid JSON: %s' % (source, where, getattr(exc, 'msg', exc)))
    if not isinstance(doc, dict) or not isinstance(doc.get('packages'), list):
        raise BaselineError('%s: a JSON baseline must be an object with a "packages" list' % source)
    version = doc.get('schema_version')
    if not isinstance(version, int) or isinstance(version, bool):
        raise BaselineError('%s: "schema_version" must be an integer' % source)
    if version > BASELINE_SCHEMA_VERSION:
        raise BaselineError('%s: schema_version %d is newer than this collection understands (%d); '
                            'upgrade clusterops.upgrade' % (source, version, BASELINE_SCHEMA_VERSION))
    packages = _json_entries_bulk(doc['packages'])
    if packages is not None:
        return _dedupe(packages)
    packages = []
    for index, entry in enumerate(doc['packages']):
        pkg = _json_entry_fast(entry)
        if pkg is not None:
            packages.append(pkg)
            continue
        where = '%s: packages[%d]' % (source, index)
        if not isinstance(entry, dict):
            raise BaselineError('%s: must be an object' % where)
        for field in ('name', 'version', 'release'):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise BaselineError('%s: "%s" must be a non-empty string' % (where, field))
        epoch = entry.get('epoch', 0)
        if epoch is None or epoch == _NONE:
            epoch = 0
        if isinstance(epoch, str) and _EPOCH_RE.match(epoch):
            epoch = int(epoch)
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise BaselineError('%s: "epoch" must be a non-negative integer' % where)
        arch = entry.get('arch')
        if arch == _NONE:
            arch = None
        if arch is not None and (not isinstance(arch, str) or not arch):
            raise BaselineError('%s: "arch" must be a string or null' % where)
        digest = entry.get('digest')
        if digest is not None and (not isinstance(digest, str) or ':' not in digest):
            raise BaselineError('%s: "digest" must be a string like "sha256header:<hex>"' % where)
        packages.append(Package(entry['name'], epoch, entry['version'], entry['release'], arch, digest))
    return _dedupe(packages)


def _json_entry_fast(entry):
    """The entry as a Package if it is in the exact shape we write, else None
    (then the slow path validates it and names what is wrong)."""
    if not isinstance(entry, dict):
        return None
    name = entry.get('name')
    version = entry.get('version')
    release = entry.get('release')
    epoch = entry.get('epoch', 0)
    arch = entry.get('arch')
    digest = entry.get('digest')
    if (isinstance(name, str) and name and isinstance(version, str) and version
            and isinstance(release, str) and release
            and isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0
            and (arch is None or (isinstance(arch, str) and arch and arch != _NONE))
            and (digest is None or (isinstance(digest, str) and ':' in digest))):
        return Package(name, epoch, version, release, arch, digest)
    return None


def _sort_key(pkg):
    return (pkg.name, pkg.arch or '', pkg.epoch or 0, pkg.version, pkg.release)


def render_baseline(packages):
    """Our JSON baseline: stable (sorted, no timestamps), one package per line."""
    entries = []
    for pkg in sorted(packages, key=_sort_key):
        entry = [('name', pkg.name), ('epoch', pkg.epoch or 0), ('version', pkg.version),
                 ('release', pkg.release), ('arch', pkg.arch)]
        if pkg.digest:
            entry.append(('digest', pkg.digest))
        entries.append('    {%s}' % ', '.join('%s: %s' % (json.dumps(k), json.dumps(v)) for k, v in entry))
    body = ',\n'.join(entries)
    return (
        '{\n'
        '  "schema": %s,\n'
        '  "schema_version": %d,\n'
        '  "packages": [%s%s%s]\n'
        '}\n'
    ) % (json.dumps(BASELINE_SCHEMA), BASELINE_SCHEMA_VERSION,
         '\n' if entries else '', body, '\n  ' if entries else '')


def _digest_from(sha256, sha1):
    if sha256 and sha256 != _NONE:
        return 'sha256header:' + sha256
    if sha1 and sha1 != _NONE:
        return 'sha1header:' + sha1
    return None


def parse_query_output(out, digests=False):
    """Parse the output of ``rpm -qa --qf INSTALLED[_DIGEST]_QF``."""
    nfields = 7 if digests else 5
    packages = []
    for number, line in enumerate(out.split('\n'), 1):
        if not line:
            continue
        fields = line.split(FS)
        if len(fields) != nfields:
            raise RpmError('rpm printed an unexpected line %d: %r' % (number, line[:200]))
        epoch = fields[1]
        if epoch == _NONE:
            epoch = 0
        elif epoch.isdigit():
            epoch = int(epoch)
        else:
            raise RpmError('rpm printed an unexpected line %d: the epoch %r is not a number' % (number, epoch))
        arch = fields[4]
        packages.append(Package(
            fields[0], epoch, fields[2], fields[3], None if arch == _NONE else arch,
            _digest_from(fields[5], fields[6]) if digests else None))
    return packages


def filter_ignored(packages, patterns):
    """Split packages into (kept, ignored) by shell-style globs on the name."""
    if not patterns:
        return list(packages), []
    match = re.compile('|'.join('(?:%s)' % fnmatch.translate(pat) for pat in patterns)).match
    kept, ignored = [], []
    for pkg in packages:
        if match(pkg[0]):
            ignored.append(pkg)
        else:
            kept.append(pkg)
    return kept, ignored


# --------------------------------------------------------------------------
# The diff
# --------------------------------------------------------------------------

Change = namedtuple('Change', 'baseline installed kind')
Drift = namedtuple('Drift', 'missing extra changed')


def _change_kind(baseline, installed):
    rc = compare_evr(installed, baseline)
    if rc > 0:
        return 'upgraded'
    if rc < 0:
        return 'downgraded'
    return 'rebuilt'


def diff_packages(baseline, installed):
    """Compare by name+arch. Returns a :class:`Drift`.

    For each name+arch, identical builds pair off first (same version and release
    strings, same epoch when both are known, same digest when both have one; a
    differing digest is a ``rebuilt`` change). If exactly one package remains on
    each side and the name+arch has one package on each side, it is a change
    (``upgraded``/``downgraded``/``rebuilt``); otherwise (several versions, as with
    kernels) the remaining baseline packages are missing and the remaining
    installed ones extra.
    """
    # Fast path: packages identical on both sides (digest included) settle
    # their name+arch unless something else of that name+arch differs.
    bset, iset = set(baseline), set(installed)
    if len(bset) == len(baseline) and len(iset) == len(installed):
        keys = set((p[0], p[4]) for p in baseline if p not in iset)
        keys.update((p[0], p[4]) for p in installed if p not in bset)
        if not keys:
            return Drift([], [], [])
        baseline = [p for p in baseline if (p[0], p[4]) in keys]
        installed = [p for p in installed if (p[0], p[4]) in keys]
    by_key_b = _group(baseline)
    by_key_i = _group(installed)
    missing, extra, changed = [], [], []
    keys = list(by_key_b)
    keys.extend(k for k in by_key_i if k not in by_key_b)
    for key in keys:
        want = by_key_b.get(key, ())
        have = by_key_i.get(key, [])
        if len(want) == 1 and len(have) == 1:
            b, i = want[0], have[0]
            # same version and release, same epoch unless one is unknown
            if b[2] == i[2] and b[3] == i[3] and (b[1] == i[1] or b[1] is None or i[1] is None):
                if b[5] and i[5] and b[5] != i[5]:
                    changed.append(Change(b, i, 'rebuilt'))
            else:
                changed.append(Change(b, i, _change_kind(b, i)))
            continue
        have = list(have)
        left = []
        for b in want:
            match = None
            for n, i in enumerate(have):
                if b.same_build_as(i):
                    match = n
                    break
            if match is None:
                left.append(b)
                continue
            i = have.pop(match)
            if b.digest and i.digest and b.digest != i.digest:
                changed.append(Change(b, i, 'rebuilt'))
        missing.extend(left)
        extra.extend(have)
    missing.sort(key=_sort_key)
    extra.sort(key=_sort_key)
    changed.sort(key=lambda c: _sort_key(c.baseline))
    return Drift(missing, extra, changed)


def _group(packages):
    groups = {}
    for pkg in packages:
        key = (pkg[0], pkg[4])
        group = groups.get(key)
        if group is None:
            groups[key] = [pkg]
        else:
            group.append(pkg)
    return groups


def _query_lines(packages):
    """{line as INSTALLED_QF prints it, epoch (none) written 0: package}."""
    if not packages:
        return {}
    names, epochs, versions, releases, arches, _digests = zip(*packages)
    arches = [a or _NONE for a in arches]
    return dict(zip(map(FS.join, zip(names, map(str, epochs), versions, releases, arches)), packages))


_NONE_EPOCH = FS + _NONE + FS
_ZERO_EPOCH = FS + '0' + FS


def diff_query_output(baseline, out, ignore=()):
    """:func:`diff_packages` of ``baseline`` against raw ``rpm -qa --qf
    INSTALLED_QF`` output, without parsing the lines that are exactly a
    baseline package (nearly all of them on a consistent host).

    ``baseline`` must state every epoch and carry no digests (the caller falls
    back to parsing otherwise) and be filtered by ``ignore`` already.
    Returns ``(drift, installed_count, ignored_installed_count)``.
    """
    lines = _query_lines(baseline)
    # rpm prints a missing epoch as (none); it means 0. The epoch is the only
    # field that can be "(none)" between two separators.
    printed = out.replace(_NONE_EPOCH, _ZERO_EPOCH).split('\n')
    if printed and not printed[-1]:
        printed.pop()
    seen = set(map(lines.get, printed))
    seen.discard(None)
    rest = [line for line in printed if line not in lines]
    if len(seen) + len(rest) != len(printed):
        # the same package printed twice: pair them off one by one
        seen = set()
        rest = []
        for line in printed:
            pkg = lines.get(line)
            if pkg is not None and pkg not in seen:
                seen.add(pkg)
            elif line:
                rest.append(line)
    others, ignored = filter_ignored(parse_query_output('\n'.join(rest)), ignore) if rest else ([], [])
    left = [p for p in baseline if p not in seen]
    keys = set((p[0], p[4]) for p in left)
    keys.update((p[0], p[4]) for p in others)
    if not keys:
        return Drift([], [], []), len(seen), len(ignored)
    # identical packages of the affected name+arch keep their part in the diff
    same = [p for p in baseline if p in seen and (p[0], p[4]) in keys]
    return diff_packages(left + same, others + same), len(seen) + len(others), len(ignored)


def change_to_dict(change):
    return {
        'name': change.baseline.name,
        'arch': change.baseline.arch,
        'change': change.kind,
        'baseline': change.baseline.to_dict(),
        'installed': change.installed.to_dict(),
    }


# --------------------------------------------------------------------------
# Backup rpm files
# --------------------------------------------------------------------------

HeaderResult = namedtuple('HeaderResult', 'package error')

_LEAD_MAGIC = b'\xed\xab\xee\xdb'
_HEADER_MAGIC = b'\x8e\xad\xe8\x01'


def _read_header_blob(f):
    intro = f.read(16)
    if len(intro) != 16 or intro[:4] != _HEADER_MAGIC:
        return None
    il, dl = struct.unpack('>II', intro[8:16])
    if il > 0xFFFF or dl > 0x10000000:
        return None
    body = f.read(16 * il + dl)
    if len(body) != 16 * il + dl:
        return None
    return intro + body


def header_digests(path):
    """(sha256, sha1) of the main header of a package file, as rpm's
    SHA256HEADER/SHA1HEADER tags hold them, or None if the file is not laid out
    like a package. Reads only the lead and the headers, never the payload.

    Used to tie the records of one batched ``rpm -qp`` back to their files;
    whether a file is readable is rpm's verdict, not this function's.
    """
    try:
        with open(path, 'rb') as f:
            lead = f.read(96)
            if len(lead) != 96 or lead[:4] != _LEAD_MAGIC:
                return None
            sig = _read_header_blob(f)
            if sig is None:
                return None
            f.seek(-len(sig) % 8, os.SEEK_CUR)
            blob = _read_header_blob(f)
    except (OSError, ValueError):
        return None
    if blob is None:
        return None
    return (hashlib.sha256(blob).hexdigest(),
            hashlib.new('sha1', blob, usedforsecurity=False).hexdigest())


def list_backup_files(backup_dir):
    """The ``*.rpm`` files directly in backup_dir (dot files skipped), sorted."""
    try:
        entries = list(os.scandir(backup_dir))
    except OSError as exc:
        raise RpmError('backup_dir %s cannot be read: %s' % (backup_dir, exc.strerror or exc))
    paths = []
    for entry in entries:
        if entry.name.startswith('.') or not entry.name.endswith('.rpm'):
            continue
        try:
            if entry.is_file():
                paths.append(entry.path)
        except OSError:
            continue
    return sorted(paths)


def _parse_header_records(out):
    records = []
    for line in out.split('\n'):
        if not line:
            continue
        fields = line.split(FS)
        if len(fields) != 7:
            continue
        try:
            epoch = _parse_epoch(fields[1], line)
        except NevraError:
            continue
        pkg = Package(fields[0], epoch, fields[2], fields[3],
                      None if fields[4] == _NONE else fields[4], _digest_from(fields[5], fields[6]))
        records.append((pkg, fields[5], fields[6]))
    return records


def _rpm_errors(err):
    lines = [ln.strip() for ln in err.splitlines() if ln.strip().startswith('error:')]
    return '; '.join(lines)


def check_backups(baseline, headers):
    """Which baseline packages have no usable backup file, which files are corrupt.

    ``headers`` maps each file path to a :class:`HeaderResult`. A file is corrupt
    when rpm cannot read it, when its name is not ``N-V-R.A.rpm``, when its
    header is not the package its name claims, or when it is the right NEVRA but
    a different build than a baseline entry with a digest. gpg-pubkey entries are
    keys, not packages: they never have files and are not checked.

    Returns ``(missing, corrupt, index)``; ``index`` is what :func:`pick_backup`
    searches: (name, arch, version, release) -> [(header package, path, name_ok)].
    """
    corrupt = []
    index = defaultdict(list)
    for path in sorted(headers):
        result = headers[path]
        fname = os.path.basename(path)
        try:
            claimed = parse_nevra(fname)
        except NevraError:
            claimed = None
        entry = {'path': path, 'file': fname,
                 'claimed': claimed.nvra() if claimed else None, 'header': None}
        if result.package is None:
            entry['reason'] = 'rpm cannot read it: %s' % result.error
            corrupt.append(entry)
            continue
        hdr = result.package
        entry['header'] = hdr.to_dict()
        name_ok = claimed is not None and (claimed.name, claimed.version, claimed.release, claimed.arch) == \
            (hdr.name, hdr.version, hdr.release, hdr.arch)
        index[(hdr.name, hdr.arch, hdr.version, hdr.release)].append((hdr, path, name_ok))
        if claimed is None:
            entry['reason'] = 'its name is not NAME-VERSION-RELEASE.ARCH.rpm; the header is %s' % hdr.nevra()
            corrupt.append(entry)
        elif not name_ok:
            entry['reason'] = 'the header is %s but the name claims %s' % (hdr.nevra(), claimed.nvra())
            corrupt.append(entry)
    missing = []
    flagged = set(e['path'] for e in corrupt)
    for pkg in sorted(baseline, key=_sort_key):
        if pkg.name == _PUBKEY:
            continue
        if pick_backup(index, pkg) is not None:
            continue
        entry = pkg.to_dict()
        entry['file'] = pkg.filename()
        missing.append(entry)
        if pkg.digest:
            for hdr, path, _name_ok in index.get((pkg.name, pkg.arch, pkg.version, pkg.release), ()):
                if hdr.same_build_as(pkg) and path not in flagged:
                    flagged.add(path)
                    corrupt.append({
                        'path': path, 'file': os.path.basename(path), 'claimed': pkg.nvra(),
                        'header': hdr.to_dict(),
                        'reason': 'it is %s but not the build in the baseline (digest %s, baseline %s)'
                                  % (hdr.nevra(), hdr.digest, pkg.digest)})
    corrupt.sort(key=lambda e: e['path'])
    return missing, corrupt, index


def pick_backup(index, pkg):
    """The backup file holding exactly ``pkg`` (by header), or None.

    Files whose name matches their header are preferred, then the first path.
    """
    candidates = []
    for hdr, path, name_ok in index.get((pkg.name, pkg.arch, pkg.version, pkg.release), ()):
        if not hdr.same_build_as(pkg):
            continue
        if pkg.digest and hdr.digest != pkg.digest:
            continue
        candidates.append((not name_ok, path))
    if not candidates:
        return None
    return min(candidates)[1]


# --------------------------------------------------------------------------
# The restore plan
# --------------------------------------------------------------------------

def build_restore_plan(base_argv, baseline, drift, pick):
    """The rpm transactions that bring the installed set back to ``baseline``.

    ``pick(pkg)`` returns the backup file for a baseline package or None.
    Returns ``(plan, unresolved)``: plan is a list of argv lists, run in order,
    each one rpm transaction; unresolved lists the baseline packages the plan
    needs but has no file for (the plan is then incomplete).

    1. ``rpm -e`` the extra packages that would be in the way: same name as a
       changed package (``rpm -U`` may or may not remove them, depending on
       file colors) or same name as a missing package of another arch;
    2. ``rpm -ivh --oldpackage`` the missing packages (``-i`` keeps the other
       installed versions of a name, e.g. kernels; ``--oldpackage`` lets it
       install a version older than one already there);
    3. ``rpm -Uvh --oldpackage [--replacepkgs]`` the changed packages, together
       with the baseline packages of the same name on other arches (an upgrade
       removes every installed package of that name it considers compatible);
       ``--replacepkgs`` when one of them is installed at that very version;
    4. ``rpm -e`` the remaining extra packages, last, so that nothing the
       replaced packages still need goes first.

    A changed name that has several baseline versions on one arch cannot go
    through ``rpm -U`` (it would collapse them): its installed package is erased
    in step 1 and the baseline one installed in step 2.
    """
    if not (drift.missing or drift.extra or drift.changed):
        return [], []
    changed_names = set(c.baseline.name for c in drift.changed)
    baseline_by_name = defaultdict(list)
    if changed_names:
        for pkg in baseline:
            if pkg[0] in changed_names:
                baseline_by_name[pkg[0]].append(pkg)
    # several baseline versions on one arch: more packages than arches
    collapsing = set(name for name, pkgs in baseline_by_name.items()
                     if len(pkgs) > len(set(p[4] for p in pkgs)))

    early_erase = []
    install = []
    upgrade_names = set()
    rebuilt = False
    for change in drift.changed:
        if change.baseline.name in collapsing or change.baseline.name == _PUBKEY:
            early_erase.append(change.installed)
            install.append(change.baseline)
        else:
            upgrade_names.add(change.baseline.name)
            rebuilt = rebuilt or change.kind == 'rebuilt'
    missing_arches = defaultdict(set)
    for pkg in drift.missing:
        missing_arches[pkg.name].add(pkg.arch)
    late_erase = []
    for pkg in drift.extra:
        if pkg.name in upgrade_names or (missing_arches.get(pkg.name, set()) - set([pkg.arch])):
            early_erase.append(pkg)
        else:
            late_erase.append(pkg)
    install.extend(p for p in drift.missing if p.name not in upgrade_names)

    not_installed = set(drift.missing) | set(c.baseline for c in drift.changed if c.kind != 'rebuilt')
    upgrade = []
    for name in sorted(upgrade_names):
        for pkg in baseline_by_name[name]:
            upgrade.append(pkg)
            if pkg not in not_installed:
                rebuilt = True

    unresolved = []

    def files(pkgs):
        out = []
        for pkg in sorted(pkgs, key=_sort_key):
            path = None if pkg.name == _PUBKEY else pick(pkg)
            if path is None:
                unresolved.append(pkg)
            else:
                out.append(path)
        return out

    plan = []
    if early_erase:
        plan.append(list(base_argv) + ['-e'] + [p.erase_label() for p in sorted(early_erase, key=_sort_key)])
    install_files = files(install)
    if install_files:
        plan.append(list(base_argv) + ['-ivh', '--oldpackage'] + install_files)
    upgrade_files = files(upgrade)
    if upgrade_files:
        plan.append(list(base_argv) + ['-Uvh', '--oldpackage'] + (['--replacepkgs'] if rebuilt else [])
                    + upgrade_files)
    if late_erase:
        plan.append(list(base_argv) + ['-e'] + [p.erase_label() for p in sorted(late_erase, key=_sort_key)])
    return plan, sorted(set(unresolved), key=_sort_key)


# --------------------------------------------------------------------------
# rpm itself: the one command seam
# --------------------------------------------------------------------------

class Rpm(object):
    """rpm against one database (``--root`` and ``--dbpath`` always forwarded).

    ``runner(argv, env_update) -> (rc, stdout, stderr)`` executes a command: a
    module passes one built on ``AnsibleModule.run_command``; tests and the
    benchmark pass one built on subprocess.
    """

    def __init__(self, runner, binary='rpm', root=None, dbpath=DEFAULT_DBPATH):
        self._runner = runner
        self.binary = binary
        self.root = root
        self.dbpath = dbpath or DEFAULT_DBPATH

    def base_argv(self):
        argv = [self.binary]
        if self.root:
            argv += ['--root', self.root]
        return argv + ['--dbpath', self.dbpath]

    def run(self, args):
        """The seam: every rpm command goes through here, with LANG=C."""
        return self._runner(self.base_argv() + list(args), dict(C_LOCALE))

    def db_dir(self):
        if self.root:
            return os.path.join(self.root, self.dbpath.lstrip('/'))
        return self.dbpath

    def check_db(self):
        """Refuse to query a database that is not there: rpm would create an
        empty one (and report nothing installed)."""
        path = self.db_dir()
        for name in ('rpmdb.sqlite', 'Packages', 'Packages.db'):
            if os.path.isfile(os.path.join(path, name)):
                return path
        raise RpmError('no rpm database at %s (root=%s, dbpath=%s); set root/dbpath to where the '
                       'database is (rpm --eval %%_dbpath prints the default)'
                       % (path, self.root or '/', self.dbpath))

    def query_installed_raw(self, digests=False):
        """ONE ``rpm -qa --qf`` call; its output, unparsed."""
        self.check_db()
        rc, out, err = self.run(['-qa', '--qf', INSTALLED_DIGEST_QF if digests else INSTALLED_QF])
        if rc != 0:
            raise RpmError('rpm -qa failed (rc=%d): %s' % (rc, err.strip() or out.strip()))
        return out

    def query_installed(self, digests=False):
        """The installed set: ONE ``rpm -qa --qf`` call."""
        return parse_query_output(self.query_installed_raw(digests), digests)

    def _query_files(self, paths):
        return self.run(['-qp', '--nomanifest', '--qf', HEADER_QF] + list(paths))

    def read_headers(self, paths):
        """Header of each package file: {path: HeaderResult}.

        ONE ``rpm -qp`` call for all files (split only if the argv would exceed
        512 KiB). rpm prints nothing for a file it cannot read and does not always
        say which one, so records are tied to files by their header digest, which
        is computed here from the file (lead and headers only). Only files left
        without a record are asked about again, one by one, to get rpm's verdict.
        """
        results = {}
        digests = dict((p, header_digests(p)) for p in paths)
        pending = []
        for chunk in _chunks(paths):
            rc, out, err = self._query_files(chunk)
            by256, by1 = {}, {}
            for pkg, sha256, sha1 in _parse_header_records(out):
                if sha256 and sha256 != _NONE:
                    by256.setdefault(sha256, pkg)
                if sha1 and sha1 != _NONE:
                    by1.setdefault(sha1, pkg)
            for path in chunk:
                dg = digests[path]
                pkg = None
                if dg is not None:
                    pkg = by256.get(dg[0]) or by1.get(dg[1])
                if pkg is None:
                    pending.append(path)
                else:
                    results[path] = HeaderResult(pkg, None)
        for path in pending:
            rc, out, err = self._query_files([path])
            records = _parse_header_records(out)
            if rc == 0 and len(records) == 1:
                results[path] = HeaderResult(records[0][0], None)
            else:
                results[path] = HeaderResult(
                    None, _rpm_errors(err) or 'not a package file (rpm exit status %d)' % rc)
        return results


def _chunks(paths):
    chunk, size = [], 0
    for path in paths:
        n = len(path.encode('utf-8', 'surrogateescape')) + 1
        if chunk and size + n > _ARGV_BUDGET:
            yield chunk
            chunk, size = [], 0
        chunk.append(path)
        size += n
    if chunk:
        yield chunk


# --------------------------------------------------------------------------
# The whole comparison, as the module (and the benchmark) run it
# --------------------------------------------------------------------------

def load_baseline(path):
    """Read and parse a baseline file: ``(format, packages)``."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except (IOError, OSError) as exc:
        raise BaselineError('baseline %s cannot be read: %s' % (path, exc.strerror or exc))
    return parse_baseline(data, path)


_EPOCH = operator.itemgetter(1)
_DIGEST = operator.itemgetter(5)


def compare_host(rpm, baseline_format, baseline, ignore=(), backup_dir=None):
    """Compare the installed set with a parsed baseline; everything the
    ``compared`` state returns, as plain data."""
    want_digests = any(map(_DIGEST, baseline))
    base_kept, base_ignored = filter_ignored(baseline, ignore)
    out = rpm.query_installed_raw(digests=want_digests)
    if want_digests or None in map(_EPOCH, base_kept):
        inst_kept, inst_ignored = filter_ignored(parse_query_output(out, want_digests), ignore)
        drift = diff_packages(base_kept, inst_kept)
        n_installed, n_inst_ignored = len(inst_kept), len(inst_ignored)
    else:
        drift, n_installed, n_inst_ignored = diff_query_output(base_kept, out, ignore)

    missing_backups, corrupt_backups, index = [], [], {}
    if backup_dir is not None:
        files = list_backup_files(backup_dir)
        headers = rpm.read_headers(files) if files else {}
        missing_backups, corrupt_backups, index = check_backups(base_kept, headers)

    plan, unresolved = build_restore_plan(
        rpm.base_argv(), base_kept, drift, lambda pkg: pick_backup(index, pkg))
    consistent = not (drift.missing or drift.extra or drift.changed)
    return {
        'consistent': consistent,
        'baseline_format': baseline_format,
        'missing': [p.to_dict() for p in drift.missing],
        'extra': [p.to_dict() for p in drift.extra],
        'changed_packages': [change_to_dict(c) for c in drift.changed],
        'backups_checked': backup_dir is not None,
        'missing_backups': missing_backups,
        'corrupt_backups': corrupt_backups,
        'restore_plan': plan,
        'restore_plan_complete': not unresolved,
        'restore_plan_unresolved': [p.to_dict() for p in unresolved],
        'counts': {
            'baseline': len(base_kept),
            'installed': n_installed,
            'ignored_baseline': len(base_ignored),
            'ignored_installed': n_inst_ignored,
            'missing': len(drift.missing),
            'extra': len(drift.extra),
            'changed_packages': len(drift.changed),
            'missing_backups': len(missing_backups),
            'corrupt_backups': len(corrupt_backups),
        },
    }


def drift_summary(result, source, limit=10):
    """A readable one-paragraph summary of a compare_host() result."""
    def names(items, fmt):
        shown = [fmt(i) for i in items[:limit]]
        if len(items) > limit:
            shown.append('... and %d more' % (len(items) - limit))
        return ', '.join(shown)

    parts = []
    if result['missing']:
        parts.append('%d missing (%s)' % (len(result['missing']), names(result['missing'], lambda p: p['nevra'])))
    if result['extra']:
        parts.append('%d extra (%s)' % (len(result['extra']), names(result['extra'], lambda p: p['nevra'])))
    if result['changed_packages']:
        parts.append('%d changed (%s)' % (len(result['changed_packages']), names(
            result['changed_packages'],
            lambda c: '%s: %s installed, baseline %s' % (c['name'] + ('.' + c['arch'] if c['arch'] else ''),
                                                         c['installed']['nevra'], c['baseline']['nevra']))))
    text = []
    if parts:
        text.append('the installed rpm set differs from the baseline %s: %s.' % (source, '; '.join(parts)))
    bparts = []
    if result['missing_backups']:
        bparts.append('%d missing (%s)' % (len(result['missing_backups']),
                                           names(result['missing_backups'], lambda p: p['file'])))
    if result['corrupt_backups']:
        bparts.append('%d corrupt (%s)' % (len(result['corrupt_backups']), names(
            result['corrupt_backups'], lambda e: '%s: %s' % (e['file'], e['reason']))))
    if bparts:
        text.append('Backup rpms: %s.' % '; '.join(bparts))
    if parts:
        if result['restore_plan_complete']:
            text.append('restore_plan lists the rpm commands that put it right.')
        else:
            text.append('restore_plan is incomplete: no backup rpm for %s.' % names(
                result['restore_plan_unresolved'], lambda p: p['nevra']))
    return ' '.join(text)


# --------------------------------------------------------------------------
# Atomic write
# --------------------------------------------------------------------------

def atomic_write(path, data, mode=BASELINE_MODE):
    """Write data (str) to path atomically: temp file in the same directory,
    fsync, chmod, rename over the target, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data.encode('utf-8'))
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
