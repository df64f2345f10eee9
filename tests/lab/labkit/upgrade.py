"""Run playbooks/upgrade.yml against the lab, kill it, watch the cluster while it runs.

Shared by tests/integration/test_lab_upgrade.py and tests/e2e/kill_matrix.py:

* :func:`run_upgrade` runs the playbook (its own session, so a SIGKILL of the process group
  is what an operator's kill -9 or a killed AWX job does) with the timing callback of
  tests/bench/callback_plugins, optionally killing it at the N-th start of a named task;
* :class:`Sampler` samples ``crm_mon --output-as=xml`` in a thread while the upgrade runs;
* :func:`cluster_state` / :func:`problems` say what the lab looks like afterwards.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from . import config, proc
from .lab import Lab, LabError

REPO = config.ROOT
PLAYBOOK = REPO / "playbooks" / "upgrade.yml"
INVENTORY = config.INVENTORY_DIR
CALLBACKS = REPO / "tests" / "bench" / "callback_plugins"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
RUNNING = ("Started", "Promoted", "Unpromoted", "Migrating")


def lab_vars(lab: Lab, **extra) -> dict:
    """The lab's settings for the upgrade playbook (also in the inventory labctl writes)."""
    port = dict(config.SERVICES)["gateway"]
    variables = {"upgrade_version_file": "/etc/labsphere/version",
                 "upgrade_datastores": ["/var/log"],
                 "upgrade_soak_urls": [f"http://{lab.topo.vip}:{port}/health"],
                 # notice a killed node in ~15 s (also with an inventory written before labctl set it)
                 "ansible_ssh_extra_args": "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"}
    variables.update(extra)
    return variables


@dataclass
class Run:
    rc: int | None
    output: str
    killed: bool
    seconds: float
    timings: Path
    report_dir: Path
    task_starts: list = field(default_factory=list)

    def tasks_started(self) -> list:
        return self.task_starts


def _env(timings: Path) -> dict:
    env = proc.env()
    # Ansible insists on a UTF-8 locale; labctl's own commands run with LANG=C.
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
               ANSIBLE_CALLBACKS_ENABLED="upgrade_timings", UPGRADE_TIMINGS_FILE=str(timings),
               ANSIBLE_INVENTORY_IGNORE="known_hosts,ssh_config", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PYTHONUNBUFFERED="1")
    return env


def _starts(timings: Path) -> list:
    out = []
    try:
        with open(timings) as handle:
            for line in handle:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if data.get("event") == "task_start":
                    out.append(data["task"])
    except OSError:
        pass
    return out


def same_task(started: str, wanted: str) -> bool:
    """A task name as the callback saw it (``role : name`` inside roles, templated) starts with
    the wanted one."""
    return started.split(" : ", 1)[-1].startswith(wanted)


