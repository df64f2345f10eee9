# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tables for NEVRA parsing, rpm version ordering, the diff, backups and the restore plan.

The version table was checked against rpm 4.18's own ``rpm.vercmp`` (the
integration suite re-checks it, plus 3,000 generated pairs, against rpm).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm
from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm import (
    FS,
    BaselineError,
    HeaderResult,
    NevraError,
    Package,
    RpmError,
)

P = Package


def pkg(text, digest=None):
    """Package from a NEVRA string; the epoch defaults to 0."""
    p = _rpm.parse_nevra(text)
    return p._replace(epoch=p.epoch or 0, digest=digest)


# --------------------------------------------------------------------------
# NEVRA parsing
# --------------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('bash-4.2.46-34.el7.x86_64', P('bash', None, '4.2.46', '34.el7', 'x86_64')),
    ('perl-Pod-Escapes-1.04-299.el7.noarch', P('perl-Pod-Escapes', None, '1.04', '299.el7', 'noarch')),
    ('openssl-1:1.0.2k-25.el7_9.x86_64', P('openssl', 1, '1.0.2k', '25.el7_9', 'x86_64')),
    ('1:openssl-1.0.2k-25.el7_9.x86_64', P('openssl', 1, '1.0.2k', '25.el7_9', 'x86_64')),
    ('NetworkManager-team-1:1.18.8-2.el7_9.x86_64', P('NetworkManager-team', 1, '1.18.8', '2.el7_9', 'x86_64')),
    ('glibc-2.17-326.el7_9.i686', P('glibc', None, '2.17', '326.el7_9', 'i686')),
    ('glibc-0:2.17-326.el7_9.i686', P('glibc', 0, '2.17', '326.el7_9', 'i686')),
    ('foo-(none):1.0-1.x86_64', P('foo', 0, '1.0', '1', 'x86_64')),
    ('(none):foo-1.0-1.x86_64', P('foo', 0, '1.0', '1', 'x86_64')),
    ('gpg-pubkey-f4a80eb5-53a7ff4b', P('gpg-pubkey', None, 'f4a80eb5', '53a7ff4b', None)),
    ('gpg-pubkey-(none):f4a80eb5-53a7ff4b.(none)', P('gpg-pubkey', 0, 'f4a80eb5', '53a7ff4b', None)),
    ('kernel-3.10.0-1160.el7.x86_64.rpm', P('kernel', None, '3.10.0', '1160.el7', 'x86_64')),
    ('python3-3.9.0~rc1-1.fc33.x86_64', P('python3', None, '3.9.0~rc1', '1.fc33', 'x86_64')),
    ('foo-1.0^git1.abc-1.noarch', P('foo', None, '1.0^git1.abc', '1', 'noarch')),
    ('  bash-4.2.46-34.el7.x86_64\r', P('bash', None, '4.2.46', '34.el7', 'x86_64')),
    ('ics-agent-x86_64-6.8.0-1.aarch64', P('ics-agent-x86_64', None, '6.8.0', '1', 'aarch64')),
    ('libstdc++-4.8.5-44.el7.x86_64', P('libstdc++', None, '4.8.5', '44.el7', 'x86_64')),
    ('389-ds-base-1.3.11.1-1.el7.x86_64', P('389-ds-base', None, '1.3.11.1', '1.el7', 'x86_64')),
])
def test_parse_nevra(text, expected):
    assert _rpm.parse_nevra(text) == expected


@pytest.mark.parametrize('text, message', [
    ('foo-1.0-1.el7', "'foo-1.0-1.el7' does not end in a known architecture"),
    ('foo-1.0.x86_64', "'foo-1.0.x86_64' is not name-[epoch:]version-release.arch"),
    ('hello world', "'hello world' is not a package NEVRA"),
    ('', "'' is not a package NEVRA"),
    ('foo-x:1.0-1.x86_64', "the epoch 'x' is not a number"),
    ('1:foo-2:1.0-1.x86_64', 'states the epoch twice'),
    ('-1.0-1.x86_64', "'-1.0-1.x86_64' is not name-[epoch:]version-release.arch"),
    ('foo-1.0-.x86_64', "'foo-1.0-.x86_64' is not name-[epoch:]version-release.arch"),
    ('foo-1.0-1/2.x86_64', "'1/2' is not a valid release"),
    ('f*o-1.0-1.x86_64', "'f*o' is not a valid package name"),
])
def test_parse_nevra_refuses(text, message):
    with pytest.raises(NevraError) as exc:
        _rpm.parse_nevra(text)
    assert message in str(exc.value)


@pytest.mark.parametrize('p, nevra, nvra, filename', [
    (P('foo', 0, '1.0', '1', 'x86_64'), 'foo-1.0-1.x86_64', 'foo-1.0-1.x86_64', 'foo-1.0-1.x86_64.rpm'),
    (P('foo', 2, '1.0', '1', 'noarch'), 'foo-2:1.0-1.noarch', 'foo-1.0-1.noarch', 'foo-1.0-1.noarch.rpm'),
    (P('foo', None, '1.0', '1', 'i686'), 'foo-1.0-1.i686', 'foo-1.0-1.i686', 'foo-1.0-1.i686.rpm'),
    (P('gpg-pubkey', 0, 'f4a80eb5', '53a7ff4b', None), 'gpg-pubkey-f4a80eb5-53a7ff4b',
     'gpg-pubkey-f4a80eb5-53a7ff4b', 'gpg-pubkey-f4a80eb5-53a7ff4b.rpm'),
])
def test_package_labels(p, nevra, nvra, filename):
    assert (p.nevra(), p.nvra(), p.filename(), p.erase_label()) == (nevra, nvra, filename, nevra)


# --------------------------------------------------------------------------
# rpm version ordering
# --------------------------------------------------------------------------

