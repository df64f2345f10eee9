#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of rpm_baseline's ``compared`` path against a bare ``rpm -qa --qf``.

    .venv/bin/python tests/bench/bench_rpm_baseline.py [--packages N] [--runs N]

Builds N (default 2,000) metadata-only RPMs (four rpmbuild calls, one spec of
N/4 subpackages each, noarch/x86_64/i686 and several versions), installs them
into a fresh ``--root`` database in ONE ``rpm -i --justdb --nodeps``
transaction, writes a JSON baseline, erases a few packages (so the diff has
something to report), then times, interleaved, several runs each of:

  bare      ``rpm --root R --dbpath /var/lib/rpm -qa --qf <same format>`` (subprocess)
  compared  load the baseline file + compare_host(): the same single rpm query,
            parsing, ignore globs, the diff, the restore plan

and prints both medians and their ratio (target <= 1.20), the time the compared
path spends outside rpm, the median of the per-pair ratios, and the load
average (the machine is shared: the ratio moves with it). For information only
it also prints the module run as a process (Python start-up and Ansible imports
included) and ``compared`` with a backup_dir holding all N package files.
Not a test: no assertion on time, it only prints. Everything lives in a
temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'collections'))

from ansible_collections.clusterops.upgrade.plugins.module_utils import _rpm  # noqa: E402

DBPATH = '/var/lib/rpm'
ENV_C = dict(os.environ, LANG='C', LC_ALL='C')
# (target arch, version, release, epoch) of the four specs
SPECS = [('noarch', '1.0', '1.el9', 0), ('x86_64', '2.4.1', '3.el9_2', 1),
         ('x86_64', '5.14.0', '70.13.1.el9', 0), ('i686', '0.9~rc1', '2.el9', 2)]


def spec_text(index, count, version, release, epoch):
    lines = ['Name: bench%d-base' % index, 'Version: %s' % version, 'Release: %s' % release,
             'Summary: benchmark', 'License: MIT']
    if epoch:
        lines.append('Epoch: %d' % epoch)
    lines += ['%description', 'benchmark', '']
    for n in range(count):
        name = 'bench-pkg%d-lib-%04d' % (index, n)
        lines += ['%%package -n %s' % name, 'Summary: benchmark', '%%description -n %s' % name, 'benchmark',
                  '%%files -n %s' % name, '']
    return '\n'.join(lines) + '\n'


