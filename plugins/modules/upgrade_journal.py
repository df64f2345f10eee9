#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_journal
short_description: Keep the upgrade journal of a run on the cluster host itself
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Reads and writes the journal of an upgrade run on the managed host, so a run can resume
    after any interruption (also from a fresh AWX container) and a rollback can undo exactly
    what the run did.
  - Each host keeps its own record in C(<journal_root>/<run_id>/host.json) (O(scope=host));
    the run record (plan, batches, phases done) is C(<journal_root>/<run_id>/run.json)
    (O(scope=run)), written where the playbook calls it, normally on the control-plane hosts.
  - A host runs one upgrade at a time. O(op=begin) takes the lock C(<journal_root>/lock.json)
    and refuses while another run or another controller holds it, naming the owner and the
    lock's age; O(op=finish) releases it once no record of the run on the host is running.
  - Every write is atomic (temporary file in the same directory, fsync, rename, fsync of the
    directory), files are mode C(0600) and directories created C(0700).
  - Every read is validated against the journal schema version. A corrupt file (not JSON,
    another schema version, a missing key, a value of the wrong type, a directory in its
    place) fails the task with the file name and the problem, and is never rewritten.
  - See C(docs/journal.md) in the collection for the layout, the schema and how the upgrade
    playbook uses O(op=record) and O(op=undo) in its C(always) sections.
options:
  op:
    description:
      - V(begin) starts a run or resumes it (same O(run_id)); it takes the host's lock. A run
        finished as V(failed) is reopened; one finished as V(success) or V(rolled_back) cannot
        begin again.
      - V(set_phase) starts or closes a phase (O(phase), O(phase_status)) and may mark the point
        of no return.
      - V(record) appends an object the run created (O(entry)); recording an object that is
        already recorded and not undone changes nothing.
      - V(undo) marks a recorded object as undone (it matches O(entry.kind), O(entry.id) and,
        when given, O(entry.node)); undoing it again changes nothing.
      - V(get) reads the record and the lock; it never writes, also outside check mode.
      - V(finish) closes the run with O(status) and releases the lock.
    type: str
    required: true
    choices: [begin, set_phase, record, undo, get, finish]
  run_id:
    description:
      - Identifier of the run; the name of its directory under O(journal_root).
      - 1 to 80 characters from C(A-Z a-z 0-9 . _ -), starting with a letter or digit.
    type: str
    required: true
  scope:
    description:
      - V(host) works on this host's record C(host.json), V(run) on the run record C(run.json).
    type: str
    choices: [host, run]
    default: host
  journal_root:
    description:
      - Absolute directory holding the journals and the lock of this host.
    type: path
    default: /var/lib/clusterops-upgrade
  owner:
    description:
      - Who runs the run, shown to anyone the lock refuses, for example
        C(alice@ctl-host (pid 4242)) or C(awx job 17).
      - Required with O(op=begin). With the write operations it is optional; when given, the
        operation is refused unless this owner still holds the lock (another controller may
        have taken it over with O(force)). Accepted and ignored by O(op=get).
    type: str
  host:
    description:
      - Inventory name of this host, stored in the host record. Required with O(op=begin) and
        O(scope=host); with other operations, when given, it must match the record.
      - Ignored with O(scope=run), so it can be set in C(module_defaults).
    type: str
  from_version:
    description:
      - Product version the run upgrades from (O(op=begin)). Set once; a different value on a
        later O(op=begin) of the same run is refused.
    type: str
  to_version:
    description:
      - Product version the run upgrades to (O(op=begin)). Set once, like O(from_version).
    type: str
  force:
    description:
      - With O(op=begin), take over the lock held by another owner of the same run (resume a
        run whose controller died), or the lock of another run once it has been idle for
        O(lock_timeout) seconds. Check that the holder is dead first; the take-over is written
        to the journal's history.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds without a journal write after which another run's lock counts as stale
        (O(op=begin)).
    type: int
    default: 14400
  plan:
    description:
      - The upgrade plan to store in the run record (O(scope=run), O(op=begin) or O(op=set_phase)).
        Replaces the stored plan.
    type: dict
  batches:
    description:
      - The batches of the plan, each a list of host names (O(scope=run), O(op=begin) or
        O(op=set_phase)). Replaces the stored batches.
    type: list
    elements: list
  phase:
    description:
      - Name of the phase for O(op=set_phase).
    type: str
  phase_status:
    description:
      - V(running) starts O(phase) (a phase still running is closed as V(done) first; a phase
        that ran before starts again as a new history entry). V(done), V(failed) and V(skipped)
        close it, or add it closed when it was not running.
    type: str
    choices: [running, done, failed, skipped]
    default: running
  point_of_no_return:
    description:
      - With O(op=set_phase), mark that the run passed its point of no return (at this phase and
        time). It cannot be unmarked; V(false) leaves the mark as it is.
    type: bool
    default: false
  details:
    description:
      - Free-form data merged into the details of the phase entry (O(op=set_phase)).
    type: dict
  entry:
    description:
      - The created object for O(op=record) and O(op=undo).
    type: dict
    suboptions:
      kind:
        description:
          - What the run created. V(ban) and V(prefer) are location constraints, V(standby) and
            V(maintenance) node states, V(stopped_vm) a VM the run shut down, V(backup) a backup
            it made (kept on success).
        type: str
        required: true
        choices: [ban, prefer, standby, maintenance, stopped_vm, backup, other]
      id:
        description:
          - The object's name, for example the constraint id, the VM name or the backup path.
        type: str
        required: true
      node:
        description:
          - The node the object concerns.
        type: str
      resource:
        description:
          - The cluster resource the object concerns (O(op=record) only).
        type: str
      details:
        description:
          - Free-form data to keep with the object (O(op=record) only).
        type: dict
  status:
    description:
      - How the run ended, for O(op=finish). A V(failed) run can be reopened by O(op=begin).
    type: str
    choices: [success, failed, rolled_back]