VERCMP = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1), ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1), ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1),
    ("5.5p1", "5.5p2", -1), ("5.5p10", "5.5p1", 1), ("10xyz", "10.1xyz", -1),
    ("xyz10", "xyz10.1", -1), ("xyz.4", "8", -1), ("1.0aa", "1.0a", 1),
    ("1.0010", "1.9", 1), ("1.05", "1.5", 0), ("1.0", "1", 1), ("2.50", "2.5", 1),
    ("fc4", "fc.4", 0), ("FC5", "fc4", -1), ("2a", "2.0", -1), ("1.0a", "1.0.0", -1),
    ("6.0.rc1", "6.0", 1), ("10b2", "10a1", 1), ("1.2.3", "1.2.3.0", -1),
    ("1_0", "1.0", 0), ("1+0", "1.0", 0), ("a+", "a_", 0), ("+a", "a", 0),
    ("1.0~rc1", "1.0", -1), ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0~", "1.0", -1), ("~", "~~", 1), ("~1", "~", 1),
    ("1.0^", "1.0", 1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1), ("1.0^20160101^git1", "1.0^20160101", 1),
    ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0^git1~pre", "1.0^git1", -1), ("1.0^", "1.0~", 1),
    ("^", "~", 1),
    ("20240101", "9999", 1), ("000123", "123", 0), ("12345678901234567890", "12345678901234567889", 1),
    ("el7_9", "el7", 1), ("25.el7_9", "19.el7", 1), ("1.el8", "1.el7", 1),
]


@pytest.mark.parametrize('first, second, expected', VERCMP)
def test_rpmvercmp(first, second, expected):
    assert (_rpm.rpmvercmp(first, second), _rpm.rpmvercmp(second, first)) == (expected, -expected)


@pytest.mark.parametrize('a, b, expected', [
    (P('x', 0, '1.0', '1', 'noarch'), P('x', 0, '1.0', '1', 'noarch'), 0),
    (P('x', 1, '1.0', '1', 'noarch'), P('x', 0, '9.0', '9', 'noarch'), 1),
    (P('x', 0, '1.0', '2', 'noarch'), P('x', 0, '1.0', '10', 'noarch'), -1),
    (P('x', None, '1.0', '1', 'noarch'), P('x', 5, '1.0', '1', 'noarch'), 0),
    (P('x', None, '1.1', '1', 'noarch'), P('x', 5, '1.0', '1', 'noarch'), 1),
])
def test_compare_evr(a, b, expected):
    assert _rpm.compare_evr(a, b) == expected


# --------------------------------------------------------------------------
# Baseline files
# --------------------------------------------------------------------------

def test_parse_baseline_vendor_list_as_rpm_qa_prints_it():
    data = (b'# ICS 6.8.0 shipped set\n'
            b'bash-4.2.46-34.el7.x86_64\n'
            b'\n'
            b'openssl-1.0.2k-25.el7_9.x86_64\n'
            b'gpg-pubkey-f4a80eb5-53a7ff4b\n'
            b'bash-4.2.46-34.el7.x86_64\n')
    assert _rpm.parse_baseline(data, 'list.txt') == ('nvra', [
        P('bash', None, '4.2.46', '34.el7', 'x86_64'),
        P('openssl', None, '1.0.2k', '25.el7_9', 'x86_64'),
        P('gpg-pubkey', None, 'f4a80eb5', '53a7ff4b', None),
    ])


def test_parse_baseline_nevra_list_unstated_epoch_is_zero():
    data = 'bash-4.2.46-34.el7.x86_64\r\nopenssl-1:1.0.2k-25.el7_9.x86_64\r\n'
    assert _rpm.parse_baseline(data, 'list.txt') == ('nevra', [
        P('bash', 0, '4.2.46', '34.el7', 'x86_64'),
        P('openssl', 1, '1.0.2k', '25.el7_9', 'x86_64'),
    ])


@pytest.mark.parametrize('data, message', [
    (b'bash-4.2.46-34.el7.x86_64\nthis is not a package\n',
     "list.txt: line 2: 'this is not a package' is not a package NEVRA"),
    (b'# header\n\nbash-4.2.46-34.el7.x86_64\nopenssl-1.0.2k-25.el7_9\n',
     "list.txt: line 4: 'openssl-1.0.2k-25.el7_9' does not end in a known architecture"),
    (b'bash-4.2.46-34.el7.x86_64\n\xff\xfe\n', 'list.txt: line 2: not UTF-8 text'),
    (b'# nothing\n\n', 'list.txt: no packages in it'),
    (b'{\n  "schema_version": 1,\n  "packages": [\n    {"name": "a" "version": "1"}\n  ]\n}\n',
     "list.txt: line 4 column 18: not valid JSON: Expecting ',' delimiter"),
    (b'{"schema_version": 1}', 'list.txt: a JSON baseline must be an object with a "packages" list'),
    (b'{"schema_version": "1", "packages": []}', 'list.txt: "schema_version" must be an integer'),
    (b'{"schema_version": 2, "packages": []}', 'list.txt: schema_version 2 is newer than this collection'),
    (b'{"schema_version": 1, "packages": [{"name": "a", "version": "1", "release": ""}]}',
     'list.txt: packages[0]: "release" must be a non-empty string'),
    (b'{"schema_version": 1, "packages": [{"name": "a", "version": "1", "release": "1"}, 3]}',
     'list.txt: packages[1]: must be an object'),
    (b'{"schema_version": 1, "packages": [{"name": "a", "version": "1", "release": "1", "epoch": -1}]}',
     'list.txt: packages[0]: "epoch" must be a non-negative integer'),
    (b'{"schema_version": 1, "packages": [{"name": "a", "version": "1", "release": "1", "digest": "abc"}]}',
     'list.txt: packages[0]: "digest" must be a string like "sha256header:<hex>"'),
])
def test_parse_baseline_refuses_with_line(data, message):
    with pytest.raises(BaselineError) as exc:
        _rpm.parse_baseline(data, 'list.txt')
    assert message in str(exc.value)


