"""Run one (substrate, task, mode, model, seed, train-size) job and write its own result files.

Outputs of a job directory: ``checkpoint.pt`` (trained tensors and what they were trained on),
``metrics.csv`` (one row per evaluation split), ``loss_history.csv`` (one row per epoch). Aggregation
rules read only these files, so jobs can run on different machines (cluster executors).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from . import atomic
from .arms import DIAGNOSTIC_COLUMNS, build_arm
from .atomic import read_json
from .controls import load_control
from .gpu import select_device
from .graph import PrimaryGraph, load_primary
from .matrix import matrix_sha256
from .metrics import (
    EXAMPLE_EPISODES,
    EXAMPLES_FILE,
    DRIFT_COLUMN,
    DRIFT_SOURCE,
    drift_slope,
    evaluate,
    mean_predictor_outputs,
    mean_predictor_targets,
)
from .model_names import BPTT, MEAN_PREDICTOR, split_arm
from .models import build_model, trainable_parameter_count
from .pools import pool_indices, read_pools
from .tasks import AnyTaskSpec, SplitDef, load_split, split_plan, task_spec
from .training import (
    RESUME_FILE,
    TrainSettings,
    job_fingerprint,
    latency_ms_per_sequence,
    predict,
    train_model,
)

LOG = logging.getLogger(__name__)
# Measured wall-clock time differs between otherwise identical runs: every such column's name starts with
# ``wallclock_``, and no other column depends on timing (per-epoch seconds stay in the log, not the CSVs).
WALLCLOCK_LATENCY = "wallclock_latency_ms_per_sequence"
ID_COLUMNS = ["seed", "model", "task", "split", "T", "noise_std", "n_train"]
INFO_COLUMNS = ["epochs_ran", "best_epoch", "final_train_loss", "best_val_loss", "trainable_parameter_count",
                "frozen_edge_count", "recurrent_parameter_count", "trainable_recurrent_parameter_count",
                "recurrent_train_mode", "runtime", "K", "device", WALLCLOCK_LATENCY]
# Gradient-fidelity columns are filled for models trained by a learning-rule arm (connectome_bpu.arms), NaN else.
HISTORY_COLUMNS = ["seed", "model", "n_train", "epoch", "train_loss", "val_loss", "best_val_loss", "patience_wait",
                   *DIAGNOSTIC_COLUMNS]


@dataclass(frozen=True)
class JobRequest:
    model: str
    seed: int
    n_train: int
    graph_dir: Path
    pools_path: Path
    k_path: Path
    control_path: Path | None            # the stored control matrix, for shuffle controls only
    split_paths: Mapping[str, Path]       # SplitDef.name -> file
    task_cfg: Mapping[str, Any]
    training_cfg: Mapping[str, Any]
    out_dir: Path


def _tensors(arrays: dict, device: torch.device, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = arrays["inputs"], arrays["targets"]
    if count is not None:
        inputs, targets = inputs[:count], targets[:count]
    return torch.from_numpy(np.ascontiguousarray(inputs)).to(device), \
        torch.from_numpy(np.ascontiguousarray(targets)).to(device)


def recurrent_matrix(request: JobRequest, primary: PrimaryGraph) -> tuple[sp.csr_matrix, str]:
    """The matrix this model runs on (a stored control, else the primary) and its checksum.

    The primary's checksum was recorded when the graph cache was built; only a control is hashed here.
    """
    if request.control_path is None:
        return primary.matrix, primary.info["primary_sha256"]
    matrix = load_control(request.control_path)[0]
    return matrix, matrix_sha256(matrix)


@dataclass
class BuiltModel:
    """A model ready to train, with what identifies the core it runs on."""

    model: torch.nn.Module
    K: int
    matrix_sha256: str
    mode: str


def run_job(request: JobRequest) -> pd.DataFrame:
    """Load the splits, then build, train and evaluate the model, and write the job's three files."""
    spec = task_spec(request.task_cfg)
    plan = {split.name: split for split in split_plan(request.task_cfg)}
    data_seed = request.task_cfg["data_seed"]
    splits = {name: load_split(path, spec, plan[name], data_seed=data_seed) for name, path in request.split_paths.items()}
    train_name = next(s.name for s in plan.values() if s.role == "train")
    val_name = next(s.name for s in plan.values() if s.role == "val")
    eval_splits = [s for s in plan.values() if s.role in ("test", "test_noise")]
    request.out_dir.mkdir(parents=True, exist_ok=True)
    if request.model == MEAN_PREDICTOR:
        return _run_mean_predictor(request, spec, splits, train_name, eval_splits)

    settings = TrainSettings.from_config(request.training_cfg)
    claim = select_device(request.training_cfg["device"])
    try:
        torch.set_num_threads(int(request.training_cfg["threads"]))
        built = build_job_model(request, spec, claim.device)
        train = _tensors(splits[train_name], claim.device, request.n_train)
        val = _tensors(splits[val_name], claim.device)
        fingerprint = _fingerprint(request, built, settings, splits)
        rule = request.training_cfg.get("learning_rule", {})
        arm = build_arm(built.model, spec, rule, request.seed) if split_arm(request.model)[1] != BPTT else None
        outcome = train_model(built.model, spec, train, val, settings, seed=request.seed,
                              resume_path=request.out_dir / RESUME_FILE, fingerprint=fingerprint,
                              label=f"{request.model}/seed{request.seed}/n{request.n_train}", arm=arm,
                              fidelity_batch=rule.get("fidelity_batch", 1))
        info = _model_info(built.model, built.mode, built.K, claim.device)
        info.update({"epochs_ran": outcome.epochs_ran, "best_epoch": outcome.best_epoch,
                     "final_train_loss": outcome.final_train_loss, "best_val_loss": outcome.best_val_loss,
                     WALLCLOCK_LATENCY: latency_ms_per_sequence(built.model, val[0], settings.batch_size)})
        metrics, examples = evaluate_job_model(request, spec, built.model, splits, eval_splits, info,
                                               settings.batch_size,
                                     claim.device)
        history = pd.DataFrame([{"seed": request.seed, "model": request.model, "n_train": request.n_train, **h}
                                for h in outcome.history]).reindex(columns=HISTORY_COLUMNS)
        checkpoint = {"model": request.model, "seed": request.seed, "n_train": request.n_train, "K": built.K,
                      "fingerprint": fingerprint, "matrix_sha256": built.matrix_sha256,
                      "train_recurrent": built.mode,
                      "state": {n: p.detach().cpu() for n, p in built.model.named_parameters() if p.requires_grad},
                      "best_epoch": outcome.best_epoch, "best_val_loss": outcome.best_val_loss,
                      "learning_rule": dict(rule), "arm_state": arm.state_dict() if arm is not None else None}
        _write_outputs(request.out_dir, checkpoint, metrics, history, examples)
        (request.out_dir / RESUME_FILE).unlink(missing_ok=True)
        return metrics
    finally:
        claim.release()


