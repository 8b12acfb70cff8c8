"""Path-integration task data: the run/turn control process, targets, split files and the task loss.

Every model, control and seed of a run sees the same sequences, so the data are generated once per
task variant (``TaskSpec.cache_name``) and stored as one ``.npz`` per split. The generator reproduces the
original benchmark's data bit for bit (docs/method.md#tasks, docs/method.md#splits): same
``SeedSequence`` recipe, same RNG draw order, same float64 integration and float32 storage. That is what
lets the original's published numbers (docs/method.md#published-numbers) serve as regression anchors
on this pipeline's data.

Precision pipeline (kept from the original because it decides the stored bits):

* controls are computed in float64 and stored as float32;
* heading and position are integrated in float64 from the *float32* controls, step by step
  (θ_t = wrap(θ_{t-1} + ω_t), then x_t = x_{t-1} + v_t cos θ_t, y likewise), and stored as float32;
* every target channel is then computed in float32 from the float32 heading/position.

torch is imported inside the loss functions only: the rule that writes split files needs numpy alone,
and its environment need not carry torch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .associative import TASK_NAME as ASSOCIATIVE
from .associative import AssociativeSpec
from .associative import split_arrays as associative_split_arrays
from .atomic import save_npz
from .errors import BPUInputError
from .landmark import INPUT_DIM as LANDMARK_INPUT_DIM
from .landmark import (
    LandmarkSettings,
    cue_inputs,
    landmark_inputs,
    landmark_trajectories,
    noisy_landmark_inputs,
)
from .optic_flow import TASK_NAME as OPTIC_FLOW
from .optic_flow import OpticFlowSpec
from .optic_flow import split_arrays as optic_flow_split_arrays
from .self_motion import CONTROL_DIM, heading_bin_angles, integrate, wrap_angle

if TYPE_CHECKING:
    import torch

PATH_TASKS = ("cartesian", "cx_polar_bump", "cx_landmark_bump")
TASK_NAMES = PATH_TASKS + (ASSOCIATIVE, OPTIC_FLOW)
INPUT_DIM = CONTROL_DIM  # [v_t, ω_t]
CACHE_VERSION = 2  # the original benchmark's split-file layout version, kept for comparability
# Split-file field of each landmark knob: the original benchmark's names, kept for comparability.
LANDMARK_FIELDS = {"visible_prob": "landmark_visible_prob", "noise_std": "landmark_noise_std",
                   "displacement_prob": "passive_displacement_prob",
                   "displacement_scale": "passive_displacement_scale"}
LANDMARK_STREAM = 1  # appended to a split's seed entropy for the landmark task's cue and jump draws

# Run/turn segment parameters (docs/method.md#tasks): duration bounds for rng.integers (high exclusive)
# and the per-step noise sds of speed and turn rate.
RUN_DURATION = (6, 18)
TURN_DURATION = (2, 7)
RUN_NOISE_SD = (0.04, 0.02)
TURN_NOISE_SD = (0.03, 0.04)


@dataclass(frozen=True)
class TaskSpec:
    """A path-integration task: what the model sees and must output.

    The bump knobs matter to the polar tasks (``cx_polar_bump``, ``cx_landmark_bump``), the landmark
    settings to ``cx_landmark_bump`` only; cartesian ignores both.
    """

    name: str
    heading_bins: int = 32
    bump_kappa: float = 8.0
    home_distance_scale: float = 25.0
    landmark: LandmarkSettings | None = None

    def __post_init__(self) -> None:
        if self.name not in PATH_TASKS:
            raise BPUInputError(f"task name {self.name!r} is not a path-integration task; expected one of "
                                f"{', '.join(PATH_TASKS)}")
        if self.is_landmark and self.landmark is None:
            object.__setattr__(self, "landmark", LandmarkSettings())
        if self.is_polar:
            if int(self.heading_bins) < 4:
                raise BPUInputError(f"task.heading_bins is {self.heading_bins}; expected an integer >= 4")
            if not self.bump_kappa > 0:
                raise BPUInputError(f"task.bump_kappa is {self.bump_kappa}; expected a number > 0")
            if not self.home_distance_scale > 0:
                raise BPUInputError(f"task.home_distance_scale is {self.home_distance_scale}; expected a number > 0")

    @classmethod
    def from_config(cls, task_cfg: Mapping[str, Any]) -> "TaskSpec":
        """Build from a dict shaped like ``config["task"]`` (extra keys such as split sizes are ignored)."""
        return cls(
            name=str(task_cfg["name"]),
            heading_bins=int(task_cfg.get("heading_bins", 32)),
            bump_kappa=float(task_cfg.get("bump_kappa", 8.0)),
            home_distance_scale=float(task_cfg.get("home_distance_scale", 25.0)),
            landmark=LandmarkSettings.from_config(task_cfg) if task_cfg["name"] == "cx_landmark_bump" else None,
        )

    @property
    def is_polar(self) -> bool:
        """True for the tasks whose targets are a heading bump plus the egocentric home vector."""
        return self.name in ("cx_polar_bump", "cx_landmark_bump")

    @property
    def is_landmark(self) -> bool:
        return self.name == "cx_landmark_bump"

    @property
    def input_dim(self) -> int:
        return LANDMARK_INPUT_DIM if self.is_landmark else INPUT_DIM

    @property
    def output_dim(self) -> int:
        return self.heading_bins + 3 if self.is_polar else 4

    @property
    def target_dim(self) -> int:
        return self.output_dim

    @property
    def cache_name(self) -> str:
        """Readable name of this variant's split files (the task variant adds a hash of every knob)."""
        if self.is_landmark:
            return (f"cx_landmark_bump_bins{self.heading_bins}_vis{self.landmark.visible_prob:.2f}"
                    f"_jump{self.landmark.displacement_prob:.2f}")
        return f"cx_polar_bump_bins{self.heading_bins}" if self.is_polar else "cartesian"

    def knob_values(self) -> dict[str, np.ndarray]:
        """Task knobs stored beside the data. Knobs that cannot change a file's content are stored as
        not-applicable (-1 / NaN), so a cartesian file is the same whatever the polar knobs are set to."""
        nan = np.array(np.nan, dtype=np.float32)
        knobs = {
            "heading_bins": np.array(self.heading_bins if self.is_polar else -1, dtype=np.int32),
            "home_distance_scale": np.array(self.home_distance_scale, dtype=np.float32) if self.is_polar else nan,
            "bump_kappa": np.array(self.bump_kappa, dtype=np.float32) if self.is_polar else nan,
        }
        knobs.update({field: np.array(getattr(self.landmark, key), dtype=np.float32) if self.is_landmark else nan
                      for key, field in LANDMARK_FIELDS.items()})
        return knobs

    def loss_sums(self, pred: "torch.Tensor", target: "torch.Tensor") -> tuple["torch.Tensor", int]:
        return loss_sums(self, pred, target)