def test_render_and_parse_baseline_round_trip():
    packages = [
        P('zlib', 0, '1.2.7', '21.el7_9', 'x86_64', 'sha256header:ab'),
        P('gpg-pubkey', 0, 'f4a80eb5', '53a7ff4b', None),
        P('bash', 3, '4.2.46', '34.el7', 'x86_64'),
    ]
    text = _rpm.render_baseline(packages)
    assert text == (
        '{\n'
        '  "schema": "clusterops.upgrade.rpm_baseline",\n'
        '  "schema_version": 1,\n'
        '  "packages": [\n'
        '    {"name": "bash", "epoch": 3, "version": "4.2.46", "release": "34.el7", "arch": "x86_64"},\n'
        '    {"name": "gpg-pubkey", "epoch": 0, "version": "f4a80eb5", "release": "53a7ff4b", "arch": null},\n'
        '    {"name": "zlib", "epoch": 0, "version": "1.2.7", "release": "21.el7_9", "arch": "x86_64",'
        ' "digest": "sha256header:ab"}\n'
        '  ]\n'
        '}\n')
    assert _rpm.parse_baseline(text) == ('json', sorted(packages, key=_rpm._sort_key))


def test_render_empty_baseline_is_valid_json():
    assert json.loads(_rpm.render_baseline([])) == {
        'schema': 'clusterops.upgrade.rpm_baseline', 'schema_version': 1, 'packages': []}


def test_parse_json_baseline_accepts_none_epoch_and_arch():
    data = json.dumps({'schema_version': 1, 'packages': [
        {'name': 'gpg-pubkey', 'epoch': '(none)', 'version': 'a', 'release': 'b', 'arch': '(none)'},
        {'name': 'bash', 'version': '4', 'release': '1', 'arch': 'x86_64'},
        {'name': 'vim', 'epoch': '2', 'version': '7', 'release': '1', 'arch': 'x86_64'},
    ]})
    assert _rpm.parse_baseline(data) == ('json', [
        P('gpg-pubkey', 0, 'a', 'b', None), P('bash', 0, '4', '1', 'x86_64'), P('vim', 2, '7', '1', 'x86_64')])


# --------------------------------------------------------------------------
# rpm -qa output
# --------------------------------------------------------------------------

def test_parse_query_output():
    out = ''.join(FS.join(f) + '\n' for f in [
        ('bash', '(none)', '4.2.46', '34.el7', 'x86_64'),
        ('openssl', '1', '1.0.2k', '25.el7_9', 'x86_64'),
        ('gpg-pubkey', '(none)', 'f4a80eb5', '53a7ff4b', '(none)'),
    ])
    assert _rpm.parse_query_output(out) == [
        P('bash', 0, '4.2.46', '34.el7', 'x86_64'),
        P('openssl', 1, '1.0.2k', '25.el7_9', 'x86_64'),
        P('gpg-pubkey', 0, 'f4a80eb5', '53a7ff4b', None),
    ]


def test_parse_query_output_with_digests_prefers_sha256():
    out = (FS.join(('a', '(none)', '1', '1', 'noarch', 'aa', 'bb')) + '\n'
           + FS.join(('b', '(none)', '1', '1', 'noarch', '(none)', 'cc')) + '\n'
           + FS.join(('c', '(none)', '1', '1', 'noarch', '(none)', '(none)')) + '\n')
    assert [p.digest for p in _rpm.parse_query_output(out, digests=True)] == [
        'sha256header:aa', 'sha1header:cc', None]


@pytest.mark.parametrize('out, message', [
    ('bash 4.2 1 x86_64\n', "rpm printed an unexpected line 1: 'bash 4.2 1 x86_64'"),
    (FS.join(('a', 'x', '1', '1', 'noarch')) + '\n', 'rpm printed an unexpected line 1:'),
])
def test_parse_query_output_refuses(out, message):
    with pytest.raises(RpmError) as exc:
        _rpm.parse_query_output(out)
    assert message in str(exc.value)


def test_filter_ignored():
    packages = [pkg('gpg-pubkey-a-b'), pkg('bash-1-1.x86_64'), pkg('kernel-debug-1-1.x86_64')]
    assert _rpm.filter_ignored(packages, ['gpg-pubkey*', 'kernel-*']) == (
        [packages[1]], [packages[0], packages[2]])
    assert _rpm.filter_ignored(packages, []) == (packages, [])


# --------------------------------------------------------------------------
# The diff
# --------------------------------------------------------------------------

def _nevras(items):
    return [p.nevra() for p in items]


def _changes(items):
    return [(c.baseline.name, c.baseline.arch, c.kind, c.baseline.nevra(), c.installed.nevra()) for c in items]


BASE = ['bash-4.2.46-34.el7.x86_64', 'glibc-2.17-326.el7.x86_64', 'kernel-3.10.0-1160.el7.x86_64',
        'vim-enhanced-2:7.4.629-8.el7.x86_64']

