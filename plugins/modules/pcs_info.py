#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pcs_info
short_description: Read a pacemaker cluster as data - nodes, resources, constraints, quorum
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Runs C(crm_mon --one-shot --inactive --output-as=xml) and C(cibadmin --query) on a cluster node
    (and C(pcs --version) when pcs is installed) and returns the cluster as data - nodes with their
    state, attributes and utilization, every primitive (also inside groups and clones) with role,
    nodes, C(allow-migrate) and utilization, the location constraints with the C(cli-ban-*) and
    C(cli-prefer-*) ones marked and their lifetimes judged, failed actions, quorum, the DC and the
    cluster's maintenance-mode.
  - The output feeds preflight checks and C(clusterops.upgrade.upgrade_plan) (option C(facts)); its
    layout is the one docs/planner.md and docs/pacemaker.md describe.
  - Read-only; it changes nothing, also outside check mode.
  - Utilization is not part of crm_mon's XML; it comes from the CIB.
options: {}
notes:
  - Needs the pacemaker command line tools (crm_mon, cibadmin) on the host; run it on a cluster node,
    for example with C(run_once) on a controller.
  - C(expired) of a constraint compares its C(lifetime_end) with this host's clock at the time of the
    call. Pacemaker ignores an expired constraint from its next transition on (it schedules a recheck
    at the end of a lifetime), but the constraint stays in the CIB until someone removes it
    (M(clusterops.upgrade.pcs_ban) with O(clusterops.upgrade.pcs_ban#module:state=absent), or C(crm_resource --clear --expired)).
seealso:
  - module: clusterops.upgrade.pcs_ban
  - module: clusterops.upgrade.pcs_move
  - module: clusterops.upgrade.maintenance_mode
  - module: clusterops.upgrade.upgrade_plan
attributes:
  check_mode:
    description: Reads the cluster in check mode too.
    support: full
  diff_mode:
    description: Returns no diff; nothing changes.
    support: none
"""

EXAMPLES = r"""
- name: Read the cluster
  clusterops.upgrade.pcs_info:
  run_once: true
  register: pcs_facts

- name: Refuse to start while a cli-ban or cli-prefer is left over
  ansible.builtin.assert:
    that:
      - pcs_facts.cli_bans | length == 0
      - pcs_facts.cli_prefers | length == 0
    fail_msg: "leftover constraints: {{ pcs_facts.cli_bans + pcs_facts.cli_prefers }}"
  run_once: true

- name: Where does the VIP run
  ansible.builtin.debug:
    msg: "{{ (pcs_facts.resources | selectattr('id', 'equalto', 'lb_float_ip') | first).nodes }}"
  run_once: true

- name: Plan the compute upgrade from these facts
  clusterops.upgrade.upgrade_plan:
    facts: "{{ pcs_facts }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dc:
  description: Name of the designated controller, or null when this node sees none.
  returned: success
  type: str
  sample: cmp-4
dc_present:
  description: Whether this node sees a DC.
  returned: success
  type: bool
  sample: true
quorum:
  description: Whether the partition this node is in has quorum (C(current_dc with_quorum)); false without a DC.
  returned: success
  type: bool
  sample: true
pacemaker_version:
  description: Pacemaker version of the DC, as crm_mon prints it.
  returned: success
  type: str
  sample: 2.1.5-a3f44794f94
pcs_version:
  description: Output of C(pcs --version), or null when pcs is not installed.
  returned: success
  type: str
  sample: 0.11.5
maintenance_mode:
  description: Whether the cluster property maintenance-mode is true.
  returned: success
  type: bool
  sample: false
cluster_options:
  description: The C(cluster_options) crm_mon reports, as strings (stonith-enabled, no-quorum-policy, maintenance-mode ...).
  returned: success
  type: dict
  sample: {maintenance-mode: "false", no-quorum-policy: stop, stonith-enabled: "false"}
cluster_properties:
  description: The cluster properties set in the CIB (C(crm_config)), e.g. placement-strategy, cluster-recheck-interval.
  returned: success
  type: dict
  sample: {placement-strategy: utilization, dc-deadtime: 2s}
resource_defaults:
  description: Resource defaults (C(rsc_defaults) meta attributes), e.g. resource-stickiness.
  returned: success
  type: dict
  sample: {resource-stickiness: "100"}
nodes_configured:
  description: Number of nodes in the configuration.
  returned: success
  type: int
  sample: 6
resources_configured:
  description: Number of resources (instances) in the configuration, as crm_mon counts them.
  returned: success
  type: int
  sample: 14
nodes:
  description: Every node, in crm_mon's order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
    id:
      description: Node id.
      type: str
    online:
      description: Member of the cluster now.
      type: bool
    standby:
      description: In standby (resources may not run there).
      type: bool
    standby_onfail:
      description: In standby because of a failure.
      type: bool
    maintenance:
      description: In node maintenance (its resources unmanaged).
      type: bool
    pending:
      description: Joining.
      type: bool
    unclean:
      description: Needs fencing.
      type: bool
    shutdown:
      description: Shutting down.
      type: bool
    expected_up:
      description: Expected to be up.
      type: bool
    is_dc:
      description: The DC.
      type: bool
    resources_running:
      description: Resources running on the node.
      type: int
    type:
      description: Node type (member, remote, ping).
      type: str
    health:
      description: Node health (green, yellow, red).
      type: str
    attributes:
      description: Permanent node attributes (C(instance_attributes) in the CIB), e.g. an all-in-one marker; C(standby) and C(maintenance) appear here when set.
      type: dict
    transient_attributes:
      description: Transient node attributes from the CIB status section (fail counts, reboot-lifetime standby ...).
      type: dict
    utilization:
      description: Node utilization (capacity), values as strings, for example C(memory=16384).
      type: dict
  sample:
    - name: cmp-1
      id: "3"
      online: true
      standby: false
      maintenance: false
      unclean: false
      is_dc: false
      attributes: {clusterops-role: aio}
      utilization: {memory: "16384"}
resources:
  description: Every primitive, including those inside groups and clones (one entry per primitive, all its nodes).
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Resource id (clone instance suffixes like C(:0) removed).
      type: str
    agent:
      description: Resource agent, C(class:provider:type).
      type: str
    role:
      description: Current role (Started, Stopped, Promoted, Unpromoted ...); for clones the most significant role of its instances.
      type: str
    target_role:
      description: The target-role crm_mon reports, if any.
      type: str
    active:
      description: Running on at least one node.
      type: bool
    managed:
      description: Managed by the cluster (false in maintenance).
      type: bool
    failed:
      description: Failed.
      type: bool
    failure_ignored:
      description: Failure ignored (on-fail=ignore).
      type: bool
    blocked:
      description: Blocked.
      type: bool
    orphaned:
      description: Running but no longer configured.
      type: bool
    pending:
      description: Pending action crm_mon shows (e.g. Starting), or null.
      type: str
    nodes:
      description: Nodes it runs on, sorted.
      type: list
      elements: str
    group:
      description: Group it belongs to, or null.
      type: str
    clone:
      description: Clone (or bundle) it belongs to, or null.
      type: str
    instances:
      description: For clone members, each instance's role and nodes.
      type: list
      elements: dict
    allow_migrate:
      description: Effective allow-migrate meta attribute (own, then group or clone, then resource defaults).
      type: bool
    meta:
      description: The resource's own meta attributes.
      type: dict
    utilization:
      description: Resource utilization (demand), values as strings.
      type: dict
    failures:
      description: Failed actions of this resource (same fields as RV(failed_actions)).
      type: list
      elements: dict
    bans:
      description: Negative location scores crm_mon lists for it (C(id), C(node), C(weight)), rules included.
      type: list
      elements: dict
  sample:
    - id: vm-01
      agent: ocf:pacemaker:Dummy
      role: Started
      active: true
      managed: true
      failed: false
      nodes: [cmp-1]
      group: null
      clone: null
      allow_migrate: true
      meta: {allow-migrate: "true"}
      utilization: {memory: "2048"}
      failures: []
groups:
  description: Groups with their member primitives (C(id), C(resources), C(nodes), C(active), C(role), C(managed), C(disabled), C(clone), C(meta)).
  returned: success
  type: list
  elements: dict
  sample:
    - id: mgmt
      resources: [lb_float_ip, mgmt-api]
      nodes: [ctl-a]
      active: true
      role: Started
clones:
  description: Clones and bundles (C(id), C(kind), C(resources), C(nodes), C(active), C(promotable), C(unique), C(managed), C(disabled), C(failed), C(meta)).
  returned: success
  type: list
  elements: dict
location_constraints:
  description: Every C(rsc_location) constraint.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Constraint id.
      type: str
    kind:
      description: C(cli-ban) (created by a ban), C(cli-prefer) (left by a move) or C(user).
      type: str
    resource:
      description: The constrained resource (C(rsc)), or null for patterns and sets.
      type: str
    resource_pattern:
      description: C(rsc-pattern), if used.
      type: str
    resources:
      description: Resources of a resource set, if used.
      type: list
      elements: str
    node:
      description: The node (from C(node=), or a rule's C(#uname eq) expression), or null.
      type: str
    score:
      description: Score of the constraint or of its first rule.
      type: str
    role:
      description: Role the constraint applies to.
      type: str
    rules:
      description: Rules (C(id), C(score), C(boolean_op), C(expressions), C(date_expressions)).
      type: list
      elements: dict
    lifetime_end:
      description: End of the lifetime (a rule's C(date_expression operation=lt end=...)) as written in the CIB, or null.
      type: str
    expires_at:
      description: RV(location_constraints[].lifetime_end) in UTC, ISO 8601, or null.
      type: str
    expired:
      description: Whether the lifetime has ended (false without a lifetime, null when the date cannot be read).
      type: bool
  sample:
    - id: cli-ban-lb_float_ip-on-ctl-a
      kind: cli-ban
      resource: lb_float_ip
      node: ctl-a
      score: -INFINITY
      role: Started
      rules: []
      lifetime_end: null
      expires_at: null
      expired: false
cli_bans:
  description: Ids of the cli-ban constraints.
  returned: success
  type: list
  elements: str
  sample: [cli-ban-lb_float_ip-on-ctl-a]
cli_prefers:
  description: Ids of the cli-prefer constraints.
  returned: success
  type: list
  elements: str
  sample: []
other_constraints:
  description: Other constraints (C(type) - rsc_colocation, rsc_order, rsc_ticket - and C(id)).
  returned: success
  type: list
  elements: dict
failed_actions:
  description:
    - Failed resource actions - C(resource), C(node), C(task), C(interval), C(exitcode), C(exitstatus),
      C(exitreason), C(status), C(call), C(last_rc_change), C(op_key).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    Pacemaker,
    PacemakerError,
    module_cli,
)


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    try:
        facts = Pacemaker(module_cli(module)).facts()
    except PacemakerError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **facts)


if __name__ == '__main__':
    main()
