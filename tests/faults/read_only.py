"""Run a command with a folder it cannot write — really, even as root (`chmod` does not stop root).

Mechanisms, best first, each probed before use:
1. `unshare -m`: a private mount namespace where the folder is a read-only bind mount of itself;
2. `setpriv` to the `nobody` user (needs root), with the folder and files owned by root;
3. plain `chmod` when not running as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BIND_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@dataclass(frozen=True, slots=True)
class ReadOnly:
    """How to run a command that sees `folder` read-only."""

    kind: str
    folder: Path

    def command(self, argv: Sequence[str]) -> list[str]:
        if self.kind == "mount":
            return ["unshare", "-m", "sh", "-c", BIND_READ_ONLY, str(self.folder), *argv]
        if self.kind == "nobody":
            return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
        return list(argv)

    def seal(self) -> None:
        """Make the folder's current files readable, not writable, by the command's user."""
        if self.kind == "nobody":
            self.folder.chmod(0o755)
            for entry in self.folder.iterdir():
                entry.chmod(0o644)
        elif self.kind == "chmod":
            for entry in self.folder.iterdir():
                entry.chmod(0o444)
            self.folder.chmod(0o555)

    def unseal(self) -> None:
        if self.kind == "chmod":
            self.folder.chmod(0o755)
            for entry in self.folder.iterdir():
                entry.chmod(0o644)


def _cannot_write(mechanism: ReadOnly) -> bool:
    probe = mechanism.folder / "probe"
    probe.write_text("x")
    mechanism.seal()
    try:
        done = subprocess.run(
            mechanism.command(["sh", "-c", f'cat "{probe}" && touch "{probe}" "{probe}.new"']),
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    finally:
        mechanism.unseal()
    readable = done.stdout.startswith("x")
    wrote = (mechanism.folder / "probe.new").exists()
    probe.unlink()
    (mechanism.folder / "probe.new").unlink(missing_ok=True)
    return readable and done.returncode != 0 and not wrote


def read_only_folder(folder: Path) -> ReadOnly | None:
    """The first mechanism that really makes `folder` read-only here, or None."""
    folder.mkdir(parents=True, exist_ok=True)
    candidates = []
    if shutil.which("unshare") and shutil.which("mount"):
        candidates.append(ReadOnly("mount", folder))
    if os.geteuid() == 0 and shutil.which("setpriv"):
        candidates.append(ReadOnly("nobody", folder))
    if os.geteuid() != 0:
        candidates.append(ReadOnly("chmod", folder))
    for mechanism in candidates:
        if _cannot_write(mechanism):
            return mechanism
    return None
