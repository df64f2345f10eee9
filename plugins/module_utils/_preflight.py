# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight checks: what each check looks at, how it is judged, what to do about it.

The catalogue of every check (:data:`CHECKS`: title, severity, remedy), the shape
of a result (:func:`result`), and two halves, both plain functions that take data
and return data:

* the **host side** (:func:`host_checks`, here), run by the ``preflight_host``
  module in ONE call per host: product version, bundle copies, rpm set and
  rollback cache (through :mod:`._rpm`), root/log partition usage, datastores
  (through :mod:`._snapshot`, imported only when a version command or
  datastores are configured: every host compiles what the module imports on
  every run). Reading the host goes through the objects it is given (an
  :class:`._rpm.Rpm`, a :class:`HostRunner`, ``statvfs``); nothing here
  runs a command itself.
* the **controller side** lives in ``_preflight_cluster.py`` (``evaluate``,
  ``backup_peers``), run once for the whole play by the role's filters from the
  host results, the facts of ``pcs_info`` and the bundle verification:
  reachability, the same version everywhere, the HA pair, node states, the
  upgrade plan, running VMs (manual evacuation) and the bundles on the
  controller. It is a separate file that nothing here imports, not even lazily:
  a module payload carries every module_utils file its module imports anywhere
  (no bytecode either, so each host compiles what it imports on every run), and
  the controller half with the planner it needs is more than this whole file.

Every result is a dict in the shape ``_report`` consumes::

    {id, host, severity: blocker|warning, status: pass|fail|skipped,
     evidence, remedy, title, [data]}
