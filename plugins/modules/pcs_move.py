#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pcs_move
short_description: Move a pacemaker resource to a node, wait until it runs there, leave no constraint behind
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Moves O(resource) (a primitive or a group) to O(node) - the switch-over of an HA pair - and waits
    until it is active there and the cluster settled. Nothing happens when it already runs there and
    only there.
  - The move is a temporary C(cli-prefer-<resource>) constraint (score INFINITY) that the module
    creates, and deletes again by its id once the resource arrived - also when waiting fails - so no
    C(cli-prefer) is left behind, whatever pcs version is installed (pcs 0.11 C(resource move) removes
    its constraint, pcs 0.10 and C(pcs resource move-with-constraint) keep it). After removing it the
    module checks that the resource stays (C(resource-stickiness) above 0 keeps it there).
  - It does not call C(pcs resource move) or C(crm_resource --move) - those also delete every other
    cli-prefer of the resource and the cli-ban on the destination, which may be an operator's.
  - Refused, changing nothing - when a C(cli-prefer-<resource>) already exists (an operator's or a
    leftover; it is not ours to replace or remove), when an active cli-ban forbids the node, when the
    node is offline, in standby or in maintenance, and when pacemaker's dry run on a copy of the CIB
    does not put the resource on the node or stops other resources (unless O(allow_stopped)).
options:
  resource:
    description:
      - Id of the primitive or group to move. Clones cannot be moved; ban the instance instead.
    type: str
    required: true
  node:
    description:
      - Node to move it to; it must be online, not in standby and not in maintenance.
    type: str
    required: true
  wait:
    description:
      - Seconds to wait for the resource to run on O(node) and the cluster to settle (at least 5 more
        seconds are spent checking that it stays after the constraint is removed). V(0) creates the
        constraint and removes it again at once, which in practice only works for fast resources; use a
        positive value.
    type: int
    default: 60
  allow_stopped:
    description:
      - Move even when the dry run says other resources stop, and do not fail when resources stopped.
    type: bool
    default: false
  allow_no_quorum:
    description:
      - Change a cluster partition that has no quorum (refused by default).
    type: bool
    default: false
notes:
  - Runs pacemaker's command line tools on the host (crm_mon, cibadmin, crm_resource, crm_simulate);
    pcs is not needed. Run it once per cluster (C(run_once)) on a cluster node.
seealso:
  - module: clusterops.upgrade.pcs_ban
  - module: clusterops.upgrade.pcs_info
attributes:
  check_mode:
    description: Predicts with pacemaker's dry run on a copy of the CIB; the cluster is not touched.
    support: full
  diff_mode:
    description: The resource's location constraints before and after (equal when no constraint was left behind).
    support: full
"""

EXAMPLES = r"""
- name: Switch over - the VIP group to the upgraded controller (TECS runbook, "A->B")
  clusterops.upgrade.pcs_move:
    resource: mgmt
    node: ctl-b
    wait: 120
  run_once: true
  register: switch_over

- name: Show where it landed
  ansible.builtin.debug:
    msg: "{{ switch_over.resource_nodes }}"
  run_once: true
"""

RETURN = r"""
resource_nodes_before:
  description: Nodes the resource ran on before.
  returned: always
  type: list
  elements: str
  sample: [ctl-a]
resource_nodes:
  description: Nodes the resource runs on afterwards (predicted in check mode).
  returned: always
  type: list
  elements: str
  sample: [ctl-b]
prefer_created:
  description: The temporary constraint created (C(cli-prefer-<resource>)), or null when nothing moved.
  returned: always
  type: str
  sample: cli-prefer-mgmt
prefer_removed:
  description: The temporary constraint removed again (the same id), or null.
  returned: always
  type: str
  sample: cli-prefer-mgmt
moved_resources:
  description: Resources whose nodes changed (C(id), C(from), C(to)).
  returned: always
  type: list
  elements: dict
  sample: [{id: lb_float_ip, from: [ctl-a], to: [ctl-b]}, {id: mgmt-api, from: [ctl-a], to: [ctl-b]}]
stopped_resources:
  description: Resources that ran before and run nowhere afterwards.
  returned: always
  type: list
  elements: str
  sample: []
started_resources:
  description: Resources that did not run before and run afterwards.
  returned: always
  type: list
  elements: str
  sample: []
would_stop:
  description: Resources the dry run said would stop.
  returned: when a dry run ran
  type: list
  elements: str
  sample: []
transition_summary:
  description: The transition summary of the dry run, one action per line.
  returned: always
  type: list
  elements: str
  sample: ["Move       lb_float_ip     ( ctl-a -> ctl-b )"]
settled:
  description: Whether the cluster settled within O(wait) (null when nothing was waited for).
  returned: always
  type: bool
  sample: true
commands:
  description: The commands that changed the cluster (create and delete of the constraint; empty in check mode).
  returned: always
  type: list
  elements: str
planned_commands:
  description: The commands the move consists of (the same in check mode).
  returned: always
  type: list
  elements: str
journal_entries:
  description: Always empty - a move leaves nothing to undo.
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    Pacemaker,
    PacemakerError,
    exit_with,
    fail_with,
    module_cli,
)


def argument_spec():
    return dict(
        resource=dict(type='str', required=True),
        node=dict(type='str', required=True),
        wait=dict(type='int', default=60),
        allow_stopped=dict(type='bool', default=False),
        allow_no_quorum=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params['wait'] < 0:
        module.fail_json(msg='wait must be 0 or more seconds, got %d' % params['wait'])
    try:
        control = Pacemaker(module_cli(module), allow_no_quorum=params['allow_no_quorum'])
        result = control.move(params['resource'], params['node'], wait=params['wait'],
                              allow_stopped=params['allow_stopped'], check_mode=module.check_mode)
    except PacemakerError as exc:
        fail_with(module, exc)
    exit_with(module, result)


if __name__ == '__main__':
    main()
