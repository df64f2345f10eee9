# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_pacemaker: the parsers on outputs recorded from the lab cluster (fixtures/pacemaker,
see its README), the pure decisions, and the Pacemaker backend with its command seam
answered by pacemaker_fake.FakeCluster: exact argv sequences, check mode touching only
a copy of the CIB, refusals that change nothing, waits that expire."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker as P
from ansible_collections.clusterops.upgrade.plugins.module_utils._planner import pcs_facts_to_input

from pacemaker_fake import (
    BINS,
    MON,
    QUERY,
    FakeClock,
    FakeCluster,
    ban_xml,
    fixture,
    full_cib,
    prefer_xml,
)

NOW = datetime.datetime(2026, 11, 22, 1, 50, 0, tzinfo=datetime.timezone.utc)
VMS = ['vm-%02d' % i for i in range(1, 13)]


def mon(name):
    return P.parse_crm_mon(fixture(name))


def placement(state):
    return dict((r['id'], r['nodes']) for r in state['resources'])


# ---------------------------------------------------------------------------
# crm_mon XML
# ---------------------------------------------------------------------------

def test_healthy_summary():
    state = mon('crm_mon_healthy.xml')
    assert (state['dc'], state['dc_present'], state['quorum']) == ('cmp-4', True, True)
    assert state['pacemaker_version'] == '2.1.5-a3f44794f94'
    assert state['maintenance_mode'] is False
    assert state['cluster_options']['no-quorum-policy'] == 'stop'
    assert (state['nodes_configured'], state['resources_configured']) == (6, 14)
    assert state['failed_actions'] == []


def test_healthy_nodes():
    state = mon('crm_mon_healthy.xml')
    assert [n['name'] for n in state['nodes']] == ['cmp-1', 'cmp-2', 'cmp-3', 'cmp-4', 'ctl-a', 'ctl-b']
    assert state['nodes'][3] == {
        'name': 'cmp-4', 'id': '6', 'online': True, 'standby': False, 'standby_onfail': False,
        'maintenance': False, 'pending': False, 'unclean': False, 'shutdown': False, 'expected_up': True,
        'is_dc': True, 'resources_running': 3, 'type': 'member', 'health': 'green'}


def test_healthy_resources_group_members_and_bans():
    state = mon('crm_mon_healthy.xml')
    assert [r['id'] for r in state['resources']] == ['lb_float_ip', 'mgmt-api'] + VMS
    assert state['resources'][0] == {
        'id': 'lb_float_ip', 'agent': 'ocf:heartbeat:IPaddr2', 'role': 'Started', 'target_role': None,
        'active': True, 'managed': True, 'failed': False, 'failure_ignored': False, 'blocked': False,
        'orphaned': False, 'pending': None, 'nodes': ['ctl-a'], 'group': 'mgmt', 'clone': None,
        'failures': [], 'bans': []}
    assert state['groups'] == [{'id': 'mgmt', 'resources': ['lb_float_ip', 'mgmt-api'], 'managed': True,
                                'disabled': False, 'clone': None, 'nodes': ['ctl-a'], 'active': True,
                                'role': 'Started'}]
    assert placement(state)['vm-05'] == ['cmp-1']
    vm01 = state['resources'][2]
    assert (vm01['group'], vm01['bans']) == (None, [
        {'id': 'location-vm-01-compute-rule', 'node': 'ctl-a', 'weight': -1000000},
        {'id': 'location-vm-01-compute-rule', 'node': 'ctl-b', 'weight': -1000000}])
    assert len(state['bans']) == 28
    assert state['node_attributes']['cmp-1'] == {'clusterops-role': 'aio'}


def test_ban_fixture_moves_group_and_lists_cli_ban():
    state = mon('crm_mon_ban.xml')
    assert P.where(state, 'lb_float_ip') == ['ctl-b']
    assert P.where(state, 'mgmt') == ['ctl-b']
    assert state['resources'][0]['bans'] == [{'id': 'cli-ban-lb_float_ip-on-ctl-a', 'node': 'ctl-a',
                                              'weight': -1000000}]


def test_standby_fixture():
    state = mon('crm_mon_standby.xml')
    cmp2 = P.find_node(state, 'cmp-2')
    assert (cmp2['standby'], cmp2['resources_running']) == (True, 0)
    assert P.active_on(state, 'cmp-2') == []


def test_two_standby_fixture_has_stopped_vms():
    state = mon('crm_mon_two_standby_vms_stopped.xml')
    stopped = [r for r in state['resources'] if not r['active']]
    assert [(r['id'], r['role'], r['nodes']) for r in stopped] == [('vm-07', 'Stopped', []),
                                                                   ('vm-11', 'Stopped', [])]
    assert [n['name'] for n in state['nodes'] if n['standby']] == ['cmp-2', 'cmp-3']


def test_node_maintenance_fixture():
    state = mon('crm_mon_node_maintenance.xml')
    assert [n['name'] for n in state['nodes'] if n['maintenance']] == ['cmp-3']
    assert [r['id'] for r in state['resources'] if not r['managed']] == ['vm-11']
    assert state['maintenance_mode'] is False


def test_cluster_maintenance_fixture():
    state = mon('crm_mon_maintenance_mode.xml')
    assert state['maintenance_mode'] is True
    assert state['cluster_options']['maintenance-mode'] == 'true'
    assert all(not r['managed'] for r in state['resources'])
    assert state['groups'][0]['managed'] is False


def test_node_offline_fixture():
    state = mon('crm_mon_node_offline.xml')
    cmp4 = P.find_node(state, 'cmp-4')
    assert (cmp4['online'], cmp4['resources_running']) == (False, 0)
    assert (state['dc'], state['quorum']) == ('ctl-b', True)


def test_no_quorum_and_no_dc():
    text = fixture('crm_mon_healthy.xml')
    state = P.parse_crm_mon(text.replace('with_quorum="true"', 'with_quorum="false"'))
    assert (state['dc'], state['quorum']) == ('cmp-4', False)
    state = P.parse_crm_mon(text.replace('present="true"', 'present="false"'))
    assert (state['dc'], state['dc_present'], state['quorum'], state['pacemaker_version']) == (
        None, False, False, None)


def test_crm_mon_error_status_is_raised():
    text = ('<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml">'
            '<status code="102" message="Not connected"><errors><error>crm_mon: Error: cluster is not '
            'available on this node</error></errors></status></pacemaker-result>')
    with pytest.raises(P.PacemakerError) as caught:
        P.parse_crm_mon(text)
    assert str(caught.value) == ('crm_mon reported status 102: Not connected: crm_mon: Error: cluster is not '
                                 'available on this node')


def test_garbage_is_a_clear_error():
    with pytest.raises(P.PacemakerError) as caught:
        P.parse_crm_mon('Connection to cluster failed')
    assert str(caught.value).startswith('crm_mon printed no valid XML')
    assert "'Connection to cluster failed'" in str(caught.value)


FAILURES = ('<failures><failure op_key="lb_float_ip_monitor_10000" node="ctl-a" exitstatus="not running" '
            'exitreason="" exitcode="7" call="59" status="complete" last-rc-change="2026-11-22 01:52:10Z" '
            'queued="0" exec="0" interval="10000" task="monitor"/></failures>')


def test_failures_are_attached_to_resources_with_underscores():
    text = fixture('crm_mon_healthy.xml').replace('<bans>', FAILURES + '<bans>')
    state = P.parse_crm_mon(text)
    expected = {'resource': 'lb_float_ip', 'op_key': 'lb_float_ip_monitor_10000', 'node': 'ctl-a',
                'task': 'monitor', 'interval': '10000', 'exitcode': 7, 'exitstatus': 'not running',
                'exitreason': '', 'status': 'complete', 'call': 59, 'last_rc_change': '2026-11-22 01:52:10Z'}
    assert state['failed_actions'] == [expected]
    assert state['resources'][0]['failures'] == [expected]