"""

from __future__ import annotations

import collections
import math
import os
import posixpath
import re

# _bundle and _checksum are imported where they are used: this half runs as a
# module on every host, which should not compile the archive readers when no
# bundle copy is there to verify.
from ansible_collections.clusterops.upgrade.plugins.module_utils._rpm import (
    BaselineError,
    RpmError,
    compare_host,
    load_baseline,
    parse_baseline,
)

# _snapshot (version command, findmnt) is imported where it is used, for the same
# reason: a plain version file and no datastores need none of it.

BLOCKER = 'blocker'
WARNING = 'warning'
PASS = 'pass'
FAIL = 'fail'
SKIPPED = 'skipped'
EVACUATION_MODES = ('migrate', 'shutdown', 'manual')
HA_BACKENDS = ('pacemaker', 'none')
DEFAULT_DISK_PATHS = ('/', '/var/log')
DEFAULT_DISK_THRESHOLD = 99
DEFAULT_BACKUP_DIR = '/var/backup-rpm'
CLUSTER = 'cluster'
CONTROLLER = 'controller'
LIST_LIMIT = 10


class PreflightError(ValueError):
    """Input the checks cannot be run with; the message names the item."""


# --------------------------------------------------------------------------
# The catalogue: id -> (title, severity, remedy). Remedies may hold {names}
# filled per result.
# --------------------------------------------------------------------------

CHECKS = collections.OrderedDict((
    # host side (preflight_host)
    ('product_version', (
        'Product version equals the expected source version', BLOCKER,
        'bring the host to {expected} first, or set preflight_expected_version to the version the '
        'cluster really runs')),
    ('bundle_staged', (
        'Bundle copies on the host match the vendor checksum', BLOCKER,
        'stage the bundle again with the clusterops.upgrade.bundle role (it replaces a copy that does '
        'not match)')),
    ('rpm_baseline', (
        'Installed rpm set equals the baseline', BLOCKER,
        'put the rpm set back to the baseline: erase the extra packages and reinstall the missing or '
        'changed ones from {backup_dir} (clusterops.upgrade.rpm_baseline returns the exact restore_plan)')),
    ('rpm_backups', (
        'Rollback cache holds every baseline rpm', BLOCKER,
        'copy the missing rpm of the same version from another node into {backup_dir}: rerun with '
        'preflight_fix_backups=true (tasks/fix_backup_from_peer.yml does it and checks the header)')),
    ('disk_usage', (
        'Root and log partitions below the threshold', BLOCKER,
        'free space on {paths} (old logs, core files, leftover packages) until usage is below {limit} %')),
    ('datastores', (
        'Datastores and pools mounted', BLOCKER,
        'mount {paths} (check the storage path and the pool) before the upgrade')),
    # controller side (evaluate)
    ('reachable', (
        'Host reachable', BLOCKER,
        'bring the host up and make it reachable over SSH (ansible -m ping), then run preflight again')),
    ('host_checks', (
        'Host checks could run', BLOCKER,
        'fix what the evidence names (module input or the host) and run preflight again')),
    ('version_uniform', (
        'Same product version on all hosts', BLOCKER,
        'upgrade or roll back the hosts that differ, so that every host runs {version} before starting')),
    ('cluster_facts', (
        'Cluster state readable', BLOCKER,
        'make pacemaker answer on a reachable control-plane host (pcs status), then run preflight again')),
    ('ha_pair_online', (
        'HA pair online', BLOCKER,
        'start the cluster on {nodes} (pcs cluster start {nodes}) and check that the HA peers reach each '
        'other')),
    ('ha_quorum', (
        'Cluster has quorum', BLOCKER,
        'bring the missing cluster nodes back until the cluster is quorate (pcs status)')),
    ('ha_vip', (
        'Management VIP running on the HA pair', BLOCKER,
        'find out why {vip} is not running on the HA pair (pcs status; pcs resource cleanup {vip}) and '
        'start it there')),
    ('ha_failed_actions', (
        'No failed resource actions', BLOCKER,
        'investigate the failures, then clear them: {commands}')),
    ('ha_constraints', (
        'No leftover cli-ban / cli-prefer constraints', BLOCKER,
        'remove what an earlier ban or move left behind: {commands}')),
    ('node_state', (
        'Node online, not in standby or maintenance', BLOCKER,
        '{commands}, or finish the run that put the node there')),
    ('upgrade_plan', (
        'A safe upgrade plan exists for the evacuation mode', BLOCKER,
        'free capacity (stop VMs, lower preflight_plan_headroom), choose preflight_evacuation=shutdown, or '
        'empty hosts by hand; then run preflight again')),
    ('running_vms', (
        'No running VMs on hosts to upgrade (manual evacuation)', BLOCKER,
        'shut down or move the VMs on this host, or choose preflight_evacuation=migrate or shutdown')),
    ('bundle_verified', (
        'Bundles present and verified against the vendor manifest', BLOCKER,
        'download the bundle again and check it against the vendor checksum file')),
))

HOST_CHECK_IDS = ('product_version', 'bundle_staged', 'rpm_baseline', 'rpm_backups', 'disk_usage', 'datastores')


def result(check_id, host, status, evidence, remedy=None, data=None, **fmt):
    """One result of the catalogue's check ``check_id`` on ``host``."""
    title, severity, remedy_template = CHECKS[check_id]
    if remedy is None:
        remedy = remedy_template.format(**fmt) if fmt else remedy_template
    out = {'id': check_id, 'host': host, 'severity': severity, 'status': status,
           'evidence': evidence, 'remedy': remedy if status == FAIL else '', 'title': title}
    if data is not None:
        out['data'] = data
    return out


def listing(items, limit=LIST_LIMIT):
    """``a, b, c`` with at most ``limit`` items and ``... and N more``."""
    items = list(items)
    shown = list(items[:limit])
    if len(items) > limit:
        shown.append('... and %d more' % (len(items) - limit))
    return ', '.join(shown)


def _num(value):
    """99 -> '99', 99.5 -> '99.5'."""
    return ('%f' % value).rstrip('0').rstrip('.')


def _first_line(text, limit=300):
    """The first line of a message, without Ansible's ``Task failed:`` prefix."""
    text = (text or '').strip()
    if text.startswith('Task failed: '):
        text = text[len('Task failed: '):]
    line = text.splitlines()[0].strip() if text else ''
    return line if len(line) <= limit else line[:limit - 3] + '...'


def in_root(root, path):
    """``path`` (absolute, on the host) seen from the directory ``root``."""
    if not root or root == '/':
        return path
    return posixpath.join(root, path.lstrip('/'))


