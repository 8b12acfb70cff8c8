"""The line-drawing seed-system check: exact task generator, sparse feedback, determinism, and a FAST run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from connectome_bpu import line_drawing as ld

TINY = {**ld.DEFAULTS, "n_sequences": 100, "n_test": 100, "epochs": 2, "lesion_epoch": 1, "synth_hidden": 16,
        "arms": ld.ARMS}


@pytest.fixture(scope="module")
def fast_tables():
    return ld.run_line_drawing_check(ld.FAST, [0])


def test_endpoints_are_the_origin_and_a_radius_10_circle_at_60_degree_steps():
    points = ld.endpoints()
    assert points[0] == (0.0, 0.0)
    expected_degrees = {3: 0, 2: 60, 1: 120, -1: 180, -2: 240, -3: 300}
    for k, degrees in expected_degrees.items():
        x, y = points[k]
        assert math.hypot(x, y) == pytest.approx(10.0)
        assert math.degrees(math.atan2(x, y)) % 360 == pytest.approx(degrees)  # (10 sin th, 10 cos th)
    assert points[3] == pytest.approx((0.0, 10.0))
    assert points[-1] == pytest.approx((0.0, -10.0), abs=1e-12)
    assert points[2] == pytest.approx((10 * math.sqrt(3) / 2, 5.0))


def test_sequences_cue_once_and_draw_a_straight_line_ending_at_the_endpoint():
    k = torch.arange(-3, 4)
    split = ld.make_sequences(k, ld.DEFAULTS)
    assert split.inputs.shape == (10, 7, 1) and split.targets.shape == (10, 7, 2)
    torch.testing.assert_close(split.inputs[0, :, 0], 0.1 * k.float())
    assert torch.equal(split.inputs[1:], torch.zeros(9, 7, 1))
    ends = torch.tensor([ld.endpoints()[cue] for cue in k.tolist()], dtype=torch.float32)
    torch.testing.assert_close(split.targets[-1], ends)
    fractions = torch.arange(10, dtype=torch.float32)[:, None, None] / 9  # from the origin to P_k, both included
    torch.testing.assert_close(split.targets, fractions * ends)
    assert torch.equal(split.targets[0], torch.zeros(7, 2))  # the cue's own step asks for no cue information


def test_sparse_feedback_mask():
    assert ld.supervised_steps(ld.DEFAULTS) == [0, 2, 4, 6, 8]
    assert ld.supervised_steps({**ld.DEFAULTS, "spars_int": 3}) == [0, 3, 6, 9]
    targets = torch.ones(10, 4, 2)
    loss_fn = ld.loss_fn_for(targets, ld.supervised_steps(ld.DEFAULTS))
    for t in range(10):
        loss, count = loss_fn(torch.zeros(4, 2), t)
        assert (float(loss), count) == ((8.0, 8) if t % 2 == 0 else (0.0, 0))


def test_data_sizes_classes_and_determinism():
    data = ld.make_data(3, ld.DEFAULTS)
    assert {name: len(split.k) for name, split in data.items()} == {"train": 800, "val": 200, "test": 10_000}
    assert set(data["test"].k.tolist()) == set(range(-3, 4))
    again, other = ld.make_data(3, ld.DEFAULTS), ld.make_data(4, ld.DEFAULTS)
    assert all(torch.equal(data[name].k, again[name].k) for name in data)
    assert not torch.equal(data["train"].k, other["train"].k)


def test_arms_share_initial_cortex_within_a_seed():
    plain, with_synth = ld.new_run(5, TINY, False), ld.new_run(5, TINY, True)
    for a, b in zip(plain.model.parameters(), with_synth.model.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(next(ld.new_run(6, TINY, False).model.parameters()), next(plain.model.parameters()))


@pytest.mark.parametrize("joint", [True, False])
def test_clip_covers_cortex_and_synthesiser_jointly_or_each_alone(joint):
    settings = {**TINY, "joint_clip": joint, "clip": 1.0}
    run = ld.new_run(0, settings, with_synthesiser=True)
    for scale, module in ((3.0, run.model), (40.0, run.synthesiser)):
        for p in module.parameters():
            p.grad = torch.full_like(p, scale)

    def gradients():
        return {name: torch.cat([p.grad.flatten() for p in module.parameters()])
                for name, module in (("cortex", run.model), ("synth", run.synthesiser))}

    before = gradients()
    ld._clip(run, settings, train=True)
    after = gradients()
    if joint:  # one factor for both, so the synthesiser's large gradient shrinks the cortex's step too
        factor = 1.0 / torch.cat(list(before.values())).norm()
        for name in before:
            torch.testing.assert_close(after[name], before[name] * factor)
        assert float(torch.cat(list(after.values())).norm()) == pytest.approx(1.0, rel=1e-5)
    else:
        for name in before:
            assert float(after[name].norm()) == pytest.approx(1.0, rel=1e-5)


def test_every_arm_runs_and_the_check_is_deterministic(tmp_path):
    first, second = (ld.run_line_drawing_check(TINY, [0, 1]) for _ in range(2))
    for name in ("by_seed", "curves", "gap_closure"):
        pd.testing.assert_frame_equal(first[name].drop(columns="seconds", errors="ignore"),
                                      second[name].drop(columns="seconds", errors="ignore"))
    curves = first["curves"]
    assert set(curves["arm"]) == set(ld.ARMS) and len(curves) == 2 * len(ld.ARMS) * TINY["epochs"]
    ccdni = curves[(curves["arm"] == "ccdni") & (curves["epoch"] <= TINY["lesion_epoch"])]
    for lesion in ("ccdni_frozen", "ccdni_off"):  # identical to ccdni up to the lesion
        before = curves[(curves["arm"] == lesion) & (curves["epoch"] <= TINY["lesion_epoch"])]
        np.testing.assert_array_equal(before["val_mse"].to_numpy(), ccdni["val_mse"].to_numpy())
    assert set(first["gap_closure"]["arm"]) == set(ld.SYNTH_ARMS)
    assert ld.plot_line_drawing_check(first, tmp_path / "lesions.png").stat().st_size > 10_000


def test_fast_check_columns_and_ccdni_beats_tbptt(fast_tables, tmp_path):
    by_seed = fast_tables["by_seed"]
    for column in ("seed", "arm", "test_mse", "val_mse_best", "train_mse_final", "auc", "log_auc", "adjoint_cosine",
                   "update_cosine"):
        assert column in by_seed
    assert list(fast_tables["curves"].columns) == ["seed", "arm", "epoch", "train_mse", "val_mse"]
    test = by_seed.set_index("arm")["test_mse"]
    assert test["ccdni"] < test["tbptt"]
    assert np.isfinite(by_seed.set_index("arm").at["ccdni", "adjoint_cosine"])
    assert by_seed.set_index("arm")["adjoint_cosine"].drop("ccdni").isna().all()
    png = ld.plot_line_drawing_check(fast_tables, tmp_path / "line_drawing.png")
    assert png.stat().st_size > 10_000
    # as the workflow gathers it: only the per-seed table and the curves
    gathered = {name: fast_tables[name] for name in ("by_seed", "curves")}
    assert ld.plot_line_drawing_check(gathered, tmp_path / "gathered.png").stat().st_size > 10_000
