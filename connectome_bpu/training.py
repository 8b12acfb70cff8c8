"""One training job: a model, a seed, a train subset -> trained adapters, loss history, metric rows.

Design choices that matter for a fair, reproducible comparison:

* **Deterministic data order.** Epoch ``e`` of seed ``s`` shuffles with its own generator seeded from
  (s, e), so a resumed job sees exactly the batches an uninterrupted one would have seen
  (docs/departures.md#batch-order).
* **Resumable.** After every epoch the trainable tensors, the optimizer state, the best-so-far
  trainable tensors and the loss history go atomically to ``resume_state.pt`` beside the outputs. The
  file is not a declared Snakemake output (Snakemake would delete it with a failed job); it carries a
  fingerprint of everything that determines the job (inputs' checksums, settings), and a state whose
  fingerprint differs is discarded, never trusted.
* **Element-weighted losses** across batches of unequal size (docs/departures.md#loss-means) and early
  stopping that copies trainable tensors only (docs/departures.md#early-stopping). Only the train and
  validation splits are looked at while training; test splits are evaluated once, after the best state
  is restored.

Test hook: with the environment variable ``CONNECTOME_BPU_KILL_AFTER_EPOCH=N`` set, the process SIGKILLs
itself right after the resume state of epoch ``N`` is saved. It simulates a hard kill (OOM killer, node
loss) at a known epoch boundary, so a kill-and-resume test does not depend on timing
(tests/test_resume_workflow.py). It is read only when a resume path is given; leave it unset otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import atomic
from .tasks import AnyTaskSpec

if TYPE_CHECKING:
    from .arms import Arm

LOG = logging.getLogger(__name__)
RESUME_FILE = "resume_state.pt"
KILL_AFTER_EPOCH_ENV = "CONNECTOME_BPU_KILL_AFTER_EPOCH"


@dataclass(frozen=True)
class TrainSettings:
    lr: float = 1e-3
    patience: int = 4
    min_delta: float = 1e-7
    grad_clip: float = 1.0
    batch_size: int = 128
    epochs: int = 20

    @classmethod
    def from_config(cls, training_cfg: Mapping[str, Any]) -> "TrainSettings":
        return cls(**{k: training_cfg[k] for k in cls.__dataclass_fields__})


@dataclass
class TrainOutcome:
    epochs_ran: int
    final_train_loss: float
    best_val_loss: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    resumed_from_epoch: int = 0


def job_fingerprint(payload: Mapping[str, Any]) -> str:
    """Stable hash of a job's defining inputs (settings, file checksums) for resume-state validity."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of epoch ``epoch`` (1-based) for training seed ``seed``; independent of history."""
    generator = torch.Generator().manual_seed(1_000_003 * (seed + 1) + epoch)
    return torch.randperm(n, generator=generator)


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in _trainable(model).items()}


def _restore(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    params = _trainable(model)
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].device))