# --------------------------------------------------------------------------
# Host side: each evaluator takes what was read and returns one result
# --------------------------------------------------------------------------

def eval_product_version(host, version, source, problem, expected):
    """``version``/``source``/``problem`` as ``_snapshot.read_product_version`` returns them."""
    if source is None:
        return result('product_version', host, SKIPPED,
                      'no version source configured (preflight_version_file or preflight_version_command)')
    if problem:
        return result('product_version', host, FAIL, 'cannot read the product version: %s' % problem,
                      expected=expected or 'the expected version')
    if not expected:
        return result('product_version', host, SKIPPED,
                      'version %s (from %s); no expected source version set (preflight_expected_version)'
                      % (version, source))
    if version == expected:
        return result('product_version', host, PASS,
                      'version %s (from %s) equals the expected %s' % (version, source, expected))
    return result('product_version', host, FAIL,
                  'version %s (from %s), expected %s' % (version, source, expected), expected=expected)


def eval_disk_usage(host, usages, threshold):
    """``usages``: ``[{path, used_pct} | {path, error}]`` as :func:`disk_usage` returns them.

    A path fails when its usage is at or above ``threshold`` percent (the runbook:
    "大于或等于 99%" is too high), or when it cannot be read.
    """
    if not usages:
        return result('disk_usage', host, SKIPPED, 'no partitions configured (preflight_disk_paths)')
    limit = _num(threshold)
    bad, good = [], []
    for usage in usages:
        if usage.get('error'):
            bad.append('%s cannot be read: %s' % (usage['path'], usage['error']))
        elif usage['used_pct'] >= threshold:
            bad.append('%s is %d %% full' % (usage['path'], usage['used_pct']))
        else:
            good.append('%s is %d %% full' % (usage['path'], usage['used_pct']))
    data = {'threshold': threshold, 'usage': usages}
    if bad:
        evidence = '%s (limit: below %s %%)' % (', '.join(bad), limit)
        if good:
            evidence += '; %s' % ', '.join(good)
        paths = [u['path'] for u in usages if u.get('error') or u['used_pct'] >= threshold]
        return result('disk_usage', host, FAIL, evidence, data=data, paths=', '.join(paths), limit=limit)
    return result('disk_usage', host, PASS, '%s (limit: below %s %%)' % (', '.join(good), limit), data=data)


def eval_datastores(host, wanted, mounts, problem):
    """``wanted``: mount points; ``mounts``: ``_snapshot.read_mounts`` entries."""
    if not wanted:
        return result('datastores', host, SKIPPED, 'no datastores configured (preflight_datastores)')
    if problem:
        return result('datastores', host, FAIL, 'cannot list the mounts: %s' % problem, paths=', '.join(wanted))
    by_target = dict((m['target'], m) for m in mounts)
    missing = [p for p in wanted if p not in by_target]
    readonly = [p for p in wanted if p in by_target and by_target[p].get('ro')]
    mounted = [p for p in wanted if p in by_target and not by_target[p].get('ro')]
    parts = []
    if missing:
        parts.append('not mounted: %s' % ', '.join(missing))
    if readonly:
        parts.append('mounted read-only: %s' % ', '.join(readonly))
    if mounted:
        parts.append('mounted: %s' % ', '.join(mounted))
    if missing or readonly:
        return result('datastores', host, FAIL, '; '.join(parts), paths=', '.join(missing + readonly))
    return result('datastores', host, PASS, '; '.join(parts))


def eval_bundles(host, states):
    """``states``: one dict per bundle of this host, as :func:`bundle_state` returns them."""
    if not states:
        return result('bundle_staged', host, SKIPPED, 'no bundle is meant for this host (preflight_bundle_files)')
    bad = [s for s in states if s['problems']]
    present = [s for s in states if s['found']]
    if bad:
        return result('bundle_staged', host, FAIL, '; '.join(
            '%s: %s' % (s['name'], ', '.join(s['problems'])) for s in bad))
    if not present:
        return result('bundle_staged', host, SKIPPED, 'not staged on this host yet: %s'
                      % ', '.join(s['name'] for s in states))
    parts = ['%s: %s' % (s['name'], ', '.join(s['found'])) for s in present]
    absent = [s['name'] for s in states if not s['found']]
    if absent:
        parts.append('not staged yet: %s' % ', '.join(absent))
    return result('bundle_staged', host, PASS, '; '.join(parts))


