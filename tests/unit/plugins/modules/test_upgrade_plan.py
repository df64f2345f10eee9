# -*- coding: utf-8 -*-
# Copyright: (c) 2026, clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the upgrade_plan module, driven through its real argument spec."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.clusterops.upgrade.plugins.modules import upgrade_plan

HOSTS = [
    {'name': 'node1', 'capacity': {'memory': 1000}, 'role': 'aio'},
    {'name': 'node2', 'capacity': {'memory': 1000}},
    {'name': 'node3', 'capacity': {'memory': 1000}},
    {'name': 'node4', 'capacity': {'memory': 1000}, 'upgraded': True},
]
VMS = [
    {'name': 'db1', 'host': 'node2', 'demand': {'memory': 400}},
    {'name': 'app1', 'host': 'node3', 'demand': {'memory': 300}},
    {'name': 'gpu1', 'host': 'node3', 'demand': {'memory': 100}, 'pinned': True},
    {'name': 'mgmt', 'host': 'node1', 'demand': {'memory': 200}},
]


def run_module(capsys, args):
    """Run the module with `args`; return (exit code, result dict)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            upgrade_plan.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_plan_is_returned(capsys):
    code, result = run_module(capsys, {'hosts': HOSTS, 'vms': VMS, 'headroom': 10, 'max_parallel': 2})
    assert code == 0
    assert result['changed'] is False
    assert result['batches'] == [['node1'], ['node2', 'node3']]
    assert result['lower_bound'] == 2
    assert result['host_count'] == 3
    assert result['already_upgraded'] == ['node4']
    assert result['resources'] == ['memory']
    first, second = result['batch_details']
    assert first['moves'] == [{'vm': 'mgmt', 'source': 'node1', 'target': 'node4'}]
    assert first['free_after'] == {'node2': {'memory': 500}, 'node3': {'memory': 500}, 'node4': {'memory': 700}}
    assert second['number'] == 2
    # best fit: db1 (400) then app1 (300) fill node4 exactly to its usable 900
    assert second['moves'] == [{'vm': 'app1', 'source': 'node3', 'target': 'node4'},
                               {'vm': 'db1', 'source': 'node2', 'target': 'node4'}]
    assert second['stop'] == [{'vm': 'gpu1', 'host': 'node3'}]
    assert second['restart'] == [{'vm': 'gpu1', 'host': 'node3'}]
    assert second['evacuate'] == ['node2', 'node3']
    assert second['free_after'] == {'node1': {'memory': 900}, 'node4': {'memory': 0}}
    assert result['plan_text'].startswith(
        'Upgrade plan: 3 host(s) in 2 batch(es); lower bound 2; one host at a time would take 3.\n'
        'Evacuation: migrate, headroom 10%, max_parallel 2, aio_first yes.\n')
    assert '  migrate db1: node2 -> node4\n' in result['plan_text']
    for reserved in ('msg', 'warnings', 'evacuation', 'headroom'):
        assert reserved not in result


def test_check_mode_gives_the_same_plan(capsys):
    args = {'hosts': HOSTS, 'vms': VMS, 'headroom': 10, 'max_parallel': 2}
    dummy, normal = run_module(capsys, args)
    code, checked = run_module(capsys, dict(args, _ansible_check_mode=True))
    assert code == 0
    assert checked['changed'] is False
    for key in ('batches', 'batch_details', 'lower_bound', 'plan_text'):
        assert checked[key] == normal[key]


def test_shutdown_mode(capsys):
    code, result = run_module(capsys, {'hosts': HOSTS, 'vms': VMS, 'evacuation': 'shutdown', 'aio_first': False})
    assert code == 0
    assert result['batches'] == [['node1', 'node2', 'node3']]
    assert result['batch_details'][0]['moves'] == []
    assert [s['vm'] for s in result['batch_details'][0]['stop']] == ['app1', 'db1', 'gpu1', 'mgmt']


def test_order_and_defaults_of_suboptions(capsys):
    hosts = [{'name': n, 'capacity': {'memory': '100'}} for n in ('a', 'b', 'c')]
    code, result = run_module(capsys, {'hosts': hosts, 'order': [['c', 'b']]})
    assert code == 0
    assert result['batches'] == [['b', 'c'], ['a']]


def test_failure_names_the_vm(capsys):
    vms = VMS + [{'name': 'huge', 'host': 'node2', 'demand': {'memory': 950}}]
    code, result = run_module(capsys, {'hosts': HOSTS, 'vms': vms, 'headroom': 10})
    assert code == 1
    assert result['failed'] is True
    assert result['msg'] == (
        'VM huge on host node2 needs memory=950, more than the usable capacity of any other host in storage group '
        'default (largest: node1 with memory=900); these VMs fit nowhere at headroom 10%: use a bigger host, lower '
        'headroom, or mark them not migratable so they are stopped and restarted')


def test_unknown_host_fails(capsys):
    code, result = run_module(capsys, {'hosts': HOSTS, 'vms': [{'name': 'v', 'host': 'node9'}]})
    assert code == 1
    assert result['msg'] == "VM v is on host 'node9', which is not in hosts; add the host or fix the VM"


def test_overloaded_host_warns(capsys, monkeypatch):
    # Capture warnings at the module's own seam: ansible-core keeps warnings in a
    # process-wide registry, which other tests in the same run may have drained.
    from ansible.module_utils import basic
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, text: warned.append(text))
    vms = [{'name': 'a', 'host': 'node2', 'demand': {'memory': 500}},
           {'name': 'b', 'host': 'node2', 'demand': {'memory': 450}}]
    code, result = run_module(capsys, {'hosts': HOSTS, 'vms': vms, 'headroom': 10})
    assert code == 0
    assert warned == ['host node2 already uses memory=950, above its usable memory=900 at headroom 10%; the plan '
                      'never adds to it']


FACTS = {
    'nodes': [
        {'name': 'n1', 'online': True, 'standby': False, 'maintenance': False,
         'utilization': {'memory': '2048'}, 'attributes': {'san': 'a'}},
        {'name': 'n2', 'online': True, 'standby': False, 'maintenance': False,
         'utilization': {'memory': '2048'}, 'attributes': {'san': 'a'}},
    ],
    'resources': [
        {'id': 'vm1', 'agent': 'ocf:pacemaker:Dummy', 'role': 'Started', 'nodes': ['n1'],
         'allow_migrate': True, 'utilization': {'memory': '512'}},
    ],
}


def test_facts_input(capsys):
    code, result = run_module(capsys, {'facts': FACTS, 'fact_attributes': {'storage_group': 'san'}})
    assert code == 0
    assert result['batches'] == [['n2'], ['n1']]
    assert result['batch_details'][1]['moves'] == [{'vm': 'vm1', 'source': 'n1', 'target': 'n2'}]


def test_facts_with_a_node_in_standby_fail(capsys):
    facts = json.loads(json.dumps(FACTS))
    facts['nodes'][1]['standby'] = True
    code, result = run_module(capsys, {'facts': facts})
    assert code == 1
    assert result['msg'].startswith('node(s) n2 (standby) are not in service;')


def test_facts_and_vms_are_exclusive(capsys):
    code, result = run_module(capsys, {'facts': FACTS, 'vms': VMS})
    assert code == 1
    assert result['msg'] == 'vms cannot be combined with facts: the VMs come from facts.resources'


def test_facts_and_hosts_are_exclusive(capsys):
    code, result = run_module(capsys, {'facts': FACTS, 'hosts': HOSTS})
    assert code == 1
    assert result['msg'] == 'parameters are mutually exclusive: hosts|facts'


def test_hosts_or_facts_required(capsys):
    code, result = run_module(capsys, {'vms': VMS})
    assert code == 1
    assert result['msg'] == 'one of the following is required: hosts, facts'
