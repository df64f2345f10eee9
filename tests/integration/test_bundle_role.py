# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bundle role, for real, on this machine: ansible-playbook against two
local hosts (one control_plane, one compute on Python 3.9 when available), each
with its own directories under tmp_path.

* The four-step pattern: check -> apply -> idempotent check -> idempotent
  apply. The check run's prediction (changed counts and the role's
  ``bundle_staged`` fact) equals the real run; the second run copies and
  extracts nothing (copies and staged trees keep their inodes and mtimes).
* Every bad input fails the play with a message naming the problem and leaves
  both hosts' directories untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / 'tests' / 'integration' / 'playbooks' / 'bundle.yml'
ANSIBLE_PLAYBOOK = ROOT / '.venv' / 'bin' / 'ansible-playbook'
M = 'PRODUCT_V6R08B011-V6R08B111-b1-x86_64-M001-b1.upgrade.zip'
S = 'PRODUCT_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade.zip'
SHOWN = re.compile(r'^ok: \[(\S+)\] => (\{\n.*?\n\})$', re.M | re.S)
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+'
                   r'skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)', re.M)

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='needs .venv (make deps)')


def interpreter(preferred):
    """A target Python: the preferred one if this machine has it, else the test's own."""
    for candidate in preferred:
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


CP_PYTHON = interpreter(['/usr/bin/python3'])
CN_PYTHON = interpreter([str(ROOT / 'build' / 'pythons' / 'python3.9'), '/usr/bin/python3'])


def rpm_bytes(seed, size=150000):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def add(archive, name, data, mode):
    info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 12, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def make_bundle(path, role, extra=()):
    with zipfile.ZipFile(str(path), 'w') as archive:
        add(archive, 'rpms/', b'', stat.S_IFDIR | 0o755)
        add(archive, 'rpms/%s-agent-6.8.1-1.x86_64.rpm' % role, rpm_bytes(role), stat.S_IFREG | 0o644)
        add(archive, 'upgrade.sh', b'#!/bin/sh\necho %s\n' % role.encode(), stat.S_IFREG | 0o755)
        add(archive, 'latest.rpm', b'rpms/%s-agent-6.8.1-1.x86_64.rpm' % role.encode(), stat.S_IFLNK | 0o777)
        for name, data, mode in extra:
            add(archive, name, data, mode)


def sha256(path):
    with open(str(path), 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def write_manifest(world, names=None):
    names = names if names is not None else [p.name for p in world['bundles']]
    lines = ['# vendor checksums']
    for name in names:
        lines.append('%s  %s' % (sha256(world['dir'] / 'bundles' / name), name))
    world['manifest'].write_text('\r\n'.join(lines) + '\r\n')


@pytest.fixture
def world(tmp_path):
    """Two bundles + SHA256SUMS on the 'controller', two local hosts with their own dirs."""
    bundles = tmp_path / 'bundles'
    bundles.mkdir()
    make_bundle(bundles / M, 'control')
    make_bundle(bundles / S, 'compute')
    hosts = tmp_path / 'hosts'
    world = {
        'dir': tmp_path, 'bundles': [bundles / M, bundles / S], 'manifest': bundles / 'SHA256SUMS',
        'hosts': hosts, 'inventory': tmp_path / 'inventory.ini',
        'host_lines': {
            'control_plane': ['cp1 ansible_connection=local ansible_python_interpreter=%s '
                              'bundle_dest_dir=%s bundle_staging_dir=%s'
                              % (CP_PYTHON, hosts / 'cp1' / 'bundles', hosts / 'cp1' / 'staging')],
            'compute': ['cn1 ansible_connection=local ansible_python_interpreter=%s '
                        'bundle_dest_dir=%s bundle_staging_dir=%s'
                        % (CN_PYTHON, hosts / 'cn1' / 'bundles', hosts / 'cn1' / 'staging')],
        },
        'vars': {'bundle_version': '6.8.1', 'bundle_free_space_margin': 1 << 20},
    }
    write_manifest(world)
    return world


def playbook(world, check=False):
    """Run the test playbook; return (rc, output, recap {host: changed}, staged {host: fact})."""
    lines = []
    for group, members in world['host_lines'].items():
        lines.append('[%s]' % group)
        lines.extend(members)
    world['inventory'].write_text('\n'.join(lines) + '\n')
    extra = dict(world['vars'], bundle_files=[str(p) for p in world['bundles']],
                 bundle_manifest=str(world['manifest']))
    extra_file = world['dir'] / 'extra-vars.json'
    extra_file.write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_STDOUT_CALLBACK='default', ANSIBLE_RETRY_FILES_ENABLED='0', LANG='C.UTF-8')
    argv = [str(ANSIBLE_PLAYBOOK), '-i', str(world['inventory']), str(PLAYBOOK), '-e', '@%s' % extra_file]
    if check:
        argv.append('--check')
    proc = subprocess.run(argv, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600, check=False)
    recap = {m.group(1): int(m.group(3)) for m in RECAP.finditer(proc.stdout)}
    staged = {}
    section = proc.stdout.split('TASK [Show what the role staged on each host]', 1)
    if len(section) == 2:
        for match in SHOWN.finditer(section[1]):
            staged[match.group(1)] = json.loads(match.group(2))['bundle_staged']
    return proc.returncode, proc.stdout, recap, staged


