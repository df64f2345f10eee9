#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the whole preflight playbook against N hosts vs ONE no-op module task.

    .venv/bin/python tests/bench/bench_preflight.py [--hosts 100] [--runs 3]

Builds, in a temporary directory, N fake hosts reached over the local connection:
each has its own root (preflight_root) holding a real rpm database (rpm --initdb,
two tiny packages installed), its rollback cache /var/backup-rpm with their rpm
files, the product version file and /var/log. A small vendor bundle (zip) carries
the rpm baseline, with a SHA256SUMS next to it. The plan comes from
preflight_plan_input, a placement file of the 100 hosts and 100 VMs (no pacemaker
on this machine: preflight_ha_backend=none).

Then it times, interleaved, several runs each of

  ping       ansible-playbook with one task, ansible.builtin.ping, on the N hosts
  preflight  ansible-playbook playbooks/preflight.yml on the same N hosts: every
             check (version, bundle, rpm set with one rpm -qa per host, backup rpms
             with one rpm -qp per host, disks), the bundle verified on the
             controller, the plan, the report written in three formats

and prints the median wall time and the median CPU time (user+sys of
ansible-playbook and everything it started), and their ratios (target: 1.5 or
less). The machine is shared: the load average is printed with each run. Not a
test: it asserts nothing about time; it only checks that the preflight run passed
(exit code 0 and an unblocked report), so that a broken run is not timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(REPO, 'playbooks', 'preflight.yml')
ENV_C = dict(os.environ, LANG='C', LC_ALL='C')
PACKAGES = (('bench-common', '6.8.0', '1'), ('bench-node', '6.8.0', '1'))
BUNDLE = 'Bench_V6R08B011-V6R08B111-b1-x86_64-S001-b1.upgrade.zip'

PING = """---
- name: One no-op module task on every host
  hosts: compute
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV_C,
                          universal_newlines=True, **kw)


def build_rpms(top):
    out = os.path.join(top, 'rpms')
    for name, version, release in PACKAGES:
        with open(os.path.join(top, name + '.spec'), 'w') as f:
            f.write('Name: %s\nVersion: %s\nRelease: %s\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n'
                    '%%description\nbench\n%%files\n' % (name, version, release))
    run(['rpmbuild', '-bb', '--quiet', '--define', '_topdir %s' % top, '--define', '_rpmdir %s' % out,
         '--define', '_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm']
        + [os.path.join(top, n + '.spec') for n, _v, _r in PACKAGES])
    return [os.path.join(out, '%s-%s-%s.noarch.rpm' % p) for p in PACKAGES]


def build_template(top, rpm_files):
    root = os.path.join(top, 'template')
    for d in ('etc', 'var/log', 'var/backup-rpm'):
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, 'etc', 'version'), 'w') as f:
        f.write('6.8.0\n')
    run(['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '--initdb'])
    run(['rpm', '--root', root, '--dbpath', '/var/lib/rpm', '-i', '--nodeps'] + rpm_files)
    for path in rpm_files:
        shutil.copy(path, os.path.join(root, 'var', 'backup-rpm'))
    return root


def build_bundle(top):
    bundles = os.path.join(top, 'bundles')
    os.makedirs(bundles)
    path = os.path.join(bundles, BUNDLE)
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('baseline.txt', ''.join('%s-%s-%s.noarch\n' % p for p in PACKAGES))
        archive.writestr('rpms/README', 'bench bundle\n' * 100)
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(bundles, 'SHA256SUMS'), 'w') as f:
        f.write('%s  %s\n' % (digest, BUNDLE))
    return bundles


def build_inventory(top, count, template, bundles):
    hosts = {}
    for i in range(count):
        name = 'node%03d' % i
        root = os.path.join(top, 'roots', name)
        shutil.copytree(template, root, symlinks=True)
        hosts[name] = {'preflight_root': root}
    plan_hosts = [{'name': h, 'capacity': {'memory': 65536}} for h in sorted(hosts)]
    plan_vms = [{'name': 'vm%03d' % i, 'host': h, 'demand': {'memory': 8192}, 'migratable': True}
                for i, h in enumerate(sorted(hosts))]
    plan_file = os.path.join(top, 'placement.json')
    with open(plan_file, 'w') as f:
        json.dump({'hosts': plan_hosts, 'vms': plan_vms}, f)
    inventory = {'all': {
        'vars': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'preflight_version_file': '/etc/version',
            'preflight_expected_version': '6.8.0',
            'preflight_ha_backend': 'none',
            'preflight_bundle_dir': bundles,
            # a file on the controller, read once (see the role's README)
            'preflight_plan_input': plan_file,
            'preflight_plan_max_parallel': 10,
            'upgrade_report_dir': os.path.join(top, 'report'),
            'upgrade_run_id': 'bench',
        },
        'children': {'compute': {'hosts': hosts}},
    }}
    path = os.path.join(top, 'inventory.json')
    with open(path, 'w') as f:
        json.dump(inventory, f)
    return path


def timed(argv, env, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    for tool in ('rpm', 'rpmbuild'):
        if not shutil.which(tool):
            sys.exit('bench_preflight needs %s (Debian package rpm)' % tool)
    playbook_bin = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PIPELINING='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_HOST_KEY_CHECKING='0')
    top = tempfile.mkdtemp(prefix='bench-preflight-')
    try:
        rpm_files = build_rpms(top)
        template = build_template(top, rpm_files)
        bundles = build_bundle(top)
        inventory = build_inventory(top, args.hosts, template, bundles)
        ping = os.path.join(top, 'ping.yml')
        with open(ping, 'w') as f:
            f.write(PING)
        commands = {
            'ping': [playbook_bin, '-i', inventory, ping],
            'preflight': [playbook_bin, '-i', inventory, PLAYBOOK],
        }
        print('bench_preflight: %d hosts (local connection, fake roots), %d run(s) each, interleaved; '
              'ansible-playbook %s' % (args.hosts, args.runs, os.path.relpath(PLAYBOOK, REPO)))
        times = {'ping': [], 'preflight': []}
        for n in range(args.runs):
            for name in ('ping', 'preflight'):
                proc, wall, cpu = timed(commands[name], env, top)
                if proc.returncode != 0:
                    print(proc.stdout[-6000:])
                    sys.exit('%s failed (rc %d): nothing to time' % (name, proc.returncode))
                if name == 'preflight':
                    with open(os.path.join(top, 'report', 'bench', 'preflight.json')) as f:
                        report = json.load(f)
                    summary = report['summary']
                    if summary['blocked'] or summary['hosts'] < args.hosts:
                        sys.exit('the preflight report is not clean: %r' % summary)
                times[name].append((wall, cpu))
                print('  run %d %-9s wall %6.1f s  cpu %6.1f s  (load average %.1f)'
                      % (n + 1, name, wall, cpu, os.getloadavg()[0]))
        med = dict((name, (statistics.median(w for w, _c in t), statistics.median(c for _w, c in t)))
                   for name, t in times.items())
        print('median ping       wall %6.1f s  cpu %6.1f s' % med['ping'])
        print('median preflight  wall %6.1f s  cpu %6.1f s  (%d results in the report)'
              % (med['preflight'][0], med['preflight'][1], summary['total']))
        print('ratio preflight / ping: wall %.2fx, cpu %.2fx (target <= 1.50x)'
              % (med['preflight'][0] / med['ping'][0], med['preflight'][1] / med['ping'][1]))
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == '__main__':
    main()
