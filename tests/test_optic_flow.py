"""Optic-flow task: eye geometry, stimulus, seeding, presets and splits, loss, metrics, baseline, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from connectome_bpu.errors import BPUInputError
from connectome_bpu.hex_lattice import hex_axial, hex_neighbour
from connectome_bpu.metrics import (
    evaluate,
    mean_predictor_outputs,
    mean_predictor_targets,
)
from connectome_bpu.optic_flow import (
    KNOBS,
    METRIC_COLUMNS,
    PRESETS,
    TEXTURES,
    Difficulty,
    OpticFlowSpec,
    ommatidium_directions,
    panoramas,
    render_frames,
    sample_panorama,
    self_motion,
    split_arrays,
    view_directions,
)
from connectome_bpu.tasks import (
    SplitDef,
    generate_split,
    load_split,
    split_plan,
    write_split,
)

DATA_SEED = 12345
SMALL = OpticFlowSpec(hex_rings=2, frames=4, panorama_height=24, panorama_width=64)
SHARP = Difficulty(contrast=1.0, sensor_noise=0.0, acceptance_deg=0.0, blur_samples=1)
TASK_CFG = {"name": "optic_flow", "train": {"count": 5, "T": 50}, "val": {"count": 3, "T": 50},
            "test": {"count": 4, "T": [50, 100]}, "test_noise": {"count": 2, "T": 20, "noise": [0.1]},
            "optic_flow": {"hex_rings": 2, "frames": 4, "panorama_height": 24, "panorama_width": 64}}


def _split(spec: OpticFlowSpec, k: int, count: int, data_seed: int = DATA_SEED) -> dict[str, np.ndarray]:
    split = SplitDef(name=f"s{k}", role="train", k=k, count=count, T=spec.T, preset=spec.preset)
    return split_arrays(spec, split.seed_sequence(data_seed), count)


# ------------------------------------------------------------------ spec


def test_spec_defaults_dimensions_and_stored_knobs():
    spec = OpticFlowSpec()
    assert OpticFlowSpec.from_config({"name": "optic_flow"}) == spec
    assert OpticFlowSpec.from_config({"optic_flow": None}) == spec
    assert OpticFlowSpec.from_config({"optic_flow": {"test_presets": ["easy", "medium", "hard"]}}) == spec
    assert (spec.T, spec.input_dim, spec.output_dim, spec.target_dim) == (16, 61, 3, 3)
    assert spec.name == "optic_flow" and spec.cache_name == "optic_flow_R4_T16_mixed_medium"
    assert spec.difficulty() == PRESETS["medium"] and spec.difficulty("hard") == PRESETS["hard"]
    knobs = spec.knob_values()
    assert tuple(knobs) == tuple(k for k in KNOBS if k not in ("preset", "test_presets"))
    assert all(value.shape == () for value in knobs.values())
    assert knobs["hex_rings"].dtype == np.int64 and knobs["yaw_range"].dtype == np.float64
    assert str(knobs["texture"]) == "mixed"
    # config values given as integers store like the floats they stand for
    assert OpticFlowSpec(yaw_range=1).knob_values()["yaw_range"] == np.float64(1.0)


def test_presets_set_what_the_difficulty_table_says():
    table = {name: (p.contrast, p.sensor_noise, p.acceptance_deg, p.blur_samples) for name, p in PRESETS.items()}
    assert table == {"easy": (1.0, 0.02, 2.0, 8), "medium": (0.65, 0.07, 4.0, 6), "hard": (0.38, 0.14, 6.0, 4)}


def test_schema_names_the_same_knobs_textures_and_presets():
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    section = schema["properties"]["task"]["properties"]["optic_flow"]
    assert tuple(section["required"]) == KNOBS
    assert tuple(section["properties"]["texture"]["enum"]) == TEXTURES
    assert section["properties"]["preset"]["enum"] == list(PRESETS)
    assert section["properties"]["test_presets"]["items"]["enum"] == list(PRESETS)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert OpticFlowSpec.from_config(config["task"]) == OpticFlowSpec()   # config.yaml holds the defaults


# ------------------------------------------------------------------ eye geometry


@pytest.mark.parametrize(("rings", "size"), [(4, 61), (3, 37), (2, 19), (1, 7)])
def test_lattice_spans_the_full_field_of_view_on_both_axes(rings, size):
    azimuth, elevation = ommatidium_directions(rings, 150.0, 95.0)
    assert azimuth.shape == elevation.shape == (size,)
    assert OpticFlowSpec(hex_rings=rings).input_dim == size
    np.testing.assert_allclose([azimuth.min(), azimuth.max()], np.radians([-75.0, 75.0]), rtol=0, atol=1e-12)
    np.testing.assert_allclose([elevation.min(), elevation.max()], np.radians([-47.5, 47.5]), rtol=0, atol=1e-12)
    axial = hex_axial(rings)
    widest = np.isclose(np.abs(azimuth), np.radians(75.0), rtol=0, atol=1e-12)
    tallest = np.isclose(np.abs(elevation), np.radians(47.5), rtol=0, atol=1e-12)
    assert np.array_equal(widest, (np.abs(axial[:, 0]) == rings) & (axial[:, 1] == 0))   # the two side corners
    assert np.array_equal(tallest, np.abs(axial[:, 1]) == rings)                         # the top and bottom rows


@pytest.mark.parametrize("rings", [2, 4])
def test_neighbour_spacing_is_uniform(rings):
    """Every point's nearest neighbour is equally far, and each lattice direction has one spacing."""
    azimuth, elevation = ommatidium_directions(rings, 150.0, 95.0)
    points = np.stack([azimuth, elevation], axis=1)
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    nearest = distance.min(axis=1)
    np.testing.assert_allclose(nearest, nearest[0], rtol=1e-12)
    neighbours = hex_neighbour(hex_axial(rings))
    for direction in range(6):
        has = neighbours[:, direction] >= 0
        step = points[neighbours[has, direction]] - points[has]
        np.testing.assert_allclose(step, np.broadcast_to(step[0], step.shape), rtol=0, atol=1e-12)


