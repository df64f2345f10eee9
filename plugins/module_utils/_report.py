# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check reports (preflight style): Markdown for people, JSON for tools, JUnit XML for CI.

A check result is a dict::

    {id, host, severity: blocker|warning, status: pass|fail|waived|skipped,
     evidence, remedy, [title], [data]}

:func:`build_report` validates the results, applies the waivers (a failed
result of a waived check id becomes ``waived``; its severity stays) and
summarizes; the ``render_*`` functions turn that report into text. Every
function here is pure: data in, data out.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import xml.etree.ElementTree as ET

REPORT_SCHEMA_VERSION = 1
SEVERITIES = ('blocker', 'warning')
STATUSES = ('pass', 'fail', 'waived', 'skipped')
FORMATS = ('md', 'json', 'junit')
FORMAT_SUFFIX = {'md': '.md', 'json': '.json', 'junit': '.junit.xml'}
DEFAULT_TITLE = 'Preflight report'
CHECK_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]*$')
TS_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
_KNOWN_KEYS = ('id', 'host', 'severity', 'status', 'evidence', 'remedy', 'title', 'data')
_XML_ILLEGAL = re.compile(u'[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]')


class ReportError(ValueError):
    """Input a report cannot be built from; the message names the item."""


# ----------------------------------------------------------------- validation

def _text(value, where):
    """Evidence and remedies are text; structured evidence is shown as compact JSON."""
    if value is None:
        return ''
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, list, dict)):
        try:
            return json.dumps(value, sort_keys=True, separators=(', ', ': '))
        except (TypeError, ValueError):
            pass
    raise ReportError('%s must be text, got %s' % (where, type(value).__name__))


def normalize_results(checks):
    """Validated copies of the check results, every key present."""
    if not isinstance(checks, list):
        raise ReportError('checks must be a list of check results, got %s' % type(checks).__name__)
    seen = {}
    results = []
    for index, item in enumerate(checks):
        where = 'checks[%d]' % index
        if not isinstance(item, dict):
            raise ReportError('%s must be a dict with id, host, severity, status, got %s'
                              % (where, type(item).__name__))
        unknown = sorted(set(item) - set(_KNOWN_KEYS))
        if unknown:
            raise ReportError('%s has unknown key(s) %s; known keys: %s'
                              % (where, ', '.join(unknown), ', '.join(_KNOWN_KEYS)))
        check_id = item.get('id')
        if not isinstance(check_id, str) or not CHECK_ID_RE.match(check_id):
            raise ReportError('%s.id must be a check id (letters, digits, _ . : -), got %r' % (where, check_id))
        host = item.get('host')
        if not isinstance(host, str) or not host:
            raise ReportError('%s (check %s) needs host, a non-empty string, got %r' % (where, check_id, host))
        if item.get('severity') not in SEVERITIES:
            raise ReportError('%s (check %s on %s) has severity %r; use one of %s'
                              % (where, check_id, host, item.get('severity'), ', '.join(SEVERITIES)))
        if item.get('status') not in STATUSES:
            raise ReportError('%s (check %s on %s) has status %r; use one of %s'
                              % (where, check_id, host, item.get('status'), ', '.join(STATUSES)))
        key = (check_id, host)
        if key in seen:
            raise ReportError('%s repeats check %s on host %s (first at checks[%d])' % (where, check_id, host, seen[key]))
        seen[key] = index
        title = item.get('title')
        if title is not None and not isinstance(title, str):
            raise ReportError('%s.title must be text, got %s' % (where, type(title).__name__))
        results.append({
            'id': check_id,
            'host': host,
            'severity': item['severity'],
            'status': item['status'],
            'evidence': _text(item.get('evidence'), where + '.evidence'),
            'remedy': _text(item.get('remedy'), where + '.remedy'),
            'title': title or '',
            'data': copy.deepcopy(item.get('data')),
            'waived': item['status'] == 'waived',
        })
    return results


def normalize_waive(waive):
    if waive is None:
        return []
    if not isinstance(waive, (list, tuple)):
        raise ReportError('waive must be a list of check ids, got %s' % type(waive).__name__)
    ids = []
    for index, check_id in enumerate(waive):
        if not isinstance(check_id, str) or not CHECK_ID_RE.match(check_id):
            raise ReportError('waive[%d] must be a check id, got %r' % (index, check_id))
        if check_id not in ids:
            ids.append(check_id)
    return ids