notes:
  - The result key holding the record is RV(journal), not C(record) or C(msg), so it cannot
    collide with the keys Ansible reserves.
  - Options an operation does not use are refused, so a misspelled intention fails loudly;
    O(owner) and O(host) are the exceptions listed above.
attributes:
  check_mode:
    description: O(op=get) reads in check mode; every other operation predicts RV(journal) and C(changed) and writes nothing.
    support: full
  diff_mode:
    description: Returns the record before and after the operation.
    support: full
"""

EXAMPLES = r"""
- name: Begin (or resume) the run on every host
  clusterops.upgrade.upgrade_journal:
    op: begin
    run_id: "{{ upgrade_run_id }}"
    host: "{{ inventory_hostname }}"
    # AWX sets awx_job_id; from a shell, user@controller is enough
    owner: >-
      {{ ('awx job ' ~ awx_job_id) if awx_job_id is defined
         else (lookup('ansible.builtin.env', 'USER') ~ '@' ~ lookup('ansible.builtin.pipe', 'hostname')) }}
    from_version: 6.8.0
    to_version: 6.8.1

- name: Start the evacuation phase
  clusterops.upgrade.upgrade_journal:
    op: set_phase
    run_id: "{{ upgrade_run_id }}"
    phase: evacuate

- name: Remember the ban this run placed
  clusterops.upgrade.upgrade_journal:
    op: record
    run_id: "{{ upgrade_run_id }}"
    entry:
      kind: ban
      id: cli-ban-vm1-on-cmp-1
      node: cmp-1
      resource: vm1

- name: Mark it undone after clearing it
  clusterops.upgrade.upgrade_journal:
    op: undo
    run_id: "{{ upgrade_run_id }}"
    entry:
      kind: ban
      id: cli-ban-vm1-on-cmp-1
      node: cmp-1

- name: Read the journal (also in check mode)
  clusterops.upgrade.upgrade_journal:
    op: get
    run_id: "{{ upgrade_run_id }}"
  register: journal

- name: Close the run
  clusterops.upgrade.upgrade_journal:
    op: finish
    run_id: "{{ upgrade_run_id }}"
    status: success
