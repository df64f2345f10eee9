#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maintenance_mode
short_description: Put a node or a cluster into maintenance and take it out - one interface, several backends
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Brings a node (or the whole cluster) to O(state) through the chosen O(backend), waits until the
    platform settled and reports what happened to the resources.
  - V(pacemaker_node) - node standby (C(pcs node standby)/C(unstandby)). Entering waits until every
    managed resource has left the node or O(wait) expires. Before anything is changed, pacemaker's
    scheduler dry-runs the standby on a private copy of the CIB (C(crm_simulate)); when it says
    resources would stop instead of moving (capacity runs out), the module refuses and changes nothing
    unless O(allow_stopped=true). Afterwards, resources that stopped anywhere in the cluster (compared
    before/after) fail the task unless O(allow_stopped) - the standby stays in place and RV(stopped_resources)
    names them.
  - V(pacemaker_node_maintenance) - node maintenance (C(pcs node maintenance)/C(unmaintenance)); the
    node's resources keep running, unmanaged.
  - V(pacemaker_cluster) - the C(maintenance-mode) cluster property; every resource keeps running,
    unmanaged. Entering sets it to C(true) (C(pcs property set maintenance-mode=true)); leaving deletes
    it, so the default (false) applies again and the CIB is as before (the effect of
    C(pcs property set maintenance-mode=false) without leaving an explicit value behind).
  - V(command) - user-supplied argv lists for platforms managed elsewhere. O(command.query) tells the
    current state by its exit status - V(0) means enabled, V(1) means disabled, anything else is an
    error - and runs in check mode too, so it must only read. After O(command.enter) or
    O(command.exit) the query is repeated until it reports the wanted state or O(wait) expires.
  - A state that is already reached changes nothing (C(changed=false)); a standby or maintenance an
    operator set before the run is therefore never reported as created (RV(journal_entries) is empty)
    and a guard that records only what the run created never removes it.
options:
  backend:
    description:
      - How maintenance is entered and left (see the description).
    type: str
    required: true
    choices: [pacemaker_node, pacemaker_node_maintenance, pacemaker_cluster, command]
  state:
    description:
      - V(enabled) - in maintenance (standby). V(disabled) - in service.
    type: str
    choices: [enabled, disabled]
    default: enabled
  node:
    description:
      - The cluster node. Required with V(pacemaker_node) and V(pacemaker_node_maintenance); not used by
        V(pacemaker_cluster); optional with V(command), where it only names the target in results and
        the journal entry.
    type: str
  wait:
    description:
      - Seconds to wait until the change took effect (resources evacuated and the cluster settled, or the
        query command agrees). V(0) returns right after the change without checking.
    type: int
    default: 300
  allow_stopped:
    description:
      - V(pacemaker_node) only. Enter standby even when the dry run says resources would stop, and do not
        fail when resources stopped instead of moving (they are still listed in RV(stopped_resources)).
    type: bool
    default: false
  allow_no_quorum:
    description:
      - Pacemaker backends. Change a cluster partition that has no quorum (refused by default).
    type: bool
    default: false
  command:
    description:
      - The argv lists of the V(command) backend.
    type: dict
    suboptions:
      enter:
        description: argv that enters maintenance.
        type: list
        elements: str
        default: []
      exit:
        description: argv that leaves maintenance.
        type: list
        elements: str
        default: []
      query:
        description: argv whose exit status tells the state - 0 enabled, 1 disabled. It must not change anything.
        type: list
        elements: str
        required: true
notes:
  - The pacemaker backends run pacemaker's command line tools on the host (crm_mon, cibadmin,
    crm_attribute, crm_resource, crm_simulate); pcs is not needed. Run them once per cluster
    (C(run_once), or delegated to a cluster node).
  - When capacity runs out pacemaker decides what stops - possibly resources on other nodes - and
    C(pcs node standby --wait) still returns 0; this module compares every resource's state before and
    after instead.
seealso:
  - module: clusterops.upgrade.pcs_info
  - module: clusterops.upgrade.upgrade_journal
attributes:
  check_mode:
    description:
      - Pacemaker backends predict with pacemaker's dry run on a copy of the CIB (RV(would_stop),
        RV(moved_resources)); the cluster is not touched. V(command) runs only O(command.query).
    support: full
  diff_mode:
    description: The maintenance state before and after (node standby/maintenance or the property).
    support: full
"""

EXAMPLES = r"""
- name: Evacuate a compute node (its VMs live-migrate; refuse if any would stop)
  clusterops.upgrade.maintenance_mode:
    backend: pacemaker_node
    node: cmp-2
    state: enabled
    wait: 600
  run_once: true
  register: evacuation

- name: Back in service
  clusterops.upgrade.maintenance_mode:
    backend: pacemaker_node
    node: cmp-2
    state: disabled
  run_once: true

- name: TECS rollback - leave cluster maintenance (runbook "pcs property set ...=false")
  clusterops.upgrade.maintenance_mode:
    backend: pacemaker_cluster
    state: disabled
  run_once: true

- name: A platform managed elsewhere
  clusterops.upgrade.maintenance_mode:
    backend: command
    node: "{{ inventory_hostname }}"
    state: enabled
    command:
      enter: [/usr/local/bin/platformctl, maintenance, enter, "{{ inventory_hostname }}"]
      exit: [/usr/local/bin/platformctl, maintenance, exit, "{{ inventory_hostname }}"]
      query: [/usr/local/bin/platformctl, maintenance, is-enabled, "{{ inventory_hostname }}"]
"""

RETURN = r"""
node:
  description: The node (null for V(pacemaker_cluster), and for V(command) without O(node)).
  returned: always
  type: str
  sample: cmp-2
