"""The lab as a whole: bring it up, tear it down, look at it.

Tests use this module too:

    import sys; sys.path.insert(0, "tests/lab")
    from labkit.lab import Lab
    lab = Lab()
    lab.exec("ctl-a", ["crm_mon", "-1", "--output-as=xml"]).stdout
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import artifacts, cluster, config, disk, image, inventory, proc

LABEL = "io.clusterops.lab"
STATE_FILE = config.STATE / "lab.json"
DISK = config.STATE / "disk.img"
CAPS = "NET_ADMIN,NET_RAW,SYS_NICE,IPC_LOCK,SYS_ADMIN"


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, topo: config.Topology | None = None):
        self.topo = topo or config.topology()

    # ------------------------------------------------------------------ state
    @staticmethod
    def load_state() -> dict:
        try:
            return json.loads(STATE_FILE.read_text())
        except (OSError, ValueError):
            return {}

    @staticmethod
    def save_state(state: dict) -> None:
        config.STATE.mkdir(parents=True, exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, STATE_FILE)

    # -------------------------------------------------------------- plumbing
    def container(self, node: str) -> str:
        return self.topo.container(self.topo.node(node).name)

    def exec(self, node: str, argv, check=True, input=None, timeout=120):
        return proc.node_exec(self.container(node), argv, check=check, input=input,
                              timeout=timeout)

    def containers(self) -> dict:
        """{node: status} for the lab's containers that exist."""
        out = proc.podman("ps", "-a", "--filter", f"label={LABEL}={self.topo.prefix}",
                          "--format", "json", check=False).stdout
        result = {}
        for c in json.loads(out or "[]"):
            node = (c.get("Labels") or {}).get(f"{LABEL}.node")
            if node:
                result[node] = c.get("State", "")
        return result

    def running_nodes(self) -> list:
        st = self.containers()
        return [n.name for n in self.topo.nodes if st.get(n.name) == "running"]

    def some_running(self, prefer: str | None = None) -> str:
        running = self.running_nodes()
        if not running:
            raise LabError("no lab node is running (labctl up?)")
        if prefer in running:
            return prefer
        ctls = [n for n in running if self.topo.node(n).is_controller]
        return (ctls or running)[0]

    def crm_mon(self, node: str | None = None) -> ET.Element:
        node = self.some_running(node)
        out = self.exec(node, ["crm_mon", "-1", "--output-as=xml"], timeout=30).stdout
        return ET.fromstring(out)

    def cib(self, node: str | None = None) -> ET.Element:
        node = self.some_running(node)
        return ET.fromstring(self.exec(node, ["cibadmin", "--query"], timeout=30).stdout)

    # ----------------------------------------------------------------- health
    def problems(self) -> list:
        """What keeps the lab from being up and healthy (empty list: healthy)."""
        st = self.containers()
        probs = [f"{n.name}: container {st.get(n.name, 'missing')}" for n in self.topo.nodes
                 if st.get(n.name) != "running"]
        if probs:
            return probs
        try:
            mon = self.crm_mon()
        except (LabError, proc.CommandError, ET.ParseError) as exc:
            return [f"crm_mon: {str(exc).splitlines()[0]}"]
        return health_problems(mon, self.topo)

    def wait_healthy(self, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        while True:
            probs = self.problems()
            if not probs or time.monotonic() > deadline:
                return probs
            time.sleep(2)

    # ------------------------------------------------------------------- up
    def up(self) -> None:
        t0 = time.monotonic()
        ref = image.ensure(self.topo.prefix)
        state = self.load_state()
        if state.get("image") == ref and state.get("topology") == self.topo.as_dict() \
                and state.get("loop") in disk.attached_to(DISK) \
                and set(self.containers()) == {n.name for n in self.topo.nodes}:
            stopped = [n for n, s in self.containers().items() if s != "running"]
            try:
                if stopped:
                    proc.log(f"starting stopped node(s): {', '.join(stopped)}")
                    proc.podman("start", *[self.container(n) for n in stopped])
                probs = self.wait_healthy(60 if stopped else 20)
            except proc.CommandError as exc:
                probs = [str(exc).splitlines()[0]]
            if not probs:
                self._write_inventory(state)
                proc.log(f"lab already up and healthy ({time.monotonic() - t0:.1f}s)")
                return
            proc.log("lab is up but not healthy; rebuilding it: " + "; ".join(probs))
        if state or self.containers() or self._network_exists():
            self.down(quiet=True)
        self._create(ref)
        proc.log(f"lab up in {time.monotonic() - t0:.0f}s")

    def _network_exists(self) -> bool:
        return proc.podman("network", "exists", self.topo.network, check=False).returncode == 0

    def _create(self, ref: str) -> None:
        topo = self.topo
        t0 = time.monotonic()
        arts = artifacts.ensure_all()
        state = {"image": ref, "topology": topo.as_dict(), "created": time.time(), **arts}
        # Record what we hold before taking it, so `down` can always release it.
        self.save_state(state)
        parts = disk.build_disk(DISK, [n.name for n in topo.nodes])
        dev = disk.attach(DISK, 2 * len(topo.nodes))
        state.update(loop=dev, disk=str(DISK), partitions=parts)
        self.save_state(state)
        proc.podman("network", "create", "--subnet", str(topo.subnet), "--gateway", topo.gateway,
                    "--disable-dns", "--label", f"{LABEL}={topo.prefix}", topo.network)
        keys = self._host_keys()
        tokens = cluster.pcsd_tokens(topo)
        shared = {
            "etc/corosync/corosync.conf": (cluster.corosync_conf(topo).encode(), 0o644, "root"),
            "etc/corosync/authkey": (cluster.authkey(), 0o400, "root"),
            "var/lib/pacemaker/cib/cib.xml": (cluster.cib_xml(topo).encode(), 0o600, "hacluster"),
            "var/lib/pcsd/known-hosts": (cluster.pcsd_known_hosts(topo, tokens).encode(), 0o600,
                                         "root"),
            "root/.ssh/authorized_keys": (Path(arts["ssh_key"] + ".pub").read_bytes(), 0o600,
                                          "root"),
        }
        rpm_dir = Path(arts["rpm_dir"])
        for n in topo.nodes:
            c = topo.container(n.name)
            argv = ["create", "--name", c, "--hostname", n.name,
                    "--network", topo.network, "--ip", n.ip,
                    "--systemd=always", "--restart=on-failure", "--stop-timeout", "10",
                    "--cap-add", CAPS,
                    "--device", f"{dev}p{parts[n.name]['state']}:/dev/cos-state",
                    "--device", f"{dev}p{parts[n.name]['log']}:/dev/lab-log",
                    "--label", f"{LABEL}={topo.prefix}", "--label", f"{LABEL}.node={n.name}"]
            for other in topo.nodes:
                if other.name != n.name:
                    argv += ["--add-host", f"{other.name}:{other.ip}"]
            proc.podman(*argv, ref)
            mnt = Path(proc.podman("mount", c).stdout.strip())
            try:
                files = dict(shared)
                files["var/lib/pcsd/pcs_users.conf"] = (
                    cluster.pcsd_users(tokens[n.name]).encode(), 0o600, "root")
                files["etc/ssh/ssh_host_ed25519_key"] = (keys[n.name][0], 0o600, "root")
                files["etc/ssh/ssh_host_ed25519_key.pub"] = (keys[n.name][1], 0o644, "root")
                crt, key = artifacts.pcsd_cert(n.name)
                files["var/lib/pcsd/pcsd.crt"] = (crt, 0o600, "root")
                files["var/lib/pcsd/pcsd.key"] = (key, 0o600, "root")
                seed_files(mnt, files)
                install_rpms(mnt, artifacts.node_rpms(rpm_dir, n.role))
                if n.is_controller:
                    install_services(mnt, Path(arts["services_dir"]) /
                                     f"labsphere-services-{config.FROM_VERSION}.tar.gz")
            finally:
                proc.podman("umount", c, check=False)
        proc.podman("start", *[topo.container(n.name) for n in topo.nodes])
        proc.log(f"{len(topo.nodes)} nodes started ({time.monotonic() - t0:.0f}s); "
                 "waiting for the cluster")
        self._write_inventory(state)
        t1 = time.monotonic()
        probs = self.wait_healthy(240)
        if probs:
            raise LabError("the lab did not become healthy within 240s:\n  " + "\n  ".join(probs))
        proc.log(f"cluster healthy after {time.monotonic() - t1:.0f}s; checking ssh, pcsd, services")
        inventory.check_ssh(self.topo)
        self._wait_services(240)
        proc.log(f"ssh, pcsd and services ready after {time.monotonic() - t1:.0f}s")
        state["ready"] = time.time()
        self.save_state(state)

    def _host_keys(self) -> dict:
        d = config.STATE / "hostkeys"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        keys = {}
        for n in self.topo.nodes:
            k = d / n.name
            proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{n.name}",
                      "-f", k])
            keys[n.name] = (k.read_bytes(), Path(f"{k}.pub").read_bytes())
        return keys

    def _write_inventory(self, state: dict) -> None:
        inventory.write(self.topo, state)

    def _wait_services(self, timeout: float) -> None:
        """pcsd on every node and the labsphere services on the controllers answer."""
        deadline = time.monotonic() + timeout
        pending = {n.name for n in self.topo.nodes}
        while pending:
            for name in sorted(pending):
                out = self.exec(name, ["ss", "-Hltn", "sport", "=", ":2224"], check=False).stdout
                ok = bool(out.strip())
                if ok and self.topo.node(name).is_controller:
                    port = dict(config.SERVICES)["gateway"]
                    ok = self.exec(name, ["curl", "-sf", "-o", "/dev/null",
                                          f"http://127.0.0.1:{port}/health"],
                                   check=False).returncode == 0
                if ok:
                    pending.discard(name)
            if pending:
                if time.monotonic() > deadline:
                    raise LabError(f"pcsd/services not answering on {', '.join(sorted(pending))}")
                time.sleep(2)

    # ------------------------------------------------------------------ down
    def down(self, quiet: bool = False) -> None:
        # Every container with the lab's label, also those of another topology.
        out = proc.podman("ps", "-a", "--filter", f"label={LABEL}={self.topo.prefix}",
                          "--format", "{{.Names}}", check=False).stdout
        names = sorted(set(out.split()))
        if names:
            proc.podman("rm", "-f", "-t", "2", *names, check=False)
        if self._network_exists():
            proc.podman("network", "rm", "-f", self.topo.network, check=False)
        # Only loop devices backed by the lab disk: another user may hold the
        # number recorded in the state file by now.
        for dev in disk.attached_to(DISK):
            proc.run(["partx", "--delete", dev], check=False)
            disk.detach(dev)
            disk.remove_stale_partition_nodes(dev)
        for p in (DISK, config.STATE / "active.img.pristine"):
            p.unlink(missing_ok=True)
        shutil.rmtree(config.STATE / "hostkeys", ignore_errors=True)
        inventory.remove()
        STATE_FILE.unlink(missing_ok=True)
        if not quiet:
            proc.log("lab down: no container, network, loop device or mount left")

    def leftovers(self) -> list:
        """Anything of the lab still present on the host (for `labctl down --check`)."""
        left = [f"container {c}" for c in self.containers()]
        if self._network_exists():
            left.append(f"network {self.topo.network}")
        left += [f"loop device {d}" for d in disk.attached_to(DISK)]
        mounts = proc.run(["findmnt", "-rn", "-o", "TARGET,SOURCE"], check=False).stdout
        for line in mounts.splitlines():
            if str(config.STATE) in line or "/dev/cos-state" in line or "/dev/lab-log" in line:
                left.append(f"mount {line}")
        return left