def build_job_model(request: JobRequest, spec: AnyTaskSpec, device: torch.device) -> BuiltModel:
    """The model of this job on its core (the primary, or its stored control), pools and K."""
    primary = load_primary(request.graph_dir)
    sensory, _, output = pool_indices(read_pools(request.pools_path))
    K = int(read_json(request.k_path)["K"])
    matrix, matrix_sha = recurrent_matrix(request, primary)
    mode = request.training_cfg["train_recurrent"]
    model = build_model(split_arm(request.model)[0], W=matrix, sensory_idx=sensory, output_idx=output, K=K,
                        input_dim=spec.input_dim, output_dim=spec.output_dim, seed=request.seed,
                        train_mode=mode, runtime=request.training_cfg["runtime"], device=device,
                        dense_max_neurons=request.training_cfg["dense_max_neurons"],
                        gru_max_hidden=request.training_cfg["gru_reference_max_hidden"],
                        input_init=request.training_cfg["input_init"],
                        plasticity=request.training_cfg.get("plasticity"))
    return BuiltModel(model=model, K=K, matrix_sha256=matrix_sha, mode=mode)


def _fingerprint(request: JobRequest, built: BuiltModel, settings: TrainSettings, splits: dict) -> str:
    """Everything that determines the job's numbers: a saved resume state with another one is discarded."""
    return job_fingerprint({
        "model": request.model, "seed": request.seed, "n_train": request.n_train, "K": built.K,
        "matrix": built.matrix_sha256, "settings": settings.__dict__, "mode": built.mode,
        "runtime": request.training_cfg["runtime"], "task": dict(request.task_cfg),
        "learning_rule": request.training_cfg.get("learning_rule", {}),
        "plasticity": request.training_cfg.get("plasticity"),
        "splits": {name: str(arrays["content_sha256"]) for name, arrays in splits.items()},
    })


