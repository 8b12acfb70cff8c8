"""Metrics against hand-computed values on tiny arrays, the drift slope and the mean-predictor baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import expit, logit

from connectome_bpu.metrics import (
    DRIFT_SOURCE,
    METRIC_COLUMNS,
    drift_slope,
    evaluate,
    mean_predictor_outputs,
    mean_predictor_targets,
)
from connectome_bpu.tasks import SplitDef, TaskSpec, generate_split, heading_bin_angles, task_loss

CARTESIAN = TaskSpec("cartesian")
POLAR = TaskSpec("cx_polar_bump", heading_bins=8, bump_kappa=8.0, home_distance_scale=25.0)


def _cartesian_targets(theta: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return np.concatenate([np.cos(theta)[..., None], np.sin(theta)[..., None], xy], axis=-1).astype(np.float32)


def _polar_targets(spec: TaskSpec, theta: np.ndarray, bearing: np.ndarray, distance: np.ndarray) -> np.ndarray:
    phi = heading_bin_angles(spec.heading_bins).astype(np.float64)
    bump = np.exp(spec.bump_kappa * (np.cos(theta[..., None] - phi) - 1.0))
    return np.concatenate([bump, np.cos(bearing)[..., None], np.sin(bearing)[..., None],
                           (distance / spec.home_distance_scale)[..., None]], axis=-1).astype(np.float32)


def _rng_arrays(shape):
    rng = np.random.default_rng(4)
    return rng.uniform(-math.pi, math.pi, shape), rng.uniform(-5, 5, shape + (2,)), rng.uniform(1, 30, shape)


# ------------------------------------------------------------------ cartesian


def test_cartesian_perfect_prediction_scores_zero_error_and_cosine_one():
    theta, xy, _ = _rng_arrays((3, 5))
    target = _cartesian_targets(theta, xy)
    metrics = evaluate(CARTESIAN, target, target)
    assert list(metrics) == METRIC_COLUMNS["cartesian"]
    assert metrics["loss"] == 0.0
    assert metrics["heading_angular_error"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["position_rmse"] == 0.0 and metrics["final_displacement_error"] == 0.0
    assert metrics["final_home_vector_cosine"] == pytest.approx(1.0)


def test_cartesian_known_rotation_and_offset():
    theta, xy, _ = _rng_arrays((4, 6))
    target = _cartesian_targets(theta, xy)
    rotation = 0.3
    c, s = math.cos(rotation), math.sin(rotation)
    final_xy = xy[:, -1]
    rotated_final = np.stack([c * final_xy[:, 0] - s * final_xy[:, 1], s * final_xy[:, 0] + c * final_xy[:, 1]], 1)
    pred = _cartesian_targets(theta + rotation, xy + np.array([3.0, 4.0]))
    metrics = evaluate(CARTESIAN, pred, target)
    assert metrics["heading_angular_error"] == pytest.approx(rotation, abs=1e-6)
    assert metrics["position_rmse"] == pytest.approx(math.sqrt((9 + 16) / 2), rel=1e-6)
    assert metrics["final_displacement_error"] == pytest.approx(5.0, rel=1e-6)
    assert metrics["loss"] == pytest.approx(float(task_loss(CARTESIAN, torch.from_numpy(pred),
                                                             torch.from_numpy(target))), rel=1e-6)
    pred[:, -1, 2:4] = rotated_final  # rotating the final position by 0.3 rad gives cosine cos(0.3)
    assert evaluate(CARTESIAN, pred, target)["final_home_vector_cosine"] == pytest.approx(c, rel=1e-6)


def test_heading_error_wraps_around_pi():
    target = _cartesian_targets(np.full((1, 1), -3.0), np.ones((1, 1, 2)))
    pred = _cartesian_targets(np.full((1, 1), 3.0), np.ones((1, 1, 2)))
    assert evaluate(CARTESIAN, pred, target)["heading_angular_error"] == pytest.approx(2 * math.pi - 6.0, abs=1e-6)


def test_final_cosine_skips_zero_vectors_and_is_nan_without_any():
    target = _cartesian_targets(np.zeros((2, 3)), np.ones((2, 3, 2)))
    pred = target.copy()
    pred[0, -1, 2:4] = 0.0  # no direction: left out
    pred[1, -1, 2:4] = [-1.0, -1.0]  # opposite: cosine -1
    assert evaluate(CARTESIAN, pred, target)["final_home_vector_cosine"] == pytest.approx(-1.0)
    pred[1, -1, 2:4] = 0.0
    assert math.isnan(evaluate(CARTESIAN, pred, target)["final_home_vector_cosine"])


# ------------------------------------------------------------------ polar


def test_polar_perfect_logits_score_zero():
    theta, _, distance = _rng_arrays((3, 5))
    bearing = np.random.default_rng(1).uniform(-math.pi, math.pi, (3, 5))
    target = _polar_targets(POLAR, theta, bearing, distance)
    pred = target.astype(np.float64)
    pred[..., :8] = logit(np.clip(pred[..., :8], 1e-12, 1 - 1e-12))
    metrics = evaluate(POLAR, pred.astype(np.float32), target)
    assert list(metrics) == METRIC_COLUMNS["cx_polar_bump"]
    for name in ("heading_bump_angular_error", "bump_mse", "home_bearing_angular_error", "home_distance_rmse",
                 "final_home_bearing_angular_error", "final_home_distance_error", "loss"):
        assert metrics[name] == pytest.approx(0.0, abs=1e-5), name
    assert metrics["final_home_vector_cosine"] == pytest.approx(1.0)


def test_polar_known_errors():
    spec = POLAR
    theta, _, distance = _rng_arrays((4, 6))
    bearing = np.random.default_rng(2).uniform(-math.pi, math.pi, (4, 6))
    target = _polar_targets(spec, theta, bearing, distance)
    pred = _polar_targets(spec, theta + 2 * math.pi / 8, bearing + 0.4, distance + 2.0).astype(np.float64)
    probability = pred[..., :8].copy()
    pred[..., :8] = logit(probability)
    metrics = evaluate(spec, pred.astype(np.float32), target)
    # a bump rotated by one bin decodes to a heading one bin width (2π/8) away
    assert metrics["heading_bump_angular_error"] == pytest.approx(2 * math.pi / 8, abs=1e-4)
    assert metrics["bump_mse"] == pytest.approx(np.mean((probability - target[..., :8]) ** 2), rel=1e-4)
    assert metrics["home_bearing_angular_error"] == pytest.approx(0.4, abs=1e-5)
    assert metrics["final_home_bearing_angular_error"] == pytest.approx(0.4, abs=1e-5)
    assert metrics["final_home_vector_cosine"] == pytest.approx(math.cos(0.4), abs=1e-5)
    assert metrics["home_distance_rmse"] == pytest.approx(2.0, abs=1e-4)  # world units, not r/s
    assert metrics["final_home_distance_error"] == pytest.approx(2.0, abs=1e-4)
    expected_loss = float(task_loss(spec, torch.from_numpy(pred.astype(np.float32)).double(),
                                    torch.from_numpy(target).double()))
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-9)


def test_no_metric_column_is_duplicated():
    for columns in METRIC_COLUMNS.values():
        assert len(columns) == len(set(columns)) and columns[0] == "loss"
    assert "heading_angular_error" not in METRIC_COLUMNS["cx_polar_bump"]
    assert "position_rmse" not in METRIC_COLUMNS["cx_polar_bump"] and "mse" not in METRIC_COLUMNS["cartesian"]


def test_evaluate_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="count >= 1"):
        evaluate(CARTESIAN, np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))


# ------------------------------------------------------------------ drift slope


def test_drift_slope():
    assert drift_slope([50, 100, 200], [7.0, 12.0, 22.0]) == pytest.approx(0.1)
    assert drift_slope([50, 100, 200], [3.0, 9.0, 8.0]) == pytest.approx(np.polyfit([50, 100, 200], [3, 9, 8], 1)[0])
    assert math.isnan(drift_slope([50], [3.0]))
    assert math.isnan(drift_slope([50, 50], [3.0, 4.0]))
    assert math.isnan(drift_slope([50, 100], [3.0, float("nan")]))
    assert all(source in METRIC_COLUMNS[task] for task, source in DRIFT_SOURCE.items())
    assert set(DRIFT_SOURCE) == set(METRIC_COLUMNS) - {"mb_associative", "optic_flow"}   # one length: no drift


# ------------------------------------------------------------------ mean predictor


def test_mean_predictor_cartesian_is_the_per_timestep_mean_and_repeats_the_last_step():
    train = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    means = mean_predictor_targets(train)
    np.testing.assert_array_equal(means, (train[0] + train[1]) / 2)
    outputs = mean_predictor_outputs(means, CARTESIAN, count=5, T=6)
    assert outputs.shape == (5, 6, 4) and outputs.dtype == np.float32 and outputs.flags.writeable
    np.testing.assert_array_equal(outputs[:, :3], np.broadcast_to(means, (5, 3, 4)))
    np.testing.assert_array_equal(outputs[:, 3:], np.broadcast_to(means[-1], (5, 3, 4)))
    np.testing.assert_array_equal(mean_predictor_outputs(means, CARTESIAN, count=1, T=2)[0], means[:2])


def test_mean_predictor_polar_logits_reproduce_the_mean_bump():
    spec = TaskSpec("cx_polar_bump", heading_bins=32)
    train = generate_split(spec, SplitDef("train", "train", 0, 200, 20), data_seed=12345)["targets"]
    means = mean_predictor_targets(train)
    outputs = mean_predictor_outputs(means, spec, count=3, T=20)
    probability = expit(outputs[0, :, :32].astype(np.float64))
    np.testing.assert_allclose(probability, np.clip(means[:, :32], 1e-6, 1 - 1e-6), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(outputs[0, :, 32:], means[:, 32:], rtol=1e-6)
    assert np.isfinite(outputs).all()
    # evaluated against its own train split it is a sane but imperfect predictor
    metrics = evaluate(spec, mean_predictor_outputs(means, spec, count=200, T=20), train)
    assert 0 < metrics["heading_bump_angular_error"] < math.pi / 2
    assert metrics["final_home_vector_cosine"] > 0
    distance = train[..., 34].astype(np.float64) * 25.0
    assert metrics["home_distance_rmse"] == pytest.approx(np.sqrt(np.mean((distance - distance.mean(0)) ** 2)),
                                                          rel=1e-5)