AnyTaskSpec = TaskSpec | AssociativeSpec | OpticFlowSpec   # a spec of any family; all answer the same questions
# Families whose episodes have one length fixed by their knobs (``spec.T``) and that score themselves.
EPISODE_SPECS = (AssociativeSpec, OpticFlowSpec)


def task_spec(task_cfg: Mapping[str, Any]) -> AnyTaskSpec:
    """The spec of ``config["task"]``, whatever its family (path integration, associative memory, optic flow).

    Every spec class answers the same questions (input/output width, cache name, stored knobs, loss);
    split generation, loading and metrics dispatch on the class.
    """
    if task_cfg["name"] == ASSOCIATIVE:
        return AssociativeSpec.from_config(task_cfg)
    if task_cfg["name"] == OPTIC_FLOW:
        return OpticFlowSpec.from_config(task_cfg)
    return TaskSpec.from_config(task_cfg)


@dataclass(frozen=True)
class SplitDef:
    """One split file: its place ``k`` in the split list (which seeds it), size, length and input noise.

    ``preset`` is an optic-flow split's difficulty preset (None for every other family): it joins the file
    name and the ids. ``label`` is the ``split`` column of the split's metric rows; it defaults to the
    role, and an optic-flow test split at a preset other than the training one is ``test_<preset>``, so
    its rows stay apart from the clean test rows that summaries read.
    """

    name: str
    role: str
    k: int
    count: int
    T: int
    noise_std: float = 0.0
    preset: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.role)

    @property
    def _preset_suffix(self) -> str:
        return f"_{self.preset}" if self.preset is not None else ""

    @property
    def filename(self) -> str:
        """The original benchmark's file name, e.g. ``train_T50.npz``, ``test_noise_T200_noise0.05.npz``;
        an optic-flow split adds its preset, e.g. ``test_T16_hard.npz``."""
        if self.role == "test_noise":
            return f"test_noise_T{self.T}_noise{self.noise_std:.2f}.npz"
        return f"{self.role}_T{self.T}{self._preset_suffix}.npz"

    @property
    def id_prefix(self) -> str:
        """Prefix of the per-sequence ids, ``<role>_T<T>_n<noise:.2f>`` as in the original benchmark, plus
        ``_<preset>`` for an optic-flow split."""
        return f"{self.role}_T{self.T}_n{self.noise_std:.2f}{self._preset_suffix}"

    def seed_sequence(self, data_seed: int) -> np.random.SeedSequence:
        """``SeedSequence([data_seed, k, T, round(1000·noise)])``: independent of every training seed."""
        return np.random.SeedSequence([int(data_seed), self.k, self.T, int(round(self.noise_std * 1000))])

    def noise_base_seed_sequence(self, data_seed: int) -> np.random.SeedSequence:
        """Seed of the clean trajectories shared by all ``test_noise`` levels of this length.

        ``[data_seed, 90000 + T, T]`` equals the original's ``[12345, 90200, 200]`` for its T = 200.
        """
        return np.random.SeedSequence([int(data_seed), 90_000 + self.T, self.T])