def mean_loss(model: nn.Module, spec: AnyTaskSpec, inputs: torch.Tensor, targets: torch.Tensor,
              batch_size: int) -> float:
    """Element-weighted mean task loss over a whole split (no gradients)."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            s, c = spec.loss_sums(model(inputs[start:start + batch_size]), targets[start:start + batch_size])
            total += float(s)
            count += c
    return total / max(count, 1)


def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(inputs[s:s + batch_size]) for s in range(0, len(inputs), batch_size)]).cpu().numpy()


def train_model(model: nn.Module, spec: AnyTaskSpec, train: tuple[torch.Tensor, torch.Tensor],
                val: tuple[torch.Tensor, torch.Tensor], settings: TrainSettings, *, seed: int,
                resume_path: Path | None = None, fingerprint: str = "", label: str = "",
                arm: Arm | None = None, fidelity_batch: int = 64) -> TrainOutcome:
    """Adam on the trainable tensors with gradient clipping and patience-based early stopping.

    Without ``arm`` each batch is one backward pass of the batch-mean loss (bptt). With a learning-rule arm
    (connectome_bpu.arms) the arm computes and applies each batch's update, and every epoch records its gradient
    fidelity on the first ``fidelity_batch`` validation sequences (held out from training, never test).
    """
    params = list(_trainable(model).values())
    lr_scale = arm.lr_scale(train[0].shape[1]) if arm is not None else 1.0
    optimizer = torch.optim.Adam(params, lr=settings.lr * lr_scale)
    state = _load_resume(resume_path, fingerprint)
    history: list[dict] = []
    best_val, best_epoch, wait, start_epoch = math.inf, 0, 0, 0
    best_state = _snapshot(model)
    if state is not None:
        _restore(model, state["current"])
        optimizer.load_state_dict(state["optimizer"])
        best_state, best_val, best_epoch = state["best"], state["best_val"], state["best_epoch"]
        wait, history, start_epoch = state["wait"], state["history"], state["epoch"]
        if arm is not None:
            arm.load_state_dict(state["arm"])
        LOG.info("%s: resuming after epoch %d (best val %.6g at epoch %d)", label, start_epoch, best_val, best_epoch)

    inputs, targets = train
    n = len(inputs)
    done = bool(history) and (wait >= settings.patience or start_epoch >= settings.epochs)
    bar = tqdm(total=settings.epochs, initial=start_epoch, desc=f"train {label}", unit="epoch", disable=None)
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        if done:
            break
        model.train()
        started = time.perf_counter()
        total, count = torch.zeros((), device=inputs.device), 0   # summed on the device: no sync per batch
        order = epoch_permutation(n, seed, epoch).to(inputs.device)
        if arm is not None:
            arm.start_epoch(epoch)
        for start in range(0, n, settings.batch_size):
            idx = order[start:start + settings.batch_size]
            if arm is None:
                optimizer.zero_grad(set_to_none=True)
                batch_sum, batch_count = spec.loss_sums(model(inputs[idx]), targets[idx])
                (batch_sum / batch_count).backward()
                nn.utils.clip_grad_norm_(params, settings.grad_clip)
                optimizer.step()
            else:
                batch_sum, batch_count = arm.train_batch(inputs[idx], targets[idx], optimizer, params,
                                                         settings.grad_clip, batch_key=epoch * n + start)
            total += batch_sum.detach().to(total.device)
            count += batch_count
        train_loss = float(total) / max(count, 1)
        val_loss = mean_loss(model, spec, *val, settings.batch_size)
        if val_loss < best_val - settings.min_delta:
            best_val, best_epoch, wait = val_loss, epoch, 0
            best_state = _snapshot(model)
        else:
            wait += 1
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "best_val_loss": best_val,
                        "patience_wait": wait, "seconds": time.perf_counter() - started,
                        **(arm.diagnostics(val[0][:fidelity_batch], val[1][:fidelity_batch]) if arm else {})})
        LOG.info("%s epoch %d/%d train_loss=%.6g val_loss=%.6g best=%.6g wait=%d (%.1f s)", label, epoch,
                 settings.epochs, train_loss, val_loss, best_val, wait, history[-1]["seconds"])
        if resume_path is not None:
            _save_resume(resume_path, fingerprint, model, optimizer, best_state, best_val, best_epoch, wait,
                         history, epoch, arm)
            _kill_if_requested(epoch)
        bar.update(1)
        done = wait >= settings.patience
    bar.close()
    _restore(model, best_state)
    return TrainOutcome(epochs_ran=len(history), final_train_loss=history[-1]["train_loss"] if history else math.nan,
                        best_val_loss=best_val, best_epoch=best_epoch, history=history,
                        resumed_from_epoch=start_epoch)


def _save_resume(path: Path, fingerprint: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                 best_state: dict, best_val: float, best_epoch: int, wait: int, history: list, epoch: int,
                 arm: Arm | None) -> None:
    payload = {"fingerprint": fingerprint, "epoch": epoch, "current": _snapshot(model),
               "optimizer": optimizer.state_dict(), "best": best_state, "best_val": best_val,
               "best_epoch": best_epoch, "wait": wait, "history": history,
               "arm": arm.state_dict() if arm is not None else None}
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _kill_if_requested(epoch: int) -> None:
    """Test hook: SIGKILL this process once epoch ``$CONNECTOME_BPU_KILL_AFTER_EPOCH`` is saved.

    Simulates a hard kill at a known epoch boundary (nothing runs after it: no ``finally``, no atexit),
    so tests can interrupt a training job deterministically and check that it resumes exactly.
    """
    requested = os.environ.get(KILL_AFTER_EPOCH_ENV, "").strip()
    if requested and int(requested) == epoch:
        LOG.warning("%s=%s: killing the process after saving epoch %d (test hook)", KILL_AFTER_EPOCH_ENV,
                    requested, epoch)
        logging.shutdown()     # flush the log so the kill is visible in train.log
        os.kill(os.getpid(), signal.SIGKILL)


def _load_resume(path: Path | None, fingerprint: str) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:   # a torn or foreign file is discarded, never trusted
        LOG.warning("ignoring unreadable resume state %s (%s)", path, err)
        return None
    if state.get("fingerprint") != fingerprint:
        LOG.info("ignoring resume state %s: it belongs to a job with other inputs or settings", path)
        return None
    return state


def latency_ms_per_sequence(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> float:
    """Two warm-up forwards, then five timed ones on one batch (CUDA-synchronised), per sequence."""
    batch = inputs[:min(batch_size, 64, len(inputs))]
    sync = torch.cuda.synchronize if batch.is_cuda else (lambda: None)
    model.eval()
    with torch.no_grad():
        for _ in range(2):
            model(batch)
        sync()
        started = time.perf_counter()
        for _ in range(5):
            model(batch)
        sync()
    return (time.perf_counter() - started) * 1000.0 / (5 * len(batch))


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)
