# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bundle_plan filter: a thin, type-checking front end of _bundle.plan_bundles."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.clusterops.upgrade.plugins.filter.bundle_plan import FilterModule, bundle_plan

GROUP_MAP = {r'-M\d{3}-': 'control_plane', r'-S\d{3}-': 'compute'}
M = '/srv/P-x86_64-M001-b1.upgrade.zip'
S = '/srv/P-x86_64-S001-b1.upgrade.zip'


def test_registered():
    assert FilterModule().filters() == {'bundle_plan': bundle_plan}


def test_paths_become_names_and_string_choice_is_a_list():
    plan = bundle_plan([M, S], GROUP_MAP, {'cp1': ['control_plane'], 'aio': ['control_plane', 'compute']},
                       {'cp1': None, 'aio': 'P-x86_64-S001-b1.upgrade.zip'})
    assert plan == {
        'bundles': {'P-x86_64-M001-b1.upgrade.zip': ['control_plane'], 'P-x86_64-S001-b1.upgrade.zip': ['compute']},
        'hosts': {'aio': ['P-x86_64-S001-b1.upgrade.zip'], 'cp1': ['P-x86_64-M001-b1.upgrade.zip']},
    }


@pytest.mark.parametrize('args, message', [
    (('x', GROUP_MAP, {}), 'bundle_plan: the input must be a list of bundle file names'),
    (([M], {}, {}), 'bundle_plan: group_map must be a non-empty mapping of regex to group'),
    (([M], GROUP_MAP, []), 'bundle_plan: host_groups must be a mapping of host to its groups'),
    (([M], GROUP_MAP, {}, []), 'bundle_plan: host_bundles must be a mapping of host to null or a list'),
    (([M, '/other/P-x86_64-M001-b1.upgrade.zip'], GROUP_MAP, {}),
     'bundle_plan: two bundles have the same file name: P-x86_64-M001-b1.upgrade.zip'),
    (([M, S], GROUP_MAP, {'cp1': ['control_plane']}, {'cp1': ['P-x86_64-S001-b1.upgrade.zip']}),
     "host 'cp1' is in groups [control_plane], but bundle 'P-x86_64-S001-b1.upgrade.zip' is for compute: "
     'refusing to stage a bundle meant for another role'),
])
def test_errors(args, message):
    with pytest.raises(AnsibleFilterError) as err:
        bundle_plan(*args)
    assert err.value.message == message
