# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""package_verify through AnsibleModule (patch_module_args): results, the
failure message naming each file, option errors, check mode identical and
read-only, no command ever run."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import package_verify


@pytest.fixture(autouse=True)
def no_commands(monkeypatch):
    """The module must never run a command; fail loudly if it tries."""
    def refuse(self, args, **kwargs):
        raise AssertionError('package_verify ran a command: %r' % (args,))
    monkeypatch.setattr(package_verify.AnsibleModule, 'run_command', refuse)


def run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            package_verify.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def bundles(tmp_path):
    paths = {}
    for name, text in (('P-M001-b1.upgrade.zip', b'control'), ('P-S001-b1.upgrade.zip', b'compute')):
        path = tmp_path / name
        with zipfile.ZipFile(str(path), 'w', zipfile.ZIP_DEFLATED) as archive:
            archive.writestr('rpms/a.rpm', text * 1000)
        paths[name] = str(path)
    return paths


def sha(path, algorithm='sha256'):
    with open(path, 'rb') as handle:
        return hashlib.new(algorithm, handle.read()).hexdigest()


def entry(path, status='ok', detail='', expected=None, reads=1, archive='ok'):
    return {
        'path': path, 'size': os.path.getsize(path), 'checksum': sha(path),
        'expected': sha(path) if expected is None else expected, 'entry': os.path.basename(path),
        'status': status, 'detail': detail, 'archive_check': archive, 'reads': reads,
    }


@pytest.mark.parametrize('check_mode', [False, True])
def test_manifest_ok(tmp_path, capsys, bundles, check_mode):
    manifest = tmp_path / 'SHA256SUMS'
    m, s = bundles['P-M001-b1.upgrade.zip'], bundles['P-S001-b1.upgrade.zip']
    manifest.write_text('# vendor manifest\r\n%s  %s\r\nSHA256 (%s) = %s\r\n' % (
        sha(m).upper(), os.path.basename(m), os.path.basename(s), sha(s)))
    rc, out = run(capsys, {'path': [m, s], 'checksum_file': str(manifest), '_ansible_check_mode': check_mode})
    assert rc == 0
    assert (out['changed'], out['verified'], out['msg']) == (False, True, '2 file(s) verified')
    assert out['files'] == [entry(m), entry(s)]


def test_checksums_dict_ok(capsys, bundles):
    m = bundles['P-M001-b1.upgrade.zip']
    rc, out = run(capsys, {'path': [m], 'checksums': {os.path.basename(m): sha(m)}})
    assert (rc, out['verified'], out['files']) == (0, True, [entry(m)])


def test_sha512(tmp_path, capsys, bundles):
    m = bundles['P-M001-b1.upgrade.zip']
    manifest = tmp_path / 'SHA512SUMS'
    manifest.write_text('SHA512 (%s) = %s\n' % (os.path.basename(m), sha(m, 'sha512')))
    rc, out = run(capsys, {'path': [m], 'checksum_file': str(manifest), 'algorithm': 'sha512'})
    assert (rc, out['files'][0]['checksum'], out['files'][0]['status']) == (0, sha(m, 'sha512'), 'ok')


@pytest.mark.parametrize('check_mode', [False, True])
def test_failure_lists_each_offending_file(tmp_path, capsys, bundles, check_mode):
    m, s = bundles['P-M001-b1.upgrade.zip'], bundles['P-S001-b1.upgrade.zip']
    gone = str(tmp_path / 'P-X001-b1.upgrade.zip')
    wrong = '0' * 64
    manifest = tmp_path / 'SHA256SUMS'
    manifest.write_text('%s  %s\n%s  %s\n' % (wrong, os.path.basename(m), wrong, os.path.basename(gone)))
    rc, out = run(capsys, {'path': [m, s, gone], 'checksum_file': str(manifest),
                           '_ansible_check_mode': check_mode})
    assert rc == 1
    assert out['failed'] is True
    assert out['changed'] is False
    assert out['verified'] is False
    assert out['msg'] == (
        '3 of 3 file(s) failed verification: '
        '%s: mismatch (sha256 is %s, expected %s); '
        "%s: not_in_manifest (no manifest entry named 'P-S001-b1.upgrade.zip'); "
        '%s: missing (file does not exist)' % (m, sha(m), wrong, s, gone))
    assert [f['status'] for f in out['files']] == ['mismatch', 'not_in_manifest', 'missing']


