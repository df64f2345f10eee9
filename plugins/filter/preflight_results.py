# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: preflight_results
short_description: Turn the preflight role's gathered data into one list of check results
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - The controller half of the preflight checks. Takes what the role gathered - the registered
    result of C(clusterops.upgrade.preflight_host) of every host, the facts of
    C(clusterops.upgrade.pcs_info), the controller's C(clusterops.upgrade.package_verify) result -
    and returns every check result, ready for C(clusterops.upgrade.run_report).
  - Adds the checks that need all hosts at once - C(reachable), C(host_checks), C(version_uniform),
    C(cluster_facts), C(ha_pair_online), C(ha_quorum), C(ha_vip), C(ha_failed_actions),
    C(ha_constraints), C(node_state), C(upgrade_plan), C(running_vms) (manual evacuation only) and
    C(bundle_verified). See the collection's C(docs/preflight.md) for each check.
  - An unreachable host gets a failed C(reachable) result and its host checks are listed as skipped;
    the other hosts are judged as usual.
options:
  _input:
    description:
      - A dict with C(hosts) (the play's hosts, in order), C(host_results) (host to registered
        C(preflight_host) result), C(expected_version), C(ha_backend) (V(pacemaker) or V(none)),
        C(pcs) (registered C(pcs_info) result) and C(pcs_host), C(ha_hosts), C(vip_resource),
        C(node_names), C(plan_hosts), C(plan_input), C(aio_hosts), C(evacuation), C(plan_headroom),
        C(plan_max_parallel), C(plan_aio_first), C(bundle_files), C(bundle_manifest),
        C(bundle_verify) and C(fixes).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Evaluate every check
  ansible.builtin.set_fact:
    __preflight_results: >-
      {{ {'hosts': ansible_play_hosts_all, 'host_results': __preflight_host_results,
          'pcs': __preflight_pcs, 'pcs_host': 'ctl-a', 'ha_hosts': groups['ha_pair'],
          'evacuation': 'migrate'} | clusterops.upgrade.preflight_results }}
  run_once: true
"""

RETURN = r"""
_value:
  description: The check results (C(id), C(host), C(severity), C(status), C(evidence), C(remedy), C(title), C(data)).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.clusterops.upgrade.plugins.module_utils._preflight_cluster import (
    PreflightError,
    evaluate,
)


def preflight_results(inputs):
    """Thin front end of ``_preflight_cluster.evaluate``."""
    if not isinstance(inputs, dict):
        raise AnsibleFilterError('preflight_results: the input must be a dict of the gathered data, got %s'
                                 % type(inputs).__name__)
    try:
        return evaluate(inputs)
    except PreflightError as exc:
        raise AnsibleFilterError('preflight_results: %s' % exc)


class FilterModule(object):
    """Preflight evaluation."""

    def filters(self):
        return {'preflight_results': preflight_results}
