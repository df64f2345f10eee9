# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for the pacemaker command line, answering from the lab's recorded outputs.

Used by the unit tests of ``_pacemaker`` and of the pcs_* / maintenance_mode modules:
it plays the runner of ``PacemakerCli`` (``runner(argv, env)``) and records every call
with its environment, so tests can assert the exact argv sequence and that check mode
runs no mutating command against the live CIB.
"""

from __future__ import annotations

import os
import re

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'pacemaker')
C_ENV = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
BIN = '/usr/sbin/'
BINS = dict((t, BIN + t) for t in ('crm_mon', 'cibadmin', 'crm_resource', 'crm_attribute', 'crm_simulate', 'pcs'))
MON = [BINS['crm_mon'], '--one-shot', '--inactive', '--output-as=xml']
QUERY = [BINS['cibadmin'], '--query']


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def _strip_xml(text):
    return text.strip()


def full_cib(constraints='cibadmin_constraints.xml', extra_constraints='', node_extra=None,
             properties=None, status='', recorded='backend/cibadmin_full.xml'):
    """The lab's whole CIB: the recorded ``cibadmin --query`` output (``recorded``) when no
    change is asked for, else one composed of the recorded sections (nodes, resources,
    constraints) with the given edits: ``extra_constraints`` appended to the constraints,
    ``node_extra`` {node: nvpair xml} added to a node's instance_attributes,
    ``properties`` {name: value}, ``status`` as the status section's content."""
    plain = extra_constraints == '' and node_extra is None and properties is None and status == '' \
        and constraints == 'cibadmin_constraints.xml'
    if plain and recorded and os.path.exists(os.path.join(FIXTURES, recorded)):
        return fixture(recorded)
    nodes = _strip_xml(fixture('cibadmin_nodes.xml'))
    for node, xml in (node_extra or {}).items():
        nodes = re.sub(r'(<node id="\d+" uname="%s">\s*<instance_attributes id="[^"]+">)' % re.escape(node),
                       r'\1' + xml, nodes)
    cons = _strip_xml(fixture(constraints))
    if extra_constraints:
        cons = cons.replace('</constraints>', extra_constraints + '</constraints>')
    props = {'stonith-enabled': 'false', 'placement-strategy': 'utilization', 'cluster-name': 'clusterops-lab'}
    props.update(properties or {})
    pairs = ''.join('<nvpair id="cib-bootstrap-options-%s" name="%s" value="%s"/>' % (k, k, v)
                    for k, v in props.items())
    return ('<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="9" num_updates="0" '
            'admin_epoch="0"><configuration><crm_config><cluster_property_set id="cib-bootstrap-options">'
            + pairs + '</cluster_property_set></crm_config>' + nodes + _strip_xml(fixture('cibadmin_resources.xml'))
            + cons + '<rsc_defaults><meta_attributes id="build-resource-defaults"><nvpair '
            'id="build-resource-defaults-resource-stickiness" name="resource-stickiness" value="100"/>'
            '</meta_attributes></rsc_defaults></configuration><status>' + status + '</status></cib>')


def ban_xml(rid, node, end=None):
    """A cli-ban exactly as crm_resource --ban writes it (with a lifetime: the rule form)."""
    cid = 'cli-ban-%s-on-%s' % (rid, node)
    if end is None:
        return '<rsc_location id="%s" rsc="%s" role="Started" node="%s" score="-INFINITY"/>' % (cid, rid, node)
    return ('<rsc_location id="{c}" rsc="{r}" role="Started"><rule id="{c}-rule" score="-INFINITY" '
            'boolean-op="and"><expression id="{c}-expr" attribute="#uname" operation="eq" value="{n}" '
            'type="string"/><date_expression id="{c}-lifetime" operation="lt" end="{e}"/></rule>'
            '</rsc_location>').format(c=cid, r=rid, n=node, e=end)


def prefer_xml(rid, node):
    return ('<rsc_location id="cli-prefer-%s" rsc="%s" role="Started" node="%s" score="INFINITY"/>'
            % (rid, rid, node))


