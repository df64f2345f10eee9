# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check reports: validation, waivers, summary, Markdown, JSON, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.clusterops.upgrade.plugins.module_utils import _report as R

GENERATED = '2026-11-22T01:02:03Z'


def check(check_id, host, status, severity='blocker', evidence='', remedy='', **extra):
    item = {'id': check_id, 'host': host, 'severity': severity, 'status': status, 'evidence': evidence,
            'remedy': remedy}
    item.update(extra)
    return item


CHECKS = [
    check('host_reachable', 'ctl-a', 'pass', evidence='ping ok'),
    check('host_reachable', 'ctl-b', 'pass', evidence='ping ok'),
    check('host_reachable', 'cmp-1', 'pass', evidence='ping ok'),
    check('disk_usage', 'ctl-a', 'pass', evidence='/ at 40 %', remedy='free space on /'),
    check('disk_usage', 'ctl-b', 'fail', evidence='/ at 99 % (limit 99 %)', remedy='free space on /',
          title='Root and log partitions below the threshold'),
    check('disk_usage', 'cmp-1', 'fail', evidence='/var/log at 99 %', remedy='free space on /'),
    check('rpm_baseline', 'cmp-1', 'fail', evidence='extra: foo-1.0 | <x>', remedy='rpm -e foo'),
    check('rpm_baseline', 'ctl-a', 'pass', evidence='231 packages match'),
    check('ntp_offset', 'ctl-b', 'fail', severity='warning', evidence='offset 2 s', remedy='sync the clocks'),
    check('bundle_verified', 'ctl-a', 'skipped', evidence='no bundle given'),
]


def report(waive=None, checks=None, **kw):
    kw.setdefault('run_id', 'r-42')
    return R.build_report(CHECKS if checks is None else checks, waive=waive, generated_at=GENERATED, **kw)


# ----------------------------------------------------------------- summary

def test_summarize_counts_and_blocked():
    results = R.normalize_results(CHECKS)
    assert R.summarize(results) == {
        'total': 10, 'checks': 5, 'hosts': 3, 'passed': 5, 'failed': 4, 'waived': 0, 'skipped': 1,
        'blockers_failed': 3, 'warnings_failed': 1,
        'failed_blockers': ['disk_usage', 'rpm_baseline'], 'failed_warnings': ['ntp_offset'], 'waived_checks': [],
        'blocked_hosts': ['ctl-b', 'cmp-1'], 'unknown_waivers': [], 'blocked': True,
    }


def test_waivers_turn_failed_results_waived_and_keep_severity():
    results = R.apply_waivers(R.normalize_results(CHECKS), ['rpm_baseline', 'disk_usage'])
    waived = [(r['id'], r['host'], r['severity'], r['status'], r['waived']) for r in results if r['waived']]
    assert waived == [('disk_usage', 'ctl-b', 'blocker', 'waived', True),
                      ('disk_usage', 'cmp-1', 'blocker', 'waived', True),
                      ('rpm_baseline', 'cmp-1', 'blocker', 'waived', True)]
    # passing results of a waived check stay pass
    assert [r['status'] for r in results if r['id'] == 'rpm_baseline'] == ['waived', 'pass']
    summary = R.summarize(results)
    assert summary['blocked'] is False
    assert summary['waived'] == 3
    assert summary['waived_checks'] == ['disk_usage', 'rpm_baseline']


def test_summarize_with_waive_and_unknown_ids():
    summary = R.summarize(R.normalize_results(CHECKS), waive=['disk_usage', 'disk_usgae'])
    assert summary['blocked'] is True
    assert summary['failed_blockers'] == ['rpm_baseline']
    assert summary['unknown_waivers'] == ['disk_usgae']


def test_all_passing_is_not_blocked():
    summary = R.summarize(R.normalize_results([check('a', 'h1', 'pass'), check('b', 'h1', 'fail', 'warning')]))
    assert summary['blocked'] is False
    assert summary['failed'] == 1


# ----------------------------------------------------------------- validation

@pytest.mark.parametrize('checks, message', [
    ('nope', 'checks must be a list of check results, got str'),
    ([['a']], 'checks[0] must be a dict with id, host, severity, status, got list'),
    ([check('a', 'h', 'pass', remedey='x')],
     'checks[0] has unknown key(s) remedey; known keys: id, host, severity, status, evidence, remedy, title, data'),
    ([check('bad id', 'h', 'pass')], "checks[0].id must be a check id (letters, digits, _ . : -), got 'bad id'"),
    ([check('a', '', 'pass')], "checks[0] (check a) needs host, a non-empty string, got ''"),
    ([check('a', 'h', 'pass', severity='fatal')], "checks[0] (check a on h) has severity 'fatal'; use one of blocker, warning"),
    ([check('a', 'h', 'ok')], "checks[0] (check a on h) has status 'ok'; use one of pass, fail, waived, skipped"),
    ([check('a', 'h', 'pass'), check('a', 'h', 'fail')], 'checks[1] repeats check a on host h (first at checks[0])'),
    ([check('a', 'h', 'pass', evidence=object())], 'checks[0].evidence must be text, got object'),
])
def test_bad_checks_are_named(checks, message):
    with pytest.raises(R.ReportError) as err:
        R.build_report(checks, generated_at=GENERATED)
    assert str(err.value) == message


