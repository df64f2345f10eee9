# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_power module: options, check mode without a mutating command, the result keys."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.clusterops.upgrade.plugins.modules import vm_power

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils"))

from pacemaker_fake import RESERVED, Fail, FakeCluster, ModuleHarness  # noqa: E402


def test_check_mode_lists_the_vms_of_a_node(monkeypatch):
    cluster = FakeCluster()
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(vm_power.main, {'state': 'stopped', 'node': 'cmp-3'}, check_mode=True)
    assert cluster.mutations() == []
    assert (result['changed'], result['vms'], result['running_vms']) == (True, ['vm-03', 'vm-07', 'vm-11'],
                                                                         ['vm-03', 'vm-07', 'vm-11'])
    assert [e['id'] for e in result['journal_entries']] == ['vm-03', 'vm-07', 'vm-11']
    assert set(result) == {'changed', 'vms', 'unchanged', 'running_vms', 'planned_commands', 'commands',
                           'placement', 'journal_entries'}
    assert not RESERVED & set(result)


@pytest.mark.parametrize('args, message', [
    ({'state': 'started', 'node': 'cmp-1'},
     'state=started needs vms: the VMs to start (for example the stopped_vm entries of the upgrade journal)'),
    ({'state': 'stopped'}, 'give vms (the VMs to stop) or node (stop every VM running there)'),
    ({'state': 'stopped', 'vms': ['vm-01'], 'node': 'cmp-1'},
     'vms and node are mutually exclusive: name the VMs or the node, not both'),
    ({'state': 'stopped', 'vms': ['vm-01'], 'wait': -1}, 'wait must be 0 or more, got -1'),
])
def test_bad_options_change_nothing(monkeypatch, args, message):
    cluster = FakeCluster()
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(vm_power.main, args, expect=Fail)
    assert (result['msg'], cluster.calls) == (message, [])


def test_unknown_vm_fails_without_a_change(monkeypatch):
    cluster = FakeCluster()
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(vm_power.main, {'state': 'started', 'vms': ['vm-77']}, expect=Fail)
    assert result['msg'].startswith('vm-77: not a resource of this cluster; known VMs: vm-01, ')
    assert (result['changed'], cluster.mutations()) == (False, [])