def split_plan(task_cfg: Mapping[str, Any]) -> list[SplitDef]:
    """Every split of a task config, in the order that numbers them: train, val, test per T, test_noise per sd.

    With the original's T list (50, 100, 200) and noise levels (0, .05, .1, .2) this gives k = 0..8
    exactly as the original benchmark numbered them. Two splits that would share a file name (e.g. noise
    0.051 and 0.05 both print as ``0.05``) are refused rather than silently overwriting each other.

    An associative episode has one length fixed by its knobs (``AssociativeSpec.T``), so that task has
    one train, one validation and one test split of that length, and no noise sets; the ``T`` values
    and ``test_noise`` of the config do not apply to it. Nor do they to optic flow (length
    ``OpticFlowSpec.T``), whose splits are train and val at the training preset, then one test split per
    entry of ``test_presets`` (``_optic_flow_rows``).
    """
    train, val, test = task_cfg["train"], task_cfg["val"], task_cfg["test"]
    if task_cfg["name"] == ASSOCIATIVE:
        T = AssociativeSpec.from_config(task_cfg).T
        rows: list[dict[str, Any]] = [
            {"name": "train", "role": "train", "count": int(train["count"]), "T": T},
            {"name": "val", "role": "val", "count": int(val["count"]), "T": T},
            {"name": f"test_T{T}", "role": "test", "count": int(test["count"]), "T": T}]
    elif task_cfg["name"] == OPTIC_FLOW:
        rows = _optic_flow_rows(OpticFlowSpec.from_config(task_cfg), task_cfg)
    else:
        rows = [{"name": "train", "role": "train", "count": int(train["count"]), "T": int(train["T"])},
                {"name": "val", "role": "val", "count": int(val["count"]), "T": int(val["T"])}]
        rows += [{"name": f"test_T{int(T)}", "role": "test", "count": int(test["count"]), "T": int(T)}
                 for T in test["T"]]
        noisy = task_cfg["test_noise"]
        noise_T = int(noisy["T"])
        rows += [{"name": f"test_noise_T{noise_T}_noise{float(sd):.2f}", "role": "test_noise",
                  "count": int(noisy["count"]), "T": noise_T, "noise_std": float(sd)} for sd in noisy["noise"]]
    plan = [SplitDef(k=k, **row) for k, row in enumerate(rows)]
    seen: dict[str, SplitDef] = {}
    for split in plan:
        if split.count < 1 or split.T < 1:
            raise BPUInputError(f"task split {split.name}: count {split.count} and T {split.T} must both be >= 1")
        if split.noise_std < 0:
            raise BPUInputError(f"task split {split.name}: noise sd {split.noise_std} must be >= 0")
        if split.filename in seen:
            raise BPUInputError(f"task splits {seen[split.filename].name!r} and {split.name!r} would share the file "
                                f"{split.filename}; make the T values / noise levels distinct at two decimals")
        seen[split.filename] = split
    return plan