DIFF_CASES = [
    # id, baseline, installed, missing, extra, changed
    ('identical', BASE, BASE, [], [], []),
    ('removed', BASE, BASE[1:], ['bash-4.2.46-34.el7.x86_64'], [], []),
    ('added', BASE, BASE + ['tcpdump-14:4.9.2-4.el7.x86_64'], [], ['tcpdump-14:4.9.2-4.el7.x86_64'], []),
    ('upgraded', BASE, ['bash-4.2.46-35.el7_9.x86_64'] + BASE[1:], [], [],
     [('bash', 'x86_64', 'upgraded', 'bash-4.2.46-34.el7.x86_64', 'bash-4.2.46-35.el7_9.x86_64')]),
    ('downgraded', BASE, ['bash-4.2.45-1.el7.x86_64'] + BASE[1:], [], [],
     [('bash', 'x86_64', 'downgraded', 'bash-4.2.46-34.el7.x86_64', 'bash-4.2.45-1.el7.x86_64')]),
    ('epoch-only', BASE, BASE[:3] + ['vim-enhanced-3:7.4.629-8.el7.x86_64'], [], [],
     [('vim-enhanced', 'x86_64', 'upgraded', 'vim-enhanced-2:7.4.629-8.el7.x86_64',
       'vim-enhanced-3:7.4.629-8.el7.x86_64')]),
    ('epoch-only down to none', BASE, BASE[:3] + ['vim-enhanced-7.4.629-8.el7.x86_64'], [], [],
     [('vim-enhanced', 'x86_64', 'downgraded', 'vim-enhanced-2:7.4.629-8.el7.x86_64',
       'vim-enhanced-7.4.629-8.el7.x86_64')]),
    ('extra arch', BASE, BASE + ['glibc-2.17-326.el7.i686'], [], ['glibc-2.17-326.el7.i686'], []),
    ('missing arch', BASE + ['glibc-2.17-326.el7.i686'], BASE, ['glibc-2.17-326.el7.i686'], [], []),
    ('arch switch', ['foo-1-1.noarch'], ['foo-1-1.x86_64'], ['foo-1-1.noarch'], ['foo-1-1.x86_64'], []),
    ('second kernel', BASE, BASE + ['kernel-3.10.0-1062.el7.x86_64'], [], ['kernel-3.10.0-1062.el7.x86_64'], []),
    ('kernel replaced', BASE, BASE[:2] + ['kernel-3.10.0-1062.el7.x86_64'] + BASE[3:], [], [],
     [('kernel', 'x86_64', 'downgraded', 'kernel-3.10.0-1160.el7.x86_64', 'kernel-3.10.0-1062.el7.x86_64')]),
    ('two kernels, one replaced',
     ['kernel-3.10.0-1062.el7.x86_64', 'kernel-3.10.0-1160.el7.x86_64'],
     ['kernel-3.10.0-1160.el7.x86_64', 'kernel-3.10.0-1160.2.el7.x86_64'],
     ['kernel-3.10.0-1062.el7.x86_64'], ['kernel-3.10.0-1160.2.el7.x86_64'], []),
    ('two kernels, one removed',
     ['kernel-3.10.0-1062.el7.x86_64', 'kernel-3.10.0-1160.el7.x86_64'],
     ['kernel-3.10.0-1160.el7.x86_64'], ['kernel-3.10.0-1062.el7.x86_64'], [], []),
    ('same version string differs', ['foo-1.0-1.noarch'], ['foo-1.00-1.noarch'], [], [],
     [('foo', 'noarch', 'rebuilt', 'foo-1.0-1.noarch', 'foo-1.00-1.noarch')]),
    ('absent epoch equals zero', ['foo-0:1.0-1.noarch'], ['foo-1.0-1.noarch'], [], [], []),
]


@pytest.mark.parametrize('baseline, installed, missing, extra, changed',
                         [c[1:] for c in DIFF_CASES], ids=[c[0] for c in DIFF_CASES])
def test_diff_packages(baseline, installed, missing, extra, changed):
    drift = _rpm.diff_packages([pkg(t) for t in baseline], [pkg(t) for t in installed])
    assert (_nevras(drift.missing), _nevras(drift.extra), _changes(drift.changed)) == (missing, extra, changed)


def _printed(packages):
    """rpm -qa output for packages; epoch 0 spelled both ways rpm spells it."""
    return ''.join(FS.join((p.name, ('(none)' if n % 2 else '0') if not p.epoch else str(p.epoch),
                            p.version, p.release, p.arch or '(none)')) + '\n' for n, p in enumerate(packages))


@pytest.mark.parametrize('baseline, installed, missing, extra, changed',
                         [c[1:] for c in DIFF_CASES], ids=[c[0] for c in DIFF_CASES])
def test_diff_query_output_is_diff_packages(baseline, installed, missing, extra, changed):
    """The fast path on raw rpm output gives exactly what the general diff gives."""
    b, i = [pkg(t) for t in baseline], [pkg(t) for t in installed]
    drift, count, ignored = _rpm.diff_query_output(b, _printed(i))
    assert (drift, count, ignored) == (_rpm.diff_packages(b, i), len(i), 0)
    assert (_nevras(drift.missing), _nevras(drift.extra), _changes(drift.changed)) == (missing, extra, changed)


def test_diff_query_output_duplicates_and_ignored():
    b = [pkg(t) for t in BASE]
    printed = _printed([pkg(t) for t in BASE + [BASE[0], 'gpg-pubkey-a-b', 'gpg-pubkey-c-d']])
    drift, count, ignored = _rpm.diff_query_output(b, printed, ['gpg-pubkey*'])
    assert (_nevras(drift.missing), _nevras(drift.extra), drift.changed, count, ignored) == (
        [], [BASE[0]], [], 5, 2)


def test_diff_query_output_epoch_spellings_do_not_cross():
    """(none) means 0: it must not match a baseline package with epoch 1."""
    b = [pkg('vim-1:7.4-1.x86_64')]
    printed = FS.join(('vim', '(none)', '7.4', '1', 'x86_64')) + '\n'
    drift, count, ignored = _rpm.diff_query_output(b, printed)
    assert _changes(drift.changed) == [('vim', 'x86_64', 'downgraded', 'vim-1:7.4-1.x86_64', 'vim-7.4-1.x86_64')]


