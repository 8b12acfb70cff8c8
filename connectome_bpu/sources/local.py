"""``local``: any directory of exports in the export schema (docs/method.md#exports) becomes a substrate.

So data obtained elsewhere can be benchmarked without a source module of its own
(docs/departures.md#local-exports).

The source directory is validated completely (:func:`connectome_bpu.exports.load_exports`) before anything
is written, then normalised copies of the three tables land in the pipeline's own export directory with a
``provenance.json`` that pins the source files by sha256. Downstream stages therefore read one canonical
layout whatever tool produced the original export, and a later change to the source files is detectable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BPUInputError
from ..exports import load_exports
from ..provenance import file_record, utc_now
from . import EXPORT_FILES, write_export_set


def import_local_exports(source_dir: str | Path, out_dir: str | Path, *, primary_rois: Sequence[str]) -> dict:
    """Validate ``source_dir`` and write its normalised exports plus ``provenance.json`` into ``out_dir``.

    ``primary_rois`` are the region's ROIs for the pool rule; when ``roi_counts.csv`` exists but names none
    of them, every synapse would count as outside the region and the pools would be meaningless, so that
    is rejected here rather than discovered after training. On any error nothing is written.
    """
    rois = [str(roi) for roi in primary_rois]
    if not rois:
        raise BPUInputError("config key 'primary_rois' is empty; connectome=local needs the region's primary ROIs "
                            "(e.g. primary_rois='[EB, PB, FB, NO]')")
    source_dir = Path(source_dir).resolve()
    exports = load_exports(source_dir)
    roi_counts = exports.roi_counts
    present = set(roi_counts["roi"].unique())
    found = [roi for roi in rois if roi in present]
    if len(roi_counts) and not found:
        shown = sorted(present)[:20]
        raise BPUInputError(
            f"roi_counts.csv ({source_dir / 'roi_counts.csv'}), column 'roi': none of the primary_rois {rois} "
            f"occurs; ROIs present ({len(present)}): {shown}{' ...' if len(present) > len(shown) else ''}. "
            f"Expected primary_rois to use the export's ROI names exactly (case-sensitive)")

    neurons = exports.neurons.rename(columns={"transmitter": "predictedNt"})
    connections = exports.connections
    sources = {name: file_record(source_dir / name) for name in EXPORT_FILES if (source_dir / name).is_file()}
    summary = {
        "neurons": len(neurons),
        "roi_count_rows": len(roi_counts),
        "connections": len(connections),
        "connection_rows_in_source": int(connections.attrs["source_rows"]),
        "synapses_in_connections": float(np.sum(connections["weight"].to_numpy())),
        "primary_rois_found": found,
        "primary_rois_missing": [roi for roi in rois if roi not in present],
    }
    provenance = {
        "synthetic": False,
        "source": "local",
        "source_dir": str(source_dir),
        "source_files": sources,
        "roi_counts_present": "roi_counts.csv" in sources,
        "primary_rois": rois,
        "imported_utc": utc_now(),
        "counts": summary,
    }
    write_export_set(out_dir, neurons=neurons, roi_counts=roi_counts, connections=connections,
                     provenance=provenance)
    return summary
