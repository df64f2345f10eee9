# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/post_upgrade/tasks/reboot_proof.yml run for real against localhost.

This machine is never rebooted: the methods used are ``none`` and ``command``
with a command that does nothing (``true``), which must be reported as "did not
reboot".  The ``proven`` and ``old_version`` paths use the role's documented
``post_upgrade_reboot_before_snapshot`` (a snapshot "from the journal") taken
from this machine and moved back to a boot that is not the current one; the
after snapshot is real.  The builtin method and a real reboot are exercised in
the lab (a node container restart), not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    results: {}
  tasks:
    - name: Method none on a host that is not rebooted
      block:
        - ansible.builtin.include_role:
            name: clusterops.upgrade.post_upgrade
            tasks_from: reboot_proof
          vars:
            post_upgrade_reboot_method: none
      rescue:
        - ansible.builtin.set_fact:
            results: "{{ results | combine({'none': ansible_failed_result.msg}) }}"

    - name: Method command with a command that does nothing
      block:
        - ansible.builtin.include_role:
            name: clusterops.upgrade.post_upgrade
            tasks_from: reboot_proof
          vars:
            post_upgrade_reboot_method: command
            post_upgrade_reboot_command: ["true"]
            post_upgrade_reboot_command_delay: 0
            post_upgrade_reboot_timeout: 30
            post_upgrade_snapshot_dir: "%(journal)s"
      rescue:
        - ansible.builtin.set_fact:
            results: "{{ results | combine({'command': ansible_failed_result.msg}) }}"

    - name: Method command without a command
      block:
        - ansible.builtin.include_role:
            name: clusterops.upgrade.post_upgrade
            tasks_from: reboot_proof
          vars:
            post_upgrade_reboot_method: command
      rescue:
        - ansible.builtin.set_fact:
            results: "{{ results | combine({'no_command': ansible_failed_result.msg}) }}"

    - name: The snapshot the command run left in the journal, moved to an earlier boot
      ansible.builtin.set_fact:
        earlier: >-
          {{ journal | combine({
               'captured_at': journal.boot.booted_at - 60,
               'boot': journal.boot | combine({'boot_id': '00000000-0000-4000-8000-000000000000',
                                                'init_start_ticks': 1})}) }}
      vars:
        journal: "{{ lookup('ansible.builtin.file', '%(journal)s/reboot-before.json') | from_json }}"

    - name: A reboot done earlier is proven
      ansible.builtin.include_role:
        name: clusterops.upgrade.post_upgrade
        tasks_from: reboot_proof
      vars:
        post_upgrade_reboot_method: none
        post_upgrade_reboot_before_snapshot: "{{ earlier }}"
        post_upgrade_version_command: [echo, "ICS 6.8.1"]
        post_upgrade_version_regex: '(\\d+\\.\\d+\\.\\d+)'
        post_upgrade_expected_version: "6.8.1"

    - name: Keep the proof
      ansible.builtin.set_fact:
        results: "{{ results | combine({'proven': post_upgrade_reboot_proof}) }}"

    - name: Rebooted, but into the old version
      block:
        - ansible.builtin.include_role:
            name: clusterops.upgrade.post_upgrade
            tasks_from: reboot_proof
          vars:
            post_upgrade_reboot_method: none
            post_upgrade_reboot_before_snapshot: "{{ earlier }}"
            post_upgrade_version_command: [echo, "6.8.0"]
            post_upgrade_expected_version: "6.8.1"
      rescue:
        - ansible.builtin.set_fact:
            results: "{{ results | combine({'old_version': ansible_failed_result.msg}) }}"

    - name: Write what happened
      ansible.builtin.copy:
        content: "{{ results | to_json }}"
        dest: "%(out)s"
        mode: "0600"
"""


def playbook(tmp_path, text, *extra):
    path = tmp_path / "proof.yml"
    path.write_text(text)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", os.path.join(REPO, "inventories", "localhost", "hosts.yml"), str(path)]
                          + list(extra), cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_reboot_proof_verdicts_on_this_host(tmp_path):
    out = tmp_path / "results.json"
    journal = tmp_path / "journal"
    proc = playbook(tmp_path, PLAYBOOK % {"out": out, "journal": journal})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    with open("/proc/sys/kernel/random/boot_id") as handle:
        boot_id = handle.read().strip()

    assert results["none"].startswith(
        "localhost: reboot not proven, did not reboot (not_rebooted): same boot as before the request "
        "(boot id %s, PID 1 started at " % boot_id)
    assert results["command"].startswith("localhost: reboot not proven, did not reboot (not_rebooted): ")
    assert sorted(os.listdir(str(journal))) == ["reboot-after.json", "reboot-before.json"]
    for name in ("reboot-after.json", "reboot-before.json"):
        assert oct(os.stat(str(journal / name)).st_mode & 0o777) == "0o600"
        assert json.loads((journal / name).read_text())["boot"]["boot_id"] == boot_id
    assert results["no_command"] == (
        "post_upgrade_reboot_method is 'command' but post_upgrade_reboot_command is empty: give the "
        "reboot command as an argv list, e.g. [systemctl, reboot]")

    proven = results["proven"]
    assert proven["verdict"] == "proven"
    assert (proven["boot_id_before"], proven["boot_id_after"]) == ("00000000-0000-4000-8000-000000000000", boot_id)
    assert (proven["product_version"], proven["expected_version"]) == ("6.8.1", "6.8.1")

    assert results["old_version"] == (
        "localhost: reboot not proven, rebooted into the old version (old_version): rebooted, but the "
        "product version is 6.8.0, not 6.8.1")


def test_reboot_proof_check_mode_reboots_nothing(tmp_path):
    text = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: clusterops.upgrade.post_upgrade
        tasks_from: reboot_proof
      vars:
        post_upgrade_reboot_method: command
        post_upgrade_reboot_command: [touch, "%s"]
        post_upgrade_reboot_command_delay: 0
"""
    marker = tmp_path / "rebooted"
    proc = playbook(tmp_path, text % marker, "--check")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert not marker.exists()
    assert "localhost: check mode, reboot method command not run; no proof" in proc.stdout
