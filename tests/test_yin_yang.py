"""Yin-Yang seed-system check: generator rules, balance, determinism, and a fast run of the FA/PAL arms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from connectome_bpu.yin_yang import (
    ARMS,
    FAST,
    plot_yin_yang_check,
    run_yin_yang_check,
    yin_yang_class,
    yin_yang_points,
    yin_yang_splits,
)

BY_SEED_COLUMNS = {"seed", "arm", "test_accuracy", "val_accuracy_best", "val_accuracy_final", "final_angle_deg",
                   "epochs"}
CURVE_COLUMNS = {"seed", "arm", "epoch", "val_accuracy", "angle_deg"}


@pytest.fixture(autouse=True)
def one_thread():
    """Other jobs use the same cores: one intra-op thread keeps the small training loops fast and quiet."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize(("x", "y", "expected"), [
    (0.75, 0.5, 2), (0.25, 0.5, 2), (0.78, 0.53, 2), (0.22, 0.46, 2),   # the two dots
    (0.45, 0.5, 1), (0.25, 0.3, 1), (0.5, 0.9, 1), (0.1, 0.6, 1),      # ring round the left dot, upper-left yin
    (0.95, 0.5, 0), (0.75, 0.3, 0), (0.75, 0.7, 0), (0.5, 0.1, 0),     # ring round the right dot, lower yang
])
def test_class_rules_on_hand_chosen_points(x, y, expected):
    assert int(yin_yang_class(x, y)) == expected


def test_points_follow_the_rules_and_the_classes_are_balanced():
    inputs, labels = yin_yang_points(6000, 3)
    assert inputs.shape == (6000, 4) and labels.shape == (6000,)
    assert np.allclose(inputs[:, 2:], 1.0 - inputs[:, :2])
    assert np.all(np.hypot(inputs[:, 0] - 0.5, inputs[:, 1] - 0.5) <= 0.5)
    assert np.array_equal(yin_yang_class(inputs[:, 0], inputs[:, 1]), labels)
    assert np.all(np.abs(np.bincount(labels, minlength=3) / 6000 - 1 / 3) < 0.025)


def test_points_are_a_pure_function_of_seed_and_count():
    first, second = yin_yang_points(500, 11), yin_yang_points(500, 11)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], yin_yang_points(500, 12)[0])


def test_splits_use_consecutive_data_seeds():
    splits = yin_yang_splits({"train": 30, "val": 9, "test": 9, "data_seed": 5})
    for name, seed in (("train", 5), ("val", 6), ("test", 7)):
        inputs, labels = yin_yang_points(len(splits[name][1]), seed)
        assert np.allclose(splits[name][0].numpy(), inputs) and np.array_equal(splits[name][1].numpy(), labels)
    assert [len(splits[name][1]) for name in ("train", "val", "test")] == [30, 9, 9]


@pytest.fixture(scope="module")
def fast_tables():
    return run_yin_yang_check(FAST, [0])


def test_fast_check_returns_every_arm_with_its_columns(fast_tables):
    by_seed, curves = fast_tables["by_seed"], fast_tables["curves"]
    assert set(by_seed.columns) == BY_SEED_COLUMNS and set(curves.columns) == CURVE_COLUMNS
    assert list(by_seed["arm"]) == list(ARMS)
    assert len(curves) == len(ARMS) * (FAST["epochs"] + 1)
    assert by_seed["test_accuracy"].between(0, 1).all()
    angles = by_seed.set_index("arm")["final_angle_deg"]
    assert angles["bp"] == 0.0 and np.isnan(angles["shallow"])


def test_fast_check_pal_feedback_aligns_better_than_fa(fast_tables):
    angles = fast_tables["by_seed"].set_index("arm")["final_angle_deg"]
    assert angles["pal"] < angles["fa"] - 15.0
    start = fast_tables["curves"].query("epoch == 0").set_index("arm")["angle_deg"]
    assert start["pal"] == start["fa"] == start["noise_only"]


def test_check_is_deterministic():
    tiny = {**FAST, "train": 300, "val": 60, "test": 60, "epochs": 2, "arms": ("fa", "pal")}
    first, second = run_yin_yang_check(tiny, [1]), run_yin_yang_check(tiny, [1])
    for key in ("by_seed", "curves"):
        pd.testing.assert_frame_equal(first[key], second[key])


@pytest.mark.parametrize(("settings", "name"), [({"epoch": 3}, "epoch"), ({"arms": ("bp", "xx")}, "xx"),
                                                ({"batch_size": 10_000}, "batch_size")])
def test_bad_settings_raise_naming_the_key(settings, name):
    with pytest.raises(ValueError, match=name):
        run_yin_yang_check(settings, [0])


def test_plot_writes_a_png(fast_tables, tmp_path):
    path = tmp_path / "figures" / "yin_yang.png"
    plot_yin_yang_check(fast_tables, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