# A hand-written crm_mon excerpt (the lab has no clone): an anonymous clone on two
# nodes with one instance stopped, and a cloned group.
CLONES = """<pacemaker-result api-version="2.25" request="crm_mon">
<summary><current_dc present="true" name="n1" with_quorum="true" version="2.1.5"/></summary>
<nodes><node name="n1" online="true"/><node name="n2" online="true"/><node name="n3" online="true"/></nodes>
<resources>
 <clone id="ping-clone" multi_state="false" unique="false" managed="true" disabled="false" failed="false">
  <resource id="ping" resource_agent="ocf:pacemaker:ping" role="Started" active="true" managed="true"
     failed="false" nodes_running_on="1"><node name="n1" id="1" cached="true"/></resource>
  <resource id="ping" resource_agent="ocf:pacemaker:ping" role="Started" active="true" managed="true"
     failed="false" nodes_running_on="1"><node name="n2" id="2" cached="true"/></resource>
  <resource id="ping" resource_agent="ocf:pacemaker:ping" role="Stopped" active="false" managed="true"
     failed="false" nodes_running_on="0"/>
 </clone>
 <clone id="web-clone" multi_state="false" unique="false" managed="true" disabled="false" failed="false">
  <group id="web:0" number_resources="1" managed="true" disabled="false">
   <resource id="httpd" resource_agent="ocf:heartbeat:apache" role="Started" active="true" managed="true"
      failed="false" nodes_running_on="1"><node name="n3" id="3" cached="true"/></resource>
  </group>
 </clone>
</resources>
<status code="0" message="OK"/>
</pacemaker-result>"""


def test_clone_instances_are_merged():
    state = P.parse_crm_mon(CLONES)
    ping = state['resources'][0]
    assert (ping['id'], ping['role'], ping['active'], ping['nodes'], ping['clone']) == (
        'ping', 'Started', True, ['n1', 'n2'], 'ping-clone')
    assert ping['instances'] == [{'role': 'Started', 'nodes': ['n1']}, {'role': 'Started', 'nodes': ['n2']},
                                 {'role': 'Stopped', 'nodes': []}]
    assert [(c['id'], c['resources'], c['nodes']) for c in state['clones']] == [
        ('ping-clone', ['ping'], ['n1', 'n2']), ('web-clone', ['httpd'], ['n3'])]
    assert [(g['id'], g['clone'], g['resources']) for g in state['groups']] == [('web', 'web-clone', ['httpd'])]
    assert P.resource_view(state, 'ping-clone')['nodes'] == ['n1', 'n2']


# ---------------------------------------------------------------------------
# CIB
# ---------------------------------------------------------------------------

def test_cib_constraints_section():
    cib = P.parse_cib(fixture('cibadmin_constraints.xml'), NOW)
    cons = cib['location_constraints']
    assert [c['id'] for c in cons] == ['location-mgmt-controllers'] + ['location-%s-compute' % v for v in VMS]
    assert set(c['kind'] for c in cons) == {'user'}
    assert cons[1] == {
        'id': 'location-vm-01-compute', 'kind': 'user', 'resource': 'vm-01', 'resource_pattern': None,
        'resources': [], 'node': None, 'score': '-INFINITY', 'role': None,
        'rules': [{'id': 'location-vm-01-compute-rule', 'score': '-INFINITY', 'score_attribute': None,
                   'boolean_op': 'or', 'role': None,
                   'expressions': [{'attribute': 'clusterops-role', 'operation': 'eq', 'value': 'controller',
                                    'type': None},
                                   {'attribute': 'clusterops-role', 'operation': 'not_defined', 'value': None,
                                    'type': None}],
                   'date_expressions': []}],
        'lifetime_end': None, 'expires_at': None, 'expired': False}
    assert P.describe_location(cons[1]) == ('location-vm-01-compute: vm-01 -INFINITY where clusterops-role eq '
                                            'controller or clusterops-role not_defined')


def test_cib_constraints_with_recorded_ban():
    cib = P.parse_cib(fixture('cibadmin_constraints_ban.xml'), NOW)
    ban = cib['location_constraints'][-1]
    assert ban == {'id': 'cli-ban-lb_float_ip-on-ctl-a', 'kind': 'cli-ban', 'resource': 'lb_float_ip',
                   'resource_pattern': None, 'resources': [], 'node': 'ctl-a', 'score': '-INFINITY',
                   'role': 'Started', 'rules': [], 'lifetime_end': None, 'expires_at': None, 'expired': False}
    assert P.describe_location(ban) == 'cli-ban-lb_float_ip-on-ctl-a: lb_float_ip -INFINITY on ctl-a'


@pytest.mark.parametrize('now, expired', [
    (datetime.datetime(2026, 11, 22, 2, 49, 59, tzinfo=datetime.timezone.utc), False),
    (datetime.datetime(2026, 11, 22, 2, 50, 0, tzinfo=datetime.timezone.utc), True),
    (datetime.datetime(2026, 11, 22, 3, 0, 0, tzinfo=datetime.timezone.utc), True),
])
def test_ban_with_lifetime_rule_form(now, expired):
    # exactly the XML crm_resource --ban --lifetime writes (rule + date_expression lt end)
    text = '<constraints>%s</constraints>' % ban_xml('lb_float_ip', 'ctl-b', '2026-11-22 04:50:00 +02:00')
    con = P.parse_cib(text, now)['location_constraints'][0]
    assert (con['kind'], con['node'], con['score'], con['lifetime_end'], con['expires_at'], con['expired']) == (
        'cli-ban', 'ctl-b', '-INFINITY', '2026-11-22 04:50:00 +02:00', '2026-11-22T02:50:00Z', expired)
    assert P.describe_location(con) == (
        'cli-ban-lb_float_ip-on-ctl-b: lb_float_ip -INFINITY on ctl-b until 2026-11-22 04:50:00 +02:00%s'
        % (' (expired)' if expired else ''))


def test_unreadable_lifetime_is_unknown_not_expired():
    text = '<constraints>%s</constraints>' % ban_xml('vm-01', 'cmp-1', '2026-W47-1')
    assert P.parse_cib(text, NOW)['location_constraints'][0]['expired'] is None


def test_cib_nodes_and_resources_sections():
    nodes = P.parse_cib(fixture('cibadmin_nodes.xml'), NOW)['nodes']
    assert nodes['cmp-1'] == {'id': '3', 'attributes': {'clusterops-role': 'aio'},
                              'utilization': {'memory': '16384'}}
    assert nodes['ctl-a'] == {'id': '1', 'attributes': {'clusterops-role': 'controller'}, 'utilization': {}}
    resources = P.parse_cib(fixture('cibadmin_resources.xml'), NOW)['resources']
    assert resources['mgmt'] == {'kind': 'group', 'agent': None, 'parent': None, 'meta': {}, 'utilization': {}}
    assert resources['lb_float_ip'] == {'kind': 'primitive', 'agent': 'ocf:heartbeat:IPaddr2', 'parent': 'mgmt',
                                        'meta': {}, 'utilization': {}}
    assert resources['vm-04'] == {'kind': 'primitive', 'agent': 'ocf:pacemaker:Dummy', 'parent': None,
                                  'meta': {'allow-migrate': 'false'}, 'utilization': {'memory': '4096'}}


def test_recorded_whole_cib():
    cib = P.parse_cib(fixture('backend/cibadmin_full.xml'), NOW)
    assert sorted(cib['nodes']) == ['cmp-1', 'cmp-2', 'cmp-3', 'cmp-4', 'ctl-a', 'ctl-b']
    assert cib['properties']['placement-strategy'] == 'utilization'
    assert cib['properties']['dc-version'] == '2.1.5-a3f44794f94'
    assert cib['resource_defaults'] == {'resource-stickiness': '100'}
    assert [c['id'] for c in cib['location_constraints']] == (
        ['location-mgmt-controllers'] + ['location-%s-compute' % v for v in VMS])
    assert cib['transient_attributes']['ctl-a'] == {'#feature-set': '3.16.1'}
    assert cib['resources']['vm-12'] == {'kind': 'primitive', 'agent': 'ocf:pacemaker:Dummy', 'parent': None,
                                         'meta': {'allow-migrate': 'true'}, 'utilization': {'memory': '4096'}}