class FakeClock(object):
    def __init__(self, start=1000.0):
        self.t = start
        self.sleeps = []

    def monotonic(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds

    def advance(self, seconds):
        self.t += seconds

    def now(self):
        import datetime
        return datetime.datetime(2026, 11, 22, 1, 50, 0, tzinfo=datetime.timezone.utc)


class FakeCluster(object):
    """Answers the pacemaker tools. Live ``crm_mon``/``cibadmin --query`` answers are
    consumed in order (the last one repeats); dry-run answers come from ``sim_mon`` and
    ``sim_cib`` (default: the copy the dry run modified)."""

    def __init__(self, mon='crm_mon_healthy.xml', cib=None, sim_mon=None, sim_cib=None, summary='',
                 wait_rc=(0,), clock=None):
        self.mon = [fixture(m) if m.endswith('.xml') else m for m in _as_list(mon)]
        self.cib = _as_list(cib if cib is not None else full_cib())
        self.sim_mon = None if sim_mon is None else (fixture(sim_mon) if sim_mon.endswith('.xml') else sim_mon)
        self.sim_cib = sim_cib
        self.summary = summary
        self.wait_rc = list(wait_rc)
        self.clock = clock
        self.calls = []
        self.answers = {}
        self.copies = []

    def on(self, argv, *answers):
        """Fixed answers for one argv (consumed in order, the last repeats)."""
        self.answers[tuple(argv)] = list(answers)

    def _next(self, queue):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def __call__(self, argv, env):
        argv = list(argv)
        self.calls.append((argv, dict(env)))
        if tuple(argv) in self.answers:
            return self._next(self.answers[tuple(argv)])
        tool = os.path.basename(argv[0])
        copy = env.get('CIB_file')
        if copy:
            self.copies.append(copy)
        if copy and is_mutating(argv):
            _apply_to_copy(copy, argv)
            return 0, '', ''
        if tool == 'crm_mon':
            if copy:
                return 0, self.sim_mon if self.sim_mon is not None else self.mon[0], ''
            return 0, self._next(self.mon), ''
        if tool == 'cibadmin' and argv[1:] == ['--query']:
            return 0, self._next(self.cib), ''
        if tool == 'crm_simulate':
            source = argv[argv.index('--xml-file') + 1]
            target = argv[argv.index('--save-output') + 1]
            with open(source) as handle:
                text = handle.read()
            with open(target, 'w') as handle:
                handle.write(self.sim_cib if self.sim_cib is not None else text)
            return 0, self.summary, ''
        if tool == 'crm_resource' and '--wait' in argv:
            rc = self._next(self.wait_rc)
            if rc == 124 and self.clock is not None:
                self.clock.advance(int(argv[argv.index('--timeout') + 1].rstrip('s')))
            return rc, '', ''
        return 0, '', ''

    @property
    def argvs(self):
        return [argv for argv, env in self.calls]

    def live(self):
        """argv of the calls made against the live cluster (no CIB_file)."""
        return [argv for argv, env in self.calls if 'CIB_file' not in env]

    def mutations(self):
        """argv of mutating calls against the live cluster."""
        return [argv for argv in self.live() if is_mutating(argv)]


def is_mutating(argv):
    tool = os.path.basename(argv[0])
    if tool == 'crm_resource':
        return not ('--wait' in argv or '--locate' in argv)
    if tool == 'cibadmin':
        return any(a in argv for a in ('--create', '--delete', '--modify', '--replace', '--erase'))
    if tool == 'crm_attribute':
        return any(a in argv for a in ('--update', '--delete'))
    return False


def _apply_to_copy(path, argv):
    """What the real tools do to the CIB copy, for the changes the backend makes."""
    with open(path) as handle:
        text = handle.read()
    tool = os.path.basename(argv[0])
    if tool == 'crm_resource' and '--ban' in argv:
        rid = argv[argv.index('--resource') + 1]
        node = argv[argv.index('--node') + 1]
        end = '2036-11-22 02:50:00Z' if '--lifetime' in argv else None  # the form written on a UTC host
        text = text.replace('</constraints>', ban_xml(rid, node, end) + '</constraints>')
    elif tool == 'cibadmin' and '--create' in argv:
        text = text.replace('</constraints>', argv[argv.index('--xml-text') + 1] + '</constraints>')
    elif tool == 'cibadmin' and '--delete' in argv:
        cid = re.search(r"@id='([^']+)'", argv[argv.index('--xpath') + 1]).group(1)
        pattern = r'<rsc_location id="%s"(?:[^>]*/>|[^>]*>.*?</rsc_location>)' % re.escape(cid)
        text = re.sub(pattern, '', text, count=1, flags=re.S)
    with open(path, 'w') as handle:
        handle.write(text)


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


# ---------------------------------------------------------------------------
# Running a module's main() against a FakeCluster
# ---------------------------------------------------------------------------

RESERVED = {'failed', 'skipped', 'msg', 'rc', 'results', 'stdout', 'stderr', 'stdout_lines', 'stderr_lines',
            'invocation', 'exception', 'warnings', 'deprecations', 'ansible_facts', 'backup_file', 'item'}


class Exit(Exception):
    pass


class Fail(Exception):
    pass


class ModuleHarness(object):
    """Patches AnsibleModule so ``main()`` talks to ``cluster`` (run_command, get_bin_path)
    and raises Exit/Fail with the result; collects warnings and run_command kwargs."""

    def __init__(self, monkeypatch, cluster, missing=()):
        from ansible.module_utils import basic
        self.cluster = cluster
        self.warnings = []
        self.kwargs = []
        harness = self

        def run_command(module, args, **kwargs):
            harness.kwargs.append(kwargs)
            env = dict(kwargs.get('environ_update') or {})
            return cluster(list(args), env)

        def get_bin_path(module, name, required=False, opt_dirs=None):
            return None if name in missing else BIN + name

        def exit_json(module, **kwargs):
            raise Exit(kwargs)

        def fail_json(module, **kwargs):
            raise Fail(kwargs)

        monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, text: harness.warnings.append(text))

    def run(self, main, args, expect=Exit, check_mode=False, diff=False):
        import pytest
        from ansible.module_utils.testing import patch_module_args
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with patch_module_args(args):
            with pytest.raises(expect) as caught:
                main()
        return caught.value.args[0]