def test_translation_and_rotation_move_directions_as_flow_fields_do():
    """Yaw shifts every direction alike; forward flow expands from the front; lateral flow slides across it."""
    azimuth = np.radians([-60.0, -20.0, 20.0, 60.0]).reshape(1, 1, 4, 1)
    elevation = np.zeros_like(azimuth)
    frames = 3
    for motion, check in [
        ((0.2, 0.0, 0.0), lambda shift: np.allclose(shift[0, 2], 0.4)),
        ((0.0, 0.5, 0.0), lambda shift: np.all(np.sign(shift[0, 1:, :, 0]) == np.sign(azimuth[0, 0, :, 0]))),
        ((0.0, 0.0, 0.5), lambda shift: np.all(shift[0, 1:] < 0)),
    ]:
        looks = view_directions(azimuth, elevation, np.array([motion]), frames, 0.55)
        shift = looks[0] - azimuth
        assert np.allclose(shift[0, 0], 0.0) and check(shift), motion
        assert np.allclose(looks[1], 0.0)   # on the horizon, translation never shifts elevation


# ------------------------------------------------------------------ stimulus


def test_gratings_texture_is_the_grating_base_alone():
    """``gratings``: 8 gratings a sin(fx x + fy y + φ) + 0.25 N(0, 1) per pixel, standardised, mapped by contrast."""
    count, height, width, contrast = 3, 24, 64, 0.6
    made = panoramas(np.random.default_rng(5), count, height, width, "gratings", contrast)
    rng = np.random.default_rng(5)
    fx, fy = rng.integers(1, 8, (count, 8)), rng.integers(0, 5, (count, 8))
    phase, amplitude = rng.uniform(-np.pi, np.pi, (count, 8)), rng.uniform(0.15, 1.0, (count, 8))
    x = np.linspace(-np.pi, np.pi, width, endpoint=False)
    y = np.linspace(-np.pi, np.pi, height, endpoint=False)
    base = np.zeros((count, height, width))
    for e in range(count):
        for g in range(8):
            base[e] += (amplitude[e, g] / math.sqrt(fx[e, g] ** 2 + fy[e, g] ** 2 + 1)
                        * np.sin(fx[e, g] * x[None, :] + fy[e, g] * y[:, None] + phase[e, g]))
    base += 0.25 * rng.standard_normal((count, height, width))
    base = (base - base.mean(axis=(1, 2), keepdims=True)) / base.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(made, np.clip(0.5 + 0.5 * contrast * base, 0, 1), rtol=0, atol=1e-12)


