"""Optic flow: ego-motion from a simulated fly-eye movie, the visual-motion task family.

The fly's optic lobe turns the image shifting across its compound eye into an estimate of how the
animal itself moves, so a connectome core built from it should be tested on exactly that: from a short
movie seen through a hexagonal lattice of ommatidia, read out the yaw rotation and the forward and
lateral translation that produced it. Rotation shifts the whole image sideways; forward translation
expands it from the front and lateral translation slides it with a pattern that depends on azimuth, so
the three components are separable only by comparing neighbouring ommatidia over time.

Episode: a random textured panorama (``panoramas``), a constant random self-motion (yaw ω, forward F,
lateral L per frame) and T frames. Input at step t: the brightness (0..1) of every ommatidium in frame t
(width 1 + 3R(R + 1)); target at every step: (ω, F, L). Step 0 shows a single frame, which holds no
motion, so it is left out of the loss and of every metric (``FIRST_SCORED_STEP``).

Difficulty presets (``PRESETS``) set the contrast, the sensor noise, the acceptance angle and the number
of directions each ommatidium averages. Train and validation use ``preset``; the test set has one split
per entry of ``test_presets``, so errors can be compared across difficulties.

Two choices differ from a plain port of the usual eye model, on purpose:

* the acceptance-angle blur is drawn per ommatidium and per frame, so it blurs; one offset shared by all
  ommatidia would shift the whole image and look like motion;
* the lattice is scaled on each axis by its own extent, so it spans the full nominal field of view in
  elevation (±fov_elevation/2) as well as in azimuth.

Episodes are drawn in fixed chunks of ``EPISODES_PER_CHUNK``, each from its own child of the split's
SeedSequence, so an episode's content does not depend on how many episodes its split holds.

torch is imported inside ``loss_sums`` only: the rule that writes split files needs numpy alone,
and its environment need not carry torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import BPUInputError
from .hex_lattice import hex_points, lattice_size
from .task_knobs import is_integer, is_number, section_knobs

if TYPE_CHECKING:
    import torch

TASK_NAME = "optic_flow"
TARGET_CHANNELS = ("yaw", "forward", "lateral")
METRIC_COLUMNS = ["loss", "overall_rmse", "yaw_rmse", "forward_rmse", "lateral_rmse", "translation_rmse",
                  "yaw_r2", "forward_r2", "lateral_r2"]
PRIMARY_METRIC = "overall_rmse"
KNOBS = ("hex_rings", "frames", "panorama_height", "panorama_width", "fov_azimuth_deg", "fov_elevation_deg",
         "texture", "yaw_range", "forward_range", "lateral_range", "motion_scale", "contrast_jitter", "preset",
         "test_presets")
TEXTURES = ("gratings", "naturalistic", "checker", "mixed")
CONFIG_KEY = "task.optic_flow"

# Step 0 is one frame and carries no motion information: loss and metrics start here.
FIRST_SCORED_STEP = 1
# Episodes per chunk: each chunk is drawn, whole, from its own child SeedSequence (then the split is cut
# to its count), which is what makes a split's first episodes independent of its size.
EPISODES_PER_CHUNK = 16
R2_EPSILON = 1e-8   # keeps R^2 finite on a split whose targets do not vary

# Panorama texture recipe.
GRATINGS = 8                    # sinusoidal gratings summed per panorama
GRATING_FX = (1, 8)             # horizontal frequency, integers high-exclusive (1..7: periodic in azimuth)
GRATING_FY = (0, 5)             # vertical frequency (0..4)
GRATING_AMPLITUDE = (0.15, 1.0)
PIXEL_NOISE = 0.25
NATURALISTIC_BASE = 0.75        # weight of the grating base under the horizon band and sky gradient
HORIZON_WIDTH, HORIZON_NOISE, SKY_GRADIENT = 0.28, 0.45, 0.35
CHECKER_PROBABILITY = 0.35      # of a ``mixed`` panorama getting the checkerboard blend
CHECKER_WEIGHT = 0.3
CHECKER_TILE = (6, 18)          # tile size in pixels, integers high-exclusive (6..17)

# Self-motion: an episode with almost no motion gets a forward kick, so every episode moves.
STILL_TRANSLATION, STILL_YAW, KICK = 0.08, 0.04, 0.12
# Translation flow gain: g = 0.65 + 0.35 cos(elevation) (flow weakens towards the poles).
FLOW_GAIN = (0.65, 0.35)


@dataclass(frozen=True)
class Difficulty:
    """What a preset sets: image contrast (0, 1], sensor noise sd, acceptance angle (degrees) and the
    number of directions each ommatidium averages (the first one its optical axis)."""

    contrast: float
    sensor_noise: float
    acceptance_deg: float
    blur_samples: int

    def __post_init__(self) -> None:
        if not (is_number(self.contrast) and 0 < self.contrast <= 1):
            raise BPUInputError(f"optic-flow difficulty contrast is {self.contrast!r}; expected a number in (0, 1]")
        if not (is_number(self.sensor_noise) and self.sensor_noise >= 0):
            raise BPUInputError(f"optic-flow difficulty sensor_noise is {self.sensor_noise!r}; expected a finite "
                                "number >= 0")
        if not (is_number(self.acceptance_deg) and 0 <= self.acceptance_deg <= 90):
            raise BPUInputError(f"optic-flow difficulty acceptance_deg is {self.acceptance_deg!r}; expected a number "
                                "in [0, 90]")
        if not (is_integer(self.blur_samples) and self.blur_samples >= 1):
            raise BPUInputError(f"optic-flow difficulty blur_samples is {self.blur_samples!r}; expected an integer "
                                ">= 1")


PRESETS = {
    "easy": Difficulty(contrast=1.0, sensor_noise=0.02, acceptance_deg=2.0, blur_samples=8),
    "medium": Difficulty(contrast=0.65, sensor_noise=0.07, acceptance_deg=4.0, blur_samples=6),
    "hard": Difficulty(contrast=0.38, sensor_noise=0.14, acceptance_deg=6.0, blur_samples=4),
}
_INTEGER_KNOBS = ("hex_rings", "frames", "panorama_height", "panorama_width")
_FLOAT_KNOBS = ("fov_azimuth_deg", "fov_elevation_deg", "yaw_range", "forward_range", "lateral_range",
                "motion_scale", "contrast_jitter")


@dataclass(frozen=True)
class OpticFlowSpec:
    """The task's knobs: eye (rings, field of view), movie (frames, panorama, texture), motion ranges and
    flow scale, contrast jitter, and the difficulty presets of training and of the test splits."""

    hex_rings: int = 4
    frames: int = 16
    panorama_height: int = 96
    panorama_width: int = 256
    fov_azimuth_deg: float = 150.0
    fov_elevation_deg: float = 95.0
    texture: str = "mixed"
    yaw_range: float = 0.25
    forward_range: float = 0.55
    lateral_range: float = 0.35
    motion_scale: float = 0.55
    contrast_jitter: float = 0.08
    preset: str = "medium"
    test_presets: tuple[str, ...] = ("easy", "medium", "hard")
    name: ClassVar[str] = TASK_NAME

    def __post_init__(self) -> None:
        if isinstance(self.test_presets, list):
            object.__setattr__(self, "test_presets", tuple(self.test_presets))
        _check_eye_and_movie(self)
        _check_motion(self)
        _check_presets(self)

    @classmethod
    def from_config(cls, task_cfg: Mapping[str, Any]) -> OpticFlowSpec:
        """Build from ``config["task"]``; missing knobs take their defaults, unknown ones are refused
        (a misspelt knob would otherwise silently run the default task)."""
        return cls(**section_knobs(task_cfg, "optic_flow", KNOBS))

    @property
    def T(self) -> int:
        return self.frames

    @property
    def n_ommatidia(self) -> int:
        return lattice_size(self.hex_rings)

    @property
    def input_dim(self) -> int:
        return self.n_ommatidia

    @property
    def output_dim(self) -> int:
        return len(TARGET_CHANNELS)

    @property
    def target_dim(self) -> int:
        return len(TARGET_CHANNELS)

    @property
    def cache_name(self) -> str:
        """Readable directory name of this variant's split files; the task variant adds a hash of every knob."""
        return f"{TASK_NAME}_R{self.hex_rings}_T{self.frames}_{self.texture}_{self.preset}"

    def difficulty(self, preset: str | None = None) -> Difficulty:
        """The difficulty of a split: ``preset`` (a test split's) or, when None, the training preset."""
        name = self.preset if preset is None else preset
        if name not in PRESETS:
            raise BPUInputError(f"optic-flow split preset is {name!r}; expected one of {', '.join(PRESETS)}")
        return PRESETS[name]

    def knob_values(self) -> dict[str, np.ndarray]:
        """The knobs that decide a split file's content, as 0-d arrays (int64, float64, or a string).

        ``preset`` and ``test_presets`` are not among them: they decide which files exist and at which
        difficulty; each file stores its own preset beside its T (``SplitDef.preset``), so a test file's
        content is the same whatever preset training uses.
        """
        values = {key: np.array(getattr(self, key), dtype=np.int64) for key in _INTEGER_KNOBS}
        values.update({key: np.array(float(getattr(self, key)), dtype=np.float64) for key in _FLOAT_KNOBS})
        values["texture"] = np.array(self.texture)
        return {key: values[key] for key in KNOBS if key in values}

    def loss_sums(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(Σ squared error over steps t >= 1 and the 3 components, number of those elements)``: summed
        over the batches of a split and divided, the split's MSE whatever the batch sizes. Step 0 carries
        no loss and no gradient: one frame holds no motion."""
        _check_shapes(tuple(pred.shape), tuple(target.shape))
        error = pred[:, FIRST_SCORED_STEP:] - target[:, FIRST_SCORED_STEP:]
        return (error**2).sum(), error.numel()

    def evaluate(self, pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """All metrics of one split over steps t >= 1, in float64, keyed and ordered as ``METRIC_COLUMNS``.

        RMSEs are per component and pooled (``overall_rmse`` all three, ``translation_rmse`` forward and
        lateral); R^2 of a component is 1 - MSE / (population variance of its target + 1e-8), so 0 is the
        score of predicting the split's mean motion and 1 a perfect estimate.
        """
        pred = np.asarray(pred, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        _check_shapes(pred.shape, target.shape)
        scored = target[:, FIRST_SCORED_STEP:].reshape(-1, len(TARGET_CHANNELS))
        squared = (pred[:, FIRST_SCORED_STEP:].reshape(scored.shape) - scored) ** 2
        mse = squared.mean(axis=0)
        r2 = 1.0 - mse / (scored.var(axis=0) + R2_EPSILON)
        values = {"loss": float(squared.mean()), "overall_rmse": float(np.sqrt(squared.mean())),
                  "translation_rmse": float(np.sqrt(mse[1:].mean()))}
        for channel, name in enumerate(TARGET_CHANNELS):
            values[f"{name}_rmse"] = float(np.sqrt(mse[channel]))
            values[f"{name}_r2"] = float(r2[channel])
        return {column: values[column] for column in METRIC_COLUMNS}


def _check_eye_and_movie(spec: OpticFlowSpec) -> None:
    """Lattice, movie length, panorama size, field of view and texture."""
    if not (is_integer(spec.hex_rings) and spec.hex_rings >= 1):
        raise BPUInputError(f"{CONFIG_KEY}.hex_rings is {spec.hex_rings!r}; expected an integer >= 1 (lattice too "
                            "small for the readout: a single ommatidium cannot see motion)")
    if not (is_integer(spec.frames) and spec.frames >= 2):
        raise BPUInputError(f"{CONFIG_KEY}.frames is {spec.frames!r}; expected an integer >= 2 (step 0 is not "
                            "scored: one frame holds no motion)")
    for key in ("panorama_height", "panorama_width"):
        value = getattr(spec, key)
        if not (is_integer(value) and value >= 2):
            raise BPUInputError(f"{CONFIG_KEY}.{key} is {value!r}; expected an integer >= 2 (pixels)")
    for key, limit in (("fov_azimuth_deg", 360), ("fov_elevation_deg", 180)):
        value = getattr(spec, key)
        if not (is_number(value) and 0 < value <= limit):
            raise BPUInputError(f"{CONFIG_KEY}.{key} is {value!r}; expected a number of degrees in (0, {limit}]")
    if spec.texture not in TEXTURES:
        raise BPUInputError(f"{CONFIG_KEY}.texture is {spec.texture!r}; expected one of {', '.join(TEXTURES)}")


def _check_motion(spec: OpticFlowSpec) -> None:
    """Motion ranges, flow scale and contrast jitter."""
    for key in ("yaw_range", "forward_range", "lateral_range", "motion_scale"):
        value = getattr(spec, key)
        if not (is_number(value) and value >= 0):
            raise BPUInputError(f"{CONFIG_KEY}.{key} is {value!r}; expected a finite number >= 0")
    if not (is_number(spec.contrast_jitter) and 0 <= spec.contrast_jitter < 1):
        raise BPUInputError(f"{CONFIG_KEY}.contrast_jitter is {spec.contrast_jitter!r}; expected a number in [0, 1) "
                            "(1 or more would invert the image at some frames)")


def _check_presets(spec: OpticFlowSpec) -> None:
    """Training preset, and test presets: distinct names that include the training one."""
    names = ", ".join(PRESETS)
    if not (isinstance(spec.preset, str) and spec.preset in PRESETS):
        raise BPUInputError(f"{CONFIG_KEY}.preset is {spec.preset!r}; expected one of {names}")
    presets = spec.test_presets
    if (not isinstance(presets, tuple) or not presets or len(set(presets)) != len(presets)
            or not all(isinstance(p, str) and p in PRESETS for p in presets)):
        raise BPUInputError(f"{CONFIG_KEY}.test_presets is {presets!r}; expected a non-empty list of distinct "
                            f"preset names, each one of {names}")
    if spec.preset not in presets:
        raise BPUInputError(f"{CONFIG_KEY}.test_presets is {list(presets)!r}; expected it to include "
                            f"{CONFIG_KEY}.preset ({spec.preset!r}): the test split at the training preset is "
                            "the clean test that summaries lead with")


def _check_shapes(pred_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    channels = len(TARGET_CHANNELS)
    if (len(pred_shape) != 3 or pred_shape != target_shape or pred_shape[2] != channels
            or pred_shape[1] <= FIRST_SCORED_STEP or pred_shape[0] < 1):
        raise ValueError(f"{TASK_NAME}: predictions {pred_shape} and targets {target_shape} must both be "
                         f"(B >= 1, T >= 2, {channels})")


# --------------------------------------------------------------------------------------- eye geometry


def ommatidium_directions(rings: int, fov_azimuth_deg: float, fov_elevation_deg: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Optical axes (azimuth, elevation), each (n,) float64 radians, in lattice order.

    Each axis of the hexagonal lattice is scaled by its own largest absolute value, so the extreme points
    sit exactly at ±fov/2 on both axes (scaling both by the horizontal extent would leave the elevation
    field short of its nominal size). The price is a lattice stretched differently on the two axes;
    spacing stays uniform along each lattice direction.
    """
    points = hex_points(rings)
    half_fov = np.radians([fov_azimuth_deg, fov_elevation_deg]) / 2.0
    scaled = points / np.abs(points).max(axis=0) * half_fov
    return scaled[:, 0], scaled[:, 1]


# --------------------------------------------------------------------------------------- generation


def panoramas(rng: np.random.Generator, count: int, height: int, width: int, texture: str,
              contrast: float) -> np.ndarray:
    """``count`` random panoramas (count, H, W) float64 in [0, 1], column 0 at azimuth -π, row 0 at
    elevation -π/2.

    Base (every texture; ``gratings`` is the base alone): 8 gratings a sin(fx x + fy y + φ) over
    x, y = -π..π (endpoint excluded, so the image wraps in azimuth), fx in 1..7, fy in 0..4,
    φ ~ U(-π, π), a ~ U(0.15, 1) / sqrt(fx² + fy² + 1) (a 1/f spectrum), plus 0.25 N(0, 1) per pixel,
    standardised. ``naturalistic`` and ``mixed``: 0.75 base + a noisy horizon band
    exp(-(y / 0.28)²) N(0, 0.45²) + a sky gradient 0.35 y, y = -1..1 over rows. ``checker`` (always) and
    ``mixed`` (with probability 0.35): 0.7 panorama + 0.3 checkerboard of ±1 tiles of 6..17 pixels.
    Then standardised again and mapped to 0.5 + 0.5 contrast value, clipped to [0, 1].

    Draw order from ``rng``: fx, fy, φ, a (each (count, 8)); pixel noise (count, H, W); horizon noise
    (count, H, W) for naturalistic and mixed; blend uniforms (count,) for mixed; tile sizes (count,) for
    checker and mixed. A texture skips the draws it does not use.
    """
    fx = rng.integers(*GRATING_FX, size=(count, GRATINGS))
    fy = rng.integers(*GRATING_FY, size=(count, GRATINGS))
    phase = rng.uniform(-np.pi, np.pi, size=(count, GRATINGS))
    amplitude = rng.uniform(*GRATING_AMPLITUDE, size=(count, GRATINGS)) / np.sqrt(fx**2 + fy**2 + 1.0)
    x = np.linspace(-np.pi, np.pi, width, endpoint=False)
    y = np.linspace(-np.pi, np.pi, height, endpoint=False)
    # sin(fx x + φ + fy y) = sin(fx x + φ) cos(fy y) + cos(fx x + φ) sin(fy y): one batched matmul per chunk.
    horizontal = fx[..., None] * x + phase[..., None]                                   # (count, 8, W)
    vertical = fy[..., None] * y                                                        # (count, 8, H)
    rows = np.concatenate([np.cos(vertical), np.sin(vertical)], axis=1).transpose(0, 2, 1)
    columns = np.tile(amplitude, 2)[..., None] * np.concatenate([np.sin(horizontal), np.cos(horizontal)], axis=1)
    image = _standardised(rows @ columns + PIXEL_NOISE * rng.standard_normal((count, height, width)))
    if texture in ("naturalistic", "mixed"):
        band = np.linspace(-1.0, 1.0, height)[:, None]
        horizon = np.exp(-(band / HORIZON_WIDTH) ** 2) * rng.normal(0.0, HORIZON_NOISE, (count, height, width))
        image = NATURALISTIC_BASE * image + horizon + SKY_GRADIENT * band
    if texture in ("checker", "mixed"):
        blended = (np.ones(count, dtype=bool) if texture == "checker"
                   else rng.random(count) < CHECKER_PROBABILITY)
        tile = rng.integers(*CHECKER_TILE, size=count)[:, None, None]
        parity = (np.arange(height)[:, None] // tile + np.arange(width) // tile) % 2
        image = np.where(blended[:, None, None],
                         (1.0 - CHECKER_WEIGHT) * image + CHECKER_WEIGHT * (2.0 * parity - 1.0), image)
    return np.clip(0.5 + 0.5 * contrast * _standardised(image), 0.0, 1.0)


def _standardised(images: np.ndarray) -> np.ndarray:
    """Each image (last two axes) to mean 0 and sd 1, so every texture and blend has the same contrast."""
    mean = images.mean(axis=(-2, -1), keepdims=True)
    return (images - mean) / np.maximum(images.std(axis=(-2, -1), keepdims=True), 1e-12)


def self_motion(rng: np.random.Generator, spec: OpticFlowSpec, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode motion (count, 3) float64 = (ω, F, L) per frame, and contrast-jitter phases (count,).

    Draw order: ω ~ U(±yaw_range), F ~ U(±forward_range), L ~ U(±lateral_range), a sign per episode
    (uniform < 0.5 is negative), φ ~ U(-π, π). An episode with |F| + |L| < 0.08 and |ω| < 0.04 would
    barely move, so it gets 0.12 times its sign added to F.
    """
    yaw = rng.uniform(-spec.yaw_range, spec.yaw_range, size=count)
    forward = rng.uniform(-spec.forward_range, spec.forward_range, size=count)
    lateral = rng.uniform(-spec.lateral_range, spec.lateral_range, size=count)
    sign = np.where(rng.random(count) < 0.5, -1.0, 1.0)
    phase = rng.uniform(-np.pi, np.pi, size=count)
    still = (np.abs(forward) + np.abs(lateral) < STILL_TRANSLATION) & (np.abs(yaw) < STILL_YAW)
    forward = forward + np.where(still, KICK * sign, 0.0)
    return np.stack([yaw, forward, lateral], axis=1), phase


def sample_panorama(images: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``images`` (count, H, W) at directions (count, ...) in radians, shaped like them.

    Column (a + π) / 2π W, periodic (the right neighbour of the last column is column 0); row
    (e + π/2) / π (H - 1), clipped to the image.
    """
    count, height, width = images.shape
    column = np.mod((azimuth + np.pi) / (2.0 * np.pi) * width, width)
    row = np.clip((elevation + np.pi / 2.0) / np.pi * (height - 1), 0.0, height - 1)
    left = np.floor(column)
    bottom = np.minimum(np.floor(row), height - 2)
    wc, wr = column - left, row - bottom
    left = left.astype(np.intp) % width
    right = (left + 1) % width
    base = (np.arange(count) * height * width).reshape((count,) + (1,) * (azimuth.ndim - 1))
    low = base + bottom.astype(np.intp) * width
    flat = images.reshape(-1)
    return ((1.0 - wr) * ((1.0 - wc) * flat[low + left] + wc * flat[low + right])
            + wr * ((1.0 - wc) * flat[low + width + left] + wc * flat[low + width + right]))


def view_directions(azimuth: np.ndarray, elevation: np.ndarray, motion: np.ndarray, frames: int,
                    motion_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each sample direction (azimuth, elevation: (count, T, n, S) radians) looks in the panorama at
    frame t, for the episode's motion (count, 3), as two arrays shaped like the directions.

    At frame t the animal has turned Ψ = ω t and moved f = F t forward, l = L t sideways. Translation
    shifts a direction by motion_scale g (f sin a - l cos a) in azimuth and motion_scale f sin(e) cos(a)
    in elevation, with g = 0.65 + 0.35 cos(e); rotation adds Ψ to the azimuth.
    """
    steps = np.arange(frames, dtype=np.float64)
    yaw, forward, lateral = (np.multiply.outer(motion[:, k], steps)[..., None, None] for k in range(3))
    sin_az, cos_az = np.sin(azimuth), np.cos(azimuth)
    gain = FLOW_GAIN[0] + FLOW_GAIN[1] * np.cos(elevation)
    shift_azimuth = motion_scale * (forward * sin_az - lateral * cos_az) * gain
    shift_elevation = motion_scale * forward * np.sin(elevation) * cos_az
    return azimuth + yaw + shift_azimuth, elevation + shift_elevation


def render_frames(spec: OpticFlowSpec, difficulty: Difficulty, images: np.ndarray, motion: np.ndarray,
                  phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The movies (count, T, n) float64 in [0, 1] of episodes with these panoramas, motions and jitter phases.

    Each ommatidium averages ``blur_samples`` directions around its axis: the axis itself and directions
    offset by independent N(0, (acceptance/2)²) draws in azimuth and elevation, fresh per ommatidium and
    frame. Then frame t is scaled about 0.5 by 1 + contrast_jitter sin(2π t / (T - 1) + φ), gets
    N(0, sensor_noise²) per ommatidium and is clipped to [0, 1].

    Draw order from ``rng``: blur offsets (count, T, n, S - 1, 2) (azimuth, elevation); then, only when
    the sensor noise is > 0, the noise (count, T, n).
    """
    count, T = len(images), spec.frames
    azimuth, elevation = ommatidium_directions(spec.hex_rings, spec.fov_azimuth_deg, spec.fov_elevation_deg)
    offsets = np.zeros((count, T, azimuth.size, difficulty.blur_samples, 2))
    offsets[:, :, :, 1:] = rng.normal(0.0, np.radians(difficulty.acceptance_deg) / 2.0,
                                      size=(count, T, azimuth.size, difficulty.blur_samples - 1, 2))
    looks = view_directions(azimuth[:, None] + offsets[..., 0], elevation[:, None] + offsets[..., 1], motion, T,
                            spec.motion_scale)
    frames = sample_panorama(images, *looks).mean(axis=-1)
    jitter = 1.0 + spec.contrast_jitter * np.sin(2.0 * np.pi * np.arange(T) / (T - 1) + phase[:, None])
    frames = 0.5 + jitter[..., None] * (frames - 0.5)
    if difficulty.sensor_noise > 0:
        frames = frames + rng.normal(0.0, difficulty.sensor_noise, size=frames.shape)
    return np.clip(frames, 0.0, 1.0)


def episode_arrays(spec: OpticFlowSpec, difficulty: Difficulty, rng: np.random.Generator,
                   count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` episodes: inputs (count, T, n_ommatidia) and targets (count, T, 3), both float32.

    Draw order from ``rng``: the panoramas (``panoramas``), the motions (``self_motion``), then the blur
    offsets and sensor noise (``render_frames``). Targets are the episode's constant (ω, F, L) at every step.
    """
    _check_count(count)
    images = panoramas(rng, count, spec.panorama_height, spec.panorama_width, spec.texture, difficulty.contrast)
    motion, phase = self_motion(rng, spec, count)
    inputs = render_frames(spec, difficulty, images, motion, phase, rng).astype(np.float32)
    targets = np.repeat(motion[:, None, :].astype(np.float32), spec.frames, axis=1)
    return inputs, targets


def _check_count(count: Any) -> None:
    if not (is_integer(count) and count >= 1):
        raise BPUInputError(f"{TASK_NAME}: episode count is {count!r}; expected an integer >= 1")


def chunk_seed_sequence(seed_sequence: np.random.SeedSequence, chunk: int) -> np.random.SeedSequence:
    """Child ``chunk`` of ``seed_sequence``, as ``spawn`` would make it but without spawn's counter, so the
    same call always gives the same child."""
    return np.random.SeedSequence(seed_sequence.entropy, spawn_key=(*seed_sequence.spawn_key, chunk),
                                  pool_size=seed_sequence.pool_size)


def split_arrays(spec: OpticFlowSpec, seed_sequence: np.random.SeedSequence, count: int,
                 preset: str | None = None) -> dict[str, np.ndarray]:
    """One split's ``inputs`` and ``targets`` at ``preset`` (None: the training preset).

    Chunk c holds episodes c·16 .. c·16 + 15, drawn whole from ``chunk_seed_sequence(seed_sequence, c)``;
    the last chunk is cut to the split's count. So the first k episodes of a split are the same whatever
    its size, and nested train subsets are prefixes of one sample.
    """
    _check_count(count)
    difficulty = spec.difficulty(preset)
    chunks = [episode_arrays(spec, difficulty, np.random.default_rng(chunk_seed_sequence(seed_sequence, c)),
                             EPISODES_PER_CHUNK) for c in range(-(-count // EPISODES_PER_CHUNK))]
    return {key: np.concatenate([chunk[i] for chunk in chunks])[:count]
            for i, key in enumerate(("inputs", "targets"))}
