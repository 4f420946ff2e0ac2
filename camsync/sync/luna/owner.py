"""This process's name on leases and history lines, and the proof that another one of this host is gone."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from pathlib import Path

_TOKEN = uuid.uuid4().hex[:8]


def namespace_id() -> str:
    """A short id of this boot and pid namespace ("" when unknown): two containers sharing a host name differ."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        pid_namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return hashlib.sha256(f"{boot}:{pid_namespace}".encode()).hexdigest()[:12]


def owner_name() -> str:
    """This process's name on leases and history lines: host:pid:token:namespace. The token tells apart two
    processes with the same host name and pid; the namespace (boot and pid namespace) tells whether a pid can be
    checked from here at all, so that only a provably dead process of this namespace loses its claims."""
    namespace = namespace_id()
    return f"{socket.gethostname()}:{os.getpid()}:{_TOKEN}" + (f":{namespace}" if namespace else "")