def test_diff_unknown_epoch_matches_any_epoch():
    baseline = [P('vim-enhanced', None, '7.4.629', '8.el7', 'x86_64')]
    installed = [P('vim-enhanced', 2, '7.4.629', '8.el7', 'x86_64')]
    assert _rpm.diff_packages(baseline, installed) == _rpm.Drift([], [], [])


def test_diff_digest_difference_is_a_rebuild():
    b = [pkg('foo-1.0-1.noarch', 'sha256header:aa'), pkg('kernel-1-1.x86_64', 'sha256header:k1'),
         pkg('kernel-2-1.x86_64', 'sha256header:k2')]
    i = [pkg('foo-1.0-1.noarch', 'sha256header:bb'), pkg('kernel-1-1.x86_64', 'sha256header:k1'),
         pkg('kernel-2-1.x86_64', 'sha256header:XX')]
    drift = _rpm.diff_packages(b, i)
    assert (drift.missing, drift.extra, _changes(drift.changed)) == ([], [], [
        ('foo', 'noarch', 'rebuilt', 'foo-1.0-1.noarch', 'foo-1.0-1.noarch'),
        ('kernel', 'x86_64', 'rebuilt', 'kernel-2-1.x86_64', 'kernel-2-1.x86_64')])


def test_diff_without_digest_on_one_side_ignores_digests():
    drift = _rpm.diff_packages([pkg('foo-1.0-1.noarch', 'sha256header:aa')], [pkg('foo-1.0-1.noarch')])
    assert drift == _rpm.Drift([], [], [])


def test_change_to_dict():
    change = _rpm.Change(pkg('bash-1-1.x86_64'), pkg('bash-2-1.x86_64'), 'upgraded')
    assert _rpm.change_to_dict(change) == {
        'name': 'bash', 'arch': 'x86_64', 'change': 'upgraded',
        'baseline': {'name': 'bash', 'epoch': 0, 'version': '1', 'release': '1', 'arch': 'x86_64',
                     'nevra': 'bash-1-1.x86_64'},
        'installed': {'name': 'bash', 'epoch': 0, 'version': '2', 'release': '1', 'arch': 'x86_64',
                      'nevra': 'bash-2-1.x86_64'},
    }


# --------------------------------------------------------------------------
# Backups
# --------------------------------------------------------------------------

def _headers(mapping):
    return dict((path, HeaderResult(pkg(text) if text else None, None if text else 'error: bad'))
                for path, text in mapping.items())


def test_check_backups():
    baseline = [pkg('bash-4.2-1.x86_64'), pkg('glibc-2.17-1.x86_64'), pkg('glibc-2.17-1.i686'),
                pkg('vim-2:7.4-1.x86_64'), pkg('gpg-pubkey-a-b')]
    headers = _headers({
        '/b/bash-4.2-1.x86_64.rpm': 'bash-4.2-1.x86_64',
        '/b/glibc-2.17-1.x86_64.rpm': 'glibc-2.18-1.x86_64',   # renamed wrong
        '/b/glibc-i686.rpm': 'glibc-2.17-1.i686',              # right header, odd name
        '/b/vim-7.4-1.x86_64.rpm': 'vim-3:7.4-1.x86_64',       # other epoch
        '/b/zz-1-1.noarch.rpm': None,                          # unreadable
    })
    missing, corrupt, index = _rpm.check_backups(baseline, headers)
    assert [m['file'] for m in missing] == ['glibc-2.17-1.x86_64.rpm', 'vim-7.4-1.x86_64.rpm']
    assert missing[1] == {'name': 'vim', 'epoch': 2, 'version': '7.4', 'release': '1', 'arch': 'x86_64',
                          'nevra': 'vim-2:7.4-1.x86_64', 'file': 'vim-7.4-1.x86_64.rpm'}
    assert [(c['file'], c['claimed'], c['reason']) for c in corrupt] == [
        ('glibc-2.17-1.x86_64.rpm', 'glibc-2.17-1.x86_64',
         'the header is glibc-2.18-1.x86_64 but the name claims glibc-2.17-1.x86_64'),
        ('glibc-i686.rpm', None,
         'its name is not NAME-VERSION-RELEASE.ARCH.rpm; the header is glibc-2.17-1.i686'),
        ('zz-1-1.noarch.rpm', 'zz-1-1.noarch', 'rpm cannot read it: error: bad'),
    ]
    assert _rpm.pick_backup(index, pkg('glibc-2.17-1.i686')) == '/b/glibc-i686.rpm'
    assert _rpm.pick_backup(index, pkg('glibc-2.18-1.x86_64')) == '/b/glibc-2.17-1.x86_64.rpm'


def test_check_backups_with_digests():
    baseline = [pkg('bash-4.2-1.x86_64', 'sha256header:good')]
    headers = {'/b/bash-4.2-1.x86_64.rpm': HeaderResult(pkg('bash-4.2-1.x86_64', 'sha256header:other'), None)}
    missing, corrupt, index = _rpm.check_backups(baseline, headers)
    assert [m['nevra'] for m in missing] == ['bash-4.2-1.x86_64']
    assert [c['reason'] for c in corrupt] == [
        'it is bash-4.2-1.x86_64 but not the build in the baseline '
        '(digest sha256header:other, baseline sha256header:good)']
    assert _rpm.pick_backup(index, baseline[0]) is None


def test_pick_backup_prefers_correctly_named_file():
    headers = _headers({'/b/a-copy.rpm': 'foo-1-1.noarch', '/b/foo-1-1.noarch.rpm': 'foo-1-1.noarch'})
    index = _rpm.check_backups([], headers)[2]
    assert _rpm.pick_backup(index, pkg('foo-1-1.noarch')) == '/b/foo-1-1.noarch.rpm'