def run_upgrade(lab: Lab, variables: dict, workdir: Path, name: str, check: bool = False,
                kill_at: tuple | None = None, kill_delay: float = 1.0, timeout: float = 3600,
                args: tuple = (), action=None) -> Run:
    """Run the upgrade playbook; with ``kill_at=(task name, n)`` SIGKILL its process group
    ``kill_delay`` seconds after the n-th start of that task (1-based) - or, with ``action``,
    call ``action()`` at that moment instead and let the playbook go on."""
    workdir.mkdir(parents=True, exist_ok=True)
    timings = workdir / f"{name}.timings.jsonl"
    timings.unlink(missing_ok=True)
    report_dir = workdir / "reports"
    variables = dict(variables, upgrade_report_dir=str(report_dir))
    vars_file = workdir / f"{name}.vars.json"
    vars_file.write_text(json.dumps(variables))
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(INVENTORY), str(PLAYBOOK), "-e", f"@{vars_file}", *args]
    if check:
        argv.append("--check")
    log = workdir / f"{name}.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        p = subprocess.Popen(argv, cwd=str(REPO), env=_env(timings), stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        killed = False
        try:
            if kill_at is not None:
                task, nth = kill_at
                while p.poll() is None:
                    if sum(1 for n in _starts(timings) if same_task(n, task)) >= nth:
                        time.sleep(kill_delay)
                        if action is not None:
                            action()
                        elif p.poll() is None:
                            os.killpg(p.pid, signal.SIGKILL)
                            killed = True
                        break
                    if time.monotonic() - t0 > timeout:
                        break
                    time.sleep(0.2)
            p.wait(timeout=max(1, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    # Remote module processes whose connection the kill cut finish (or die) on their own:
    # give the cluster a moment before anyone looks at it.
    return Run(None if killed else p.returncode, log.read_text(), killed, time.monotonic() - t0, timings,
               report_dir, _starts(timings))


# ----------------------------------------------------------------- sampling
@dataclass
class Sample:
    at: float
    roles: dict      # resource -> (role, node or None); {} when crm_mon could not be read
    error: str = ""


class Sampler:
    """Samples crm_mon XML every ``interval`` seconds from a running controller (another
    node while the controllers reboot) until stopped."""

    def __init__(self, lab: Lab, interval: float = 1.0):
        self.lab = lab
        self.interval = interval
        self.samples: list = []
        self._dc = None
        self.seen: dict = {}  # resource -> [(time, role, node)] of the first sample of each outage
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)

    def _read(self) -> dict:
        """One crm_mon reading, from the DC when it answers (a node that just joined may not have
        the cluster's status yet and show running resources as stopped)."""
        errors = []
        names = [n.name for n in self.lab.topo.nodes]
        order = ([self._dc] if self._dc in names else []) + [n for n in names if n != self._dc]
        tried = set()
        while order:
            node = order.pop(0)
            if node in tried:
                continue
            tried.add(node)
            try:
                cp = self.lab.exec(node, ["crm_mon", "-1", "--output-as=xml"], check=False, timeout=20)
            except (proc.CommandError, subprocess.TimeoutExpired) as exc:
                errors.append(f"{node}: {exc}")
                continue
            if cp.returncode != 0 or not cp.stdout.startswith("<"):
                errors.append(f"{node}: rc {cp.returncode}")
                continue
            root = ET.fromstring(cp.stdout)
            dc = root.find("summary/current_dc")
            if dc is None or dc.get("with_quorum") != "true":
                errors.append(f"{node}: no quorum")
                continue
            if dc.get("name") != node and dc.get("name") in names and dc.get("name") not in tried:
                self._dc = dc.get("name")
                order.insert(0, self._dc)  # ask the DC itself
                continue
            out = {}
            for r in root.iter("resource"):
                where = [n.get("name") for n in r.iter("node")]
                out[r.get("id")] = (r.get("role"), where[0] if where else None)
            return out
        raise LabError("; ".join(errors))

    def _loop(self):
        while not self._stop.is_set():
            t = time.time()
            try:
                self.samples.append(Sample(t, self._read()))
            except (LabError, ET.ParseError) as exc:
                self.samples.append(Sample(t, {}, str(exc)))
            self._stop.wait(max(0.0, self.interval - (time.time() - t)))

    # -- analysis
    def outages(self, resource: str) -> list:
        """[(start, end, before node, after node)] of the runs of samples where ``resource``
        was not running; samples that could not be read are left out (unknown, not down)."""
        out, start, before = [], None, None
        last_node = None
        for s in self.samples:
            if not s.roles:
                continue
            role, node = s.roles.get(resource, (None, None))
            up = role in RUNNING
            if not up and start is None:
                start, before = s.at, last_node
                self.seen.setdefault(resource, []).append((s.at, role, node))
            if up:
                if start is not None:
                    out.append((start, s.at, before, node))
                    start = None
                last_node = node
        if start is not None:
            out.append((start, self.samples[-1].at, before, None))
        return out

    def nodes_of(self, resource: str) -> list:
        """The nodes ``resource`` ran on, in order, without repeats."""
        seq = []
        for s in self.samples:
            role, node = s.roles.get(resource, (None, None))
            if role in RUNNING and node and (not seq or seq[-1] != node):
                seq.append(node)
        return seq


# ----------------------------------------------------------------- pacemaker's own record
_OP = re.compile(r"^(\w{3} +\d+ [\d:.]+) \S+ pacemaker-controld .*Result of (start|stop|migrate_to|migrate_from) "
                 r"operation for (\S+) on (\S+): (\w+)")


def operations(lab: Lab, since: float, until: float) -> list:
    """[(time, operation, resource, node, result)] that the nodes' executors ran between
    ``since`` and ``until`` (epoch seconds), from every node's pacemaker.log (it survives a
    node's reboot). Which VM was really stopped or started, and which was live-migrated."""
    year = time.gmtime(since).tm_year
    out = []
    for n in lab.topo.nodes:
        cp = lab.exec(n.name, ["grep", "-a", "Result of .* operation for ", "/var/log/pacemaker/pacemaker.log"],
                      check=False, timeout=60)
        for line in cp.stdout.splitlines():
            m = _OP.match(line)
            if not m:
                continue
            stamp, frac = m.group(1).rsplit(".", 1) if "." in m.group(1) else (m.group(1), "0")
            at = calendar.timegm(time.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S")) + float("0." + frac)
            if since <= at <= until:
                out.append((at, m.group(2), m.group(3), m.group(4), m.group(5)))
    return sorted(out)


# ----------------------------------------------------------------- state
def cluster_state(lab: Lab) -> dict:
    """Versions, VM roles, bans/prefers, standby/maintenance nodes, journal status per node."""
    mon = lab.crm_mon()
    cons = ET.fromstring(lab.exec(lab.some_running(), ["cibadmin", "--query", "--scope",
                                                       "constraints"]).stdout)
    roles = {}
    for r in mon.iter("resource"):
        where = [n.get("name") for n in r.iter("node")]
        roles[r.get("id")] = (r.get("role"), where[0] if where else None)
    nodes = {n.get("name"): n for n in mon.iter("node") if n.get("online") is not None}
    versions = {}
    for n in lab.topo.nodes:
        cp = lab.exec(n.name, ["cat", "/etc/labsphere/version"], check=False)
        versions[n.name] = cp.stdout.strip() if cp.returncode == 0 else None
    return {
        "versions": versions,
        "vms": {v: roles.get(v) for v, _m, _a in lab.topo.vms},
        "vip": roles.get("lb_float_ip"),
        "cli_constraints": sorted(c.get("id") for c in cons.iter("rsc_location")
                                  if c.get("id", "").startswith(("cli-ban-", "cli-prefer-"))),
        "standby": sorted(n for n, x in nodes.items() if x.get("standby") == "true"),
        "maintenance": sorted(n for n, x in nodes.items() if x.get("maintenance") == "true"),
        "offline": sorted(n for n, x in nodes.items() if x.get("online") != "true"),
        "maintenance_mode": (mon.find("summary/cluster_options").get("maintenance-mode") == "true"),
    }


def problems(lab: Lab, version: str = config.TO_VERSION) -> list:
    """What keeps the lab from being 'upgraded, every VM running, nothing left behind'."""
    s = cluster_state(lab)
    out = [f"{n} runs {v}" for n, v in s["versions"].items() if v != version]
    out += [f"{vm} is {role}" for vm, (role, _n) in s["vms"].items() if role not in RUNNING]
    if s["vip"] is None or s["vip"][0] not in RUNNING:
        out.append(f"lb_float_ip is {s['vip']}")
    out += [f"left: {c}" for c in s["cli_constraints"]]
    out += [f"{n} in standby" for n in s["standby"]]
    out += [f"{n} in maintenance" for n in s["maintenance"]]
    out += [f"{n} offline" for n in s["offline"]]
    if s["maintenance_mode"]:
        out.append("maintenance-mode=true")
    return out


def journal(lab: Lab, node: str, run_id: str, scope: str = "host") -> dict | None:
    """The journal record of ``run_id`` on ``node`` (None when there is none)."""
    cp = lab.exec(node, ["cat", f"/var/lib/clusterops-upgrade/{run_id}/{scope}.json"], check=False)
    return json.loads(cp.stdout) if cp.returncode == 0 else None


def tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