def _optic_flow_rows(spec: OpticFlowSpec, task_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split rows of the optic-flow task: train and val at ``spec.preset``, one test per test preset.

    Every split is named after its preset (``test_<preset>``, file ``test_T16_<preset>.npz``). The test at
    the training preset is labelled ``test`` in the metric rows, the in-distribution test that summaries
    and cross-region comparisons read; the others are ``test_<preset>``.
    """
    T = spec.T
    rows = [{"name": role, "role": role, "count": int(task_cfg[role]["count"]), "T": T, "preset": spec.preset}
            for role in ("train", "val")]
    rows += [{"name": f"test_{preset}", "role": "test", "count": int(task_cfg["test"]["count"]), "T": T,
              "preset": preset, "label": "test" if preset == spec.preset else f"test_{preset}"}
             for preset in spec.test_presets]
    return rows


def nested_train_subset(count: int, fraction: float) -> int:
    """Number of leading train sequences a sample-efficiency run uses: ``round(fraction·count)``, at least 1.

    Sequences of a split are i.i.d. draws (each one continues the split's RNG stream without looking at
    the others), so any prefix is a uniformly random subset, and the prefixes for growing fractions are
    nested. A sample-efficiency curve built on them therefore measures the effect of *adding* data,
    not of drawing a different sample.
    """
    if not 0 < fraction <= 1:
        raise BPUInputError(f"sample-efficiency fraction {fraction} must lie in (0, 1]")
    if count < 1:
        raise BPUInputError(f"train split size {count} must be >= 1")
    return max(1, int(round(fraction * count)))


# --------------------------------------------------------------------------------------- generation


def _draw_controls(rng: np.random.Generator, count: int, T: int) -> np.ndarray:
    """Speed/turn-rate controls (count, T, 2) float32, bit-identical to the original's scalar loop.

    The RNG stream is sequential, so the segment structure stays a Python loop: per segment it makes
    the original's scalar calls in its order (duration, then run: v̄, ω̄ | turn: sign, |ω̄|, v̄) and
    one ``standard_normal(2n)`` for the n kept steps. That array holds the same numbers as the
    original's per-step calls ``normal(0, sd_v)``, ``normal(0, sd_ω)``, alternating (numpy's scalar
    normal is ``0 + sd·z`` of the same standard-normal stream), so de-interleaving it and scaling by
    the segment's sds reproduces every step; that arithmetic runs vectorised over the whole split.
    ``integers(0, 2)`` indexing (-1, 1) consumes the stream as ``choice([-1, 1])`` does (tested).
    Segments are truncated at T before their per-step draws, as in the original.
    """
    integers, uniform, normal, standard_normal = rng.integers, rng.uniform, rng.normal, rng.standard_normal
    lengths: list[int] = []
    base_speed: list[float] = []
    base_turn_rate: list[float] = []
    is_turn: list[bool] = []
    noise: list[np.ndarray] = []
    for _ in range(count):
        t = 0
        turn = False  # every sequence starts with a run
        while t < T:
            if turn:
                duration = int(integers(*TURN_DURATION))
                sign = -1.0 if integers(0, 2) == 0 else 1.0
                omega = sign * uniform(0.18, 0.62)
                speed = uniform(0.05, 0.35)
            else:
                duration = int(integers(*RUN_DURATION))
                speed = uniform(0.55, 1.15)
                omega = normal(0.0, 0.025)
            steps = min(duration, T - t)
            noise.append(standard_normal(2 * steps))
            lengths.append(steps)
            base_speed.append(speed)
            base_turn_rate.append(omega)
            is_turn.append(turn)
            t += steps
            turn = not turn
    step_lengths = np.asarray(lengths)
    z = np.concatenate(noise).reshape(count * T, 2)
    turn_step = np.repeat(np.asarray(is_turn), step_lengths)
    speed_sd = np.where(turn_step, TURN_NOISE_SD[0], RUN_NOISE_SD[0])
    turn_rate_sd = np.where(turn_step, TURN_NOISE_SD[1], RUN_NOISE_SD[1])
    speed = np.repeat(np.asarray(base_speed), step_lengths) + speed_sd * z[:, 0]
    omega = np.repeat(np.asarray(base_turn_rate), step_lengths) + turn_rate_sd * z[:, 1]
    controls = np.empty((count * T, INPUT_DIM), dtype=np.float32)
    controls[:, 0] = np.where(speed > 0.0, speed, 0.0)  # = max(0, v): a non-positive speed becomes +0.0
    controls[:, 1] = omega
    return controls.reshape(count, T, INPUT_DIM)


def _targets(spec: TaskSpec, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Targets (count, T, d_out) float32, computed in float32 from the float32 path state."""
    targets = np.empty(theta.shape + (spec.output_dim,), dtype=np.float32)
    if not spec.is_polar:
        targets[..., 0] = np.cos(theta)
        targets[..., 1] = np.sin(theta)
        targets[..., 2] = x
        targets[..., 3] = y
        return targets
    bins = spec.heading_bins
    targets[..., :bins] = np.exp(spec.bump_kappa * (np.cos(theta[..., None] - heading_bin_angles(bins)) - 1.0))
    bearing = wrap_angle(np.arctan2(-y, -x) - theta)  # egocentric bearing of the start point
    targets[..., bins] = np.cos(bearing)
    targets[..., bins + 1] = np.sin(bearing)
    targets[..., bins + 2] = np.sqrt(x**2 + y**2) / spec.home_distance_scale
    return targets