def tree(root):
    """Every path under root with its inode, mtime and (for files) content hash."""
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            digest = None
            if stat.S_ISREG(info.st_mode):
                digest = sha256(full)
            elif stat.S_ISLNK(info.st_mode):
                digest = os.readlink(full)
            out[os.path.relpath(full, str(root))] = (info.st_ino, info.st_mtime_ns, stat.S_IMODE(info.st_mode),
                                                     digest)
    return out


def expected_staged(world, host, name, copied, extracted):
    stage = name[:-len('.zip')]
    return {name: {
        'copy': str(world['hosts'] / host / 'bundles' / name),
        'staged_dir': str(world['hosts'] / host / 'staging' / '6.8.1' / stage),
        'checksum': sha256(world['dir'] / 'bundles' / name),
        'copied': copied, 'extracted': extracted,
    }}


def test_four_steps(world):
    # 1. check mode: predicts, writes nothing on any host
    rc, out, recap_check, staged_check = playbook(world, check=True)
    assert rc == 0, out
    assert tree(world['hosts']) == {}
    assert staged_check == {
        'cp1': expected_staged(world, 'cp1', M, True, True),
        'cn1': expected_staged(world, 'cn1', S, True, True),
    }
    # bundle dir created, one copy, one extraction per host
    assert recap_check == {'cp1': 3, 'cn1': 3}

    # 2. apply: does exactly what check mode predicted
    rc, out, recap_apply, staged_apply = playbook(world)
    assert rc == 0, out
    assert recap_apply == recap_check
    assert staged_apply == staged_check
    for host, name, role in (('cp1', M, 'control'), ('cn1', S, 'compute')):
        base = world['hosts'] / host
        assert sorted(os.listdir(str(base / 'bundles'))) == [name]
        assert sha256(base / 'bundles' / name) == sha256(world['dir'] / 'bundles' / name)
        staged = base / 'staging' / '6.8.1' / name[:-len('.zip')]
        assert sorted(os.listdir(str(staged))) == ['.clusterops-bundle.json', 'latest.rpm', 'rpms', 'upgrade.sh']
        rpm = 'rpms/%s-agent-6.8.1-1.x86_64.rpm' % role
        assert (staged / rpm).read_bytes() == rpm_bytes(role)
        assert os.readlink(str(staged / 'latest.rpm')) == rpm
        assert stat.S_IMODE(os.stat(str(staged / 'upgrade.sh')).st_mode) == 0o755
        marker = json.loads((staged / '.clusterops-bundle.json').read_text())
        assert marker['checksum'] == sha256(world['dir'] / 'bundles' / name)
    after_apply = tree(world['hosts'])

    # 3. idempotent check and 4. idempotent apply: nothing to copy, nothing to extract
    for check in (True, False):
        rc, out, recap, staged = playbook(world, check=check)
        assert rc == 0, out
        assert recap == {'cp1': 0, 'cn1': 0}, out
        assert staged == {
            'cp1': expected_staged(world, 'cp1', M, False, False),
            'cn1': expected_staged(world, 'cn1', S, False, False),
        }
        assert tree(world['hosts']) == after_apply


# ------------------------------------------------------------------ bad inputs

def flip_byte(world):
    path = world['bundles'][0]
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def truncated_zip(world):
    path = world['bundles'][0]
    path.write_bytes(path.read_bytes()[:60000])
    write_manifest(world)


def member_dotdot(world):
    make_bundle(world['bundles'][0], 'control', [('../../etc/cron.d/evil', b'* * * * * root id\n',
                                                  stat.S_IFREG | 0o644)])
    write_manifest(world)


def member_absolute(world):
    make_bundle(world['bundles'][0], 'control', [('/etc/cron.d/evil', b'x\n', stat.S_IFREG | 0o644)])
    write_manifest(world)


def member_symlink_outside(world):
    make_bundle(world['bundles'][1], 'compute', [('rpms/shadow', b'../../../../etc/shadow', stat.S_IFLNK | 0o777)])
    write_manifest(world)


def manifest_missing_file(world):
    write_manifest(world, [S])