def test_list_backup_files(tmp_path):
    for name in ('b-1-1.noarch.rpm', 'a-1-1.noarch.rpm', '.a-1-1.noarch.rpm.part', 'notes.txt'):
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / 'dir.rpm').mkdir()
    assert _rpm.list_backup_files(str(tmp_path)) == [
        str(tmp_path / 'a-1-1.noarch.rpm'), str(tmp_path / 'b-1-1.noarch.rpm')]


def test_list_backup_files_missing_dir(tmp_path):
    with pytest.raises(RpmError) as exc:
        _rpm.list_backup_files(str(tmp_path / 'nope'))
    assert str(exc.value) == 'backup_dir %s cannot be read: No such file or directory' % (tmp_path / 'nope')


# --------------------------------------------------------------------------
# The restore plan
# --------------------------------------------------------------------------

RPM = ['rpm', '--root', '/r', '--dbpath', '/var/lib/rpm']


def _plan(baseline, installed, files=None):
    baseline = [pkg(t) for t in baseline]
    installed = [pkg(t) for t in installed]
    drift = _rpm.diff_packages(baseline, installed)
    files = files if files is not None else dict((p.nevra(), '/b/' + p.filename()) for p in baseline)
    plan, unresolved = _rpm.build_restore_plan(RPM, baseline, drift, lambda p: files.get(p.nevra()))
    return plan, [p.nevra() for p in unresolved]


PLAN_CASES = [
    ('consistent', BASE, BASE, []),
    ('removed', BASE, BASE[1:], [RPM + ['-ivh', '--oldpackage', '/b/bash-4.2.46-34.el7.x86_64.rpm']]),
    ('added', BASE, BASE + ['tcpdump-14:4.9.2-4.el7.x86_64'], [RPM + ['-e', 'tcpdump-14:4.9.2-4.el7.x86_64']]),
    ('upgraded', BASE, ['bash-4.2.46-35.el7_9.x86_64'] + BASE[1:],
     [RPM + ['-Uvh', '--oldpackage', '/b/bash-4.2.46-34.el7.x86_64.rpm']]),
    ('epoch-only', BASE, BASE[:3] + ['vim-enhanced-3:7.4.629-8.el7.x86_64'],
     [RPM + ['-Uvh', '--oldpackage', '/b/vim-enhanced-7.4.629-8.el7.x86_64.rpm']]),
    ('second kernel', BASE, BASE + ['kernel-3.10.0-1062.el7.x86_64'],
     [RPM + ['-e', 'kernel-3.10.0-1062.el7.x86_64']]),
    ('older kernel missing', BASE + ['kernel-3.10.0-1062.el7.x86_64'], BASE,
     [RPM + ['-ivh', '--oldpackage', '/b/kernel-3.10.0-1062.el7.x86_64.rpm']]),
    ('two kernels, one replaced',
     ['kernel-3.10.0-1062.el7.x86_64', 'kernel-3.10.0-1160.el7.x86_64'],
     ['kernel-3.10.0-1160.el7.x86_64', 'kernel-3.10.0-1160.2.el7.x86_64'],
     [RPM + ['-ivh', '--oldpackage', '/b/kernel-3.10.0-1062.el7.x86_64.rpm'],
      RPM + ['-e', 'kernel-3.10.0-1160.2.el7.x86_64']]),
    ('multi-arch sibling goes along', ['lib-1-1.x86_64', 'lib-1-1.i686'], ['lib-2-1.x86_64', 'lib-1-1.i686'],
     [RPM + ['-Uvh', '--oldpackage', '--replacepkgs', '/b/lib-1-1.i686.rpm', '/b/lib-1-1.x86_64.rpm']]),
    ('multi-arch sibling missing', ['lib-1-1.x86_64', 'lib-1-1.i686'], ['lib-2-1.x86_64'],
     [RPM + ['-Uvh', '--oldpackage', '/b/lib-1-1.i686.rpm', '/b/lib-1-1.x86_64.rpm']]),
    ('extra arch of a changed name goes first', ['lib-1-1.x86_64'], ['lib-2-1.x86_64', 'lib-2-1.i686'],
     [RPM + ['-e', 'lib-2-1.i686'], RPM + ['-Uvh', '--oldpackage', '/b/lib-1-1.x86_64.rpm']]),
    ('arch switch erases first', ['foo-1-1.noarch'], ['foo-1-1.x86_64'],
     [RPM + ['-e', 'foo-1-1.x86_64'], RPM + ['-ivh', '--oldpackage', '/b/foo-1-1.noarch.rpm']]),
    ('rebuilt', ['foo-1.0-1.noarch'], ['foo-1.00-1.noarch'],
     [RPM + ['-Uvh', '--oldpackage', '--replacepkgs', '/b/foo-1.0-1.noarch.rpm']]),
    ('changed name with several baseline kernels',
     ['kernel-1-1.x86_64', 'kernel-2-1.x86_64', 'kernel-1-1.i686'],
     ['kernel-1-1.x86_64', 'kernel-2-1.x86_64', 'kernel-3-1.i686'],
     [RPM + ['-e', 'kernel-3-1.i686'], RPM + ['-ivh', '--oldpackage', '/b/kernel-1-1.i686.rpm']]),
    ('everything at once', BASE, ['bash-4.2.46-35.el7_9.x86_64', 'kernel-3.10.0-1160.el7.x86_64',
                                  'kernel-3.10.0-1062.el7.x86_64', 'vim-enhanced-7.4.629-8.el7.x86_64',
                                  'tcpdump-14:4.9.2-4.el7.x86_64'],
     [RPM + ['-ivh', '--oldpackage', '/b/glibc-2.17-326.el7.x86_64.rpm'],
      RPM + ['-Uvh', '--oldpackage', '/b/bash-4.2.46-34.el7.x86_64.rpm',
             '/b/vim-enhanced-7.4.629-8.el7.x86_64.rpm'],
      RPM + ['-e', 'kernel-3.10.0-1062.el7.x86_64', 'tcpdump-14:4.9.2-4.el7.x86_64']]),
]