enabled_before:
  description: Whether maintenance (standby) was on before.
  returned: always
  type: bool
  sample: false
enabled:
  description: Whether it is on afterwards (predicted in check mode).
  returned: always
  type: bool
  sample: true
moved_resources:
  description: Resources whose nodes changed (C(id), C(from), C(to)); predicted in check mode.
  returned: always
  type: list
  elements: dict
  sample: [{id: vm-02, from: [cmp-2], to: [cmp-1]}]
stopped_resources:
  description: Resources that ran before and run nowhere afterwards (anywhere in the cluster); predicted in check mode.
  returned: always
  type: list
  elements: str
  sample: []
started_resources:
  description: Resources that did not run before and run afterwards (e.g. after unstandby).
  returned: always
  type: list
  elements: str
  sample: []
would_stop:
  description: V(pacemaker_node) entering - resources the dry run said would stop.
  returned: with V(pacemaker_node)
  type: list
  elements: str
  sample: []
remaining_resources:
  description: V(pacemaker_node) - resources still active on the node (C(id), C(role), C(managed)) afterwards.
  returned: always
  type: list
  elements: dict
  sample: []
unmanaged_resources:
  description: V(pacemaker_node_maintenance) entering - the node's resources, now unmanaged.
  returned: with V(pacemaker_node_maintenance)
  type: list
  elements: str
  sample: [vm-03, vm-11]
transition_summary:
  description: The transition summary of the dry run, one action per line.
  returned: always
  type: list
  elements: str
  sample: ["Migrate    vm-02     ( cmp-2 -> cmp-1 )"]
settled:
  description: Whether the change took effect and the platform settled within O(wait) (null when not waited for).
  returned: always
  type: bool
  sample: true
commands:
  description: The commands that changed something, as they would be typed (empty in check mode).
  returned: always
  type: list
  elements: str
planned_commands:
  description: The commands the change consists of (the same in check mode).
  returned: always
  type: list
  elements: str
journal_entries:
  description:
    - What the run created, for M(clusterops.upgrade.upgrade_journal) O(clusterops.upgrade.upgrade_journal#module:op=record);
      C(kind) C(standby) or C(maintenance), C(id) C(<backend>:<node>) (C(pacemaker_cluster:maintenance-mode) for the
      property), C(details.backend). Empty when nothing was (or would be) entered.
  returned: always
  type: list
  elements: dict
  sample: [{kind: standby, id: "pacemaker_node:cmp-2", node: cmp-2, details: {backend: pacemaker_node}}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._maintenance import (
    CommandMaintenance,
    PacemakerCluster,
    PacemakerNodeMaintenance,
    PacemakerNodeStandby,
)
from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    Pacemaker,
    PacemakerError,
    exit_with,
    fail_with,
    module_cli,
    module_runner,
)

NODE_BACKENDS = ('pacemaker_node', 'pacemaker_node_maintenance')


def argument_spec():
    return dict(
        backend=dict(type='str', required=True,
                     choices=['pacemaker_node', 'pacemaker_node_maintenance', 'pacemaker_cluster', 'command']),
        state=dict(type='str', choices=['enabled', 'disabled'], default='enabled'),
        node=dict(type='str'),
        wait=dict(type='int', default=300),
        allow_stopped=dict(type='bool', default=False),
        allow_no_quorum=dict(type='bool', default=False),
        command=dict(type='dict', options=dict(
            enter=dict(type='list', elements='str', default=[]),
            exit=dict(type='list', elements='str', default=[]),
            query=dict(type='list', elements='str', required=True),
        )),
    )


def check_params(params):
    """Problems with the options, as messages naming them (empty: fine)."""
    backend = params['backend']
    problems = []
    if backend in NODE_BACKENDS and not params['node']:
        problems.append('node is required with backend=%s' % backend)
    if backend == 'pacemaker_cluster' and params['node']:
        problems.append('node is not used by backend=pacemaker_cluster (it changes the whole cluster); drop it')
    if backend == 'command':
        if params['command'] is None:
            problems.append('backend=command needs command.query (and command.enter / command.exit)')
        elif not params['command']['query']:
            problems.append('command.query must not be empty')
        if params['allow_no_quorum']:
            problems.append('allow_no_quorum is only used by the pacemaker backends')
    elif params['command'] is not None:
        problems.append('command is only used by backend=command')
    if params['allow_stopped'] and backend != 'pacemaker_node':
        problems.append('allow_stopped is only used by backend=pacemaker_node')
    if params['wait'] < 0:
        problems.append('wait must be 0 or more seconds, got %d' % params['wait'])
    return problems


def make_backend(module, params):
    backend = params['backend']
    if backend == 'command':
        cmd = params['command']
        return CommandMaintenance(module_runner(module), cmd['enter'], cmd['exit'], cmd['query'],
                                  node=params['node'], wait=params['wait'])
    control = Pacemaker(module_cli(module), allow_no_quorum=params['allow_no_quorum'])
    if backend == 'pacemaker_node':
        return PacemakerNodeStandby(control, params['node'], wait=params['wait'],
                                    allow_stopped=params['allow_stopped'])
    if backend == 'pacemaker_node_maintenance':
        return PacemakerNodeMaintenance(control, params['node'], wait=params['wait'])
    return PacemakerCluster(control, wait=params['wait'])


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    problems = check_params(params)
    if problems:
        module.fail_json(msg='; '.join(problems))
    try:
        backend = make_backend(module, params)
        result = backend.set(params['state'] == 'enabled', check_mode=module.check_mode)
    except PacemakerError as exc:
        fail_with(module, exc)
    exit_with(module, result)


if __name__ == '__main__':
    main()