def manifest_unknown_format(world):
    """What an operator gets by saving Windows certutil's output as the manifest."""
    world['manifest'].write_text('SHA256 hash of %s:\r\n%s\r\nCertUtil: -hashfile command completed '
                                 'successfully.\r\n' % (M, sha256(world['bundles'][0])))


def wrong_role(world):
    world['host_lines']['control_plane'][0] += ' bundle_host_bundles=\'["%s"]\'' % S


def bundle_without_rule(world):
    extra = world['dir'] / 'bundles' / 'PRODUCT_V6R08B111-x86_64-Q001-b1.upgrade.zip'
    make_bundle(extra, 'quorum')
    world['bundles'].append(extra)
    write_manifest(world)


def host_in_no_group(world):
    world['host_lines']['storage'] = ['st1 ansible_connection=local ansible_python_interpreter=%s '
                                      'bundle_dest_dir=%s bundle_staging_dir=%s' % (
                                          CP_PYTHON, world['hosts'] / 'st1' / 'b', world['hosts'] / 'st1' / 's')]


def foreign_staging_dir(world):
    """cp1 already has a directory where its bundle would be staged, not made by the role."""
    foreign = world['hosts'] / 'cp1' / 'staging' / '6.8.1' / M[:-len('.zip')]
    foreign.mkdir(parents=True)
    (foreign / 'operator-notes.txt').write_text('do not delete\n')


def no_free_space(world):
    world['vars']['bundle_free_space_margin'] = 1 << 62


BAD = [
    pytest.param(flip_byte, r'%s: mismatch \(sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}\)' % re.escape(M),
                 id='flipped-byte'),
    pytest.param(truncated_zip, re.escape("%s: corrupt_archive (zip archive is truncated: the file ends inside "
                                          "member 'rpms/control-agent-6.8.1-1.x86_64.rpm'" % M),
                 id='truncated-zip'),
    pytest.param(member_dotdot, re.escape("is unsafe to extract: member '../../etc/cron.d/evil': '..' component "
                                          'escapes the staging directory'), id='dotdot-member'),
    pytest.param(member_absolute, re.escape("is unsafe to extract: member '/etc/cron.d/evil': absolute path"),
                 id='absolute-member'),
    pytest.param(member_symlink_outside, re.escape("is unsafe to extract: member 'rpms/shadow': symlink to "
                                                   "'../../../../etc/shadow' points outside the staging directory"),
                 id='symlink-outside'),
    pytest.param(manifest_missing_file, re.escape("%s: not_in_manifest (no manifest entry named '%s')" % (M, M)),
                 id='manifest-missing-file'),
    pytest.param(manifest_unknown_format, re.escape("line 1: not a checksum line in GNU ('<hex>  name') or BSD "
                                                    "('SHA256 (name) = <hex>') format: 'SHA256 hash of PRODUCT_"),
                 id='manifest-unknown-format'),
    pytest.param(wrong_role, re.escape("host 'cp1' is in groups [control_plane], but bundle '%s' is for compute: "
                                       'refusing to stage a bundle meant for another role' % S), id='wrong-role'),
    pytest.param(bundle_without_rule, re.escape("bundle 'PRODUCT_V6R08B111-x86_64-Q001-b1.upgrade.zip' matches no "
                                                'pattern of bundle_group_map'), id='bundle-without-rule'),
    pytest.param(host_in_no_group, re.escape("host 'st1' is in none of the groups the bundles map to (compute, "
                                             'control_plane); its groups: [storage]'), id='host-in-no-group'),
    pytest.param(foreign_staging_dir, re.escape('%s exists but was not staged by clusterops.upgrade.bundle_stage (no '
                                                '.clusterops-bundle.json)' % ('{hosts}/cp1/staging/6.8.1/' + M[:-4])),
                 id='foreign-staging-dir'),
    pytest.param(no_free_space, r'not enough free space for %s, %s \(filesystem of [^)]+\): needs \d+ bytes '
                                r'\(copy of %s \d+ \+ extraction of %s \d+ \+ margin %d\), \d+ available' % (
                                    re.escape(str('{hosts}/cp1/bundles')), re.escape('{hosts}/cp1/staging/6.8.1'),
                                    re.escape(M), re.escape(M), 1 << 62), id='no-free-space'),
]


@pytest.mark.parametrize('damage, message', BAD)
def test_bad_input_fails_clearly_and_changes_nothing(world, damage, message):
    damage(world)
    before = tree(world['hosts'])
    rc, out, recap, staged = playbook(world)
    assert rc != 0, out
    pattern = message.replace(re.escape('{hosts}'), re.escape(str(world['hosts'])))
    assert re.search(pattern, out), out
    assert tree(world['hosts']) == before
    assert staged == {}
    assert all(count == 0 for count in recap.values()), recap
