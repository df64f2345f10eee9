# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pcs_info module: read-only, the documented keys, no reserved ones."""

from __future__ import annotations

from ansible_collections.clusterops.upgrade.plugins.modules import pcs_info

from pacemaker_fake import RESERVED, Fail, FakeCluster, ModuleHarness, fixture

KEYS = {'changed', 'dc', 'dc_present', 'quorum', 'pacemaker_version', 'pcs_version', 'maintenance_mode',
        'cluster_options', 'cluster_properties', 'resource_defaults', 'nodes_configured', 'resources_configured',
        'failed_actions', 'nodes', 'resources', 'groups', 'clones', 'location_constraints', 'cli_bans',
        'cli_prefers', 'other_constraints'}


def test_info(monkeypatch):
    cluster = FakeCluster(mon='crm_mon_ban.xml')
    cluster.on(['/usr/sbin/pcs', '--version'], (0, fixture('pcs_version.txt'), ''))
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(pcs_info.main, {}, check_mode=True)
    assert set(result) == KEYS
    assert not RESERVED & set(result)
    assert h.cluster.mutations() == []
    assert [argv for argv, env in cluster.calls] == [
        ['/usr/sbin/crm_mon', '--one-shot', '--inactive', '--output-as=xml'], ['/usr/sbin/cibadmin', '--query'],
        ['/usr/sbin/pcs', '--version']]
    assert (result['changed'], result['dc'], result['quorum'], result['pcs_version']) == (False, 'cmp-4', True, '0.11.5')
    assert [n['name'] for n in result['nodes']] == ['cmp-1', 'cmp-2', 'cmp-3', 'cmp-4', 'ctl-a', 'ctl-b']
    lb = result['resources'][0]
    assert (lb['id'], lb['nodes'], lb['group'], lb['bans']) == (
        'lb_float_ip', ['ctl-b'], 'mgmt', [{'id': 'cli-ban-lb_float_ip-on-ctl-a', 'node': 'ctl-a', 'weight': -1000000}])
    node_keys = {'name', 'id', 'online', 'standby', 'standby_onfail', 'maintenance', 'pending', 'unclean', 'shutdown',
                 'expected_up', 'is_dc', 'resources_running', 'type', 'health', 'attributes', 'transient_attributes',
                 'utilization'}
    assert set(result['nodes'][0]) == node_keys


def test_info_without_pcs(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(), missing=('pcs',))
    result = h.run(pcs_info.main, {})
    assert result['pcs_version'] is None


def test_info_fails_off_cluster(monkeypatch):
    cluster = FakeCluster()
    cluster.on(['/usr/sbin/crm_mon', '--one-shot', '--inactive', '--output-as=xml'],
               (102, '', 'crm_mon: Error: cluster is not available on this node'))
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(pcs_info.main, {}, expect=Fail)
    assert result['msg'] == ('crm_mon could not read the cluster on this host (rc 102: crm_mon: Error: cluster is not '
                             'available on this node); run the task on a node where pacemaker runs (pcs cluster '
                             'start, systemctl status pacemaker)')
