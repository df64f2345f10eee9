# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pcs_info, pcs_ban, pcs_move and maintenance_mode against the lab's real
corosync/pacemaker cluster (tests/lab, docs/lab.md), through ansible-playbook and
the lab inventory.

* The four-step pattern (check mode -> apply -> check mode -> apply) inside one
  playbook run per scenario: the check-mode prediction (pacemaker's own dry run)
  equals what the apply did, and the second round changes nothing.
* What the cluster really looks like is read independently with crm_mon and
  cibadmin on the nodes (podman exec), not from the modules' own results.
* Every test restores what it changed in ``finally`` (bans and prefers it created,
  standby, node maintenance, maintenance-mode, killed nodes, the VIP's node) and
  fails when the lab is not as it found it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker as P

ROOT = Path(__file__).resolve().parents[2]
LABCTL = ROOT / 'tests' / 'lab' / 'labctl'
INVENTORY = ROOT / 'inventories' / 'lab' / 'hosts.yml'
PLAYBOOKS = ROOT / 'tests' / 'integration' / 'playbooks' / 'pacemaker'
ANSIBLE_PLAYBOOK = ROOT / '.venv' / 'bin' / 'ansible-playbook'
CONTROLLERS = ('ctl-a', 'ctl-b')

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='needs .venv (make deps)')]


