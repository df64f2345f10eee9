"""Real SSH into the lab with the generated inventory; host-key checking on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, inventory, proc, testing  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # the module-scoped fixture every test here uses


def _ssh(*args: str, known_hosts: Path | None = None, host: str = "") -> subprocess.CompletedProcess:
    argv = ["ssh", "-F", str(inventory.SSH_CONFIG)]
    if known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    return subprocess.run(argv + [host, *args], capture_output=True, text=True, timeout=60,
                          env=proc.env(), check=False)


def test_inventory_groups_and_connection_settings(lab):
    inv = yaml.safe_load(inventory.HOSTS.read_text())["all"]["children"]
    ctl = [n.name for n in lab.topo.controllers]
    cmp_ = [n.name for n in lab.topo.computes]
    assert list(inv["control_plane"]["hosts"]) == ctl
    assert list(inv["ha_pair"]["hosts"]) == ctl
    assert list(inv["compute"]["hosts"]) == cmp_
    assert {h: v["ansible_host"] for h, v in inv["compute"]["hosts"].items()} == {
        n.name: n.ip for n in lab.topo.computes}
    gv = yaml.safe_load(inventory.GROUP_VARS.read_text())
    assert gv["ansible_python_interpreter"] == "/usr/bin/python3"
    assert gv["ansible_pipelining"] is True
    assert "StrictHostKeyChecking=yes" in gv["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={inventory.KNOWN_HOSTS}" in gv["ansible_ssh_common_args"]
    assert sorted(p.name for p in Path(gv["upgrade_bundle_dir"]).glob("*.zip")) == sorted(
        config.BUNDLES.values())
    key = Path(gv["ansible_ssh_private_key_file"])
    assert key.stat().st_mode & 0o077 == 0
    assert config.CACHE in key.parents


def test_ssh_reaches_every_node_with_its_recorded_host_key(lab):
    for n in lab.topo.nodes:
        cp = _ssh("hostname", host=n.name)
        assert (cp.returncode, cp.stdout.strip()) == (0, n.name), cp.stderr


def test_an_unknown_host_key_is_refused(lab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cp = _ssh("true", known_hosts=empty, host=lab.topo.computes[0].name)
    assert cp.returncode == 255
    assert "Host key verification failed" in cp.stderr


def test_another_nodes_host_key_is_refused(lab, tmp_path):
    a, b = lab.topo.nodes[0], lab.topo.nodes[1]
    lines = {line.split()[0]: line.split()[1:] for line in inventory.KNOWN_HOSTS.read_text().splitlines()}
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{a.name},{a.ip} {' '.join(lines[f'{b.name},{b.ip}'])}\n")
    cp = _ssh("true", known_hosts=wrong, host=a.name)
    assert cp.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in cp.stderr


def test_ansible_reaches_every_node_through_the_inventory(lab):
    env = dict(proc.env(), LANG="C.UTF-8", LC_ALL="C.UTF-8",
               ANSIBLE_CONFIG=str(config.ROOT / "ansible.cfg"),
               ANSIBLE_PIPELINING="1", ANSIBLE_NOCOLOR="1")
    ansible = Path(sys.executable).parent / "ansible"
    cp = subprocess.run([str(ansible), "all", "-i", str(config.INVENTORY_DIR), "-m", "ping",
                         "--one-line"], capture_output=True, text=True, timeout=240, env=env,
                        cwd=str(config.ROOT), check=False)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    results = {}
    for line in cp.stdout.splitlines():
        host, _sep, rest = line.partition(" | ")
        results[host] = rest.split(" ", 1)[0]
    assert results == {n.name: "SUCCESS" for n in lab.topo.nodes}
