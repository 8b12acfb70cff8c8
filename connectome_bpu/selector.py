"""Pick the connectome substrate for a task, with the reasons, before anything is trained.

Each candidate is scored on how many of the task's tags it supports, how well the task's channels map
onto its ports, whether a result on this task family already exists, and whether it is available here.
The decision is written as JSON and Markdown, so a run's choice of substrate and of matched controls is
explicit and reviewable rather than implied by a config value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .atomic import write_json, write_text
from .channels import (
    DEFAULT_HEADING_BINS,
    REGION_PORTS,
    AdapterMapping,
    adapter_mapping,
    pool_count_map,
    task_channels,
)
from .errors import BPUInputError
from .substrates import KINDS
from .task_knobs import is_integer

# Weights of the total score; an unavailable candidate keeps a quarter of its total, so the ranking still
# shows how well it would have fitted.
SEMANTIC_WEIGHT, PORT_WEIGHT, EVIDENCE_WEIGHT, AVAILABILITY_WEIGHT = 0.48, 0.32, 0.12, 0.08
UNAVAILABLE_FACTOR = 0.25


@dataclass(frozen=True)
class Candidate:
    """A substrate the selector may choose, with what a run on it needs (K, controls, recurrent modes).

    ``evidence_tags`` are the tasks with a prior published result on this substrate.
    """

    connectome: str
    region_name: str
    source: str
    task_tags: tuple[str, ...]
    primary_rois: tuple[str, ...]
    default_k: int
    default_controls: tuple[str, ...]
    train_recurrent_modes: tuple[str, ...]
    evidence_tags: tuple[str, ...]
    notes: str

    def to_dict(self) -> dict[str, Any]:
        return {"connectome": self.connectome, "region_name": self.region_name, "source": self.source,
                "task_tags": list(self.task_tags), "primary_rois": list(self.primary_rois),
                "default_k": self.default_k, "default_controls": list(self.default_controls),
                "train_recurrent_modes": list(self.train_recurrent_modes),
                "evidence_tags": list(self.evidence_tags), "notes": self.notes}


def _candidate(connectome: str, source: str, default_controls: tuple[str, ...], modes: tuple[str, ...],
               evidence_tags: tuple[str, ...], notes: str) -> Candidate:
    # One tag list per substrate: a candidate's task tags are its region's supported tags, so the semantic
    # score and the port score can never disagree about what a substrate does. Its ROIs are the ones the
    # pipeline extracts, so the selection describes the graph that is actually built. K is 3 for every
    # substrate: the smallest depth the graph preparation allows.
    ports = REGION_PORTS[connectome]
    return Candidate(connectome, ports.region_name, source, ports.supported_tags, KINDS[connectome].primary_rois,
                     3, default_controls, modes, evidence_tags, notes)


NEUPRINT = "neuPrint hemibrain v1.2.1"
FLYWIRE = "FlyWire release 783"
EMBEDDED = "embedded synthetic generator (this project)"
CX_CONTROLS = ("cx_bpu", "random", "degree_shuffle", "weight_shuffle", "no_recurrence")
MB_CONTROLS = ("connectome_bpu", "random_sparse", "degree_shuffle", "weight_shuffle")
OPTIC_CONTROLS = ("connectome_bpu", "random_weight_topology", "random", "random_sparse", "weight_shuffle")
# Names the original tooling gave the controls that stand for ours on the same substrate (others are equal).
ORIGINAL_MODEL_NAMES = {
    "hemibrain_mushroom_body": {"connectome_bpu": "hemibrain_seeded", "degree_shuffle": "degree_preserving_random"},
    "flywire_optic_lobe": {"connectome_bpu": "optic_lobe_seeded", "random": "shuffled_topology"},
}

# The five real connectomes; LIBRARY adds the embedded substrates.
REAL_LIBRARY = (
    _candidate("hemibrain_cx", NEUPRINT, CX_CONTROLS, ("frozen", "observed"),
               ("cartesian", "cx_polar_bump", "cx_landmark_bump"),
               "Central complex: ring attractor and steering circuits, the substrate of the path-integration tasks."),
    _candidate("hemibrain_mushroom_body", NEUPRINT, MB_CONTROLS, ("observed",), ("mb_associative_learning",),
               "Mushroom body: sparse odour coding and valence learning."),
    _candidate("flywire_mushroom_body", FLYWIRE, ("connectome_bpu", "weight_shuffle", "random"),
               ("frozen", "observed"), ("mb_associative_learning",),
               "Mushroom body of the whole-brain FlyWire reconstruction, both hemispheres."),
    _candidate("flywire_optic_lobe", f"{FLYWIRE} optic-lobe ROI export", OPTIC_CONTROLS, ("observed",),
               ("optic_flow",), "Optic lobes: retinotopic lattice and motion-sensitive pathways."),
    _candidate("flywire_whole", FLYWIRE, ("connectome_bpu", "random", "weight_shuffle"), ("frozen",),
               ("embodied_foraging",), "Whole brain with heuristic pools: a broad substrate comparison."),
)
# Embedded substrates have no prior published result, so with no allow-list a real connectome wins.
LIBRARY = REAL_LIBRARY + (
    _candidate("synthetic_cx", EMBEDDED, CX_CONTROLS, ("frozen", "observed"), (),
               "Procedurally generated CX-like ring attractor, for runs without a downloaded connectome."),
    _candidate("synthetic_mb", EMBEDDED, MB_CONTROLS, ("observed",), (),
               "Procedurally generated mushroom-body-like circuit, for runs without a downloaded connectome."),
    _candidate("synthetic_optic", EMBEDDED, OPTIC_CONTROLS, ("observed",), (),
               "Procedurally generated optic-lobe-like motion circuit, for runs without a downloaded connectome."),
)


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's place in a ranking: the total and each of its four parts, with reasons."""

    candidate: Candidate
    total_score: float
    semantic_score: float
    port_score: float
    evidence_score: float
    availability_score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate.to_dict(), "total_score": self.total_score,
                "semantic_score": self.semantic_score, "port_score": self.port_score,
                "evidence_score": self.evidence_score, "availability_score": self.availability_score,
                "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Selection:
    """The chosen substrate for a task, how the task is wired into it, and the full ranking behind it."""

    task_name: str
    selected: Candidate
    mapping: AdapterMapping
    expected_k: int
    matched_controls: tuple[str, ...]
    train_recurrent_modes: tuple[str, ...]
    ranking: tuple[CandidateScore, ...]
    decision_reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"task_name": self.task_name, "selected": self.selected.to_dict(), "mapping": self.mapping.to_dict(),
                "expected_k": self.expected_k, "matched_controls": list(self.matched_controls),
                "train_recurrent_modes": list(self.train_recurrent_modes),
                "ranking": [score.to_dict() for score in self.ranking],
                "decision_reasons": list(self.decision_reasons)}


