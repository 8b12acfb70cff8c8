"""Typed task channels, connectome region ports, and how one is wired into the other.

A task is described by what it feeds a network (input channels) and what it asks back (output
channels), each tagged with what it means; a connectome region is described by one sensory port and
one output port and the functions it is known to support. Comparing the two tag sets gives an adapter
mapping with a score, which is what lets a selector rank substrates for a task without training anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from .associative import TASK_NAME as ASSOCIATIVE
from .errors import BPUInputError
from .task_knobs import is_integer

INPUT = "input"
OUTPUT = "output"
SENSORY_POOL = "sensory"
OUTPUT_POOL = "output"
UNMAPPED = "unmapped"
DEFAULT_HEADING_BINS = 32
# The pipeline's associative task has a shorter name than the task family it belongs to.
TASK_ALIASES = {ASSOCIATIVE: "mb_associative_learning"}


@dataclass(frozen=True)
class Channel:
    """One named slice of a task's input or output vector; ``semantic_tags`` say what it carries."""

    name: str
    role: str
    size: int
    semantic_tags: tuple[str, ...]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "size": self.size,
                "semantic_tags": list(self.semantic_tags), "description": self.description}


@dataclass(frozen=True)
class TaskChannelSpec:
    """A task's channels plus the tags of what it senses and what it must compute.

    Only the task-level tags (sensory and target) enter scoring; per-channel tags place channels on ports.
    """

    task_name: str
    input_channels: tuple[Channel, ...]
    output_channels: tuple[Channel, ...]
    sensory_tags: tuple[str, ...]
    target_tags: tuple[str, ...]

    @property
    def input_dim(self) -> int:
        return sum(channel.size for channel in self.input_channels)

    @property
    def output_dim(self) -> int:
        return sum(channel.size for channel in self.output_channels)

    @property
    def semantic_tags(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.sensory_tags) | set(self.target_tags)))

    def to_dict(self) -> dict[str, Any]:
        return {"task_name": self.task_name, "input_dim": self.input_dim, "output_dim": self.output_dim,
                "input_channels": [channel.to_dict() for channel in self.input_channels],
                "output_channels": [channel.to_dict() for channel in self.output_channels],
                "sensory_tags": list(self.sensory_tags), "target_tags": list(self.target_tags),
                "semantic_tags": list(self.semantic_tags)}


@dataclass(frozen=True)
class RegionPortSpec:
    """Where adapters may touch a connectome region, and which task functions the region supports."""

    connectome: str
    region_name: str
    sensory_ports: tuple[str, ...]
    output_ports: tuple[str, ...]
    supported_tags: tuple[str, ...]
    notes: str

    def to_dict(self) -> dict[str, Any]:
        return {"connectome": self.connectome, "region_name": self.region_name,
                "sensory_ports": list(self.sensory_ports), "output_ports": list(self.output_ports),
                "supported_tags": list(self.supported_tags), "notes": self.notes}


@dataclass(frozen=True)
class AdapterMapping:
    """Which port each task channel is wired to, and how well the region suits the task (0..1)."""

    task_name: str
    connectome: str
    region_name: str
    input_dim: int
    output_dim: int
    sensory_pool: str
    output_pool: str
    input_channel_to_port: Mapping[str, str]
    output_channel_to_port: Mapping[str, str]
    mapping_score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"task_name": self.task_name, "connectome": self.connectome, "region_name": self.region_name,
                "input_dim": self.input_dim, "output_dim": self.output_dim,
                "sensory_pool": self.sensory_pool, "output_pool": self.output_pool,
                "input_channel_to_port": dict(self.input_channel_to_port),
                "output_channel_to_port": dict(self.output_channel_to_port),
                "mapping_score": self.mapping_score, "reasons": list(self.reasons)}


# --- task channels -------------------------------------------------------------------------------------

def _channel(name: str, role: str, size: int, *tags: str) -> Channel:
    return Channel(name, role, size, tags)


SELF_MOTION_INPUTS = (_channel("forward_velocity", INPUT, 1, "self_motion", "locomotion"),
                      _channel("turn_velocity", INPUT, 1, "angular_velocity", "heading"))
