"""Task data: bit-exactness against a scalar reference loop, seeding, split files, loss weighting, leakage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from connectome_bpu.errors import BPUInputError
from connectome_bpu.tasks import (
    SplitDef,
    TaskSpec,
    generate_split,
    leakage_overlaps,
    load_split,
    loss_sums,
    nested_train_subset,
    shared_by_design,
    split_fingerprints,
    split_plan,
    task_loss,
    write_split,
)

DATA_SEED = 12345
REFERENCE_TASK_CFG = {  # the original benchmark's sizes (docs/method.md#splits)
    "name": "cx_polar_bump", "heading_bins": 32, "bump_kappa": 8.0, "home_distance_scale": 25.0,
    "data_seed": DATA_SEED,
    "train": {"count": 10000, "T": 50}, "val": {"count": 2000, "T": 50},
    "test": {"count": 2000, "T": [50, 100, 200]},
    "test_noise": {"count": 2000, "T": 200, "noise": [0.0, 0.05, 0.1, 0.2]},
}
SMALL_TASK_CFG = {  # same structure, small enough for unit tests
    **REFERENCE_TASK_CFG,
    "train": {"count": 60, "T": 50}, "val": {"count": 20, "T": 50},
    "test": {"count": 12, "T": [50, 100, 200]},
    "test_noise": {"count": 12, "T": 200, "noise": [0.0, 0.05, 0.1, 0.2]},
}
CARTESIAN = TaskSpec("cartesian")
POLAR = TaskSpec("cx_polar_bump", heading_bins=32, bump_kappa=8.0, home_distance_scale=25.0)


# ------------------------------------ scalar reference loop (docs/method.md#tasks, docs/method.md#splits)


def _reference_controls(rng: np.random.Generator, T: int) -> np.ndarray:
    """One sequence, one scalar draw at a time, in the original's draw order (docs/method.md#tasks)."""
    controls = np.zeros((T, 2), dtype=np.float32)
    t = 0
    run = True
    while t < T:
        if run:
            duration = int(rng.integers(6, 18))
            v_bar = float(rng.uniform(0.55, 1.15))
            w_bar = float(rng.normal(0.0, 0.025))
            sd_v, sd_w = 0.04, 0.02
        else:
            duration = int(rng.integers(2, 7))
            sign = float(rng.choice([-1.0, 1.0]))
            w_bar = sign * float(rng.uniform(0.18, 0.62))
            v_bar = float(rng.uniform(0.05, 0.35))
            sd_v, sd_w = 0.03, 0.04
        for _ in range(duration):
            if t >= T:
                break
            controls[t, 0] = max(0.0, v_bar + rng.normal(0.0, sd_v))
            controls[t, 1] = w_bar + rng.normal(0.0, sd_w)
            t += 1
        run = not run
    return controls


def _reference_targets(spec: TaskSpec, controls: np.ndarray) -> np.ndarray:
    """Integrate one sequence with Python floats; derive the targets in float32 from the float32 state."""
    T = controls.shape[0]
    theta_s, x_s, y_s = (np.zeros(T, dtype=np.float32) for _ in range(3))
    theta = x = y = 0.0
    for t in range(T):
        v, w = float(controls[t, 0]), float(controls[t, 1])
        theta = (theta + w + math.pi) % (2.0 * math.pi) - math.pi
        x += v * np.cos(theta)
        y += v * np.sin(theta)
        theta_s[t], x_s[t], y_s[t] = theta, x, y
    if not spec.is_polar:
        return np.stack([np.cos(theta_s), np.sin(theta_s), x_s, y_s], axis=1)
    phi = np.linspace(-np.pi, np.pi, spec.heading_bins, endpoint=False, dtype=np.float32)
    bump = np.exp(spec.bump_kappa * (np.cos(theta_s[:, None] - phi[None, :]) - 1.0))
    bearing = (np.arctan2(-y_s, -x_s) - theta_s + np.pi) % (2.0 * np.pi) - np.pi
    distance = np.sqrt(x_s**2 + y_s**2) / spec.home_distance_scale
    return np.concatenate([bump, np.cos(bearing)[:, None], np.sin(bearing)[:, None], distance[:, None]], axis=1)


