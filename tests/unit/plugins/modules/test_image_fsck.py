# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image_fsck module with its command seam mocked: argv order, check mode, refusals.

The image, the backup directory and the boot markers are real files under
tmp_path; the mount table is a file the module is pointed at; commands
(fsck.ext2, mount, losetup) are answered by a recorder.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import image_fsck

RESERVED = {'failed', 'skipped', 'msg', 'rc', 'results', 'stdout', 'stderr', 'stdout_lines',
            'stderr_lines', 'invocation', 'warnings', 'deprecations', 'ansible_facts'}

FSCK = '/usr/sbin/fsck.ext2'
MOUNT = '/usr/bin/mount'
LOSETUP = '/usr/sbin/losetup'
E2UNDO = '/usr/sbin/e2undo'
LIST_LOOPS = [LOSETUP, '--list', '--json', '--output', 'NAME,MAJ:MIN,BACK-FILE,BACK-INO,BACK-MAJ:MIN']

CORRUPT_OUT = """\
e2fsck 1.47.0 (5-Feb-2023)
Pass 1: Checking inodes, blocks, and sizes
Pass 2: Checking directory structure
Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.  Clear? no

Pass 5: Checking group summary information
Block bitmap differences:  -1624
Fix? no

COS_ACTIVE: ********** WARNING: Filesystem still has errors **********
"""
FIXED_OUT = """\
Pass 2: Checking directory structure
Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.  Clear? yes

COS_ACTIVE: ***** FILE SYSTEM WAS MODIFIED *****
"""


class Exit(Exception):
    pass


class Fail(Exception):
    pass


class Commands(object):
    """Answers run_command by argv (a list of answers is consumed in order)."""

    def __init__(self):
        self.answers = {}
        self.calls = []
        self.fallback = None  # callable(argv) for argv not in answers (e.g. a generated path)

    def on(self, argv, *answers):
        self.answers[tuple(argv)] = list(answers)

    def __call__(self, module, args, **kwargs):
        self.calls.append((list(args), kwargs))
        queue = self.answers.get(tuple(args))
        if not queue:
            if self.fallback is not None:
                return self.fallback(list(args))
            return 0, '', ''
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    @property
    def argvs(self):
        return [argv for argv, dummy in self.calls]


class Host(object):
    """tmp_path laid out like a node booted from the fallback image."""

    def __init__(self, tmp_path, monkeypatch, access='ro', marker='cos/passive_mode'):
        self.state = str(tmp_path / 'state')
        os.makedirs(os.path.join(self.state, 'cOS'))
        self.image = os.path.join(self.state, 'cOS', 'active.img')
        with open(self.image, 'wb') as handle:
            handle.write(os.urandom(8192))
            handle.seek(96 * 1024)
            handle.write(b'tail')
            handle.truncate(256 * 1024)
        self.backups = str(tmp_path / 'bk')
        os.mkdir(self.backups)
        self.run = str(tmp_path / 'run')
        if marker:
            os.makedirs(os.path.join(self.run, os.path.dirname(marker)))
            open(os.path.join(self.run, marker), 'w').close()
        st = os.stat(self.image)
        self.mountinfo = str(tmp_path / 'mountinfo')
        with open(self.mountinfo, 'w') as handle:
            handle.write('22 1 1:99 / / rw - ext4 /dev/vdz rw\n'
                         '60 22 %d:%d / %s %s,relatime - ext4 /dev/loop3 %s\n'
                         % (os.major(st.st_dev), os.minor(st.st_dev), self.state, access, access))
        monkeypatch.setattr(image_fsck, 'MOUNTINFO', self.mountinfo)
        monkeypatch.setattr(image_fsck, 'SYS_BLOCK', str(tmp_path / 'no-sys'))
        self.commands = Commands()
        commands = self.commands

        def run_command(module, args, **kwargs):
            return commands(module, args, **kwargs)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)

    def args(self, **kwargs):
        args = {'image': self.image, 'boot_markers_root': self.run}
        args.update(kwargs)
        return args

    def sha(self):
        with open(self.image, 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(autouse=True)
def capture(monkeypatch):
    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return {'fsck.ext2': FSCK, 'mount': MOUNT, 'losetup': LOSETUP, 'e2undo': E2UNDO}[name]

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', get_bin_path)


@pytest.fixture
def host(tmp_path, monkeypatch):
    return Host(tmp_path, monkeypatch)


def run(args, expect=Exit, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(expect) as caught:
            image_fsck.main()
    return caught.value.args[0]


def test_check_clean(host):
    result = run(host.args(mode='check'))
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image]]
    assert (result['changed'], result['clean_before'], result['clean_after']) == (False, True, True)
    assert (result['fsck_rc'], result['fsck_meaning'], result['problems']) == (0, ['no errors'], [])
    assert (result['boot_mode'], result['boot_marker']) == (
        'passive', os.path.join(host.run, 'cos', 'passive_mode'))
    assert (result['state_mount'], result['state_mount_before']) == (host.state, 'ro')
    assert not RESERVED & set(result)


