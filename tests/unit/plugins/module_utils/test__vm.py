# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_vm: which VMs run where, stopping and starting them through the pacemaker seam with the
exact argv, journal entries only for VMs this call changed, nothing run in check mode."""

from __future__ import annotations

import re

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker, _vm

from pacemaker_fake import BINS, C_ENV, MON, QUERY, FakeClock, FakeCluster, fixture

HEALTHY = fixture('crm_mon_healthy.xml')
WAIT = [BINS['crm_resource'], '--wait', '--timeout']


def stopped(text, *vms):
    """crm_mon XML with these VMs stopped by configuration (target-role Stopped)."""
    for vm in vms:
        text = re.sub(r'<resource id="%s" ([^>]*)role="Started" active="true"([^>]*)>\s*<node [^>]*/>\s*</resource>' % vm,
                      r'<resource id="%s" \1role="Stopped" target_role="Stopped" active="false"\2>'
                      r'</resource>' % vm, text)
    return text


def backend(cluster):
    clock = FakeClock()
    cluster.clock = clock
    return _pacemaker.Pacemaker(_pacemaker.PacemakerCli(cluster, BINS), clock)


def test_running_vms_and_decide():
    facts = backend(FakeCluster()).read()
    assert _vm.running_vms(facts, 'cmp-2') == ['vm-02', 'vm-06', 'vm-10']
    assert len(_vm.running_vms(facts)) == 12
    assert _vm.decide(facts, 'stopped', node='cmp-2') == (['vm-02', 'vm-06', 'vm-10'], [])
    assert _vm.decide(facts, 'started', resources=['vm-02']) == ([], ['vm-02'])


def test_stop_the_vms_of_a_node_exact_argv():
    cluster = FakeCluster(mon=[HEALTHY, stopped(HEALTHY, 'vm-02', 'vm-06', 'vm-10')])
    result = _vm.set_power(backend(cluster), 'stopped', node='cmp-2', wait=60)
    stops = [[BINS['crm_resource'], '--resource', vm, '--meta', '--set-parameter', 'target-role',
              '--parameter-value', 'Stopped'] for vm in ('vm-02', 'vm-06', 'vm-10')]
    assert cluster.argvs == [MON, QUERY] + stops + [WAIT + ['60s'], MON, QUERY]
    assert all(env == C_ENV for _argv, env in cluster.calls)
    assert result['journal_entries'] == [
        {'kind': 'stopped_vm', 'id': vm, 'resource': vm, 'node': 'cmp-2', 'details': {'target_role_before': None}}
        for vm in ('vm-02', 'vm-06', 'vm-10')]
    assert (result['changed'], result['vms'], result['placement']) == (
        True, ['vm-02', 'vm-06', 'vm-10'], {'vm-02': [], 'vm-06': [], 'vm-10': []})


def test_check_mode_predicts_and_runs_nothing():
    cluster = FakeCluster(mon=[HEALTHY])
    result = _vm.set_power(backend(cluster), 'stopped', node='cmp-2', check_mode=True)
    assert cluster.argvs == [MON, QUERY]
    assert (result['changed'], result['commands'], len(result['planned_commands'])) == (True, [], 3)
    assert result['running_vms'] == ['vm-02', 'vm-06', 'vm-10']


def test_start_exactly_the_named_vms():
    cluster = FakeCluster(mon=[stopped(HEALTHY, 'vm-02', 'vm-06'), HEALTHY])
    result = _vm.set_power(backend(cluster), 'started', resources=['vm-02', 'vm-06'], wait=30)
    assert cluster.mutations() == [[BINS['crm_resource'], '--resource', vm, '--meta', '--delete-parameter',
                                    'target-role'] for vm in ('vm-02', 'vm-06')]
    assert (result['vms'], result['journal_entries'], result['placement']) == (
        ['vm-02', 'vm-06'], [], {'vm-02': ['cmp-2'], 'vm-06': ['cmp-2']})


def test_an_operator_stopped_vm_is_never_listed():
    cluster = FakeCluster(mon=[stopped(HEALTHY, 'vm-02')])
    result = _vm.set_power(backend(cluster), 'stopped', resources=['vm-02'])
    assert (result['changed'], result['vms'], result['unchanged'], result['journal_entries']) == (
        False, [], ['vm-02'], [])
    assert cluster.mutations() == []


def test_wait_runs_out():
    cluster = FakeCluster(mon=[HEALTHY], wait_rc=(124,))
    with pytest.raises(_pacemaker.PacemakerError) as err:
        _vm.set_power(backend(cluster), 'stopped', resources=['vm-02'], wait=20)
    assert str(err.value) == 'vm-02 did not stop within wait=20s: vm-02 is Started'
    assert err.value.details['commands'] == [[BINS['crm_resource'], '--resource', 'vm-02', '--meta',
                                              '--set-parameter', 'target-role', '--parameter-value', 'Stopped']]


@pytest.mark.parametrize('kwargs, message', [
    ({'resources': ['vm-99']}, 'vm-99: not a resource of this cluster; known VMs: vm-01, vm-02, vm-03, vm-04, '
                               'vm-05, vm-06, vm-07, vm-08, vm-09, vm-10, vm-11, vm-12'),
    ({'node': 'cmp-9'}, "node 'cmp-9' is not a node of this cluster; known nodes: cmp-1, cmp-2, cmp-3, cmp-4, "
                        'ctl-a, ctl-b'),
])
def test_refusals_change_nothing(kwargs, message):
    cluster = FakeCluster()
    with pytest.raises(_pacemaker.PacemakerError) as err:
        _vm.set_power(backend(cluster), 'stopped', **kwargs)
    assert str(err.value) == message
    assert cluster.mutations() == []