@pytest.mark.parametrize('kwargs, message', [
    ({'waive': 'disk_usage'}, 'waive must be a list of check ids, got str'),
    ({'waive': ['ok', '']}, "waive[1] must be a check id, got ''"),
    ({'generated_at': 'today'}, "generated_at must be a UTC timestamp like 2026-11-22T01:02:03Z, got 'today'"),
    ({'title': ' '}, "title must be non-empty text, got ' '"),
])
def test_bad_report_options(kwargs, message):
    kwargs.setdefault('generated_at', GENERATED)
    with pytest.raises(R.ReportError) as err:
        R.build_report(CHECKS, **kwargs)
    assert str(err.value) == message


def test_structured_evidence_becomes_text():
    results = R.normalize_results([check('a', 'h', 'fail', evidence={'used': 99, 'mount': '/'})])
    assert results[0]['evidence'] == '{"mount": "/", "used": 99}'


# ----------------------------------------------------------------- Markdown

def test_markdown_blocked_report():
    text = R.render_markdown(report(waive=['rpm_baseline', 'typo']))
    assert text == '\n'.join([
        '# Preflight report',
        '',
        'Run `r-42`, generated 2026-11-22T01:02:03Z',
        '',
        '**BLOCKED**: 1 blocker check failed on 2 hosts (`disk_usage`). 1 check waived, 1 warning, 1 skipped.',
        '',
        '## Summary',
        '',
        '| Check | Severity | Result | Pass | Fail | Waived | Skipped | Failing hosts |',
        '|---|---|---|--:|--:|--:|--:|---|',
        '| `disk_usage` | blocker | **FAIL** | 1 | 2 | 0 | 0 | ctl-b, cmp-1 |',
        '| `ntp_offset` | warning | WARNING | 0 | 1 | 0 | 0 | ctl-b |',
        '| `rpm_baseline` | blocker | WAIVED | 1 | 0 | 1 | 0 | cmp-1 |',
        '| `bundle_verified` | blocker | skipped | 0 | 0 | 0 | 1 | - |',
        '| `host_reachable` | blocker | pass | 3 | 0 | 0 | 0 | - |',
        '',
        '## Blockers',
        '',
        'These must be fixed before the upgrade can start.',
        '',
        '### `disk_usage`: Root and log partitions below the threshold',
        '',
        '*blocker, 2 hosts*',
        '',
        'Remedy: free space on /',
        '',
        '| Host | Evidence |',
        '|---|---|',
        '| ctl-b | / at 99 % (limit 99 %) |',
        '| cmp-1 | /var/log at 99 % |',
        '',
        '## Waived',
        '',
        'These checks failed but were waived for this run (waive: `rpm_baseline`, `typo`); they do not block it.',
        '',
        '### `rpm_baseline`',
        '',
        '*blocker, 1 host, waived*',
        '',
        'Remedy: rpm -e foo',
        '',
        '| Host | Evidence |',
        '|---|---|',
        '| cmp-1 | extra: foo-1.0 \\| &lt;x&gt; |',
        '',
        '## Warnings',
        '',
        'These do not block the upgrade; review them.',
        '',
        '### `ntp_offset`',
        '',
        '*warning, 1 host*',
        '',
        'Remedy: sync the clocks',
        '',
        '| Host | Evidence |',
        '|---|---|',
        '| ctl-b | offset 2 s |',
        '',
        '## Skipped',
        '',
        '| Check | Host | Reason |',
        '|---|---|---|',
        '| `bundle_verified` | ctl-a | no bundle given |',
        '',
        '## Waivers',
        '',
        '- `rpm_baseline`: waived on cmp-1',
        '- `typo`: matches no check in this report; check the spelling',
        '',
    ])


def test_markdown_passed_and_per_host_remedies():
    checks = [check('disk_usage', 'h1', 'fail', remedy='free 3 GB on /var/log', evidence='a\nb'),
              check('disk_usage', 'h2', 'fail', remedy='free 1 GB on /', evidence='c_*d*')]
    text = R.render_markdown(report(checks=checks, waive=['disk_usage'], run_id=None, title='Pre *check*'))
    assert text.startswith('# Pre \\*check\\*\n\ngenerated 2026-11-22T01:02:03Z\n\n'
                           '**PASSED**: no blocker failed on 2 hosts. 1 check waived.\n')
    assert ('| Host | Evidence | Remedy |\n|---|---|---|\n'
            '| h1 | a<br>b | free 3 GB on /var/log |\n'
            '| h2 | c\\_\\*d\\* | free 1 GB on / |\n') in text
    assert '## Blockers' not in text
    assert '- `disk_usage`: waived on h1, h2\n' in text


