"""Evaluation metrics (docs/method.md#metrics), with task-specific names, plus the mean-predictor baseline.

Metrics are computed once per evaluation split on the full arrays (all sequences concatenated) in
float64, so no quantity depends on batch size. Each task has its own column set (``METRIC_COLUMNS``):
the original benchmark wrote the polar metrics also under cartesian names (``heading_angular_error`` ==
``heading_bump_angular_error``, ``position_rmse`` == ``home_distance_rmse``, ...) and called the composite
loss ``mse``; here the loss column is ``loss`` and no value appears twice (docs/departures.md#metric-names).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import expit, logit

from . import associative, optic_flow
from .associative import AssociativeSpec
from .errors import BPUInputError
from .landmark import uncued_mask
from .self_motion import heading_bin_angles, wrap_angle
from .tasks import EPISODE_SPECS, AnyTaskSpec, TaskSpec, loss_sums

METRIC_COLUMNS: dict[str, list[str]] = {
    "cartesian": [
        "loss",
        "heading_angular_error",
        "position_rmse",
        "final_home_vector_cosine",
        "final_displacement_error",
    ],
    "cx_polar_bump": [
        "loss",
        "heading_bump_angular_error",
        "bump_mse",
        "home_bearing_angular_error",
        "home_distance_rmse",
        "final_home_bearing_angular_error",
        "final_home_vector_cosine",
        "final_home_distance_error",
    ],
}
# The landmark task scores the polar metrics plus the same home-vector errors at the steps without a
# visible cue, where the network must carry (and, after a jump, have corrected) its own estimate.
LANDMARK_EXTRA = ["uncued_home_bearing_angular_error", "uncued_home_distance_rmse"]
METRIC_COLUMNS["cx_landmark_bump"] = METRIC_COLUMNS["cx_polar_bump"] + LANDMARK_EXTRA
METRIC_COLUMNS[associative.TASK_NAME] = list(associative.METRIC_COLUMNS)
METRIC_COLUMNS[optic_flow.TASK_NAME] = list(optic_flow.METRIC_COLUMNS)
# The one metric per task that the summary leads with: what each task is mainly about (heading from the
# bump for the polar task, position for the cartesian one). Every other metric is reported as detail.
# The landmark task leads with the home bearing, the quantity its cues and jumps are about; the associative
# task with recall after reversal; optic flow with the velocity error over all three components.
PRIMARY_METRIC: dict[str, str] = {"cartesian": "position_rmse", "cx_polar_bump": "heading_bump_angular_error",
                                  "cx_landmark_bump": "home_bearing_angular_error",
                                  associative.TASK_NAME: associative.PRIMARY_METRIC,
                                  optic_flow.TASK_NAME: optic_flow.PRIMARY_METRIC}
# Each training job keeps the raw outputs and targets of the first EXAMPLE_EPISODES episodes of every evaluation
# split in EXAMPLES_FILE beside its metrics, so figures can draw predictions over time without rerunning models.
EXAMPLE_EPISODES = 4
EXAMPLES_FILE = "test_examples.npz"
# The per-(model, seed) drift column: slope over the clean test rows of each task's final-position error
# (the original benchmark fitted its ``final_displacement_error``, which for the polar task is the final
# home-distance error).
DRIFT_COLUMN = "drift_slope_vs_T"
# The associative and optic-flow tasks have one episode length, so they have no drift.
DRIFT_SOURCE = {"cartesian": "final_displacement_error", "cx_polar_bump": "final_home_distance_error",
                "cx_landmark_bump": "final_home_distance_error"}
# The one declared direction of every metric column: statistics orient deltas, rank models and name the
# winning side from this table only, never from substrings of a name (``..._r2`` and ``..._rmse`` look alike to
# such a rule, and an unlisted name must fail loudly rather than be guessed).
METRIC_DIRECTION: dict[str, str] = {
    # every task, plus the training curve, the drift slope and the (wall-clock) speed of a model
    "loss": "lower", "best_val_loss": "lower", "final_train_loss": "lower", DRIFT_COLUMN: "lower",
    "wallclock_latency_ms_per_sequence": "lower",
    # cartesian
    "heading_angular_error": "lower", "position_rmse": "lower", "final_home_vector_cosine": "higher",
    "final_displacement_error": "lower",
    # cx_polar_bump (final_home_vector_cosine above), and cx_landmark_bump's uncued errors
    "heading_bump_angular_error": "lower", "bump_mse": "lower", "home_bearing_angular_error": "lower",
    "home_distance_rmse": "lower", "final_home_bearing_angular_error": "lower", "final_home_distance_error": "lower",
    "uncued_home_bearing_angular_error": "lower", "uncued_home_distance_rmse": "lower",
    # mb_associative
    "query_accuracy": "higher", "initial_probe_accuracy": "higher", "reversal_probe_accuracy": "higher",
    "reversed_odour_accuracy": "higher",
    # optic_flow
    "overall_rmse": "lower", "yaw_rmse": "lower", "forward_rmse": "lower", "lateral_rmse": "lower",
    "translation_rmse": "lower", "yaw_r2": "higher", "forward_r2": "higher", "lateral_r2": "higher",
}
HIGHER_IS_BETTER = frozenset(name for name, direction in METRIC_DIRECTION.items() if direction == "higher")


def metric_direction(name: str) -> str:
    """``"higher"`` or ``"lower"``: the declared better side of a metric column; an undeclared name is an error."""
    try:
        return METRIC_DIRECTION[name]
    except KeyError:
        raise BPUInputError(f"metric {name!r} has no declared direction; declare it in METRIC_DIRECTION "
                            f"(connectome_bpu/metrics.py) as 'higher' or 'lower'") from None


# Mean-predictor bump probabilities are clipped here before the logit, so a bin whose mean target is
# ~0 gets a finite logit.
BUMP_PROBABILITY_CLIP = 1e-6


def _check(spec: TaskSpec, pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.ndim != 3 or pred.shape != target.shape or pred.shape[-1] != spec.output_dim or pred.shape[0] < 1:
        raise ValueError(f"task {spec.name}: predictions {pred.shape} and targets {target.shape} must both be "
                         f"(count >= 1, T, {spec.output_dim})")
    return pred, target


def _loss(spec: TaskSpec, pred: np.ndarray, target: np.ndarray) -> float:
    """The task loss over the whole split (element-weighted by construction: one sum over every element)."""
    import torch

    total, count = loss_sums(spec, torch.from_numpy(pred), torch.from_numpy(target))
    return float(total) / count


def _abs_angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(wrap_angle(a - b))


def decode_bump_heading(bump: np.ndarray, bins: int) -> np.ndarray:
    """Population-vector heading atan2(Σ p_i sin φ_i, Σ p_i cos φ_i) of bump activities p (..., B)."""
    phi = heading_bin_angles(bins).astype(np.float64)
    return np.arctan2(bump @ np.sin(phi), bump @ np.cos(phi))


def _cartesian(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    heading_error = _abs_angle_difference(np.arctan2(pred[..., 1], pred[..., 0]),
                                          np.arctan2(target[..., 1], target[..., 0]))
    pred_final, target_final = pred[:, -1, 2:4], target[:, -1, 2:4]
    norms = np.linalg.norm(pred_final, axis=1) * np.linalg.norm(target_final, axis=1)
    valid = norms > 1e-8  # a zero vector has no direction; such sequences are left out, not scored 0
    if valid.any():
        cosines = np.sum(pred_final[valid] * target_final[valid], axis=1) / norms[valid]
        final_cosine = float(np.mean(np.clip(cosines, -1.0, 1.0)))
    else:
        final_cosine = float("nan")
    return {
        "heading_angular_error": float(np.mean(heading_error)),
        "position_rmse": float(np.sqrt(np.mean((pred[..., 2:4] - target[..., 2:4]) ** 2))),
        "final_home_vector_cosine": final_cosine,
        "final_displacement_error": float(np.mean(np.linalg.norm(pred_final - target_final, axis=1))),
    }


def _polar(spec: TaskSpec, pred: np.ndarray, target: np.ndarray,
           uncued: np.ndarray | None = None) -> dict[str, float]:
    """The polar metrics; with ``uncued`` (count, T) also the home-vector errors at the uncued steps."""
    bins, scale = spec.heading_bins, spec.home_distance_scale
    probability = expit(pred[..., :bins])
    heading_error = _abs_angle_difference(decode_bump_heading(probability, bins),
                                          decode_bump_heading(target[..., :bins], bins))
    bearing_error = _abs_angle_difference(np.arctan2(pred[..., bins + 1], pred[..., bins]),
                                          np.arctan2(target[..., bins + 1], target[..., bins]))
    distance_error = (pred[..., bins + 2] - target[..., bins + 2]) * scale  # world units: ŷ·s − r
    values = {
        "heading_bump_angular_error": float(np.mean(heading_error)),
        "bump_mse": float(np.mean((probability - target[..., :bins]) ** 2)),
        "home_bearing_angular_error": float(np.mean(bearing_error)),
        "home_distance_rmse": float(np.sqrt(np.mean(distance_error**2))),
        "final_home_bearing_angular_error": float(np.mean(bearing_error[:, -1])),
        "final_home_vector_cosine": float(np.mean(np.cos(bearing_error[:, -1]))),
        "final_home_distance_error": float(np.mean(np.abs(distance_error[:, -1]))),
    }
    if uncued is not None:
        any_uncued = bool(uncued.any())
        values["uncued_home_bearing_angular_error"] = float(np.mean(bearing_error[uncued])) if any_uncued else np.nan
        values["uncued_home_distance_rmse"] = (float(np.sqrt(np.mean(distance_error[uncued] ** 2)))
                                               if any_uncued else np.nan)
    return values


def evaluate(spec: AnyTaskSpec, pred: np.ndarray, target: np.ndarray,
             inputs: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of one evaluation split, keyed and ordered as ``METRIC_COLUMNS[spec.name]``.

    ``pred`` are raw model outputs (bump *logits* for the polar tasks, recall logits for the associative
    task), ``target`` the split's targets. The decoded target heading of the polar tasks comes from the
    target bump by the same population-vector decoder as the prediction, so a perfect bump scores
    exactly 0. The landmark task also needs the split's ``inputs``, whose flag channel says where a cue
    was visible. The associative and optic-flow specs score themselves.
    """
    if isinstance(spec, EPISODE_SPECS):
        return spec.evaluate(pred, target)
    pred, target = _check(spec, pred, target)
    if spec.is_landmark:
        if inputs is None:
            raise ValueError("task cx_landmark_bump: evaluate needs the split's inputs (cue visibility)")
        values = _polar(spec, pred, target, uncued_mask(np.asarray(inputs)))
    else:
        values = _polar(spec, pred, target) if spec.is_polar else _cartesian(pred, target)
    values["loss"] = _loss(spec, pred, target)
    return {column: values[column] for column in METRIC_COLUMNS[spec.name]}


