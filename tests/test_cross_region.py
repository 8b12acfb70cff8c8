"""Cross-region transfer: condition checks, success extraction and the paired matched advantage."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from connectome_bpu.config import validate_config
from connectome_bpu.cross_region import (TransferFamily, condition_info, matched_advantage, resolve_cross_region,
                                         success_by_seed)
from connectome_bpu.errors import BPUInputError
from connectome_bpu.experiments import resolve_experiments
from connectome_bpu.results import sign_flip_p_value

BASE = yaml.safe_load(open("config.yaml"))
ASSOC = {"name": "mb_associative"}
EXPERIMENTS = [
    {"name": "assoc_mb", "connectome": "synthetic_mb", "task": ASSOC},
    {"name": "assoc_cx", "connectome": "synthetic_cx", "task": ASSOC},
    {"name": "assoc_cx_sized", "connectome": "synthetic_cx", "task": ASSOC, "size_match": {"like": "assoc_mb", "seed": 0}},
    {"name": "path_cx", "connectome": "synthetic_cx"},
    {"name": "path_mb", "connectome": "synthetic_mb"},
]
FAMILIES = [{"family": "associative", "matched": "assoc_mb", "mismatched": "assoc_cx", "size_matched": "assoc_cx_sized"},
            {"family": "path", "matched": "path_cx", "mismatched": "path_mb"}]


def _config(experiments=EXPERIMENTS, families=FAMILIES) -> dict:
    config = copy.deepcopy(BASE)
    config.update(experiments=copy.deepcopy(experiments), cross_region=copy.deepcopy(families))
    return validate_config(config)


def _resolve(config):
    return resolve_cross_region(config, resolve_experiments(config))


def test_size_matched_experiment_gets_its_own_substrate_and_keeps_its_source():
    experiments = resolve_experiments(_config())
    sized = experiments["assoc_cx_sized"]
    assert sized.substrate == "synthetic_cx-sized-synthetic_mb-s0"
    assert sized.size_match == ("synthetic_cx", "synthetic_mb", 0)
    assert experiments["assoc_cx"].substrate == "synthetic_cx" and experiments["assoc_cx"].size_match is None
    assert [f.family for f in _resolve(_config())] == ["associative", "path"]


@pytest.mark.parametrize("families, experiments, message", [
    ([{**FAMILIES[0], "mismatched": "nope"}], EXPERIMENTS, "'nope' is not an experiment"),
    ([{**FAMILIES[1], "mismatched": "assoc_cx"}], EXPERIMENTS, "must share their task and splits"),
    ([{"family": "path", "matched": "path_cx", "mismatched": "assoc_cx_sized"}], EXPERIMENTS, "must share"),
    ([{"family": "assoc", "matched": "assoc_cx", "mismatched": "assoc_cx_sized"},
      {"family": "assoc", "matched": "assoc_mb", "mismatched": "assoc_cx"}], EXPERIMENTS, "family names must be unique"),
    ([{**FAMILIES[0], "size_matched": "assoc_cx"}], EXPERIMENTS, "must set size_match.like"),
    ([FAMILIES[0]], [{**e, "training": {"plasticity": {"rule": "modulated_depression", "retention": 0.9}}}
                     if e["name"] == "assoc_mb" else e for e in EXPERIMENTS], "must share their training settings"),
    ([{"family": "path", "matched": "path_cx", "mismatched": "path_cx2"}],
     EXPERIMENTS + [{"name": "path_cx2", "connectome": "synthetic_cx", "seeds": [0, 1]}], "same substrate"),
])
def test_bad_conditions_stop_with_one_clear_error(families, experiments, message):
    with pytest.raises(BPUInputError, match=message):
        _resolve(_config(experiments, families))


def test_unknown_substrate_or_size_match_target_is_refused_before_any_job():
    with pytest.raises(BPUInputError, match="experiment 'path_mb'.*connectome"):
        resolve_experiments(_config([*EXPERIMENTS[:4], {"name": "path_mb", "connectome": "lobula_plate"}],
                                    FAMILIES))
    with pytest.raises(BPUInputError, match="size_match.like is 'ghost'"):
        resolve_experiments(_config([*EXPERIMENTS[:2], {**EXPERIMENTS[2], "size_match": {"like": "ghost", "seed": 0}}],
                                    None))


def _by_seed(model: str, metric: str, values, T: int, n_train: int) -> pd.DataFrame:
    return pd.DataFrame({"seed": range(len(values)), "model": model, "split": "test", "T": T, "n_train": n_train,
                         metric: values})


def test_success_and_advantage_are_paired_and_oriented_per_metric():
    config = _config()
    experiments = resolve_experiments(config)
    conditions = [info for family in _resolve(config) for info in condition_info(family, experiments)]
    accuracy = {"assoc_mb": [0.9, 0.8, 0.85], "assoc_cx": [0.7, 0.75, 0.7], "assoc_cx_sized": [0.8, 0.82, 0.86]}
    error = {"path_cx": [1.0, 1.1, 1.2], "path_mb": [1.3, 1.35, 1.45]}
    frames = {}
    for info in conditions:
        name = info["experiment"]
        if name in accuracy:
            frames[name] = _by_seed(info["model"], "reversal_probe_accuracy", accuracy[name], 21, info["n_train"])
        else:
            frames[name] = _by_seed(info["model"], "heading_bump_angular_error", error[name], 50, info["n_train"])
    success = success_by_seed(frames, conditions)
    assert len(success) == 15 and set(success["condition"]) == {"matched", "mismatched", "size_matched"}
    advantage = matched_advantage(success, 0.95).set_index(["family", "comparison"])
    row = advantage.loc[("associative", "matched - mismatched")]
    assert row["mean"] == pytest.approx(np.mean([0.2, 0.05, 0.15]))   # higher accuracy on the matched region
    assert row["sign_flip_p"] == pytest.approx(0.25) and row["n_pairs"] == 3
    path = advantage.loc[("path", "matched - mismatched")]
    assert path["mean"] == pytest.approx(np.mean([0.3, 0.25, 0.25]))   # lower error on the matched region: positive
    assert path["verdict"] == "matched region better" and path["ci_low"] > 0
    sized = advantage.loc[("associative", "matched - size_matched")]
    assert sized["verdict"] == "no clear difference"
    frames["path_mb"] = frames["path_mb"].iloc[:0]
    with pytest.raises(BPUInputError, match="no clean test row"):
        success_by_seed(frames, conditions)


def test_exact_sign_flip_p_value():
    assert sign_flip_p_value([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)      # only all-positive and all-negative
    assert sign_flip_p_value([0.5] * 5) == pytest.approx(2 / 32)
    assert sign_flip_p_value([1.0, -1.0]) == pytest.approx(1.0)
    assert np.isnan(sign_flip_p_value([np.nan]))
    # against brute force on a random sample
    rng = np.random.default_rng(0)
    values = rng.normal(0.3, 1.0, size=6)
    flips = np.array([[1 if (i >> j) & 1 else -1 for j in range(6)] for i in range(64)])
    expected = np.mean(np.abs(flips @ values) >= abs(values.sum()) - 1e-12)
    assert sign_flip_p_value(values) == pytest.approx(expected)


def test_transfer_family_conditions_in_order():
    family = TransferFamily("f", "a", "b", None)
    assert family.conditions() == [("matched", "a"), ("mismatched", "b")]
