"""Things the lab builds on the host and caches under tests/lab/.cache/:

- the lab's SSH client key (ssh/id_ed25519);
- the product "labsphere" as RPMs (rpmbuild), at FROM_VERSION and TO_VERSION,
  plus the odd packages the fault tools use;
- the two vendor-style upgrade bundles (zip + SHA256SUMS + baseline) and a
  plain SHA256SUMS over them;
- the SequoiaCM-style services tarballs (labsphere-services-<version>.tar.gz).

Each is rebuilt only when its inputs (templates in this file) change.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import textwrap
import zipfile
from pathlib import Path

from . import config, proc

RELEASE = "1.ls8"
TOOLS = ("labsphere-tools", "1", "1.4", "2.ls8")      # epoch, version, release; not in bundles
TOOLS_CHANGED = ("labsphere-tools", "1", "1.4", "3.ls8")  # `tamper-rpm change` installs this one
EXTRA = ("labsphere-extra", "0", "1.0", "1.ls8")      # `tamper-rpm add` installs this one

# name -> (summary, requires-common, files {path: content-template}, config files)
PACKAGES = {
    "labsphere-common": ("LabSphere common files", False, {
        "/etc/labsphere/version": "{version}\n",
        "/usr/share/labsphere/common/VERSION": "{version}\n",
        "/usr/bin/labsphere-version": "#!/bin/sh\nexec cat /etc/labsphere/version\n",
    }, ()),
    "labsphere-manager": ("LabSphere management plane", True, {
        "/usr/share/labsphere/manager/VERSION": "{version}\n",
        "/etc/labsphere/manager.conf": "# LabSphere manager\nlisten_port=8443\n",
    }, ("/etc/labsphere/manager.conf",)),
    "labsphere-node": ("LabSphere compute node agent", True, {
        "/usr/share/labsphere/node/VERSION": "{version}\n",
        "/etc/labsphere/node.conf": "# LabSphere node agent\nmanager_vip=auto\n",
    }, ("/etc/labsphere/node.conf",)),
}
ROLE_PACKAGES = {"controller": ("labsphere-common", "labsphere-manager"),
                 "compute": ("labsphere-common", "labsphere-node")}
BUNDLE_ROLE = {"management": "controller", "compute": "compute"}

SPEC = """\
Name: {name}
Epoch: {epoch}
Version: {version}
Release: {release}
Summary: {summary}
License: Proprietary
BuildArch: noarch
AutoReqProv: no
{requires}
%description
{summary} (clusterops.upgrade test lab).

%install
{install}

