"""Same config, fresh directory: the same results, byte for byte. Another seed: other results.

Two fresh work directories run the same tiny config and must agree on every control file, every task split,
``metrics_by_seed.csv`` (apart from the wall-clock columns, named ``wallclock_...``) and ``summary.md``. A third
directory with other training seeds must get other controls and other trained numbers (but the same task
data), and a fourth with another ``task.data_seed`` other task splits.

To stay cheap, the runs train the small model set of TINY_OVERRIDES with one seed, one test length and one noise
level and without sample-efficiency subsets, and ask Snakemake only for the files compared. A second experiment with the default model set (its Dale-preserving
controls included) is declared but never trained: ``snakemake controls`` builds its controls, so every control
algorithm is compared, not only ``random``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DEFAULT_MODELS_OVERRIDES, experiment_dir, job_dir, resolved, run_snakemake, write_config
from connectome_bpu.model_names import DALE_CONTROLS, SHUFFLE_CONTROLS

# The default preset's controls with their Dale variants (the Gaussian-weight controls are drawn by the same
# seeded code path; tests/test_controls.py checks that they are reproducible and differ between seeds).
CONTROL_NAMES = SHUFFLE_CONTROLS + DALE_CONTROLS
from connectome_bpu.tasks import split_plan

pytestmark = pytest.mark.workflow

TRAINED = "small"               # trains TINY_OVERRIDES' models: cx_bpu, random, no_recurrence (+ mean_predictor)
ALL_CONTROLS = "every_control"  # never trained; only its controls (first seed only) are built


def _config(seeds: list[int], data_seed: int = 12345) -> dict:
    # Both experiments share one substrate (its settings are top-level), so every control lands in one place.
    substrate = {"synthetic_cx": DEFAULT_MODELS_OVERRIDES["synthetic_cx"]}
    models = {k: v for k, v in DEFAULT_MODELS_OVERRIDES.items() if k not in substrate}
    task = {"sample_efficiency_fractions": [1.0], "data_seed": data_seed, "test": {"T": [20]},
            "test_noise": {"noise": [0.1]}}
    return {"seeds": seeds, "task": task, **substrate,
            "experiments": [{"name": TRAINED}, {"name": ALL_CONTROLS, **models, "seeds": seeds[:1]}]}


SEEDS, OTHER_SEED, OTHER_DATA_SEED = [0], 1, 54321
REDRAWN_SPLITS = ("train_T20.npz", "test_noise_T40_noise0.10.npz")


def _rel(workdir: Path, path: Path) -> str:
    return str(path.relative_to(workdir))


def _full_targets(workdir: Path) -> list[str]:
    run = experiment_dir(workdir, TRAINED)
    return ["controls", _rel(workdir, run / "summary.md"), _rel(workdir, run / "metrics_by_seed.csv")]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.npz"))}


def _controls(workdir: Path) -> dict[str, bytes]:
    return _files(workdir / "results" / resolved(workdir)[TRAINED].substrate / "controls")


def _splits(workdir: Path) -> dict[str, bytes]:
    return _files(workdir / "results" / "tasks")


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> tuple[Path, Path]:
    """Two fresh directories, same config."""
    dirs = []
    for name in ("first", "second"):
        workdir = tmp_path_factory.mktemp(name)
        write_config(workdir, _config(SEEDS))
        run_snakemake(workdir, *_full_targets(workdir))
        dirs.append(workdir)
    return dirs[0], dirs[1]


@pytest.fixture(scope="module")
def reseeded(tmp_path_factory) -> Path:
    """Same config with other seeds: its controls and two of its training jobs."""
    workdir = tmp_path_factory.mktemp("reseeded")
    write_config(workdir, _config([OTHER_SEED]))
    n_train = resolved(workdir)[TRAINED].n_train
    jobs = [_rel(workdir, job_dir(workdir, model, OTHER_SEED, n_train, name=TRAINED) / "metrics.csv")
            for model in ("cx_bpu", "random")]
    run_snakemake(workdir, "controls", *jobs)
    return workdir


@pytest.fixture(scope="module")
def redrawn(tmp_path_factory) -> Path:
    """Same config with another task.data_seed: two of its task splits (the train split and a noisy test split)."""
    workdir = tmp_path_factory.mktemp("redrawn")
    write_config(workdir, _config(SEEDS, data_seed=OTHER_DATA_SEED))
    run_snakemake(workdir, *(f"results/tasks/{resolved(workdir)[TRAINED].task_variant}/{name}" for name in REDRAWN_SPLITS))
    return workdir


def _assert_same_bytes(first: dict[str, bytes], second: dict[str, bytes]) -> None:
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"differ between two fresh runs of one config: {differ}"


def _expected_controls(workdir: Path) -> list[str]:
    return sorted({f"{c}/seed{s}.npz" for e in resolved(workdir).values() for c in e.controls for s in e.seeds})


def test_controls_are_byte_identical(twins) -> None:
    first, second = map(_controls, twins)
    assert set(resolved(twins[0])[ALL_CONTROLS].controls) == set(CONTROL_NAMES) | {"no_recurrence"}
    assert sorted(first) == _expected_controls(twins[0])
    _assert_same_bytes(first, second)


def test_task_splits_are_byte_identical(twins) -> None:
    first, second = map(_splits, twins)
    experiment = resolved(twins[0])[TRAINED]
    assert sorted(first) == sorted(f"{experiment.task_variant}/{s.filename}" for s in split_plan(experiment.task))
    _assert_same_bytes(first, second)


def test_metrics_are_identical_apart_from_wallclock_columns(twins) -> None:
    first, second = (pd.read_csv(experiment_dir(w, TRAINED) / "metrics_by_seed.csv") for w in twins)
    assert list(first.columns) == list(second.columns)
    wallclock = [c for c in first.columns if c.startswith("wallclock_")]
    assert wallclock, "metrics_by_seed.csv has no wall-clock column (named wallclock_...)"
    assert set(first["model"]) == {"cx_bpu", "random", "no_recurrence", "mean_predictor"}
    assert set(first["seed"]) == set(SEEDS)
    first, second = first.drop(columns=wallclock), second.drop(columns=wallclock)
    differ = [c for c in first.columns if not first[c].equals(second[c])]
    assert not differ, f"columns that differ between two fresh runs of one config: {differ}"
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_summary_is_byte_identical(twins) -> None:
    first, second = ((experiment_dir(w, TRAINED) / "summary.md").read_bytes() for w in twins)
    assert b"cx_bpu" in first
    assert first == second


def _matrix(data: bytes, path: Path) -> tuple[np.ndarray, ...]:
    path.write_bytes(data)
    with np.load(path) as arrays:
        return tuple(arrays[key] for key in ("indptr", "indices", "data"))


def test_another_seed_gives_other_controls(twins, reseeded, tmp_path: Path) -> None:
    original, other = _controls(twins[0]), _controls(reseeded)
    assert sorted(other) == _expected_controls(reseeded)
    assert sorted(other) == sorted(f"{c}/seed{OTHER_SEED}.npz" for c in (*CONTROL_NAMES, "no_recurrence"))
    same = []
    for control in CONTROL_NAMES:   # no_recurrence is a marker without a matrix: nothing random to differ
        new = _matrix(other[f"{control}/seed{OTHER_SEED}.npz"], tmp_path / "new.npz")
        for seed in SEEDS:
            if f"{control}/seed{seed}.npz" not in original:
                continue
            old = _matrix(original[f"{control}/seed{seed}.npz"], tmp_path / "old.npz")
            if all(np.array_equal(a, b) for a, b in zip(new, old)):
                same.append(f"{control}: seed {OTHER_SEED} == seed {seed}")
    assert not same, same


def test_another_seed_gives_other_trained_numbers_on_the_same_data(twins, reseeded) -> None:
    _assert_same_bytes(_splits(twins[0]), _splits(reseeded))   # the training seed does not touch the task data
    original = pd.read_csv(experiment_dir(twins[0], TRAINED) / "metrics_by_seed.csv")
    n_train = resolved(reseeded)[TRAINED].n_train
    key = ["split", "T", "noise_std"]
    for model in ("cx_bpu", "random"):
        new = pd.read_csv(job_dir(reseeded, model, OTHER_SEED, n_train, name=TRAINED) / "metrics.csv").set_index(key)
        assert set(new["seed"]) == {OTHER_SEED}
        for seed in SEEDS:
            old = original[(original["model"] == model) & (original["seed"] == seed)].set_index(key)
            assert sorted(old.index) == sorted(new.index) and len(old)
            for column in ("loss", "final_train_loss", "best_val_loss"):
                assert (old[column] != new.loc[old.index, column]).all(), (model, seed, column)


def test_another_data_seed_gives_other_task_splits(twins, redrawn) -> None:
    variant, old_variant = resolved(redrawn)[TRAINED].task_variant, resolved(twins[0])[TRAINED].task_variant
    assert variant != old_variant
    assert sorted(_splits(redrawn)) == sorted(f"{variant}/{name}" for name in REDRAWN_SPLITS)
    same = []
    for name in REDRAWN_SPLITS:
        assert (twins[0] / "results/tasks" / old_variant / name).is_file(), name
        with np.load(redrawn / "results/tasks" / variant / name) as new, \
                np.load(twins[0] / "results/tasks" / old_variant / name) as old:
            assert int(new["data_seed"]) == OTHER_DATA_SEED
            for key in ("inputs", "targets"):
                if new[key].shape == old[key].shape and np.array_equal(new[key], old[key]):
                    same.append(f"{name}:{key}")
    assert not same, same