def test_every_texture_is_a_distinct_image_in_range():
    images = {texture: panoramas(np.random.default_rng(2), 4, 24, 64, texture, 0.65) for texture in TEXTURES}
    for texture, image in images.items():
        assert image.shape == (4, 24, 64) and image.min() >= 0 and image.max() <= 1, texture
        assert abs(image.mean() - 0.5) < 0.05, texture
    for a in TEXTURES:
        for b in TEXTURES:
            assert a == b or not np.allclose(images[a], images[b]), (a, b)
    faint = panoramas(np.random.default_rng(2), 4, 24, 64, "checker", 0.2)   # low enough that nothing clips
    np.testing.assert_allclose(faint.std(axis=(1, 2)), 0.1, rtol=1e-9)       # standardised, then 0.5 contrast


def test_rotation_only_shifts_the_image():
    """Yaw only, no blur, noise or jitter: frame t is the panorama turned by ω t (here 3 columns per frame)."""
    spec = OpticFlowSpec(hex_rings=3, frames=5, panorama_height=24, panorama_width=64, contrast_jitter=0.0)
    images = panoramas(np.random.default_rng(1), 2, 24, 64, "mixed", 1.0)
    omega = 2 * np.pi * 3 / 64
    motion = np.array([[omega, 0.0, 0.0], [-omega, 0.0, 0.0]])
    frames = render_frames(spec, SHARP, images, motion, np.zeros(2), np.random.default_rng(0))
    azimuth, elevation = ommatidium_directions(3, 150.0, 95.0)
    for t in range(spec.frames):
        turned = np.stack([np.roll(images[0], -3 * t, axis=1), np.roll(images[1], 3 * t, axis=1)])
        at_rest = sample_panorama(turned, np.broadcast_to(azimuth, (2, azimuth.size)),
                                  np.broadcast_to(elevation, (2, elevation.size)))
        np.testing.assert_allclose(frames[:, t], at_rest, rtol=0, atol=1e-9)
        rotated = sample_panorama(images, azimuth + motion[:, :1] * t, np.broadcast_to(elevation, (2, elevation.size)))
        np.testing.assert_allclose(frames[:, t], rotated, rtol=0, atol=1e-12)
    assert not np.allclose(frames[:, 0], frames[:, 1])


def test_sampling_is_bilinear_and_wraps_in_azimuth():
    image = np.arange(12.0).reshape(1, 3, 4)          # rows at elevation -90, 0, 90; columns every 90 degrees
    assert sample_panorama(image, np.array([[-np.pi]]), np.array([[0.0]]))[0, 0] == 4.0
    assert sample_panorama(image, np.array([[-np.pi + np.pi / 4]]), np.array([[np.pi / 4]]))[0, 0] == 6.5
    # between the last column and the first: the right neighbour wraps to column 0
    assert sample_panorama(image, np.array([[np.pi * 3 / 4]]), np.array([[0.0]]))[0, 0] == pytest.approx(5.5)
    assert sample_panorama(image, np.array([[-np.pi]]), np.array([[3.0]]))[0, 0] == 8.0   # clipped at the pole


def test_blur_is_drawn_per_ommatidium_and_per_frame():
    """On an azimuth ramp, blur moves each ommatidium's value by its own mean offset: never one shared shift."""
    spec = OpticFlowSpec(hex_rings=2, frames=4, panorama_height=24, panorama_width=64, contrast_jitter=0.0)
    ramp = np.broadcast_to(0.25 + 0.5 * np.arange(64) / 64, (1, 24, 64))
    still, phase = np.zeros((1, 3)), np.zeros(1)
    sharp = render_frames(spec, SHARP, ramp, still, phase, np.random.default_rng(0))
    blurred = render_frames(spec, Difficulty(1.0, 0.0, 6.0, 4), ramp, still, phase, np.random.default_rng(0))
    change = (blurred - sharp)[0]                      # (T, n)
    assert np.all(np.abs(change) > 0)
    assert np.all(change.std(axis=1) > 1e-4)           # differs between ommatidia within a frame
    assert np.all(np.abs(np.diff(change, axis=0)) > 0)  # and is drawn afresh at every frame
    np.testing.assert_array_equal(sharp[0, 0], sharp[0, 1])


