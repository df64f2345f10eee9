#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_plan
short_description: Plan capacity-aware compute upgrade batches, with a proof for each batch
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Splits the compute hosts that still need the upgrade into ordered batches so that, while a batch is
    upgraded, the VMs of its hosts fit on the hosts that stay in service, within their storage group and
    within each host's capacity minus O(headroom).
  - For every batch it returns the VM moves, the VMs that stop and restart, and the free capacity every
    remaining host of the touched storage groups has after the moves (the proof that the batch fits).
  - It also returns a lower bound on the number of batches that any valid plan needs, so the quality of
    the plan can be judged.
  - When no safe plan exists the module fails and says why (which VM fits nowhere, which host cannot be
    evacuated, which option conflicts).
  - "Pure computation, nothing on the hosts is read or changed; run it on the controller
    (C(delegate_to: localhost), C(run_once: true)). The algorithm and the lower bound are described in
    C(docs/planner.md) of the collection."
options:
  hosts:
    description:
      - Every host of the cluster, including hosts already upgraded (they are valid targets).
      - Mutually exclusive with O(facts).
    type: list
    elements: dict
    suboptions:
      name:
        description: Host name, unique.
        type: str
        required: true
      capacity:
        description:
          - Capacity per resource, integers greater than zero, in the units the VM demands use
            (for example MiB of memory and vCPUs).
          - V(memory) is required; any other resource (for example V(vcpu)) is optional but must then be
            declared by every host.
        type: dict
        required: true
      storage_group:
        description:
          - Hosts sharing the storage the VMs live on. VMs only move within their host's group.
          - Hosts that leave it out share the group V(default).
        type: str
        default: default
      role:
        description:
          - V(aio) marks an all-in-one host (management and compute). With O(aio_first) they are upgraded
            before every compute host.
        type: str
        choices: [compute, aio]
        default: compute
      upgraded:
        description: The host already runs the new version; it is not scheduled but receives VMs.
        type: bool
        default: false
      max_parallel:
        description:
          - Largest batch this host may be part of, for example V(1) for a host that must be upgraded
            alone. O(max_parallel) still caps every batch.
        type: int
  vms:
    description:
      - The running VMs. Mutually exclusive with O(facts).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: VM name, unique.
        type: str
        required: true
      host:
        description: The host the VM runs on; must be one of O(hosts).
        type: str
        required: true
      demand:
        description:
          - Demand per resource, integers of zero or more. Resources left out count as zero; a resource no
            host declares is an error.
        type: dict
        default: {}
      migratable:
        description: The VM can live-migrate. In O(evacuation=migrate) others are stopped and restarted.
        type: bool
        default: true
      pinned:
        description: The VM must stay on its host (local disk, passthrough device). It is stopped and restarted.
        type: bool
        default: false
  facts:
    description:
      - The facts C(pcs_info) returns (C(nodes) and C(resources)), used instead of O(hosts) and O(vms).
      - Node C(utilization) gives the capacity, resource C(utilization) the demand, C(allow_migrate)
        whether a VM migrates; resources without utilization or not running are not VMs. Node attributes
        named in O(fact_attributes) give the storage group, the all-in-one role and the upgraded flag.
      - Every node must be online and neither in standby nor in maintenance.
    type: dict
  fact_attributes:
    description: Names of the pacemaker node attributes (and resource meta attribute) read from O(facts).
    type: dict
    default: {}
    suboptions:
      storage_group:
        description: Node attribute holding the storage group; nodes without it share V(default).
        type: str
        default: storage_group
      aio:
        description: Node attribute that is true on all-in-one nodes.
        type: str
        default: aio
      upgraded:
        description: Node attribute that is true on nodes already upgraded.
        type: str
        default: upgraded
      pinned:
        description: Resource meta attribute that is true on VMs that must not leave their node.
        type: str
        default: pinned
      role:
        description:
          - Node attribute holding the node's role; the value V(aio) marks an all-in-one node
            (the lab sets C(clusterops-role=aio)), like a true O(fact_attributes.aio) attribute.
        type: str
        default: clusterops-role
  evacuation:
    description:
      - V(migrate) live-migrates the migratable, unpinned VMs of a batch to hosts outside the batch; the
        others are stopped and restarted on their host after the batch.
      - V(shutdown) stops every VM of a batch and restarts it on the same host after the batch; capacity
        does not limit the batches.
      - V(manual) plans like V(migrate), but the operator empties the hosts (the moves are suggestions proven
        to fit); the upgrade refuses a host that still runs VMs.
    type: str
    choices: [migrate, shutdown, manual]
    default: migrate
  headroom:
    description:
      - Percent of every host's capacity kept free at all times, in [0, 100). The usable capacity is
        floor(capacity * (100 - headroom) / 100).
    type: float
    default: 0
  max_parallel:
    description: Most hosts in one batch. Unset means capacity alone limits the batches.
    type: int
  aio_first:
    description: Upgrade every all-in-one host, in batches of their own, before any compute host.
    type: bool
    default: true
  order:
    description:
      - Hosts that must go before the others. Each entry is a host name or a list of host names (a tier);
        every host of an entry is upgraded in an earlier batch than every host of a later entry, and listed
        hosts before unlisted ones. Already upgraded hosts are ignored.
      - With O(aio_first) the order applies among the all-in-one hosts and among the compute hosts; listing
        a compute host before an all-in-one host is an error.
    type: list
    elements: raw
    default: []