class Lab(object):
    """Runs commands on lab nodes (podman exec through labctl) and playbooks against them."""

    def __init__(self, tmp):
        self.tmp = tmp

    def sh(self, node, *argv, check=True):
        proc = subprocess.run([str(LABCTL), 'exec', node] + [str(a) for a in argv], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=180, check=False, env=dict(os.environ, LANG='C', LC_ALL='C'))
        if check and proc.returncode != 0:
            raise AssertionError('%s on %s failed (rc %d): %s %s'
                                 % (argv, node, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def labctl(self, *argv):
        proc = subprocess.run([str(LABCTL)] + list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout
        return proc.stdout

    def observer(self):
        for node in CONTROLLERS:
            if self.sh(node, 'true', check=False).returncode == 0:
                return node
        raise AssertionError('no controller answers')

    def mon(self, node=None):
        return P.parse_crm_mon(self.sh(node or self.observer(), 'crm_mon', '--one-shot', '--inactive',
                                       '--output-as=xml').stdout)

    def cib(self, node=None):
        return P.parse_cib(self.sh(node or self.observer(), 'cibadmin', '--query').stdout)

    def snapshot(self, node=None):
        """crm_mon and the whole CIB with one exec: ``(mon, cib)`` parsed."""
        out = self.sh(node or self.observer(), 'sh', '-c',
                      'crm_mon --one-shot --inactive --output-as=xml && echo @@CIB@@ && cibadmin --query').stdout
        mon_text, cib_text = out.split('@@CIB@@\n', 1)
        return P.parse_crm_mon(mon_text), P.parse_cib(cib_text)

    def script(self, node, argvs):
        """Several commands with one exec (each argv quoted), stopping at the first failure."""
        self.sh(node, 'sh', '-c', ' && '.join(' '.join(shlex.quote(a) for a in argv) for argv in argvs))

    def constraint_ids(self):
        return sorted(c['id'] for c in self.cib()['location_constraints'])

    def delete_constraint(self, cid):
        self.sh(self.observer(), *P.argv_delete_location(_BINS, cid), check=False)

    def settle(self, seconds=120):
        self.sh(self.observer(), 'crm_resource', '--wait', '--timeout', '%ds' % seconds, check=False)

    def play(self, name, check=False, **extra):
        out = self.tmp / ('%s-%s.json' % (name, uuid.uuid4().hex[:8]))
        extra['pm_out'] = str(out)
        extra_file = self.tmp / ('extra-%s.json' % uuid.uuid4().hex[:8])
        extra_file.write_text(json.dumps(extra))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / 'collections'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_PIPELINING='1', ANSIBLE_RETRY_FILES_ENABLED='0', LANG='C.UTF-8')
        argv = [str(ANSIBLE_PLAYBOOK), '-i', str(INVENTORY), str(PLAYBOOKS / (name + '.yml')),
                '-e', '@%s' % extra_file]
        if check:
            argv.append('--check')
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=600, check=False)
        print('%s %s: %.1f s' % (name, extra, time.monotonic() - started))
        assert proc.returncode == 0, proc.stdout[-6000:]
        return json.loads(out.read_text())


_BINS = dict((t, t) for t in P.TOOLS)


def calls(lab, *pm_calls, **extra):
    """Run calls.yml: module calls in order in one playbook run; their results."""
    return lab.play('calls', pm_calls=[{'module': m, 'args': a} for m, a in pm_calls], **extra)


def where(state, rid):
    return P.where(state, rid)


def vms_on(state, node):
    return sorted(r['id'] for r in state['resources'] if r['id'].startswith('vm-') and node in r['nodes'])


def all_vms_started(state):
    return sorted(r['id'] for r in state['resources'] if r['id'].startswith('vm-') and not r['active'])


class Baseline(object):
    """What the lab looked like before a test, and how to put it back: constraints,
    standby, node maintenance, the maintenance-mode property, and where every
    resource ran (VMs a killed node lost, the VIP group)."""

    def __init__(self, lab):
        self.lab = lab
        mon, cib = lab.snapshot()
        self.placement = placement_of(mon)
        self.standby = set(n['name'] for n in mon['nodes'] if n['standby'])
        self.node_maintenance = set(n['name'] for n in mon['nodes'] if n['maintenance'])
        self.properties = dict(cib['properties'])
        self.constraints = set(c['id'] for c in cib['location_constraints'])

    def differences(self, mon, cib):
        found = []
        extra = set(c['id'] for c in cib['location_constraints']) - self.constraints
        if extra:
            found.append('constraints %s' % sorted(extra))
        if set(n['name'] for n in mon['nodes'] if n['standby']) != self.standby:
            found.append('standby')
        if set(n['name'] for n in mon['nodes'] if n['maintenance']) != self.node_maintenance:
            found.append('node maintenance')
        if cib['properties'].get('maintenance-mode') != self.properties.get('maintenance-mode'):
            found.append('maintenance-mode')
        if placement_of(mon) != self.placement:
            found.append('placement')
        return found

    def restore(self):
        lab = self.lab
        node = lab.observer()
        mon, cib = lab.snapshot(node)
        if not self.differences(mon, cib):
            return
        undo = [P.argv_delete_location(_BINS, cid)
                for cid in sorted(set(c['id'] for c in cib['location_constraints']) - self.constraints)]
        for n in mon['nodes']:
            if n['standby'] and n['name'] not in self.standby:
                undo.append(P.argv_node_attribute(_BINS, n['name'], 'standby', None))
            if n['maintenance'] and n['name'] not in self.node_maintenance:
                undo.append(P.argv_node_attribute(_BINS, n['name'], 'maintenance', None))
        if cib['properties'].get('maintenance-mode') != self.properties.get('maintenance-mode'):
            undo.append(P.argv_property(_BINS, 'maintenance-mode', self.properties.get('maintenance-mode')))
        if undo:
            lab.script(node, undo)
            lab.settle()
            mon, cib = lab.snapshot(node)
        if placement_of(mon) != self.placement:
            put_back(lab, self.placement, placement_of(mon))
            mon, cib = lab.snapshot(node)
        assert self.differences(mon, cib) == [], 'the lab was not restored'


def placement_of(mon):
    """{resource: nodes} of the active primitives."""
    return dict((r['id'], r['nodes']) for r in mon['resources'] if r['active'])


def put_back(lab, wanted, now):
    """Move resources back where they were with temporary cli-prefer constraints (the
    mechanism of pcs_move), all in one transition, then delete the constraints."""
    movers = sorted(rid for rid, nodes in wanted.items() if len(nodes) == 1 and now.get(rid) != nodes)
    groups = set()
    for rid in list(movers):
        if rid in ('lb_float_ip', 'mgmt-api'):
            movers.remove(rid)
            groups.add('mgmt')
    targets = [(rid, wanted[rid][0]) for rid in movers] + [('mgmt', wanted['lb_float_ip'][0]) for g in groups]
    observer = lab.observer()
    lab.script(observer, [P.argv_create_prefer(_BINS, rid, node) for rid, node in targets])
    try:
        lab.settle()
    finally:
        lab.script(observer, [P.argv_delete_location(_BINS, P.prefer_id(rid)) for rid, node in targets])
    lab.settle()


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    if not INVENTORY.exists():
        pytest.skip('no lab inventory (make lab-up)')
    proc = subprocess.run([str(LABCTL), 'is-up'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.skip('the lab is not up and healthy: %s' % proc.stdout.strip())
    lab = Lab(tmp_path_factory.mktemp('pacemaker'))
    leftovers = [c for c in lab.constraint_ids() if c.startswith('cli-')]
    assert leftovers == [], 'the lab has leftover cli constraints %s; clean it before testing' % leftovers
    return lab


@pytest.fixture
def baseline(lab):
    base = Baseline(lab)
    yield base
    base.restore()


def other(node):
    return 'ctl-b' if node == 'ctl-a' else 'ctl-a'


# ---------------------------------------------------------------------------

def test_info_reads_the_real_cluster(lab):
    facts = lab.play('info')
    assert facts['changed'] is False
    assert [n['name'] for n in facts['nodes']] == ['cmp-1', 'cmp-2', 'cmp-3', 'cmp-4', 'ctl-a', 'ctl-b']
    assert (facts['quorum'], facts['dc_present'], facts['pcs_version']) == (True, True, '0.11.5')
    assert facts['pacemaker_version'].startswith('2.1.5')
    assert facts['resource_defaults']['resource-stickiness'] == '100'
    assert facts['cluster_properties']['placement-strategy'] == 'utilization'
    cmp1 = [n for n in facts['nodes'] if n['name'] == 'cmp-1'][0]
    assert (cmp1['attributes']['clusterops-role'], cmp1['utilization']) == ('aio', {'memory': '16384'})
    vms = [r for r in facts['resources'] if r['id'].startswith('vm-')]
    assert len(vms) == 12
    assert [v['allow_migrate'] for v in vms if v['id'] == 'vm-04'] == [False]
    assert sorted(v['utilization']['memory'] for v in vms)[:2] == ['2048', '2048']
    lb = facts['resources'][0]
    assert (lb['id'], lb['group'], lb['agent'], lb['nodes']) == ('lb_float_ip', 'mgmt', 'ocf:heartbeat:IPaddr2',
                                                                 where(lab.mon(), 'lb_float_ip'))


def test_ban_four_steps_then_clear_keeps_a_user_constraint(lab, baseline):
    vip = where(lab.mon(), 'mgmt')[0]
    peer = other(vip)
    user = '<rsc_location id="clusterops-test-user-vip" rsc="lb_float_ip" node="cmp-1" score="-INFINITY"/>'
    lab.sh(lab.observer(), 'cibadmin', '--create', '--scope', 'constraints', '--xml-text', user)
    cid = 'cli-ban-lb_float_ip-on-%s' % vip
    steps = lab.play('ban', pm_resource='lb_float_ip', pm_node=vip)
    check, apply, check2, apply2 = steps
    assert [s['changed'] for s in steps] == [True, True, False, False]
    assert check['constraints_created'] == apply['constraints_created'] == [cid]
    assert check['resource_nodes'] == apply['resource_nodes'] == [peer]
    assert sorted(m['id'] for m in check['moved_resources']) == sorted(m['id'] for m in apply['moved_resources']) \
        == ['lb_float_ip', 'mgmt-api']
    assert (check['commands'], apply['commands']) == ([], ['/usr/sbin/crm_resource --ban --resource lb_float_ip --node %s'
                                                           % vip])
    assert check['diff']['after'] == apply['diff']['after']
    assert (check2['constraints_pre_existing'], apply2['constraints_pre_existing']) == ([cid], [cid])
    assert check2['diff']['before'] == check2['diff']['after']
    assert (apply2['commands'], apply2['journal_entries']) == ([], [])
    mon = lab.mon()
    assert where(mon, 'lb_float_ip') == where(mon, 'mgmt-api') == [peer]
    assert cid in lab.constraint_ids()

    cleared = lab.play('ban', pm_resource='lb_float_ip', pm_node=vip, pm_state='absent')
    assert [s['changed'] for s in cleared] == [True, True, False, False]
    assert cleared[0]['constraints_removed'] == cleared[1]['constraints_removed'] == [cid]
    ids = lab.constraint_ids()
    assert cid not in ids
    assert 'clusterops-test-user-vip' in ids
    assert where(lab.mon(), 'lb_float_ip') == [peer]


def test_move_four_steps_leaves_no_prefer(lab, baseline):
    vip = where(lab.mon(), 'mgmt')[0]
    target = other(vip)
    steps = lab.play('move', pm_resource='mgmt', pm_node=target, pm_wait=90)
    check, apply, check2, apply2 = steps
    assert [s['changed'] for s in steps] == [True, True, False, False]
    assert check['resource_nodes'] == apply['resource_nodes'] == [target]
    assert apply['resource_nodes_before'] == [vip]
    assert (apply['prefer_created'], apply['prefer_removed']) == ('cli-prefer-mgmt', 'cli-prefer-mgmt')
    assert check['planned_commands'] == apply['commands']
    assert apply['diff']['before'] == apply['diff']['after']
    assert (check2['resource_nodes'], apply2['commands']) == ([target], [])
    assert where(lab.mon(), 'mgmt') == [target]
    assert [c for c in lab.constraint_ids() if c.startswith('cli-')] == []


def test_standby_evacuates_and_unstandby_returns(lab, baseline):
    node = 'cmp-2'
    before = lab.mon()
    on_node = vms_on(before, node)
    assert on_node, 'no VM on %s to evacuate' % node
    steps = lab.play('maintenance', pm_backend='pacemaker_node', pm_node=node, pm_wait=180)
    check, apply, check2, apply2 = steps
    assert [s['changed'] for s in steps] == [True, True, False, False]
    assert (check['would_stop'], apply['stopped_resources'], apply['remaining_resources']) == ([], [], [])
    predicted = sorted(m['id'] for m in check['moved_resources'])
    moved = sorted(m['id'] for m in apply['moved_resources'])
    assert predicted == moved
    assert set(on_node) <= set(moved)
    assert (apply['enabled_before'], apply['enabled'], check2['enabled'], apply2['enabled']) == (
        False, True, True, True)
    assert apply['journal_entries'] == [{'kind': 'standby', 'id': 'pacemaker_node:cmp-2', 'node': 'cmp-2',
                                         'details': {'backend': 'pacemaker_node'}}]
    mon = lab.mon()
    assert vms_on(mon, node) == []
    assert all_vms_started(mon) == []
    assert P.find_node(mon, node)['standby'] is True

    back = lab.play('maintenance', pm_backend='pacemaker_node', pm_node=node, pm_state='disabled', pm_wait=120)
    assert [s['changed'] for s in back] == [True, True, False, False]
    assert (back[1]['enabled'], back[1]['stopped_resources'], back[1]['journal_entries']) == (False, [], [])
    mon = lab.mon()
    assert P.find_node(mon, node)['standby'] is False
    assert all_vms_started(mon) == []


def test_cluster_maintenance_toggles(lab, baseline):
    steps = lab.play('maintenance', pm_backend='pacemaker_cluster')
    assert [s['changed'] for s in steps] == [True, True, False, False]
    assert steps[1]['diff'] == {'before': 'maintenance-mode not set (default false)\n',
                                'after': 'maintenance-mode=true\n'}
    mon = lab.mon()
    assert mon['maintenance_mode'] is True
    assert [r['id'] for r in mon['resources'] if r['managed']] == []
    steps = lab.play('maintenance', pm_backend='pacemaker_cluster', pm_state='disabled')
    assert [s['changed'] for s in steps] == [True, True, False, False]
    assert lab.mon()['maintenance_mode'] is False


def test_ban_with_lifetime_expires(lab, baseline):
    """A ban with PT15S: it moves the group off the node; after its end pcs_info marks it
    expired and pacemaker no longer honours it (the group can be moved back onto the
    node), while the constraint stays in the CIB until pcs_ban state=absent removes it."""
    vip = where(lab.mon(), 'mgmt')[0]
    peer = other(vip)
    cid = 'cli-ban-mgmt-on-%s' % vip
    banned, info, paused, info2, back, cleared = calls(
        lab, ('ban', {'resource': 'mgmt', 'node': vip, 'lifetime': 'PT15S'}), ('info', {}),
        ('pause', {'seconds': 20}), ('info', {}), ('move', {'resource': 'mgmt', 'node': vip, 'wait': 90}),
        ('ban', {'resource': 'mgmt', 'node': vip, 'state': 'absent'}))
    assert banned.get('failed') is not True, banned
    assert (banned['constraints_created'], banned['resource_nodes']) == ([cid], [peer])
    end = P.parse_time(banned['lifetime_end'])
    # in force: the group left the node
    assert [r['nodes'] for r in info['resources'] if r['id'] == 'mgmt-api'] == [[peer]]
    assert [c['expires_at'] for c in info['location_constraints'] if c['id'] == cid] == [P.format_utc(end)]
    # 20 s later: expired, still in the CIB
    con = [c for c in info2['location_constraints'] if c['id'] == cid]
    assert [(c['kind'], c['node'], c['expired']) for c in con] == [('cli-ban', vip, True)]
    # pacemaker ignores it: the group goes back onto the formerly banned node
    assert back.get('failed') is not True, back
    assert back['resource_nodes'] == [vip]
    assert (cleared['changed'], cleared['constraints_removed']) == (True, [cid])
    assert where(lab.mon(), 'mgmt') == [vip]
    assert cid not in lab.constraint_ids()


def test_errors_name_the_problem(lab, baseline):
    unknown_resource, unknown_node, unknown_standby_node = calls(
        lab, ('ban', {'resource': 'lb_float_ip_typo', 'node': 'ctl-a'}), ('move', {'resource': 'mgmt', 'node': 'ctl-c'}),
        ('maintenance', {'backend': 'pacemaker_node', 'node': 'cmp-9'}))
    assert (unknown_resource['failed'], unknown_resource['changed']) == (True, False)
    assert unknown_resource['msg'].startswith(
        "resource 'lb_float_ip_typo' is not in the cluster; known resources, groups and clones: lb_float_ip, mgmt, "
        "mgmt-api, vm-01")
    assert unknown_node['msg'] == ("node 'ctl-c' is not a node of this cluster; known nodes: cmp-1, cmp-2, cmp-3, "
                                   "cmp-4, ctl-a, ctl-b")
    assert unknown_standby_node['msg'].startswith("node 'cmp-9' is not a node of this cluster")


def test_offline_node_is_refused(lab, baseline):
    lab.labctl('kill', 'cmp-4')
    try:
        ban, move = calls(lab, ('ban', {'resource': 'vm-04', 'node': 'cmp-4'}),
                          ('move', {'resource': 'vm-01', 'node': 'cmp-4'}))
        assert ban['failed'] is True
        assert ban['msg'] == ('node cmp-4 is offline; a ban on it is refused while it is not a clean cluster '
                              'member: bring it back first (pcs cluster start cmp-4) and check crm_mon')
        assert move['msg'].startswith('node cmp-4 is offline; a move to it is refused')
        assert [c for c in lab.constraint_ids() if c.startswith('cli-')] == []
    finally:
        lab.labctl('start', 'cmp-4')
        lab.settle()


def test_no_quorum_is_refused(lab, baseline):
    """Three of six nodes down: the rest has no quorum; a ban is refused and nothing is
    written."""
    down = ['cmp-2', 'cmp-3', 'cmp-4']
    try:
        for node in down:
            lab.labctl('kill', node, '--no-wait')
        deadline = time.monotonic() + 60
        while lab.mon('ctl-a')['quorum'] and time.monotonic() < deadline:
            time.sleep(1)
        result, = calls(lab, ('ban', {'resource': 'mgmt', 'node': 'ctl-b'}))
        assert result['failed'] is True
        assert result['msg'].endswith('has no quorum; refusing to change the cluster. Restore quorum first '
                                      '(corosync-quorumtool -s shows the votes), or set allow_no_quorum: true if '
                                      'you are sure')
        assert [c for c in lab.constraint_ids() if c.startswith('cli-')] == []
    finally:
        for node in down:
            lab.labctl('start', node, '--no-wait')
        lab.labctl('wait', '--timeout', '180')
        lab.settle()


SLOW = 'clusterops-test-slow'
SLOW_XML = ('<primitive id="{0}" class="ocf" provider="pacemaker" type="Dummy"><instance_attributes id="{0}-ia">'
            '<nvpair id="{0}-ia-op_sleep" name="op_sleep" value="5"/></instance_attributes><operations>'
            '<op id="{0}-start" name="start" interval="0s" timeout="30s"/>'
            '<op id="{0}-stop" name="stop" interval="0s" timeout="30s"/>'
            '<op id="{0}-monitor" name="monitor" interval="60s" timeout="30s"/></operations></primitive>'
            ).format(SLOW)


def test_wait_exceeded_says_where_things_are(lab, baseline):
    """A Dummy whose every operation takes 5 s, banned with wait=2: the task fails
    naming where the resource still is, and the ban stays for state=absent."""
    observer = lab.observer()
    lab.sh(observer, 'cibadmin', '--create', '--scope', 'resources', '--xml-text', SLOW_XML)
    try:
        lab.settle()
        node = where(lab.mon(), SLOW)[0]
        cid = 'cli-ban-%s-on-%s' % (SLOW, node)
        result, cleared = calls(lab, ('ban', {'resource': SLOW, 'node': node, 'wait': 2}),
                                ('ban', {'resource': SLOW, 'state': 'absent', 'wait': 60}))
        assert result['failed'] is True
        # crm_mon shows the pending stop as role Stopping (record-pending), or Started just before it
        assert re.fullmatch(r'%s did not leave %s - wait=2s ran out: %s is (Started|Stopping) on %s\. The ban '
                            r'%s stays in place \(pcs_ban state=absent removes it\)'
                            % (SLOW, node, SLOW, node, cid), result['msg']), result['msg']
        assert (result['changed'], result['constraints_created'], result['settled']) == (True, [cid], False)
        assert cleared['constraints_removed'] == [cid]
    finally:
        lab.sh(observer, 'pcs', 'resource', 'delete', SLOW, '--force', check=False)
        lab.settle()
    assert SLOW not in [r['id'] for r in lab.mon()['resources']]


def test_guard_releases_exactly_what_it_created(lab, baseline):
    vip = where(lab.mon(), 'mgmt')[0]
    peer = other(vip)
    root = '/tmp/clusterops-test-journal-%s' % uuid.uuid4().hex[:8]
    cid = 'cli-ban-lb_float_ip-on-%s' % peer
    try:
        seen = lab.play('guard', pm_host=peer, pm_run_id='guard-1', pm_journal_root=root, pm_fail=True,
                        pm_maintenance=True)
        assert seen['failed'] is True
        assert (seen['freeze']['changed'], seen['freeze']['constraints_created']) == (True, [cid])
        standby = 'pacemaker_node:%s' % peer
        assert [(e['kind'], e['id'], e['undone_at']) for e in seen['frozen']['journal']['created']] == [
            ('ban', cid, None), ('standby', standby, None)]
        # newest first: the standby is left before the ban is removed
        assert seen['released'] == [standby, cid]
        assert seen['journal_after']['outstanding'] == []
        assert [e['id'] for e in seen['journal_after']['journal']['created'] if e['undone_at']] == [cid, standby]
        mon = lab.mon()
        assert cid not in lab.constraint_ids()
        assert where(mon, 'mgmt') == [vip]
        assert P.find_node(mon, peer)['standby'] is False
    finally:
        lab.sh(peer, 'rm', '-rf', root, check=False)


def test_guard_never_removes_an_operators_ban(lab, baseline):
    vip = where(lab.mon(), 'mgmt')[0]
    peer = other(vip)
    root = '/tmp/clusterops-test-journal-%s' % uuid.uuid4().hex[:8]
    cid = 'cli-ban-lb_float_ip-on-%s' % peer
    lab.sh(lab.observer(), 'crm_resource', '--ban', '--resource', 'lb_float_ip', '--node', peer)
    try:
        seen = lab.play('guard', pm_host=peer, pm_run_id='guard-2', pm_journal_root=root)
        assert seen['failed'] is False
        assert (seen['freeze']['changed'], seen['freeze']['constraints_pre_existing']) == (False, [cid])
        assert seen['frozen']['journal']['created'] == []
        assert seen['released'] == []
        assert cid in lab.constraint_ids()
    finally:
        lab.delete_constraint(cid)
        lab.sh(peer, 'rm', '-rf', root, check=False)
