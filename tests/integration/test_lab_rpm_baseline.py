# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rpm_baseline and roles/preflight/tasks/fix_backup_from_peer.yml against the
lab (issue 5's lab proof), through ansible-playbook and the lab inventory.

Each node is compared with the ``baseline.txt`` carried by the vendor bundle of
its role (M001 for the controllers, S001 for the compute nodes), read on the
controller with the collection's ``bundle_member`` lookup, and with its real
``/var/backup-rpm``.

* A clean lab: every node is consistent, every backup rpm is there, the
  restore plan is empty.
* ``labctl tamper-rpm`` add / remove / change (a product package and the
  epoch-carrying tools package) / delete-backup, each on its own node, are each
  reported exactly (the package on both sides, the rpm argv that puts it
  right); the untouched node stays consistent. Then the same playbook runs each
  node's ``restore_plan`` (``ansible.builtin.command`` with ``argv``) and
  copies the deleted backup rpm from a peer node with the task file: every node
  compares consistent again, with a complete ``/var/backup-rpm``, and the rpm
  databases read independently (``rpm -qa`` on the node) equal the baseline.

``finally`` runs ``labctl tamper-rpm NODE restore`` on every tampered node.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, testing  # noqa: E402
from labkit.testing import installed_nevras, labctl  # noqa: E402

from lab_playbook import run_playbook  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # module fixture: skips when the lab is down, fails when unhealthy

CONTROLLERS = ["ctl-a", "ctl-b"]
COMPUTES = ["cmp-1", "cmp-2", "cmp-3", "cmp-4"]
HOSTS = CONTROLLERS + COMPUTES
BUNDLE_DIR = config.CACHE / "bundles"
RPM = "/usr/bin/rpm"
DB = ["--dbpath", "/var/lib/rpm"]
BACKUP = "/var/backup-rpm"


def baseline_of(host):
    """The NEVRA lines of the baseline.txt in the bundle of the host's role."""
    name = config.BUNDLES["management" if host in CONTROLLERS else "compute"]
    with zipfile.ZipFile(str(BUNDLE_DIR / name)) as archive:
        return archive.read("baseline.txt").decode().split()


def pkg(name, version, release, epoch=0):
    nevra = "%s-%s%s-%s.noarch" % (name, "%d:" % epoch if epoch else "", version, release)
    return {"name": name, "epoch": epoch, "version": version, "release": release, "arch": "noarch",
            "nevra": nevra}


TOOLS = pkg("labsphere-tools", "1.4", "2.ls8", epoch=1)
TOOLS_CHANGED = pkg("labsphere-tools", "1.4", "3.ls8", epoch=1)
EXTRA = pkg("labsphere-extra", "1.0", "1.ls8")
MANAGER = pkg("labsphere-manager", "6.8.0", "1.ls8")
MANAGER_NEW = pkg("labsphere-manager", "6.8.1", "1.ls8")


def counts(missing=0, extra=0, changed=0, missing_backups=0, installed=3):
    return {"baseline": 3, "installed": installed, "ignored_baseline": 0, "ignored_installed": 0,
            "missing": missing, "extra": extra, "changed_packages": changed, "missing_backups": missing_backups,
            "corrupt_backups": 0}


def findings(result):
    keys = ("consistent", "baseline_format", "missing", "extra", "changed_packages", "missing_backups",
            "corrupt_backups", "restore_plan", "restore_plan_complete", "restore_plan_unresolved", "counts")
    return dict((key, result[key]) for key in keys)


def clean_findings():
    return {"consistent": True, "baseline_format": "nevra", "missing": [], "extra": [], "changed_packages": [],
            "missing_backups": [], "corrupt_backups": [], "restore_plan": [], "restore_plan_complete": True,
            "restore_plan_unresolved": [], "counts": counts()}


def drift(**kwargs):
    out = clean_findings()
    out.update(kwargs)
    return out


def test_clean_lab_nodes_are_consistent_with_their_bundle_baseline(lab, tmp_path):
    for host in HOSTS:
        assert installed_nevras(lab, host) == baseline_of(host)
    run = run_playbook("lab_rpm_baseline.yml", tmp_path, "clean")
    assert run.rc == 0, run.tail()
    assert sorted(run.results) == sorted(HOSTS)
    for host in HOSTS:
        assert findings(run.results[host]["before"]) == clean_findings(), host
        assert run.results[host]["restored"] == []


# node -> (labctl tamper-rpm arguments, what compared must report)
TAMPER = {
    "ctl-b": (["change", "labsphere-manager"], drift(
        consistent=False,
        changed_packages=[{"name": "labsphere-manager", "arch": "noarch", "change": "upgraded",
                           "baseline": MANAGER, "installed": MANAGER_NEW}],
        restore_plan=[[RPM] + DB + ["-Uvh", "--oldpackage", BACKUP + "/labsphere-manager-6.8.0-1.ls8.noarch.rpm"]],
        counts=counts(changed=1))),
    "cmp-1": (["delete-backup"], drift(
        missing_backups=[dict(TOOLS, file="labsphere-tools-1.4-2.ls8.noarch.rpm")],
        counts=counts(missing_backups=1))),
    "cmp-2": (["add"], drift(
        consistent=False,
        extra=[EXTRA],
        restore_plan=[[RPM] + DB + ["-e", "labsphere-extra-1.0-1.ls8.noarch"]],
        counts=counts(extra=1, installed=4))),
    "cmp-3": (["remove"], drift(
        consistent=False,
        missing=[TOOLS],
        restore_plan=[[RPM] + DB + ["-ivh", "--oldpackage", BACKUP + "/labsphere-tools-1.4-2.ls8.noarch.rpm"]],
        counts=counts(missing=1, installed=2))),
    "cmp-4": (["change"], drift(
        consistent=False,
        changed_packages=[{"name": "labsphere-tools", "arch": "noarch", "change": "upgraded",
                           "baseline": TOOLS, "installed": TOOLS_CHANGED}],
        restore_plan=[[RPM] + DB + ["-Uvh", "--oldpackage", BACKUP + "/labsphere-tools-1.4-2.ls8.noarch.rpm"]],
        counts=counts(changed=1))),
}


def test_each_tampering_is_reported_exactly_and_the_plan_and_the_peer_copy_repair_it(lab, tmp_path):
    tampered = []
    try:
        for host, (args, _expected) in sorted(TAMPER.items()):
            tampered.append(host)
            labctl("tamper-rpm", host, *args)
        assert lab.exec("cmp-1", ["ls", BACKUP]).stdout.split() == [
            "labsphere-common-6.8.0-1.ls8.noarch.rpm", "labsphere-node-6.8.0-1.ls8.noarch.rpm"]

        # 1. report only
        run = run_playbook("lab_rpm_baseline.yml", tmp_path, "tampered")
        assert run.rc == 0, run.tail()
        for host, (_args, expected) in TAMPER.items():
            assert findings(run.results[host]["before"]) == expected, host
        assert findings(run.results["ctl-a"]["before"]) == clean_findings()
        # nothing was changed by comparing
        assert installed_nevras(lab, "cmp-2") == sorted(baseline_of("cmp-2") + [EXTRA["nevra"]])

        # 2. run each restore plan, copy the missing backup rpm from a peer, compare again
        run = run_playbook("lab_rpm_baseline.yml", tmp_path, "repaired",
                           {"lab_restore": True, "lab_fix_backups": True})
        assert run.rc == 0, run.tail()
        for host in HOSTS:
            result = run.results[host]
            expected = TAMPER[host][1] if host in TAMPER else clean_findings()
            assert findings(result["before"]) == expected, host
            assert result["restored"] == expected["restore_plan"], host
            assert findings(result["after"]) == clean_findings(), host
            # read independently of the module: the rpm database is the baseline again
            assert installed_nevras(lab, host) == baseline_of(host), host
        assert run.results["cmp-1"]["peer"] == "cmp-2"
        # the task file put the copy in place, on cmp-1 only
        placed = run.output.split("TASK [clusterops.upgrade.preflight : Put the verified rpm in place]", 1)[1]
        assert re.findall(r"^(\w+): \[(\S+)\]", placed.split("TASK [", 1)[0], re.M) == [("changed", "cmp-1")]
        assert lab.exec("cmp-1", ["ls", BACKUP]).stdout.split() == [
            "labsphere-common-6.8.0-1.ls8.noarch.rpm", "labsphere-node-6.8.0-1.ls8.noarch.rpm",
            "labsphere-tools-1.4-2.ls8.noarch.rpm"]
        # the copy is the peer's file, byte for byte, and reads as the wanted package
        digest = ["sha256sum", BACKUP + "/labsphere-tools-1.4-2.ls8.noarch.rpm"]
        assert (lab.exec("cmp-1", digest).stdout.split()[0]
                == lab.exec("cmp-2", digest).stdout.split()[0])
        assert lab.exec("cmp-1", ["rpm", "-qp", "--qf", "%{NEVRA}", digest[1]]).stdout == TOOLS["nevra"]
    finally:
        problems = []
        for host in tampered:
            try:
                labctl("tamper-rpm", host, "restore")
            except AssertionError as exc:  # restore every node, then report
                problems.append(str(exc))
        assert problems == []
        for host in HOSTS:
            assert installed_nevras(lab, host) == baseline_of(host), host