@pytest.mark.parametrize('baseline, installed, expected', [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])
def test_build_restore_plan(baseline, installed, expected):
    assert _plan(baseline, installed) == (expected, [])


def test_build_restore_plan_reports_what_it_cannot_restore():
    plan, unresolved = _plan(BASE + ['gpg-pubkey-a-b'], ['bash-4.2.46-35.el7_9.x86_64'] + BASE[2:] + ['x-1-1.noarch'],
                             files={'bash-4.2.46-34.el7.x86_64': '/b/bash.rpm'})
    assert plan == [RPM + ['-Uvh', '--oldpackage', '/b/bash.rpm'], RPM + ['-e', 'x-1-1.noarch']]
    assert unresolved == ['glibc-2.17-326.el7.x86_64', 'gpg-pubkey-a-b']


# --------------------------------------------------------------------------
# Reading package headers through the seam
# --------------------------------------------------------------------------

def _fake_rpm_file(path, name):
    """A file laid out like a package: lead, empty signature header, a main
    header with one string entry. Returns the main header's sha256."""
    lead = b'\xed\xab\xee\xdb' + b'\0' * 92
    sig = b'\x8e\xad\xe8\x01\0\0\0\0' + struct.pack('>II', 0, 0)
    data = name.encode() + b'\0'
    main = b'\x8e\xad\xe8\x01\0\0\0\0' + struct.pack('>II', 1, len(data)) + struct.pack('>IIII', 1000, 6, 0, 1) + data
    with open(path, 'wb') as f:
        f.write(lead + sig + main + b'payload')
    return hashlib.sha256(main).hexdigest(), hashlib.sha1(main).hexdigest()


def _record(nevra, sha256, sha1='(none)'):
    p = pkg(nevra)
    return FS.join((p.name, str(p.epoch) if p.epoch else '(none)', p.version, p.release, p.arch, sha256, sha1)) + '\n'


class Recorder(object):
    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, argv, env):
        self.calls.append((argv, env))
        return self.replies.pop(0)


def test_header_digests_of_a_package_layout(tmp_path):
    path = str(tmp_path / 'a.rpm')
    assert _rpm.header_digests(path) is None
    digests = _fake_rpm_file(path, 'a')
    assert _rpm.header_digests(path) == digests
    (tmp_path / 'short.rpm').write_bytes(open(path, 'rb').read()[:120])
    assert _rpm.header_digests(str(tmp_path / 'short.rpm')) is None


