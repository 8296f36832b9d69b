"""A recorder of files and folders the tests open outside the places they may read.

Installed once per test process with `sys.addaudithook` (hooks cannot be removed, so the
recorder has an on/off switch). It watches the `open`, `os.listdir` and `os.scandir` audit
events and keeps every path outside the allowed roots: the checkout (and its git folders),
the temp folders, the interpreter (stdlib, venv, site-packages) and the kernel's /dev, /proc
and /sys. Paths are compared after `os.path.realpath`, so a symlink does not smuggle a read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
WATCHED_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})
KERNEL_ROOTS = ("/dev", "/proc", "/sys")
#: matplotlib's font manager lists and opens the machine's font folders (its hard-coded
#: X11FontDirectories) once, when it builds its font cache in the tests' empty HOME; the chart
#: pins DejaVu Sans and writes text as text, and no assertion depends on these files
FONT_ROOTS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/usr/X11R6/lib/X11/fonts",
    "/usr/X11/lib/X11/fonts",
    "/usr/lib/openoffice/share/fonts",
)


def checkout_git_dirs(root: Path = CHECKOUT) -> list[str]:
    """The checkout's git dir and common dir (a worktree's live outside the checkout)."""
    proc = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--absolute-git-dir", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return []
    return [str((root / line).resolve()) for line in proc.stdout.split() if line]


def interpreter_roots() -> list[str]:
    """Where Python itself and the installed packages live."""
    paths = sysconfig.get_paths()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))
    return sorted(roots)


def default_roots(extra: list[str] | None = None) -> list[str]:
    """Checkout, its git dirs, temp, the interpreter, the kernel's pseudo files, fonts."""
    roots = [str(CHECKOUT), *checkout_git_dirs(), tempfile.gettempdir(), *interpreter_roots()]
    return [*roots, *KERNEL_ROOTS, *FONT_ROOTS, *(extra or [])]


@dataclass
class OpenRecorder:
    """Keeps (test id, path) for every watched event on a path outside `roots`."""

    roots: list[str]
    active: bool = False
    current: str = "(collection)"
    outside: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roots = sorted({os.path.realpath(r) for r in self.roots})
        self._busy = threading.local()

    def is_allowed(self, path: str | os.PathLike[str]) -> bool:
        """Whether `path` lies under one of the roots."""
        real = os.path.realpath(os.fspath(path))
        return any(real == r or real.startswith(r.rstrip("/") + "/") for r in self.roots)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        """The audit hook: never raises, records only."""
        if not self.active or event not in WATCHED_EVENTS or not args:
            return
        target = args[0]
        if isinstance(target, bytes):
            target = os.fsdecode(target)
        if target is None and event != "open":
            target = "."  # os.listdir() / os.scandir() of the working directory
        if not isinstance(target, str):  # a file descriptor: no new path is opened
            return
        if getattr(self._busy, "on", False):  # realpath's own calls
            return
        self._busy.on = True
        try:
            if not self.is_allowed(target):
                self.outside.append((self.current, os.path.abspath(target)))
        except Exception:
            pass
        finally:
            self._busy.on = False

    def install(self) -> OpenRecorder:
        """Add the audit hook (for the life of the process) and switch recording on."""
        sys.addaudithook(self.hook)
        self.active = True
        return self

    def since(self, mark: int) -> list[str]:
        """Paths recorded after position `mark` of `outside`."""
        return [path for _, path in self.outside[mark:]]


#: the test process's recorder (tests/conftest.py installs it before collection)
READS = OpenRecorder(default_roots())
