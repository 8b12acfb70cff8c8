"""Every PASS line of the validation reports comes from a check that fails on a broken artifact.

Each check of ``connectome_bpu/reports/validation.py`` carries a stable ``key``. ``SCENARIOS`` breaks one
artifact (or one built model, or one metrics table) per entry and names the key that must then FAIL;
``test_every_report_check_is_seen_failing`` proves that every key the report functions can emit - found
both by running them on intact artifacts and by reading every ``check``/``Check`` call of the module - is
the expected failure of some scenario, so a new check without a breaking scenario fails the suite.
Scenario outcomes are cached per module, so the completeness test reruns nothing that already ran and
does not depend on which tests were selected or in what order they ran.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import write_tiny_graph_cache

from connectome_bpu import atomic, models, tasks
from connectome_bpu.checks import Check, Line, render_report
from connectome_bpu.reports import validation
from connectome_bpu.reports.validation import (
    EXPORT_NAMES,
    bpu_validation_lines,
    data_validation_lines,
    model_surface_lines,
    split_lines,
    training_comparability_lines,
)

SPECTRAL = {"power_tolerance": 1e-9, "power_max_iterations": 5000}
TASK = {"name": "cx_polar_bump", "heading_bins": 8, "bump_kappa": 8.0, "home_distance_scale": 25.0,
        "data_seed": 1, "train": {"count": 8, "T": 10}, "val": {"count": 4, "T": 10},
        "test": {"count": 4, "T": [10]}, "test_noise": {"count": 4, "T": 10, "noise": [0.0]},
        "sample_efficiency_fractions": [1.0], "sample_efficiency_models": []}
MODES = ("frozen", "observed", "dense")


@pytest.fixture(scope="module")
def graph_template(tmp_path_factory) -> Path:
    """A small intact graph cache (signed primary) with the task splits of ``TASK`` beside it."""
    root = tmp_path_factory.mktemp("graph")
    write_tiny_graph_cache(root)
    spec = tasks.TaskSpec.from_config(TASK)
    for split in tasks.split_plan(TASK):
        tasks.write_split(root / "tasks" / split.filename, spec, split, data_seed=TASK["data_seed"])
    return root


@pytest.fixture
def cache(graph_template: Path, tmp_path: Path) -> Path:
    shutil.copytree(graph_template, tmp_path / "c")
    return tmp_path / "c"


# ----------------------------------------------------------------------------------------- the reports
# Each helper computes one whole report's checks the way rules/report.py assembles them.

def data_report(root: Path) -> list[Line]:
    g = root / "graph"
    lines = data_validation_lines(root / "exports", g / "pool_assignments.csv", g / "graph_metadata.json",
                                  g / "graph_arrays.npz")
    return lines + split_lines(sorted((root / "tasks").iterdir()), TASK)


def bpu_report(root: Path, mode: str = "frozen", dense_max_neurons: int = 1000) -> list[Line]:
    g = root / "graph"
    lines = bpu_validation_lines(g, root / "exports" / "connections.csv", g / "graph_metadata.json", k_min=3,
                                 k_max=8, spectral_kwargs=SPECTRAL)
    return lines + model_surface_lines(g, g / "pool_assignments.csv", g / "k_estimate.json", task_cfg=TASK,
                                       train_mode=mode, dense_max_neurons=dense_max_neurons, model_name="cx_bpu")


COMPARABILITY_META = {"unsigned_edge_count": 100, "estimated_K": 3}
COMPARABILITY_CONTROLS = {("random", 0): Path("seed0.npz")}


def _metrics(rows: list[dict], mode: str = "frozen") -> pd.DataFrame:
    trainable = {"frozen": 0, "observed": 100}[mode]
    base = {"split": "test", "T": 10, "noise_std": 0.0, "n_train": 8, "K": 3,
            "frozen_edge_count": 100 if mode == "frozen" else 0, "recurrent_parameter_count": 100,
            "trainable_recurrent_parameter_count": trainable, "recurrent_train_mode": mode}
    return pd.DataFrame([{**base, **row} for row in rows])


def comparability_report(control_row: dict, mode: str = "frozen") -> list[Line]:
    """A connectome row and one ``random`` control row (seed 0 unless changed), one of them altered."""
    by_seed = _metrics([{"model": "cx_bpu", "seed": 0}, {"model": "random", "seed": 0, **control_row}], mode)
    return training_comparability_lines(by_seed, COMPARABILITY_META, COMPARABILITY_CONTROLS)


def _failed(lines) -> list[str]:
    return [line.text for line in lines if isinstance(line, Check) and not line.passed]


def _failed_keys(lines) -> set[str]:
    return {line.key for line in lines if isinstance(line, Check) and not line.passed}


def _keys(lines) -> set[str]:
    return {line.key for line in lines if isinstance(line, Check)}


# ----------------------------------------------------------------------------------------- the breakages

SCENARIOS: dict[str, tuple[str, Callable[[Path], list[Line]]]] = {}


def breaks(key: str, name: str | None = None):
    """Register a scenario: a function that breaks the intact copy ``root`` and returns a report's lines."""
    def register(function):
        SCENARIOS[name or function.__name__] = (key, function)
        return function
    return register