def evaluate_job_model(request: JobRequest, spec: AnyTaskSpec, model: torch.nn.Module, splits: dict,
                       eval_splits: list[SplitDef], info: dict, batch_size: int, device: torch.device
                       ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One metric row per test split (clean lengths and noise levels), plus the drift slope over lengths; and the
    example episodes of every split (:func:`_examples`)."""
    rows, examples = [], {}
    for split in eval_splits:
        inputs, targets = _tensors(splits[split.name], device)
        outputs = predict(model, inputs, batch_size)
        scores = evaluate(spec, outputs, targets.cpu().numpy(), splits[split.name]["inputs"])
        rows.append(_row(request, spec, split, info, scores))
        examples.update(_examples(split, outputs, splits[split.name]["targets"]))
    return _with_drift(pd.DataFrame(rows), spec), examples


def _examples(split: SplitDef, outputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Raw outputs and targets of a split's first ``EXAMPLE_EPISODES`` episodes, keyed by split name: what a
    figure of predicted against true values over time draws (the same episodes for every model and seed)."""
    return {f"output__{split.name}": np.asarray(outputs[:EXAMPLE_EPISODES], dtype=np.float32),
            f"target__{split.name}": np.asarray(targets[:EXAMPLE_EPISODES], dtype=np.float32)}


def _model_info(model: torch.nn.Module, mode: str, K: int, device: torch.device) -> dict:
    recurrent = getattr(model, "recurrent", None)
    if recurrent is None:   # GRU
        return {"trainable_parameter_count": trainable_parameter_count(model), "frozen_edge_count": 0,
                "recurrent_parameter_count": 0, "trainable_recurrent_parameter_count": 0,
                "recurrent_train_mode": "none", "runtime": "gru", "K": 1, "device": str(device)}
    trainable_recurrent = recurrent.trainable_count()
    return {"trainable_parameter_count": trainable_parameter_count(model),
            "frozen_edge_count": recurrent.nnz_or_nonzero() if trainable_recurrent == 0 else 0,
            "recurrent_parameter_count": recurrent.nnz_or_nonzero(),
            "trainable_recurrent_parameter_count": trainable_recurrent, "recurrent_train_mode": mode,
            "runtime": recurrent.runtime, "K": K, "device": str(device)}


def _row(request: JobRequest, spec: AnyTaskSpec, split: SplitDef, info: dict, scores: dict) -> dict:
    return {"seed": request.seed, "model": request.model, "task": spec.name, "split": split.label, "T": split.T,
            "noise_std": split.noise_std, "n_train": request.n_train, **info, **scores}


def _with_drift(metrics: pd.DataFrame, spec: AnyTaskSpec) -> pd.DataFrame:
    """The drift slope over the clean test lengths (NaN for a task with one length or no final position)."""
    clean = metrics[metrics["split"] == "test"]
    source = DRIFT_SOURCE.get(spec.name)
    metrics[DRIFT_COLUMN] = (drift_slope(clean["T"].to_numpy(), clean[source].to_numpy()) if source
                             else float("nan"))
    return metrics


def _run_mean_predictor(request: JobRequest, spec: AnyTaskSpec, splits: dict, train_name: str,
                        eval_splits: list[SplitDef]) -> pd.DataFrame:
    """The trivial baseline: predict the train split's per-timestep mean target for every sequence."""
    means = mean_predictor_targets(splits[train_name]["targets"][:request.n_train])
    info = {"epochs_ran": 0, "best_epoch": 0, "final_train_loss": math.nan, "best_val_loss": math.nan,
            "trainable_parameter_count": 0, "frozen_edge_count": 0, "recurrent_parameter_count": 0,
            "trainable_recurrent_parameter_count": 0, "recurrent_train_mode": "none", "runtime": "none", "K": 0,
            "device": "cpu", WALLCLOCK_LATENCY: math.nan}
    rows, examples = [], {}
    for split in eval_splits:
        targets = splits[split.name]["targets"]
        outputs = mean_predictor_outputs(means, spec, len(targets), split.T)
        rows.append(_row(request, spec, split, info, evaluate(spec, outputs, targets, splits[split.name]["inputs"])))
        examples.update(_examples(split, outputs, targets))
    metrics = _with_drift(pd.DataFrame(rows), spec)
    checkpoint = {"model": MEAN_PREDICTOR, "seed": request.seed, "n_train": request.n_train,
                  "state": {"mean_targets": torch.from_numpy(np.asarray(means))}}
    _write_outputs(request.out_dir, checkpoint, metrics, pd.DataFrame(columns=HISTORY_COLUMNS), examples)
    return metrics


def _write_outputs(out_dir: Path, checkpoint: dict, metrics: pd.DataFrame, history: pd.DataFrame,
                   examples: dict[str, np.ndarray]) -> None:
    with atomic.atomic_path(out_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    atomic.save_npz(out_dir / EXAMPLES_FILE, **examples)
    atomic.write_csv(out_dir / "loss_history.csv", history)
    atomic.write_csv(out_dir / "metrics.csv", metrics)   # last: its presence means the job completed