def _nevras(items, key='nevra'):
    return listing([i[key] for i in items])


def _changes(items):
    return listing(['%s: %s installed, baseline %s' % (
        c['name'] + ('.' + c['arch'] if c.get('arch') else ''), c['installed']['nevra'], c['baseline']['nevra'])
        for c in items])


def eval_rpm(host, source, compared, problem, backup_dir, backup_problem):
    """Two results: ``rpm_baseline`` and ``rpm_backups``.

    ``compared`` is what ``_rpm.compare_host`` returns (None when it could not
    run: ``problem`` says why; ``source`` None means no baseline configured).
    ``backup_problem`` explains why the backups were not read (missing
    directory); ``backup_dir`` None/empty means the backup check is disabled.
    """
    if source is None:
        return [result('rpm_baseline', host, SKIPPED,
                       'no rpm baseline configured (preflight_rpm_baseline, or a baseline member in the bundles)'),
                result('rpm_backups', host, SKIPPED, 'no rpm baseline to check the backup rpms against')]
    if compared is None:
        return [result('rpm_baseline', host, FAIL, problem, backup_dir=backup_dir or DEFAULT_BACKUP_DIR),
                result('rpm_backups', host, SKIPPED, 'not checked: the rpm set could not be compared')]
    counts = compared['counts']
    if compared['consistent']:
        first = result('rpm_baseline', host, PASS, 'the %d installed package(s) equal the baseline (%s)'
                       % (counts['installed'], source))
    else:
        parts = []
        if compared['missing']:
            parts.append('%d missing (%s)' % (len(compared['missing']), _nevras(compared['missing'])))
        if compared['extra']:
            parts.append('%d extra (%s)' % (len(compared['extra']), _nevras(compared['extra'])))
        if compared['changed_packages']:
            changed = compared['changed_packages']
            parts.append('%d changed (%s)' % (len(changed), _changes(changed)))
        first = result('rpm_baseline', host, FAIL, 'differs from the baseline (%s): %s' % (source, '; '.join(parts)),
                       data={'restore_plan': compared['restore_plan'],
                             'restore_plan_complete': compared['restore_plan_complete']},
                       backup_dir=backup_dir or DEFAULT_BACKUP_DIR)
    if not backup_dir:
        second = result('rpm_backups', host, SKIPPED, 'backup check disabled (preflight_backup_dir is empty)')
    elif backup_problem:
        second = result('rpm_backups', host, FAIL, backup_problem, backup_dir=backup_dir)
    elif compared['missing_backups'] or compared['corrupt_backups']:
        parts = []
        if compared['missing_backups']:
            missing = compared['missing_backups']
            parts.append('%d missing (%s)' % (len(missing), _nevras(missing, 'file')))
        if compared['corrupt_backups']:
            parts.append('%d corrupt (%s)' % (len(compared['corrupt_backups']), listing(
                ['%s: %s' % (e['file'], e['reason']) for e in compared['corrupt_backups']])))
        second = result('rpm_backups', host, FAIL, '%s: %s' % (backup_dir, '; '.join(parts)),
                        data={'missing_backups': compared['missing_backups'],
                              'corrupt_backups': compared['corrupt_backups']},
                        backup_dir=backup_dir)
    else:
        second = result('rpm_backups', host, PASS, '%s holds an intact rpm for each of the %d baseline package(s)'
                        % (backup_dir, counts['baseline']))
    return [first, second]


# --------------------------------------------------------------------------
# Host side: reading
# --------------------------------------------------------------------------

C_ENV = {'LANG': 'C', 'LC_ALL': 'C'}