SELF_MOTION_TAGS = ("self_motion", "locomotion", "angular_velocity")
POLAR_TARGET_TAGS = ("path_integration", "heading", "ring_attractor", "home_vector", "navigation")


def _polar_outputs(heading_bins: int) -> tuple[Channel, ...]:
    return (_channel("heading_bump", OUTPUT, heading_bins, "heading", "ring_attractor", "path_integration"),
            *(_channel(name, OUTPUT, 1, "home_vector", "navigation")
              for name in ("home_bearing_cos", "home_bearing_sin", "home_distance")))


def _cartesian(heading_bins: int) -> TaskChannelSpec:
    outputs = (*(_channel(name, OUTPUT, 1, "heading", "path_integration") for name in ("heading_cos", "heading_sin")),
               *(_channel(name, OUTPUT, 1, "home_vector", "navigation") for name in ("home_x", "home_y")))
    return TaskChannelSpec("cartesian", SELF_MOTION_INPUTS, outputs, SELF_MOTION_TAGS,
                           ("path_integration", "heading", "home_vector", "navigation"))


def _cx_polar_bump(heading_bins: int) -> TaskChannelSpec:
    return TaskChannelSpec("cx_polar_bump", SELF_MOTION_INPUTS, _polar_outputs(heading_bins), SELF_MOTION_TAGS,
                           POLAR_TARGET_TAGS)


def _cx_landmark_bump(heading_bins: int) -> TaskChannelSpec:
    cues = (_channel("landmark_visible", INPUT, 1, "landmark", "cue"),
            _channel("landmark_bearing_cos", INPUT, 1, "landmark", "cue", "bearing"),
            _channel("landmark_bearing_sin", INPUT, 1, "landmark", "cue", "bearing"),
            _channel("landmark_distance", INPUT, 1, "landmark", "cue", "distance"))
    return TaskChannelSpec("cx_landmark_bump", SELF_MOTION_INPUTS + cues, _polar_outputs(heading_bins),
                           SELF_MOTION_TAGS + ("landmark", "cue", "bearing", "distance"),
                           POLAR_TARGET_TAGS + ("cue_correction",))


def _mb_associative_learning(heading_bins: int) -> TaskChannelSpec:
    inputs = (_channel("odor_pattern", INPUT, 64, "odor", "olfaction", "sparse_code"),
              _channel("reward_feedback", INPUT, 1, "reward", "valence"),
              _channel("punishment_feedback", INPUT, 1, "punishment", "valence"),
              _channel("query_gate", INPUT, 1, "memory_query", "association"))
    outputs = (_channel("odor_valence", OUTPUT, 1, "valence", "associative_learning"),)
    return TaskChannelSpec("mb_associative_learning", inputs, outputs,
                           ("odor", "olfaction", "reward", "punishment", "sparse_code"),
                           ("associative_learning", "memory", "valence", "reversal_learning"))


def _optic_flow(heading_bins: int) -> TaskChannelSpec:
    # 61 inputs: a hexagonal ommatidium lattice of 4 rings, the optic-flow task's default.
    inputs = (_channel("hex_lattice_luminance", INPUT, 61, "vision", "retinotopy", "optic_flow"),)
    outputs = tuple(_channel(name, OUTPUT, 1, "ego_motion", "optic_flow")
                    for name in ("yaw_rate", "forward_translation", "lateral_translation"))
    return TaskChannelSpec("optic_flow", inputs, outputs, ("vision", "retinotopy", "motion", "optic_flow"),
                           ("ego_motion", "optic_flow", "embodied_perception"))


def _embodied_foraging(heading_bins: int) -> TaskChannelSpec:
    inputs = tuple(_channel(name, INPUT, 1, "taste", "contact_sensation") for name in ("left_taste", "right_taste"))
    outputs = (_channel("turn_command", OUTPUT, 1, "motor_control", "steering"),
               _channel("forward_speed", OUTPUT, 1, "motor_control", "locomotion"))
    return TaskChannelSpec("embodied_foraging", inputs, outputs, ("taste", "contact_sensation", "foraging"),
                           ("embodied_control", "motor_control", "steering", "locomotion"))


