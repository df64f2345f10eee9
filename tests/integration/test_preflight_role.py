"""playbooks/preflight.yml on this machine (no lab): local hosts with their own roots
(real rpm databases built with rpmbuild/rpm, rollback caches, version files), one host
that is unreachable over SSH, a vendor bundle carrying the baseline. Every fault is
reported in one run without stopping at the unreachable host; the report files, their
modes and the JUnit counts; check mode copies nothing but says what it would copy;
the backup fix from a peer plus waivers let the play pass."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import pytest

pytestmark = pytest.mark.skipif(not (shutil.which('rpm') and shutil.which('rpmbuild')),
                                reason='needs rpm and rpmbuild (Debian package rpm)')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(REPO, 'playbooks', 'preflight.yml')
ENV_C = dict(os.environ, LANG='C', LC_ALL='C')
PACKAGES = [('pf-common', '6.8.0', '1'), ('pf-node', '6.8.0', '1'), ('pf-extra', '1.0', '1')]
BUNDLE = 'Pf_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade.zip'
HOSTS = ['h1', 'h2', 'h3', 'h4']


def rpm(root, *args):
    subprocess.run(['rpm', '--root', root, '--dbpath', '/var/lib/rpm'] + list(args), check=True, env=ENV_C,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    top = tmp_path_factory.mktemp('preflight-site')
    out = top / 'rpms'
    for name, version, release in PACKAGES:
        (top / (name + '.spec')).write_text(
            'Name: %s\nVersion: %s\nRelease: %s\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%%description\nt\n'
            '%%files\n' % (name, version, release))
    subprocess.run(['rpmbuild', '-bb', '--quiet', '--define', '_topdir %s' % top, '--define', '_rpmdir %s' % out,
                    '--define', '_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm']
                   + [str(top / (n + '.spec')) for n, _v, _r in PACKAGES], check=True, env=ENV_C,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    files = dict((n, str(out / ('%s-%s-%s.noarch.rpm' % (n, v, r)))) for n, v, r in PACKAGES)
    roots = {}
    for host, version in (('h1', '6.8.0'), ('h3', '6.8.0'), ('h4', '6.8.1')):
        root = top / 'roots' / host
        for d in ('etc', 'var/log', 'var/backup-rpm'):
            (root / d).mkdir(parents=True)
        (root / 'etc' / 'version').write_text(version + '\n')
        rpm(str(root), '--initdb')
        rpm(str(root), '-i', '--nodeps', files['pf-common'], files['pf-node'])
        for name in ('pf-common', 'pf-node'):
            shutil.copy(files[name], str(root / 'var' / 'backup-rpm'))
        roots[host] = str(root)
    rpm(roots['h3'], '-i', '--nodeps', files['pf-extra'])               # an extra rpm on h3
    os.unlink(os.path.join(roots['h4'], 'var/backup-rpm/pf-node-6.8.0-1.noarch.rpm'))  # a missing backup on h4
    bundles = top / 'bundles'
    bundles.mkdir()
    with zipfile.ZipFile(str(bundles / BUNDLE), 'w') as archive:
        archive.writestr('baseline.txt', 'pf-common-6.8.0-1.noarch\npf-node-6.8.0-1.noarch\n')
    digest = hashlib.sha256((bundles / BUNDLE).read_bytes()).hexdigest()
    (bundles / 'SHA256SUMS').write_text('%s  %s\n' % (digest, BUNDLE))
    inventory = {'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'preflight_version_file': '/etc/version',
                 'preflight_ha_backend': 'none', 'preflight_bundle_dir': str(bundles),
                 'preflight_datastores': ['/srv/pool'],
                 'preflight_plan_input': {'hosts': [{'name': h, 'capacity': {'memory': 100}} for h in HOSTS],
                                          'vms': [{'name': 'v1', 'host': 'h1', 'demand': {'memory': 40}}]}},
        'children': {'compute': {'hosts': {
            'h1': {'preflight_root': roots['h1'], 'preflight_datastores': []},
            # nothing listens on port 1 of the loopback address: unreachable
            'h2': {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': 1,
                   'ansible_ssh_common_args': '-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null'},
            'h3': {'preflight_root': roots['h3'], 'preflight_datastores': []},
            'h4': {'preflight_root': roots['h4']},
        }}},
    }}
    path = top / 'inventory.json'
    path.write_text(json.dumps(inventory))
    return {'top': top, 'inventory': str(path), 'roots': roots, 'bundles': str(bundles)}


def play(site, name, *options, playbook=PLAYBOOK, run_id=True, **extra):
    """Run the playbook with the report under <site>/reports; returns (process, JSON report, the run's
    report directory - the one directory this run made there)."""
    extra = dict(extra, upgrade_report_dir=str(site['top'] / 'reports'))
    if run_id:
        extra['upgrade_run_id'] = name
    vars_file = site['top'] / (name + '.json')
    vars_file.write_text(json.dumps(extra))
    reports = site['top'] / 'reports'
    before = set(os.listdir(str(reports))) if reports.is_dir() else set()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PIPELINING='1', ANSIBLE_LOCALHOST_WARNING='0')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
                           site['inventory'], str(playbook), '-e', '@%s' % vars_file] + list(options),
                          env=env, cwd=str(site['top']), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=300)
    made = sorted(set(os.listdir(str(reports))) - before)
    assert len(made) == 1, proc.stdout[-3000:]
    report_dir = reports / made[0]
    report = json.loads((report_dir / 'preflight.json').read_text())
    return proc, report, report_dir


def status(report):
    return dict(((r['id'], r['host']), r['status']) for r in report['results'])


def evidence(report, check_id, host):
    return next(r['evidence'] for r in report['results'] if r['id'] == check_id and r['host'] == host)


def test_every_fault_in_one_run_and_one_unreachable_host_does_not_stop_the_others(site):
    # the expected version from the upgrade playbook's variable
    proc, report, report_dir = play(site, 'faults', upgrade_from_version='6.8.0')
    assert proc.returncode == 2, proc.stdout[-3000:]
    failed = sorted(k for k, v in status(report).items() if v == 'fail')
    assert failed == [('datastores', 'h4'), ('product_version', 'h4'), ('reachable', 'h2'),
                      ('rpm_backups', 'h4'), ('rpm_baseline', 'h3'), ('version_uniform', 'h4')]
    assert evidence(report, 'rpm_baseline', 'h3') == (
        'differs from the baseline (baseline.txt in %s): 1 extra (pf-extra-1.0-1.noarch)' % BUNDLE)
    assert evidence(report, 'rpm_backups', 'h4') == '/var/backup-rpm: 1 missing (pf-node-6.8.0-1.noarch.rpm)'
    assert evidence(report, 'product_version', 'h4') == (
        'version 6.8.1 (from file:/etc/version), expected 6.8.0')
    assert evidence(report, 'version_uniform', 'h4') == '6.8.1 here; 2 host(s) run 6.8.0 (h1, h3)'
    assert evidence(report, 'datastores', 'h4') == 'not mounted: /srv/pool'
    assert evidence(report, 'reachable', 'h2').startswith('unreachable: ')
    assert evidence(report, 'rpm_baseline', 'h2') == 'not run: the host is unreachable'
    assert evidence(report, 'bundle_verified', 'controller') == (
        '1 bundle(s) match %s/SHA256SUMS: %s' % (site['bundles'], BUNDLE))
    assert evidence(report, 'upgrade_plan', 'cluster') == (
        'migrate: 4 host(s) in 2 batch(es) (lower bound 2): h2, h3, h4 | h1')
    assert 'Preflight found blockers (reachable, rpm_baseline, product_version, rpm_backups, datastores, ' \
           'version_uniform) on h2, h3, h4: see %s/preflight.md' % report_dir in proc.stdout
    # one report, three forms, private to the controller's user
    assert stat.S_IMODE(report_dir.stat().st_mode) == 0o700
    assert sorted(os.listdir(str(report_dir))) == ['preflight.json', 'preflight.md', 'preflight.xml']
    for name in os.listdir(str(report_dir)):
        assert stat.S_IMODE((report_dir / name).stat().st_mode) == 0o600
    suite = ET.parse(str(report_dir / 'preflight.xml')).getroot().find('testsuite')
    summary = report['summary']
    assert (int(suite.get('tests')), int(suite.get('failures')), int(suite.get('skipped'))) == (
        summary['total'], summary['blockers_failed'], summary['skipped']) == (34, 6, 12)
    assert len(suite.findall('testcase/failure')) == 6


def tree(root):
    """Every file under root with its mtime; sqlite's shared-memory index of the rpm
    database is left out (rpm touches it whenever it only reads the database)."""
    return sorted((os.path.relpath(os.path.join(d, f), root), os.stat(os.path.join(d, f)).st_mtime_ns)
                  for d, _dirs, files in os.walk(root) for f in files if not f.endswith('-shm'))


def test_check_mode_copies_nothing_and_says_what_it_would_copy(site):
    backup = os.path.join(site['roots']['h4'], 'var/backup-rpm')
    before = dict((h, tree(r)) for h, r in site['roots'].items())
    # no upgrade_run_id: the run names itself preflight-<UTC time>
    proc, report, report_dir = play(site, 'check', '--check', run_id=False, preflight_fix_backups=True,
                                    preflight_expected_version='6.8.0')
    assert proc.returncode == 2, proc.stdout[-3000:]
    # the hosts were only read; only the controller report was written
    assert dict((h, tree(r)) for h, r in site['roots'].items()) == before
    assert re.match(r'^preflight-[0-9]{8}T[0-9]{6}Z$', report_dir.name)
    assert report['run_id'] == report_dir.name
    assert sorted(os.listdir(str(report_dir))) == ['preflight.json', 'preflight.md', 'preflight.xml']
    assert len(os.listdir(backup)) == 1
    assert evidence(report, 'rpm_backups', 'h4') == (
        '/var/backup-rpm: 1 missing (pf-node-6.8.0-1.noarch.rpm) [fix from peers: would copy '
        'pf-node-6.8.0-1.noarch.rpm from h1]')


WRAPPER = """---
- name: Name the run, as the upgrade playbook does
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Set the run id as a fact of localhost
      ansible.builtin.set_fact:
        upgrade_run_id: fixed

