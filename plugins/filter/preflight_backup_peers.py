# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: preflight_backup_peers
short_description: Choose a peer host for each missing backup rpm
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - For every host whose C(clusterops.upgrade.preflight_host) result lists missing backup rpms,
    picks for each file another host that was compared with the same baseline, whose backups were
    read and which does not miss that file (the first such host in play order).
  - The preflight role copies the files with its C(fix_backup_from_peer.yml) task file.
options:
  _input:
    description: Host name to the registered C(preflight_host) result.
    type: dict
    required: true
  hosts:
    description: The hosts to consider, in order (peers are chosen in this order).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Choose the peers
  ansible.builtin.set_fact:
    __preflight_peers: "{{ __preflight_host_results | clusterops.upgrade.preflight_backup_peers(ansible_play_hosts_all) }}"
  run_once: true
  # {'cmp-2': {'copies': [{'file': 'foo-1.0-1.noarch.rpm', 'peer': 'cmp-1', 'package': {...}}], 'unfixable': []}}
"""

RETURN = r"""
_value:
  description:
    - Host to C(copies) (list of C(package) - the missing_backups entry -, C(file) and C(peer)) and
      C(unfixable) (files no peer holds). Only hosts that miss something are listed.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.clusterops.upgrade.plugins.module_utils._preflight_cluster import backup_peers


def preflight_backup_peers(host_results, hosts):
    """Thin front end of ``_preflight_cluster.backup_peers``."""
    if not isinstance(host_results, dict):
        raise AnsibleFilterError('preflight_backup_peers: the input must map host names to preflight_host results')
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(h, str) for h in hosts):
        raise AnsibleFilterError('preflight_backup_peers: hosts must be a list of host names')
    return backup_peers(list(hosts), host_results)


class FilterModule(object):
    """Preflight backup peers."""

    def filters(self):
        return {'preflight_backup_peers': preflight_backup_peers}
