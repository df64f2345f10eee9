# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""preflight_results and preflight_backup_peers: thin, type-checking front ends of _preflight."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.clusterops.upgrade.plugins.filter import preflight_backup_peers as peers_mod
from ansible_collections.clusterops.upgrade.plugins.filter import preflight_results as results_mod


def test_registered():
    assert results_mod.FilterModule().filters() == {'preflight_results': results_mod.preflight_results}
    assert peers_mod.FilterModule().filters() == {'preflight_backup_peers': peers_mod.preflight_backup_peers}


def test_results_delegates_to_evaluate():
    inputs = {'hosts': ['h1'], 'host_results': {'h1': {'unreachable': True, 'msg': 'no route'}},
              'ha_backend': 'none'}
    results = results_mod.preflight_results(inputs)
    assert [(r['id'], r['host'], r['status']) for r in results][:2] == [
        ('reachable', 'h1', 'fail'), ('product_version', 'h1', 'skipped')]
    assert results[-1]['id'] == 'bundle_verified'


@pytest.mark.parametrize('value, message', [
    ([], 'preflight_results: the input must be a dict of the gathered data, got list'),
    ({'hosts': ['h1'], 'evacuation': 'drain'},
     "preflight_results: evacuation must be one of migrate, shutdown, manual, got 'drain'"),
])
def test_results_refuses_bad_input(value, message):
    with pytest.raises(AnsibleFilterError) as caught:
        results_mod.preflight_results(value)
    assert str(caught.value) == message


def test_backup_peers_delegates():
    def result(missing):
        return {'checks': [], 'host_facts': {'rpm': {'baseline_source': 's', 'backups_checked': True,
                                                     'missing_backups': [{'file': f} for f in missing]}}}
    out = peers_mod.preflight_backup_peers({'a': result(['x.rpm']), 'b': result([])}, ['a', 'b'])
    assert out == {'a': {'copies': [{'file': 'x.rpm', 'peer': 'b', 'package': {'file': 'x.rpm'}}], 'unfixable': []}}


@pytest.mark.parametrize('value, hosts, message', [
    ([], ['a'], 'preflight_backup_peers: the input must map host names to preflight_host results'),
    ({}, 'a', 'preflight_backup_peers: hosts must be a list of host names'),
])
def test_backup_peers_refuses_bad_input(value, hosts, message):
    with pytest.raises(AnsibleFilterError) as caught:
        peers_mod.preflight_backup_peers(value, hosts)
    assert str(caught.value) == message