def _content_sha256(inputs: np.ndarray, targets: np.ndarray) -> str:
    """SHA-256 of the C-order float32 bytes of ``inputs`` then ``targets``: detects corrupted or edited files."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(inputs, dtype=np.float32))
    digest.update(np.ascontiguousarray(targets, dtype=np.float32))
    return digest.hexdigest()


def _clean_path_set(spec: TaskSpec, seed: np.random.SeedSequence, count: int, T: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Clean inputs and targets of ``count`` path sequences drawn from ``seed``.

    The landmark task draws the same self-motion as the polar task from ``seed`` and everything
    landmark-specific (jumps, cue visibility and noise) from a second stream, ``seed``'s entropy plus
    ``LANDMARK_STREAM``, so its cues never shift the self-motion draws.
    """
    controls = _draw_controls(np.random.default_rng(seed), count, T)
    if not spec.is_landmark:
        return controls, _targets(spec, *integrate(controls))
    stream = np.random.default_rng(np.random.SeedSequence([*np.atleast_1d(seed.entropy), LANDMARK_STREAM]))
    theta, x, y, _ = landmark_trajectories(controls, stream, spec.landmark)
    cues = cue_inputs(theta, x, y, stream, spec.landmark, spec.home_distance_scale)
    return landmark_inputs(controls, cues), _targets(spec, theta, x, y)