- name: Preflight first
  ansible.builtin.import_playbook: %s

- name: Use the verdict afterwards
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Show what preflight left for the next plays
      ansible.builtin.debug:
        msg: "VERDICT {{ preflight_run | to_json }}"
"""


def test_imported_fix_from_a_peer_and_waivers_let_the_play_pass(site):
    waive = ['reachable', 'rpm_baseline', 'product_version', 'version_uniform', 'datastores', 'no_such_check']
    # the placement as a file on the controller this time
    placement = site['top'] / 'placement.yml'
    placement.write_text('hosts:\n' + ''.join('  - {name: %s, capacity: {memory: 100}}\n' % h for h in HOSTS)
                         + 'vms: []\n')
    wrapper = site['top'] / 'upgrade.yml'
    wrapper.write_text(WRAPPER % PLAYBOOK)
    # the run id comes from a fact of localhost set by an earlier play, the
    # evacuation mode from upgrade_evacuation
    proc, report, report_dir = play(site, 'fixed', playbook=wrapper, run_id=False, preflight_fix_backups=True,
                                    preflight_waive=waive, preflight_plan_input=str(placement),
                                    upgrade_evacuation='shutdown', preflight_expected_version='6.8.0')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report_dir == site['top'] / 'reports' / 'fixed'
    assert os.path.isfile(os.path.join(site['roots']['h4'], 'var/backup-rpm/pf-node-6.8.0-1.noarch.rpm'))
    assert status(report)[('rpm_backups', 'h4')] == 'pass'
    assert evidence(report, 'rpm_backups', 'h4') == (
        '/var/backup-rpm holds an intact rpm for each of the 2 baseline package(s) [fix from peers: copied '
        'pf-node-6.8.0-1.noarch.rpm from h1]')
    assert evidence(report, 'upgrade_plan', 'cluster') == (
        'shutdown: 4 host(s) in 1 batch(es) (lower bound 1): h1, h2, h3, h4')
    summary = report['summary']
    assert (summary['blocked'], summary['waived'], summary['unknown_waivers']) == (False, 5, ['no_such_check'])
    md = (report_dir / 'preflight.md').read_text()
    assert '- `rpm_baseline`: waived on h3' in md
    assert '- `no_such_check`: matches no check in this report; check the spelling' in md
    suite = ET.parse(str(report_dir / 'preflight.xml')).getroot().find('testsuite')
    assert (int(suite.get('failures')), int(suite.get('skipped'))) == (0, summary['waived'] + summary['skipped'])
    verdict = json.loads(proc.stdout.split('"VERDICT ', 1)[1].split('"\n', 1)[0].replace('\\"', '"'))
    assert verdict == {
        'run_id': 'fixed', 'report_dir': str(report_dir), 'blocked': False, 'summary': summary,
        'reports': dict((ext, str(report_dir / ('preflight.' + ext))) for ext in ('md', 'json', 'xml'))}


def test_bad_variables_are_refused_once_before_any_host_is_read(site):
    reports = site['top'] / 'reports'
    before = sorted(os.listdir(str(reports))) if reports.is_dir() else []
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
                           site['inventory'], PLAYBOOK, '-e', 'upgrade_evacuation=drain',
                           '-e', 'upgrade_report_dir=%s' % reports, '-e', 'preflight_disk_threshold=abc'],
                          env=env, cwd=str(site['top']), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=300)
    assert proc.returncode == 2, proc.stdout[-3000:]
    # validated once (run_once), naming each bad variable; nothing ran on the hosts
    assert proc.stdout.count('[ERROR]: Task failed: Action failed: Validation of arguments failed:') == 1
    assert proc.stdout.count('fatal: [') == 1
    assert 'value of preflight_evacuation must be one of: migrate, shutdown, manual, got: drain' in proc.stdout
    assert "argument 'preflight_disk_threshold' is of type str and we were unable to convert to float" in proc.stdout
    assert 'Run every host-side check' not in proc.stdout
    assert (sorted(os.listdir(str(reports))) if reports.is_dir() else []) == before