def test_corrupt_archive(tmp_path, capsys):
    path = tmp_path / 'P-M001-b1.upgrade.zip'
    with zipfile.ZipFile(str(path), 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr('a.rpm', b'x' * 10000)
    path.write_bytes(path.read_bytes()[:5000])
    rc, out = run(capsys, {'path': [str(path)], 'checksums': {path.name: sha(str(path))}})
    assert rc == 1
    assert out['msg'] == ("1 of 1 file(s) failed verification: %s: corrupt_archive (zip archive is truncated: "
                          "the file ends inside member 'a.rpm' (byte 5000))" % path)
    assert (out['files'][0]['archive_check'], out['files'][0]['reads']) == ('corrupt', 2)


def test_verify_archive_false(tmp_path, capsys):
    path = tmp_path / 'P-M001-b1.upgrade.zip'
    path.write_bytes(b'not a zip')
    rc, out = run(capsys, {'path': [str(path)], 'checksums': {path.name: sha(str(path))},
                           'verify_archive': False})
    assert (rc, out['files'][0]['status'], out['files'][0]['archive_check']) == (0, 'ok', 'disabled')


def test_unknown_manifest_format(tmp_path, capsys, bundles):
    manifest = tmp_path / 'SHA256SUMS'
    manifest.write_text('%s  a.zip\nP-M001-b1.upgrade.zip 1234\n' % ('a' * 64))
    rc, out = run(capsys, {'path': list(bundles.values()), 'checksum_file': str(manifest)})
    assert rc == 1
    assert out['msg'] == (
        "checksum_file %s: line 2: not a checksum line in GNU ('<hex>  name') or BSD ('SHA256 (name) = <hex>') "
        "format: 'P-M001-b1.upgrade.zip 1234'" % manifest)
    assert 'files' not in out


def test_manifest_with_absolute_entry(tmp_path, capsys, bundles):
    manifest = tmp_path / 'SHA256SUMS'
    manifest.write_text('%s  /srv/P-M001-b1.upgrade.zip\n' % ('a' * 64))
    rc, out = run(capsys, {'path': list(bundles.values()), 'checksum_file': str(manifest)})
    assert rc == 1
    assert out['msg'] == ("checksum_file %s: line 1: entry '/srv/P-M001-b1.upgrade.zip' is an absolute path; "
                          "manifest names must be relative (e.g. 'bundle.zip')" % manifest)


def test_missing_manifest(tmp_path, capsys, bundles):
    rc, out = run(capsys, {'path': list(bundles.values()), 'checksum_file': str(tmp_path / 'SHA256SUMS')})
    assert rc == 1
    assert out['msg'] == 'cannot read checksum_file %s: No such file or directory' % (tmp_path / 'SHA256SUMS')


def test_bad_checksums_value(capsys, bundles):
    rc, out = run(capsys, {'path': list(bundles.values()), 'checksums': {'P-M001-b1.upgrade.zip': 'abc'}})
    assert rc == 1
    assert out['msg'] == "checksums['P-M001-b1.upgrade.zip']: checksum has 3 hex digits but sha256 needs 64"


@pytest.mark.parametrize('args, message', [
    ({'checksums': {'a': 'b'}, 'checksum_file': '/x'}, 'parameters are mutually exclusive: checksums|checksum_file'),
    ({}, 'one of the following is required: checksums, checksum_file'),
])
def test_option_errors(capsys, bundles, args, message):
    args = dict(args, path=list(bundles.values()))
    rc, out = run(capsys, args)
    assert (rc, out['msg']) == (1, message)


def test_empty_path(capsys):
    rc, out = run(capsys, {'path': [], 'checksums': {'a.zip': 'a' * 64}})
    assert (rc, out['msg']) == (1, 'path is empty: give at least one file to verify')
