#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_report
short_description: Write a check report as Markdown, JSON and JUnit XML
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Renders a list of check results (one per check and host, as the preflight role gathers
    them) into a report for people (Markdown - the summary table first, then the failed
    blockers grouped by check with their hosts), for tools (JSON) and for CI (JUnit XML - one
    test suite, one test case per check and host, a failure per failed blocker).
  - O(waive) turns the failed results of the named checks into V(waived); their severity stays
    visible and the report lists what was waived, and any waived id that matches no check.
  - "Meant to run on the controller (C(delegate_to: localhost), C(run_once: true)). Files are
    written atomically with mode C(0600); a missing O(dest_dir) is created with mode C(0700)."
  - The module does not fail when a blocker failed; it returns RV(blocked) so the play can fail
    after the report is written.
options:
  dest_dir:
    description:
      - Directory that receives the report files.
    type: path
    required: true
  checks:
    description:
      - The check results. Each is a dict with C(id) (the check id - letters, digits and C(_), C(.), C(:), C(-)),
        C(host), C(severity) (V(blocker) or V(warning)), C(status) (V(pass), V(fail), V(waived) or
        V(skipped)), C(evidence) (what was seen), C(remedy) (one line - what to do), and optionally
        C(title) (the check's name for people) and C(data) (structured evidence, kept in the JSON
        report only).
      - One result per check and host; a repeated pair is an error.
    type: list
    elements: dict
    required: true
  waive:
    description:
      - Check ids whose failed results are waived for this run.
    type: list
    elements: str
    default: []
  formats:
    description:
      - Which files to write - V(md) (C(<basename>.md)), V(json) (C(<basename>.json)),
        V(junit) (C(<basename>.junit.xml)).
    type: list
    elements: str
    choices: [md, json, junit]
    default: [md, json, junit]
  title:
    description:
      - Heading of the Markdown report and name of the JUnit test suite.
    type: str
    default: Preflight report
  run_id:
    description:
      - The run the report belongs to, shown in every format.
    type: str
  basename:
    description:
      - File name of the reports without the extension.
    type: str
    default: preflight
  generated_at:
    description:
      - UTC time stamped into the report, like V(2026-11-22T01:02:03Z). Defaults to now; pass a
        fixed value (for example the run's start) to make a rerun with the same results leave
        the files unchanged.
    type: str
attributes:
  check_mode:
    description: Renders the report and returns the summary; writes nothing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
"""

EXAMPLES = r"""
- name: Write the preflight report on the controller
  clusterops.upgrade.run_report:
    dest_dir: "{{ playbook_dir }}/reports/{{ upgrade_run_id }}"
    checks: "{{ ansible_play_hosts | map('extract', hostvars, '__preflight_results') | flatten }}"
    waive: "{{ preflight_waive }}"
    run_id: "{{ upgrade_run_id }}"
  delegate_to: localhost
  run_once: true
  register: __preflight_report

- name: Fail when a blocker remains
  ansible.builtin.fail:
    msg: >-
      Preflight found blockers ({{ __preflight_report.summary.failed_blockers | join(', ') }}):
      see {{ __preflight_report.paths.md }}
  when: __preflight_report.blocked
  run_once: true
"""

RETURN = r"""
paths:
  description: The report file of each requested format (also in check mode, where nothing is written).
  returned: always
  type: dict
  sample:
    md: /srv/reports/r-42/preflight.md
    json: /srv/reports/r-42/preflight.json
    junit: /srv/reports/r-42/preflight.junit.xml
files_changed:
  description: The files that were written (in check mode, that would be written).
  returned: always
  type: list
  elements: str
blocked:
  description: Whether a blocker failed and was not waived.
  returned: always
  type: bool
  sample: false
summary:
  description:
    - Counts and verdict - C(total), C(checks), C(hosts), C(passed), C(failed), C(waived),
      C(skipped), C(blockers_failed), C(warnings_failed), C(failed_blockers) (check ids),
      C(failed_warnings), C(waived_checks), C(blocked_hosts), C(unknown_waivers) (waived ids that
      match no check), C(blocked).
  returned: always
  type: dict
  sample:
    total: 30
    checks: 10
    hosts: 3
    passed: 27
    failed: 2
    waived: 1
    skipped: 0
    blockers_failed: 1
    warnings_failed: 1
    failed_blockers: [disk_usage]
    failed_warnings: [ntp_offset]
    waived_checks: [rpm_baseline]
    blocked_hosts: [cmp-1]
    unknown_waivers: []
    blocked: true
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clusterops.upgrade.plugins.module_utils import _atomic_file
from ansible_collections.clusterops.upgrade.plugins.module_utils._report import (
    DEFAULT_TITLE,
    FORMAT_SUFFIX,
    FORMATS,
    ReportError,
    build_report,
    render,
)


def argument_spec():
    return dict(
        dest_dir=dict(type='path', required=True),
        checks=dict(type='list', elements='dict', required=True),
        waive=dict(type='list', elements='str', default=[]),
        formats=dict(type='list', elements='str', choices=list(FORMATS), default=list(FORMATS)),
        title=dict(type='str', default=DEFAULT_TITLE),
        run_id=dict(type='str'),
        basename=dict(type='str', default='preflight'),
        generated_at=dict(type='str'),
    )


def plan_outputs(params):
    """[(format, path, bytes)] for the requested formats. Raises ReportError."""
    basename = params['basename']
    if not basename or '/' in basename or basename.startswith('.'):
        raise ReportError('basename must be a plain file name (no "/", not starting with "."), got %r' % basename)
    if not params['formats']:
        raise ReportError('formats is empty: name at least one of %s' % ', '.join(FORMATS))
    report = build_report(params['checks'], waive=params['waive'], title=params['title'],
                          run_id=params['run_id'], generated_at=params['generated_at'])
    outputs = []
    for fmt in FORMATS:
        if fmt in params['formats']:
            path = os.path.join(params['dest_dir'], basename + FORMAT_SUFFIX[fmt])
            outputs.append((fmt, path, render(report, fmt).encode('utf-8')))
    return report, outputs


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    dest_dir = module.params['dest_dir']
    try:
        report, outputs = plan_outputs(module.params)
    except ReportError as exc:
        module.fail_json(msg=str(exc))
    if os.path.lexists(dest_dir) and not os.path.isdir(dest_dir):
        module.fail_json(msg='dest_dir %s exists and is not a directory: choose another dest_dir' % dest_dir)
    missing_dir = not os.path.isdir(dest_dir)
    to_write = [(path, data) for fmt, path, data in outputs if missing_dir or _atomic_file.needs_write(path, data)]
    if to_write and not module.check_mode:
        try:
            _atomic_file.ensure_dir(dest_dir)
            for path, data in to_write:
                _atomic_file.atomic_write(path, data)
        except OSError as exc:
            module.fail_json(msg='cannot write the report to %s: %s' % (exc.filename or dest_dir, exc.strerror or exc))
    module.exit_json(
        changed=bool(to_write),
        paths=dict((fmt, path) for fmt, path, data in outputs),
        files_changed=[path for path, data in to_write],
        blocked=report['summary']['blocked'],
        summary=report['summary'],
    )


if __name__ == '__main__':
    main()