def test_recorded_ban_with_lifetime():
    cons = P.parse_cib(fixture('backend/cibadmin_constraints_ban_lifetime.xml'), NOW)['location_constraints']
    ban = cons[-1]
    assert (ban['id'], ban['kind'], ban['resource'], ban['node'], ban['score'], ban['role']) == (
        'cli-ban-lb_float_ip-on-ctl-a', 'cli-ban', 'lb_float_ip', 'ctl-a', '-INFINITY', 'Started')
    assert (ban['lifetime_end'], ban['expires_at'], ban['expired']) == (
        '2026-11-22 02:43:31Z', '2026-11-22T02:43:31Z', False)
    later = datetime.datetime(2026, 11, 22, 2, 43, 31, tzinfo=datetime.timezone.utc)
    assert P.parse_cib(fixture('backend/cibadmin_constraints_ban_lifetime.xml'), later)[
        'location_constraints'][-1]['expired'] is True
    assert fixture('backend/crm_resource_ban_lifetime.txt').splitlines()[0] == (
        'Migration will take effect until: 2026-11-22 02:43:31Z')


def test_recorded_dry_runs():
    assert P.parse_transition_summary(fixture('backend/crm_simulate_standby_cmp-2.txt')) == [
        'Migrate vm-02 ( cmp-2 -> cmp-1 )', 'Migrate vm-06 ( cmp-2 -> cmp-3 )', 'Migrate vm-10 ( cmp-2 -> cmp-4 )']
    assert P.parse_transition_summary(fixture('backend/crm_simulate_standby_cmp-2_cmp-3.txt')) == [
        'Migrate vm-02 ( cmp-2 -> cmp-1 )', 'Migrate vm-06 ( cmp-2 -> cmp-4 )', 'Migrate vm-10 ( cmp-2 -> cmp-1 )',
        'Stop vm-03 ( cmp-3 ) due to node availability', 'Stop vm-07 ( cmp-3 ) due to node availability',
        'Stop vm-11 ( cmp-3 ) due to node availability']
    assert P.parse_transition_summary(fixture('backend/crm_simulate_ban_lb_float_ip.txt')) == [
        'Move lb_float_ip ( ctl-a -> ctl-b )', 'Move mgmt-api ( ctl-a -> ctl-b )']
    healthy = mon('crm_mon_healthy.xml')
    change = P.compare_placement(healthy, mon('backend/crm_mon_dry_run_standby_cmp-2.xml'))
    assert change == {'moved': [{'id': 'vm-02', 'from': ['cmp-2'], 'to': ['cmp-1']},
                                {'id': 'vm-06', 'from': ['cmp-2'], 'to': ['cmp-3']},
                                {'id': 'vm-10', 'from': ['cmp-2'], 'to': ['cmp-4']}],
                      'stopped': [], 'started': []}
    change = P.compare_placement(healthy, mon('backend/crm_mon_dry_run_standby_cmp-2_cmp-3.xml'))
    assert change['stopped'] == ['vm-03', 'vm-07', 'vm-11']
    change = P.compare_placement(healthy, mon('backend/crm_mon_dry_run_ban_lb_float_ip.xml'))
    assert change['moved'] == [{'id': 'lb_float_ip', 'from': ['ctl-a'], 'to': ['ctl-b']},
                               {'id': 'mgmt-api', 'from': ['ctl-a'], 'to': ['ctl-b']}]


def test_full_cib_properties_defaults_and_transient_attributes():
    status = ('<node_state id="4" uname="cmp-2"><transient_attributes id="4"><instance_attributes id="status-4">'
              '<nvpair id="status-4-standby" name="standby" value="on"/></instance_attributes>'
              '</transient_attributes></node_state>')
    cib = P.parse_cib(full_cib(properties={'maintenance-mode': 'true'}, status=status), NOW)
    assert cib['properties']['maintenance-mode'] == 'true'
    assert cib['properties']['placement-strategy'] == 'utilization'
    assert cib['resource_defaults'] == {'resource-stickiness': '100'}
    assert cib['transient_attributes'] == {'cmp-2': {'standby': 'on'}}


# ---------------------------------------------------------------------------
# Facts (pcs_info) and the planner's expectations
# ---------------------------------------------------------------------------

def facts(mon_name='crm_mon_healthy.xml', **cib_edits):
    return P.build_facts(mon(mon_name), P.parse_cib(full_cib(**cib_edits), NOW), pcs_version='0.11.5')


def test_facts_merge_nodes_and_resources():
    f = facts()
    assert (f['dc'], f['quorum'], f['pcs_version'], f['maintenance_mode']) == ('cmp-4', True, '0.11.5', False)
    cmp1 = P.find_node(f, 'cmp-1')
    assert (cmp1['attributes'], cmp1['utilization'], cmp1['transient_attributes']) == (
        {'clusterops-role': 'aio'}, {'memory': '16384'}, {'#feature-set': '3.16.1'})
    vm04 = [r for r in f['resources'] if r['id'] == 'vm-04'][0]
    assert (vm04['allow_migrate'], vm04['utilization'], vm04['meta'], vm04['nodes']) == (
        False, {'memory': '4096'}, {'allow-migrate': 'false'}, ['cmp-4'])
    vm01 = [r for r in f['resources'] if r['id'] == 'vm-01'][0]
    assert (vm01['allow_migrate'], vm01['utilization']) == (True, {'memory': '2048'})
    lb = f['resources'][0]
    assert (lb['allow_migrate'], lb['utilization'], lb['group']) == (False, {}, 'mgmt')
    assert f['resource_defaults'] == {'resource-stickiness': '100'}
    assert (f['cli_bans'], f['cli_prefers']) == ([], [])
    assert f['groups'][0]['meta'] == {}


def test_facts_mark_cli_constraints():
    f = facts('crm_mon_ban.xml', extra_constraints=ban_xml('lb_float_ip', 'ctl-a') + prefer_xml('vm-01', 'cmp-2'))
    assert f['cli_bans'] == ['cli-ban-lb_float_ip-on-ctl-a']
    assert f['cli_prefers'] == ['cli-prefer-vm-01']
    assert [c['id'] for c in P.constraints_of(f, 'lb_float_ip', kind='cli-ban')] == ['cli-ban-lb_float_ip-on-ctl-a']
    assert P.constraints_of(f, 'lb_float_ip', kind='cli-ban', node='ctl-b') == []


def test_allow_migrate_falls_back_to_resource_defaults():
    cib = P.parse_cib(full_cib(), NOW)
    cib['resource_defaults']['allow-migrate'] = 'true'
    f = P.build_facts(mon('crm_mon_healthy.xml'), cib)
    assert [r['allow_migrate'] for r in f['resources'][:2]] == [True, True]


def test_facts_feed_the_planner():
    """The planner takes pcs_info's layout as it is once the nodes without capacity
    (the controllers) are left out and the aio marker is a boolean attribute."""
    f = facts()
    f['nodes'] = [n for n in f['nodes'] if n['utilization']]
    for node in f['nodes']:
        node['attributes']['aio'] = str(node['attributes']['clusterops-role'] == 'aio').lower()
    planned = pcs_facts_to_input(f)
    assert planned['hosts'][0] == {'name': 'cmp-1', 'capacity': {'memory': 16384}, 'storage_group': 'default',
                                   'role': 'aio', 'upgraded': False}
    assert [h['role'] for h in planned['hosts']] == ['aio', 'compute', 'compute', 'compute']
    assert [(v['name'], v['host'], v['demand'], v['migratable']) for v in planned['vms'][:4]] == [
        ('vm-01', 'cmp-1', {'memory': 2048}, True), ('vm-02', 'cmp-2', {'memory': 4096}, True),
        ('vm-03', 'cmp-3', {'memory': 3072}, True), ('vm-04', 'cmp-4', {'memory': 4096}, False)]
    assert len(planned['vms']) == 12


