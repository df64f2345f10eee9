# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight, controller side: the checks that need every host at once.

Run once per play (through the ``preflight_results`` and ``preflight_backup_peers``
filters) from the registered ``preflight_host`` results, the facts of ``pcs_info``
and the controller's ``package_verify`` result. Pure functions: data in, results
out, in the shape ``_report`` consumes. The catalogue (titles, severities,
remedies) is ``_preflight.CHECKS``.
"""

from __future__ import annotations

import collections
import copy
import posixpath

from ansible_collections.clusterops.upgrade.plugins.module_utils import _planner
from ansible_collections.clusterops.upgrade.plugins.module_utils._preflight import (
    CHECKS,
    CLUSTER,
    CONTROLLER,
    EVACUATION_MODES,
    FAIL,
    HA_BACKENDS,
    HOST_CHECK_IDS,
    PASS,
    SKIPPED,
    PreflightError,
    _first_line,
    listing,
    result,
)

_RUNNING_ROLES = ('started', 'promoted', 'unpromoted', 'master', 'slave', 'migrating')
PlannerError = _planner.PlannerError


def _host_state(raw):
    """``('ok'|'unreachable'|'failed'|'missing', detail)`` of a registered result."""
    if not isinstance(raw, dict) or not raw:
        return 'missing', 'the host checks did not run on this host'
    if raw.get('unreachable'):
        return 'unreachable', _first_line(raw.get('msg')) or 'unreachable'
    if raw.get('skipped'):
        return 'missing', 'the host checks were skipped on this host'
    if raw.get('failed') or not isinstance(raw.get('checks'), list):
        return 'failed', _first_line(raw.get('msg')) or 'the module returned no checks'
    return 'ok', ''


def collect_host_results(hosts, host_results):
    """``reachable`` and ``host_checks`` for each host, plus its own host-side
    results (or skipped entries when they could not run). Returns
    ``(results, ok_hosts)``."""
    results = []
    ok_hosts = []
    for host in hosts:
        state, detail = _host_state(host_results.get(host))
        if state == 'unreachable':
            results.append(result('reachable', host, FAIL, 'unreachable: %s' % detail))
            results.extend(result(c, host, SKIPPED, 'not run: the host is unreachable') for c in HOST_CHECK_IDS)
            continue
        if state == 'missing':
            results.append(result('reachable', host, SKIPPED, detail))
            results.extend(result(c, host, SKIPPED, 'not run: %s' % detail) for c in HOST_CHECK_IDS)
            continue
        results.append(result('reachable', host, PASS, 'reachable; the host checks ran'))
        if state == 'failed':
            results.append(result('host_checks', host, FAIL, 'preflight_host failed: %s' % detail))
            results.extend(result(c, host, SKIPPED, 'not run: preflight_host failed (see host_checks)')
                           for c in HOST_CHECK_IDS)
            continue
        ok_hosts.append(host)
        for item in host_results[host]['checks']:
            item = dict(item)
            item['host'] = host
            if item.get('id') in CHECKS:
                item.setdefault('title', CHECKS[item['id']][0])
            results.append(item)
    return results, ok_hosts


def check_version_uniform(hosts, host_results, ok_hosts, expected=None):
    versions = {}
    for host in ok_hosts:
        version = ((host_results[host].get('host_facts') or {}).get('product_version'))
        if version:
            versions[host] = version
    counts = collections.Counter(versions.values())
    reference = None
    if counts:
        best = max(counts.values())
        leaders = sorted(v for v, n in counts.items() if n == best)
        reference = expected if expected in leaders else leaders[0]
    out = []
    for host in hosts:
        if host not in ok_hosts:
            out.append(result('version_uniform', host, SKIPPED, 'not checked: no host checks from this host'))
        elif host not in versions:
            out.append(result('version_uniform', host, SKIPPED, 'no product version was read on this host'))
        elif len(counts) == 1:
            out.append(result('version_uniform', host, PASS, '%s, like all %d host(s) that reported a version'
                              % (versions[host], len(versions))))
        elif versions[host] == reference:
            others = sorted((h for h in versions if versions[h] != reference), key=hosts.index)
            out.append(result('version_uniform', host, PASS, '%s, like %d of %d host(s); differing: %s'
                              % (reference, counts[reference], len(versions), listing(others))))
        else:
            same = sorted((h for h in versions if versions[h] == reference), key=hosts.index)
            out.append(result('version_uniform', host, FAIL, '%s here; %d host(s) run %s (%s)'
                              % (versions[host], len(same), reference, listing(same)), version=reference))
    return out


def _index(items, key):
    return dict((i.get(key), i) for i in items or () if isinstance(i, dict))


def _node_of(host, node_names):
    return (node_names or {}).get(host, host)


def check_cluster_facts(pcs, pcs_host):
    """``(result, facts or None)`` from the registered ``pcs_info`` result."""
    if not pcs_host:
        return result('cluster_facts', CLUSTER, FAIL, 'no control-plane host was reachable to read the cluster '
                      'from (pcs_info)'), None
    if not isinstance(pcs, dict) or pcs.get('unreachable'):
        detail = _first_line((pcs or {}).get('msg')) if isinstance(pcs, dict) else ''
        return result('cluster_facts', CLUSTER, FAIL, '%s became unreachable while reading the cluster%s'
                      % (pcs_host, (': ' + detail) if detail else '')), None
    if pcs.get('failed') or not isinstance(pcs.get('nodes'), list):
        return result('cluster_facts', CLUSTER, FAIL, 'pcs_info failed on %s: %s'
                      % (pcs_host, _first_line(pcs.get('msg')) or 'no nodes in its result')), None
    return result('cluster_facts', CLUSTER, PASS, 'read on %s: %d node(s), %d resource(s), pacemaker %s'
                  % (pcs_host, len(pcs['nodes']), len(pcs.get('resources') or []),
                     pcs.get('pacemaker_version') or 'unknown')), pcs


def _node_problems(node):
    problems = []
    if node.get('online') is False:
        problems.append('offline')
    if node.get('unclean'):
        problems.append('unclean (needs fencing)')
    if node.get('standby'):
        problems.append('in standby' + (' (after a failure)' if node.get('standby_onfail') else ''))
    if node.get('maintenance'):
        problems.append('in maintenance')
    return problems


def check_ha(facts, ha_hosts, vip, node_names=None):
    """``ha_pair_online``, ``ha_quorum``, ``ha_vip``, ``ha_failed_actions``, ``ha_constraints``."""
    nodes = _index(facts.get('nodes'), 'name')
    ha_nodes = [_node_of(h, node_names) for h in ha_hosts]
    out = []

    if not ha_nodes:
        out.append(result('ha_pair_online', CLUSTER, SKIPPED, 'no HA pair in the inventory (preflight_ha_group)'))
    else:
        bad = []
        for name in ha_nodes:
            node = nodes.get(name)
            if node is None:
                bad.append('%s is not a node of the cluster' % name)
            elif node.get('online') is not True:
                bad.append('%s is offline' % name)
        online = [n for n in ha_nodes if nodes.get(n, {}).get('online') is True]
        if bad:
            offline = [n for n in ha_nodes if nodes.get(n, {}).get('online') is not True]
            evidence = '; '.join(bad) + (' (online: %s)' % ', '.join(online) if online else '')
            out.append(result('ha_pair_online', CLUSTER, FAIL, evidence, nodes=' '.join(offline)))
        else:
            out.append(result('ha_pair_online', CLUSTER, PASS, 'online: %s' % ', '.join(ha_nodes)))

    if facts.get('quorum'):
        out.append(result('ha_quorum', CLUSTER, PASS, 'quorate (DC %s)' % (facts.get('dc') or 'unknown')))
    elif not facts.get('dc_present', facts.get('dc')):
        out.append(result('ha_quorum', CLUSTER, FAIL, 'no DC: the node that was asked sees no cluster'))
    else:
        out.append(result('ha_quorum', CLUSTER, FAIL, 'no quorum (DC %s)' % facts.get('dc')))

    resources = _index(facts.get('resources'), 'id')
    res = resources.get(vip)
    if res is None:
        out.append(result('ha_vip', CLUSTER, FAIL, '%s is not a resource of the cluster (preflight_vip_resource)'
                          % vip, vip=vip))
    else:
        where = list(res.get('nodes') or [])
        role = res.get('role') or 'Unknown'
        if str(role).lower() not in _RUNNING_ROLES or not where:
            out.append(result('ha_vip', CLUSTER, FAIL, '%s is %s' % (vip, role), vip=vip))
        elif ha_nodes and not set(where) <= set(ha_nodes):
            out.append(result('ha_vip', CLUSTER, FAIL, '%s runs on %s, not on the HA pair (%s)'
                              % (vip, ', '.join(where), ', '.join(ha_nodes)), vip=vip))
        elif res.get('failed') or res.get('managed') is False:
            out.append(result('ha_vip', CLUSTER, FAIL, '%s is %s on %s' % (
                vip, 'failed' if res.get('failed') else 'unmanaged', ', '.join(where)), vip=vip))
        else:
            out.append(result('ha_vip', CLUSTER, PASS, '%s is %s on %s' % (vip, role, ', '.join(where))))

    failed = [f for f in facts.get('failed_actions') or () if isinstance(f, dict)]
    if failed:
        texts = []
        for f in failed:
            reason = f.get('exitreason') or f.get('exitstatus') or 'rc %s' % f.get('exitcode')
            texts.append('%s %s on %s: %s' % (f.get('resource'), f.get('task'), f.get('node'), reason))
        names = sorted(set(str(f.get('resource')) for f in failed))
        out.append(result('ha_failed_actions', CLUSTER, FAIL, '%d failed action(s): %s' % (len(failed), listing(texts)),
                          commands='; '.join('pcs resource cleanup %s' % n for n in names)))
    else:
        out.append(result('ha_failed_actions', CLUSTER, PASS, 'no failed actions'))

    leftovers = [c for c in facts.get('location_constraints') or ()
                 if isinstance(c, dict) and c.get('kind') in ('cli-ban', 'cli-prefer')]
    known = set(c.get('id') for c in leftovers)
    for kind, key in (('cli-ban', 'cli_bans'), ('cli-prefer', 'cli_prefers')):
        for cid in facts.get(key) or ():
            if cid not in known:
                leftovers.append({'id': cid, 'kind': kind})
                known.add(cid)
    if leftovers:
        texts = []
        for c in leftovers:
            what = c['id']
            if c.get('resource') and c.get('node'):
                if c['kind'] == 'cli-ban':
                    what += ' (%s banned from %s)' % (c['resource'], c['node'])
                else:
                    what += ' (%s preferred on %s)' % (c['resource'], c['node'])
            if c.get('expired'):
                what += ', expired'
            texts.append(what)
        commands = []
        for c in leftovers:
            cmd = ('pcs resource clear %s' % c['resource']) if c.get('resource') else \
                ('pcs constraint delete %s' % c['id'])
            if cmd not in commands:
                commands.append(cmd)
        out.append(result('ha_constraints', CLUSTER, FAIL, '%d left over: %s' % (len(leftovers), listing(texts)),
                          commands='; '.join(commands)))
    else:
        out.append(result('ha_constraints', CLUSTER, PASS, 'no cli-ban or cli-prefer constraints'))
    return out


def check_node_state(hosts, facts, node_names=None):
    nodes = _index(facts.get('nodes'), 'name')
    cluster_maintenance = bool(facts.get('maintenance_mode'))
    out = []
    for host in hosts:
        name = _node_of(host, node_names)
        node = nodes.get(name)
        if node is None:
            out.append(result('node_state', host, SKIPPED, 'not a node of the pacemaker cluster'))
            continue
        problems = _node_problems(node)
        if cluster_maintenance:
            problems.append('the cluster is in maintenance-mode')
        if not problems:
            out.append(result('node_state', host, PASS, 'online, not in standby or maintenance'))
            continue
        commands = []
        if node.get('online') is False:
            commands.append('start the cluster on it (pcs cluster start %s)' % name)
        if node.get('standby'):
            commands.append('pcs node unstandby %s' % name)
        if node.get('maintenance'):
            commands.append('pcs node unmaintenance %s' % name)
        if cluster_maintenance:
            commands.append('pcs property set maintenance-mode=false')
        if node.get('unclean'):
            commands.append('fence or restart %s so the cluster sees it clean' % name)
        evidence = ', '.join(problems)
        if name != host:
            evidence = 'node %s: %s' % (name, evidence)
        out.append(result('node_state', host, FAIL, evidence,
                          commands='; '.join(commands)))
    return out


def _plan_text(plan):
    return ' | '.join(', '.join(batch) for batch in plan['batches'])


def plan_input_from_facts(facts, plan_nodes, aio_nodes=(), target_nodes=()):
    """Planner input from ``pcs_info`` facts, restricted to the nodes to upgrade.

    Nodes outside ``plan_nodes`` and ``target_nodes`` (the control plane) and
    resources that do not run on one of them are left out; ``aio_nodes`` get the
    ``aio`` attribute. ``target_nodes`` (hosts of the plan group outside this
    run, e.g. a ``--limit``) are valid VM targets that are never scheduled: they
    go in as ``upgraded``.
    """
    wanted = set(plan_nodes)
    targets = set(target_nodes or ()) - wanted
    aio = set(aio_nodes or ())
    sub = {'nodes': [], 'resources': []}
    for node in facts.get('nodes') or ():
        if node.get('name') in wanted or node.get('name') in targets:
            node = copy.deepcopy(node)
            attrs = node.setdefault('attributes', {}) or {}
            node['attributes'] = attrs
            attrs['aio'] = 'true' if node['name'] in aio else attrs.get('aio', 'false')
            if node['name'] in targets:
                attrs['upgraded'] = 'true'
            sub['nodes'].append(node)
    for res in facts.get('resources') or ():
        where = res.get('nodes') or []
        if where and set(where) <= wanted | targets:
            sub['resources'].append(res)
    missing = sorted(wanted - set(n['name'] for n in sub['nodes']))
    planner = _planner
    if missing:
        raise planner.PlannerError('host(s) %s to upgrade are not nodes of the cluster' % ', '.join(missing))
    return planner.pcs_facts_to_input(sub)


def check_plan(plan_input, evacuation, headroom=0, max_parallel=None, aio_first=True):
    """``upgrade_plan``: does the planner find a safe plan for ``plan_input``
    (``{hosts, vms}`` as ``upgrade_plan`` takes them)?"""
    planner = _planner
    try:
        plan = planner.plan_upgrade(plan_input.get('hosts') or [], plan_input.get('vms') or [],
                                    evacuation=evacuation, headroom=headroom, max_parallel=max_parallel,
                                    aio_first=aio_first)
    except planner.PlannerError as exc:
        return result('upgrade_plan', CLUSTER, FAIL, '%s: no safe plan: %s' % (evacuation, exc))
    hosts = sum(len(b) for b in plan['batches'])
    return result('upgrade_plan', CLUSTER, PASS, '%s: %d host(s) in %d batch(es) (lower bound %d): %s'
                  % (evacuation, hosts, len(plan['batches']), plan['lower_bound'], _plan_text(plan)),
                  data={'batches': plan['batches'], 'lower_bound': plan['lower_bound']})


def running_vms_from_facts(facts):
    """``{node: [VM ids]}``: running resources with utilization (what the planner counts as VMs)."""
    by_node = collections.defaultdict(list)
    for res in facts.get('resources') or ():
        if res.get('utilization') and str(res.get('role', '')).lower() in _RUNNING_ROLES:
            for node in res.get('nodes') or ():
                by_node[node].append(res['id'])
    return by_node


def running_vms_from_input(plan_input):
    by_node = collections.defaultdict(list)
    for vm in (plan_input or {}).get('vms') or ():
        if isinstance(vm, dict) and vm.get('host'):
            by_node[vm['host']].append(vm.get('name'))
    return by_node


def check_running_vms(plan_hosts, by_node, node_names=None):
    """``running_vms`` for manual evacuation: every host to upgrade must be empty."""
    out = []
    for host in plan_hosts:
        vms = sorted(by_node.get(_node_of(host, node_names), []))
        if vms:
            out.append(result('running_vms', host, FAIL, '%d VM(s) running: %s' % (len(vms), listing(vms))))
        else:
            out.append(result('running_vms', host, PASS, 'no VMs running'))
    return out


def check_bundle_verified(verify, files, manifest, bundle_dir=None, glob=None, unbundled=()):
    """``bundle_verified`` from the registered ``package_verify`` result.

    Fails when a bundle does not match the vendor manifest, when the bundle
    directory holds no bundle at all, and when a host has no bundle meant for it
    (``unbundled``: the hosts whose groups no bundle maps to)."""
    if not files:
        if bundle_dir:
            return result('bundle_verified', CONTROLLER, FAIL, 'no bundle matching %s in %s'
                          % (glob or '*', bundle_dir),
                          remedy='put the vendor bundles and their SHA256SUMS in %s (preflight_bundle_dir), or name '
                                 'them in preflight_bundle_files' % bundle_dir)
        return result('bundle_verified', CONTROLLER, SKIPPED,
                      'no bundles configured (preflight_bundle_files or preflight_bundle_dir)')
    if not manifest:
        return result('bundle_verified', CONTROLLER, FAIL, 'no vendor checksum file to verify %s against '
                      '(preflight_bundle_manifest, or SHA256SUMS in preflight_bundle_dir)'
                      % ', '.join(posixpath.basename(f) for f in files),
                      remedy='put the vendor checksum file next to the bundles, or name it in '
                             'preflight_bundle_manifest')
    if not isinstance(verify, dict) or verify.get('skipped'):
        return result('bundle_verified', CONTROLLER, FAIL, 'the bundles were not verified')
    entries = verify.get('files')
    if not isinstance(entries, list):
        return result('bundle_verified', CONTROLLER, FAIL, 'package_verify failed: %s'
                      % (_first_line(verify.get('msg')) or 'no result'))
    bad = [f for f in entries if f.get('status') != 'ok']
    names = [posixpath.basename(f.get('path') or '') for f in entries]
    problems = ['%s: %s (%s)' % (f.get('path'), f.get('status'), f.get('detail')) for f in bad]
    if unbundled:
        problems.append('no bundle is meant for %s (none of %s maps to its groups: preflight_bundle_group_map)'
                        % (listing(unbundled), ', '.join(names)))
    if problems:
        remedy = None
        if not bad:
            remedy = ('add the bundle for the groups of %s, or map a bundle to them in preflight_bundle_group_map'
                      % listing(unbundled))
        return result('bundle_verified', CONTROLLER, FAIL, '; '.join(problems), remedy=remedy,
                      data={'files': entries, 'unbundled_hosts': list(unbundled)})
    return result('bundle_verified', CONTROLLER, PASS, '%d bundle(s) match %s: %s'
                  % (len(entries), manifest, ', '.join(names)), data={'files': entries})


def unbundled_hosts(ok_hosts, host_results):
    """The hosts whose checks ran but to which no bundle was meant."""
    return [h for h in ok_hosts
            if not ((host_results[h].get('host_facts') or {}).get('bundles'))]


def annotate_fixes(results, fixes):
    """Add what ``preflight_fix_backups`` did to the ``rpm_backups`` results."""
    if not fixes:
        return results
    out = []
    for item in results:
        fix = fixes.get(item['host']) if item['id'] == 'rpm_backups' else None
        if fix:
            item = dict(item)
            note = []
            if fix.get('copied'):
                note.append('%s %s' % ('would copy' if fix.get('check_mode') else 'copied', ', '.join(
                    '%s from %s' % (c['file'], c['peer']) for c in fix['copied'])))
            if fix.get('unfixable'):
                note.append('no peer holds %s' % ', '.join(fix['unfixable']))
            if fix.get('error'):
                note.append('copying failed: %s' % _first_line(fix['error']))
            if note:
                item['evidence'] = '%s [fix from peers: %s]' % (item['evidence'], '; '.join(note))
        out.append(item)
    return out


def backup_peers(hosts, host_results):
    """For each host with missing backup rpms, a peer for each file.

    A peer is another host whose host checks ran against the same baseline,
    whose backups were read, and which does not miss that file. Returns
    ``{host: {'copies': [{package, file, peer}], 'unfixable': [file]}}`` for the
    hosts that miss something.
    """
    info = {}
    for host in hosts:
        raw = host_results.get(host)
        if _host_state(raw)[0] != 'ok':
            continue
        rpm = (raw.get('host_facts') or {}).get('rpm')
        if rpm and rpm.get('backups_checked'):
            info[host] = (rpm.get('baseline_source'), set(m['file'] for m in rpm.get('missing_backups') or ()),
                          rpm.get('missing_backups') or [])
    out = {}
    for host in hosts:
        if host not in info or not info[host][2]:
            continue
        source, _files, missing = info[host]
        entry = {'copies': [], 'unfixable': []}
        for package in missing:
            peer = next((h for h in hosts if h != host and h in info and info[h][0] == source
                         and package['file'] not in info[h][1]), None)
            if peer is None:
                entry['unfixable'].append(package['file'])
            else:
                entry['copies'].append({'package': package, 'file': package['file'], 'peer': peer})
        out[host] = entry
    return out


def _norm_options(inputs):
    evacuation = inputs.get('evacuation') or 'migrate'
    if evacuation not in EVACUATION_MODES:
        raise PreflightError('evacuation must be one of %s, got %r' % (', '.join(EVACUATION_MODES), evacuation))
    backend = inputs.get('ha_backend') or 'pacemaker'
    if backend not in HA_BACKENDS:
        raise PreflightError('ha_backend must be one of %s, got %r' % (', '.join(HA_BACKENDS), backend))
    hosts = inputs.get('hosts')
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise PreflightError('hosts must be the list of the play\'s host names, got %r' % (hosts,))
    host_results = inputs.get('host_results')
    if host_results is None:
        host_results = {}
    if not isinstance(host_results, dict):
        raise PreflightError('host_results must map host names to the registered preflight_host results')
    return evacuation, backend, hosts, host_results


def evaluate(inputs):
    """Every result of the run: host-side results collected per host, then the
    controller-side checks. ``inputs`` (the role builds it):

    ``hosts`` (play hosts, in order), ``host_results`` ({host: registered
    preflight_host result}), ``expected_version``, ``ha_backend``
    (pacemaker|none), ``pcs`` (registered pcs_info result) and ``pcs_host``,
    ``ha_hosts``, ``vip_resource``, ``node_names`` ({host: pacemaker node}),
    ``plan_hosts``, ``plan_targets`` (the whole plan group: hosts outside the
    play are VM targets, never scheduled), ``plan_input`` ({hosts, vms} from the inventory; otherwise
    the pcs facts are used), ``aio_hosts``, ``evacuation``, ``plan_headroom``,
    ``plan_max_parallel``, ``plan_aio_first``, ``bundle_files``,
    ``bundle_manifest``, ``bundle_dir`` and ``bundle_glob`` (where the bundles
    were looked for, when ``bundle_files`` was not given), ``bundle_verify``
    (registered package_verify result),
    ``fixes`` ({host: {copied, unfixable, error, check_mode}}).
    """
    evacuation, backend, hosts, host_results = _norm_options(inputs)
    node_names = inputs.get('node_names') or {}
    results, ok_hosts = collect_host_results(hosts, host_results)
    results = annotate_fixes(results, inputs.get('fixes'))
    results.extend(check_version_uniform(hosts, host_results, ok_hosts, inputs.get('expected_version')))

    plan_hosts = [h for h in inputs.get('plan_hosts') or () if h in hosts]
    facts = None
    if backend == 'pacemaker':
        first, facts = check_cluster_facts(inputs.get('pcs'), inputs.get('pcs_host'))
        results.append(first)
        if facts is None:
            why = 'not checked: no cluster state (see cluster_facts)'
            for check_id in ('ha_pair_online', 'ha_quorum', 'ha_vip', 'ha_failed_actions', 'ha_constraints'):
                results.append(result(check_id, CLUSTER, SKIPPED, why))
            results.extend(result('node_state', h, SKIPPED, why) for h in hosts)
        else:
            results.extend(check_ha(facts, list(inputs.get('ha_hosts') or ()), inputs.get('vip_resource') or
                                    'lb_float_ip', node_names))
            results.extend(check_node_state(hosts, facts, node_names))

    plan_input = inputs.get('plan_input')
    if plan_input:
        results.append(check_plan(plan_input, evacuation, inputs.get('plan_headroom') or 0,
                                  inputs.get('plan_max_parallel'), inputs.get('plan_aio_first', True)))
    elif not plan_hosts:
        results.append(result('upgrade_plan', CLUSTER, SKIPPED, 'no hosts to plan (preflight_plan_group has no '
                              'host in this play)'))
    elif facts is not None:
        try:
            plan_input = plan_input_from_facts(facts, [_node_of(h, node_names) for h in plan_hosts],
                                               [_node_of(h, node_names) for h in inputs.get('aio_hosts') or ()],
                                               [_node_of(h, node_names) for h in inputs.get('plan_targets') or ()
                                                if h not in plan_hosts])
        except PlannerError as exc:
            results.append(result('upgrade_plan', CLUSTER, FAIL, '%s: no safe plan: %s' % (evacuation, exc)))
        else:
            results.append(check_plan(plan_input, evacuation, inputs.get('plan_headroom') or 0,
                                      inputs.get('plan_max_parallel'), inputs.get('plan_aio_first', True)))
    elif backend == 'pacemaker':
        results.append(result('upgrade_plan', CLUSTER, SKIPPED, 'not checked: no cluster state (see cluster_facts)'))
    else:
        results.append(result('upgrade_plan', CLUSTER, FAIL, 'no VM placement to plan from: with '
                              'preflight_ha_backend=none set preflight_plan_input (hosts and VMs as '
                              'clusterops.upgrade.upgrade_plan takes them)'))
    if evacuation == 'manual':
        if inputs.get('plan_input'):
            results.extend(check_running_vms(plan_hosts, running_vms_from_input(inputs['plan_input']), node_names))
        elif facts is not None:
            results.extend(check_running_vms(plan_hosts, running_vms_from_facts(facts), node_names))
        else:
            results.extend(result('running_vms', h, SKIPPED, 'not checked: no VM placement') for h in plan_hosts)

    files = inputs.get('bundle_files')
    results.append(check_bundle_verified(inputs.get('bundle_verify'), files, inputs.get('bundle_manifest'),
                                         inputs.get('bundle_dir'), inputs.get('bundle_glob'),
                                         unbundled_hosts(ok_hosts, host_results) if files else ()))
    return results
