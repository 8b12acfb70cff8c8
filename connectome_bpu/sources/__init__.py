"""Substrate sources: the embedded ``synthetic_cx`` generator, ``local`` exports, neuPrint and Zenodo.

Each source ends in the same place: ``neurons.csv``, ``roi_counts.csv``,
``connections.csv`` in the export schema (docs/method.md#exports) plus a ``provenance.json`` saying where the
tables came from. :func:`write_export_set` is that common last step.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path, write_csv, write_json

EXPORT_FILES = ("neurons.csv", "roi_counts.csv", "connections.csv")
PROVENANCE_FILE = "provenance.json"


def write_export_set(out_dir: str | Path, *, neurons: pd.DataFrame, roi_counts: pd.DataFrame,
                     connections: pd.DataFrame, provenance: dict) -> None:
    """Write the three tables and ``provenance.json`` so that they appear together or not at all.

    Every file is first written completely under a temporary name; only when all four succeeded are they
    renamed onto their final names. A failure (disk full, a bad value in a frame) therefore leaves no
    table of the new set behind, so nothing downstream can pair a fresh neurons.csv with a stale
    connections.csv.
    """
    out_dir = Path(out_dir)
    tables = dict(zip(EXPORT_FILES, (neurons, roi_counts, connections)))
    with ExitStack() as stack:
        for name, frame in tables.items():
            write_csv(stack.enter_context(atomic_path(out_dir / name)), frame)
        write_json(stack.enter_context(atomic_path(out_dir / PROVENANCE_FILE)), provenance)


def promote_cached_exports(cache_dir: str | Path, out_dir: str | Path) -> dict:
    """Copy a downloaded export set from the shared cache (``resources/``) into one run's exports.

    The cache is shared by every run that uses the same source and release, so it is validated again
    here (a damaged cache must not reach a graph) and its provenance is carried over with the cache
    location added, so a run's exports still say which server or record they came from.
    """
    import json
    import shutil

    from ..exports import load_exports
    from ..provenance import utc_now

    cache_dir, out_dir = Path(cache_dir), Path(out_dir)
    exports = load_exports(cache_dir)
    provenance = json.loads((cache_dir / PROVENANCE_FILE).read_text(encoding="utf-8"))
    provenance.update(cache_dir=str(cache_dir.resolve()), promoted=utc_now())
    with ExitStack() as stack:
        for name in EXPORT_FILES:
            shutil.copyfile(cache_dir / name, stack.enter_context(atomic_path(out_dir / name)))
        write_json(stack.enter_context(atomic_path(out_dir / PROVENANCE_FILE)), provenance)
    return {"neurons": len(exports.neurons), "edges": len(exports.connections), "cache_dir": str(cache_dir)}
