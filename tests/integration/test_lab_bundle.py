# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bundle role against the lab (issue 4's lab proof): ansible-playbook with
the lab inventory, the lab's real vendor-style bundles from
``upgrade_bundle_dir`` and their SHA256SUMS, on all six nodes over SSH.

* The four-step pattern: check -> apply -> idempotent check -> idempotent
  apply. Check mode predicts exactly what the apply does (changed counts and
  each host's ``bundle_staged`` fact) and writes nothing on any node; the apply
  gives every controller the M001 zip and every compute node the S001 zip,
  verified on arrival and extracted; the second round copies and extracts
  nothing (every file keeps its inode, mtime and content on every node).
* Bad inputs against the lab nodes: a copy of the bundle directory with one
  byte flipped in the M001 zip, and a bundle for the wrong role, each fail the
  play with a clear message and change nothing on any node.

What the nodes hold is read independently (python3 on the node through podman
exec), never from the role's own results. ``finally`` removes what the role
staged, so the lab is left as found (nothing under
/var/lib/clusterops-upgrade/{bundles,staging}).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, testing  # noqa: E402

from lab_playbook import node_tree, run_playbook  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # module fixture: skips when the lab is down, fails when unhealthy

CONTROLLERS = ["ctl-a", "ctl-b"]
COMPUTES = ["cmp-1", "cmp-2", "cmp-3", "cmp-4"]
HOSTS = CONTROLLERS + COMPUTES
M001 = config.BUNDLES["management"]
S001 = config.BUNDLES["compute"]
BUNDLE_DIR = config.CACHE / "bundles"     # what the inventory calls upgrade_bundle_dir
TOP = "/var/lib/clusterops-upgrade"
DEST = TOP + "/bundles"                   # the role's defaults
STAGING = TOP + "/staging"
VERSION = config.TO_VERSION
ROLE_VARS = {
    "bundle_version": VERSION,
    # the inventory's upgrade_bundle_dir, resolved by Ansible on the controller
    "bundle_files": ["{{ upgrade_bundle_dir }}/%s" % M001, "{{ upgrade_bundle_dir }}/%s" % S001],
    "bundle_manifest": "{{ upgrade_bundle_dir }}/SHA256SUMS",
}


def bundle_for(host):
    return M001 if host in CONTROLLERS else S001


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def members(name):
    with zipfile.ZipFile(str(BUNDLE_DIR / name)) as archive:
        return dict((i.filename, archive.read(i)) for i in archive.infolist() if not i.is_dir())


def expected_staged(host, copied, extracted):
    name = bundle_for(host)
    return {"bundle_staged": {name: {
        "copy": "%s/%s" % (DEST, name),
        "staged_dir": "%s/%s/%s" % (STAGING, VERSION, name[:-len(".zip")]),
        "checksum": sha256(BUNDLE_DIR / name),
        "copied": copied, "extracted": extracted,
    }}}


def trees(lab):
    return dict((host, node_tree(lab, host, [DEST, STAGING])) for host in HOSTS)


@pytest.fixture
def clean_nodes(lab):
    """No node holds bundles before the test; whatever the role made is removed after."""
    had_top = dict((host, node_tree(lab, host, [TOP])[TOP] is not None) for host in HOSTS)
    assert trees(lab) == dict.fromkeys(HOSTS, {DEST: None, STAGING: None}), (
        "the lab is not clean: a node already holds %s or %s" % (DEST, STAGING))
    try:
        yield
    finally:
        for host in HOSTS:
            lab.exec(host, ["rm", "-rf", DEST, STAGING])
            if not had_top[host]:
                lab.exec(host, ["rm", "-d", "-f", TOP], check=False)  # only if empty
        after = dict((host, node_tree(lab, host, [DEST, STAGING, TOP])) for host in HOSTS)
        assert dict((host, (t[DEST], t[STAGING], t[TOP] is not None)) for host, t in after.items()) == dict(
            (host, (None, None, had_top[host])) for host in HOSTS)


def test_four_steps_stage_each_node_its_bundle_and_a_second_run_copies_nothing(lab, clean_nodes, tmp_path):
    # 1. check mode: the prediction, and nothing written on any node
    check = run_playbook("lab_bundle.yml", tmp_path, "check", ROLE_VARS, check=True)
    assert check.rc == 0, check.tail()
    assert trees(lab) == dict.fromkeys(HOSTS, {DEST: None, STAGING: None})
    # per host: the bundle directory, one copy, one extraction
    assert check.changed() == dict.fromkeys(HOSTS, 3)
    assert check.results == dict((h, expected_staged(h, True, True)) for h in HOSTS)

    # 2. apply: does what check mode predicted
    apply = run_playbook("lab_bundle.yml", tmp_path, "apply", ROLE_VARS)
    assert apply.rc == 0, apply.tail()
    assert apply.changed() == check.changed()
    assert apply.results == check.results
    staged = trees(lab)
    for host in HOSTS:
        name = bundle_for(host)
        stage = name[:-len(".zip")]
        copies, extracted = staged[host][DEST], staged[host][STAGING]
        # exactly this node's bundle, byte for byte the vendor's, 0640 in a 0750 directory
        assert sorted(copies) == [".", name]
        assert copies["."][3] == 0o750
        assert copies[name][3] == 0o640
        assert copies[name][4] == sha256(BUNDLE_DIR / name)
        # extracted member by member into <staging>/<version>/<bundle>/
        expected_files = dict(("%s/%s/%s" % (VERSION, stage, member), hashlib.sha256(data).hexdigest())
                              for member, data in members(name).items())
        files = dict((path, entry[4]) for path, entry in extracted.items()
                     if entry[4] is not None and not path.endswith("/.clusterops-bundle.json"))
        assert files == expected_files
        assert "%s/%s/.clusterops-bundle.json" % (VERSION, stage) in extracted
    # the role staged the bundle of each node's role: the 6.8.1 rpms of that role
    ctl_rpms = sorted(p for p in staged["ctl-b"][STAGING] if p.endswith(".rpm"))
    cmp_rpms = sorted(p for p in staged["cmp-3"][STAGING] if p.endswith(".rpm"))
    assert [p.rsplit("/", 1)[1] for p in ctl_rpms] == ["labsphere-common-6.8.1-1.ls8.noarch.rpm",
                                                       "labsphere-manager-6.8.1-1.ls8.noarch.rpm"]
    assert [p.rsplit("/", 1)[1] for p in cmp_rpms] == ["labsphere-common-6.8.1-1.ls8.noarch.rpm",
                                                       "labsphere-node-6.8.1-1.ls8.noarch.rpm"]

    # 3. idempotent check and 4. idempotent apply: nothing to copy, nothing to extract
    for step, check_mode in (("check-again", True), ("apply-again", False)):
        again = run_playbook("lab_bundle.yml", tmp_path, step, ROLE_VARS, check=check_mode)
        assert again.rc == 0, again.tail()
        assert again.changed() == dict.fromkeys(HOSTS, 0), again.tail()
        assert again.results == dict((h, expected_staged(h, False, False)) for h in HOSTS)
        # the copy loop had nothing to do on any host
        copy_task = again.output.split("TASK [clusterops.upgrade.bundle : Copy the bundles the host does not "
                                       "hold a verified copy of]", 1)[1].split("TASK [", 1)[0]
        assert sorted(re.findall(r"^skipping: \[(\S+)\]$", copy_task, re.M)) == sorted(HOSTS), copy_task
        assert trees(lab) == staged


# ------------------------------------------------------------------ bad inputs

def flipped_byte(tmp_path):
    """A copy of upgrade_bundle_dir with one byte flipped in the middle of an rpm in the M001 zip."""
    copy = tmp_path / "bundles"
    shutil.copytree(str(BUNDLE_DIR), str(copy))
    path = copy / M001
    with zipfile.ZipFile(str(path)) as archive:
        info = next(i for i in archive.infolist() if i.filename.startswith("rpms/"))
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    variables = dict(ROLE_VARS, bundle_files=[str(copy / M001), str(copy / S001)],
                     bundle_manifest=str(copy / "SHA256SUMS"))
    message = "%s: mismatch (sha256 is %s, expected %s)" % (path, sha256(path), sha256(BUNDLE_DIR / M001))
    return variables, message


def wrong_role(tmp_path):
    """Every host told to take the compute bundle: the controllers must refuse it."""
    variables = dict(ROLE_VARS, bundle_host_bundles=[S001])
    message = ("host 'ctl-a' is in groups [control_plane, ha_pair], but bundle '%s' is for compute: "
               "refusing to stage a bundle meant for another role" % S001)
    return variables, message


@pytest.mark.parametrize("bad", [flipped_byte, wrong_role], ids=["flipped-byte", "wrong-role"])
def test_bad_input_fails_clearly_and_changes_no_node(lab, clean_nodes, tmp_path, bad):
    variables, message = bad(tmp_path)
    run = run_playbook("lab_bundle.yml", tmp_path, "bad", variables)
    assert run.rc == 2, run.tail()
    assert message in " ".join(run.output.split()), run.tail()
    assert run.changed() == dict.fromkeys(HOSTS, 0), run.tail()
    assert run.results == {}
    assert trees(lab) == dict.fromkeys(HOSTS, {DEST: None, STAGING: None})