class HostRunner(object):
    """Adapter from an AnsibleModule to the runner interface of ``_snapshot``
    (``run(argv) -> (rc, out, err)``, ``which(name)``): the version command and
    findmnt run through it, as argv lists with ``LANG=C``."""

    def __init__(self, module):
        self._module = module

    def which(self, name):
        return self._module.get_bin_path(name, required=False)

    def run(self, argv):
        return self._module.run_command(list(argv), environ_update=dict(C_ENV), expand_user_and_vars=False)


def read_version_file(path, regex=None):
    """``(version, source, problem)`` from a version file, exactly as
    ``_snapshot.read_product_version`` reads one (a unit test holds them equal),
    without importing ``_snapshot``: the first line, or the match of ``regex``
    (its group 1 if it has one)."""
    source = 'file:%s' % path
    try:
        with open(path, 'r') as handle:
            text = handle.read().rstrip('\n')
    except (OSError, UnicodeDecodeError):
        return None, source, 'cannot read version_file %s' % path
    text = text.strip()
    if regex:
        match = re.search(regex, text, re.MULTILINE)
        if not match:
            return None, source, 'version_regex %r matched nothing in %r' % (regex, text[:200])
        text = match.group(1) if match.groups() else match.group(0)
    else:
        text = text.splitlines()[0].strip() if text else ''
    if not text:
        return None, source, 'the product version from %s is empty' % source
    return text, source, None


def read_version(runner, version_file=None, version_command=None, version_regex=None):
    """``(version, source, problem)``; ``(None, None, None)`` without a source."""
    if version_file:
        return read_version_file(version_file, version_regex)
    if version_command:
        from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import read_product_version
        return read_product_version(runner, None, version_command, version_regex)
    return None, None, None


def disk_usage(path, statvfs=os.statvfs):
    """Use% of the filesystem holding ``path``, computed as df does.

    ``used = (blocks - bfree) * frsize``, ``avail = bavail * frsize``, and the
    percentage ``used / (used + avail)`` rounded up.
    """
    try:
        st = statvfs(path)
    except OSError as exc:
        return {'path': path, 'error': exc.strerror or str(exc)}
    frsize = st.f_frsize or st.f_bsize
    used = (st.f_blocks - st.f_bfree) * frsize
    avail = st.f_bavail * frsize
    total = used + avail
    pct = int(math.ceil(used * 100.0 / total)) if total else 0
    return {'path': path, 'used_pct': pct, 'used_bytes': used, 'avail_bytes': avail,
            'size_bytes': st.f_blocks * frsize}


def select_bundles(bundles, host_groups):
    """The bundles meant for a host: those mapped to one of its groups
    (a bundle without ``groups`` is meant for every host)."""
    groups = set(host_groups or ())
    return [b for b in bundles or () if not b.get('groups') or groups.intersection(b['groups'])]


def bundle_state(bundle, bundle_dir, staging_dir, algorithm='sha256'):
    """Look for the copy ``bundle_dir/<name>`` and the staged tree
    ``staging_dir/<stage name>``; verify what is there against ``checksum``."""
    name = bundle['name']
    checksum = bundle.get('checksum')
    state = {'name': name, 'found': [], 'problems': []}
    if not checksum:
        state['problems'].append('no vendor checksum for it (not in the manifest)')
        return state
    if bundle_dir:
        path = posixpath.join(bundle_dir, name)
        if os.path.lexists(path):
            from ansible_collections.clusterops.upgrade.plugins.module_utils._checksum import STATUS_OK, verify_file
            verdict = verify_file(path, {name: checksum}, algorithm=algorithm, verify_archive=False)
            if verdict['status'] == STATUS_OK:
                state['found'].append('copy %s verified' % path)
            else:
                state['problems'].append('copy %s: %s (%s)' % (path, verdict['status'], verdict['detail']))
    if staging_dir and os.path.lexists(staging_dir):
        from ansible_collections.clusterops.upgrade.plugins.module_utils._bundle import (
            BundleError,
            read_marker,
            stage_name,
        )
        try:
            dest = posixpath.join(staging_dir, stage_name(name))
            marker = read_marker(dest)
        except BundleError as exc:
            state['problems'].append(str(exc))
            marker = None
            dest = None
        if marker is not None:
            if not marker:
                state['problems'].append('%s exists but was not staged by clusterops.upgrade.bundle_stage' % dest)
            elif marker.get('checksum') != checksum:
                state['problems'].append('%s was staged from another build (checksum %s)'
                                         % (dest, marker.get('checksum')))
            else:
                state['found'].append('staged at %s' % dest)
    return state