_TASK_BUILDERS = {"cartesian": _cartesian, "cx_polar_bump": _cx_polar_bump, "cx_landmark_bump": _cx_landmark_bump,
                  "mb_associative_learning": _mb_associative_learning, "optic_flow": _optic_flow,
                  "embodied_foraging": _embodied_foraging}
TASK_CHANNELS = {task: build(DEFAULT_HEADING_BINS) for task, build in _TASK_BUILDERS.items()}


def channel_task_id(name: str) -> str:
    """The canonical id of a task name, accepting the pipeline's own names (``mb_associative``)."""
    task = TASK_ALIASES.get(name, name) if isinstance(name, str) else None
    if task not in _TASK_BUILDERS:
        known = ", ".join([*_TASK_BUILDERS, *TASK_ALIASES])
        raise BPUInputError(f"unknown task {name!r}; expected one of {known}")
    return task


def task_channels(task: str, heading_bins: int = DEFAULT_HEADING_BINS) -> TaskChannelSpec:
    """The channels and tags of a task; the heading bump of the polar tasks is ``heading_bins`` wide."""
    if not (is_integer(heading_bins) and heading_bins >= 1):
        raise BPUInputError(f"heading_bins is {heading_bins!r}; expected an integer >= 1")
    return _TASK_BUILDERS[channel_task_id(task)](int(heading_bins))


# --- region ports --------------------------------------------------------------------------------------

CX_TAGS = ("path_integration", "heading", "ring_attractor", "home_vector", "navigation", "landmark",
           "cue_correction", "self_motion", "locomotion", "angular_velocity", "embodied_control")
MB_TAGS = ("odor", "olfaction", "sparse_code", "reward", "punishment", "associative_learning", "memory", "valence",
           "reversal_learning")
OPTIC_TAGS = ("vision", "retinotopy", "motion", "optic_flow", "ego_motion", "embodied_perception")

_HEMIBRAIN_CX = RegionPortSpec(
    "hemibrain_cx", "hemibrain central complex",
    ("ring/ExR/LNO/LCNO/GLNO/SpsP sensory-biased pool",), ("PFL/PFL2/PFL3/PFR output-biased pool",), CX_TAGS,
    "Pools follow ROI flow and cell-type family biases; adapters write only to sensory-pool neurons and read "
    "only output-pool neurons.")
_HEMIBRAIN_MB = RegionPortSpec(
    "hemibrain_mushroom_body", "hemibrain mushroom body",
    ("olfactory/KC input-biased pool",), ("MBON/output-biased pool",), MB_TAGS,
    "Pools follow ROI flow; they are not yet split by explicit PN/KC/MBON cell labels.")
_OPTIC_LOBE = RegionPortSpec(
    "flywire_optic_lobe", "FlyWire optic lobe",
    ("retinotopic photoreceptor/medulla input lattice",), ("motion/ego-motion readout pool",), OPTIC_TAGS,
    "The hexagonal luminance lattice is written into the sparse optic-lobe support.")
_FLYWIRE_WHOLE = RegionPortSpec(
    "flywire_whole", "FlyWire whole brain",
    ("degree/input-dominant heuristic sensory pool",), ("degree/output-dominant heuristic output pool",),
    ("broad_substrate", "embodied_perception", "embodied_control", "navigation", "vision", "taste", "locomotion",
     "motor_control"),
    "Pools come from a degree heuristic, so this substrate serves as a comparison, not a task-matched region.")
_EMBEDDED_NOTE = "Embedded generator of this project with the ports and functions of the region it imitates."

