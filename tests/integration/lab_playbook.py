# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a playbook against the lab inventory, the way an operator would, and
read back what it reports.

Used by tests/integration/test_lab_bundle.py, test_lab_rpm_baseline.py,
test_lab_image_repair.py and test_lab_host_snapshot.py. Playbooks pass results
back by writing ``<out>/<inventory host>.json`` on the controller (a task with
``delegate_to: localhost`` and ``check_mode: false``); the recap line of each
host is parsed from the output.

ansible-playbook runs from the repository root with its ansible.cfg, the
collection link under ./collections, and the lab inventory
(inventories/lab/hosts.yml + group_vars).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "lab" / "hosts.yml"
PLAYBOOKS = ROOT / "tests" / "integration" / "playbooks"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+"
                   r"skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)
RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


class Run(object):
    """One ansible-playbook run: rc, output, recap {host: {ok, changed, ...}},
    results {host: what the playbook wrote for it}."""

    def __init__(self, rc, output, out_dir):
        self.rc = rc
        self.output = output
        self.recap = dict((m.group(1), dict(zip(RECAP_KEYS, (int(g) for g in m.groups()[1:]))))
                          for m in RECAP.finditer(output))
        self.results = {}
        if out_dir.is_dir():
            for path in sorted(out_dir.glob("*.json")):
                self.results[path.stem] = json.loads(path.read_text())

    def changed(self):
        """{host: changed count} from the recap."""
        return dict((host, counts["changed"]) for host, counts in self.recap.items())

    def tail(self, chars=6000):
        return self.output[-chars:]


def _env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_RETRY_FILES_ENABLED="0",
                ANSIBLE_PIPELINING="1", LANG="C.UTF-8")


def run_playbook(playbook, tmp_path, name, extra_vars=None, check=False, limit=None, timeout=900):
    """ansible-playbook -i inventories/lab/hosts.yml PLAYBOOK -e @vars.json [--check] [--limit]."""
    out_dir = tmp_path / ("%s.out" % name)
    out_dir.mkdir()
    variables = dict(extra_vars or {}, lab_out_dir=str(out_dir))
    vars_file = tmp_path / ("%s.vars.json" % name)
    vars_file.write_text(json.dumps(variables))
    env = _env()
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(INVENTORY), str(PLAYBOOKS / playbook), "-e", "@%s" % vars_file]
    if check:
        argv.append("--check")
    if limit:
        argv += ["--limit", ",".join(limit) if isinstance(limit, (list, tuple)) else limit]
    proc = subprocess.run(argv, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout, out_dir)


def run_adhoc(host, module, args=None, timeout=300):
    """ansible -i inventories/lab/hosts.yml HOST -m MODULE [-a JSON] -o; the CompletedProcess."""
    argv = [str(ANSIBLE_PLAYBOOK.parent / "ansible"), "-i", str(INVENTORY), host, "-m", module, "-o"]
    if args is not None:
        argv += ["-a", json.dumps(args)]
    return subprocess.run(argv, cwd=str(ROOT), env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, check=False)


# A Python script run on a node (python3 -c): every path under the given roots
# with its type, inode, mtime, mode and content digest (or link target); a root
# that does not exist maps to null. Lets a test see "nothing changed" exactly.
TREE_SCRIPT = r"""
import hashlib, json, os, stat, sys
out = {}
for root in sys.argv[1:]:
    if not os.path.lexists(root):
        out[root] = None
        continue
    entries = {}
    paths = [root]
    for top, dirs, files in os.walk(root):
        paths.extend(os.path.join(top, name) for name in dirs + files)
    for full in paths:
        st = os.lstat(full)
        if stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                what = hashlib.sha256(f.read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            what = os.readlink(full)
        else:
            what = None
        entries[os.path.relpath(full, root)] = [stat.S_IFMT(st.st_mode), st.st_ino, st.st_mtime_ns,
                                                stat.S_IMODE(st.st_mode), what]
    out[root] = entries
print(json.dumps(out, sort_keys=True))
"""


def node_tree(lab, node, roots):
    """{root: {relative path: [type, inode, mtime_ns, mode, sha256 or link]}} on a lab node."""
    return json.loads(lab.exec(node, ["python3", "-c", TREE_SCRIPT] + list(roots)).stdout)
