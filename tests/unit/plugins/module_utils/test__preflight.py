# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_preflight and _preflight_cluster: every check's pass / fail / skipped evaluation with its exact evidence,
the host-side readers (statvfs, bundle copies and markers, rpm through its seam,
findmnt through the _snapshot runner), and the controller-side evaluation on pcs_info
facts built from the crm_mon / cibadmin outputs recorded in the lab
(fixtures/pacemaker)."""

from __future__ import annotations

import ast
import collections
import hashlib
import json
import os

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker as PM
from ansible_collections.clusterops.upgrade.plugins.module_utils import _planner
from ansible_collections.clusterops.upgrade.plugins.module_utils import _preflight as P
from ansible_collections.clusterops.upgrade.plugins.module_utils import _preflight_cluster as PC
from ansible_collections.clusterops.upgrade.plugins.module_utils import _report
from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'pacemaker')
HOSTS = ['ctl-a', 'ctl-b', 'cmp-1', 'cmp-2', 'cmp-3', 'cmp-4']
COMPUTE = HOSTS[2:]
C = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
FS = _rpm.FS


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def facts(mon='crm_mon_healthy.xml', constraints=''):
    """pcs_info facts as the module returns them, from recorded lab outputs."""
    cons = fixture('cibadmin_constraints.xml').replace('</constraints>', constraints + '</constraints>')
    cib = '<cib><configuration>%s%s%s</configuration></cib>' % (
        fixture('cibadmin_nodes.xml'), fixture('cibadmin_resources.xml'), cons)
    return PM.build_facts(PM.parse_crm_mon(fixture(mon)), PM.parse_cib(cib), '0.11.5')


def brief(results):
    return [(r['id'], r['host'], r['status'], r['evidence']) for r in results]


def one(results, check_id, host=None):
    found = [r for r in results if r['id'] == check_id and (host is None or r['host'] == host)]
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------
# the catalogue and the result shape
# --------------------------------------------------------------------------

def test_every_result_is_accepted_by_the_report():
    results = [P.result(check_id, 'h1', P.FAIL, 'seen', expected='6.8.0', backup_dir='/b', paths='/', limit='99',
                        version='6.8.0', nodes='ctl-b', vip='vip', commands='x') for check_id in P.CHECKS]
    normalized = _report.normalize_results(results)
    assert [r['id'] for r in normalized] == list(P.CHECKS)
    assert all(r['severity'] == 'blocker' for r in normalized)


def _imported_names(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or '')
            names.update('%s.%s' % (node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_host_half_never_imports_the_controller_half():
    # A module payload carries every module_utils file its module imports anywhere
    # (inside functions too), and each host compiles what it imports on every run.
    from ansible_collections.clusterops.upgrade.plugins.modules import preflight_host
    for path in (P.__file__, preflight_host.__file__):
        names = _imported_names(path)
        assert [n for n in names if n.endswith(('._preflight_cluster', '._planner', '._pacemaker'))] == []
    assert 'ansible_collections.clusterops.upgrade.plugins.module_utils._rpm' in _imported_names(P.__file__)
    # _snapshot only inside functions (version command, datastores): not compiled for a version file
    with open(P.__file__) as f:
        top = [n for n in ast.parse(f.read()).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert sorted(n.module for n in top if isinstance(n, ast.ImportFrom)) == [
        '__future__', 'ansible_collections.clusterops.upgrade.plugins.module_utils._rpm']


def test_result_shape_and_remedy_only_on_failure():
    assert P.result('disk_usage', 'h1', P.PASS, 'fine') == {
        'id': 'disk_usage', 'host': 'h1', 'severity': 'blocker', 'status': 'pass', 'evidence': 'fine',
        'remedy': '', 'title': 'Root and log partitions below the threshold'}
    failed = P.result('disk_usage', 'h1', P.FAIL, 'full', data={'x': 1}, paths='/var/log', limit='99')
    assert failed['remedy'] == ('free space on /var/log (old logs, core files, leftover packages) until usage is '
                                'below 99 %')
    assert failed['data'] == {'x': 1}


def test_listing_limits_long_lists():
    assert P.listing(['a', 'b']) == 'a, b'
    assert P.listing([str(i) for i in range(12)], limit=3) == '0, 1, 2, ... and 9 more'


# --------------------------------------------------------------------------
# host side: product_version
# --------------------------------------------------------------------------

@pytest.mark.parametrize('version, source, problem, expected, status, evidence', [
    ('6.8.0', 'file:/etc/labsphere/version', None, '6.8.0', 'pass',
     'version 6.8.0 (from file:/etc/labsphere/version) equals the expected 6.8.0'),
    ('6.8.1', 'file:/etc/labsphere/version', None, '6.8.0', 'fail',
     'version 6.8.1 (from file:/etc/labsphere/version), expected 6.8.0'),
    (None, 'file:/etc/v', 'cannot read version_file /etc/v', '6.8.0', 'fail',
     'cannot read the product version: cannot read version_file /etc/v'),
    ('6.8.0', 'command:cat /v', None, None, 'skipped',
     'version 6.8.0 (from command:cat /v); no expected source version set (preflight_expected_version)'),
    (None, None, None, '6.8.0', 'skipped',
     'no version source configured (preflight_version_file or preflight_version_command)'),
])
def test_product_version(version, source, problem, expected, status, evidence):
    r = P.eval_product_version('cmp-1', version, source, problem, expected)
    assert (r['id'], r['host'], r['status'], r['evidence']) == ('product_version', 'cmp-1', status, evidence)
    if status == 'fail':
        assert r['remedy'] == ('bring the host to 6.8.0 first, or set preflight_expected_version to the version the '
                               'cluster really runs')


# --------------------------------------------------------------------------
# host side: disk_usage
# --------------------------------------------------------------------------

StatVfs = collections.namedtuple('StatVfs', 'f_bsize f_frsize f_blocks f_bfree f_bavail')


def fake_statvfs(table):
    def statvfs(path):
        if path not in table:
            raise OSError(2, 'No such file or directory')
        return table[path]
    return statvfs


@pytest.mark.parametrize('text, regex', [
    ('6.8.0\n', None),
    ('  6.8.0-b6  \nbuild 42\n', None),
    ('ICS 6.8.0 build 6\n', r'(\d+\.\d+\.\d+)'),
    ('ICS 6.8.0\n', r'\d+\.\d+'),
    ('ICS\n', r'(\d+\.\d+\.\d+)'),
    ('\n\n', None),
    (None, None),
])
def test_version_file_is_read_as_snapshot_reads_it(tmp_path, text, regex):
    from ansible_collections.clusterops.upgrade.plugins.module_utils import _snapshot
    path = str(tmp_path / 'version')
    if text is not None:
        with open(path, 'w') as f:
            f.write(text)
    assert P.read_version_file(path, regex) == _snapshot.read_product_version(None, path, None, regex)


def test_version_file_results():
    assert P.read_version(None) == (None, None, None)
    assert P.read_version(None, '/nonexistent/version') == (
        None, 'file:/nonexistent/version', 'cannot read version_file /nonexistent/version')


def test_host_runner_runs_argv_with_lang_c():
    calls = []

    class Module(object):
        def run_command(self, argv, **kwargs):
            calls.append((argv, kwargs))
            return 0, 'out', ''

        def get_bin_path(self, name, required=False):
            return '/usr/bin/' + name

    runner = P.HostRunner(Module())
    assert runner.run(('findmnt', '-J')) == (0, 'out', '')
    assert calls == [(['findmnt', '-J'], {'environ_update': {'LANG': 'C', 'LC_ALL': 'C'},
                                          'expand_user_and_vars': False})]
    assert runner.which('findmnt') == '/usr/bin/findmnt'


def test_disk_usage_is_computed_as_df_does():
    # used = (1000 - 100) blocks, avail = 50: 900 / 950 = 94.7 -> 95 (rounded up)
    st = StatVfs(4096, 4096, 1000, 100, 50)
    assert P.disk_usage('/x', fake_statvfs({'/x': st})) == {
        'path': '/x', 'used_pct': 95, 'used_bytes': 900 * 4096, 'avail_bytes': 50 * 4096,
        'size_bytes': 1000 * 4096}
    assert P.disk_usage('/gone', fake_statvfs({})) == {'path': '/gone', 'error': 'No such file or directory'}
    assert P.disk_usage('/empty', fake_statvfs({'/empty': StatVfs(4096, 4096, 0, 0, 0)}))['used_pct'] == 0


@pytest.mark.parametrize('usages, threshold, status, evidence', [
    ([{'path': '/', 'used_pct': 23}, {'path': '/var/log', 'used_pct': 98}], 99, 'pass',
     '/ is 23 % full, /var/log is 98 % full (limit: below 99 %)'),
    ([{'path': '/', 'used_pct': 23}, {'path': '/var/log', 'used_pct': 99}], 99, 'fail',
     '/var/log is 99 % full (limit: below 99 %); / is 23 % full'),
    ([{'path': '/', 'used_pct': 91}, {'path': '/var/log', 'used_pct': 90}], 90.5, 'fail',
     '/ is 91 % full (limit: below 90.5 %); /var/log is 90 % full'),
    ([{'path': '/data', 'error': 'No such file or directory'}], 99, 'fail',
     '/data cannot be read: No such file or directory (limit: below 99 %)'),
    ([], 99, 'skipped', 'no partitions configured (preflight_disk_paths)'),
])
def test_disk_usage_evaluation(usages, threshold, status, evidence):
    r = P.eval_disk_usage('cmp-4', usages, threshold)
    assert (r['status'], r['evidence']) == (status, evidence)


def test_disk_usage_remedy_names_the_full_paths():
    r = P.eval_disk_usage('cmp-4', [{'path': '/', 'used_pct': 99}, {'path': '/var/log', 'used_pct': 100}], 99)
    assert r['remedy'] == ('free space on /, /var/log (old logs, core files, leftover packages) until usage is '
                           'below 99 %')
    assert r['data'] == {'threshold': 99, 'usage': [{'path': '/', 'used_pct': 99},
                                                    {'path': '/var/log', 'used_pct': 100}]}


# --------------------------------------------------------------------------
# host side: datastores
# --------------------------------------------------------------------------

def mount(target, ro=False):
    return {'target': target, 'source': '/dev/x', 'fstype': 'ext4', 'options': 'ro' if ro else 'rw', 'ro': ro}


@pytest.mark.parametrize('wanted, mounts, problem, status, evidence', [
    (['/ds/a', '/ds/b'], [mount('/ds/a'), mount('/ds/b')], None, 'pass', 'mounted: /ds/a, /ds/b'),
    (['/ds/a', '/ds/b'], [mount('/ds/a')], None, 'fail', 'not mounted: /ds/b; mounted: /ds/a'),
    (['/ds/a', '/ds/b'], [mount('/ds/a', ro=True)], None, 'fail',
     'not mounted: /ds/b; mounted read-only: /ds/a'),
    (['/ds/a'], [], 'findmnt exited 1: boom', 'fail', 'cannot list the mounts: findmnt exited 1: boom'),
    ([], [], None, 'skipped', 'no datastores configured (preflight_datastores)'),
])
def test_datastores(wanted, mounts, problem, status, evidence):
    r = P.eval_datastores('cmp-1', wanted, mounts, problem)
    assert (r['status'], r['evidence']) == (status, evidence)


def test_datastores_remedy_names_what_to_mount():
    r = P.eval_datastores('cmp-1', ['/ds/a', '/ds/b'], [mount('/ds/a', ro=True)], None)
    assert r['remedy'] == 'mount /ds/b, /ds/a (check the storage path and the pool) before the upgrade'


# --------------------------------------------------------------------------
# host side: bundle_staged
# --------------------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_bundle_copy_and_staged_tree_verified(tmp_path):
    data = b'bundle bytes'
    (tmp_path / 'bundles').mkdir()
    (tmp_path / 'bundles' / 'p-S001-b1.upgrade.zip').write_bytes(data)
    staged = tmp_path / 'staging' / '6.8.1' / 'p-S001-b1.upgrade'
    staged.mkdir(parents=True)
    (staged / '.clusterops-bundle.json').write_text(json.dumps({'checksum': sha256(data)}))
    bundle = {'name': 'p-S001-b1.upgrade.zip', 'checksum': sha256(data)}
    state = P.bundle_state(bundle, str(tmp_path / 'bundles'), str(tmp_path / 'staging' / '6.8.1'))
    assert state == {'name': 'p-S001-b1.upgrade.zip', 'problems': [], 'found': [
        'copy %s/bundles/p-S001-b1.upgrade.zip verified' % tmp_path, 'staged at %s' % staged]}
    r = P.eval_bundles('cmp-1', [state])
    assert (r['status'], r['evidence']) == ('pass', 'p-S001-b1.upgrade.zip: copy %s/bundles/p-S001-b1.upgrade.zip '
                                                    'verified, staged at %s' % (tmp_path, staged))


def test_bundle_damaged_copy_and_foreign_tree_fail(tmp_path):
    (tmp_path / 'bundles').mkdir()
    (tmp_path / 'bundles' / 'p-S001-b1.upgrade.zip').write_bytes(b'flipped')
    staged = tmp_path / 'staging' / 'p-S001-b1.upgrade'
    staged.mkdir(parents=True)
    good = sha256(b'bundle bytes')
    bundle = {'name': 'p-S001-b1.upgrade.zip', 'checksum': good}
    state = P.bundle_state(bundle, str(tmp_path / 'bundles'), str(tmp_path / 'staging'))
    assert state['found'] == []
    assert state['problems'] == [
        'copy %s/bundles/p-S001-b1.upgrade.zip: mismatch (sha256 is %s, expected %s)'
        % (tmp_path, sha256(b'flipped'), good),
        '%s exists but was not staged by clusterops.upgrade.bundle_stage' % staged]
    r = P.eval_bundles('cmp-1', [state])
    assert r['status'] == 'fail'
    assert r['evidence'] == 'p-S001-b1.upgrade.zip: ' + ', '.join(state['problems'])
    (staged / '.clusterops-bundle.json').write_text(json.dumps({'checksum': 'ab' * 32}))
    state = P.bundle_state(bundle, None, str(tmp_path / 'staging'))
    assert state['problems'] == ['%s was staged from another build (checksum %s)' % (staged, 'ab' * 32)]


def test_bundles_not_staged_or_not_meant_for_the_host(tmp_path):
    state = P.bundle_state({'name': 'a.zip', 'checksum': 'ab' * 32}, str(tmp_path), str(tmp_path))
    assert state == {'name': 'a.zip', 'found': [], 'problems': []}
    assert brief([P.eval_bundles('h', [state])]) == [
        ('bundle_staged', 'h', 'skipped', 'not staged on this host yet: a.zip')]
    assert brief([P.eval_bundles('h', [])]) == [
        ('bundle_staged', 'h', 'skipped', 'no bundle is meant for this host (preflight_bundle_files)')]
    state = P.bundle_state({'name': 'a.zip', 'checksum': None}, str(tmp_path), None)
    assert state['problems'] == ['no vendor checksum for it (not in the manifest)']


def test_select_bundles_by_group():
    bundles = [{'name': 'm.zip', 'groups': ['control_plane']}, {'name': 's.zip', 'groups': ['compute']},
               {'name': 'any.zip'}]
    assert [b['name'] for b in P.select_bundles(bundles, ['compute', 'ha'])] == ['s.zip', 'any.zip']
    assert [b['name'] for b in P.select_bundles(bundles, [])] == ['any.zip']


# --------------------------------------------------------------------------
# host side: rpm_baseline and rpm_backups (evaluation)
# --------------------------------------------------------------------------

def pkg(nevra):
    return _rpm.parse_nevra(nevra).to_dict()


def compared(**changes):
    base = {'consistent': True, 'missing': [], 'extra': [], 'changed_packages': [], 'missing_backups': [],
            'corrupt_backups': [], 'restore_plan': [], 'restore_plan_complete': True,
            'counts': {'baseline': 3, 'installed': 3}}
    base.update(changes)
    return base


SOURCE = 'baseline.txt in p-S001-b1.upgrade.zip'


def test_rpm_consistent_and_backups_complete():
    results = P.eval_rpm('cmp-1', SOURCE, compared(), None, '/var/backup-rpm', None)
    assert brief(results) == [
        ('rpm_baseline', 'cmp-1', 'pass',
         'the 3 installed package(s) equal the baseline (baseline.txt in p-S001-b1.upgrade.zip)'),
        ('rpm_backups', 'cmp-1', 'pass', '/var/backup-rpm holds an intact rpm for each of the 3 baseline package(s)')]


def test_rpm_drift_is_listed_with_the_restore_plan():
    change = {'name': 'labsphere-tools', 'arch': 'noarch', 'change': 'upgraded',
              'installed': pkg('labsphere-tools-1:1.4-3.ls8.noarch'),
              'baseline': pkg('labsphere-tools-1:1.4-2.ls8.noarch')}
    result = compared(consistent=False, extra=[pkg('labsphere-extra-1.0-1.ls8.noarch')],
                      missing=[pkg('labsphere-node-6.8.0-1.ls8.noarch')], changed_packages=[change],
                      restore_plan=[['rpm', '-e', 'labsphere-extra-1.0-1.ls8.noarch']], restore_plan_complete=False)
    first, second = P.eval_rpm('cmp-1', SOURCE, result, None, '/var/backup-rpm', None)
    assert (first['status'], first['evidence']) == ('fail', (
        'differs from the baseline (baseline.txt in p-S001-b1.upgrade.zip): 1 missing '
        '(labsphere-node-6.8.0-1.ls8.noarch); 1 extra (labsphere-extra-1.0-1.ls8.noarch); 1 changed '
        '(labsphere-tools.noarch: labsphere-tools-1:1.4-3.ls8.noarch installed, baseline '
        'labsphere-tools-1:1.4-2.ls8.noarch)'))
    assert first['data'] == {'restore_plan': [['rpm', '-e', 'labsphere-extra-1.0-1.ls8.noarch']],
                             'restore_plan_complete': False}
    assert first['remedy'] == (
        'put the rpm set back to the baseline: erase the extra packages and reinstall the missing or changed ones '
        'from /var/backup-rpm (clusterops.upgrade.rpm_baseline returns the exact restore_plan)')
    assert second['status'] == 'pass'


def test_rpm_backups_missing_and_corrupt_point_to_the_peer_fix():
    missing = dict(pkg('labsphere-tools-1:1.4-2.ls8.noarch'), file='labsphere-tools-1.4-2.ls8.noarch.rpm')
    corrupt = {'path': '/var/backup-rpm/x-1-1.noarch.rpm', 'file': 'x-1-1.noarch.rpm', 'claimed': 'x-1-1.noarch',
               'header': None, 'reason': 'rpm cannot read it: error: bad magic'}
    result = compared(missing_backups=[missing], corrupt_backups=[corrupt])
    first, second = P.eval_rpm('cmp-2', SOURCE, result, None, '/var/backup-rpm', None)
    assert first['status'] == 'pass'
    assert (second['status'], second['evidence']) == ('fail', (
        '/var/backup-rpm: 1 missing (labsphere-tools-1.4-2.ls8.noarch.rpm); 1 corrupt (x-1-1.noarch.rpm: rpm '
        'cannot read it: error: bad magic)'))
    assert second['remedy'] == (
        'copy the missing rpm of the same version from another node into /var/backup-rpm: rerun with '
        'preflight_fix_backups=true (tasks/fix_backup_from_peer.yml does it and checks the header)')
    assert second['data'] == {'missing_backups': [missing], 'corrupt_backups': [corrupt]}


@pytest.mark.parametrize('source, result, problem, backup_dir, backup_problem, expected', [
    (None, None, None, '/var/backup-rpm', None, [
        ('rpm_baseline', 'skipped',
         'no rpm baseline configured (preflight_rpm_baseline, or a baseline member in the bundles)'),
        ('rpm_backups', 'skipped', 'no rpm baseline to check the backup rpms against')]),
    (SOURCE, None, 'the rpm set could not be read: no rpm database at /var/lib/rpm', '/var/backup-rpm', None, [
        ('rpm_baseline', 'fail', 'the rpm set could not be read: no rpm database at /var/lib/rpm'),
        ('rpm_backups', 'skipped', 'not checked: the rpm set could not be compared')]),
    (SOURCE, compared(), None, '', None, [
        ('rpm_baseline', 'pass', 'the 3 installed package(s) equal the baseline (%s)' % SOURCE),
        ('rpm_backups', 'skipped', 'backup check disabled (preflight_backup_dir is empty)')]),
    (SOURCE, compared(), None, '/var/backup-rpm', 'backup directory /var/backup-rpm does not exist', [
        ('rpm_baseline', 'pass', 'the 3 installed package(s) equal the baseline (%s)' % SOURCE),
        ('rpm_backups', 'fail', 'backup directory /var/backup-rpm does not exist')]),
])
def test_rpm_not_judged(source, result, problem, backup_dir, backup_problem, expected):
    results = P.eval_rpm('cmp-1', source, result, problem, backup_dir, backup_problem)
    assert [(r['id'], r['status'], r['evidence']) for r in results] == expected


# --------------------------------------------------------------------------
# host side: the whole module path with the rpm seam and findmnt answered
# --------------------------------------------------------------------------

class Runner(object):
    """Both seams: ``_rpm.Rpm``'s runner(argv, env) and the _snapshot runner.run(argv)."""

    def __init__(self, replies):
        self.replies = replies
        self.calls = []

    def __call__(self, argv, env):
        self.calls.append((list(argv), dict(env)))
        for prefix, reply in self.replies:
            if list(argv[:len(prefix)]) == prefix:
                return reply
        raise AssertionError('unexpected command %r' % (argv,))

    def run(self, argv):
        return self(argv, {'LANG': 'C', 'LC_ALL': 'C'})


