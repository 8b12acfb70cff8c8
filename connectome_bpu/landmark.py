"""Data of the ``cx_landmark_bump`` task: polar-bump path integration with an intermittent, noisy home-vector
cue (the "landmark") and unsignalled passive displacements.

Self-motion alone no longer determines the home vector: a passive jump moves the animal without any
input saying so, and only a later cue can reveal it. The task therefore measures whether a network
corrects its integrated home vector from cues rather than just integrating.

The self-motion controls are the polar task's own (``tasks._draw_controls`` on the split's generator),
so a landmark split and a polar split of the same seed share their self-motion. Everything landmark
specific comes from a second, independent generator that the caller passes in; each function below
documents the order and shape of its draws, because that order decides the stored bits.

Input channels: ``[v, ω, cos(cue bearing), sin(cue bearing), cue distance / s, visible flag]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .errors import BPUInputError
from .self_motion import CONTROL_DIM, integrate, wrap_angle

LANDMARK_KEYS = ("visible_prob", "noise_std", "displacement_prob", "displacement_scale")
CUE_DIM = 4  # cos, sin, distance / s, flag
INPUT_DIM = CONTROL_DIM + CUE_DIM
FLAG_CHANNEL = INPUT_DIM - 1
DISTANCE_CHANNEL = FLAG_CHANNEL - 1
_PROBABILITIES = ("visible_prob", "displacement_prob")


@dataclass(frozen=True)
class LandmarkSettings:
    """The landmark knobs (config ``task.landmark``), validated on construction.

    ``noise_std`` is in radians for the cue bearing and in units of ``home_distance_scale`` for the cue
    distance, so one number sets a comparable difficulty for both. ``displacement_scale`` is the
    Rayleigh scale of a jump's length (mean length ``scale·sqrt(π/2)``).
    """

    visible_prob: float = 0.15
    noise_std: float = 0.05
    displacement_prob: float = 0.08
    displacement_scale: float = 0.75

    def __post_init__(self) -> None:
        for key in LANDMARK_KEYS:
            value = getattr(self, key)
            if key in _PROBABILITIES:
                if not 0.0 <= value <= 1.0:
                    raise BPUInputError(f"task.landmark.{key} is {value}; expected a probability in [0, 1]")
            elif not (math.isfinite(value) and value >= 0.0):
                raise BPUInputError(f"task.landmark.{key} is {value}; expected a finite number >= 0")

    @classmethod
    def from_config(cls, task_cfg: Mapping[str, Any]) -> LandmarkSettings:
        """Build from ``config["task"]``; a missing ``landmark`` block or key takes the default.

        Unknown keys are refused: a misspelt knob would otherwise silently run the defaults.
        """
        block = task_cfg.get("landmark")
        if block is None:  # absent, or an empty YAML block
            block = {}
        if not isinstance(block, Mapping):
            raise BPUInputError(f"task.landmark is {block!r}; expected a mapping with keys among "
                                f"{', '.join(LANDMARK_KEYS)}")
        unknown = sorted(map(str, set(block) - set(LANDMARK_KEYS)))
        if unknown:
            raise BPUInputError(f"task.landmark has unknown key(s) {', '.join(unknown)}; "
                                f"expected keys among {', '.join(LANDMARK_KEYS)}")
        values = {}
        for field in fields(cls):
            raw = block.get(field.name, field.default)
            try:
                values[field.name] = float(raw)
            except (TypeError, ValueError):
                raise BPUInputError(f"task.landmark.{field.name} is {raw!r}; expected a number") from None
        return cls(**values)


def forced_cue_step(T: int) -> int:
    """The step at which every sequence sees a cue, ``min(T-1, max(1, T // 10))``.

    Early, so that each sequence can anchor its estimate once; for T <= 2 it is necessarily the last step.
    """
    return min(T - 1, max(1, T // 10))


def landmark_trajectories(controls: np.ndarray, rng: np.random.Generator,
                          settings: LandmarkSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heading, position (each (count, T) float32) and ``jumped`` ((count, T) bool) under passive jumps.

    Self-motion is integrated in float64 from the float32 controls in ``self_motion.integrate``'s order
    (θ ← wrap(θ + ω_t), x += v cos θ, y += v sin θ), so with no jumps the path is bit-identical to the
    polar task's. Then, with probability ``displacement_prob``, the position jumps by (ρ cos φ, ρ sin φ),
    φ ~ U(−π, π), ρ ~ Rayleigh(``displacement_scale``); the heading is never changed. The state is
    recorded after the jump.

    Draws, all (count, T) and always made whatever the settings (so the stream consumed never depends on
    them): ``random`` u (jump if u < p), ``uniform(−π, π)`` φ, ``rayleigh(scale)`` ρ.
    """
    count, T, _ = controls.shape
    shape = (count, T)
    jumped = rng.random(shape) < settings.displacement_prob
    direction = rng.uniform(-np.pi, np.pi, shape)
    length = rng.rayleigh(settings.displacement_scale, shape)
    displacement = (np.where(jumped, length * np.cos(direction), 0.0), np.where(jumped, length * np.sin(direction), 0.0))
    theta, x, y = integrate(controls, displacement)
    return theta, x, y, jumped


def cue_inputs(theta: np.ndarray, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
               settings: LandmarkSettings, home_distance_scale: float) -> np.ndarray:
    """Cue channels (count, T, 4) float32: cos and sin of the cue bearing, cue distance / s, visible flag.

    The cue is a noisy reading of the true (displaced) home vector: bearing β = wrap(atan2(−y, −x) − θ)
    plus N(0, σ²), distance max(0, r + N(0, (σ·s)²)), σ = ``noise_std``. It is computed in float32 with the
    polar target formulas, so a noise-free cue equals the home-vector targets bit for bit. Steps without
    a cue carry zeros in all four channels, so "no cue" is unambiguous.

    A step is visible with probability ``visible_prob``, and always at ``forced_cue_step(T)`` so every
    sequence gets one early cue. Unlike the original task, the last step is *not* forced: there the
    final-step metrics measured copying a noisy oracle cue rather than integration.

    Draws: ``random`` (count, T) for visibility; then, only if σ > 0, ``normal(0, σ)`` (count, T) for the
    bearing and ``normal(0, σ·s)`` (count, T) for the distance, for every step, each cast to float32.
    """
    count, T = theta.shape
    visible = rng.random((count, T)) < settings.visible_prob
    visible[:, forced_cue_step(T)] = True
    bearing = wrap_angle(np.arctan2(-y, -x) - theta)
    distance = np.sqrt(x**2 + y**2)
    sigma = settings.noise_std
    if sigma > 0:
        bearing = bearing + rng.normal(0.0, sigma, (count, T)).astype(np.float32)
        noisy_distance = distance + rng.normal(0.0, sigma * home_distance_scale, (count, T)).astype(np.float32)
        distance = np.maximum(noisy_distance, 0.0)
    cues = np.zeros((count, T, CUE_DIM), dtype=np.float32)
    cues[..., 0] = np.where(visible, np.cos(bearing), 0.0)
    cues[..., 1] = np.where(visible, np.sin(bearing), 0.0)
    cues[..., 2] = np.where(visible, distance / home_distance_scale, 0.0)
    cues[..., 3] = visible
    return cues


def landmark_inputs(controls: np.ndarray, cues: np.ndarray) -> np.ndarray:
    """Model inputs (count, T, 6) float32: the self-motion controls followed by the cue channels."""
    return np.concatenate([controls, cues], axis=-1).astype(np.float32, copy=False)


def noisy_landmark_inputs(clean: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    """Inputs of a ``test_noise`` level: N(0, sd²) added to v and ω everywhere, to the three cue channels at
    visible steps only; speed and cue distance clipped at 0, the flag copied.

    The original added noise to all six channels, so steps without a cue showed spurious cue values and
    a non-binary flag, destroying the meaning of "no cue"; here an absent cue stays exactly absent.
    Draws: one ``normal(0, sd)`` (count, T, 5) float64 array (channels v, ω, cos, sin, distance; every step,
    so the stream does not depend on visibility), cast to float32 before the float32 sum. ``sd = 0``
    draws nothing and returns an exact copy.
    """
    noisy = clean.copy()
    if sd == 0:
        return noisy
    count, T, _ = clean.shape
    noise = rng.normal(0.0, sd, (count, T, FLAG_CHANNEL)).astype(np.float32)  # every channel but the flag
    noisy[..., :CONTROL_DIM] += noise[..., :CONTROL_DIM]
    noisy[..., 0] = np.maximum(noisy[..., 0], 0.0)
    visible = ~uncued_mask(clean)[..., None]
    cue = slice(CONTROL_DIM, FLAG_CHANNEL)  # cos, sin, distance
    noisy[..., cue] = np.where(visible, clean[..., cue] + noise[..., cue], clean[..., cue])
    noisy[..., DISTANCE_CHANNEL] = np.maximum(noisy[..., DISTANCE_CHANNEL], 0.0)
    return noisy


def uncued_mask(inputs: np.ndarray) -> np.ndarray:
    """(count, T) bool, True at steps without a visible cue: where metrics of pure integration apply."""
    return inputs[..., FLAG_CHANNEL] == 0