def _reference_split(spec: TaskSpec, split: SplitDef, data_seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence(
        [data_seed, split.k, split.T, int(round(split.noise_std * 1000))]))
    if split.role == "test_noise":
        base_rng = np.random.default_rng(np.random.SeedSequence([data_seed, 90000 + split.T, split.T]))
        clean = np.stack([_reference_controls(base_rng, split.T) for _ in range(split.count)])
        inputs = clean.copy()
        if split.noise_std > 0:
            inputs = clean + rng.normal(0.0, split.noise_std, size=clean.shape).astype(np.float32)
            inputs[:, :, 0] = np.maximum(inputs[:, :, 0], 0.0)
    else:
        clean = np.stack([_reference_controls(rng, split.T) for _ in range(split.count)])
        inputs = clean.copy()
    targets = np.stack([_reference_targets(spec, c) for c in clean]).astype(np.float32)
    return {"inputs": inputs, "clean_inputs": clean, "targets": targets}


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shape, dtype and bytes (so +0.0 vs -0.0 and NaN payloads count as differences)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ generator


@pytest.mark.parametrize("spec", [CARTESIAN, POLAR, TaskSpec("cx_polar_bump", heading_bins=12, bump_kappa=3.5,
                                                            home_distance_scale=10.0)], ids=lambda s: s.cache_name)
@pytest.mark.parametrize("split,data_seed", [
    (SplitDef("train", "train", 0, 40, 50), DATA_SEED),
    (SplitDef("val", "val", 1, 25, 50), 7),
    (SplitDef("test_T200", "test", 4, 6, 200), DATA_SEED),
    (SplitDef("test_T3", "test", 2, 30, 3), 99),  # every sequence truncated inside its first run
    (SplitDef("test_noise_T60_noise0.00", "test_noise", 5, 8, 60, 0.0), DATA_SEED),
    (SplitDef("test_noise_T60_noise0.10", "test_noise", 7, 8, 60, 0.1), 3),
], ids=lambda v: v.name if isinstance(v, SplitDef) else str(v))
def test_vectorised_generator_is_bit_exact_with_scalar_loop(spec, split, data_seed):
    produced = generate_split(spec, split, data_seed=data_seed)
    expected = _reference_split(spec, split, data_seed)
    for key in ("inputs", "clean_inputs", "targets"):
        assert _same_bits(produced[key], expected[key]), key


def test_reference_sizes_reproduce_the_published_statistics():
    """Published statistics (docs/method.md#published-numbers): mean v ≈ 0.69-0.70, sd ω ≈ 0.20-0.21,
    final distance 18.2 (sd 8.2) at T=50."""
    plan = {s.name: s for s in split_plan(REFERENCE_TASK_CFG)}
    train = generate_split(POLAR, plan["train"], data_seed=DATA_SEED)
    assert 0.69 <= train["inputs"][..., 0].mean() <= 0.71
    assert 0.20 <= train["inputs"][..., 1].std() <= 0.21
    test = generate_split(POLAR, plan["test_T50"], data_seed=DATA_SEED)
    final_distance = test["targets"][:, -1, -1].astype(np.float64) * 25.0
    assert final_distance.mean() == pytest.approx(18.2, abs=0.05)
    assert final_distance.std() == pytest.approx(8.2, abs=0.05)


def test_split_plan_reproduces_the_reference_numbering():
    plan = split_plan(REFERENCE_TASK_CFG)
    assert [s.k for s in plan] == list(range(9))
    assert [s.filename for s in plan] == [
        "train_T50.npz", "val_T50.npz", "test_T50.npz", "test_T100.npz", "test_T200.npz",
        "test_noise_T200_noise0.00.npz", "test_noise_T200_noise0.05.npz", "test_noise_T200_noise0.10.npz",
        "test_noise_T200_noise0.20.npz"]
    assert [s.role for s in plan] == ["train", "val"] + ["test"] * 3 + ["test_noise"] * 4
    assert [s.count for s in plan] == [10000] + [2000] * 8
    assert plan[6].name == "test_noise_T200_noise0.05" and plan[6].noise_std == 0.05
    assert plan[8].seed_sequence(DATA_SEED).entropy == [12345, 8, 200, 200]
    assert plan[5].noise_base_seed_sequence(DATA_SEED).entropy == [12345, 90200, 200]


def test_split_plan_refuses_splits_that_share_a_file():
    cfg = {**SMALL_TASK_CFG, "test_noise": {"count": 4, "T": 20, "noise": [0.05, 0.051]}}
    with pytest.raises(BPUInputError, match="share the file"):
        split_plan(cfg)