# ---------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------

def test_compare_placement_standby():
    change = P.compare_placement(mon('crm_mon_healthy.xml'), mon('crm_mon_standby.xml'))
    assert change['stopped'] == []
    assert change['started'] == []
    moved = dict((m['id'], (m['from'], m['to'])) for m in change['moved'])
    assert moved['vm-02'][0] == ['cmp-2']
    assert all(m['from'] != m['to'] for m in change['moved'])
    assert set(moved) >= {'vm-02', 'vm-06', 'vm-10'}


def test_compare_placement_two_standby_reports_stopped():
    change = P.compare_placement(mon('crm_mon_healthy.xml'), mon('crm_mon_two_standby_vms_stopped.xml'))
    assert change['stopped'] == ['vm-07', 'vm-11']
    assert P.compare_placement(mon('crm_mon_two_standby_vms_stopped.xml'), mon('crm_mon_healthy.xml'))[
        'started'] == ['vm-07', 'vm-11']


@pytest.mark.parametrize('text, expected', [
    ('2026-11-22 01:50:39 +00:00', datetime.datetime(2026, 11, 22, 1, 50, 39, tzinfo=datetime.timezone.utc)),
    ('2026-11-22T03:50:39+02:00', datetime.datetime(2026, 11, 22, 1, 50, 39, tzinfo=datetime.timezone.utc)),
    ('2026-11-22T01:50:39Z', datetime.datetime(2026, 11, 22, 1, 50, 39, tzinfo=datetime.timezone.utc)),
    # what crm_resource --lifetime writes on a host whose time zone is UTC (lab, pacemaker 2.1.5)
    ('2026-11-22 02:30:19Z', datetime.datetime(2026, 11, 22, 2, 30, 19, tzinfo=datetime.timezone.utc)),
    ('2026-11-21 20:50:39 -0500', datetime.datetime(2026, 11, 22, 1, 50, 39, tzinfo=datetime.timezone.utc)),
    ('2026-11-22 01:50:39', datetime.datetime(2026, 11, 22, 1, 50, 39, tzinfo=datetime.timezone.utc)),
    ('2026-11-22', datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc)),
    ('2026-13-22 01:50:39', None),
    ('tomorrow', None),
    (None, None),
])
def test_parse_time(text, expected):
    assert P.parse_time(text) == expected


@pytest.mark.parametrize('text, seconds', [
    ('PT15S', 15), ('PT30M', 1800), ('PT2H', 7200), ('P1D', 86400), ('P1W', 604800), ('P1DT1H1M1S', 90061),
    ('P1Y', 365 * 86400), ('P1M', 30 * 86400), ('PT1M', 60),
    ('P', None), ('PT', None), ('15S', None), ('PT15', None), ('pt15s', None), ('PT0S', None), ('', None),
    ('P1DT', None),
])
def test_parse_duration(text, seconds):
    assert P.parse_duration(text) == seconds


def test_transition_summary_lines():
    text = ('Current cluster status:\n  * Node List:\n    * Online: [ cmp-1 ]\n\nTransition Summary:\n'
            '  * Migrate    vm-02     ( cmp-2 -> cmp-1 )\n'
            '  * Stop       vm-07     (        cmp-3 )  due to node availability\n\n'
            'Executing Cluster Transition:\n  * Resource action: vm-02 migrate_to on cmp-2\n')
    assert P.parse_transition_summary(text) == ['Migrate vm-02 ( cmp-2 -> cmp-1 )',
                                                'Stop vm-07 ( cmp-3 ) due to node availability']
    assert P.parse_transition_summary('Transition Summary:\n\nExecuting Cluster Transition:\n') == []


def test_argv_builders():
    assert P.argv_crm_mon(BINS) == MON
    assert P.argv_ban(BINS, 'lb_float_ip', 'ctl-a', 'PT15S') == [
        '/usr/sbin/crm_resource', '--ban', '--resource', 'lb_float_ip', '--node', 'ctl-a', '--lifetime', 'PT15S']
    assert P.argv_delete_location(BINS, 'cli-ban-vm-01-on-cmp-1') == [
        '/usr/sbin/cibadmin', '--delete', '--xpath',
        "/cib/configuration/constraints/rsc_location[@id='cli-ban-vm-01-on-cmp-1']"]
    assert P.argv_create_prefer(BINS, 'mgmt', 'ctl-b') == [
        '/usr/sbin/cibadmin', '--create', '--scope', 'constraints', '--xml-text',
        '<rsc_location id="cli-prefer-mgmt" rsc="mgmt" role="Started" node="ctl-b" score="INFINITY" />']
    assert P.argv_node_attribute(BINS, 'cmp-2', 'standby', 'on') == [
        '/usr/sbin/crm_attribute', '--node', 'cmp-2', '--name', 'standby', '--lifetime', 'forever',
        '--update', 'on']
    assert P.argv_node_attribute(BINS, 'cmp-2', 'standby', None, 'reboot') == [
        '/usr/sbin/crm_attribute', '--node', 'cmp-2', '--name', 'standby', '--lifetime', 'reboot', '--delete']
    assert P.argv_property(BINS, 'maintenance-mode', 'true') == [
        '/usr/sbin/crm_attribute', '--type', 'crm_config', '--name', 'maintenance-mode', '--update', 'true']
    assert P.argv_property(BINS, 'maintenance-mode', None) == [
        '/usr/sbin/crm_attribute', '--type', 'crm_config', '--name', 'maintenance-mode', '--delete']
    assert P.argv_wait(BINS, 12.2) == ['/usr/sbin/crm_resource', '--wait', '--timeout', '13s']
    assert P.argv_simulate(BINS, '/t/a.xml', '/t/b.xml') == [
        '/usr/sbin/crm_simulate', '--xml-file', '/t/a.xml', '--simulate', '--save-output', '/t/b.xml']


def test_ids_with_quotes_never_reach_an_xpath():
    with pytest.raises(P.PacemakerError) as caught:
        P.argv_delete_location(BINS, "x'] | //*[@id='y")
    assert str(caught.value) == 'constraint id "x\'] | //*[@id=\'y" contains characters pacemaker ids cannot contain'


def test_display_quotes_like_a_shell():
    assert P.display(['crm_attribute', '--name', 'a b']) == "crm_attribute --name 'a b'"
    assert P.display(['crm_mon', '-1'], cib_file='/tmp/x') == 'CIB_file=<copy> crm_mon -1'


# ---------------------------------------------------------------------------
# The backend with the seam answered from fixtures
# ---------------------------------------------------------------------------

def control(cluster, clock=None, **kwargs):
    clock = clock or cluster.clock or FakeClock()
    return P.Pacemaker(P.PacemakerCli(cluster, BINS), clock=clock, **kwargs)


