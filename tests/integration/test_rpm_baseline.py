# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rpm_baseline against REAL rpm databases on this machine.

Tiny metadata-only RPMs (noarch, x86_64, i686) are built once per session with
rpmbuild, installed into ``--root`` trees with rpm itself, tampered with rpm,
compared, and put right by running the returned restore_plan for real. The
module runs as a script and, for the preflight task file, through
ansible-playbook on localhost. Nothing here is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MODULE = os.path.join(REPO, 'plugins', 'modules', 'rpm_baseline.py')
COLLECTIONS = os.path.join(REPO, 'collections')
DBPATH = '/var/lib/rpm'
ENV_C = dict(os.environ, LANG='C', LC_ALL='C')

pytestmark = pytest.mark.skipif(not (shutil.which('rpm') and shutil.which('rpmbuild')),
                                reason='needs rpm and rpmbuild (Debian package rpm)')

# name, epoch, version, release, arch
PACKAGES = [
    ('bar', None, '1.0', '1', 'noarch'),
    ('bar', None, '1.1', '1', 'noarch'),
    ('data', 1, '1.0', '1', 'noarch'),
    ('data', 2, '1.0', '1', 'noarch'),
    ('python3-foo-bar', None, '2.0~rc1', '1.el9', 'noarch'),
    ('tool', None, '1.0', '1', 'noarch'),
    ('foo', None, '1.0', '1', 'x86_64'),
    ('foo', None, '0.9', '1', 'x86_64'),
    ('kernel', None, '5.14.0', '70.el9', 'x86_64'),
    ('kernel', None, '5.14.0', '162.el9', 'x86_64'),
    ('lib', None, '1.0', '1', 'x86_64'),
    ('lib', None, '1.1', '1', 'x86_64'),
    ('lib', None, '1.0', '1', 'i686'),
]
BASE = ['bar-1.0-1.noarch', 'data-1:1.0-1.noarch', 'foo-1.0-1.x86_64', 'kernel-5.14.0-70.el9.x86_64',
        'lib-1.0-1.x86_64', 'python3-foo-bar-2.0~rc1-1.el9.noarch']


def _nevra(name, epoch, version, release, arch):
    return '%s-%s%s-%s.%s' % (name, '%d:' % epoch if epoch else '', version, release, arch)


def _spec(name, epoch, version, release):
    return textwrap.dedent("""\
        Name: {name}
        {epoch}Version: {version}
        Release: {release}
        Summary: clusterops.upgrade test package
        License: MIT
        %description
        Metadata only.
        %files
        """).format(name=name, version=version, release=release,
                    epoch='Epoch: %d\n' % epoch if epoch else '')


@pytest.fixture(scope='session')
def rpms(tmp_path_factory):
    """{nevra: path} of the test packages, built once per session."""
    top = tmp_path_factory.mktemp('rpmbuild')
    out = top / 'rpms'
    specs = {}
    for n, (name, epoch, version, release, arch) in enumerate(PACKAGES):
        path = top / ('%02d-%s.spec' % (n, name))
        path.write_text(_spec(name, epoch, version, release))
        specs.setdefault(arch, []).append(str(path))
    for arch, files in sorted(specs.items()):
        subprocess.run(['rpmbuild', '-bb', '--quiet', '--target', arch,
                        '--define', '_topdir %s' % top, '--define', '_rpmdir %s' % out,
                        # the epoch never shows in a file name: keep data-1: and data-2: apart
                        '--define', '_rpmfilename e%{EPOCHNUM}/%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm'] + files,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV_C)
    result = {}
    for name, epoch, version, release, arch in PACKAGES:
        path = out / ('e%d' % (epoch or 0)) / ('%s-%s-%s.%s.rpm' % (name, version, release, arch))
        assert path.is_file()
        result[_nevra(name, epoch, version, release, arch)] = str(path)
    return result


def run_subprocess(argv, env_update):
    """The runner the module_utils seam expects, on subprocess."""
    env = dict(os.environ)
    env.update(env_update)
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return (proc.returncode, proc.stdout.decode('utf-8', 'surrogateescape'),
            proc.stderr.decode('utf-8', 'surrogateescape'))