def test_seed_recipe_is_deterministic_and_every_part_matters():
    split = SplitDef("test_T30", "test", 2, 10, 30)
    first = generate_split(CARTESIAN, split, data_seed=DATA_SEED)
    again = generate_split(CARTESIAN, split, data_seed=DATA_SEED)
    for key, value in first.items():
        assert _same_bits(value, again[key]), key
    rng = np.random.default_rng(np.random.SeedSequence([DATA_SEED, 2, 30, 0]))
    assert _same_bits(first["clean_inputs"], np.stack([_reference_controls(rng, 30) for _ in range(10)]))
    variants = [
        generate_split(CARTESIAN, split, data_seed=DATA_SEED + 1),
        generate_split(CARTESIAN, SplitDef("test_T30", "test", 3, 10, 30), data_seed=DATA_SEED),
    ]
    for variant in variants:
        assert not np.array_equal(variant["clean_inputs"], first["clean_inputs"])
    longer = generate_split(CARTESIAN, SplitDef("test_T31", "test", 2, 10, 31), data_seed=DATA_SEED)
    assert not np.array_equal(longer["clean_inputs"][:, :30], first["clean_inputs"])
    # Same k, different noise level: round(1000·sd) is part of the seed, so the noise is a fresh draw,
    # not a rescaled copy of the other level's noise.
    residuals = []
    for sd in (0.05, 0.1):
        noisy = generate_split(CARTESIAN, SplitDef("n", "test_noise", 6, 10, 30, sd), data_seed=DATA_SEED)
        residuals.append((noisy["inputs"] - noisy["clean_inputs"])[..., 1] / sd)
    assert np.corrcoef(residuals[0].ravel(), residuals[1].ravel())[0, 1] < 0.5


def test_noise_levels_share_one_clean_base_and_noise_zero_is_the_base():
    plan = split_plan(SMALL_TASK_CFG)
    noisy = [generate_split(POLAR, s, data_seed=DATA_SEED) for s in plan if s.role == "test_noise"]
    base = noisy[0]
    for level in noisy:
        assert _same_bits(level["clean_inputs"], base["clean_inputs"])
        assert _same_bits(level["targets"], base["targets"])
    assert _same_bits(base["inputs"], base["clean_inputs"])  # noise 0.00
    for level, sd in zip(noisy[1:], (0.05, 0.1, 0.2)):
        assert (level["inputs"][..., 0] >= 0).all()
        residual = (level["inputs"] - level["clean_inputs"])[..., 1]  # turn rate is never clipped
        assert residual.std() == pytest.approx(sd, rel=0.1)
    test_200 = generate_split(POLAR, next(s for s in plan if s.name == "test_T200"), data_seed=DATA_SEED)
    assert not np.array_equal(test_200["clean_inputs"], base["clean_inputs"])  # a different trajectory set


def test_trajectories_start_at_the_origin_with_heading_zero():
    data = generate_split(CARTESIAN, SplitDef("train", "train", 0, 50, 20), data_seed=DATA_SEED)
    v1 = data["clean_inputs"][:, 0, 0].astype(np.float64)
    w1 = data["clean_inputs"][:, 0, 1].astype(np.float64)  # θ_1 = wrap(0 + ω_1), then the first move
    np.testing.assert_allclose(data["targets"][:, 0, 0], np.cos(w1), atol=1e-6)
    np.testing.assert_allclose(data["targets"][:, 0, 1], np.sin(w1), atol=1e-6)
    np.testing.assert_allclose(data["targets"][:, 0, 2], v1 * np.cos(w1), atol=1e-6)
    np.testing.assert_allclose(data["targets"][:, 0, 3], v1 * np.sin(w1), atol=1e-6)
    # every sequence opens with a run: speeds of at least ~0.55 - 4 sd of the run noise
    assert (data["clean_inputs"][:, 0, 0] > 0.35).all()


@pytest.mark.parametrize("spec", [CARTESIAN, POLAR], ids=lambda s: s.name)
def test_shapes_dtypes_and_stored_fields(spec):
    split = SplitDef("test_noise_T30_noise0.10", "test_noise", 7, 9, 30, 0.1)
    data = generate_split(spec, split, data_seed=DATA_SEED)
    for key in ("inputs", "clean_inputs"):
        assert data[key].shape == (9, 30, 2) and data[key].dtype == np.float32
    assert data["targets"].shape == (9, 30, spec.output_dim) and data["targets"].dtype == np.float32
    assert data["ids"][0] == "test_noise_T30_n0.10-000000" and data["ids"].shape == (9,)
    assert int(data["T"]) == 30 and data["noise_std"] == np.float32(0.1) and int(data["cache_version"]) == 2
    assert str(data["task_kind"]) == spec.name and int(data["data_seed"]) == DATA_SEED
    assert {"landmark_visible_prob", "landmark_noise_std", "passive_displacement_prob",
            "passive_displacement_scale", "content_sha256"} <= set(data)
    if spec.is_polar:
        assert int(data["heading_bins"]) == 32 and float(data["bump_kappa"]) == 8.0
        assert float(data["home_distance_scale"]) == 25.0
        assert data["targets"][..., :32].max() <= 1.0 and data["targets"][..., :32].max(axis=-1).min() > 0.9
        np.testing.assert_allclose(np.hypot(data["targets"][..., 32], data["targets"][..., 33]), 1.0, atol=1e-6)
    else:  # the polar knobs cannot change a cartesian file, so they are stored as not applicable
        assert int(data["heading_bins"]) == -1 and np.isnan(data["bump_kappa"])