def _edit_json(path: Path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _edit_pools(root: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = root / "graph" / "pool_assignments.csv"
    edit(pd.read_csv(path)).to_csv(path, index=False)


def _edit_arrays(root: Path, **changes) -> None:
    path = root / "graph" / "graph_arrays.npz"
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    atomic.save_npz(path, **{**arrays, **changes})


def _edit_unsigned(root: Path, edit: Callable[[sp.csr_matrix], sp.spmatrix]) -> None:
    path = root / "graph" / "adjacency_unsigned.npz"
    atomic.save_sparse(path, edit(sp.load_npz(path).tocsr()))


def _export_missing(name: str):
    def scenario(root: Path) -> list[Line]:
        path = root / "exports" / name
        if name == "roi_counts.csv":
            path.write_text("")           # present but empty counts as missing too
        else:
            path.unlink()
        return data_report(root)
    return scenario


for _name in EXPORT_NAMES:
    breaks("data.export_exists", f"missing_{_name.removesuffix('.csv')}")(_export_missing(_name))


@breaks("data.export_schema")
def duplicated_body_id(root: Path) -> list[Line]:
    path = root / "exports" / "neurons.csv"
    neurons = pd.read_csv(path)
    pd.concat([neurons, neurons.iloc[[3]]]).sort_values("bodyId", kind="stable").to_csv(path, index=False)
    return data_report(root)


@breaks("data.pools_retained")
def pool_row_dropped(root: Path) -> list[Line]:
    _edit_pools(root, lambda pools: pools.iloc[1:])
    return data_report(root)


@breaks("data.pools_exclusive")
def neuron_in_two_pools(root: Path) -> list[Line]:
    def edit(pools):
        pools.loc[0, ["is_sensory", "is_internal"]] = True
        return pools
    _edit_pools(root, edit)
    return data_report(root)


@breaks("data.pools_exclusive")
def pool_label_disagrees_with_flags(root: Path) -> list[Line]:
    def edit(pools):
        row = pools.index[pools["pool"] == "sensory"][0]
        pools.loc[row, "pool"] = "output"
        return pools
    _edit_pools(root, edit)
    return data_report(root)


@breaks("data.pools_order")
def pools_reversed(root: Path) -> list[Line]:
    _edit_pools(root, lambda pools: pools.iloc[::-1])
    return data_report(root)


@breaks("data.pools_nonempty")
def output_pool_empty(root: Path) -> list[Line]:
    def edit(pools):
        pools.loc[pools["pool"] == "output", ["pool", "is_output", "is_internal"]] = ["internal", False, True]
        return pools
    _edit_pools(root, edit)
    return data_report(root)


@breaks("data.metadata_n")
def metadata_n_wrong_for_data(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", N=1)
    return data_report(root)


@breaks("data.node_order")
def node_order_reversed(root: Path) -> list[Line]:
    with np.load(root / "graph" / "graph_arrays.npz") as arrays:
        body_ids = arrays["body_ids"]
    _edit_arrays(root, body_ids=body_ids[::-1].copy())
    return data_report(root)


@breaks("data.node_order")
def node_ids_not_int64(root: Path) -> list[Line]:
    with np.load(root / "graph" / "graph_arrays.npz") as arrays:
        body_ids = arrays["body_ids"]
    _edit_arrays(root, body_ids=body_ids.astype(np.uint64))   # same values, wrong dtype
    return data_report(root)


@breaks("data.raw_edge_count")
def raw_edge_count_wrong(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", raw_edge_count=3)
    return data_report(root)


@breaks("data.edge_count")
def aggregated_edge_missing_from_adjacency(root: Path) -> list[Line]:
    metadata = json.loads((root / "graph" / "graph_metadata.json").read_text())
    _edit_json(root / "graph" / "graph_metadata.json", unsigned_edge_count=metadata["unsigned_edge_count"] - 1)
    return data_report(root)


def _split_path(root: Path, role: str) -> Path:
    return root / "tasks" / next(s.filename for s in tasks.split_plan(TASK) if s.role == role)


def _read_split(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return {key: stored[key] for key in stored.files}


@breaks("split.file")
def split_file_edited(root: Path) -> list[Line]:
    path = _split_path(root, "test")
    arrays = _read_split(path)
    arrays["inputs"][0, 0, 0] += 1.0   # content no longer matches its stored hash
    atomic.save_npz(path, **arrays)
    return data_report(root)


@breaks("split.file")
def split_file_of_another_length(root: Path) -> list[Line]:
    spec, val = tasks.TaskSpec.from_config(TASK), next(s for s in tasks.split_plan(TASK) if s.role == "val")
    tasks.write_split(_split_path(root, "val"), spec, dataclasses.replace(val, T=11), data_seed=TASK["data_seed"])
    return data_report(root)


@breaks("split.leakage")
def val_sequences_leaked_from_train(root: Path) -> list[Line]:
    train, path = _read_split(_split_path(root, "train")), _split_path(root, "val")
    val = _read_split(path)
    for key in ("inputs", "clean_inputs", "targets"):
        val[key] = val[key].copy()
        val[key][:2] = train[key][:2]
    val["content_sha256"] = np.array(tasks._content_sha256(val["inputs"], val["targets"]))
    atomic.save_npz(path, **val)
    return data_report(root)


@breaks("split.leakage")
def split_file_missing(root: Path) -> list[Line]:
    _split_path(root, "test").unlink()
    return data_report(root)


@breaks("bpu.square")
def non_square_signed_adjacency(root: Path) -> list[Line]:
    _edit_unsigned(root, lambda unsigned: unsigned[:-1])
    return bpu_report(root)


@breaks("bpu.square")
def non_square_unsigned_adjacency(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "matrix_info.json", primary_matrix="unsigned")
    _edit_unsigned(root, lambda unsigned: unsigned[:-1])
    return bpu_report(root)


@breaks("bpu.shape_n")
def metadata_n_wrong_for_bpu(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", N=1)
    return bpu_report(root)


@breaks("bpu.edge_direction")
def adjacency_transposed(root: Path) -> list[Line]:
    _edit_unsigned(root, lambda unsigned: unsigned.T.tocsr())
    return bpu_report(root)


@breaks("bpu.edge_direction")
def no_edges_to_sample(root: Path) -> list[Line]:
    path = root / "exports" / "connections.csv"
    pd.read_csv(path).iloc[:0].to_csv(path, index=False)
    lines = bpu_report(root)
    assert any("across 0/0 sampled edges" in text for text in _failed(lines))
    return lines


@breaks("bpu.primary_choice")
def primary_choice_against_policy(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", primary_matrix="unsigned")
    return bpu_report(root)


@breaks("bpu.spectral_radius")
def adjacency_with_wrong_radius(root: Path) -> list[Line]:
    _edit_unsigned(root, lambda unsigned: unsigned * 2.0)
    return bpu_report(root)


@breaks("bpu.spectral_radius")
def rho_target_wrong(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", rho_target=0.5)
    return bpu_report(root)


@breaks("bpu.unsigned_positive")
def negative_unsigned_weight(root: Path) -> list[Line]:
    def edit(unsigned):
        unsigned = unsigned.copy()
        unsigned.data[0] = -unsigned.data[0]
        return unsigned
    _edit_unsigned(root, edit)
    return bpu_report(root)


@breaks("bpu.k_clip")
def k_outside_range(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", estimated_K=9)
    return bpu_report(root)


@breaks("bpu.k_clip")
def k_not_the_clipped_median(root: Path) -> list[Line]:
    _edit_json(root / "graph" / "graph_metadata.json", k_raw_median=5.0)
    return bpu_report(root)


@breaks("surface.buildable")
def dense_mode_refused(root: Path) -> list[Line]:
    return bpu_report(root, mode="dense", dense_max_neurons=10)


def _with_broken_model(root: Path, mode: str, breakage: Callable[[torch.nn.Module], None]) -> list[Line]:
    """The bpu report with ``build_model`` returning a model that ``breakage`` altered after construction."""
    real = models.build_model

    def build_and_break(*args, **kwargs):
        model = real(*args, **kwargs)
        breakage(model)
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "build_model", build_and_break)
        return bpu_report(root, mode=mode)


@breaks("surface.trainable_names")
def input_bias_frozen(root: Path) -> list[Line]:
    return _with_broken_model(root, "frozen", lambda model: model.b_in.requires_grad_(False))


@breaks("surface.trainable_count")
def recurrent_values_longer_than_edges(root: Path) -> list[Line]:
    def breakage(model):
        values = model.W_rec_values.detach()
        longer = torch.nn.Parameter(torch.cat([values, values[:1]]))
        model.W_rec_values = longer            # tied like the real one, so the names stay right
        model.recurrent.W_rec_values = longer
    lines = _with_broken_model(root, "observed", breakage)
    assert _failed_keys(lines) == {"surface.trainable_count"}, _failed(lines)
    return lines


@breaks("surface.io_masking")
def readout_transposed(root: Path) -> list[Line]:
    def breakage(model):
        model.W_out = torch.nn.Parameter(model.W_out.detach().T.contiguous())   # same count, wrong shape
    lines = _with_broken_model(root, "frozen", breakage)
    assert _failed_keys(lines) == {"surface.io_masking"}, _failed(lines)
    return lines


@breaks("comparability.k")
def control_trained_with_other_k(root: Path) -> list[Line]:
    return comparability_report({"K": 4})


@breaks("comparability.frozen_edges")
def control_with_other_frozen_edge_count(root: Path) -> list[Line]:
    return comparability_report({"frozen_edge_count": 90})


@breaks("comparability.support_size")
def observed_control_with_other_support(root: Path) -> list[Line]:
    return comparability_report({"recurrent_parameter_count": 90, "trainable_recurrent_parameter_count": 90},
                                mode="observed")


@breaks("comparability.recurrent_trainable")
def observed_control_counted_frozen(root: Path) -> list[Line]:
    return comparability_report({"trainable_recurrent_parameter_count": 0}, mode="observed")


@breaks("comparability.same_splits")
def control_trained_on_fewer_sequences(root: Path) -> list[Line]:
    return comparability_report({"n_train": 4})


@breaks("comparability.same_splits")
def control_evaluated_on_other_split(root: Path) -> list[Line]:
    return comparability_report({"T": 20})


@breaks("comparability.control_files")
def control_seed_without_file(root: Path) -> list[Line]:
    return comparability_report({"seed": 1})


_OUTCOMES: dict[str, set[str]] = {}


def failing_keys(name: str, template: Path, factory: pytest.TempPathFactory) -> set[str]:
    """Run scenario ``name`` on a fresh copy of the intact cache once per session; its failing keys."""
    if name not in _OUTCOMES:
        root = factory.mktemp(name) / "c"
        shutil.copytree(template, root)
        _OUTCOMES[name] = _failed_keys(SCENARIOS[name][1](root))
    return _OUTCOMES[name]


# ----------------------------------------------------------------------------------------- the tests

def test_intact_cache_passes_everything(cache: Path):
    lines = data_report(cache) + bpu_report(cache)
    assert not _failed(lines)
    assert all(line.key for line in lines if isinstance(line, Check))
    report = render_report("Data Validation", lines)
    assert report.startswith("# Data Validation\n\n- PASS:")
    assert not any(line.key in report for line in lines if isinstance(line, Check))   # keys are never rendered


@pytest.mark.parametrize("mode", MODES)
def test_intact_cache_passes_in_every_training_mode(cache: Path, mode: str):
    assert not _failed(bpu_report(cache, mode=mode))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_broken_artifact_fails_its_check(name: str, graph_template: Path, tmp_path_factory):
    failed = failing_keys(name, graph_template, tmp_path_factory)
    assert SCENARIOS[name][0] in failed, failed


def _keys_in_source() -> tuple[set[str], list[int]]:
    """Literal ``key=`` of every ``check(...)``/``Check(...)`` call in the validation module, and the line
    numbers of calls without one (a check that only appears on a failure path is found here)."""
    tree = ast.parse(Path(validation.__file__).read_text())
    keys, unkeyed = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("check", "Check"):
            key = next((kw.value for kw in node.keywords if kw.arg == "key"), None)
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value:
                keys.add(key.value)
            else:
                unkeyed.append(node.lineno)
    return keys, unkeyed


def test_every_report_check_is_seen_failing(graph_template: Path, tmp_path_factory):
    in_source, unkeyed = _keys_in_source()
    assert not unkeyed, f"checks without a literal key at connectome_bpu/reports/validation.py lines {unkeyed}"

    root = tmp_path_factory.mktemp("intact") / "c"
    shutil.copytree(graph_template, root)
    emitted = _keys(data_report(root))
    for mode in MODES:
        emitted |= _keys(bpu_report(root, mode=mode))
    emitted |= _keys(comparability_report({})) | _keys(comparability_report({}, mode="observed"))
    assert emitted <= in_source, f"keys not written literally in the module: {emitted - in_source}"
    assert not _failed_keys(data_report(root) + bpu_report(root))

    seen = {key for name, (key, _) in SCENARIOS.items() if key in failing_keys(name, graph_template, tmp_path_factory)}
    never_failed = sorted((in_source | emitted) - seen)
    assert not never_failed, f"report checks that no test has seen failing: {never_failed}"
