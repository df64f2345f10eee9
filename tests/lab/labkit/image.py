"""The lab node image: mmdebstrap -> podman import, tagged by a hash of its recipe.

The recipe is everything under tests/lab/image/ (package list, customize
hook, files baked in) plus the Debian suite and RECIPE_VERSION. When any of
it changes, the tag changes and `labctl up` builds a new image.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

from . import config, proc

RECIPE_VERSION = "1"  # bump when the build steps below change
REPO = "localhost/{prefix}-node"
LABEL = "io.clusterops.lab.recipe"


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit(f"{os_release}: no VERSION_CODENAME; cannot tell which Debian suite to build")


def _parse_deb822(text: str) -> list:
    """Stanzas of a deb822 .sources file as dicts (keys lower-cased)."""
    stanzas, cur, key = [], {}, None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
            continue
        if raw[0] in " \t" and key:
            cur[key] += " " + raw.strip()
            continue
        if ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            cur[key] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def apt_sources(suite: str, etc_apt: Path = Path("/etc/apt")) -> list:
    """The machine's own Debian mirror lines for `suite`, as one-line `deb` entries.

    Reads sources.list and sources.list.d/*.list|*.sources; keeps `deb` entries
    whose suite is `suite` or `suite-*` (so other vendors' repositories, with
    their own suite names, are left out).
    """
    lines = []

    def wanted(s):
        return s == suite or s.startswith(suite + "-")

    files = []
    if (etc_apt / "sources.list").is_file():
        files.append(etc_apt / "sources.list")
    d = etc_apt / "sources.list.d"
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        text = path.read_text()
        if path.suffix == ".sources":
            for st in _parse_deb822(text):
                if "deb" not in st.get("types", "").split():
                    continue
                if st.get("enabled", "yes").lower() == "no":
                    continue
                opts = f"[signed-by={st['signed-by']}] " if st.get("signed-by", "").startswith("/") else ""
                for uri in st.get("uris", "").split():
                    for s in st.get("suites", "").split():
                        if wanted(s):
                            lines.append(f"deb {opts}{uri} {s} {st.get('components', 'main')}")
        else:
            for raw in text.splitlines():
                words = raw.split("#", 1)[0].split()
                if not words or words[0] != "deb":
                    continue
                rest = words[1:]
                opts = ""
                if rest and rest[0].startswith("["):
                    opt_words = []
                    while rest:
                        w = rest.pop(0)
                        opt_words.append(w)
                        if w.endswith("]"):
                            break
                    opts = " ".join(opt_words) + " "
                if len(rest) >= 2 and wanted(rest[1]):
                    lines.append(f"deb {opts}{rest[0]} {rest[1]} {' '.join(rest[2:]) or 'main'}")
    if not lines:
        raise SystemExit(f"no Debian '{suite}' entry in {etc_apt}/sources.list(.d): "
                         "cannot tell which mirror to build the lab image from")
    return lines


def packages() -> list:
    text = (config.IMAGE_DIR / "packages.txt").read_text()
    return [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]


def recipe_hash(suite: str) -> str:
    h = hashlib.sha256()
    h.update(f"recipe={RECIPE_VERSION}\nsuite={suite}\n".encode())
    for path in sorted(p for p in config.IMAGE_DIR.rglob("*") if p.is_file()):
        rel = path.relative_to(config.IMAGE_DIR).as_posix()
        h.update(f"{rel}\0{path.stat().st_mode & 0o111:o}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def image_ref(prefix: str, suite: str) -> str:
    return f"{REPO.format(prefix=prefix)}:{recipe_hash(suite)}"


def exists(ref: str) -> bool:
    return proc.podman("image", "exists", ref, check=False).returncode == 0


def build(ref: str, suite: str) -> float:
    """Build the image `ref`; returns the seconds it took."""
    log_dir = config.CACHE / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "image-build.log"
    hook = f'"{config.IMAGE_DIR / "customize.sh"}" "$1" "{config.IMAGE_DIR / "files"}"'
    mm = ["mmdebstrap", "--variant=apt", "--mode=root", "--format=tar",
          "--include=" + ",".join(packages()),
          "--dpkgopt=path-exclude=/usr/share/doc/*",
          "--dpkgopt=path-exclude=/usr/share/man/*",
          "--dpkgopt=path-exclude=/usr/share/locale/*",
          "--dpkgopt=path-include=/usr/share/locale/locale.alias",
          "--customize-hook=" + hook,
          suite, "-", *apt_sources(suite)]
    imp = ["podman", "import",
           "--change", 'CMD ["/sbin/init"]',
           "--change", "STOPSIGNAL SIGRTMIN+3",
           "--change", f"LABEL {LABEL}={ref.rsplit(':', 1)[1]}",
           "-", ref]
    proc.log(f"building node image {ref} (mmdebstrap, ~2-3 min); log: {log_path}")
    t0 = time.monotonic()
    with open(log_path, "w") as logf:
        logf.write("$ " + " ".join(mm) + "\n$ " + " ".join(imp) + "\n")
        logf.flush()
        mmp = subprocess.Popen(mm, stdout=subprocess.PIPE, stderr=logf, env=proc.env())
        imp_p = subprocess.Popen(imp, stdin=mmp.stdout, stdout=logf, stderr=logf, env=proc.env())
        mmp.stdout.close()
        rc_imp = imp_p.wait()
        rc_mm = mmp.wait()
    if rc_mm or rc_imp:
        if exists(ref):
            proc.podman("rmi", "-f", ref, check=False)
        raise SystemExit(f"node image build failed (mmdebstrap rc={rc_mm}, podman import rc={rc_imp}); "
                         f"see {log_path}")
    return time.monotonic() - t0


def ensure(prefix: str) -> str:
    suite = host_suite()
    ref = image_ref(prefix, suite)
    if not exists(ref):
        took = build(ref, suite)
        proc.log(f"node image built in {took:.0f}s")
        prune(prefix, keep=ref)
    return ref


def prune(prefix: str, keep: str = "") -> None:
    """Remove older builds of the node image (other recipe hashes)."""
    repo = REPO.format(prefix=prefix)
    out = proc.podman("images", "--format", "{{.Repository}}:{{.Tag}}", repo, check=False).stdout
    for ref in out.split():
        if ref != keep and ref.startswith(repo + ":"):
            proc.podman("rmi", ref, check=False)
