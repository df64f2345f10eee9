"""playbooks/preflight.yml against the lab, with the upgrade playbook's variables
(upgrade_run_id, upgrade_report_dir, upgrade_from_version, upgrade_bundle_dir): a clean
cluster passes, also in check mode, which writes nothing on the nodes; then every fault
the issue names is planted at once - an extra rpm, a deleted backup rpm, a log partition
at 99 %, a leftover ban, a node in standby, ctl-b powered off, a copy of the bundle
directory with one flipped byte - and each is reported in the same run; the JUnit file
parses and its counts match the JSON report; waiving the blockers (and fixing the
missing backup rpm from a peer) lets the play pass and the report shows the waivers.
Every fault is undone in ``finally``."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import config, testing  # noqa: E402
from labkit.testing import labctl, mon_roles  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # module fixture: skips when the lab is down, fails when unhealthy

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "preflight.yml"
INVENTORY = REPO / "inventories" / "lab"
HOSTS = ["ctl-a", "ctl-b", "cmp-1", "cmp-2", "cmp-3", "cmp-4"]
M001 = config.BUNDLES["management"]
S001 = config.BUNDLES["compute"]
SOURCE_S = f"baseline.txt in {S001}"
# per host: reachable, 6 host checks, version_uniform, node_state;
# once: cluster_facts, 5 ha_* checks, upgrade_plan, bundle_verified
TOTAL = len(HOSTS) * 9 + 8
LAB_VARS = {
    "upgrade_from_version": config.FROM_VERSION,
    "preflight_version_file": "/etc/labsphere/version",
    # the node's own log partition stands in for a storage pool: a real mount
    "preflight_datastores": ["/var/log"],
    "preflight_aio_hosts": ["cmp-1"],
}


def run_preflight(tmp_path: Path, name: str, *options: str, **extra):
    """ansible-playbook playbooks/preflight.yml -i inventories/lab; returns
    (process, JSON report, JUnit root, Markdown, the run's report directory)."""
    variables = dict(LAB_VARS, upgrade_run_id=name, upgrade_report_dir=str(tmp_path / "reports"), **extra)
    vars_file = tmp_path / f"{name}.vars.json"
    vars_file.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PIPELINING="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                           str(PLAYBOOK), "-e", f"@{vars_file}", *options],
                          cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, check=False)
    report_dir = tmp_path / "reports" / name
    assert report_dir.is_dir(), proc.stdout[-4000:]
    report = json.loads((report_dir / "preflight.json").read_text())
    junit = ET.parse(str(report_dir / "preflight.xml")).getroot()
    md = (report_dir / "preflight.md").read_text()
    return proc, report, junit, md, report_dir


def results(report, check_id, status=None):
    return {r["host"]: r for r in report["results"]
            if r["id"] == check_id and (status is None or r["status"] == status)}


def failed(report):
    return sorted((r["id"], r["host"]) for r in report["results"] if r["status"] == "fail")


def assert_junit_matches(junit, report):
    summary = report["summary"]
    suite = junit.find("testsuite")
    assert junit.tag == "testsuites"
    assert int(suite.get("tests")) == summary["total"] == len(suite.findall("testcase"))
    assert int(suite.get("failures")) == summary["blockers_failed"] == len(suite.findall("testcase/failure"))
    assert int(suite.get("skipped")) == summary["waived"] + summary["skipped"] == len(
        suite.findall("testcase/skipped"))
    cases = {(c.get("classname"), c.get("name")) for c in suite.findall("testcase")}
    assert cases == {(r["id"], r["host"]) for r in report["results"]}


def flipped_bundle_dir(tmp_path: Path) -> Path:
    """A copy of the lab's bundle directory (both zips and SHA256SUMS) with one byte
    flipped inside an rpm member of the management bundle (baseline.txt stays
    readable: the baseline is still compared)."""
    dest = tmp_path / "corrupt-bundles"
    shutil.copytree(lab_state_bundle_dir(), dest)
    bad = dest / M001
    with zipfile.ZipFile(bad) as archive:
        info = next(i for i in archive.infolist() if i.filename.startswith("rpms/"))
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    data = bytearray(bad.read_bytes())
    data[offset] ^= 0xFF
    bad.write_bytes(bytes(data))
    return dest