def test_every_command_runs_in_the_c_locale():
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_ban.xml'], sim_mon='crm_mon_ban.xml')
    control(cluster).ban('lb_float_ip', 'ctl-a')
    for argv, env in cluster.calls:
        assert dict((k, env[k]) for k in ('LANG', 'LC_ALL', 'LC_MESSAGES')) == {
            'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
        assert set(env) <= {'LANG', 'LC_ALL', 'LC_MESSAGES', 'CIB_file'}


def dry_run_argvs(cluster, mutations):
    """The dry-run part of the calls: mutations on the copy, crm_simulate, crm_mon on the result."""
    copy = cluster.copies[0]
    directory = copy.rsplit('/', 1)[0]
    return [(m, copy) for m in mutations] + [
        (['/usr/sbin/crm_simulate', '--xml-file', copy, '--simulate', '--save-output',
          directory + '/simulated.xml'], None),
        (MON, directory + '/simulated.xml')]


def calls(cluster):
    return [(argv, env.get('CIB_file')) for argv, env in cluster.calls]


BAN_A = ['/usr/sbin/crm_resource', '--ban', '--resource', 'lb_float_ip', '--node', 'ctl-a']
WAIT60 = ['/usr/sbin/crm_resource', '--wait', '--timeout', '60s']


def test_ban_exact_sequence():
    after = full_cib(constraints='cibadmin_constraints_ban.xml')
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_ban.xml'], cib=[full_cib(), after],
                          sim_mon='backend/crm_mon_dry_run_ban_lb_float_ip.xml',
                          summary=fixture('backend/crm_simulate_ban_lb_float_ip.txt'))
    result = control(cluster).ban('lb_float_ip', 'ctl-a')
    assert calls(cluster) == [(MON, None), (QUERY, None)] + dry_run_argvs(cluster, [BAN_A]) + [
        (BAN_A, None), (WAIT60, None), (MON, None), (MON, None), (QUERY, None)]
    assert result['changed'] is True
    assert result['constraints_created'] == ['cli-ban-lb_float_ip-on-ctl-a']
    assert (result['constraints_removed'], result['constraints_pre_existing']) == ([], [])
    assert (result['resource_nodes_before'], result['resource_nodes']) == (['ctl-a'], ['ctl-b'])
    assert result['moved_resources'] == [{'id': 'lb_float_ip', 'from': ['ctl-a'], 'to': ['ctl-b']},
                                         {'id': 'mgmt-api', 'from': ['ctl-a'], 'to': ['ctl-b']}]
    assert (result['stopped_resources'], result['would_stop'], result['settled']) == ([], [], True)
    assert result['transition_summary'] == ['Move lb_float_ip ( ctl-a -> ctl-b )', 'Move mgmt-api ( ctl-a -> ctl-b )']
    assert result['commands'] == ['/usr/sbin/crm_resource --ban --resource lb_float_ip --node ctl-a']
    assert result['planned_commands'] == result['commands']
    assert result['journal_entries'] == [{'kind': 'ban', 'id': 'cli-ban-lb_float_ip-on-ctl-a', 'node': 'ctl-a',
                                          'resource': 'lb_float_ip'}]
    assert result['diff'] == {'before': '', 'after': 'cli-ban-lb_float_ip-on-ctl-a: lb_float_ip -INFINITY on ctl-a\n'}


def test_ban_check_mode_runs_nothing_against_the_live_cib():
    cluster = FakeCluster(sim_mon='crm_mon_ban.xml')
    result = control(cluster).ban('lb_float_ip', 'ctl-a', lifetime='PT1H', check_mode=True)
    ban_lifetime = BAN_A + ['--lifetime', 'PT1H']
    assert calls(cluster) == [(MON, None), (QUERY, None)] + dry_run_argvs(cluster, [ban_lifetime])
    assert cluster.mutations() == []
    assert (result['changed'], result['commands'], result['resource_nodes']) == (True, [], ['ctl-b'])
    assert result['planned_commands'] == [
        '/usr/sbin/crm_resource --ban --resource lb_float_ip --node ctl-a --lifetime PT1H']
    assert result['lifetime_end'] == '2036-11-22 02:50:00Z'
    assert result['diff']['after'] == ('cli-ban-lb_float_ip-on-ctl-a: lb_float_ip -INFINITY on ctl-a until '
                                       '2036-11-22 02:50:00Z\n')


def test_ban_that_exists_is_left_alone():
    cluster = FakeCluster(mon='crm_mon_ban.xml', cib=full_cib(constraints='cibadmin_constraints_ban.xml'))
    result = control(cluster).ban('lb_float_ip', 'ctl-a', lifetime='PT1H')
    assert calls(cluster) == [(MON, None), (QUERY, None)]
    assert (result['changed'], result['constraints_created'], result['constraints_pre_existing']) == (
        False, [], ['cli-ban-lb_float_ip-on-ctl-a'])
    assert result['journal_entries'] == []
    assert result['resource_nodes'] == ['ctl-b']
    assert result['warnings'] == ['cli-ban-lb_float_ip-on-ctl-a already exists without a lifetime; it is left as it '
                                  'is (not ours)']
    assert result['diff']['before'] == result['diff']['after']


def test_expired_ban_is_replaced():
    expired = ban_xml('lb_float_ip', 'ctl-a', '2026-11-22 01:00:00 +00:00')
    cluster = FakeCluster(cib=full_cib(extra_constraints=expired), sim_mon='crm_mon_ban.xml')
    result = control(cluster).ban('lb_float_ip', 'ctl-a', check_mode=True)
    delete = ['/usr/sbin/cibadmin', '--delete', '--xpath',
              "/cib/configuration/constraints/rsc_location[@id='cli-ban-lb_float_ip-on-ctl-a']"]
    assert calls(cluster) == [(MON, None), (QUERY, None)] + dry_run_argvs(cluster, [delete, BAN_A])
    assert (result['constraints_removed'], result['constraints_created']) == (
        ['cli-ban-lb_float_ip-on-ctl-a'], ['cli-ban-lb_float_ip-on-ctl-a'])
    assert result['diff'] == {
        'before': 'cli-ban-lb_float_ip-on-ctl-a: lb_float_ip -INFINITY on ctl-a until 2026-11-22 01:00:00 +00:00 '
                  '(expired)\n',
        'after': 'cli-ban-lb_float_ip-on-ctl-a: lb_float_ip -INFINITY on ctl-a\n'}


def test_ban_that_would_stop_the_resource_is_refused_before_any_change():
    stopped = fixture('crm_mon_healthy.xml').replace(
        '<resource id="lb_float_ip" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true"',
        '<resource id="lb_float_ip" resource_agent="ocf:heartbeat:IPaddr2" role="Stopped" active="false"')
    cluster = FakeCluster(sim_mon=stopped, summary='Transition Summary:\n  * Stop       lb_float_ip  ( ctl-a )  '
                                                   'due to node availability\n')
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).ban('lb_float_ip', 'ctl-a')
    assert str(caught.value) == (
        "banning lb_float_ip from ctl-a would stop lb_float_ip (pacemaker's dry run on a copy of the CIB: Stop "
        "lb_float_ip ( ctl-a ) due to node availability); nothing was changed. Make room or free capacity first, "
        "or set allow_stopped: true to accept it")
    assert cluster.mutations() == []
    assert caught.value.details['would_stop'] == ['lb_float_ip']


def test_ban_allow_stopped_goes_ahead():
    stopped = fixture('crm_mon_healthy.xml').replace('role="Started" active="true" orphaned="false" blocked="false" '
                                                     'managed="true" failed="false" failure_ignored="false" '
                                                     'nodes_running_on="1">\n        <node name="ctl-a"',
                                                     'role="Stopped" active="false" orphaned="false" blocked="false" '
                                                     'managed="true" failed="false" failure_ignored="false" '
                                                     'nodes_running_on="0">\n        <node name="ctl-a"')
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', stopped], sim_mon=stopped)
    result = control(cluster).ban('lb_float_ip', 'ctl-a', allow_stopped=True)
    assert cluster.mutations() == [BAN_A]
    assert result['stopped_resources'] == ['lb_float_ip', 'mgmt-api']


@pytest.mark.parametrize('resource, node, message', [
    ('lb_ip', 'ctl-a', "resource 'lb_ip' is not in the cluster; known resources, groups and clones: lb_float_ip, "
                       "mgmt, mgmt-api, vm-01, vm-02, vm-03, vm-04, vm-05, vm-06, vm-07, vm-08, vm-09, vm-10, vm-11, "
                       "vm-12"),
    ('lb_float_ip', 'ctl-c', "node 'ctl-c' is not a node of this cluster; known nodes: cmp-1, cmp-2, cmp-3, cmp-4, "
                             "ctl-a, ctl-b"),
])
def test_unknown_resource_or_node(resource, node, message):
    cluster = FakeCluster()
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).ban(resource, node)
    assert str(caught.value) == message
    assert calls(cluster) == [(MON, None), (QUERY, None)]


