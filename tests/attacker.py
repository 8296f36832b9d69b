"""What an attacker (or a careless person) with write access to the repository can commit:
arbitrary bytes at any path, through git plumbing, with none of evledger's checks."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def _git(root: Path, *args: str, env: dict[str, str] | None = None, input_: bytes = b"") -> str:
    proc = subprocess.run(
        ["git", *args], cwd=root, input=input_, capture_output=True, check=True, env=env
    )
    return proc.stdout.decode().strip()


def commit_raw(root: Path, files: dict[str, bytes | None], message: str = "tamper") -> str:
    """Commit `files` (path -> bytes, None deletes) on top of HEAD; move the branch and
    carry the real index along (`read-tree -m -u`), as a person's commit would."""
    old = _git(root, "rev-parse", "HEAD")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(root, "read-tree", old, env=env)
        for path, data in files.items():
            if data is None:
                _git(root, "update-index", "--force-remove", "--", path, env=env)
                continue
            blob = _git(root, "hash-object", "-w", "--stdin", input_=data)
            _git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = _git(root, "write-tree", env=env)
    new = _git(root, "commit-tree", tree, "-p", old, "-m", message)
    _git(root, "update-ref", "HEAD", new, old)
    _git(root, "read-tree", "-m", "-u", old, new)
    return new