notes:
  - Supports check mode; the module never changes anything and always reports C(changed=false).
  - A VM that moved stays where it went (pacemaker with resource stickiness); when that host is upgraded
    later, the VM moves again. Upgraded hosts are preferred as targets so that this happens rarely.
  - The plan assumes nothing else starts or moves VMs between planning and execution; re-plan after a change.
"""

EXAMPLES = r"""
- name: Plan the compute upgrade, keeping 10 % free on every host
  clusterops.upgrade.upgrade_plan:
    hosts:
      - {name: node1, capacity: {memory: 262144, vcpu: 64}, storage_group: san-a, role: aio}
      - {name: node2, capacity: {memory: 262144, vcpu: 64}, storage_group: san-a}
      - {name: node3, capacity: {memory: 262144, vcpu: 64}, storage_group: san-a}
      - {name: node4, capacity: {memory: 262144, vcpu: 64}, storage_group: san-a, upgraded: true}
    vms:
      - {name: db1, host: node2, demand: {memory: 65536, vcpu: 16}}
      - {name: app1, host: node3, demand: {memory: 32768, vcpu: 8}}
      - {name: gpu1, host: node3, demand: {memory: 16384, vcpu: 4}, pinned: true}
    evacuation: migrate
    headroom: 10
    max_parallel: 2
  delegate_to: localhost
  run_once: true
  register: plan

- name: Show the plan
  ansible.builtin.debug:
    msg: "{{ plan.plan_text }}"

- name: Plan straight from the facts pcs_info gathered
  clusterops.upgrade.upgrade_plan:
    facts: "{{ pcs_facts }}"
    fact_attributes:
      storage_group: san
    evacuation: migrate
    headroom: 10
    order: [node7]
  delegate_to: localhost
  run_once: true
  register: plan
"""

RETURN = r"""
batches:
  description: The batches in order, each a sorted list of host names.
  returned: success
  type: list
  elements: list
  sample: [[node1], [node2, node3]]
batch_details:
  description: One entry per batch, in order.
  returned: success
  type: list
  elements: dict
  contains:
    number:
      description: Position of the batch, from 1.
      type: int
      sample: 1
    hosts:
      description: The hosts upgraded together in this batch.
      type: list
      elements: str
      sample: [node2, node3]
    moves:
      description:
        - The VMs to migrate before the batch, sorted by VM name; any order of execution is safe because
          targets only gain load.
      type: list
      elements: dict
      sample: [{vm: db1, source: node2, target: node1}]
    stop:
      description: The VMs to stop before the batch (all in shutdown mode, otherwise pinned or non-migratable ones).
      type: list
      elements: dict
      sample: [{vm: gpu1, host: node3}]
    restart:
      description: The VMs to start again after the batch, on the same host.
      type: list
      elements: dict
      sample: [{vm: gpu1, host: node3}]
    evacuate:
      description: The hosts of the batch that carry VMs when it starts (in manual mode the operator empties them).
      type: list
      elements: str
      sample: [node2, node3]
    free_after:
      description:
        - For every in-service host of the storage groups this batch touches, the capacity minus headroom
          minus load after the moves, per resource. Non-negative on every host that receives a VM; this is
          the proof that the batch fits.
      type: dict
      sample: {node1: {memory: 170393, vcpu: 41}, node4: {memory: 235929, vcpu: 57}}