def qa(*nevras):
    lines = []
    for text in nevras:
        p = _rpm.parse_nevra(text)
        lines.append(FS.join((p.name, str(p.epoch) if p.epoch else '(none)', p.version, p.release, p.arch)))
    return ''.join(line + '\n' for line in lines)


BASE = ['labsphere-common-6.8.0-1.ls8.noarch', 'labsphere-node-6.8.0-1.ls8.noarch']


def make_root(tmp_path, version='6.8.0', backups=()):
    root = tmp_path / 'root'
    (root / 'var' / 'lib' / 'rpm').mkdir(parents=True)
    (root / 'var' / 'lib' / 'rpm' / 'rpmdb.sqlite').write_bytes(b'')
    (root / 'etc').mkdir()
    (root / 'etc' / 'version').write_text(version + '\n')
    (root / 'var' / 'backup-rpm').mkdir()
    for name in backups:
        (root / 'var' / 'backup-rpm' / name).write_bytes(b'not an rpm')
    (root / 'var' / 'log').mkdir()
    return str(root)


def host_opts(root, **extra):
    opts = {'host': 'cmp-1', 'root': root, 'expected_version': '6.8.0', 'version_file': '/etc/version',
            'rpm_baseline_content': '\n'.join(BASE) + '\n', 'rpm_baseline_source': 'lab list',
            'rpm_ignore': [], 'backup_dir': '/var/backup-rpm', 'disk_paths': ['/', '/var/log'],
            'disk_threshold': 99, 'datastores': [], 'bundles': [], 'host_groups': ['compute']}
    opts.update(extra)
    return opts