def test_task_spec_dimensions_and_cache_names():
    assert (CARTESIAN.input_dim, CARTESIAN.output_dim, CARTESIAN.cache_name) == (2, 4, "cartesian")
    spec = TaskSpec.from_config({**SMALL_TASK_CFG, "heading_bins": 16})
    assert (spec.input_dim, spec.output_dim, spec.cache_name) == (2, 19, "cx_polar_bump_bins16")
    with pytest.raises(BPUInputError, match="heading_bins"):
        TaskSpec("cx_polar_bump", heading_bins=3)
    landmark = TaskSpec.from_config({**SMALL_TASK_CFG, "name": "cx_landmark_bump", "landmark": {"visible_prob": 0.2}})
    assert (landmark.input_dim, landmark.output_dim) == (6, 35)
    assert landmark.cache_name == "cx_landmark_bump_bins32_vis0.20_jump0.08"
    with pytest.raises(BPUInputError, match="not a path-integration task"):
        TaskSpec("mb_associative")


# ------------------------------------------------------------------ split files


def test_write_then_load_round_trips(tmp_path):
    split = SplitDef("val", "val", 1, 7, 12)
    path = tmp_path / POLAR.cache_name / split.filename
    write_split(path, POLAR, split, data_seed=DATA_SEED)
    loaded = load_split(path, POLAR, split, data_seed=DATA_SEED)
    fresh = generate_split(POLAR, split, data_seed=DATA_SEED)
    assert set(loaded) == set(fresh)
    for key in ("inputs", "clean_inputs", "targets", "ids"):
        assert _same_bits(loaded[key], fresh[key]), key
    assert [p.name for p in path.parent.iterdir()] == [split.filename]  # no temporary file left behind


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    np.savez_compressed(path, **arrays)


@pytest.mark.parametrize("spec_arg,split_arg,kwargs,changes,field", [
    (POLAR, SplitDef("val", "val", 1, 7, 13), {}, {}, "'T'"),
    (POLAR, SplitDef("val", "val", 1, 8, 12), {}, {}, "'inputs.shape'"),
    (POLAR, SplitDef("val", "val", 1, 7, 12, 0.05), {}, {}, "'noise_std'"),
    (CARTESIAN, SplitDef("val", "val", 1, 7, 12), {}, {}, "'task_kind'"),
    (TaskSpec("cx_polar_bump", heading_bins=16), SplitDef("val", "val", 1, 7, 12), {}, {}, "'heading_bins'"),
    (TaskSpec("cx_polar_bump", bump_kappa=6.0), SplitDef("val", "val", 1, 7, 12), {}, {}, "'bump_kappa'"),
    (TaskSpec("cx_polar_bump", home_distance_scale=30.0), SplitDef("val", "val", 1, 7, 12), {}, {},
     "'home_distance_scale'"),
    (POLAR, SplitDef("val", "val", 1, 7, 12), {"data_seed": 1}, {}, "'data_seed'"),
    (POLAR, SplitDef("val", "val", 1, 7, 12), {}, {"cache_version": np.array(1, dtype=np.int32)}, "'cache_version'"),
    (POLAR, SplitDef("val", "val", 1, 7, 12), {}, {"clean_inputs": None}, "'clean_inputs'"),
    (POLAR, SplitDef("val", "val", 1, 7, 12), {}, {"targets": np.zeros((7, 12, 35))}, "'targets.dtype'"),
    (POLAR, SplitDef("val", "val", 1, 7, 12), {}, {"targets": np.zeros((7, 12, 35), dtype=np.float32)},
     "'content_sha256'"),
], ids=["T", "count", "noise", "task_kind", "bins", "kappa", "scale", "data_seed", "version", "missing_key",
        "dtype", "content"])