def build(work, total):
    out = os.path.join(work, 'rpms')
    per = [total // len(SPECS) + (1 if i < total % len(SPECS) else 0) for i in range(len(SPECS))]
    for index, ((arch, version, release, epoch), count) in enumerate(zip(SPECS, per)):
        path = os.path.join(work, 'bench%d.spec' % index)
        with open(path, 'w') as f:
            f.write(spec_text(index, count, version, release, epoch))
        subprocess.run(['rpmbuild', '-bb', '--quiet', '--target', arch, '--define', '_topdir %s' % work,
                        '--define', '_rpmdir %s' % out, path],
                       check=True, env=ENV_C, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = []
    for arch in sorted(os.listdir(out)):
        files.extend(os.path.join(out, arch, f) for f in os.listdir(os.path.join(out, arch)))
    return sorted(files)


def run_subprocess(argv, env_update):
    """The runner the module_utils seam expects, on subprocess."""
    env = dict(os.environ)
    env.update(env_update)
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return (proc.returncode, proc.stdout.decode('utf-8', 'surrogateescape'),
            proc.stderr.decode('utf-8', 'surrogateescape'))


def rpm(root, *args):
    subprocess.run(['rpm', '--root', root, '--dbpath', DBPATH] + list(args), check=True, env=ENV_C,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--packages', type=int, default=2000)
    parser.add_argument('--runs', type=int, default=15)
    args = parser.parse_args()
    if not (shutil.which('rpm') and shutil.which('rpmbuild')):
        sys.exit('needs rpm and rpmbuild (Debian package rpm)')

    work = tempfile.mkdtemp(prefix='bench-rpm-baseline.')
    try:
        t0 = time.perf_counter()
        files = build(work, args.packages)
        t1 = time.perf_counter()
        root = os.path.join(work, 'root')
        os.mkdir(root)
        rpm(root, '--initdb')
        rpm(root, '-i', '--justdb', '--nodeps', '--noscripts', '--notriggers', *files)
        t2 = time.perf_counter()
        r = _rpm.Rpm(run_subprocess, root=root)
        installed = r.query_installed()
        baseline = os.path.join(work, 'baseline.json')
        _rpm.atomic_write(baseline, _rpm.render_baseline(installed))
        erased = sorted(p.nevra() for p in installed)[::400]
        rpm(root, '-e', '--justdb', '--nodeps', '--noscripts', *erased)
        print('setup: %d packages built in %.1f s, installed in one transaction in %.1f s; '
              '%d erased again to give the diff work' % (len(files), t1 - t0, t2 - t1, len(erased)))

        bare_argv = r.base_argv() + ['-qa', '--qf', _rpm.INSTALLED_QF]

        def bare():
            proc = subprocess.run(bare_argv, env=ENV_C, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
            assert proc.returncode == 0 and proc.stdout

        in_rpm = []

        def timed_runner(argv, env_update):
            start = time.perf_counter()
            try:
                return run_subprocess(argv, env_update)
            finally:
                in_rpm.append(time.perf_counter() - start)

        timed_rpm = _rpm.Rpm(timed_runner, root=root)

        def compared():
            fmt, packages = _rpm.load_baseline(baseline)
            result = _rpm.compare_host(timed_rpm, fmt, packages, ignore=['gpg-pubkey*'])
            assert result['counts']['missing'] == len(erased)

        bare()
        compared()
        del in_rpm[:]
        bare_times, compared_times = [], []
        for _run in range(args.runs):
            bare_times.append(timed(bare))
            compared_times.append(timed(compared))
        mb, mc = statistics.median(bare_times), statistics.median(compared_times)
        python_side = statistics.median(c - q for c, q in zip(compared_times, in_rpm))
        print('bare rpm -qa --qf      : median %7.1f ms over %d runs (min %.1f, max %.1f)'
              % (mb * 1000, args.runs, min(bare_times) * 1000, max(bare_times) * 1000))
        print('compared code path     : median %7.1f ms over %d runs (min %.1f, max %.1f); '
              'of which outside rpm: median %.1f ms'
              % (mc * 1000, args.runs, min(compared_times) * 1000, max(compared_times) * 1000,
                 python_side * 1000))
        print('ratio compared / bare  : %.2f  (target <= 1.20); median of the per-pair ratios %.2f'
              % (mc / mb, statistics.median(c / b for c, b in zip(compared_times, bare_times))))
        print('load average           : %.2f %.2f %.2f' % os.getloadavg())

        # For information: the module as a process, and the backup check.
        argfile = os.path.join(work, 'args.json')
        with open(argfile, 'w') as f:
            json.dump({'ANSIBLE_MODULE_ARGS': {'baseline': baseline, 'root': root, 'fail_on_drift': False}}, f)
        module = os.path.join(ROOT, 'plugins', 'modules', 'rpm_baseline.py')
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'collections'))

        def module_process():
            proc = subprocess.run([sys.executable, module, argfile], env=env, stdout=subprocess.PIPE, check=False)
            assert json.loads(proc.stdout)['counts']['missing'] == len(erased)

        backup = os.path.join(work, 'backup-rpm')
        os.mkdir(backup)
        for path in files:
            os.link(path, os.path.join(backup, os.path.basename(path)))

        def with_backups():
            fmt, packages = _rpm.load_baseline(baseline)
            result = _rpm.compare_host(r, fmt, packages, backup_dir=backup)
            assert result['counts']['corrupt_backups'] == 0 and result['restore_plan_complete']

        info_runs = 3
        mm = statistics.median(timed(module_process) for _run in range(info_runs))
        mbk = statistics.median(timed(with_backups) for _run in range(info_runs))
        print('info: module as a process (interpreter + imports included): median %.1f ms over %d runs'
              % (mm * 1000, info_runs))
        print('info: compared + backup_dir of %d rpm files (one rpm -qp): median %.1f ms over %d runs'
              % (len(files), mbk * 1000, info_runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