def test_host_checks_reads_through_the_seams(tmp_path):
    root = make_root(tmp_path, backups=['labsphere-common-6.8.0-1.ls8.noarch.rpm'])
    runner = Runner([
        (['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qa'],
         (0, qa(*BASE + ['labsphere-extra-1.0-1.ls8.noarch']), '')),
        (['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qp'], (1, '', 'error: not an rpm package\n')),
        (['findmnt'], (0, json.dumps({'filesystems': [
            {'target': root + '/srv/ds', 'source': '/dev/vdb', 'fstype': 'ext4', 'options': 'rw'}]}), '')),
    ])
    st = StatVfs(4096, 4096, 1000, 500, 500)
    statvfs = fake_statvfs({root + '/': st, root + '/var/log': StatVfs(4096, 4096, 1000, 10, 5)})
    rpm = _rpm.Rpm(runner, root=root)
    results, host_facts = P.host_checks(host_opts(root, datastores=['/srv/ds', '/srv/gone']), rpm, runner, statvfs)
    backup = '%s/var/backup-rpm/labsphere-common-6.8.0-1.ls8.noarch.rpm' % root
    assert [c[0] for c in runner.calls] == [
        ['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qa', '--qf', _rpm.INSTALLED_QF],
        ['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, backup],
        ['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qp', '--nomanifest', '--qf', _rpm.HEADER_QF, backup],
        ['findmnt', '-J', '-l', '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS'],
    ]
    assert all(env['LANG'] == 'C' and env['LC_ALL'] == 'C' for _argv, env in runner.calls)
    assert brief(results) == [
        ('product_version', 'cmp-1', 'pass', 'version 6.8.0 (from file:/etc/version) equals the expected 6.8.0'),
        ('bundle_staged', 'cmp-1', 'skipped', 'no bundle is meant for this host (preflight_bundle_files)'),
        ('rpm_baseline', 'cmp-1', 'fail',
         'differs from the baseline (lab list): 1 extra (labsphere-extra-1.0-1.ls8.noarch)'),
        # the unreadable file is no backup: both packages miss theirs
        ('rpm_backups', 'cmp-1', 'fail', '/var/backup-rpm: 2 missing (labsphere-common-6.8.0-1.ls8.noarch.rpm, '
                                         'labsphere-node-6.8.0-1.ls8.noarch.rpm); 1 corrupt '
                                         '(labsphere-common-6.8.0-1.ls8.noarch.rpm: rpm cannot read it: error: not an '
                                         'rpm package)'),
        ('disk_usage', 'cmp-1', 'fail', '/var/log is 100 % full (limit: below 99 %); / is 50 % full'),
        ('datastores', 'cmp-1', 'fail', 'not mounted: /srv/gone; mounted: /srv/ds'),
    ]
    corrupt = one(results, 'rpm_backups')['data']['corrupt_backups'][0]
    assert corrupt['path'] == '/var/backup-rpm/labsphere-common-6.8.0-1.ls8.noarch.rpm'
    assert host_facts == {
        'host': 'cmp-1', 'product_version': '6.8.0', 'version_source': 'file:/etc/version', 'bundles': [],
        'rpm': {'baseline_source': 'lab list', 'backups_checked': True,
                'missing_backups': [dict(pkg(n), file=n + '.rpm') for n in BASE]}}


def test_host_checks_takes_the_baseline_from_its_bundle_and_runs_no_findmnt_without_datastores(tmp_path):
    root = make_root(tmp_path, version='6.8.1')
    runner = Runner([(['rpm'], (0, qa(*BASE), ''))])
    bundles = [{'name': 'p-M001-b1.upgrade.zip', 'checksum': 'ab' * 32, 'groups': ['control_plane'],
                'baseline': 'other-1-1.noarch\n', 'baseline_member': 'baseline.txt'},
               {'name': 'p-S001-b1.upgrade.zip', 'checksum': 'cd' * 32, 'groups': ['compute'],
                'baseline': '\n'.join(BASE) + '\n', 'baseline_member': 'baseline.txt'}]
    opts = host_opts(root, rpm_baseline_content=None, backup_dir='', bundles=bundles, disk_paths=[])
    results, host_facts = P.host_checks(opts, _rpm.Rpm(runner, root=root), runner)
    assert [c[0][:6] for c in runner.calls] == [['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-qa']]
    assert brief(results) == [
        ('product_version', 'cmp-1', 'fail', 'version 6.8.1 (from file:/etc/version), expected 6.8.0'),
        ('bundle_staged', 'cmp-1', 'skipped', 'not staged on this host yet: p-S001-b1.upgrade.zip'),
        ('rpm_baseline', 'cmp-1', 'pass',
         'the 2 installed package(s) equal the baseline (baseline.txt in p-S001-b1.upgrade.zip)'),
        ('rpm_backups', 'cmp-1', 'skipped', 'backup check disabled (preflight_backup_dir is empty)'),
        ('disk_usage', 'cmp-1', 'skipped', 'no partitions configured (preflight_disk_paths)'),
        ('datastores', 'cmp-1', 'skipped', 'no datastores configured (preflight_datastores)'),
    ]
    assert host_facts['bundles'] == ['p-S001-b1.upgrade.zip']
    assert host_facts['product_version'] == '6.8.1'


def test_host_checks_bad_baseline_and_missing_backup_dir(tmp_path):
    root = make_root(tmp_path)
    os.rmdir(os.path.join(root, 'var', 'backup-rpm'))
    runner = Runner([(['rpm'], (0, qa(*BASE), ''))])
    results, _facts = P.host_checks(host_opts(root, rpm_baseline_content='foo-1.0-1.el7\n'), _rpm.Rpm(runner, root=root),
                                    runner)
    assert runner.calls == []
    assert brief(results)[2:4] == [
        ('rpm_baseline', 'cmp-1', 'fail', "cannot read the baseline: lab list: line 1: 'foo-1.0-1.el7' does not end "
                                          "in a known architecture (.x86_64, .noarch, .i686, ...); write it as "
                                          "name-[epoch:]version-release.arch"),
        ('rpm_backups', 'cmp-1', 'skipped', 'not checked: the rpm set could not be compared')]
    results, facts_ = P.host_checks(host_opts(root), _rpm.Rpm(runner, root=root), runner)
    assert brief(results)[2:4] == [
        ('rpm_baseline', 'cmp-1', 'pass', 'the 2 installed package(s) equal the baseline (lab list)'),
        ('rpm_backups', 'cmp-1', 'fail', 'backup directory /var/backup-rpm does not exist')]
    assert facts_['rpm']['backups_checked'] is False
    assert facts_['rpm']['missing_backups'] == []


def test_host_checks_bundle_baseline_that_could_not_be_read(tmp_path):
    root = make_root(tmp_path)
    runner = Runner([])
    bundles = [{'name': 'p-S001-b1.upgrade.zip', 'checksum': 'cd' * 32, 'baseline': None,
                'baseline_member': 'baseline.txt'}]
    results, _facts = P.host_checks(host_opts(root, rpm_baseline_content=None, bundles=bundles),
                                    _rpm.Rpm(runner, root=root), runner)
    assert runner.calls == []
    assert brief(results)[2] == ('rpm_baseline', 'cmp-1', 'fail', 'cannot read the baseline: baseline.txt in '
                                 'p-S001-b1.upgrade.zip could not be read on the controller (see the warning of '
                                 'the play)')


def test_host_checks_rpm_without_database(tmp_path):
    root = str(tmp_path)
    runner = Runner([])
    results, _facts = P.host_checks(host_opts(root, version_file=None, disk_paths=[]), _rpm.Rpm(runner, root=root),
                                    runner)
    assert runner.calls == []
    assert one(results, 'rpm_baseline')['evidence'] == (
        'the rpm set could not be read: no rpm database at %s/var/lib/rpm (root=%s, dbpath=/var/lib/rpm); set '
        'root/dbpath to where the database is (rpm --eval %%_dbpath prints the default)' % (root, root))


@pytest.mark.parametrize('opts, problems', [
    ({'disk_threshold': 0}, ['disk_threshold must be a percentage above 0 and at most 100, got 0']),
    ({'disk_threshold': 100.5}, ['disk_threshold must be a percentage above 0 and at most 100, got 100.5']),
    ({'disk_paths': ['var/log']}, ["disk_paths[0] must be an absolute path, got 'var/log'"]),
    ({'datastores': ['/ok', 'ds']}, ["datastores[1] must be an absolute path, got 'ds'"]),
    ({'backup_dir': 'backup'}, ["backup_dir must be an absolute path on the host, got 'backup'"]),
    ({'version_file': '/v', 'version_command': ['cat', '/v']},
     ['version_file and version_command are mutually exclusive; give one of them']),
    ({'version_regex': '('}, ["version_regex '(' is not a valid regular expression: missing ), unterminated "
                              "subpattern at position 0"]),
    ({'rpm_baseline': '/b', 'rpm_baseline_content': 'x'},
     ['rpm_baseline and rpm_baseline_content are mutually exclusive; give one of them']),
    ({'bundles': [{'checksum': 'ab'}]}, ["bundles[0] needs name (the bundle file name), got {'checksum': 'ab'}"]),
    ({'bundles': [{'name': 'd/a.zip', 'sum': 1, 'groups': 'compute'}]}, [
        "bundles[0].name must be a file name, not a path: 'd/a.zip'",
        'bundles[0] (d/a.zip) has unknown key(s) sum; known: name, checksum, groups, baseline, baseline_member',
        'bundles[0] (d/a.zip).groups must be a list of group names']),
    ({'disk_paths': ['/'], 'disk_threshold': 99, 'backup_dir': ''}, []),
])
def test_validate_host_options(opts, problems):
    assert P.validate_host_options(opts) == problems


# --------------------------------------------------------------------------
# controller side: reachable, host_checks, version_uniform
# --------------------------------------------------------------------------

def host_result(host, version='6.8.0', checks=None, rpm=None):
    if checks is None:
        checks = [P.result(c, host, P.PASS, 'ok') for c in P.HOST_CHECK_IDS]
    return {'changed': False, 'checks': checks,
            'host_facts': {'host': host, 'product_version': version, 'rpm': rpm}}


UNREACHABLE = {'unreachable': True, 'changed': False,
               'msg': 'Task failed: Failed to connect to the host via ssh: ssh: connect to host 10.89.77.12 port 22: '
                      'No route to host'}


def test_unreachable_and_failed_hosts_do_not_hide_the_others():
    host_results = {'ctl-a': host_result('ctl-a'), 'ctl-b': UNREACHABLE,
                    'cmp-1': {'failed': True, 'msg': 'disk_threshold must be a percentage above 0 and at most 100, '
                                                     'got 0'}}
    results, ok = PC.collect_host_results(['ctl-a', 'ctl-b', 'cmp-1', 'cmp-9'], host_results)
    assert ok == ['ctl-a']
    got = brief(results)
    assert got[:7] == [('reachable', 'ctl-a', 'pass', 'reachable; the host checks ran')] + [
        (c, 'ctl-a', 'pass', 'ok') for c in P.HOST_CHECK_IDS]
    assert got[7:14] == [('reachable', 'ctl-b', 'fail', 'unreachable: Failed to connect to the host via ssh: ssh: '
                          'connect to host 10.89.77.12 port 22: No route to host')] + [
        (c, 'ctl-b', 'skipped', 'not run: the host is unreachable') for c in P.HOST_CHECK_IDS]
    assert got[14:22] == [
        ('reachable', 'cmp-1', 'pass', 'reachable; the host checks ran'),
        ('host_checks', 'cmp-1', 'fail',
         'preflight_host failed: disk_threshold must be a percentage above 0 and at most 100, got 0')] + [
        (c, 'cmp-1', 'skipped', 'not run: preflight_host failed (see host_checks)') for c in P.HOST_CHECK_IDS]
    assert got[22:] == [('reachable', 'cmp-9', 'skipped', 'the host checks did not run on this host')] + [
        (c, 'cmp-9', 'skipped', 'not run: the host checks did not run on this host') for c in P.HOST_CHECK_IDS]
    assert one(results, 'reachable', 'ctl-b')['remedy'] == (
        'bring the host up and make it reachable over SSH (ansible -m ping), then run preflight again')


def test_collected_results_get_their_host_and_title():
    raw = host_result('cmp-1', checks=[{'id': 'disk_usage', 'host': 'cmp-1.example', 'severity': 'blocker',
                                        'status': 'pass', 'evidence': '/ is 1 % full', 'remedy': ''}])
    results, ok = PC.collect_host_results(['cmp-1'], {'cmp-1': raw})
    assert ok == ['cmp-1']
    assert results[1] == {'id': 'disk_usage', 'host': 'cmp-1', 'severity': 'blocker', 'status': 'pass',
                          'evidence': '/ is 1 % full', 'remedy': '',
                          'title': 'Root and log partitions below the threshold'}


def test_version_uniform():
    host_results = dict((h, host_result(h)) for h in HOSTS)
    host_results['cmp-2'] = host_result('cmp-2', version='6.8.1')
    host_results['cmp-3'] = host_result('cmp-3', version=None)
    ok = [h for h in HOSTS if h != 'ctl-b']
    got = brief(PC.check_version_uniform(HOSTS, host_results, ok, '6.8.0'))
    assert got == [
        ('version_uniform', 'ctl-a', 'pass', '6.8.0, like 3 of 4 host(s); differing: cmp-2'),
        ('version_uniform', 'ctl-b', 'skipped', 'not checked: no host checks from this host'),
        ('version_uniform', 'cmp-1', 'pass', '6.8.0, like 3 of 4 host(s); differing: cmp-2'),
        ('version_uniform', 'cmp-2', 'fail', '6.8.1 here; 3 host(s) run 6.8.0 (ctl-a, cmp-1, cmp-4)'),
        ('version_uniform', 'cmp-3', 'skipped', 'no product version was read on this host'),
        ('version_uniform', 'cmp-4', 'pass', '6.8.0, like 3 of 4 host(s); differing: cmp-2'),
    ]
    failed = PC.check_version_uniform(HOSTS, host_results, ok, '6.8.0')[3]
    assert failed['remedy'] == ('upgrade or roll back the hosts that differ, so that every host runs 6.8.0 before '
                                'starting')


def test_version_uniform_all_equal_and_tie_broken_by_the_expected_version():
    host_results = dict((h, host_result(h)) for h in ['a', 'b'])
    assert brief(PC.check_version_uniform(['a', 'b'], host_results, ['a', 'b'])) == [
        ('version_uniform', 'a', 'pass', '6.8.0, like all 2 host(s) that reported a version'),
        ('version_uniform', 'b', 'pass', '6.8.0, like all 2 host(s) that reported a version')]
    host_results['a'] = host_result('a', version='6.8.1')
    assert [r['status'] for r in PC.check_version_uniform(['a', 'b'], host_results, ['a', 'b'], '6.8.1')] == [
        'pass', 'fail']
    assert [r['status'] for r in PC.check_version_uniform(['a', 'b'], host_results, ['a', 'b'])] == ['fail', 'pass']


# --------------------------------------------------------------------------
# controller side: the cluster (pcs_info facts from recorded lab outputs)
# --------------------------------------------------------------------------

HEALTHY_HA = [
    ('ha_pair_online', 'cluster', 'pass', 'online: ctl-a, ctl-b'),
    ('ha_quorum', 'cluster', 'pass', 'quorate (DC cmp-4)'),
    ('ha_vip', 'cluster', 'pass', 'lb_float_ip is Started on ctl-a'),
    ('ha_failed_actions', 'cluster', 'pass', 'no failed actions'),
    ('ha_constraints', 'cluster', 'pass', 'no cli-ban or cli-prefer constraints'),
]


def test_cluster_facts():
    f = facts()
    r, got = PC.check_cluster_facts(f, 'ctl-a')
    assert (r['status'], r['evidence'], got is f) == (
        'pass', 'read on ctl-a: 6 node(s), 14 resource(s), pacemaker 2.1.5-a3f44794f94', True)
    cases = [
        (None, '', 'no control-plane host was reachable to read the cluster from (pcs_info)'),
        ({'unreachable': True, 'msg': 'Task failed: ssh: timeout'}, 'ctl-a',
         'ctl-a became unreachable while reading the cluster: ssh: timeout'),
        ({'failed': True, 'msg': 'crm_mon could not read the cluster on this host (rc 102: Not connected)'}, 'ctl-a',
         'pcs_info failed on ctl-a: crm_mon could not read the cluster on this host (rc 102: Not connected)'),
        ({'skipped': True}, 'ctl-a', 'pcs_info failed on ctl-a: no nodes in its result'),
    ]
    for pcs, host, evidence in cases:
        r, got = PC.check_cluster_facts(pcs, host)
        assert (r['status'], r['evidence'], got) == ('fail', evidence, None)
        assert r['remedy'] == ('make pacemaker answer on a reachable control-plane host (pcs status), then run '
                               'preflight again')


def test_ha_healthy():
    assert brief(PC.check_ha(facts(), ['ctl-a', 'ctl-b'], 'lb_float_ip')) == HEALTHY_HA


def test_ha_leftover_ban_and_prefer():
    extra = ('<rsc_location id="cli-ban-vm-05-on-cmp-4" rsc="vm-05" role="Started" node="cmp-4" score="-INFINITY"/>'
             '<rsc_location id="cli-prefer-vm-02" rsc="vm-02" role="Started" node="cmp-3" score="INFINITY"/>')
    results = PC.check_ha(facts(constraints=extra), ['ctl-a', 'ctl-b'], 'lb_float_ip')
    r = one(results, 'ha_constraints')
    assert (r['status'], r['evidence']) == ('fail', '2 left over: cli-ban-vm-05-on-cmp-4 (vm-05 banned from cmp-4), '
                                                    'cli-prefer-vm-02 (vm-02 preferred on cmp-3)')
    assert r['remedy'] == ('remove what an earlier ban or move left behind: pcs resource clear vm-05; pcs resource '
                           'clear vm-02')


def test_ha_expired_ban_from_the_recorded_ban_fixture():
    lifetime = ('<rsc_location id="cli-ban-vm-01-on-cmp-1" rsc="vm-01" role="Started"><rule id="r" '
                'score="-INFINITY" boolean-op="and"><expression id="e" attribute="#uname" operation="eq" '
                'value="cmp-1" type="string"/><date_expression id="l" operation="lt" end="2020-01-01 00:00:00Z"/>'
                '</rule></rsc_location>')
    f = facts('crm_mon_ban.xml', constraints=lifetime)
    r = one(PC.check_ha(f, ['ctl-a', 'ctl-b'], 'lb_float_ip'), 'ha_constraints')
    assert r['evidence'] == '1 left over: cli-ban-vm-01-on-cmp-1 (vm-01 banned from cmp-1), expired'
    # crm_mon_ban.xml: the VIP moved to ctl-b because of a ban on ctl-a that the CIB here does not hold
    assert one(PC.check_ha(f, ['ctl-a', 'ctl-b'], 'lb_float_ip'), 'ha_vip')['evidence'] == \
        'lb_float_ip is Started on ctl-b'


def test_ha_constraint_ids_only_listed_in_cli_bans():
    f = facts()
    f['cli_bans'] = ['cli-ban-x-on-y']
    assert one(PC.check_ha(f, ['ctl-a', 'ctl-b'], 'lb_float_ip'), 'ha_constraints')['evidence'] == \
        '1 left over: cli-ban-x-on-y'


def test_ha_node_offline_no_quorum_vip_elsewhere_and_failures():
    f = facts('crm_mon_node_offline.xml')
    f['nodes'] = [dict(n, online=False) if n['name'] == 'ctl-b' else n for n in f['nodes']]
    f['quorum'] = False
    f['resources'] = [dict(r, nodes=['cmp-1']) if r['id'] == 'lb_float_ip' else r for r in f['resources']]
    f['failed_actions'] = [
        {'resource': 'lb_float_ip', 'node': 'ctl-b', 'task': 'monitor', 'exitreason': '', 'exitstatus': 'not running',
         'exitcode': 7},
        {'resource': 'vm-03', 'node': 'cmp-2', 'task': 'migrate_to', 'exitreason': 'timeout', 'exitcode': 1}]
    results = PC.check_ha(f, ['ctl-a', 'ctl-b'], 'lb_float_ip')
    assert brief(results) == [
        ('ha_pair_online', 'cluster', 'fail', 'ctl-b is offline (online: ctl-a)'),
        ('ha_quorum', 'cluster', 'fail', 'no quorum (DC ctl-b)'),
        ('ha_vip', 'cluster', 'fail', 'lb_float_ip runs on cmp-1, not on the HA pair (ctl-a, ctl-b)'),
        ('ha_failed_actions', 'cluster', 'fail', '2 failed action(s): lb_float_ip monitor on ctl-b: not running, '
                                                 'vm-03 migrate_to on cmp-2: timeout'),
        ('ha_constraints', 'cluster', 'pass', 'no cli-ban or cli-prefer constraints'),
    ]
    assert [r['remedy'] for r in results[:4]] == [
        'start the cluster on ctl-b (pcs cluster start ctl-b) and check that the HA peers reach each other',
        'bring the missing cluster nodes back until the cluster is quorate (pcs status)',
        'find out why lb_float_ip is not running on the HA pair (pcs status; pcs resource cleanup lb_float_ip) and '
        'start it there',
        'investigate the failures, then clear them: pcs resource cleanup lb_float_ip; pcs resource cleanup vm-03',
    ]


def test_ha_vip_stopped_missing_unmanaged_and_no_dc():
    f = facts()
    f['resources'] = [dict(r, role='Stopped', nodes=[]) if r['id'] == 'lb_float_ip' else r for r in f['resources']]
    assert one(PC.check_ha(f, ['ctl-a', 'ctl-b'], 'lb_float_ip'), 'ha_vip')['evidence'] == 'lb_float_ip is Stopped'
    assert one(PC.check_ha(facts(), ['ctl-a', 'ctl-b'], 'vip2'), 'ha_vip')['evidence'] == (
        'vip2 is not a resource of the cluster (preflight_vip_resource)')
    r = one(PC.check_ha(facts('crm_mon_maintenance_mode.xml'), ['ctl-a', 'ctl-b'], 'lb_float_ip'), 'ha_vip')
    assert (r['status'], r['evidence']) == ('fail', 'lb_float_ip is unmanaged on ctl-b')
    f = facts()
    f.update(quorum=False, dc=None, dc_present=False)
    assert one(PC.check_ha(f, ['ctl-a'], 'lb_float_ip'), 'ha_quorum')['evidence'] == \
        'no DC: the node that was asked sees no cluster'
    assert one(PC.check_ha(facts(), ['ctl-a', 'ctl-x'], 'lb_float_ip'), 'ha_pair_online')['evidence'] == \
        'ctl-x is not a node of the cluster (online: ctl-a)'
    assert one(PC.check_ha(facts(), [], 'lb_float_ip'), 'ha_pair_online')['status'] == 'skipped'


@pytest.mark.parametrize('mon, host, evidence, remedy', [
    ('crm_mon_standby.xml', 'cmp-2', 'in standby', 'pcs node unstandby cmp-2, or finish the run that put the node '
                                                   'there'),
    ('crm_mon_node_maintenance.xml', 'cmp-3', 'in maintenance',
     'pcs node unmaintenance cmp-3, or finish the run that put the node there'),
    ('crm_mon_node_offline.xml', 'cmp-4', 'offline',
     'start the cluster on it (pcs cluster start cmp-4), or finish the run that put the node there'),
])
def test_node_state_from_recorded_states(mon, host, evidence, remedy):
    results = PC.check_node_state(HOSTS, facts(mon))
    assert [(r['host'], r['status']) for r in results] == [(h, 'fail' if h == host else 'pass') for h in HOSTS]
    r = one(results, 'node_state', host)
    assert (r['evidence'], r['remedy']) == (evidence, remedy)
    assert one(results, 'node_state', 'ctl-a')['evidence'] == 'online, not in standby or maintenance'


def test_node_state_cluster_maintenance_names_and_unknown_nodes():
    results = PC.check_node_state(['ctl-a', 'other'], facts('crm_mon_maintenance_mode.xml'))
    assert brief(results) == [('node_state', 'ctl-a', 'fail', 'the cluster is in maintenance-mode'),
                              ('node_state', 'other', 'skipped', 'not a node of the pacemaker cluster')]
    assert results[0]['remedy'] == 'pcs property set maintenance-mode=false, or finish the run that put the node there'
    results = PC.check_node_state(['cmp2.example'], facts('crm_mon_standby.xml'), {'cmp2.example': 'cmp-2'})
    assert brief(results) == [('node_state', 'cmp2.example', 'fail', 'node cmp-2: in standby')]


# --------------------------------------------------------------------------
# controller side: the plan and manual evacuation
# --------------------------------------------------------------------------

def test_plan_from_recorded_facts():
    plan_input = PC.plan_input_from_facts(facts(), COMPUTE, ['cmp-1'])
    assert sorted(h['name'] for h in plan_input['hosts']) == COMPUTE
    assert [h['role'] for h in plan_input['hosts']] == ['aio', 'compute', 'compute', 'compute']
    assert len(plan_input['vms']) == 12
    r = PC.check_plan(plan_input, 'migrate')
    assert (r['status'], r['evidence']) == (
        'pass', 'migrate: 4 host(s) in 4 batch(es) (lower bound 4): cmp-1 | cmp-3 | cmp-2 | cmp-4')
    assert r['data'] == {'batches': [['cmp-1'], ['cmp-3'], ['cmp-2'], ['cmp-4']], 'lower_bound': 4}
    r = PC.check_plan(plan_input, 'shutdown', max_parallel=2)
    # aio_first: cmp-1 alone, then the others two at a time
    assert r['evidence'] == 'shutdown: 4 host(s) in 3 batch(es) (lower bound 3): cmp-1 | cmp-2, cmp-3 | cmp-4'


def test_plan_of_a_limited_run_uses_the_other_hosts_as_targets():
    # --limit cmp-2: alone, its VMs could go nowhere; the rest of the plan group takes them,
    # counted as upgraded (targets, never scheduled)
    alone = PC.plan_input_from_facts(facts(), ['cmp-2'])
    assert PC.check_plan(alone, 'migrate')['status'] == 'fail'
    plan_input = PC.plan_input_from_facts(facts(), ['cmp-2'], target_nodes=COMPUTE)
    assert sorted((h['name'], h['upgraded']) for h in plan_input['hosts']) == [
        ('cmp-1', True), ('cmp-2', False), ('cmp-3', True), ('cmp-4', True)]
    assert len(plan_input['vms']) == 12
    r = PC.check_plan(plan_input, 'migrate')
    assert (r['status'], r['data']['batches']) == ('pass', [['cmp-2']])
    # evaluate() passes the plan group as targets
    results = PC.evaluate({'hosts': ['cmp-2'], 'host_results': {}, 'ha_backend': 'pacemaker', 'pcs': facts(),
                           'pcs_host': 'ctl-a', 'plan_hosts': ['cmp-2'], 'plan_targets': COMPUTE,
                           'evacuation': 'migrate'})
    assert one(results, 'upgrade_plan')['data']['batches'] == [['cmp-2']]


def test_plan_fails_with_the_planners_reason():
    hosts = [{'name': 'n1', 'capacity': {'memory': 100}}, {'name': 'n2', 'capacity': {'memory': 100}}]
    vms = [{'name': 'big', 'host': 'n1', 'demand': {'memory': 95}}]
    r = PC.check_plan({'hosts': hosts, 'vms': vms}, 'migrate', headroom=10)
    assert r['status'] == 'fail'
    assert r['evidence'].startswith('migrate: no safe plan: ')
    assert 'big' in r['evidence']
    assert r['remedy'] == ('free capacity (stop VMs, lower preflight_plan_headroom), choose '
                           'preflight_evacuation=shutdown, or empty hosts by hand; then run preflight again')


def test_plan_input_refuses_hosts_that_are_not_nodes():
    with pytest.raises(_planner.PlannerError) as caught:
        PC.plan_input_from_facts(facts(), ['cmp-1', 'cmp-9'])
    assert str(caught.value) == 'host(s) cmp-9 to upgrade are not nodes of the cluster'


def test_running_vms_for_manual_evacuation():
    results = PC.check_running_vms(['cmp-1', 'cmp-2'], PC.running_vms_from_facts(facts('crm_mon_standby.xml')))
    assert brief(results) == [
        ('running_vms', 'cmp-1', 'fail', '4 VM(s) running: vm-01, vm-02, vm-05, vm-09'),
        ('running_vms', 'cmp-2', 'pass', 'no VMs running')]
    assert results[0]['remedy'] == ('shut down or move the VMs on this host, or choose preflight_evacuation=migrate '
                                    'or shutdown')
    by_node = PC.running_vms_from_input({'vms': [{'name': 'v1', 'host': 'n1'}]})
    assert brief(PC.check_running_vms(['n1'], by_node)) == [('running_vms', 'n1', 'fail', '1 VM(s) running: v1')]


# --------------------------------------------------------------------------
# controller side: bundles on the controller
# --------------------------------------------------------------------------

def test_bundle_verified():
    files = ['/b/a.zip', '/b/s.zip']
    ok = {'verified': True, 'files': [{'path': '/b/a.zip', 'status': 'ok', 'detail': ''},
                                      {'path': '/b/s.zip', 'status': 'ok', 'detail': ''}]}
    r = PC.check_bundle_verified(ok, files, '/b/SHA256SUMS')
    assert (r['status'], r['evidence']) == ('pass', '2 bundle(s) match /b/SHA256SUMS: a.zip, s.zip')
    bad = {'failed': True, 'files': [{'path': '/t/a.zip', 'status': 'mismatch', 'detail': 'sha256 is 1, expected 2'},
                                     {'path': '/b/s.zip', 'status': 'ok', 'detail': ''}]}
    r = PC.check_bundle_verified(bad, files, '/b/SHA256SUMS')
    assert (r['status'], r['evidence']) == ('fail', '/t/a.zip: mismatch (sha256 is 1, expected 2)')
    assert r['remedy'] == 'download the bundle again and check it against the vendor checksum file'
    r = PC.check_bundle_verified({'failed': True, 'msg': 'cannot read manifest /b/SHA256SUMS'}, files, '/b/SHA256SUMS')
    assert r['evidence'] == 'package_verify failed: cannot read manifest /b/SHA256SUMS'
    assert PC.check_bundle_verified({'skipped': True}, files, '/b/SHA256SUMS')['evidence'] == \
        'the bundles were not verified'
    assert PC.check_bundle_verified({'skipped': True}, files, '')['evidence'] == (
        'no vendor checksum file to verify a.zip, s.zip against (preflight_bundle_manifest, or SHA256SUMS in '
        'preflight_bundle_dir)')
    assert brief([PC.check_bundle_verified(None, [], '')]) == [
        ('bundle_verified', 'controller', 'skipped',
         'no bundles configured (preflight_bundle_files or preflight_bundle_dir)')]


def test_bundle_dir_without_bundles_fails_with_where_it_looked():
    r = PC.check_bundle_verified(None, [], '/b/SHA256SUMS', '/b', '*.upgrade.zip')
    assert (r['status'], r['evidence']) == ('fail', 'no bundle matching *.upgrade.zip in /b')
    assert r['remedy'] == ('put the vendor bundles and their SHA256SUMS in /b (preflight_bundle_dir), or name them '
                           'in preflight_bundle_files')


def test_a_host_without_a_bundle_fails_the_bundle_check():
    files = ['/b/p-S001.zip']
    ok = {'verified': True, 'files': [{'path': '/b/p-S001.zip', 'status': 'ok', 'detail': ''}]}
    r = PC.check_bundle_verified(ok, files, '/b/SHA256SUMS', unbundled=['ctl-a', 'ctl-b'])
    assert (r['status'], r['evidence']) == (
        'fail', 'no bundle is meant for ctl-a, ctl-b (none of p-S001.zip maps to its groups: '
                'preflight_bundle_group_map)')
    assert r['remedy'] == ('add the bundle for the groups of ctl-a, ctl-b, or map a bundle to them in '
                           'preflight_bundle_group_map')
    assert r['data']['unbundled_hosts'] == ['ctl-a', 'ctl-b']
    host_results = {'a': {'host_facts': {'bundles': ['p-S001.zip']}}, 'b': {'host_facts': {'bundles': []}},
                    'c': {'host_facts': {}}}
    assert PC.unbundled_hosts(['a', 'b', 'c'], host_results) == ['b', 'c']


def test_evaluate_names_the_hosts_no_bundle_is_meant_for():
    host_results = dict((h, host_result(h)) for h in HOSTS)
    for h in HOSTS:
        host_results[h]['host_facts']['bundles'] = [] if h.startswith('ctl-') else ['p-S001.zip']
    verify = {'verified': True, 'files': [{'path': '/b/p-S001.zip', 'status': 'ok', 'detail': ''}]}
    results = PC.evaluate(lab_inputs(host_results=host_results, bundle_files=['/b/p-S001.zip'],
                                     bundle_manifest='/b/SHA256SUMS', bundle_verify=verify))
    assert [(r['id'], r['host'], r['evidence']) for r in results if r['status'] == 'fail'] == [
        ('bundle_verified', 'controller', 'no bundle is meant for ctl-a, ctl-b (none of p-S001.zip maps to its '
                                          'groups: preflight_bundle_group_map)')]
    results = PC.evaluate(lab_inputs(bundle_files=[], bundle_dir='/b', bundle_glob='*.zip'))
    assert [(r['id'], r['evidence']) for r in results if r['status'] == 'fail'] == [
        ('bundle_verified', 'no bundle matching *.zip in /b')]


# --------------------------------------------------------------------------
# backup peers and the fix annotations
# --------------------------------------------------------------------------

def rpm_facts(source, missing=()):
    return {'baseline_source': source, 'backups_checked': True, 'consistent': True,
            'missing_backups': [dict(name=f.split('-')[0], file=f) for f in missing]}


def test_backup_peers():
    host_results = {
        'ctl-a': host_result('ctl-a', rpm=rpm_facts('m')),
        'ctl-b': UNREACHABLE,
        'cmp-1': host_result('cmp-1', rpm=rpm_facts('s', ['tools-1-1.noarch.rpm'])),
        'cmp-2': host_result('cmp-2', rpm=rpm_facts('s', ['tools-1-1.noarch.rpm', 'node-1-1.noarch.rpm'])),
        'cmp-3': host_result('cmp-3', rpm=rpm_facts('s', ['node-1-1.noarch.rpm'])),
        'cmp-4': host_result('cmp-4', rpm=rpm_facts('x', ['only-1-1.noarch.rpm'])),
    }
    peers = PC.backup_peers(HOSTS, host_results)
    assert peers == {
        'cmp-1': {'copies': [{'file': 'tools-1-1.noarch.rpm', 'peer': 'cmp-3',
                              'package': {'name': 'tools', 'file': 'tools-1-1.noarch.rpm'}}], 'unfixable': []},
        'cmp-2': {'copies': [{'file': 'tools-1-1.noarch.rpm', 'peer': 'cmp-3',
                              'package': {'name': 'tools', 'file': 'tools-1-1.noarch.rpm'}},
                             {'file': 'node-1-1.noarch.rpm', 'peer': 'cmp-1',
                              'package': {'name': 'node', 'file': 'node-1-1.noarch.rpm'}}], 'unfixable': []},
        'cmp-3': {'copies': [{'file': 'node-1-1.noarch.rpm', 'peer': 'cmp-1',
                              'package': {'name': 'node', 'file': 'node-1-1.noarch.rpm'}}], 'unfixable': []},
        'cmp-4': {'copies': [], 'unfixable': ['only-1-1.noarch.rpm']},
    }


def test_fix_annotations_on_rpm_backups():
    results = [P.result('rpm_backups', 'cmp-2', P.PASS, '/var/backup-rpm holds an intact rpm for each of the 3 '
                                                        'baseline package(s)'),
               P.result('rpm_backups', 'cmp-4', P.FAIL, '/var/backup-rpm: 1 missing (only-1-1.noarch.rpm)',
                        backup_dir='/var/backup-rpm'),
               P.result('disk_usage', 'cmp-2', P.PASS, 'fine')]
    fixes = {'cmp-2': {'copied': [{'file': 'tools-1-1.noarch.rpm', 'peer': 'cmp-3'}], 'unfixable': [], 'error': None},
             'cmp-4': {'copied': [], 'unfixable': ['only-1-1.noarch.rpm'], 'error': 'cmp-1 has no intact copy'}}
    got = [r['evidence'] for r in PC.annotate_fixes(results, fixes)]
    assert got == [
        '/var/backup-rpm holds an intact rpm for each of the 3 baseline package(s) [fix from peers: copied '
        'tools-1-1.noarch.rpm from cmp-3]',
        '/var/backup-rpm: 1 missing (only-1-1.noarch.rpm) [fix from peers: no peer holds only-1-1.noarch.rpm; '
        'copying failed: cmp-1 has no intact copy]',
        'fine']
    fixes['cmp-2']['check_mode'] = True
    assert PC.annotate_fixes(results, fixes)[0]['evidence'].endswith(
        '[fix from peers: would copy tools-1-1.noarch.rpm from cmp-3]')


# --------------------------------------------------------------------------
# evaluate: everything at once
# --------------------------------------------------------------------------

def lab_inputs(**changes):
    inputs = {
        'hosts': list(HOSTS), 'host_results': dict((h, host_result(h)) for h in HOSTS),
        'expected_version': '6.8.0', 'ha_backend': 'pacemaker', 'pcs': facts(), 'pcs_host': 'ctl-a',
        'ha_hosts': ['ctl-a', 'ctl-b'], 'vip_resource': 'lb_float_ip', 'plan_hosts': COMPUTE,
        'aio_hosts': ['cmp-1'], 'evacuation': 'migrate', 'bundle_files': [], 'bundle_manifest': '',
    }
    inputs.update(changes)
    return inputs


def test_evaluate_clean_lab_passes_and_the_report_is_not_blocked():
    results = PC.evaluate(lab_inputs())
    ids = sorted(set(r['id'] for r in results))
    assert ids == sorted(set(P.CHECKS) - {'host_checks', 'running_vms'})
    assert [r for r in results if r['status'] == 'fail'] == []
    report = _report.build_report(results, generated_at='2026-11-22T01:02:03Z')
    assert report['summary']['blocked'] is False
    # per host: reachable, 6 host checks, version_uniform, node_state; cluster_facts + 5 ha_*, plan, bundles
    assert report['summary']['total'] == len(results) == 6 * 9 + 6 + 2


def test_evaluate_all_faults_at_once():
    f = facts('crm_mon_standby.xml', constraints='<rsc_location id="cli-ban-vm-05-on-cmp-4" rsc="vm-05" '
                                                 'role="Started" node="cmp-4" score="-INFINITY"/>')
    f['nodes'] = [dict(n, online=False) if n['name'] == 'ctl-b' else n for n in f['nodes']]
    host_results = dict((h, host_result(h)) for h in HOSTS)
    host_results['ctl-b'] = UNREACHABLE
    host_results['cmp-4']['checks'][4] = P.result('disk_usage', 'cmp-4', P.FAIL, '/var/log is 99 % full')
    verify = {'failed': True, 'files': [{'path': '/tmp/x/p-M001.zip', 'status': 'mismatch', 'detail': 'sha256 differs'}]}
    results = PC.evaluate(lab_inputs(pcs=f, host_results=host_results, bundle_files=['/tmp/x/p-M001.zip'],
                                     bundle_manifest='/b/SHA256SUMS', bundle_verify=verify))
    failed = [(r['id'], r['host']) for r in results if r['status'] == 'fail']
    assert failed == [('reachable', 'ctl-b'), ('disk_usage', 'cmp-4'), ('ha_pair_online', 'cluster'),
                      ('ha_constraints', 'cluster'), ('node_state', 'ctl-b'), ('node_state', 'cmp-2'),
                      ('upgrade_plan', 'cluster'), ('bundle_verified', 'controller')]
    report = _report.build_report(results, waive=['disk_usage'], generated_at='2026-11-22T01:02:03Z')
    assert report['summary']['failed_blockers'] == ['reachable', 'ha_pair_online', 'ha_constraints', 'node_state',
                                                    'upgrade_plan', 'bundle_verified']
    assert report['summary']['waived_checks'] == ['disk_usage']


def test_evaluate_without_cluster_facts_skips_what_depends_on_them():
    results = PC.evaluate(lab_inputs(pcs=None, pcs_host='', evacuation='manual'))
    got = [(r['id'], r['host'], r['status']) for r in results if r['id'] not in P.HOST_CHECK_IDS
           and r['id'] not in ('reachable', 'version_uniform')]
    why = 'not checked: no cluster state (see cluster_facts)'
    assert got == [('cluster_facts', 'cluster', 'fail')] + [
        (c, 'cluster', 'skipped') for c in ('ha_pair_online', 'ha_quorum', 'ha_vip', 'ha_failed_actions',
                                            'ha_constraints')] + [
        ('node_state', h, 'skipped') for h in HOSTS] + [('upgrade_plan', 'cluster', 'skipped')] + [
        ('running_vms', h, 'skipped') for h in COMPUTE] + [('bundle_verified', 'controller', 'skipped')]
    assert one(results, 'ha_vip')['evidence'] == why
    assert one(results, 'upgrade_plan')['evidence'] == why


def test_evaluate_with_ha_backend_none_and_the_plan_from_the_inventory():
    plan_input = {'hosts': [{'name': 'cmp-1', 'capacity': {'memory': 100}},
                            {'name': 'cmp-2', 'capacity': {'memory': 100}}],
                  'vms': [{'name': 'v1', 'host': 'cmp-1', 'demand': {'memory': 50}}]}
    results = PC.evaluate(lab_inputs(ha_backend='none', pcs=None, plan_input=plan_input, evacuation='manual',
                                     plan_hosts=['cmp-1', 'cmp-2']))
    assert not [r for r in results if r['id'].startswith('ha_') or r['id'] in ('node_state', 'cluster_facts')]
    assert brief([one(results, 'upgrade_plan')]) == [
        ('upgrade_plan', 'cluster', 'pass', 'manual: 2 host(s) in 2 batch(es) (lower bound 2): cmp-2 | cmp-1')]
    assert [(r['host'], r['status']) for r in results if r['id'] == 'running_vms'] == [('cmp-1', 'fail'),
                                                                                       ('cmp-2', 'pass')]
    results = PC.evaluate(lab_inputs(ha_backend='none', pcs=None))
    assert one(results, 'upgrade_plan')['evidence'] == (
        'no VM placement to plan from: with preflight_ha_backend=none set preflight_plan_input (hosts and VMs as '
        'clusterops.upgrade.upgrade_plan takes them)')
    results = PC.evaluate(lab_inputs(plan_hosts=[]))
    assert brief([one(results, 'upgrade_plan')]) == [
        ('upgrade_plan', 'cluster', 'skipped', 'no hosts to plan (preflight_plan_group has no host in this play)')]


def test_evaluate_plan_fails_when_a_node_is_out_of_service():
    results = PC.evaluate(lab_inputs(pcs=facts('crm_mon_standby.xml')))
    r = one(results, 'upgrade_plan')
    assert (r['status'], r['evidence']) == ('fail', (
        'migrate: no safe plan: node(s) cmp-2 (standby) are not in service; the planner needs every node online '
        'and active: bring them back (pcs node unstandby / pcs node unmaintenance) or finish the run that took '
        'them out'))


@pytest.mark.parametrize('inputs, message', [
    ({'evacuation': 'drain'}, "evacuation must be one of migrate, shutdown, manual, got 'drain'"),
    ({'ha_backend': 'heartbeat'}, "ha_backend must be one of pacemaker, none, got 'heartbeat'"),
    ({'hosts': 'ctl-a'}, "hosts must be the list of the play's host names, got 'ctl-a'"),
    ({'host_results': []}, 'host_results must map host names to the registered preflight_host results'),
])
def test_evaluate_refuses_bad_input(inputs, message):
    with pytest.raises(P.PreflightError) as caught:
        PC.evaluate(lab_inputs(**inputs))
    assert str(caught.value) == message