def test_self_motion_ranges_and_the_kick_for_still_episodes():
    motion, phase = self_motion(np.random.default_rng(0), OpticFlowSpec(), 2000)
    assert np.all(np.abs(motion[:, 0]) <= 0.25) and np.all(np.abs(motion[:, 2]) <= 0.35)
    assert np.all(np.abs(motion[:, 1]) <= 0.55 + 0.12) and np.all(np.abs(phase) <= np.pi)
    still = OpticFlowSpec(yaw_range=0.0, forward_range=0.0, lateral_range=0.0)
    kicked, _ = self_motion(np.random.default_rng(0), still, 50)
    assert set(np.unique(kicked[:, 1])) == {-0.12, 0.12} and np.all(kicked[:, [0, 2]] == 0)


def test_split_arrays_shapes_ranges_and_targets():
    arrays = _split(SMALL, 0, 20)
    inputs, targets = arrays["inputs"], arrays["targets"]
    assert inputs.shape == (20, 4, 19) and targets.shape == (20, 4, 3)
    assert inputs.dtype == targets.dtype == np.float32
    assert inputs.min() >= 0 and inputs.max() <= 1
    np.testing.assert_array_equal(targets, np.broadcast_to(targets[:, :1], targets.shape))   # constant velocity


def test_splits_are_deterministic_and_seeded_per_split_and_data_seed():
    first, again = _split(SMALL, 0, 12), _split(SMALL, 0, 12)
    for key in ("inputs", "targets"):
        np.testing.assert_array_equal(first[key], again[key])
    for other in (_split(SMALL, 1, 12), _split(SMALL, 0, 12, data_seed=DATA_SEED + 1)):
        assert not np.array_equal(first["inputs"], other["inputs"])
        assert not np.array_equal(first["targets"], other["targets"])


def test_an_episode_does_not_depend_on_the_size_of_its_split():
    ten, twenty, forty = _split(SMALL, 0, 10), _split(SMALL, 0, 20), _split(SMALL, 0, 40)
    for key in ("inputs", "targets"):
        np.testing.assert_array_equal(twenty[key][:10], ten[key])
        np.testing.assert_array_equal(forty[key][:20], twenty[key])   # across a chunk boundary


def test_difficulty_presets_change_the_movie_not_the_motion():
    seed = np.random.SeedSequence([DATA_SEED, 3])
    easy, hard = (split_arrays(SMALL, seed, 8, preset) for preset in ("easy", "hard"))
    np.testing.assert_array_equal(easy["targets"], hard["targets"])
    assert hard["inputs"].std() < easy["inputs"].std()   # lower contrast


# ------------------------------------------------------------------ splits


def test_split_plan_has_one_test_per_preset_with_distinct_files_seeds_and_ids():
    plan = split_plan(TASK_CFG)
    assert [s.name for s in plan] == ["train", "val", "test_easy", "test_medium", "test_hard"]
    assert [s.filename for s in plan] == ["train_T4_medium.npz", "val_T4_medium.npz", "test_T4_easy.npz",
                                          "test_T4_medium.npz", "test_T4_hard.npz"]
    assert [s.label for s in plan] == ["train", "val", "test_easy", "test", "test_hard"]
    assert [s.role for s in plan] == ["train", "val", "test", "test", "test"]
    assert [s.preset for s in plan] == ["medium", "medium", "easy", "medium", "hard"]
    assert [s.count for s in plan] == [5, 3, 4, 4, 4] and {s.T for s in plan} == {4}
    assert len({tuple(s.seed_sequence(DATA_SEED).entropy) for s in plan}) == len(plan)
    assert plan[4].id_prefix == "test_T4_n0.00_hard"
    hard_training = split_plan({**TASK_CFG, "optic_flow": {**TASK_CFG["optic_flow"], "preset": "hard",
                                                           "test_presets": ["hard", "easy"]}})
    assert [(s.filename, s.label) for s in hard_training] == [
        ("train_T4_hard.npz", "train"), ("val_T4_hard.npz", "val"), ("test_T4_hard.npz", "test"),
        ("test_T4_easy.npz", "test_easy")]
    path = SplitDef("test_T50", "test", 2, 4, 50)
    assert (path.filename, path.id_prefix, path.label, path.preset) == ("test_T50.npz", "test_T50_n0.00", "test", None)


