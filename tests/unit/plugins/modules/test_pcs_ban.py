# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pcs_ban module against recorded pacemaker outputs (pacemaker_fake): argspec checks,
exact commands, check mode with zero mutating commands, diff only with --diff,
errors that name the problem and change nothing, result keys free of reserved names."""

from __future__ import annotations

import pytest

from ansible_collections.clusterops.upgrade.plugins.modules import pcs_ban

from pacemaker_fake import (
    RESERVED,
    Fail,
    FakeCluster,
    ModuleHarness,
    ban_xml,
    fixture,
    full_cib,
    prefer_xml,
)

BAN_A = ['/usr/sbin/crm_resource', '--ban', '--resource', 'lb_float_ip', '--node', 'ctl-a']
KEYS = {'changed', 'commands', 'planned_commands', 'transition_summary', 'settled', 'moved_resources',
        'stopped_resources', 'started_resources', 'journal_entries', 'constraints_created', 'constraints_removed',
        'constraints_pre_existing', 'resource_nodes_before', 'resource_nodes', 'lifetime_end', 'would_stop'}


def delete(cid):
    return ['/usr/sbin/cibadmin', '--delete', '--xpath', "/cib/configuration/constraints/rsc_location[@id='%s']" % cid]


def harness(monkeypatch, **kwargs):
    return ModuleHarness(monkeypatch, FakeCluster(**kwargs))


def test_ban_present(monkeypatch):
    h = harness(monkeypatch, mon=['crm_mon_healthy.xml', 'crm_mon_ban.xml'], sim_mon='crm_mon_ban.xml',
                cib=[full_cib(), full_cib(constraints='cibadmin_constraints_ban.xml')])
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a'})
    assert set(result) == KEYS
    assert not RESERVED & set(result)
    assert h.cluster.mutations() == [BAN_A]
    assert (result['changed'], result['constraints_created'], result['resource_nodes']) == (
        True, ['cli-ban-lb_float_ip-on-ctl-a'], ['ctl-b'])
    for kwargs in h.kwargs:
        assert (kwargs['expand_user_and_vars'], kwargs['check_rc']) == (False, False)
        assert kwargs['environ_update']['LANG'] == 'C'


def test_ban_check_mode_with_diff(monkeypatch):
    h = harness(monkeypatch, sim_mon='crm_mon_ban.xml')
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a', 'lifetime': 'PT15S'},
                   check_mode=True, diff=True)
    assert h.cluster.mutations() == []
    assert (result['changed'], result['commands']) == (True, [])
    assert result['diff'] == {'before': '', 'after': 'cli-ban-lb_float_ip-on-ctl-a: lb_float_ip -INFINITY on ctl-a '
                                                     'until 2036-11-22 02:50:00Z\n'}
    assert result['journal_entries'] == [{'kind': 'ban', 'id': 'cli-ban-lb_float_ip-on-ctl-a', 'node': 'ctl-a',
                                          'resource': 'lb_float_ip'}]


def test_second_ban_changes_nothing(monkeypatch):
    h = harness(monkeypatch, mon='crm_mon_ban.xml', cib=full_cib(constraints='cibadmin_constraints_ban.xml'))
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a'})
    assert h.cluster.mutations() == []
    assert (result['changed'], result['constraints_pre_existing'], result['journal_entries']) == (
        False, ['cli-ban-lb_float_ip-on-ctl-a'], [])
    assert 'diff' not in result


def test_absent_removes_only_our_kind(monkeypatch):
    extra = (ban_xml('lb_float_ip', 'ctl-a') + prefer_xml('lb_float_ip', 'ctl-a')
             + '<rsc_location id="ops-vip-avoid-cmp-1" rsc="lb_float_ip" node="cmp-1" score="-INFINITY"/>')
    h = harness(monkeypatch, mon='crm_mon_ban.xml', cib=full_cib(extra_constraints=extra))
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'state': 'absent'})
    assert h.cluster.mutations() == [delete('cli-ban-lb_float_ip-on-ctl-a')]
    assert (result['changed'], result['constraints_removed']) == (True, ['cli-ban-lb_float_ip-on-ctl-a'])


@pytest.mark.parametrize('args, message', [
    ({'resource': 'lb_float_ip'}, 'node is required with state=present: name the node the resource must leave'),
    ({'resource': 'lb_float_ip', 'node': 'ctl-a', 'lifetime': '15 minutes'},
     "lifetime '15 minutes' is not an ISO 8601 duration such as PT15M, PT2H or P1D"),
    ({'resource': 'lb_float_ip', 'state': 'absent', 'lifetime': 'PT1H'}, 'lifetime is only used with state=present'),
    ({'resource': 'lb_float_ip', 'node': 'ctl-a', 'wait': -1}, 'wait must be 0 or more seconds, got -1'),
])
def test_bad_options_fail_before_any_command(monkeypatch, args, message):
    h = harness(monkeypatch)
    result = h.run(pcs_ban.main, args, expect=Fail)
    assert result['msg'] == message
    assert h.cluster.calls == []


def test_option_names_in_hints_exist():
    spec = pcs_ban.argument_spec()
    for name in ('node', 'state', 'lifetime', 'wait', 'allow_stopped', 'allow_no_quorum'):
        assert name in spec


def test_unknown_resource_fails_naming_it(monkeypatch):
    h = harness(monkeypatch)
    result = h.run(pcs_ban.main, {'resource': 'vip', 'node': 'ctl-a'}, expect=Fail)
    assert result['msg'].startswith("resource 'vip' is not in the cluster; known resources, groups and clones: "
                                    "lb_float_ip, mgmt, mgmt-api, vm-01")
    assert h.cluster.mutations() == []


def test_no_quorum_refused_then_allowed(monkeypatch):
    no_quorum = fixture('crm_mon_healthy.xml').replace('with_quorum="true"', 'with_quorum="false"')
    h = harness(monkeypatch, mon=no_quorum, sim_mon='crm_mon_ban.xml')
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a'}, expect=Fail)
    assert 'has no quorum; refusing to change the cluster' in result['msg']
    assert h.cluster.mutations() == []
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a', 'allow_no_quorum': True},
                   check_mode=True)
    assert result['changed'] is True


def test_missing_tools(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(), missing=('crm_mon',))
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a'}, expect=Fail)
    assert result['msg'] == ('crm_mon not found on this host: run the task on a pacemaker cluster node (the pacemaker '
                             'command line tools, e.g. package pacemaker-cli-utils)')


def test_wait_exceeded_returns_what_was_done(monkeypatch):
    h = harness(monkeypatch, sim_mon='crm_mon_ban.xml', wait_rc=(124,))
    result = h.run(pcs_ban.main, {'resource': 'lb_float_ip', 'node': 'ctl-a', 'wait': 1}, expect=Fail)
    assert result['msg'].startswith('lb_float_ip did not leave ctl-a - wait=1s ran out: lb_float_ip is Started on ctl-a.')
    assert (result['changed'], result['constraints_created'], result['settled']) == (
        True, ['cli-ban-lb_float_ip-on-ctl-a'], False)
    assert not (RESERVED - {'msg'}) & set(result)