def test_markdown_waiver_of_a_passing_check():
    text = R.render_markdown(report(checks=[check('a', 'h', 'pass')], waive=['a']))
    assert text.endswith('## Waivers\n\n- `a`: nothing to waive, the check did not fail\n')


# ----------------------------------------------------------------- JSON

def test_json_round_trip():
    built = report(waive=['rpm_baseline'])
    text = R.render_json(built)
    assert json.loads(text) == built
    assert text.endswith('\n')
    loaded = json.loads(text)
    assert loaded['schema_version'] == 1
    assert loaded['run_id'] == 'r-42'
    assert loaded['waive'] == ['rpm_baseline']
    assert loaded['summary']['blocked'] is True
    assert [(r['id'], r['host'], r['status']) for r in loaded['results'] if r['waived']] == [
        ('rpm_baseline', 'cmp-1', 'waived')]
    assert [(g['id'], g['result'], g['counts']['fail']) for g in loaded['checks']] == [
        ('host_reachable', 'pass', 0), ('disk_usage', 'fail', 2), ('rpm_baseline', 'waived', 0),
        ('ntp_offset', 'fail', 1), ('bundle_verified', 'skipped', 0)]


def test_build_report_does_not_modify_input():
    checks = [check('a', 'h', 'fail', data={'x': [1]})]
    snapshot = json.dumps(checks)
    built = R.build_report(checks, waive=['a'], generated_at=GENERATED)
    built['results'][0]['data']['x'].append(2)
    assert json.dumps(checks) == snapshot


# ----------------------------------------------------------------- JUnit

def test_junit_parses_and_counts():
    root = ET.fromstring(R.render_junit(report(waive=['rpm_baseline'])).encode('utf-8'))
    assert root.tag == 'testsuites'
    suites = root.findall('testsuite')
    assert len(suites) == 1
    suite = suites[0]
    expected = {'tests': '10', 'failures': '2', 'errors': '0', 'skipped': '2'}
    assert dict((k, suite.get(k)) for k in expected) == expected
    assert dict((k, root.get(k)) for k in expected) == expected
    assert suite.get('timestamp') == '2026-11-22T01:02:03'
    cases = suite.findall('testcase')
    assert len(cases) == 10
    assert len(suite.findall('testcase/failure')) == 2
    assert len(suite.findall('testcase/skipped')) == 2
    failure = suite.find("testcase[@classname='disk_usage'][@name='ctl-b']/failure")
    assert failure.get('type') == 'blocker'
    assert failure.get('message') == 'blocker disk_usage on ctl-b: / at 99 % (limit 99 %)'
    assert failure.text == 'evidence: / at 99 % (limit 99 %)\nremedy: free space on /'
    waived = suite.find("testcase[@classname='rpm_baseline'][@name='cmp-1']/skipped")
    assert waived.get('message') == ('waived: blocker rpm_baseline on cmp-1: extra: foo-1.0 | <x> '
                                     '(blocker failed, waived for this run)')
    skipped = suite.find("testcase[@classname='bundle_verified']/skipped")
    assert skipped.get('message') == 'skipped: no bundle given'
    warning = suite.find("testcase[@classname='ntp_offset']")
    assert warning.find('failure') is None
    assert warning.find('system-out').text == ('WARNING (does not block): warning ntp_offset on ctl-b: offset 2 s\n'
                                               'evidence: offset 2 s\nremedy: sync the clocks')
    props = dict((p.get('name'), p.get('value')) for p in suite.findall('properties/property'))
    assert props == {'run_id': 'r-42', 'generated_at': GENERATED, 'blocked': 'true', 'waive': 'rpm_baseline'}


def test_junit_shape_only_known_elements():
    root = ET.fromstring(R.render_junit(report()).encode('utf-8'))
    suite = root.find('testsuite')
    assert [child.tag for child in root] == ['testsuite']
    assert set(child.tag for child in suite) == {'properties', 'testcase'}
    for case in suite.findall('testcase'):
        assert set(case.keys()) == {'classname', 'name', 'time'}
        assert set(child.tag for child in case) <= {'failure', 'skipped', 'system-out'}
        assert len(list(case)) <= 1


def test_junit_strips_characters_xml_cannot_hold():
    text = R.render_junit(report(checks=[check('a', 'h', 'fail', evidence='bad \x00\x07 byte')]))
    failure = ET.fromstring(text.encode('utf-8')).find('testsuite/testcase/failure')
    assert failure.get('message') == 'blocker a on h: bad ?? byte'


def test_render_dispatch():
    built = report()
    assert R.render(built, 'md') == R.render_markdown(built)
    with pytest.raises(R.ReportError) as err:
        R.render(built, 'html')
    assert str(err.value) == "unknown report format 'html'; use one of md, json, junit"