def _baseline_for(opts, bundles):
    """``(format, packages, source)``, or ``(None, None, None)`` when there is no
    baseline; raises BaselineError when it cannot be read."""
    root = opts.get('root')
    if opts.get('rpm_baseline'):
        path = in_root(root, opts['rpm_baseline'])
        fmt, packages = load_baseline(path)
        return fmt, packages, opts['rpm_baseline']
    if opts.get('rpm_baseline_content'):
        source = opts.get('rpm_baseline_source') or 'rpm_baseline_content'
        fmt, packages = parse_baseline(opts['rpm_baseline_content'], source)
        return fmt, packages, source
    for bundle in bundles:
        source = '%s in %s' % (bundle.get('baseline_member') or 'baseline', bundle['name'])
        if bundle.get('baseline'):
            fmt, packages = parse_baseline(bundle['baseline'], source)
            return fmt, packages, source
        if bundle.get('baseline_member'):
            raise BaselineError('%s could not be read on the controller (see the warning of the play)' % source)
    return None, None, None


def check_rpm(host, opts, rpm, bundles):
    """``rpm_baseline`` and ``rpm_backups`` (one ``rpm -qa`` and at most one ``rpm -qp``)."""
    backup_dir = opts.get('backup_dir')
    try:
        fmt, packages, source = _baseline_for(opts, bundles)
    except BaselineError as exc:
        return eval_rpm(host, 'unreadable', None, 'cannot read the baseline: %s' % exc, backup_dir, None), None
    if source is None:
        return eval_rpm(host, None, None, None, backup_dir, None), None
    backup_problem = None
    read_backups = None
    if backup_dir:
        real = in_root(opts.get('root'), backup_dir)
        if not os.path.isdir(real):
            backup_problem = 'backup directory %s does not exist' % backup_dir
        else:
            read_backups = real
    try:
        compared = compare_host(rpm, fmt, packages, ignore=opts.get('rpm_ignore') or (), backup_dir=read_backups)
    except RpmError as exc:
        return eval_rpm(host, source, None, 'the rpm set could not be read: %s' % exc, backup_dir, None), None
    if read_backups and read_backups != backup_dir:
        # report the files as the host sees them, not through the test/chroot root
        for entry in compared['corrupt_backups']:
            entry['path'] = posixpath.join(backup_dir, entry['file'])
    facts = {
        'baseline_source': source,
        'missing_backups': compared['missing_backups'] if read_backups else [],
        'backups_checked': bool(read_backups),
    }
    return eval_rpm(host, source, compared, None, backup_dir, backup_problem), facts


