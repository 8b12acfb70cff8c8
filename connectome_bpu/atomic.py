"""Atomic file writing: every artifact appears complete under its final name or not at all.

Snakemake deletes declared outputs of a failed job, but a crash (OOM kill, power loss, Ctrl-C
of a non-Snakemake caller) can still leave a half-written file that a later run would trust.
Writing to a temporary sibling and renaming with ``os.replace`` (atomic on POSIX within one
filesystem) rules that out.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:  # every rule imports this module; the ones that write no table or sparse matrix skip both
    import pandas as pd
    import scipy.sparse as sp


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the final suffix of ``path`` so writers that insist on an extension
    (``np.savez`` appends ``.npz``) keep the temporary name unchanged.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())   # mkstemp creates 0600; artifacts are shared files
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    """The reading counterpart of :func:`write_json` (UTF-8), so every module parses JSON the same way."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON with indent 2 and sorted keys (the original benchmark's layout), numpy scalars converted."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def save_sparse(path: str | os.PathLike, matrix: sp.spmatrix | sp.sparray) -> None:
    """``scipy.sparse.save_npz`` (compressed) written atomically; the original benchmark's file format."""
    import scipy.sparse as sp

    with atomic_path(path, suffix=".npz") as tmp:
        sp.save_npz(tmp, sp.csr_matrix(matrix), compressed=True)