def health_problems(mon: ET.Element, topo: config.Topology) -> list:
    """Problems in a crm_mon XML document, for the lab's health definition."""
    probs = []
    nodes = {n.get("name"): n for n in mon.iter("node") if n.get("name") and n.get("online")}
    for n in topo.nodes:
        x = nodes.get(n.name)
        if x is None:
            probs.append(f"{n.name}: not a cluster member")
            continue
        for flag, bad in (("online", "false"), ("standby", "true"), ("maintenance", "true"),
                          ("unclean", "true"), ("pending", "true")):
            if x.get(flag) == bad:
                probs.append(f"{n.name}: {flag}={bad}")
    summary = mon.find("summary")
    if summary is not None:
        opts = summary.find("cluster_options")
        if opts is not None and opts.get("maintenance-mode") == "true":
            probs.append("cluster maintenance-mode=true")
        quorum = summary.find("current_dc")
        if quorum is not None and quorum.get("with_quorum") != "true":
            probs.append("cluster has no quorum")
    resources = {r.get("id"): r for r in mon.iter("resource")}
    vip = resources.get("lb_float_ip")
    ctl_names = {n.name for n in topo.controllers}
    if vip is None or vip.get("role") != "Started":
        probs.append("lb_float_ip not started")
    else:
        where = [x.get("name") for x in vip.iter("node")]
        if not where or where[0] not in ctl_names:
            probs.append(f"lb_float_ip on {where} (not a controller)")
    for name, _mem, _mig in topo.vms:
        r = resources.get(name)
        if r is None or r.get("role") != "Started":
            probs.append(f"{name} not started")
    # crm_mon lists every -INFINITY location as a ban, the lab's own rules
    # included; only the ones left by `pcs resource ban/move` (cli-*) count.
    cli = sorted({b.get("id", "?") for b in mon.iter("ban") if b.get("id", "").startswith("cli-")})
    if cli:
        probs.append("constraints left by pcs resource ban/move: " + ", ".join(cli))
    return probs