def drift_slope(T_values: Sequence[float], final_errors: Sequence[float]) -> float:
    """Least-squares slope of final-position error against sequence length: how fast error grows with T.

    NaN when fewer than two distinct T are given (a slope is undefined) or when any error is NaN.
    """
    T = np.asarray(T_values, dtype=np.float64)
    errors = np.asarray(final_errors, dtype=np.float64)
    if T.shape != errors.shape:
        raise ValueError(f"drift_slope: {T.size} T values but {errors.size} errors")
    if np.unique(T).size < 2:
        return float("nan")
    centred = T - T.mean()
    return float(np.sum(centred * (errors - errors.mean())) / np.sum(centred**2))


def mean_predictor_targets(train_targets: np.ndarray) -> np.ndarray:
    """Per-timestep mean target of the train split, (T, d_out) float64 in target space.

    The mean_predictor baseline predicts this for every sequence: it knows how targets evolve on
    average with time since the start (every trajectory starts at the origin, heading 0) but nothing
    about the sequence at hand, so a model must beat it to have integrated anything.
    """
    targets = np.asarray(train_targets, dtype=np.float64)
    if targets.ndim != 3 or targets.shape[0] < 1:
        raise ValueError(f"train targets must be (count >= 1, T, d_out); got {targets.shape}")
    return targets.mean(axis=0)


