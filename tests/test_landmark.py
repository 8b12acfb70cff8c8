"""Landmark task data: passive jumps, cue visibility and values, noise sets, settings validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from connectome_bpu.errors import BPUInputError
from connectome_bpu.landmark import (
    FLAG_CHANNEL,
    INPUT_DIM,
    LandmarkSettings,
    cue_inputs,
    forced_cue_step,
    landmark_inputs,
    landmark_trajectories,
    noisy_landmark_inputs,
    uncued_mask,
)
from connectome_bpu.self_motion import integrate, wrap_angle
from connectome_bpu.tasks import _draw_controls

SCALE = 25.0  # home_distance_scale


def _controls(count: int = 40, T: int = 50, seed: int = 0) -> np.ndarray:
    return _draw_controls(np.random.default_rng(seed), count, T)


def _cued(controls: np.ndarray, settings: LandmarkSettings, seed: int = 1):
    """Trajectory and cue channels drawn from one landmark generator, as the integrator will."""
    rng = np.random.default_rng(seed)
    theta, x, y, _ = landmark_trajectories(controls, rng, settings)
    return theta, x, y, cue_inputs(theta, x, y, rng, settings, SCALE)


def test_same_seeds_give_identical_arrays():
    controls = _controls()
    settings = LandmarkSettings()
    first = _cued(controls, settings)
    second = _cued(controls, settings)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    inputs = landmark_inputs(controls, first[3])
    noisy = [noisy_landmark_inputs(inputs, np.random.default_rng(7), 0.1) for _ in range(2)]
    np.testing.assert_array_equal(noisy[0], noisy[1])


def test_without_jumps_the_path_is_plain_integration():
    controls = _controls()
    theta, x, y, jumped = landmark_trajectories(controls, np.random.default_rng(1),
                                                LandmarkSettings(displacement_prob=0.0))
    for mine, plain in zip((theta, x, y), integrate(controls)):
        assert mine.dtype == np.float32
        np.testing.assert_array_equal(mine, plain)
    assert not jumped.any()


def test_with_certain_jumps_every_step_jumps_and_heading_is_unchanged():
    controls = _controls()
    theta, x, y, jumped = landmark_trajectories(controls, np.random.default_rng(1),
                                                LandmarkSettings(displacement_prob=1.0))
    plain_theta, plain_x, plain_y = integrate(controls)
    assert jumped.all()
    np.testing.assert_array_equal(theta, plain_theta)
    assert (x != plain_x).all() and (y != plain_y).all()


def test_jumps_happen_exactly_where_flagged_with_rayleigh_lengths():
    """Zero self-motion, so every position increment is a jump."""
    scale, prob = 0.75, 0.5
    still = np.zeros((400, 100, 2), dtype=np.float32)
    _, x, y, jumped = landmark_trajectories(still, np.random.default_rng(3),
                                            LandmarkSettings(displacement_prob=prob, displacement_scale=scale))
    step = np.hypot(np.diff(x, axis=1, prepend=0.0), np.diff(y, axis=1, prepend=0.0))
    assert ((step > 0) == jumped).all()
    assert jumped.mean() == pytest.approx(prob, abs=0.01)
    assert step[jumped].mean() == pytest.approx(scale * math.sqrt(math.pi / 2), rel=0.02)


def test_visible_fraction_is_the_probability_plus_the_forced_step():
    prob, T = 0.15, 50
    controls = _controls(count=1000, T=T)
    cues = _cued(controls, LandmarkSettings(visible_prob=prob))[3]
    expected = prob + (1 - prob) / T  # ≈ prob + 1/T
    assert cues[..., -1].mean() == pytest.approx(expected, abs=0.008)


def test_forced_step_is_always_visible_and_the_last_step_is_not_forced():
    T = 50
    assert forced_cue_step(T) == 5
    assert [forced_cue_step(n) for n in (1, 2, 3, 200)] == [0, 1, 1, 20]
    controls = _controls(T=T)
    flag = _cued(controls, LandmarkSettings())[3][..., -1]
    assert (flag[:, forced_cue_step(T)] == 1).all()
    assert not (flag[:, -1] == 1).all()
    never = _cued(controls, LandmarkSettings(visible_prob=0.0))[3][..., -1]
    expected = np.zeros_like(never)
    expected[:, forced_cue_step(T)] = 1
    np.testing.assert_array_equal(never, expected)


def test_cue_channels_are_zero_without_a_cue_and_the_exact_home_vector_without_noise():
    controls = _controls()
    theta, x, y, cues = _cued(controls, LandmarkSettings(noise_std=0.0, visible_prob=0.3))
    assert cues.shape == controls.shape[:2] + (4,) and cues.dtype == np.float32
    visible = cues[..., 3] == 1
    assert set(np.unique(cues[..., 3])) == {0.0, 1.0}
    assert (cues[~visible] == 0).all()
    bearing = wrap_angle(np.arctan2(-y, -x) - theta)  # the polar targets' formulas
    np.testing.assert_array_equal(cues[..., 0][visible], np.cos(bearing)[visible])
    np.testing.assert_array_equal(cues[..., 1][visible], np.sin(bearing)[visible])
    np.testing.assert_array_equal(cues[..., 2][visible], (np.sqrt(x**2 + y**2) / SCALE)[visible])


def test_noisy_cues_stay_zero_without_a_cue_and_have_a_non_negative_distance():
    controls = _controls()
    theta, x, y, cues = _cued(controls, LandmarkSettings(noise_std=0.5, visible_prob=0.3))
    visible = cues[..., 3] == 1
    assert (cues[~visible] == 0).all()
    assert (cues[..., 2] >= 0).all()
    bearing = wrap_angle(np.arctan2(-y, -x) - theta)
    assert not np.allclose(cues[..., 0][visible], np.cos(bearing)[visible])


def test_landmark_inputs_concatenate_controls_and_cues():
    controls = _controls()
    cues = _cued(controls, LandmarkSettings())[3]
    inputs = landmark_inputs(controls, cues)
    assert inputs.shape == controls.shape[:2] + (INPUT_DIM,) and inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs[..., :2], controls)
    np.testing.assert_array_equal(inputs[..., 2:], cues)


def test_noise_sets_leave_absent_cues_and_the_flag_alone_and_clip_speed_and_distance():
    controls = _controls()
    clean = landmark_inputs(controls, _cued(controls, LandmarkSettings(visible_prob=0.3))[3])
    noisy = noisy_landmark_inputs(clean, np.random.default_rng(5), 2.0)  # large, so clipping happens
    uncued = uncued_mask(clean)
    np.testing.assert_array_equal(noisy[..., FLAG_CHANNEL], clean[..., FLAG_CHANNEL])
    assert (noisy[..., 2:5][uncued] == 0).all()
    assert (noisy[..., 2:5][~uncued] != clean[..., 2:5][~uncued]).any()
    assert (noisy[..., 1] != clean[..., 1]).all()  # turn rate: noisy at every step
    assert (noisy[..., 0] >= 0).all() and (noisy[..., 0] == 0).any()
    assert (noisy[..., 4] >= 0).all() and (noisy[..., 4][~uncued] == 0).any()


def test_noise_sd_zero_copies_and_draws_nothing():
    clean = landmark_inputs(_controls(), _cued(_controls(), LandmarkSettings())[3])
    rng = np.random.default_rng(5)
    copy = noisy_landmark_inputs(clean, rng, 0.0)
    np.testing.assert_array_equal(copy, clean)
    assert copy is not clean
    assert rng.random() == np.random.default_rng(5).random()


def test_uncued_mask_matches_the_flag():
    controls = _controls()
    inputs = landmark_inputs(controls, _cued(controls, LandmarkSettings())[3])
    mask = uncued_mask(inputs)
    assert mask.shape == controls.shape[:2] and mask.dtype == bool
    np.testing.assert_array_equal(mask, inputs[..., FLAG_CHANNEL] == 0)
    assert mask.any() and not mask.all()


def test_settings_from_config():
    assert LandmarkSettings.from_config({"name": "cx_landmark_bump"}) == LandmarkSettings()
    assert LandmarkSettings.from_config({"landmark": None}) == LandmarkSettings()
    settings = LandmarkSettings.from_config({"landmark": {"visible_prob": 0.3, "displacement_scale": 1}})
    assert settings == LandmarkSettings(visible_prob=0.3, displacement_scale=1.0)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("visible_prob", -0.1, "[0, 1]"),
    ("visible_prob", 1.5, "[0, 1]"),
    ("displacement_prob", -0.1, "[0, 1]"),
    ("displacement_prob", 1.5, "[0, 1]"),
    ("visible_prob", float("nan"), "[0, 1]"),
    ("noise_std", -0.01, ">= 0"),
    ("displacement_scale", -1.0, ">= 0"),
    ("displacement_scale", float("inf"), ">= 0"),
    ("noise_std", "loud", "a number"),
])
def test_bad_settings_name_the_key_value_and_range(key, value, expected):
    with pytest.raises(BPUInputError) as error:
        LandmarkSettings.from_config({"landmark": {key: value}})
    message = str(error.value)
    assert f"task.landmark.{key}" in message and str(value) in message and expected in message


def test_bad_landmark_blocks_are_refused():
    with pytest.raises(BPUInputError, match="unknown key.*visible_probability"):
        LandmarkSettings.from_config({"landmark": {"visible_probability": 0.2}})
    with pytest.raises(BPUInputError, match="task.landmark is 0.2; expected a mapping"):
        LandmarkSettings.from_config({"landmark": 0.2})
