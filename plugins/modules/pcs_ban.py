#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pcs_ban
short_description: Ban a pacemaker resource from a node, or remove exactly the cli-ban constraints
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - O(state=present) creates the ban C(cli-ban-<resource>-on-<node>) (what C(pcs resource ban) and
    C(crm_resource --ban) create), optionally with a lifetime, and waits until the resource has left
    the node and the cluster settled. An active ban with that id is left as it is - C(changed=false),
    its id in RV(constraints_pre_existing) - so a run never takes over an operator's ban.
  - Before a ban is created, pacemaker's own scheduler dry-runs it on a private copy of the CIB
    (C(crm_simulate)). If the ban would stop any resource (for example the VIP when no other node can
    take it) the module refuses and changes nothing, unless O(allow_stopped=true). Check mode returns
    this prediction.
  - O(state=absent) deletes the C(cli-ban) constraints of the resource (only those on O(node) when it
    is given), each by its exact id, and nothing else - no C(cli-prefer), no other location constraint.
    It does not use C(pcs resource clear), which also removes cli-prefer constraints.
  - A ban whose lifetime has ended counts as absent; O(state=present) replaces it, O(state=absent)
    removes it.
options:
  resource:
    description:
      - Id of the resource, group or clone.
    type: str
    required: true
  node:
    description:
      - The node the resource is banned from. Required with O(state=present); it must be online.
      - With O(state=absent), only the ban on this node is removed; without it, every cli-ban of O(resource).
    type: str
  state:
    description:
      - V(present) - the ban exists. V(absent) - no cli-ban of the resource (on O(node)) exists.
    type: str
    choices: [present, absent]
    default: present
  lifetime:
    description:
      - ISO 8601 duration after which the ban stops applying (C(PT30M), C(PT2H), C(P1D)), so a forgotten
        ban cannot hold forever. Pacemaker ignores the constraint after that moment; it stays in the CIB
        until removed (O(state=absent)). Only with O(state=present).
    type: str
  wait:
    description:
      - Seconds to wait for the resource to leave the node and the cluster to settle. V(0) returns right
        after the change without checking.
    type: int
    default: 60
  allow_stopped:
    description:
      - Create the ban even when the dry run says it stops resources, and do not fail when resources stopped.
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
  - The result keys avoid the names Ansible reserves; the constraint ids are in RV(constraints_created)
    and RV(constraints_removed).
seealso:
  - module: clusterops.upgrade.pcs_info
  - module: clusterops.upgrade.pcs_move
  - module: clusterops.upgrade.upgrade_journal
attributes:
  check_mode:
    description: Predicts with pacemaker's dry run on a copy of the CIB; the cluster is not touched.
    support: full
  diff_mode:
    description: The resource's location constraints before and after, one line each.
    support: full
"""

EXAMPLES = r"""
- name: Freeze failover - keep the VIP off the standby controller (TECS runbook step 1)
  clusterops.upgrade.pcs_ban:
    resource: lb_float_ip
    node: ctl-b
    lifetime: PT4H
  run_once: true
  register: freeze

- name: Release the freeze - remove only that ban
  clusterops.upgrade.pcs_ban:
    resource: lb_float_ip
    node: ctl-b
    state: absent
  run_once: true
"""

RETURN = r"""
constraints_created:
  description: Ids of the constraints created (predicted in check mode).
  returned: always
  type: list
  elements: str
  sample: [cli-ban-lb_float_ip-on-ctl-a]
constraints_removed:
  description: Ids of the constraints deleted - the cli-bans with O(state=absent), an expired ban replaced with O(state=present).
  returned: always
  type: list
  elements: str
  sample: []
constraints_pre_existing:
  description: The active ban that already existed with O(state=present) (left as it is, not ours).
  returned: always
  type: list
  elements: str
  sample: []
lifetime_end:
  description: End of the ban's lifetime as written in the CIB, or null.
  returned: always
  type: str
  sample: "2026-11-22 05:50:31 +00:00"
resource_nodes_before:
  description: Nodes the resource ran on before.
  returned: always
  type: list
  elements: str
  sample: [ctl-a]
resource_nodes:
  description: Nodes the resource runs on afterwards (predicted by the dry run in check mode).
  returned: always
  type: list
  elements: str
  sample: [ctl-b]
moved_resources:
  description: Resources whose nodes changed (C(id), C(from), C(to)) - the banned one and whatever follows it (group members, colocations).
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
  description: Resources the dry run said would stop (the ban is refused while this is not empty, unless O(allow_stopped)).
  returned: when a dry run ran
  type: list
  elements: str
  sample: []
transition_summary:
  description: The transition summary of the dry run (C(crm_simulate)), one action per line.
  returned: always
  type: list
  elements: str
  sample: ["Move       lb_float_ip     ( ctl-a -> ctl-b )", "Move       mgmt-api        ( ctl-a -> ctl-b )"]
settled:
  description: Whether the cluster settled within O(wait) (null when nothing was waited for).
  returned: always
  type: bool
  sample: true
commands:
  description: The commands that changed the cluster, as they would be typed (empty in check mode).
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/crm_resource --ban --resource lb_float_ip --node ctl-a"]
planned_commands:
  description: The commands the change consists of (the same in check mode).
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/crm_resource --ban --resource lb_float_ip --node ctl-a"]
journal_entries:
  description:
    - What the run created, ready for M(clusterops.upgrade.upgrade_journal) O(clusterops.upgrade.upgrade_journal#module:op=record)
      (C(kind), C(id), C(node), C(resource)); empty when nothing was (or would be) created.
  returned: always
  type: list
  elements: dict
  sample: [{kind: ban, id: cli-ban-lb_float_ip-on-ctl-a, node: ctl-a, resource: lb_float_ip}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    Pacemaker,
    PacemakerError,
    exit_with,
    fail_with,
    module_cli,
    parse_duration,
)


def argument_spec():
    return dict(
        resource=dict(type='str', required=True),
        node=dict(type='str'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        lifetime=dict(type='str'),
        wait=dict(type='int', default=60),
        allow_stopped=dict(type='bool', default=False),
        allow_no_quorum=dict(type='bool', default=False),
    )


def check_params(params):
    """Problems with the options, as messages naming them (empty: fine)."""
    problems = []
    if params['state'] == 'present' and not params['node']:
        problems.append('node is required with state=present: name the node the resource must leave')
    if params['lifetime'] is not None:
        if params['state'] == 'absent':
            problems.append('lifetime is only used with state=present')
        elif parse_duration(params['lifetime']) is None:
            problems.append('lifetime %r is not an ISO 8601 duration such as PT15M, PT2H or P1D'
                            % params['lifetime'])
    if params['wait'] < 0:
        problems.append('wait must be 0 or more seconds, got %d' % params['wait'])
    return problems


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    problems = check_params(params)
    if problems:
        module.fail_json(msg='; '.join(problems))
    try:
        control = Pacemaker(module_cli(module), allow_no_quorum=params['allow_no_quorum'])
        if params['state'] == 'present':
            result = control.ban(params['resource'], params['node'], lifetime=params['lifetime'],
                                 wait=params['wait'], allow_stopped=params['allow_stopped'],
                                 check_mode=module.check_mode)
        else:
            result = control.clear_ban(params['resource'], params['node'], wait=params['wait'],
                                       check_mode=module.check_mode)
    except PacemakerError as exc:
        fail_with(module, exc)
    exit_with(module, result)


if __name__ == '__main__':
    main()
