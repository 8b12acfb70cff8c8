"""Small provenance helpers shared by every stage: file checksums, the code version and a timestamp.

The reference records sha256 + size of its artefacts only after the fact and verifies nothing; here every
imported or generated substrate states where its bytes came from, so a result can be traced to its inputs.
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timezone
from pathlib import Path

_CHUNK = 1 << 20  # hash in 1 MiB reads: a 600 MB connections.csv never has to fit in memory


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict:
    """``{path, bytes, sha256}`` of one file, the path made absolute so the record is unambiguous."""
    path = Path(path).resolve()
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def git_commit(repo_dir: str | Path) -> str | None:
    """The commit checked out in ``repo_dir``, or None when it is not a git checkout (or git is absent).

    Provenance is best effort: a missing commit must never stop a run, so every failure maps to None.
    """
    try:
        result = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit or None


def utc_now() -> str:
    """Current UTC time, ISO 8601 to the second (``2025-01-31T12:00:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
