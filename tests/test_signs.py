"""Transmitter signs, weight coverage and the signed/unsigned primary policy (docs/method.md#signs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from connectome_bpu.errors import BPUInputError
from connectome_bpu.signs import apply_signs, choose_primary, neuron_signs, sign_coverage, transmitter_sign


@pytest.mark.parametrize("label, sign", [
    ("ACh", 1), ("ach", 1), (" acetylcholine ", 1), ("Acetylcholine", 1),
    ("GABA", -1), ("gaba", -1),
    ("Glu", -1), ("glutamate", -1), ("GLUTAMATE", -1),
    ("DA", 0), ("dopamine", 0), ("5HT", 0), ("serotonin", 0), ("Oct", 0), ("octopamine", 0),
    ("", 0), ("   ", 0), (None, 0), (float("nan"), 0), (np.nan, 0), (3, 0),
    # composites: accepted only when every part maps to the same canonical transmitter
    ("ACh/ACh", 1), ("ACh, acetylcholine", 1), ("gaba;GABA", -1), ("Glu|glutamate", -1), ("ach+ACh", 1),
    ("ACh/", 1),                  # an empty part from a trailing separator is ignored
    ("ACh/GABA", 0), ("ACh+DA", 0), ("DA/DA", 0),
    ("Glu,GABA", 0),              # both inhibitory, but different transmitters: rejected
    ("ACh GABA", 0),              # a space is not a separator: one unknown part
])
def test_transmitter_sign(label, sign):
    assert transmitter_sign(label) == sign


def test_neuron_signs_vectorised_and_aligned():
    labels = pd.Series(["ACh", None, "gaba", "ACh", "", "DA", "glutamate", np.nan, "ACh/GABA"])
    signs = neuron_signs(labels)
    assert signs.dtype == np.int8
    assert signs.tolist() == [1, 0, -1, 1, 0, 0, -1, 0, 0]
    assert neuron_signs(pd.Series([], dtype=str)).shape == (0,)


def _matrix():
    # W[post, pre]; column sums: col0 = 3, col1 = 5, col2 = 2, col3 = 10 (total 20).
    dense = np.array([
        [0, 2, 0, 4],
        [1, 0, 2, 6],
        [2, 3, 0, 0],
        [0, 0, 0, 0],
    ], dtype=np.float32)
    return sp.csr_matrix(dense), dense


def test_sign_coverage_is_weight_based():
    matrix, _ = _matrix()
    signs = np.array([1, -1, 0, 0], dtype=np.int8)
    assert sign_coverage(matrix, signs) == pytest.approx(8 / 20)
    assert sign_coverage(matrix, np.array([0, 0, 0, -1])) == pytest.approx(10 / 20)
    assert sign_coverage(matrix, np.zeros(4, dtype=np.int8)) == 0.0
    assert sign_coverage(sp.csr_matrix((4, 4)), np.ones(4, dtype=np.int8)) == 0.0


def test_apply_signs_flips_signed_columns_only():
    matrix, dense = _matrix()
    signs = np.array([1, -1, 0, -1], dtype=np.int8)
    signed = apply_signs(matrix, signs)
    assert sp.issparse(signed) and signed.format == "csr" and signed.dtype == np.float32
    expected = dense * np.array([1, -1, 1, -1], dtype=np.float32)[None, :]
    np.testing.assert_array_equal(signed.toarray(), expected)
    np.testing.assert_array_equal(matrix.toarray(), dense)  # input untouched
    assert signed.nnz == matrix.nnz


def test_shape_and_value_errors():
    matrix, _ = _matrix()
    with pytest.raises(BPUInputError, match="one entry per presynaptic neuron"):
        sign_coverage(matrix, np.ones(3, dtype=np.int8))
    with pytest.raises(BPUInputError, match="-1, 0 or \\+1"):
        apply_signs(matrix, np.array([2, 0, 0, 0]))


@pytest.mark.parametrize("policy, any_signed, coverage, primary", [
    ("auto", True, 0.96, "signed"),
    ("auto", True, 0.95, "signed"),        # at the threshold counts
    ("auto", True, 0.5996, "unsigned"),    # published FlyWire whole-brain coverage
    ("auto", False, 0.0, "unsigned"),      # published hemibrain
    ("auto", False, 1.0, "unsigned"),      # no signed matrix exists, whatever the number says
    ("force_unsigned", True, 1.0, "unsigned"),
    ("force_signed", True, 0.1, "signed"),
])
def test_choose_primary_matrix(policy, any_signed, coverage, primary):
    assert choose_primary(policy, any_signed=any_signed, coverage=coverage, threshold=0.95) == primary


def test_force_signed_without_labels_is_an_input_error():
    with pytest.raises(BPUInputError, match="no usable transmitter\\s+labels") as info:
        choose_primary("force_signed", any_signed=False, coverage=0.0, threshold=0.95)
    assert "force_signed" in str(info.value) and "force_unsigned" in str(info.value)


def test_unknown_policy_is_rejected():
    with pytest.raises(BPUInputError, match="signed_policy"):
        choose_primary("maybe", any_signed=True, coverage=1.0, threshold=0.95)