def _owner(mnt: Path, user: str) -> tuple:
    if user == "root":
        return 0, 0
    uid = gid = None
    for line in (mnt / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            uid, gid = int(f[2]), int(f[3])
    if uid is None:
        raise LabError(f"user {user} missing from the node image")
    for line in (mnt / "etc/group").read_text().splitlines():
        f = line.split(":")
        if f[0] == "haclient":
            gid = int(f[2])
    return uid, gid


def seed_files(mnt: Path, files: dict) -> None:
    """Write {relpath: (bytes, mode, owner)} into a container's root."""
    for rel, (data, mode, owner) in files.items():
        p = mnt / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith("root/.ssh"):
            p.parent.chmod(0o700)
        if rel.startswith("var/lib/pcsd"):
            p.parent.chmod(0o700)
        p.write_bytes(data)
        uid, gid = _owner(mnt, owner)
        os.chown(p, uid, gid)
        p.chmod(mode)


def install_rpms(mnt: Path, rpm_files: list) -> None:
    """Install into the node's rpm database (/var/lib/rpm) and keep the RPM
    files in /var/backup-rpm/, as an ICS node does."""
    backup = mnt / "var/backup-rpm"
    backup.mkdir(parents=True, exist_ok=True)
    for f in rpm_files:
        shutil.copy2(f, backup / f.name)
    proc.run(["rpm", "--root", mnt, "--dbpath", "/var/lib/rpm", "-i", "--nosignature",
              *[str(f) for f in rpm_files]])


def install_services(mnt: Path, tarball: Path) -> None:
    """Install the SequoiaCM-style services as their installer would:
    /opt/labsphere/<svc>/<version>/, a `current` link, a unit, a config file."""
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        top = members[0].name.split("/", 1)[0]
        version = top.rsplit("-", 1)[1]
        for svc, _port in config.SERVICES:
            dest = mnt / "opt/labsphere" / svc / version
            for m in members:
                prefix = f"{top}/{svc}/"
                if not m.name.startswith(prefix) or not m.isfile():
                    continue
                target = dest / m.name[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(m).read())
                target.chmod(m.mode)
            (mnt / "opt/labsphere" / svc / "current").symlink_to(version)
            unit = f"labsphere-{svc}.service"
            (mnt / "etc/systemd/system" / unit).write_bytes((dest / "systemd" / unit).read_bytes())
            wants = mnt / "etc/systemd/system/multi-user.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
            conf = mnt / "etc/labsphere" / f"{svc}.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(artifacts.service_conf(svc))
