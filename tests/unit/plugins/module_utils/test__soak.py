# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_soak on crm_mon outputs recorded in the lab: what counts as a problem, waiting until
healthy, holding, aborting at the first regression, the exact crm_mon argv and HTTP probes."""

from __future__ import annotations

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _pacemaker, _soak
from ansible_collections.clusterops.upgrade.plugins.module_utils._soak import SoakError

from pacemaker_fake import BINS, C_ENV, MON, FakeClock, fixture

HEALTHY = fixture('crm_mon_healthy.xml')
VIP_ON_CTL_A = {'resource': 'lb_float_ip', 'resource_node': 'ctl-a'}


def state(name):
    return _pacemaker.parse_crm_mon(fixture(name))


@pytest.mark.parametrize('name, expect, problems', [
    ('crm_mon_healthy.xml', VIP_ON_CTL_A, []),
    ('crm_mon_healthy.xml', {'resource': 'lb_float_ip', 'resource_node': 'ctl-b'},
     ['lb_float_ip runs on ctl-a, not on ctl-b']),
    ('crm_mon_healthy.xml', {'resource': 'nope'}, ['resource nope is not in the cluster']),
    ('crm_mon_healthy.xml', {'nodes': ['ctl-a', 'ctl-z']}, ['node ctl-z is not a member of the cluster']),
    ('crm_mon_node_offline.xml', {}, ['node cmp-4 is offline']),
    ('crm_mon_node_offline.xml', {'nodes': ['ctl-a']}, []),
    ('crm_mon_two_standby_vms_stopped.xml', {}, ['vm-07 is Stopped', 'vm-11 is Stopped']),
    ('crm_mon_two_standby_vms_stopped.xml', {'all_started': False}, []),
])
def test_evaluate(name, expect, problems):
    assert _soak.evaluate(state(name), expect) == problems


def test_evaluate_quorum_failed_actions_and_stopped_by_config():
    s = state('crm_mon_healthy.xml')
    s['quorum'] = False
    s['failed_actions'] = [{'resource': 'vm-03', 'task': 'migrate_to', 'node': 'cmp-2', 'exitstatus': 'error',
                            'status': 'complete', 'exitreason': 'timeout'}]
    vm = next(r for r in s['resources'] if r['id'] == 'vm-05')
    vm.update(role='Stopped', active=False, nodes=[], target_role='Stopped')
    assert _soak.evaluate(s, {}) == ['failed action: vm-03 migrate_to on cmp-2 (error: timeout)',
                                     'no quorum (DC cmp-4)']
    assert _soak.evaluate(s, {'quorum': False, 'failed_actions': False}) == []


class Probe(object):
    """crm_mon answers (consumed in order, the last repeats) and HTTP answers per URL."""

    def __init__(self, mons, http=None):
        self.mons = list(mons)
        self.http_answers = dict((k, list(v)) for k, v in (http or {}).items())
        self.calls = []
        self.urls = []

    def runner(self, argv, env):
        self.calls.append((list(argv), dict(env)))
        text = self.mons.pop(0) if len(self.mons) > 1 else self.mons[0]
        return (0, text, '') if text.startswith('<') else (102, '', text)

    def http(self, url, timeout):
        self.urls.append((url, timeout))
        answers = self.http_answers[url]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def cli(probe):
    return _pacemaker.PacemakerCli(probe.runner, BINS)


def test_soak_holds_and_probes_at_the_interval():
    probe = Probe([HEALTHY], {'http://vip:8080/health': [(200, None)]})
    clock = FakeClock()
    result = _soak.soak(cli(probe), probe.http, clock, VIP_ON_CTL_A, urls=['http://vip:8080/health'], hold=20,
                        interval=5, url_timeout=3)
    assert [argv for argv, env in probe.calls] == [MON] * 5
    assert all(env == C_ENV for argv, env in probe.calls)
    assert probe.urls == [('http://vip:8080/health', 3)] * 5
    assert clock.sleeps == [5, 5, 5, 5]
    assert (result['waited'], result['held'], result['rounds'], result['where']) == (
        0.0, 20.0, 5, {'lb_float_ip': ['ctl-a']})
    assert [p['phase'] for p in result['probes']] == ['wait', 'hold', 'hold', 'hold', 'hold']


def test_soak_waits_until_healthy_then_holds():
    probe = Probe([fixture('crm_mon_node_offline.xml'), fixture('crm_mon_node_offline.xml'), HEALTHY])
    clock = FakeClock()
    result = _soak.soak(cli(probe), probe.http, clock, {}, timeout=60, hold=0, interval=2)
    assert (result['waited'], result['held'], result['rounds']) == (4.0, 0.0, 3)
    assert result['probes'][0] == {'at': 0.0, 'phase': 'wait', 'problems': ['node cmp-4 is offline']}


def test_soak_aborts_at_the_first_regression():
    probe = Probe([HEALTHY, HEALTHY], {'http://vip/health': [(200, None), (200, None), (503, None)]})
    clock = FakeClock()
    with pytest.raises(SoakError) as err:
        _soak.soak(cli(probe), probe.http, clock, VIP_ON_CTL_A, urls=['http://vip/health'], hold=60, interval=10)
    assert str(err.value) == 'regression after 20s of the 60s soak, aborting: http://vip/health answered HTTP 503'
    assert err.value.result['rounds'] == 3
    assert len(probe.calls) == 3


def test_soak_gives_up_after_the_timeout():
    probe = Probe([fixture('crm_mon_node_offline.xml')], {'http://vip/': [(None, 'timed out')]})
    clock = FakeClock()
    with pytest.raises(SoakError) as err:
        _soak.soak(cli(probe), probe.http, clock, {}, urls=['http://vip/'], timeout=10, hold=30, interval=4)
    assert str(err.value) == ('the cluster did not become healthy within 10s: node cmp-4 is offline; '
                              'http://vip/ did not answer: timed out')
    assert clock.sleeps == [4, 4, 2]
    assert err.value.result['waited'] == 10.0


def test_soak_reports_crm_mon_failures_as_problems():
    probe = Probe(['crm_mon: Error: cluster is not available on this node', HEALTHY])
    result = _soak.soak(cli(probe), probe.http, FakeClock(), {}, timeout=30, interval=1)
    assert result['probes'][0]['problems'] == [
        'crm_mon failed (rc 102): crm_mon: Error: cluster is not available on this node']
    assert result['rounds'] == 2
