#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vm_power
short_description: Stop or start VMs that are pacemaker resources, and say which ones it changed
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - The ICS "auto shutdown" evacuation stops the VMs of a host before it enters maintenance and starts exactly
    those again after the upgrade. This module does both steps for VMs that are pacemaker resources (a primitive
    with a utilization, as the planner counts them).
  - O(state=stopped) sets the C(target-role) meta attribute of each VM to C(Stopped) (what C(pcs resource disable)
    does) and waits until none of them runs; O(state=started) deletes the attribute again (C(pcs resource enable))
    and waits until all of them run.
  - Only the VMs it changes are reported, with journal entries (C(kind=stopped_vm)) ready for
    C(clusterops.upgrade.upgrade_journal op=record) - a VM an operator had stopped before is never listed, so it is
    never started by the upgrade.
  - Runs on a pacemaker node (C(crm_mon), C(cibadmin), C(crm_resource)); every command is an argv list with C(LANG=C).
options:
  state:
    description: V(stopped) or V(started).
    type: str
    choices: [stopped, started]
    required: true
  vms:
    description:
      - The VMs (resource ids). Required with O(state=started).
      - With O(state=stopped) and not set, every VM running on O(node).
    type: list
    elements: str
  node:
    description: With O(state=stopped) and no O(vms) - the node whose running VMs are stopped.
    type: str
  wait:
    description: Seconds to wait until the VMs are stopped or running.
    type: int
    default: 120
notes:
  - Check mode reads the cluster and reports what would change (RV(vms), RV(journal_entries)); nothing is run.
    RV(running_vms) tells a manual-mode upgrade whether a host still runs VMs.
attributes:
  check_mode:
    description: Predicts the VMs it would change; runs no C(crm_resource) change.
    support: full
  diff_mode:
    description: Not supported.
    support: none
"""

EXAMPLES = r"""
- name: Stop the VMs of cmp-2 (remembered in the journal first)
  clusterops.upgrade.vm_power:
    state: stopped
    node: cmp-2
  check_mode: true
  register: to_stop

- name: Start exactly the VMs the run stopped
  clusterops.upgrade.vm_power:
    state: started
    vms: [vm-02, vm-06]
"""

RETURN = r"""
vms:
  description: The VMs this task changed (or would change in check mode).
  returned: always
  type: list
  elements: str
unchanged:
  description: Named or selected VMs already in the wanted state.
  returned: always
  type: list
  elements: str
running_vms:
  description: VMs running (on O(node) when given) before the task.
  returned: always
  type: list
  elements: str
journal_entries:
  description: One C(stopped_vm) entry per VM stopped (with the node it ran on); empty for O(state=started).
  returned: always
  type: list
  elements: dict
  sample: [{kind: stopped_vm, id: vm-02, resource: vm-02, node: cmp-2, details: {target_role_before: null}}]
placement:
  description: Where each changed VM runs afterwards (empty list - stopped).
  returned: always
  type: dict
commands:
  description: The commands that changed the cluster.
  returned: always
  type: list
  elements: list
planned_commands:
  description: The commands needed (also in check mode).
  returned: always
  type: list
  elements: list
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    Pacemaker,
    PacemakerError,
    module_cli,
)
from ansible_collections.clusterops.upgrade.plugins.module_utils._vm import set_power

ARGUMENT_SPEC = dict(
    state=dict(type='str', choices=['stopped', 'started'], required=True),
    vms=dict(type='list', elements='str'),
    node=dict(type='str'),
    wait=dict(type='int', default=120),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params['state'] == 'started' and params['vms'] is None:
        module.fail_json(msg='state=started needs vms: the VMs to start (for example the stopped_vm entries of the '
                             'upgrade journal)')
    if params['vms'] is None and not params['node']:
        module.fail_json(msg='give vms (the VMs to stop) or node (stop every VM running there)')
    if params['vms'] is not None and params['node']:
        module.fail_json(msg='vms and node are mutually exclusive: name the VMs or the node, not both')
    if params['wait'] < 0:
        module.fail_json(msg='wait must be 0 or more, got %d' % params['wait'])
    try:
        backend = Pacemaker(module_cli(module))
        result = set_power(backend, params['state'], resources=params['vms'], node=params['node'],
                           wait=params['wait'], check_mode=module.check_mode)
    except PacemakerError as exc:
        details = dict(exc.details or {})
        details.pop('changed', None)
        module.fail_json(msg=str(exc), changed=bool(details.get('commands')), **details)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