def test_read_headers_one_call_when_all_readable(tmp_path):
    a, b = str(tmp_path / 'a-1-1.noarch.rpm'), str(tmp_path / 'b-1-1.noarch.rpm')
    da, db = _fake_rpm_file(a, 'a'), _fake_rpm_file(b, 'b')
    # rpm prints the records in any order: they are matched by digest, not position
    runner = Recorder([(0, _record('b-1-1.noarch', db[0]) + _record('a-1-1.noarch', '(none)', da[1]), '')])
    rpm = _rpm.Rpm(runner=runner, binary='/usr/bin/rpm', root='/r')
    assert rpm.read_headers([a, b]) == {
        a: HeaderResult(pkg('a-1-1.noarch', 'sha1header:' + da[1]), None),
        b: HeaderResult(pkg('b-1-1.noarch', 'sha256header:' + db[0]), None),
    }
    assert runner.calls == [(['/usr/bin/rpm', '--root', '/r', '--dbpath', '/var/lib/rpm', '-qp', '--nomanifest',
                              '--qf', _rpm.HEADER_QF, a, b], {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'})]


def test_read_headers_asks_again_only_for_failures(tmp_path):
    a, bad, c = str(tmp_path / 'a.rpm'), str(tmp_path / 'bad.rpm'), str(tmp_path / 'c.rpm')
    da, dc = _fake_rpm_file(a, 'a'), _fake_rpm_file(c, 'c')
    (tmp_path / 'bad.rpm').write_bytes(b'garbage')
    runner = Recorder([
        (1, _record('a-1-1.noarch', da[0]) + _record('c-1-1.noarch', dc[0]), ''),
        (1, '', 'error: %s: not an rpm package\nwarning: something\n' % bad),
    ])
    rpm = _rpm.Rpm(runner=runner)
    result = rpm.read_headers([a, bad, c])
    assert result[bad] == HeaderResult(None, 'error: %s: not an rpm package' % bad)
    assert (result[a].package.name, result[c].package.name) == ('a', 'c')
    assert [call[0][3:] for call in runner.calls] == [
        ['-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, a, bad, c],
        ['-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, bad],
    ]


def test_read_headers_silent_failure(tmp_path):
    bad = str(tmp_path / 'bad.rpm')
    (tmp_path / 'bad.rpm').write_bytes(b'')
    runner = Recorder([(1, '', ''), (1, '', '')])
    assert _rpm.Rpm(runner=runner).read_headers([bad]) == {
        bad: HeaderResult(None, 'not a package file (rpm exit status 1)')}


def test_read_headers_splits_huge_argv(tmp_path, monkeypatch):
    monkeypatch.setattr(_rpm, '_ARGV_BUDGET', 40)
    paths = [str(tmp_path / ('%02d-1-1.noarch.rpm' % n)) for n in range(3)]
    digests = [_fake_rpm_file(p, str(n)) for n, p in enumerate(paths)]
    runner = Recorder([(0, _record('p%d-1-1.noarch' % n, d[0]), '') for n, d in enumerate(digests)])
    result = _rpm.Rpm(runner=runner).read_headers(paths)
    assert [result[p].package.name for p in paths] == ['p0', 'p1', 'p2']
    assert [call[0][-1:] for call in runner.calls] == [[p] for p in paths]


# --------------------------------------------------------------------------
# Querying the installed set
# --------------------------------------------------------------------------

def _db(tmp_path, name='rpmdb.sqlite'):
    db = tmp_path / 'var' / 'lib' / 'rpm'
    db.mkdir(parents=True)
    (db / name).write_bytes(b'')
    return str(tmp_path)


@pytest.mark.parametrize('dbfile', ['rpmdb.sqlite', 'Packages', 'Packages.db'])
def test_query_installed_one_call(tmp_path, dbfile):
    root = _db(tmp_path, dbfile)
    runner = Recorder([(0, FS.join(('bash', '(none)', '4', '1', 'x86_64')) + '\n', '')])
    assert _rpm.Rpm(runner=runner, root=root).query_installed() == [P('bash', 0, '4', '1', 'x86_64')]
    assert runner.calls == [(['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qa', '--qf', _rpm.INSTALLED_QF],
                             {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'})]


def test_query_installed_refuses_missing_db(tmp_path):
    runner = Recorder([])
    with pytest.raises(RpmError) as exc:
        _rpm.Rpm(runner=runner, root=str(tmp_path), dbpath='/usr/lib/sysimage/rpm').query_installed()
    assert str(exc.value) == (
        'no rpm database at %s/usr/lib/sysimage/rpm (root=%s, dbpath=/usr/lib/sysimage/rpm); set root/dbpath to '
        'where the database is (rpm --eval %%_dbpath prints the default)' % (tmp_path, tmp_path))
    assert runner.calls == []


def test_query_installed_reports_rpm_failure(tmp_path):
    runner = Recorder([(1, '', 'error: db5 error\n')])
    with pytest.raises(RpmError) as exc:
        _rpm.Rpm(runner=runner, root=_db(tmp_path)).query_installed()
    assert str(exc.value) == 'rpm -qa failed (rc=1): error: db5 error'


# --------------------------------------------------------------------------
# compare_host and the summary
# --------------------------------------------------------------------------

def test_compare_host_and_summary(tmp_path):
    root = _db(tmp_path)
    out = ''.join(FS.join(f) + '\n' for f in [
        ('bash', '(none)', '4.2.46', '35.el7_9', 'x86_64'),
        ('kernel', '(none)', '3.10.0', '1160.el7', 'x86_64'),
        ('kernel', '(none)', '3.10.0', '1062.el7', 'x86_64'),
        ('gpg-pubkey', '(none)', 'a', 'b', '(none)'),
    ])
    runner = Recorder([(0, out, '')])
    baseline = [pkg(t) for t in ('bash-4.2.46-34.el7.x86_64', 'kernel-3.10.0-1160.el7.x86_64', 'glibc-2.17-1.x86_64')]
    result = _rpm.compare_host(_rpm.Rpm(runner=runner, root=root), 'nevra', baseline, ignore=['gpg-pubkey*'])
    assert result['consistent'] is False
    assert [p['nevra'] for p in result['missing']] == ['glibc-2.17-1.x86_64']
    assert [p['nevra'] for p in result['extra']] == ['kernel-3.10.0-1062.el7.x86_64']
    assert [(c['name'], c['change']) for c in result['changed_packages']] == [('bash', 'upgraded')]
    assert result['restore_plan'] == [['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-e',
                                       'kernel-3.10.0-1062.el7.x86_64']]
    assert result['restore_plan_complete'] is False
    assert result['counts'] == {'baseline': 3, 'installed': 3, 'ignored_baseline': 0, 'ignored_installed': 1,
                                'missing': 1, 'extra': 1, 'changed_packages': 1, 'missing_backups': 0,
                                'corrupt_backups': 0}
    assert _rpm.drift_summary(result, '/etc/base.json') == (
        'the installed rpm set differs from the baseline /etc/base.json: 1 missing (glibc-2.17-1.x86_64); '
        '1 extra (kernel-3.10.0-1062.el7.x86_64); 1 changed (bash.x86_64: bash-4.2.46-35.el7_9.x86_64 installed, '
        'baseline bash-4.2.46-34.el7.x86_64). restore_plan is incomplete: no backup rpm for '
        'bash-4.2.46-34.el7.x86_64, glibc-2.17-1.x86_64.')
    assert len(runner.calls) == 1


def test_drift_summary_truncates_long_lists():
    result = {'missing': [{'nevra': 'p%d-1-1.noarch' % n} for n in range(12)], 'extra': [],
              'changed_packages': [], 'missing_backups': [], 'corrupt_backups': [],
              'restore_plan_complete': True, 'restore_plan_unresolved': []}
    assert _rpm.drift_summary(result, 'b', limit=2) == (
        'the installed rpm set differs from the baseline b: 12 missing (p0-1-1.noarch, p1-1-1.noarch, '
        '... and 10 more). restore_plan lists the rpm commands that put it right.')


# --------------------------------------------------------------------------
# Atomic write
# --------------------------------------------------------------------------

def test_atomic_write(tmp_path):
    path = str(tmp_path / 'baseline.json')
    (tmp_path / 'baseline.json').write_text('old')
    os.chmod(path, 0o600)
    _rpm.atomic_write(path, 'new\n')
    assert (open(path).read(), stat.S_IMODE(os.stat(path).st_mode)) == ('new\n', 0o644)
    assert sorted(os.listdir(str(tmp_path))) == ['baseline.json']


def test_atomic_write_leaves_no_temp_file_on_error(tmp_path, monkeypatch):
    path = str(tmp_path / 'baseline.json')

    def boom(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(_rpm.os, 'rename', boom)
    with pytest.raises(OSError):
        _rpm.atomic_write(path, 'data')
    assert os.listdir(str(tmp_path)) == []