def lab_state_bundle_dir() -> str:
    """upgrade_bundle_dir of the lab inventory (the role's default bundle directory)."""
    return str(config.CACHE / "bundles")


def node_tree(lab, node: str) -> str:
    """What preflight could have written on a node: the rpm database files, the
    rollback cache and the clusterops state directory, with sizes and mtimes."""
    return lab.exec(node, ["find", "/var/backup-rpm", "/var/lib/rpm", "/var/lib/clusterops-upgrade",
                           "-not", "-name", "*-shm", "-printf", "%p %s %T@\n"], check=False).stdout


def wait_vip_on(lab, node: str, timeout: float = 60) -> None:
    """Wait until lb_float_ip is Started on node, as crm_mon on node sees it."""
    deadline = time.monotonic() + timeout
    while True:
        roles = mon_roles(lab.crm_mon(node))
        if roles.get("lb_float_ip") == ("Started", node):
            return
        assert time.monotonic() < deadline, f"lb_float_ip did not start on {node}: {roles.get('lb_float_ip')}"
        time.sleep(1)


def test_clean_lab_passes_also_in_check_mode(lab, tmp_path):
    # Check mode, with manual evacuation: the VMs running on the compute nodes are
    # named per node (running_vms), waived here so that the play passes.
    before = dict((h, node_tree(lab, h)) for h in HOSTS)
    vms = {}
    for vm, (role, node) in mon_roles(lab.crm_mon()).items():
        if vm.startswith("vm-") and role == "Started":
            vms.setdefault(node, []).append(vm)
    proc, report, junit, md, report_dir = run_preflight(tmp_path, "clean-check", "--check",
                                                        upgrade_evacuation="manual", preflight_waive=["running_vms"])
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert failed(report) == []
    assert (report["summary"]["blocked"], report["summary"]["waived_checks"]) == (False, ["running_vms"])
    assert {h: (r["status"], r["evidence"]) for h, r in results(report, "running_vms").items()} == {
        h: ("waived", "%d VM(s) running: %s" % (len(vms[h]), ", ".join(sorted(vms[h])))) if vms.get(h)
        else ("pass", "no VMs running") for h in ("cmp-1", "cmp-2", "cmp-3", "cmp-4")}
    assert sum(len(v) for v in vms.values()) == 12
    assert results(report, "upgrade_plan")["cluster"]["evidence"].startswith("manual: 4 host(s) in ")
    # check mode: only read (the report on the controller is the one thing written)
    assert dict((h, node_tree(lab, h)) for h in HOSTS) == before

    proc, report, junit, md, report_dir = run_preflight(tmp_path, "clean")
    assert proc.returncode == 0, proc.stdout[-4000:]
    summary = report["summary"]
    assert (summary["blocked"], summary["failed"], summary["total"]) == (False, 0, TOTAL), failed(report)
    assert md.splitlines()[4] == "**PASSED**: no blocker failed on 8 hosts. 6 skipped."
    # every host-side check ran for real on every node
    assert {h: r["status"] for h, r in results(report, "rpm_baseline").items()} == dict.fromkeys(HOSTS, "pass")
    assert results(report, "rpm_baseline")["cmp-1"]["evidence"] == (
        f"the 3 installed package(s) equal the baseline ({SOURCE_S})")
    assert results(report, "rpm_baseline")["ctl-a"]["evidence"] == (
        f"the 3 installed package(s) equal the baseline (baseline.txt in {M001})")
    assert results(report, "rpm_backups")["cmp-2"]["evidence"] == (
        "/var/backup-rpm holds an intact rpm for each of the 3 baseline package(s)")
    assert results(report, "product_version")["ctl-b"]["evidence"] == (
        "version 6.8.0 (from file:/etc/labsphere/version) equals the expected 6.8.0")
    assert results(report, "datastores")["cmp-4"]["evidence"] == "mounted: /var/log"
    assert results(report, "disk_usage")["cmp-4"]["status"] == "pass"
    assert results(report, "ha_pair_online")["cluster"]["evidence"] == "online: ctl-a, ctl-b"
    assert results(report, "ha_constraints")["cluster"]["evidence"] == "no cli-ban or cli-prefer constraints"
    assert results(report, "upgrade_plan")["cluster"]["evidence"].startswith(
        "migrate: 4 host(s) in 4 batch(es) (lower bound 4): cmp-1 | ")
    assert results(report, "bundle_verified")["controller"]["evidence"] == (
        f"2 bundle(s) match {lab_state_bundle_dir()}/SHA256SUMS: {M001}, {S001}")
    # skipped, and saying why: nothing staged yet (the bundle role has not run)
    assert {r["evidence"] for r in report["results"] if r["status"] == "skipped"} == {
        f"not staged on this host yet: {M001}", f"not staged on this host yet: {S001}"}
    assert_junit_matches(junit, report)
    assert stat.S_IMODE(report_dir.stat().st_mode) == 0o700
    assert sorted(os.listdir(report_dir)) == ["preflight.json", "preflight.md", "preflight.xml"]
    for name in ("preflight.md", "preflight.json", "preflight.xml"):
        assert stat.S_IMODE((report_dir / name).stat().st_mode) == 0o600