def test_offline_node_is_refused_as_ban_target():
    cluster = FakeCluster(mon='crm_mon_node_offline.xml')
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).ban('vm-08', 'cmp-4')
    assert str(caught.value) == ('node cmp-4 is offline; a ban on it is refused while it is not a clean cluster '
                                 'member: bring it back first (pcs cluster start cmp-4) and check crm_mon')
    assert cluster.mutations() == []


NO_QUORUM = fixture('crm_mon_healthy.xml').replace('with_quorum="true"', 'with_quorum="false"')


def test_no_quorum_is_refused_unless_allowed():
    cluster = FakeCluster(mon=NO_QUORUM)
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).ban('lb_float_ip', 'ctl-a')
    assert str(caught.value) == (
        'the partition this node sees (DC cmp-4) has no quorum; refusing to change the cluster. Restore quorum '
        'first (corosync-quorumtool -s shows the votes), or set allow_no_quorum: true if you are sure')
    assert calls(cluster) == [(MON, None), (QUERY, None)]
    cluster = FakeCluster(mon=NO_QUORUM, sim_mon='crm_mon_ban.xml')
    result = control(cluster, allow_no_quorum=True).ban('lb_float_ip', 'ctl-a', check_mode=True)
    assert result['changed'] is True


def test_no_dc_message():
    cluster = FakeCluster(mon=fixture('crm_mon_healthy.xml').replace('present="true"', 'present="false"'))
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).set_cluster_maintenance(True)
    assert str(caught.value).startswith('this node sees no DC (no cluster leader), so the cluster has no quorum')


def test_ban_wait_exceeded_names_where_things_are():
    clock = FakeClock()
    cluster = FakeCluster(sim_mon='crm_mon_ban.xml', wait_rc=(124,), clock=clock)
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster, clock=clock).ban('lb_float_ip', 'ctl-a', wait=30)
    assert str(caught.value) == ('lb_float_ip did not leave ctl-a - wait=30s ran out: lb_float_ip is Started on ctl-a. '
                                 'The ban cli-ban-lb_float_ip-on-ctl-a stays in place (pcs_ban state=absent '
                                 'removes it)')
    assert caught.value.details['constraints_created'] == ['cli-ban-lb_float_ip-on-ctl-a']
    assert caught.value.details['settled'] is False
    assert [a for a in cluster.live() if '--wait' in a] == [
        ['/usr/sbin/crm_resource', '--wait', '--timeout', '30s']]


def test_settled_without_reaching_the_goal_says_so():
    cib = full_cib(node_extra={'cmp-3': '<nvpair id="nodes-5-maintenance" name="maintenance" value="on"/>'})
    cluster = FakeCluster(mon='crm_mon_node_maintenance.xml', cib=cib, sim_mon='crm_mon_node_maintenance.xml')
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).ban('vm-11', 'cmp-3', wait=30)
    assert str(caught.value) == ('vm-11 did not leave cmp-3 - the cluster settled (wait=30s) without it: vm-11 is '
                                 'Started (unmanaged) on cmp-3. The ban cli-ban-vm-11-on-cmp-3 stays in place '
                                 '(pcs_ban state=absent removes it)')


def test_settle_gives_up_when_settled_but_goal_unmet():
    clock = FakeClock()
    cluster = FakeCluster(clock=clock)
    ctl = control(cluster, clock=clock, pause=1.0)
    state, settled, met = ctl.settle(lambda s: False, 60)
    assert (settled, met) == (True, False)
    assert [a for a in cluster.argvs if '--wait' in a] == [WAIT60, ['/usr/sbin/crm_resource', '--wait',
                                                                    '--timeout', '59s']]
    assert clock.sleeps == [1.0]


def test_settle_unexpected_rc_is_an_error():
    cluster = FakeCluster(wait_rc=(1,))
    with pytest.raises(P.CommandError) as caught:
        control(cluster).settle(lambda s: True, 10)
    assert str(caught.value) == '/usr/sbin/crm_resource --wait --timeout 10s failed (rc 1): no output'


# -- clear ------------------------------------------------------------------

def delete(cid):
    return ['/usr/sbin/cibadmin', '--delete', '--xpath', "/cib/configuration/constraints/rsc_location[@id='%s']" % cid]


MIXED = (ban_xml('lb_float_ip', 'ctl-a') + ban_xml('lb_float_ip', 'ctl-b', '2026-11-22 01:00:00 +00:00')
         + prefer_xml('lb_float_ip', 'ctl-a')
         + '<rsc_location id="ops-keep-vip-off-cmp" rsc="lb_float_ip" node="cmp-1" score="-INFINITY"/>'
         + ban_xml('vm-01', 'cmp-1'))


def test_clear_removes_only_cli_bans_of_the_resource():
    cluster = FakeCluster(mon='crm_mon_ban.xml', cib=full_cib(extra_constraints=MIXED))
    result = control(cluster).clear_ban('lb_float_ip')
    assert cluster.mutations() == [delete('cli-ban-lb_float_ip-on-ctl-a'), delete('cli-ban-lb_float_ip-on-ctl-b')]
    assert result['constraints_removed'] == ['cli-ban-lb_float_ip-on-ctl-a', 'cli-ban-lb_float_ip-on-ctl-b']
    assert result['changed'] is True


def test_clear_one_node_only():
    cluster = FakeCluster(mon='crm_mon_ban.xml', cib=full_cib(extra_constraints=MIXED))
    result = control(cluster).clear_ban('lb_float_ip', 'ctl-a', check_mode=True)
    assert cluster.mutations() == []
    assert [a for a, copy in calls(cluster) if copy and '--delete' in a] == [delete('cli-ban-lb_float_ip-on-ctl-a')]
    assert result['constraints_removed'] == ['cli-ban-lb_float_ip-on-ctl-a']
    assert result['diff']['after'] == (
        'cli-ban-lb_float_ip-on-ctl-b: lb_float_ip -INFINITY on ctl-b until 2026-11-22 01:00:00 +00:00 (expired)\n'
        'cli-prefer-lb_float_ip: lb_float_ip INFINITY on ctl-a\n'
        'ops-keep-vip-off-cmp: lb_float_ip -INFINITY on cmp-1\n')


def test_clear_nothing_is_a_no_op():
    cluster = FakeCluster()
    result = control(cluster).clear_ban('lb_float_ip')
    assert calls(cluster) == [(MON, None), (QUERY, None)]
    assert (result['changed'], result['constraints_removed'], result['resource_nodes']) == (False, [], ['ctl-a'])


def test_clear_of_a_deleted_resource_still_removes_its_ban():
    cluster = FakeCluster(cib=full_cib(extra_constraints=ban_xml('vm-99', 'cmp-1')))
    result = control(cluster).clear_ban('vm-99')
    assert cluster.mutations() == [delete('cli-ban-vm-99-on-cmp-1')]
    assert result['resource_nodes'] == []


def test_clear_unknown_resource_without_bans_is_an_error():
    with pytest.raises(P.PacemakerError) as caught:
        control(FakeCluster()).clear_ban('vm-99')
    assert str(caught.value).startswith("resource 'vm-99' is not in the cluster; known resources")


# -- move ---------------------------------------------------------------------

CREATE = ['/usr/sbin/cibadmin', '--create', '--scope', 'constraints', '--xml-text',
          '<rsc_location id="cli-prefer-mgmt" rsc="mgmt" role="Started" node="ctl-b" score="INFINITY" />']


