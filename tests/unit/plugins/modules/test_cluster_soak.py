# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_soak module: read-only (one crm_mon per probe, also in check mode), the HTTP
seam, the result keys, failures that carry the probes, bad options refused before any command."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.clusterops.upgrade.plugins.modules import cluster_soak

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils"))

from pacemaker_fake import MON, RESERVED, Fail, FakeCluster, ModuleHarness  # noqa: E402


def test_healthy_settle_gate(monkeypatch):
    urls = []
    monkeypatch.setattr(cluster_soak, 'http_status', lambda url, timeout: urls.append((url, timeout)) or (200, None))
    cluster = FakeCluster()
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(cluster_soak.main, {'resource': 'lb_float_ip', 'resource_node': 'ctl-a',
                                       'urls': ['http://10.0.0.10:8080/health'], 'url_timeout': 2}, check_mode=True)
    assert cluster.argvs == [MON]
    assert urls == [('http://10.0.0.10:8080/health', 2)]
    assert (result['changed'], result['rounds'], result['where']) == (False, 1, {'lb_float_ip': ['ctl-a']})
    assert set(result) == {'changed', 'waited', 'held', 'rounds', 'probes', 'where'}
    assert not RESERVED & set(result)


def test_unhealthy_fails_with_the_probes(monkeypatch):
    cluster = FakeCluster(mon='crm_mon_node_offline.xml')
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(cluster_soak.main, {'timeout': 0}, expect=Fail)
    assert result['msg'] == 'the cluster did not become healthy within 0s: node cmp-4 is offline'
    assert [(p['phase'], p['problems']) for p in result['probes']] == [('wait', ['node cmp-4 is offline'])]
    assert result['changed'] is False


@pytest.mark.parametrize('args, message', [
    ({'interval': 0}, 'interval must be at least 1 second, got 0'),
    ({'hold': -1}, 'hold must be 0 or more, got -1'),
    ({'urls': ['10.0.0.10:8080']}, "urls[0] '10.0.0.10:8080' is not an http:// or https:// URL"),
    ({'resource_node': 'ctl-a'}, 'resource_node needs resource: name the resource that must run there'),
])
def test_bad_options(monkeypatch, args, message):
    cluster = FakeCluster()
    h = ModuleHarness(monkeypatch, cluster)
    result = h.run(cluster_soak.main, args, expect=Fail)
    assert (result['msg'], cluster.calls) == (message, [])


def test_http_seam_maps_errors(monkeypatch):
    class Boom(Exception):
        reason = 'connection refused'

    def refuse(url, **kwargs):
        raise Boom()

    monkeypatch.setattr(cluster_soak, 'open_url', refuse)
    assert cluster_soak.http_status('http://x/', 1) == (None, 'connection refused')

    class Http503(Exception):
        code = 503

    def unavailable(url, **kwargs):
        raise Http503()

    monkeypatch.setattr(cluster_soak, 'open_url', unavailable)
    assert cluster_soak.http_status('http://x/', 1) == (503, None)