lower_bound:
  description: No valid plan has fewer batches than this (see docs/planner.md for why).
  returned: success
  type: int
  sample: 2
host_count:
  description: Hosts to upgrade, which is also the number of batches of one host at a time.
  returned: success
  type: int
  sample: 3
already_upgraded:
  description: Hosts marked upgraded; not scheduled.
  returned: success
  type: list
  elements: str
  sample: [node4]
resources:
  description: The resources the plan accounts for, memory first.
  returned: success
  type: list
  elements: str
  sample: [memory, vcpu]
plan_text:
  description: The plan as readable text, with every move, stop and the free capacity after each batch.
  returned: success
  type: str
  sample: "Upgrade plan: 3 host(s) in 2 batch(es); lower bound 2; one host at a time would take 3.\n..."
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.clusterops.upgrade.plugins.module_utils._planner import (
    PlannerError, pcs_facts_to_input, plan_upgrade, render_plan_text)


def _argument_spec():
    return dict(
        hosts=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            capacity=dict(type='dict', required=True),
            storage_group=dict(type='str', default='default'),
            role=dict(type='str', choices=['compute', 'aio'], default='compute'),
            upgraded=dict(type='bool', default=False),
            max_parallel=dict(type='int'),
        )),
        vms=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True),
            host=dict(type='str', required=True),
            demand=dict(type='dict', default={}),
            migratable=dict(type='bool', default=True),
            pinned=dict(type='bool', default=False),
        )),
        facts=dict(type='dict'),
        fact_attributes=dict(type='dict', default={}, options=dict(
            storage_group=dict(type='str', default='storage_group'),
            aio=dict(type='str', default='aio'),
            upgraded=dict(type='str', default='upgraded'),
            pinned=dict(type='str', default='pinned'),
            role=dict(type='str', default='clusterops-role'),
        )),
        evacuation=dict(type='str', choices=['migrate', 'shutdown', 'manual'], default='migrate'),
        headroom=dict(type='float', default=0),
        max_parallel=dict(type='int'),
        aio_first=dict(type='bool', default=True),
        order=dict(type='list', elements='raw', default=[]),
    )


def _planner_input(params):
    if params['facts'] is not None:
        names = params['fact_attributes']
        return pcs_facts_to_input(params['facts'], storage_attribute=names['storage_group'],
                                  aio_attribute=names['aio'], upgraded_attribute=names['upgraded'],
                                  pinned_attribute=names['pinned'], role_attribute=names['role'])
    return {'hosts': params['hosts'], 'vms': params['vms']}


def main():
    module = AnsibleModule(
        argument_spec=_argument_spec(),
        required_one_of=[('hosts', 'facts')],
        mutually_exclusive=[('hosts', 'facts')],
        supports_check_mode=True,
    )
    params = module.params
    if params['facts'] is not None and params['vms']:
        module.fail_json(msg='vms cannot be combined with facts: the VMs come from facts.resources')
    try:
        data = _planner_input(params)
        plan = plan_upgrade(data['hosts'], data['vms'], evacuation=params['evacuation'],
                            headroom=params['headroom'], max_parallel=params['max_parallel'],
                            aio_first=params['aio_first'], order=params['order'])
    except PlannerError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan['warnings']:
        module.warn(warning)
    module.exit_json(
        changed=False,
        batches=plan['batches'],
        batch_details=plan['batch_details'],
        lower_bound=plan['lower_bound'],
        host_count=plan['host_count'],
        already_upgraded=plan['already_upgraded'],
        resources=plan['resources'],
        plan_text=render_plan_text(plan),
    )


if __name__ == '__main__':
    main()