def test_write_then_load_round_trips_and_checks_the_preset(tmp_path):
    spec = OpticFlowSpec.from_config(TASK_CFG)
    plan = {s.name: s for s in split_plan(TASK_CFG)}
    path = tmp_path / plan["test_hard"].filename
    write_split(path, spec, plan["test_hard"], data_seed=DATA_SEED)
    arrays = load_split(path, spec, plan["test_hard"], data_seed=DATA_SEED)
    assert str(arrays["preset"]) == "hard" and str(arrays["ids"][0]) == "test_T4_n0.00_hard-000000"
    np.testing.assert_array_equal(arrays["inputs"], arrays["clean_inputs"])
    np.testing.assert_array_equal(arrays["inputs"], generate_split(spec, plan["test_hard"], data_seed=DATA_SEED)["inputs"])
    as_easy = SplitDef(**{**plan["test_hard"].__dict__, "preset": "easy"})
    with pytest.raises(BPUInputError, match="field 'preset' is 'hard' but 'easy'"):
        load_split(path, spec, as_easy, data_seed=DATA_SEED)
    with pytest.raises(BPUInputError, match="field 'texture'"):
        load_split(path, OpticFlowSpec.from_config({"optic_flow": {**TASK_CFG["optic_flow"], "texture": "checker"}}),
                   plan["test_hard"], data_seed=DATA_SEED)


# ------------------------------------------------------------------ loss, metrics, baseline


def _hand_example() -> tuple[np.ndarray, np.ndarray]:
    """Two episodes of 3 steps; errors at t >= 1: yaw ±0.1, forward 0.2, lateral 0; step 0 off by 100."""
    target = np.repeat(np.array([[[0.1, 0.2, -0.3]], [[-0.1, 0.4, 0.1]]]), 3, axis=1)
    error = np.zeros_like(target)
    error[:, 0] = 100.0
    error[:, 1:, 0] = [[0.1, -0.1], [0.1, 0.1]]
    error[:, 1:, 1] = 0.2
    return target + error, target


def test_metrics_on_a_hand_made_example_ignore_step_zero():
    pred, target = _hand_example()
    spec = OpticFlowSpec(frames=3)
    metrics = evaluate(spec, pred, target)
    assert list(metrics) == METRIC_COLUMNS
    expected = {"loss": 0.05 / 3, "overall_rmse": math.sqrt(0.05 / 3), "yaw_rmse": 0.1, "forward_rmse": 0.2,
                "lateral_rmse": 0.0, "translation_rmse": math.sqrt(0.02),
                "yaw_r2": 1 - 0.01 / (0.01 + 1e-8), "forward_r2": 1 - 0.04 / (0.01 + 1e-8),
                "lateral_r2": 1.0}
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    perfect = evaluate(spec, target, target)
    assert perfect["overall_rmse"] == 0 and perfect["yaw_r2"] == pytest.approx(1.0)


def test_loss_sums_over_batches_equal_the_split_mse_and_skip_step_zero():
    pred, target = (torch.from_numpy(a) for a in _hand_example())
    spec = OpticFlowSpec(frames=3)
    total, count = spec.loss_sums(pred, target)
    assert count == 2 * 2 * 3
    assert float(total) / count == pytest.approx(evaluate(spec, pred.numpy(), target.numpy())["loss"], rel=1e-12)
    parts = [spec.loss_sums(pred[i:i + 1], target[i:i + 1]) for i in range(2)]
    assert sum(float(s) for s, _ in parts) / sum(c for _, c in parts) == pytest.approx(float(total) / count)
    leaf = pred.clone().requires_grad_(True)
    spec.loss_sums(leaf, target)[0].backward()
    assert torch.all(leaf.grad[:, 0] == 0) and torch.all(leaf.grad[:, 1:, 1] != 0)
    with pytest.raises(ValueError, match="T >= 2"):
        spec.loss_sums(pred[:, :1], target[:, :1])