def test_all_faults_at_once_are_each_reported_then_waived_and_fixed(lab, tmp_path):
    ctl = "ctl-a"
    killed = standby = banned = False
    try:
        labctl("tamper-rpm", "cmp-1", "add")
        labctl("tamper-rpm", "cmp-2", "delete-backup")
        assert labctl("fill-disk", "cmp-4", "99").stdout.strip() == "cmp-4: /var/log at 99%"
        lab.exec(ctl, ["pcs", "resource", "ban", "vm-05", "cmp-4"])
        banned = True
        lab.exec(ctl, ["pcs", "node", "standby", "cmp-3", "--wait=120"], timeout=180)
        standby = True
        labctl("kill", "ctl-b")
        killed = True
        wait_vip_on(lab, ctl)
        bundle_dir = flipped_bundle_dir(tmp_path)
        bad = bundle_dir / M001

        proc, report, junit, md, _dir = run_preflight(tmp_path, "faults", upgrade_bundle_dir=str(bundle_dir))
        assert proc.returncode == 2, proc.stdout[-4000:]
        assert failed(report) == sorted([
            ("rpm_baseline", "cmp-1"),              # the extra rpm
            ("rpm_backups", "cmp-2"),               # the deleted backup rpm
            ("disk_usage", "cmp-4"),                # /var/log at 99 %
            ("ha_constraints", "cluster"),          # the leftover ban
            ("node_state", "cmp-3"),                # the node in standby
            ("upgrade_plan", "cluster"),            # ... which the planner cannot plan around
            ("reachable", "ctl-b"),                 # ctl-b stopped
            ("node_state", "ctl-b"),
            ("ha_pair_online", "cluster"),
            ("bundle_verified", "controller"),      # the corrupted bundle
        ])
        assert results(report, "rpm_baseline")["cmp-1"]["evidence"] == (
            f"differs from the baseline ({SOURCE_S}): 1 extra (labsphere-extra-1.0-1.ls8.noarch)")
        assert results(report, "rpm_backups")["cmp-2"]["evidence"] == (
            "/var/backup-rpm: 1 missing (labsphere-tools-1.4-2.ls8.noarch.rpm)")
        assert results(report, "disk_usage")["cmp-4"]["evidence"].startswith(
            "/var/log is 99 % full (limit: below 99 %); / is ")
        assert results(report, "ha_constraints")["cluster"]["evidence"] == (
            "1 left over: cli-ban-vm-05-on-cmp-4 (vm-05 banned from cmp-4)")
        assert results(report, "ha_constraints")["cluster"]["remedy"] == (
            "remove what an earlier ban or move left behind: pcs resource clear vm-05")
        assert results(report, "node_state")["cmp-3"]["evidence"] == "in standby"
        assert results(report, "node_state")["ctl-b"]["evidence"] == "offline"
        assert results(report, "reachable")["ctl-b"]["evidence"].startswith("unreachable: ")
        assert results(report, "ha_pair_online")["cluster"]["evidence"] == "ctl-b is offline (online: ctl-a)"
        assert results(report, "upgrade_plan")["cluster"]["evidence"].startswith(
            "migrate: no safe plan: node(s) cmp-3 (standby) are not in service")
        assert results(report, "bundle_verified")["controller"]["evidence"].startswith(
            f"{bad}: mismatch (sha256 is ")
        assert results(report, "bundle_verified")["controller"]["remedy"] == (
            "download the bundle again and check it against the vendor checksum file")
        # the unreachable host is listed, not dropped: its checks are skipped, saying why
        assert {r["id"] for r in report["results"] if r["host"] == "ctl-b" and r["status"] == "skipped"} == {
            "product_version", "bundle_staged", "rpm_baseline", "rpm_backups", "disk_usage", "datastores",
            "version_uniform"}
        # the other hosts were checked as usual
        assert results(report, "rpm_baseline")["cmp-4"]["status"] == "pass"
        assert results(report, "ha_vip")["cluster"]["status"] == "pass"
        assert report["summary"]["blocked"] is True
        assert md.splitlines()[4].startswith("**BLOCKED**: 9 blocker checks failed on 7 hosts")
        assert "Preflight found blockers" in proc.stdout
        assert_junit_matches(junit, report)

        # Waive every blocker but the backups, and let the role copy the missing rpm from a peer.
        waive = ["rpm_baseline", "disk_usage", "ha_constraints", "node_state", "upgrade_plan", "reachable",
                 "ha_pair_online", "bundle_verified"]
        proc, report, junit, md, _dir = run_preflight(tmp_path, "waived", upgrade_bundle_dir=str(bundle_dir),
                                                      preflight_waive=waive, preflight_fix_backups=True)
        assert proc.returncode == 0, proc.stdout[-4000:]
        summary = report["summary"]
        assert (summary["blocked"], summary["failed"]) == (False, 0)
        assert summary["waived_checks"] == ["reachable", "rpm_baseline", "disk_usage", "ha_pair_online",
                                            "ha_constraints", "node_state", "upgrade_plan", "bundle_verified"]
        assert results(report, "rpm_backups")["cmp-2"]["evidence"] == (
            "/var/backup-rpm holds an intact rpm for each of the 3 baseline package(s) "
            "[fix from peers: copied labsphere-tools-1.4-2.ls8.noarch.rpm from cmp-1]")
        assert results(report, "rpm_backups")["cmp-2"]["status"] == "pass"
        listing = lab.exec("cmp-2", ["ls", "/var/backup-rpm"]).stdout.split()
        assert "labsphere-tools-1.4-2.ls8.noarch.rpm" in listing
        assert md.splitlines()[4].startswith("**PASSED**: no blocker failed on 8 hosts. 8 checks waived")
        assert "## Waived" in md and "## Waivers" in md
        assert "- `disk_usage`: waived on cmp-4" in md
        assert "- `reachable`: waived on ctl-b" in md
        assert_junit_matches(junit, report)
        waived_cases = [c for c in junit.iter("skipped") if c.get("message", "").startswith("waived: ")]
        assert len(waived_cases) == summary["waived"] == 9
    finally:
        problems = []
        for step in (
            lambda: killed and labctl("start", "ctl-b"),
            lambda: banned and lab.exec(ctl, ["pcs", "resource", "clear", "vm-05"]),
            lambda: standby and lab.exec(ctl, ["pcs", "node", "unstandby", "cmp-3", "--wait=120"], timeout=180),
            lambda: labctl("fill-disk", "cmp-4", "0"),
            lambda: labctl("tamper-rpm", "cmp-1", "restore"),
            lambda: labctl("tamper-rpm", "cmp-2", "restore"),
        ):
            try:
                step()
            except Exception as exc:  # undo everything, then report
                problems.append(str(exc))
        testing.all_vms_started(lab)
        assert lab.wait_healthy(120) == []
        assert problems == []