def test_move_exact_sequence_leaves_no_prefer():
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_ban.xml'], sim_mon='crm_mon_ban.xml')
    result = control(cluster).move('mgmt', 'ctl-b')
    wait = [a for a in cluster.argvs if '--wait' in a]
    assert calls(cluster) == [(MON, None), (QUERY, None)] + dry_run_argvs(cluster, [CREATE]) + [
        (CREATE, None), (wait[0], None), (MON, None), (delete('cli-prefer-mgmt'), None), (wait[1], None),
        (MON, None), (MON, None), (QUERY, None)]
    assert wait[0] == WAIT60
    assert (result['resource_nodes_before'], result['resource_nodes']) == (['ctl-a'], ['ctl-b'])
    assert (result['prefer_created'], result['prefer_removed']) == ('cli-prefer-mgmt', 'cli-prefer-mgmt')
    assert result['commands'] == [P.display(CREATE), P.display(delete('cli-prefer-mgmt'))]
    assert result['journal_entries'] == []


def test_move_check_mode():
    cluster = FakeCluster(sim_mon='crm_mon_ban.xml')
    result = control(cluster).move('mgmt', 'ctl-b', check_mode=True)
    assert cluster.mutations() == []
    assert (result['changed'], result['resource_nodes'], result['commands']) == (True, ['ctl-b'], [])
    assert result['planned_commands'] == [P.display(CREATE), P.display(delete('cli-prefer-mgmt'))]


def test_move_where_it_already_runs_is_a_no_op():
    cluster = FakeCluster(mon='crm_mon_ban.xml')
    result = control(cluster).move('lb_float_ip', 'ctl-b')
    assert calls(cluster) == [(MON, None), (QUERY, None)]
    assert (result['changed'], result['resource_nodes']) == (False, ['ctl-b'])


def test_move_refuses_an_existing_prefer():
    cluster = FakeCluster(cib=full_cib(extra_constraints=prefer_xml('mgmt', 'ctl-a')))
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).move('mgmt', 'ctl-b')
    assert str(caught.value) == (
        'cli-prefer-mgmt already exists (cli-prefer-mgmt: mgmt INFINITY on ctl-a): an operator or an earlier move '
        'left it, so it is not ours and pcs_move will neither replace nor remove it. Delete it first if it is stale '
        '(pcs constraint delete cli-prefer-mgmt)')
    assert calls(cluster) == [(MON, None), (QUERY, None)]


def test_move_refuses_a_node_banned_for_the_resource():
    cluster = FakeCluster(cib=full_cib(extra_constraints=ban_xml('mgmt', 'ctl-b')))
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).move('mgmt', 'ctl-b')
    assert str(caught.value) == ('cli-ban-mgmt-on-ctl-b forbids mgmt on ctl-b; remove that ban first '
                                 '(clusterops.upgrade.pcs_ban state=absent) if the move is meant')
    assert cluster.mutations() == []


def test_move_refuses_when_the_dry_run_lands_elsewhere():
    cluster = FakeCluster(sim_mon='crm_mon_healthy.xml')
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).move('mgmt', 'ctl-b')
    assert str(caught.value) == (
        "pacemaker's dry run does not put mgmt on ctl-b (mgmt is Started on ctl-a; transition: none); nothing was "
        "changed. Check the constraints and utilization that keep it away (pcs_info)")
    assert cluster.mutations() == []


def test_move_to_standby_node_is_refused():
    cluster = FakeCluster(mon='crm_mon_standby.xml')
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).move('vm-01', 'cmp-2')
    assert str(caught.value) == ('node cmp-2 is in standby; nothing can be moved to it. Take it out first '
                                 '(clusterops.upgrade.maintenance_mode state=disabled)')


def test_move_wait_exceeded_still_removes_the_prefer():
    clock = FakeClock()
    cluster = FakeCluster(sim_mon='crm_mon_ban.xml', wait_rc=(124,), clock=clock)
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster, clock=clock).move('mgmt', 'ctl-b', wait=20)
    assert cluster.mutations() == [CREATE, delete('cli-prefer-mgmt')]
    assert str(caught.value) == ('mgmt is not running on ctl-b - wait=20s ran out: mgmt is Started on ctl-a. The '
                                 'temporary cli-prefer-mgmt was removed again')


def test_move_of_a_clone_is_refused():
    empty = '<cib><configuration><nodes/><resources/><constraints/></configuration><status/></cib>'
    cluster = FakeCluster(mon=CLONES, cib=empty)
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).move('ping', 'n3')
    assert str(caught.value).startswith('ping is a clone (or inside one); moving clone instances is not supported')


# -- standby ------------------------------------------------------------------

STANDBY_ON = ['/usr/sbin/crm_attribute', '--node', 'cmp-2', '--name', 'standby', '--lifetime', 'forever',
              '--update', 'on']
STANDBY_OFF = ['/usr/sbin/crm_attribute', '--node', 'cmp-2', '--name', 'standby', '--lifetime', 'forever',
               '--delete']
WAIT300 = ['/usr/sbin/crm_resource', '--wait', '--timeout', '300s']


def test_standby_exact_sequence_and_report():
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', 'backend/crm_mon_dry_run_standby_cmp-2.xml'],
                          sim_mon='backend/crm_mon_dry_run_standby_cmp-2.xml',
                          summary=fixture('backend/crm_simulate_standby_cmp-2.txt'))
    result = control(cluster).set_node_standby('cmp-2', True)
    assert calls(cluster) == [(MON, None), (QUERY, None)] + dry_run_argvs(cluster, [STANDBY_ON]) + [
        (STANDBY_ON, None), (WAIT300, None), (MON, None), (MON, None), (QUERY, None)]
    assert (result['enabled_before'], result['enabled'], result['changed']) == (False, True, True)
    assert (result['stopped_resources'], result['remaining_resources'], result['would_stop']) == ([], [], [])
    assert result['moved_resources'] == [{'id': 'vm-02', 'from': ['cmp-2'], 'to': ['cmp-1']},
                                         {'id': 'vm-06', 'from': ['cmp-2'], 'to': ['cmp-3']},
                                         {'id': 'vm-10', 'from': ['cmp-2'], 'to': ['cmp-4']}]
    assert result['transition_summary'] == ['Migrate vm-02 ( cmp-2 -> cmp-1 )', 'Migrate vm-06 ( cmp-2 -> cmp-3 )',
                                            'Migrate vm-10 ( cmp-2 -> cmp-4 )']
    assert result['journal_entries'] == [{'kind': 'standby', 'id': 'pacemaker_node:cmp-2', 'node': 'cmp-2',
                                          'details': {'backend': 'pacemaker_node'}}]
    assert result['diff'] == {'before': 'node cmp-2 standby: off\n', 'after': 'node cmp-2 standby: on\n'}


def test_standby_check_mode_predicts_moves():
    cluster = FakeCluster(sim_mon='crm_mon_standby.xml')
    result = control(cluster).set_node_standby('cmp-2', True, check_mode=True)
    assert cluster.mutations() == []
    assert calls(cluster) == [(MON, None), (QUERY, None)] + dry_run_argvs(cluster, [STANDBY_ON])
    assert (result['changed'], result['enabled'], result['commands']) == (True, True, [])
    assert [m['id'] for m in result['moved_resources'] if m['from'] == ['cmp-2']] == ['vm-02', 'vm-06', 'vm-10']


def test_standby_that_would_stop_vms_is_refused_in_check_mode_and_for_real():
    # recorded dry run of cmp-2 + cmp-3 in standby, standing in for "cmp-3 while cmp-2 is already out"
    for check_mode in (True, False):
        cluster = FakeCluster(sim_mon='backend/crm_mon_dry_run_standby_cmp-2_cmp-3.xml',
                              summary=fixture('backend/crm_simulate_standby_cmp-2_cmp-3.txt'))
        with pytest.raises(P.PacemakerError) as caught:
            control(cluster).set_node_standby('cmp-3', True, check_mode=check_mode)
        assert str(caught.value) == (
            "putting cmp-3 in standby would stop vm-03, vm-07, vm-11 (pacemaker's dry run on a copy of the CIB: "
            "Migrate vm-02 ( cmp-2 -> cmp-1 ); Migrate vm-06 ( cmp-2 -> cmp-4 ); Migrate vm-10 ( cmp-2 -> cmp-1 ); "
            "Stop vm-03 ( cmp-3 ) due to node availability; Stop vm-07 ( cmp-3 ) due to node availability; Stop "
            "vm-11 ( cmp-3 ) due to node availability); nothing was changed. Make room or free capacity first, or "
            "set allow_stopped: true to accept it")
        assert cluster.mutations() == []
        assert caught.value.details['would_stop'] == ['vm-03', 'vm-07', 'vm-11']


