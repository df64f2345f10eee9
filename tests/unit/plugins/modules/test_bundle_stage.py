# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bundle_stage and free_space through AnsibleModule: check mode predicts and
writes nothing, staging is idempotent, every refusal changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import bundle_stage, free_space

F = stat.S_IFREG | 0o644


@pytest.fixture(autouse=True)
def no_commands(monkeypatch):
    def refuse(self, args, **kwargs):
        raise AssertionError('a command was run: %r' % (args,))
    monkeypatch.setattr(bundle_stage.AnsibleModule, 'run_command', refuse)


def run(capsys, module, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            module.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def make_zip(path, entries):
    with zipfile.ZipFile(str(path), 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return str(path)


def sha(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def snapshot(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in sorted(dirnames + filenames):
            info = os.lstat(os.path.join(dirpath, name))
            out.append((os.path.relpath(os.path.join(dirpath, name), str(root)), info.st_ino, info.st_mtime_ns))
    return sorted(out)


@pytest.fixture
def bundle(tmp_path):
    return make_zip(tmp_path / 'P-M001-b1.upgrade.zip',
                    [('rpms/a.rpm', b'rpm' * 3000, F), ('README', b'hi\n', F)])


def stage_args(tmp_path, src, **extra):
    args = {'src': src, 'dest': str(tmp_path / 'staging' / '6.8.1' / 'P-M001-b1.upgrade'), 'checksum': sha(src)}
    args.update(extra)
    return args


def test_check_apply_idempotent(tmp_path, capsys, bundle):
    args = stage_args(tmp_path, bundle)
    rc, checked = run(capsys, bundle_stage, dict(args, _ansible_check_mode=True))
    assert rc == 0
    assert not (tmp_path / 'staging').exists()
    assert (checked['changed'], checked['action'], checked['staged'], checked['members']) == (True, 'create', True, 2)

    rc, applied = run(capsys, bundle_stage, args)
    assert rc == 0
    assert (applied['changed'], applied['action'], applied['staged']) == (True, 'create', True)
    for key in ('changed', 'action', 'staged', 'members', 'bundle_size', 'extracted_size', 'stage_name', 'problems'):
        assert checked[key] == applied[key], key
    dest = args['dest']
    assert sorted(os.listdir(dest)) == ['.clusterops-bundle.json', 'README', 'rpms']
    with open(os.path.join(dest, '.clusterops-bundle.json')) as handle:
        assert json.load(handle) == {'format': 1, 'checksum': sha(bundle), 'algorithm': 'sha256',
                                     'bundle': 'P-M001-b1.upgrade.zip', 'members': 2}
    before = snapshot(tmp_path / 'staging')

    for check_mode in (True, False):
        rc, again = run(capsys, bundle_stage, dict(args, _ansible_check_mode=check_mode))
        assert (rc, again['changed'], again['action'], again['staged']) == (0, False, 'none', True)
        assert again['members'] is None  # nothing was read
    assert snapshot(tmp_path / 'staging') == before


def test_check_mode_without_src_predicts(tmp_path, capsys):
    args = {'src': str(tmp_path / 'not-copied-yet.zip'), 'dest': str(tmp_path / 'staging' / 'P'),
            'checksum': 'a' * 64, '_ansible_check_mode': True}
    rc, out = run(capsys, bundle_stage, args)
    assert (rc, out['changed'], out['staged'], out['action']) == (0, True, True, 'create')
    assert out['msg'] == ('would extract %s into %s once it is there (it is not yet; check mode)'
                          % (args['src'], args['dest']))
    assert not (tmp_path / 'staging').exists()


@pytest.mark.parametrize('check_mode', [False, True])
@pytest.mark.parametrize('entries, problem', [
    ([('../evil', b'x', F)], "member '../evil': '..' component escapes the staging directory"),
    ([('/etc/evil', b'x', F)], "member '/etc/evil': absolute path"),
    ([('l', b'../../etc', stat.S_IFLNK | 0o777)], "member 'l': symlink to '../../etc' points outside the staging "
                                                  'directory'),
    ([('null', b'', stat.S_IFCHR | 0o666)], "member 'null': device members are not allowed in a bundle"),
])
def test_unsafe_bundle_is_refused_and_nothing_written(tmp_path, capsys, entries, problem, check_mode):
    src = make_zip(tmp_path / 'P-M001-b1.upgrade.zip', [('ok.txt', b'fine', F)] + entries)
    args = stage_args(tmp_path, src, _ansible_check_mode=check_mode)
    rc, out = run(capsys, bundle_stage, args)
    assert rc == 1
    assert out['msg'] == '%s is unsafe to extract: %s' % (src, problem)
    assert out['problems'] == [problem]
    assert out['changed'] is False
    assert not (tmp_path / 'staging').exists()


def test_checksum_mismatch_is_refused(tmp_path, capsys, bundle):
    args = stage_args(tmp_path, bundle, checksum='b' * 64)
    rc, out = run(capsys, bundle_stage, args)
    assert rc == 1
    assert out['msg'] == 'src %s has sha256 %s, expected %s: refusing to stage it' % (bundle, sha(bundle), 'b' * 64)
    assert not (tmp_path / 'staging').exists()


def test_truncated_zip_is_refused(tmp_path, capsys, bundle):
    data = open(bundle, 'rb').read()
    open(bundle, 'wb').write(data[:len(data) - 30])
    rc, out = run(capsys, bundle_stage, stage_args(tmp_path, bundle))
    assert rc == 1
    assert out['msg'] == '%s is not a readable zip archive: File is not a zip file' % bundle
    assert not (tmp_path / 'staging').exists()


@pytest.mark.parametrize('check_mode', [False, True])
def test_not_enough_space(tmp_path, capsys, bundle, check_mode):
    args = stage_args(tmp_path, bundle, free_space_margin=1 << 62, _ansible_check_mode=check_mode)
    rc, out = run(capsys, bundle_stage, args)
    assert rc == 1
    parent = str(tmp_path / 'staging' / '6.8.1')
    space = out['space'][0]
    assert out['msg'] == ('not enough free space for %s (filesystem of %s): needs %d bytes (extraction of '
                          'P-M001-b1.upgrade.zip %d + margin %d), %d available' % (
                              parent, tmp_path, (1 << 62) + out['extracted_size'], out['extracted_size'],
                              1 << 62, space['available']))
    assert not (tmp_path / 'staging').exists()


def test_foreign_dest_is_refused(tmp_path, capsys, bundle):
    args = stage_args(tmp_path, bundle)
    os.makedirs(args['dest'])
    rc, out = run(capsys, bundle_stage, args)
    assert rc == 1
    assert out['msg'] == ('%s exists but was not staged by clusterops.upgrade.bundle_stage (no '
                          '.clusterops-bundle.json); remove it or choose another staging directory' % args['dest'])
    assert os.listdir(args['dest']) == []


def test_new_checksum_replaces(tmp_path, capsys, bundle):
    args = stage_args(tmp_path, bundle)
    assert run(capsys, bundle_stage, args)[0] == 0
    make_zip(bundle, [('rpms/b.rpm', b'new', F)])
    rc, out = run(capsys, bundle_stage, dict(args, checksum=sha(bundle)))
    assert (rc, out['changed'], out['action']) == (0, True, 'replace')
    assert sorted(os.listdir(args['dest'])) == ['.clusterops-bundle.json', 'rpms']
    assert os.listdir(os.path.join(args['dest'], 'rpms')) == ['b.rpm']
    assert os.listdir(str(tmp_path / 'staging' / '6.8.1')) == ['P-M001-b1.upgrade']


def test_inspected_on_controller(capsys, bundle):
    rc, out = run(capsys, bundle_stage, {'src': bundle, 'state': 'inspected'})
    assert rc == 0
    assert out['changed'] is False
    assert (out['action'], out['members'], out['stage_name'], out['problems']) == (
        'inspect', 2, 'P-M001-b1.upgrade', [])
    assert out['bundle_size'] == os.path.getsize(bundle)
    assert out['extracted_size'] == 4096 * 3 + 4096 + 4096   # a.rpm 9000 B: 3 blocks; README: 1; root: 1


def test_inspected_staged_probe(tmp_path, capsys, bundle):
    args = stage_args(tmp_path, bundle)
    probe = {'dest': args['dest'], 'checksum': args['checksum'], 'state': 'inspected'}
    assert run(capsys, bundle_stage, probe)[1]['staged'] is False
    run(capsys, bundle_stage, args)
    assert run(capsys, bundle_stage, probe)[1]['staged'] is True
    assert run(capsys, bundle_stage, dict(probe, checksum='c' * 64))[1]['staged'] is False


def test_inspected_refuses_foreign_dest(tmp_path, capsys):
    dest = tmp_path / 'staging' / 'P'
    dest.mkdir(parents=True)
    rc, out = run(capsys, bundle_stage, {'dest': str(dest), 'checksum': 'a' * 64, 'state': 'inspected',
                                         '_ansible_check_mode': True})
    assert rc == 1
    assert out['msg'] == ('%s exists but was not staged by clusterops.upgrade.bundle_stage (no '
                          '.clusterops-bundle.json); remove it or choose another staging directory' % dest)


@pytest.mark.parametrize('args, message', [
    ({'src': '/x.zip'}, 'state is staged but all of the following are missing: dest, checksum'),
    ({'state': 'inspected'}, 'state is inspected but any of the following are missing: src, dest'),
    ({'src': '/x.zip', 'dest': '/d', 'checksum': 'xyz'}, "checksum: 'xyz' is not a hexadecimal checksum"),
])
def test_option_errors(capsys, args, message):
    rc, out = run(capsys, bundle_stage, args)
    assert (rc, out['msg']) == (1, message)


# ------------------------------------------------------------------ free_space

def test_free_space_ok(tmp_path, capsys):
    rc, out = run(capsys, free_space, {'requirements': [{'path': str(tmp_path / 'a' / 'b'), 'bytes': 1}],
                                       '_ansible_check_mode': True})
    assert rc == 0
    assert out['changed'] is False
    assert [(f['checked'], f['needed'], f['enough']) for f in out['filesystems']] == [(str(tmp_path), 1, True)]
    assert not (tmp_path / 'a').exists()


def test_free_space_short(tmp_path, capsys):
    rc, out = run(capsys, free_space, {
        'requirements': [{'path': str(tmp_path / 'bundles'), 'bytes': 10, 'what': 'copy of a.zip'},
                         {'path': str(tmp_path / 'staging'), 'bytes': 20, 'what': 'extraction of a.zip'}],
        'margin': 1 << 62})
    assert rc == 1
    available = out['filesystems'][0]['available']
    assert out['msg'] == ('not enough free space for %s, %s (filesystem of %s): needs %d bytes (copy of a.zip 10 + '
                          'extraction of a.zip 20 + margin %d), %d available' % (
                              tmp_path / 'bundles', tmp_path / 'staging', tmp_path, (1 << 62) + 30, 1 << 62,
                              available))


def test_free_space_negative_bytes(capsys):
    rc, out = run(capsys, free_space, {'requirements': [{'path': '/tmp', 'bytes': -1}]})
    assert (rc, out['msg']) == (1, 'requirements[0] (/tmp): bytes must be 0 or more, got -1')