%files
{files}
"""


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def ssh_client_key() -> Path:
    key = config.CACHE / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "clusterops-lab", "-f", key])
    return key


def pcsd_cert(node: str) -> tuple:
    """A self-signed certificate + key for the node's pcsd, made once and
    cached (pcsd would otherwise spend CPU making one at every first boot)."""
    d = config.CACHE / "pcsd"
    crt, key = d / f"{node}.crt", d / f"{node}.key"
    if not (crt.exists() and key.exists()):
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        pkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(pkey.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .sign(pkey, hashes.SHA256()))
        key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
        key.chmod(0o600)
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt.read_bytes(), key.read_bytes()


def _spec(name, epoch, version, release, summary, requires, files, config_files):
    install, listing = [], []
    for path, content in sorted(files.items()):
        body = content.format(version=version)
        mode = "0755" if body.startswith("#!") else "0644"
        install.append(f"mkdir -p %{{buildroot}}{Path(path).parent}")
        install.append(f"cat > %{{buildroot}}{path} <<'LABEOF'\n{body}LABEOF")
        install.append(f"chmod {mode} %{{buildroot}}{path}")
        listing.append(("%config(noreplace) " if path in config_files else "") + path)
    epoch_line = epoch if epoch != "0" else "0"
    spec = SPEC.format(name=name, epoch=epoch_line, version=version, release=release,
                       summary=summary, requires=requires, install="\n".join(install),
                       files="\n".join(listing))
    if epoch == "0":
        spec = spec.replace("Epoch: 0\n", "")
    return spec


def _all_specs() -> dict:
    """filename stem -> spec text for every RPM the lab uses."""
    specs = {}
    for version in (config.FROM_VERSION, config.TO_VERSION):
        for name, (summary, needs_common, files, cfg) in PACKAGES.items():
            req = f"Requires: labsphere-common = {version}-{RELEASE}\n" if needs_common else ""
            specs[f"{name}-{version}-{RELEASE}"] = _spec(name, "0", version, RELEASE, summary, req,
                                                         files, cfg)
    for name, epoch, version, release in (TOOLS, TOOLS_CHANGED, EXTRA):
        files = {f"/usr/share/{name}/VERSION": f"{version}-{release}\n"}
        specs[f"{name}-{version}-{release}"] = _spec(name, epoch, version, release,
                                                     f"{name} utilities", "", files, ())
    return specs


def rpms() -> Path:
    """Build (once) every lab RPM; returns the directory holding them."""
    specs = _all_specs()
    out = config.CACHE / "rpms" / _digest(sorted(specs.items()))
    if (out / ".complete").exists():
        return out
    # Drop RPMs built from older templates.
    for old in out.parent.glob("*"):
        if old != out and old.is_dir():
            shutil.rmtree(old)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="labrpm-", dir=config.CACHE) as top:
        for stem, spec in specs.items():
            spec_path = Path(top) / f"{stem}.spec"
            spec_path.write_text(spec)
            proc.run(["rpmbuild", "-bb", "--quiet",
                      "--define", f"_topdir {top}",
                      "--define", f"_rpmdir {out}",
                      "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                      "--define", "__os_install_post %{nil}",
                      "--define", "_source_payload w9.gzdio",
                      "--define", "_binary_payload w9.gzdio",
                      spec_path])
    (out / ".complete").write_text("")
    return out


def rpm_file(rpm_dir: Path, name: str, version: str, release: str = RELEASE) -> Path:
    p = rpm_dir / f"{name}-{version}-{release}.noarch.rpm"
    if not p.exists():
        raise SystemExit(f"{p}: missing from the RPM cache; remove {rpm_dir} and run `labctl up`")
    return p


def nevra(name: str, epoch: str, version: str, release: str) -> str:
    """rpm's %{NEVRA}: the epoch appears only when it is not 0."""
    ep = f"{epoch}:" if epoch not in ("", "0") else ""
    return f"{name}-{ep}{version}-{release}.noarch"


def node_rpms(rpm_dir: Path, role: str, version: str = config.FROM_VERSION) -> list:
    """The RPM files a node of `role` has installed at `version`."""
    files = [rpm_file(rpm_dir, n, version) for n in ROLE_PACKAGES[role]]
    files.append(rpm_file(rpm_dir, TOOLS[0], TOOLS[2], TOOLS[3]))
    return files


def baseline(role: str, version: str = config.FROM_VERSION) -> list:
    lines = [nevra(n, "0", version, RELEASE) for n in ROLE_PACKAGES[role]]
    lines.append(nevra(*TOOLS))
    return sorted(lines)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(path: Path, members: dict) -> None:
    """Deterministic zip: fixed timestamps, sorted members."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2023, 9, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, members[name])


def bundles(rpm_dir: Path) -> Path:
    """The vendor bundles; returns their directory (upgrade_bundle_dir)."""
    out = config.CACHE / "bundles"
    stamp = out / ".inputs"
    key = _digest(rpm_dir.name, config.BUNDLES, RELEASE, "bundle-v1")
    if stamp.exists() and stamp.read_text() == key:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sums = []
    for kind, zip_name in config.BUNDLES.items():
        role = BUNDLE_ROLE[kind]
        members = {}
        for name in ROLE_PACKAGES[role]:
            f = rpm_file(rpm_dir, name, config.TO_VERSION)
            members[f"rpms/{f.name}"] = f.read_bytes()
        members["baseline.txt"] = ("\n".join(baseline(role)) + "\n").encode()
        members["bundle.info"] = textwrap.dedent(f"""\
            product=labsphere
            kind={kind}
            from_version={config.FROM_VERSION}
            to_version={config.TO_VERSION}
            """).encode()
        members["SHA256SUMS"] = "".join(
            f"{_sha256(data)}  {name}\n" for name, data in sorted(members.items())).encode()
        _zip(out / zip_name, members)
        sums.append(f"{_sha256((out / zip_name).read_bytes())}  {zip_name}\n")
    (out / "SHA256SUMS").write_text("".join(sums))
    stamp.write_text(key)
    return out


SERVE = '''\
#!/usr/bin/python3
"""LabSphere {service} (lab stand-in): serves its version over HTTP.

