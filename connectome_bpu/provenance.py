"""Small provenance helpers shared by every stage: file checksums, the code version and a timestamp.

The original benchmark recorded sha256 + size of its artefacts only after the fact and verified nothing; here
every imported or generated substrate states where its bytes came from, so a result can be traced to its
inputs (docs/departures.md#downloads).
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timezone
from pathlib import Path

_CHUNK = 1 << 20  # hash in 1 MiB reads: a 600 MB connections.csv never has to fit in memory


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (any ``hashlib`` algorithm), streamed."""
    digest = hashlib.new(algorithm)
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    return file_digest(path, "sha256")


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


REPO_DIR = Path(__file__).resolve().parent.parent   # the checkout whose commit produced a result


def package_versions(names: tuple[str, ...] = ("numpy", "scipy", "pandas", "pyarrow", "torch", "snakemake",
                                                 "matplotlib", "neuprint-python")) -> dict[str, str | None]:
    """Installed versions read from package metadata (no import, so torch need not load here)."""
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_manifest(files: list[str | Path], *, config: dict, repo_dir: str | Path = REPO_DIR) -> dict:
    """Everything needed to say what produced a run: code version, resolved config, artifact checksums."""
    import platform
    import sys

    records = [dict(file_record(p), path=str(p)) for p in sorted(map(str, files))]
    return {
        "created": utc_now(),
        "git_commit": git_commit(repo_dir),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "config": config,
        "files": records,
    }