def _path_arrays(spec: TaskSpec, split: SplitDef, data_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, clean inputs, targets) of one path-integration split.

    train/val/test are clean sets drawn from the split's own seed. ``test_noise`` levels share one clean
    base set (so only the input noise differs between levels): noisy inputs = clean + one
    ``normal(0, sd, (count, T, 2))`` draw from the split's seed, cast to float32 before the float32 sum,
    speed clipped at 0 (the landmark task also perturbs its cues where one is visible:
    ``landmark.noisy_landmark_inputs``); targets always come from the clean set. Noise 0 draws nothing
    and returns the base set unchanged.
    """
    if split.role != "test_noise":
        if split.noise_std != 0:
            raise BPUInputError(f"split {split.name}: only test_noise splits carry input noise (got {split.noise_std})")
        clean, targets = _clean_path_set(spec, split.seed_sequence(data_seed), split.count, split.T)
        return clean.copy(), clean, targets
    clean, targets = _clean_path_set(spec, split.noise_base_seed_sequence(data_seed), split.count, split.T)
    if split.noise_std == 0:
        return clean.copy(), clean, targets
    rng = np.random.default_rng(split.seed_sequence(data_seed))
    if spec.is_landmark:
        return noisy_landmark_inputs(clean, rng, split.noise_std), clean, targets
    inputs = clean + rng.normal(0.0, split.noise_std, size=clean.shape).astype(np.float32)
    inputs[:, :, 0] = np.maximum(inputs[:, :, 0], 0.0)
    return inputs, clean, targets


def generate_split(spec: AnyTaskSpec, split: SplitDef, *, data_seed: int) -> dict[str, np.ndarray]:
    """All arrays of one split file (the original's keys plus ``data_seed``, the knobs and ``content_sha256``;
    an optic-flow file also its ``preset``).

    Associative and optic-flow episodes carry their noise (odour noise, sensor noise) inside the episode;
    their clean inputs are the inputs.
    """
    if isinstance(spec, EPISODE_SPECS):
        seed = split.seed_sequence(data_seed)
        episodes = (associative_split_arrays(spec, seed, data_seed, split.count) if isinstance(spec, AssociativeSpec)
                    else optic_flow_split_arrays(spec, seed, split.count, split.preset))
        inputs, clean, targets = episodes["inputs"], episodes["inputs"], episodes["targets"]
    else:
        inputs, clean, targets = _path_arrays(spec, split, data_seed)
    arrays = {
        "inputs": inputs,
        "clean_inputs": clean,
        "targets": targets,
        "ids": np.array([f"{split.id_prefix}-{i:06d}" for i in range(split.count)]),
        "T": np.array(split.T, dtype=np.int32),
        "noise_std": np.array(split.noise_std, dtype=np.float32),
        "cache_version": np.array(CACHE_VERSION, dtype=np.int32),
        "task_kind": np.array(spec.name),
        "data_seed": np.array(data_seed, dtype=np.int64),
        "content_sha256": np.array(_content_sha256(inputs, targets)),
    }
    if split.preset is not None:
        arrays["preset"] = np.array(split.preset)
    arrays.update(spec.knob_values())
    return arrays


def write_split(path: str | os.PathLike, spec: AnyTaskSpec, split: SplitDef, *, data_seed: int) -> None:
    """Generate one split and write it atomically (compressed npz), so a crash never leaves a half file."""
    save_npz(path, **generate_split(spec, split, data_seed=data_seed))


# --------------------------------------------------------------------------------------- loading


def _mismatch(path: str | os.PathLike, field: str, found: Any, expected: Any) -> BPUInputError:
    return BPUInputError(f"split file {os.fspath(path)}: field '{field}' is {found!r} but {expected!r} was "
                         f"expected; the file is stale or belongs to another task/config (delete it so the "
                         f"workflow regenerates it)")


def _same_value(stored: np.ndarray, expected: np.ndarray) -> bool:
    """Equal 0-d values, where NaN (a knob that does not apply) equals NaN."""
    if stored.dtype.kind == "f" and expected.dtype.kind == "f" and np.isnan(stored) and np.isnan(expected):
        return True
    return bool(stored == expected)


def load_split(path: str | os.PathLike, spec: AnyTaskSpec, split: SplitDef, *,
               data_seed: int | None = None) -> dict[str, np.ndarray]:
    """Load a split file and prove it is the one asked for; never trust a stale cache silently.

    Checks, each failing with a :class:`BPUInputError` naming the file and the field: presence of every
    key, ``cache_version``, ``task_kind``, ``T``, ``noise_std``, ``preset`` (optic flow), every knob of the task (``knob_values``,
    compared at its stored precision), ``data_seed`` when given, array shapes and dtypes, and the content
    hash of inputs and targets.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise BPUInputError(f"split file {os.fspath(path)} does not exist (split {split.name} of task "
                            f"{spec.cache_name})") from None
    except (OSError, ValueError) as error:
        raise BPUInputError(f"split file {os.fspath(path)} cannot be read as an npz archive: {error}") from None

    knobs = spec.knob_values()
    required = ("inputs", "clean_inputs", "targets", "ids", "T", "noise_std", "cache_version", "task_kind",
                "data_seed", "content_sha256", *(("preset",) if split.preset is not None else ()), *knobs)
    for key in required:
        if key not in arrays:
            raise _mismatch(path, key, "<missing>", "present")

    def scalar(key: str) -> Any:
        return arrays[key].item()

    if scalar("cache_version") != CACHE_VERSION:
        raise _mismatch(path, "cache_version", scalar("cache_version"), CACHE_VERSION)
    if str(scalar("task_kind")) != spec.name:
        raise _mismatch(path, "task_kind", str(scalar("task_kind")), spec.name)
    if scalar("T") != split.T:
        raise _mismatch(path, "T", scalar("T"), split.T)
    if arrays["noise_std"] != np.float32(split.noise_std):
        raise _mismatch(path, "noise_std", scalar("noise_std"), float(np.float32(split.noise_std)))
    if split.preset is not None and str(scalar("preset")) != split.preset:
        raise _mismatch(path, "preset", str(scalar("preset")), split.preset)
    for key, expected in knobs.items():
        if not _same_value(arrays[key], expected):
            raise _mismatch(path, key, scalar(key), expected.item())
    if data_seed is not None and scalar("data_seed") != data_seed:
        raise _mismatch(path, "data_seed", scalar("data_seed"), int(data_seed))

    expected_shapes = {
        "inputs": (split.count, split.T, spec.input_dim),
        "clean_inputs": (split.count, split.T, spec.input_dim),
        "targets": (split.count, split.T, spec.target_dim),
    }
    for key, shape in expected_shapes.items():
        if arrays[key].shape != shape:
            raise _mismatch(path, f"{key}.shape", arrays[key].shape, shape)
        if arrays[key].dtype != np.float32:
            raise _mismatch(path, f"{key}.dtype", str(arrays[key].dtype), "float32")
    if arrays["ids"].shape != (split.count,):
        raise _mismatch(path, "ids.shape", arrays["ids"].shape, (split.count,))
    digest = _content_sha256(arrays["inputs"], arrays["targets"])
    if str(scalar("content_sha256")) != digest:
        raise _mismatch(path, "content_sha256", str(scalar("content_sha256")), digest)
    return arrays