GET /        {{"service": ..., "version": ..., "port": ...}}
GET /health  200 when the service it depends on answers too, else 503.
"""
import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "labsphere-{service}"
HERE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
VERSION = open(os.path.join(HERE, "VERSION")).read().strip()


def conf():
    values = {{}}
    with open("/etc/labsphere/{service}.conf") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    return values


CONF = conf()
PORT = int(CONF["port"])
UPSTREAM = CONF.get("upstream", "")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/":
            self._send(200, {{"service": SERVICE, "version": VERSION, "port": PORT}})
        elif self.path == "/health":
            ok = True
            if UPSTREAM:
                try:
                    with urllib.request.urlopen(UPSTREAM + "/health", timeout=2) as r:
                        ok = r.status == 200
                except OSError:
                    ok = False
            self._send(200 if ok else 503, {{"service": SERVICE, "status": "UP" if ok else "DOWN"}})
        else:
            self._send(404, {{"error": "not found"}})


if __name__ == "__main__":
    sys.stdout.write(f"{{SERVICE}} {{VERSION}} listening on {{PORT}}\\n")
    sys.stdout.flush()
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
'''

UNIT = """\
[Unit]
Description=LabSphere {service} service
{deps}After=network.target{after}

[Service]
ExecStart=/opt/labsphere/{service}/current/bin/serve
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def service_files(version: str) -> dict:
    """relative path -> (mode, bytes) of labsphere-services-<version>.tar.gz."""
    files = {}
    prev = None
    top = f"labsphere-services-{version}"
    for service, _port in config.SERVICES:
        deps = f"Requires=labsphere-{prev}.service\n" if prev else ""
        after = f" labsphere-{prev}.service" if prev else ""
        files[f"{top}/{service}/VERSION"] = (0o644, f"{version}\n".encode())
        files[f"{top}/{service}/bin/serve"] = (0o755, SERVE.format(service=service).encode())
        files[f"{top}/{service}/systemd/labsphere-{service}.service"] = (
            0o644, UNIT.format(service=service, deps=deps, after=after).encode())
        prev = service
    files[f"{top}/services.txt"] = (0o644, "".join(
        f"{s} {p}\n" for s, p in config.SERVICES).encode())
    return files


def service_conf(service: str) -> str:
    ports = dict(config.SERVICES)
    names = [s for s, _port in config.SERVICES]
    i = names.index(service)
    upstream = f"upstream=http://127.0.0.1:{ports[names[i - 1]]}\n" if i else ""
    return f"# LabSphere {service}: kept across upgrades\nport={ports[service]}\n{upstream}"


def service_tarballs() -> Path:
    out = config.CACHE / "services"
    key = _digest(service_files(config.FROM_VERSION), service_files(config.TO_VERSION))
    stamp = out / ".inputs"
    if stamp.exists() and stamp.read_text() == key:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for version in (config.FROM_VERSION, config.TO_VERSION):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
            for rel, (mode, data) in sorted(service_files(version).items()):
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), mode, 1693526400
                tar.addfile(info, io.BytesIO(data))
        (out / f"labsphere-services-{version}.tar.gz").write_bytes(buf.getvalue())
    stamp.write_text(key)
    return out


def ensure_all() -> dict:
    rpm_dir = rpms()
    return {"rpm_dir": str(rpm_dir), "bundle_dir": str(bundles(rpm_dir)),
            "services_dir": str(service_tarballs()), "ssh_key": str(ssh_client_key())}


if __name__ == "__main__":
    print(json.dumps(ensure_all(), indent=2))