def apply_waivers(results, waive):
    """Copies of ``results`` where failed results of a waived check id are ``waived``."""
    waive = set(normalize_waive(waive))
    out = []
    for result in results:
        result = dict(result)
        if result['status'] == 'fail' and result['id'] in waive:
            result['status'] = 'waived'
            result['waived'] = True
        out.append(result)
    return out


# ----------------------------------------------------------------- summaries

def _ordered_unique(values):
    out = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def summarize(results, waive=None):
    """Counts and the verdict. ``results`` as from :func:`normalize_results`.

    ``blocked`` is True when a blocker failed (waived ones do not count).
    With ``waive``, the waivers are applied first.
    """
    waive_ids = normalize_waive(waive)
    if waive_ids:
        results = apply_waivers(results, waive_ids)
    failed = [r for r in results if r['status'] == 'fail']
    failed_blockers = [r for r in failed if r['severity'] == 'blocker']
    failed_warnings = [r for r in failed if r['severity'] == 'warning']
    ids = _ordered_unique(r['id'] for r in results)
    return {
        'total': len(results),
        'checks': len(ids),
        'hosts': len(_ordered_unique(r['host'] for r in results)),
        'passed': sum(1 for r in results if r['status'] == 'pass'),
        'failed': len(failed),
        'waived': sum(1 for r in results if r['status'] == 'waived'),
        'skipped': sum(1 for r in results if r['status'] == 'skipped'),
        'blockers_failed': len(failed_blockers),
        'warnings_failed': len(failed_warnings),
        'failed_blockers': _ordered_unique(r['id'] for r in failed_blockers),
        'failed_warnings': _ordered_unique(r['id'] for r in failed_warnings),
        'waived_checks': _ordered_unique(r['id'] for r in results if r['status'] == 'waived'),
        'blocked_hosts': _ordered_unique(r['host'] for r in failed_blockers),
        'unknown_waivers': [w for w in waive_ids if w not in ids],
        'blocked': bool(failed_blockers),
    }


def _check_outcome(counts):
    if counts['fail']:
        return 'fail'
    if counts['waived']:
        return 'waived'
    if counts['pass'] == 0 and counts['skipped']:
        return 'skipped'
    return 'pass'


def group_by_check(results):
    """One entry per check id, in the order the ids first appear."""
    groups = []
    by_id = {}
    for result in results:
        group = by_id.get(result['id'])
        if group is None:
            group = {'id': result['id'], 'title': '', 'severity': 'warning', 'remedy': '',
                     'counts': dict((s, 0) for s in STATUSES), 'hosts': {s: [] for s in STATUSES}}
            by_id[result['id']] = group
            groups.append(group)
        if result['severity'] == 'blocker':
            group['severity'] = 'blocker'
        group['title'] = group['title'] or result['title']
        group['remedy'] = group['remedy'] or result['remedy']
        group['counts'][result['status']] += 1
        group['hosts'][result['status']].append(result['host'])
    for group in groups:
        group['result'] = _check_outcome(group['counts'])
    return groups


def build_report(checks, waive=None, title=DEFAULT_TITLE, run_id=None, generated_at=None):
    """The report document (what the JSON format holds)."""
    if generated_at is None:
        generated_at = datetime.datetime.now(datetime.timezone.utc).strftime(TS_FORMAT)
    try:
        datetime.datetime.strptime(generated_at, TS_FORMAT)
    except (TypeError, ValueError):
        raise ReportError('generated_at must be a UTC timestamp like 2026-11-22T01:02:03Z, got %r' % (generated_at,))
    if not isinstance(title, str) or not title.strip():
        raise ReportError('title must be non-empty text, got %r' % (title,))
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise ReportError('run_id must be non-empty text, got %r' % (run_id,))
    waive_ids = normalize_waive(waive)
    results = apply_waivers(normalize_results(checks), waive_ids)
    summary = summarize(results, waive_ids)
    return {
        'schema_version': REPORT_SCHEMA_VERSION,
        'title': title,
        'run_id': run_id,
        'generated_at': generated_at,
        'waive': waive_ids,
        'summary': summary,
        'checks': group_by_check(results),
        'results': results,
    }


