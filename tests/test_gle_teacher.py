"""GLE teacher-student on a small frozen core: the student moves towards the teacher's hidden input weights."""

from __future__ import annotations

import numpy as np

from connectome_bpu.gle_teacher import FAST, run_teacher_check, teacher_core

TINY = {**FAST, "train": 32, "val": 16, "T": 30, "epochs": 4}


def test_teacher_core_is_scaled_to_its_spectral_radius_and_deterministic():
    W = teacher_core(3, FAST)
    assert np.isclose(max(abs(np.linalg.eigvals(W.toarray()))), FAST["radius"], rtol=1e-4)
    assert (W != teacher_core(3, FAST)).nnz == 0


def test_both_rules_fit_the_teacher_and_gle_moves_towards_its_input_weights():
    tables = run_teacher_check(TINY, [0])
    by_seed = tables["by_seed"].set_index("arm")
    assert set(by_seed.index) == {"gle", "bptt"}
    assert (by_seed["output_mse"] < by_seed["initial_output_mse"]).all()
    assert by_seed.loc["gle", "weight_error"] < 1.0
    assert tables["curves"]["grad_cosine"][tables["curves"]["arm"] == "gle"].between(-1, 1).all()
    again = run_teacher_check(TINY, [0])["by_seed"]
    np.testing.assert_array_equal(again["weight_error"].to_numpy(), tables["by_seed"]["weight_error"].to_numpy())
