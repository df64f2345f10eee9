"""The one place where labctl runs commands: argv lists, LANG=C, podman
always pointed at the lab's own containers.conf."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from . import config

VERBOSE = bool(os.environ.get("LAB_VERBOSE"))


class CommandError(RuntimeError):
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        shown = " ".join(str(a) for a in argv)
        detail = (err or out or "").strip().splitlines()[-5:]
        super().__init__(f"command failed (rc={rc}): {shown}\n  " + "\n  ".join(detail))


def env() -> dict:
    e = dict(os.environ)
    e.update({"LANG": "C", "LC_ALL": "C", "CONTAINERS_CONF": str(config.CONTAINERS_CONF)})
    return e


def run(argv, check=True, input=None, timeout=None, text=True, stdout=None):
    """Run argv; return CompletedProcess (stdout/stderr captured)."""
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    if VERBOSE:
        print("+ " + " ".join(argv), file=sys.stderr)
    cp = subprocess.run(argv, input=input, stdout=stdout or subprocess.PIPE,
                        stderr=subprocess.PIPE, env=env(), timeout=timeout, text=text,
                        check=False)
    if VERBOSE:
        print(f"  ({time.monotonic() - t0:.2f}s rc={cp.returncode})", file=sys.stderr)
    if check and cp.returncode != 0:
        raise CommandError(argv, cp.returncode, cp.stdout if text else "", cp.stderr)
    return cp


def podman(*args, **kw):
    return run(["podman", *args], **kw)


def node_exec(container: str, argv, check=True, input=None, timeout=120):
    """Run argv inside a lab node (podman exec)."""
    extra = ["-i"] if input is not None else []
    return podman("exec", *extra, container, *argv, check=check, input=input, timeout=timeout)


def log(msg: str) -> None:
    print(f"labctl: {msg}", file=sys.stderr, flush=True)