def host_checks(opts, rpm, runner, statvfs=os.statvfs):
    """Run every host-side check; return ``(results, facts)``.

    ``opts`` holds the ``preflight_host`` module's options; ``rpm`` is an
    ``_rpm.Rpm`` (root and dbpath set), ``runner`` a :class:`HostRunner`
    (``run(argv) -> (rc, out, err)``) for the version command and findmnt.
    """
    host = opts['host']
    root = opts.get('root') or '/'
    results = []
    facts = {'host': host}

    version_file = in_root(root, opts['version_file']) if opts.get('version_file') else None
    version, source, problem = read_version(runner, version_file, opts.get('version_command'),
                                            opts.get('version_regex'))
    if source and version_file and root != '/':
        source = 'file:%s' % opts['version_file']
    results.append(eval_product_version(host, version, source, problem, opts.get('expected_version')))
    facts['product_version'] = version
    facts['version_source'] = source

    mine = select_bundles(opts.get('bundles'), opts.get('host_groups'))
    states = [bundle_state(b, in_root(root, opts['bundle_dir']) if opts.get('bundle_dir') else None,
                           in_root(root, opts['staging_dir']) if opts.get('staging_dir') else None,
                           opts.get('bundle_algorithm') or 'sha256') for b in mine]
    if root != '/':
        for state in states:
            state['found'] = [_strip_root(root, t) for t in state['found']]
            state['problems'] = [_strip_root(root, t) for t in state['problems']]
    results.append(eval_bundles(host, states))
    facts['bundles'] = [b['name'] for b in mine]

    rpm_results, rpm_facts = check_rpm(host, opts, rpm, mine)
    results.extend(rpm_results)
    facts['rpm'] = rpm_facts

    threshold = opts.get('disk_threshold')
    if threshold is None:
        threshold = DEFAULT_DISK_THRESHOLD
    usages = []
    for path in opts.get('disk_paths') or ():
        usage = disk_usage(in_root(root, path), statvfs)
        usage['path'] = path
        usages.append(usage)
    results.append(eval_disk_usage(host, usages, threshold))

    wanted = []
    mounts, problem = [], None
    if opts.get('datastores'):
        from ansible_collections.clusterops.upgrade.plugins.module_utils._snapshot import (
            normalize_path,
            read_mounts,
        )
        wanted = [normalize_path(p) for p in opts['datastores']]
        seen = [in_root(root, p) for p in wanted]
        mounts, problem = read_mounts(runner, seen)
        if root != '/':
            mounts = [dict(m, target=_strip_root(root, m['target'])) for m in mounts
                      if m['target'] and (m['target'] + '/').startswith(root.rstrip('/') + '/')]
    results.append(eval_datastores(host, wanted, mounts, problem))
    return results, facts


def _strip_root(root, text):
    prefix = root.rstrip('/')
    return text.replace(prefix + '/', '/') if prefix else text


def validate_host_options(opts):
    """Problems with the module's options, each naming the option (empty: fine)."""
    problems = []
    threshold = opts.get('disk_threshold')
    if threshold is not None and not 0 < threshold <= 100:
        problems.append('disk_threshold must be a percentage above 0 and at most 100, got %s' % _num(threshold))
    for option in ('disk_paths', 'datastores'):
        for index, path in enumerate(opts.get(option) or ()):
            if not isinstance(path, str) or not path.startswith('/'):
                problems.append('%s[%d] must be an absolute path, got %r' % (option, index, path))
    for option in ('version_file', 'rpm_baseline', 'backup_dir', 'bundle_dir', 'staging_dir'):
        value = opts.get(option)
        if value and not value.startswith('/'):
            problems.append('%s must be an absolute path on the host, got %r' % (option, value))
    if opts.get('version_file') and opts.get('version_command'):
        problems.append('version_file and version_command are mutually exclusive; give one of them')
    if opts.get('version_regex'):
        try:
            re.compile(opts['version_regex'])
        except re.error as exc:
            problems.append('version_regex %r is not a valid regular expression: %s' % (opts['version_regex'], exc))
    if opts.get('rpm_baseline') and opts.get('rpm_baseline_content'):
        problems.append('rpm_baseline and rpm_baseline_content are mutually exclusive; give one of them')
    for index, bundle in enumerate(opts.get('bundles') or ()):
        if not isinstance(bundle, dict) or not isinstance(bundle.get('name'), str) or not bundle.get('name'):
            problems.append('bundles[%d] needs name (the bundle file name), got %r' % (index, bundle))
            continue
        if '/' in bundle['name']:
            problems.append('bundles[%d].name must be a file name, not a path: %r' % (index, bundle['name']))
        unknown = sorted(set(bundle) - set(('name', 'checksum', 'groups', 'baseline', 'baseline_member')))
        if unknown:
            problems.append('bundles[%d] (%s) has unknown key(s) %s; known: name, checksum, groups, baseline, '
                            'baseline_member' % (index, bundle['name'], ', '.join(unknown)))
        groups = bundle.get('groups')
        if groups is not None and not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
            problems.append('bundles[%d] (%s).groups must be a list of group names' % (index, bundle['name']))
    return problems