# ----------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r'([\\`*_\[\]|#~])')


def md_escape(text):
    """Text safe in a Markdown paragraph or table cell (one line)."""
    text = text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    text = _MD_SPECIAL.sub(r'\\\1', text)
    return '<br>'.join(line.strip() for line in text.strip().splitlines()) or '-'


def _plural(count, word):
    return '%d %s%s' % (count, word, '' if count == 1 else 's')


def _md_verdict(summary):
    extra = []
    if summary['waived_checks']:
        extra.append('%s waived' % _plural(len(summary['waived_checks']), 'check'))
    if summary['failed_warnings']:
        extra.append('%s' % _plural(len(summary['failed_warnings']), 'warning'))
    if summary['skipped']:
        extra.append('%d skipped' % summary['skipped'])
    tail = (' ' + ', '.join(extra) + '.') if extra else ''
    if summary['blocked']:
        return ('**BLOCKED**: %s failed on %s (%s).%s'
                % (_plural(len(summary['failed_blockers']), 'blocker check'),
                   _plural(len(summary['blocked_hosts']), 'host'),
                   ', '.join('`%s`' % i for i in summary['failed_blockers']), tail))
    return '**PASSED**: no blocker failed on %s.%s' % (_plural(summary['hosts'], 'host'), tail)


_RESULT_LABEL = {'fail': '**FAIL**', 'waived': 'WAIVED', 'skipped': 'skipped', 'pass': 'pass'}


def _md_check_heading(group):
    heading = '### `%s`' % group['id']
    if group['title']:
        heading += ': %s' % md_escape(group['title'])
    return heading


def _md_host_table(results, with_remedy):
    lines = ['| Host | Evidence |' + (' Remedy |' if with_remedy else ''),
             '|---|---|' + ('---|' if with_remedy else '')]
    for result in results:
        row = '| %s | %s |' % (md_escape(result['host']), md_escape(result['evidence']))
        if with_remedy:
            row += ' %s |' % md_escape(result['remedy'])
        lines.append(row)
    return lines


def _md_section(report, status, severity, heading, intro):
    lines = []
    for group in report['checks']:
        if severity is not None and group['severity'] != severity:
            continue
        picked = [r for r in report['results']
                  if r['id'] == group['id'] and r['status'] == status
                  and (severity is None or r['severity'] == severity)]
        if not picked:
            continue
        remedies = _ordered_unique(r['remedy'] for r in picked)
        lines += ['', _md_check_heading(group), '']
        label = '%s, %s' % (group['severity'], _plural(len(picked), 'host'))
        if status == 'waived':
            label += ', waived'
        lines.append('*%s*' % label)
        if len(remedies) == 1 and remedies[0]:
            lines += ['', 'Remedy: %s' % md_escape(remedies[0])]
        lines += [''] + _md_host_table(picked, len(remedies) > 1)
    if not lines:
        return []
    return ['', '## %s' % heading, ''] + ([intro] if intro else []) + lines


