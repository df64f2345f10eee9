# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image_repair role through playbooks/repair_image.yml, on this machine.

localhost plays the node: a private mount namespace with a tmpfs on /run, the
state image (with a corrupted active.img) attached read-write and mounted
read-only at /run/initramfs/cos-state, boot markers under a markers root. The
reboot is switched off (image_repair_reboot: false) - rebooting belongs to the
lab run; the grub editor is a recording script (grub-editenv is not installed
here). Checks: classification (fallback / not_rebooted / healthy), the repair
through the module, the grub next_entry call, the state mount ro afterwards,
and the refusal to reboot a fallback node whose image is clean.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

import image_fsck_scenario as scenario

REPO = scenario.REPO

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in (
        "unshare", "losetup", "mount", "mkfs.ext4", "debugfs", "fsck.ext2")),
    reason="needs root, util-linux and e2fsprogs")


def _markers(root, name):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return str(root)


def test_role_classifies_repairs_and_sets_next_boot(tmp_path):
    backups = str(tmp_path / "backups")
    outcome_dir = tmp_path / "outcome"
    outcome_dir.mkdir()
    editenv_log = tmp_path / "editenv.log"
    editenv = tmp_path / "grub2-editenv"
    editenv.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\n' % editenv_log)
    editenv.chmod(0o755)
    grubenv = tmp_path / "grubenv"
    grubenv.write_text("# GRUB Environment Block\n")
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="SLE Micro"\nPRETTY_NAME="Harvester v1.4.0"\n')
    active_root = _markers(tmp_path / "active-run", "elemental/active_mode")

    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "- name: Run the collection's playbook\n"
        "  ansible.builtin.import_playbook: %s\n"
        "- name: Save the outcomes\n"
        "  hosts: \"{{ repair_image_hosts | default('all') }}\"\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Write image_repair_outcome\n"
        "      ansible.builtin.copy:\n"
        "        content: \"{{ image_repair_outcome | to_json }}\"\n"
        "        dest: \"%s/{{ outcome_name }}.json\"\n"
        "        mode: \"0600\"\n" % (os.path.join(REPO, "playbooks", "repair_image.yml"), outcome_dir))
    # Three nodes in one run (all local): waiting for its reboot, healthy, on the fallback.
    active = {"image_repair_boot_markers_root": active_root,
              "image_repair_version_file": str(os_release)}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        "waiting": dict(active, outcome_name="waiting",
                        image_repair_expected_version="Harvester v1.4.1"),
        "healthy": dict(active, outcome_name="healthy",
                        image_repair_expected_version="Harvester v1.4.0"),
        "fallback": {"outcome_name": "fallback"},
    }}}))
    extra_vars = {
        "ansible_become": False,
        "ansible_python_interpreter": "/usr/bin/python3",
        "repair_image_serial": 3,
        "image_repair_backup_dir": backups,
        "image_repair_reboot": False,
        "image_repair_grubenv": str(grubenv),
        "image_repair_grub_editenv_paths": [str(tmp_path / "missing-editenv"), str(editenv)],
    }
    runs = [
        {"name": "predict", "playbook": str(playbook), "inventory": str(inventory),
         "extra_vars": extra_vars, "check": True},
        {"name": "three", "playbook": str(playbook), "inventory": str(inventory),
         "extra_vars": extra_vars},
        # the fallback node again, alone: its image is clean now
        {"name": "clean_fallback", "playbook": str(playbook), "inventory": str(inventory),
         "extra_vars": dict(extra_vars, repair_image_hosts="fallback")},
        {"name": "recheck", "args": {"mode": "check"}},
    ]
    workdir = str(tmp_path)
    state, original = scenario.build_state_image(workdir, "dir_to_file")
    try:
        out = scenario.run_in_namespace({"workdir": workdir, "state_image": state,
                                         "markers": ["cos/passive_mode"], "runs": runs},
                                        timeout=300)
    finally:
        scenario.detach_all(state)
    assert scenario.loops_of(state) == []

    def outcome(name):
        with open(str(outcome_dir / ("%s.json" % name))) as handle:
            return json.load(handle)

    # check mode: the repair is predicted, nothing changes (not even the backup directory)
    predict = out["runs"]["predict"]
    assert predict["exit"] == 0, predict["output"]
    assert "fallback: /run/initramfs/cos-state/cOS/active.img would be repaired (check mode)" in \
        " ".join(predict["output"].split())
    # no backup directory was created; grub was not touched (the log below has one line)
    assert (predict["image_sha"], predict["state_access"], predict["backups"]) == (original, "ro", None)
    three, clean = out["runs"]["three"], out["runs"]["clean_fallback"]
    assert three["exit"] == 0, three["output"]
    assert "WARNING" not in three["output"]
    # not rebooted yet and healthy: classified, nothing touched
    for name, klass in (("waiting", "not_rebooted"), ("healthy", "healthy")):
        result = outcome(name)
        assert (result["class"], result["boot_mode"], result["version"]) == (
            klass, "active", "Harvester v1.4.0")
        assert (result["clean_before"], result["repaired"], result["next_entry_set"]) == (
            None, False, False)
    # fallback: repaired with a backup, next boot set, state mount ro again
    result = outcome("fallback")
    assert (result["class"], result["boot_mode"], result["clean_before"], result["repaired"]) == (
        "fallback", "passive", False, True)
    assert result["boot_markers"] == ["/run/cos/passive_mode"]
    assert result["backup_sha256"] == original
    assert list(three["backups"].values()) == [original]
    assert (result["next_entry_set"], result["rebooted"]) == (True, False)
    assert editenv_log.read_text() == "%s set next_entry=cos\n" % grubenv
    assert three["state_access"] == "ro"
    assert three["image_sha"] != original
    # the same node again: the image is clean now, so the fallback is not explained
    assert clean["exit"] == 2
    assert ("booted the passive image, but /run/initramfs/cos-state/cOS/active.img checks clean"
            in " ".join(clean["output"].split()))
    assert (clean["backups"], clean["image_sha"]) == (three["backups"], three["image_sha"])
    recheck = out["runs"]["recheck"]
    assert (recheck["result"]["clean_before"], recheck["state_access"]) == (True, "ro")
