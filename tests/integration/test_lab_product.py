"""The product on the lab nodes: RPMs in a real rpm database, vendor-style
bundles, SequoiaCM-style services, and a Harvester-style state partition."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from labkit import artifacts, config, testing  # noqa: E402
from labkit.testing import installed_nevras  # noqa: E402

pytestmark = pytest.mark.lab
lab = testing.lab  # the module-scoped fixture every test here uses
ROLE_BUNDLE = {"controller": config.BUNDLES["management"], "compute": config.BUNDLES["compute"]}


def _bundle_dir(lab) -> Path:
    return Path(lab.load_state()["bundle_dir"])


def test_product_version_everywhere(lab):
    versions = {n.name: lab.exec(n.name, ["cat", "/etc/labsphere/version"]).stdout.strip()
                for n in lab.topo.nodes}
    assert versions == {n.name: config.FROM_VERSION for n in lab.topo.nodes}


def test_rpm_database_equals_the_bundle_baseline(lab):
    bundles = _bundle_dir(lab)
    for n in lab.topo.nodes:
        with zipfile.ZipFile(bundles / ROLE_BUNDLE[n.role]) as z:
            baseline = z.read("baseline.txt").decode().split()
        assert installed_nevras(lab, n.name) == baseline, n.name
        # Plain `rpm -qa` reads /var/lib/rpm, like on RHEL (%_dbpath macro).
        assert lab.exec(n.name, ["rpm", "--eval", "%{_dbpath}"]).stdout.strip() == "/var/lib/rpm"


def test_backup_rpm_holds_the_installed_packages(lab):
    for n in lab.topo.nodes:
        files = lab.exec(n.name, ["sh", "-c", "ls /var/backup-rpm/*.rpm"]).stdout.split()
        backed_up = lab.exec(n.name, ["rpm", "-qp", "--qf", "%{NEVRA}\\n", *files]).stdout.split()
        assert sorted(backed_up) == installed_nevras(lab, n.name), n.name


def test_bundles_are_checksummed_like_the_vendor_publishes_them(lab):
    bundles = _bundle_dir(lab)
    sums = (bundles / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in sums:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    assert sorted(listed) == sorted(config.BUNDLES.values())
    for name, digest in listed.items():
        assert hashlib.sha256((bundles / name).read_bytes()).hexdigest() == digest
    for kind, name in config.BUNDLES.items():
        role = artifacts.BUNDLE_ROLE[kind]
        with zipfile.ZipFile(bundles / name) as z:
            members = sorted(z.namelist())
            rpms = sorted(m for m in members if m.startswith("rpms/"))
            assert rpms == sorted(f"rpms/{p}-{config.TO_VERSION}-{artifacts.RELEASE}.noarch.rpm"
                                  for p in artifacts.ROLE_PACKAGES[role])
            assert members == sorted(["SHA256SUMS", "baseline.txt", "bundle.info", *rpms])
            inner = {}
            for line in z.read("SHA256SUMS").decode().splitlines():
                digest, member = line.split("  ", 1)
                inner[member] = digest
            assert sorted(inner) == sorted(m for m in members if m != "SHA256SUMS")
            for member, digest in inner.items():
                assert hashlib.sha256(z.read(member)).hexdigest() == digest, member
            info = dict(line.split("=", 1) for line in z.read("bundle.info").decode().split())
            assert info == {"product": "labsphere", "kind": kind,
                            "from_version": config.FROM_VERSION, "to_version": config.TO_VERSION}


def _http(lab, node: str, port: int, path: str) -> tuple:
    cp = lab.exec(node, ["curl", "-s", "-o", "/dev/stdout", "-w", "\\n%{http_code}",
                         f"http://127.0.0.1:{port}{path}"], check=False)
    body, _sep, code = cp.stdout.rpartition("\n")
    return int(code or 0), body


def test_services_serve_their_version_from_the_current_link(lab):
    for n in lab.topo.controllers:
        for svc, port in config.SERVICES:
            code, body = _http(lab, n.name, port, "/")
            assert code == 200
            assert json.loads(body) == {"service": f"labsphere-{svc}",
                                        "version": config.FROM_VERSION, "port": port}
            link = lab.exec(n.name, ["readlink", f"/opt/labsphere/{svc}/current"]).stdout.strip()
            assert link == config.FROM_VERSION
    for n in lab.topo.computes:
        assert lab.exec(n.name, ["test", "-e", "/opt/labsphere"], check=False).returncode == 1


def test_each_service_depends_on_the_previous_one(lab):
    ctl = lab.topo.controllers[-1].name
    names = [f"labsphere-{s}.service" for s, _p in config.SERVICES]
    for prev, unit in zip(names, names[1:]):
        requires = lab.exec(ctl, ["systemctl", "show", "-p", "Requires", "--value", unit]).stdout
        after = lab.exec(ctl, ["systemctl", "show", "-p", "After", "--value", unit]).stdout
        assert prev in requires.split(), unit
        assert prev in after.split(), unit
    gateway_port = dict(config.SERVICES)["gateway"]
    try:
        lab.exec(ctl, ["systemctl", "stop", names[0]])
        states = lab.exec(ctl, ["systemctl", "is-active", *names], check=False).stdout.split()
        assert states == ["inactive"] * len(names)
        assert _http(lab, ctl, gateway_port, "/health")[0] == 0
    finally:
        lab.exec(ctl, ["systemctl", "start", names[-1]])
    states = lab.exec(ctl, ["systemctl", "is-active", *names], check=False).stdout.split()
    assert states == ["active"] * len(names)
    code = 0
    for _attempt in range(20):
        code = _http(lab, ctl, gateway_port, "/health")[0]
        if code == 200:
            break
        lab.exec(ctl, ["sleep", "0.5"])
    assert code == 200


def test_state_partition_is_mounted_read_only_with_both_images(lab):
    for n in lab.topo.nodes:
        opts = lab.exec(n.name, ["findmnt", "-no", "SOURCE,FSTYPE,OPTIONS",
                                 "/run/initramfs/cos-state"]).stdout.split()
        assert opts[:2] == ["/dev/cos-state", "ext4"]
        assert "ro" in opts[2].split(",")
        listing = lab.exec(n.name, ["ls", "/run/initramfs/cos-state/cOS", "/run/cos"]).stdout
        assert "active.img" in listing.split() and "passive.img" in listing.split()
        assert "active_mode" in listing.split()
        assert lab.exec(n.name, ["fsck.ext2", "-fn", "/run/initramfs/cos-state/cOS/active.img"],
                        check=False).returncode == 0
    node = lab.topo.computes[0].name
    try:
        lab.exec(node, ["mount", "-o", "remount,rw", "/run/initramfs/cos-state"])
        opts = lab.exec(node, ["findmnt", "-no", "OPTIONS", "/run/initramfs/cos-state"]).stdout
        assert "rw" in opts.strip().split(",")
    finally:
        lab.exec(node, ["mount", "-o", "remount,ro", "/run/initramfs/cos-state"])
    opts = lab.exec(node, ["findmnt", "-no", "OPTIONS", "/run/initramfs/cos-state"]).stdout
    assert "ro" in opts.strip().split(",")
