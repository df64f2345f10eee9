# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance_mode module: every backend through one interface, option checks,
check mode with zero mutating commands, the command backend's query contract."""

from __future__ import annotations

import pytest

from ansible_collections.clusterops.upgrade.plugins.modules import maintenance_mode

from pacemaker_fake import RESERVED, Fail, FakeCluster, ModuleHarness, full_cib

STANDBY_ON = ['/usr/sbin/crm_attribute', '--node', 'cmp-2', '--name', 'standby', '--lifetime', 'forever',
              '--update', 'on']
QUERY = ['/opt/platformctl', 'is-maintenance', 'cmp-2']
ENTER = ['/opt/platformctl', 'enter', 'cmp-2']
EXIT = ['/opt/platformctl', 'exit', 'cmp-2']
COMMAND = {'enter': ENTER, 'exit': EXIT, 'query': QUERY}
KEYS = {'changed', 'commands', 'planned_commands', 'transition_summary', 'settled', 'moved_resources',
        'stopped_resources', 'started_resources', 'journal_entries', 'node', 'enabled_before', 'enabled',
        'remaining_resources'}


def test_standby_backend(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(mon=['crm_mon_healthy.xml', 'crm_mon_standby.xml'],
                                               sim_mon='crm_mon_standby.xml'))
    result = h.run(maintenance_mode.main, {'backend': 'pacemaker_node', 'node': 'cmp-2'}, diff=True)
    assert set(result) == KEYS | {'would_stop', 'diff'}
    assert not RESERVED & set(result)
    assert h.cluster.mutations() == [STANDBY_ON]
    assert (result['enabled_before'], result['enabled'], result['stopped_resources']) == (False, True, [])
    assert result['diff'] == {'before': 'node cmp-2 standby: off\n', 'after': 'node cmp-2 standby: on\n'}


def test_standby_check_mode_reports_would_stop_and_fails_like_the_real_run(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster(mon='crm_mon_standby.xml',
                                               sim_mon='crm_mon_two_standby_vms_stopped.xml'))
    result = h.run(maintenance_mode.main, {'backend': 'pacemaker_node', 'node': 'cmp-3'}, check_mode=True,
                   expect=Fail)
    assert result['msg'].startswith("putting cmp-3 in standby would stop vm-07, vm-11 (pacemaker's dry run")
    assert result['would_stop'] == ['vm-07', 'vm-11']
    assert h.cluster.mutations() == []
    result = h.run(maintenance_mode.main, {'backend': 'pacemaker_node', 'node': 'cmp-3', 'allow_stopped': True},
                   check_mode=True)
    assert (result['changed'], result['stopped_resources']) == (True, ['vm-07', 'vm-11'])
    assert h.cluster.mutations() == []


def test_node_maintenance_backend(monkeypatch):
    cib = full_cib(node_extra={'cmp-3': '<nvpair id="nodes-5-maintenance" name="maintenance" value="on"/>'})
    h = ModuleHarness(monkeypatch, FakeCluster(mon=['crm_mon_node_maintenance.xml', 'crm_mon_healthy.xml'], cib=cib))
    result = h.run(maintenance_mode.main, {'backend': 'pacemaker_node_maintenance', 'node': 'cmp-3',
                                           'state': 'disabled'})
    assert h.cluster.mutations() == [['/usr/sbin/crm_attribute', '--node', 'cmp-3', '--name', 'maintenance',
                                      '--lifetime', 'forever', '--delete']]
    assert (result['enabled_before'], result['enabled']) == (True, False)


def test_cluster_backend_check_mode(monkeypatch):
    h = ModuleHarness(monkeypatch, FakeCluster())
    result = h.run(maintenance_mode.main, {'backend': 'pacemaker_cluster'}, check_mode=True)
    assert h.cluster.mutations() == []
    assert (result['changed'], result['enabled'], result['node']) == (True, True, None)
    assert result['planned_commands'] == [
        '/usr/sbin/crm_attribute --type crm_config --name maintenance-mode --update true']