def render_markdown(report):
    summary = report['summary']
    lines = ['# %s' % md_escape(report['title']), '']
    meta = []
    if report['run_id']:
        meta.append('Run `%s`' % report['run_id'].replace('`', "'"))
    meta.append('generated %s' % report['generated_at'])
    lines += [', '.join(meta), '', _md_verdict(summary), '', '## Summary', '',
              '| Check | Severity | Result | Pass | Fail | Waived | Skipped | Failing hosts |',
              '|---|---|---|--:|--:|--:|--:|---|']
    rank = {'fail': 0, 'waived': 1, 'skipped': 2, 'pass': 3}
    ordered = sorted(report['checks'], key=lambda g: (rank[g['result']], g['severity'] != 'blocker'))
    for group in ordered:
        counts = group['counts']
        failing = ', '.join(md_escape(h) for h in group['hosts']['fail'] + group['hosts']['waived'])
        label = _RESULT_LABEL[group['result']]
        if group['result'] == 'fail' and group['severity'] == 'warning':
            label = 'WARNING'
        lines.append('| `%s` | %s | %s | %d | %d | %d | %d | %s |' % (
            group['id'], group['severity'], label, counts['pass'], counts['fail'],
            counts['waived'], counts['skipped'], failing or '-'))
    lines += _md_section(report, 'fail', 'blocker', 'Blockers', 'These must be fixed before the upgrade can start.')
    lines += _md_section(report, 'waived', None, 'Waived',
                         'These checks failed but were waived for this run (waive: %s); they do not block it.'
                         % ', '.join('`%s`' % w for w in report['waive']))
    lines += _md_section(report, 'fail', 'warning', 'Warnings', 'These do not block the upgrade; review them.')
    skipped = [r for r in report['results'] if r['status'] == 'skipped']
    if skipped:
        lines += ['', '## Skipped', '', '| Check | Host | Reason |', '|---|---|---|']
        lines += ['| `%s` | %s | %s |' % (r['id'], md_escape(r['host']), md_escape(r['evidence'])) for r in skipped]
    if report['waive']:
        lines += ['', '## Waivers', '']
        for check_id in report['waive']:
            hosts = [r['host'] for r in report['results'] if r['id'] == check_id and r['status'] == 'waived']
            if check_id in summary['unknown_waivers']:
                lines.append('- `%s`: matches no check in this report; check the spelling' % check_id)
            elif hosts:
                lines.append('- `%s`: waived on %s' % (check_id, ', '.join(md_escape(h) for h in hosts)))
            else:
                lines.append('- `%s`: nothing to waive, the check did not fail' % check_id)
    return '\n'.join(lines) + '\n'


# ----------------------------------------------------------------- JSON

def render_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + '\n'


# ----------------------------------------------------------------- JUnit XML

def _xml_text(text):
    return _XML_ILLEGAL.sub('?', text)


def _junit_message(result):
    message = '%s %s on %s: %s' % (result['severity'], result['id'], result['host'], result['evidence'] or 'failed')
    return _xml_text(' '.join(message.split()))


def _junit_body(result):
    body = 'evidence: %s' % (result['evidence'] or '-')
    if result['remedy']:
        body += '\nremedy: %s' % result['remedy']
    return _xml_text(body)


def render_junit(report):
    """One <testsuite> in <testsuites>; one <testcase> per check and host.

    Failed blockers are <failure>; waived and skipped results are <skipped>
    (the message says which); a failed warning passes with its evidence in
    <system-out>.
    """
    summary = report['summary']
    counts = {
        'tests': str(summary['total']),
        'failures': str(summary['blockers_failed']),
        'errors': '0',
        'skipped': str(summary['waived'] + summary['skipped']),
        'time': '0',
    }
    title = _xml_text(report['title'])
    root = ET.Element('testsuites', dict(name=title, **counts))
    suite = ET.SubElement(root, 'testsuite', dict(name=title, timestamp=report['generated_at'].rstrip('Z'),
                                                  hostname='localhost', **counts))
    properties = ET.SubElement(suite, 'properties')
    for name, value in (('run_id', report['run_id'] or ''), ('generated_at', report['generated_at']),
                        ('blocked', 'true' if summary['blocked'] else 'false'),
                        ('waive', ','.join(report['waive']))):
        ET.SubElement(properties, 'property', name=name, value=_xml_text(value))
    for result in report['results']:
        case = ET.SubElement(suite, 'testcase', classname=result['id'], name=_xml_text(result['host']), time='0')
        status = result['status']
        if status == 'fail' and result['severity'] == 'blocker':
            failure = ET.SubElement(case, 'failure', message=_junit_message(result), type='blocker')
            failure.text = _junit_body(result)
        elif status == 'waived':
            ET.SubElement(case, 'skipped', message=_xml_text(
                'waived: %s (%s failed, waived for this run)' % (_junit_message(result), result['severity'])))
        elif status == 'skipped':
            ET.SubElement(case, 'skipped', message=_xml_text('skipped: %s' % (result['evidence'] or 'not applicable')))
        elif status == 'fail':
            out = ET.SubElement(case, 'system-out')
            out.text = _xml_text('WARNING (does not block): %s\n%s' % (_junit_message(result), _junit_body(result)))
    if hasattr(ET, 'indent'):
        ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'


RENDERERS = {'md': render_markdown, 'json': render_json, 'junit': render_junit}


def render(report, fmt):
    if fmt not in RENDERERS:
        raise ReportError('unknown report format %r; use one of %s' % (fmt, ', '.join(FORMATS)))
    return RENDERERS[fmt](report)
