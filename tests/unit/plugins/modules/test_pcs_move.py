# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pcs_move module against recorded pacemaker outputs: the temporary cli-prefer is
created and removed by id, no-op when already there, refusals change nothing."""

from __future__ import annotations

from ansible_collections.clusterops.upgrade.plugins.modules import pcs_move

from pacemaker_fake import RESERVED, Fail, FakeCluster, ModuleHarness, full_cib, prefer_xml

CREATE = ['/usr/sbin/cibadmin', '--create', '--scope', 'constraints', '--xml-text',
          '<rsc_location id="cli-prefer-mgmt" rsc="mgmt" role="Started" node="ctl-b" score="INFINITY" />']
DELETE = ['/usr/sbin/cibadmin', '--delete', '--xpath', "/cib/configuration/constraints/rsc_location[@id='cli-prefer-mgmt']"]
KEYS = {'changed', 'commands', 'planned_commands', 'transition_summary', 'settled', 'moved_resources',
        'stopped_resources', 'started_resources', 'journal_entries', 'resource_nodes_before', 'resource_nodes',
        'prefer_created', 'prefer_removed', 'would_stop'}


def test_move(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_ban.xml'],
                                               sim_mon='crm_mon_ban.xml'))
    result = h.run(pcs_move.main, {'resource': 'mgmt', 'node': 'ctl-b'}, diff=True)
    assert set(result) == KEYS | {'diff'}
    assert not RESERVED & set(result)
    assert h.cluster.mutations() == [CREATE, DELETE]
    assert (result['resource_nodes_before'], result['resource_nodes'], result['prefer_removed']) == (
        ['ctl-a'], ['ctl-b'], 'cli-prefer-mgmt')
    rule = 'location-mgmt-controllers: mgmt -INFINITY where clusterops-role ne controller or clusterops-role not_defined\n'
    assert result['diff'] == {'before': rule, 'after': rule}


def test_move_check_mode(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(sim_mon='crm_mon_ban.xml'))
    result = h.run(pcs_move.main, {'resource': 'mgmt', 'node': 'ctl-b'}, check_mode=True)
    assert h.cluster.mutations() == []
    assert (result['changed'], result['resource_nodes']) == (True, ['ctl-b'])


def test_move_no_op(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster())
    result = h.run(pcs_move.main, {'resource': 'mgmt', 'node': 'ctl-a'})
    assert (result['changed'], result['commands'], result['prefer_created']) == (False, [], None)
    assert h.cluster.mutations() == []


def test_move_refuses_operator_prefer(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(cib=full_cib(extra_constraints=prefer_xml('mgmt', 'ctl-a'))))
    result = h.run(pcs_move.main, {'resource': 'mgmt', 'node': 'ctl-b'}, expect=Fail)
    assert result['msg'].startswith('cli-prefer-mgmt already exists (cli-prefer-mgmt: mgmt INFINITY on ctl-a)')
    assert h.cluster.mutations() == []


def test_move_to_offline_node(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(mon='crm_mon_node_offline.xml'))
    result = h.run(pcs_move.main, {'resource': 'vm-01', 'node': 'cmp-4'}, expect=Fail)
    assert result['msg'] == ('node cmp-4 is offline; a move to it is refused while it is not a clean cluster member: '
                             'bring it back first (pcs cluster start cmp-4) and check crm_mon')


def test_move_negative_wait(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster())
    result = h.run(pcs_move.main, {'resource': 'mgmt', 'node': 'ctl-b', 'wait': -5}, expect=Fail)
    assert result['msg'] == 'wait must be 0 or more seconds, got -5'
    assert h.cluster.calls == []