def rpm_db(root):
    return _rpm.Rpm(run_subprocess, root=root)


def rpm(root, *args):
    proc = subprocess.run(['rpm', '--root', root, '--dbpath', DBPATH] + list(args), env=ENV_C,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def installed(root):
    return sorted(rpm(root, '-qa', '--qf', '%{NEVRA}\n').split())


@pytest.fixture
def root(tmp_path, rpms):
    """An install root holding BASE, and a backup dir with BASE's rpm files."""
    path = str(tmp_path / 'root')
    os.mkdir(path)
    rpm(path, '--initdb')
    rpm(path, '-ivh', *[rpms[n] for n in BASE])
    return path


@pytest.fixture
def backup_dir(tmp_path, rpms):
    path = tmp_path / 'backup-rpm'
    path.mkdir()
    for nevra in BASE:
        shutil.copy(rpms[nevra], str(path / os.path.basename(rpms[nevra])))
    return str(path)


class CountingRunner(object):
    """The real runner, counting the rpm calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, env):
        self.calls.append(argv)
        return run_subprocess(argv, env)

    def modes(self):
        return [next(a for a in argv if a in ('-qa', '-qp')) for argv in self.calls]


def baseline_packages(nevras):
    return [_rpm.parse_nevra(n)._replace(epoch=_rpm.parse_nevra(n).epoch or 0) for n in nevras]


def compare(root, backup_dir=None, baseline=None, runner=None):
    r = _rpm.Rpm(runner or run_subprocess, root=root)
    baseline = BASE if baseline is None else baseline
    return _rpm.compare_host(r, 'nevra', baseline_packages(baseline), backup_dir=backup_dir)


def apply_plan(plan):
    for argv in plan:
        proc = subprocess.run(argv, env=ENV_C, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)


def summary(result):
    return ([p['nevra'] for p in result['missing']], [p['nevra'] for p in result['extra']],
            [(c['name'], c['arch'], c['change'], c['baseline']['nevra'], c['installed']['nevra'])
             for c in result['changed_packages']])


# --------------------------------------------------------------------------
# The diff on real databases, and the restore plan applied for real
# --------------------------------------------------------------------------

def test_clean_root_is_consistent_with_one_query_each(root, backup_dir):
    runner = CountingRunner()
    result = compare(root, backup_dir, runner=runner)
    assert (result['consistent'], summary(result)) == (True, ([], [], []))
    assert (result['restore_plan'], result['missing_backups'], result['corrupt_backups']) == ([], [], [])
    assert runner.modes() == ['-qa', '-qp']
    assert result['counts']['installed'] == 6


def tamper(root, rpms, steps):
    """steps: (rpm options, packages); packages are erase labels for -e, else package files."""
    for options, packages in steps:
        if '-e' in options:
            rpm(root, *(options + packages))
        else:
            rpm(root, *(options + [rpms[p] for p in packages]))


SCENARIOS = [
    ('removed', [(['-e'], ['bar-1.0-1.noarch'])], (['bar-1.0-1.noarch'], [], [])),
    ('added', [(['-ivh'], ['tool-1.0-1.noarch'])], ([], ['tool-1.0-1.noarch'], [])),
    ('upgraded', [(['-Uvh'], ['bar-1.1-1.noarch'])],
     ([], [], [('bar', 'noarch', 'upgraded', 'bar-1.0-1.noarch', 'bar-1.1-1.noarch')])),
    ('downgraded', [(['-Uvh', '--oldpackage'], ['foo-0.9-1.x86_64'])],
     ([], [], [('foo', 'x86_64', 'downgraded', 'foo-1.0-1.x86_64', 'foo-0.9-1.x86_64')])),
    ('epoch-only', [(['-Uvh'], ['data-2:1.0-1.noarch'])],
     ([], [], [('data', 'noarch', 'upgraded', 'data-1:1.0-1.noarch', 'data-2:1.0-1.noarch')])),
    ('extra arch', [(['-ivh'], ['lib-1.0-1.i686'])], ([], ['lib-1.0-1.i686'], [])),
    ('second kernel', [(['-ivh'], ['kernel-5.14.0-162.el9.x86_64'])], ([], ['kernel-5.14.0-162.el9.x86_64'], [])),
    ('everything at once',
     [(['-e'], ['bar-1.0-1.noarch']),
      (['-ivh'], ['tool-1.0-1.noarch', 'lib-1.0-1.i686', 'kernel-5.14.0-162.el9.x86_64']),
      (['-Uvh', '--oldpackage'], ['foo-0.9-1.x86_64', 'data-2:1.0-1.noarch'])],
     (['bar-1.0-1.noarch'], ['kernel-5.14.0-162.el9.x86_64', 'lib-1.0-1.i686', 'tool-1.0-1.noarch'],
      [('data', 'noarch', 'upgraded', 'data-1:1.0-1.noarch', 'data-2:1.0-1.noarch'),
       ('foo', 'x86_64', 'downgraded', 'foo-1.0-1.x86_64', 'foo-0.9-1.x86_64')])),
]


@pytest.mark.parametrize('steps, expected', [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_drift_is_reported_exactly_and_restore_plan_repairs_it(root, backup_dir, rpms, steps, expected):
    tamper(root, rpms, steps)
    before = installed(root)
    result = compare(root, backup_dir)
    assert summary(result) == expected
    assert (result['consistent'], result['restore_plan_complete']) == (False, True)
    assert installed(root) == before  # compared changed nothing

    apply_plan(result['restore_plan'])
    after = compare(root, backup_dir)
    assert (after['consistent'], summary(after), after['restore_plan']) == (True, ([], [], []), [])
    assert installed(root) == sorted(BASE)


def test_restore_plan_argv_for_several_drifts(root, backup_dir, rpms):
    tamper(root, rpms, [(['-e'], ['bar-1.0-1.noarch']),
                        (['-ivh'], ['tool-1.0-1.noarch', 'kernel-5.14.0-162.el9.x86_64']),
                        (['-Uvh', '--oldpackage'], ['foo-0.9-1.x86_64'])])
    base = ['rpm', '--root', root, '--dbpath', DBPATH]
    assert compare(root, backup_dir)['restore_plan'] == [
        base + ['-ivh', '--oldpackage', os.path.join(backup_dir, 'bar-1.0-1.noarch.rpm')],
        base + ['-Uvh', '--oldpackage', os.path.join(backup_dir, 'foo-1.0-1.x86_64.rpm')],
        base + ['-e', 'kernel-5.14.0-162.el9.x86_64', 'tool-1.0-1.noarch'],
    ]


def test_multiarch_change_keeps_the_other_arch(root, backup_dir, rpms):
    """``rpm -U lib.x86_64`` also removes lib.i686 here (metadata-only packages
    have no file colors), so the plan puts both arches in one transaction."""
    shutil.copy(rpms['lib-1.0-1.i686'], backup_dir)
    rpm(root, '-ivh', rpms['lib-1.0-1.i686'])
    baseline = BASE + ['lib-1.0-1.i686']
    assert compare(root, backup_dir, baseline=baseline)['consistent'] is True
    rpm(root, '-Uvh', rpms['lib-1.1-1.x86_64'])
    assert 'lib-1.0-1.i686' not in installed(root)
    rpm(root, '-ivh', '--oldpackage', rpms['lib-1.0-1.i686'])
    result = compare(root, backup_dir, baseline=baseline)
    assert summary(result) == ([], [], [('lib', 'x86_64', 'upgraded', 'lib-1.0-1.x86_64', 'lib-1.1-1.x86_64')])
    assert result['restore_plan'] == [
        ['rpm', '--root', root, '--dbpath', DBPATH, '-Uvh', '--oldpackage', '--replacepkgs',
         os.path.join(backup_dir, 'lib-1.0-1.i686.rpm'), os.path.join(backup_dir, 'lib-1.0-1.x86_64.rpm')]]
    apply_plan(result['restore_plan'])
    assert installed(root) == sorted(baseline)
    assert compare(root, backup_dir, baseline=baseline)['consistent'] is True


def test_arch_switch_and_missing_sibling(tmp_path, rpms, backup_dir):
    root = str(tmp_path / 'multi')
    os.mkdir(root)
    rpm(root, '--initdb')
    rpm(root, '-ivh', rpms['lib-1.0-1.i686'], rpms['foo-1.0-1.x86_64'], rpms['bar-1.1-1.noarch'])
    shutil.copy(rpms['lib-1.0-1.i686'], backup_dir)
    baseline = ['lib-1.0-1.x86_64', 'lib-1.0-1.i686', 'foo-1.0-1.x86_64', 'bar-1.0-1.noarch']
    result = compare(root, backup_dir, baseline=baseline)
    assert summary(result) == (['lib-1.0-1.x86_64'], [], [
        ('bar', 'noarch', 'upgraded', 'bar-1.0-1.noarch', 'bar-1.1-1.noarch')])
    apply_plan(result['restore_plan'])
    assert installed(root) == sorted(baseline)


# --------------------------------------------------------------------------
# Backup rpms
# --------------------------------------------------------------------------

def test_deleted_and_renamed_wrong_backups_are_caught(root, backup_dir, rpms):
    os.unlink(os.path.join(backup_dir, 'bar-1.0-1.noarch.rpm'))
    wrong = os.path.join(backup_dir, 'foo-1.0-1.x86_64.rpm')
    shutil.copy(rpms['foo-0.9-1.x86_64'], wrong)
    junk = os.path.join(backup_dir, 'junk-1.0-1.noarch.rpm')
    with open(junk, 'w') as f:
        f.write('/etc/hostname\n')   # rpm would read this as a manifest without --nomanifest
    truncated = os.path.join(backup_dir, 'data-1.0-1.noarch.rpm')
    with open(rpms['data-1:1.0-1.noarch'], 'rb') as f:
        head = f.read(200)
    with open(truncated, 'wb') as f:
        f.write(head)
    runner = CountingRunner()
    result = compare(root, backup_dir, runner=runner)
    assert result['consistent'] is True
    assert [m['file'] for m in result['missing_backups']] == [
        'bar-1.0-1.noarch.rpm', 'data-1.0-1.noarch.rpm', 'foo-1.0-1.x86_64.rpm']
    corrupt = dict((c['file'], c) for c in result['corrupt_backups'])
    assert sorted(corrupt) == ['data-1.0-1.noarch.rpm', 'foo-1.0-1.x86_64.rpm', 'junk-1.0-1.noarch.rpm']
    assert (corrupt['foo-1.0-1.x86_64.rpm']['reason'], corrupt['foo-1.0-1.x86_64.rpm']['header']['nevra']) == (
        'the header is foo-0.9-1.x86_64 but the name claims foo-1.0-1.x86_64', 'foo-0.9-1.x86_64')
    assert corrupt['junk-1.0-1.noarch.rpm']['reason'] == 'rpm cannot read it: not a package file (rpm exit status 1)'
    assert corrupt['data-1.0-1.noarch.rpm']['reason'].startswith('rpm cannot read it: error: %s: ' % truncated)
    # one batch for all files, then one call per unreadable file, and only for those
    assert runner.modes() == ['-qa', '-qp', '-qp', '-qp']
    assert [argv[-1] for argv in runner.calls[2:]] == [truncated, junk]
    assert len(runner.calls[1]) == len(rpm_db(root).base_argv()) + 4 + len(os.listdir(backup_dir))


def test_restore_plan_picks_backup_by_header_not_name(root, backup_dir, rpms):
    """The only copy of foo-1.0 has an odd name and foo-1.0's name holds foo-0.9."""
    odd = os.path.join(backup_dir, 'foo-latest.rpm')
    shutil.copy(rpms['foo-1.0-1.x86_64'], odd)
    shutil.copy(rpms['foo-0.9-1.x86_64'], os.path.join(backup_dir, 'foo-1.0-1.x86_64.rpm'))
    rpm(root, '-Uvh', '--oldpackage', rpms['foo-0.9-1.x86_64'])
    result = compare(root, backup_dir)
    assert result['restore_plan'] == [['rpm', '--root', root, '--dbpath', DBPATH, '-Uvh', '--oldpackage', odd]]
    apply_plan(result['restore_plan'])
    assert compare(root, backup_dir)['consistent'] is True


def test_digest_baseline_rejects_a_rebuilt_backup(root, backup_dir, tmp_path):
    """Same NEVRA, another build: caught through the header digest."""
    r = rpm_db(root)
    captured = r.query_installed(digests=True)
    top = tmp_path / 'rebuild'
    top.mkdir()
    spec = top / 'bar.spec'
    spec.write_text(_spec('bar', None, '1.0', '1').replace('Metadata only.', 'Rebuilt.'))
    subprocess.run(['rpmbuild', '-bb', '--quiet', '--target', 'noarch', '--define', '_topdir %s' % top,
                    '--define', '_rpmdir %s' % top, '--define',
                    '_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm', str(spec)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV_C)
    shutil.copy(str(top / 'bar-1.0-1.noarch.rpm'), os.path.join(backup_dir, 'bar-1.0-1.noarch.rpm'))
    result = _rpm.compare_host(r, 'json', captured, backup_dir=backup_dir)
    assert result['consistent'] is True
    assert [m['file'] for m in result['missing_backups']] == ['bar-1.0-1.noarch.rpm']
    assert [c['reason'].split(' (')[0] for c in result['corrupt_backups']] == [
        'it is bar-1.0-1.noarch but not the build in the baseline']


# --------------------------------------------------------------------------
# Vendor lists exactly as rpm prints them
# --------------------------------------------------------------------------

KEYRING = '/usr/share/keyrings/debian-archive-bookworm-stable.gpg'


def _armor(binary):
    """ASCII-armor an OpenPGP key (rpm --import wants armor; no gpg needed)."""
    crc = 0xB704CE
    for byte in bytearray(binary):
        crc ^= byte << 16
        for _crc_bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    body = base64.b64encode(binary).decode()
    checksum = base64.b64encode(bytes(bytearray([(crc >> 16) & 255, (crc >> 8) & 255, crc & 255]))).decode()
    return ('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n' + '\n'.join(body[i:i + 64] for i in range(0, len(body), 64))
            + '\n=' + checksum + '\n-----END PGP PUBLIC KEY BLOCK-----\n')


def test_vendor_lists_printed_by_rpm(root, rpms, tmp_path):
    if os.path.exists(KEYRING):
        key = tmp_path / 'key.asc'
        with open(KEYRING, 'rb') as f:
            key.write_text(_armor(f.read()))
        rpm(root, '--import', str(key))
        assert len([n for n in installed(root) if n.startswith('gpg-pubkey-')]) == 1
    plain = tmp_path / 'rpm-qa.txt'
    plain.write_text(rpm(root, '-qa'))
    nevra = tmp_path / 'rpm-qa-nevra.txt'
    nevra.write_text(rpm(root, '-qa', '--qf', '%{NAME}-%{EPOCH}:%{VERSION}-%{RELEASE}.%{ARCH}\n'))
    r = rpm_db(root)
    for path, fmt in ((plain, 'nvra'), (nevra, 'nevra')):
        got_fmt, packages = _rpm.load_baseline(str(path))
        assert got_fmt == fmt
        assert _rpm.compare_host(r, got_fmt, packages)['consistent'] is True

    # plain rpm -qa never prints epochs, so such a list cannot see an epoch-only change
    rpm(root, '-Uvh', rpms['data-2:1.0-1.noarch'])
    assert _rpm.compare_host(r, *_rpm.load_baseline(str(plain)))['consistent'] is True
    result = _rpm.compare_host(r, *_rpm.load_baseline(str(nevra)))
    assert summary(result) == ([], [], [('data', 'noarch', 'upgraded', 'data-1:1.0-1.noarch', 'data-2:1.0-1.noarch')])


# --------------------------------------------------------------------------
# rpm's own version comparison is the oracle
# --------------------------------------------------------------------------

def test_rpmvercmp_agrees_with_rpm(tmp_path):
    fixed = ['1.0', '1.0~rc1', '1.0^git1', '1.0^git1~pre', '1.01', '1.0.1', '1.0a', '1_0', 'fc4', 'FC5',
             '000123', '123', '12345678901234567890', 'el7_9', '~', '^', '2.0~rc1^1']
    tokens = ['0', '1', '2', '10', '01', '007', 'a', 'b', 'rc', 'Z', '~', '^', '.', '_', '+', 'x',
              '99999999999999999999']
    rnd = random.Random(20261122)
    pairs = [(a, b) for a in fixed for b in fixed]
    for _pair in range(3000):
        pairs.append((''.join(rnd.choice(tokens) for _tok in range(rnd.randint(1, 6))),
                      ''.join(rnd.choice(tokens) for _tok in range(rnd.randint(1, 6)))))
    script = tmp_path / 'vercmp.lua'
    script.write_text('for _, p in ipairs({%s}) do print(rpm.vercmp(p[1], p[2]) .. " ") end'
                      % ','.join('{"%s","%s"}' % pair for pair in pairs))
    proc = subprocess.run(['rpm', '--eval', '%%{lua: dofile("%s")}' % script], env=ENV_C,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    expected = [int(x) for x in proc.stdout.split()]
    assert len(expected) == len(pairs), proc.stderr
    assert [_rpm.rpmvercmp(a, b) for a, b in pairs] == expected


# --------------------------------------------------------------------------
# The module itself
# --------------------------------------------------------------------------

def run_module(tmp_path, args, check_mode=False, diff=False):
    args = dict(args)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
    argfile = tmp_path / 'args.json'
    argfile.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run([sys.executable, MODULE, str(argfile)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return json.loads(proc.stdout)


def test_module_capture_then_compare_then_restore(root, backup_dir, rpms, tmp_path):
    path = str(tmp_path / 'baseline.json')
    args = {'state': 'captured', 'baseline': path, 'root': root, 'ignore': ['gpg-pubkey*'], 'digests': True}

    result = run_module(tmp_path, args, check_mode=True, diff=True)
    assert (result['changed'], os.path.exists(path)) == (True, False)
    assert result['counts'] == {'installed': 6, 'ignored_installed': 0, 'captured': 6}

    result = run_module(tmp_path, args, diff=True)
    assert result['changed'] is True
    with open(path) as f:
        assert f.read() == result['diff']['after']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(p['name'] for p in json.load(open(path))['packages']) == sorted(
        _rpm.parse_nevra(n).name for n in BASE)

    for check_mode in (True, False):
        result = run_module(tmp_path, args, check_mode=check_mode, diff=True)
        assert (result['changed'], result['diff']['before'] == result['diff']['after']) == (False, True)

    compared = {'baseline': path, 'root': root, 'backup_dir': backup_dir}
    result = run_module(tmp_path, compared)
    assert (result.get('failed', False), result['consistent'], result['baseline_format']) == (False, True, 'json')

    tamper(root, rpms, [(['-ivh'], ['kernel-5.14.0-162.el9.x86_64']), (['-Uvh'], ['bar-1.1-1.noarch'])])
    os.unlink(os.path.join(backup_dir, 'lib-1.0-1.x86_64.rpm'))
    result = run_module(tmp_path, compared, check_mode=True)
    assert result['failed'] is True
    assert result['msg'] == (
        'the installed rpm set differs from the baseline %s: 1 extra (kernel-5.14.0-162.el9.x86_64); '
        '1 changed (bar.noarch: bar-1.1-1.noarch installed, baseline bar-1.0-1.noarch). '
        'Backup rpms: 1 missing (lib-1.0-1.x86_64.rpm). '
        'restore_plan lists the rpm commands that put it right.' % path)
    assert result['restore_plan'] == [
        ['/usr/bin/rpm', '--root', root, '--dbpath', DBPATH, '-Uvh', '--oldpackage',
         os.path.join(backup_dir, 'bar-1.0-1.noarch.rpm')],
        ['/usr/bin/rpm', '--root', root, '--dbpath', DBPATH, '-e', 'kernel-5.14.0-162.el9.x86_64'],
    ]
    apply_plan(result['restore_plan'])
    result = run_module(tmp_path, dict(compared, fail_on_drift=False))
    assert (result['consistent'], [m['file'] for m in result['missing_backups']]) == (
        True, ['lib-1.0-1.x86_64.rpm'])


def test_module_malformed_baseline_changes_nothing(root, tmp_path):
    path = tmp_path / 'vendor.txt'
    path.write_text('bar-1.0-1.noarch\nfoo-1.0-1.x86_64\nfoo 1.0\n')
    before = installed(root)
    result = run_module(tmp_path, {'baseline': str(path), 'root': root})
    assert (result['failed'], result['msg']) == (
        True, "%s: line 3: 'foo 1.0' is not a package NEVRA (one package per line, no spaces)" % path)
    result = run_module(tmp_path, {'state': 'captured', 'baseline': str(path), 'root': root, 'dbpath': 'var/lib/rpm'})
    assert result['failed'] is True
    assert path.read_text() == 'bar-1.0-1.noarch\nfoo-1.0-1.x86_64\nfoo 1.0\n'
    assert installed(root) == before


def test_module_refuses_a_root_without_database(tmp_path):
    empty = tmp_path / 'empty-root'
    empty.mkdir()
    (tmp_path / 'b.txt').write_text('bar-1.0-1.noarch\n')
    result = run_module(tmp_path, {'baseline': str(tmp_path / 'b.txt'), 'root': str(empty)})
    assert result['msg'].startswith('no rpm database at %s/var/lib/rpm ' % empty)
    assert os.listdir(str(empty)) == []  # plain rpm -qa would have created one


# --------------------------------------------------------------------------
# The preflight task file, through ansible-playbook on localhost
# --------------------------------------------------------------------------

CHECK_PLAYBOOK = """\
- name: Check mode - nothing may be copied
  hosts: node
  gather_facts: false
  tasks:
    - name: Compare and find the missing backups
      clusterops.upgrade.rpm_baseline:
        baseline: "{{ baseline }}"
        root: "{{ rpm_root }}"
        backup_dir: "{{ preflight_backup_dir }}"
        fail_on_drift: false
      register: __preflight_rpm
    - name: Copy them from the peer (check mode)
      ansible.builtin.include_role:
        name: clusterops.upgrade.preflight
        tasks_from: fix_backup_from_peer.yml
      loop: "{{ __preflight_rpm.missing_backups }}"
      loop_control:
        loop_var: preflight_backup_package
"""

PLAYBOOK = """\
- name: Copy the missing backups from the peer
  hosts: node
  gather_facts: false
  tasks:
    - name: Compare and find the missing backups
      clusterops.upgrade.rpm_baseline:
        baseline: "{{ baseline }}"
        root: "{{ rpm_root }}"
        backup_dir: "{{ preflight_backup_dir }}"
        fail_on_drift: false
      register: __preflight_rpm
    - name: Record what check mode left behind
      ansible.builtin.set_fact:
        missing_before: "{{ __preflight_rpm.missing_backups | map(attribute='file') | list }}"
    - name: Copy them from the peer
      ansible.builtin.include_role:
        name: clusterops.upgrade.preflight
        tasks_from: fix_backup_from_peer.yml
      loop: "{{ __preflight_rpm.missing_backups }}"
      loop_control:
        loop_var: preflight_backup_package
    - name: Compare again
      clusterops.upgrade.rpm_baseline:
        baseline: "{{ baseline }}"
        root: "{{ rpm_root }}"
        backup_dir: "{{ preflight_backup_dir }}"
      register: __preflight_rpm_after
    - name: A peer copy that is not the wanted package is refused
      block:
        - name: Ask for a package the peer holds under a wrong name
          ansible.builtin.include_role:
            name: clusterops.upgrade.preflight
            tasks_from: fix_backup_from_peer.yml
          vars:
            preflight_backup_package: {name: foo, epoch: 0, version: "0.9", release: "1", arch: x86_64}
        - name: Not reached
          ansible.builtin.set_fact:
            refused: ""
      rescue:
        - name: Keep the message
          ansible.builtin.set_fact:
            refused: "{{ ansible_failed_result.msg }}"
    - name: Write the results for the test
      ansible.builtin.copy:
        dest: "{{ results }}"
        content: "{{ {'missing_before': missing_before, 'after': __preflight_rpm_after.missing_backups,
                      'consistent': __preflight_rpm_after.consistent, 'refused': refused} | to_json }}"
        mode: "0600"
"""


def test_fix_backup_from_peer(root, backup_dir, rpms, tmp_path):
    peer_dir = tmp_path / 'peer-backup-rpm'
    shutil.copytree(backup_dir, str(peer_dir))
    # the peer's "foo-0.9" file is really foo-1.0: it must be refused
    shutil.copy(rpms['foo-1.0-1.x86_64'], str(peer_dir / 'foo-0.9-1.x86_64.rpm'))
    os.unlink(os.path.join(backup_dir, 'bar-1.0-1.noarch.rpm'))
    with open(os.path.join(backup_dir, 'kernel-5.14.0-70.el9.x86_64.rpm'), 'w') as f:
        f.write('damaged')   # present but corrupt: replaced by the peer's copy
    baseline = tmp_path / 'baseline.txt'
    baseline.write_text('\n'.join(BASE) + '\n')
    results = tmp_path / 'results.json'
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(json.dumps({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'preflight_rpm_dbpath': os.path.join(root, 'var/lib/rpm')},
        'hosts': {
            'node': {'preflight_backup_dir': backup_dir, 'preflight_backup_peer': 'peer',
                     'preflight_backup_peer_dir': str(peer_dir), 'baseline': str(baseline),
                     'rpm_root': root, 'results': str(results)},
            'peer': {},
        }}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1', ANSIBLE_PIPELINING='1', ANSIBLE_LOCALHOST_WARNING='0')

    def playbook(text, *options):
        path = tmp_path / 'play.yml'
        path.write_text(text)
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                               '-i', str(inventory), str(path)] + list(options),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              cwd=str(tmp_path), check=False)
        assert proc.returncode == 0, proc.stdout
        return proc.stdout

    listing = sorted(os.listdir(backup_dir))
    out = playbook(CHECK_PLAYBOOK, '--check')
    assert sorted(os.listdir(backup_dir)) == listing
    assert out.count('would copy ') == 2
    assert 'would copy bar-1.0-1.noarch.rpm from peer:%s to %s' % (peer_dir, backup_dir) in out
    assert 'changed=2 ' in out

    playbook(PLAYBOOK)
    data = json.loads(results.read_text())
    assert data['missing_before'] == ['bar-1.0-1.noarch.rpm', 'kernel-5.14.0-70.el9.x86_64.rpm']
    assert (data['after'], data['consistent']) == ([], True)
    assert data['refused'] == (
        'peer has no intact copy of foo-0.9-1.x86_64: %s/foo-0.9-1.x86_64.rpm has the header '
        'foo 1.0 1 x86_64 0. Pick another peer (preflight_backup_peer) or restore the file from the vendor bundle.'
        % peer_dir)
    for name in data['missing_before']:
        with open(os.path.join(backup_dir, name), 'rb') as a, open(str(peer_dir / name), 'rb') as b:
            assert a.read() == b.read()
        assert stat.S_IMODE(os.stat(os.path.join(backup_dir, name)).st_mode) == 0o644
    assert sorted(os.listdir(backup_dir)) == sorted(os.path.basename(_rpm.parse_nevra(n).filename()) for n in BASE)
