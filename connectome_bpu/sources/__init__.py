"""Substrate sources that need no network: the embedded ``synthetic_cx`` generator and ``local`` exports.

Each source ends in the same place as a neuPrint/FlyWire download: ``neurons.csv``, ``roi_counts.csv``,
``connections.csv`` in the export schema (benchmark section 2) plus a ``provenance.json`` saying where the
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
