"""Rules of ``rules/acquire.smk``: one substrate's raw exports (neurons, ROI counts, connections).

Every source writes the same export schema plus ``provenance.json``; downloads land in the shared
``resources/`` cache and a run's exports are a validated copy of them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..atomic import read_json
from ..exports import load_exports
from ..size_match import size_match_exports
from ..sources import PROVENANCE_FILE, promote_cached_exports, write_export_set
from ..sources.download import ExpectedFile, fetch
from ..sources.flywire import file_url, write_flywire_exports
from ..sources.local import import_local_exports
from ..sources.neuprint_source import fetch_neuprint_exports, resolve_token
from ..sources.synthetic_cx import write_synthetic_cx
from ..sources.synthetic_mb import write_synthetic_mb
from ..sources.synthetic_optic import write_synthetic_optic

LOG = logging.getLogger(__name__)


def _exports_dir(smk: Any) -> Path:
    return Path(smk.output.provenance).parent


def synthetic_cx(smk: Any) -> None:
    """The embedded CX-like substrate, generated from its settings (``synthetic_cx`` in config)."""
    summary = write_synthetic_cx(_exports_dir(smk), **smk.params.settings)
    LOG.info("exports written to %s: %s", _exports_dir(smk), summary)


def synthetic_mb(smk: Any) -> None:
    """The embedded mushroom-body-like substrate, generated from its settings (``synthetic_mb`` in config)."""
    summary = write_synthetic_mb(_exports_dir(smk), **smk.params.settings)
    LOG.info("exports written to %s: %s", _exports_dir(smk), summary)


def synthetic_optic(smk: Any) -> None:
    """The embedded optic-lobe-like motion circuit, generated from its settings (``synthetic_optic`` in config)."""
    summary = write_synthetic_optic(_exports_dir(smk), **smk.params.settings)
    LOG.info("exports written to %s: %s", _exports_dir(smk), summary)


def size_matched_exports(smk: Any) -> None:
    """The source substrate's exports cut or expanded to the target substrate's neuron and edge count."""
    source_dir = Path(smk.input.source[0]).parent
    target = read_json(smk.input.target)
    neurons, roi_counts, connections, record = size_match_exports(
        load_exports(source_dir), target_neurons=int(target["N"]), target_edges=int(target["unsigned_edge_count"]),
        seed=int(smk.params.seed))
    provenance = read_json(source_dir / PROVENANCE_FILE)
    provenance["size_match"] = {"source_exports": str(source_dir), "target_matrix_info": str(smk.input.target),
                                "seed": int(smk.params.seed), **asdict(record)}
    write_export_set(_exports_dir(smk), neurons=neurons, roi_counts=roi_counts, connections=connections,
                     provenance=provenance)
    LOG.info("size-matched exports written to %s: %s", _exports_dir(smk), record)


def local_exports(smk: Any) -> None:
    """A user's export directory, validated strictly and copied into the run."""
    summary = import_local_exports(smk.params.source_dir, _exports_dir(smk), primary_rois=smk.params.primary_rois)
    LOG.info("exports written to %s: %s", _exports_dir(smk), summary)


def neuprint_download(smk: Any) -> None:
    """One region from a neuPrint server into the shared cache (the token comes from the environment)."""
    summary = fetch_neuprint_exports(_exports_dir(smk), connectome=smk.params.connectome, server=smk.params.server,
                                     dataset=smk.params.dataset, rois=list(smk.params.rois), token=resolve_token())
    LOG.info("neuPrint cache written to %s: %s", _exports_dir(smk), summary)


def flywire_file(smk: Any) -> None:
    """One release file into the shared cache, verified against its pinned size and MD5.

    The URL and retry policy are read from config rather than params: a mirror is not a new file.
    """
    dest = Path(smk.output[0])
    expected = ExpectedFile(dest.name, smk.params.expected["bytes"], smk.params.expected["md5"])
    download = smk.config["flywire"]["download"]
    fetch(file_url(smk.config["flywire"]["base_url"], dest.name), dest, expected, retries=download["retries"],
          backoff_seconds=download["backoff_seconds"], timeout=download["timeout_seconds"])
    LOG.info("%s verified (%d bytes, md5 %s)", dest, expected.size, expected.md5)


def cached_exports(smk: Any) -> None:
    """A run's exports from the shared download cache (neuPrint copy or FlyWire normalisation)."""
    out_dir = _exports_dir(smk)
    if smk.params.source == "neuprint":
        summary = promote_cached_exports(Path(smk.input[0]).parent, out_dir)
    else:
        paths = {Path(p).name: Path(p) for p in smk.input}
        download = smk.config["flywire"]["download"]   # a corrupt cached file is fetched again with these
        summary = write_flywire_exports(out_dir, smk.params.connectome, paths, release=smk.params.release,
                                        base_url=smk.config["flywire"]["base_url"],
                                        nt_confidence=smk.params.nt_confidence,
                                        overrides=smk.config["flywire"]["files"],
                                        optic_lobe=dict(smk.params.optic_lobe) or None,
                                        fetch_kwargs={"retries": download["retries"],
                                                      "backoff_seconds": download["backoff_seconds"],
                                                      "timeout": download["timeout_seconds"]})
    LOG.info("exports written to %s: %s", out_dir, summary)