def mean_predictor_outputs(mean_targets: np.ndarray, spec: AnyTaskSpec, count: int,
                           T: int) -> np.ndarray:
    """Raw outputs (count, T, d_out) float32 of the mean predictor for an evaluation split of length ``T``.

    Outputs are what a model would emit: for the polar task the bump channels are logits chosen so that
    sigmoid(logit) is the mean bump (probabilities clipped to (1e-6, 1 - 1e-6) first, so every logit is
    finite); bearing cos/sin and distance are predicted as their means. The train split is shorter than
    the long test splits; beyond its length the last timestep's mean is repeated (the best constant
    guess the train data support; it is what makes the baseline's extrapolation error visible), and for
    a shorter split the means are truncated. Optic flow predicts the mean velocity itself, as cartesian does.
    """
    if isinstance(spec, AssociativeSpec):     # logits of the per-step punishment rate (its own method)
        return spec.mean_predictor_outputs(mean_targets, count, T)
    means = np.asarray(mean_targets, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] != spec.output_dim or means.shape[0] < 1:
        raise ValueError(f"mean targets must be (T >= 1, {spec.output_dim}); got {means.shape}")
    steps = np.minimum(np.arange(T), means.shape[0] - 1)
    outputs = means[steps]
    if isinstance(spec, TaskSpec) and spec.is_polar:
        bins = spec.heading_bins
        outputs[:, :bins] = logit(np.clip(outputs[:, :bins], BUMP_PROBABILITY_CLIP, 1.0 - BUMP_PROBABILITY_CLIP))
    return np.ascontiguousarray(np.broadcast_to(outputs.astype(np.float32), (count, T, spec.output_dim)))
