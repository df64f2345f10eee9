# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/repair_image.yml (role image_repair, module image_fsck) against a
lab node (issue 7's lab proof), the way the Harvester runbook's case happens:

1. ``labctl corrupt-active-img NODE KIND`` damages the node's
   ``cOS/active.img`` (KIND ``clri``: a directory inode cleared; ``garbage``:
   random bytes over the inode table);
2. ``labctl reboot NODE``: the node's boot finds the image damaged and boots
   the fallback (``/run/cos/passive_mode``), as a Harvester node does;
3. (``clri`` only) ``--check``: the playbook predicts the repair and changes
   nothing (image digest, backup directory, mount, boot);
4. the playbook, run for real: classifies the node as booted from the
   fallback, backs the image up, repairs it, reboots the node with
   ``ansible.builtin.reboot`` and verifies it came up on the active image.

Checked on the node itself, independently of the role's results:
``fsck.ext2 -fn`` rc 0, the state partition mounted read-only, the
``active_mode`` marker, a new boot id, and the backup file's SHA256 equal to
the corrupted image's (taken before the repair). One more case (KIND
``bitmap``) runs with ``image_repair_backup_method: undo``: the backup is
e2fsck's undo file, and ``e2undo -n`` on the node, after the reboot, still
verifies it against the repaired image (that it restores the corrupted image
byte for byte is shown by tests/integration/test_image_fsck.py). ``finally`` puts the pristine
image back (``labctl reset-active-img``), reboots the node into the active
image if it is not running it, and removes the backup directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import testing  # noqa: E402
from labkit.testing import labctl  # noqa: E402

from lab_playbook import node_tree, run_playbook  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # module fixture: skips when the lab is down, fails when unhealthy

STATE = "/run/initramfs/cos-state"
ACTIVE = STATE + "/cOS/active.img"
BACKUP_DIR = "/usr/local/clusterops-image-backup"   # the role's default
MARKERS = "/run/cos"


def quiet_controller(lab):
    """The controller that holds no resource: rebooting it moves nothing."""
    holders = set(node for _role, node in testing.mon_roles(lab.crm_mon()).values())
    spare = [n for n in ("ctl-a", "ctl-b") if n not in holders]
    return spare[0] if spare else "ctl-b"


def on(lab, node, *argv, check=True):
    return lab.exec(node, list(argv), check=check)


def fsck_rc(lab, node):
    return on(lab, node, "fsck.ext2", "-fn", ACTIVE, check=False).returncode


def image_sha256(lab, node, path=ACTIVE):
    return on(lab, node, "sha256sum", path).stdout.split()[0]


def state_options(lab, node):
    return on(lab, node, "findmnt", "-no", "OPTIONS", STATE).stdout.strip().split(",")


def boot_marks(lab, node):
    return sorted(on(lab, node, "ls", MARKERS).stdout.split())


def boot_id(lab, node):
    return on(lab, node, "cat", "/proc/sys/kernel/random/boot_id").stdout.strip()


@pytest.mark.parametrize("kind, method", [("clri", "copy"), ("garbage", "copy"), ("bitmap", "undo")])
def test_repair_playbook_repairs_a_node_booted_from_the_fallback(lab, tmp_path, kind, method):
    node = quiet_controller(lab)
    assert (fsck_rc(lab, node), boot_marks(lab, node), "ro" in state_options(lab, node)) == (
        0, ["active_mode"], True), "the lab is not clean on %s" % node
    assert node_tree(lab, node, [BACKUP_DIR])[BACKUP_DIR] is None
    try:
        out = labctl("corrupt-active-img", node, kind).stdout.strip()
        rc = fsck_rc(lab, node)
        assert out == "%s: active.img corrupted (%s); fsck.ext2 -fn rc=%d" % (node, kind, rc)
        assert rc & 4 == 4  # errors left uncorrected (garbage may add 8: operational error)
        corrupted = image_sha256(lab, node)

        labctl("reboot", node)
        assert boot_marks(lab, node) == ["passive_mode"]   # booted the fallback
        fallback_boot = boot_id(lab, node)

        if kind == "clri":
            check = run_playbook("lab_repair_image.yml", tmp_path, "check",
                                 {"repair_image_hosts": node}, check=True, limit=[node])
            assert check.rc == 0, check.tail()
            outcome = check.results[node]
            assert (outcome["class"], outcome["boot_mode"], outcome["clean_before"], outcome["repaired"],
                    outcome["backup_path"]) == ("fallback", "passive", False, False, None)
            assert "would be repaired (check mode)" in check.output
            assert (image_sha256(lab, node), fsck_rc(lab, node), "ro" in state_options(lab, node),
                    boot_id(lab, node)) == (corrupted, rc, True, fallback_boot)
            assert node_tree(lab, node, [BACKUP_DIR])[BACKUP_DIR] is None

        run = run_playbook("lab_repair_image.yml", tmp_path, "repair",
                           {"repair_image_hosts": node, "image_repair_backup_method": method}, limit=[node])
        assert run.rc == 0, run.tail()
        outcome = run.results[node]
        backup = outcome["backup_path"]
        assert backup.startswith(BACKUP_DIR + "/active.img.")
        assert backup.endswith(".bak" if method == "copy" else ".e2undo")
        assert outcome == {
            "class": "fallback", "boot_mode": "passive", "boot_markers": [MARKERS + "/passive_mode"],
            "version": None, "clean_before": False, "repaired": True, "backup_method": method,
            "backup_path": backup, "backup_sha256": corrupted if method == "copy" else None,
            "next_entry_set": False, "rebooted": True, "boot_mode_after": "active",
        }
        # on the node, read independently of the role
        assert fsck_rc(lab, node) == 0
        assert "ro" in state_options(lab, node)
        assert boot_marks(lab, node) == ["active_mode"]
        assert boot_id(lab, node) != fallback_boot
        if method == "copy":
            assert image_sha256(lab, node, backup) == corrupted
        else:  # the undo file still belongs to the repaired image (read-only dry run)
            undo = on(lab, node, "e2undo", "-n", "-v", backup, ACTIVE, check=False)
            assert undo.returncode == 0, undo.stdout + undo.stderr
            assert undo.stdout.count("Replayed block of size ") > 0
        tree = node_tree(lab, node, [BACKUP_DIR])[BACKUP_DIR]
        assert sorted(tree) == [".", backup.rsplit("/", 1)[1]]
        assert (tree["."][3], tree[backup.rsplit("/", 1)[1]][3]) == (0o700, 0o600)
        assert "%s: no grub environment block at /oem/grubenv" % node in " ".join(run.output.split())
    finally:
        labctl("reset-active-img", node)
        if boot_marks(lab, node) != ["active_mode"]:
            labctl("boot-mode", node, "auto")
            labctl("reboot", node)
        on(lab, node, "rm", "-rf", BACKUP_DIR)
        assert (fsck_rc(lab, node), boot_marks(lab, node), "ro" in state_options(lab, node)) == (
            0, ["active_mode"], True)
        testing.all_vms_started(lab)
        assert lab.wait_healthy(120) == []