def test_mean_predictor_is_the_train_mean_velocity_and_scores_r2_zero():
    spec = SMALL
    train = _split(spec, 0, 40)["targets"]
    means = mean_predictor_targets(train)
    outputs = mean_predictor_outputs(means, spec, 7, 6)
    assert outputs.shape == (7, 6, 3) and outputs.dtype == np.float32
    np.testing.assert_allclose(outputs[3, 5], train.astype(np.float64).mean(axis=(0, 1)), rtol=1e-6)
    on_train = evaluate(spec, mean_predictor_outputs(means, spec, 40, spec.T), train)
    for name in ("yaw_r2", "forward_r2", "lateral_r2"):
        assert on_train[name] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="mean targets"):
        mean_predictor_outputs(np.zeros((4, 2)), spec, 1, 4)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("knobs", "message"), [
    ({"hex_ring": 4}, r"task\.optic_flow has unknown key\(s\) hex_ring"),
    ({"preset": "extreme"}, r"task\.optic_flow\.preset is 'extreme'; expected one of easy, medium, hard"),
    ({"test_presets": ["easy", "medium", "bogus"]}, r"task\.optic_flow\.test_presets is .*'bogus'.*preset names"),
    ({"test_presets": []}, r"task\.optic_flow\.test_presets is \(\); expected a non-empty list"),
    ({"test_presets": ["medium", "medium"]}, r"task\.optic_flow\.test_presets .* distinct"),
    ({"test_presets": ["easy", "hard"]}, r"task\.optic_flow\.test_presets is \['easy', 'hard'\]; expected it to "
                                         r"include task\.optic_flow\.preset \('medium'\)"),
    ({"hex_rings": 0}, r"task\.optic_flow\.hex_rings is 0; .*lattice too small for the readout"),
    ({"hex_rings": 2.0}, r"task\.optic_flow\.hex_rings is 2\.0; expected an integer"),
    ({"frames": 1}, r"task\.optic_flow\.frames is 1; expected an integer >= 2"),
    ({"panorama_width": 1}, r"task\.optic_flow\.panorama_width is 1"),
    ({"fov_elevation_deg": 200}, r"task\.optic_flow\.fov_elevation_deg is 200; expected .* \(0, 180\]"),
    ({"fov_azimuth_deg": 0}, r"task\.optic_flow\.fov_azimuth_deg is 0"),
    ({"texture": "marble"}, r"task\.optic_flow\.texture is 'marble'; expected one of gratings, naturalistic, "
                            r"checker, mixed"),
    ({"yaw_range": -0.1}, r"task\.optic_flow\.yaw_range is -0\.1; expected a finite number >= 0"),
    ({"motion_scale": float("nan")}, r"task\.optic_flow\.motion_scale is nan"),
    ({"contrast_jitter": 1.0}, r"task\.optic_flow\.contrast_jitter is 1\.0; expected a number in \[0, 1\)"),
])
def test_bad_knobs_are_refused_naming_key_value_and_expectation(knobs, message):
    with pytest.raises(BPUInputError, match=message):
        OpticFlowSpec.from_config({"optic_flow": knobs})


@pytest.mark.parametrize(("values", "key"), [
    ((0.0, 0.1, 2.0, 4), "contrast"), ((1.5, 0.1, 2.0, 4), "contrast"), ((1.0, -0.1, 2.0, 4), "sensor_noise"),
    ((1.0, 0.1, -1.0, 4), "acceptance_deg"), ((1.0, 0.1, 2.0, 0), "blur_samples"), ((1.0, 0.1, 2.0, 2.5), "blur_samples"),
])
def test_bad_difficulty_values_are_refused(values, key):
    with pytest.raises(BPUInputError, match=rf"difficulty {key} is"):
        Difficulty(*values)


def test_bad_section_preset_and_episode_count_are_refused():
    with pytest.raises(BPUInputError, match=r"task\.optic_flow is \[4\]; expected a mapping"):
        OpticFlowSpec.from_config({"optic_flow": [4]})
    with pytest.raises(BPUInputError, match="split preset is 'extreme'"):
        split_arrays(SMALL, np.random.SeedSequence(0), 2, "extreme")
    with pytest.raises(BPUInputError, match="episode count is 0"):
        split_arrays(SMALL, np.random.SeedSequence(0), 0)