def rank_candidates(scores: Iterable[CandidateScore]) -> list[CandidateScore]:
    """Best first: by total, then semantic, then port score, then connectome id in reverse alphabetical order
    (the last key only makes ties deterministic)."""
    return sorted(scores, key=lambda s: (s.total_score, s.semantic_score, s.port_score, s.candidate.connectome),
                  reverse=True)


def _known(values: Iterable[str], what: str) -> None:
    unknown = sorted(str(value) for value in values if value not in REGION_PORTS)
    if unknown:
        raise BPUInputError(f"{what} names unknown connectome(s) {', '.join(unknown)}; expected ids among "
                            f"{', '.join(REGION_PORTS)}")


def _checked_metadata(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Metadata per connectome after checking the fields the selector reads (pool_counts, estimated_K)."""
    _known(metadata, "metadata")
    checked = {}
    for connectome, meta in metadata.items():
        where = f"graph metadata of {connectome}"
        if not isinstance(meta, Mapping):
            raise BPUInputError(f"{where} is {meta!r}; expected a mapping (the content of graph_metadata.json)")
        if meta.get("connectome", connectome) != connectome:
            raise BPUInputError(f"{where} says connectome {meta['connectome']!r}; it is keyed by {connectome!r}")
        if "pool_counts" in meta:
            pool_count_map(meta["pool_counts"], f"{where}: pool_counts")
        k = meta.get("estimated_K")
        if k is not None and not (is_integer(k) and k >= 1):
            raise BPUInputError(f"{where}: estimated_K is {k!r}; expected an integer >= 1")
        checked[connectome] = dict(meta)
    return checked


def _score(candidate: Candidate, task: str, allowed: frozenset[str] | None, meta: Mapping[str, Any] | None,
           heading_bins: int) -> CandidateScore:
    spec = task_channels(task, heading_bins)
    overlap = sorted(set(spec.semantic_tags).intersection(candidate.task_tags))
    semantic = len(overlap) / max(len(spec.semantic_tags), 1)
    pool_counts = meta.get("pool_counts") if meta is not None else None
    port = adapter_mapping(task, candidate.connectome, pool_counts, heading_bins).mapping_score
    evidence = float(spec.task_name in candidate.evidence_tags)
    availability = float(allowed is None or candidate.connectome in allowed)
    total = (SEMANTIC_WEIGHT * semantic + PORT_WEIGHT * port + EVIDENCE_WEIGHT * evidence
             + AVAILABILITY_WEIGHT * availability)
    if not availability:
        total *= UNAVAILABLE_FACTOR
    reasons = [f"semantic overlap: {', '.join(overlap) or 'none'}", f"adapter mapping score: {port:.3f}",
               "prior result exists for this task family" if evidence
               else "no direct prior result recorded for this task family"]
    if meta is not None:
        reasons.append(f"prepared graph metadata available: N={meta.get('N', '?')}, K={meta.get('estimated_K', '?')}")
    return CandidateScore(candidate, total, semantic, port, evidence, availability, tuple(reasons))


def select_connectome(task: str, *, candidates: Iterable[Candidate] | None = None,
                      available: Iterable[str] | None = None, metadata: Mapping[str, Any] | None = None,
                      heading_bins: int = DEFAULT_HEADING_BINS) -> Selection:
    """Rank ``candidates`` (default: :data:`LIBRARY`) for ``task`` and select the best.

    ``available`` is an allow-list of connectome ids (None: all are available); ``metadata`` maps a
    connectome id to its prepared graph_metadata.json content, which supplies K and the pool counts.
    """
    task_id = task_channels(task, heading_bins).task_name
    pool = list(LIBRARY if candidates is None else candidates)
    if not pool:
        raise BPUInputError("no candidate connectomes to choose from; give at least one candidate")
    allowed = None
    if available is not None:
        allowed = frozenset([available] if isinstance(available, str) else available)
        _known(allowed, "the allow-list of available connectomes")
        if not allowed.intersection(c.connectome for c in pool):
            raise BPUInputError(f"the allow-list {', '.join(sorted(allowed))} excludes every candidate "
                                f"({', '.join(c.connectome for c in pool)})")
    metas = _checked_metadata(metadata or {})
    ranking = rank_candidates(_score(c, task_id, allowed, metas.get(c.connectome), heading_bins) for c in pool)
    best = ranking[0]
    meta = metas.get(best.candidate.connectome, {})
    top = f"top score {best.total_score:.3f}"
    if len(ranking) > 1:
        top += f"; runner-up {ranking[1].total_score:.3f}"
    return Selection(
        task_name=task_id, selected=best.candidate,
        mapping=adapter_mapping(task_id, best.candidate.connectome, meta.get("pool_counts"), heading_bins),
        expected_k=int(meta.get("estimated_K") or best.candidate.default_k),
        matched_controls=best.candidate.default_controls,
        train_recurrent_modes=best.candidate.train_recurrent_modes, ranking=tuple(ranking),
        decision_reasons=(f"selected {best.candidate.connectome} for task {task_id}", top, *best.reasons))


def _control_label(connectome: str, model: str) -> str:
    original = ORIGINAL_MODEL_NAMES.get(connectome, {}).get(model)
    return f"{model} (originally {original})" if original else model


def selection_markdown(selection: Selection) -> str:
    """A human-readable account of a selection: decision, reasons, wiring and the full ranking."""
    chosen, mapping = selection.selected, selection.mapping
    controls = ", ".join(_control_label(chosen.connectome, model) for model in selection.matched_controls)
    lines = [f"# Connectome Selection: {selection.task_name}", "",
             f"- Selected connectome: `{chosen.connectome}` ({chosen.region_name})",
             f"- Expected recurrent depth K: {selection.expected_k}",
             f"- Matched controls: {controls}",
             f"- Train recurrent modes: {', '.join(selection.train_recurrent_modes)}", "",
             "## Decision Reasons", "", *(f"- {reason}" for reason in selection.decision_reasons), "",
             "## Adapter Mapping", "",
             f"- Input dim: {mapping.input_dim}", f"- Output dim: {mapping.output_dim}",
             f"- Sensory pool: {mapping.sensory_pool}", f"- Output pool: {mapping.output_pool}", "",
             "### Input Channels", "",
             *(f"- {channel} -> {port}" for channel, port in mapping.input_channel_to_port.items()), "",
             "### Output Channels", "",
             *(f"- {channel} -> {port}" for channel, port in mapping.output_channel_to_port.items()), "",
             "## Candidate Ranking", "",
             "| rank | connectome | total | semantic | port | evidence | available |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {rank} | {s.candidate.connectome} | {s.total_score:.3f} | {s.semantic_score:.3f} | "
              f"{s.port_score:.3f} | {s.evidence_score:.3f} | {s.availability_score:.3f} |"
              for rank, s in enumerate(selection.ranking, start=1)]
    return "\n".join(lines) + "\n"


def write_selection(selection: Selection, json_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    """Write the selection as JSON (indent 2, sorted keys) and as Markdown, each file atomically."""
    write_json(json_path, selection.to_dict())
    write_text(md_path, selection_markdown(selection))
