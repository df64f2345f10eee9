# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: bundle_plan
short_description: Map upgrade bundles to inventory groups and hosts
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Maps each bundle file name to the groups of every pattern of O(group_map) it matches
    (Python C(re.search)), then gives each host the bundles of its groups.
  - A host may name its bundles itself (O(host_bundles)); each must then map to one of
    its groups, otherwise the plan is refused (a bundle for another role).
  - Fails, listing every problem at once, when a bundle matches no pattern, a pattern is not a
    valid regular expression, a host is in none of the groups the bundles map to, or a host
    names a bundle that is not being staged or is for another role.
options:
  _input:
    description: The bundle file names (or paths; the basename is used).
    type: list
    elements: str
    required: true
  group_map:
    description: Regular expression to inventory group.
    type: dict
    required: true
  host_groups:
    description: Host name to the host's groups (its C(group_names)), for every host to plan.
    type: dict
    required: true
  host_bundles:
    description:
      - Host name to null or to the list of bundle names that host should get (overrides the
        mapping; each bundle must still map to one of the host's groups).
      - Hosts not in this mapping get every bundle of their groups.
    type: dict
"""

EXAMPLES = r"""
- name: Plan which host gets which bundle
  ansible.builtin.set_fact:
    plan: >-
      {{ ['p-M001-b1.zip', 'p-S001-b1.zip'] | clusterops.upgrade.bundle_plan(
           {'-M\d{3}-': 'control_plane', '-S\d{3}-': 'compute'},
           {'cp1': ['control_plane']}) }}
  # plan.bundles == {'p-M001-b1.zip': ['control_plane'], 'p-S001-b1.zip': ['compute']}
  # plan.hosts == {'cp1': ['p-M001-b1.zip']}
"""

RETURN = r"""
_value:
  description: C(bundles) (name to list of groups) and C(hosts) (host to list of bundle names).
  type: dict
"""

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.clusterops.upgrade.plugins.module_utils._bundle import (
    BundleError,
    plan_bundles,
)


def bundle_plan(names, group_map, host_groups, host_bundles=None):
    """Thin front end of ``_bundle.plan_bundles``."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise AnsibleFilterError('bundle_plan: the input must be a list of bundle file names')
    if not isinstance(group_map, dict) or not group_map:
        raise AnsibleFilterError('bundle_plan: group_map must be a non-empty mapping of regex to group')
    if not isinstance(host_groups, dict):
        raise AnsibleFilterError('bundle_plan: host_groups must be a mapping of host to its groups')
    if host_bundles is not None and not isinstance(host_bundles, dict):
        raise AnsibleFilterError('bundle_plan: host_bundles must be a mapping of host to null or a list')
    bases = [os.path.basename(n) for n in names]
    duplicates = sorted(set(b for b in bases if bases.count(b) > 1))
    if duplicates:
        raise AnsibleFilterError('bundle_plan: two bundles have the same file name: %s' % ', '.join(duplicates))
    plain_hosts = {}
    for host, groups in host_groups.items():
        wanted = (host_bundles or {}).get(host)
        plain_hosts[str(host)] = {'groups': list(groups or []),
                                  'bundles': None if wanted is None else (
                                      [wanted] if isinstance(wanted, str) else list(wanted))}
    try:
        return plan_bundles(bases, dict(group_map), plain_hosts)
    except BundleError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """Bundle planning filters."""

    def filters(self):
        return {'bundle_plan': bundle_plan}