"""

RETURN = r"""
journal:
  description:
    - The record after the operation (the prediction in check mode); empty when there is none.
    - Keys - C(schema_version), C(scope), C(run_id), C(host) (scope host) or C(plan) and
      C(batches) (scope run), C(status), C(started_at), C(updated_at), C(finished_at),
      C(from_version), C(to_version), C(phase), C(phases) (C(name), C(status), C(started),
      C(finished), C(details)), C(created) (C(kind), C(id), C(node), C(resource), C(phase),
      C(created_at), C(details), C(undone_at)), C(point_of_no_return) (C(passed), C(at), C(phase)),
      C(lock) (C(owner), C(acquired_at), C(released_at)), C(history).
  returned: always
  type: dict
  sample:
    schema_version: 1
    scope: host
    run_id: r-42
    host: cmp-1
    status: running
    phase: evacuate
exists:
  description: Whether the record exists (after the operation; in check mode, whether it would).
  returned: always
  type: bool
  sample: true
journal_path:
  description: The record's file.
  returned: always
  type: str
  sample: /var/lib/clusterops-upgrade/r-42/host.json
lock:
  description:
    - The host's lock after the operation (C(run_id), C(owner), C(acquired_at),
      C(taken_over_from)), or null when the host is not locked.
  returned: always
  type: dict
  sample:
    schema_version: 1
    run_id: r-42
    owner: alice@ctl (pid 4242)
    acquired_at: "2026-11-22T01:02:03Z"
    taken_over_from: null
phases_done:
  description: Names of the phases that completed (status done), in order; a resumed run skips them.
  returned: always
  type: list
  elements: str
  sample: [preflight, evacuate]
outstanding:
  description: Created objects not marked undone yet (backups stay on purpose).
  returned: always
  type: list
  elements: dict
lock_action:
  description: What O(op=begin) did with the lock - V(acquire), V(keep) (it already held it) or V(take_over).
  returned: when O(op=begin)
  type: str
  sample: acquire
resumed:
  description: Whether O(op=begin) found the run's record already there.
  returned: when O(op=begin)
  type: bool
  sample: false
entry:
  description: The created object as stored (O(op=record)) or as marked undone (O(op=undo)).
  returned: when O(op=record) or O(op=undo)
  type: dict
  sample:
    kind: ban
    id: cli-ban-vm1-on-cmp-1
    node: cmp-1
    resource: vm1
    phase: evacuate
    created_at: "2026-11-22T01:02:03Z"
    details: {}
    undone_at: null
lock_released:
  description: Whether O(op=finish) released the host's lock (it stays while another record of the run on this host runs).
  returned: when O(op=finish)
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils._journal import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_ROOT,
    FINISH_STATUSES,
    OBJECT_KINDS,
    OPS,
    PHASE_STATUSES,
    SCOPES,
    JournalError,
    finish_warnings,
    run_op,
)


def argument_spec():
    return dict(
        op=dict(type='str', required=True, choices=list(OPS)),
        run_id=dict(type='str', required=True),
        scope=dict(type='str', choices=list(SCOPES), default='host'),
        journal_root=dict(type='path', default=DEFAULT_ROOT),
        owner=dict(type='str'),
        host=dict(type='str'),
        from_version=dict(type='str'),
        to_version=dict(type='str'),
        force=dict(type='bool', default=False),
        lock_timeout=dict(type='int', default=DEFAULT_LOCK_TIMEOUT),
        plan=dict(type='dict'),
        batches=dict(type='list', elements='list'),
        phase=dict(type='str'),
        phase_status=dict(type='str', choices=list(PHASE_STATUSES), default='running'),
        point_of_no_return=dict(type='bool', default=False),
        details=dict(type='dict'),
        entry=dict(type='dict', options=dict(
            kind=dict(type='str', required=True, choices=list(OBJECT_KINDS)),
            id=dict(type='str', required=True),
            node=dict(type='str'),
            resource=dict(type='str'),
            details=dict(type='dict'),
        )),
        status=dict(type='str', choices=list(FINISH_STATUSES)),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result = run_op(dict(module.params), check_mode=module.check_mode)
    except JournalError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg='journal I/O failed on %s: %s (nothing further was written)'
                         % (exc.filename or module.params['journal_root'], exc.strerror or exc))
    before = result.pop('before')
    if module._diff:
        result['diff'] = {'before': before, 'after': result['journal']}
    if module.params['op'] == 'finish':
        for warning in finish_warnings(result['journal']):
            module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