def test_commands_run_with_c_locale_without_expansion(host):
    run(host.args(mode='check'))
    for dummy, kwargs in host.commands.calls:
        assert kwargs['environ_update'] == {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
        assert kwargs['expand_user_and_vars'] is False
        assert kwargs['check_rc'] is False


@pytest.mark.parametrize('check_mode', [False, True])
def test_check_corrupted_reports_problems(host, check_mode):
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''))
    result = run(host.args(mode='check'), check_mode=check_mode)
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image]]
    assert (result['changed'], result['clean_before'], result['check_rc']) == (False, False, 4)
    assert result['fsck_meaning'] == ['file system errors left uncorrected']
    assert result['problems'] == ["Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.",
                                  'Block bitmap differences:  -1624']
    assert result['problems_count'] == 2


def test_check_operational_error_fails(host):
    host.commands.on([FSCK, '-fn', host.image], (8, '', 'fsck.ext2: Bad magic number in super-block'))
    result = run(host.args(mode='check'), expect=Fail)
    assert result['msg'] == ('fsck.ext2 -fn %s could not check the image (rc 8: operational error): '
                             'fsck.ext2: Bad magic number in super-block' % host.image)


def test_repair_in_check_mode_predicts_and_changes_nothing(host):
    before = host.sha()
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''))
    result = run(host.args(mode='repair', backup_dir=host.backups), check_mode=True)
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image]]
    assert (result['changed'], result['would_repair'], result['repaired']) == (True, True, False)
    assert (result['clean_before'], result['clean_after']) == (False, None)
    assert (result['remounted_rw'], result['remounted_ro']) == (False, False)
    assert os.listdir(host.backups) == []
    assert host.sha() == before


def test_repair_of_a_clean_image_does_nothing(host):
    result = run(host.args(mode='repair', backup_dir=host.backups))
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image]]
    assert (result['changed'], result['repaired'], result['clean_after']) == (False, False, True)
    assert os.listdir(host.backups) == []


def test_repair_order_and_results(host):
    before = host.sha()
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''), (0, '', ''))
    host.commands.on([FSCK, '-fy', host.image], (1, FIXED_OUT, ''))
    result = run(host.args(mode='repair', backup_dir=host.backups))
    assert host.commands.argvs == [
        LIST_LOOPS,
        [FSCK, '-fn', host.image],
        [MOUNT, '-o', 'remount,rw', host.state],
        [FSCK, '-fy', host.image],
        [MOUNT, '-o', 'remount,ro', host.state],
        [FSCK, '-fn', host.image],
    ]
    assert result['commands'] == host.commands.argvs
    (backup,) = os.listdir(host.backups)
    path = os.path.join(host.backups, backup)
    with open(path, 'rb') as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == before
    assert (result['backup_path'], result['backup_sha256'], result['backup_size']) == (
        path, before, 256 * 1024)
    assert result['backup_written'] < 256 * 1024
    assert (result['changed'], result['repaired'], result['clean_before'], result['clean_after']) == (
        True, True, False, True)
    assert (result['check_rc'], result['fsck_rc'], result['recheck_rc']) == (4, 1, 0)
    assert result['fsck_meaning'] == ['file system errors corrected']
    assert result['fixed'] == ["Entry 'mods' in /usr/lib (17) has deleted/unused inode 18."]
    assert (result['remounted_rw'], result['remounted_ro']) == (True, True)
    assert (result['state_mount_before'], result['state_mount_after'], result['mount_restored']) == (
        'ro', 'ro', True)
    assert not RESERVED & set(result)


def test_repair_fsck_exit_8_still_remounts_ro_and_fails(host):
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''))
    host.commands.on([FSCK, '-fy', host.image], (8, '', 'fsck.ext2: simulated'))
    result = run(host.args(mode='repair', backup_dir=host.backups), expect=Fail)
    assert host.commands.argvs[2:] == [
        [MOUNT, '-o', 'remount,rw', host.state],
        [FSCK, '-fy', host.image],
        [MOUNT, '-o', 'remount,ro', host.state],
        [FSCK, '-fn', host.image],
    ]
    assert result['msg'] == (
        'fsck.ext2 -fy %s failed (rc 8: operational error); the re-check still finds errors '
        '(rc 4: file system errors left uncorrected); the image as it was before is saved in %s '
        '(sha256 %s)' % (host.image, result['backup_path'], result['backup_sha256']))
    assert (result['remounted_ro'], result['state_mount_after'], result['changed']) == (True, 'ro', False)
    assert result['fsck_meaning'] == ['operational error']