# --------------------------------------------------------------------------------------- leakage check


def split_fingerprints(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """One uint64 per sequence: the first 8 bytes (little endian) of SHA-1 over its clean float32 inputs.

    Clean inputs determine the whole trajectory (targets are a function of them), so equal fingerprints
    mean the same trajectory, whatever the split's name, noise level or id strings say. Sequences of
    different length never match (a T=50 sequence is not compared with prefixes of a T=200 one).
    """
    clean = np.ascontiguousarray(arrays["clean_inputs"], dtype=np.float32)
    return np.array([int.from_bytes(hashlib.sha1(sequence).digest()[:8], "little") for sequence in clean],
                    dtype=np.uint64)


def shared_by_design(plan: list[SplitDef]) -> set[tuple[str, str]]:
    """Pairs of split names that share trajectories on purpose: ``test_noise`` levels of one length reuse one
    clean base set, so only their input noise differs. A leakage report must exempt exactly these pairs."""
    noisy = [split for split in plan if split.role == "test_noise"]
    return {(a.name, b.name) for i, a in enumerate(noisy) for b in noisy[i + 1:] if a.T == b.T}


def leakage_overlaps(fingerprints_by_split: Mapping[str, np.ndarray], *,
                     exempt: set[tuple[str, str]] | frozenset = frozenset()) -> dict[tuple[str, str], int]:
    """For every pair of splits (in the mapping's order, minus ``exempt`` pairs in either order), the number
    of sequences of the first split whose trajectory also occurs in the second.

    Comparing id strings could never fail, because ids embed the split name; this compares content
    (docs/departures.md#leakage-check).
    """
    names = list(fingerprints_by_split)
    counts: dict[tuple[str, str], int] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if (a, b) in exempt or (b, a) in exempt:
                continue
            counts[(a, b)] = int(np.isin(fingerprints_by_split[a], fingerprints_by_split[b]).sum())
    return counts


# --------------------------------------------------------------------------------------- loss


def _check_pair(spec: TaskSpec, pred: "torch.Tensor", target: "torch.Tensor") -> None:
    if pred.shape != target.shape or pred.shape[-1] != spec.output_dim:
        raise ValueError(f"task {spec.name}: prediction shape {tuple(pred.shape)} and target shape "
                         f"{tuple(target.shape)} must be equal with last dimension {spec.output_dim}")


def task_loss(spec: TaskSpec, pred: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
    """The training loss (docs/method.md#loss), each mean over all batch/time/channel elements of its part.

    cartesian: MSE over all elements. cx_polar_bump: mean((σ(bump logits) − bump)²) + mean((ŷ_cos,sin − t)²)
    + 0.5·mean((ŷ_dist − r/s)²), σ applied to the bump logits only.
    """
    import torch

    _check_pair(spec, pred, target)
    if not spec.is_polar:
        return torch.mean((pred - target) ** 2)
    bins = spec.heading_bins
    bump = torch.mean((torch.sigmoid(pred[..., :bins]) - target[..., :bins]) ** 2)
    bearing = torch.mean((pred[..., bins:bins + 2] - target[..., bins:bins + 2]) ** 2)
    distance = torch.mean((pred[..., bins + 2] - target[..., bins + 2]) ** 2)
    return bump + bearing + 0.5 * distance


def loss_sums(spec: TaskSpec, pred: "torch.Tensor", target: "torch.Tensor") -> tuple["torch.Tensor", int]:
    """``(sum, count)`` such that Σ sums / Σ counts over the batches of a split equals ``task_loss`` on the
    concatenated split, whatever the batch sizes (docs/departures.md#loss-means).

    The weighting unit is the (sequence, timestep) position: ``count`` = number of positions, ``sum`` = the
    sum over positions of each position's loss contribution. Every part of the loss is a mean over
    positions × its channels, so a position contributes
    cartesian: Σ_c (ŷ_c − y_c)² / 4;
    polar: Σ_i (σ(ŷ_i) − bump_i)² / B + Σ_{cos,sin} (ŷ − t)² / 2 + 0.5·(ŷ_dist − r/s)².
    Each position has the same channels, so this is also the element-weighted mean.
    """
    import torch

    _check_pair(spec, pred, target)
    positions = int(np.prod(pred.shape[:-1]))
    if not spec.is_polar:
        return torch.sum((pred - target) ** 2) / spec.output_dim, positions
    bins = spec.heading_bins
    bump = torch.sum((torch.sigmoid(pred[..., :bins]) - target[..., :bins]) ** 2) / bins
    bearing = torch.sum((pred[..., bins:bins + 2] - target[..., bins:bins + 2]) ** 2) / 2
    distance = torch.sum((pred[..., bins + 2] - target[..., bins + 2]) ** 2)
    return bump + bearing + 0.5 * distance, positions
