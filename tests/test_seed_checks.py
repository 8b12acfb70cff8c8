"""The verdicts of the seed-system checks are computed from the per-seed tables, and each can fail."""

from __future__ import annotations

import pandas as pd

from connectome_bpu.seed_check_report import VERDICTS, check_markdown


def _table(values: dict[str, list[float]], column: str) -> pd.DataFrame:
    return pd.DataFrame([{"seed": seed, "arm": arm, column: value}
                         for arm, per_seed in values.items() for seed, value in enumerate(per_seed)])


def test_a_clear_paired_advantage_passes_and_a_noisy_one_fails():
    criteria = VERDICTS["line_drawing"].criteria
    clear = _table({"bptt": [0.20, 0.21, 0.22], "tbptt": [0.40, 0.42, 0.41], "ccdni": [0.30, 0.31, 0.33]}, "log_auc")
    clear["test_mse"] = clear["log_auc"]
    assert [c.passed for c in criteria(clear)] == [True, True, True]
    # ccdni better on average, but one seed worse by more than the others gain: the interval spans zero
    noisy = _table({"bptt": [0.20, 0.21, 0.22], "tbptt": [0.40, 0.42, 0.41], "ccdni": [0.30, 0.60, 0.20]}, "log_auc")
    noisy["test_mse"] = clear["test_mse"]
    assert [c.passed for c in criteria(noisy)] == [False, True, True]


def test_mnist1d_is_held_to_the_published_band():
    by_seed = _table({"gle": [0.44, 0.45, 0.43], "bp": [0.38, 0.39, 0.385]}, "test_accuracy")
    beats_bp, in_band = VERDICTS["mnist1d"].criteria(by_seed)
    assert beats_bp.passed and not in_band.passed
    assert "0.44 (mean of 3 seeds)" in in_band.measured
    published = _table({"gle": [0.915, 0.92, 0.91], "bp": [0.80, 0.82, 0.81]}, "test_accuracy")
    assert all(c.passed for c in VERDICTS["mnist1d"].criteria(published))


def test_the_summary_prints_every_verdict_with_its_number():
    by_seed = _table({"gle": [0.44, 0.45, 0.43], "bp": [0.38, 0.39, 0.385]}, "test_accuracy")
    by_seed["val_accuracy_best"] = by_seed["test_accuracy"]
    by_seed["parameter_count"] = 2938
    text = check_markdown("mnist1d", by_seed, "default", [0, 1, 2], {"epochs": 60})
    assert text.count("**PASS**") == 1 and text.count("**FAIL**") == 1
    assert "| gle | 3 |" in text and "91.7" in text