def test_repair_fsck_raising_still_remounts_ro(host):
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''))
    host.commands.on([FSCK, '-fy', host.image], OSError(12, 'Cannot allocate memory'))
    result = run(host.args(mode='repair', backup_dir=host.backups), expect=Fail)
    assert host.commands.argvs[2:] == [
        [MOUNT, '-o', 'remount,rw', host.state],
        [FSCK, '-fy', host.image],
        [MOUNT, '-o', 'remount,ro', host.state],
    ]
    assert result['msg'].startswith('repair failed: OSError: [Errno 12] Cannot allocate memory; '
                                    'the image as it was before is saved in ')
    assert (result['remounted_rw'], result['remounted_ro'], result['clean_after']) == (True, True, None)


def test_repair_without_backup(host):
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''), (0, '', ''))
    host.commands.on([FSCK, '-fy', host.image], (1, FIXED_OUT, ''))
    result = run(host.args(mode='repair', backup=False))
    assert [FSCK, '-fy', host.image] in host.commands.argvs
    assert 'backup_path' not in result
    assert result['repaired'] is True


def test_repair_on_rw_state_mount_leaves_it_rw(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch, access='rw')
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''), (0, '', ''))
    host.commands.on([FSCK, '-fy', host.image], (1, FIXED_OUT, ''))
    result = run(host.args(mode='repair', backup_dir=host.backups))
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image], [FSCK, '-fy', host.image],
                                   [FSCK, '-fn', host.image]]
    assert (result['remounted_rw'], result['remounted_ro']) == (False, False)
    assert (result['state_mount_before'], result['state_mount_after'], result['mount_restored']) == (
        'rw', 'rw', True)


def _refused(host, args, expect_commands):
    before = host.sha()
    result = run(args, expect=Fail)
    assert host.commands.argvs == expect_commands
    assert host.sha() == before
    assert os.listdir(host.backups) == []
    return result


def test_refuse_booted_from_image(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch, marker='elemental/active_mode')
    result = _refused(host, host.args(mode='repair', backup_dir=host.backups), [LIST_LOOPS])
    reason = ('booted from the image: this system runs from %s (marker %s); reboot into the '
              'fallback (passive) or recovery system first'
              % (host.image, os.path.join(host.run, 'elemental', 'active_mode')))
    assert result['refusals'] == [reason]
    assert result['msg'] == 'refusing to repair %s: %s' % (host.image, reason)
    assert (result['boot_mode'], result['boot_marker']) == (
        'active', os.path.join(host.run, 'elemental', 'active_mode'))


def test_refuse_image_missing(host):
    missing = os.path.join(host.state, 'cOS', 'nothere.img')
    result = _refused(host, host.args(image=missing, mode='repair', backup_dir=host.backups), [])
    assert result['msg'] == ('refusing to repair: image %s does not exist (No such file or '
                             'directory); give the path of the OS image file, e.g. '
                             '/run/initramfs/cos-state/cOS/active.img' % missing)


def test_refuse_backup_dir_missing_or_not_given(host):
    missing = os.path.join(host.backups, 'nope')
    result = _refused(host, host.args(mode='repair', backup_dir=missing), [LIST_LOOPS])
    assert result['refusals'] == ['backup_dir %s does not exist or is not a directory: create it '
                                  'first' % missing]
    host.commands.calls[:] = []
    result = _refused(host, host.args(mode='repair'), [LIST_LOOPS])
    assert result['refusals'] == ['backup_dir is required for mode=repair: set it to a directory on '
                                  'another file system with room for the image, or set backup: '
                                  'false to repair without a backup']


def test_refuse_state_mount_not_found(host):
    elsewhere = os.path.dirname(host.state)
    result = _refused(host, host.args(mode='repair', backup_dir=host.backups, state_mount=elsewhere),
                      [LIST_LOOPS])
    assert result['refusals'] == [
        'state mount not found: %s is not a mount point (the image %s is on %s); set state_mount '
        'to the mount point that holds the image' % (elsewhere, host.image, host.state)]


def test_refuse_mounted_image(host):
    st = os.stat(host.image)
    listing = ('{"loopdevices": [{"name": "/dev/loop6", "maj:min": "7:6", "back-file": "%s", '
               '"back-ino": %d, "back-maj:min": "%d:%d"}]}'
               % (host.image, st.st_ino, os.major(st.st_dev), os.minor(st.st_dev)))
    host.commands.on(LIST_LOOPS, (0, listing, ''))
    with open(host.mountinfo, 'a') as handle:
        handle.write('70 22 7:6 / /mnt/active ro - ext4 /dev/loop6 ro\n')
    reason = ('the image is mounted: /dev/loop6 (backing %s) is mounted at /mnt/active; unmount '
              'it first, e2fsck must not run on a mounted file system' % host.image)
    result = _refused(host, host.args(mode='check'), [LIST_LOOPS])
    assert result['refusals'] == [reason]
    host.commands.calls[:] = []
    result = _refused(host, host.args(mode='repair', backup_dir=host.backups), [LIST_LOOPS])
    assert result['refusals'] == [reason]