def test_standby_stopped_after_all_fails_but_reports():
    cluster = FakeCluster(mon=['crm_mon_standby.xml', 'crm_mon_two_standby_vms_stopped.xml'],
                          sim_mon='crm_mon_standby.xml')
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).set_node_standby('cmp-3', True)
    assert str(caught.value) == ('putting cmp-3 in standby stopped vm-07, vm-11 instead of moving them (the dry run '
                                 'had not predicted it); the node stays in standby (state=disabled takes it out and '
                                 'lets them start again)')
    assert caught.value.details['stopped_resources'] == ['vm-07', 'vm-11']
    assert caught.value.details['commands'] == [P.display(STANDBY_ON).replace('cmp-2', 'cmp-3')]


def test_standby_allow_stopped_reports_without_failing():
    cluster = FakeCluster(mon=['crm_mon_standby.xml', 'crm_mon_two_standby_vms_stopped.xml'],
                          sim_mon='crm_mon_two_standby_vms_stopped.xml')
    result = control(cluster).set_node_standby('cmp-3', True, allow_stopped=True)
    assert (result['stopped_resources'], result['would_stop']) == (['vm-07', 'vm-11'], ['vm-07', 'vm-11'])


def test_standby_wait_exceeded_names_remaining():
    clock = FakeClock()
    cluster = FakeCluster(sim_mon='crm_mon_standby.xml', wait_rc=(124,), clock=clock)
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster, clock=clock).set_node_standby('cmp-2', True, wait=45)
    assert str(caught.value) == ('putting cmp-2 in standby: resources still on cmp-2 - wait=45s ran out: vm-02 is Started '
                                 'on cmp-2; vm-06 is Started on cmp-2; vm-10 is Started on cmp-2. The node stays in '
                                 'standby (state=disabled takes it out)')


def test_standby_already_is_a_no_op():
    cluster = FakeCluster(mon='crm_mon_standby.xml')
    result = control(cluster).set_node_standby('cmp-2', True)
    assert calls(cluster) == [(MON, None), (QUERY, None)]
    assert (result['changed'], result['journal_entries'], result['enabled']) == (False, [], True)


def test_unstandby_deletes_permanent_and_transient_attribute():
    status = ('<node_state id="4" uname="cmp-2"><transient_attributes id="4"><instance_attributes id="status-4">'
              '<nvpair id="status-4-standby" name="standby" value="on"/></instance_attributes>'
              '</transient_attributes></node_state>')
    cib = full_cib(node_extra={'cmp-2': '<nvpair id="nodes-4-standby" name="standby" value="on"/>'}, status=status)
    cluster = FakeCluster(mon=['crm_mon_standby.xml', 'crm_mon_healthy.xml'], cib=cib)
    result = control(cluster).set_node_standby('cmp-2', False)
    transient = STANDBY_OFF[:6] + ['reboot', '--delete']
    assert cluster.mutations() == [STANDBY_OFF, transient]
    assert (result['enabled_before'], result['enabled']) == (True, False)
    assert result['journal_entries'] == []


def test_unstandby_without_attribute_in_cib_deletes_the_permanent_one():
    cluster = FakeCluster(mon=['crm_mon_standby.xml', 'crm_mon_healthy.xml'])
    control(cluster).set_node_standby('cmp-2', False)
    assert cluster.mutations() == [STANDBY_OFF]


# -- node and cluster maintenance -------------------------------------------------

def test_node_maintenance_on():
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_node_maintenance.xml'])
    result = control(cluster).set_node_maintenance('cmp-3', True)
    on = ['/usr/sbin/crm_attribute', '--node', 'cmp-3', '--name', 'maintenance', '--lifetime', 'forever',
          '--update', 'on']
    assert calls(cluster) == [(MON, None), (QUERY, None), (on, None), (WAIT60, None), (MON, None), (MON, None),
                              (QUERY, None)]
    assert (result['enabled_before'], result['enabled'], result['unmanaged_resources']) == (
        False, True, ['vm-03', 'vm-07', 'vm-11'])
    assert result['journal_entries'] == [{'kind': 'maintenance', 'id': 'pacemaker_node_maintenance:cmp-3',
                                          'node': 'cmp-3', 'details': {'backend': 'pacemaker_node_maintenance'}}]


def test_cluster_maintenance_on_off_and_no_op():
    prop = ['/usr/sbin/crm_attribute', '--type', 'crm_config', '--name', 'maintenance-mode']
    cluster = FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_maintenance_mode.xml'])
    result = control(cluster).set_cluster_maintenance(True)
    assert cluster.mutations() == [prop + ['--update', 'true']]
    assert (result['enabled_before'], result['enabled'], result['diff']) == (
        False, True, {'before': 'maintenance-mode not set (default false)\n', 'after': 'maintenance-mode=true\n'})
    assert result['journal_entries'] == [{'kind': 'maintenance', 'id': 'pacemaker_cluster:maintenance-mode',
                                          'details': {'backend': 'pacemaker_cluster'}}]
    # leaving deletes the property: the CIB is as it was before maintenance was entered
    cluster = FakeCluster(mon=['crm_mon_maintenance_mode.xml', 'crm_mon_healthy.xml'],
                          cib=full_cib(properties={'maintenance-mode': 'true'}))
    result = control(cluster).set_cluster_maintenance(False)
    assert cluster.mutations() == [prop + ['--delete']]
    assert (result['enabled'], result['diff']) == (
        False, {'before': 'maintenance-mode=true\n', 'after': 'maintenance-mode not set (default false)\n'})
    cluster = FakeCluster(mon='crm_mon_maintenance_mode.xml')
    result = control(cluster).set_cluster_maintenance(True, check_mode=True)
    assert (result['changed'], calls(cluster)) == (False, [(MON, None), (QUERY, None)])


def test_cluster_maintenance_check_mode_runs_nothing():
    cluster = FakeCluster()
    result = control(cluster).set_cluster_maintenance(True, check_mode=True)
    assert calls(cluster) == [(MON, None), (QUERY, None)]
    assert (result['changed'], result['enabled']) == (True, True)


# -- reading ------------------------------------------------------------------------

def test_facts_with_pcs_version():
    cluster = FakeCluster()
    cluster.on(['/usr/sbin/pcs', '--version'], (0, fixture('pcs_version.txt'), ''))
    f = control(cluster).facts()
    assert calls(cluster) == [(MON, None), (QUERY, None), (['/usr/sbin/pcs', '--version'], None)]
    assert f['pcs_version'] == '0.11.5'
    assert len(f['resources']) == 14


def test_facts_without_pcs():
    cluster = FakeCluster()
    cli = P.PacemakerCli(cluster, dict(BINS, pcs=None))
    assert P.Pacemaker(cli, clock=FakeClock()).facts()['pcs_version'] is None
    assert calls(cluster) == [(MON, None), (QUERY, None)]


def test_crm_mon_failure_is_explained():
    cluster = FakeCluster()
    cluster.on(MON, (102, '<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>', ''))
    with pytest.raises(P.PacemakerError) as caught:
        control(cluster).facts()
    assert str(caught.value) == ('crm_mon could not read the cluster on this host (rc 102: Not connected); run the '
                                 'task on a node where pacemaker runs (pcs cluster start, systemctl status pacemaker)')
