#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: package_verify's code path against sha256sum on the same 2 GiB file.

    .venv/bin/python tests/bench/bench_checksum.py [--size-mib 2048] [--runs 5] [--dir DIR]

Writes one 2 GiB zip of incompressible data (real blocks, not sparse) into a
temporary directory, reads it once to warm the page cache, then times, in
interleaved rounds (warm cache):

* ``sha256sum FILE`` (the baseline),
* ``_checksum.scan_file(FILE, verify_archive=False)`` (hash only),
* ``_checksum.scan_file(FILE)`` (hash + the one-pass zip check: every member's
  CRC-32 computed in the same read),

and prints the median of each and the throughput ratio module / sha256sum
(target >= 0.95). The file is deleted afterwards. Not a test: no assertion.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'collections'))

from ansible_collections.clusterops.upgrade.plugins.module_utils import _checksum  # noqa: E402

MIB = 1 << 20


def make_file(path, size_mib, member_mib=256):
    """A zip of stored members filled with urandom data (written for real, never sparse)."""
    chunk = 8 * MIB
    left = size_mib * MIB
    number = 0
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED, allowZip64=True) as archive:
        while left > 0:
            member = min(member_mib * MIB, left)
            info = zipfile.ZipInfo('rpms/part-%03d.rpm' % number, date_time=(2024, 1, 1, 0, 0, 0))
            with archive.open(info, 'w', force_zip64=True) as out:
                written = 0
                while written < member:
                    step = min(chunk, member - written)
                    out.write(os.urandom(step))
                    written += step
            left -= member
            number += 1
    with open(path, 'rb') as handle:
        os.fsync(handle.fileno())


def time_sha256sum(path):
    env = {'LANG': 'C', 'LC_ALL': 'C', 'PATH': os.environ.get('PATH', '/usr/bin:/bin')}
    start = time.perf_counter()
    out = subprocess.run(['sha256sum', path], check=True, stdout=subprocess.PIPE, env=env).stdout
    return time.perf_counter() - start, out.split()[0].decode()


def time_module(path, verify_archive):
    start = time.perf_counter()
    result = _checksum.scan_file(path, 'sha256', verify_archive=verify_archive)
    elapsed = time.perf_counter() - start
    if verify_archive and (result.archive_check, result.reads) != ('ok', 1):
        raise SystemExit('zip check did not pass in one read: %s %s %r' % (
            result.archive_check, result.reads, result.archive_detail))
    return elapsed, result.checksum


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--size-mib', type=int, default=2048)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--dir', default=None, help='where to write the file (default: the system temp dir)')
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='bench-checksum-', dir=args.dir)
    path = os.path.join(workdir, 'bench-x86_64-M001-b1.upgrade.zip')
    try:
        start = time.perf_counter()
        make_file(path, args.size_mib)
        size = os.path.getsize(path)
        print('file: %s, %d bytes (%.0f MiB), written in %.1f s' % (path, size, size / MIB,
                                                                    time.perf_counter() - start))
        print('python %s, hashlib on %s, cpu sha_ni: %s, read block %d bytes' % (
            sys.version.split()[0], ssl.OPENSSL_VERSION, cpu_has('sha_ni'), _checksum.BLOCK_SIZE))
        version = subprocess.run(['sha256sum', '--version'], stdout=subprocess.PIPE, check=True,
                                 universal_newlines=True).stdout.splitlines()[0]
        print('sha256sum: %s' % version)
        time_sha256sum(path)  # warm the page cache
        rows = {'sha256sum': [], 'module (hash only)': [], 'module (hash + zip check)': []}
        digests = set()
        for _round in range(args.runs):
            for name in rows:
                if name == 'sha256sum':
                    elapsed, digest = time_sha256sum(path)
                else:
                    elapsed, digest = time_module(path, name.endswith('check)'))
                rows[name].append(elapsed)
                digests.add(digest)
        if len(digests) != 1:
            raise SystemExit('checksums differ: %s' % sorted(digests))
        print('sha256: %s (identical for every run)' % digests.pop())
        base = statistics.median(rows['sha256sum'])
        print('%-27s %8s %10s %8s  %s' % ('', 'median s', 'MiB/s', 'ratio', 'runs (s)'))
        for name, values in rows.items():
            median = statistics.median(values)
            runs = ' '.join('%.3f' % v for v in values)
            print('%-27s %8.3f %10.1f %8.2f  %s' % (name, median, size / MIB / median, base / median, runs))
        print('ratio = throughput(module) / throughput(sha256sum); target >= 0.95')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_has(flag):
    try:
        with open('/proc/cpuinfo') as handle:
            return any(flag in line.split() for line in handle if line.startswith('flags'))
    except OSError:
        return 'unknown'


if __name__ == '__main__':
    main()