def test_refuse_without_marker_unless_told(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch, marker=None)
    result = _refused(host, host.args(mode='repair', backup_dir=host.backups), [LIST_LOOPS])
    assert result['refusals'][0].startswith('no boot-mode marker (cos/ or elemental/ *_mode) was found')
    host.commands.calls[:] = []
    result = run(host.args(mode='repair', backup_dir=host.backups, require_fallback_boot=False))
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image]]
    assert result['boot_mode'] is None


# ---------------------------------------------------------------------------- backup_method=undo

UNDO_FY = """\
Overwriting existing filesystem; this can be undone using the command:
    e2undo {undo} {image}

Pass 2: Checking directory structure
Entry 'mods' in /usr/lib (17) has deleted/unused inode 18.  Clear? yes

COS_ACTIVE: ***** FILE SYSTEM WAS MODIFIED *****
"""


def _undo_commands(host, verify):
    """fsck -fy -z FILE writes the undo file; e2undo -n -v answers ``verify``."""
    def answer(argv):
        if argv[:4] == [FSCK, '-fy', '-z', argv[3]] and len(argv) == 5:
            with open(argv[3], 'wb') as handle:
                handle.write(b'E2UNDO02' + bytes(8184))
            return 1, UNDO_FY.format(undo=argv[3], image=argv[4]), ''
        if argv[0] == E2UNDO:
            return verify
        return 0, '', ''
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''), (0, '', ''))
    host.commands.fallback = answer


def test_repair_with_an_undo_file(host):
    before = host.sha()
    _undo_commands(host, (0, 'Replayed block of size 4096 from 5 to 145\n'
                             'Replayed block of size 4096 from 4 to 1624\n', ''))
    result = run(host.args(mode='repair', backup_dir=host.backups, backup_method='undo'))
    (name,) = os.listdir(host.backups)
    undo = os.path.join(host.backups, name)
    assert name.startswith('active.img.') and name.endswith('.e2undo')
    assert host.commands.argvs == [
        LIST_LOOPS,
        [FSCK, '-fn', host.image],
        [MOUNT, '-o', 'remount,rw', host.state],
        [FSCK, '-fy', '-z', undo, host.image],
        [MOUNT, '-o', 'remount,ro', host.state],
        [E2UNDO, '-n', '-v', undo, host.image],
        [FSCK, '-fn', host.image],
    ]
    # no copy of the image was made or read back: the image itself is untouched by the mock
    assert host.sha() == before
    assert (result['backup_method'], result['backup_path'], result['backup_sha256'], result['backup_size'],
            result['backup_written'], result['undo_blocks']) == ('undo', undo, None, 8192, 8192, 2)
    assert (result['changed'], result['repaired'], result['clean_after'], result['state_mount_after']) == (
        True, True, True, 'ro')
    assert result['fixed'] == ["Entry 'mods' in /usr/lib (17) has deleted/unused inode 18."]
    assert not RESERVED & set(result)


def test_repair_with_an_undo_file_that_does_not_verify_fails(host):
    _undo_commands(host, (1, '', 'checksum error in filesystem block 129 (undo blk 14)\n'))
    result = run(host.args(mode='repair', backup_dir=host.backups, backup_method='undo'), expect=Fail)
    (name,) = os.listdir(host.backups)
    undo = os.path.join(host.backups, name)
    assert result['msg'] == (
        'the undo file %s does not verify (e2undo -n rc 1: checksum error in filesystem block 129 (undo blk '
        '14)): the image was repaired without a verified way back' % undo)
    assert (result['changed'], result['repaired'], result['state_mount_after']) == (True, False, 'ro')
    assert 'backup_path' not in result
    assert host.commands.argvs[-2:] == [[E2UNDO, '-n', '-v', undo, host.image], [FSCK, '-fn', host.image]]


def test_repair_with_undo_in_check_mode_runs_no_e2undo(host):
    host.commands.on([FSCK, '-fn', host.image], (4, CORRUPT_OUT, ''))
    result = run(host.args(mode='repair', backup_dir=host.backups, backup_method='undo'), check_mode=True)
    assert host.commands.argvs == [LIST_LOOPS, [FSCK, '-fn', host.image]]
    assert (result['would_repair'], result['changed']) == (True, True)
    assert os.listdir(host.backups) == []