@pytest.mark.parametrize('args, message', [
    ({'backend': 'pacemaker_node'}, 'node is required with backend=pacemaker_node'),
    ({'backend': 'pacemaker_node_maintenance'}, 'node is required with backend=pacemaker_node_maintenance'),
    ({'backend': 'pacemaker_cluster', 'node': 'cmp-1'},
     'node is not used by backend=pacemaker_cluster (it changes the whole cluster); drop it'),
    ({'backend': 'command'}, 'backend=command needs command.query (and command.enter / command.exit)'),
    ({'backend': 'command', 'command': {'query': []}}, 'command.query must not be empty'),
    ({'backend': 'pacemaker_node', 'node': 'cmp-1', 'command': COMMAND}, 'command is only used by backend=command'),
    ({'backend': 'pacemaker_cluster', 'allow_stopped': True}, 'allow_stopped is only used by backend=pacemaker_node'),
    ({'backend': 'command', 'command': COMMAND, 'allow_no_quorum': True},
     'allow_no_quorum is only used by the pacemaker backends'),
    ({'backend': 'pacemaker_cluster', 'wait': -2}, 'wait must be 0 or more seconds, got -2'),
])
def test_bad_options(monkeypatch, args, message):
    h = ModuleHarness(monkeypatch, FakeCluster())
    result = h.run(maintenance_mode.main, args, expect=Fail)
    assert result['msg'] == message
    assert h.cluster.calls == []


def test_hints_name_real_options():
    spec = maintenance_mode.argument_spec()
    assert {'node', 'command', 'allow_stopped', 'allow_no_quorum', 'wait', 'state'} <= set(spec)
    assert set(spec['command']['options']) == {'enter', 'exit', 'query'}


def command_cluster(*query_rcs):
    cluster = FakeCluster()
    cluster.on(QUERY, *[(rc, '', '') for rc in query_rcs])
    return cluster


def test_command_backend_enter(monkeypatch):
    h = ModuleHarness(monkeypatch, command_cluster(1, 0))
    result = h.run(maintenance_mode.main, {'backend': 'command', 'node': 'cmp-2', 'command': COMMAND})
    assert h.cluster.argvs == [QUERY, ENTER, QUERY]
    assert (result['changed'], result['enabled_before'], result['enabled'], result['settled']) == (
        True, False, True, True)
    assert result['commands'] == ['/opt/platformctl enter cmp-2']
    assert result['journal_entries'] == [{'kind': 'maintenance', 'id': 'command:cmp-2', 'node': 'cmp-2',
                                          'details': {'backend': 'command'}}]


def test_command_backend_check_mode_only_queries(monkeypatch):
    h = ModuleHarness(monkeypatch, command_cluster(1))
    result = h.run(maintenance_mode.main, {'backend': 'command', 'node': 'cmp-2', 'command': COMMAND},
                   check_mode=True)
    assert h.cluster.argvs == [QUERY]
    assert (result['changed'], result['enabled']) == (True, True)


def test_command_backend_already_disabled(monkeypatch):
    h = ModuleHarness(monkeypatch, command_cluster(1))
    result = h.run(maintenance_mode.main, {'backend': 'command', 'state': 'disabled', 'command': COMMAND})
    assert h.cluster.argvs == [QUERY]
    assert (result['changed'], result['node']) == (False, None)


def test_command_backend_query_other_rc_is_an_error(monkeypatch):
    h = ModuleHarness(monkeypatch, command_cluster(3))
    result = h.run(maintenance_mode.main, {'backend': 'command', 'command': COMMAND}, expect=Fail)
    assert result['msg'] == ('the query command /opt/platformctl is-maintenance cmp-2 exited 3, which means neither '
                             'enabled (0) nor disabled (1): no output')


def test_command_backend_wait_exceeded(monkeypatch):
    h = ModuleHarness(monkeypatch, command_cluster(1, 1))
    result = h.run(maintenance_mode.main, {'backend': 'command', 'command': COMMAND, 'wait': 0}, expect=Fail)
    assert result['msg'] == ('after the enter command the query /opt/platformctl is-maintenance cmp-2 still says '
                             'disabled after wait=0s')
    assert (result['changed'], result['enabled'], result['settled']) == (True, False, False)


def test_command_backend_enter_fails(monkeypatch):
    cluster = command_cluster(1)
    cluster.on(ENTER, (2, '', 'platform busy'))
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(maintenance_mode.main, {'backend': 'command', 'command': COMMAND}, expect=Fail)
    assert result['msg'] == 'the enter command /opt/platformctl enter cmp-2 failed (rc 2): platform busy'


def test_command_backend_missing_exit(monkeypatch):
    h = ModuleHarness(monkeypatch, command_cluster(0))
    result = h.run(maintenance_mode.main, {'backend': 'command', 'state': 'disabled',
                                           'command': {'enter': ENTER, 'query': QUERY}}, expect=Fail)
    assert result['msg'] == ('the command backend needs the exit command to leave maintenance; give it as an argv '
                             'list in command.exit')
    assert h.cluster.argvs == [QUERY]