REGION_PORTS: dict[str, RegionPortSpec] = {spec.connectome: spec for spec in (
    _HEMIBRAIN_CX,
    _HEMIBRAIN_MB,
    replace(_HEMIBRAIN_MB, connectome="flywire_mushroom_body", region_name="FlyWire mushroom body"),
    _OPTIC_LOBE,
    _FLYWIRE_WHOLE,
    replace(_HEMIBRAIN_CX, connectome="synthetic_cx", region_name="embedded CX-like ring attractor (synthetic)",
            notes=_EMBEDDED_NOTE),
    replace(_HEMIBRAIN_MB, connectome="synthetic_mb", region_name="embedded mushroom-body-like circuit (synthetic)",
            notes=_EMBEDDED_NOTE),
    replace(_OPTIC_LOBE, connectome="synthetic_optic", region_name="embedded optic-lobe-like motion circuit "
            "(synthetic)", notes=_EMBEDDED_NOTE),
)}


def region_ports(connectome: str) -> RegionPortSpec:
    if connectome not in REGION_PORTS:
        raise BPUInputError(f"unknown connectome {connectome!r}; expected one of {', '.join(REGION_PORTS)}")
    return REGION_PORTS[connectome]


# --- adapter mapping -----------------------------------------------------------------------------------

def pool_count_map(counts: Any, where: str) -> dict[str, int]:
    """``counts`` as a plain dict after checking it maps pool names to integers >= 0 (``where`` names it)."""
    if not isinstance(counts, Mapping):
        raise BPUInputError(f"{where} is {counts!r}; expected a mapping of pool name to a count >= 0")
    bad = {key: value for key, value in counts.items() if not (is_integer(value) and value >= 0)}
    if bad:
        raise BPUInputError(f"{where} has {bad!r}; expected every pool count to be an integer >= 0")
    return {str(key): int(value) for key, value in counts.items()}


def _port_for(channel: Channel, ports: tuple[str, ...]) -> str:
    """The first port whose label names one of the channel's tags, else the first port."""
    for port in ports:
        label = port.lower()
        if any(tag in label or tag.replace("_", " ") in label for tag in channel.semantic_tags):
            return port
    return ports[0] if ports else UNMAPPED


def _match_line(kind: str, tags: tuple[str, ...], supported: set[str]) -> str:
    return f"{kind} tags {'match' if supported.intersection(tags) else 'do not match'} region ports"


def adapter_mapping(task: str, connectome: str, pool_counts: Mapping[str, int] | None = None,
                    heading_bins: int = DEFAULT_HEADING_BINS) -> AdapterMapping:
    """Wire ``task``'s channels into ``connectome``'s ports and score the fit.

    Score: 0.75 x the fraction of the task's tags the region supports, +0.125 each when some sensory tag and
    some target tag is supported, +0.05 each for a non-empty sensory and output pool when pool counts (from a
    prepared graph) are given; capped at 1.
    """
    spec = task_channels(task, heading_bins)
    region = region_ports(connectome)
    counts = None if pool_counts is None else pool_count_map(pool_counts, "pool_counts")
    supported = set(region.supported_tags)
    overlap = sorted(supported.intersection(spec.semantic_tags))
    score = 0.75 * len(overlap) / max(len(spec.semantic_tags), 1)
    score += 0.125 * bool(supported.intersection(spec.sensory_tags))
    score += 0.125 * bool(supported.intersection(spec.target_tags))
    reasons = [f"semantic overlap: {', '.join(overlap) or 'none'}",
               _match_line("sensory", spec.sensory_tags, supported),
               _match_line("target", spec.target_tags, supported)]
    if counts is not None:
        score += 0.05 * (counts.get(SENSORY_POOL, 0) > 0) + 0.05 * (counts.get(OUTPUT_POOL, 0) > 0)
        reasons.append("pool counts: " + ", ".join(f"{key}={counts[key]}" for key in sorted(counts)))
    return AdapterMapping(
        task_name=spec.task_name, connectome=connectome, region_name=region.region_name,
        input_dim=spec.input_dim, output_dim=spec.output_dim, sensory_pool=SENSORY_POOL, output_pool=OUTPUT_POOL,
        input_channel_to_port=MappingProxyType({c.name: _port_for(c, region.sensory_ports)
                                                for c in spec.input_channels}),
        output_channel_to_port=MappingProxyType({c.name: _port_for(c, region.output_ports)
                                                 for c in spec.output_channels}),
        mapping_score=min(score, 1.0), reasons=tuple(reasons))