def test_load_split_rejects_every_kind_of_mismatch(tmp_path, spec_arg, split_arg, kwargs, changes, field):
    path = tmp_path / "val_T12.npz"
    write_split(path, POLAR, SplitDef("val", "val", 1, 7, 12), data_seed=DATA_SEED)
    if changes:
        _rewrite(path, **changes)
    with pytest.raises(BPUInputError) as error:
        load_split(path, spec_arg, split_arg, **kwargs)
    assert str(path) in str(error.value) and field in str(error.value)


def test_load_split_names_a_missing_or_unreadable_file(tmp_path):
    split = SplitDef("val", "val", 1, 7, 12)
    with pytest.raises(BPUInputError, match="does not exist"):
        load_split(tmp_path / "absent.npz", POLAR, split)
    (tmp_path / "broken.npz").write_bytes(b"not an archive")
    with pytest.raises(BPUInputError, match="broken.npz"):
        load_split(tmp_path / "broken.npz", POLAR, split)


# ------------------------------------------------------------------ loss


@pytest.mark.parametrize("spec", [CARTESIAN, POLAR], ids=lambda s: s.name)
def test_loss_sums_weight_elements_like_the_concatenated_split(spec):
    generator = torch.Generator().manual_seed(0)
    pred = torch.randn(23, 9, spec.output_dim, generator=generator, dtype=torch.float64)
    target = torch.rand(23, 9, spec.output_dim, generator=generator, dtype=torch.float64)
    whole = task_loss(spec, pred, target)
    bounds = [0, 16, 21, 23]  # unequal batches, the last one small as in a real loader
    parts = [loss_sums(spec, pred[a:b], target[a:b]) for a, b in zip(bounds, bounds[1:])]
    weighted = sum(float(s) for s, _ in parts) / sum(n for _, n in parts)
    assert weighted == pytest.approx(float(whole), rel=1e-12)
    batch_means = np.mean([float(task_loss(spec, pred[a:b], target[a:b])) for a, b in zip(bounds, bounds[1:])])
    assert batch_means != pytest.approx(float(whole), rel=1e-6)  # the original's mean of batch means differs
    assert parts[0][1] == 16 * 9


def test_polar_loss_matches_its_definition_on_a_hand_example():
    spec = TaskSpec("cx_polar_bump", heading_bins=4)
    pred = torch.zeros(1, 1, 7, dtype=torch.float64)  # σ(0) = 0.5 for every bin
    target = torch.tensor([[[1.0, 0.5, 0.0, 0.5, 1.0, 0.0, 0.4]]], dtype=torch.float64)
    pred[0, 0, 4:] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    bump = (0.25 + 0 + 0.25 + 0) / 4
    bearing = (1.0 + 0.0) / 2
    distance = 0.36
    assert float(task_loss(spec, pred, target)) == pytest.approx(bump + bearing + 0.5 * distance)
    with pytest.raises(ValueError, match="last dimension 7"):
        task_loss(spec, pred[..., :6], target[..., :6])


# ------------------------------------------------------------------ sample efficiency and leakage


def test_nested_train_subsets():
    assert [nested_train_subset(1000, f) for f in (0.25, 0.5, 1.0)] == [250, 500, 1000]
    assert nested_train_subset(3, 0.01) == 1
    with pytest.raises(BPUInputError):
        nested_train_subset(10, 0.0)
    with pytest.raises(BPUInputError):
        nested_train_subset(10, 1.5)


def test_leakage_check_compares_content_not_names():
    plan = split_plan(SMALL_TASK_CFG)
    data = {s.name: generate_split(CARTESIAN, s, data_seed=DATA_SEED) for s in plan}
    fingerprints = {name: split_fingerprints(arrays) for name, arrays in data.items()}
    assert all(f.dtype == np.uint64 and len(np.unique(f)) == len(f) for f in fingerprints.values())
    exempt = shared_by_design(plan)
    assert len(exempt) == 6  # the four test_noise levels pairwise
    overlaps = leakage_overlaps(fingerprints, exempt=exempt)
    assert len(overlaps) == 9 * 8 // 2 - 6 and set(overlaps.values()) == {0}
    # the exempt pairs really do share every trajectory, which is why they are exempt
    shared = leakage_overlaps({name: fingerprints[name] for name in list(fingerprints)[5:7]})
    assert list(shared.values()) == [12]
    # inject one train trajectory into val under a different id: found despite the id strings
    val = dict(data["val"])
    val["clean_inputs"] = val["clean_inputs"].copy()
    val["clean_inputs"][3] = data["train"]["clean_inputs"][17]
    leaked = leakage_overlaps({**fingerprints, "val": split_fingerprints(val)}, exempt=exempt)
    assert leaked[("train", "val")] == 1
    assert sum(leaked.values()) == 1
